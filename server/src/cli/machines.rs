//! `stepline machines list|show|create|update|delete|settings`: state
//! machines on a running server (`/v1/state-machines`), and their
//! orchestration settings (`/v1/state-machines/NAME/settings`).

use std::io::Write;
use std::path::PathBuf;

use reqwest::Method;
use serde_json::{Value, json};

use super::client::{
    Api, Body, ClientError, Remote, diagnostic_line, finish, machine_path, print_json, read_bounded,
};
use super::render::{self, Cell, Style, Tone, Zone};
use crate::rest::encode_segment;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    remote: Remote,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Every state machine, by name.
    List,
    /// One state machine with its definition.
    Show { name: String },
    /// Create a state machine from a definition file.
    Create {
        name: String,
        file: PathBuf,
        /// STANDARD or EXPRESS (any case).
        #[arg(long = "type", value_name = "TYPE", default_value = "STANDARD", ignore_case = true, value_parser = ["STANDARD", "EXPRESS"])]
        workflow_type: String,
    },
    /// Replace a state machine's definition with a file's (running
    /// executions keep the revision they started on).
    Update { name: String, file: PathBuf },
    /// Delete a state machine (running executions finish).
    Delete { name: String },
    /// Show a state machine's settings (max_running, expected durations,
    /// windows) and where each comes from; with options, set them over
    /// the API.
    Settings(SettingsArgs),
}

/// `machines settings NAME [options]`: no option shows; each option given
/// sets (or, with --unset, removes) that setting over the API.
#[derive(Debug, clap::Args)]
struct SettingsArgs {
    name: String,
    /// At most N executions run at once; the others queue.
    #[arg(long, value_name = "N")]
    max_running: Option<u64>,
    /// An execution running longer than this raises an alert.
    #[arg(long, value_name = "SECONDS")]
    expected_seconds: Option<u64>,
    /// A state's expected duration, STATE=SECONDS (repeat it; together
    /// they replace the API's list).
    #[arg(long = "state-seconds", value_name = "STATE=SECONDS")]
    state_seconds: Vec<String>,
    /// An execution window, such as "Mon-Fri 01:00-05:00" (repeat it;
    /// together they replace the API's windows).
    #[arg(long = "window", value_name = "WINDOW")]
    windows: Vec<String>,
    /// The zone the windows are read in (default UTC).
    #[arg(long, value_name = "ZONE", requires = "windows")]
    timezone: Option<String>,
    /// What a start outside the windows does: hold, refuse or alert.
    #[arg(long, value_name = "WHAT", requires = "windows")]
    outside: Option<String>,
    /// No task starts while the windows are closed.
    #[arg(long, requires = "windows")]
    drain: bool,
    /// Remove the API's value of a setting (repeat it).
    #[arg(long, value_name = "SETTING", value_parser = ["max-running", "expected-seconds", "state-seconds", "windows"])]
    unset: Vec<String>,
    /// Remove every setting made over the API.
    #[arg(long, conflicts_with_all = ["max_running", "expected_seconds", "state_seconds", "windows", "unset"])]
    clear: bool,
}

impl SettingsArgs {
    /// The PUT body the options make; `None` when none was given.
    fn body(&self) -> Result<Option<Value>, ClientError> {
        let mut body = serde_json::Map::new();
        for unset in &self.unset {
            let field = match unset.as_str() {
                "max-running" => "maxRunning",
                "expected-seconds" => "expectedSeconds",
                "state-seconds" => "stateExpectedSeconds",
                _ => "windows",
            };
            body.insert(field.into(), Value::Null);
        }
        if let Some(n) = self.max_running {
            body.insert("maxRunning".into(), json!(n));
        }
        if let Some(n) = self.expected_seconds {
            body.insert("expectedSeconds".into(), json!(n));
        }
        if !self.state_seconds.is_empty() {
            let mut states = serde_json::Map::new();
            for pair in &self.state_seconds {
                let parsed = pair
                    .split_once('=')
                    .and_then(|(state, secs)| Some((state, secs.trim().parse::<u64>().ok()?)));
                let Some((state, secs)) = parsed else {
                    return Err(ClientError::usage(format!(
                        "--state-seconds '{pair}': give STATE=SECONDS"
                    )));
                };
                states.insert(state.to_owned(), json!(secs));
            }
            body.insert("stateExpectedSeconds".into(), Value::Object(states));
        }
        if !self.windows.is_empty() {
            let mut windows = json!({"windows": self.windows, "drain": self.drain});
            if let Some(zone) = &self.timezone {
                windows["timezone"] = json!(zone);
            }
            if let Some(outside) = &self.outside {
                windows["outside"] = json!(outside);
            }
            body.insert("windows".into(), windows);
        }
        Ok((!body.is_empty()).then_some(Value::Object(body)))
    }
}

pub fn run(args: &Args, stdout: &mut dyn Write, stderr: &mut dyn Write) -> u8 {
    let result = execute(args, stdout).map(|()| 0);
    // An invalid definition: its diagnostics name the file, line for line
    // as `stepline validate FILE` prints them.
    if let (Err(error @ ClientError::Api { diagnostics, .. }), Some(file)) =
        (&result, args.command.file())
    {
        if !diagnostics.is_empty() {
            let _ = writeln!(stderr, "stepline machines: {error}");
            for d in diagnostics {
                let _ = writeln!(stderr, "{}:{}", file.display(), diagnostic_line(d));
            }
            return error.exit_status();
        }
    }
    finish("machines", result, stderr)
}

impl Command {
    /// The definition file a command sends.
    fn file(&self) -> Option<&std::path::Path> {
        match self {
            Command::Create { file, .. } | Command::Update { file, .. } => Some(file),
            _ => None,
        }
    }
}

fn execute(args: &Args, out: &mut dyn Write) -> Result<(), ClientError> {
    let api = Api::new(&args.remote)?;
    let json = args.remote.present.json();
    let zone = args.remote.present.zone();
    let style = Style::for_stdout();
    match &args.command {
        Command::List => {
            let machines = list(&api)?;
            if json {
                print_json(out, &json!({"stateMachines": machines}));
            } else if machines.is_empty() {
                let _ = writeln!(out, "no state machines");
            } else {
                let rows: Vec<Vec<Cell>> = machines
                    .iter()
                    .map(|m| {
                        vec![
                            Cell::plain(m["name"].as_str().unwrap_or("")),
                            Cell::plain(m["type"].as_str().unwrap_or("")),
                            Cell::plain(m["revision"].to_string()),
                            Cell::plain(zone.date_time_of(&m["creationDate"])),
                        ]
                    })
                    .collect();
                render::table(out, style, &["NAME", "TYPE", "REVISION", "CREATED"], &rows);
            }
        }
        Command::Show { name } => {
            let machine = api.get(&machine_path(name))?;
            if json {
                print_json(out, &machine);
            } else {
                show(out, style, zone, &machine);
            }
        }
        Command::Create {
            name,
            file,
            workflow_type,
        } => {
            let definition = definition_file(file)?;
            let path = format!(
                "/v1/state-machines?name={}&type={}",
                encode_segment(name),
                encode_segment(&workflow_type.to_ascii_uppercase())
            );
            let machine = api.send(Method::POST, &path, Body::Json(&definition))?;
            written(out, style, json, "created", &machine);
        }
        Command::Update { name, file } => {
            let definition = definition_file(file)?;
            let machine = api.send(Method::PUT, &machine_path(name), Body::Json(&definition))?;
            written(out, style, json, "updated", &machine);
        }
        Command::Settings(settings) => {
            let path = format!("{}/settings", machine_path(&settings.name));
            let answer = if settings.clear {
                api.send(Method::DELETE, &path, Body::None)?
            } else if let Some(body) = settings.body()? {
                api.send(Method::PUT, &path, Body::Json(&body.to_string()))?
            } else {
                api.get(&path)?
            };
            if json {
                print_json(out, &answer);
            } else {
                show_settings(out, &answer);
            }
        }
        Command::Delete { name } => {
            api.send(Method::DELETE, &machine_path(name), Body::None)?;
            if json {
                print_json(out, &json!({"name": name, "deleted": true}));
            } else {
                let _ = writeln!(out, "deleted state machine {name}");
            }
        }
    }
    Ok(())
}

/// A state machine's settings, one line each, with where it comes from.
fn show_settings(out: &mut dyn Write, settings: &Value) {
    let source = |field: &str| {
        settings["source"][field]
            .as_str()
            .map_or(String::new(), |s| {
                format!(
                    "  ({})",
                    if s == "config" {
                        "stepline.toml"
                    } else {
                        "api"
                    }
                )
            })
    };
    let _ = writeln!(
        out,
        "settings of state machine {}",
        settings["stateMachine"].as_str().unwrap_or("")
    );
    let or_none = |v: &Value| {
        if v.is_null() {
            "none".to_owned()
        } else {
            v.to_string()
        }
    };
    let _ = writeln!(
        out,
        "max running:       {}{}",
        or_none(&settings["maxRunning"]),
        source("maxRunning")
    );
    let _ = writeln!(
        out,
        "expected seconds:  {}{}",
        or_none(&settings["expectedSeconds"]),
        source("expectedSeconds")
    );
    let states = settings["stateExpectedSeconds"]
        .as_object()
        .filter(|m| !m.is_empty())
        .map_or("none".to_owned(), |m| {
            m.iter()
                .map(|(state, secs)| format!("{state}={secs}"))
                .collect::<Vec<_>>()
                .join(", ")
        });
    let _ = writeln!(
        out,
        "state seconds:     {states}{}",
        source("stateExpectedSeconds")
    );
    let windows = &settings["windows"];
    let text = match windows["windows"].as_array() {
        Some(list) => {
            let list: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
            format!(
                "{} ({}, outside: {}{})",
                list.join(", "),
                windows["timezone"].as_str().unwrap_or("UTC"),
                windows["outside"].as_str().unwrap_or("hold"),
                if windows["drain"].as_bool() == Some(true) {
                    ", drain"
                } else {
                    ""
                }
            )
        }
        None => "none".to_owned(),
    };
    let _ = writeln!(out, "windows:           {text}{}", source("windows"));
}

/// Every state machine, following the pages.
pub fn list(api: &Api) -> Result<Vec<Value>, ClientError> {
    let mut machines = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let path = match &next {
            None => "/v1/state-machines?limit=1000".to_owned(),
            Some(token) => format!(
                "/v1/state-machines?limit=1000&next={}",
                encode_segment(token)
            ),
        };
        let page = api.get(&path)?;
        machines.extend(
            page["stateMachines"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        );
        match page["next"].as_str() {
            Some(token) => next = Some(token.to_owned()),
            None => return Ok(machines),
        }
    }
}

/// A definition file, read whole but bounded (1 MiB, the server's limit).
pub fn definition_file(file: &std::path::Path) -> Result<String, ClientError> {
    read_bounded(
        file,
        stepline_language::asl::MAX_DEFINITION_BYTES as u64,
        "a definition (1 MiB)",
    )
}

fn written(out: &mut dyn Write, style: Style, json: bool, verb: &str, machine: &Value) {
    if json {
        print_json(out, machine);
    } else {
        let _ = writeln!(
            out,
            "{verb} state machine {} (revision {})",
            style.paint(Tone::Bold, machine["name"].as_str().unwrap_or("")),
            machine["revision"]
        );
    }
}

fn show(out: &mut dyn Write, style: Style, zone: Zone, machine: &Value) {
    let text = |key: &str| machine[key].as_str().unwrap_or("").to_owned();
    let mut rows = vec![
        ("name", text("name")),
        ("arn", text("arn")),
        ("type", text("type")),
        ("revision", machine["revision"].to_string()),
        ("created", zone.date_time_of(&machine["creationDate"])),
    ];
    if let Some(role) = machine["roleArn"].as_str() {
        rows.push(("role", role.to_owned()));
    }
    render::fields(out, style, &rows);
    let _ = writeln!(out, "{}", style.paint(Tone::Bold, "definition:"));
    // The definition exactly as it was given, so line numbers in
    // diagnostics still match.
    for line in text("definition").lines() {
        let _ = writeln!(out, "  {line}");
    }
}

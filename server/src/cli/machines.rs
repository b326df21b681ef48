//! `stepline machines list|show|create|update|delete`: state machines on a
//! running server (`/v1/state-machines`).

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

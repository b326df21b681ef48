//! Executions on a running server: `executions list|describe|start|stop|
//! redrive`, and `start` and `stop`, the short forms of `executions start`
//! and `executions stop`.
//!
//! `start --wait` follows the history (the same long poll as `history
//! --follow`); on a terminal it keeps one progress line on stderr with the
//! states the execution has passed, then prints the result. Its exit
//! status says how the execution ended, so scripts can `&&` on it.

use std::io::Write;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use super::client::{
    Api, Body, ClientError, EXIT_EXECUTION_FAILED, ExecutionId, Remote, finish, machine_path,
    print_json,
};
use super::history::{LONG_POLL, Seen, Timeline, follow};
use super::input;
use super::render::{self, Cell, Stream, Style, Tone, Zone};
use crate::rest::encode_segment;

/// What `start` takes, as `stepline start` and as `stepline executions start`.
#[derive(Debug, clap::Args)]
pub struct StartOptions {
    /// The state machine's name.
    machine: String,
    #[arg(long, short = 'i', value_name = "JSON|@FILE|-", help = input::HELP)]
    input: Option<String>,
    /// The execution's name [default: a new UUID].
    #[arg(long)]
    name: Option<String>,
    /// Wait for the execution to end, print its output or error, and exit
    /// with 3 unless it SUCCEEDED.
    #[arg(long, short = 'w')]
    wait: bool,
}

/// `stepline start`.
#[derive(Debug, clap::Args)]
pub struct StartArgs {
    #[command(flatten)]
    options: StartOptions,
    #[command(flatten)]
    remote: Remote,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    remote: Remote,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Executions, newest first.
    List {
        /// Only executions with this status: RUNNING, SUCCEEDED, FAILED, TIMED_OUT or ABORTED.
        #[arg(long, ignore_case = true, value_parser = ["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"])]
        status: Option<String>,
        /// Only executions of this state machine.
        #[arg(long)]
        machine: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
        limit: u32,
    },
    /// One execution: status, times, input, output or error.
    Describe {
        /// MACHINE/NAME, or the execution's ARN.
        execution: String,
    },
    /// Start an execution; --wait follows it to its end (also `stepline start`).
    Start(StartOptions),
    /// Stop a running execution: it ends ABORTED (also `stepline stop`).
    Stop(StopOptions),
    /// Run a FAILED, TIMED_OUT or ABORTED execution again from where it stopped.
    Redrive {
        /// MACHINE/NAME, or the execution's ARN.
        execution: String,
    },
}

/// What `stop` takes, as `stepline stop` and as `stepline executions stop`.
#[derive(Debug, clap::Args)]
pub struct StopOptions {
    /// MACHINE/NAME, or the execution's ARN.
    execution: String,
    /// The error recorded in ExecutionAborted (at most 256 bytes).
    #[arg(long)]
    error: Option<String>,
    /// The cause recorded in ExecutionAborted (at most 32768 bytes).
    #[arg(long)]
    cause: Option<String>,
}

/// `stepline stop`.
#[derive(Debug, clap::Args)]
pub struct StopArgs {
    #[command(flatten)]
    options: StopOptions,
    #[command(flatten)]
    remote: Remote,
}

pub fn start(args: &StartArgs, stdout: &mut dyn Write, stderr: &mut dyn Write) -> u8 {
    let result = execute_start(&args.options, &args.remote, stdout, stderr);
    finish("start", result, stderr)
}

pub fn run(args: &Args, stdout: &mut dyn Write, stderr: &mut dyn Write) -> u8 {
    let result = execute(args, stdout, stderr);
    finish("executions", result, stderr)
}

pub fn stop(args: &StopArgs, stdout: &mut dyn Write, stderr: &mut dyn Write) -> u8 {
    let result = execute_stop(&args.options, &args.remote, stdout).map(|()| 0);
    finish("stop", result, stderr)
}

fn execute_start(
    args: &StartOptions,
    remote: &Remote,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8, ClientError> {
    let input = args.input.as_deref().map(input::read).transpose()?;
    let api = Api::new(remote)?;
    let json = remote.present.json();
    let style = Style::for_stdout();
    let mut path = format!("{}/executions", machine_path(&args.machine));
    if let Some(name) = &args.name {
        path.push_str(&format!("?name={}", encode_segment(name)));
    }
    let body = input.as_deref().map_or(Body::None, Body::Json);
    let started = api.send(Method::POST, &path, body)?;
    let id = ExecutionId::parse(started["id"].as_str().unwrap_or_default()).map_err(|_| {
        ClientError::BadAnswer {
            what: format!("POST {path}"),
            reason: "no execution 'id' in the answer".into(),
        }
    })?;
    if !args.wait {
        if json {
            print_json(out, &started);
        } else {
            let _ = writeln!(
                out,
                "started {} ({})",
                style.paint(Tone::Bold, &id.to_string()),
                started["arn"].as_str().unwrap_or("")
            );
        }
        return Ok(0);
    }
    let mut progress = Progress::new(!json);
    // With a progress line, poll every second so its clock moves while
    // nothing happens; without, the long poll can be long.
    let wait = if progress.shown {
        Duration::from_secs(1)
    } else {
        LONG_POLL
    };
    follow(&api, &id, Some(wait), |seen| match seen {
        Seen::Event(event) => progress.event(event),
        Seen::Page => progress.draw(err),
    })?;
    progress.finish(err);
    let ended = api.get(&id.path())?;
    if json {
        print_json(out, &ended);
    } else {
        result(out, style, &id, &ended);
    }
    Ok(if ended["status"] == "SUCCEEDED" {
        0
    } else {
        EXIT_EXECUTION_FAILED
    })
}

/// The end of an execution, for people: status and time, then the output
/// or the error and cause.
fn result(out: &mut dyn Write, style: Style, id: &ExecutionId, execution: &Value) {
    let status = execution["status"].as_str().unwrap_or("");
    let _ = writeln!(
        out,
        "{} {} in {}",
        style.paint(Tone::Bold, &id.to_string()),
        style.paint(render::status_tone(status), status),
        render::execution_duration(execution, chrono::Utc::now())
    );
    if let Some(output) = execution.get("output") {
        render::block(out, style, "output:", output);
    }
    let mut rows = Vec::new();
    for key in ["error", "cause"] {
        if let Some(text) = execution[key].as_str() {
            rows.push((key, text.to_owned()));
        }
    }
    render::fields(out, style, &rows);
}

/// The live line of `start --wait` on a terminal: the states entered so
/// far, the newest last, cut from the left to the terminal's width.
struct Progress {
    shown: bool,
    style: Style,
    timeline: Timeline,
    trail: Vec<String>,
    began: std::time::Instant,
}

impl Progress {
    fn new(wanted: bool) -> Self {
        let style = Style::for_stderr();
        Self {
            // Only on a terminal: in a log file, carriage returns are noise.
            shown: wanted && std::io::IsTerminal::is_terminal(&std::io::stderr()),
            style,
            timeline: Timeline::new(style),
            trail: Vec::new(),
            began: std::time::Instant::now(),
        }
    }

    fn event(&mut self, event: &Value) {
        let state = self.timeline.state_of(event);
        let kind = event["type"].as_str().unwrap_or("");
        if kind.ends_with("StateEntered") && self.trail.last() != Some(&state) {
            self.trail.push(state);
        }
    }

    fn draw(&self, err: &mut dyn Write) {
        if !self.shown {
            return;
        }
        let width = render::width(Stream::Stderr).unwrap_or(80).max(20);
        let head = format!("RUNNING {}  ", render::elapsed(self.began.elapsed()));
        let mut trail = self.trail.join(" → ");
        let room = width.saturating_sub(head.chars().count() + 1);
        let count = trail.chars().count();
        if count > room {
            trail = format!(
                "…{}",
                trail.chars().skip(count + 1 - room).collect::<String>()
            );
        }
        let _ = write!(
            err,
            "\r\x1b[2K{}{trail}",
            self.style.paint(Tone::Active, &head)
        );
        let _ = err.flush();
    }

    fn finish(&self, err: &mut dyn Write) {
        if self.shown {
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}

fn execute(args: &Args, out: &mut dyn Write, err: &mut dyn Write) -> Result<u8, ClientError> {
    let remote = &args.remote;
    let json = remote.present.json();
    let zone = remote.present.zone();
    let style = Style::for_stdout();
    match &args.command {
        Command::Start(options) => return execute_start(options, remote, out, err),
        Command::Stop(options) => execute_stop(options, remote, out)?,
        Command::List {
            status,
            machine,
            limit,
        } => {
            let api = Api::new(remote)?;
            let executions = list(&api, status.as_deref(), machine.as_deref(), *limit)?;
            if json {
                print_json(out, &json!({"executions": executions}));
            } else if executions.is_empty() {
                let _ = writeln!(out, "no executions");
            } else {
                let now = chrono::Utc::now();
                let rows: Vec<Vec<Cell>> = executions
                    .iter()
                    .map(|e| {
                        let status = e["status"].as_str().unwrap_or("");
                        vec![
                            Cell::plain(e["id"].as_str().unwrap_or("")),
                            Cell::toned(status, render::status_tone(status)),
                            Cell::plain(zone.date_time_of(&e["startDate"])),
                            Cell::plain(render::execution_duration(e, now)),
                        ]
                    })
                    .collect();
                render::table(
                    out,
                    style,
                    &["EXECUTION", "STATUS", "STARTED", "DURATION"],
                    &rows,
                );
            }
        }
        Command::Describe { execution } => {
            let id = ExecutionId::parse(execution)?;
            let api = Api::new(remote)?;
            let execution = api.get(&id.path())?;
            if json {
                print_json(out, &execution);
            } else {
                describe(out, style, zone, &execution);
            }
        }
        Command::Redrive { execution } => {
            let id = ExecutionId::parse(execution)?;
            let api = Api::new(remote)?;
            let path = format!("{}/redrive", id.path());
            let execution = api.send(Method::POST, &path, Body::None)?;
            if json {
                print_json(out, &execution);
            } else {
                let status = execution["status"].as_str().unwrap_or("");
                let _ = writeln!(
                    out,
                    "redriven {id}: {}",
                    style.paint(render::status_tone(status), status)
                );
            }
        }
    }
    Ok(0)
}

/// Up to `limit` executions, newest first, following the pages.
fn list(
    api: &Api,
    status: Option<&str>,
    machine: Option<&str>,
    limit: u32,
) -> Result<Vec<Value>, ClientError> {
    let mut query = String::new();
    if let Some(status) = status {
        query.push_str(&format!(
            "&status={}",
            encode_segment(&status.to_ascii_uppercase())
        ));
    }
    if let Some(machine) = machine {
        query.push_str(&format!("&machine={}", encode_segment(machine)));
    }
    let mut executions: Vec<Value> = Vec::new();
    let mut next: Option<String> = None;
    while (executions.len() as u64) < u64::from(limit) {
        let page_size = (u64::from(limit) - executions.len() as u64).min(1000);
        let mut path = format!("/v1/executions?limit={page_size}{query}");
        if let Some(token) = &next {
            path.push_str(&format!("&next={}", encode_segment(token)));
        }
        let page = api.get(&path)?;
        executions.extend(page["executions"].as_array().cloned().unwrap_or_default());
        match page["next"].as_str() {
            Some(token) => next = Some(token.to_owned()),
            None => break,
        }
    }
    Ok(executions)
}

fn describe(out: &mut dyn Write, style: Style, zone: Zone, e: &Value) {
    let text = |key: &str| e[key].as_str().unwrap_or("").to_owned();
    let status = text("status");
    let mut rows = vec![
        ("execution", text("id")),
        ("arn", text("arn")),
        ("machine", text("stateMachine")),
        ("revision", e["revision"].to_string()),
        ("status", style.paint(render::status_tone(&status), &status)),
        ("started", zone.date_time_of(&e["startDate"])),
    ];
    // Held until its window opens, or waiting for a slot of its state
    // machine's max_running.
    if let Some(queued) = e.get("queued").filter(|q| q["reason"] == "window") {
        rows.push((
            "queued",
            format!(
                "held by its windows until {}, priority {}",
                zone.date_time_of(&queued["opens"]),
                queued["priority"]
            ),
        ));
    } else if let Some(queued) = e.get("queued") {
        let place = match (queued["position"].as_u64(), queued["length"].as_u64()) {
            (Some(position), Some(length)) => format!("{position} of {length}"),
            _ => "yes".to_owned(),
        };
        rows.push((
            "queued",
            format!("{place}, priority {}", queued["priority"]),
        ));
    }
    // Tasks waiting for the state machine's next window (drain).
    if let Some(draining) = e.get("draining") {
        let states: Vec<&str> = draining["states"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        rows.push((
            "draining",
            format!(
                "{} wait(s) for the next window, at {}",
                states.join(", "),
                zone.date_time_of(&draining["until"])
            ),
        ));
    }
    // Tasks waiting for a slot of a pool: one line per state and pool.
    for wait in e["poolWaits"].as_array().into_iter().flatten() {
        rows.push((
            "pool wait",
            format!(
                "{} waits for {} since {}",
                wait["stateName"].as_str().unwrap_or(""),
                wait["pool"].as_str().unwrap_or(""),
                zone.date_time_of(&wait["since"])
            ),
        ));
    }
    if e.get("stopDate").is_some() {
        rows.push(("stopped", zone.date_time_of(&e["stopDate"])));
    }
    rows.push((
        "duration",
        render::execution_duration(e, chrono::Utc::now()),
    ));
    for key in ["error", "cause"] {
        if let Some(value) = e[key].as_str() {
            rows.push((key, style.paint(Tone::Bad, value)));
        }
    }
    render::fields(out, style, &rows);
    render::block(out, style, "input:", &e["input"]);
    if let Some(output) = e.get("output") {
        render::block(out, style, "output:", output);
    }
}

/// AWS's bounds on StopExecution's error and cause, checked here so that a
/// long one is a usage error rather than the server's 400.
const MAX_ERROR_BYTES: usize = 256;
const MAX_CAUSE_BYTES: usize = 32768;

fn execute_stop(
    args: &StopOptions,
    remote: &Remote,
    out: &mut dyn Write,
) -> Result<(), ClientError> {
    let id = ExecutionId::parse(&args.execution)?;
    let too_long = |what: &str, text: &Option<String>, max: usize| match text {
        Some(t) if t.len() > max => Err(ClientError::usage(format!(
            "--{what} is {} bytes; at most {max}",
            t.len()
        ))),
        _ => Ok(()),
    };
    too_long("error", &args.error, MAX_ERROR_BYTES)?;
    too_long("cause", &args.cause, MAX_CAUSE_BYTES)?;
    let api = Api::new(remote)?;
    let mut body = serde_json::Map::new();
    if let Some(error) = &args.error {
        body.insert("error".into(), json!(error));
    }
    if let Some(cause) = &args.cause {
        body.insert("cause".into(), json!(cause));
    }
    let body = Value::Object(body).to_string();
    // The server answers a stop of an ended execution with its record as
    // it is; look first, so "stopped" is only said of what was stopped.
    let before = api.get(&id.path())?;
    let already_ended = before["status"] != "RUNNING";
    let execution = api.send(
        Method::POST,
        &format!("{}/stop", id.path()),
        Body::Json(&body),
    )?;
    if remote.present.json() {
        print_json(out, &execution);
    } else {
        let style = Style::for_stdout();
        let status = execution["status"].as_str().unwrap_or("");
        let verb = if already_ended {
            "already ended:"
        } else if status == "RUNNING" {
            "stop requested for"
        } else {
            "stopped"
        };
        let _ = writeln!(
            out,
            "{verb} {}: {}",
            id,
            style.paint(render::status_tone(status), status)
        );
    }
    Ok(())
}

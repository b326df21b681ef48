//! Executions on a running server: `start NAME [--input JSON|@FILE]
//! [--name EXEC] [--wait]`, `executions list|describe`, and `stop EXEC`.
//!
//! `start --wait` follows the history (the same long poll as `history
//! --follow`); on a terminal it keeps one progress line on stderr with the
//! states the execution has passed, then prints the result. Its exit
//! status says how the execution ended, so scripts can `&&` on it.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use stepline_language::payload::MAX_PAYLOAD_BYTES;

use super::client::{
    Api, Body, ClientError, EXIT_EXECUTION_FAILED, ExecutionId, Output, Remote, finish,
    machine_path, print_json, read_bounded,
};
use super::history::{LONG_POLL, Seen, Timeline, follow};
use super::render::{self, Cell, Style, Tone};
use crate::rest::encode_segment;

#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// The state machine's name.
    machine: String,
    /// The input: JSON text, or @FILE to read it from a file [default: {}].
    #[arg(long, short = 'i', value_name = "JSON|@FILE")]
    input: Option<String>,
    /// The execution's name [default: a new UUID].
    #[arg(long)]
    name: Option<String>,
    /// Wait for the execution to end, print its output or error, and exit
    /// with 3 unless it SUCCEEDED.
    #[arg(long, short = 'w')]
    wait: bool,
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
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// One execution: status, times, input, output or error.
    Describe {
        /// MACHINE/NAME, or the execution's ARN.
        execution: String,
    },
}

#[derive(Debug, clap::Args)]
pub struct StopArgs {
    /// MACHINE/NAME, or the execution's ARN.
    execution: String,
    /// The error recorded in ExecutionAborted.
    #[arg(long)]
    error: Option<String>,
    /// The cause recorded in ExecutionAborted.
    #[arg(long)]
    cause: Option<String>,
    #[command(flatten)]
    remote: Remote,
}

pub fn start(args: &StartArgs, stdout: &mut dyn Write, stderr: &mut dyn Write) -> u8 {
    let result = execute_start(args, stdout, stderr);
    finish("start", result, stderr)
}

pub fn run(args: &Args, stdout: &mut dyn Write, stderr: &mut dyn Write) -> u8 {
    let result = execute(args, stdout).map(|()| 0);
    finish("executions", result, stderr)
}

pub fn stop(args: &StopArgs, stdout: &mut dyn Write, stderr: &mut dyn Write) -> u8 {
    let result = execute_stop(args, stdout).map(|()| 0);
    finish("stop", result, stderr)
}

/// The input text: `--input JSON` or `--input @FILE`, checked to be JSON
/// here so that a typo is reported with its position before any request.
fn input_text(input: Option<&str>) -> Result<Option<String>, ClientError> {
    let Some(input) = input else {
        return Ok(None);
    };
    let (text, origin) = match input.strip_prefix('@') {
        Some(file) => (
            read_bounded(
                Path::new(file),
                MAX_PAYLOAD_BYTES as u64,
                "an input (256 KiB)",
            )?,
            file.to_owned(),
        ),
        None => (input.to_owned(), "--input".to_owned()),
    };
    if let Err(e) = serde_json::from_str::<Value>(&text) {
        return Err(ClientError::usage(format!(
            "the input ({origin}) is not JSON: {e}"
        )));
    }
    Ok(Some(text))
}

fn execute_start(
    args: &StartArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8, ClientError> {
    let input = input_text(args.input.as_deref())?;
    let api = Api::new(&args.remote)?;
    let json = args.remote.output == Output::Json;
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
        let width = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.parse::<usize>().ok())
            .unwrap_or(80)
            .max(20);
        let head = format!("RUNNING {:.1}s  ", self.began.elapsed().as_secs_f64());
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

fn execute(args: &Args, out: &mut dyn Write) -> Result<(), ClientError> {
    let api = Api::new(&args.remote)?;
    let json = args.remote.output == Output::Json;
    let style = Style::for_stdout();
    match &args.command {
        Command::List {
            status,
            machine,
            limit,
        } => {
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
                            Cell::plain(render::date_time(&e["startDate"])),
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
            let execution = api.get(&id.path())?;
            if json {
                print_json(out, &execution);
            } else {
                describe(out, style, &execution);
            }
        }
    }
    Ok(())
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

fn describe(out: &mut dyn Write, style: Style, e: &Value) {
    let text = |key: &str| e[key].as_str().unwrap_or("").to_owned();
    let status = text("status");
    let mut rows = vec![
        ("execution", text("id")),
        ("arn", text("arn")),
        ("machine", text("stateMachine")),
        ("revision", e["revision"].to_string()),
        ("status", style.paint(render::status_tone(&status), &status)),
        ("started", render::date_time(&e["startDate"])),
    ];
    if e.get("stopDate").is_some() {
        rows.push(("stopped", render::date_time(&e["stopDate"])));
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

fn execute_stop(args: &StopArgs, out: &mut dyn Write) -> Result<(), ClientError> {
    let id = ExecutionId::parse(&args.execution)?;
    let api = Api::new(&args.remote)?;
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
    if args.remote.output == Output::Json {
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

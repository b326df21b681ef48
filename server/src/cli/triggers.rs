//! `stepline triggers list|show|enable|disable|backfill`: the triggers of
//! a running server (`/v1/triggers`). `stepline backfill` is the old
//! spelling of `triggers backfill`, kept for scripts.
//!
//! A backfill starts one execution per slot of a schedule trigger in
//! `[--from, --to]`, like Airflow's backfill. It goes through the server
//! rather than the data directory: the server holds the directory's lock
//! while it runs, and its engine is what runs the executions. Slots
//! already started (by the schedule or an earlier backfill) have the same
//! execution names and are counted as existing, never started twice.
//!
//! The command first asks the server for the plan (`"dryRun": true`: each
//! slot and its execution), which `--dry-run` prints and stops at; then it
//! backfills the slots a few at a time, each batch a request of its own
//! over exactly its slots, so a progress line on a terminal can say how far
//! it got.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::{Value, json};

use super::client::{Api, Body, ClientError, Remote, finish, print_json};
use super::render::{self, Cell, Style, Tone, Zone};
use crate::rest::encode_segment;

/// One batch of a backfill: its request starts these many executions.
const BATCH: usize = 50;
/// How long one batch may take to answer.
const BATCH_TIMEOUT: Duration = Duration::from_secs(300);
/// How many of the errors of the batches are told (as the server does).
const ERRORS_KEPT: usize = 20;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    remote: Remote,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Every trigger: kind, state machine, enabled, next and last firing.
    List,
    /// One trigger: its definition and state.
    Show {
        /// The trigger's name.
        name: String,
    },
    /// Enable a trigger (a schedule starts from now: slots missed while it was disabled are not caught up).
    Enable {
        /// The trigger's name.
        name: String,
    },
    /// Disable a trigger: it starts nothing until enabled again.
    Disable {
        /// The trigger's name.
        name: String,
    },
    /// Start one execution per slot of a schedule trigger between two times.
    Backfill(BackfillOptions),
}

/// What `triggers backfill` takes (and `stepline backfill`).
#[derive(Debug, clap::Args)]
pub struct BackfillOptions {
    /// The schedule trigger's name.
    trigger: String,
    /// The first time (RFC 3339, like 2026-01-01T00:00:00Z); a slot at it is included.
    #[arg(long)]
    from: String,
    /// The last time (RFC 3339); a slot at it is included.
    #[arg(long)]
    to: String,
    /// Start nothing: list each slot, its execution's name, and whether that execution exists.
    #[arg(long)]
    dry_run: bool,
}

/// `stepline backfill`, the old spelling of `stepline triggers backfill`.
#[derive(Debug, clap::Args)]
pub struct BackfillArgs {
    #[command(flatten)]
    options: BackfillOptions,
    #[command(flatten)]
    remote: Remote,
}

pub fn run(args: &Args, stdout: &mut dyn Write, stderr: &mut dyn Write) -> u8 {
    let result = execute(args, stdout, stderr);
    finish("triggers", result, stderr)
}

pub fn backfill_alias(args: &BackfillArgs, stdout: &mut dyn Write, stderr: &mut dyn Write) -> u8 {
    let result = backfill(&args.options, &args.remote, "backfill", stdout, stderr);
    finish("backfill", result, stderr)
}

fn trigger_path(name: &str) -> String {
    format!("/v1/triggers/{}", encode_segment(name))
}

fn execute(args: &Args, out: &mut dyn Write, err: &mut dyn Write) -> Result<u8, ClientError> {
    let remote = &args.remote;
    let json = remote.present.json();
    let zone = remote.present.zone();
    let style = Style::for_stdout();
    match &args.command {
        Command::Backfill(options) => {
            return backfill(options, remote, "triggers backfill", out, err);
        }
        Command::List => {
            let api = Api::new(remote)?;
            let answer = api.get("/v1/triggers")?;
            let triggers = answer["triggers"].as_array().cloned().unwrap_or_default();
            if json {
                print_json(out, &json!({"triggers": triggers}));
            } else if triggers.is_empty() {
                let _ = writeln!(out, "no triggers");
            } else {
                let rows: Vec<Vec<Cell>> = triggers
                    .iter()
                    .map(|t| {
                        vec![
                            Cell::plain(text(t, "name")),
                            Cell::plain(text(t, "kind")),
                            Cell::plain(text(t, "stateMachine")),
                            enabled_cell(t),
                            Cell::plain(source(t)),
                            Cell::plain(zone.date_time_of(&t["nextFire"])),
                            Cell::plain(zone.date_time_of(&t["lastFired"])),
                            Cell::plain(t["fired"].to_string()),
                        ]
                    })
                    .collect();
                render::table(
                    out,
                    style,
                    &[
                        "NAME",
                        "KIND",
                        "MACHINE",
                        "ENABLED",
                        "SOURCE",
                        "NEXT FIRE",
                        "LAST FIRED",
                        "FIRED",
                    ],
                    &rows,
                );
            }
        }
        Command::Show { name } => {
            let api = Api::new(remote)?;
            let trigger = api.get(&trigger_path(name))?;
            if json {
                print_json(out, &trigger);
            } else {
                show(out, style, zone, &trigger);
            }
        }
        Command::Enable { name } | Command::Disable { name } => {
            let verb = if matches!(args.command, Command::Enable { .. }) {
                "enable"
            } else {
                "disable"
            };
            let api = Api::new(remote)?;
            let path = format!("{}/{verb}", trigger_path(name));
            let trigger = api.send(Method::POST, &path, Body::None)?;
            if json {
                print_json(out, &trigger);
            } else {
                let _ = writeln!(out, "{verb}d trigger {}", style.paint(Tone::Bold, name));
            }
        }
    }
    Ok(0)
}

fn text(value: &Value, key: &str) -> String {
    value[key].as_str().unwrap_or("").to_owned()
}

fn enabled_cell(t: &Value) -> Cell {
    if t["enabled"] == Value::Bool(true) {
        Cell::toned("yes", Tone::Good)
    } else {
        Cell::toned("no", Tone::Warn)
    }
}

/// What starts a trigger: its schedule (and zone), its directory and
/// glob, or its webhook path.
fn source(t: &Value) -> String {
    match t["kind"].as_str() {
        Some("schedule") => match t["timezone"].as_str() {
            Some(zone) => format!("{} {zone}", text(t, "schedule")),
            None => text(t, "schedule"),
        },
        Some("file") => format!(
            "{}/{}",
            text(t, "directory").trim_end_matches('/'),
            text(t, "glob")
        ),
        Some("webhook") => format!("POST /v1/hooks/{}", text(t, "name")),
        Some("execution") => {
            let statuses: Vec<&str> = t["statuses"]
                .as_array()
                .map(|s| s.iter().filter_map(Value::as_str).collect())
                .unwrap_or_else(|| vec!["SUCCEEDED"]);
            format!("{} ended {}", text(t, "source"), statuses.join("|"))
        }
        Some("dataset") => {
            let inputs: Vec<&str> = t["inputs"]
                .as_array()
                .map(|s| s.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            format!(
                "{} per {}",
                inputs.join(" + "),
                t["period"].as_str().unwrap_or("day")
            )
        }
        _ => String::new(),
    }
}

fn show(out: &mut dyn Write, style: Style, zone: Zone, t: &Value) {
    let enabled = enabled_cell(t);
    let mut rows = vec![
        ("name", text(t, "name")),
        ("kind", text(t, "kind")),
        ("machine", text(t, "stateMachine")),
        (
            "enabled",
            style.paint(enabled.tone.unwrap_or(Tone::Dim), &enabled.text),
        ),
        ("source", source(t)),
    ];
    let optional = [
        ("catch up", "catchUp"),
        ("finished by", "finishedBy"),
        ("signature", "signatureHeader"),
        ("origin", "origin"),
    ];
    for (label, key) in optional {
        if let Some(value) = t[key].as_str() {
            rows.push((label, value.to_owned()));
        }
    }
    // Execution windows: when its fires may start executions.
    if let Some(windows) = t["windows"].as_array() {
        let list: Vec<&str> = windows.iter().filter_map(Value::as_str).collect();
        rows.push((
            "windows",
            format!(
                "{} ({}), outside: {}",
                list.join(", "),
                t["timezone"].as_str().unwrap_or("UTC"),
                t["outside"].as_str().unwrap_or("hold")
            ),
        ));
    }
    if let Some(minutes) = t["timeoutMinutes"].as_u64() {
        rows.push(("timeout", format!("{minutes} min after the period starts")));
    }
    if let Some(pending) = t["pendingAlerts"].as_u64().filter(|n| *n > 0) {
        rows.push(("alerts", format!("{pending} not yet delivered")));
    }
    if t["hasSecret"] == Value::Bool(true) {
        rows.push(("secret", "set (never shown)".to_owned()));
    }
    rows.push(("created", zone.date_time_of(&t["created"])));
    rows.push(("next fire", zone.date_time_of(&t["nextFire"])));
    rows.push(("last fired", zone.date_time_of(&t["lastFired"])));
    rows.push(("fired", t["fired"].to_string()));
    if let Some(arn) = t["lastExecutionArn"].as_str() {
        rows.push(("last execution", arn.to_owned()));
    }
    if let Some(error) = t["lastError"].as_str() {
        rows.push(("last error", style.paint(Tone::Bad, error)));
    }
    render::fields(out, style, &rows);
    if let Some(input) = t.get("input").filter(|v| !v.is_null()) {
        render::block(out, style, "input:", input);
    }
}

fn time(text: &str, what: &str) -> Result<DateTime<Utc>, ClientError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            ClientError::usage(format!(
                "--{what} '{text}' is not an RFC 3339 time (like 2026-01-01T00:00:00Z): {e}"
            ))
        })
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// The totals of a backfill, in the server's shape.
#[derive(Debug, Default)]
struct Totals {
    slots: usize,
    started: u64,
    existing: u64,
    errors: Vec<String>,
}

fn backfill(
    args: &BackfillOptions,
    remote: &Remote,
    command: &str,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8, ClientError> {
    let from = time(&args.from, "from")?;
    let to = time(&args.to, "to")?;
    if from > to {
        return Err(ClientError::usage(format!(
            "--from {} is after --to {}: nothing to backfill",
            args.from, args.to
        )));
    }
    let json = remote.present.json();
    let zone = remote.present.zone();
    let style = Style::for_stdout();
    let api = Api::new(remote)?;
    let path = format!("{}/backfill", trigger_path(&args.trigger));
    let ask = |from: DateTime<Utc>, to: DateTime<Utc>, dry_run: bool| {
        let request = json!({"from": rfc3339(from), "to": rfc3339(to), "dryRun": dry_run});
        api.send_waiting(
            Method::POST,
            &path,
            Body::Json(&request.to_string()),
            BATCH_TIMEOUT,
        )
    };
    let plan = ask(from, to, true)?;
    let slots: Vec<Value> = plan["executions"].as_array().cloned().unwrap_or_default();
    let range = format!("from {} to {}", zone.date_time(from), zone.date_time(to));
    if args.dry_run {
        if json {
            print_json(out, &plan);
            return Ok(0);
        }
        let rows: Vec<Vec<Cell>> = slots
            .iter()
            .map(|s| {
                let (word, tone) = if s["exists"] == Value::Bool(true) {
                    ("already started", Tone::Dim)
                } else {
                    ("would start", Tone::Active)
                };
                vec![
                    Cell::plain(zone.date_time_of(&s["scheduledTime"])),
                    Cell::plain(text(s, "name")),
                    Cell::toned(word, tone),
                ]
            })
            .collect();
        if !rows.is_empty() {
            render::table(out, style, &["SLOT", "EXECUTION", "BACKFILL"], &rows);
        }
        let existing = plan["existing"].as_u64().unwrap_or(0);
        let _ = writeln!(
            out,
            "{}: {} slot(s) {range}: {} would start, {existing} already started (dry run: nothing started)",
            args.trigger,
            slots.len(),
            slots.len() as u64 - existing.min(slots.len() as u64),
        );
        return Ok(0);
    }
    let times: Vec<DateTime<Utc>> = slots
        .iter()
        .filter_map(|s| render::parse_time(&s["scheduledTime"]))
        .collect();
    let mut totals = Totals {
        slots: times.len(),
        ..Totals::default()
    };
    let mut progress = BackfillProgress::new(!json, &args.trigger, times.len());
    let mut done = 0;
    for batch in times.chunks(BATCH) {
        let (first, last) = (batch[0], batch[batch.len() - 1]);
        let answer = ask(first, last, false)?;
        totals.started += answer["started"].as_u64().unwrap_or(0);
        totals.existing += answer["existing"].as_u64().unwrap_or(0);
        for e in answer["errors"].as_array().into_iter().flatten() {
            if totals.errors.len() < ERRORS_KEPT {
                totals
                    .errors
                    .push(e.as_str().unwrap_or_default().to_owned());
            }
        }
        done += batch.len();
        progress.draw(err, done, &totals);
    }
    progress.finish(err);
    if json {
        print_json(
            out,
            &json!({
                "trigger": args.trigger,
                "from": rfc3339(from),
                "to": rfc3339(to),
                "slots": totals.slots,
                "started": totals.started,
                "existing": totals.existing,
                "errors": totals.errors,
            }),
        );
    } else {
        let _ = writeln!(
            out,
            "{}: {} slot(s) {range}: {} started, {} already started",
            args.trigger, totals.slots, totals.started, totals.existing
        );
    }
    // Slots that could not start: each told, and the exit status says so.
    for e in &totals.errors {
        let _ = writeln!(err, "stepline {command}: {e}");
    }
    Ok(if totals.errors.is_empty() { 0 } else { 1 })
}

/// The live line of a backfill on a terminal (stderr): slots done of all,
/// started and already started so far, and the time taken.
struct BackfillProgress {
    shown: bool,
    style: Style,
    trigger: String,
    total: usize,
    began: Instant,
}

impl BackfillProgress {
    fn new(wanted: bool, trigger: &str, total: usize) -> Self {
        Self {
            // Only on a terminal: in a log file, carriage returns are noise.
            shown: wanted && std::io::stderr().is_terminal(),
            style: Style::for_stderr(),
            trigger: trigger.to_owned(),
            total,
            began: Instant::now(),
        }
    }

    fn draw(&mut self, err: &mut dyn Write, done: usize, totals: &Totals) {
        if !self.shown {
            return;
        }
        let head = format!("BACKFILL {} {done}/{}", self.trigger, self.total);
        let _ = write!(
            err,
            "\r\x1b[2K{}  {} started, {} already started, {}",
            self.style.paint(Tone::Active, &head),
            totals.started,
            totals.existing,
            render::elapsed(self.began.elapsed())
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

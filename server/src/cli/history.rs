//! `stepline history EXEC [--follow]`: an execution's events as a readable
//! timeline (time, time since the start, event, state, a short input,
//! output or error), and `--follow` to tail a running one until it ends.
//!
//! Both read `GET /v1/executions/{machine}/{name}/history` page by page;
//! following adds the server's long poll (`wait`), so a quiet execution
//! costs one request per [`LONG_POLL`] rather than a busy loop. `start
//! --wait` uses the same [`follow`] for its progress line.

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::client::{Api, ClientError, ExecutionId, Output, Remote, finish, print_json};
use super::render::{self, Style, Tone};

/// How long one long poll may be held by the server (its maximum is 60 s).
pub const LONG_POLL: Duration = Duration::from_secs(20);
/// How much of a payload or error a timeline line shows.
const PREVIEW: usize = 80;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// MACHINE/NAME, or the execution's ARN.
    execution: String,
    /// Keep printing events as they happen, until the execution ends.
    #[arg(long, short = 'f')]
    follow: bool,
    #[command(flatten)]
    remote: Remote,
}

pub fn run(args: &Args, stdout: &mut dyn Write, stderr: &mut dyn Write) -> u8 {
    let result = execute(args, stdout).map(|()| 0);
    finish("history", result, stderr)
}

fn execute(args: &Args, out: &mut dyn Write) -> Result<(), ClientError> {
    let id = ExecutionId::parse(&args.execution)?;
    let api = Api::new(&args.remote)?;
    let json = args.remote.output == Output::Json;
    let mut timeline = Timeline::new(Style::for_stdout());
    let wait = args.follow.then_some(LONG_POLL);
    if json && !args.follow {
        let mut events = Vec::new();
        let status = follow(&api, &id, None, |seen| {
            if let Seen::Event(e) = seen {
                events.push(e.clone());
            }
        })?;
        print_json(
            out,
            &json!({"execution": id.to_string(), "status": status, "events": events}),
        );
        return Ok(());
    }
    let status = follow(&api, &id, wait, |seen| {
        let Seen::Event(event) = seen else {
            return;
        };
        if json {
            // JSON Lines: one event per line, written as it arrives.
            let _ = writeln!(out, "{event}");
        } else {
            let _ = writeln!(out, "{}", timeline.line(event));
        }
        let _ = out.flush();
    })?;
    if !json {
        let style = Style::for_stdout();
        let _ = writeln!(
            out,
            "{} {}",
            style.paint(Tone::Dim, "status:"),
            style.paint(render::status_tone(&status), &status)
        );
    }
    Ok(())
}

/// What [`follow`] reports.
pub enum Seen<'a> {
    /// The next event, in order.
    Event(&'a Value),
    /// A page was read (after its events): at least every long poll, so a
    /// progress line can update its clock while nothing happens.
    Page,
}

/// Reads an execution's history from the start, reporting each event in
/// order; with `wait` (the longest long poll), keeps polling until the
/// execution has ended and its last event was read. Returns the
/// execution's status as of the last page.
pub fn follow(
    api: &Api,
    id: &ExecutionId,
    wait: Option<Duration>,
    mut on: impl FnMut(Seen<'_>),
) -> Result<String, ClientError> {
    let mut after: u64 = 0;
    loop {
        let mut path = format!("{}/history?after={after}&limit=1000", id.path());
        let page = match wait {
            Some(wait) => {
                path.push_str(&format!("&wait={}", wait.as_secs().max(1)));
                api.long_poll(&path, wait)?
            }
            None => api.get(&path)?,
        };
        let bad = |reason: &str| ClientError::BadAnswer {
            what: format!("GET {path}"),
            reason: reason.to_owned(),
        };
        let events = page["events"]
            .as_array()
            .ok_or_else(|| bad("no 'events' list"))?;
        let status = page["status"]
            .as_str()
            .ok_or_else(|| bad("no 'status'"))?
            .to_owned();
        let last = page["lastEventId"]
            .as_u64()
            .ok_or_else(|| bad("no 'lastEventId'"))?;
        for event in events {
            on(Seen::Event(event));
        }
        on(Seen::Page);
        let more = page["more"].as_bool().unwrap_or(false);
        // Guard against a server that says "more" without moving on.
        if more && last <= after && events.is_empty() {
            return Err(bad("'more' events, but none were sent"));
        }
        after = last;
        if !more && (wait.is_none() || status != "RUNNING") {
            return Ok(status);
        }
    }
}

/// Turns events into timeline lines. Events of a task carry no state name
/// of their own; they take it from the event they follow
/// (`previousEventId`), which is right inside Parallel branches too.
pub struct Timeline {
    style: Style,
    start: Option<DateTime<Utc>>,
    states: HashMap<u64, String>,
}

impl Timeline {
    pub fn new(style: Style) -> Self {
        Self {
            style,
            start: None,
            states: HashMap::new(),
        }
    }

    /// The state an event belongs to, remembered for the events after it.
    pub fn state_of(&mut self, event: &Value) -> String {
        let kind = event["type"].as_str().unwrap_or("");
        let own = event["details"]["name"].as_str().map(str::to_owned);
        let state = if kind.starts_with("Execution") {
            String::new()
        } else {
            own.or_else(|| {
                event["previousEventId"]
                    .as_u64()
                    .and_then(|p| self.states.get(&p).cloned())
            })
            .unwrap_or_default()
        };
        if let Some(id) = event["id"].as_u64() {
            if !state.is_empty() {
                self.states.insert(id, state.clone());
            }
        }
        state
    }

    pub fn line(&mut self, event: &Value) -> String {
        let kind = event["type"].as_str().unwrap_or("?");
        let time = render::parse_time(&event["timestamp"]);
        let start = *self.start.get_or_insert(time.unwrap_or_default());
        let clock = time.map_or_else(String::new, |t| t.format("%H:%M:%S%.3f").to_string());
        let since = time.map_or_else(String::new, |t| format!("+{}", render::duration(start, t)));
        let state = self.state_of(event);
        let detail = detail(&event["details"]);
        let kind_cell = format!("{kind:<28}");
        let kind_cell = match render::event_tone(kind) {
            Some(tone) => self.style.paint(tone, &kind_cell),
            None => kind_cell,
        };
        // Padded before painting: colour codes have no width.
        let line = format!(
            "{}  {since:>9}  {kind_cell} {} {detail}",
            self.style.paint(Tone::Dim, &clock),
            self.style.paint(Tone::Bold, &format!("{state:<20}")),
        );
        line.trim_end().to_owned()
    }
}

/// The one thing worth showing about an event: its error, output, input,
/// resource or item index.
fn detail(details: &Value) -> String {
    if let Some(error) = details["error"].as_str() {
        return match details["cause"].as_str() {
            Some(cause) => render::shorten(&format!("error {error}: {cause}"), PREVIEW),
            None => format!("error {error}"),
        };
    }
    if let Some(cause) = details["cause"].as_str() {
        return render::shorten(&format!("cause {cause}"), PREVIEW);
    }
    for key in ["output", "input"] {
        if let Some(value) = details.get(key) {
            return format!("{key} {}", render::preview(value, PREVIEW));
        }
    }
    if let Some(resource) = details["resource"].as_str() {
        // Task events split a resource as AWS does (`lambda` + `invoke`).
        return match details["resourceType"].as_str() {
            Some(kind) => format!("resource {kind}:{resource}"),
            None => format!("resource {resource}"),
        };
    }
    if let Some(index) = details["index"].as_u64() {
        return format!("item {index}");
    }
    if let Some(length) = details["length"].as_u64() {
        return format!("{length} item(s)");
    }
    String::new()
}

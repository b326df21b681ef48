//! `stepline history EXEC [--follow] [--wide]`: an execution's events as a
//! readable timeline (time, time since the start, event, state, a short
//! input, output or error, fitted to the terminal unless `--wide`), and
//! `--follow` to tail a running one until it ends.
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

use super::client::{Api, ClientError, ExecutionId, Remote, finish, print_json};
use super::render::{self, Stream, Style, Tone, Zone};

/// How long one long poll may be held by the server (its maximum is 60 s).
pub const LONG_POLL: Duration = Duration::from_secs(20);
/// How much of a payload or error a timeline line shows when there is no
/// terminal to fit (a pipe, a file) and no `--wide`.
const PREVIEW: usize = 80;
/// The least a detail is given on a narrow terminal.
const MIN_PREVIEW: usize = 20;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// MACHINE/NAME, or the execution's ARN.
    execution: String,
    /// Keep printing events as they happen, until the execution ends.
    #[arg(long, short = 'f')]
    follow: bool,
    /// Show every detail whole, however long; without it, details are cut
    /// to fit the terminal ($COLUMNS, else its width; 80 characters when
    /// the output is not a terminal).
    #[arg(long)]
    wide: bool,
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
    let json = args.remote.present.json();
    let fit = if args.wide {
        Fit::Whole
    } else {
        render::width(Stream::Stdout).map_or(Fit::Chars(PREVIEW), Fit::Line)
    };
    let mut timeline = Timeline::new(Style::for_stdout())
        .zone(args.remote.present.zone())
        .fit(fit);
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
            if let Some(header) = timeline.header(event) {
                let _ = writeln!(out, "{header}");
            }
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

/// How much of an event's detail a timeline line shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// All of it (`--wide`).
    Whole,
    /// Whatever keeps the line within this many columns (a terminal).
    Line(usize),
    /// At most this many characters (no terminal to fit).
    Chars(usize),
}

/// Turns events into timeline lines, and says which state each event
/// belongs to.
///
/// Task events carry no state name of their own; they take it from the
/// event they follow (`previousEventId`), which is right inside Parallel
/// branches too. The events of a Parallel or Map state as a whole
/// (ParallelStateFailed, MapStateSucceeded, MapRunStarted...) follow an
/// event inside a branch or an iteration, so they are labelled with the
/// Parallel or Map state that encloses that event instead: each event
/// remembers its enclosing Parallel or Map (a scope), opened by
/// ParallelStateStarted or MapStateStarted and closed by the state's end.
pub struct Timeline {
    style: Style,
    zone: Zone,
    fit: Fit,
    start: Option<DateTime<Utc>>,
    states: HashMap<u64, String>,
    /// The innermost open Parallel or Map of each event seen, as an index
    /// into `scopes`.
    scope_of: HashMap<u64, usize>,
    /// Every Parallel or Map run seen: its state's name and the scope it
    /// is in.
    scopes: Vec<(String, Option<usize>)>,
    header_written: bool,
}

/// What an event does to the Parallel or Map it is in.
enum ScopeEvent {
    /// ParallelStateStarted, MapStateStarted: a scope opens.
    Opens,
    /// ParallelState{Succeeded,Failed,Aborted}, MapState{...}: the scope's
    /// state ends.
    Closes,
    /// MapRun*: about the Map, inside it.
    About,
    /// Anything else.
    None,
}

fn scope_event(kind: &str) -> ScopeEvent {
    match kind {
        "ParallelStateStarted" | "MapStateStarted" => ScopeEvent::Opens,
        "ParallelStateSucceeded"
        | "ParallelStateFailed"
        | "ParallelStateAborted"
        | "MapStateSucceeded"
        | "MapStateFailed"
        | "MapStateAborted" => ScopeEvent::Closes,
        k if k.starts_with("MapRun") => ScopeEvent::About,
        _ => ScopeEvent::None,
    }
}

/// The width of the columns before the detail: clock (wide enough for its
/// heading, `TIME (+05:30)`), since, event type, state (padded as
/// [`Timeline::line`] pads them).
const CLOCK_WIDTH: usize = 13;
const SINCE_WIDTH: usize = 9;
const KIND_WIDTH: usize = 28;
const STATE_WIDTH: usize = 20;

impl Timeline {
    pub fn new(style: Style) -> Self {
        Self {
            style,
            zone: Zone::Utc,
            fit: Fit::Chars(PREVIEW),
            start: None,
            states: HashMap::new(),
            scope_of: HashMap::new(),
            scopes: Vec::new(),
            header_written: false,
        }
    }

    pub fn zone(mut self, zone: Zone) -> Self {
        self.zone = zone;
        self
    }

    pub fn fit(mut self, fit: Fit) -> Self {
        self.fit = fit;
        self
    }

    /// The state an event belongs to, remembered for the events after it.
    pub fn state_of(&mut self, event: &Value) -> String {
        let kind = event["type"].as_str().unwrap_or("");
        let own = event["details"]["name"].as_str().map(str::to_owned);
        let previous = event["previousEventId"].as_u64();
        let previous_state = || previous.and_then(|p| self.states.get(&p).cloned());
        let inherited = previous.and_then(|p| self.scope_of.get(&p).copied());
        let (state, scope) = if kind.starts_with("Execution") {
            (String::new(), None)
        } else {
            match scope_event(kind) {
                // After the state's Entered event (or its failure, when
                // a Retry runs it again): the state's own name.
                ScopeEvent::Opens => {
                    let name = previous_state().unwrap_or_default();
                    self.scopes.push((name.clone(), inherited));
                    (name, Some(self.scopes.len() - 1))
                }
                ScopeEvent::Closes => match inherited {
                    Some(i) => (self.scopes[i].0.clone(), self.scopes[i].1),
                    None => (previous_state().unwrap_or_default(), None),
                },
                ScopeEvent::About => match inherited {
                    Some(i) => (self.scopes[i].0.clone(), Some(i)),
                    None => (previous_state().unwrap_or_default(), None),
                },
                ScopeEvent::None => {
                    let state = own.clone().or_else(previous_state).unwrap_or_default();
                    // A Parallel or Map state's Exited event follows the
                    // last event inside it: it leaves the scope.
                    let closes = kind.ends_with("StateExited")
                        && inherited.is_some_and(|i| Some(&self.scopes[i].0) == own.as_ref());
                    match inherited {
                        Some(i) if closes => (state, self.scopes[i].1),
                        _ => (state, inherited),
                    }
                }
            }
        };
        if let Some(id) = event["id"].as_u64() {
            if !state.is_empty() {
                self.states.insert(id, state.clone());
            }
            if let Some(scope) = scope {
                self.scope_of.insert(id, scope);
            }
        }
        state
    }

    /// The column headings, once, before the first line: the clock's
    /// heading names its zone.
    pub fn header(&mut self, event: &Value) -> Option<String> {
        if self.header_written {
            return None;
        }
        self.header_written = true;
        let at = render::parse_time(&event["timestamp"]).unwrap_or_default();
        let clock = format!("TIME ({})", self.zone.label(at));
        let line = format!(
            "{clock:<CLOCK_WIDTH$}  {:>SINCE_WIDTH$}  {:<KIND_WIDTH$} {:<STATE_WIDTH$} DETAIL",
            "SINCE", "EVENT", "STATE"
        );
        Some(self.style.paint(Tone::Bold, &line))
    }

    pub fn line(&mut self, event: &Value) -> String {
        let kind = event["type"].as_str().unwrap_or("?");
        let time = render::parse_time(&event["timestamp"]);
        let start = *self.start.get_or_insert(time.unwrap_or_default());
        let clock = time.map_or_else(String::new, |t| self.zone.clock(t));
        let since = time.map_or_else(String::new, |t| format!("+{}", render::duration(start, t)));
        let state = self.state_of(event);
        let state_cell = format!("{state:<STATE_WIDTH$}");
        let room = match self.fit {
            Fit::Whole => usize::MAX,
            Fit::Chars(n) => n,
            Fit::Line(columns) => {
                let used = CLOCK_WIDTH + 2 + SINCE_WIDTH + 2 + KIND_WIDTH.max(kind.len()) + 1;
                columns
                    .saturating_sub(used + state_cell.chars().count() + 1)
                    .max(MIN_PREVIEW)
            }
        };
        let detail = detail(&event["details"], room);
        let kind_cell = format!("{kind:<KIND_WIDTH$}");
        let kind_cell = match render::event_tone(kind) {
            Some(tone) => self.style.paint(tone, &kind_cell),
            None => kind_cell,
        };
        // Padded before painting: colour codes have no width.
        let line = format!(
            "{}  {since:>SINCE_WIDTH$}  {kind_cell} {} {detail}",
            self.style
                .paint(Tone::Dim, &format!("{clock:<CLOCK_WIDTH$}")),
            self.style.paint(Tone::Bold, &state_cell),
        );
        line.trim_end().to_owned()
    }
}

/// The one thing worth showing about an event: its error, output, input,
/// pool wait, resource or item index.
fn detail(details: &Value, room: usize) -> String {
    if let Some(error) = details["error"].as_str() {
        return match details["cause"].as_str() {
            Some(cause) => render::shorten(&format!("error {error}: {cause}"), room),
            None => format!("error {error}"),
        };
    }
    if let Some(cause) = details["cause"].as_str() {
        return render::shorten(&format!("cause {cause}"), room);
    }
    for key in ["output", "input"] {
        if let Some(value) = details.get(key) {
            let room = room.saturating_sub(key.len() + 1).max(1);
            return format!("{key} {}", render::preview(value, room));
        }
    }
    if let Some(pool) = details["pool"]["name"].as_str() {
        // A pooled task's start: which pool, and how long it waited.
        let waited = details["pool"]["waitedMs"].as_i64().unwrap_or(0);
        return format!("pool {pool}, waited {}", render::duration_ms(waited));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: u64, previous: u64, kind: &str, details: Value) -> Value {
        json!({"id": id, "previousEventId": previous, "type": kind,
               "timestamp": "2026-12-07T17:52:03.000Z", "details": details})
    }

    /// The states a timeline gives each event of a history.
    fn labels(events: &[Value]) -> Vec<String> {
        let mut timeline = Timeline::new(Style { colour: false });
        events.iter().map(|e| timeline.state_of(e)).collect()
    }

    #[test]
    fn parallel_and_map_events_are_labelled_with_their_state() {
        let name = |n: &str| json!({"name": n});
        // Fan (Parallel): branch 1 runs a Map "Each" with one iteration,
        // branch 2 fails in "Boom"; the failure is caught into "Recover".
        let events = [
            event(1, 0, "ExecutionStarted", json!({})),
            event(2, 1, "ParallelStateEntered", name("Fan")),
            event(3, 2, "ParallelStateStarted", json!({})),
            event(4, 3, "MapStateEntered", name("Each")),
            event(5, 3, "FailStateEntered", name("Boom")),
            event(6, 4, "MapStateStarted", json!({"length": 1})),
            event(
                7,
                6,
                "MapIterationStarted",
                json!({"name": "Each", "index": 0}),
            ),
            event(8, 7, "PassStateEntered", name("One")),
            event(9, 8, "PassStateExited", name("One")),
            event(
                10,
                9,
                "MapIterationSucceeded",
                json!({"name": "Each", "index": 0}),
            ),
            event(11, 10, "MapStateSucceeded", json!({})),
            event(12, 10, "MapStateExited", name("Each")),
            event(13, 5, "ParallelStateFailed", json!({"error": "E"})),
            event(14, 13, "PassStateEntered", name("Recover")),
            event(15, 14, "TaskScheduled", json!({"resource": "x"})),
            event(16, 15, "ExecutionFailed", json!({"error": "E"})),
        ];
        assert_eq!(
            labels(&events),
            [
                "", "Fan", "Fan", "Each", "Boom", "Each", "Each", "One", "One", "Each", "Each",
                "Each", "Fan", "Recover", "Recover", ""
            ]
        );
    }

    #[test]
    fn details_fit_the_room_they_are_given() {
        let long = json!({"output": {"text": "x".repeat(300)}});
        let e = event(
            2,
            1,
            "PassStateExited",
            json!({"name": "A", "output": long["output"]}),
        );
        let line = |fit| {
            let mut t = Timeline::new(Style { colour: false }).fit(fit);
            t.line(&e)
        };
        let whole = line(Fit::Whole);
        assert!(
            whole.ends_with(&format!("{}\"}}", "x".repeat(300))),
            "{whole}"
        );
        assert_eq!(
            line(Fit::Chars(80)).chars().count(),
            76 + 80,
            "{}",
            line(Fit::Chars(80))
        );
        assert_eq!(line(Fit::Line(200)).chars().count(), 200);
        // Too narrow a terminal still shows a little.
        assert!(line(Fit::Line(10)).ends_with('…'));
    }

    #[test]
    fn the_header_names_the_zone_once() {
        let mut t = Timeline::new(Style { colour: false });
        let e = event(1, 0, "ExecutionStarted", json!({}));
        let header = t.header(&e).expect("a header");
        assert!(header.starts_with("TIME (UTC)"), "{header}");
        assert!(header.ends_with("DETAIL"), "{header}");
        assert_eq!(t.header(&e), None);
    }
}

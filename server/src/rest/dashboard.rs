//! `GET /v1/dashboard`: per state machine, what started, runs and ended
//! over the current clock hour, the last 24 and the last 168, with
//! success rates and duration percentiles, and the hour-by-hour counts
//! the page draws. Everything comes from the counts the store keeps
//! (`stepline_store::stats`): at most 168 buckets and a total per machine,
//! never a read of executions.

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use stepline_store::stats::{MachineStats, StatsBucket, hour_of};

use super::error::RestError;
use super::machines::{json_response, machine_arn};
use super::request::Query;
use super::shapes::time;
use crate::http::App;

/// The windows shown, by name, in clock hours (the current one included).
const WINDOWS: [(&str, i64); 3] = [("hour", 1), ("day", 24), ("week", 168)];

/// The longest range `from`/`to` may ask for, in hours (a year).
const MAX_RANGE_HOURS: i64 = 24 * 366;

/// `GET /v1/dashboard[?machine=NAME][&from=TIME&to=TIME]`. With `from`
/// (and `to`, now by default) each machine also has a `range` window over
/// the clock hours those times fall in: the executions page's counts.
pub async fn dashboard(State(app): State<App>, uri: Uri) -> Result<Response, RestError> {
    let query = Query::parse(&uri, &["machine", "from", "to"])?;
    let now = app.engine.now();
    let current = hour_of(now);
    let range = match (query.get("from"), query.get("to")) {
        (None, None) => None,
        (from, to) => {
            let from = from.map(|t| parse_time("from", t)).transpose()?;
            let to = to.map(|t| parse_time("to", t)).transpose()?.unwrap_or(now);
            let from = from.map_or(hour_of(to) - 167, hour_of);
            let to = hour_of(to);
            if from > to {
                return Err(RestError::invalid("'from' is after 'to'"));
            }
            if to - from >= MAX_RANGE_HOURS {
                return Err(RestError::invalid(format!(
                    "a range covers at most {MAX_RANGE_HOURS} hours"
                )));
            }
            Some((from, to))
        }
    };
    let machines = match query.get("machine") {
        Some(name) => vec![
            app.engine
                .describe_state_machine(&machine_arn(&app.engine, name))?,
        ],
        None => app.engine.list_state_machines()?,
    };
    let mut out = Vec::with_capacity(machines.len());
    for machine in &machines {
        let week_start = current - 167;
        let (from, to) = match range {
            Some((f, t)) => (f.min(week_start), t.max(current)),
            None => (week_start, current),
        };
        let (buckets, total) = app.engine.machine_stats(&machine.arn, from, to)?;
        let mut windows = serde_json::Map::new();
        for (name, hours) in WINDOWS {
            windows.insert(
                name.into(),
                window(&sum(&buckets, current - hours + 1, current)),
            );
        }
        if let Some((f, t)) = range {
            windows.insert("range".into(), window(&sum(&buckets, f, t)));
        }
        let hours: Vec<Value> = buckets
            .iter()
            .filter(|b| b.hour >= week_start && b.hour <= current)
            .map(|b| {
                let s = &b.stats;
                json!({
                    "hour": hour_time(b.hour),
                    "started": s.started,
                    "succeeded": s.succeeded,
                    "failed": s.failed,
                    "timedOut": s.timed_out,
                    "aborted": s.aborted,
                })
            })
            .collect();
        out.push(json!({
            "name": machine.name,
            "arn": machine.arn,
            "running": total.running(),
            "windows": windows,
            "hours": hours,
        }));
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "now": time(now),
            "hour": hour_time(current),
            "stateMachines": out,
        }),
    ))
}

fn parse_time(name: &str, text: &str) -> Result<DateTime<Utc>, RestError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            RestError::invalid(format!(
                "the query parameter '{name}' must be an RFC 3339 time, not '{text}'"
            ))
        })
}

/// The start of an hour (from the epoch) as a time.
fn hour_time(hour: i64) -> Value {
    DateTime::from_timestamp(hour * 3600, 0).map_or(Value::Null, time)
}

/// The buckets with an hour in `from..=to`, added up.
fn sum(buckets: &[StatsBucket], from: i64, to: i64) -> MachineStats {
    let mut total = MachineStats::default();
    for b in buckets.iter().filter(|b| b.hour >= from && b.hour <= to) {
        total.add(&b.stats);
    }
    total
}

/// A window as the API shows it.
fn window(s: &MachineStats) -> Value {
    let ended = s.ended();
    let rate = (ended > 0).then(|| s.succeeded as f64 / ended as f64);
    json!({
        "started": s.started,
        "redriven": s.redriven,
        "finished": ended,
        "succeeded": s.succeeded,
        "failed": s.failed,
        "timedOut": s.timed_out,
        "aborted": s.aborted,
        "successRate": rate,
        "durationP50Ms": s.percentile(0.50).map(|ms| ms.round()),
        "durationP95Ms": s.percentile(0.95).map(|ms| ms.round()),
    })
}

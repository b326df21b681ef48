//! Following an execution: its history after a given event, paged, with an
//! optional long poll (`?wait=SECONDS`), or as a stream of server-sent
//! events that ends when the execution has ended and every event was sent.
//!
//! The engine has no notification of new events (only of an execution's
//! end), so both wait by looking at the history length every
//! `POLL_INTERVAL`; the look is two key reads. Both stop early when the
//! server shuts down, so they never hold graceful shutdown open.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use stepline_store::ExecutionStatus;
use tokio::sync::mpsc;

use super::error::RestError;
use super::executions::execution_arn;
use super::machines::{json_response, page_limit};
use super::request::Query;
use super::shapes::{event_json, execution_detail};
use crate::http::App;

const POLL_INTERVAL: Duration = Duration::from_millis(25);
/// The longest long poll, in seconds.
pub const MAX_WAIT: u64 = 60;
/// Events read from the store at a time by a stream.
const STREAM_BATCH: u64 = 500;

/// Percent-encodes a path segment (for Location headers).
pub fn encode_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn wants_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"))
}

/// Sleeps one poll interval; false when the server is stopping.
async fn pause(app: &mut App) -> bool {
    if *app.stopping.borrow() {
        return false;
    }
    tokio::select! {
        () = tokio::time::sleep(POLL_INTERVAL) => true,
        _ = app.stopping.changed() => false,
    }
}

/// `GET /v1/executions/{machine}/{name}/history[?after=ID&limit=N&wait=S]`
///
/// Events with an id above `after` (default 0), at most `limit`. With
/// `wait`, when there is no such event yet and the execution is running,
/// the answer waits up to `wait` seconds for one. The answer says the
/// execution's `status`, the `lastEventId` to pass as the next `after`,
/// and whether `more` events are already there. With `Accept:
/// text/event-stream` the answer is the event stream of `/events`.
pub async fn history(
    State(mut app): State<App>,
    path: Result<Path<(String, String)>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, RestError> {
    let (machine, name) = super::path_param(path)?;
    if wants_stream(&headers) {
        return events(State(app), Ok(Path((machine, name))), uri, headers).await;
    }
    let query = Query::parse(&uri, &["after", "limit", "wait"])?;
    let after = query.number("after", u64::MAX)?.unwrap_or(0);
    let limit = page_limit(&query)? as u64;
    let wait = query.number("wait", MAX_WAIT)?.unwrap_or(0);
    let arn = execution_arn(&app.engine, &machine, &name);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    let (record, len) = loop {
        // The record first: once it says ended, the length read after it
        // includes the last event.
        let record = app.engine.describe_execution(&arn)?;
        let len = app.engine.history_len(&arn)?;
        if len > after
            || record.status != ExecutionStatus::Running
            || tokio::time::Instant::now() >= deadline
            || !pause(&mut app).await
        {
            break (record, len);
        }
    };
    let to = len.min(after.saturating_add(limit));
    let events = if to > after {
        app.engine.history(&arn, after + 1, to)?
    } else {
        Vec::new()
    };
    let last = events.last().map_or(after.min(len), |e| e.id);
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "events": events.iter().map(event_json).collect::<Vec<_>>(),
            "status": record.status.as_str(),
            "lastEventId": last,
            "more": to < len,
        }),
    ))
}

/// The receiving end of a stream's channel, as the `Stream` that `Sse`
/// takes.
struct Events(mpsc::Receiver<Event>);

impl futures_core::Stream for Events {
    type Item = Result<Event, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|event| event.map(Ok))
    }
}

/// `GET /v1/executions/{machine}/{name}/events[?after=ID]`: server-sent
/// events. Each history event is one message (`id:` its event id, `data:`
/// the event as in `/history`); when the execution has ended and every
/// event was sent, one `event: end` message carries the execution, and the
/// stream closes. A reconnecting client's `Last-Event-ID` header resumes
/// after the event it names.
pub async fn events(
    State(app): State<App>,
    path: Result<Path<(String, String)>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, RestError> {
    let (machine, name) = super::path_param(path)?;
    let query = Query::parse(&uri, &["after"])?;
    let mut after = query.number("after", u64::MAX)?.unwrap_or(0);
    if let Some(last) = headers.get("last-event-id") {
        after = last
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| RestError::invalid("the Last-Event-ID header is not an event id"))?;
    }
    let arn = execution_arn(&app.engine, &machine, &name);
    // Answer 404 now, before the stream starts.
    app.engine.describe_execution(&arn)?;
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(stream_events(app, arn, after, tx));
    Ok(Sse::new(Events(rx))
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// Feeds one stream until the execution has ended, the client has gone, or
/// the server stops.
async fn stream_events(mut app: App, arn: String, mut sent: u64, tx: mpsc::Sender<Event>) {
    loop {
        let Ok(record) = app.engine.describe_execution(&arn) else {
            return;
        };
        let Ok(len) = app.engine.history_len(&arn) else {
            return;
        };
        if len > sent {
            let to = len.min(sent.saturating_add(STREAM_BATCH));
            let Ok(events) = app.engine.history(&arn, sent + 1, to) else {
                return;
            };
            for event in &events {
                let message = Event::default()
                    .id(event.id.to_string())
                    .data(event_json(event).to_string());
                if tx.send(message).await.is_err() {
                    return;
                }
                sent = event.id;
            }
            if events.is_empty() {
                // The store says there are more events than it returns;
                // do not spin.
                sent = to;
            }
            continue;
        }
        if record.status != ExecutionStatus::Running {
            let end = Event::default()
                .event("end")
                .data(execution_detail(&record).to_string());
            let _ = tx.send(end).await;
            return;
        }
        tokio::select! {
            keep_going = pause(&mut app) => if !keep_going { return; },
            () = tx.closed() => return,
        }
    }
}

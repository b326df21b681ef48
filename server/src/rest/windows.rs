//! `GET /v1/windows`: each state machine's execution windows
//! (`[[windows]]`), whether they are open, when the next opens, and what
//! they hold now (executions held, tasks waiting for a window).

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use serde_json::{Value, json};

use super::error::RestError;
use super::machines::json_response;
use super::request::Query;
use super::shapes::time;
use crate::http::App;

pub async fn describe(State(app): State<App>, uri: Uri) -> Result<Response, RestError> {
    Query::parse(&uri, &[])?;
    let engine = &app.engine;
    let now = engine.now();
    let held = engine.held_by_machine();
    let draining = engine.draining_by_machine();
    let mut rules: Vec<_> = engine.window_rules().into_iter().collect();
    rules.sort_by(|a, b| a.0.cmp(&b.0));
    let windows: Vec<Value> = rules
        .into_iter()
        .map(|(name, rule)| {
            json!({
                "stateMachine": name,
                "windows": rule.calendar.describe(),
                "outside": rule.outside.as_str(),
                "drain": rule.drain,
                "open": rule.calendar.is_open(now),
                "nextOpen": rule.calendar.next_open(now).map(time),
                "held": held.get(&name).copied().unwrap_or(0),
                "drainingTasks": draining.get(&name).copied().unwrap_or(0),
            })
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({ "windows": windows }),
    ))
}

//! `GET /v1/executions/{machine}/{name}/logs`: what the execution's
//! process tasks wrote, per attempt (stderr, and stdout of failed
//! attempts), oldest first. Bounded by the engine: the last 64 KiB of each
//! text, the last 100 attempts of an execution.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use serde_json::{Value, json};
use stepline_store::TaskLogRecord;

use super::error::RestError;
use super::executions::execution_arn;
use super::machines::json_response;
use super::request::Query;
use crate::http::App;

pub async fn logs(
    State(app): State<App>,
    path: Result<Path<(String, String)>, PathRejection>,
    uri: Uri,
) -> Result<Response, RestError> {
    let (machine, name) = super::path_param(path)?;
    Query::parse(&uri, &[])?;
    let arn = execution_arn(&app.engine, &machine, &name);
    let logs = app.engine.task_logs(&arn)?;
    let attempts: Vec<Value> = logs.iter().map(attempt).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({ "executionArn": arn, "attempts": attempts }),
    ))
}

/// One attempt in the REST shape (camelCase, RFC 3339).
fn attempt(log: &TaskLogRecord) -> Value {
    let mut out = json!({
        "seq": log.seq,
        "stateName": log.state_name,
        "taskId": log.task,
        "attempt": log.attempt,
        "time": log.time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "outcome": if log.error.is_some() { "FAILED" } else { "SUCCEEDED" },
        "stderr": log.stderr,
        "truncated": log.truncated,
    });
    if let Some(error) = &log.error {
        out["error"] = json!(error);
    }
    if let Some(stdout) = &log.stdout {
        out["stdout"] = json!(stdout);
    }
    out
}

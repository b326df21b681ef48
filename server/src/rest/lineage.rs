//! Lineage: `GET /v1/lineage?path=PATH` (which execution wrote a file and
//! which read it) and `GET /v1/executions/{machine}/{name}/lineage` (what
//! one execution read and wrote). Bounded by the engine: at most 1000
//! records answer one question.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use serde_json::{Value, json};
use stepline_store::{LineageKind, LineageRecord};

use super::error::RestError;
use super::executions::execution_arn;
use super::machines::json_response;
use super::request::Query;
use super::shapes::time;
use crate::http::App;

pub async fn of_path(State(app): State<App>, uri: Uri) -> Result<Response, RestError> {
    let query = Query::parse(&uri, &["path"])?;
    let Some(path) = query.get("path") else {
        return Err(RestError::invalid(
            "the path parameter is required: GET /v1/lineage?path=/absolute/file",
        ));
    };
    let Some(normal) = stepline_runtime::lineage::normalise(path) else {
        return Err(RestError::invalid(format!(
            "'{path}' is not an absolute path"
        )));
    };
    let records = app.engine.lineage_of_path(&normal)?;
    let of = |kind: LineageKind| -> Vec<Value> {
        records
            .iter()
            .filter(|r| r.kind == kind)
            .map(|r| record(r, false))
            .collect()
    };
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "path": normal,
            "writtenBy": of(LineageKind::Wrote),
            "readBy": of(LineageKind::Read),
        }),
    ))
}

pub async fn of_execution(
    State(app): State<App>,
    path: Result<Path<(String, String)>, PathRejection>,
    uri: Uri,
) -> Result<Response, RestError> {
    let (machine, name) = super::path_param(path)?;
    Query::parse(&uri, &[])?;
    let arn = execution_arn(&app.engine, &machine, &name);
    let records = app.engine.lineage_of_execution(&arn)?;
    let of = |kind: LineageKind| -> Vec<Value> {
        records
            .iter()
            .filter(|r| r.kind == kind)
            .map(|r| record(r, true))
            .collect()
    };
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "executionArn": arn,
            "read": of(LineageKind::Read),
            "wrote": of(LineageKind::Wrote),
        }),
    ))
}

/// One record: the execution (by path) or the path (by execution), how it
/// was seen, the state, the time.
fn record(r: &LineageRecord, by_execution: bool) -> Value {
    let mut out = if by_execution {
        json!({ "path": r.path })
    } else {
        json!({ "executionArn": r.execution_arn })
    };
    out["via"] = json!(r.via);
    if let Some(state) = &r.state_name {
        out["stateName"] = json!(state);
    }
    out["time"] = time(r.time);
    out
}

//! The state machine an execution runs, as it was when the execution
//! started: AWS's DescribeStateMachineForExecution. The web page draws an
//! execution's graph from it, so an update of the state machine (or its
//! deletion) after the start does not redraw the graph wrongly.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;

use super::error::RestError;
use super::executions::addressed;
use super::machines::json_response;
use super::shapes::machine_detail;
use crate::http::App;

/// `GET /v1/executions/{machine}/{name}/state-machine`
pub async fn describe(
    State(app): State<App>,
    path: Result<Path<(String, String)>, PathRejection>,
    uri: Uri,
) -> Result<Response, RestError> {
    let execution = addressed(&app, path, &uri)?;
    let record = app
        .engine
        .describe_state_machine_revision(&execution.state_machine_arn, execution.revision)?;
    Ok(json_response(StatusCode::OK, &machine_detail(&record)))
}

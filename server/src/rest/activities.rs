//! Activities, read-only: what `stepline activities list` shows (workers
//! and their tasks use the AWS dialect).

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use serde_json::{Value, json};

use super::error::RestError;
use super::machines::json_response;
use super::request::Query;
use super::shapes::time;
use crate::http::App;

/// `GET /v1/activities`: every activity, by name.
pub async fn list(State(app): State<App>, uri: Uri) -> Result<Response, RestError> {
    Query::parse(&uri, &[])?;
    let mut list = app.engine.list_activities()?;
    list.sort_by(|a, b| a.name.cmp(&b.name));
    let activities: Vec<Value> = list
        .iter()
        .map(|a| json!({"name": a.name, "arn": a.arn, "creationDate": time(a.created)}))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"activities": activities}),
    ))
}

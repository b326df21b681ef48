//! `/v1/state-machines/{machine}/settings`: a state machine's
//! orchestration settings (`max_running`, expected durations, windows):
//! what is in effect and where each comes from (GET), set over the API
//! (PUT; `null` removes a field's value), or all the API's removed
//! (DELETE). The rules live in `crate::settings`.

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde_json::Value;

use super::error::RestError;
use super::machines::json_response;
use super::request::{Query, json_body, kind, parse_json};
use crate::http::App;
use crate::settings::SettingsError;

impl From<SettingsError> for RestError {
    fn from(e: SettingsError) -> Self {
        match e {
            SettingsError::Invalid(message) => RestError::invalid(message),
            SettingsError::SetInFile(message) => {
                RestError::new(StatusCode::CONFLICT, "SetInConfiguration", message)
            }
            SettingsError::Store(message) => RestError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                message,
            ),
            SettingsError::Engine(e) => e.into(),
        }
    }
}

pub async fn describe(
    State(app): State<App>,
    machine: Result<Path<String>, PathRejection>,
    uri: Uri,
) -> Result<Response, RestError> {
    let machine = super::path_param(machine)?;
    Query::parse(&uri, &[])?;
    let settings = app.triggers.machine_settings(&machine)?;
    Ok(json_response(StatusCode::OK, &settings))
}

pub async fn put(
    State(app): State<App>,
    machine: Result<Path<String>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, RestError> {
    let machine = super::path_param(machine)?;
    Query::parse(&uri, &[])?;
    let body = json_body(&headers, body).await?;
    let object = match parse_json(&body)? {
        Some(Value::Object(object)) => object,
        None => {
            return Err(RestError::invalid(
                "the body is empty; send {\"maxRunning\": ...} and/or the other settings",
            ));
        }
        Some(other) => {
            return Err(RestError::invalid(format!(
                "the body must be a JSON object of settings, not {}",
                kind(&other)
            )));
        }
    };
    let settings = app.triggers.put_machine_settings(&machine, &object).await?;
    Ok(json_response(StatusCode::OK, &settings))
}

pub async fn clear(
    State(app): State<App>,
    machine: Result<Path<String>, PathRejection>,
    uri: Uri,
) -> Result<Response, RestError> {
    let machine = super::path_param(machine)?;
    Query::parse(&uri, &[])?;
    let settings = app.triggers.clear_machine_settings(&machine).await?;
    Ok(json_response(StatusCode::OK, &settings))
}

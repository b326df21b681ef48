//! `POST /v1/state-machines/{machine}/versions`: publish a revision of a
//! state machine as a version (AWS's PublishStateMachineVersion, the same
//! engine call). The authoring page's "and publish it as a version" calls
//! it with the revision it has just saved, so what is published is what
//! was saved even if someone updates the state machine meanwhile.

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Value, json};

use super::error::RestError;
use super::machines::{json_response, machine_arn};
use super::request::{Fields, Query, json_body, kind, parse_json};
use crate::http::App;

/// The longest description, as AWS.
const MAX_DESCRIPTION: usize = 256;

/// `{"description"?, "revision"?}` (or no body) to `201 {"name",
/// "version", "arn", "revision", "creationDate", "description"?}`. A
/// revision that is not the state machine's latest is `409 Conflict`; a
/// revision already published answers its version.
pub async fn publish(
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
        None => serde_json::Map::new(),
        Some(Value::Object(object)) => object,
        Some(other) => {
            return Err(RestError::invalid(format!(
                "the body must be an object ({{\"description\", \"revision\"}}), not {}",
                kind(&other)
            )));
        }
    };
    let fields = Fields::new(&object, &["description", "revision"])?;
    let description = fields.string("description")?;
    if description.is_some_and(|d| d.chars().count() > MAX_DESCRIPTION) {
        return Err(RestError::invalid(format!(
            "the description is longer than {MAX_DESCRIPTION} characters"
        )));
    }
    let revision = match fields.value("revision") {
        None => None,
        Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64(),
        Some(other) => {
            return Err(RestError::invalid(format!(
                "the field 'revision' must be a revision number, not {other}"
            )));
        }
    };
    let arn = machine_arn(&app.engine, &machine);
    let (version, created) = app
        .engine
        .publish_version(&arn, description, revision)
        .await?;
    let record = app.engine.describe_state_machine(&arn)?;
    let published = record.versions.get(&version);
    let mut answer = json!({
        "name": record.name,
        "version": version,
        "arn": format!("{arn}:{version}"),
        "revision": published.map_or(record.revision, |v| v.revision),
        "creationDate": created.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    });
    if let Some(d) = published.and_then(|v| v.description.as_deref()) {
        answer["description"] = json!(d);
    }
    Ok(json_response(StatusCode::CREATED, &answer))
}

//! State machines: create, list, describe, update, delete, and validation
//! of a definition without storing it.
//!
//! A definition travels in one of two ways. Verbatim, as the whole body
//! (`POST /v1/state-machines?name=NAME`, `PUT /v1/state-machines/NAME`):
//! the text is stored exactly as sent and every diagnostic's line:column
//! points into it. Or wrapped, as `{"name", "definition", "type",
//! "roleArn"}` where `definition` is the text or the definition object. A
//! body is wrapped when it is a JSON object without `StartAt` or `States`.

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use stepline_language::asl;
use stepline_runtime::Engine;
use stepline_store::WorkflowType;

use super::error::RestError;
use super::request::{Fields, MAX_DEFINITION_BYTES, Query, json_body, kind, parse_json};
use super::shapes::{diagnostic_json, machine_detail, machine_summary};
use crate::http::App;

/// Pages of lists: `limit` (default 100, at most 1000) and the signed
/// `next` token of the previous page.
const DEFAULT_LIMIT: u64 = 100;
const MAX_LIMIT: u64 = 1000;

pub fn machine_arn(engine: &Engine, name: &str) -> String {
    let c = engine.config();
    format!(
        "arn:aws:states:{}:{}:stateMachine:{name}",
        c.region, c.account
    )
}

/// JSON with a trailing newline (curl prints it on its own line).
pub fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        format!("{body}\n"),
    )
        .into_response()
}

/// A list's page size: `limit` (1..1000), or 100.
pub fn page_limit(query: &Query) -> Result<usize, RestError> {
    Ok(match query.number("limit", MAX_LIMIT)? {
        None => DEFAULT_LIMIT,
        Some(0) => {
            return Err(RestError::invalid(
                "the query parameter 'limit' must be at least 1",
            ));
        }
        Some(n) => n,
    } as usize)
}

/// A `next` token that is not one of ours, or not for this list.
pub fn invalid_token() -> RestError {
    RestError::new(
        StatusCode::BAD_REQUEST,
        "InvalidToken",
        "the 'next' token is not one this server issued for this list (tokens end when the server restarts)",
    )
}

/// One page of `items` by `limit` and `next`; the token of the next page.
pub fn page<T>(
    app: &App,
    query: &Query,
    scope: &str,
    items: Vec<T>,
) -> Result<(Vec<T>, Option<String>), RestError> {
    let limit = page_limit(query)?;
    app.tokens
        .page(scope, query.get("next"), limit, items)
        .ok_or_else(invalid_token)
}

/// What a create or update body carries.
#[derive(Debug, Default)]
struct Spec {
    name: Option<String>,
    definition: Option<String>,
    role_arn: Option<String>,
    workflow_type: Option<WorkflowType>,
}

fn workflow_type(text: &str) -> Result<WorkflowType, RestError> {
    match text {
        "STANDARD" => Ok(WorkflowType::Standard),
        "EXPRESS" => Ok(WorkflowType::Express),
        other => Err(RestError::invalid(format!(
            "the type must be STANDARD or EXPRESS, not '{other}'"
        ))),
    }
}

fn is_definition(object: &Map<String, Value>) -> bool {
    object.contains_key("StartAt") || object.contains_key("States")
}

/// Reads a create (`allowed` has `name` and `type`) or update body.
fn spec(body: &[u8], allowed: &[&str]) -> Result<Spec, RestError> {
    let parsed = match parse_json(body) {
        Ok(Some(Value::Object(object))) if !is_definition(&object) => Some(object),
        Ok(None) => {
            return Err(RestError::invalid(
                "the body is empty; send the definition, or {\"definition\": ...}",
            ));
        }
        // A definition, or text that is not JSON: the validator reports
        // what is wrong with it, at its line and column.
        _ => None,
    };
    let Some(object) = parsed else {
        let text = std::str::from_utf8(body)
            .map_err(|_| RestError::invalid("the definition is not UTF-8 text"))?;
        return Ok(Spec {
            definition: Some(text.to_owned()),
            ..Spec::default()
        });
    };
    let fields = Fields::new(&object, allowed)?;
    let definition = match fields.value("definition") {
        None => None,
        Some(Value::String(text)) => Some(text.clone()),
        Some(v @ Value::Object(_)) => Some(serde_json::to_string_pretty(v).map_err(|e| {
            RestError::invalid(format!("the definition cannot be written as text: {e}"))
        })?),
        Some(other) => {
            return Err(RestError::invalid(format!(
                "the field 'definition' must be the definition (an object) or its text (a string), not {}",
                kind(other)
            )));
        }
    };
    Ok(Spec {
        name: fields.string("name")?.map(str::to_owned),
        definition,
        role_arn: fields.string("roleArn")?.map(str::to_owned),
        workflow_type: fields.string("type")?.map(workflow_type).transpose()?,
    })
}

fn check_definition_size(definition: &str) -> Result<(), RestError> {
    if definition.len() > MAX_DEFINITION_BYTES {
        return Err(RestError::too_large(
            "DefinitionTooLarge",
            format!(
                "the definition is {} bytes; the limit is {MAX_DEFINITION_BYTES} bytes (1 MiB)",
                definition.len()
            ),
        ));
    }
    Ok(())
}

fn check_role(role: Option<&str>) -> Result<(), RestError> {
    if let Some(role) = role {
        if role.is_empty() || role.len() > 256 || !role.starts_with("arn:") {
            return Err(RestError::invalid(format!(
                "the roleArn must be an ARN of at most 256 characters, not '{role}'"
            )));
        }
    }
    Ok(())
}

/// `POST /v1/state-machines[?name=NAME&type=TYPE]`
pub async fn create(
    State(app): State<App>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, RestError> {
    let query = Query::parse(&uri, &["name", "type"])?;
    let body = json_body(&headers, body).await?;
    let mut spec = spec(&body, &["name", "definition", "type", "roleArn"])?;
    if let Some(name) = query.get("name") {
        if spec.name.as_deref().is_some_and(|n| n != name) {
            return Err(RestError::invalid(
                "the name is given twice, in the query and in the body, differently",
            ));
        }
        spec.name = Some(name.to_owned());
    }
    if let Some(t) = query.get("type") {
        spec.workflow_type = Some(workflow_type(t)?);
    }
    let Some(name) = spec.name else {
        return Err(RestError::invalid(
            "the state machine needs a name: POST /v1/state-machines?name=NAME with the definition as the body, or {\"name\": ..., \"definition\": ...}",
        ));
    };
    let Some(definition) = spec.definition else {
        return Err(RestError::invalid("the field 'definition' is missing"));
    };
    check_definition_size(&definition)?;
    check_role(spec.role_arn.as_deref())?;
    let record = app
        .engine
        .create_state_machine(
            &name,
            &definition,
            spec.role_arn.as_deref(),
            spec.workflow_type.unwrap_or(WorkflowType::Standard),
        )
        .await?;
    let mut response = json_response(StatusCode::CREATED, &machine_detail(&record));
    if let Ok(location) = header::HeaderValue::from_str(&format!(
        "/v1/state-machines/{}",
        super::follow::encode_segment(&record.name)
    )) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// `GET /v1/state-machines[?limit=N&next=TOKEN]`, ordered by name.
pub async fn list(State(app): State<App>, uri: Uri) -> Result<Response, RestError> {
    let query = Query::parse(&uri, &["limit", "next"])?;
    let mut machines = app.engine.list_state_machines()?;
    machines.sort_by(|a, b| a.name.cmp(&b.name));
    let (machines, next) = page(&app, &query, "rest:state-machines", machines)?;
    let mut body =
        json!({"stateMachines": machines.iter().map(machine_summary).collect::<Vec<_>>()});
    if let (Some(next), Value::Object(map)) = (next, &mut body) {
        map.insert("next".into(), json!(next));
    }
    Ok(json_response(StatusCode::OK, &body))
}

/// `GET /v1/state-machines/{machine}`
pub async fn describe(
    State(app): State<App>,
    machine: Result<Path<String>, PathRejection>,
    uri: Uri,
) -> Result<Response, RestError> {
    let machine = super::path_param(machine)?;
    Query::parse(&uri, &[])?;
    let record = app
        .engine
        .describe_state_machine(&machine_arn(&app.engine, &machine))?;
    Ok(json_response(StatusCode::OK, &machine_detail(&record)))
}

/// `PUT /v1/state-machines/{machine}`: a new definition (verbatim or
/// wrapped) and/or a new roleArn. Running executions keep their revision.
pub async fn update(
    State(app): State<App>,
    machine: Result<Path<String>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, RestError> {
    let machine = super::path_param(machine)?;
    Query::parse(&uri, &[])?;
    let body = json_body(&headers, body).await?;
    let spec = spec(&body, &["definition", "roleArn"])?;
    if spec.definition.is_none() && spec.role_arn.is_none() {
        return Err(RestError::invalid(
            "nothing to update: send a definition, or {\"definition\": ...} and/or {\"roleArn\": ...}",
        ));
    }
    if let Some(definition) = &spec.definition {
        check_definition_size(definition)?;
    }
    check_role(spec.role_arn.as_deref())?;
    let record = app
        .engine
        .update_state_machine(
            &machine_arn(&app.engine, &machine),
            spec.definition.as_deref(),
            spec.role_arn.as_deref(),
        )
        .await?;
    Ok(json_response(StatusCode::OK, &machine_detail(&record)))
}

/// `DELETE /v1/state-machines/{machine}`: 204, or 404 when there is none.
/// Running executions finish, as on AWS.
pub async fn remove(
    State(app): State<App>,
    machine: Result<Path<String>, PathRejection>,
    uri: Uri,
) -> Result<Response, RestError> {
    let machine = super::path_param(machine)?;
    Query::parse(&uri, &[])?;
    let arn = machine_arn(&app.engine, &machine);
    app.engine.describe_state_machine(&arn)?;
    app.engine.delete_state_machine(&arn).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /v1/validate`: the definition as the body; 200 with `valid` and
/// every diagnostic (errors and warnings), whatever the verdict.
pub async fn validate(uri: Uri, headers: HeaderMap, body: Body) -> Result<Response, RestError> {
    Query::parse(&uri, &[])?;
    let body = json_body(&headers, body).await?;
    if body.len() > MAX_DEFINITION_BYTES {
        return Err(RestError::too_large(
            "DefinitionTooLarge",
            format!(
                "the definition is {} bytes; the limit is {MAX_DEFINITION_BYTES} bytes (1 MiB)",
                body.len()
            ),
        ));
    }
    let validation = asl::validate(&body);
    let valid = validation.errors().next().is_none();
    let diagnostics: Vec<Value> = validation.diagnostics.iter().map(diagnostic_json).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"valid": valid, "diagnostics": diagnostics}),
    ))
}

//! Triggers: create, list, get, enable/disable, delete, backfill; and the
//! webhooks (`POST /v1/hooks/{name}`). Thin: each handler reads its request
//! strictly and calls `crate::triggers`.
//!
//! Request and response members are camelCase; the definition's fields are
//! the config file's (`state_machine` is `stateMachine` here). A webhook's
//! secret is never shown: `hasSecret` says there is one.

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use stepline_store::{TriggerRecord, TriggerStateRecord};

use super::error::RestError;
use super::machines::json_response;
use super::request::{Fields, Query, json_body, parse_json};
use super::shapes::time;
use crate::http::App;
use crate::triggers::hmac;
use crate::triggers::spec::TriggerSpec;
use crate::triggers::{Compiled, Kind, TriggerError, machine_arn, rfc3339};

/// The header whose value names a webhook's execution (one event, one
/// execution, however often it is delivered).
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// The definition's members, camelCase, and their config-file names.
const MEMBERS: &[(&str, &str)] = &[
    ("name", "name"),
    ("kind", "kind"),
    ("stateMachine", "state_machine"),
    ("enabled", "enabled"),
    ("input", "input"),
    ("schedule", "schedule"),
    ("timezone", "timezone"),
    ("catchUp", "catch_up"),
    ("secret", "secret"),
    ("signatureHeader", "signature_header"),
    ("directory", "directory"),
    ("glob", "glob"),
    ("stableMs", "stable_ms"),
    ("pollMs", "poll_ms"),
    ("maxInFlight", "max_in_flight"),
    ("moveWhenDone", "move_when_done"),
    ("finishedBy", "finished_by"),
    ("source", "source"),
    ("statuses", "statuses"),
    ("inputs", "inputs"),
    ("period", "period"),
    ("timeoutMinutes", "timeout_minutes"),
    ("windows", "windows"),
    ("outside", "outside"),
];

impl From<TriggerError> for RestError {
    fn from(e: TriggerError) -> Self {
        match e {
            TriggerError::NotFound(_) => {
                RestError::new(StatusCode::NOT_FOUND, "TriggerDoesNotExist", e.to_string())
            }
            TriggerError::AlreadyExists(_) => {
                RestError::new(StatusCode::CONFLICT, "TriggerAlreadyExists", e.to_string())
            }
            TriggerError::Invalid(m) => {
                RestError::new(StatusCode::BAD_REQUEST, "InvalidTrigger", m)
            }
            TriggerError::Engine(e) => e.into(),
        }
    }
}

/// A trigger and its state as the API shows them.
fn trigger_json(record: &TriggerRecord, state: &TriggerStateRecord) -> Value {
    let mut out = Map::new();
    if let Value::Object(spec) = &record.spec {
        for (camel, snake) in MEMBERS {
            if *snake == "secret" {
                continue;
            }
            if let Some(v) = spec.get(*snake) {
                out.insert((*camel).to_owned(), v.clone());
            }
        }
        if spec.get("kind").and_then(Value::as_str) == Some("webhook") {
            out.insert(
                "hasSecret".into(),
                Value::Bool(spec.get("secret").is_some_and(|s| !s.is_null())),
            );
        }
    }
    out.insert("enabled".into(), Value::Bool(record.enabled));
    out.insert("origin".into(), Value::String(record.origin.clone()));
    out.insert("created".into(), time(record.created));
    let opt_time = |t: Option<chrono::DateTime<chrono::Utc>>| t.map_or(Value::Null, time);
    out.insert("lastFired".into(), opt_time(state.last_fired));
    out.insert("nextFire".into(), opt_time(state.next_fire));
    out.insert(
        "lastError".into(),
        state.last_error.clone().map_or(Value::Null, Value::String),
    );
    out.insert(
        "lastExecutionArn".into(),
        state
            .last_execution
            .clone()
            .map_or(Value::Null, Value::String),
    );
    out.insert("fired".into(), json!(state.fired));
    // Missed deadlines raised and not yet delivered.
    out.insert("pendingAlerts".into(), json!(state.pending_alerts.len()));
    Value::Object(out)
}

/// A write's body parsed as JSON (`None` when it is empty).
async fn parsed_body(headers: &HeaderMap, body: Body) -> Result<Option<Value>, RestError> {
    parse_json(&json_body(headers, body).await?)
}

/// `POST /v1/triggers`: 201 with the trigger.
pub async fn create(
    State(app): State<App>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, RestError> {
    Query::parse(&uri, &[])?;
    let Some(Value::Object(object)) = parsed_body(&headers, body).await? else {
        return Err(RestError::invalid(
            "the body must be a JSON object describing the trigger",
        ));
    };
    let allowed: Vec<&str> = MEMBERS.iter().map(|(c, _)| *c).collect();
    Fields::new(&object, &allowed)?;
    let mut spec = Map::new();
    for (camel, snake) in MEMBERS {
        if let Some(v) = object.get(*camel) {
            if !v.is_null() {
                spec.insert((*snake).to_owned(), v.clone());
            }
        }
    }
    let spec: TriggerSpec = serde_json::from_value(Value::Object(spec)).map_err(|e| {
        RestError::new(
            StatusCode::BAD_REQUEST,
            "InvalidTrigger",
            camel_message(&e.to_string()),
        )
    })?;
    // Held starts are kept by one node (docs/orchestration.md).
    if spec.windows.is_some() && app.engine.is_clustered() {
        return Err(RestError::new(
            StatusCode::BAD_REQUEST,
            "InvalidTrigger",
            "windows: held starts are kept by one node; execution windows cannot be used with the postgres store (several nodes)",
        ));
    }
    let record = app.triggers.create(spec).await?;
    let (record, state) = app.triggers.get(&record.name).unwrap_or((
        record.clone(),
        TriggerStateRecord {
            name: record.name.clone(),
            ..TriggerStateRecord::default()
        },
    ));
    Ok(json_response(
        StatusCode::CREATED,
        &trigger_json(&record, &state),
    ))
}

/// serde's messages name the config file's fields; say the API's names.
fn camel_message(message: &str) -> String {
    let mut out = message.to_owned();
    for (camel, snake) in MEMBERS {
        if camel != snake {
            out = out.replace(&format!("`{snake}`"), &format!("`{camel}`"));
        }
    }
    out
}

/// `GET /v1/triggers`.
pub async fn list(State(app): State<App>, uri: Uri) -> Result<Response, RestError> {
    Query::parse(&uri, &[])?;
    let triggers: Vec<Value> = app
        .triggers
        .list()?
        .iter()
        .map(|(r, s)| trigger_json(r, s))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"triggers": triggers}),
    ))
}

/// `GET /v1/triggers/{name}`.
pub async fn describe(
    State(app): State<App>,
    name: Result<Path<String>, PathRejection>,
    uri: Uri,
) -> Result<Response, RestError> {
    let name = super::path_param(name)?;
    Query::parse(&uri, &[])?;
    let (record, state) = app.triggers.get(&name)?;
    Ok(json_response(
        StatusCode::OK,
        &trigger_json(&record, &state),
    ))
}

/// `DELETE /v1/triggers/{name}`: 204.
pub async fn remove(
    State(app): State<App>,
    name: Result<Path<String>, PathRejection>,
    uri: Uri,
) -> Result<Response, RestError> {
    let name = super::path_param(name)?;
    Query::parse(&uri, &[])?;
    app.triggers.delete(&name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn set_enabled(app: &App, name: &str, enabled: bool) -> Result<Response, RestError> {
    app.triggers.set_enabled(name, enabled).await?;
    let (record, state) = app.triggers.get(name)?;
    Ok(json_response(
        StatusCode::OK,
        &trigger_json(&record, &state),
    ))
}

/// `POST /v1/triggers/{name}/enable`.
pub async fn enable(
    State(app): State<App>,
    name: Result<Path<String>, PathRejection>,
    uri: Uri,
) -> Result<Response, RestError> {
    let name = super::path_param(name)?;
    Query::parse(&uri, &[])?;
    set_enabled(&app, &name, true).await
}

/// `POST /v1/triggers/{name}/disable`.
pub async fn disable(
    State(app): State<App>,
    name: Result<Path<String>, PathRejection>,
    uri: Uri,
) -> Result<Response, RestError> {
    let name = super::path_param(name)?;
    Query::parse(&uri, &[])?;
    set_enabled(&app, &name, false).await
}

fn parse_time(fields: &Fields<'_>, name: &str) -> Result<chrono::DateTime<chrono::Utc>, RestError> {
    let text = fields
        .string(name)?
        .ok_or_else(|| RestError::invalid(format!("the field '{name}' is required")))?;
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| {
            RestError::invalid(format!(
                "the field '{name}' must be an RFC 3339 time like 2026-01-01T00:00:00Z, not '{text}': {e}"
            ))
        })
}

/// `POST /v1/triggers/{name}/backfill` with `{"from", "to"}`: one
/// execution per slot of the schedule in `[from, to]`. With `"dryRun":
/// true`, nothing starts: the answer lists each slot, the execution name it
/// would have, and whether that execution already exists.
pub async fn backfill(
    State(app): State<App>,
    name: Result<Path<String>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, RestError> {
    let name = super::path_param(name)?;
    Query::parse(&uri, &[])?;
    let Some(Value::Object(object)) = parsed_body(&headers, body).await? else {
        return Err(RestError::invalid(
            "the body must be a JSON object: {\"from\": TIME, \"to\": TIME}",
        ));
    };
    let fields = Fields::new(&object, &["from", "to", "dryRun"])?;
    let (from, to) = (parse_time(&fields, "from")?, parse_time(&fields, "to")?);
    let dry_run = match object.get("dryRun") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(RestError::invalid("the field 'dryRun' must be a boolean")),
    };
    if dry_run {
        return dry_run_plan(&app, &name, from, to);
    }
    let report = app.triggers.backfill(&name, from, to).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "trigger": name,
            "from": rfc3339(from),
            "to": rfc3339(to),
            "slots": report.slots,
            "started": report.started,
            "existing": report.existing,
            "errors": report.errors,
        }),
    ))
}

/// What a backfill of `[from, to]` would start. The slots are chosen as
/// `Triggers::backfill` chooses them (its checks and its bound, from the
/// compiled schedule), and named as `Triggers::fire` names them.
fn dry_run_plan(
    app: &App,
    name: &str,
    from: chrono::DateTime<chrono::Utc>,
    to: chrono::DateTime<chrono::Utc>,
) -> Result<Response, RestError> {
    let (trigger, slots) = app.triggers.backfill_slots(name, from, to)?;
    let executions = machine_arn(app.triggers.engine(), &trigger.state_machine).replacen(
        ":stateMachine:",
        ":execution:",
        1,
    );
    let mut existing = 0;
    let planned: Vec<Value> = slots
        .iter()
        .map(|slot| {
            let execution = format!("{name}-{}", trigger.event_id(*slot));
            let exists = app
                .engine
                .describe_execution(&format!("{executions}:{execution}"))
                .is_ok();
            existing += usize::from(exists);
            json!({"scheduledTime": rfc3339(*slot), "name": execution, "exists": exists})
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "trigger": name,
            "from": rfc3339(from),
            "to": rfc3339(to),
            "dryRun": true,
            "slots": slots.len(),
            "started": 0,
            "existing": existing,
            "errors": [],
            "executions": planned,
        }),
    ))
}

/// `POST /v1/hooks/{name}`: the body (JSON) is the event; with a secret,
/// the signature header must carry its HMAC-SHA256. An `Idempotency-Key`
/// header names the execution, so a redelivery starts nothing new. 202
/// with the execution's ARN (whether new or started before).
pub async fn hook(
    State(app): State<App>,
    name: Result<Path<String>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, RestError> {
    let name = super::path_param(name)?;
    Query::parse(&uri, &[])?;
    let trigger = match app.triggers.compiled(&name, Kind::Webhook) {
        Ok(t) => t,
        // A hook that is not there, or not a webhook, is not found: the
        // answer says nothing about other kinds of triggers.
        Err(TriggerError::NotFound(_) | TriggerError::Invalid(_)) => {
            return Err(RestError::new(
                StatusCode::NOT_FOUND,
                "TriggerDoesNotExist",
                format!("no webhook named '{name}'"),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    if !trigger.enabled {
        return Err(RestError::new(
            StatusCode::CONFLICT,
            "TriggerDisabled",
            format!("the webhook '{name}' is disabled"),
        ));
    }
    let Compiled::Webhook {
        secret,
        signature_header,
    } = &trigger.kind
    else {
        return Err(RestError::new(
            StatusCode::NOT_FOUND,
            "TriggerDoesNotExist",
            format!("no webhook named '{name}'"),
        ));
    };
    let body = json_body(&headers, body).await?;
    if let Some(secret) = secret {
        let signature = headers
            .get(signature_header.as_str())
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !hmac::verify(secret, &body, signature) {
            return Err(RestError::new(
                StatusCode::UNAUTHORIZED,
                "InvalidSignature",
                format!(
                    "the {signature_header} header must be sha256= and the HMAC-SHA256 of the body under the webhook's secret"
                ),
            ));
        }
    }
    let event = parse_json(&body)
        .map_err(|e| {
            RestError::new(
                StatusCode::BAD_REQUEST,
                "InvalidExecutionInput",
                e.message.replace("the request body", "the event"),
            )
        })?
        .unwrap_or_else(|| json!({}));
    let id = match headers.get(IDEMPOTENCY_HEADER) {
        Some(v) => {
            let key = v.to_str().map_err(|_| {
                RestError::invalid(format!(
                    "the {IDEMPOTENCY_HEADER} header is not visible ASCII"
                ))
            })?;
            event_id(key).ok_or_else(|| {
                RestError::invalid(format!(
                    "the {IDEMPOTENCY_HEADER} header must be 1 to 255 characters"
                ))
            })?
        }
        // No key: every delivery is a new event.
        None => format!("{:x}", {
            let now = app.triggers.engine().now();
            let mut h = sha2_hash(&body);
            h ^= now.timestamp_nanos_opt().unwrap_or_default() as u64;
            h ^= NEXT
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                .rotate_left(32);
            h
        }),
    };
    let fired = app
        .triggers
        .fire(&trigger, &id, event)
        .await
        .map_err(|e| RestError::new(StatusCode::UNPROCESSABLE_ENTITY, "StartFailed", e))?;
    if let Some(why) = fired.skipped {
        return Err(RestError::new(StatusCode::CONFLICT, "OutsideWindow", why));
    }
    Ok(json_response(
        StatusCode::ACCEPTED,
        &json!({
            "executionArn": fired.execution_arn,
            "name": fired.name,
            "new": fired.new,
        }),
    ))
}

static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn sha2_hash(body: &[u8]) -> u64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(body);
    u64::from_be_bytes(digest[..8].try_into().unwrap_or_default())
}

/// An idempotency key as an event id: kept as it is when it is short and
/// made of name characters, otherwise hashed (24 hex digits), so that the
/// execution name stays within AWS's rules.
pub fn event_id(key: &str) -> Option<String> {
    if key.is_empty() || key.len() > 255 {
        return None;
    }
    let plain = key.len() <= 24
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    Some(if plain {
        key.to_owned()
    } else {
        use sha2::{Digest, Sha256};
        hmac::hex(&Sha256::digest(key.as_bytes()))[..24].to_owned()
    })
}

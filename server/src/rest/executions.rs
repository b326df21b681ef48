//! Executions: start, list, describe, stop, redrive.
//!
//! An execution's id in paths is `MACHINE/NAME` (two path segments):
//! `/v1/executions/flow/run-1`; an EXPRESS execution's is `MACHINE/NAME:ID`
//! (its name need not be unique). Names cannot contain `/` or `:`, so the
//! id is unambiguous; clients percent-encode other reserved characters.

use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::Response;
use serde_json::{Value, json};
use stepline_runtime::Engine;
use stepline_store::{ExecutionQuery, ExecutionRecord, ExecutionStatus, ExecutionsOf, ListCursor};

use super::error::RestError;
use super::follow::encode_segment;
use super::machines::{invalid_token, json_response, machine_arn, page_limit};
use super::request::{Fields, MAX_INPUT_BYTES, Query, json_body, parse_json};
use super::shapes::{execution_detail, execution_key, execution_summary};
use crate::http::App;

/// The header that may name a new execution (or `?name=`).
pub const NAME_HEADER: &str = "execution-name";

/// How long `stop` waits for the execution to record its end.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// The ARN of the execution `MACHINE/KEY` names: KEY is a name, or
/// `NAME:ID` for an EXPRESS execution (see `shapes::execution_id`).
pub fn execution_arn(engine: &Engine, machine: &str, key: &str) -> String {
    let c = engine.config();
    let kind = if key.contains(':') {
        "express"
    } else {
        "execution"
    };
    format!(
        "arn:aws:states:{}:{}:{kind}:{machine}:{key}",
        c.region, c.account
    )
}

/// `POST /v1/state-machines/{machine}/executions[?name=NAME]`: the body is
/// the input (any JSON; none is `{}`). 201 with the execution.
pub async fn start(
    State(app): State<App>,
    machine: Result<Path<String>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, RestError> {
    let machine = super::path_param(machine)?;
    let query = Query::parse(&uri, &["name", "priority"])?;
    let priority = match query.get("priority") {
        None => 0,
        Some(text) => text
            .parse::<i32>()
            .ok()
            .filter(|p| p.abs() <= 1000)
            .ok_or_else(|| {
                RestError::invalid(format!(
                    "the priority must be an integer from -1000 to 1000, not '{text}'"
                ))
            })?,
    };
    let header_name = match headers.get(NAME_HEADER) {
        None => None,
        Some(v) => Some(v.to_str().map_err(|_| {
            RestError::invalid(format!("the {NAME_HEADER} header is not visible ASCII"))
        })?),
    };
    let name = match (query.get("name"), header_name) {
        (Some(q), Some(h)) if q != h => {
            return Err(RestError::invalid(format!(
                "the execution name is given twice, in the query and in the {NAME_HEADER} header, differently"
            )));
        }
        (q, h) => q.or(h),
    };
    let body = json_body(&headers, body).await?;
    if body.len() > MAX_INPUT_BYTES {
        return Err(RestError::too_large(
            "InputTooLarge",
            format!(
                "the input is {} bytes; the limit is {MAX_INPUT_BYTES} bytes (256 KiB)",
                body.len()
            ),
        ));
    }
    let input = match parse_json(&body) {
        Ok(Some(_)) => Some(std::str::from_utf8(&body).map_err(|_| {
            RestError::new(
                StatusCode::BAD_REQUEST,
                "InvalidExecutionInput",
                "the input is not UTF-8",
            )
        })?),
        Ok(None) => None,
        Err(e) => {
            return Err(RestError::new(
                StatusCode::BAD_REQUEST,
                "InvalidExecutionInput",
                e.message.replace("the request body", "the input"),
            ));
        }
    };
    // AWS's idempotent start: the same name and input while it runs
    // answers the running execution, with 200 rather than 201 here.
    let existed = name.is_some_and(|n| {
        app.engine
            .describe_execution(&execution_arn(&app.engine, &machine, n))
            .is_ok()
    });
    let record = app
        .engine
        .start_execution_with_priority(&machine_arn(&app.engine, &machine), name, input, priority)
        .await?;
    // The record as it is now: a quick execution may already have ended.
    let record = app.engine.describe_execution(&record.arn).unwrap_or(record);
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let mut response = json_response(status, &detail(&app.engine, &record));
    let location = format!(
        "/v1/executions/{}/{}",
        encode_segment(&machine),
        encode_segment(&execution_key(&record.summary()))
    );
    if let Ok(location) = header::HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// `GET /v1/executions[?machine=M&status=S&from=T&to=T&name=TEXT&limit=N&next=TOKEN]`,
/// newest first (then by ARN); `from` (inclusive) and `to` (exclusive)
/// bound the start time, `name` is a part of the name. A page is read from the store's listing index:
/// its cost is the page's, however many executions are stored and however
/// large their inputs; `next` is a signed cursor, so a page never repeats
/// what an earlier one showed even while executions start.
pub async fn list(State(app): State<App>, uri: Uri) -> Result<Response, RestError> {
    let query = Query::parse(
        &uri,
        &["machine", "status", "from", "to", "name", "limit", "next"],
    )?;
    let started = |name: &str| -> Result<Option<chrono::DateTime<chrono::Utc>>, RestError> {
        query
            .get(name)
            .map(|text| {
                chrono::DateTime::parse_from_rfc3339(text)
                    .map(|t| t.with_timezone(&chrono::Utc))
                    .map_err(|_| {
                        RestError::invalid(format!(
                            "the query parameter '{name}' must be an RFC 3339 time, not '{text}'"
                        ))
                    })
            })
            .transpose()
    };
    let (started_after, started_before) = (started("from")?, started("to")?);
    let name_contains = match query.get("name") {
        Some(n) if n.chars().count() > 80 => {
            return Err(RestError::invalid(
                "the query parameter 'name' is at most 80 characters",
            ));
        }
        Some("") | None => None,
        Some(n) => Some(n.to_owned()),
    };
    let of = match query.get("machine") {
        None => ExecutionsOf::All,
        Some(name) => {
            let arn = machine_arn(&app.engine, name);
            app.engine.describe_state_machine(&arn)?;
            ExecutionsOf::Machine(arn)
        }
    };
    let status_filter = query.get("status");
    let status = match status_filter {
        None => None,
        Some(name) => Some(ExecutionStatus::from_name(name).ok_or_else(|| {
            RestError::invalid(format!(
                "the status must be one of {}, not '{name}'",
                ExecutionStatus::ALL.map(ExecutionStatus::as_str).join(", ")
            ))
        })?),
    };
    let limit = page_limit(&query)?;
    // A token is good only for the filters it was issued with.
    let scope = format!(
        "rest:executions:{}:{}:{}:{}:{}",
        query.get("machine").unwrap_or(""),
        status_filter.unwrap_or(""),
        query.get("from").unwrap_or(""),
        query.get("to").unwrap_or(""),
        query.get("name").unwrap_or("")
    );
    let after = match query.get("next") {
        None => None,
        Some(token) => Some(
            app.tokens
                .check_cursor(&scope, token)
                .as_deref()
                .and_then(ListCursor::from_text)
                .ok_or_else(invalid_token)?,
        ),
    };
    let page = app.engine.list_executions(&ExecutionQuery {
        of,
        status,
        redriven: None,
        started_after,
        started_before,
        name_contains,
        after,
        limit,
    })?;
    let mut body = json!({
        "executions": page.executions.iter().map(execution_summary).collect::<Vec<_>>()
    });
    if let (Some(next), Value::Object(map)) = (page.next, &mut body) {
        map.insert(
            "next".into(),
            json!(app.tokens.issue_cursor(&scope, &next.to_text())),
        );
    }
    Ok(json_response(StatusCode::OK, &body))
}

/// `GET /v1/executions/{machine}/{name}`
pub async fn describe(
    State(app): State<App>,
    path: Result<Path<(String, String)>, PathRejection>,
    uri: Uri,
) -> Result<Response, RestError> {
    let record = addressed(&app, path, &uri)?;
    Ok(json_response(StatusCode::OK, &detail(&app.engine, &record)))
}

/// An execution's detail, with `queued` while it waits: for its window
/// (`{reason: "window", opens, priority}`) or for a slot of its state
/// machine's `max_running` (`{reason: "max_running", position, length,
/// priority}`); `draining` while tasks of it wait for its state
/// machine's next window (`{until, states}`); and `poolWaits` (`[{pool,
/// stateName, since}]`) while some of its tasks wait for a slot of a pool.
fn detail(engine: &Engine, record: &ExecutionRecord) -> Value {
    let mut out = execution_detail(record);
    let Value::Object(map) = &mut out else {
        return out;
    };
    let waits: Vec<Value> = engine
        .pool_waits(&record.arn)
        .into_iter()
        .map(|(pool, w)| {
            json!({
                "pool": pool,
                "stateName": w.state_name,
                "since": super::shapes::time(w.since),
            })
        })
        .collect();
    if !waits.is_empty() {
        map.insert("poolWaits".into(), Value::Array(waits));
    }
    if let Some(queued) = record.queued {
        let held = engine
            .held_until(record)
            .or(queued.until.filter(|t| *t > engine.now()));
        let value = match (held, engine.queue_position(record)) {
            (Some(opens), _) => json!({
                "reason": "window",
                "opens": super::shapes::time(opens),
                "priority": queued.priority,
            }),
            (None, Some(p)) => json!({
                "reason": "max_running",
                "position": p.position,
                "length": p.length,
                "priority": p.priority,
            }),
            (None, None) => json!({"priority": queued.priority}),
        };
        map.insert("queued".into(), value);
    }
    let waits = engine.drain_waits(&record.arn);
    if let Some(first) = waits.first() {
        let mut states: Vec<&str> = waits.iter().map(|w| w.state_name.as_str()).collect();
        states.dedup();
        map.insert(
            "draining".into(),
            json!({"until": super::shapes::time(first.until), "states": states}),
        );
    }
    out
}

/// The execution a `/v1/executions/{machine}/{name}...` path names (a
/// request with no query parameters), or why not.
pub fn addressed(
    app: &App,
    path: Result<Path<(String, String)>, PathRejection>,
    uri: &Uri,
) -> Result<ExecutionRecord, RestError> {
    let (machine, name) = super::path_param(path)?;
    Query::parse(uri, &[])?;
    Ok(app
        .engine
        .describe_execution(&execution_arn(&app.engine, &machine, &name))?)
}

/// `POST /v1/executions/{machine}/{name}/stop` with an optional body
/// `{"error": ..., "cause": ...}`. 200 with the execution once it has
/// ended (ABORTED, or as it was if it had already ended); 202 if it has
/// not recorded its end within a few seconds.
pub async fn stop(
    State(app): State<App>,
    path: Result<Path<(String, String)>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, RestError> {
    let (machine, name) = super::path_param(path)?;
    Query::parse(&uri, &[])?;
    let body = json_body(&headers, body).await?;
    let (error, cause) = match parse_json(&body)? {
        None => (None, None),
        Some(Value::Object(object)) => {
            let fields = Fields::new(&object, &["error", "cause"])?;
            let error = fields.string("error")?.map(str::to_owned);
            let cause = fields.string("cause")?.map(str::to_owned);
            if error.as_ref().is_some_and(|e| e.len() > 256) {
                return Err(RestError::invalid("the error is longer than 256 bytes"));
            }
            if cause.as_ref().is_some_and(|c| c.len() > 32768) {
                return Err(RestError::invalid("the cause is longer than 32768 bytes"));
            }
            (error, cause)
        }
        Some(other) => {
            return Err(RestError::invalid(format!(
                "the body must be an object {{\"error\", \"cause\"}} or empty, not {}",
                super::request::kind(&other)
            )));
        }
    };
    let arn = execution_arn(&app.engine, &machine, &name);
    app.engine.stop_execution(&arn, error, cause)?;
    let ended = tokio::time::timeout(STOP_WAIT, app.engine.wait_for(&arn)).await;
    match ended {
        Ok(Ok(record)) => Ok(json_response(StatusCode::OK, &execution_detail(&record))),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => {
            let record = app.engine.describe_execution(&arn)?;
            let status = if record.status == ExecutionStatus::Running {
                StatusCode::ACCEPTED
            } else {
                StatusCode::OK
            };
            Ok(json_response(status, &execution_detail(&record)))
        }
    }
}

/// `POST /v1/executions/{machine}/{name}/redrive`: RedriveExecution, a
/// FAILED, TIMED_OUT or ABORTED execution run again from where it failed.
/// 200 with the execution (RUNNING again); 409 ExecutionNotRedrivable.
pub async fn redrive(
    State(app): State<App>,
    path: Result<Path<(String, String)>, PathRejection>,
    uri: Uri,
) -> Result<Response, RestError> {
    let (machine, name) = super::path_param(path)?;
    Query::parse(&uri, &[])?;
    let arn = execution_arn(&app.engine, &machine, &name);
    let record = app.engine.redrive_execution(&arn).await?;
    let record = app.engine.describe_execution(&record.arn).unwrap_or(record);
    Ok(json_response(StatusCode::OK, &execution_detail(&record)))
}

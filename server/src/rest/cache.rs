//! The task cache (docs/tasks.md, "Caching results"): `GET /v1/cache`
//! lists the stored results, `DELETE /v1/cache/{key}` drops one and
//! `DELETE /v1/cache?resource=R` every one of a resource (a job whose code
//! changed), so that their next calls are made again.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use stepline_store::CacheEntryRecord;

use super::error::RestError;
use super::machines::json_response;
use super::request::Query;
use super::shapes::time;
use crate::http::App;

/// Entries a page holds unless `limit` says fewer.
const PAGE: u64 = 100;

pub async fn list(State(app): State<App>, uri: Uri) -> Result<Response, RestError> {
    let query = Query::parse(&uri, &["after", "limit"])?;
    let limit = query.number("limit", PAGE)?.unwrap_or(PAGE).max(1);
    let after = query.get("after").unwrap_or("");
    let entries = app
        .engine
        .cache_entries(after, usize::try_from(limit).unwrap_or(1))?;
    let next = (entries.len() as u64 == limit)
        .then(|| entries.last().map(|e| e.key.clone()))
        .flatten();
    let now = app.engine.now();
    let listed: Vec<Value> = entries.iter().map(|e| entry(e, now)).collect();
    let mut body = json!({ "entries": listed });
    if let Some(next) = next {
        body["after"] = json!(next);
    }
    Ok(json_response(StatusCode::OK, &body))
}

pub async fn drop_one(
    State(app): State<App>,
    key: Result<Path<String>, PathRejection>,
    uri: Uri,
) -> Result<Response, RestError> {
    let key = super::path_param(key)?;
    Query::parse(&uri, &[])?;
    if !app.engine.drop_cache_entry(&key)? {
        return Err(RestError::new(
            StatusCode::NOT_FOUND,
            "CacheEntryDoesNotExist",
            format!("no cached result has the key '{key}'"),
        ));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn drop_many(State(app): State<App>, uri: Uri) -> Result<Response, RestError> {
    let query = Query::parse(&uri, &["resource"])?;
    let dropped = app.engine.drop_cache_entries(query.get("resource"))?;
    Ok(json_response(
        StatusCode::OK,
        &json!({ "dropped": dropped }),
    ))
}

/// One stored result as a listing shows it: never the result itself,
/// only its size.
fn entry(e: &CacheEntryRecord, now: chrono::DateTime<chrono::Utc>) -> Value {
    json!({
        "key": e.key,
        "resource": e.resource,
        "executionArn": e.execution_arn,
        "stateName": e.state_name,
        "stored": time(e.stored),
        "expires": time(e.expires),
        "expired": e.expires <= now,
        "resultBytes": stepline_language::payload::json_size(&e.output, usize::MAX),
    })
}

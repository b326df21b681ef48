//! `GET /v1/pools`: each pool of slots (`[pools.NAME]`), its slots in
//! use and the tasks waiting for one, oldest first.

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use serde_json::{Value, json};

use super::error::RestError;
use super::machines::json_response;
use super::request::Query;
use super::shapes::time;
use crate::http::App;

pub async fn describe(State(app): State<App>, uri: Uri) -> Result<Response, RestError> {
    Query::parse(&uri, &[])?;
    let pools: Vec<Value> = app
        .engine
        .pool_usage()
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "slots": p.slots,
                "inUse": p.in_use,
                "waiting": p.waiting.iter().map(|w| json!({
                    "executionArn": w.execution_arn,
                    "stateName": w.state_name,
                    "since": time(w.since),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(json_response(StatusCode::OK, &json!({ "pools": pools })))
}

//! `GET /v1/pools`: each pool of slots (`[pools.NAME]`), its slots in
//! use, the tasks holding them and the tasks waiting for one, oldest
//! first.

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
            let tasks = |list: &[stepline_runtime::pools::Waiting]| -> Vec<Value> {
                list.iter()
                    .map(|w| {
                        json!({
                            "executionArn": w.execution_arn,
                            "stateName": w.state_name,
                            "since": time(w.since),
                        })
                    })
                    .collect()
            };
            json!({
                "name": p.name,
                "slots": p.slots,
                "inUse": p.in_use,
                "holders": tasks(&p.holders),
                "waiting": tasks(&p.waiting),
            })
        })
        .collect();
    Ok(json_response(StatusCode::OK, &json!({ "pools": pools })))
}

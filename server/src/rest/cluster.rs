//! `GET /v1/cluster`: the nodes sharing this node's store, their leases
//! and their load (one node, this one, on the embedded store).

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
    let engine = &app.engine;
    let nodes: Vec<Value> = engine
        .cluster_nodes()?
        .iter()
        .map(|n| {
            json!({
                "node": n.id,
                "address": n.address,
                "started": time(n.started),
                "leaseExpires": time(n.expires),
                "alive": n.alive,
                "openExecutions": n.executions,
                "self": engine.node_id() == Some(n.id.as_str()),
            })
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "clustered": engine.is_clustered(),
            "node": engine.node_id(),
            "nodes": nodes,
        }),
    ))
}

//! Map Runs (the child executions of a distributed Map), read-only: what
//! `stepline map-runs` shows.
//!
//! A Map Run's id in paths is `MACHINE/LABEL:ID`, the tail of its ARN
//! (`arn:aws:states:REGION:ACCOUNT:mapRun:MACHINE/LABEL:ID`), two path
//! segments as an execution's: `/v1/map-runs/orders/Each:0b6a...`.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use serde_json::{Value, json};
use stepline_store::{MapRunCounts, MapRunRecord};

use super::error::RestError;
use super::executions::execution_arn;
use super::machines::json_response;
use super::request::Query;
use super::shapes::time;
use crate::http::App;

/// `GET /v1/executions/{machine}/{name}/map-runs`: the execution's Map
/// Runs, oldest first.
pub async fn list(
    State(app): State<App>,
    path: Result<Path<(String, String)>, PathRejection>,
    uri: Uri,
) -> Result<Response, RestError> {
    let (machine, name) = super::path_param(path)?;
    Query::parse(&uri, &[])?;
    let arn = execution_arn(&app.engine, &machine, &name);
    let runs: Vec<Value> = app
        .engine
        .list_map_runs(&arn)?
        .iter()
        .map(map_run_json)
        .collect();
    Ok(json_response(StatusCode::OK, &json!({"mapRuns": runs})))
}

/// `GET /v1/map-runs/{machine}/{name}`: one Map Run (`name` is
/// `LABEL:ID`); 404 ResourceNotFound.
pub async fn describe(
    State(app): State<App>,
    path: Result<Path<(String, String)>, PathRejection>,
    uri: Uri,
) -> Result<Response, RestError> {
    let (machine, run) = super::path_param(path)?;
    Query::parse(&uri, &[])?;
    let c = app.engine.config();
    let arn = format!(
        "arn:aws:states:{}:{}:mapRun:{machine}/{run}",
        c.region, c.account
    );
    let record = app.engine.describe_map_run(&arn)?;
    Ok(json_response(StatusCode::OK, &map_run_json(&record)))
}

/// A Map Run's id: its ARN after `:mapRun:`.
fn map_run_id(arn: &str) -> &str {
    arn.split_once(":mapRun:").map_or(arn, |(_, id)| id)
}

/// An execution's id, `MACHINE/NAME`, from its ARN's last two parts.
fn execution_id(arn: &str) -> String {
    let mut parts = arn.rsplitn(3, ':');
    let name = parts.next().unwrap_or_default();
    let machine = parts.next().unwrap_or_default();
    format!("{machine}/{name}")
}

fn counts(c: &MapRunCounts) -> Value {
    json!({
        "pending": c.pending,
        "running": c.running,
        "succeeded": c.succeeded,
        "failed": c.failed,
        "timedOut": c.timed_out,
        "aborted": c.aborted,
        "total": c.total,
        "resultsWritten": c.results_written,
    })
}

/// A Map Run in the REST shape (camelCase, RFC 3339).
fn map_run_json(r: &MapRunRecord) -> Value {
    let mut out = json!({
        "id": map_run_id(&r.map_run_arn),
        "arn": r.map_run_arn,
        "execution": execution_id(&r.execution_arn),
        "executionArn": r.execution_arn,
        "status": r.status,
        "startDate": time(r.start),
        "maxConcurrency": r.max_concurrency,
        "itemCounts": counts(&r.items),
        "executionCounts": counts(&r.executions),
    });
    if let Value::Object(map) = &mut out {
        if let Some(stop) = r.stop {
            map.insert("stopDate".into(), time(stop));
        }
        if let Some(p) = r.tolerated_failure_percentage {
            map.insert("toleratedFailurePercentage".into(), json!(p));
        }
        if let Some(n) = r.tolerated_failure_count {
            map.insert("toleratedFailureCount".into(), json!(n));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_the_tails_of_the_arns() {
        assert_eq!(
            map_run_id("arn:aws:states:us-east-1:1:mapRun:orders/Each:0b6a"),
            "orders/Each:0b6a"
        );
        assert_eq!(
            execution_id("arn:aws:states:us-east-1:1:execution:orders:o-1"),
            "orders/o-1"
        );
    }
}

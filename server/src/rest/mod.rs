//! The native REST API under `/v1/`: state machines, executions, their
//! histories (paged, long-polled, or streamed as server-sent events), and
//! definition validation and single-state tests, triggers and webhooks, Map Runs and activities,
//! lineage (which executions wrote and read a file),
//! for people with curl and for scripts.
//!
//! Like the AWS dialect it is a thin face: each handler reads its request
//! strictly (`request`), makes engine calls, and writes REST shapes
//! (`shapes`) or a `{"code", "message"}` error (`error`). It holds no
//! business logic; what an AWS action does, the matching endpoint does.
//!
//! Every route is listed once in [`routes`]: the router is built from that
//! list and a test checks it against the OpenAPI document served at
//! `/v1/openapi.json` (embedded from `openapi.json`).

mod activities;
mod cache;
mod cluster;
mod dashboard;
pub(crate) mod error;
mod executions;
mod follow;
mod for_execution;
pub mod graph;
mod lineage;
mod logs;
mod machines;
mod map_runs;
mod pools;
mod request;
mod settings;
mod shapes;
mod store;
mod test_state;
mod triggers;
mod versions;
mod windows;

use axum::Router;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post, put};

pub use error::RestError;
/// Percent-encoding of a path segment, shared with the CLI client that
/// builds these paths.
pub use follow::encode_segment;

use crate::http::App;

/// The OpenAPI 3.1 document of this API.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Every route: method, path (axum's `{param}` syntax, which is also
/// OpenAPI's), and its handler.
fn routes() -> Vec<(&'static str, &'static str, MethodRouter<App>)> {
    vec![
        ("get", "/v1/openapi.json", get(openapi)),
        ("post", "/v1/validate", post(machines::validate)),
        ("post", "/v1/test-state", post(test_state::test_state)),
        ("get", "/v1/state-machines", get(machines::list)),
        ("post", "/v1/state-machines", post(machines::create)),
        (
            "get",
            "/v1/state-machines/{machine}",
            get(machines::describe),
        ),
        ("put", "/v1/state-machines/{machine}", put(machines::update)),
        (
            "get",
            "/v1/state-machines/{machine}/settings",
            get(settings::describe),
        ),
        (
            "put",
            "/v1/state-machines/{machine}/settings",
            put(settings::put),
        ),
        (
            "delete",
            "/v1/state-machines/{machine}/settings",
            delete(settings::clear),
        ),
        (
            "post",
            "/v1/state-machines/{machine}/versions",
            post(versions::publish),
        ),
        (
            "get",
            "/v1/state-machines/{machine}/graph",
            get(graph::machine_graph),
        ),
        (
            "delete",
            "/v1/state-machines/{machine}",
            delete(machines::remove),
        ),
        (
            "post",
            "/v1/state-machines/{machine}/executions",
            post(executions::start),
        ),
        ("get", "/v1/executions", get(executions::list)),
        ("get", "/v1/dashboard", get(dashboard::dashboard)),
        (
            "get",
            "/v1/executions/{machine}/{name}",
            get(executions::describe),
        ),
        (
            "post",
            "/v1/executions/{machine}/{name}/stop",
            post(executions::stop),
        ),
        (
            "post",
            "/v1/executions/{machine}/{name}/redrive",
            post(executions::redrive),
        ),
        (
            "get",
            "/v1/executions/{machine}/{name}/map-runs",
            get(map_runs::list),
        ),
        (
            "get",
            "/v1/map-runs/{machine}/{name}",
            get(map_runs::describe),
        ),
        ("get", "/v1/activities", get(activities::list)),
        (
            "get",
            "/v1/executions/{machine}/{name}/history",
            get(follow::history),
        ),
        (
            "get",
            "/v1/executions/{machine}/{name}/events",
            get(follow::events),
        ),
        (
            "get",
            "/v1/executions/{machine}/{name}/state-machine",
            get(for_execution::describe),
        ),
        (
            "get",
            "/v1/executions/{machine}/{name}/logs",
            get(logs::logs),
        ),
        (
            "get",
            "/v1/executions/{machine}/{name}/lineage",
            get(lineage::of_execution),
        ),
        ("get", "/v1/lineage", get(lineage::of_path)),
        ("get", "/v1/triggers", get(triggers::list)),
        ("post", "/v1/triggers", post(triggers::create)),
        ("get", "/v1/triggers/{name}", get(triggers::describe)),
        ("delete", "/v1/triggers/{name}", delete(triggers::remove)),
        ("post", "/v1/triggers/{name}/enable", post(triggers::enable)),
        (
            "post",
            "/v1/triggers/{name}/disable",
            post(triggers::disable),
        ),
        (
            "post",
            "/v1/triggers/{name}/backfill",
            post(triggers::backfill),
        ),
        ("post", "/v1/hooks/{name}", post(triggers::hook)),
        ("post", "/v1/store/backup", post(store::backup)),
        ("get", "/v1/cluster", get(cluster::describe)),
        ("get", "/v1/cache", get(cache::list)),
        ("delete", "/v1/cache", delete(cache::drop_many)),
        ("delete", "/v1/cache/{key}", delete(cache::drop_one)),
        ("get", "/v1/pools", get(pools::describe)),
        ("get", "/v1/windows", get(windows::describe)),
    ]
}

/// `(method, path)` of every route, for the test that holds the OpenAPI
/// document and the router to each other.
pub fn route_table() -> Vec<(&'static str, &'static str)> {
    routes().into_iter().map(|(m, p, _)| (m, p)).collect()
}

/// The REST routes, merged into the server's router by `http::serve`.
pub(crate) fn router() -> Router<App> {
    let mut by_path: Vec<(&'static str, MethodRouter<App>)> = Vec::new();
    for (_, path, handler) in routes() {
        match by_path.iter().position(|(p, _)| *p == path) {
            Some(i) => {
                let (p, existing) = by_path.remove(i);
                by_path.insert(i, (p, existing.merge(handler)));
            }
            None => by_path.push((path, handler)),
        }
    }
    let mut router = Router::new();
    for (path, handler) in by_path {
        router = router.route(path, handler.fallback(method_not_allowed));
    }
    router.fallback(not_found)
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        OPENAPI.to_owned(),
    )
        .into_response()
}

async fn not_found(uri: Uri) -> RestError {
    RestError::new(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!(
            "no endpoint at '{}'; the REST API is described at /v1/openapi.json",
            uri.path()
        ),
    )
}

/// A path parameter, or 400 when it cannot be decoded (not UTF-8, say).
fn path_param<T>(
    path: Result<axum::extract::Path<T>, axum::extract::rejection::PathRejection>,
) -> Result<T, RestError> {
    path.map(|p| p.0)
        .map_err(|e| RestError::invalid(format!("the path is malformed: {e}")))
}

async fn method_not_allowed(method: axum::http::Method, uri: Uri) -> RestError {
    RestError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        format!(
            "{method} is not allowed on '{}'; see /v1/openapi.json",
            uri.path()
        ),
    )
}

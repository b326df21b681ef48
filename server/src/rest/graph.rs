//! `GET /v1/state-machines/{machine}/graph[?revision=N]`: a state
//! machine's diagram (`asl::diagram`) as JSON, so a web page draws the
//! same picture as `stepline graph` without parsing ASL itself. With
//! `revision`, the definition an execution ran (executions say theirs).

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use serde_json::{Value, json};
use stepline_language::asl;
use stepline_language::asl::diagram::{Diagram, Endpoint, GroupKind, diagram};
use stepline_language::asl::model::{ScopeId, StateId};

use super::error::RestError;
use super::machines::{json_response, machine_arn};
use super::request::Query;
use crate::http::App;

/// `nN`: the state with index N (definition order, outer states first).
pub fn node_id(id: StateId) -> String {
    format!("n{}", id.0)
}

/// `scopeS`: the top level (0), a Parallel branch or a Map processor.
pub fn scope_id(scope: ScopeId) -> String {
    format!("scope{}", scope.0)
}

/// A node id, or a scope's `scopeS_start` / `scopeS_end` marker.
pub fn endpoint_id(e: Endpoint) -> String {
    match e {
        Endpoint::Start(s) => format!("{}_start", scope_id(s)),
        Endpoint::End(s) => format!("{}_end", scope_id(s)),
        Endpoint::State(id) => node_id(id),
    }
}

pub fn group_label(kind: GroupKind) -> String {
    match kind {
        GroupKind::Root => String::new(),
        GroupKind::Branch(n) => format!("Branch {n}"),
        GroupKind::Processor => "Item processor".to_owned(),
    }
}

/// The diagram as JSON, with the ids `stepline graph` uses in every format.
pub fn diagram_json(d: &Diagram) -> Value {
    json!({
        "groups": d.groups.iter().map(|g| json!({
            "id": scope_id(g.scope),
            "kind": g.kind.as_str(),
            "label": group_label(g.kind),
            "owner": g.owner.map(node_id),
            "states": g.states.iter().map(|s| node_id(*s)).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "nodes": d.nodes.iter().map(|n| json!({
            "id": node_id(n.state),
            "name": n.name,
            "type": n.kind,
            "group": scope_id(n.scope),
            "children": n.children.iter().map(|s| scope_id(*s)).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "edges": d.edges.iter().map(|e| json!({
            "from": endpoint_id(e.from),
            "to": endpoint_id(e.to),
            "kind": e.kind.as_str(),
            "label": e.label,
        })).collect::<Vec<_>>(),
    })
}

/// `GET /v1/state-machines/{machine}/graph[?revision=N]`:
/// `{"name", "revision", "graph": {groups, nodes, edges}}`.
pub(crate) async fn machine_graph(
    State(app): State<App>,
    machine: Result<Path<String>, PathRejection>,
    uri: Uri,
) -> Result<Response, RestError> {
    let machine = super::path_param(machine)?;
    let query = Query::parse(&uri, &["revision"])?;
    let arn = machine_arn(&app.engine, &machine);
    let record = match query.number("revision", u64::MAX)? {
        None => app.engine.describe_state_machine(&arn)?,
        Some(revision) => app.engine.describe_state_machine_revision(&arn, revision)?,
    };
    let validation = asl::validate(record.definition.as_bytes());
    // Stored definitions were valid when stored; only a stricter validator
    // since then can make one fail here.
    let compiled = validation.machine.ok_or_else(|| {
        RestError::new(
            StatusCode::CONFLICT,
            "InvalidDefinition",
            "the stored definition no longer validates; `stepline validate` says why",
        )
    })?;
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "name": record.name,
            "revision": record.revision,
            "graph": diagram_json(&diagram(&compiled)),
        }),
    ))
}

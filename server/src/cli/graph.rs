//! `stepline graph FILE|NAME [--format mermaid|dot|json]`: a state
//! machine's diagram (`asl::diagram`) written as a Mermaid flowchart, a
//! Graphviz digraph, or JSON.
//!
//! A FILE that exists is read and drawn offline; anything else is the
//! name of a state machine on the server, whose definition is fetched and
//! drawn the same way. Every format uses the same ids: `nN` for the state
//! with index N, `scopeS_start` / `scopeS_end` for the entry and exit of
//! scope S (the top level is scope 0), `scopeS` for a branch or processor.
//!
//! A Parallel or Map state is drawn as a group holding its branches (or
//! its processor), each with its own start and end; edges into and out
//! of the state attach to that group.

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};
use stepline_engine::asl::diagram::{Diagram, EdgeKind, Endpoint, GroupKind, diagram};
use stepline_engine::asl::model::{ScopeId, StateId};
use stepline_engine::asl::{self, Severity};

use super::client::{Api, ClientError, Remote, machine_path};
use super::machines::definition_file;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A Mermaid flowchart (GitHub and many editors draw it).
    Mermaid,
    /// A Graphviz digraph (`dot -Tsvg`).
    Dot,
    /// The diagram's nodes, edges and groups as JSON.
    Json,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A definition file, or the name of a state machine on the server.
    target: String,
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Mermaid)]
    format: Format,
    #[command(flatten)]
    remote: Remote,
}

pub fn run(args: &Args, stdout: &mut dyn Write, stderr: &mut dyn Write) -> u8 {
    match execute(args, stdout, stderr) {
        Ok(()) => 0,
        Err(e) => e.report("graph", stderr),
    }
}

fn execute(args: &Args, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), ClientError> {
    let path = Path::new(&args.target);
    let (definition, origin) = if path.is_file() {
        (definition_file(path)?, path.display().to_string())
    } else {
        let api = Api::new(&args.remote)?;
        let machine = api.get(&machine_path(&args.target))?;
        let text = machine["definition"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        (text, format!("the state machine {}", args.target))
    };
    let validation = asl::validate(definition.as_bytes());
    let Some(machine) = validation.machine else {
        for d in validation
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
        {
            let _ = writeln!(
                err,
                "  {}:{} {} {}: {}",
                d.line,
                d.column,
                d.code.as_str(),
                d.pointer,
                d.message
            );
        }
        return Err(ClientError::Invalid(format!(
            "{origin} is not a valid definition (the errors are above; `stepline validate` explains them)"
        )));
    };
    let d = diagram(&machine);
    let text = match args.format {
        Format::Mermaid => mermaid(&d),
        Format::Dot => dot(&d),
        Format::Json => serde_json::to_string_pretty(&to_json(&d)).unwrap_or_default() + "\n",
    };
    let _ = out.write_all(text.as_bytes());
    Ok(())
}

fn node_id(id: StateId) -> String {
    format!("n{}", id.0)
}

fn scope_id(scope: ScopeId) -> String {
    format!("scope{}", scope.0)
}

fn endpoint_id(e: Endpoint) -> String {
    match e {
        Endpoint::Start(s) => format!("{}_start", scope_id(s)),
        Endpoint::End(s) => format!("{}_end", scope_id(s)),
        Endpoint::State(id) => node_id(id),
    }
}

fn group_label(kind: GroupKind) -> String {
    match kind {
        GroupKind::Root => String::new(),
        GroupKind::Branch(n) => format!("Branch {n}"),
        GroupKind::Processor => "Item processor".to_owned(),
    }
}

/// The diagram as JSON, with the ids every format uses.
pub fn to_json(d: &Diagram) -> Value {
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

/// Text inside a Mermaid `"..."` label: quotes and angle brackets as
/// entities, so a condition like `$.a > 1` cannot end the label or be HTML.
fn mermaid_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '#' => out.push_str("#35;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// How long a label may be before it is cut: a Choice condition can be a
/// page of JSONata.
const LABEL_MAX: usize = 60;

fn label(text: &str) -> String {
    super::render::shorten(text, LABEL_MAX)
}

pub fn mermaid(d: &Diagram) -> String {
    let mut out = String::from("flowchart TD\n");
    mermaid_scope(d, ScopeId::ROOT, 1, &mut out);
    for e in &d.edges {
        let arrow = match e.kind {
            EdgeKind::Catch => "-.->",
            _ => "-->",
        };
        let text = match (e.kind, &e.label) {
            (EdgeKind::Catch, Some(l)) => Some(format!("Catch: {l}")),
            (_, l) => l.clone(),
        };
        match text {
            Some(t) => {
                let _ = writeln!(
                    out,
                    "  {} {arrow}|\"{}\"| {}",
                    endpoint_id(e.from),
                    mermaid_text(&label(&t)),
                    endpoint_id(e.to)
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "  {} {arrow} {}",
                    endpoint_id(e.from),
                    endpoint_id(e.to)
                );
            }
        }
    }
    out.push_str("  classDef fail fill:#fde2e1,stroke:#c0392b\n");
    out.push_str("  classDef succeed fill:#e3f6e5,stroke:#2e7d32\n");
    out.push_str("  classDef marker fill:#eeeeee,stroke:#888888\n");
    out
}

fn mermaid_scope(d: &Diagram, scope: ScopeId, depth: usize, out: &mut String) {
    let pad = "  ".repeat(depth);
    let s = scope_id(scope);
    let _ = writeln!(out, "{pad}{s}_start((\"Start\")):::marker");
    for &state in &d.groups[scope.index()].states {
        let node = &d.nodes[state.index()];
        let id = node_id(state);
        let name = mermaid_text(&node.name);
        if !node.children.is_empty() {
            let _ = writeln!(out, "{pad}subgraph {id} [\"{name} ({})\"]", node.kind);
            for &child in &node.children {
                let group = &d.groups[child.index()];
                let _ = writeln!(
                    out,
                    "{pad}  subgraph {} [\"{}\"]",
                    scope_id(child),
                    group_label(group.kind)
                );
                mermaid_scope(d, child, depth + 2, out);
                let _ = writeln!(out, "{pad}  end");
            }
            let _ = writeln!(out, "{pad}end");
            continue;
        }
        let line = match node.kind {
            "Choice" => format!("{id}{{\"{name}\"}}"),
            "Succeed" => format!("{id}([\"{name}\"]):::succeed"),
            "Fail" => format!("{id}([\"{name}\"]):::fail"),
            "Wait" => format!("{id}{{{{\"{name}\"}}}}"),
            _ => format!("{id}[\"{name}\"]"),
        };
        let _ = writeln!(out, "{pad}{line}");
    }
    let _ = writeln!(out, "{pad}{s}_end((\"End\")):::marker");
}

/// Text inside a Graphviz `"..."` string.
fn dot_text(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace(['\n', '\r'], " ")
}

pub fn dot(d: &Diagram) -> String {
    let mut out = String::from(
        "digraph stepline {\n  compound=true;\n  rankdir=TB;\n  graph [fontname=\"Helvetica\"];\n  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n  edge [fontname=\"Helvetica\", fontsize=10];\n",
    );
    dot_scope(d, ScopeId::ROOT, 1, &mut out);
    for e in &d.edges {
        // Graphviz edges join nodes, not clusters: an edge into a Parallel
        // or Map goes to its first group's start and is clipped at the
        // cluster (lhead); one out of it leaves from that group's end.
        let mut attrs = Vec::new();
        let from = match e.from {
            Endpoint::State(id) => match d.nodes[id.index()].children.first() {
                Some(&first) => {
                    attrs.push(format!("ltail=cluster_{}", node_id(id)));
                    endpoint_id(Endpoint::End(first))
                }
                None => node_id(id),
            },
            other => endpoint_id(other),
        };
        let to = match e.to {
            Endpoint::State(id) => match d.nodes[id.index()].children.first() {
                Some(&first) => {
                    attrs.push(format!("lhead=cluster_{}", node_id(id)));
                    endpoint_id(Endpoint::Start(first))
                }
                None => node_id(id),
            },
            other => endpoint_id(other),
        };
        let text = match (e.kind, &e.label) {
            (EdgeKind::Catch, Some(l)) => {
                attrs.push("style=dashed".into());
                Some(format!("Catch: {l}"))
            }
            (_, l) => l.clone(),
        };
        if let Some(t) = text {
            attrs.push(format!("label=\"{}\"", dot_text(&label(&t))));
        }
        let attrs = if attrs.is_empty() {
            String::new()
        } else {
            format!(" [{}]", attrs.join(", "))
        };
        let _ = writeln!(out, "  {from} -> {to}{attrs};");
    }
    out.push_str("}\n");
    out
}

fn dot_scope(d: &Diagram, scope: ScopeId, depth: usize, out: &mut String) {
    let pad = "  ".repeat(depth);
    let s = scope_id(scope);
    let _ = writeln!(
        out,
        "{pad}{s}_start [label=\"Start\", shape=circle, style=filled, fillcolor=\"#eeeeee\"];"
    );
    for &state in &d.groups[scope.index()].states {
        let node = &d.nodes[state.index()];
        let id = node_id(state);
        let name = dot_text(&node.name);
        if !node.children.is_empty() {
            let _ = writeln!(out, "{pad}subgraph cluster_{id} {{");
            let _ = writeln!(out, "{pad}  label=\"{name} ({})\";", node.kind);
            for &child in &node.children {
                let group = &d.groups[child.index()];
                let _ = writeln!(out, "{pad}  subgraph cluster_{} {{", scope_id(child));
                let _ = writeln!(
                    out,
                    "{pad}    label=\"{}\";\n{pad}    style=dashed;",
                    group_label(group.kind)
                );
                dot_scope(d, child, depth + 2, out);
                let _ = writeln!(out, "{pad}  }}");
            }
            let _ = writeln!(out, "{pad}}}");
            continue;
        }
        let attrs = match node.kind {
            "Choice" => ", shape=diamond, style=\"\"",
            "Succeed" => ", style=\"rounded,filled\", fillcolor=\"#e3f6e5\"",
            "Fail" => ", style=\"rounded,filled\", fillcolor=\"#fde2e1\"",
            "Wait" => ", shape=hexagon, style=\"\"",
            _ => "",
        };
        let _ = writeln!(out, "{pad}{id} [label=\"{name}\"{attrs}];");
    }
    let _ = writeln!(
        out,
        "{pad}{s}_end [label=\"End\", shape=doublecircle, style=filled, fillcolor=\"#eeeeee\"];"
    );
}

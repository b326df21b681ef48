//! `stepline graph FILE|NAME [--format mermaid|dot] [-o text|json]`: a
//! state machine's diagram (`asl::diagram`) written as a Mermaid flowchart
//! or a Graphviz digraph (`-o text`, the default), or as JSON (`-o json`).
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

use stepline_language::asl::diagram::{Diagram, Edge, EdgeKind, Endpoint, diagram};
use stepline_language::asl::model::ScopeId;
use stepline_language::asl::{self, Severity};

use super::client::{Api, ClientError, Remote, finish, machine_path};
use super::machines::definition_file;
use crate::rest::graph::{diagram_json, endpoint_id, group_label, node_id, scope_id};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A Mermaid flowchart (GitHub and many editors draw it).
    Mermaid,
    /// A Graphviz digraph (`dot -Tsvg`).
    Dot,
    /// The old spelling of `-o json`.
    #[value(hide = true)]
    Json,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A definition file, or the name of a state machine on the server.
    target: String,
    /// The syntax of the text drawing [default: mermaid] (`-f` is left to
    /// `history --follow`). `-o json` writes the diagram as JSON instead.
    #[arg(long, value_enum)]
    format: Option<Format>,
    #[command(flatten)]
    remote: Remote,
}

/// What to write: `-o json`, or the text drawing `--format` chooses. A
/// drawing's syntax asked for with `-o json` is a contradiction, told
/// rather than one of them silently ignored.
fn chosen(args: &Args) -> Result<Format, ClientError> {
    match (args.remote.present.json(), args.format) {
        (true, Some(syntax @ (Format::Mermaid | Format::Dot))) => Err(ClientError::usage(format!(
            "-o json writes the diagram as JSON; --format {} is a text drawing (use -o text, or leave out --format)",
            if syntax == Format::Dot {
                "dot"
            } else {
                "mermaid"
            }
        ))),
        (true, _) | (false, Some(Format::Json)) => Ok(Format::Json),
        (false, format) => Ok(format.unwrap_or(Format::Mermaid)),
    }
}

pub fn run(args: &Args, stdout: &mut dyn Write, stderr: &mut dyn Write) -> u8 {
    let result = execute(args, stdout, stderr).map(|()| 0);
    finish("graph", result, stderr)
}

fn execute(args: &Args, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), ClientError> {
    let format = chosen(args)?;
    let path = Path::new(&args.target);
    // A state machine's name holds no `/`, and one ending in `.json` is
    // far more likely a mistyped file: say so rather than ask the server.
    let looks_like_file = args.target.contains('/') || args.target.ends_with(".json");
    let (definition, origin) = if path.is_file() || looks_like_file {
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
    let text = match format {
        Format::Mermaid => mermaid(&d),
        Format::Dot => dot(&d),
        Format::Json =>
        // The REST API's shape (`rest::graph`), so both faces agree.
        {
            serde_json::to_string_pretty(&diagram_json(&d)).unwrap_or_default() + "\n"
        }
    };
    let _ = out.write_all(text.as_bytes());
    Ok(())
}

/// How long a label may be before it is cut: a Choice condition can be a
/// page of JSONata.
const LABEL_MAX: usize = 60;

/// What differs between the text formats; [`write`] walks the diagram the
/// same way for each (scopes depth first, then every edge).
trait Syntax {
    fn header(&self, out: &mut String);
    fn footer(&self, out: &mut String);
    /// A scope's Start or End marker.
    fn marker(&self, out: &mut String, pad: &str, id: &str, end: bool);
    /// A state without nested scopes; `kind` is its ASL type.
    fn node(&self, out: &mut String, pad: &str, id: &str, name: &str, kind: &str);
    /// Opens a group: a Parallel or Map state (`outer`), or one of its
    /// branches or its processor.
    fn open(&self, out: &mut String, pad: &str, id: &str, label: &str, outer: bool);
    fn close(&self, out: &mut String, pad: &str);
    fn edge(&self, out: &mut String, d: &Diagram, edge: &Edge, label: Option<&str>);
}

fn write(d: &Diagram, syntax: &dyn Syntax) -> String {
    let mut out = String::new();
    syntax.header(&mut out);
    write_scope(d, syntax, ScopeId::ROOT, 1, &mut out);
    for e in &d.edges {
        let label = match (e.kind, &e.label) {
            (EdgeKind::Catch, Some(l)) => Some(format!("Catch: {l}")),
            (_, l) => l.clone(),
        };
        let label = label.map(|l| super::render::shorten(&l, LABEL_MAX));
        syntax.edge(&mut out, d, e, label.as_deref());
    }
    syntax.footer(&mut out);
    out
}

fn write_scope(d: &Diagram, syntax: &dyn Syntax, scope: ScopeId, depth: usize, out: &mut String) {
    let pad = "  ".repeat(depth);
    let s = scope_id(scope);
    syntax.marker(out, &pad, &format!("{s}_start"), false);
    for &state in &d.groups[scope.index()].states {
        let node = &d.nodes[state.index()];
        let id = node_id(state);
        if node.children.is_empty() {
            syntax.node(out, &pad, &id, &node.name, node.kind);
            continue;
        }
        let label = format!("{} ({})", node.name, node.kind);
        syntax.open(out, &pad, &id, &label, true);
        let inner = format!("{pad}  ");
        for &child in &node.children {
            let kind = d.groups[child.index()].kind;
            syntax.open(out, &inner, &scope_id(child), &group_label(kind), false);
            write_scope(d, syntax, child, depth + 2, out);
            syntax.close(out, &inner);
        }
        syntax.close(out, &pad);
    }
    syntax.marker(out, &pad, &format!("{s}_end"), true);
}

pub fn mermaid(d: &Diagram) -> String {
    write(d, &Mermaid)
}

pub fn dot(d: &Diagram) -> String {
    write(d, &Dot)
}

/// A Mermaid flowchart: groups are subgraphs, which edges can join
/// directly.
struct Mermaid;

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

impl Syntax for Mermaid {
    fn header(&self, out: &mut String) {
        out.push_str("flowchart TD\n");
    }

    fn footer(&self, out: &mut String) {
        out.push_str("  classDef fail fill:#fde2e1,stroke:#c0392b\n");
        out.push_str("  classDef succeed fill:#e3f6e5,stroke:#2e7d32\n");
        out.push_str("  classDef marker fill:#eeeeee,stroke:#888888\n");
    }

    fn marker(&self, out: &mut String, pad: &str, id: &str, end: bool) {
        let text = if end { "End" } else { "Start" };
        let _ = writeln!(out, "{pad}{id}((\"{text}\")):::marker");
    }

    fn node(&self, out: &mut String, pad: &str, id: &str, name: &str, kind: &str) {
        let name = mermaid_text(name);
        let line = match kind {
            "Choice" => format!("{id}{{\"{name}\"}}"),
            "Succeed" => format!("{id}([\"{name}\"]):::succeed"),
            "Fail" => format!("{id}([\"{name}\"]):::fail"),
            "Wait" => format!("{id}{{{{\"{name}\"}}}}"),
            _ => format!("{id}[\"{name}\"]"),
        };
        let _ = writeln!(out, "{pad}{line}");
    }

    fn open(&self, out: &mut String, pad: &str, id: &str, label: &str, _outer: bool) {
        let _ = writeln!(out, "{pad}subgraph {id} [\"{}\"]", mermaid_text(label));
    }

    fn close(&self, out: &mut String, pad: &str) {
        let _ = writeln!(out, "{pad}end");
    }

    fn edge(&self, out: &mut String, _d: &Diagram, e: &Edge, label: Option<&str>) {
        let arrow = if e.kind == EdgeKind::Catch {
            "-.->"
        } else {
            "-->"
        };
        let (from, to) = (endpoint_id(e.from), endpoint_id(e.to));
        let _ = match label {
            Some(l) => writeln!(out, "  {from} {arrow}|\"{}\"| {to}", mermaid_text(l)),
            None => writeln!(out, "  {from} {arrow} {to}"),
        };
    }
}

/// A Graphviz digraph: groups are clusters, which edges cannot join, so
/// an edge into a Parallel or Map goes to its first group's start and is
/// clipped at the cluster (`lhead`); one out of it leaves from that
/// group's end (`ltail`).
struct Dot;

/// Text inside a Graphviz `"..."` string.
fn dot_text(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace(['\n', '\r'], " ")
}

impl Syntax for Dot {
    fn header(&self, out: &mut String) {
        out.push_str(
            "digraph stepline {\n  compound=true;\n  rankdir=TB;\n  graph [fontname=\"Helvetica\"];\n  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n  edge [fontname=\"Helvetica\", fontsize=10];\n",
        );
    }

    fn footer(&self, out: &mut String) {
        out.push_str("}\n");
    }

    fn marker(&self, out: &mut String, pad: &str, id: &str, end: bool) {
        let (text, shape) = if end {
            ("End", "doublecircle")
        } else {
            ("Start", "circle")
        };
        let _ = writeln!(
            out,
            "{pad}{id} [label=\"{text}\", shape={shape}, style=filled, fillcolor=\"#eeeeee\"];"
        );
    }

    fn node(&self, out: &mut String, pad: &str, id: &str, name: &str, kind: &str) {
        let attrs = match kind {
            "Choice" => ", shape=diamond, style=\"\"",
            "Succeed" => ", style=\"rounded,filled\", fillcolor=\"#e3f6e5\"",
            "Fail" => ", style=\"rounded,filled\", fillcolor=\"#fde2e1\"",
            "Wait" => ", shape=hexagon, style=\"\"",
            _ => "",
        };
        let _ = writeln!(out, "{pad}{id} [label=\"{}\"{attrs}];", dot_text(name));
    }

    fn open(&self, out: &mut String, pad: &str, id: &str, label: &str, outer: bool) {
        let _ = writeln!(out, "{pad}subgraph cluster_{id} {{");
        let _ = writeln!(out, "{pad}  label=\"{}\";", dot_text(label));
        // Set on each cluster: a nested one inherits its parent's style.
        let style = if outer { "solid" } else { "dashed" };
        let _ = writeln!(out, "{pad}  style={style};");
    }

    fn close(&self, out: &mut String, pad: &str) {
        let _ = writeln!(out, "{pad}}}");
    }

    fn edge(&self, out: &mut String, d: &Diagram, e: &Edge, label: Option<&str>) {
        let mut attrs = Vec::new();
        let group = |end: Endpoint| match end {
            Endpoint::State(id) => d.nodes[id.index()].children.first().map(|&g| (id, g)),
            _ => None,
        };
        let from = match group(e.from) {
            Some((id, first)) => {
                attrs.push(format!("ltail=cluster_{}", node_id(id)));
                endpoint_id(Endpoint::End(first))
            }
            None => endpoint_id(e.from),
        };
        let to = match group(e.to) {
            Some((id, first)) => {
                attrs.push(format!("lhead=cluster_{}", node_id(id)));
                endpoint_id(Endpoint::Start(first))
            }
            None => endpoint_id(e.to),
        };
        if e.kind == EdgeKind::Catch {
            attrs.push("style=dashed".into());
        }
        if let Some(l) = label {
            attrs.push(format!("label=\"{}\"", dot_text(l)));
        }
        let attrs = if attrs.is_empty() {
            String::new()
        } else {
            format!(" [{}]", attrs.join(", "))
        };
        let _ = writeln!(out, "  {from} -> {to}{attrs};");
    }
}

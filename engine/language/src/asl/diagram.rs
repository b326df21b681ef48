//! The picture of a state machine: its states as nodes, every way from one
//! to another as a labelled edge, and Parallel branches and Map item
//! processors as nested groups.
//!
//! Built from the compiled [`StateMachine`], so it only exists for a valid
//! definition and says exactly what the interpreter will do (a Choice
//! rule's label is the condition the interpreter evaluates). It knows no
//! output format: `stepline graph` writes it as Mermaid or Graphviz, and a
//! web page can draw it from the same model.

use super::model::{
    Catcher, Condition, Operand, ScopeId, Source, StateId, StateKind, StateMachine, Transition,
};

/// One group per scope, indexed by [`ScopeId`]: the top level first, then
/// every Parallel branch and Map processor.
#[derive(Debug, Clone)]
pub struct Diagram {
    pub groups: Vec<Group>,
    /// One per state, indexed by [`StateId`].
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

/// A scope: the top level, one branch of a Parallel, or a Map's processor.
#[derive(Debug, Clone)]
pub struct Group {
    pub scope: ScopeId,
    pub kind: GroupKind,
    /// The Parallel or Map state it belongs to (none for the top level).
    pub owner: Option<StateId>,
    /// Its states, in definition order.
    pub states: Vec<StateId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupKind {
    Root,
    /// A Parallel branch, numbered from 1 as the console numbers them.
    Branch(usize),
    /// A Map state's ItemProcessor (or Iterator).
    Processor,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub state: StateId,
    pub name: String,
    /// The state's `Type`.
    pub kind: &'static str,
    pub scope: ScopeId,
    /// The groups nested in it: a Parallel's branches or a Map's processor.
    pub children: Vec<ScopeId>,
}

/// Where an edge starts or ends: a state, or the start or end marker of a
/// scope (its entry through StartAt, its exit through End, Succeed or Fail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Start(ScopeId),
    State(StateId),
    End(ScopeId),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeKind {
    /// From a scope's start marker to its StartAt state.
    Start,
    Next,
    /// Into a scope's end marker: End, Succeed or Fail.
    End,
    /// A Choice rule whose condition held.
    Choice,
    /// A Choice state's Default.
    Default,
    /// A Catch of a Task, Parallel or Map.
    Catch,
}

impl EdgeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeKind::Start => "start",
            EdgeKind::Next => "next",
            EdgeKind::End => "end",
            EdgeKind::Choice => "choice",
            EdgeKind::Default => "default",
            EdgeKind::Catch => "catch",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Edge {
    pub from: Endpoint,
    pub to: Endpoint,
    pub kind: EdgeKind,
    /// The condition of a Choice rule, `Default`, or the errors a Catch
    /// takes (`States.ALL`, `States.TaskFailed, Custom`).
    pub label: Option<String>,
}

impl GroupKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupKind::Root => "root",
            GroupKind::Branch(_) => "branch",
            GroupKind::Processor => "processor",
        }
    }
}

/// The diagram of a compiled state machine.
pub fn diagram(machine: &StateMachine) -> Diagram {
    let mut groups: Vec<Group> = machine
        .scopes
        .iter()
        .enumerate()
        .map(|(i, scope)| Group {
            scope: ScopeId(i as u32),
            kind: GroupKind::Root,
            owner: scope.owner,
            states: scope.states.clone(),
        })
        .collect();
    let mut nodes = Vec::with_capacity(machine.states.len());
    let mut edges = Vec::new();
    for scope in 0..machine.scopes.len() {
        let scope_id = ScopeId(scope as u32);
        edges.push(Edge {
            from: Endpoint::Start(scope_id),
            to: Endpoint::State(machine.scope(scope_id).start_at),
            kind: EdgeKind::Start,
            label: None,
        });
    }
    for (i, state) in machine.states.iter().enumerate() {
        let id = StateId(i as u32);
        let from = Endpoint::State(id);
        let mut children = Vec::new();
        match state.transition {
            Some(Transition::Next(next)) => edges.push(Edge {
                from,
                to: Endpoint::State(next),
                kind: EdgeKind::Next,
                label: None,
            }),
            Some(Transition::End) => edges.push(end(from, state.scope)),
            None => {}
        }
        let catch: &[Catcher] = match &state.kind {
            StateKind::Succeed | StateKind::Fail(_) => {
                edges.push(end(from, state.scope));
                &[]
            }
            StateKind::Choice(choice) => {
                for rule in &choice.choices {
                    edges.push(Edge {
                        from,
                        to: Endpoint::State(rule.next),
                        kind: EdgeKind::Choice,
                        label: Some(condition_text(&rule.condition)),
                    });
                }
                if let Some(default) = choice.default {
                    edges.push(Edge {
                        from,
                        to: Endpoint::State(default),
                        kind: EdgeKind::Default,
                        label: Some("Default".to_owned()),
                    });
                }
                &[]
            }
            StateKind::Task(task) => &task.catch,
            StateKind::Parallel(parallel) => {
                for (n, branch) in parallel.branches.iter().enumerate() {
                    groups[branch.index()].kind = GroupKind::Branch(n + 1);
                    children.push(*branch);
                }
                &parallel.catch
            }
            StateKind::Map(map) => {
                groups[map.processor.index()].kind = GroupKind::Processor;
                children.push(map.processor);
                &map.catch
            }
            StateKind::Pass(_) | StateKind::Wait(_) => &[],
        };
        for catcher in catch {
            edges.push(Edge {
                from,
                to: Endpoint::State(catcher.next),
                kind: EdgeKind::Catch,
                label: Some(catcher.error_equals.join(", ")),
            });
        }
        nodes.push(Node {
            state: id,
            name: state.name.to_string(),
            kind: state.kind.type_name(),
            scope: state.scope,
            children,
        });
    }
    Diagram {
        groups,
        nodes,
        edges,
    }
}

fn end(from: Endpoint, scope: ScopeId) -> Edge {
    Edge {
        from,
        to: Endpoint::End(scope),
        kind: EdgeKind::End,
        label: None,
    }
}

/// A Choice condition as a person reads it: `$.n NumericGreaterThan 10`,
/// `And(...)`, a JSONata condition as `{% ... %}`.
pub fn condition_text(condition: &Condition) -> String {
    match condition {
        Condition::And(all) => format!("And({})", joined(all)),
        Condition::Or(any) => format!("Or({})", joined(any)),
        Condition::Not(inner) => format!("Not({})", condition_text(inner)),
        Condition::Compare {
            variable,
            operator,
            operand,
        } => {
            let (suffix, value) = match operand {
                Operand::String(s) => ("", serde_json::Value::from(s.as_str()).to_string()),
                Operand::Number(n) => ("", number_text(*n)),
                Operand::Bool(b) => ("", b.to_string()),
                Operand::Timestamp(t) => ("", format!("\"{}\"", t.to_rfc3339())),
                Operand::Pattern(p) => ("", format!("\"{}\"", pattern_text(&p.pieces))),
                Operand::Path(path) => ("Path", path.to_string()),
            };
            format!("{variable} {}{suffix} {value}", operator.name())
        }
        Condition::Jsonata(Source::Literal(b)) => b.to_string(),
        Condition::Jsonata(Source::Jsonata(expr)) => format!("{{% {} %}}", expr.body()),
        Condition::Jsonata(Source::Path(path)) => path.to_string(),
        Condition::Jsonata(Source::Call(call)) => call.function.to_string(),
    }
}

/// A number as it was most likely written: `10`, not `10.0`.
fn number_text(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

fn joined(conditions: &[Condition]) -> String {
    conditions
        .iter()
        .map(condition_text)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A StringMatches pattern written back with its stars and escapes.
fn pattern_text(pieces: &[String]) -> String {
    pieces
        .iter()
        .map(|p| p.replace('\\', "\\\\").replace('*', "\\*"))
        .collect::<Vec<_>>()
        .join("*")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(text: &str) -> StateMachine {
        let v = crate::asl::validate(text.as_bytes());
        v.machine
            .unwrap_or_else(|| panic!("invalid: {:?}", v.diagnostics))
    }

    fn edge(d: &Diagram, m: &StateMachine, from: &str, to: &str) -> Option<(EdgeKind, String)> {
        let name = |e: Endpoint| match e {
            Endpoint::Start(s) => format!("start:{}", s.0),
            Endpoint::End(s) => format!("end:{}", s.0),
            Endpoint::State(id) => m.state(id).name.to_string(),
        };
        d.edges
            .iter()
            .find(|e| name(e.from) == from && name(e.to) == to)
            .map(|e| (e.kind, e.label.clone().unwrap_or_default()))
    }

    #[test]
    fn every_transition_is_an_edge_with_its_label() {
        let m = compile(
            r#"{"StartAt": "Pick", "States": {
                "Pick": {"Type": "Choice", "Choices": [
                    {"Variable": "$.n", "NumericGreaterThan": 10, "Next": "Fan"},
                    {"And": [{"Variable": "$.s", "StringMatches": "a*b"},
                             {"Not": {"Variable": "$.t", "BooleanEqualsPath": "$.u"}}], "Next": "Each"}
                ], "Default": "Done"},
                "Fan": {"Type": "Parallel", "Branches": [
                    {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}},
                    {"StartAt": "B", "States": {"B": {"Type": "Fail", "Error": "X"}}}
                ], "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Done"}], "Next": "Done"},
                "Each": {"Type": "Map", "ItemProcessor": {"StartAt": "C", "States": {
                    "C": {"Type": "Succeed"}}}, "End": true},
                "Done": {"Type": "Succeed"}
            }}"#,
        );
        let d = diagram(&m);
        assert_eq!(d.groups.len(), 4);
        assert_eq!(d.groups[0].kind, GroupKind::Root);
        assert_eq!(
            edge(&d, &m, "Pick", "Fan"),
            Some((EdgeKind::Choice, "$.n NumericGreaterThan 10".into()))
        );
        assert_eq!(
            edge(&d, &m, "Pick", "Each"),
            Some((
                EdgeKind::Choice,
                "And($.s StringMatches \"a*b\", Not($.t BooleanEqualsPath $.u))".into()
            ))
        );
        assert_eq!(
            edge(&d, &m, "Pick", "Done"),
            Some((EdgeKind::Default, "Default".into()))
        );
        assert_eq!(
            d.edges
                .iter()
                .filter(|e| e.kind == EdgeKind::Catch)
                .map(|e| e.label.clone().unwrap_or_default())
                .collect::<Vec<_>>(),
            vec!["States.ALL".to_owned()]
        );
        assert_eq!(
            edge(&d, &m, "start:0", "Pick").map(|e| e.0),
            Some(EdgeKind::Start)
        );
        assert_eq!(
            edge(&d, &m, "Each", "end:0").map(|e| e.0),
            Some(EdgeKind::End)
        );
        let fan = m.find(ScopeId::ROOT, "Fan").expect("Fan");
        let branches = &d.nodes[fan.index()].children;
        assert_eq!(branches.len(), 2);
        assert_eq!(d.groups[branches[1].index()].kind, GroupKind::Branch(2));
        let b = d.groups[branches[1].index()].scope;
        assert_eq!(
            edge(&d, &m, "B", &format!("end:{}", b.0)).map(|e| e.0),
            Some(EdgeKind::End)
        );
        let each = m.find(ScopeId::ROOT, "Each").expect("Each");
        let processor = d.nodes[each.index()].children[0];
        assert_eq!(d.groups[processor.index()].kind, GroupKind::Processor);
        assert_eq!(d.groups[processor.index()].owner, Some(each));
    }

    #[test]
    fn jsonata_conditions_keep_their_text() {
        let m = compile(
            r#"{"QueryLanguage": "JSONata", "StartAt": "Pick", "States": {
                "Pick": {"Type": "Choice", "Choices": [
                    {"Condition": "{% $states.input.n > 3 %}", "Next": "Done"}], "Default": "Done"},
                "Done": {"Type": "Succeed"}}}"#,
        );
        let d = diagram(&m);
        assert_eq!(
            edge(&d, &m, "Pick", "Done"),
            Some((EdgeKind::Choice, "{% $states.input.n > 3 %}".into()))
        );
    }
}

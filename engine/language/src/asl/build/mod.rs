//! From a parsed document to a [`StateMachine`], checking every rule the
//! schema cannot express and reporting every problem, not only the first.
//!
//! The builder is lenient: a field of the wrong JSON type was already
//! reported by the schema, so here it is skipped silently and the build goes
//! on to find the next problem. The model it produces is used only when no
//! error was reported, so placeholders left behind an error never run.
//!
//! Three passes: `collect` finds every scope and state and gives each an id
//! (so transitions can be resolved wherever they point), `states` lowers each
//! state's fields, and `graph` checks reachability and terminal states.

mod choice;
mod fields;
mod graph;
mod states;

use std::collections::HashMap;

use super::diagnostic::{Code, Diagnostic, Severity};
use super::model::{QueryLanguage, Scope, ScopeId, StateId, StateMachine};
use super::source::{Document, Node, NodeValue};
use super::suggest::{closest, did_you_mean};
use crate::pointer::pointer_push;

/// The longest state name AWS accepts.
pub const MAX_STATE_NAME_LEN: usize = 80;

/// Builds the model from `doc`, appending diagnostics to `diagnostics`.
/// Returns `None` when `doc` is not even an object.
pub(crate) fn build(doc: &Document, diagnostics: &mut Vec<Diagnostic>) -> Option<StateMachine> {
    let root = &doc.root;
    if !matches!(root.value, NodeValue::Object(_)) {
        return None;
    }
    let mut builder = Builder::new(doc);
    // A misspelt "jsonata" was reported by the schema; reading it as meant
    // avoids a flood of follow-on errors.
    builder.query_language = match root.member("QueryLanguage").and_then(|m| m.value.as_str()) {
        Some(ql) if ql.eq_ignore_ascii_case("JSONata") => QueryLanguage::Jsonata,
        _ => QueryLanguage::JsonPath,
    };
    builder.collect_scope(root, String::new(), None);
    builder.report_duplicate_keys();
    let states = builder.lower_states();
    let scopes = builder.finish_scopes();
    let machine = StateMachine {
        comment: root
            .member("Comment")
            .and_then(|m| m.value.as_str())
            .map(str::to_owned),
        version: root
            .member("Version")
            .and_then(|m| m.value.as_str())
            .map(str::to_owned),
        timeout_seconds: root
            .member("TimeoutSeconds")
            .and_then(|m| match &m.value.value {
                NodeValue::Number(n) => n.as_u64(),
                _ => None,
            }),
        query_language: builder.query_language,
        states,
        scopes,
    };
    graph::check(&mut builder, &machine);
    diagnostics.append(&mut builder.diagnostics);
    Some(machine)
}

/// The state types ASL defines.
const STATE_TYPES: [&str; 8] = [
    "Pass", "Task", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map",
];

/// A state's Type, read as meant: a misspelt one ("Succed", "pass") was
/// reported by the schema with its "did you mean", and building the state
/// as that type spares follow-on errors (a Succeed asked for a Next).
fn state_type(node: &Node) -> Option<&str> {
    let written = node.member("Type")?.value.as_str()?;
    if STATE_TYPES.contains(&written) {
        return Some(written);
    }
    match closest(written, &STATE_TYPES)[..] {
        [meant] => Some(*meant),
        _ => Some(written),
    }
}

/// A scope found by `collect`, before its states are lowered.
struct ScopeSlot<'d> {
    pointer: String,
    node: &'d Node,
    owner: Option<StateId>,
    names: HashMap<&'d str, StateId>,
    states: Vec<StateId>,
    start_at: Option<StateId>,
}

/// A state found by `collect`.
struct StateSlot<'d> {
    name: &'d str,
    pointer: String,
    node: &'d Node,
    scope: ScopeId,
    /// Branches of a Parallel, or the processor of a Map, in order.
    children: Vec<ScopeId>,
    is_duplicate: bool,
}

pub(crate) struct Builder<'d> {
    doc: &'d Document,
    diagnostics: Vec<Diagnostic>,
    query_language: QueryLanguage,
    scopes: Vec<ScopeSlot<'d>>,
    slots: Vec<StateSlot<'d>>,
    /// Scopes with a transition to a missing state: their graph is not
    /// known, so no conclusion is drawn about how they end.
    unresolved: Vec<ScopeId>,
    /// The states a broken transition probably meant (its "did you mean"
    /// candidates), by scope: the graph check counts them as reached, so
    /// one typo gives one error and no UNREACHABLE_STATE for its target.
    meant: Vec<(ScopeId, StateId)>,
    /// Every state name seen so far, with the pointer of its first use:
    /// names are unique across the whole state machine, nested scopes too.
    all_names: HashMap<&'d str, String>,
}

impl<'d> Builder<'d> {
    fn new(doc: &'d Document) -> Self {
        Self {
            doc,
            diagnostics: Vec::new(),
            query_language: QueryLanguage::JsonPath,
            scopes: Vec::new(),
            slots: Vec::new(),
            unresolved: Vec::new(),
            meant: Vec::new(),
            all_names: HashMap::new(),
        }
    }

    /// Reports a problem at the value `pointer` designates.
    fn error(&mut self, code: Code, pointer: &str, message: impl Into<String>) {
        self.report(Severity::Error, code, pointer, false, message.into());
    }

    /// Reports a problem at the key of the member `pointer` designates.
    fn error_at_key(&mut self, code: Code, pointer: &str, message: impl Into<String>) {
        self.report(Severity::Error, code, pointer, true, message.into());
    }

    /// Reports a problem at a character inside the string value `pointer`
    /// designates (a JSONata syntax error's own place).
    fn error_in_string(&mut self, code: Code, pointer: &str, chars: usize, message: String) {
        let position = self.doc.string_char_position(pointer, chars);
        self.diagnostics.push(Diagnostic {
            severity: Severity::Error,
            code,
            message,
            pointer: pointer.to_owned(),
            line: position.line,
            column: position.column,
        });
    }

    fn warning(&mut self, code: Code, pointer: &str, at_key: bool, message: impl Into<String>) {
        self.report(Severity::Warning, code, pointer, at_key, message.into());
    }

    fn report(
        &mut self,
        severity: Severity,
        code: Code,
        pointer: &str,
        at_key: bool,
        message: String,
    ) {
        let position = if at_key {
            self.doc.key_position(pointer)
        } else {
            self.doc.value_position(pointer)
        };
        self.diagnostics.push(Diagnostic {
            severity,
            code,
            message,
            pointer: pointer.to_owned(),
            line: position.line,
            column: position.column,
        });
    }

    /// Finds the states of one scope (recursively, its nested scopes) and
    /// gives each an id.
    fn collect_scope(
        &mut self,
        node: &'d Node,
        pointer: String,
        owner: Option<StateId>,
    ) -> ScopeId {
        let scope_id = ScopeId(self.scopes.len() as u32);
        self.scopes.push(ScopeSlot {
            pointer: pointer.clone(),
            node,
            owner,
            names: HashMap::new(),
            states: Vec::new(),
            start_at: None,
        });
        let states_pointer = pointer_push(&pointer, "States");
        let members = node.member("States").map_or(&[][..], |m| m.value.members());
        let mut ids = Vec::with_capacity(members.len());
        for member in members {
            let id = StateId(self.slots.len() as u32);
            let state_pointer = pointer_push(&states_pointer, &member.key);
            self.check_state_name(&member.key, &state_pointer);
            let mut duplicate = false;
            if let Some(first) = self.all_names.get(member.key.as_str()) {
                let message = format!(
                    "there is already a state called '{}' (at {first}); state names must be unique in the whole state machine, nested branches and Map processors included",
                    member.key
                );
                self.error_at_key(Code::DuplicateStateName, &state_pointer, message);
                duplicate = true;
            } else {
                self.all_names.insert(&member.key, state_pointer.clone());
            }
            // Transitions resolve within the scope, whatever other scopes hold.
            let names = &mut self.scopes[scope_id.index()].names;
            let shadowed = names.contains_key(member.key.as_str());
            if !shadowed {
                names.insert(&member.key, id);
            }
            self.slots.push(StateSlot {
                name: &member.key,
                pointer: state_pointer,
                node: &member.value,
                scope: scope_id,
                children: Vec::new(),
                // The second of two same-named states in one scope can never
                // be reached by name; the duplicate error says enough.
                is_duplicate: duplicate && shadowed,
            });
            self.scopes[scope_id.index()].states.push(id);
            ids.push(id);
        }
        for id in ids {
            let children = self.collect_children(id);
            self.slots[id.index()].children = children;
        }
        let start_at = self.resolve_start_at(scope_id, node, &pointer);
        self.scopes[scope_id.index()].start_at = start_at;
        scope_id
    }

    /// The nested scopes of a Parallel or Map state.
    fn collect_children(&mut self, id: StateId) -> Vec<ScopeId> {
        let slot = &self.slots[id.index()];
        let (node, pointer) = (slot.node, slot.pointer.clone());
        match state_type(node) {
            Some("Parallel") => {
                let branches_pointer = pointer_push(&pointer, "Branches");
                let branches = node.member("Branches").map_or(&[][..], |m| m.value.items());
                branches
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| matches!(b.value, NodeValue::Object(_)))
                    .map(|(i, b)| {
                        self.collect_scope(b, format!("{branches_pointer}/{i}"), Some(id))
                    })
                    .collect()
            }
            Some("Map") => ["ItemProcessor", "Iterator"]
                .into_iter()
                .filter_map(|key| {
                    let member = node.member(key)?;
                    matches!(member.value.value, NodeValue::Object(_)).then_some((key, member))
                })
                .map(|(key, m)| self.collect_scope(&m.value, pointer_push(&pointer, key), Some(id)))
                .collect(),
            _ => Vec::new(),
        }
    }

    fn resolve_start_at(&mut self, scope: ScopeId, node: &Node, pointer: &str) -> Option<StateId> {
        let member = node.member("StartAt")?;
        // Without a States object (reported by the schema) there is nothing
        // to look the name up in.
        if !matches!(
            node.member("States").map(|m| &m.value.value),
            Some(NodeValue::Object(_))
        ) {
            return None;
        }
        let name = member.value.as_str()?;
        let target = self.scopes[scope.index()].names.get(name).copied();
        if target.is_none() {
            let message = self.missing_target_message("StartAt", name, scope);
            self.error(
                Code::MissingTransitionTarget,
                &pointer_push(pointer, "StartAt"),
                message,
            );
        }
        target
    }

    /// Resolves a transition target in a scope, reporting it when missing.
    fn resolve(&mut self, scope: ScopeId, field_pointer: &str, field: &str, name: &str) -> StateId {
        match self.scopes[scope.index()].names.get(name) {
            Some(&id) => id,
            None => {
                let message = self.missing_target_message(field, name, scope);
                self.error(Code::MissingTransitionTarget, field_pointer, message);
                self.unresolved.push(scope);
                StateId(0)
            }
        }
    }

    /// Says that `name` is not a state of `scope`, offering the nearest
    /// names, and remembers those as what the transition meant.
    fn missing_target_message(&mut self, field: &str, name: &str, scope: ScopeId) -> String {
        let slot = &self.scopes[scope.index()];
        let mut message = format!("{field} names the state '{name}', but ");
        if self.all_names.contains_key(name) {
            message.push_str(
                "that state is in another scope; a transition can only go to a state of the same States object (a Parallel branch or Map processor is its own scope)",
            );
            return message;
        }
        let mut known: Vec<&str> = slot.names.keys().copied().collect();
        known.sort_unstable();
        message.push_str("there is no state with that name");
        let mut near: Vec<&str> = closest(name, &known).into_iter().copied().collect();
        if near.is_empty() {
            // Stray spaces around a name are further than two edits away.
            near.extend(known.iter().find(|k| k.trim() == name.trim()).copied());
        }
        if let Some(hint) = did_you_mean(&near) {
            message.push_str(&format!("; {hint}"));
        } else if !known.is_empty() && known.len() <= 10 {
            message.push_str(&format!(" (states here: {})", known.join(", ")));
        }
        let meant: Vec<(ScopeId, StateId)> = near.iter().map(|n| (scope, slot.names[n])).collect();
        self.meant.extend(meant);
        message
    }

    fn check_state_name(&mut self, name: &str, pointer: &str) {
        let problem = if name.is_empty() {
            Some("a state name must not be empty".to_owned())
        } else if name.chars().count() > MAX_STATE_NAME_LEN {
            Some(format!(
                "the state name is {} characters long; the limit is {MAX_STATE_NAME_LEN}",
                name.chars().count()
            ))
        } else {
            name.chars().find(|c| c.is_control()).map(|c| {
                format!(
                    "a state name must not contain control characters (found U+{:04X})",
                    c as u32
                )
            })
        };
        if let Some(message) = problem {
            self.error_at_key(Code::InvalidStateName, pointer, message);
        }
    }

    /// Turns duplicate JSON keys into diagnostics; duplicate state names were
    /// already reported as DUPLICATE_STATE_NAME.
    fn report_duplicate_keys(&mut self) {
        let doc = self.doc;
        for dup in &doc.duplicates {
            let parent = dup
                .pointer
                .rsplit_once('/')
                .map_or("", |(parent, _)| parent);
            let is_state_name = self
                .scopes
                .iter()
                .any(|s| pointer_push(&s.pointer, "States") == parent);
            if is_state_name {
                continue;
            }
            let first = doc.position(dup.first_offset);
            let message = format!(
                "the key '{}' appears twice in this object (first at line {}, column {}); JSON tools disagree on which one counts, so keep only one",
                dup.key, first.line, first.column
            );
            self.error_at_key(Code::DuplicateJsonKey, &dup.pointer, message);
        }
    }

    fn finish_scopes(&mut self) -> Vec<Scope> {
        self.scopes
            .iter()
            .map(|slot| Scope {
                start_at: slot.start_at.unwrap_or(StateId(0)),
                states: slot.states.clone(),
                owner: slot.owner,
                comment: slot
                    .node
                    .member("Comment")
                    .and_then(|m| m.value.as_str())
                    .map(str::to_owned),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::asl::{Code, Diagnostic, Severity, validate};

    fn diagnostics(definition: Value) -> Vec<Diagnostic> {
        validate(definition.to_string().as_bytes()).diagnostics
    }

    /// The one message with `code` at `pointer`.
    fn message(found: &[Diagnostic], code: Code, pointer: &str) -> String {
        let hits: Vec<&Diagnostic> = found
            .iter()
            .filter(|d| d.code == code && d.pointer == pointer)
            .collect();
        assert_eq!(hits.len(), 1, "{code} at {pointer} in {found:#?}");
        hits[0].message.clone()
    }

    #[test]
    fn a_misspelt_target_names_the_nearest_state_wherever_it_is() {
        let found = diagnostics(json!({
            "StartAt": "Chek",
            "States": {
                "Check": {"Type": "Choice",
                          "Choices": [{"Variable": "$.x", "IsPresent": true, "Next": "Shipp"}],
                          "Default": "pay"},
                "Pay": {"Type": "Task", "Resource": "arn:aws:states:::http:invoke",
                        "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Faild"}],
                        "Next": "Shp"},
                "Ship": {"Type": "Succeed"},
                "Failed": {"Type": "Fail"}
            }
        }));
        for (pointer, field, written, meant) in [
            ("/StartAt", "StartAt", "Chek", "Check"),
            ("/States/Check/Choices/0/Next", "Next", "Shipp", "Ship"),
            ("/States/Check/Default", "Default", "pay", "Pay"),
            ("/States/Pay/Catch/0/Next", "Next", "Faild", "Failed"),
            ("/States/Pay/Next", "Next", "Shp", "Ship"),
        ] {
            assert_eq!(
                message(&found, Code::MissingTransitionTarget, pointer),
                format!(
                    "{field} names the state '{written}', but there is no state with that name; did you mean '{meant}'?"
                )
            );
        }
    }

    #[test]
    fn a_far_fetched_target_lists_the_states_instead() {
        let found = diagnostics(json!({
            "StartAt": "A",
            "States": {"A": {"Type": "Pass", "Next": "Zebra"}, "B": {"Type": "Succeed"}}
        }));
        assert_eq!(
            message(&found, Code::MissingTransitionTarget, "/States/A/Next"),
            "Next names the state 'Zebra', but there is no state with that name (states here: A, B)"
        );
    }

    #[test]
    fn a_misspelt_type_gets_a_suggestion_and_no_follow_on_error() {
        let found = diagnostics(json!({
            "StartAt": "A",
            "States": {"A": {"Type": "pass", "Next": "B"}, "B": {"Type": "Succed"}}
        }));
        assert!(
            message(&found, Code::SchemaValidationFailed, "/States/B/Type")
                .ends_with("not \"Succed\"; did you mean 'Succeed'?"),
            "{found:#?}"
        );
        assert!(
            message(&found, Code::SchemaValidationFailed, "/States/A/Type")
                .ends_with("not \"pass\"; did you mean 'Pass'?"),
            "{found:#?}"
        );
        // Read as the Succeed it was meant to be, B needs no Next or End.
        assert_eq!(found.len(), 2, "{found:#?}");
    }

    #[test]
    fn a_typo_does_not_make_the_state_it_meant_unreachable() {
        // "Proces" meant Process: one error, and neither Process nor Done
        // (behind it) is reported unreachable.
        let found = diagnostics(json!({
            "StartAt": "Validate",
            "States": {
                "Validate": {"Type": "Pass", "Next": "Proces"},
                "Process": {"Type": "Pass", "Next": "Done"},
                "Done": {"Type": "Succeed"}
            }
        }));
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].code, Code::MissingTransitionTarget);
        assert!(found[0].message.ends_with("did you mean 'Process'?"));
    }

    #[test]
    fn states_no_typo_points_at_are_still_unreachable() {
        // "Zebra" is near no state: Orphan is really cut off and says so.
        let found = diagnostics(json!({
            "StartAt": "A",
            "States": {
                "A": {"Type": "Pass", "Next": "Zebra"},
                "Orphan": {"Type": "Succeed"}
            }
        }));
        let warnings: Vec<&Diagnostic> = found
            .iter()
            .filter(|d| d.severity == Severity::Warning)
            .collect();
        assert_eq!(warnings.len(), 1, "{found:#?}");
        assert_eq!(warnings[0].code, Code::UnreachableState);
        assert_eq!(warnings[0].pointer, "/States/Orphan");
    }
}

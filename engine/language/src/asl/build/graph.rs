//! Whole-graph checks, per scope: every state reachable from StartAt
//! (a warning otherwise), and some way to finish (an error otherwise).
//!
//! A transition to a missing state already has its error. The states its
//! "did you mean" names count as reached too (with what follows them), so
//! a typo does not also warn that the state it meant is unreachable.

use super::Builder;
use crate::asl::diagnostic::Code;
use crate::asl::model::{ScopeId, StateId, StateKind, StateMachine, Transition};

pub(super) fn check(builder: &mut Builder<'_>, machine: &StateMachine) {
    let mut missing_end = Vec::new();
    let mut unreachable_states = Vec::new();
    for (scope_index, scope) in builder.scopes.iter().enumerate() {
        let Some(start) = scope.start_at else {
            continue; // StartAt missing or unknown: already reported
        };
        let mut seen = vec![false; machine.states.len()];
        let mut stack = vec![start];
        stack.extend(
            builder
                .meant
                .iter()
                .filter(|(scope, _)| scope.index() == scope_index)
                .map(|(_, id)| *id),
        );
        let mut can_finish = false;
        while let Some(id) = stack.pop() {
            if std::mem::replace(&mut seen[id.index()], true) {
                continue;
            }
            let state = machine.state(id);
            if state.scope.index() != scope_index {
                continue; // a placeholder target left behind an error
            }
            can_finish |= is_terminal(machine, id);
            stack.extend(successors(machine, id));
        }
        let mut unreachable = Vec::new();
        for &id in &scope.states {
            if !seen[id.index()] && !builder.slots[id.index()].is_duplicate {
                unreachable.push(id);
            }
        }
        let graph_known = !builder.unresolved.contains(&ScopeId(scope_index as u32));
        if !can_finish && graph_known {
            missing_end.push(crate::pointer::pointer_push(&scope.pointer, "StartAt"));
        }
        unreachable_states.extend(unreachable);
    }
    for pointer in missing_end {
        builder.error(
            Code::MissingEndState,
            &pointer,
            "no state here can end the execution: from StartAt, every path loops forever; add a Succeed or Fail state, or \"End\": true on the last state",
        );
    }
    for id in unreachable_states {
        let slot = &builder.slots[id.index()];
        let (name, pointer) = (slot.name, slot.pointer.clone());
        let message = format!(
            "the state '{name}' can never run: no StartAt, Next, Default or Catch leads to it"
        );
        builder.warning(Code::UnreachableState, &pointer, true, message);
    }
}

fn is_terminal(machine: &StateMachine, id: StateId) -> bool {
    let state = machine.state(id);
    matches!(state.kind, StateKind::Succeed | StateKind::Fail(_))
        || state.transition == Some(Transition::End)
}

/// The states `id` can go to next: Next, Choice targets, Catch targets.
fn successors(machine: &StateMachine, id: StateId) -> Vec<StateId> {
    let state = machine.state(id);
    let mut out = Vec::new();
    if let Some(Transition::Next(next)) = state.transition {
        out.push(next);
    }
    match &state.kind {
        StateKind::Choice(choice) => {
            out.extend(choice.choices.iter().map(|rule| rule.next));
            out.extend(choice.default);
        }
        StateKind::Task(task) => out.extend(task.catch.iter().map(|c| c.next)),
        StateKind::Parallel(parallel) => out.extend(parallel.catch.iter().map(|c| c.next)),
        StateKind::Map(map) => out.extend(map.catch.iter().map(|c| c.next)),
        _ => {}
    }
    out
}

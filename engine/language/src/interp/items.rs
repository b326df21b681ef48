//! How a distributed Map's children get their input, outside the
//! execution: the runtime's Map Run runner asks [`ItemSelection`] for each
//! item's input, with the same ItemSelector evaluation an inline Map's
//! iterations get (`Evaluator::map_item`).

use std::sync::Arc;

use serde_json::Value;

use super::Data;
use super::context::VarScope;
use super::failure::Failure;
use super::flow::Evaluator;
use crate::asl::model::{StateId, StateKind, StateMachine};
use crate::query::eval::SplitMix64;

/// How a distributed Map's children get their input: the Map state's
/// ItemSelector evaluated with `$$.Map.Item` set, or the item itself.
/// Built once per Map Run; pure like the rest of the interpreter.
#[derive(Debug)]
pub struct ItemSelection {
    machine: Arc<StateMachine>,
    state: StateId,
    raw_input: Data,
    effective: Data,
    context: Value,
}

impl ItemSelection {
    pub fn new(machine: Arc<StateMachine>, spec: &crate::map_run::MapRunSpec) -> Self {
        Self {
            machine,
            state: StateId(spec.state),
            raw_input: Data::new(spec.raw_input.clone()),
            effective: Data::new(spec.effective.clone()),
            context: spec.context.clone(),
        }
    }

    /// The input of the child for `item` at `index`.
    pub fn select(&self, index: usize, item: Value) -> Result<Value, Failure> {
        let state = self.machine.state(self.state);
        let StateKind::Map(map) = &state.kind else {
            return Ok(item);
        };
        let Some(selector) = map.item_selector.as_ref() else {
            return Ok(item);
        };
        let mut context = self.context.clone();
        if let Value::Object(root) = &mut context {
            root.insert(
                "Map".into(),
                serde_json::json!({"Item": {"Index": index, "Value": item}}),
            );
        }
        let vars = VarScope::default();
        // ItemSelector has no use for randomness but States.UUID: seeded
        // by the index, so a child started again gets the same input.
        let mut random = SplitMix64(index as u64);
        let mut ev = Evaluator {
            state,
            run_input: &self.raw_input,
            entered_event: 0,
            context: &context,
            vars: &vars,
            random: &mut random,
        };
        ev.map_item(Some(selector), &self.effective, Data::new(Value::Null))
            .map(Arc::unwrap_or_clone)
    }
}

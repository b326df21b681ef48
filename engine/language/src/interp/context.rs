//! What an execution knows about itself: the context object (`$$`) and the
//! variables visible to each branch.
//!
//! The context object holds what AWS's holds, field for field (the
//! Developer Guide's "Context object" page and AWS's recorded
//! executions): `Execution` (`Id`, `Input`, `Name`, `RoleArn`,
//! `StartTime`, and `RedriveCount` for a STANDARD execution only: an
//! EXPRESS execution is never redriven and AWS writes none), `State`
//! (`EnteredTime`, `Name`, and `RetryCount` only in the states that retry:
//! Task, Parallel and Map), `StateMachine` (`Id`, `Name`), `Task`
//! (`Token`, while a `.waitForTaskToken` Task's fields are evaluated) and
//! `Map` (`Item.Index`, `Item.Value`, while a Map selects an iteration's
//! input).

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use crate::query::eval::Variables;

/// Facts about an execution that the context object exposes.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionInfo {
    pub execution_arn: String,
    pub name: String,
    pub role_arn: String,
    pub state_machine_arn: String,
    pub state_machine_name: String,
    pub start_time: DateTime<Utc>,
    pub region: String,
    pub redrive_count: u32,
}

impl ExecutionInfo {
    /// An EXPRESS execution: its ARN, as AWS writes it, is
    /// `arn:PARTITION:states:REGION:ACCOUNT:express:MACHINE:NAME:ID`.
    pub fn is_express(&self) -> bool {
        self.execution_arn.split(':').nth(5) == Some("express")
    }
}

/// The context object, kept as one JSON value and updated in place before a
/// state's fields are evaluated (the interpreter runs one state at a time).
/// It is built on first use: most states never read `$$`.
#[derive(Debug)]
pub(super) struct Context {
    pub info: ExecutionInfo,
    input: Arc<Value>,
    value: Option<Value>,
    /// What `$$.State` holds now, to skip rewriting it (a Map state
    /// prepares the context once per item, with the same state and time).
    current: Option<(DateTime<Utc>, Option<u32>)>,
    /// `$$.Task.Token` while a `.waitForTaskToken` Task's fields are
    /// evaluated.
    pub task_token: Option<String>,
}

/// What `$$` reads before any state needed the context object (never
/// observed: states that read it call `enter_state` first).
static UNPREPARED: Value = Value::Null;

/// AWS's timestamp format in the context object: ISO 8601 with milliseconds.
pub fn iso_millis(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl Context {
    pub fn new(info: ExecutionInfo) -> Self {
        Self {
            info,
            input: Arc::new(Value::Null),
            value: None,
            current: None,
            task_token: None,
        }
    }

    pub fn set_input(&mut self, input: Arc<Value>) {
        self.input = input;
        self.value = None;
        self.current = None;
    }

    pub fn value(&self) -> &Value {
        self.value.as_ref().unwrap_or(&UNPREPARED)
    }

    fn build(info: &ExecutionInfo, input: &Value) -> Value {
        let mut execution = json!({
            "Id": info.execution_arn,
            "Input": input,
            "Name": info.name,
            "RoleArn": info.role_arn,
            "StartTime": iso_millis(info.start_time),
        });
        if !info.is_express() {
            execution["RedriveCount"] = json!(info.redrive_count);
        }
        json!({
            "Execution": execution,
            "State": {"EnteredTime": "", "Name": ""},
            "StateMachine": {"Id": info.state_machine_arn, "Name": info.state_machine_name},
        })
    }

    /// Sets `$$.State` (and `$$.Map`, while a Map state selects an
    /// iteration's item) for the state about to be evaluated.
    /// `retry_count` is `Some` for the states that retry (Task, Parallel,
    /// Map): only they have `$$.State.RetryCount`.
    pub fn enter_state(
        &mut self,
        name: &str,
        entered: DateTime<Utc>,
        retry_count: Option<u32>,
        map_item: Option<(usize, &Value)>,
    ) {
        let (info, input) = (&self.info, &self.input);
        let value = self
            .value
            .get_or_insert_with(|| Self::build(info, input.as_ref()));
        let Value::Object(root) = value else {
            return;
        };
        if let Some(Value::Object(state)) = root.get_mut("State") {
            let same_name = state.get("Name").and_then(Value::as_str) == Some(name);
            if !same_name || self.current != Some((entered, retry_count)) {
                state.insert("EnteredTime".into(), Value::String(iso_millis(entered)));
                state.insert("Name".into(), Value::String(name.to_owned()));
                match retry_count {
                    Some(count) => state.insert("RetryCount".into(), json!(count)),
                    None => state.remove("RetryCount"),
                };
                self.current = Some((entered, retry_count));
            }
        }
        match &self.task_token {
            Some(token) => {
                root.insert("Task".into(), json!({"Token": token}));
            }
            None => {
                root.remove("Task");
            }
        }
        match map_item {
            Some((index, item)) => {
                root.insert(
                    "Map".into(),
                    json!({"Item": {"Index": index, "Value": item}}),
                );
            }
            None => {
                root.remove("Map");
            }
        }
    }
}

/// One branch's variables, with the enclosing branch's behind it: a Map
/// iteration or Parallel branch reads outer variables, and its own
/// assignments stay its own.
#[derive(Debug, Clone, Default)]
pub(super) struct VarScope {
    vars: Map<String, Value>,
    parent: Option<Arc<VarScope>>,
}

impl VarScope {
    pub fn child_of(parent: Arc<VarScope>) -> Self {
        Self {
            vars: Map::new(),
            parent: Some(parent),
        }
    }

    pub fn set(&mut self, name: String, value: Value) {
        self.vars.insert(name, value);
    }
}

impl Variables for VarScope {
    fn get(&self, name: &str) -> Option<&Value> {
        match self.vars.get(name) {
            Some(v) => Some(v),
            None => self.parent.as_ref().and_then(|p| p.get(name)),
        }
    }
}

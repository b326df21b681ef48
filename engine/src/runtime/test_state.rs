//! TestState: one state run on its own with an input, as AWS's TestState
//! API runs it: its data flow, its task (invoked for real, or answered by
//! a mock), its Catch, and the state it would go to next.
//!
//! The state is wrapped in a one-state machine whose `Next` targets (and
//! Choice and Catch targets) become stub Succeed states, so the interpreter
//! runs it exactly as in a real execution and the stub that is entered
//! names the next state. Retry is left out: a failure a retrier would match
//! is answered RETRIABLE, as AWS does. Waits do not wait (the clock jumps).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::engine::{Engine, EngineError, TaskCall};
use super::{Clock, Invoker, ManualClock, run_to_completion};
use crate::asl;
use crate::asl::model::ResourceKind;
use crate::history::Event;
use crate::interp::{ExecutionInfo, Failure, Status, TaskRequest, failure};

/// The name the tested state runs under.
const STATE: &str = "TestState";

/// What TestState answers.
#[derive(Debug, Clone, PartialEq)]
pub struct TestStateResult {
    /// SUCCEEDED, FAILED, RETRIABLE or CAUGHT_ERROR.
    pub status: &'static str,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub next_state: Option<String>,
    /// The state's input and its task's result, when it had one.
    pub inspection: Value,
}

/// A mocked task answer (TestState's `mock`).
#[derive(Debug, Clone, PartialEq)]
pub enum TestStateMock {
    Result(Value),
    Error(Failure),
}

impl Engine {
    /// Runs one state definition on `input` (on a blocking thread: the
    /// interpreter's local driver waits for the task synchronously).
    pub async fn test_state(
        &self,
        definition: String,
        input: Value,
        mock: Option<TestStateMock>,
    ) -> Result<TestStateResult, EngineError> {
        let engine = self.clone();
        tokio::task::spawn_blocking(move || engine.test_state_blocking(&definition, input, mock))
            .await
            .map_err(|e| EngineError::Validation(format!("TestState stopped: {e}")))?
    }

    fn test_state_blocking(
        &self,
        definition: &str,
        input: Value,
        mock: Option<TestStateMock>,
    ) -> Result<TestStateResult, EngineError> {
        let state: Value = serde_json::from_str(definition).map_err(|e| {
            EngineError::Validation(format!("The definition of TestState is not JSON: {e}"))
        })?;
        let Value::Object(mut state) = state else {
            return Err(EngineError::Validation(
                "The definition of TestState must be one state: a JSON object with a Type".into(),
            ));
        };
        let retriers = state.remove("Retry");
        let mut stubs = BTreeMap::new();
        let mut caught = Vec::new();
        retarget(&mut state, &mut stubs, &mut caught);
        let mut states = Map::new();
        states.insert(STATE.into(), Value::Object(state));
        for stub in stubs.values() {
            states.insert(stub.clone(), json!({"Type": "Succeed"}));
        }
        let machine_text = json!({"StartAt": STATE, "States": states}).to_string();
        let validation = asl::validate(machine_text.as_bytes());
        let machine = validation
            .machine
            .ok_or(EngineError::InvalidDefinition(validation.diagnostics))?;
        let clock = ManualClock::new(self.now());
        let info = ExecutionInfo {
            execution_arn: format!(
                "arn:aws:states:{}:{}:execution:TestState:test",
                self.config().region,
                self.config().account
            ),
            name: "test".into(),
            role_arn: self.config().default_role_arn.clone(),
            state_machine_arn: format!(
                "arn:aws:states:{}:{}:stateMachine:TestState",
                self.config().region,
                self.config().account
            ),
            state_machine_name: "TestState".into(),
            start_time: clock.now(),
            region: self.config().region.clone(),
            redrive_count: 0,
        };
        let mut invoker = TestInvoker {
            engine: self,
            mock,
            result: None,
        };
        let outcome = run_to_completion(
            Arc::new(machine),
            info,
            input.clone(),
            0,
            &clock,
            &mut invoker,
        );
        let mut inspection = json!({"input": input.to_string()});
        if let (Some(result), Value::Object(map)) = (&invoker.result, &mut inspection) {
            map.insert("result".into(), json!(result.to_string()));
        }
        let entered_stub = outcome.history.iter().rev().find_map(|e| match &e.event {
            Event::StateEntered { name, .. } if &**name != STATE => Some(name.to_string()),
            _ => None,
        });
        let next_state = entered_stub
            .as_ref()
            .and_then(|stub| stubs.iter().find(|(_, s)| *s == stub))
            .map(|(target, _)| target.clone());
        let last_failure = outcome.history.iter().rev().find_map(|e| match &e.event {
            Event::TaskFailed(t) | Event::TaskTimedOut(t) => {
                Some((t.error.clone(), t.cause.clone()))
            }
            Event::ActivityFailed { error, cause } | Event::ActivityTimedOut { error, cause } => {
                Some((error.clone(), cause.clone()))
            }
            Event::EvaluationFailed(f) => Some((Some(f.error.clone()), Some(f.cause.clone()))),
            _ => None,
        });
        Ok(match outcome.status {
            Status::Succeeded { output } => {
                let was_caught = entered_stub.as_ref().is_some_and(|s| caught.contains(s));
                let (error, cause) = match (was_caught, last_failure) {
                    (true, Some(f)) => f,
                    _ => (None, None),
                };
                TestStateResult {
                    status: if was_caught {
                        "CAUGHT_ERROR"
                    } else {
                        "SUCCEEDED"
                    },
                    output: Some(Value::clone(&output)),
                    error,
                    cause,
                    next_state,
                    inspection,
                }
            }
            Status::Failed(f) | Status::Aborted(f) | Status::TimedOut(f) => {
                let retriable = retriers
                    .as_ref()
                    .and_then(Value::as_array)
                    .is_some_and(|rs| rs.iter().any(|r| retrier_matches(r, &f)));
                TestStateResult {
                    status: if retriable { "RETRIABLE" } else { "FAILED" },
                    output: None,
                    error: f.error,
                    cause: f.cause,
                    next_state: None,
                    inspection,
                }
            }
            Status::Running => {
                return Err(EngineError::Validation(
                    "the state did not finish (it waits for something TestState cannot give)"
                        .into(),
                ));
            }
        })
    }
}

fn retrier_matches(retrier: &Value, f: &Failure) -> bool {
    let errors: Vec<String> = retrier
        .get("ErrorEquals")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|e| e.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let max_attempts = retrier
        .get("MaxAttempts")
        .and_then(Value::as_u64)
        .unwrap_or(3);
    max_attempts > 0 && failure::matches(&errors, f)
}

/// Points every transition of the state at a stub Succeed state, keeping
/// which original target each stub stands for, and which are Catch targets.
fn retarget(
    state: &mut Map<String, Value>,
    stubs: &mut BTreeMap<String, String>,
    caught: &mut Vec<String>,
) {
    let mut stub_for = |target: &Value| -> Option<Value> {
        let target = target.as_str()?;
        let n = stubs.len();
        let stub = stubs
            .entry(target.to_owned())
            .or_insert_with(|| format!("{STATE}.Next{n}"))
            .clone();
        Some(Value::String(stub))
    };
    if let Some(next) = state.get("Next").and_then(&mut stub_for) {
        state.insert("Next".into(), next);
    }
    if let Some(default) = state.get("Default").and_then(&mut stub_for) {
        state.insert("Default".into(), default);
    }
    if let Some(Value::Array(choices)) = state.get_mut("Choices") {
        for choice in choices.iter_mut() {
            if let Some(next) = choice.get("Next").and_then(&mut stub_for) {
                choice["Next"] = next;
            }
        }
    }
    if let Some(Value::Array(catchers)) = state.get_mut("Catch") {
        for catcher in catchers.iter_mut() {
            if let Some(next) = catcher.get("Next").and_then(&mut stub_for) {
                if let Some(name) = next.as_str() {
                    caught.push(name.to_owned());
                }
                catcher["Next"] = next;
            }
        }
    }
}

/// Tasks of a tested state: the mock's answer, or the engine's runner.
struct TestInvoker<'e> {
    engine: &'e Engine,
    mock: Option<TestStateMock>,
    /// The task's result, for the inspection data.
    result: Option<Value>,
}

impl Invoker for TestInvoker<'_> {
    fn invoke(&mut self, request: &TaskRequest) -> Result<Value, Failure> {
        let answer = match &self.mock {
            Some(TestStateMock::Result(value)) => Ok(value.clone()),
            Some(TestStateMock::Error(f)) => Err(f.clone()),
            None => match request.resource.kind {
                ResourceKind::Activity { .. } | ResourceKind::StartExecution => Err(Failure::new(
                    "States.Runtime",
                    "TestState runs activity and nested-execution tasks only with a mock",
                )),
                _ => {
                    let call = TaskCall {
                        request: request.clone(),
                        execution_arn: "arn:aws:states:::execution:TestState:test".into(),
                        idempotency_key: format!("test-state-{}", request.task.0),
                        logs: Default::default(),
                    };
                    let running = self.engine.runner().run(call);
                    // On the blocking thread `test_state` runs on.
                    tokio::runtime::Handle::current().block_on(running)
                }
            },
        };
        if let Ok(value) = &answer {
            self.result = Some(value.clone());
        }
        answer
    }
}

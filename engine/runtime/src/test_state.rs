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

use super::engine::{Engine, EngineError};
use super::{Clock, Invoker, ManualClock, run_to_completion};
use crate::TaskCall;
use stepline_language::asl;
use stepline_language::asl::model::ResourceKind;
use stepline_language::cause;
use stepline_language::history::Event;
use stepline_language::interp::{ExecutionInfo, Failure, Status, TaskRequest, failure};

/// The name the tested state runs under.
const STATE: &str = "TestState";

/// How much TestState shows, as AWS's `inspectionLevel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InspectionLevel {
    /// The output, status and next state only.
    #[default]
    Info,
    /// Also each data-flow stage (`inspectionData`).
    Debug,
    /// As DEBUG; AWS adds an HTTP Task's raw request and response, which
    /// stepline does not record (see docs/api.md).
    Trace,
}

/// What TestState is asked, beyond the definition and the input.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TestStateOptions {
    pub mock: Option<TestStateMock>,
    /// The variables in scope when the state starts (`variables`).
    pub variables: Option<Map<String, Value>>,
    /// With a whole state machine as the definition, the state to test
    /// (`stateName`).
    pub state_name: Option<String>,
    pub inspection_level: InspectionLevel,
}

/// What TestState answers.
#[derive(Debug, Clone, PartialEq)]
pub struct TestStateResult {
    /// SUCCEEDED, FAILED, RETRIABLE or CAUGHT_ERROR.
    pub status: &'static str,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub next_state: Option<String>,
    /// AWS's `inspectionData` (values as JSON text), at DEBUG and TRACE.
    pub inspection: Option<Value>,
}

/// A mocked task answer (TestState's `mock`).
#[derive(Debug, Clone, PartialEq)]
pub enum TestStateMock {
    Result(Value),
    Error(Failure),
}

/// The state that sets the requested variables before the tested one.
const SETUP: &str = "TestState.Variables";

/// The tested state, the machine-level fields it needs, and its variables.
struct Subject {
    state: Map<String, Value>,
    /// The definition's top-level QueryLanguage (with `stateName`).
    query_language: Option<Value>,
    variables: Map<String, Value>,
}

impl Subject {
    fn jsonata(&self) -> bool {
        let own = self
            .state
            .get("QueryLanguage")
            .or(self.query_language.as_ref());
        own.and_then(Value::as_str) == Some("JSONata")
    }

    /// A machine running `state` (named TestState) plus `extra` states on
    /// `input`, the requested variables set first.
    fn machine(
        &self,
        state: Map<String, Value>,
        extra: Map<String, Value>,
        input: &Value,
    ) -> (String, Value) {
        let mut states = Map::new();
        let mut start = STATE;
        let mut input = input.clone();
        if !self.variables.is_empty() {
            // A Pass state assigns them from its own input, then hands on
            // the real input, so no variable value is read as a template.
            let top_jsonata =
                self.query_language.as_ref().and_then(Value::as_str) == Some("JSONata");
            let setup = if top_jsonata {
                let assign: Map<String, Value> = self
                    .variables
                    .keys()
                    .map(|k| (k.clone(), json!(format!("{{% $states.input.v.`{k}` %}}"))))
                    .collect();
                json!({"Type": "Pass", "Assign": assign, "Output": "{% $states.input.i %}", "Next": STATE})
            } else {
                let assign: Map<String, Value> = self
                    .variables
                    .keys()
                    .map(|k| (format!("{k}.$"), json!(format!("$.v['{k}']"))))
                    .collect();
                json!({"Type": "Pass", "Assign": assign, "OutputPath": "$.i", "Next": STATE})
            };
            states.insert(SETUP.into(), setup);
            start = SETUP;
            input = json!({"v": self.variables, "i": input});
        }
        states.insert(STATE.into(), Value::Object(state));
        states.extend(extra);
        let mut machine = json!({"StartAt": start, "States": states});
        if let (Some(ql), Value::Object(map)) = (&self.query_language, &mut machine) {
            map.insert("QueryLanguage".into(), ql.clone());
        }
        (machine.to_string(), input)
    }
}

impl Engine {
    /// Runs one state definition on `input` (on a blocking thread: the
    /// interpreter's local driver waits for the task synchronously).
    pub async fn test_state(
        &self,
        definition: String,
        input: Value,
        options: TestStateOptions,
    ) -> Result<TestStateResult, EngineError> {
        let engine = self.clone();
        tokio::task::spawn_blocking(move || engine.test_state_blocking(&definition, input, options))
            .await
            .map_err(|e| EngineError::Validation(format!("TestState stopped: {e}")))?
    }

    /// The state to test: the definition itself, or with `stateName` the
    /// state of that name in a whole state machine.
    fn test_subject(definition: &str, options: &TestStateOptions) -> Result<Subject, EngineError> {
        let value: Value = serde_json::from_str(definition).map_err(|e| {
            EngineError::Validation(format!("The definition of TestState is not JSON: {e}"))
        })?;
        let Value::Object(mut value) = value else {
            return Err(EngineError::Validation(
                "The definition of TestState must be one state: a JSON object with a Type".into(),
            ));
        };
        let variables = options.variables.clone().unwrap_or_default();
        let Some(name) = &options.state_name else {
            return Ok(Subject {
                state: value,
                query_language: None,
                variables,
            });
        };
        let query_language = value.remove("QueryLanguage");
        let state = match value.get_mut("States").and_then(|s| s.as_object_mut()) {
            Some(states) => match states.remove(name) {
                Some(Value::Object(state)) => state,
                _ => {
                    return Err(EngineError::Validation(format!(
                        "The state '{name}' is not a top-level state of the definition"
                    )));
                }
            },
            None => {
                return Err(EngineError::Validation(
                    "With stateName, the definition must be a state machine (with States)".into(),
                ));
            }
        };
        Ok(Subject {
            state,
            query_language,
            variables,
        })
    }

    /// Runs `text` (a wrapper machine) on `input`.
    fn run_wrapper(
        &self,
        text: &str,
        input: Value,
        invoker: &mut TestInvoker<'_>,
    ) -> Result<stepline_language::local::Outcome, EngineError> {
        let validation = asl::validate(text.as_bytes());
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
        Ok(run_to_completion(
            Arc::new(machine),
            info,
            input,
            0,
            &clock,
            invoker,
        ))
    }

    /// The output of a Pass state made of `fields` (a probe of one stage
    /// of the tested state's data flow, run by the same interpreter), or
    /// None when it fails.
    fn probe(&self, subject: &Subject, fields: Value, input: &Value) -> Option<Value> {
        let Value::Object(mut state) = fields else {
            return None;
        };
        state.insert("Type".into(), json!("Pass"));
        state.insert("End".into(), json!(true));
        if let Some(ql) = subject.state.get("QueryLanguage") {
            state.insert("QueryLanguage".into(), ql.clone());
        }
        let (text, input) = subject.machine(state, Map::new(), input);
        let mut invoker = TestInvoker {
            engine: self,
            mock: None,
            result: None,
        };
        match self.run_wrapper(&text, input, &mut invoker).ok()?.status {
            Status::Succeeded { output } => Some(Value::clone(&output)),
            _ => None,
        }
    }

    /// AWS's `inspectionData`: every stage of the data flow that ran, as
    /// JSON text.
    fn inspection(
        &self,
        subject: &Subject,
        input: &Value,
        result: Option<&Value>,
        assigned: Option<&Map<String, Value>>,
    ) -> Value {
        let field = |name: &str| subject.state.get(name).cloned();
        let mut data = Map::new();
        data.insert("input".into(), json!(input.to_string()));
        let mut put = |name: &str, value: Option<Value>| {
            if let Some(value) = value {
                data.insert(name.into(), json!(value.to_string()));
            }
        };
        if subject.jsonata() {
            if let Some(arguments) = field("Arguments") {
                put(
                    "afterArguments",
                    self.probe(subject, json!({"Output": arguments}), input),
                );
            }
            put("result", result.cloned());
        } else {
            let input_path = field("InputPath").unwrap_or(json!("$"));
            put(
                "afterInputPath",
                self.probe(subject, json!({"InputPath": input_path}), input),
            );
            let mut parameters = json!({"InputPath": input_path});
            if let Some(p) = field("Parameters") {
                parameters["Parameters"] = p;
            }
            let after_parameters = self.probe(subject, parameters, input);
            put("afterParameters", after_parameters.clone());
            let is_pass = subject.state.get("Type").and_then(Value::as_str) == Some("Pass");
            // A Pass state without Result passes its effective input on.
            let result = result
                .cloned()
                .or(if is_pass { after_parameters } else { None });
            if let Some(result) = &result {
                put("result", Some(result.clone()));
                let selected = match field("ResultSelector") {
                    Some(selector) => self.probe(subject, json!({"Parameters": selector}), result),
                    None => Some(result.clone()),
                };
                if let Some(selected) = &selected {
                    let mut combine = json!({"Result": selected});
                    if let Some(path) = field("ResultPath") {
                        combine["ResultPath"] = path;
                    }
                    put("afterResultPath", self.probe(subject, combine, input));
                }
                put("afterResultSelector", selected);
            }
        }
        let mut variables = subject.variables.clone();
        if let Some(assigned) = assigned {
            // The history keeps each assigned value as JSON text, as AWS.
            variables.extend(assigned.iter().map(|(k, v)| {
                let value = v
                    .as_str()
                    .and_then(|text| serde_json::from_str(text).ok())
                    .unwrap_or_else(|| v.clone());
                (k.clone(), value)
            }));
        }
        if !variables.is_empty() {
            put("variables", Some(Value::Object(variables)));
        }
        Value::Object(data)
    }

    fn test_state_blocking(
        &self,
        definition: &str,
        input: Value,
        options: TestStateOptions,
    ) -> Result<TestStateResult, EngineError> {
        let subject = Self::test_subject(definition, &options)?;
        let mut state = subject.state.clone();
        let retriers = state.remove("Retry");
        let mut stubs = BTreeMap::new();
        let mut caught = Vec::new();
        retarget(&mut state, &mut stubs, &mut caught);
        let extra: Map<String, Value> = stubs
            .values()
            .map(|stub| (stub.clone(), json!({"Type": "Succeed"})))
            .collect();
        let (text, wrapped_input) = subject.machine(state, extra, &input);
        let mut invoker = TestInvoker {
            engine: self,
            mock: options.mock.clone(),
            result: None,
        };
        let outcome = self.run_wrapper(&text, wrapped_input, &mut invoker)?;
        // The tested state's own result: its task's answer, or (for a state
        // without a task) its effective input or Result, as the interpreter
        // recorded it on leaving.
        let exited = outcome.history.iter().find_map(|e| match &e.event {
            Event::StateExited {
                name,
                output,
                assigned_variables,
                ..
            } if &**name == STATE => Some((output, assigned_variables)),
            _ => None,
        });
        let inspection = match options.inspection_level {
            InspectionLevel::Info => None,
            InspectionLevel::Debug | InspectionLevel::Trace => {
                let result = invoker.result.clone().or_else(|| {
                    // A Pass state's result is its Result, else its
                    // effective input.
                    (subject.state.get("Type").and_then(Value::as_str) == Some("Pass"))
                        .then(|| subject.state.get("Result").cloned())
                        .flatten()
                });
                Some(self.inspection(
                    &subject,
                    &input,
                    result.as_ref(),
                    exited.and_then(|(_, a)| a.as_deref()),
                ))
            }
        };
        let entered_stub = outcome.history.iter().rev().find_map(|e| match &e.event {
            Event::StateEntered { name, .. } if &**name != STATE && &**name != SETUP => {
                Some(name.to_string())
            }
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
                ResourceKind::Activity { .. } | ResourceKind::StartExecution => {
                    Err(cause::TEST_STATE_UNSUPPORTED.failure(&[]))
                }
                _ => {
                    // TestState reaches outside like a running execution
                    // does, but leaves no execution behind: the log is the
                    // operator's only record of where it went.
                    let target = request
                        .input
                        .get("ApiEndpoint")
                        .or_else(|| request.input.get("FunctionName"))
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    tracing::info!(
                        resource = %request.resource.arn,
                        target,
                        "TestState calls a task outside stepline"
                    );
                    let call = TaskCall {
                        handed_over: Default::default(),
                        request: request.clone(),
                        execution_arn: "arn:aws:states:::execution:TestState:test".into(),
                        idempotency_key: format!("test-state-{}", request.task.0),
                        logs: Default::default(),
                    };
                    let engine = &self.engine;
                    let pool = engine.pools().pool_of(request).map(str::to_owned);
                    let running = async {
                        // A pooled resource's call holds a slot here too.
                        let _slot = match pool {
                            Some(pool) => {
                                let who = crate::pools::Waiting {
                                    execution_arn: call.execution_arn.clone(),
                                    state_name: request.state_name.clone(),
                                    since: engine.now(),
                                };
                                let holder = call.idempotency_key.clone();
                                engine.take_pool_slot(&pool, who, holder, false).await
                            }
                            None => None,
                        };
                        engine.runner().run(call).await
                    };
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

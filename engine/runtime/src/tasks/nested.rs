//! Nested executions: `arn:aws:states:::states:startExecution`, as AWS's
//! Step Functions integration.
//!
//! - request-response: starts the child and answers `{ExecutionArn,
//!   StartDate}`;
//! - `.sync`: waits for the child and answers its DescribeExecution (Input
//!   and Output as JSON text); `.sync:2`: the same with Input and Output as
//!   JSON;
//! - `.waitForTaskToken`: starts the child (which is handed the token in
//!   its input by the definition) and waits for the callback.
//!
//! A child started without a Name gets one derived from the parent task's
//! idempotency key, so a start repeated after a crash finds the same child
//! (AWS's rule: same name and input while open returns it) instead of
//! starting a second one. Stopping the parent (or timing the task out)
//! stops a `.sync` child.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use std::sync::Arc;

use crate::children::Children;
use crate::{EngineError, TaskCall, TaskFuture};
use stepline_language::asl::model::IntegrationPattern;
use stepline_language::cause;
use stepline_language::interp::Failure;
use stepline_store::{ExecutionRecord, ExecutionStatus};

/// Starts (and for `.sync`, follows) the child execution of `call`.
pub fn run(engine: Arc<dyn Children>, call: TaskCall) -> TaskFuture {
    Box::pin(async move {
        let pattern = call.request.resource.pattern;
        let params = &call.request.input;
        let machine = params
            .get("StateMachineArn")
            .and_then(Value::as_str)
            .ok_or_else(|| cause::NESTED_NO_MACHINE.failure(&[]))?;
        let input = match params.get("Input") {
            None => "{}".to_owned(),
            Some(Value::String(text)) => text.clone(),
            Some(value) => value.to_string(),
        };
        let name = match params.get("Name") {
            Some(Value::String(name)) => name.clone(),
            Some(_) => {
                return Err(cause::NESTED_BAD_NAME.failure(&[]));
            }
            None => derived_name(&call.idempotency_key),
        };
        let child = match engine.start_execution(machine, &name, &input).await {
            Ok(child) => child,
            // Started before a crash and already ended: the repeated start
            // finds it (same machine, same input) and takes its result.
            Err(EngineError::ExecutionAlreadyExists(arn)) => {
                match engine.describe_execution(&arn) {
                    Ok(existing)
                        if existing.input == input
                            && machine.starts_with(&existing.state_machine_arn) =>
                    {
                        existing
                    }
                    _ => return Err(service_failure(EngineError::ExecutionAlreadyExists(arn))),
                }
            }
            Err(e) => return Err(service_failure(e)),
        };
        if !matches!(
            pattern,
            IntegrationPattern::Sync | IntegrationPattern::Sync2
        ) {
            return Ok(json!({
                "ExecutionArn": child.arn,
                "StartDate": child.start.timestamp_millis(),
            }));
        }
        // Dropped with the task (a stopped parent, a timeout): stops the child.
        let guard = StopChild {
            engine: Arc::clone(&engine),
            arn: Some(child.arn.clone()),
            handed_over: call.handed_over.clone(),
        };
        let ended = engine.wait_for(&child.arn).await.map_err(service_failure)?;
        guard.disarm();
        let described = describe(&ended, pattern == IntegrationPattern::Sync2);
        match ended.status {
            ExecutionStatus::Succeeded => Ok(described),
            _ => Err(cause::NESTED_FAILED.failure(&[("described", &described)])),
        }
    })
}

/// A UUID-shaped name that is the same for every invocation of one task.
pub(crate) fn derived_name(idempotency_key: &str) -> String {
    let h = Sha256::digest(idempotency_key.as_bytes());
    let hex: String = h.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The child as AWS's `.sync` integrations describe it.
fn describe(record: &ExecutionRecord, json_payloads: bool) -> Value {
    let payload = |text: &str| -> Value {
        if json_payloads {
            serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
        } else {
            Value::String(text.to_owned())
        }
    };
    let mut out = Map::new();
    out.insert("ExecutionArn".into(), json!(record.arn));
    out.insert("Input".into(), payload(&record.input));
    out.insert("InputDetails".into(), json!({"Included": true}));
    out.insert("Name".into(), json!(record.name));
    if let Some(output) = &record.output {
        out.insert("Output".into(), payload(output));
        out.insert("OutputDetails".into(), json!({"Included": true}));
    }
    out.insert("StartDate".into(), json!(record.start.timestamp_millis()));
    out.insert("StateMachineArn".into(), json!(record.state_machine_arn));
    out.insert("Status".into(), json!(record.status.as_str()));
    if let Some(stop) = record.stop {
        out.insert("StopDate".into(), json!(stop.timestamp_millis()));
    }
    if let Some(error) = &record.error {
        out.insert("Error".into(), json!(error));
    }
    if let Some(cause) = &record.cause {
        out.insert("Cause".into(), json!(cause));
    }
    Value::Object(out)
}

/// An engine error as the Step Functions service integration names it
/// (`StepFunctions.<Exception>`).
fn service_failure(e: EngineError) -> Failure {
    let name = match &e {
        EngineError::StateMachineDoesNotExist(_) => "StateMachineDoesNotExistException",
        EngineError::ExecutionAlreadyExists(_) => "ExecutionAlreadyExistsException",
        EngineError::InvalidName(_) => "InvalidNameException",
        EngineError::InvalidExecutionInput(_) => "InvalidExecutionInputException",
        EngineError::ExecutionDoesNotExist(_) => "ExecutionDoesNotExistException",
        _ => "SdkClientException",
    };
    cause::NESTED_REFUSED.failure_as(format!("StepFunctions.{name}"), &[("message", &e)])
}

struct StopChild {
    engine: Arc<dyn Children>,
    arn: Option<String>,
    /// The parent's next owner waits for the child instead.
    handed_over: crate::HandedOver,
}

impl StopChild {
    fn disarm(mut self) {
        self.arn = None;
    }
}

impl Drop for StopChild {
    fn drop(&mut self) {
        if self.handed_over.is_handed_over() {
            return;
        }
        if let Some(arn) = self.arn.take() {
            let cause = "The parent execution's task was stopped.".to_owned();
            let _ = self.engine.stop_execution(&arn, cause);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::derived_name;

    #[test]
    fn derived_names_are_stable_and_uuid_shaped() {
        let a = derived_name("arn:exec#4");
        assert_eq!(a, derived_name("arn:exec#4"));
        assert_ne!(a, derived_name("arn:exec#5"));
        assert_eq!(a.len(), 36);
        assert_eq!(a.matches('-').count(), 4);
    }
}

//! AWS's error shape, `{"__type": ..., "message": ...}` with an HTTP
//! status, and how the engine's errors are named in it.

use serde_json::{Value, json};
use stepline_language::asl::Severity;
use stepline_runtime::EngineError;

/// An AWS error: its `__type` name, its message, its HTTP status.
#[derive(Debug)]
pub struct AwsError {
    pub kind: &'static str,
    pub message: String,
    pub status: u16,
}

impl AwsError {
    pub(crate) fn new(kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            status: 400,
        }
    }

    pub fn body(&self) -> Value {
        json!({"__type": self.kind, "message": self.message})
    }
}

impl From<EngineError> for AwsError {
    fn from(e: EngineError) -> Self {
        let message = e.to_string();
        match e {
            EngineError::InvalidDefinition(diagnostics) => {
                let first: Vec<String> = diagnostics
                    .iter()
                    .filter(|d| d.severity == Severity::Error)
                    .map(|d| {
                        format!(
                            "{}: {} at {} (line {}, column {})",
                            d.code,
                            d.message,
                            if d.pointer.is_empty() {
                                "/"
                            } else {
                                &d.pointer
                            },
                            d.line,
                            d.column
                        )
                    })
                    .collect();
                AwsError::new(
                    "InvalidDefinition",
                    format!("Invalid State Machine Definition: '{}'", first.join("; ")),
                )
            }
            EngineError::InvalidName(_) => AwsError::new("InvalidName", message),
            EngineError::InvalidExecutionInput(_) => {
                AwsError::new("InvalidExecutionInput", message)
            }
            EngineError::StateMachineAlreadyExists(_) => {
                AwsError::new("StateMachineAlreadyExists", message)
            }
            EngineError::StateMachineDoesNotExist(_) => {
                AwsError::new("StateMachineDoesNotExist", message)
            }
            EngineError::ExecutionDoesNotExist(_) => {
                AwsError::new("ExecutionDoesNotExist", message)
            }
            EngineError::ExecutionAlreadyExists(_) => {
                AwsError::new("ExecutionAlreadyExists", message)
            }
            EngineError::ActivityDoesNotExist(_) => AwsError::new("ActivityDoesNotExist", message),
            EngineError::InvalidToken(_) => AwsError::new("InvalidToken", message),
            EngineError::TaskTimedOut => AwsError::new("TaskTimedOut", message),
            EngineError::InvalidOutput(_) => AwsError::new("InvalidOutput", message),
            EngineError::Validation(_) => AwsError::new("ValidationException", message),
            EngineError::ResourceNotFound(_) => AwsError::new("ResourceNotFound", message),
            EngineError::TooManyTags(_) => AwsError::new("TooManyTags", message),
            EngineError::Conflict(_) => AwsError::new("ConflictException", message),
            EngineError::ExecutionNotRedrivable(_) => {
                AwsError::new("ExecutionNotRedrivable", message)
            }
            // StartExecution's error for "no more executions may start
            // now": the nearest AWS has to closed windows, and one that
            // SDKs do not retry on their own (docs/orchestration.md).
            EngineError::OutsideWindow(_) => AwsError::new("ExecutionLimitExceeded", message),
            // AWS's common error for a temporary failure of the service.
            EngineError::Store(_) | EngineError::NoEntropy(_) => AwsError {
                kind: "ServiceUnavailable",
                message,
                status: 503,
            },
        }
    }
}

//! REST errors: `{"code": ..., "message": ...}` (plus `diagnostics` for an
//! invalid definition) with the HTTP status that says what went wrong.
//! Codes reuse AWS's names where AWS has one, so both dialects speak of the
//! same thing the same way.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use stepline_runtime::EngineError;

use super::shapes::diagnostic_json;

/// An error answer.
#[derive(Debug)]
pub struct RestError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Extra members of the body (`diagnostics` for InvalidDefinition).
    pub extra: Option<Box<(&'static str, Value)>>,
}

impl RestError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            extra: None,
        }
    }

    /// 400 InvalidRequest: a malformed body, field or query parameter.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidRequest", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NotFound", message)
    }

    pub fn too_large(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, code, message)
    }

    pub fn body(&self) -> Value {
        let mut body = json!({"code": self.code, "message": self.message});
        if let (Some(extra), Value::Object(map)) = (&self.extra, &mut body) {
            map.insert(extra.0.to_owned(), extra.1.clone());
        }
        body
    }
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            format!("{}\n", self.body()),
        )
            .into_response()
    }
}

impl From<EngineError> for RestError {
    fn from(e: EngineError) -> Self {
        let message = e.to_string();
        match e {
            EngineError::InvalidDefinition(diagnostics) => {
                let errors = diagnostics
                    .iter()
                    .filter(|d| d.severity == stepline_language::asl::Severity::Error)
                    .count();
                let first = diagnostics
                    .iter()
                    .find(|d| d.severity == stepline_language::asl::Severity::Error)
                    .map(|d| format!(": {}:{}: {}", d.line, d.column, d.message))
                    .unwrap_or_default();
                Self {
                    status: StatusCode::UNPROCESSABLE_ENTITY,
                    code: "InvalidDefinition",
                    message: format!("the definition has {errors} error(s){first}"),
                    extra: Some(Box::new((
                        "diagnostics",
                        Value::Array(diagnostics.iter().map(diagnostic_json).collect()),
                    ))),
                }
            }
            EngineError::InvalidName(_) => {
                Self::new(StatusCode::BAD_REQUEST, "InvalidName", message)
            }
            EngineError::InvalidExecutionInput(_) => {
                Self::new(StatusCode::BAD_REQUEST, "InvalidExecutionInput", message)
            }
            EngineError::StateMachineAlreadyExists(_) => {
                Self::new(StatusCode::CONFLICT, "StateMachineAlreadyExists", message)
            }
            EngineError::StateMachineDoesNotExist(_) => {
                Self::new(StatusCode::NOT_FOUND, "StateMachineDoesNotExist", message)
            }
            EngineError::ExecutionDoesNotExist(_) => {
                Self::new(StatusCode::NOT_FOUND, "ExecutionDoesNotExist", message)
            }
            EngineError::ExecutionAlreadyExists(_) => {
                Self::new(StatusCode::CONFLICT, "ExecutionAlreadyExists", message)
            }
            EngineError::Conflict(_) => Self::new(StatusCode::CONFLICT, "Conflict", message),
            EngineError::ExecutionNotRedrivable(_) => {
                Self::new(StatusCode::CONFLICT, "ExecutionNotRedrivable", message)
            }
            EngineError::ResourceNotFound(_) => {
                Self::new(StatusCode::NOT_FOUND, "ResourceNotFound", message)
            }
            // The state machine is there; its windows are closed now.
            EngineError::OutsideWindow(_) => {
                Self::new(StatusCode::CONFLICT, "OutsideWindow", message)
            }
            EngineError::Store(_) | EngineError::NoEntropy(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                message,
            ),
            // Errors the engine gains later are client errors until named here.
            #[allow(unreachable_patterns)]
            _ => Self::new(StatusCode::BAD_REQUEST, "InvalidRequest", message),
        }
    }
}

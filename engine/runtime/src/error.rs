//! What can go wrong when the faces call the engine, named as AWS names
//! it. The faces render it: an AWS error type and status in the AWS
//! dialect, a code and status in REST, a message and exit status in the CLI.

use stepline_language::asl::{self, Diagnostic};
use stepline_store::StoreError;

use crate::entropy::NoEntropy;

/// What can go wrong when the faces call the engine, named as AWS names it.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("the definition has {} error(s)", .0.iter().filter(|d| d.severity == asl::Severity::Error).count())]
    InvalidDefinition(Vec<Diagnostic>),
    #[error("{0}")]
    InvalidName(String),
    #[error("{0}")]
    InvalidExecutionInput(String),
    #[error("State Machine Already Exists: '{0}'")]
    StateMachineAlreadyExists(String),
    #[error("State Machine Does Not Exist: '{0}'")]
    StateMachineDoesNotExist(String),
    #[error("Execution Does Not Exist: '{0}'")]
    ExecutionDoesNotExist(String),
    #[error("Execution Already Exists: '{0}'")]
    ExecutionAlreadyExists(String),
    #[error("{0}")]
    ExecutionNotRedrivable(String),
    #[error("Resource not found: '{0}'")]
    ResourceNotFound(String),
    #[error("{0}")]
    TooManyTags(String),
    /// AWS's ConflictException (a version in use, an alias that differs).
    #[error("{0}")]
    Conflict(String),
    #[error("Activity Does Not Exist: '{0}'")]
    ActivityDoesNotExist(String),
    #[error("Invalid Token: '{0}'")]
    InvalidToken(String),
    #[error("Task Timed Out: 'Provided task does not exist anymore'")]
    TaskTimedOut,
    #[error("{0}")]
    InvalidOutput(String),
    /// A start outside its execution windows under `outside = "refuse"`:
    /// the message names the windows and when the next opens.
    #[error("{0}")]
    OutsideWindow(String),
    /// A request AWS would refuse with ValidationException.
    #[error("{0}")]
    Validation(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    NoEntropy(#[from] NoEntropy),
}

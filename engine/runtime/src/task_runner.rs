//! The seam between the engine and the tasks that leave it: the engine
//! hands a [`TaskCall`] to a [`TaskRunner`] and awaits its [`TaskFuture`].
//! It sits below both, so the task runners (`tasks/`) implement it
//! without knowing the engine.

use std::future::Future;
use std::pin::Pin;

use serde_json::Value;
use stepline_language::interp::{Failure, TaskRequest};

use crate::task_logs::TaskLogSink;

/// A task invocation handed to a [`TaskRunner`].
#[derive(Debug, Clone)]
pub struct TaskCall {
    pub request: TaskRequest,
    pub execution_arn: String,
    /// Stable across retries of the same attempt and across crashes: an
    /// invocation repeated after a restart carries the same key.
    pub idempotency_key: String,
    /// Where the runner leaves what the attempt wrote (process tasks).
    pub logs: TaskLogSink,
}

/// The future of a task's result or its ASL error.
pub type TaskFuture = Pin<Box<dyn Future<Output = Result<Value, Failure>> + Send>>;

/// Runs the tasks that leave the engine (HTTP, processes, Lambda
/// mappings...). Activities and nested executions are the engine's own.
/// Dropping the future cancels the task: whatever it started must stop.
pub trait TaskRunner: Send + Sync + 'static {
    fn run(&self, call: TaskCall) -> TaskFuture;
}

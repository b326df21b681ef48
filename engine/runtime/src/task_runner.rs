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
    /// Set when the invocation is dropped because this node lets go of
    /// the execution, not because the execution cancelled the task.
    pub handed_over: HandedOver,
}

/// Whether a dropped invocation was handed over: its node stopped running
/// the execution (another node took it over, or the store failed) and the
/// next owner invokes the task again with the same idempotency key. What
/// the task started and keeps by name (a nested execution, a Map Run's
/// children) then lives on for that invocation to find, instead of being
/// stopped as a cancelled task's are.
#[derive(Debug, Clone, Default)]
pub struct HandedOver(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl HandedOver {
    pub fn hand_over(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Release);
    }

    pub fn is_handed_over(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// The future of a task's result or its ASL error.
pub type TaskFuture = Pin<Box<dyn Future<Output = Result<Value, Failure>> + Send>>;

/// Runs the tasks that leave the engine (HTTP, processes, Lambda
/// mappings...). Activities and nested executions are the engine's own.
/// Dropping the future cancels the task: whatever it started must stop.
pub trait TaskRunner: Send + Sync + 'static {
    fn run(&self, call: TaskCall) -> TaskFuture;
}

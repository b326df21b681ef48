//! What the interpreter and the runtime say to each other: the [`Command`]s
//! the runtime applies (recorded in the execution's journal, so their
//! serde form is a stored format), the [`Effect`]s the interpreter asks
//! for, and where an execution is ([`Status`]).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::failure::Failure;
use crate::asl::model::Resource;

/// Identifies a task invocation of this execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TaskId(pub u64);

/// Identifies a timer of this execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TimerId(pub u64);

/// Something that happened outside the interpreter. Recorded (with its
/// time) in the execution's journal: replaying the journal rebuilds the
/// execution exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    Start {
        input: Value,
    },
    TaskStarted {
        task: TaskId,
        /// The activity worker that took the task (GetActivityTask).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        worker_name: Option<String>,
        /// The pool of slots the task drew from and its wait, recorded on
        /// its TaskStarted (or ActivityStarted) event.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pool: Option<Box<crate::history::PoolWait>>,
    },
    /// A `.sync` or `.waitForTaskToken` request was accepted: `output` is
    /// the service's answer; the task's result comes later.
    TaskSubmitted {
        task: TaskId,
        output: Value,
    },
    /// The task is alive (SendTaskHeartbeat): its HeartbeatSeconds restart.
    TaskHeartbeat {
        task: TaskId,
    },
    TaskSucceeded {
        task: TaskId,
        output: Value,
        /// Set when the runtime answered from its cache of results: the
        /// TaskSucceeded event says so.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cached: Option<Box<crate::history::CacheHit>>,
    },
    TaskFailed {
        task: TaskId,
        error: Option<String>,
        cause: Option<String>,
    },
    TimerFired {
        timer: TimerId,
    },
    Stop {
        error: Option<String>,
        cause: Option<String>,
    },
    /// RedriveExecution: a FAILED, TIMED_OUT or ABORTED execution runs
    /// again from the top-level state that did not succeed, with the input
    /// that state had.
    Redrive,
}

/// What the runtime must do for the execution to go on.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    InvokeTask(Box<TaskRequest>),
    StartTimer { timer: TimerId, due: DateTime<Utc> },
    CancelTask { task: TaskId },
    CancelTimer { timer: TimerId },
}

/// One task invocation to perform.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRequest {
    pub task: TaskId,
    pub state_name: String,
    pub resource: Resource,
    /// The effective parameters: what the task receives.
    pub input: Value,
    pub timeout_seconds: Option<u64>,
    pub heartbeat_seconds: Option<u64>,
    /// 0 for the first attempt, then 1, 2... for retries.
    pub attempt: u32,
    pub credentials: Option<Value>,
    /// The task token, for `.waitForTaskToken` and activity tasks.
    pub token: Option<String>,
    /// How many tasks this state invoked before this one in the execution
    /// (retries and loops included): mocked responses are chosen by it.
    pub invocation: u32,
}

/// Where an execution is.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Running,
    Succeeded { output: Arc<Value> },
    Failed(Failure),
    Aborted(Failure),
    TimedOut(Failure),
}

//! The events of an execution's history, named and shaped as AWS names
//! them (ExecutionStarted, PassStateEntered, TaskScheduled, ...).
//!
//! Payloads are shared (`Arc`), not copied: a state's output is the next
//! state's input, and the history holds both without a deep copy.
//!
//! The history is the truth about an execution: the interpreter appends to
//! it and never rewrites it. How an event is rendered on a wire (the AWS
//! JSON protocol, the REST API) is the faces' business; this module only
//! says what happened.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One event, numbered as AWS numbers them: ids from 1, and
/// `previous_event_id` linking to the event that caused this one in the
/// same branch of the execution (0 when there is none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEvent {
    pub id: u64,
    pub previous_event_id: u64,
    pub timestamp: DateTime<Utc>,
    pub event: Event,
}

/// The kind of state an entered/exited event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StateType {
    Pass,
    Task,
    Choice,
    Wait,
    Succeed,
    Fail,
    Parallel,
    Map,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Event {
    ExecutionStarted {
        input: Arc<Value>,
        role_arn: String,
    },
    ExecutionSucceeded {
        output: Arc<Value>,
    },
    ExecutionFailed {
        error: Option<String>,
        cause: Option<String>,
    },
    ExecutionAborted {
        error: Option<String>,
        cause: Option<String>,
    },
    /// RedriveExecution restarted the execution.
    ExecutionRedriven {
        redrive_count: u32,
    },
    ExecutionTimedOut {
        error: Option<String>,
        cause: Option<String>,
    },
    StateEntered {
        state_type: StateType,
        name: Arc<str>,
        input: Arc<Value>,
    },
    StateExited {
        state_type: StateType,
        name: Arc<str>,
        output: Arc<Value>,
        /// Variables the state assigned, rendered as JSON text per AWS.
        assigned_variables: Option<Box<Map<String, Value>>>,
    },
    ParallelStateStarted,
    ParallelStateSucceeded,
    ParallelStateFailed,
    ParallelStateAborted,
    MapStateStarted {
        length: usize,
    },
    MapStateSucceeded,
    MapStateFailed,
    MapStateAborted,
    MapIterationStarted {
        name: Arc<str>,
        index: usize,
    },
    MapIterationSucceeded {
        name: Arc<str>,
        index: usize,
    },
    MapIterationFailed {
        name: Arc<str>,
        index: usize,
    },
    MapIterationAborted {
        name: Arc<str>,
        index: usize,
    },
    /// A distributed Map started its Map Run (child executions).
    MapRunStarted {
        map_run_arn: String,
    },
    MapRunSucceeded,
    MapRunFailed {
        error: Option<String>,
        cause: Option<String>,
    },
    /// The Map Run was stopped with its parent execution.
    MapRunAborted,
    /// RedriveExecution of the parent runs the Map Run's failed items again.
    MapRunRedriven {
        map_run_arn: String,
        redrive_count: u32,
    },
    // Task events are rare next to state events: boxed, they keep every
    // event small.
    TaskScheduled(Box<TaskScheduled>),
    TaskStarted(Box<TaskStarted>),
    TaskSucceeded(Box<TaskSucceeded>),
    TaskFailed(Box<TaskFailed>),
    TaskTimedOut(Box<TaskFailed>),
    /// A `.sync` or `.waitForTaskToken` task's request was accepted; its
    /// answer comes later.
    TaskSubmitted(Box<TaskSucceeded>),
    // An activity task's life, as AWS records it (instead of Task* events).
    ActivityScheduled(Box<ActivityScheduled>),
    ActivityStarted {
        worker_name: Option<String>,
        /// Set when the task waited for a slot of a pool before workers
        /// could take it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pool: Option<Box<PoolWait>>,
    },
    ActivitySucceeded {
        output: Arc<Value>,
        /// Set when the result came from the task cache, not a worker.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache: Option<Box<CacheHit>>,
    },
    ActivityFailed {
        error: Option<String>,
        cause: Option<String>,
    },
    ActivityTimedOut {
        error: Option<String>,
        cause: Option<String>,
    },
    /// A field of a state could not be evaluated (a path, an intrinsic, a
    /// JSONata expression); the state then fails with `error`.
    EvaluationFailed(Box<EvaluationFailed>),
}

/// A task was scheduled with these parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskScheduled {
    pub resource_type: String,
    pub resource: String,
    pub region: String,
    pub parameters: Arc<Value>,
    pub timeout_in_seconds: Option<u64>,
    pub heartbeat_in_seconds: Option<u64>,
}

/// An activity task waits for a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityScheduled {
    /// The activity ARN.
    pub resource: String,
    pub input: Arc<Value>,
    pub timeout_in_seconds: Option<u64>,
    pub heartbeat_in_seconds: Option<u64>,
}

/// A task started running.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskStarted {
    pub resource_type: String,
    pub resource: String,
    /// Set when the task drew from a pool of slots: it started once it
    /// had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<Box<PoolWait>>,
}

/// The pool of slots (`[pools.NAME]`) a task drew from and how long it
/// waited for its slot. A stepline addition: the faces render it in a
/// field AWS's clients ignore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolWait {
    pub name: String,
    pub waited_ms: u64,
}

/// A task returned its result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSucceeded {
    pub resource_type: String,
    pub resource: String,
    pub output: Arc<Value>,
    /// Set when the result came from the task cache instead of a call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<Box<CacheHit>>,
}

/// Where a task's result came from when the runtime served it from its
/// cache of results (`[tasks.cache]`) instead of calling the task: the
/// entry's key and the execution that stored it. A stepline addition: the
/// faces render it in a field AWS's clients ignore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheHit {
    pub key: String,
    /// The execution whose task call stored the result.
    pub execution_arn: String,
    pub stored: DateTime<Utc>,
    pub expires: DateTime<Utc>,
}

/// A task failed or timed out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskFailed {
    pub resource_type: String,
    pub resource: String,
    pub error: Option<String>,
    pub cause: Option<String>,
}

/// A state's field could not be evaluated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationFailed {
    pub state: String,
    pub location: Option<String>,
    pub error: String,
    pub cause: String,
}

impl Event {
    /// The AWS event type name.
    pub fn type_name(&self) -> &'static str {
        use StateType as T;
        match self {
            Event::ExecutionStarted { .. } => "ExecutionStarted",
            Event::ExecutionSucceeded { .. } => "ExecutionSucceeded",
            Event::ExecutionFailed { .. } => "ExecutionFailed",
            Event::ExecutionAborted { .. } => "ExecutionAborted",
            Event::ExecutionTimedOut { .. } => "ExecutionTimedOut",
            Event::ExecutionRedriven { .. } => "ExecutionRedriven",
            Event::StateEntered { state_type, .. } => match state_type {
                T::Pass => "PassStateEntered",
                T::Task => "TaskStateEntered",
                T::Choice => "ChoiceStateEntered",
                T::Wait => "WaitStateEntered",
                T::Succeed => "SucceedStateEntered",
                T::Fail => "FailStateEntered",
                T::Parallel => "ParallelStateEntered",
                T::Map => "MapStateEntered",
            },
            Event::StateExited { state_type, .. } => match state_type {
                T::Pass => "PassStateExited",
                T::Task => "TaskStateExited",
                T::Choice => "ChoiceStateExited",
                T::Wait => "WaitStateExited",
                T::Succeed => "SucceedStateExited",
                T::Fail => "FailStateExited",
                T::Parallel => "ParallelStateExited",
                T::Map => "MapStateExited",
            },
            Event::ParallelStateStarted => "ParallelStateStarted",
            Event::ParallelStateSucceeded => "ParallelStateSucceeded",
            Event::ParallelStateFailed => "ParallelStateFailed",
            Event::ParallelStateAborted => "ParallelStateAborted",
            Event::MapStateStarted { .. } => "MapStateStarted",
            Event::MapStateSucceeded => "MapStateSucceeded",
            Event::MapStateFailed => "MapStateFailed",
            Event::MapStateAborted => "MapStateAborted",
            Event::MapIterationStarted { .. } => "MapIterationStarted",
            Event::MapIterationSucceeded { .. } => "MapIterationSucceeded",
            Event::MapIterationFailed { .. } => "MapIterationFailed",
            Event::MapIterationAborted { .. } => "MapIterationAborted",
            Event::MapRunStarted { .. } => "MapRunStarted",
            Event::MapRunSucceeded => "MapRunSucceeded",
            Event::MapRunFailed { .. } => "MapRunFailed",
            Event::MapRunAborted => "MapRunAborted",
            Event::MapRunRedriven { .. } => "MapRunRedriven",
            Event::TaskScheduled(_) => "TaskScheduled",
            Event::TaskStarted(_) => "TaskStarted",
            Event::TaskSucceeded(_) => "TaskSucceeded",
            Event::TaskFailed(_) => "TaskFailed",
            Event::TaskTimedOut(_) => "TaskTimedOut",
            Event::TaskSubmitted(_) => "TaskSubmitted",
            Event::ActivityScheduled(_) => "ActivityScheduled",
            Event::ActivityStarted { .. } => "ActivityStarted",
            Event::ActivitySucceeded { .. } => "ActivitySucceeded",
            Event::ActivityFailed { .. } => "ActivityFailed",
            Event::ActivityTimedOut { .. } => "ActivityTimedOut",
            Event::EvaluationFailed(_) => "EvaluationFailed",
        }
    }
}

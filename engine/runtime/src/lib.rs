//! The stepline engine: drives executions over a store, performs the
//! interpreter's effects (tasks, timers, Map Runs) and feeds their results
//! back.
//!
//! - [`Engine`] (engine.rs): the durable, concurrent runtime on tokio over a
//!   store; the API the faces call. executor.rs is one execution's loop
//!   inside it (effects after the flush, task dispatch, cancellation).
//! - durable.rs: an execution bound to the store (journal, history,
//!   timers, tokens) and its recovery by replay.
//! - timers.rs: every execution's timers in one task.
//! - task_logs.rs: what process tasks wrote, per attempt, bounded.
//! - [`tasks`]: the task runners (HTTP, processes, Lambda mappings,
//!   activities, nested executions, mocks).
//! - [`maprun`]: the distributed Map's runner, readers and writers.
//! - [`cache`]: which task results are kept and reused, and their keys.
//! - [`lineage`]: the files an execution read and wrote, as it reports
//!   them.
//! - [`confined`]: file access confined to the directories an operator
//!   allowed.

pub mod cache;
mod children;
pub mod confined;
pub mod durable;
mod engine;
mod entropy;
mod error;
mod executor;
pub mod lineage;
pub mod maprun;
mod metrics;
pub mod pools;
pub mod task_logs;
mod task_runner;
pub mod tasks;
mod test_state;
mod timers;
pub mod windows;

pub use durable::{DurableExecution, Keeping, Outstanding, idempotency_key};
pub use engine::{
    CachePurge, ClusterConfig, Ended, Engine, EngineConfig, EngineError, QueuePosition, Resolved,
    StartOptions, TriggerWindows,
};
pub use metrics::Metrics;
pub use stepline_language::clock::{Clock, ManualClock, WallClock};
pub use stepline_language::local::{Invoker, Outcome, UnavailableInvoker, run_to_completion};
pub use task_logs::{TaskLogSink, TaskOutput};
pub use task_runner::{HandedOver, TaskCall, TaskFuture, TaskRunner};
pub use test_state::{InspectionLevel, TestStateMock, TestStateOptions, TestStateResult};

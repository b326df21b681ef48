//! Drives executions: performs the interpreter's effects (tasks, timers)
//! and feeds their results back.
//!
//! - [`Engine`] (engine.rs): the durable, concurrent runtime on tokio over a
//!   store; the API the faces call. executor.rs is one execution's loop
//!   inside it (effects after the flush, task dispatch, cancellation).
//! - durable.rs: an execution bound to the store (journal, history,
//!   timers, tokens) and its recovery by replay.
//! - timers.rs: every execution's timers in one task.
//! - task_logs.rs: what process tasks wrote, per attempt, bounded.
//! - local.rs: the in-process driver behind `stepline run`: one execution,
//!   tasks one at a time through an [`Invoker`], time from a [`Clock`].

mod clock;
pub mod durable;
mod engine;
mod executor;
mod local;
mod metrics;
pub mod task_logs;
mod test_state;
mod timers;
mod versions;

pub use clock::{Clock, ManualClock, WallClock};
pub use durable::{DurableExecution, Keeping, Outstanding, idempotency_key};
pub use engine::{Engine, EngineConfig, EngineError, TaskCall, TaskFuture, TaskRunner};
pub use local::{Invoker, Outcome, UnavailableInvoker, run_to_completion};
pub use metrics::Metrics;
pub use task_logs::{TaskLogSink, TaskOutput};
pub use test_state::{InspectionLevel, TestStateMock, TestStateOptions, TestStateResult};
pub use versions::Resolved;

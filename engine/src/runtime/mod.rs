//! Drives executions: performs the interpreter's effects (tasks, timers)
//! and feeds their results back.
//!
//! Today this is the in-process driver behind `stepline run` and the tests:
//! one execution, tasks invoked one at a time through an [`Invoker`], time
//! from a [`Clock`] (the wall clock, or a manual one that jumps straight to
//! the next timer). The durable, concurrent runtime on tokio and sled
//! replaces the loop, not the interpreter.

mod clock;
pub mod durable;
mod engine;
mod local;

pub use clock::{Clock, ManualClock, WallClock};
pub use durable::{DurableExecution, Outstanding, idempotency_key};
pub use engine::{Engine, EngineConfig, EngineError, TaskRunner};
pub use local::{Invoker, Outcome, UnavailableInvoker, run_to_completion};

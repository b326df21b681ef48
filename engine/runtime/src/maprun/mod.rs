//! The distributed Map: a Map state whose ItemProcessor runs as child
//! executions, one per item or batch, in a Map Run.
//!
//! The interpreter stays pure: it evaluates the Map state's fields into a
//! [`spec::MapRunSpec`], records MapRunStarted and hands the Map Run to
//! the runtime as a task (`ResourceKind::MapRun`). The executor runs it
//! here ([`runner::run`]); its answer comes back as the task's result and
//! the interpreter records MapRunSucceeded or MapRunFailed.
//!
//! - `spec.rs`: the evaluated Map state (pure data).
//! - `reader.rs`: ItemReader over mapped buckets (CSV, JSON, JSONL,
//!   directory listings), streaming; bucket paths confined.
//! - `runner.rs`: children, concurrency, tolerance, the Map Run record,
//!   exactly once across crashes (deterministic child names).
//! - `writer.rs`: ResultWriter files as AWS writes them.

pub mod reader;
pub mod runner;
mod writer;

pub use reader::Buckets;

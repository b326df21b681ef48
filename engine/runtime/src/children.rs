//! What a nested execution (`states:startExecution`) and a Map Run need
//! from the engine, and nothing more: start, find, follow, redrive and stop
//! child executions, read a compiled definition, keep a Map Run's record.
//!
//! The runners (`tasks/nested.rs`, `maprun/`) hold a [`Children`], never
//! the [`Engine`](crate::Engine) itself, so they depend on this seam and
//! the engine depends on them, not the reverse.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use stepline_language::asl::StateMachine;
use stepline_store::{ExecutionRecord, LineageRecord, MapRunChild, MapRunRecord};

use crate::error::EngineError;

/// A child's future, boxed so that [`Children`] can be a trait object.
pub type ChildFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, EngineError>> + Send + 'a>>;

/// The engine as the runners of child executions see it.
pub trait Children: Send + Sync {
    /// The engine's clock.
    fn now(&self) -> DateTime<Utc>;

    /// Starts an execution of `machine_arn` (a nested execution).
    fn start_execution<'a>(
        &'a self,
        machine_arn: &'a str,
        name: &'a str,
        input: &'a str,
    ) -> ChildFuture<'a, ExecutionRecord>;

    /// Starts a Map Run's child, or finds the one of that name.
    fn start_map_child<'a>(
        &'a self,
        child: &'a MapRunChild,
        label: &'a str,
        name: &'a str,
        input: &'a Value,
    ) -> ChildFuture<'a, ExecutionRecord>;

    fn redrive_execution<'a>(&'a self, arn: &'a str) -> ChildFuture<'a, ExecutionRecord>;

    /// Waits for the execution to end and answers its final record.
    fn wait_for<'a>(&'a self, arn: &'a str) -> ChildFuture<'a, ExecutionRecord>;

    fn describe_execution(&self, arn: &str) -> Result<ExecutionRecord, EngineError>;

    /// A state machine's execution by name, if there is one.
    fn execution_by_name(
        &self,
        machine_arn: &str,
        name: &str,
    ) -> Result<Option<ExecutionRecord>, EngineError>;

    /// Stops a child, with `cause` in its ExecutionAborted event.
    fn stop_execution(&self, arn: &str, cause: String) -> Result<(), EngineError>;

    /// A state machine's revision, compiled (cached).
    fn compiled(&self, machine_arn: &str, revision: u64) -> Result<Arc<StateMachine>, EngineError>;

    fn describe_map_run(&self, arn: &str) -> Result<MapRunRecord, EngineError>;

    fn put_map_run(&self, record: &MapRunRecord) -> Result<(), EngineError>;

    /// Makes everything written so far durable.
    fn flush_now(&self) -> ChildFuture<'_, ()>;

    /// Records files an execution read or wrote (lineage): a Map Run's
    /// ItemReader and ResultWriter files.
    fn record_lineage(&self, records: Vec<LineageRecord>) -> Result<(), EngineError>;
}

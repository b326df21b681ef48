//! The engine as the runners of nested executions and Map Runs see it.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use stepline_language::asl::StateMachine;
use stepline_store::{ExecutionRecord, MapRunChild, MapRunRecord};

use super::{Engine, EngineError, off_worker};
use crate::children::{ChildFuture, Children};

impl Children for Engine {
    fn now(&self) -> DateTime<Utc> {
        Engine::now(self)
    }

    fn start_execution<'a>(
        &'a self,
        machine_arn: &'a str,
        name: &'a str,
        input: &'a str,
    ) -> ChildFuture<'a, ExecutionRecord> {
        Box::pin(Engine::start_execution(
            self,
            machine_arn,
            Some(name),
            Some(input),
        ))
    }

    fn start_map_child<'a>(
        &'a self,
        child: &'a MapRunChild,
        label: &'a str,
        name: &'a str,
        input: &'a Value,
    ) -> ChildFuture<'a, ExecutionRecord> {
        Box::pin(Engine::start_map_child(self, child, label, name, input))
    }

    fn redrive_execution<'a>(&'a self, arn: &'a str) -> ChildFuture<'a, ExecutionRecord> {
        Box::pin(Engine::redrive_execution(self, arn))
    }

    fn wait_for<'a>(&'a self, arn: &'a str) -> ChildFuture<'a, ExecutionRecord> {
        Box::pin(Engine::wait_for(self, arn))
    }

    fn describe_execution(&self, arn: &str) -> Result<ExecutionRecord, EngineError> {
        Engine::describe_execution(self, arn)
    }

    fn execution_by_name(
        &self,
        machine_arn: &str,
        name: &str,
    ) -> Result<Option<ExecutionRecord>, EngineError> {
        Ok(off_worker(|| {
            self.inner.store.execution_by_name(machine_arn, name)
        })?)
    }

    fn stop_execution(&self, arn: &str, cause: String) -> Result<(), EngineError> {
        Engine::stop_execution(self, arn, None, Some(cause))
    }

    fn compiled(&self, machine_arn: &str, revision: u64) -> Result<Arc<StateMachine>, EngineError> {
        Engine::compiled(self, machine_arn, revision)
    }

    fn describe_map_run(&self, arn: &str) -> Result<MapRunRecord, EngineError> {
        Engine::describe_map_run(self, arn)
    }

    fn put_map_run(&self, record: &MapRunRecord) -> Result<(), EngineError> {
        Engine::put_map_run(self, record)
    }

    fn flush_now(&self) -> ChildFuture<'_, ()> {
        Box::pin(Engine::flush_now(self))
    }

    fn record_lineage(
        &self,
        records: Vec<stepline_store::LineageRecord>,
    ) -> Result<(), EngineError> {
        Engine::record_lineage(self, records)
    }
}

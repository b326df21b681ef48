//! Distributed Map: its Map Runs (describe, list, update) and the child
//! executions they start, each with the item processor compiled as a state
//! machine of its own.

use std::sync::Arc;

use serde_json::Value;

use crate::durable::DurableExecution;
use crate::executor::{self, Inbox};
use stepline_language::asl::StateMachine;
use stepline_language::cause;
use stepline_language::interp::ExecutionInfo;
use stepline_store::{
    ExecutionRecord, ExecutionStatus, MapRunChild, MapRunRecord, StateMachineRecord, StoreError,
    WriteBatch, WriteOp,
};

use super::{Engine, EngineError, lock};

impl Engine {
    /// The compiled definition of a Map Run's children: the parent's
    /// revision with the ItemProcessor scope as its top level (the states
    /// are shared by id, so nothing is parsed again).
    pub(super) fn compiled_processor(
        &self,
        arn: &str,
        revision: u64,
        scope: u32,
    ) -> Result<Arc<StateMachine>, EngineError> {
        let key = (format!("{arn}#{scope}"), revision);
        if let Some(machine) = lock(&self.inner.compiled).get(&key) {
            return Ok(Arc::clone(machine));
        }
        let parent = self.compiled(arn, revision)?;
        let mut machine = StateMachine::clone(&parent);
        let index = scope as usize;
        let Some(processor) = machine.scopes.get(index).cloned() else {
            return Err(EngineError::StateMachineDoesNotExist(format!(
                "{arn} (revision {revision}) has no scope {scope}"
            )));
        };
        machine.scopes[0] = stepline_language::asl::model::Scope {
            owner: None,
            ..processor
        };
        // The parent's TimeoutSeconds is the parent's, not each child's.
        machine.timeout_seconds = None;
        let machine = Arc::new(machine);
        lock(&self.inner.compiled).insert(key, Arc::clone(&machine));
        Ok(machine)
    }

    /// Starts a Map Run's child execution named `name`, or returns the one
    /// of that name (started before a restart): a name is never run twice.
    pub(super) async fn start_map_child(
        &self,
        child: &MapRunChild,
        label: &str,
        name: &str,
        input: &Value,
    ) -> Result<ExecutionRecord, EngineError> {
        let parent = self.machine_revision(&child.machine_arn, child.revision)?;
        let child_machine_arn = format!("{}/{label}", parent.arn);
        if let Some(existing) = self
            .inner
            .store
            .execution_by_name(&child_machine_arn, name)?
        {
            return Ok(existing);
        }
        let c = &self.inner.config;
        let kind = if child.express {
            "express"
        } else {
            "execution"
        };
        let mut record = self.new_execution(
            format!(
                "arn:aws:states:{}:{}:{kind}:{}/{label}:{name}",
                c.region, c.account, parent.name
            ),
            child_machine_arn.clone(),
            child.revision,
            name.to_owned(),
            input.to_string(),
        )?;
        record.map_run = Some(child.clone());
        let machine = self.compiled_processor(&child.machine_arn, child.revision, child.scope)?;
        let info = self.child_info(&parent, &record);
        let (execution, effects) = match DurableExecution::start(
            &*self.inner.store,
            machine,
            info,
            record.clone(),
            input.clone(),
            self.keeping(child.express),
            self.new_lease(&record.arn),
            // A distributed Map's children take no slot of max_running.
            None,
            self.pools(),
        ) {
            Ok(started) => started,
            // Started meanwhile by another run of the same Map Run (the
            // one a node that lost the parent still ran): that one is it.
            Err(StoreError::ExecutionExists { .. }) => {
                return match self
                    .inner
                    .store
                    .execution_by_name(&child_machine_arn, name)?
                {
                    Some(existing) => Ok(existing),
                    None => Err(EngineError::ExecutionAlreadyExists(record.arn)),
                };
            }
            Err(e) => {
                // A write whose answer was lost may have been stored: the
                // execution is then resumed from the store once it answers.
                if e.is_io() {
                    self.paused(&record.arn);
                }
                return Err(e.into());
            }
        };
        self.launch(execution, effects, !child.express, |engine, execution| {
            executor::count_transitions(engine, execution);
        })
        .await?;
        Ok(record)
    }

    /// What an execution runs: its state machine revision, or for a Map
    /// Run's child the ItemProcessor of its parent's revision.
    pub(super) fn definition_of(
        &self,
        record: &ExecutionRecord,
    ) -> Result<(StateMachineRecord, Arc<StateMachine>, ExecutionInfo), EngineError> {
        match &record.map_run {
            Some(child) => {
                let parent = self.machine_revision(&child.machine_arn, child.revision)?;
                let machine =
                    self.compiled_processor(&child.machine_arn, child.revision, child.scope)?;
                let info = self.child_info(&parent, record);
                Ok((parent, machine, info))
            }
            None => {
                let machine_record =
                    self.machine_revision(&record.state_machine_arn, record.revision)?;
                let machine = self.compiled(&record.state_machine_arn, record.revision)?;
                let info = self.info(&machine_record, record);
                Ok((machine_record, machine, info))
            }
        }
    }

    pub(super) fn child_info(
        &self,
        parent: &StateMachineRecord,
        record: &ExecutionRecord,
    ) -> ExecutionInfo {
        let mut info = self.info(parent, record);
        info.state_machine_arn = record.state_machine_arn.clone();
        info.state_machine_name = record
            .state_machine_arn
            .rsplit(':')
            .next()
            .unwrap_or_default()
            .to_owned();
        info
    }

    pub(super) fn resume_map_child(
        &self,
        mut record: ExecutionRecord,
        child: &MapRunChild,
        inbox: Option<Inbox>,
    ) -> Result<(), EngineError> {
        if child.express {
            record.status = ExecutionStatus::Failed;
            record.stop = Some(self.inner.clock.now());
            let lost = cause::EXPRESS_NOT_RESUMED.failure(&[]);
            record.error = lost.error;
            record.cause = lost.cause;
            let mut batch = WriteBatch::new();
            batch.push(WriteOp::UpdateExecution(record));
            self.inner.store.apply(&batch)?;
            return Ok(());
        }
        let (_, machine, info) = self.definition_of(&record)?;
        self.run_recovered(machine, info, record, inbox)
    }

    /// DescribeMapRun.
    pub fn describe_map_run(&self, arn: &str) -> Result<MapRunRecord, EngineError> {
        self.inner
            .store
            .map_run(arn)?
            .ok_or_else(|| EngineError::ResourceNotFound(arn.to_owned()))
    }

    /// ListMapRuns: the Map Runs an execution started.
    pub fn list_map_runs(&self, execution_arn: &str) -> Result<Vec<MapRunRecord>, EngineError> {
        self.describe_execution(execution_arn)?;
        Ok(self.inner.store.map_runs(execution_arn)?)
    }

    /// UpdateMapRun: changes a running Map Run's concurrency and tolerated
    /// failures; the runner reads them as it goes.
    pub async fn update_map_run(
        &self,
        arn: &str,
        max_concurrency: Option<u64>,
        tolerated_failure_percentage: Option<f64>,
        tolerated_failure_count: Option<u64>,
    ) -> Result<(), EngineError> {
        let mut record = self.describe_map_run(arn)?;
        if let Some(n) = max_concurrency {
            record.max_concurrency = n;
        }
        if let Some(p) = tolerated_failure_percentage {
            record.tolerated_failure_percentage = Some(p);
        }
        if let Some(n) = tolerated_failure_count {
            record.tolerated_failure_count = Some(n);
        }
        let mut batch = WriteBatch::new();
        batch.push(WriteOp::PutMapRun(record.clone()));
        self.inner.store.apply(&batch)?;
        // The runner reads the settings back as it goes.
        self.flush().await?;
        Ok(())
    }

    pub(super) fn put_map_run(&self, record: &MapRunRecord) -> Result<(), EngineError> {
        let mut batch = WriteBatch::new();
        batch.push(WriteOp::PutMapRun(record.clone()));
        Ok(self.inner.store.apply(&batch)?)
    }
}

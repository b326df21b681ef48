//! Activities: created, listed and deleted like AWS's, and their tasks
//! handed to workers that poll (GetActivityTask).

use std::collections::BTreeMap;

use crate::executor::{self, Message};
use crate::tasks::activity::ActivityTask;
use stepline_language::interp::Command;
use stepline_store::{ActivityRecord, WriteBatch, WriteOp};

use super::{Engine, EngineError, check_name};

impl Engine {
    pub(super) fn activity_arn(&self, name: &str) -> String {
        let c = &self.inner.config;
        format!("arn:aws:states:{}:{}:activity:{name}", c.region, c.account)
    }

    /// Creates an activity; creating one that exists returns it (AWS's
    /// CreateActivity is idempotent).
    pub async fn create_activity(&self, name: &str) -> Result<ActivityRecord, EngineError> {
        check_name(name, "activity")?;
        let arn = self.activity_arn(name);
        if let Some(existing) = self.inner.store.activity(&arn)? {
            return Ok(existing);
        }
        let record = ActivityRecord {
            arn,
            name: name.to_owned(),
            created: self.inner.clock.now(),
            tags: BTreeMap::new(),
        };
        let mut batch = WriteBatch::new();
        batch.push(WriteOp::PutActivity(record.clone()));
        self.inner.store.apply(&batch)?;
        self.flush().await?;
        Ok(record)
    }

    pub fn describe_activity(&self, arn: &str) -> Result<ActivityRecord, EngineError> {
        self.inner
            .store
            .activity(arn)?
            .ok_or_else(|| EngineError::ActivityDoesNotExist(arn.to_owned()))
    }

    pub fn list_activities(&self) -> Result<Vec<ActivityRecord>, EngineError> {
        Ok(self.inner.store.activities()?)
    }

    pub async fn delete_activity(&self, arn: &str) -> Result<(), EngineError> {
        let mut batch = WriteBatch::new();
        batch.push(WriteOp::DeleteActivity(arn.to_owned()));
        self.inner.store.apply(&batch)?;
        self.flush().await?;
        Ok(())
    }

    /// A worker asks for a task of an activity, waiting up to `wait`.
    /// `None` when none came (AWS answers with an empty token). The task's
    /// ActivityStarted records the worker's name.
    pub async fn get_activity_task(
        &self,
        activity_arn: &str,
        worker_name: Option<&str>,
        wait: std::time::Duration,
    ) -> Result<Option<ActivityTask>, EngineError> {
        self.describe_activity(activity_arn)?;
        loop {
            let Some(task) = self.inner.activities.take(activity_arn, wait).await else {
                return Ok(None);
            };
            let started = Command::TaskStarted {
                task: task.task,
                worker_name: worker_name.map(str::to_owned),
            };
            // A task whose execution has gone (stopped meanwhile) is skipped.
            if executor::deliver(self, &task.execution_arn, Message::Command(started)) {
                return Ok(Some(task));
            }
        }
    }
}

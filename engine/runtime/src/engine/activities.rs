//! Activities: created, listed and deleted like AWS's, and their tasks
//! handed to workers that poll (GetActivityTask).

use std::collections::BTreeMap;

use crate::executor::{self, Message};
use crate::tasks::activity::ActivityTask;
use stepline_language::interp::{Command, TaskId};
use stepline_store::{ActivityRecord, SharedActivityTask, StoreError, WriteBatch, WriteOp};

use super::{Engine, EngineError, check_name, off_worker};

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
        if self.is_clustered() {
            return self
                .take_shared_activity_task(activity_arn, worker_name, wait)
                .await;
        }
        loop {
            let Some(task) = self.inner.activities.take(activity_arn, wait).await else {
                return Ok(None);
            };
            let started = Command::TaskStarted {
                task: task.task,
                worker_name: worker_name.map(str::to_owned),
                pool: None,
            };
            // A task whose execution has gone (stopped meanwhile) is skipped.
            if executor::deliver(self, &task.execution_arn, Message::Command(started)) {
                return Ok(Some(task));
            }
        }
    }

    /// Offers an activity task to the workers: of this node, or of every
    /// node when several share the store.
    pub(crate) fn offer_activity_task(&self, activity_arn: &str, task: ActivityTask) {
        let Some(cluster) = self.shared_store() else {
            self.inner.activities.offer(activity_arn, task);
            return;
        };
        let shared = SharedActivityTask {
            activity: activity_arn.to_owned(),
            token: task.token,
            execution: task.execution_arn,
            task: task.task.0,
            input: task.input,
        };
        // Not offered now: offered again when the execution resumes (the
        // task stays outstanding in its journal).
        if let Err(e) = off_worker(|| cluster.offer_activity_task(&shared)) {
            tracing::error!(execution = %shared.execution, error = %e, "an activity task cannot be offered now");
        }
    }

    /// Withdraws an activity task no worker took.
    pub(crate) fn withdraw_activity_task(
        &self,
        activity_arn: &str,
        execution_arn: &str,
        task: TaskId,
        token: Option<&str>,
    ) {
        match (self.shared_store(), token) {
            (Some(cluster), Some(token)) => {
                if let Err(e) = off_worker(|| cluster.withdraw_activity_task(token)) {
                    tracing::warn!(execution = %execution_arn, error = %e, "an activity task cannot be withdrawn; a worker may still take it, and its answer is refused");
                }
            }
            _ => self
                .inner
                .activities
                .withdraw(activity_arn, execution_arn, task),
        }
    }

    /// GetActivityTask when several nodes share the store: the oldest task
    /// any node offered, its start told to the node that runs it.
    async fn take_shared_activity_task(
        &self,
        activity_arn: &str,
        worker_name: Option<&str>,
        wait: std::time::Duration,
    ) -> Result<Option<ActivityTask>, EngineError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let store = std::sync::Arc::clone(&self.inner.store);
            let activity = activity_arn.to_owned();
            let taken = tokio::task::spawn_blocking(move || match store.cluster() {
                Some(cluster) => cluster.take_activity_task(&activity),
                None => Ok(None),
            })
            .await
            .map_err(|e| {
                StoreError::Unavailable(format!("taking an activity task stopped: {e}"))
            })??;
            if let Some(shared) = taken {
                let task = ActivityTask {
                    token: shared.token,
                    input: shared.input,
                    execution_arn: shared.execution,
                    task: TaskId(shared.task),
                };
                let started = Command::TaskStarted {
                    task: task.task,
                    worker_name: worker_name.map(str::to_owned),
                    pool: None,
                };
                if let Err(Message::Command(started)) =
                    executor::send(self, &task.execution_arn, Message::Command(started))
                {
                    self.post_command(&task.execution_arn, Some(task.task), &started)?;
                }
                return Ok(Some(task));
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            // Woken by an offer anywhere, or every second regardless.
            let store = std::sync::Arc::clone(&self.inner.store);
            let nap = left.min(std::time::Duration::from_secs(1));
            let _ = tokio::task::spawn_blocking(move || {
                if let Some(cluster) = store.cluster() {
                    cluster.wait_for_activity_tasks(nap);
                }
            })
            .await;
        }
    }
}

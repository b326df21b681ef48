//! Resuming executions: every open one when the engine opens (a replay
//! of its journal), and a sleeping one when its timer or a message wakes
//! it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::durable::DurableExecution;
use crate::executor::{Inbox, Pending};
use stepline_language::asl::StateMachine;
use stepline_language::cause;
use stepline_language::interp::ExecutionInfo;
use stepline_store::{
    ExecutionRecord, ExecutionStatus, StoreError, WorkflowType, WriteBatch, WriteOp,
};

use super::{Engine, EngineError, lock, panic_text};

impl Engine {
    /// Counts executions going to sleep (1) or waking (-1).
    pub(crate) fn asleep_count(&self, change: isize) {
        let asleep = &self.inner.asleep;
        if change > 0 {
            asleep.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        } else {
            asleep.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Resumes a sleeping execution from the store, with the inbox its
    /// messages wait in.
    pub(super) fn wake(&self, arn: &str) {
        let Some(inbox) = lock(&self.inner.live).get(arn).cloned() else {
            return;
        };
        self.asleep_count(-1);
        let resumed = self
            .inner
            .store
            .execution(arn)
            .map_err(EngineError::from)
            .and_then(|record| {
                let record =
                    record.ok_or_else(|| EngineError::ExecutionDoesNotExist(arn.to_owned()))?;
                self.resume_with(record, Some(inbox))
            });
        if let Err(e) = resumed {
            // Tried again, from the store, with the executions a storage
            // failure paused; its messages wait for that in the store
            // (a cluster's) or are refused as for a closed task.
            tracing::error!(execution = %arn, error = %e, "execution cannot wake now; it is tried again when the store answers");
            lock(&self.inner.live).remove(arn);
            self.paused(arn);
        }
    }

    pub(crate) fn live(&self) -> &Mutex<HashMap<String, Inbox>> {
        &self.inner.live
    }

    /// Resumes every execution the store says is open. One that cannot be
    /// replayed (its journal is damaged, its definition is gone, the replay
    /// fails or panics) must not keep the others, or the server, from
    /// starting: it is marked FAILED with the reason and reported. Only a
    /// store that cannot be read leaves it open, tried again every few
    /// seconds (`paused.rs`).
    pub(super) fn recover(&self) -> Result<(), EngineError> {
        if self.is_clustered() {
            // The open executions of live nodes are theirs; this node
            // takes those nobody owns.
            self.claim_orphans()?;
            return Ok(());
        }
        let open = self.inner.store.open_executions()?;
        self.count_slots(&open);
        self.count_held(&open);
        // The tasks that held pool slots when the node stopped take them
        // back before any other task gets one.
        self.pools().close_gate();
        for record in open {
            self.resume_or_fail(record);
        }
        let pools = self.pools();
        if !pools.resumed() {
            // A safety net: a loop that never took its turns (it could not
            // run) must not keep every other task from its slot.
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_secs(10)).await;
                pools.open_gate();
            });
        }
        Ok(())
    }

    /// Resumes one open execution; one that cannot be replayed is marked
    /// FAILED with the reason (see [`Engine::recover`]).
    pub(super) fn resume_or_fail(&self, record: ExecutionRecord) {
        let arn = record.arn.clone();
        let kept = record.clone();
        let resumed =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.resume(record)));
        let why = match resumed {
            Ok(Ok(())) => return,
            Ok(Err(e)) if matches!(&e, EngineError::Store(s) if s.is_io()) => {
                // Tried again with the executions a storage failure paused
                // (a claimed one is this node's: no other node takes it).
                tracing::error!(execution = %arn, error = %e, "execution cannot resume now; it is tried again when the store answers");
                self.paused(&arn);
                return;
            }
            Ok(Err(e)) => e.to_string(),
            Err(panic) => format!("resuming it panicked: {}", panic_text(panic.as_ref())),
        };
        tracing::error!(execution = %arn, error = %why, "execution cannot be resumed; it is marked FAILED");
        match self.fail_unresumable(kept.clone(), &why) {
            // It held a slot of its state machine's max_running, if any.
            Ok(()) => self.slot_freed(&kept),
            Err(e) => {
                tracing::error!(execution = %arn, error = %e, "execution cannot be resumed, nor marked FAILED; it stays open");
            }
        }
    }

    /// Ends an execution that recovery cannot replay: FAILED with
    /// `States.Runtime` and the reason, and an ExecutionFailed event after
    /// its stored history when that history takes one.
    pub(super) fn fail_unresumable(
        &self,
        mut record: ExecutionRecord,
        why: &str,
    ) -> Result<(), EngineError> {
        let now = self.inner.clock.now();
        let arn = record.arn.clone();
        let failed = cause::RECOVERY_FAILED.failure(&[("reason", &why)]);
        let (error, cause) = (
            failed.error.unwrap_or_default(),
            failed.cause.unwrap_or_default(),
        );
        record.status = ExecutionStatus::Failed;
        record.queued = None;
        record.stop = Some(now);
        record.error = Some(error.clone());
        record.cause = Some(cause.clone());
        let mut closed = WriteBatch::new();
        closed.push(WriteOp::UpdateExecution(record.clone()));
        let stats = crate::durable::ended_stats(&record);
        closed.ops.extend(stats.clone());
        if let Ok(last) = self.inner.store.history_len(&record.arn) {
            let mut with_event = WriteBatch::new();
            with_event.push(WriteOp::AppendHistory {
                execution: record.arn.clone(),
                events: vec![stepline_language::history::HistoryEvent {
                    id: last + 1,
                    previous_event_id: last,
                    timestamp: now,
                    event: stepline_language::history::Event::ExecutionFailed {
                        error: Some(error),
                        cause: Some(cause),
                    },
                }],
            });
            with_event.push(WriteOp::UpdateExecution(record));
            with_event.ops.extend(stats);
            match self.inner.store.apply(&with_event) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    tracing::warn!(execution = %arn, error = %e, "the history of an execution that cannot be resumed takes no ExecutionFailed event");
                }
            }
        }
        self.inner.store.apply(&closed)?;
        Ok(())
    }

    pub(super) fn resume(&self, record: ExecutionRecord) -> Result<(), EngineError> {
        self.resume_with(record, None)
    }

    /// Resumes an open execution from the store; `inbox` is the one of an
    /// execution that slept (its queued messages are kept).
    pub(super) fn resume_with(
        &self,
        mut record: ExecutionRecord,
        inbox: Option<Inbox>,
    ) -> Result<(), EngineError> {
        if record.status != ExecutionStatus::Running {
            // An EXPRESS execution's relaxed end was cut short by a crash
            // after its closed record was written: only the mark goes.
            let mut batch = WriteBatch::new();
            batch.push(WriteOp::UpdateExecution(record));
            self.inner.store.apply(&batch)?;
            return Ok(());
        }
        if record.queued.is_some() {
            // Not started: it waits in its state machine's queue
            // (`limits.rs`) or for its window (`windows.rs`), which took
            // it in at open.
            return Ok(());
        }
        if let Some(child) = record.map_run.clone() {
            return self.resume_map_child(record, &child, inbox);
        }
        let machine_record = self.machine_revision(&record.state_machine_arn, record.revision)?;
        if machine_record.workflow_type == WorkflowType::Express {
            // Nothing of it was kept to resume from: it ends here, as an
            // EXPRESS execution on AWS runs at most once.
            record.status = ExecutionStatus::Failed;
            record.stop = Some(self.inner.clock.now());
            let lost = cause::EXPRESS_NOT_RESUMED.failure(&[]);
            record.error = lost.error;
            record.cause = lost.cause;
            let mut batch = WriteBatch::new();
            batch.ops.extend(crate::durable::ended_stats(&record));
            batch.push(WriteOp::UpdateExecution(record));
            self.inner.store.apply(&batch)?;
            return Ok(());
        }
        let machine = self.compiled(&record.state_machine_arn, record.revision)?;
        let info = self.info(&machine_record, &record);
        self.run_recovered(machine, info, record, inbox)
    }

    /// Rebuilds an open execution from its journal and runs it on. A
    /// replay that panics is an error of this execution alone (a panic
    /// fails one execution, never the node).
    pub(super) fn run_recovered(
        &self,
        machine: Arc<StateMachine>,
        info: ExecutionInfo,
        record: ExecutionRecord,
        inbox: Option<Inbox>,
    ) -> Result<(), EngineError> {
        let arn = record.arn.clone();
        let owner = match self.ownership(&arn)? {
            super::cluster::Ownership::Alone => None,
            super::cluster::Ownership::Mine(lease) => {
                // This loop is the one a takeover asked for.
                lock(&self.inner.reclaimed).remove(&arn);
                Some(lease)
            }
            super::cluster::Ownership::Elsewhere => {
                // Another node took it over (while it slept here, say).
                if inbox.is_some() {
                    lock(&self.inner.live).remove(&arn);
                }
                return Ok(());
            }
        };
        let replayed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            DurableExecution::recover(
                &*self.inner.store,
                machine,
                info,
                record,
                self.end_notices(),
                owner,
                self.pools(),
            )
        }));
        let (execution, outstanding) = match replayed {
            Ok(replayed) => replayed?,
            Err(panic) => {
                return Err(StoreError::Corrupt(format!(
                    "replaying the journal of {arn} panicked: {}",
                    panic_text(panic.as_ref())
                ))
                .into());
            }
        };
        self.spawn_with(execution, Pending::from_outstanding(outstanding), inbox);
        Ok(())
    }
}

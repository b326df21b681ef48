//! Ended executions announced to observers (the server's alerts), at
//! least once: a notice is stored with the end and removed once handled.

use std::sync::atomic::Ordering;

use stepline_store::{ExecutionRecord, ExecutionStatus, WriteBatch, WriteOp};

use super::{Engine, EngineError, lock};

/// An execution that ended, as its observers are told of it.
#[derive(Debug, Clone)]
pub struct Ended {
    pub record: ExecutionRecord,
    /// Its end stored a notice: the observers call
    /// [`Engine::ended_handled`] once they are done with it.
    pub noticed: bool,
}

impl Engine {
    /// Whether a durable execution's end writes a notice: only when some
    /// observer is there to announce it (observers are given at open and
    /// only ever leave) and it wants to hear of ends across a crash.
    pub(super) fn end_notices(&self) -> bool {
        self.inner.end_notices_wanted.load(Ordering::Relaxed) && !lock(&self.inner.ended).is_empty()
    }

    /// Whether the observers need ends to survive a crash (the server:
    /// alerts or pipelines configured). Without, an end is still told to
    /// them, but writes no notice: a notice costs a write, and its removal
    /// another, for every execution. On by default.
    pub fn want_end_notices(&self, wanted: bool) {
        self.inner
            .end_notices_wanted
            .store(wanted, Ordering::Relaxed);
    }

    /// Hands an ended execution to the observers; with none, its notice
    /// (`noticed`: a durable execution's end writes one) has nobody to
    /// wait for and goes at once.
    pub(crate) fn notify_ended(&self, record: &ExecutionRecord, noticed: bool) {
        let mut observers = lock(&self.inner.ended);
        observers.retain(|observer| {
            observer
                .send(Ended {
                    record: record.clone(),
                    noticed,
                })
                .is_ok()
        });
        if observers.is_empty() && noticed {
            drop(observers);
            self.ended_handled(&record.arn);
        }
    }

    /// The observers are done with an ended execution (its alerts were
    /// delivered or given up): its notice goes. Not flushed by itself: if a
    /// crash loses the removal, the end is announced again (at least once).
    pub fn ended_handled(&self, arn: &str) {
        let mut batch = WriteBatch::new();
        batch.push(WriteOp::RemoveEndedNotice(arn.to_owned()));
        if let Err(e) = self.inner.store.apply(&batch) {
            tracing::warn!(execution = %arn, error = %e, "cannot remove an ended notice");
        }
    }

    /// At open: executions that ended without their end being handled (the
    /// process stopped first) are handed to the observers again.
    pub(super) fn announce_pending(&self) -> Result<(), EngineError> {
        for arn in self.inner.store.ended_notices()? {
            match self.inner.store.execution(&arn)? {
                Some(record) if record.status != ExecutionStatus::Running => {
                    self.notify_ended(&record, true);
                }
                _ => self.ended_handled(&arn),
            }
        }
        Ok(())
    }

    /// An execution's loop has ended: wake whoever waits for it, and
    /// resume it from the store if this node took it over again meanwhile
    /// (`cluster.rs`, `claim_orphans`).
    pub(crate) fn execution_ended(&self, arn: &str) {
        let reclaimed = {
            let mut live = lock(&self.inner.live);
            live.remove(arn);
            lock(&self.inner.reclaimed).remove(arn)
        };
        for done in lock(&self.inner.waiters).remove(arn).unwrap_or_default() {
            let _ = done.send(());
        }
        if reclaimed {
            match self.inner.store.execution(arn) {
                Ok(Some(record)) if record.status == ExecutionStatus::Running => {
                    self.resume_or_fail(record);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(execution = %arn, error = %e, "an execution taken over again cannot be read; it is resumed after the next restart");
                }
            }
        }
    }
}

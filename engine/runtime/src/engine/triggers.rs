//! Triggers: their definitions and what each has done, stored here and
//! driven by the server.

use stepline_store::{TriggerRecord, TriggerStateRecord, WriteBatch, WriteOp};

use super::{Engine, EngineError};

impl Engine {
    /// Every trigger, ordered by name.
    pub fn triggers(&self) -> Result<Vec<TriggerRecord>, EngineError> {
        Ok(self.inner.store.triggers()?)
    }

    pub fn trigger(&self, name: &str) -> Result<Option<TriggerRecord>, EngineError> {
        Ok(self.inner.store.trigger(name)?)
    }

    pub fn trigger_state(&self, name: &str) -> Result<Option<TriggerStateRecord>, EngineError> {
        Ok(self.inner.store.trigger_state(name)?)
    }

    /// Stores a trigger definition (creating or replacing it), durably.
    pub async fn put_trigger(&self, record: TriggerRecord) -> Result<(), EngineError> {
        self.write(WriteOp::PutTrigger(record)).await
    }

    /// Deletes a trigger and its state, durably.
    pub async fn delete_trigger(&self, name: &str) -> Result<(), EngineError> {
        self.write(WriteOp::DeleteTrigger(name.to_owned())).await
    }

    /// Records what a trigger has done. Not flushed by itself (the next
    /// flush of anything covers it): losing it in a crash only means a
    /// schedule resumes from an older slot, whose executions then exist
    /// already and are not started twice.
    pub fn put_trigger_state(&self, state: TriggerStateRecord) -> Result<(), EngineError> {
        let mut batch = WriteBatch::new();
        batch.push(WriteOp::PutTriggerState(state));
        Ok(self.inner.store.apply(&batch)?)
    }

    /// Records a trigger state (or a state machine's settings) durably:
    /// flushed before it returns.
    pub async fn put_trigger_state_durably(
        &self,
        state: TriggerStateRecord,
    ) -> Result<(), EngineError> {
        self.write(WriteOp::PutTriggerState(state)).await
    }

    /// One operation, applied and flushed (sharing the flush with others).
    pub(super) async fn write(&self, op: WriteOp) -> Result<(), EngineError> {
        let mut batch = WriteBatch::new();
        batch.push(op);
        self.inner.store.apply(&batch)?;
        self.flush().await
    }
}

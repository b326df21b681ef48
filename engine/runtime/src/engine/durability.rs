//! Durability: flushes (one flusher serves every execution: group
//! commit), the store's damage as `/ready` reports it, and backups.

use tokio::sync::oneshot;

use stepline_store::StoreError;

use super::{Engine, EngineError};

impl Engine {
    /// Makes every write so far durable (a graceful shutdown's last step).
    pub async fn flush_now(&self) -> Result<(), EngineError> {
        self.flush().await
    }

    /// The damage the store found since it was opened, if any.
    pub fn store_damage(&self) -> Option<String> {
        self.inner.store.damage()
    }

    /// Writes a consistent backup of the whole store to `out`; writers
    /// wait meanwhile. Blocking: call it off the async workers.
    pub fn backup(
        &self,
        out: &mut dyn std::io::Write,
    ) -> Result<stepline_store::backup::BackupSummary, EngineError> {
        Ok(self.inner.store.backup(out)?)
    }

    /// Waits for a flush that covers every write made before the call.
    pub(crate) async fn flush(&self) -> Result<(), EngineError> {
        let (done, wait) = oneshot::channel();
        if self.inner.flusher.send(done).is_err() {
            return Err(StoreError::Unavailable("the store's flusher has stopped".into()).into());
        }
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StoreError::Shared(e).into()),
            Err(_) => Err(StoreError::Unavailable("the store's flusher has stopped".into()).into()),
        }
    }
}

//! Retention: closed executions are purged once the retention period
//! has passed.

use stepline_store::{
    ExecutionQuery, ExecutionStatus, ExecutionsOf, ListCursor, WriteBatch, WriteOp,
};

use super::{Engine, EngineError, off_worker};

impl Engine {
    /// Deletes the executions that closed before the retention period;
    /// returns how many. Runs hourly by itself.
    pub async fn purge_expired(&self) -> Result<usize, EngineError> {
        let Some(retention) = self.inner.config.retention else {
            return Ok(0);
        };
        let cutoff = self.inner.clock.now() - retention;
        // An execution stops after it starts: only those started before
        // the cutoff can have stopped before it, and the listing index
        // goes from there, a page of summaries at a time (bounded batches:
        // one huge batch would hold the writer too long).
        let mut query = ExecutionQuery::new(ExecutionsOf::All, 256);
        query.after = Some(ListCursor {
            start: cutoff,
            arn: String::new(),
        });
        let mut purged = 0;
        loop {
            let page = off_worker(|| self.inner.store.list_executions(&query))?;
            let mut batch = WriteBatch::new();
            for e in &page.executions {
                if e.status != ExecutionStatus::Running && e.stop.is_some_and(|t| t < cutoff) {
                    batch.push(WriteOp::DeleteExecution(e.arn.clone()));
                }
            }
            purged += batch.ops.len();
            if !batch.is_empty() {
                self.inner.store.apply(&batch)?;
            }
            match page.next {
                Some(next) => query.after = Some(next),
                None => break,
            }
        }
        if purged > 0 {
            self.flush().await?;
        }
        Ok(purged)
    }
}

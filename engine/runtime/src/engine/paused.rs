//! Executions a storage failure paused: their loop stopped, and they stay
//! open in the store. Once the store answers again (a flush succeeds),
//! each is resumed from the store exactly as recovery resumes it at a
//! start, so a database that restarts, or a disk that had filled, holds
//! executions up only while it is away.

use std::time::Duration;

use stepline_store::ExecutionStatus;

use super::{Engine, EngineError, Inner, lock};

/// How often paused executions are tried again.
const RETRY_EVERY: Duration = Duration::from_secs(2);

impl Engine {
    /// Records that `arn`'s loop stopped on a storage failure.
    pub(crate) fn paused(&self, arn: &str) {
        lock(&self.inner.paused).insert(arn.to_owned());
    }

    /// Resumes the paused executions whose loop has ended, if the store
    /// flushes; those it cannot resume yet stay paused.
    async fn resume_paused(&self) {
        if lock(&self.inner.paused).is_empty() || self.flush().await.is_err() {
            return;
        }
        let arns: Vec<String> = std::mem::take(&mut *lock(&self.inner.paused))
            .into_iter()
            .collect();
        for arn in arns {
            if lock(&self.inner.live).contains_key(&arn) {
                // Its loop is still winding down: next round.
                self.paused(&arn);
                continue;
            }
            let resumed = self
                .inner
                .store
                .execution(&arn)
                .map_err(EngineError::from)
                .and_then(|record| match record {
                    Some(record) if record.status == ExecutionStatus::Running => {
                        self.resume(record)
                    }
                    _ => Ok(()),
                });
            match resumed {
                Ok(()) => {
                    tracing::info!(execution = %arn, "execution resumed after a storage failure")
                }
                Err(e) => {
                    tracing::warn!(execution = %arn, error = %e, "paused execution cannot resume yet");
                    self.paused(&arn);
                }
            }
        }
    }
}

/// Tries the paused executions again every few seconds while the engine
/// lives.
pub(super) async fn retry_loop(inner: std::sync::Weak<Inner>) {
    loop {
        tokio::time::sleep(RETRY_EVERY).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        Engine { inner }.resume_paused().await;
    }
}

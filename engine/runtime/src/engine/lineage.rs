//! Lineage in the engine: the files an execution read and wrote, read by
//! path or by execution, and written beside the execution's own steps
//! (`crate::lineage` says what is recorded and when).

use serde_json::Value;
use stepline_store::{LineageKind, LineageRecord, WriteBatch, WriteOp};

use super::{Engine, EngineError, off_worker};

/// At most this many records answer one question (a file read by more
/// executions shows the first ones by ARN).
pub const LINEAGE_LIMIT: usize = 1000;

impl Engine {
    /// Who wrote and who read `path` (absolute; normalised as recorded).
    pub fn lineage_of_path(&self, path: &str) -> Result<Vec<LineageRecord>, EngineError> {
        let Some(path) = crate::lineage::normalise(path) else {
            return Err(EngineError::Validation(format!(
                "'{path}' is not an absolute path"
            )));
        };
        Ok(off_worker(|| {
            self.inner.store.lineage_of_path(&path, LINEAGE_LIMIT)
        })?)
    }

    /// What an execution read and wrote.
    pub fn lineage_of_execution(&self, arn: &str) -> Result<Vec<LineageRecord>, EngineError> {
        self.describe_execution(arn)?;
        Ok(off_worker(|| {
            self.inner.store.lineage_of_execution(arn, LINEAGE_LIMIT)
        })?)
    }

    /// Keeps lineage records (durable with the next flush).
    pub(crate) fn record_lineage(&self, records: Vec<LineageRecord>) -> Result<(), EngineError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut batch = WriteBatch::new();
        for record in records {
            batch.push(WriteOp::PutLineage(record));
        }
        Ok(self.inner.store.apply(&batch)?)
    }

    /// The files a new execution's input names, as records of reads.
    pub(crate) fn input_reads(&self, execution_arn: &str, input: &Value) -> Vec<LineageRecord> {
        let Some(finder) = &self.inner.config.input_files else {
            return Vec::new();
        };
        let now = self.now();
        (finder.0)(input)
            .into_iter()
            .take(crate::lineage::MAX_PATHS)
            .filter_map(|file| {
                crate::lineage::record(
                    &file.path,
                    execution_arn,
                    LineageKind::Read,
                    &file.via,
                    None,
                    now,
                )
            })
            .collect()
    }
}

//! The task cache in the engine: looking a call's key up, the entry a
//! missed call's result becomes, and the purge that keeps entries within
//! their bounds (expired ones removed; past `max_entries`, those expiring
//! soonest). The rules and keys are `crate::cache`'s; the executor decides
//! when to look up and writes an entry with the TaskSucceeded it came
//! from, so a crash never leaves one without the other.

use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};
use serde_json::Value;
use stepline_language::history::CacheHit;
use stepline_store::{CacheEntryRecord, READ_PAGE, WriteBatch, WriteOp};

use super::{Engine, EngineError, Inner};
use crate::cache::{CacheKey, TaskCache};

/// What a purge did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CachePurge {
    pub expired: usize,
    /// Removed because there were more than `max_entries`.
    pub evicted: usize,
    pub kept: usize,
}

impl Engine {
    pub fn task_cache(&self) -> &TaskCache {
        &self.inner.config.cache
    }

    /// The stored result for `key`, if one is there and has not expired.
    pub(crate) fn cache_lookup(&self, key: &CacheKey) -> Option<(Value, CacheHit)> {
        let found = match self.inner.store.cache_entry(&key.key) {
            Ok(found) => found,
            Err(e) => {
                // The call is made: a cache that cannot be read is a miss.
                tracing::warn!(error = %e, "the task cache cannot be read");
                None
            }
        };
        let now = self.now();
        match found {
            Some(entry) if entry.expires > now => {
                self.inner.metrics.cache_lookup(true);
                Some((
                    entry.output,
                    CacheHit {
                        key: entry.key,
                        execution_arn: entry.execution_arn,
                        stored: entry.stored,
                        expires: entry.expires,
                    },
                ))
            }
            _ => {
                self.inner.metrics.cache_lookup(false);
                None
            }
        }
    }

    /// The entry a call's result becomes, or `None` when it is larger than
    /// `max_entry_bytes` (the result is used, not kept).
    pub(crate) fn cache_entry(
        &self,
        key: &CacheKey,
        resource: &str,
        state_name: &str,
        execution_arn: &str,
        output: &Value,
    ) -> Option<WriteOp> {
        let cache = self.task_cache();
        if stepline_language::payload::json_size(output, cache.max_entry_bytes)
            > cache.max_entry_bytes
        {
            tracing::debug!(state = %state_name, "the result is too large for the task cache");
            return None;
        }
        let stored = self.now();
        Some(WriteOp::PutCacheEntry(CacheEntryRecord {
            key: key.key.clone(),
            resource: resource.to_owned(),
            output: output.clone(),
            execution_arn: execution_arn.to_owned(),
            state_name: state_name.to_owned(),
            stored,
            expires: stored + key.ttl,
        }))
    }

    /// Counts an entry written; past `max_entries`, wakes the purge.
    pub(crate) fn cache_entry_written(&self) {
        let count = self.inner.cache_entries.fetch_add(1, Ordering::Relaxed) + 1;
        if count > self.task_cache().max_entries {
            self.inner.cache_purge.notify_one();
        }
    }

    /// Up to `limit` stored results after the key `after` ("" for the
    /// first), in key order, expired ones included until purged.
    pub fn cache_entries(
        &self,
        after: &str,
        limit: usize,
    ) -> Result<Vec<CacheEntryRecord>, EngineError> {
        Ok(super::off_worker(|| {
            self.inner
                .store
                .cache_entries_page(after, limit.min(READ_PAGE))
        })?)
    }

    /// Drops the stored result under `key`; whether there was one. The
    /// next call with that key is made again.
    pub fn drop_cache_entry(&self, key: &str) -> Result<bool, EngineError> {
        if super::off_worker(|| self.inner.store.cache_entry(key))?.is_none() {
            return Ok(false);
        }
        let mut batch = WriteBatch::new();
        batch.push(WriteOp::RemoveCacheEntry(key.to_owned()));
        self.inner.store.apply(&batch)?;
        Ok(true)
    }

    /// Drops every stored result of `resource` (every one, without); how
    /// many. For a job whose code changed: its next calls are made again.
    pub fn drop_cache_entries(&self, resource: Option<&str>) -> Result<usize, EngineError> {
        let mut dropped = 0;
        let mut after = String::new();
        loop {
            let page =
                super::off_worker(|| self.inner.store.cache_entries_page(&after, READ_PAGE))?;
            let Some(last) = page.last().map(|e| e.key.clone()) else {
                return Ok(dropped);
            };
            let mut batch = WriteBatch::new();
            for entry in page {
                if resource.is_none_or(|r| r == entry.resource) {
                    batch.push(WriteOp::RemoveCacheEntry(entry.key));
                    dropped += 1;
                }
            }
            if !batch.is_empty() {
                self.inner.store.apply(&batch)?;
            }
            after = last;
        }
    }

    /// Removes expired entries and, past `max_entries`, the entries that
    /// expire soonest. Runs by itself every `purge_interval` and as soon
    /// as more than `max_entries` may be kept.
    pub async fn purge_cache(&self) -> Result<CachePurge, EngineError> {
        let now = self.now();
        let max = usize::try_from(self.task_cache().max_entries).unwrap_or(usize::MAX);
        let mut report = CachePurge::default();
        let mut live: Vec<(DateTime<Utc>, String)> = Vec::new();
        let mut after = String::new();
        loop {
            let page =
                super::off_worker(|| self.inner.store.cache_entries_page(&after, READ_PAGE))?;
            let Some(last) = page.last().map(|e| e.key.clone()) else {
                break;
            };
            let mut batch = WriteBatch::new();
            for entry in page {
                if entry.expires <= now {
                    batch.push(WriteOp::RemoveCacheEntry(entry.key));
                    report.expired += 1;
                } else {
                    live.push((entry.expires, entry.key));
                }
            }
            if !batch.is_empty() {
                self.inner.store.apply(&batch)?;
            }
            after = last;
        }
        if live.len() > max {
            live.sort();
            let excess = live.len() - max;
            let mut batch = WriteBatch::new();
            for (_, key) in live.drain(..excess) {
                batch.push(WriteOp::RemoveCacheEntry(key));
            }
            report.evicted = excess;
            self.inner.store.apply(&batch)?;
        }
        report.kept = live.len();
        self.inner
            .cache_entries
            .store(live.len() as u64, Ordering::Relaxed);
        if report.expired + report.evicted > 0 {
            self.flush().await?;
        }
        Ok(report)
    }
}

/// Purges the cache every `purge_interval`, or at once when woken.
/// The loop holds the notifier, not the engine: a dropped engine ends it
/// at its next wake-up.
pub(super) async fn purge_loop(
    inner: std::sync::Weak<Inner>,
    wake: std::sync::Arc<tokio::sync::Notify>,
    period: std::time::Duration,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = wake.notified() => {}
        }
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let engine = Engine { inner };
        if let Err(e) = engine.purge_cache().await {
            tracing::error!(error = %e, "purging the task cache failed");
        }
    }
}

//! An in-memory store: for tests, for EXPRESS executions (which AWS does not
//! persist step by step), and as the second backend of the shared suite.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use super::{
    Activities, ActivityRecord, CacheEntryRecord, EndedNotices, ExecutionPage, ExecutionQuery,
    ExecutionRecord, ExecutionStatus, ExecutionSummary, Executions, ExecutionsOf, Histories,
    JournalEntry, Journals, Lineage, LineageKind, LineageRecord, ListCursor, MapRunRecord, MapRuns,
    StateMachineRecord, StateMachines, Store, StoreError, TaskCache, TaskLogRecord, TaskLogs,
    TaskTokenRecord, TaskTokens, TimerRecord, Timers, TriggerRecord, TriggerStateRecord, Triggers,
    WriteBatch, WriteOp,
};
use crate::stats::{MachineStats, Stats, StatsBucket, TOTAL_HOUR};
use stepline_language::history::HistoryEvent;

/// A summary's place in a listing.
type ListingKey = (Reverse<DateTime<Utc>>, String);

fn listing_key(start: DateTime<Utc>, arn: &str) -> ListingKey {
    (Reverse(start), arn.to_owned())
}

#[derive(Debug, Default)]
struct Inner {
    machines: BTreeMap<String, StateMachineRecord>,
    executions: BTreeMap<String, ExecutionRecord>,
    /// Summaries in listing order (newest start first, then ARN), as the
    /// sled index keeps them.
    listing: BTreeMap<ListingKey, ExecutionSummary>,
    names: HashMap<(String, String), String>,
    journals: HashMap<String, Vec<JournalEntry>>,
    histories: HashMap<String, Vec<HistoryEvent>>,
    /// Pending timers by (execution, timer id), as sled keys them.
    timers: BTreeMap<(String, u64), TimerRecord>,
    tokens: BTreeMap<String, TaskTokenRecord>,
    activities: BTreeMap<String, ActivityRecord>,
    revisions: HashMap<(String, u64), StateMachineRecord>,
    triggers: BTreeMap<String, TriggerRecord>,
    trigger_states: HashMap<String, TriggerStateRecord>,
    /// Task logs by execution, with the last sequence number given.
    task_logs: HashMap<String, (u64, BTreeMap<u64, TaskLogRecord>)>,
    notices: BTreeSet<String>,
    map_runs: BTreeMap<String, MapRunRecord>,
    cache: BTreeMap<String, CacheEntryRecord>,
    /// By (path, execution, kind), as sled keys them.
    lineage: BTreeMap<(String, String, LineageKind), LineageRecord>,
    /// Counts by (machine, hour); the total under `TOTAL_HOUR`.
    stats: BTreeMap<(String, i64), MachineStats>,
}

/// Everything in one mutex-protected map set.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl StateMachines for MemoryStore {
    fn state_machine(&self, arn: &str) -> Result<Option<StateMachineRecord>, StoreError> {
        Ok(self.lock().machines.get(arn).cloned())
    }

    fn state_machines(&self) -> Result<Vec<StateMachineRecord>, StoreError> {
        Ok(self.lock().machines.values().cloned().collect())
    }

    fn state_machine_revision(
        &self,
        arn: &str,
        revision: u64,
    ) -> Result<Option<StateMachineRecord>, StoreError> {
        Ok(self.revision(arn, revision))
    }
}

impl MemoryStore {
    fn revision(&self, arn: &str, revision: u64) -> Option<StateMachineRecord> {
        self.lock()
            .revisions
            .get(&(arn.to_owned(), revision))
            .cloned()
    }
}

impl Executions for MemoryStore {
    fn execution(&self, arn: &str) -> Result<Option<ExecutionRecord>, StoreError> {
        Ok(self.lock().executions.get(arn).cloned())
    }

    fn execution_by_name(
        &self,
        state_machine: &str,
        name: &str,
    ) -> Result<Option<ExecutionRecord>, StoreError> {
        let inner = self.lock();
        let key = (state_machine.to_owned(), name.to_owned());
        Ok(inner
            .names
            .get(&key)
            .and_then(|arn| inner.executions.get(arn))
            .cloned())
    }

    fn list_executions(&self, query: &ExecutionQuery) -> Result<ExecutionPage, StoreError> {
        let inner = self.lock();
        let from = match &query.after {
            Some(c) => Bound::Excluded(listing_key(c.start, &c.arn)),
            None => Bound::Unbounded,
        };
        let selected = |s: &&ExecutionSummary| {
            let of = match &query.of {
                ExecutionsOf::All => true,
                ExecutionsOf::Machine(m) => s.state_machine_arn == *m,
                ExecutionsOf::MapRun(r) => s.map_run_arn.as_ref() == Some(r),
            };
            of && query.status.is_none_or(|status| s.status == status)
                && query.redriven.is_none_or(|r| (s.redrive_count > 0) == r)
                && query.admits(s)
        };
        let limit = query.limit.max(1);
        let mut matching = inner
            .listing
            .range((from, Bound::Unbounded))
            .map(|(_, s)| s)
            .filter(selected);
        let executions: Vec<ExecutionSummary> = matching.by_ref().take(limit).cloned().collect();
        let next = match (executions.last(), matching.next()) {
            (Some(last), Some(_)) => Some(ListCursor::of(last)),
            _ => None,
        };
        Ok(ExecutionPage { executions, next })
    }

    fn open_executions(&self) -> Result<Vec<ExecutionRecord>, StoreError> {
        Ok(self
            .lock()
            .executions
            .values()
            .filter(|e| e.status == ExecutionStatus::Running)
            .cloned()
            .collect())
    }
}

/// The items of `items` (ordered by `number`) numbered past `after`, at
/// most `limit` (0 is read as 1).
fn page_of<T: Clone>(
    items: Option<&Vec<T>>,
    number: impl Fn(&T) -> u64,
    after: u64,
    limit: usize,
) -> Vec<T> {
    let Some(items) = items else {
        return Vec::new();
    };
    let start = items.partition_point(|item| number(item) <= after);
    items[start..].iter().take(limit.max(1)).cloned().collect()
}

impl Journals for MemoryStore {
    fn journal_page(
        &self,
        execution: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        let inner = self.lock();
        Ok(page_of(
            inner.journals.get(execution),
            |e| e.seq,
            after,
            limit,
        ))
    }
}

impl Histories for MemoryStore {
    fn history_page(
        &self,
        execution: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<HistoryEvent>, StoreError> {
        let inner = self.lock();
        Ok(page_of(
            inner.histories.get(execution),
            |e| e.id,
            after,
            limit,
        ))
    }

    fn history_len(&self, execution: &str) -> Result<u64, StoreError> {
        Ok(self
            .lock()
            .histories
            .get(execution)
            .map_or(0, |events| events.len() as u64))
    }
}

impl Timers for MemoryStore {
    fn timers_page(
        &self,
        execution: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<TimerRecord>, StoreError> {
        let Some(first) = after.checked_add(1) else {
            return Ok(Vec::new());
        };
        Ok(self
            .lock()
            .timers
            .range((execution.to_owned(), first)..)
            .take_while(|((e, _), _)| e == execution)
            .take(limit.max(1))
            .map(|(_, t)| t.clone())
            .collect())
    }
}

impl TaskTokens for MemoryStore {
    fn task_token(&self, token: &str) -> Result<Option<TaskTokenRecord>, StoreError> {
        Ok(self.lock().tokens.get(token).cloned())
    }

    fn task_tokens_page(
        &self,
        after: &str,
        limit: usize,
    ) -> Result<Vec<TaskTokenRecord>, StoreError> {
        Ok(self
            .lock()
            .tokens
            .range::<str, _>((Bound::Excluded(after), Bound::Unbounded))
            .take(limit.max(1))
            .map(|(_, t)| t.clone())
            .collect())
    }
}

impl Activities for MemoryStore {
    fn activity(&self, arn: &str) -> Result<Option<ActivityRecord>, StoreError> {
        Ok(self.lock().activities.get(arn).cloned())
    }

    fn activities(&self) -> Result<Vec<ActivityRecord>, StoreError> {
        Ok(self.lock().activities.values().cloned().collect())
    }
}

impl MapRuns for MemoryStore {
    fn map_run(&self, arn: &str) -> Result<Option<MapRunRecord>, StoreError> {
        Ok(self.lock().map_runs.get(arn).cloned())
    }

    fn map_runs(&self, execution: &str) -> Result<Vec<MapRunRecord>, StoreError> {
        Ok(self
            .lock()
            .map_runs
            .values()
            .filter(|r| r.execution_arn == execution)
            .cloned()
            .collect())
    }
}

impl Triggers for MemoryStore {
    fn trigger(&self, name: &str) -> Result<Option<TriggerRecord>, StoreError> {
        Ok(self.lock().triggers.get(name).cloned())
    }

    fn triggers(&self) -> Result<Vec<TriggerRecord>, StoreError> {
        Ok(self.lock().triggers.values().cloned().collect())
    }

    fn trigger_state(&self, name: &str) -> Result<Option<TriggerStateRecord>, StoreError> {
        Ok(self.lock().trigger_states.get(name).cloned())
    }
}

impl TaskCache for MemoryStore {
    fn cache_entry(&self, key: &str) -> Result<Option<CacheEntryRecord>, StoreError> {
        Ok(self.lock().cache.get(key).cloned())
    }

    fn cache_entries_page(
        &self,
        after: &str,
        limit: usize,
    ) -> Result<Vec<CacheEntryRecord>, StoreError> {
        Ok(self
            .lock()
            .cache
            .range::<str, _>((Bound::Excluded(after), Bound::Unbounded))
            .take(limit.max(1))
            .map(|(_, e)| e.clone())
            .collect())
    }
}

impl Lineage for MemoryStore {
    fn lineage_of_path(&self, path: &str, limit: usize) -> Result<Vec<LineageRecord>, StoreError> {
        Ok(self
            .lock()
            .lineage
            .iter()
            .filter(|((p, _, _), _)| p == path)
            .take(limit.max(1))
            .map(|(_, r)| r.clone())
            .collect())
    }

    fn lineage_of_execution(
        &self,
        execution: &str,
        limit: usize,
    ) -> Result<Vec<LineageRecord>, StoreError> {
        let mut records: Vec<LineageRecord> = self
            .lock()
            .lineage
            .values()
            .filter(|r| r.execution_arn == execution)
            .cloned()
            .collect();
        records.sort_by(|a, b| (a.kind, &a.path).cmp(&(b.kind, &b.path)));
        records.truncate(limit.max(1));
        Ok(records)
    }
}

impl EndedNotices for MemoryStore {
    fn ended_notices(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.lock().notices.iter().cloned().collect())
    }
}

impl TaskLogs for MemoryStore {
    fn task_logs_page(
        &self,
        execution: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<TaskLogRecord>, StoreError> {
        let Some(first) = after.checked_add(1) else {
            return Ok(Vec::new());
        };
        Ok(self
            .lock()
            .task_logs
            .get(execution)
            .map(|(_, logs)| {
                logs.range(first..)
                    .take(limit.max(1))
                    .map(|(_, l)| l.clone())
                    .collect()
            })
            .unwrap_or_default())
    }
}

impl Inner {
    /// Keeps a record and its summary.
    fn put_execution(&mut self, r: ExecutionRecord) {
        if let Some(old) = self.executions.get(&r.arn) {
            let old = listing_key(old.start, &old.arn);
            self.listing.remove(&old);
        }
        self.listing
            .insert(listing_key(r.start, &r.arn), r.summary());
        self.executions.insert(r.arn.clone(), r);
    }
}

impl Stats for MemoryStore {
    fn stats_hours(
        &self,
        state_machine: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<StatsBucket>, StoreError> {
        let (from, to) = (from.max(0), to.max(0));
        if from > to {
            return Ok(Vec::new());
        }
        let machine = state_machine.to_owned();
        Ok(self
            .lock()
            .stats
            .range((machine.clone(), from)..=(machine, to))
            .map(|((_, hour), stats)| StatsBucket {
                hour: *hour,
                stats: stats.clone(),
            })
            .collect())
    }

    fn stats_total(&self, state_machine: &str) -> Result<MachineStats, StoreError> {
        Ok(self
            .lock()
            .stats
            .get(&(state_machine.to_owned(), TOTAL_HOUR))
            .cloned()
            .unwrap_or_default())
    }
}

impl Store for MemoryStore {
    fn apply(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        let mut inner = self.lock();
        check(&inner, batch)?;
        for op in &batch.ops {
            match op.clone() {
                WriteOp::PutStateMachine(r) => {
                    inner
                        .revisions
                        .insert((r.arn.clone(), r.revision), r.clone());
                    inner.machines.insert(r.arn.clone(), r);
                }
                WriteOp::DeleteStateMachine(arn) => {
                    inner.machines.remove(&arn);
                }
                WriteOp::CreateExecution(r) => {
                    if r.has_unique_name() {
                        let key = (r.state_machine_arn.clone(), r.name.clone());
                        inner.names.insert(key, r.arn.clone());
                    }
                    inner.put_execution(r);
                }
                WriteOp::UpdateExecution(r) => inner.put_execution(r),
                WriteOp::AddStats(delta) => {
                    let total = delta.stats.without_durations();
                    for (hour, add) in [(delta.hour, &delta.stats), (TOTAL_HOUR, &total)] {
                        inner
                            .stats
                            .entry((delta.state_machine.clone(), hour))
                            .or_default()
                            .add(add);
                    }
                }
                WriteOp::AppendJournal { execution, entries } => {
                    inner.journals.entry(execution).or_default().extend(entries);
                }
                WriteOp::AppendHistory { execution, events } => {
                    inner.histories.entry(execution).or_default().extend(events);
                }
                // A timer is identified by (execution, id), as in sled.
                WriteOp::PutTimer(t) => {
                    inner.timers.insert((t.execution.clone(), t.timer), t);
                }
                WriteOp::RemoveTimer(t) => {
                    inner.timers.remove(&(t.execution, t.timer));
                }
                WriteOp::PutTaskToken(t) => {
                    inner.tokens.insert(t.token.clone(), t);
                }
                WriteOp::RemoveTaskToken(token) => {
                    inner.tokens.remove(&token);
                }
                WriteOp::PutActivity(a) => {
                    inner.activities.insert(a.arn.clone(), a);
                }
                WriteOp::DeleteActivity(arn) => {
                    inner.activities.remove(&arn);
                }
                WriteOp::DeleteExecution(arn) => {
                    if let Some(r) = inner.executions.remove(&arn) {
                        inner.listing.remove(&listing_key(r.start, &r.arn));
                        let name = (r.state_machine_arn, r.name);
                        if inner.names.get(&name) == Some(&arn) {
                            inner.names.remove(&name);
                        }
                    }
                    inner.journals.remove(&arn);
                    inner.histories.remove(&arn);
                    inner.timers.retain(|(e, _), _| *e != arn);
                    inner.tokens.retain(|_, t| t.execution != arn);
                    inner.task_logs.remove(&arn);
                    inner.notices.remove(&arn);
                    inner.map_runs.retain(|_, r| r.execution_arn != arn);
                    inner.lineage.retain(|(_, e, _), _| *e != arn);
                }
                WriteOp::PutCacheEntry(e) => {
                    inner.cache.insert(e.key.clone(), e);
                }
                WriteOp::RemoveCacheEntry(key) => {
                    inner.cache.remove(&key);
                }
                WriteOp::PutLineage(r) => {
                    inner
                        .lineage
                        .insert((r.path.clone(), r.execution_arn.clone(), r.kind), r);
                }
                WriteOp::PutEndedNotice(arn) => {
                    inner.notices.insert(arn);
                }
                WriteOp::RemoveEndedNotice(arn) => {
                    inner.notices.remove(&arn);
                }
                WriteOp::PutTrigger(t) => {
                    inner.triggers.insert(t.name.clone(), t);
                }
                WriteOp::DeleteTrigger(name) => {
                    inner.triggers.remove(&name);
                    inner.trigger_states.remove(&name);
                }
                WriteOp::PutTriggerState(s) => {
                    inner.trigger_states.insert(s.name.clone(), s);
                }
                WriteOp::PutTaskLog { mut record, keep } => {
                    let (last, logs) = inner.task_logs.entry(record.execution.clone()).or_default();
                    *last += 1;
                    record.seq = *last;
                    logs.insert(*last, record);
                    while logs.len() as u64 > keep.max(1) {
                        logs.pop_first();
                    }
                }
                WriteOp::PutMapRun(r) => {
                    inner.map_runs.insert(r.map_run_arn.clone(), r);
                }
                // Refused by `check`.
                WriteOp::Fence(_)
                | WriteOp::PutLease(_)
                | WriteOp::RemoveMessage(_)
                | WriteOp::TakeSlot(_)
                | WriteOp::LeaveQueue(_) => {}
            }
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Checks a batch before any of it is applied, so a failing batch changes
/// nothing.
fn check(inner: &Inner, batch: &WriteBatch) -> Result<(), StoreError> {
    let mut names: Vec<(&str, &str)> = Vec::new();
    let mut lengths: HashMap<&str, u64> = HashMap::new();
    if batch.ops.iter().any(WriteOp::is_cluster_op) {
        return Err(StoreError::Unsupported(crate::cluster::ONE_NODE));
    }
    for op in &batch.ops {
        match op {
            WriteOp::CreateExecution(r) if r.has_unique_name() => {
                let key = (r.state_machine_arn.clone(), r.name.clone());
                let here = (r.state_machine_arn.as_str(), r.name.as_str());
                if inner.names.contains_key(&key) || names.contains(&here) {
                    return Err(StoreError::ExecutionExists {
                        state_machine: r.state_machine_arn.clone(),
                        name: r.name.clone(),
                    });
                }
                names.push(here);
            }
            WriteOp::AppendHistory { execution, events } => {
                let stored = inner.histories.get(execution).map_or(0, |h| h.len() as u64);
                let length = lengths.entry(execution.as_str()).or_insert(stored);
                for event in events {
                    if event.id != *length + 1 {
                        return Err(StoreError::HistoryGap {
                            execution: execution.clone(),
                            expected: *length + 1,
                            got: event.id,
                        });
                    }
                    *length += 1;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

//! The sled backend (sled 0.34).
//!
//! Key layout (every record is JSON; integers in keys are big-endian so that
//! keys sort by them):
//!
//! | tree | key | value |
//! |---|---|---|
//! | `meta` | `format` | format version, u32 |
//! | `machines` | state machine ARN | `StateMachineRecord` |
//! | `executions` | execution ARN | `ExecutionRecord` |
//! | `names` | machine ARN, 0, execution name | execution ARN |
//! | `open` | execution ARN | (empty): RUNNING executions, for recovery |
//! | `journal` | execution ARN, 0, seq u64 | `JournalEntry` |
//! | `history` | execution ARN, 0, event id u64 | `HistoryEvent` |
//! | `counters` | execution ARN, 0, `h` or `j` | last event id / journal seq, u64 |
//! | `timers` | due (ms since 1970, i64 + 2^63) u64, execution ARN, 0, timer u64 | `TimerRecord` |
//! | `timers_by_execution` | execution ARN, 0, timer u64 | the `timers` key |
//! | `tokens` | task token | `TaskTokenRecord` |
//!
//! Every `WriteBatch` is one sled transaction over these trees. sled keeps
//! what was applied across a process crash once `flush` returned; on power
//! loss it depends on sled (see docs/ARCHITECTURE.md).

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};

use super::{
    ExecutionRecord, ExecutionStatus, Executions, FORMAT_VERSION, Histories, JournalEntry,
    Journals, StateMachineRecord, StateMachines, Store, StoreError, TaskTokenRecord, TaskTokens,
    TimerRecord, Timers, WriteBatch, WriteOp,
};
use crate::history::HistoryEvent;

/// A store in a sled database directory.
#[derive(Debug, Clone)]
pub struct SledStore {
    db: sled::Db,
    machines: sled::Tree,
    executions: sled::Tree,
    names: sled::Tree,
    open: sled::Tree,
    journal: sled::Tree,
    history: sled::Tree,
    counters: sled::Tree,
    timers: sled::Tree,
    timers_by_execution: sled::Tree,
    tokens: sled::Tree,
}

fn io(e: sled::Error) -> StoreError {
    StoreError::Io(e.to_string())
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// `a`, 0, `b`: a composite key whose first part sorts as a prefix.
fn key2(a: &str, b: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(a.len() + 1 + b.len());
    key.extend_from_slice(a.as_bytes());
    key.push(0);
    key.extend_from_slice(b);
    key
}

fn prefix(a: &str) -> Vec<u8> {
    key2(a, &[])
}

fn millis_key(t: DateTime<Utc>) -> [u8; 8] {
    // Shift the signed range so that byte order is time order.
    (t.timestamp_millis() as u64 ^ (1 << 63)).to_be_bytes()
}

fn timer_key(t: &TimerRecord) -> Vec<u8> {
    let mut key = millis_key(t.due).to_vec();
    key.extend_from_slice(&key2(&t.execution, &t.timer.to_be_bytes()));
    key
}

fn read_u64(bytes: &[u8]) -> Result<u64, StoreError> {
    let array: [u8; 8] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("a counter is not 8 bytes".into()))?;
    Ok(u64::from_be_bytes(array))
}

impl SledStore {
    /// Opens (or creates) the database in `path`, checking its format.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let open_error = |reason: String| StoreError::Open {
            path: path.display().to_string(),
            reason,
        };
        std::fs::create_dir_all(path).map_err(|e| open_error(e.to_string()))?;
        let db = sled::open(path).map_err(|e| open_error(e.to_string()))?;
        let tree = |name: &str| db.open_tree(name).map_err(io);
        let meta = tree("meta")?;
        match meta.get("format").map_err(io)? {
            Some(bytes) => {
                let found =
                    u32::from_be_bytes(bytes.as_ref().try_into().map_err(|_| {
                        StoreError::Corrupt("the format version is unreadable".into())
                    })?);
                if found > FORMAT_VERSION {
                    return Err(StoreError::NewerFormat {
                        found,
                        supported: FORMAT_VERSION,
                    });
                }
            }
            None => {
                meta.insert("format", &FORMAT_VERSION.to_be_bytes())
                    .map_err(io)?;
                db.flush().map_err(io)?;
            }
        }
        Ok(Self {
            machines: tree("machines")?,
            executions: tree("executions")?,
            names: tree("names")?,
            open: tree("open")?,
            journal: tree("journal")?,
            history: tree("history")?,
            counters: tree("counters")?,
            timers: tree("timers")?,
            timers_by_execution: tree("timers_by_execution")?,
            tokens: tree("tokens")?,
            db,
        })
    }

    fn scan<T: DeserializeOwned>(
        &self,
        tree: &sled::Tree,
        prefix: &[u8],
    ) -> Result<Vec<T>, StoreError> {
        tree.scan_prefix(prefix)
            .map(|item| item.map_err(io).and_then(|(_, v)| decode(&v)))
            .collect()
    }
}

impl StateMachines for SledStore {
    fn state_machine(&self, arn: &str) -> Result<Option<StateMachineRecord>, StoreError> {
        self.machines
            .get(arn)
            .map_err(io)?
            .map(|v| decode(&v))
            .transpose()
    }

    fn state_machines(&self) -> Result<Vec<StateMachineRecord>, StoreError> {
        self.scan(&self.machines, &[])
    }
}

impl Executions for SledStore {
    fn execution(&self, arn: &str) -> Result<Option<ExecutionRecord>, StoreError> {
        self.executions
            .get(arn)
            .map_err(io)?
            .map(|v| decode(&v))
            .transpose()
    }

    fn execution_by_name(
        &self,
        state_machine: &str,
        name: &str,
    ) -> Result<Option<ExecutionRecord>, StoreError> {
        match self
            .names
            .get(key2(state_machine, name.as_bytes()))
            .map_err(io)?
        {
            Some(arn) => {
                let arn = String::from_utf8(arn.to_vec())
                    .map_err(|_| StoreError::Corrupt("an execution ARN is not UTF-8".into()))?;
                self.execution(&arn)
            }
            None => Ok(None),
        }
    }

    fn executions(&self, state_machine: Option<&str>) -> Result<Vec<ExecutionRecord>, StoreError> {
        let all: Vec<ExecutionRecord> = self.scan(&self.executions, &[])?;
        Ok(all
            .into_iter()
            .filter(|e| state_machine.is_none_or(|m| e.state_machine_arn == m))
            .collect())
    }

    fn open_executions(&self) -> Result<Vec<ExecutionRecord>, StoreError> {
        let mut out = Vec::new();
        for item in self.open.iter() {
            let (arn, _) = item.map_err(io)?;
            let arn = String::from_utf8(arn.to_vec())
                .map_err(|_| StoreError::Corrupt("an execution ARN is not UTF-8".into()))?;
            if let Some(record) = self.execution(&arn)? {
                out.push(record);
            }
        }
        Ok(out)
    }
}

impl Journals for SledStore {
    fn journal(&self, execution: &str) -> Result<Vec<JournalEntry>, StoreError> {
        self.scan(&self.journal, &prefix(execution))
    }
}

impl Histories for SledStore {
    fn history(
        &self,
        execution: &str,
        from: u64,
        to: u64,
    ) -> Result<Vec<HistoryEvent>, StoreError> {
        if from > to {
            return Ok(Vec::new());
        }
        let start = key2(execution, &from.to_be_bytes());
        let end = key2(execution, &to.to_be_bytes());
        self.history
            .range(start..=end)
            .map(|item| item.map_err(io).and_then(|(_, v)| decode(&v)))
            .collect()
    }

    fn history_len(&self, execution: &str) -> Result<u64, StoreError> {
        match self.counters.get(key2(execution, b"h")).map_err(io)? {
            Some(bytes) => read_u64(&bytes),
            None => Ok(0),
        }
    }
}

impl Timers for SledStore {
    fn due_timers(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<TimerRecord>, StoreError> {
        // Every key of a timer due at `now` starts with `now`'s 8 bytes and
        // is longer, so the bound is the next millisecond.
        let items: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> =
            match now.checked_add_signed(chrono::Duration::milliseconds(1)) {
                Some(next) => Box::new(self.timers.range(..millis_key(next).to_vec())),
                None => Box::new(self.timers.iter()),
            };
        items
            .take(limit)
            .map(|item| item.map_err(io).and_then(|(_, v)| decode(&v)))
            .collect()
    }

    fn timers_of(&self, execution: &str) -> Result<Vec<TimerRecord>, StoreError> {
        let mut out = Vec::new();
        for item in self.timers_by_execution.scan_prefix(prefix(execution)) {
            let (_, timer_key) = item.map_err(io)?;
            if let Some(v) = self.timers.get(timer_key).map_err(io)? {
                out.push(decode(&v)?);
            }
        }
        out.sort();
        Ok(out)
    }
}

impl TaskTokens for SledStore {
    fn task_token(&self, token: &str) -> Result<Option<TaskTokenRecord>, StoreError> {
        self.tokens
            .get(token)
            .map_err(io)?
            .map(|v| decode(&v))
            .transpose()
    }
}

type Tx = ConflictableTransactionError<StoreError>;

fn abort(e: StoreError) -> Tx {
    ConflictableTransactionError::Abort(e)
}

/// Encodes outside the transaction's closure would be faster, but the
/// closure may run more than once on conflict; encoding is cheap next to I/O.
fn put<T: Serialize>(tree: &TransactionalTree, key: impl AsRef<[u8]>, value: &T) -> Result<(), Tx> {
    let bytes = encode(value).map_err(abort)?;
    tree.insert(key.as_ref(), bytes)?;
    Ok(())
}

fn counter(tree: &TransactionalTree, key: &[u8]) -> Result<u64, Tx> {
    match tree.get(key)? {
        Some(bytes) => read_u64(&bytes).map_err(abort),
        None => Ok(0),
    }
}

impl Store for SledStore {
    fn apply(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        let trees: [&sled::Tree; 10] = [
            &self.machines,
            &self.executions,
            &self.names,
            &self.open,
            &self.journal,
            &self.history,
            &self.counters,
            &self.timers,
            &self.timers_by_execution,
            &self.tokens,
        ];
        let result = trees[..].transaction(|t| {
            let [
                machines,
                executions,
                names,
                open,
                journal,
                history,
                counters,
                timers,
                by_execution,
                tokens,
            ] = &t[..]
            else {
                return Err(abort(StoreError::Corrupt("transaction trees".into())));
            };
            for op in &batch.ops {
                match op {
                    WriteOp::PutStateMachine(r) => put(machines, &r.arn, r)?,
                    WriteOp::DeleteStateMachine(arn) => {
                        machines.remove(arn.as_bytes())?;
                    }
                    WriteOp::CreateExecution(r) => {
                        let name_key = key2(&r.state_machine_arn, r.name.as_bytes());
                        if names.get(&name_key)?.is_some() {
                            return Err(abort(StoreError::ExecutionExists {
                                state_machine: r.state_machine_arn.clone(),
                                name: r.name.clone(),
                            }));
                        }
                        names.insert(name_key, r.arn.as_bytes())?;
                        put(executions, &r.arn, r)?;
                        if r.status == ExecutionStatus::Running {
                            open.insert(r.arn.as_bytes(), &[])?;
                        }
                    }
                    WriteOp::UpdateExecution(r) => {
                        put(executions, &r.arn, r)?;
                        if r.status == ExecutionStatus::Running {
                            open.insert(r.arn.as_bytes(), &[])?;
                        } else {
                            open.remove(r.arn.as_bytes())?;
                        }
                    }
                    WriteOp::AppendJournal { execution, entries } => {
                        let counter_key = key2(execution, b"j");
                        let mut last = counter(counters, &counter_key)?;
                        for entry in entries {
                            last = last.max(entry.seq);
                            put(journal, key2(execution, &entry.seq.to_be_bytes()), entry)?;
                        }
                        counters.insert(counter_key, &last.to_be_bytes())?;
                    }
                    WriteOp::AppendHistory { execution, events } => {
                        let counter_key = key2(execution, b"h");
                        let mut last = counter(counters, &counter_key)?;
                        for event in events {
                            if event.id != last + 1 {
                                return Err(abort(StoreError::HistoryGap {
                                    execution: execution.clone(),
                                    expected: last + 1,
                                    got: event.id,
                                }));
                            }
                            last = event.id;
                            put(history, key2(execution, &event.id.to_be_bytes()), event)?;
                        }
                        counters.insert(counter_key, &last.to_be_bytes())?;
                    }
                    // A timer is identified by (execution, id): putting it
                    // again moves it, removing it needs no due time.
                    WriteOp::PutTimer(timer) => {
                        let index_key = key2(&timer.execution, &timer.timer.to_be_bytes());
                        if let Some(old) = by_execution.get(&index_key)? {
                            timers.remove(old)?;
                        }
                        let key = timer_key(timer);
                        put(timers, &key, timer)?;
                        by_execution.insert(index_key, key)?;
                    }
                    WriteOp::RemoveTimer(timer) => {
                        let index_key = key2(&timer.execution, &timer.timer.to_be_bytes());
                        if let Some(old) = by_execution.remove(index_key)? {
                            timers.remove(old)?;
                        }
                    }
                    WriteOp::PutTaskToken(token) => put(tokens, &token.token, token)?,
                    WriteOp::RemoveTaskToken(token) => {
                        tokens.remove(token.as_bytes())?;
                    }
                }
            }
            Ok(())
        });
        match result {
            Ok(()) => Ok(()),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(io(e)),
        }
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map(|_| ()).map_err(io)
    }
}

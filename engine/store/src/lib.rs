//! Where executions are kept: narrow read traits, one per concern, and one
//! transactional write path ([`WriteBatch`]), with a sled backend and an
//! in-memory one that pass the same test suite (`suite`, public with the
//! `test-suite` feature, for a backend in another crate).
//!
//! What is stored for an execution:
//! - its record (status, input, output, seed...), for listing and lookup;
//! - its **journal**: every command the interpreter received, with its
//!   time. The interpreter is deterministic, so folding the journal through
//!   it rebuilds the execution exactly: that fold is recovery. The
//!   journal's types are the store's own ([`JournalCommand`], part of the
//!   format), converted from the interpreter's commands by the runtime;
//! - its **history**: the AWS-shaped events the fold produced, kept so that
//!   reading a history never needs the definition or a replay;
//! - its pending timers and the task tokens that can still answer.
//!
//! - the output its process tasks wrote, per attempt (task logs, bounded);
//! - once it has ended, a notice until its end has been announced;
//! - the files it read and wrote (lineage), deleted with it.
//!
//! Beside executions: task results kept for reuse (the cache), activities,
//! and triggers (definitions, and apart from
//! them what each has done: the schedule cursor, last firing, last error).
//!
//! Architecture invariant: the store knows nothing of the interpreter's
//! inner state; it keeps records, journals, events, timers and tokens.

pub mod backup;
pub mod cluster;
pub mod copy;
mod journal;
mod memory;
mod records;
mod sled_integrity;
mod sled_store;
pub mod stats;
#[cfg(any(test, feature = "test-suite"))]
pub mod suite;

pub use cluster::{
    Cluster, ClusterMessage, Lease, NodeRecord, PoolHolder, SharedActivityTask, SharedSlots,
    SlotClaim,
};
pub use journal::{JournalCacheHit, JournalCommand, JournalEntry, JournalPoolWait};
pub use memory::MemoryStore;
pub use records::{
    ActivityRecord, AliasRecord, CacheEntryRecord, ExecutionRecord, ExecutionStatus,
    ExecutionSummary, LineageKind, LineageRecord, MapRunChild, MapRunCounts, MapRunRecord, Queued,
    StateMachineRecord, TaskLogRecord, TaskTokenRecord, TimerRecord, TriggerRecord,
    TriggerStateRecord, VersionRecord, WorkflowType, is_express_arn,
};
pub use sled_integrity::WATERMARK_FILE;
pub use sled_store::{CHECK_PROBLEMS_KEPT, CheckReport, SledStore};
pub use stats::{MachineStats, Stats, StatsBucket, StatsDelta};

use stepline_language::history::HistoryEvent;

/// The on-disk format this build writes and reads (5: timers kept once,
/// by execution; a format 4 directory's timers by due time are dropped
/// once, at open).
pub const FORMAT_VERSION: u32 = 5;

/// Why a store operation failed. Storage problems are errors a person can
/// act on, never panics. The failure underneath (sled's, a file's, JSON's)
/// is kept as the source; the message already says it, as the faces show
/// it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the data directory {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: OpenError,
    },
    #[error(
        "the data directory was written by a newer stepline (format {found}; this build reads up to {supported}); upgrade stepline or use another directory"
    )]
    NewerFormat { found: u32, supported: u32 },
    #[error("the stored data is damaged: {0}")]
    Corrupt(String),
    /// A stored value that does not read as what its table holds.
    #[error("the stored data is damaged: {0}")]
    Decode(#[source] serde_json::Error),
    /// A record that cannot be written as JSON.
    #[error("a record cannot be encoded: {0}")]
    Encode(#[source] serde_json::Error),
    /// The data directory as a whole cannot be trusted (found at open, or
    /// by a check): what is wrong and what to do.
    #[error("the data directory {path} is damaged: {reason}. {remedy}")]
    Damaged {
        path: String,
        reason: String,
        remedy: String,
    },
    /// sled could not read or write.
    #[error("storage failed: {0}")]
    Sled(#[source] sled::Error),
    /// A file beside the database (a backup, the watermark) could not be
    /// read or written; `what` says which and how.
    #[error("storage failed: {what}: {source}")]
    File {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// Another backend could not read or write (its own error inside).
    #[error("storage failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The store cannot be used now, for a reason its caller reports as
    /// text: a failed flush shared by every writer that waited for it, a
    /// writer's task that stopped.
    #[error("storage failed: {0}")]
    Unavailable(String),
    /// One failure reported to many callers: a flush that every writer
    /// waiting for it shares.
    #[error(transparent)]
    Shared(std::sync::Arc<StoreError>),
    #[error("{0}")]
    Unsupported(&'static str),
    #[error("an execution named '{name}' already exists for {state_machine}")]
    ExecutionExists { state_machine: String, name: String },
    /// A batch fenced with a lease that is no longer the execution's (or
    /// whose node is no longer alive): another node owns the execution now.
    #[error(
        "{execution} is no longer owned by node {node} with lease epoch {epoch}: another node took it over"
    )]
    Fenced {
        execution: String,
        node: String,
        epoch: u64,
    },
    /// A start that takes a slot of its state machine's shared
    /// `max_running` ([`WriteOp::TakeSlot`]) found none free, or found
    /// others waiting before it.
    #[error("{state_machine} runs its max_running: no slot is free")]
    NoSlot { state_machine: String },
    /// A queued execution that [`WriteOp::LeaveQueue`] would take out of
    /// its queue is no longer queued: it started (or ended) meanwhile.
    #[error("{0} is no longer queued")]
    NotQueued(String),
    #[error(
        "the history of {execution} would not be contiguous: next event is {expected}, got {got}"
    )]
    HistoryGap {
        execution: String,
        expected: u64,
        got: u64,
    },
}

impl StoreError {
    /// Whether the store failed to read or write (sled, a file, another
    /// backend, or a failure its caller reported), rather than found what
    /// it holds wrong or refused a write: the data may be whole, and a
    /// later try may succeed.
    pub fn is_io(&self) -> bool {
        matches!(
            self,
            StoreError::Sled(_)
                | StoreError::File { .. }
                | StoreError::Backend(_)
                | StoreError::Unavailable(_)
        ) || matches!(self, StoreError::Shared(e) if e.is_io())
    }
}

/// Why a data directory could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Sled(#[from] sled::Error),
    /// A restore writes into a new or empty directory only.
    #[error("a backup is restored into a new or empty directory only")]
    NotEmpty,
}

/// State machine definitions.
pub trait StateMachines {
    fn state_machine(&self, arn: &str) -> Result<Option<StateMachineRecord>, StoreError>;
    /// All state machines, ordered by ARN.
    fn state_machines(&self) -> Result<Vec<StateMachineRecord>, StoreError>;
    /// The state machine as it was at `revision`: every revision put is
    /// kept, even after the machine is deleted, so that executions of an
    /// older revision (or of a deleted machine) resume after a restart.
    fn state_machine_revision(
        &self,
        arn: &str,
        revision: u64,
    ) -> Result<Option<StateMachineRecord>, StoreError>;
}

/// Execution records.
pub trait Executions {
    fn execution(&self, arn: &str) -> Result<Option<ExecutionRecord>, StoreError>;
    /// The execution of `state_machine` called `name`, if any.
    fn execution_by_name(
        &self,
        state_machine: &str,
        name: &str,
    ) -> Result<Option<ExecutionRecord>, StoreError>;
    /// One page of a listing: the summaries `query` selects, newest start
    /// first (then by ARN), after its cursor, at most its limit; read from
    /// an index of summaries, never from the records themselves.
    fn list_executions(&self, query: &ExecutionQuery) -> Result<ExecutionPage, StoreError>;
    /// Executions still running: what recovery resumes.
    fn open_executions(&self) -> Result<Vec<ExecutionRecord>, StoreError>;
}

/// Which executions a listing goes through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutionsOf {
    /// Every execution (the REST list without a machine).
    All,
    /// The executions of one state machine, by its ARN (a distributed
    /// Map's children have a machine of their own, `PARENT/LABEL`).
    Machine(String),
    /// The children a Map Run started (ListExecutions with `mapRunArn`).
    MapRun(String),
}

/// A listing of executions, as a SQL backend would run it: `WHERE` the
/// machine or Map Run, the status, the redrive filter, and `(start, arn)`
/// past the cursor; `ORDER BY start DESC, arn`; `LIMIT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionQuery {
    pub of: ExecutionsOf,
    pub status: Option<ExecutionStatus>,
    /// ListExecutions' `redriveFilter`: `Some(true)` only executions
    /// redriven at least once, `Some(false)` only those never redriven.
    pub redriven: Option<bool>,
    /// Only executions started at or after this time.
    pub started_after: Option<chrono::DateTime<chrono::Utc>>,
    /// Only executions started before this time.
    pub started_before: Option<chrono::DateTime<chrono::Utc>>,
    /// Only executions whose name contains this text (case-sensitive).
    /// The one filter no index serves: a backend that reads summaries in
    /// order stops after [`NAME_SCAN`] of them and ends the page there
    /// with a cursor, so a rare name costs several short pages, never one
    /// unbounded read.
    pub name_contains: Option<String>,
    /// Where the previous page ended: this page starts after it.
    pub after: Option<ListCursor>,
    /// At most this many (a limit of 0 is read as 1).
    pub limit: usize,
}

impl ExecutionQuery {
    /// The first `limit` executions of `of`, with no filter.
    pub fn new(of: ExecutionsOf, limit: usize) -> Self {
        Self {
            of,
            status: None,
            redriven: None,
            started_after: None,
            started_before: None,
            name_contains: None,
            after: None,
            limit,
        }
    }

    /// Whether `summary` passes the filters that are not the listing's
    /// own order (dates, name): for backends that filter as they read.
    pub fn admits(&self, summary: &ExecutionSummary) -> bool {
        self.started_after.is_none_or(|t| summary.start >= t)
            && self.started_before.is_none_or(|t| summary.start < t)
            && self
                .name_contains
                .as_deref()
                .is_none_or(|n| summary.name.contains(n))
    }
}

/// How many summaries a listing with a name filter reads at most for one
/// page (see [`ExecutionQuery::name_contains`]).
pub const NAME_SCAN: usize = 5000;

/// A position in a listing's order (start time newest first, then ARN):
/// the last summary of a page. Stable under writes: a page after it never
/// repeats what came before, however many executions start meanwhile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListCursor {
    pub start: chrono::DateTime<chrono::Utc>,
    pub arn: String,
}

impl ListCursor {
    pub fn of(summary: &ExecutionSummary) -> Self {
        Self {
            start: summary.start,
            arn: summary.arn.clone(),
        }
    }

    /// The cursor as text (the start in nanoseconds, a space, the ARN):
    /// what the faces sign into their page tokens.
    pub fn to_text(&self) -> String {
        let nanos = self.start.timestamp_nanos_opt().unwrap_or_default();
        format!("{nanos} {}", self.arn)
    }

    /// The cursor `to_text` wrote; `None` for anything else.
    pub fn from_text(text: &str) -> Option<Self> {
        let (nanos, arn) = text.split_once(' ')?;
        Some(Self {
            start: chrono::DateTime::from_timestamp_nanos(nanos.parse().ok()?),
            arn: arn.to_owned(),
        })
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionPage {
    pub executions: Vec<ExecutionSummary>,
    /// Where the next page starts; `None` when nothing more matched.
    pub next: Option<ListCursor>,
}

/// How many items the whole-read helpers ([`Journals::journal`],
/// [`Histories::history`], [`TaskLogs::task_logs`], [`Timers::timers_of`])
/// ask a backend for at a time.
pub const READ_PAGE: usize = 1000;

/// Reads everything a paged read gives: pages of [`READ_PAGE`], each after
/// the `cursor` of the last item of the one before, until a short page.
fn read_all<T>(
    mut page: impl FnMut(u64, usize) -> Result<Vec<T>, StoreError>,
    cursor: impl Fn(&T) -> u64,
) -> Result<Vec<T>, StoreError> {
    let mut all: Vec<T> = Vec::new();
    loop {
        let after = all.last().map_or(0, &cursor);
        let items = page(after, READ_PAGE)?;
        let done = items.len() < READ_PAGE;
        all.extend(items);
        if done {
            return Ok(all);
        }
    }
}

/// The journal of commands of each execution. Reads are pages: a cursor
/// (the last seq read, 0 at the start) and a limit, as a SQL backend
/// answers `WHERE seq > $after ORDER BY seq LIMIT $limit`.
pub trait Journals {
    /// The entries with a seq past `after`, in order, at most `limit` (a
    /// limit of 0 is read as 1). Fewer than `limit`: there are no more.
    fn journal_page(
        &self,
        execution: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<JournalEntry>, StoreError>;

    /// The whole journal (recovery folds it), read page by page.
    fn journal(&self, execution: &str) -> Result<Vec<JournalEntry>, StoreError> {
        read_all(
            |after, limit| self.journal_page(execution, after, limit),
            |e| e.seq,
        )
    }
}

/// The history events of each execution, paged as the journal is (by
/// event id).
pub trait Histories {
    /// The events with an id past `after`, in order, at most `limit` (a
    /// limit of 0 is read as 1). Fewer than `limit`: there are no more.
    fn history_page(
        &self,
        execution: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<HistoryEvent>, StoreError>;

    /// How many events the execution has (its last event id).
    fn history_len(&self, execution: &str) -> Result<u64, StoreError>;

    /// The events with ids in `from..=to` (1-based), in order, read page
    /// by page: `history(arn, 1, u64::MAX)` is the whole history.
    fn history(
        &self,
        execution: &str,
        from: u64,
        to: u64,
    ) -> Result<Vec<HistoryEvent>, StoreError> {
        let mut events: Vec<HistoryEvent> = Vec::new();
        let mut after = from.saturating_sub(1);
        while after < to {
            let wanted = usize::try_from(to - after).unwrap_or(usize::MAX);
            let page = self.history_page(execution, after, wanted.min(READ_PAGE))?;
            let short = page.len() < wanted.min(READ_PAGE);
            events.extend(page.into_iter().take_while(|e| e.id <= to));
            match events.last() {
                Some(last) if !short && last.id > after => after = last.id,
                _ => break,
            }
        }
        Ok(events)
    }
}

/// Pending timers of every execution. Nothing reads them by due time:
/// recovery arms an execution's timers from the fold of its journal, and
/// the runtime keeps armed timers in memory.
pub trait Timers {
    /// The execution's pending timers with an id past `after`, by id, at
    /// most `limit` (a limit of 0 is read as 1).
    fn timers_page(
        &self,
        execution: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<TimerRecord>, StoreError>;

    /// Every pending timer of one execution, by timer id.
    fn timers_of(&self, execution: &str) -> Result<Vec<TimerRecord>, StoreError> {
        read_all(
            |after, limit| self.timers_page(execution, after, limit),
            |t| t.timer,
        )
    }
}

/// Activities (CreateActivity).
pub trait Activities {
    fn activity(&self, arn: &str) -> Result<Option<ActivityRecord>, StoreError>;
    /// All activities, ordered by ARN.
    fn activities(&self) -> Result<Vec<ActivityRecord>, StoreError>;
}

/// Task tokens that may still answer.
pub trait TaskTokens {
    fn task_token(&self, token: &str) -> Result<Option<TaskTokenRecord>, StoreError>;
    /// The tokens after `after` in byte order ("" for the first), at most
    /// `limit` (a limit of 0 is read as 1): how a copy of the store finds
    /// them all.
    fn task_tokens_page(
        &self,
        after: &str,
        limit: usize,
    ) -> Result<Vec<TaskTokenRecord>, StoreError>;
}

/// Trigger definitions and what each has done.
pub trait Triggers {
    fn trigger(&self, name: &str) -> Result<Option<TriggerRecord>, StoreError>;
    /// All triggers, ordered by name.
    fn triggers(&self) -> Result<Vec<TriggerRecord>, StoreError>;
    fn trigger_state(&self, name: &str) -> Result<Option<TriggerStateRecord>, StoreError>;
}

/// What process tasks wrote, per attempt (bounded: see
/// [`WriteOp::PutTaskLog`]).
pub trait TaskLogs {
    /// The execution's task logs still kept with a seq past `after`,
    /// oldest first, at most `limit` (a limit of 0 is read as 1).
    fn task_logs_page(
        &self,
        execution: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<TaskLogRecord>, StoreError>;

    /// The execution's task logs still kept, oldest first.
    fn task_logs(&self, execution: &str) -> Result<Vec<TaskLogRecord>, StoreError> {
        read_all(
            |after, limit| self.task_logs_page(execution, after, limit),
            |l| l.seq,
        )
    }
}

/// Executions whose end is still to be announced (alerts): a notice is
/// written in the same batch as a STANDARD execution's end and removed
/// once its observers are done with it, so an end survives a crash until
/// then.
pub trait EndedNotices {
    /// The ARNs of the executions with a notice, ordered.
    fn ended_notices(&self) -> Result<Vec<String>, StoreError>;
}

/// Map Runs of distributed Maps.
pub trait MapRuns {
    fn map_run(&self, arn: &str) -> Result<Option<MapRunRecord>, StoreError>;
    /// The Map Runs an execution started, ordered by ARN.
    fn map_runs(&self, execution: &str) -> Result<Vec<MapRunRecord>, StoreError>;
}

/// Task results kept for reuse (`[tasks.cache]`), by key. Bounded by the
/// runtime: it writes entries no larger than its limit and purges expired
/// ones and the excess over its count.
pub trait TaskCache {
    fn cache_entry(&self, key: &str) -> Result<Option<CacheEntryRecord>, StoreError>;
    /// The entries with a key after `after` in byte order ("" for the
    /// first), at most `limit` (a limit of 0 is read as 1): how the purge
    /// and a copy go through them all.
    fn cache_entries_page(
        &self,
        after: &str,
        limit: usize,
    ) -> Result<Vec<CacheEntryRecord>, StoreError>;
}

/// Which executions read and wrote which files.
pub trait Lineage {
    /// The records of `path`, by execution ARN then kind, at most `limit`
    /// (a limit of 0 is read as 1).
    fn lineage_of_path(&self, path: &str, limit: usize) -> Result<Vec<LineageRecord>, StoreError>;
    /// The records of one execution, by kind then path, at most `limit`.
    fn lineage_of_execution(
        &self,
        execution: &str,
        limit: usize,
    ) -> Result<Vec<LineageRecord>, StoreError>;
}

/// One write, applied atomically: either every operation is stored or none
/// (unless it is [`WriteBatch::relaxed`]).
#[derive(Debug, Clone, Default)]
pub struct WriteBatch {
    pub ops: Vec<WriteOp>,
    relaxed: bool,
}

/// One operation of a [`WriteBatch`].
#[derive(Debug, Clone)]
pub enum WriteOp {
    /// Puts the current state machine and keeps its revision.
    PutStateMachine(StateMachineRecord),
    DeleteStateMachine(String),
    /// Creates an execution; fails the batch with `ExecutionExists` when its
    /// state machine already has an execution of that name.
    CreateExecution(ExecutionRecord),
    UpdateExecution(ExecutionRecord),
    AppendJournal {
        execution: String,
        entries: Vec<JournalEntry>,
    },
    /// Appends events; they must continue the stored history without a gap.
    AppendHistory {
        execution: String,
        events: Vec<HistoryEvent>,
    },
    PutTimer(TimerRecord),
    RemoveTimer(TimerRecord),
    PutTaskToken(TaskTokenRecord),
    RemoveTaskToken(String),
    PutActivity(ActivityRecord),
    DeleteActivity(String),
    /// Removes an execution and everything kept for it (record, name,
    /// journal, history, timers, tokens): retention's purge.
    DeleteExecution(String),
    PutTrigger(TriggerRecord),
    /// Deletes a trigger's definition and its state.
    DeleteTrigger(String),
    PutTriggerState(TriggerStateRecord),
    /// Keeps one attempt's task log under the execution's next sequence
    /// number (the record's `seq` is ignored) and drops the execution's
    /// logs older than the last `keep`, so an execution that retries
    /// forever holds a bounded number of them. Deleted with the execution.
    PutTaskLog {
        record: TaskLogRecord,
        keep: u64,
    },
    /// Records that an execution's end is still to be announced.
    PutEndedNotice(String),
    RemoveEndedNotice(String),
    PutMapRun(MapRunRecord),
    /// Adds to a state machine's counts of an hour and to its total (see
    /// [`stats`]): written with the start, redrive or end it counts.
    AddStats(StatsDelta),
    /// Refuses the whole batch with [`StoreError::Fenced`] unless the lease
    /// is still the execution's and its node alive (see [`cluster`]); first
    /// in a batch, it also holds off a takeover until the batch commits.
    Fence(Lease),
    /// Gives a new execution its first lease.
    PutLease(Lease),
    /// Removes a delivered [`ClusterMessage`], with the step it caused.
    RemoveMessage(u64),
    /// Refuses the whole batch with [`StoreError::NoSlot`] unless the
    /// state machine has a free slot of its `max_running`, counted over
    /// every node (see [`cluster::SlotClaim`]); first in its batch.
    TakeSlot(SlotClaim),
    /// Refuses the whole batch with [`StoreError::NotQueued`] unless the
    /// execution is still queued; holds off its start until the batch
    /// commits (a stop of a queued execution).
    LeaveQueue(String),
    /// Keeps a task result for reuse (replacing any entry of its key).
    PutCacheEntry(CacheEntryRecord),
    RemoveCacheEntry(String),
    /// Records a file an execution read or wrote (replacing the record of
    /// the same path, execution and kind).
    PutLineage(LineageRecord),
}

impl WriteOp {
    /// Whether only a store several nodes share can apply it.
    pub fn is_cluster_op(&self) -> bool {
        matches!(
            self,
            WriteOp::Fence(_)
                | WriteOp::PutLease(_)
                | WriteOp::RemoveMessage(_)
                | WriteOp::TakeSlot(_)
                | WriteOp::LeaveQueue(_)
        )
    }
}

impl WriteBatch {
    pub fn new() -> Self {
        Self::default()
    }

    /// A batch whose writes may be stored one by one: after a crash, any
    /// prefix of them may be there. For what no crash promise covers (an
    /// EXPRESS execution's record). Cheaper on sled, where every atomic
    /// batch writes out the log buffer.
    pub fn relaxed() -> Self {
        Self {
            ops: Vec::new(),
            relaxed: true,
        }
    }

    pub fn is_relaxed(&self) -> bool {
        self.relaxed
    }

    pub fn push(&mut self, op: WriteOp) -> &mut Self {
        self.ops.push(op);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// A whole store: the read traits, the atomic write, and durability.
pub trait Store:
    StateMachines
    + Executions
    + Journals
    + Histories
    + Timers
    + TaskTokens
    + Activities
    + Triggers
    + TaskLogs
    + EndedNotices
    + MapRuns
    + TaskCache
    + Lineage
    + Stats
    + Send
    + Sync
{
    /// Applies `batch` atomically. Visible to reads at once; durable after
    /// the next [`Store::flush`].
    fn apply(&self, batch: &WriteBatch) -> Result<(), StoreError>;
    /// Makes every applied batch durable (one flush for many batches: group
    /// commit is the caller calling this once for many writers).
    fn flush(&self) -> Result<(), StoreError>;
    /// Writes a consistent copy of everything stored to `out`, in the
    /// format of [`backup`]. Writers wait while it is taken.
    /// The damage a read has found since the store was opened, if any: a
    /// damaged store answers what it can, and says so (`/ready`).
    fn damage(&self) -> Option<String> {
        None
    }
    /// Leases and messages, when several nodes can share this store.
    fn cluster(&self) -> Option<&dyn Cluster> {
        None
    }
    fn backup(&self, out: &mut dyn std::io::Write) -> Result<backup::BackupSummary, StoreError> {
        let _ = out;
        Err(StoreError::Unsupported("this store cannot be backed up"))
    }
}

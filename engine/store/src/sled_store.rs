//! The sled backend (sled 0.34).
//!
//! Everything lives in one tree, `data`, so that a [`WriteBatch`] is one
//! `sled::Batch`: applied atomically and far cheaper than a transaction over
//! several trees. Writes are serialised by a mutex (one process owns a data
//! directory), so the checks a batch needs (a free execution name, a
//! contiguous history) are plain reads before the batch is applied.
//!
//! Group apply: sled 0.34 writes out its log buffer for every atomic batch
//! (two buffer rolls, a pwrite and a sync_file_range, through its IO
//! threads), which made one batch per execution step the main cost of a
//! STANDARD execution. An atomic batch is therefore *staged*: kept in
//! memory, and applied together with every other staged batch, as one
//! sled batch, at the next `flush` (group commit) or as soon as a read
//! touches a staged key. Reads and the checks of later batches see staged
//! writes, so nothing changes for a caller but the cost; what was not
//! flushed may be lost in a crash, as before. A relaxed batch, and a
//! batch of one key, is written key by key at once (sled's own atomicity
//! is enough for one key), unless it writes a key that is staged: then it
//! is staged too, so a key's writes keep their order.
//!
//! Key layout: a one-byte table tag, then the key. Records are JSON;
//! integers in keys are big-endian so keys sort by them; 0 separates the
//! parts of a composite key.
//!
//! | tag | table | key after the tag | value |
//! |---|---|---|---|
//! | `F` | format | (none) | format version, u32 (a newer one is refused at open, an older one upgraded) |
//! | `m` | state machines | ARN | `StateMachineRecord` |
//! | `e` | executions | ARN | `ExecutionRecord` |
//! | `n` | names | machine ARN, 0, execution name | execution ARN; no longer written (a unique name is in the ARN, see `named_arns`), removed with its execution |
//! | `o` | open executions | ARN | empty: what recovery resumes |
//! | `j` | journal | execution ARN, 0, seq u64 | `JournalEntry` |
//! | `h` | history | execution ARN, 0, first event id u64 | the events one batch appended, a JSON array (format 1 kept one `HistoryEvent` per key; both are read) |
//! | `c` | counters | execution ARN, 0, `l` | last task log seq, u64 (format 3 also kept `h` and `j` here, the last history id and journal seq: no longer read or written, see `Lasts`) |
//! | `x` | timers | execution ARN, 0, timer u64 | `TimerRecord` (format 4 kept the record under `t`, by due time, and the `t` key here: upgraded at open, see `drop_due_time_index`) |
//! | `k` | task tokens | token | `TaskTokenRecord` |
//! | `a` | activities | ARN | `ActivityRecord` |
//! | `v` | state machine revisions | machine ARN, 0, revision u64 | `StateMachineRecord` (kept after a delete) |
//! | `g` | triggers | name | `TriggerRecord` |
//! | `s` | trigger state | name | `TriggerStateRecord` |
//! | `w` | ended notices | execution ARN | empty: an end still to be announced |
//! | `l` | task logs | execution ARN, 0, seq u64 | `TaskLogRecord` (its counter is `c` ... `l`) |
//! | `r` | map runs | map run ARN | `MapRunRecord` |
//! | `R` | map runs by execution | execution ARN, 0, map run ARN | empty |
//! | `p` | pieces of a large value | the value's whole key, piece u32 | up to [`PIECE`] bytes of it |
//! | `i` | listing by machine | machine ARN, 0, run u8 (status, +16 once redriven), start newest first (u64), execution ARN | `ExecutionSummary` |
//! | `I` | a Map Run's children | map run ARN, 0, run u8, start newest first (u64), execution ARN | `ExecutionSummary` |
//! | `A` | every execution | (empty), 0, run u8, start newest first (u64), execution ARN | `ExecutionSummary` |
//! | `C` | task cache | cache key | `CacheEntryRecord` |
//! | `L` | lineage | path, 0, execution ARN, 0, kind (`r` or `w`) | `LineageRecord` |
//! | `M` | lineage by execution | execution ARN, 0, kind, path | empty (deleted with the execution) |
//!
//! The listing index: two keys per execution, its machine's and every
//! execution's (and a third for a Map Run's child), written in the batch
//! that creates the record and moved in the batch that changes its status
//! or redrive count, so that a page of a listing is a range scan of small
//! keys that never reads a record. A group's key range (a machine, a Map
//! Run, every execution) holds one run per (status, redriven or not),
//! each newest first: a status and a redrive filter read one run, a
//! status filter two, a redrive filter five, no filter merges ten. No
//! filter ever skips an execution it does not show, and no page reads
//! more than its group's runs, however many machines there are. The run
//! is in the key, so a change of run removes the old keys: found by
//! probing the machine's key in the other runs (no read of the record),
//! and none for a new execution.
//!
//! Large values are kept in pieces. A JSON value longer than [`PIECE`]
//! bytes is stored as pieces under `p` + its key + the piece's number, and
//! its own key holds a pointer: [`SPILLED`] (never the first byte of JSON),
//! the number of pieces (u32) and the length (u64). Reads put the pieces
//! back together; rewrites and removals drop pieces no longer used. Why:
//! sled 0.34 writes a page whose serialised size passes a quarter of a
//! segment (128 KiB) as a blob file, and its page cache charges such a
//! page the size of the blob's pointer, not of the page; so pages holding
//! large values were never evicted and stayed in memory for as long as the
//! process ran (a Map Run of large batches kept every child's input: issue
//! 10). Pieces keep every leaf (at most 17 keys) far below that size, so
//! the cache's bound holds.
//!
//! sled keeps what was applied across a process crash once `flush`
//! returned; on power loss it depends on sled (see docs/ARCHITECTURE.md).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::backup::{BackupReader, BackupSummary, BackupWriter, Frame};
use super::sled_integrity::{self, Damage, NoticingIter, NoticingTree, WatermarkClock};
use super::{
    Activities, ActivityRecord, CacheEntryRecord, EndedNotices, ExecutionPage, ExecutionQuery,
    ExecutionRecord, ExecutionStatus, ExecutionSummary, Executions, ExecutionsOf, FORMAT_VERSION,
    Histories, JournalEntry, Journals, Lineage, LineageKind, LineageRecord, ListCursor,
    MapRunRecord, MapRuns, OpenError, StateMachineRecord, StateMachines, Store, StoreError,
    TaskCache, TaskLogRecord, TaskLogs, TaskTokenRecord, TaskTokens, TimerRecord, Timers,
    TriggerRecord, TriggerStateRecord, Triggers, WriteBatch, WriteOp,
};
use crate::stats::{MachineStats, Stats, StatsBucket, TOTAL_HOUR};
use stepline_language::history::HistoryEvent;

const FORMAT: u8 = b'F';
const MACHINES: u8 = b'm';
const EXECUTIONS: u8 = b'e';
const NAMES: u8 = b'n';
const OPEN: u8 = b'o';
const JOURNAL: u8 = b'j';
const HISTORY: u8 = b'h';
const COUNTERS: u8 = b'c';
/// Format 4's timers by due time: read only by the upgrade that removes them.
const DUE_TIMERS: u8 = b't';
const TIMERS: u8 = b'x';
const TOKENS: u8 = b'k';
const MAP_RUNS: u8 = b'r';
const MAP_RUNS_BY_EXECUTION: u8 = b'R';
const ACTIVITIES: u8 = b'a';
const REVISIONS: u8 = b'v';
const TRIGGERS: u8 = b'g';
const TRIGGER_STATES: u8 = b's';
const TASK_LOGS: u8 = b'l';
const NOTICES: u8 = b'w';
const PIECES: u8 = b'p';
const LISTING: u8 = b'i';
const MAP_RUN_LISTING: u8 = b'I';
const ALL_LISTING: u8 = b'A';
const CACHE: u8 = b'C';
const LINEAGE: u8 = b'L';
const LINEAGE_BY_EXECUTION: u8 = b'M';
/// A state machine's counts per hour and its total (`stats`).
const STATS: u8 = b'S';

/// The key of a machine's counts of `hour`: the hour as a big-endian
/// number with its sign bit flipped, so that the total (hour -1) comes
/// first and hours in order after it.
fn stats_key(machine: &str, hour: i64) -> Vec<u8> {
    key(
        STATS,
        &[
            machine.as_bytes(),
            &((hour as u64) ^ (1 << 63)).to_be_bytes(),
        ],
    )
}

/// One run of a listing group: the executions of one status, redriven
/// or not. A group's keys are one run after the other, each newest first,
/// so that a status filter, a redrive filter or both read only their own
/// runs and never skip past executions they do not show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    status: ExecutionStatus,
    redriven: bool,
}

impl Run {
    fn of(s: &ExecutionSummary) -> Self {
        Self {
            status: s.status,
            redriven: s.redrive_count > 0,
        }
    }

    /// The runs a filter selects (`None`: any).
    fn selected(
        status: Option<ExecutionStatus>,
        redriven: Option<bool>,
    ) -> impl Iterator<Item = Run> {
        ExecutionStatus::ALL
            .into_iter()
            .filter(move |s| status.is_none_or(|f| f == *s))
            .flat_map(move |status| {
                [false, true]
                    .into_iter()
                    .filter(move |r| redriven.is_none_or(|f| f == *r))
                    .map(move |redriven| Run { status, redriven })
            })
    }

    /// The run's byte in listing keys: the status (1 RUNNING to 5
    /// ABORTED), plus 16 once redriven. Never 0 (the separator) and never
    /// 255, so the next byte up bounds the run.
    fn byte(self) -> u8 {
        let status = match self.status {
            ExecutionStatus::Running => 1,
            ExecutionStatus::Succeeded => 2,
            ExecutionStatus::Failed => 3,
            ExecutionStatus::TimedOut => 4,
            ExecutionStatus::Aborted => 5,
        };
        if self.redriven { status | 16 } else { status }
    }

    /// The other runs an execution's keys may be under, before this
    /// change of its summary: a redrive count only grows, so one never
    /// redriven was never in a redriven run.
    fn before(s: &ExecutionSummary) -> impl Iterator<Item = Run> {
        let now = Run::of(s);
        Run::selected(None, (!now.redriven).then_some(false)).filter(move |r| *r != now)
    }
}

/// A start time whose byte order is newest first (nanoseconds; times past
/// what 64 bits of nanoseconds hold, years before 1677 or after 2262,
/// sort at the ends).
fn newest_first(t: DateTime<Utc>) -> [u8; 8] {
    let nanos = t.timestamp_nanos_opt().unwrap_or(if t.timestamp() < 0 {
        i64::MIN
    } else {
        i64::MAX
    });
    (!((nanos as u64) ^ (1 << 63))).to_be_bytes()
}

/// Where an execution sorts inside one run of a listing: newest start
/// first, then by ARN.
fn listing_position(start: DateTime<Utc>, arn: &str) -> Vec<u8> {
    let mut p = Vec::with_capacity(8 + arn.len());
    p.extend_from_slice(&newest_first(start));
    p.extend_from_slice(arn.as_bytes());
    p
}

/// The keys of one run in a listing group (a machine under `LISTING`, a
/// Map Run under `MAP_RUN_LISTING`, every execution under `ALL_LISTING`
/// with an empty group).
fn listing_run(tag: u8, group: &str, run: Run) -> Vec<u8> {
    let mut k = prefix(tag, group);
    k.push(run.byte());
    k
}

/// The listing keys of an execution as if it were in `run`: its
/// machine's (first: the one probed for the run), every execution's, and
/// its Map Run's for a distributed Map's child.
fn listing_keys(s: &ExecutionSummary, run: Run) -> Vec<Vec<u8>> {
    let position = listing_position(s.start, &s.arn);
    let groups = [
        Some((LISTING, s.state_machine_arn.as_str())),
        Some((ALL_LISTING, "")),
        s.map_run_arn.as_deref().map(|r| (MAP_RUN_LISTING, r)),
    ];
    groups
        .into_iter()
        .flatten()
        .map(|(tag, group)| {
            let mut k = listing_run(tag, group, run);
            k.extend_from_slice(&position);
            k
        })
        .collect()
}

/// The longest value stored under one key; longer ones are kept in pieces
/// of this size. sled splits a leaf past 16 keys, so a leaf of pieces (17
/// of them, with keys of a few hundred bytes) stays well below the 128 KiB
/// at which sled 0.34 writes a page as a blob its cache does not count.
pub(crate) const PIECE: usize = 4096;

/// First byte of a value kept in pieces (0xFF never starts JSON or UTF-8).
const SPILLED: u8 = 0xFF;

/// The pointer left under a large value's key: [`SPILLED`], the number of
/// pieces (u32), the value's length (u64).
fn spilled_pointer(pieces: u32, len: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(13);
    v.push(SPILLED);
    v.extend_from_slice(&pieces.to_be_bytes());
    v.extend_from_slice(&len.to_be_bytes());
    v
}

/// The pieces and length a pointer names; `None` for a value kept whole.
fn read_pointer(value: &[u8]) -> Result<Option<(u32, u64)>, StoreError> {
    if value.first() != Some(&SPILLED) {
        return Ok(None);
    }
    if value.len() != 13 {
        return Err(StoreError::Corrupt(
            "a large value's pointer is not 13 bytes".into(),
        ));
    }
    let pieces = u32::from_be_bytes(value[1..5].try_into().unwrap_or_default());
    let len = u64::from_be_bytes(value[5..13].try_into().unwrap_or_default());
    Ok(Some((pieces, len)))
}

fn piece_key(k: &[u8], piece: u32) -> Vec<u8> {
    let mut p = Vec::with_capacity(k.len() + 5);
    p.push(PIECES);
    p.extend_from_slice(k);
    p.extend_from_slice(&piece.to_be_bytes());
    p
}

/// Tables whose values are JSON written by `Plan::put`: the only ones a
/// large value (and so pieces) can be in.
fn may_spill(k: &[u8]) -> bool {
    matches!(
        k.first(),
        Some(
            &(MACHINES
                | EXECUTIONS
                | JOURNAL
                | HISTORY
                | TOKENS
                | ACTIVITIES
                | REVISIONS
                | TRIGGERS
                | TRIGGER_STATES
                | TASK_LOGS
                | MAP_RUNS
                | CACHE
                | LINEAGE)
        )
    )
}

/// Staged bytes past which a batch is applied at once rather than kept
/// for the next flush.
const STAGED_BYTES: usize = 8 * 1024 * 1024;

/// Atomic batches applied but not in sled yet (see the module's comment).
#[derive(Debug, Default)]
struct Staged {
    /// The last write of each key, as sled will hold it (a pointer and
    /// pieces for a large value); `None`: removed.
    view: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Pieces were written or removed: readers must be kept out while
    /// they go in.
    touched_pieces: bool,
    bytes: usize,
    /// The last journal seq and history id of open executions, by
    /// (execution, JOURNAL or HISTORY): what `Plan::last` would find in
    /// the store, kept so a step reads nothing to append (see `Lasts`).
    lasts: Lasts,
}

/// Stored counters cost a sled key each per step, so the last journal seq
/// and history id are found from the last key (`Plan::last`) and kept here
/// while an execution is open; an execution's entries go when it closes
/// or is deleted, and all of them past [`LASTS_KEPT`] (found again as
/// needed). Format 3 kept them under `c`; those keys are no longer read
/// or written (task logs still keep their counter there).
type Lasts = HashMap<(String, u8), u64>;

const LASTS_KEPT: usize = 100_000;

impl Staged {
    fn has_key(&self, k: &[u8]) -> bool {
        self.view.contains_key(k)
    }

    fn has_prefix(&self, prefix: &[u8]) -> bool {
        self.view
            .range(prefix.to_vec()..)
            .next()
            .is_some_and(|(k, _)| k.starts_with(prefix))
    }

    fn has_range(&self, range: &impl RangeBounds<Vec<u8>>) -> bool {
        self.view
            .range((range.start_bound().cloned(), range.end_bound().cloned()))
            .next()
            .is_some()
    }
}

/// A store in a sled database directory.
#[derive(Debug)]
pub struct SledStore {
    db: sled::Db,
    /// The `data` tree, through which every read notes damage in `damage`.
    data: NoticingTree,
    damage: Arc<Damage>,
    /// sled's `meta` tree: the format version and the count of durable
    /// flushes (see `sled_integrity`).
    meta: sled::Tree,
    /// Flushes made so far; bumped under the writer's lock so the count in
    /// `meta` only grows.
    generation: Mutex<u64>,
    /// The watermark file and when it was last written.
    watermark: Mutex<WatermarkClock>,
    /// Serialises writers (checks and batch form one atomic step) and
    /// holds the staged batches.
    writer: Mutex<Staged>,
    /// Something is staged: reads take the writer's lock only then (an
    /// EXPRESS-only load never stages, and its reads never wait).
    any_staged: AtomicBool,
    /// Held (write) while a batch goes into sled, and (read) while a value
    /// kept in pieces is put back together: a pointer and its pieces are
    /// separate keys, and a reader must not see half of a rewrite.
    applying: RwLock<()>,
    /// State machine records as read: every start reads its machine's.
    machines: Mutex<MachineCache>,
    /// Keys written by batches since open (see [`SledStore::keys_written`]).
    keys_written: AtomicU64,
}

/// The bytes of definitions [`MachineCache`] keeps at most.
const MACHINE_CACHE_BYTES: usize = 16 * 1024 * 1024;

/// State machine records, dropped whenever a batch writes one. A reader
/// that missed takes the generation before reading sled and fills the
/// cache only if no write came since, so a record read before a write
/// cannot be kept after it.
#[derive(Debug, Default)]
struct MachineCache {
    records: HashMap<String, StateMachineRecord>,
    generation: u64,
    bytes: usize,
}

fn io(e: sled::Error) -> StoreError {
    StoreError::Sled(e)
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(StoreError::Encode)
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(StoreError::Decode)
}

/// `tag`, then `parts` separated by 0.
fn key(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + parts.iter().map(|p| p.len() + 1).sum::<usize>());
    key.push(tag);
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            key.push(0);
        }
        key.extend_from_slice(part);
    }
    key
}

/// The prefix of every key of `tag` whose first part is `first`.
fn prefix(tag: u8, first: &str) -> Vec<u8> {
    let mut p = key(tag, &[first.as_bytes()]);
    p.push(0);
    p
}

fn timer_key(execution: &str, timer: u64) -> Vec<u8> {
    key(TIMERS, &[execution.as_bytes(), &timer.to_be_bytes()])
}

/// The ARNs an execution of `state_machine` called `name` has when its
/// name is unique: AWS's `...:execution:MACHINE:NAME`, or a distributed
/// Map's EXPRESS child's `...:express:MACHINE/LABEL:NAME`. The ARN is the
/// execution's key, so it is what makes the name unique: no index of
/// names is written (format 3 wrote one under `n`; it is still removed
/// with its execution).
fn named_arns(state_machine: &str, name: &str) -> [String; 2] {
    ["execution", "express"].map(|kind| {
        format!(
            "{}:{name}",
            state_machine.replacen(":stateMachine:", &format!(":{kind}:"), 1)
        )
    })
}

/// How many events a history key holds: a JSON array of a step's events,
/// or (format 1) one event.
fn events_in_run(value: &[u8]) -> Result<u64, StoreError> {
    if value.first() != Some(&b'[') {
        return Ok(1);
    }
    let run: Vec<serde::de::IgnoredAny> = decode(value)?;
    Ok(run.len() as u64)
}

fn read_u64(bytes: &[u8]) -> Result<u64, StoreError> {
    let array: [u8; 8] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("a counter is not 8 bytes".into()))?;
    Ok(u64::from_be_bytes(array))
}

fn utf8(bytes: &[u8]) -> Result<String, StoreError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| StoreError::Corrupt("an ARN is not UTF-8".into()))
}

/// sled's own default: 1 GiB of page cache.
pub const DEFAULT_CACHE_BYTES: u64 = 1024 * 1024 * 1024;

/// How long `open` waits for another holder of the directory's lock to let
/// go: a process that just exited (or a store just dropped, whose sled
/// threads release the lock a moment later).
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

fn open_waiting_for_lock(path: &Path, cache_bytes: u64) -> Result<sled::Db, sled::Error> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match sled::Config::new()
            .path(path)
            .cache_capacity(cache_bytes)
            .open()
        {
            // sled reports a held lock as ErrorKind::Other with this text.
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// What a directory of an earlier format needs before this build uses it.
/// Run again from the start if it was cut short: the format number is
/// written only after it.
fn upgrade(data: &sled::Tree, found: u32) -> Result<(), StoreError> {
    if found < 4 {
        build_listing_index(data)?;
    }
    if found < 5 {
        drop_due_time_index(data)?;
    }
    Ok(())
}

/// Format 4 kept each timer twice: its record under `t`, keyed by due
/// time, and under `x` the `t` key. Nothing read timers by due time
/// (recovery arms them from the journal's fold), so format 5 keeps the
/// record under `x` alone: each `x` key gets the record its `t` key held,
/// then every `t` key goes. Run again from the start after a crash, it
/// skips the `x` keys that hold a record already.
fn drop_due_time_index(data: &sled::Tree) -> Result<(), StoreError> {
    const KEYS_PER_BATCH: usize = 1000;
    let mut batch = sled::Batch::default();
    let mut in_batch = 0;
    let timers = data.scan_prefix([TIMERS]).map(|item| {
        let (k, value) = item.map_err(io)?;
        if value.first() != Some(&DUE_TIMERS) {
            return Ok(None);
        }
        // The record the `t` key holds, or nothing: a dangling `x` key goes.
        Ok(Some((k, data.get(&value).map_err(io)?)))
    });
    let due = data
        .scan_prefix([DUE_TIMERS])
        .map(|item| Ok(Some((item.map_err(io)?.0, None))));
    for write in timers.chain(due) {
        let Some((k, value)) = write? else {
            continue;
        };
        match value {
            Some(record) => batch.insert(k, record),
            None => batch.remove(k),
        }
        in_batch += 1;
        if in_batch >= KEYS_PER_BATCH {
            data.apply_batch(std::mem::take(&mut batch)).map_err(io)?;
            in_batch = 0;
        }
    }
    data.apply_batch(batch).map_err(io)
}

/// The fields of a stored record a summary needs: serde skips the input
/// and output without keeping them.
#[derive(serde::Deserialize)]
struct ListedRecord {
    arn: String,
    state_machine_arn: String,
    name: String,
    status: ExecutionStatus,
    start: DateTime<Utc>,
    stop: Option<DateTime<Utc>>,
    #[serde(default)]
    redrive_count: u32,
    #[serde(default)]
    map_run: Option<ListedMapRun>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(serde::Deserialize)]
struct ListedMapRun {
    map_run_arn: String,
}

/// Format 4's listing index for the records of an earlier format: each
/// record read one at a time (its pieces put together), its keys written
/// in batches of a thousand.
fn build_listing_index(data: &sled::Tree) -> Result<(), StoreError> {
    const KEYS_PER_BATCH: usize = 1000;
    let mut batch = sled::Batch::default();
    let mut in_batch = 0;
    for item in data.scan_prefix([EXECUTIONS]) {
        let (k, value) = item.map_err(io)?;
        let value = assemble(&k, value, |piece| {
            Ok(data.get(piece).map_err(io)?.map(|v| v.to_vec()))
        })?;
        let r: ListedRecord = decode(&value)?;
        let summary = ExecutionSummary {
            arn: r.arn,
            state_machine_arn: r.state_machine_arn,
            name: r.name,
            status: r.status,
            start: r.start,
            stop: r.stop,
            redrive_count: r.redrive_count,
            map_run_arn: r.map_run.map(|m| m.map_run_arn),
            error: r.error,
        };
        let bytes = encode(&summary)?;
        for k in listing_keys(&summary, Run::of(&summary)) {
            batch.insert(k, bytes.clone());
            in_batch += 1;
        }
        if in_batch >= KEYS_PER_BATCH {
            data.apply_batch(std::mem::take(&mut batch)).map_err(io)?;
            in_batch = 0;
        }
    }
    data.apply_batch(batch).map_err(io)
}

impl SledStore {
    /// Opens (or creates) the database in `path`, checking its format. A
    /// directory another process holds is waited for a few seconds, then
    /// refused with `StoreError::Open`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with_cache(path, DEFAULT_CACHE_BYTES)
    }

    /// `open` with sled's page cache bounded at `cache_bytes` (sled keeps
    /// recently used pages, written or read, up to that size).
    pub fn open_with_cache(path: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        let open_error = |source: OpenError| StoreError::Open {
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(path).map_err(|e| open_error(e.into()))?;
        let db =
            sled_integrity::catching_panics(path, || open_waiting_for_lock(path, cache_bytes))?
                .map_err(|e| match e {
                    sled::Error::Corruption { .. } => sled_integrity::damaged(path, e),
                    e => open_error(e.into()),
                })?;
        let meta = db.open_tree("meta").map_err(io)?;
        let generation = match meta.get(sled_integrity::GENERATION_KEY).map_err(io)? {
            Some(bytes) => read_u64(&bytes)?,
            None => 0,
        };
        sled_integrity::check_watermark(path, generation)?;
        sled_integrity::read_everything(&db, path)?;
        let data = db.open_tree("data").map_err(io)?;
        match data.get([FORMAT]).map_err(io)? {
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
                if found < FORMAT_VERSION {
                    // Later formats read format 1's keys as they are and
                    // add what they need; the new number keeps an older
                    // stepline from reading what this one writes.
                    upgrade(&data, found)?;
                    data.insert([FORMAT], &FORMAT_VERSION.to_be_bytes())
                        .map_err(io)?;
                    db.flush().map_err(io)?;
                }
            }
            None => {
                data.insert([FORMAT], &FORMAT_VERSION.to_be_bytes())
                    .map_err(io)?;
                db.flush().map_err(io)?;
            }
        }
        // The format version is also written to the `meta` tree, where
        // earlier builds of this format kept it, so either reader agrees.
        if let Some(bytes) = meta.get("format").map_err(io)? {
            let found = u32::from_be_bytes(
                bytes
                    .as_ref()
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("the format version is unreadable".into()))?,
            );
            if found > FORMAT_VERSION {
                return Err(StoreError::NewerFormat {
                    found,
                    supported: FORMAT_VERSION,
                });
            }
            if found < FORMAT_VERSION {
                meta.insert("format", &FORMAT_VERSION.to_be_bytes())
                    .map_err(io)?;
            }
        } else {
            meta.insert("format", &FORMAT_VERSION.to_be_bytes())
                .map_err(io)?;
        }
        let mut watermark = WatermarkClock {
            dir: path.to_path_buf(),
            last_written: None,
            generation,
        };
        // A store without a watermark (new, or from an earlier build) gets
        // one at once, so damage is caught from the next open on.
        if sled_integrity::Watermark::read(path)?.is_none() {
            watermark
                .write(generation)
                .map_err(|e| open_error(e.into()))?;
        }
        let damage = Arc::new(Damage::default());
        Ok(Self {
            db,
            data: NoticingTree::new(data, Arc::clone(&damage)),
            damage,
            meta,
            generation: Mutex::new(generation),
            watermark: Mutex::new(watermark),
            writer: Mutex::new(Staged::default()),
            any_staged: AtomicBool::new(false),
            applying: RwLock::new(()),
            machines: Mutex::new(MachineCache::default()),
            keys_written: AtomicU64::new(0),
        })
    }

    /// Keys the batches applied since open have written or removed, each
    /// batch counting each key once (its last write); pieces of large
    /// values count as keys. sled's cost is per key written, so this is
    /// what a step costs it (staging may merge one key's writes of several
    /// batches further before they reach sled).
    pub fn keys_written(&self) -> u64 {
        self.keys_written.load(Ordering::Relaxed)
    }

    fn machine_cache(&self) -> std::sync::MutexGuard<'_, MachineCache> {
        self.machines.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn staged(&self) -> std::sync::MutexGuard<'_, Staged> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies every staged batch as one sled batch; the caller holds the
    /// writer, so no read finds a key neither staged nor in sled.
    fn settle(&self, staged: &mut Staged) -> Result<(), StoreError> {
        if staged.view.is_empty() {
            return Ok(());
        }
        let mut atomic = sled::Batch::default();
        for (k, v) in std::mem::take(&mut staged.view) {
            match v {
                Some(v) => atomic.insert(k, v),
                None => atomic.remove(k),
            }
        }
        staged.bytes = 0;
        // Only a batch that changes pieces can change what `whole` reads.
        let _applying = std::mem::take(&mut staged.touched_pieces)
            .then(|| self.applying.write().unwrap_or_else(|e| e.into_inner()));
        let applied = self.data.apply_batch(atomic).map_err(io);
        self.any_staged.store(false, Ordering::SeqCst);
        applied
    }

    /// Settles the staged batches first when `touches` says a read needs them.
    fn settled_for(&self, touches: impl FnOnce(&Staged) -> bool) -> Result<(), StoreError> {
        if !self.any_staged.load(Ordering::SeqCst) {
            return Ok(());
        }
        let mut staged = self.staged();
        if !staged.view.is_empty() && touches(&staged) {
            self.settle(&mut staged)?;
        }
        Ok(())
    }

    /// sled's value under `k`, staged writes included.
    fn raw_get(&self, k: &[u8]) -> Result<Option<sled::IVec>, StoreError> {
        self.settled_for(|s| s.has_key(k))?;
        self.data.get(k).map_err(io)
    }

    /// sled's keys under `prefix`, staged writes included.
    fn raw_scan(&self, prefix: &[u8]) -> Result<NoticingIter, StoreError> {
        self.settled_for(|s| s.has_prefix(prefix))?;
        Ok(self.data.scan_prefix(prefix))
    }

    /// sled's keys in `range`, staged writes included.
    fn raw_range(
        &self,
        range: impl RangeBounds<Vec<u8>> + Clone,
    ) -> Result<NoticingIter, StoreError> {
        self.settled_for(|s| s.has_range(&range))?;
        Ok(self.data.range(range))
    }

    fn get<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StoreError> {
        match self.raw_get(key)? {
            Some(v) => Ok(Some(decode(&self.whole(key, v)?)?)),
            None => Ok(None),
        }
    }

    fn scan<T: DeserializeOwned>(&self, prefix: &[u8]) -> Result<Vec<T>, StoreError> {
        self.raw_scan(prefix)?
            .map(|item| {
                item.map_err(io)
                    .and_then(|(k, v)| decode(&self.whole(&k, v)?))
            })
            .collect()
    }

    /// The value stored under `k`: `value` itself, or the pieces its
    /// pointer names put back together.
    fn whole(&self, k: &[u8], value: sled::IVec) -> Result<sled::IVec, StoreError> {
        if read_pointer(&value)?.is_none() {
            return Ok(value);
        }
        // Read again with no batch going in: the pointer read before may
        // be older than the pieces now stored.
        let _applying = self.applying.read().unwrap_or_else(|e| e.into_inner());
        match self.data.get(k).map_err(io)? {
            Some(value) => self.assemble(k, value),
            None => Err(StoreError::Corrupt("a large value went while read".into())),
        }
    }

    /// `value` itself, or the pieces its pointer names put back together;
    /// the caller keeps batches out (the writer, or `whole`'s read lock).
    fn assemble(&self, k: &[u8], value: sled::IVec) -> Result<sled::IVec, StoreError> {
        assemble(k, value, |piece| {
            Ok(self.data.get(piece).map_err(io)?.map(|v| v.to_vec()))
        })
    }

    /// Keys staged and not in sled yet (tests).
    #[cfg(test)]
    pub(crate) fn staged_keys(&self) -> usize {
        self.staged().view.len()
    }

    /// Pieces stored (tests: none is left behind).
    #[cfg(test)]
    pub(crate) fn pieces_count(&self) -> usize {
        self.settle(&mut self.staged()).expect("settle");
        self.data.scan_prefix([PIECES]).count()
    }
}

/// `value` itself, or the pieces its pointer names (read with `piece_of`) put
/// back together.
fn assemble(
    k: &[u8],
    value: sled::IVec,
    piece_of: impl Fn(&[u8]) -> Result<Option<Vec<u8>>, StoreError>,
) -> Result<sled::IVec, StoreError> {
    let Some((pieces, len)) = read_pointer(&value)? else {
        return Ok(value);
    };
    let mut whole = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    for piece in 0..pieces {
        match piece_of(&piece_key(k, piece))? {
            Some(bytes) => whole.extend_from_slice(&bytes),
            None => {
                return Err(StoreError::Corrupt(format!(
                    "piece {piece} of a large value is missing"
                )));
            }
        }
    }
    if whole.len() as u64 != len {
        return Err(StoreError::Corrupt(
            "a large value's pieces do not add up to its length".into(),
        ));
    }
    Ok(whole.into())
}

impl StateMachines for SledStore {
    fn state_machine(&self, arn: &str) -> Result<Option<StateMachineRecord>, StoreError> {
        let generation = {
            let cache = self.machine_cache();
            if let Some(record) = cache.records.get(arn) {
                return Ok(Some(record.clone()));
            }
            cache.generation
        };
        let record: Option<StateMachineRecord> = self.get(&key(MACHINES, &[arn.as_bytes()]))?;
        if let Some(record) = &record {
            let mut cache = self.machine_cache();
            if cache.generation == generation {
                cache.bytes += record.definition.len();
                if cache.bytes > MACHINE_CACHE_BYTES {
                    cache.records.clear();
                    cache.bytes = record.definition.len();
                }
                cache.records.insert(arn.to_owned(), record.clone());
            }
        }
        Ok(record)
    }

    fn state_machines(&self) -> Result<Vec<StateMachineRecord>, StoreError> {
        self.scan(&[MACHINES])
    }

    fn state_machine_revision(
        &self,
        arn: &str,
        revision: u64,
    ) -> Result<Option<StateMachineRecord>, StoreError> {
        self.get(&key(REVISIONS, &[arn.as_bytes(), &revision.to_be_bytes()]))
    }
}

impl Activities for SledStore {
    fn activity(&self, arn: &str) -> Result<Option<ActivityRecord>, StoreError> {
        self.get(&key(ACTIVITIES, &[arn.as_bytes()]))
    }

    fn activities(&self) -> Result<Vec<ActivityRecord>, StoreError> {
        self.scan(&[ACTIVITIES])
    }
}

impl MapRuns for SledStore {
    fn map_run(&self, arn: &str) -> Result<Option<MapRunRecord>, StoreError> {
        self.get(&key(MAP_RUNS, &[arn.as_bytes()]))
    }

    fn map_runs(&self, execution: &str) -> Result<Vec<MapRunRecord>, StoreError> {
        let prefix = key(MAP_RUNS_BY_EXECUTION, &[execution.as_bytes(), b""]);
        let mut out = Vec::new();
        for item in self.raw_scan(&prefix)? {
            let (k, _) = item.map_err(io)?;
            let arn = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            if let Some(record) = self.map_run(&arn)? {
                out.push(record);
            }
        }
        Ok(out)
    }
}

impl Stats for SledStore {
    fn stats_hours(
        &self,
        state_machine: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<StatsBucket>, StoreError> {
        if from.max(0) > to.max(0) {
            return Ok(Vec::new());
        }
        let from = stats_key(state_machine, from.max(0));
        let to = stats_key(state_machine, to.max(0));
        let mut out = Vec::new();
        for item in self.raw_range(from..=to)? {
            let (k, v) = item.map_err(io)?;
            let hour = read_u64(&k[k.len() - 8..])? ^ (1 << 63);
            out.push(StatsBucket {
                hour: hour as i64,
                stats: decode(&v)?,
            });
        }
        Ok(out)
    }

    fn stats_total(&self, state_machine: &str) -> Result<MachineStats, StoreError> {
        Ok(self
            .get(&stats_key(state_machine, TOTAL_HOUR))?
            .unwrap_or_default())
    }
}

impl Triggers for SledStore {
    fn trigger(&self, name: &str) -> Result<Option<TriggerRecord>, StoreError> {
        self.get(&key(TRIGGERS, &[name.as_bytes()]))
    }

    fn triggers(&self) -> Result<Vec<TriggerRecord>, StoreError> {
        self.scan(&[TRIGGERS])
    }

    fn trigger_state(&self, name: &str) -> Result<Option<TriggerStateRecord>, StoreError> {
        self.get(&key(TRIGGER_STATES, &[name.as_bytes()]))
    }
}

impl Executions for SledStore {
    fn execution(&self, arn: &str) -> Result<Option<ExecutionRecord>, StoreError> {
        self.get(&key(EXECUTIONS, &[arn.as_bytes()]))
    }

    fn execution_by_name(
        &self,
        state_machine: &str,
        name: &str,
    ) -> Result<Option<ExecutionRecord>, StoreError> {
        for arn in named_arns(state_machine, name) {
            if let Some(record) = self.execution(&arn)? {
                if record.state_machine_arn == state_machine && record.name == name {
                    return Ok(Some(record));
                }
            }
        }
        Ok(None)
    }

    fn list_executions(&self, query: &ExecutionQuery) -> Result<ExecutionPage, StoreError> {
        let (tag, group) = match &query.of {
            ExecutionsOf::Machine(m) => (LISTING, m.as_str()),
            ExecutionsOf::MapRun(r) => (MAP_RUN_LISTING, r.as_str()),
            ExecutionsOf::All => (ALL_LISTING, ""),
        };
        self.settled_for(|s| s.has_prefix(&[tag]))?;
        let selected: Vec<Run> = Run::selected(query.status, query.redriven).collect();
        // The cursor, or the position just before the executions started
        // before `started_before`: a nanosecond earlier, with an empty ARN
        // (which sorts before every other at that start).
        let before = query
            .started_before
            .map(|t| listing_position(t - chrono::Duration::nanoseconds(1), ""));
        let after = match (query.after.as_ref(), before) {
            (Some(c), Some(b)) => {
                let cursor = listing_position(c.start, &c.arn);
                Some(cursor.max(b))
            }
            (Some(c), None) => Some(listing_position(c.start, &c.arn)),
            (None, b) => b,
        };
        // One iterator per run, each in listing order; the heap holds the
        // head of each, so the page comes out merged.
        let mut runs = Vec::with_capacity(selected.len());
        for selected in &selected {
            let run = listing_run(tag, group, *selected);
            let mut end = run.clone();
            // A run's byte is below 255: no overflow.
            if let Some(byte) = end.last_mut() {
                *byte += 1;
            }
            let start = match &after {
                Some(position) => {
                    let mut k = run.clone();
                    k.extend_from_slice(position);
                    Bound::Excluded(k)
                }
                None => Bound::Included(run.clone()),
            };
            runs.push((run.len(), self.data.range((start, Bound::Excluded(end)))));
        }
        let mut heads = BinaryHeap::with_capacity(runs.len());
        for (i, (skip, run)) in runs.iter_mut().enumerate() {
            if let Some(item) = run.next() {
                let (k, v) = item.map_err(io)?;
                heads.push(Reverse((k.subslice(*skip, k.len() - *skip), i, v)));
            }
        }
        let limit = query.limit.max(1);
        let mut executions: Vec<ExecutionSummary> = Vec::new();
        let mut seen = HashSet::new();
        let mut more = false;
        let mut scanned = 0usize;
        // Where a name filter's bounded read stopped, if it did.
        let mut stopped: Option<ListCursor> = None;
        while let Some(Reverse((_, i, value))) = heads.pop() {
            let (skip, run) = &mut runs[i];
            if let Some(item) = run.next() {
                let (k, v) = item.map_err(io)?;
                heads.push(Reverse((k.subslice(*skip, k.len() - *skip), i, v)));
            }
            let summary: ExecutionSummary = decode(&value)?;
            // A status changed while the runs were read: the execution
            // may be met in its old run and its new one.
            if !seen.insert(summary.arn.clone()) {
                continue;
            }
            if query.started_after.is_some_and(|t| summary.start < t) {
                // Newest first: every later one started earlier still.
                break;
            }
            if !query.admits(&summary) {
                scanned += 1;
                if scanned >= crate::NAME_SCAN {
                    stopped = Some(ListCursor::of(&summary));
                    break;
                }
                continue;
            }
            if executions.len() == limit {
                more = true;
                break;
            }
            executions.push(summary);
        }
        let next = if more {
            executions.last().map(ListCursor::of)
        } else {
            stopped
        };
        Ok(ExecutionPage { executions, next })
    }

    fn open_executions(&self) -> Result<Vec<ExecutionRecord>, StoreError> {
        let mut out = Vec::new();
        for item in self.raw_scan(&[OPEN])? {
            let (k, _) = item.map_err(io)?;
            if let Some(record) = self.execution(&utf8(&k[1..])?)? {
                out.push(record);
            }
        }
        Ok(out)
    }
}

impl SledStore {
    /// A page of a table whose keys are an execution, 0, a number (u64):
    /// the values numbered past `after`, in order, at most `limit` (0 is
    /// read as 1).
    fn numbered_page<T: DeserializeOwned>(
        &self,
        tag: u8,
        execution: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<T>, StoreError> {
        let Some(first) = after.checked_add(1) else {
            return Ok(Vec::new());
        };
        let start = key(tag, &[execution.as_bytes(), &first.to_be_bytes()]);
        let end = key(tag, &[execution.as_bytes(), &u64::MAX.to_be_bytes()]);
        self.raw_range(start..=end)?
            .take(limit.max(1))
            .map(|item| {
                item.map_err(io)
                    .and_then(|(k, v)| decode(&self.whole(&k, v)?))
            })
            .collect()
    }
}

impl Journals for SledStore {
    fn journal_page(
        &self,
        execution: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        self.numbered_page(JOURNAL, execution, after, limit)
    }
}

impl Histories for SledStore {
    fn history_page(
        &self,
        execution: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<HistoryEvent>, StoreError> {
        let Some(from) = after.checked_add(1) else {
            return Ok(Vec::new());
        };
        let limit = limit.max(1);
        // A step's events share one key, named by the first of them: the
        // run holding `from` starts at the last key at or before it.
        let first = key(HISTORY, &[execution.as_bytes(), &0u64.to_be_bytes()]);
        let at_from = key(HISTORY, &[execution.as_bytes(), &from.to_be_bytes()]);
        let end = key(HISTORY, &[execution.as_bytes(), &u64::MAX.to_be_bytes()]);
        self.settled_for(|s| s.has_range(&(first.clone()..=end.clone())))?;
        let start = match self.data.range(first..=at_from.clone()).next_back() {
            Some(item) => item.map_err(io)?.0.to_vec(),
            None => at_from,
        };
        let mut events = Vec::new();
        for item in self.data.range(start..=end) {
            let (k, value) = item.map_err(io)?;
            let value = self.whole(&k, value)?;
            let run: Vec<HistoryEvent> = if value.first() == Some(&b'[') {
                decode(&value)?
            } else {
                vec![decode(&value)?]
            };
            let wanted = limit - events.len();
            events.extend(run.into_iter().filter(|e| e.id >= from).take(wanted));
            if events.len() == limit {
                break;
            }
        }
        Ok(events)
    }

    fn history_len(&self, execution: &str) -> Result<u64, StoreError> {
        let known = (execution.to_owned(), HISTORY);
        if let Some(last) = self.staged().lasts.get(&known) {
            return Ok(*last);
        }
        let p = prefix(HISTORY, execution);
        match self.raw_scan(&p)?.next_back() {
            None => Ok(0),
            Some(item) => {
                let (k, value) = item.map_err(io)?;
                let run = self.whole(&k, value)?;
                Ok((read_u64(&k[k.len() - 8..])? + events_in_run(&run)?).saturating_sub(1))
            }
        }
    }
}

impl Timers for SledStore {
    fn timers_page(
        &self,
        execution: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<TimerRecord>, StoreError> {
        self.numbered_page(TIMERS, execution, after, limit)
    }
}

fn kind_byte(kind: LineageKind) -> u8 {
    match kind {
        LineageKind::Read => b'r',
        LineageKind::Wrote => b'w',
    }
}

fn lineage_key(path: &str, execution: &str, kind: LineageKind) -> Vec<u8> {
    key(
        LINEAGE,
        &[path.as_bytes(), execution.as_bytes(), &[kind_byte(kind)]],
    )
}

impl SledStore {
    /// Up to `limit` records of the `tag` keyed by one string, after the
    /// one keyed `after` ("" for the first), in key order.
    fn page_after<T: DeserializeOwned>(
        &self,
        tag: u8,
        after: &str,
        limit: usize,
    ) -> Result<Vec<T>, StoreError> {
        let range = (
            Bound::Excluded(key(tag, &[after.as_bytes()])),
            Bound::Excluded(vec![tag + 1]),
        );
        self.raw_range(range)?
            .take(limit.max(1))
            .map(|item| {
                item.map_err(io)
                    .and_then(|(k, v)| decode(&self.whole(&k, v)?))
            })
            .collect()
    }
}

impl TaskCache for SledStore {
    fn cache_entry(&self, k: &str) -> Result<Option<CacheEntryRecord>, StoreError> {
        self.get(&key(CACHE, &[k.as_bytes()]))
    }

    fn cache_entries_page(
        &self,
        after: &str,
        limit: usize,
    ) -> Result<Vec<CacheEntryRecord>, StoreError> {
        self.page_after(CACHE, after, limit)
    }
}

impl Lineage for SledStore {
    fn lineage_of_path(&self, path: &str, limit: usize) -> Result<Vec<LineageRecord>, StoreError> {
        self.raw_scan(&prefix(LINEAGE, path))?
            .take(limit.max(1))
            .map(|item| {
                item.map_err(io)
                    .and_then(|(k, v)| decode(&self.whole(&k, v)?))
            })
            .collect()
    }

    fn lineage_of_execution(
        &self,
        execution: &str,
        limit: usize,
    ) -> Result<Vec<LineageRecord>, StoreError> {
        let by = prefix(LINEAGE_BY_EXECUTION, execution);
        let mut out = Vec::new();
        for item in self.raw_scan(&by)?.take(limit.max(1)) {
            let (k, _) = item.map_err(io)?;
            let rest = &k[by.len()..];
            let (kind, path) = match rest.split_first() {
                Some((b'r', path)) => (LineageKind::Read, path),
                Some((b'w', path)) => (LineageKind::Wrote, path),
                _ => return Err(StoreError::Corrupt("a lineage key without a kind".into())),
            };
            let path = utf8(path)?;
            if let Some(record) = self.get(&lineage_key(&path, execution, kind))? {
                out.push(record);
            }
        }
        Ok(out)
    }
}

impl EndedNotices for SledStore {
    fn ended_notices(&self) -> Result<Vec<String>, StoreError> {
        self.raw_scan(&[NOTICES])?
            .map(|item| item.map_err(io).and_then(|(k, _)| utf8(&k[1..])))
            .collect()
    }
}

impl TaskLogs for SledStore {
    fn task_logs_page(
        &self,
        execution: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<TaskLogRecord>, StoreError> {
        self.numbered_page(TASK_LOGS, execution, after, limit)
    }
}

impl TaskTokens for SledStore {
    fn task_token(&self, token: &str) -> Result<Option<TaskTokenRecord>, StoreError> {
        self.get(&key(TOKENS, &[token.as_bytes()]))
    }

    fn task_tokens_page(
        &self,
        after: &str,
        limit: usize,
    ) -> Result<Vec<TaskTokenRecord>, StoreError> {
        self.page_after(TOKENS, after, limit)
    }
}

/// A key and what it is to hold: a value (Some) or nothing (None).
type Write = (Vec<u8>, Option<Vec<u8>>);

/// What a batch changes, gathered before anything is written; reads see the
/// batch's own earlier writes through `pending`.
struct Plan<'s> {
    store: &'s SledStore,
    /// Batches staged before this one (their writes are not in sled yet).
    staged: &'s Staged,
    /// Every write in order.
    writes: Vec<Write>,
    /// Pieces were written or removed: the batch must be atomic (a piece
    /// rewritten without its pointer would corrupt the value).
    touched_pieces: bool,
    /// Keys written (Some, the whole value) or removed (None) by this
    /// batch so far.
    pending: HashMap<Vec<u8>, Option<Vec<u8>>>,
    /// The listing run this batch put each execution in: a later change
    /// in the same batch moves it from there without probing.
    listed: HashMap<String, Run>,
    /// Pieces under each key this batch wrote (0: kept whole).
    pieces: HashMap<Vec<u8>, u32>,
    /// Keys known to hold nothing before this batch (read as absent, or
    /// belonging to a new execution): no read for their old pieces, and
    /// a write that ends up removing one is no write at all.
    absent: HashSet<Vec<u8>>,
    /// Lasts (see [`Lasts`]) this batch found or moved.
    lasts: Lasts,
    /// Executions this batch closed or deleted: their lasts are dropped.
    closed: Vec<String>,
}

impl Plan<'_> {
    fn read(&mut self, k: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(v) = self.pending.get(k) {
            return Ok(v.clone());
        }
        if self.absent.contains(k) {
            return Ok(None);
        }
        let raw = match self.staged.view.get(k) {
            Some(v) => v.clone().map(sled::IVec::from),
            None => self.store.data.get(k).map_err(io)?,
        };
        match raw {
            Some(v) => Ok(Some(self.assemble(k, v)?.to_vec())),
            None => {
                self.absent.insert(k.to_vec());
                Ok(None)
            }
        }
    }

    /// A large value's pieces, staged ones first: a pointer and its pieces
    /// are always written (and so staged) together.
    fn assemble(&self, k: &[u8], value: sled::IVec) -> Result<sled::IVec, StoreError> {
        assemble(k, value, |piece| match self.staged.view.get(piece) {
            Some(v) => Ok(v.clone()),
            None => Ok(self.store.data.get(piece).map_err(io)?.map(|v| v.to_vec())),
        })
    }

    fn write(&mut self, k: Vec<u8>, v: Option<Vec<u8>>) {
        self.writes.push((k, v));
    }

    /// What the batch leaves in the store: the last write of each key, and
    /// no removal of a key that held nothing before (an execution that
    /// ends in its first step never writes its open mark). sled's cost is
    /// per key written.
    fn into_writes(self) -> (Vec<Write>, bool) {
        let mut seen = HashSet::with_capacity(self.writes.len());
        let keep: Vec<bool> = self
            .writes
            .iter()
            .rev()
            .map(|(k, v)| seen.insert(k.as_slice()) && (v.is_some() || !self.absent.contains(k)))
            .collect();
        let writes = self
            .writes
            .into_iter()
            .zip(keep.into_iter().rev())
            .filter_map(|(write, keep)| keep.then_some(write))
            .collect();
        (writes, self.touched_pieces)
    }

    /// How many pieces `k` holds now (this batch's writes included).
    fn pieces_of(&self, k: &[u8]) -> Result<u32, StoreError> {
        if !may_spill(k) {
            return Ok(0);
        }
        if let Some(n) = self.pieces.get(k) {
            return Ok(*n);
        }
        // Written by this batch without pieces, or known to be new.
        if self.pending.contains_key(k) || self.absent.contains(k) {
            return Ok(0);
        }
        let raw = match self.staged.view.get(k) {
            Some(v) => v.clone().map(sled::IVec::from),
            None => self.store.data.get(k).map_err(io)?,
        };
        match raw {
            Some(v) => Ok(read_pointer(&v)?.map_or(0, |(n, _)| n)),
            None => Ok(0),
        }
    }

    /// Writes `v` under `k`: whole, or in pieces when it is large; the
    /// pieces of what `k` held before and no longer needs go.
    fn insert(&mut self, k: Vec<u8>, v: Vec<u8>) -> Result<(), StoreError> {
        let old = self.pieces_of(&k)?;
        self.insert_over(k, v, old)
    }

    /// `insert` of a key known to be new (a journal entry or history run
    /// past the counter, the record of a new execution): no read of what
    /// it held, which is most of what a sled read costs a batch.
    fn insert_new(&mut self, k: Vec<u8>, v: Vec<u8>) -> Result<(), StoreError> {
        self.insert_over(k, v, 0)
    }

    fn insert_over(&mut self, k: Vec<u8>, v: Vec<u8>, old: u32) -> Result<(), StoreError> {
        let new = if v.len() > PIECE && may_spill(&k) {
            let mut n = 0u32;
            for chunk in v.chunks(PIECE) {
                self.write(piece_key(&k, n), Some(chunk.to_vec()));
                n += 1;
            }
            self.write(k.clone(), Some(spilled_pointer(n, v.len() as u64)));
            n
        } else {
            self.write(k.clone(), Some(v.clone()));
            0
        };
        for piece in new..old {
            self.write(piece_key(&k, piece), None);
        }
        if old > 0 || new > 0 {
            self.touched_pieces = true;
            self.pieces.insert(k.clone(), new);
        }
        self.pending.insert(k, Some(v));
        Ok(())
    }

    fn remove(&mut self, k: Vec<u8>) -> Result<(), StoreError> {
        let old = self.pieces_of(&k)?;
        for piece in 0..old {
            self.write(piece_key(&k, piece), None);
        }
        if old > 0 {
            self.touched_pieces = true;
            self.pieces.insert(k.clone(), 0);
        }
        self.write(k.clone(), None);
        self.pending.insert(k, None);
        Ok(())
    }

    fn put<T: Serialize>(&mut self, k: Vec<u8>, value: &T) -> Result<(), StoreError> {
        let bytes = encode(value)?;
        self.insert(k, bytes)
    }

    fn put_new<T: Serialize>(&mut self, k: Vec<u8>, value: &T) -> Result<(), StoreError> {
        let bytes = encode(value)?;
        self.insert_new(k, bytes)
    }

    /// The last journal seq (`tag` JOURNAL) or history id (HISTORY) stored
    /// for `execution`, 0 for none: known (this batch, the cache), or read
    /// off its last key (a history run's key is its first id; its events
    /// give the last).
    fn last(&mut self, execution: &str, tag: u8) -> Result<u64, StoreError> {
        let known = (execution.to_owned(), tag);
        if let Some(last) = self
            .lasts
            .get(&known)
            .or_else(|| self.staged.lasts.get(&known))
        {
            return Ok(*last);
        }
        let p = prefix(tag, execution);
        let staged = self
            .staged
            .view
            .range(p.clone()..)
            .take_while(|(k, _)| k.starts_with(&p))
            .filter(|(_, v)| v.is_some())
            .map(|(k, _)| k.clone())
            .last();
        let mut stored = None;
        for item in self.store.data.scan_prefix(&p).rev() {
            let (k, _) = item.map_err(io)?;
            // Removed by a staged batch: not there any more.
            if !matches!(self.staged.view.get(k.as_ref()), Some(None)) {
                stored = Some(k.to_vec());
                break;
            }
        }
        let last = match staged.max(stored) {
            None => 0,
            Some(k) => {
                let number = read_u64(&k[k.len() - 8..])?;
                if tag == HISTORY {
                    let run = self.read(&k)?.unwrap_or_default();
                    (number + events_in_run(&run)?).saturating_sub(1)
                } else {
                    number
                }
            }
        };
        self.lasts.insert(known, last);
        Ok(last)
    }

    fn counter(&mut self, execution: &str, which: &[u8]) -> Result<(Vec<u8>, u64), StoreError> {
        let k = key(COUNTERS, &[execution.as_bytes(), which]);
        let value = match self.read(&k)? {
            Some(bytes) => read_u64(&bytes)?,
            None => 0,
        };
        Ok((k, value))
    }

    fn op(&mut self, op: &WriteOp) -> Result<(), StoreError> {
        match op {
            WriteOp::PutStateMachine(r) => {
                self.put(key(MACHINES, &[r.arn.as_bytes()]), r)?;
                let revision = key(REVISIONS, &[r.arn.as_bytes(), &r.revision.to_be_bytes()]);
                self.put(revision, r)?;
            }
            WriteOp::DeleteStateMachine(arn) => self.remove(key(MACHINES, &[arn.as_bytes()]))?,
            WriteOp::CreateExecution(r) => {
                // A unique name is in the ARN (see `named_arns`): the
                // record's key is taken exactly when the name is.
                if r.has_unique_name()
                    && self.read(&key(EXECUTIONS, &[r.arn.as_bytes()]))?.is_some()
                {
                    return Err(StoreError::ExecutionExists {
                        state_machine: r.state_machine_arn.clone(),
                        name: r.name.clone(),
                    });
                }
                // A free name (or an ARN with an id of its own): its ARN
                // holds nothing either.
                let arn = r.arn.as_bytes();
                self.absent.extend([
                    key(EXECUTIONS, &[arn]),
                    key(OPEN, &[arn]),
                    key(NOTICES, &[arn]),
                    key(COUNTERS, &[arn, b"l"]),
                ]);
                for tag in [JOURNAL, HISTORY] {
                    self.lasts.insert((r.arn.clone(), tag), 0);
                }
                self.execution(r, true)?;
            }
            WriteOp::UpdateExecution(r) => self.execution(r, false)?,
            WriteOp::AppendJournal { execution, entries } => {
                let mut last = self.last(execution, JOURNAL)?;
                for entry in entries {
                    let k = key(JOURNAL, &[execution.as_bytes(), &entry.seq.to_be_bytes()]);
                    if entry.seq > last {
                        self.put_new(k, entry)?;
                    } else {
                        self.put(k, entry)?;
                    }
                    last = last.max(entry.seq);
                }
                self.lasts.insert((execution.clone(), JOURNAL), last);
            }
            WriteOp::AppendHistory { execution, events } => {
                let Some(first) = events.first() else {
                    return Ok(());
                };
                let mut last = self.last(execution, HISTORY)?;
                for event in events {
                    if event.id != last + 1 {
                        return Err(StoreError::HistoryGap {
                            execution: execution.clone(),
                            expected: last + 1,
                            got: event.id,
                        });
                    }
                    last = event.id;
                }
                // One key for the whole run: sled's cost is mostly per key.
                let k = key(HISTORY, &[execution.as_bytes(), &first.id.to_be_bytes()]);
                // Past the last (checked above): a new key.
                self.put_new(k, events)?;
                self.lasts.insert((execution.clone(), HISTORY), last);
            }
            // A timer is identified by (execution, id): putting it again
            // replaces it, removing it needs no due time. Neither reads:
            // a timer's record is small, never in pieces.
            WriteOp::PutTimer(timer) => {
                self.put(timer_key(&timer.execution, timer.timer), timer)?;
            }
            WriteOp::RemoveTimer(timer) => {
                self.remove(timer_key(&timer.execution, timer.timer))?;
            }
            WriteOp::PutTaskToken(token) => {
                self.put(key(TOKENS, &[token.token.as_bytes()]), token)?;
            }
            WriteOp::RemoveTaskToken(token) => self.remove(key(TOKENS, &[token.as_bytes()]))?,
            WriteOp::PutActivity(a) => self.put(key(ACTIVITIES, &[a.arn.as_bytes()]), a)?,
            WriteOp::DeleteActivity(arn) => self.remove(key(ACTIVITIES, &[arn.as_bytes()]))?,
            WriteOp::DeleteExecution(arn) => self.delete_execution(arn)?,
            WriteOp::PutTrigger(t) => self.put(key(TRIGGERS, &[t.name.as_bytes()]), t)?,
            WriteOp::PutMapRun(r) => {
                self.put(key(MAP_RUNS, &[r.map_run_arn.as_bytes()]), r)?;
                self.insert(
                    key(
                        MAP_RUNS_BY_EXECUTION,
                        &[r.execution_arn.as_bytes(), r.map_run_arn.as_bytes()],
                    ),
                    Vec::new(),
                )?;
            }
            WriteOp::DeleteTrigger(name) => {
                self.remove(key(TRIGGERS, &[name.as_bytes()]))?;
                self.remove(key(TRIGGER_STATES, &[name.as_bytes()]))?;
            }
            WriteOp::PutTriggerState(s) => {
                self.put(key(TRIGGER_STATES, &[s.name.as_bytes()]), s)?;
            }
            WriteOp::PutEndedNotice(arn) => {
                self.insert(key(NOTICES, &[arn.as_bytes()]), Vec::new())?;
            }
            WriteOp::RemoveEndedNotice(arn) => self.remove(key(NOTICES, &[arn.as_bytes()]))?,
            WriteOp::PutCacheEntry(e) => self.put(key(CACHE, &[e.key.as_bytes()]), e)?,
            WriteOp::RemoveCacheEntry(k) => self.remove(key(CACHE, &[k.as_bytes()]))?,
            WriteOp::PutLineage(r) => {
                self.put(lineage_key(&r.path, &r.execution_arn, r.kind), r)?;
                let mut by = prefix(LINEAGE_BY_EXECUTION, &r.execution_arn);
                by.push(kind_byte(r.kind));
                by.extend_from_slice(r.path.as_bytes());
                self.insert(by, Vec::new())?;
            }
            WriteOp::AddStats(delta) => {
                let total = delta.stats.without_durations();
                for (hour, add) in [(delta.hour, &delta.stats), (TOTAL_HOUR, &total)] {
                    let k = stats_key(&delta.state_machine, hour);
                    let mut stats: MachineStats = match self.read(&k)? {
                        Some(bytes) => decode(&bytes)?,
                        None => MachineStats::default(),
                    };
                    stats.add(add);
                    self.put(k, &stats)?;
                }
            }
            // Refused by `apply_batch`.
            WriteOp::Fence(_)
            | WriteOp::PutLease(_)
            | WriteOp::RemoveMessage(_)
            | WriteOp::TakeSlot(_)
            | WriteOp::LeaveQueue(_) => {}
            WriteOp::PutTaskLog { record, keep } => {
                let execution = record.execution.as_bytes();
                let (counter_key, last) = self.counter(&record.execution, b"l")?;
                let seq = last + 1;
                let mut record = record.clone();
                record.seq = seq;
                self.put(key(TASK_LOGS, &[execution, &seq.to_be_bytes()]), &record)?;
                self.insert(counter_key, seq.to_be_bytes().to_vec())?;
                // One in, at most one out: the oldest kept is `seq - keep`.
                if let Some(old) = seq.checked_sub((*keep).max(1)).filter(|s| *s > 0) {
                    self.remove(key(TASK_LOGS, &[execution, &old.to_be_bytes()]))?;
                }
            }
        }
        Ok(())
    }

    fn delete_execution(&mut self, arn: &str) -> Result<(), StoreError> {
        self.closed.push(arn.to_owned());
        let record_key = key(EXECUTIONS, &[arn.as_bytes()]);
        if let Some(bytes) = self.read(&record_key)? {
            let r: ExecutionRecord = decode(&bytes)?;
            // A name key of an earlier build (format 3 indexed names), if
            // it is this execution's.
            let name_key = key(NAMES, &[r.state_machine_arn.as_bytes(), r.name.as_bytes()]);
            if self.read(&name_key)?.as_deref() == Some(arn.as_bytes()) {
                self.remove(name_key)?;
            }
            self.unlist(&r)?;
        }
        self.remove(record_key)?;
        self.remove(key(OPEN, &[arn.as_bytes()]))?;
        self.remove(key(NOTICES, &[arn.as_bytes()]))?;
        for tag in [JOURNAL, HISTORY, COUNTERS, TASK_LOGS, TIMERS] {
            for item in self.store.data.scan_prefix(prefix(tag, arn)) {
                let (k, _) = item.map_err(io)?;
                self.remove(k.to_vec())?;
            }
        }
        // The Map Runs it started (their children are executions of their
        // own, purged by their own age).
        let runs = prefix(MAP_RUNS_BY_EXECUTION, arn);
        for item in self.store.data.scan_prefix(&runs) {
            let (k, _) = item.map_err(io)?;
            self.remove(key(MAP_RUNS, &[&k[runs.len()..]]))?;
            self.remove(k.to_vec())?;
        }
        // The files it read and wrote.
        let by = prefix(LINEAGE_BY_EXECUTION, arn);
        for item in self.store.data.scan_prefix(&by) {
            let (k, _) = item.map_err(io)?;
            if let Some((kind, path)) = k[by.len()..].split_first() {
                let kind = if *kind == b'r' {
                    LineageKind::Read
                } else {
                    LineageKind::Wrote
                };
                self.remove(lineage_key(&utf8(path)?, arn, kind))?;
            }
            self.remove(k.to_vec())?;
        }
        // Tokens are removed when their execution ends; a closed execution
        // has none left.
        Ok(())
    }

    /// The open mark goes in before a running record and out after a
    /// closed one: a relaxed batch cut short by a crash leaves no record
    /// that recovery cannot find (recovery closes the mark of a closed one).
    fn execution(&mut self, r: &ExecutionRecord, new: bool) -> Result<(), StoreError> {
        let record_key = key(EXECUTIONS, &[r.arn.as_bytes()]);
        let open_key = key(OPEN, &[r.arn.as_bytes()]);
        if r.status == ExecutionStatus::Running {
            self.insert(open_key, Vec::new())?;
            if new {
                self.put_new(record_key, r)?;
            } else {
                self.put(record_key, r)?;
            }
            self.list(r, new)?;
        } else {
            self.put(record_key, r)?;
            self.list(r, new)?;
            self.remove(open_key)?;
            self.closed.push(r.arn.clone());
        }
        Ok(())
    }

    /// Puts the execution's summary in its run (status, redriven or not)
    /// of the listing index and removes it from any other. After the
    /// record and before the open mark goes, so a relaxed batch cut short
    /// leaves an open mark, and recovery's rewrite of the record mends the
    /// index.
    ///
    /// Where its keys were is known without a read when this batch created
    /// the execution (nowhere) or listed it already (one run); otherwise
    /// the other runs are probed.
    fn list(&mut self, r: &ExecutionRecord, new: bool) -> Result<(), StoreError> {
        let summary = r.summary();
        let now = Run::of(&summary);
        match self.listed.insert(r.arn.clone(), now) {
            Some(before) if before != now => {
                for k in listing_keys(&summary, before) {
                    self.remove(k)?;
                }
            }
            Some(_) => {}
            None if new => {}
            None => {
                for run in Run::before(&summary) {
                    let keys = listing_keys(&summary, run);
                    if self.read(&keys[0])?.is_some() {
                        for k in keys {
                            self.remove(k)?;
                        }
                    }
                }
            }
        }
        let keys = listing_keys(&summary, now);
        if new {
            // Nothing was there: a later removal in this batch is no write.
            self.absent.extend(keys.iter().cloned());
        }
        let value = encode(&summary)?;
        for k in keys {
            self.insert_new(k, value.clone())?;
        }
        Ok(())
    }

    /// Removes the execution from the listing index, in whatever run.
    fn unlist(&mut self, r: &ExecutionRecord) -> Result<(), StoreError> {
        self.listed.remove(&r.arn);
        let summary = r.summary();
        for k in listing_keys(&summary, Run::of(&summary)) {
            self.remove(k)?;
        }
        for run in Run::before(&summary) {
            let keys = listing_keys(&summary, run);
            if self.read(&keys[0])?.is_some() {
                for k in keys {
                    self.remove(k)?;
                }
            }
        }
        Ok(())
    }
}

impl Store for SledStore {
    fn apply(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        let applied = self.apply_batch(batch);
        // After the write, whether it went in whole or not: a reader that
        // filled the cache meanwhile read the old record.
        let writes_machines = batch.ops.iter().any(|op| {
            matches!(
                op,
                WriteOp::PutStateMachine(_) | WriteOp::DeleteStateMachine(_)
            )
        });
        if writes_machines {
            let mut cache = self.machine_cache();
            cache.generation += 1;
            cache.records.clear();
            cache.bytes = 0;
        }
        applied
    }

    fn backup(&self, out: &mut dyn std::io::Write) -> Result<BackupSummary, StoreError> {
        self.write_backup(out)
    }

    fn damage(&self) -> Option<String> {
        self.damage.found()
    }

    fn flush(&self) -> Result<(), StoreError> {
        let generation = {
            let mut staged = self.staged();
            self.settle(&mut staged)?;
            self.count_flush()?
        };
        self.db.flush().map_err(io)?;
        self.flushed(generation);
        Ok(())
    }
}

impl SledStore {
    fn apply_batch(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        if batch.ops.iter().any(WriteOp::is_cluster_op) {
            return Err(StoreError::Unsupported(crate::cluster::ONE_NODE));
        }
        let mut staged = self.staged();
        // Deleting an execution scans sled for its keys.
        if batch
            .ops
            .iter()
            .any(|op| matches!(op, WriteOp::DeleteExecution(_)))
        {
            self.settle(&mut staged)?;
        }
        let mut plan = Plan {
            store: self,
            staged: &staged,
            writes: Vec::new(),
            touched_pieces: false,
            pending: HashMap::new(),
            listed: HashMap::new(),
            pieces: HashMap::new(),
            absent: HashSet::new(),
            lasts: Lasts::new(),
            closed: Vec::new(),
        };
        for op in &batch.ops {
            plan.op(op)?;
        }
        let (lasts, closed) = (
            std::mem::take(&mut plan.lasts),
            std::mem::take(&mut plan.closed),
        );
        let (writes, touched_pieces) = plan.into_writes();
        // The batch is accepted: what it found and moved is known now.
        if staged.lasts.len() > LASTS_KEPT {
            staged.lasts.clear();
        }
        staged.lasts.extend(lasts);
        for arn in closed {
            for tag in [JOURNAL, HISTORY] {
                staged.lasts.remove(&(arn.clone(), tag));
            }
        }
        let written = self.write(&mut staged, batch, writes, touched_pieces);
        if written.is_err() {
            // Perhaps half written: what the lasts say is found again.
            staged.lasts.clear();
        }
        written
    }

    /// Writes a planned batch: at once, or staged (see the module's comment).
    fn write(
        &self,
        staged: &mut Staged,
        batch: &WriteBatch,
        writes: Vec<Write>,
        touched_pieces: bool,
    ) -> Result<(), StoreError> {
        self.keys_written
            .fetch_add(writes.len() as u64, Ordering::Relaxed);
        let direct = (batch.is_relaxed() || writes.len() <= 1) && !touched_pieces;
        if direct && !writes.iter().any(|(k, _)| staged.has_key(k)) {
            for (k, v) in writes {
                match v {
                    Some(v) => self.data.insert(k, v).map_err(io)?,
                    None => self.data.remove(k).map_err(io)?,
                };
            }
            return Ok(());
        }
        for (k, v) in writes {
            staged.bytes += k.len() + v.as_ref().map_or(0, Vec::len);
            staged.view.insert(k, v);
        }
        self.any_staged.store(true, Ordering::SeqCst);
        staged.touched_pieces |= touched_pieces;
        if staged.bytes > STAGED_BYTES {
            self.settle(staged)?;
        }
        Ok(())
    }
}

/// What is staged goes into sled before sled's own drop writes it out.
impl SledStore {
    /// Counts one more flush in `meta`; the caller holds the writer's lock,
    /// so counts go in in order.
    fn count_flush(&self) -> Result<u64, StoreError> {
        let mut generation = self.generation.lock().unwrap_or_else(|e| e.into_inner());
        *generation += 1;
        self.meta
            .insert(sled_integrity::GENERATION_KEY, &generation.to_be_bytes())
            .map_err(io)?;
        Ok(*generation)
    }

    /// `generation` is on disk: the watermark may say so, every few seconds.
    fn flushed(&self, generation: u64) {
        let mut watermark = self.watermark.lock().unwrap_or_else(|e| e.into_inner());
        if watermark.due() && generation > watermark.generation {
            if let Err(e) = watermark.write(generation) {
                tracing::warn!(error = %e, "the store's watermark could not be written");
            }
        }
    }
}

impl SledStore {
    /// Writes every tree to `out` as a backup (see `backup`). Writers wait
    /// while it is taken, so it is one consistent moment of the store;
    /// reads go on. `out` should be fast (a local file): the pause lasts
    /// as long as the writing.
    fn write_backup(&self, out: &mut dyn std::io::Write) -> Result<BackupSummary, StoreError> {
        let mut staged = self.staged();
        self.settle(&mut staged)?;
        let mut writer = BackupWriter::new(out)?;
        let mut names = self.db.tree_names();
        names.sort();
        for name in names {
            let tree = self.db.open_tree(&name).map_err(io)?;
            writer.tree(&name)?;
            for entry in tree.iter() {
                let (k, v) = entry.map_err(io)?;
                writer.entry(&k, &v)?;
            }
        }
        writer.finish()
    }

    /// Restores the backup read from `input` into `dir`, which must not
    /// exist or be empty. The backup is read twice: once to check it whole,
    /// then to write it; a damaged backup writes nothing.
    pub fn restore(
        mut input: impl FnMut() -> std::io::Result<Box<dyn std::io::Read>>,
        dir: &Path,
    ) -> Result<BackupSummary, StoreError> {
        let opened = |source| StoreError::File {
            what: "cannot read the backup".into(),
            source,
        };
        let summary = super::backup::verify(input().map_err(opened)?)?;
        if std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some()) {
            return Err(StoreError::Open {
                path: dir.display().to_string(),
                source: OpenError::NotEmpty,
            });
        }
        let store = Self::open(dir)?;
        let mut reader = BackupReader::new(input().map_err(opened)?)?;
        let mut tree: Option<sled::Tree> = None;
        while let Some(frame) = reader.next_frame()? {
            match frame {
                Frame::Tree(name) => tree = Some(store.db.open_tree(name).map_err(io)?),
                Frame::Entry(k, v) => {
                    let tree = tree
                        .as_ref()
                        .ok_or_else(|| StoreError::Corrupt("an entry before any tree".into()))?;
                    tree.insert(k, v).map_err(io)?;
                }
            }
        }
        // A tree keeps the database open: let go of it before reopening.
        drop(tree);
        // The backup's count of flushes is the old store's; this one starts
        // its own, and its watermark with it.
        *store.generation.lock().unwrap_or_else(|e| e.into_inner()) = 0;
        store.flush()?;
        drop(store);
        // Opening reads every entry back: the restored store is whole.
        Self::open(dir)?;
        Ok(summary)
    }
}

/// What `SledStore::check` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Entries read, by table (its tag as a character).
    pub entries: BTreeMap<char, u64>,
    /// Problems found, at most [`CHECK_PROBLEMS_KEPT`] of them.
    pub problems: Vec<String>,
    /// Problems found in all.
    pub problem_count: u64,
}

/// The problems `check` keeps to show (it counts them all).
pub const CHECK_PROBLEMS_KEPT: usize = 50;

impl CheckReport {
    fn problem(&mut self, what: String) {
        self.problem_count += 1;
        if self.problems.len() < CHECK_PROBLEMS_KEPT {
            self.problems.push(what);
        }
    }
}

impl SledStore {
    /// Reads every entry and decodes every record (opening already read
    /// every page and checked the watermark), and checks that each open
    /// execution has a running record and a journal.
    pub fn check(&self) -> Result<CheckReport, StoreError> {
        self.settle(&mut self.staged())?;
        let mut report = CheckReport::default();
        let shown = |k: &[u8]| String::from_utf8_lossy(k).replace('\0', "/");
        for entry in self.data.iter() {
            let (k, v) = entry.map_err(io)?;
            let Some(&tag) = k.first() else {
                report.problem("an empty key".into());
                continue;
            };
            *report.entries.entry(tag as char).or_default() += 1;
            if may_spill(&k) {
                let decoded = self
                    .assemble(&k, v)
                    .and_then(|whole| decode::<serde_json::Value>(&whole));
                if let Err(e) = decoded {
                    report.problem(format!("{}: {e}", shown(&k)));
                }
            }
        }
        for entry in self.data.scan_prefix([OPEN]) {
            let (k, _) = entry.map_err(io)?;
            let arn = utf8(&k[1..])?;
            match self.get::<ExecutionRecord>(&key(EXECUTIONS, &[arn.as_bytes()])) {
                Ok(Some(record)) if record.status == ExecutionStatus::Running => {}
                Ok(Some(record)) => report.problem(format!(
                    "{arn} is marked open but its record says {:?}",
                    record.status
                )),
                Ok(None) => report.problem(format!("{arn} is marked open but has no record")),
                Err(e) => report.problem(format!("{arn}: {e}")),
            }
            if let Err(e) = self.journal(&arn) {
                report.problem(format!("the journal of {arn}: {e}"));
            }
        }
        Ok(report)
    }
}

impl Drop for SledStore {
    fn drop(&mut self) {
        let staged = self.writer.get_mut().unwrap_or_else(|e| e.into_inner());
        let mut staged = std::mem::take(staged);
        if self.settle(&mut staged).is_err() {
            return;
        }
        let Ok(generation) = self.count_flush() else {
            return;
        };
        if self.db.flush().is_ok() {
            let watermark = self.watermark.get_mut().unwrap_or_else(|e| e.into_inner());
            let _ = watermark.write(generation);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SledStore;

    /// A store opened while another handle still holds the directory waits
    /// for it to be let go (a restart right after an exit).
    #[test]
    fn open_waits_for_the_previous_holder_to_let_go() {
        let dir = std::env::temp_dir().join(format!("stepline-sled-lock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = SledStore::open(&dir).expect("first open");
        let holder = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            drop(first);
        });
        let second = SledStore::open(&dir);
        holder.join().expect("holder");
        assert!(second.is_ok(), "{:?}", second.err());
        drop(second);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

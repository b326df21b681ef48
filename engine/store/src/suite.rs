//! The shared suite every backend passes.
//!
//! Each `check_*` function takes any [`Store`], empty, and states one part
//! of the contract of the store traits; [`CHECKS`] lists them all and
//! [`run_all`] runs each on a fresh store. A backend in another crate
//! turns on this crate's `test-suite` feature in its dev-dependencies and
//! passes the suite with one test:
//!
//! ```ignore
//! #[test]
//! fn the_store_suite() {
//!     stepline_store::suite::run_all(|check| MyStore::fresh_for(check));
//! }
//! ```
//!
//! In this crate, the `checks!` list at the end also makes one `#[test]`
//! per check for [`MemoryStore`](crate::MemoryStore) and for
//! [`SledStore`](crate::SledStore) (each in its own temporary directory).
//! Checks that only make sense on disk (reopening, formats, pieces) are
//! sled's own and live after it.
//!
//! Records are built by small helpers with realistic ARNs, and history
//! events of several kinds, so a backend that serialises proves that every
//! shape survives the round trip.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use super::{
    ActivityRecord, CacheEntryRecord, ExecutionPage, ExecutionQuery, ExecutionRecord,
    ExecutionStatus, ExecutionSummary, ExecutionsOf, JournalCommand, JournalEntry, LineageKind,
    LineageRecord, ListCursor, MapRunChild, StateMachineRecord, Store, StoreError, TaskLogRecord,
    TaskTokenRecord, TimerRecord, TriggerRecord, TriggerStateRecord, WorkflowType, WriteBatch,
    WriteOp,
};
use stepline_language::history::{Event, HistoryEvent, StateType, TaskScheduled};

// ---------------------------------------------------------------------------
// Helpers

const ROLE: &str = "arn:aws:iam::123456789012:role/stepline";

/// A time from RFC 3339 text.
fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

/// The time every helper record is anchored on.
fn t0() -> DateTime<Utc> {
    at("2026-01-01T00:00:00.000Z")
}

fn ms(n: i64) -> Duration {
    Duration::milliseconds(n)
}

fn machine_arn(machine: &str) -> String {
    format!("arn:aws:states:us-east-1:123456789012:stateMachine:{machine}")
}

fn execution_arn(machine: &str, name: &str) -> String {
    format!("arn:aws:states:us-east-1:123456789012:execution:{machine}:{name}")
}

fn machine(name: &str, revision: u64) -> StateMachineRecord {
    StateMachineRecord {
        arn: machine_arn(name),
        name: name.to_owned(),
        definition: format!(
            r#"{{"Comment": "revision {revision}", "StartAt": "P", "States": {{"P": {{"Type": "Pass", "End": true}}}}}}"#
        ),
        role_arn: ROLE.to_owned(),
        workflow_type: WorkflowType::Standard,
        created: t0(),
        revision,
        tags: [("env".to_owned(), format!("rev-{revision}"))].into(),
        versions: Default::default(),
        last_version: 0,
        aliases: Default::default(),
    }
}

/// A RUNNING execution of state machine `machine` called `name`.
fn execution(machine: &str, name: &str) -> ExecutionRecord {
    ExecutionRecord {
        arn: execution_arn(machine, name),
        state_machine_arn: machine_arn(machine),
        revision: 1,
        name: name.to_owned(),
        input: r#"{"order": 7}"#.to_owned(),
        status: ExecutionStatus::Running,
        start: t0(),
        stop: None,
        output: None,
        error: None,
        cause: None,
        seed: 0xDEAD_BEEF,
        redrive_count: 0,
        token_secret: String::new(),
        test_case: None,
        map_run: None,
        queued: None,
    }
}

/// `record`, finished with `status`.
fn finished(record: &ExecutionRecord, status: ExecutionStatus) -> ExecutionRecord {
    let mut record = record.clone();
    record.status = status;
    record.stop = Some(t0() + ms(1500));
    match status {
        ExecutionStatus::Succeeded => record.output = Some(r#"{"done": true}"#.to_owned()),
        _ => {
            record.error = Some("States.TaskFailed".to_owned());
            record.cause = Some("it broke".to_owned());
        }
    }
    record
}

/// Event `id` of an execution, of a kind that varies with the id.
fn event(id: u64) -> HistoryEvent {
    let event = match id {
        1 => Event::ExecutionStarted {
            input: Arc::new(json!({"order": 7, "items": ["a", "b"]})),
            role_arn: ROLE.to_owned(),
        },
        id if id % 5 == 0 => Event::TaskScheduled(Box::new(TaskScheduled {
            resource_type: "http".to_owned(),
            resource: "invoke".to_owned(),
            region: "us-east-1".to_owned(),
            parameters: Arc::new(json!({"ApiEndpoint": "http://127.0.0.1/", "n": id})),
            timeout_in_seconds: Some(30),
            heartbeat_in_seconds: None,
        })),
        id if id % 2 == 0 => Event::StateEntered {
            state_type: StateType::Pass,
            name: Arc::from(format!("State{id}")),
            input: Arc::new(json!({"n": id})),
        },
        _ => Event::ParallelStateStarted,
    };
    HistoryEvent {
        id,
        previous_event_id: id - 1,
        timestamp: t0() + ms(id as i64),
        event,
    }
}

/// Events with ids `from..=to`.
fn events(from: u64, to: u64) -> Vec<HistoryEvent> {
    (from..=to).map(event).collect()
}

fn ids(events: &[HistoryEvent]) -> Vec<u64> {
    events.iter().map(|e| e.id).collect()
}

fn entry(seq: u64) -> JournalEntry {
    JournalEntry {
        seq,
        at: t0() + ms(seq as i64),
        command: JournalCommand::Start {
            input: json!({"seq": seq}),
        },
    }
}

fn timer(execution: &str, timer: u64, due: DateTime<Utc>) -> TimerRecord {
    TimerRecord {
        due,
        execution: execution.to_owned(),
        timer,
    }
}

fn token(token: &str, execution: &str, task: u64) -> TaskTokenRecord {
    TaskTokenRecord {
        token: token.to_owned(),
        execution: execution.to_owned(),
        task,
    }
}

fn append_history(execution: &str, events: Vec<HistoryEvent>) -> WriteOp {
    WriteOp::AppendHistory {
        execution: execution.to_owned(),
        events,
    }
}

fn append_journal(execution: &str, entries: Vec<JournalEntry>) -> WriteOp {
    WriteOp::AppendJournal {
        execution: execution.to_owned(),
        entries,
    }
}

fn apply(store: &dyn Store, ops: Vec<WriteOp>) -> Result<(), StoreError> {
    store.apply(&WriteBatch {
        ops,
        ..WriteBatch::default()
    })
}

/// Applies a batch that must succeed.
#[track_caller]
fn ok(store: &dyn Store, ops: Vec<WriteOp>) {
    if let Err(e) = apply(store, ops) {
        panic!("the batch should apply: {e}");
    }
}

/// Every execution of one state machine (or all), ordered by ARN: the
/// listing read two at a time (so every check of records also crosses
/// pages), then each record.
#[track_caller]
fn executions(store: &dyn Store, machine: Option<&str>) -> Vec<ExecutionRecord> {
    let of = match machine {
        Some(m) => ExecutionsOf::Machine(m.to_owned()),
        None => ExecutionsOf::All,
    };
    let mut records: Vec<ExecutionRecord> = listed(store, ExecutionQuery::new(of, 2))
        .iter()
        .map(|s| {
            let record = store.execution(&s.arn).unwrap().expect("a listed record");
            assert_eq!(
                &record.summary(),
                s,
                "the listing's summary is the record's"
            );
            record
        })
        .collect();
    records.sort_by(|a, b| a.arn.cmp(&b.arn));
    records
}

/// Every summary `query` selects, following its pages to the end.
#[track_caller]
fn listed(store: &dyn Store, mut query: ExecutionQuery) -> Vec<ExecutionSummary> {
    let mut all = Vec::new();
    loop {
        let ExecutionPage { executions, next } = store.list_executions(&query).unwrap();
        assert!(
            executions.len() <= query.limit.max(1),
            "a page past its limit"
        );
        all.extend(executions);
        match next {
            Some(cursor) => query.after = Some(cursor),
            None => return all,
        }
    }
}

fn summary_arns(summaries: &[ExecutionSummary]) -> Vec<String> {
    summaries.iter().map(|s| s.arn.clone()).collect()
}

fn arns(records: &[ExecutionRecord]) -> Vec<String> {
    records.iter().map(|r| r.arn.clone()).collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[track_caller]
fn assert_exists_error(result: Result<(), StoreError>, machine: &str, name: &str) {
    match result {
        Err(StoreError::ExecutionExists {
            state_machine,
            name: got,
        }) => {
            assert_eq!(state_machine, machine_arn(machine));
            assert_eq!(got, name);
        }
        other => panic!("expected ExecutionExists for {machine}/{name}, got {other:?}"),
    }
}

#[track_caller]
fn assert_gap_error(result: Result<(), StoreError>, execution: &str, expected: u64, got: u64) {
    match result {
        Err(StoreError::HistoryGap {
            execution: e,
            expected: x,
            got: g,
        }) => assert_eq!((e.as_str(), x, g), (execution, expected, got)),
        other => {
            panic!("expected HistoryGap (expected {expected}, got {got}), got {other:?}")
        }
    }
}

// ---------------------------------------------------------------------------
// State machines

pub fn check_state_machines(store: &dyn Store) {
    assert_eq!(store.state_machines().unwrap(), vec![]);
    assert_eq!(store.state_machine(&machine_arn("A")).unwrap(), None);

    // Put out of order: the listing is ordered by ARN all the same.
    ok(
        store,
        vec![
            WriteOp::PutStateMachine(machine("B", 1)),
            WriteOp::PutStateMachine(machine("C", 1)),
        ],
    );
    ok(store, vec![WriteOp::PutStateMachine(machine("A", 1))]);
    assert_eq!(
        store.state_machine(&machine_arn("A")).unwrap(),
        Some(machine("A", 1))
    );
    assert_eq!(
        store.state_machines().unwrap(),
        vec![machine("A", 1), machine("B", 1), machine("C", 1)]
    );

    // An update overwrites the record in place (new revision, new text).
    let mut b2 = machine("B", 2);
    b2.workflow_type = WorkflowType::Express;
    ok(store, vec![WriteOp::PutStateMachine(b2.clone())]);
    assert_eq!(
        store.state_machine(&machine_arn("B")).unwrap(),
        Some(b2.clone())
    );
    assert_eq!(
        store.state_machines().unwrap(),
        vec![machine("A", 1), b2.clone(), machine("C", 1)]
    );

    ok(store, vec![WriteOp::DeleteStateMachine(machine_arn("A"))]);
    assert_eq!(store.state_machine(&machine_arn("A")).unwrap(), None);
    assert_eq!(store.state_machines().unwrap(), vec![b2, machine("C", 1)]);

    // Deleting what is not there is not an error and changes nothing.
    ok(store, vec![WriteOp::DeleteStateMachine(machine_arn("A"))]);
    assert_eq!(store.state_machines().unwrap().len(), 2);
}

// ---------------------------------------------------------------------------
// Executions

pub fn check_executions(store: &dyn Store) {
    let a1 = execution("M", "b-run");
    let a2 = execution("M", "a-run");
    let b1 = execution("N", "a-run");
    assert_eq!(executions(store, None), vec![]);
    assert_eq!(store.execution(&a1.arn).unwrap(), None);
    assert_eq!(
        store.execution_by_name(&machine_arn("M"), "b-run").unwrap(),
        None
    );

    ok(
        store,
        vec![
            WriteOp::PutStateMachine(machine("M", 1)),
            WriteOp::PutStateMachine(machine("N", 1)),
            WriteOp::CreateExecution(a1.clone()),
        ],
    );
    ok(
        store,
        vec![
            WriteOp::CreateExecution(b1.clone()),
            WriteOp::CreateExecution(a2.clone()),
        ],
    );

    assert_eq!(store.execution(&a1.arn).unwrap(), Some(a1.clone()));
    assert_eq!(store.execution(&b1.arn).unwrap(), Some(b1.clone()));
    assert_eq!(
        store.execution_by_name(&machine_arn("M"), "b-run").unwrap(),
        Some(a1.clone())
    );
    assert_eq!(
        store.execution_by_name(&machine_arn("N"), "a-run").unwrap(),
        Some(b1.clone())
    );
    assert_eq!(
        store.execution_by_name(&machine_arn("N"), "b-run").unwrap(),
        None
    );
    assert_eq!(
        store.execution_by_name(&machine_arn("Z"), "a-run").unwrap(),
        None
    );

    // Listed by ARN, whatever the order of creation.
    assert_eq!(
        executions(store, None),
        vec![a2.clone(), a1.clone(), b1.clone()]
    );
    assert_eq!(
        executions(store, Some(&machine_arn("M"))),
        vec![a2.clone(), a1.clone()]
    );
    assert_eq!(executions(store, Some(&machine_arn("N"))), vec![b1.clone()]);
    assert_eq!(executions(store, Some(&machine_arn("Z"))), vec![]);

    // An update replaces the record; lookups by name see it too.
    let done = finished(&a1, ExecutionStatus::Succeeded);
    ok(store, vec![WriteOp::UpdateExecution(done.clone())]);
    assert_eq!(store.execution(&a1.arn).unwrap(), Some(done.clone()));
    assert_eq!(
        store.execution_by_name(&machine_arn("M"), "b-run").unwrap(),
        Some(done.clone())
    );
    assert_eq!(executions(store, Some(&machine_arn("M"))), vec![a2, done]);
    store.flush().unwrap();
}

/// An execution of `machine` called `name` that started `offset` ms after
/// t0, in `status`.
fn started_at(machine: &str, name: &str, offset: i64, status: ExecutionStatus) -> ExecutionRecord {
    let mut record = execution(machine, name);
    record.start = t0() + ms(offset);
    if status != ExecutionStatus::Running {
        record = finished(&record, status);
        record.stop = Some(record.start + ms(10));
    }
    record
}

/// `query` with the filters set.
fn query(of: ExecutionsOf, status: Option<ExecutionStatus>, limit: usize) -> ExecutionQuery {
    ExecutionQuery {
        status,
        ..ExecutionQuery::new(of, limit)
    }
}

fn of_machine(m: &str) -> ExecutionsOf {
    ExecutionsOf::Machine(machine_arn(m))
}

/// A listing is newest start first, then by ARN, across machines and
/// statuses; filters by machine (`M` is not a prefix of `MM`), status and
/// redrive read only what they select, alone or together; pages follow
/// each other whatever their size, and the last one has no cursor.
pub fn check_listing_order_filters_and_pages(store: &dyn Store) {
    use ExecutionStatus::*;
    let redriven = |mut r: ExecutionRecord| {
        r.redrive_count = 2;
        r
    };
    let records = [
        started_at("M", "a", 5, Succeeded),
        redriven(started_at("M", "b", 5, Running)),
        started_at("MM", "c", 7, Failed),
        started_at("M", "d", 1, Failed),
        started_at("N", "e", 9, Running),
        redriven(started_at("M", "f", 3, Succeeded)),
        redriven(started_at("MM", "g", 5, Aborted)),
        started_at("M", "h", -2, TimedOut),
        started_at("M", "i", 4, Running),
    ];
    for r in &records {
        ok(store, vec![WriteOp::CreateExecution(r.clone())]);
    }
    let newest_first =
        |machine: Option<&str>, status: Option<ExecutionStatus>, again: Option<bool>| {
            let mut expected: Vec<&ExecutionRecord> = records
                .iter()
                .filter(|r| machine.is_none_or(|m| r.state_machine_arn == machine_arn(m)))
                .filter(|r| status.is_none_or(|s| r.status == s))
                .filter(|r| again.is_none_or(|a| (r.redrive_count > 0) == a))
                .collect();
            expected.sort_by(|a, b| b.start.cmp(&a.start).then_with(|| a.arn.cmp(&b.arn)));
            expected.iter().map(|r| r.arn.clone()).collect::<Vec<_>>()
        };
    assert_eq!(
        summary_arns(&listed(store, query(ExecutionsOf::All, None, 100))),
        newest_first(None, None, None)
    );
    for limit in [1, 2, 3, 8, 9, 10] {
        for of in [None, Some("M"), Some("MM"), Some("N"), Some("Z")] {
            let statuses = ExecutionStatus::ALL.into_iter().map(Some);
            for status in std::iter::once(None).chain(statuses) {
                for again in [None, Some(true), Some(false)] {
                    let mut q = query(of.map_or(ExecutionsOf::All, of_machine), status, limit);
                    q.redriven = again;
                    assert_eq!(
                        summary_arns(&listed(store, q)),
                        newest_first(of, status, again),
                        "{of:?} {status:?} redriven {again:?}, pages of {limit}"
                    );
                }
            }
        }
    }
    // A full page says whether more follow: exactly as many as there are
    // gives no cursor.
    let first = store
        .list_executions(&query(of_machine("M"), None, 6))
        .unwrap();
    assert_eq!(first.executions.len(), 6);
    assert_eq!(first.next, None);
    let first = store
        .list_executions(&query(of_machine("M"), None, 4))
        .unwrap();
    assert_eq!(
        first.next,
        first.executions.last().map(ListCursor::of),
        "the cursor is the last summary"
    );
    // The summary is the record's, without input or output.
    let one = listed(store, query(of_machine("N"), None, 1));
    assert_eq!(one, vec![records[4].summary()]);
    let again = listed(store, query(of_machine("MM"), Some(Aborted), 1));
    assert_eq!(again, vec![records[6].summary()], "with its redrive count");
    // A limit of 0 is read as 1.
    let zero = store
        .list_executions(&query(ExecutionsOf::All, None, 0))
        .unwrap();
    assert_eq!(zero.executions.len(), 1);
    // Nothing for a machine or Map Run with no executions.
    assert!(listed(store, query(of_machine("Z"), None, 10)).is_empty());
    let map_run =
        ExecutionsOf::MapRun("arn:aws:states:us-east-1:123456789012:mapRun:M/Map:x".into());
    assert!(listed(store, query(map_run, None, 10)).is_empty());
}

/// The listing's date range and name filters: `started_after` inclusive,
/// `started_before` exclusive, alone, together and with a cursor; a name
/// is a substring; pages follow each other; the summary carries the
/// error name.
pub fn check_listing_dates_and_names(store: &dyn Store) {
    use ExecutionStatus::*;
    let records: Vec<ExecutionRecord> = (0..12)
        .map(|i| {
            let name = if i % 3 == 0 {
                format!("order-{i}")
            } else {
                format!("refund-{i}")
            };
            let status = if i % 4 == 0 { Failed } else { Succeeded };
            started_at(if i % 2 == 0 { "M" } else { "N" }, &name, i * 1000, status)
        })
        .collect();
    for r in &records {
        ok(store, vec![WriteOp::CreateExecution(r.clone())]);
    }
    let expect =
        |machine: Option<&str>, after: Option<i64>, before: Option<i64>, name: Option<&str>| {
            let mut expected: Vec<&ExecutionRecord> = records
                .iter()
                .filter(|r| machine.is_none_or(|m| r.state_machine_arn == machine_arn(m)))
                .filter(|r| after.is_none_or(|a| r.start >= t0() + ms(a)))
                .filter(|r| before.is_none_or(|b| r.start < t0() + ms(b)))
                .filter(|r| name.is_none_or(|n| r.name.contains(n)))
                .collect();
            expected.sort_by(|a, b| b.start.cmp(&a.start).then_with(|| a.arn.cmp(&b.arn)));
            expected.iter().map(|r| r.arn.clone()).collect::<Vec<_>>()
        };
    for limit in [1, 2, 5, 20] {
        for of in [None, Some("M")] {
            for after in [None, Some(3000), Some(3001), Some(20_000)] {
                for before in [None, Some(9000), Some(8999), Some(0)] {
                    for name in [None, Some("order"), Some("fund-1"), Some("none")] {
                        let mut q = query(of.map_or(ExecutionsOf::All, of_machine), None, limit);
                        q.started_after = after.map(|a| t0() + ms(a));
                        q.started_before = before.map(|b| t0() + ms(b));
                        q.name_contains = name.map(str::to_owned);
                        assert_eq!(
                            summary_arns(&listed(store, q)),
                            expect(of, after, before, name),
                            "{of:?} after {after:?} before {before:?} name {name:?}, pages of {limit}"
                        );
                    }
                }
            }
        }
    }
    let failed = listed(store, query(ExecutionsOf::All, Some(Failed), 100));
    assert!(!failed.is_empty());
    for s in &failed {
        assert_eq!(s.error.as_deref(), Some("States.TaskFailed"));
    }
    let succeeded = listed(store, query(ExecutionsOf::All, Some(Succeeded), 100));
    assert!(succeeded.iter().all(|s| s.error.is_none()));
}

/// The dashboard's counts: deltas add up per machine and hour, a total
/// per machine (without durations) adds every hour's, a range read gives
/// only the hours asked for that hold something, in order, and machines
/// are apart (`M` is not a prefix of `MM`).
pub fn check_stats(store: &dyn Store) {
    use crate::stats::{MachineStats, duration_bucket};
    let hour = crate::stats::hour_of(t0());
    let m = machine_arn("M");
    let mm = machine_arn("MM");
    let delta = |machine: &str, hour: i64, stats: MachineStats| {
        WriteOp::AddStats(crate::StatsDelta {
            state_machine: machine.to_owned(),
            hour,
            stats,
        })
    };
    let ended = |status: ExecutionStatus, millis: i64| {
        let mut r = started_at("M", "x", 0, status);
        r.stop = Some(r.start + ms(millis));
        MachineStats::end(&r)
    };
    ok(store, vec![delta(&m, hour, MachineStats::start())]);
    ok(
        store,
        vec![
            delta(&m, hour, MachineStats::start()),
            delta(&mm, hour, MachineStats::start()),
        ],
    );
    ok(store, vec![delta(&m, hour, MachineStats::start())]);
    ok(
        store,
        vec![delta(&m, hour + 1, ended(ExecutionStatus::Succeeded, 40))],
    );
    ok(
        store,
        vec![delta(&m, hour + 1, ended(ExecutionStatus::Failed, 3000))],
    );
    ok(store, vec![delta(&m, hour + 1, MachineStats::redrive())]);
    ok(
        store,
        vec![delta(&m, hour + 5, ended(ExecutionStatus::TimedOut, 40))],
    );

    let buckets = store.stats_hours(&m, hour - 10, hour + 10).unwrap();
    let hours: Vec<i64> = buckets.iter().map(|b| b.hour).collect();
    assert_eq!(hours, vec![hour, hour + 1, hour + 5]);
    assert_eq!(buckets[0].stats.started, 3);
    assert_eq!(buckets[0].stats.ended(), 0);
    let second = &buckets[1].stats;
    assert_eq!(
        (second.succeeded, second.failed, second.redriven),
        (1, 1, 1)
    );
    let mut expected = vec![0u64; duration_bucket(3000) + 1];
    expected[duration_bucket(40)] += 1;
    expected[duration_bucket(3000)] += 1;
    assert_eq!(second.durations, expected);
    assert_eq!(buckets[2].stats.timed_out, 1);

    // Only the hours asked for.
    let later = store.stats_hours(&m, hour + 1, hour + 4).unwrap();
    assert_eq!(
        later.iter().map(|b| b.hour).collect::<Vec<_>>(),
        vec![hour + 1]
    );
    assert!(
        store
            .stats_hours(&m, hour + 6, hour + 200)
            .unwrap()
            .is_empty()
    );

    let total = store.stats_total(&m).unwrap();
    assert_eq!((total.started, total.redriven, total.ended()), (3, 1, 3));
    assert_eq!(total.running(), 1);
    assert!(total.durations.is_empty(), "a total keeps no histogram");

    let other = store.stats_hours(&mm, 0, i64::MAX).unwrap();
    assert_eq!(other.len(), 1);
    assert_eq!(other[0].stats.started, 1);
    assert_eq!(store.stats_total(&mm).unwrap().started, 1);
    assert_eq!(
        store.stats_total(&machine_arn("Z")).unwrap(),
        MachineStats::default()
    );
    assert!(
        store
            .stats_hours(&machine_arn("Z"), 0, i64::MAX)
            .unwrap()
            .is_empty()
    );
}

/// A change of status moves the summary (in the same batch as the start,
/// or later); a redrive moves it back, counted; a delete removes it.
pub fn check_listing_follows_status_changes_and_deletes(store: &dyn Store) {
    use ExecutionStatus::*;
    let slow = started_at("M", "slow", 1, Running);
    let quick = started_at("M", "quick", 2, Running);
    ok(store, start_batch(&slow));
    // Started and ended in one batch (one step).
    ok(
        store,
        vec![
            WriteOp::CreateExecution(quick.clone()),
            WriteOp::UpdateExecution(finished(&quick, Succeeded)),
        ],
    );
    let arns_in = |status: Option<ExecutionStatus>| {
        summary_arns(&listed(store, query(of_machine("M"), status, 10)))
    };
    assert_eq!(arns_in(Some(Running)), vec![slow.arn.clone()]);
    assert_eq!(arns_in(Some(Succeeded)), vec![quick.arn.clone()]);
    assert_eq!(arns_in(None), vec![quick.arn.clone(), slow.arn.clone()]);

    let failed = finished(&slow, Failed);
    ok(store, vec![WriteOp::UpdateExecution(failed.clone())]);
    assert!(arns_in(Some(Running)).is_empty());
    assert_eq!(arns_in(Some(Failed)), vec![slow.arn.clone()]);
    let listed_failed = listed(store, query(of_machine("M"), Some(Failed), 10));
    assert_eq!(
        listed_failed,
        vec![failed.summary()],
        "the stop date and status"
    );

    // Redriven: RUNNING again, counted; the redrive filter sees it.
    let mut redriven = failed.clone();
    redriven.status = Running;
    redriven.stop = None;
    redriven.error = None;
    redriven.cause = None;
    redriven.redrive_count = 1;
    ok(store, vec![WriteOp::UpdateExecution(redriven.clone())]);
    assert!(arns_in(Some(Failed)).is_empty());
    assert_eq!(arns_in(Some(Running)), vec![slow.arn.clone()]);
    let mut q = query(of_machine("M"), None, 10);
    q.redriven = Some(true);
    assert_eq!(
        summary_arns(&listed(store, q.clone())),
        vec![slow.arn.clone()]
    );
    q.redriven = Some(false);
    assert_eq!(summary_arns(&listed(store, q)), vec![quick.arn.clone()]);
    let aborted = finished(&redriven, Aborted);
    ok(store, vec![WriteOp::UpdateExecution(aborted.clone())]);
    assert_eq!(arns_in(Some(Aborted)), vec![slow.arn.clone()]);
    assert!(arns_in(Some(Running)).is_empty());

    // Rewritten as it is (recovery closing an open mark): listed once.
    ok(store, vec![WriteOp::UpdateExecution(aborted.clone())]);
    assert_eq!(arns_in(None), vec![quick.arn.clone(), slow.arn.clone()]);

    ok(store, vec![WriteOp::DeleteExecution(slow.arn.clone())]);
    assert_eq!(arns_in(None), vec![quick.arn.clone()]);
    assert!(listed(store, query(ExecutionsOf::All, Some(Aborted), 10)).is_empty());
    ok(store, vec![WriteOp::DeleteExecution(quick.arn.clone())]);
    assert!(listed(store, query(ExecutionsOf::All, None, 10)).is_empty());
    store.flush().unwrap();
}

/// A cursor is a place in the order, not an offset: executions started
/// after the first page was read do not shift the second.
pub fn check_listing_cursor_is_stable_under_new_starts(store: &dyn Store) {
    for i in 0..6 {
        let r = started_at("M", &format!("old-{i}"), i, ExecutionStatus::Running);
        ok(store, vec![WriteOp::CreateExecution(r)]);
    }
    let first = store
        .list_executions(&query(of_machine("M"), None, 3))
        .unwrap();
    let names: Vec<&str> = first.executions.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["old-5", "old-4", "old-3"]);
    for i in 0..4 {
        let r = started_at("M", &format!("new-{i}"), 100 + i, ExecutionStatus::Running);
        ok(store, vec![WriteOp::CreateExecution(r)]);
    }
    let mut second = query(of_machine("M"), None, 3);
    second.after = first.next;
    let second = listed(store, second);
    let names: Vec<&str> = second.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["old-2", "old-1", "old-0"]);
}

/// A distributed Map's children are listed by their Map Run (and by their
/// own machine, `PARENT/LABEL`), with the Map Run in the summary.
pub fn check_listing_map_run_children(store: &dyn Store) {
    let run_arn = |id: &str| format!("arn:aws:states:us-east-1:123456789012:mapRun:M/Map:{id}");
    let child = |name: &str, run: &str, offset: i64| {
        let mut r = started_at("M/Map", name, offset, ExecutionStatus::Running);
        r.map_run = Some(MapRunChild {
            map_run_arn: run_arn(run),
            machine_arn: machine_arn("M"),
            revision: 1,
            scope: 1,
            express: false,
        });
        r
    };
    let (a1, a2, b1) = (
        child("a1", "a", 1),
        child("a2", "a", 2),
        child("b1", "b", 3),
    );
    let parent = started_at("M", "parent", 0, ExecutionStatus::Running);
    for r in [&parent, &a1, &a2, &b1] {
        ok(store, vec![WriteOp::CreateExecution(r.clone())]);
    }
    let of_run =
        |id: &str, status| listed(store, query(ExecutionsOf::MapRun(run_arn(id)), status, 1));
    assert_eq!(
        summary_arns(&of_run("a", None)),
        vec![a2.arn.clone(), a1.arn.clone()]
    );
    assert_eq!(of_run("a", None)[0].map_run_arn, Some(run_arn("a")));
    assert_eq!(summary_arns(&of_run("b", None)), vec![b1.arn.clone()]);
    // The parent's machine lists the parent only.
    assert_eq!(
        summary_arns(&listed(store, query(of_machine("M"), None, 10))),
        vec![parent.arn.clone()]
    );
    assert_eq!(
        summary_arns(&listed(store, query(of_machine("M/Map"), None, 10))),
        vec![b1.arn.clone(), a2.arn.clone(), a1.arn.clone()]
    );
    ok(
        store,
        vec![WriteOp::UpdateExecution(finished(
            &a1,
            ExecutionStatus::Failed,
        ))],
    );
    assert_eq!(
        summary_arns(&of_run("a", Some(ExecutionStatus::Failed))),
        vec![a1.arn.clone()]
    );
    assert_eq!(
        summary_arns(&of_run("a", Some(ExecutionStatus::Running))),
        vec![a2.arn.clone()]
    );
    ok(store, vec![WriteOp::DeleteExecution(a1.arn.clone())]);
    assert_eq!(summary_arns(&of_run("a", None)), vec![a2.arn.clone()]);
}

pub fn check_open_executions(store: &dyn Store) {
    let e1 = execution("M", "one");
    let e2 = execution("M", "two");
    let e3 = execution("N", "three");
    // Created already finished (an EXPRESS run recorded at its end, say).
    let e4 = finished(&execution("N", "four"), ExecutionStatus::Succeeded);
    assert_eq!(store.open_executions().unwrap(), vec![]);

    ok(
        store,
        vec![
            WriteOp::CreateExecution(e1.clone()),
            WriteOp::CreateExecution(e2.clone()),
            WriteOp::CreateExecution(e3.clone()),
            WriteOp::CreateExecution(e4.clone()),
        ],
    );
    let open = |store: &dyn Store| sorted(arns(&store.open_executions().unwrap()));
    assert_eq!(
        open(store),
        sorted(vec![e1.arn.clone(), e2.arn.clone(), e3.arn.clone()])
    );
    assert_eq!(executions(store, None).len(), 4);

    ok(
        store,
        vec![WriteOp::UpdateExecution(finished(
            &e1,
            ExecutionStatus::Succeeded,
        ))],
    );
    assert_eq!(open(store), sorted(vec![e2.arn.clone(), e3.arn.clone()]));

    // A still-running update (new redrive count, say) keeps it open.
    let mut e2b = e2.clone();
    e2b.redrive_count = 1;
    ok(store, vec![WriteOp::UpdateExecution(e2b.clone())]);
    assert_eq!(open(store), sorted(vec![e2.arn.clone(), e3.arn.clone()]));
    assert!(store.open_executions().unwrap().contains(&e2b));

    ok(
        store,
        vec![
            WriteOp::UpdateExecution(finished(&e2, ExecutionStatus::Failed)),
            WriteOp::UpdateExecution(finished(&e3, ExecutionStatus::Aborted)),
        ],
    );
    assert_eq!(open(store), Vec::<String>::new());

    // Redriven: RUNNING again, so open again; and the open record is the
    // current one.
    let mut again = e1.clone();
    again.redrive_count = 1;
    ok(store, vec![WriteOp::UpdateExecution(again.clone())]);
    assert_eq!(store.open_executions().unwrap(), vec![again]);

    ok(
        store,
        vec![WriteOp::UpdateExecution(finished(
            &e1,
            ExecutionStatus::TimedOut,
        ))],
    );
    assert_eq!(store.open_executions().unwrap(), vec![]);
}

// ---------------------------------------------------------------------------
// Name uniqueness

pub fn check_name_taken_rejects_whole_batch(store: &dyn Store) {
    let first = execution("M", "n");
    ok(store, vec![WriteOp::CreateExecution(first.clone())]);

    // Same state machine, same name (and so the same ARN), other input.
    let mut second = execution("M", "n");
    second.input = r#"{"other": true}"#.to_owned();
    let fresh = execution("M", "fresh");
    let result = apply(
        store,
        vec![
            WriteOp::PutStateMachine(machine("X", 1)),
            WriteOp::CreateExecution(fresh.clone()),
            append_history(&fresh.arn, events(1, 2)),
            append_journal(&fresh.arn, vec![entry(1)]),
            WriteOp::PutTimer(timer(&fresh.arn, 1, t0())),
            WriteOp::PutTaskToken(token("tok", &fresh.arn, 1)),
            WriteOp::UpdateExecution(finished(&first, ExecutionStatus::Aborted)),
            WriteOp::CreateExecution(second),
        ],
    );
    assert_exists_error(result, "M", "n");

    // Nothing of that batch is visible.
    assert_eq!(store.state_machine(&machine_arn("X")).unwrap(), None);
    assert_eq!(store.execution(&fresh.arn).unwrap(), None);
    assert_eq!(
        store.execution_by_name(&machine_arn("M"), "fresh").unwrap(),
        None
    );
    assert_eq!(store.history_len(&fresh.arn).unwrap(), 0);
    assert_eq!(store.history(&fresh.arn, 1, 10).unwrap(), vec![]);
    assert_eq!(store.journal(&fresh.arn).unwrap(), vec![]);
    assert_eq!(store.timers_of(&fresh.arn).unwrap(), vec![]);
    assert_eq!(store.task_token("tok").unwrap(), None);
    assert_eq!(store.execution(&first.arn).unwrap(), Some(first.clone()));
    assert_eq!(
        store.execution_by_name(&machine_arn("M"), "n").unwrap(),
        Some(first.clone())
    );
    assert_eq!(executions(store, None), vec![first.clone()]);
    assert_eq!(store.open_executions().unwrap(), vec![first.clone()]);

    // The name stays taken once the execution has finished.
    ok(
        store,
        vec![WriteOp::UpdateExecution(finished(
            &first,
            ExecutionStatus::Succeeded,
        ))],
    );
    assert_exists_error(
        apply(store, vec![WriteOp::CreateExecution(execution("M", "n"))]),
        "M",
        "n",
    );

    // And the batch without the duplicate goes through.
    ok(store, vec![WriteOp::CreateExecution(fresh.clone())]);
    assert_eq!(store.execution(&fresh.arn).unwrap(), Some(fresh));
}

/// EXPRESS executions started on their own may share a name (AWS runs
/// them side by side); the id in their ARN tells them apart. Their names
/// are not indexed, and deleting one leaves another's name alone.
pub fn check_express_names_are_not_unique(store: &dyn Store) {
    let express = |name: &str, id: &str| ExecutionRecord {
        arn: format!("arn:aws:states:us-east-1:123456789012:express:M:{name}:{id}"),
        ..execution("M", name)
    };
    let (first, second) = (express("run", "id-1"), express("run", "id-2"));
    ok(store, vec![WriteOp::CreateExecution(first.clone())]);
    ok(store, vec![WriteOp::CreateExecution(second.clone())]);
    assert_eq!(store.execution(&first.arn).unwrap(), Some(first.clone()));
    assert_eq!(store.execution(&second.arn).unwrap(), Some(second.clone()));
    assert_eq!(
        store.execution_by_name(&machine_arn("M"), "run").unwrap(),
        None
    );
    // A STANDARD execution of the same name (a machine deleted and made
    // again) keeps its name when the EXPRESS ones go.
    let standard = execution("M", "run");
    ok(store, vec![WriteOp::CreateExecution(standard.clone())]);
    ok(store, vec![WriteOp::DeleteExecution(first.arn.clone())]);
    ok(store, vec![WriteOp::DeleteExecution(second.arn.clone())]);
    assert_eq!(store.execution(&first.arn).unwrap(), None);
    assert_eq!(
        store.execution_by_name(&machine_arn("M"), "run").unwrap(),
        Some(standard)
    );
}

/// A relaxed batch (an EXPRESS execution's writes) reads and writes like
/// any other, and one refused by a check writes nothing either.
pub fn check_relaxed_batch(store: &dyn Store) {
    let relaxed = |ops: Vec<WriteOp>| {
        let mut batch = WriteBatch::relaxed();
        for op in ops {
            batch.push(op);
        }
        store.apply(&batch)
    };
    let first = execution("E", "fast");
    relaxed(vec![WriteOp::CreateExecution(first.clone())]).unwrap();
    assert_eq!(store.execution(&first.arn).unwrap(), Some(first.clone()));
    assert_eq!(
        store.execution_by_name(&machine_arn("E"), "fast").unwrap(),
        Some(first.clone())
    );
    assert_eq!(store.open_executions().unwrap(), vec![first.clone()]);

    let other = execution("E", "other");
    let result = relaxed(vec![
        WriteOp::CreateExecution(other.clone()),
        WriteOp::CreateExecution(execution("E", "fast")),
    ]);
    assert_exists_error(result, "E", "fast");
    assert_eq!(store.execution(&other.arn).unwrap(), None);

    let done = finished(&first, ExecutionStatus::Succeeded);
    relaxed(vec![
        WriteOp::UpdateExecution(done.clone()),
        WriteOp::PutEndedNotice(first.arn.clone()),
    ])
    .unwrap();
    assert_eq!(store.execution(&first.arn).unwrap(), Some(done));
    assert_eq!(store.open_executions().unwrap(), vec![]);
    assert_eq!(store.ended_notices().unwrap(), vec![first.arn.clone()]);
}

pub fn check_name_twice_in_one_batch(store: &dyn Store) {
    let dup = execution("M", "dup");
    let mut dup_again = dup.clone();
    dup_again.seed = 7;
    let other = execution("M", "other");
    let result = apply(
        store,
        vec![
            WriteOp::CreateExecution(dup.clone()),
            WriteOp::CreateExecution(other.clone()),
            WriteOp::CreateExecution(dup_again),
        ],
    );
    assert_exists_error(result, "M", "dup");
    assert_eq!(store.execution(&dup.arn).unwrap(), None);
    assert_eq!(store.execution(&other.arn).unwrap(), None);
    assert_eq!(
        store.execution_by_name(&machine_arn("M"), "dup").unwrap(),
        None
    );
    assert_eq!(executions(store, None), vec![]);
    assert_eq!(store.open_executions().unwrap(), vec![]);

    // Nothing was reserved by the failed batch.
    ok(store, vec![WriteOp::CreateExecution(dup.clone())]);
    assert_eq!(
        store.execution_by_name(&machine_arn("M"), "dup").unwrap(),
        Some(dup)
    );
}

pub fn check_same_name_other_machine(store: &dyn Store) {
    let m = execution("M", "nightly");
    let n = execution("N", "nightly");
    // A machine whose ARN extends M's must not share M's names either.
    let mm = execution("MM", "nightly");
    ok(store, vec![WriteOp::CreateExecution(m.clone())]);
    ok(
        store,
        vec![
            WriteOp::CreateExecution(n.clone()),
            WriteOp::CreateExecution(mm.clone()),
        ],
    );
    assert_eq!(
        store
            .execution_by_name(&machine_arn("M"), "nightly")
            .unwrap(),
        Some(m.clone())
    );
    assert_eq!(
        store
            .execution_by_name(&machine_arn("N"), "nightly")
            .unwrap(),
        Some(n.clone())
    );
    assert_eq!(
        store
            .execution_by_name(&machine_arn("MM"), "nightly")
            .unwrap(),
        Some(mm.clone())
    );
    assert_eq!(executions(store, Some(&machine_arn("M"))), vec![m]);
    assert_eq!(executions(store, Some(&machine_arn("MM"))), vec![mm]);
    assert_eq!(executions(store, None).len(), 3);
}

// ---------------------------------------------------------------------------
// Journal

pub fn check_journal(store: &dyn Store) {
    let e = execution_arn("M", "run");
    let other = execution_arn("M", "run2");
    assert_eq!(store.journal(&e).unwrap(), vec![]);

    ok(store, vec![append_journal(&e, vec![entry(1), entry(2)])]);
    ok(
        store,
        vec![
            append_journal(&other, vec![entry(1)]),
            append_journal(&e, vec![entry(3)]),
        ],
    );
    // Past 255, so that a byte-wise key order is checked too.
    ok(
        store,
        vec![append_journal(&e, (4..=300).map(entry).collect())],
    );

    let journal = store.journal(&e).unwrap();
    assert_eq!(journal.len(), 300);
    assert_eq!(journal, (1..=300).map(entry).collect::<Vec<_>>());
    assert_eq!(store.journal(&other).unwrap(), vec![entry(1)]);
    assert_eq!(store.journal(&execution_arn("M", "none")).unwrap(), vec![]);
}

/// Journal pages: after a seq, at most a limit; walking them gives the
/// whole journal, and the whole read crosses pages of `READ_PAGE`.
pub fn check_journal_pages(store: &dyn Store) {
    let e = execution_arn("M", "run");
    let other = execution_arn("M", "run2");
    ok(
        store,
        vec![append_journal(&e, (1..=3).map(entry).collect())],
    );
    ok(
        store,
        vec![
            append_journal(&other, vec![entry(1)]),
            append_journal(&e, (4..=300).map(entry).collect()),
        ],
    );
    let seqs = |page: Vec<JournalEntry>| page.iter().map(|e| e.seq).collect::<Vec<_>>();
    assert_eq!(seqs(store.journal_page(&e, 0, 1).unwrap()), [1]);
    // A limit of 0 is read as 1.
    assert_eq!(seqs(store.journal_page(&e, 0, 0).unwrap()), [1]);
    assert_eq!(
        store.journal_page(&e, 2, 3).unwrap(),
        (3..=5).map(entry).collect::<Vec<_>>()
    );
    assert_eq!(
        seqs(store.journal_page(&e, 254, 4).unwrap()),
        [255, 256, 257, 258]
    );
    assert_eq!(seqs(store.journal_page(&e, 298, 10).unwrap()), [299, 300]);
    assert_eq!(store.journal_page(&e, 300, 10).unwrap(), vec![]);
    assert_eq!(store.journal_page(&e, u64::MAX, 10).unwrap(), vec![]);
    assert_eq!(store.journal_page(&other, 0, 10).unwrap(), vec![entry(1)]);
    assert_eq!(
        store
            .journal_page(&execution_arn("M", "none"), 0, 10)
            .unwrap(),
        vec![]
    );
    for size in [1, 7, 100, 299, 300, 1000] {
        let mut walked = Vec::new();
        loop {
            let after = walked.last().map_or(0, |e: &JournalEntry| e.seq);
            let page = store.journal_page(&e, after, size).unwrap();
            assert!(page.len() <= size);
            let done = page.len() < size;
            walked.extend(page);
            if done {
                break;
            }
        }
        assert_eq!(
            walked,
            (1..=300).map(entry).collect::<Vec<_>>(),
            "pages of {size}"
        );
    }
    // Exactly two whole-read pages: the second is full, the third empty.
    let long = execution_arn("M", "long");
    let count = 2 * super::READ_PAGE as u64;
    ok(
        store,
        vec![append_journal(&long, (1..=count).map(entry).collect())],
    );
    assert_eq!(
        store.journal(&long).unwrap(),
        (1..=count).map(entry).collect::<Vec<_>>()
    );
}

// ---------------------------------------------------------------------------
// History

pub fn check_history_append(store: &dyn Store) {
    let e = execution_arn("M", "run");
    assert_eq!(store.history_len(&e).unwrap(), 0);
    assert_eq!(store.history(&e, 1, 100).unwrap(), vec![]);

    ok(store, vec![append_history(&e, events(1, 3))]);
    assert_eq!(store.history_len(&e).unwrap(), 3);
    ok(store, vec![append_history(&e, events(4, 4))]);
    // Two appends to one history in one batch continue each other.
    ok(
        store,
        vec![
            append_history(&e, events(5, 6)),
            append_history(&e, events(7, 7)),
        ],
    );
    // An empty append is harmless.
    ok(store, vec![append_history(&e, vec![])]);

    assert_eq!(store.history_len(&e).unwrap(), 7);
    assert_eq!(store.history(&e, 1, 7).unwrap(), events(1, 7));
    // Any window, starting and ending inside or between appends.
    for from in 1..=8 {
        for to in from..=8 {
            let expected = if from > 7 {
                vec![]
            } else {
                events(from, to.min(7))
            };
            assert_eq!(
                store.history(&e, from, to).unwrap(),
                expected,
                "{from}..={to}"
            );
        }
    }

    // Histories are per execution, even when one ARN extends the other.
    let other = execution_arn("M", "run2");
    assert_eq!(store.history_len(&other).unwrap(), 0);
    ok(store, vec![append_history(&other, events(1, 2))]);
    assert_eq!(store.history_len(&other).unwrap(), 2);
    assert_eq!(store.history(&other, 1, 100).unwrap(), events(1, 2));
    assert_eq!(store.history(&e, 1, 100).unwrap(), events(1, 7));
}

pub fn check_history_gap(store: &dyn Store) {
    let e = execution_arn("M", "run");
    let fresh = execution("M", "fresh");
    ok(store, vec![append_history(&e, events(1, 3))]);

    // Skips id 4; the operations before it must not be applied.
    let result = apply(
        store,
        vec![
            WriteOp::PutTaskToken(token("tok", &e, 1)),
            WriteOp::PutTimer(timer(&e, 1, t0())),
            WriteOp::CreateExecution(fresh.clone()),
            append_journal(&e, vec![entry(1)]),
            append_history(&execution_arn("M", "other"), events(1, 1)),
            append_history(&e, events(5, 5)),
        ],
    );
    assert_gap_error(result, &e, 4, 5);
    assert_eq!(store.task_token("tok").unwrap(), None);
    assert_eq!(store.timers_of(&e).unwrap(), vec![]);
    assert_eq!(store.execution(&fresh.arn).unwrap(), None);
    assert_eq!(
        store.execution_by_name(&machine_arn("M"), "fresh").unwrap(),
        None
    );
    assert_eq!(store.journal(&e).unwrap(), vec![]);
    assert_eq!(store.history_len(&execution_arn("M", "other")).unwrap(), 0);
    assert_eq!(store.history_len(&e).unwrap(), 3);
    assert_eq!(store.history(&e, 1, 100).unwrap(), events(1, 3));

    // Repeats id 3.
    assert_gap_error(
        apply(store, vec![append_history(&e, events(3, 4))]),
        &e,
        4,
        3,
    );
    // A gap inside the batch: 4 is fine, 6 is not, and 4 is not kept.
    assert_gap_error(
        apply(store, vec![append_history(&e, vec![event(4), event(6)])]),
        &e,
        5,
        6,
    );
    // The second of two appends in one batch repeats the first.
    assert_gap_error(
        apply(
            store,
            vec![
                append_history(&e, events(4, 4)),
                append_history(&e, events(4, 4)),
            ],
        ),
        &e,
        5,
        4,
    );
    // A new history starts at 1.
    let new = execution_arn("M", "new");
    assert_gap_error(
        apply(store, vec![append_history(&new, events(2, 3))]),
        &new,
        1,
        2,
    );
    assert_eq!(store.history_len(&new).unwrap(), 0);

    assert_eq!(store.history_len(&e).unwrap(), 3);
    assert_eq!(store.history(&e, 1, 100).unwrap(), events(1, 3));

    // After all those failures the right next event still goes in.
    ok(store, vec![append_history(&e, events(4, 5))]);
    assert_eq!(store.history(&e, 1, 100).unwrap(), events(1, 5));
}

pub fn check_history_range(store: &dyn Store) {
    let e = execution_arn("M", "run");
    ok(store, vec![append_history(&e, events(1, 10))]);
    assert_eq!(store.history_len(&e).unwrap(), 10);

    assert_eq!(ids(&store.history(&e, 3, 5).unwrap()), vec![3, 4, 5]);
    assert_eq!(store.history(&e, 3, 5).unwrap(), events(3, 5));
    assert_eq!(ids(&store.history(&e, 1, 1).unwrap()), vec![1]);
    assert_eq!(ids(&store.history(&e, 10, 10).unwrap()), vec![10]);
    assert_eq!(store.history(&e, 1, 10).unwrap(), events(1, 10));
    // Past the end: what there is.
    assert_eq!(ids(&store.history(&e, 8, 20).unwrap()), vec![8, 9, 10]);
    assert_eq!(store.history(&e, 1, u64::MAX).unwrap(), events(1, 10));
    // Ids start at 1: from 0 is the same as from 1.
    assert_eq!(ids(&store.history(&e, 0, 2).unwrap()), vec![1, 2]);
    // Empty ranges.
    assert_eq!(store.history(&e, 11, 20).unwrap(), vec![]);
    assert_eq!(store.history(&e, 5, 4).unwrap(), vec![]);
    assert_eq!(store.history(&e, u64::MAX, u64::MAX).unwrap(), vec![]);
    assert_eq!(
        store.history(&execution_arn("M", "none"), 1, 10).unwrap(),
        vec![]
    );

    // Past 255 events: ranges across a byte boundary of the id.
    ok(store, vec![append_history(&e, events(11, 300))]);
    assert_eq!(store.history_len(&e).unwrap(), 300);
    assert_eq!(store.history(&e, 250, 260).unwrap(), events(250, 260));
    assert_eq!(
        ids(&store.history(&e, 255, 257).unwrap()),
        vec![255, 256, 257]
    );
    assert_eq!(store.history(&e, 1, 300).unwrap(), events(1, 300));
}

/// History pages cut through the runs of events appended together, and
/// walking them in pages of any size gives the whole history.
pub fn check_history_pages(store: &dyn Store) {
    let e = execution_arn("M", "run");
    for (from, to) in [(1, 3), (4, 4), (5, 9), (10, 300)] {
        ok(store, vec![append_history(&e, events(from, to))]);
    }
    assert_eq!(ids(&store.history_page(&e, 0, 1).unwrap()), [1]);
    assert_eq!(ids(&store.history_page(&e, 0, 0).unwrap()), [1]);
    // Across the runs 1..=3, 4 and 5..=9.
    assert_eq!(store.history_page(&e, 2, 4).unwrap(), events(3, 6));
    assert_eq!(ids(&store.history_page(&e, 8, 3).unwrap()), [9, 10, 11]);
    assert_eq!(ids(&store.history_page(&e, 298, 10).unwrap()), [299, 300]);
    assert_eq!(store.history_page(&e, 300, 10).unwrap(), vec![]);
    assert_eq!(store.history_page(&e, u64::MAX, 10).unwrap(), vec![]);
    assert_eq!(
        store
            .history_page(&execution_arn("M", "none"), 0, 10)
            .unwrap(),
        vec![]
    );
    for size in [1, 2, 3, 5, 64, 300, 1000] {
        let mut walked: Vec<HistoryEvent> = Vec::new();
        loop {
            let after = walked.last().map_or(0, |e| e.id);
            let page = store.history_page(&e, after, size).unwrap();
            assert!(page.len() <= size);
            let done = page.len() < size;
            walked.extend(page);
            if done {
                break;
            }
        }
        assert_eq!(walked, events(1, 300), "pages of {size}");
    }
    // The whole-read helper, past one page of `READ_PAGE`.
    let long = execution_arn("M", "long");
    let count = super::READ_PAGE as u64 + 1;
    ok(store, vec![append_history(&long, events(1, count))]);
    assert_eq!(store.history(&long, 1, u64::MAX).unwrap(), events(1, count));
    assert_eq!(store.history(&long, 999, 1001).unwrap(), events(999, 1001));
}

// ---------------------------------------------------------------------------
// Timers

pub fn check_timers_far_past_and_future(store: &dyn Store) {
    let e = execution_arn("M", "run");
    let times = [
        "1900-01-01T00:00:00.000Z",
        "1969-12-31T23:59:59.000Z",
        "1969-12-31T23:59:59.999Z",
        "1970-01-01T00:00:00.000Z",
        "1970-01-01T00:00:00.001Z",
        "2026-01-01T00:00:00.000Z",
        "2500-06-30T12:00:00.000Z",
        "9999-12-31T23:59:59.999Z",
    ];
    let timers: Vec<TimerRecord> = times
        .iter()
        .enumerate()
        .map(|(i, t)| timer(&e, i as u64 + 1, at(t)))
        .collect();
    // Put in reverse order; read by timer id, each due time as put.
    ok(
        store,
        timers
            .iter()
            .rev()
            .cloned()
            .map(WriteOp::PutTimer)
            .collect(),
    );
    assert_eq!(store.timers_of(&e).unwrap(), timers);
}

pub fn check_timers_of(store: &dyn Store) {
    let e1 = execution_arn("M", "run");
    // Its ARN extends e1's: its timers are not e1's.
    let e2 = execution_arn("M", "run2");
    let a = timer(&e1, 1, t0() + ms(5_000));
    let b = timer(&e1, 2, t0() + ms(1_000));
    // Past 255: the order by id is checked byte-wise too.
    let c = timer(&e1, 300, t0() + ms(2_000));
    let d = timer(&e2, 1, t0() + ms(1_000));
    ok(
        store,
        vec![
            WriteOp::PutTimer(c.clone()),
            WriteOp::PutTimer(d.clone()),
            WriteOp::PutTimer(b.clone()),
        ],
    );
    ok(store, vec![WriteOp::PutTimer(a.clone())]);

    // By timer id, whatever the due times.
    assert_eq!(
        store.timers_of(&e1).unwrap(),
        vec![a.clone(), b.clone(), c.clone()]
    );
    assert_eq!(store.timers_of(&e2).unwrap(), vec![d.clone()]);
    assert_eq!(
        store.timers_of(&execution_arn("M", "none")).unwrap(),
        vec![]
    );
    // Pages by timer id.
    assert_eq!(store.timers_page(&e1, 0, 1).unwrap(), vec![a.clone()]);
    assert_eq!(store.timers_page(&e1, 1, 0).unwrap(), vec![b.clone()]);
    assert_eq!(store.timers_page(&e1, 2, 10).unwrap(), vec![c.clone()]);
    assert_eq!(store.timers_page(&e1, 300, 10).unwrap(), vec![]);
    assert_eq!(store.timers_page(&e1, u64::MAX, 10).unwrap(), vec![]);

    // Removing one leaves the others.
    ok(store, vec![WriteOp::RemoveTimer(c.clone())]);
    assert_eq!(store.timers_of(&e1).unwrap(), vec![a.clone(), b.clone()]);
    // Removing a timer that is not there is harmless.
    ok(store, vec![WriteOp::RemoveTimer(c)]);
    ok(store, vec![WriteOp::RemoveTimer(timer(&e1, 9, t0()))]);
    assert_eq!(store.timers_of(&e1).unwrap(), vec![a.clone(), b.clone()]);

    ok(
        store,
        vec![WriteOp::RemoveTimer(a), WriteOp::RemoveTimer(b)],
    );
    assert_eq!(store.timers_of(&e1).unwrap(), vec![]);
    assert_eq!(store.timers_of(&e2).unwrap(), vec![d]);
}

/// A timer is its execution and id: put again with another due time (a
/// restarted heartbeat, say) it replaces the first, and a removal by id
/// removes it whatever due time it names.
pub fn check_timer_put_again_replaces_it(store: &dyn Store) {
    let e = execution_arn("M", "run");
    let first = timer(&e, 1, t0() + ms(1_000));
    let moved = timer(&e, 1, t0() + ms(2_000));
    ok(store, vec![WriteOp::PutTimer(first.clone())]);
    assert_eq!(store.timers_of(&e).unwrap(), vec![first.clone()]);
    ok(store, vec![WriteOp::PutTimer(moved.clone())]);
    assert_eq!(store.timers_of(&e).unwrap(), vec![moved]);
    ok(store, vec![WriteOp::RemoveTimer(first)]);
    assert_eq!(store.timers_of(&e).unwrap(), vec![]);
}

// ---------------------------------------------------------------------------
// Task tokens

pub fn check_delete_execution(store: &dyn Store) {
    let gone = execution("m", "gone");
    let kept = execution("m", "kept");
    for record in [&gone, &kept] {
        ok(store, start_batch(record));
        ok(
            store,
            vec![
                append_journal(&record.arn, vec![entry(2)]),
                append_history(&record.arn, events(5, 6)),
                WriteOp::PutTimer(timer(&record.arn, 2, t0())),
                WriteOp::UpdateExecution(finished(record, ExecutionStatus::Failed)),
                WriteOp::RemoveTaskToken(format!("token-{}", record.name)),
            ],
        );
    }
    ok(store, vec![WriteOp::DeleteExecution(gone.arn.clone())]);
    assert_eq!(store.execution(&gone.arn).unwrap(), None);
    assert_eq!(
        store
            .execution_by_name(&gone.state_machine_arn, "gone")
            .unwrap(),
        None
    );
    assert!(store.journal(&gone.arn).unwrap().is_empty());
    assert_eq!(store.history_len(&gone.arn).unwrap(), 0);
    assert!(store.timers_of(&gone.arn).unwrap().is_empty());
    // The other execution is untouched, and the name can be used again.
    assert_eq!(store.journal(&kept.arn).unwrap().len(), 2);
    assert_eq!(store.history_len(&kept.arn).unwrap(), 6);
    assert_eq!(store.timers_of(&kept.arn).unwrap().len(), 2);
    ok(store, start_batch(&gone));
    assert_started(store, &gone);
}

fn cache_entry(key: &str, output: serde_json::Value) -> CacheEntryRecord {
    CacheEntryRecord {
        key: key.to_owned(),
        resource: "arn:aws:states:::http:invoke".into(),
        output,
        execution_arn: execution_arn("m", "first"),
        state_name: "Fetch".into(),
        stored: t0(),
        expires: t0() + Duration::hours(1),
    }
}

/// Cache entries: put, read by key, replaced, paged in key order,
/// removed; a large output survives the round trip; an entry is written
/// atomically with the step it came from (a batch refused for another
/// reason leaves no entry).
pub fn check_task_cache(store: &dyn Store) {
    assert_eq!(store.cache_entry("k1").unwrap(), None);
    let large: String = "x".repeat(200_000);
    ok(
        store,
        vec![
            WriteOp::PutCacheEntry(cache_entry("k2", json!({"n": 2}))),
            WriteOp::PutCacheEntry(cache_entry("k1", json!({"n": 1}))),
            WriteOp::PutCacheEntry(cache_entry("k3", json!({"big": large}))),
        ],
    );
    assert_eq!(
        store.cache_entry("k1").unwrap(),
        Some(cache_entry("k1", json!({"n": 1})))
    );
    assert_eq!(
        store.cache_entry("k3").unwrap().unwrap().output["big"]
            .as_str()
            .unwrap()
            .len(),
        200_000
    );
    let mut replaced = cache_entry("k1", json!({"n": 10}));
    replaced.expires = t0() + Duration::hours(2);
    ok(store, vec![WriteOp::PutCacheEntry(replaced.clone())]);
    assert_eq!(store.cache_entry("k1").unwrap(), Some(replaced));
    let keys = |after: &str, limit: usize| -> Vec<String> {
        store
            .cache_entries_page(after, limit)
            .unwrap()
            .into_iter()
            .map(|e| e.key)
            .collect()
    };
    assert_eq!(keys("", 10), ["k1", "k2", "k3"]);
    assert_eq!(keys("", 2), ["k1", "k2"]);
    assert_eq!(keys("k2", 2), ["k3"]);
    ok(store, vec![WriteOp::RemoveCacheEntry("k2".into())]);
    assert_eq!(keys("", 10), ["k1", "k3"]);
    // Refused with its step: a taken name fails the whole batch.
    let taken = execution("m", "taken");
    ok(store, start_batch(&taken));
    let mut refused = start_batch(&taken);
    refused.push(WriteOp::PutCacheEntry(cache_entry("k4", json!(4))));
    assert!(apply(store, refused).is_err());
    assert_eq!(store.cache_entry("k4").unwrap(), None);
}

fn lineage(path: &str, execution: &str, kind: LineageKind) -> LineageRecord {
    LineageRecord {
        path: path.to_owned(),
        execution_arn: execution_arn("m", execution),
        kind,
        via: "task".into(),
        state_name: Some("Work".into()),
        time: t0(),
    }
}

/// Lineage: records by path (by execution, then kind) and by execution
/// (by kind, then path); one record per path, execution and kind; deleted
/// with their execution, and only theirs.
pub fn check_lineage(store: &dyn Store) {
    let path = "/data/out/orders.csv";
    for name in ["writer", "reader"] {
        ok(store, start_batch(&execution("m", name)));
    }
    ok(
        store,
        vec![
            WriteOp::PutLineage(lineage(path, "writer", LineageKind::Wrote)),
            WriteOp::PutLineage(lineage("/data/in/raw.csv", "writer", LineageKind::Read)),
            WriteOp::PutLineage(lineage(path, "reader", LineageKind::Read)),
            WriteOp::PutLineage(lineage(path, "reader", LineageKind::Read)),
            WriteOp::PutLineage(lineage(
                "/data/out/orders.csv.bak",
                "reader",
                LineageKind::Wrote,
            )),
        ],
    );
    let of_path = store.lineage_of_path(path, 100).unwrap();
    assert_eq!(
        of_path,
        vec![
            lineage(path, "reader", LineageKind::Read),
            lineage(path, "writer", LineageKind::Wrote),
        ]
    );
    assert_eq!(store.lineage_of_path(path, 1).unwrap().len(), 1);
    assert!(store.lineage_of_path("/data/out", 100).unwrap().is_empty());
    assert_eq!(
        store
            .lineage_of_execution(&execution_arn("m", "writer"), 100)
            .unwrap(),
        vec![
            lineage("/data/in/raw.csv", "writer", LineageKind::Read),
            lineage(path, "writer", LineageKind::Wrote),
        ]
    );
    ok(
        store,
        vec![WriteOp::DeleteExecution(execution_arn("m", "writer"))],
    );
    assert!(
        store
            .lineage_of_execution(&execution_arn("m", "writer"), 100)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.lineage_of_path(path, 100).unwrap(),
        vec![lineage(path, "reader", LineageKind::Read)]
    );
    assert!(
        store
            .lineage_of_path("/data/in/raw.csv", 100)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .lineage_of_execution(&execution_arn("m", "reader"), 100)
            .unwrap()
            .len(),
        2
    );
}

fn task_log(execution: &str, attempt: u32) -> TaskLogRecord {
    TaskLogRecord {
        execution: execution.to_owned(),
        seq: 0,
        state_name: "Work".into(),
        task: 3,
        attempt,
        time: t0() + ms(i64::from(attempt)),
        error: (attempt % 2 == 1).then(|| "States.TaskFailed".to_owned()),
        stderr: format!("attempt {attempt}\n"),
        stdout: Some("partial".into()),
        truncated: attempt == 2,
    }
}

/// Task logs get sequence numbers per execution, keep only the last
/// `keep`, and go with their execution.
pub fn check_task_logs(store: &dyn Store) {
    let a = execution("m", "logs-a");
    let b = execution("m", "logs-b");
    ok(store, start_batch(&a));
    ok(store, start_batch(&b));
    assert!(store.task_logs(&a.arn).unwrap().is_empty());
    for attempt in 1..=5 {
        ok(
            store,
            vec![WriteOp::PutTaskLog {
                record: task_log(&a.arn, attempt),
                keep: 3,
            }],
        );
    }
    ok(
        store,
        vec![WriteOp::PutTaskLog {
            record: task_log(&b.arn, 1),
            keep: 3,
        }],
    );
    let logs = store.task_logs(&a.arn).unwrap();
    let seqs: Vec<u64> = logs.iter().map(|l| l.seq).collect();
    assert_eq!(seqs, [3, 4, 5]);
    let mut expected = task_log(&a.arn, 4);
    expected.seq = 4;
    assert_eq!(logs[1], expected);
    assert_eq!(store.task_logs(&b.arn).unwrap().len(), 1);
    assert_eq!(store.task_logs(&b.arn).unwrap()[0].seq, 1);
    // Pages by seq.
    let page_seqs = |after, limit| {
        let page = store.task_logs_page(&a.arn, after, limit).unwrap();
        page.iter().map(|l| l.seq).collect::<Vec<u64>>()
    };
    assert_eq!(page_seqs(0, 1), [3]);
    assert_eq!(page_seqs(3, 0), [4]);
    assert_eq!(page_seqs(3, 10), [4, 5]);
    assert_eq!(page_seqs(5, 10), Vec::<u64>::new());
    assert_eq!(page_seqs(u64::MAX, 10), Vec::<u64>::new());
    ok(store, vec![WriteOp::DeleteExecution(a.arn.clone())]);
    assert!(store.task_logs(&a.arn).unwrap().is_empty());
    assert_eq!(store.task_logs(&b.arn).unwrap().len(), 1);
    // A new execution of the same name starts its numbers again.
    ok(store, start_batch(&a));
    ok(
        store,
        vec![WriteOp::PutTaskLog {
            record: task_log(&a.arn, 1),
            keep: 3,
        }],
    );
    assert_eq!(store.task_logs(&a.arn).unwrap()[0].seq, 1);
}

/// Ended notices are kept until removed, and go with their execution.
pub fn check_ended_notices(store: &dyn Store) {
    let a = execution("m", "notice-a");
    let b = execution("m", "notice-b");
    ok(store, start_batch(&a));
    ok(store, start_batch(&b));
    assert!(store.ended_notices().unwrap().is_empty());
    ok(
        store,
        vec![
            WriteOp::UpdateExecution(finished(&a, ExecutionStatus::Failed)),
            WriteOp::PutEndedNotice(a.arn.clone()),
        ],
    );
    ok(store, vec![WriteOp::PutEndedNotice(b.arn.clone())]);
    assert_eq!(
        store.ended_notices().unwrap(),
        sorted(vec![a.arn.clone(), b.arn.clone()])
    );
    ok(store, vec![WriteOp::RemoveEndedNotice(b.arn.clone())]);
    ok(store, vec![WriteOp::RemoveEndedNotice(b.arn.clone())]);
    assert_eq!(store.ended_notices().unwrap(), vec![a.arn.clone()]);
    ok(store, vec![WriteOp::DeleteExecution(a.arn.clone())]);
    assert!(store.ended_notices().unwrap().is_empty());
}

pub fn check_map_runs(store: &dyn Store) {
    let parent = execution("m", "parent");
    let other = execution("m", "other");
    let run = |execution: &str, id: &str| crate::MapRunRecord {
        map_run_arn: format!("arn:aws:states:us-east-1:111111111111:mapRun:m/Map:{id}"),
        execution_arn: execution.to_owned(),
        status: "RUNNING".into(),
        start: t0(),
        stop: None,
        max_concurrency: 10,
        tolerated_failure_percentage: None,
        tolerated_failure_count: Some(2),
        items: Default::default(),
        executions: Default::default(),
    };
    let (a, b, c) = (
        run(&parent.arn, "a"),
        run(&parent.arn, "b"),
        run(&other.arn, "c"),
    );
    for record in [&parent, &other] {
        ok(store, start_batch(record));
    }
    ok(
        store,
        vec![
            WriteOp::PutMapRun(b.clone()),
            WriteOp::PutMapRun(a.clone()),
            WriteOp::PutMapRun(c.clone()),
        ],
    );
    let mut done = a.clone();
    done.status = "SUCCEEDED".into();
    done.items.succeeded = 7;
    ok(store, vec![WriteOp::PutMapRun(done.clone())]);
    assert_eq!(store.map_run(&a.map_run_arn).unwrap(), Some(done.clone()));
    assert_eq!(store.map_runs(&parent.arn).unwrap(), vec![done, b.clone()]);
    assert_eq!(store.map_runs(&other.arn).unwrap(), vec![c.clone()]);
    assert_eq!(store.map_run("arn:nope").unwrap(), None);
    // Deleting an execution deletes its Map Runs, not another's.
    ok(
        store,
        vec![WriteOp::UpdateExecution(finished(
            &parent,
            ExecutionStatus::Succeeded,
        ))],
    );
    ok(store, vec![WriteOp::DeleteExecution(parent.arn.clone())]);
    assert!(store.map_runs(&parent.arn).unwrap().is_empty());
    assert_eq!(store.map_run(&b.map_run_arn).unwrap(), None);
    assert_eq!(store.map_run(&c.map_run_arn).unwrap(), Some(c));
}

pub fn check_revisions_outlive_updates_and_deletes(store: &dyn Store) {
    let first = machine("kept", 1);
    let mut second = machine("kept", 2);
    second.definition = "{\"second\": true}".into();
    ok(store, vec![WriteOp::PutStateMachine(first.clone())]);
    ok(store, vec![WriteOp::PutStateMachine(second.clone())]);
    assert_eq!(
        store.state_machine(&first.arn).unwrap(),
        Some(second.clone())
    );
    assert_eq!(
        store.state_machine_revision(&first.arn, 1).unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        store.state_machine_revision(&first.arn, 2).unwrap(),
        Some(second.clone())
    );
    assert_eq!(store.state_machine_revision(&first.arn, 3).unwrap(), None);
    ok(store, vec![WriteOp::DeleteStateMachine(first.arn.clone())]);
    assert_eq!(store.state_machine(&first.arn).unwrap(), None);
    assert_eq!(
        store.state_machine_revision(&first.arn, 1).unwrap(),
        Some(first)
    );
}

pub fn check_activities(store: &dyn Store) {
    let activity = |name: &str| ActivityRecord {
        arn: format!("arn:aws:states:us-east-1:123456789012:activity:{name}"),
        name: name.to_owned(),
        created: t0(),
        tags: [("team".to_owned(), "data".to_owned())].into(),
    };
    assert_eq!(store.activities().unwrap(), vec![]);
    ok(
        store,
        vec![
            WriteOp::PutActivity(activity("b")),
            WriteOp::PutActivity(activity("a")),
        ],
    );
    assert_eq!(
        store.activities().unwrap(),
        vec![activity("a"), activity("b")]
    );
    assert_eq!(
        store.activity(&activity("b").arn).unwrap(),
        Some(activity("b"))
    );
    ok(store, vec![WriteOp::DeleteActivity(activity("a").arn)]);
    assert_eq!(store.activities().unwrap(), vec![activity("b")]);
    assert_eq!(store.activity(&activity("a").arn).unwrap(), None);
}

pub fn check_task_tokens(store: &dyn Store) {
    let e = execution_arn("M", "run");
    assert_eq!(store.task_token("t1").unwrap(), None);
    ok(
        store,
        vec![
            WriteOp::PutTaskToken(token("t1", &e, 1)),
            WriteOp::PutTaskToken(token("t2", &e, 2)),
        ],
    );
    assert_eq!(store.task_token("t1").unwrap(), Some(token("t1", &e, 1)));
    assert_eq!(store.task_token("t2").unwrap(), Some(token("t2", &e, 2)));
    assert_eq!(store.task_token("t").unwrap(), None);

    ok(store, vec![WriteOp::PutTaskToken(token("t1", &e, 3))]);
    assert_eq!(store.task_token("t1").unwrap(), Some(token("t1", &e, 3)));

    ok(store, vec![WriteOp::RemoveTaskToken("t1".to_owned())]);
    assert_eq!(store.task_token("t1").unwrap(), None);
    assert_eq!(store.task_token("t2").unwrap(), Some(token("t2", &e, 2)));
    // Removing an unknown token is harmless.
    ok(store, vec![WriteOp::RemoveTaskToken("t1".to_owned())]);
    assert_eq!(store.task_token("t2").unwrap(), Some(token("t2", &e, 2)));
}

/// Tokens page in byte order, past the token given.
pub fn check_task_tokens_pages(store: &dyn Store) {
    let e = execution_arn("M", "run");
    let names = ["b", "a", "t2", "t10", "T", "t1"];
    ok(
        store,
        (1..)
            .zip(names)
            .map(|(task, name)| WriteOp::PutTaskToken(token(name, &e, task)))
            .collect(),
    );
    let page = |after: &str, limit: usize| -> Vec<String> {
        store
            .task_tokens_page(after, limit)
            .unwrap()
            .into_iter()
            .map(|t| t.token)
            .collect()
    };
    assert_eq!(page("", 2), ["T", "a"]);
    assert_eq!(page("a", 3), ["b", "t1", "t10"]);
    assert_eq!(page("t10", 10), ["t2"]);
    assert_eq!(page("t2", 10), Vec::<String>::new());
    assert_eq!(page("", 0), ["T"]);
    assert_eq!(store.task_tokens_page("a", 1).unwrap(), [token("b", &e, 1)]);
}

// ---------------------------------------------------------------------------
// Triggers

fn trigger(name: &str, enabled: bool) -> TriggerRecord {
    TriggerRecord {
        name: name.to_owned(),
        spec: json!({"kind": "schedule", "state_machine": "M", "schedule": "rate(5 minutes)"}),
        enabled,
        origin: "api".to_owned(),
        created: t0(),
    }
}

fn trigger_state(name: &str, fired: u64) -> TriggerStateRecord {
    TriggerStateRecord {
        name: name.to_owned(),
        last_slot: Some(t0() + ms(300_000)),
        last_fired: Some(t0() + ms(300_010)),
        next_fire: Some(t0() + ms(600_000)),
        last_error: (fired % 2 == 1).then(|| "State Machine Does Not Exist".to_owned()),
        last_execution: Some(execution_arn("M", &format!("nightly-{fired}"))),
        fired,
        deadlines_checked: Some(t0() + ms(400_000)),
        pending_alerts: vec![serde_json::json!({"id": format!("late-{fired}")})],
        settings: Some(serde_json::json!({"maxRunning": fired})),
    }
}

pub fn check_triggers(store: &dyn Store) {
    assert_eq!(store.triggers().unwrap(), vec![]);
    assert_eq!(store.trigger("b").unwrap(), None);
    assert_eq!(store.trigger_state("b").unwrap(), None);
    ok(
        store,
        vec![
            WriteOp::PutTrigger(trigger("b", true)),
            WriteOp::PutTrigger(trigger("a", false)),
            // A name that is a prefix of another is its own trigger.
            WriteOp::PutTrigger(trigger("ab", true)),
        ],
    );
    assert_eq!(
        store.triggers().unwrap(),
        vec![trigger("a", false), trigger("ab", true), trigger("b", true)]
    );
    assert_eq!(store.trigger("a").unwrap(), Some(trigger("a", false)));

    // State is kept apart: writing it leaves the definition as it was, and
    // replacing the definition (enable) leaves the state.
    ok(store, vec![WriteOp::PutTriggerState(trigger_state("a", 1))]);
    assert_eq!(store.trigger("a").unwrap(), Some(trigger("a", false)));
    ok(store, vec![WriteOp::PutTrigger(trigger("a", true))]);
    assert_eq!(
        store.trigger_state("a").unwrap(),
        Some(trigger_state("a", 1))
    );
    assert_eq!(store.trigger("a").unwrap(), Some(trigger("a", true)));
    ok(store, vec![WriteOp::PutTriggerState(trigger_state("a", 2))]);
    assert_eq!(
        store.trigger_state("a").unwrap(),
        Some(trigger_state("a", 2))
    );
    // A state with nothing recorded yet survives the round trip too.
    let empty = TriggerStateRecord {
        name: "b".to_owned(),
        ..TriggerStateRecord::default()
    };
    ok(store, vec![WriteOp::PutTriggerState(empty.clone())]);
    assert_eq!(store.trigger_state("b").unwrap(), Some(empty));

    // Deleting a trigger deletes its state, and nothing of the others.
    ok(store, vec![WriteOp::DeleteTrigger("a".to_owned())]);
    assert_eq!(store.trigger("a").unwrap(), None);
    assert_eq!(store.trigger_state("a").unwrap(), None);
    assert_eq!(
        store.triggers().unwrap(),
        vec![trigger("ab", true), trigger("b", true)]
    );
    assert!(store.trigger_state("b").unwrap().is_some());
    // Deleting an unknown trigger is harmless.
    ok(store, vec![WriteOp::DeleteTrigger("zz".to_owned())]);
    assert_eq!(store.triggers().unwrap().len(), 2);
}

/// A trigger's state and the execution it started are one batch: a
/// failing creation (the name is taken) records no state either.
pub fn check_trigger_state_with_a_taken_name(store: &dyn Store) {
    let record = execution("M", "nightly-1");
    ok(store, vec![WriteOp::CreateExecution(record.clone())]);
    let result = apply(
        store,
        vec![
            WriteOp::PutTriggerState(trigger_state("nightly", 1)),
            WriteOp::CreateExecution(record),
        ],
    );
    assert_exists_error(result, "M", "nightly-1");
    assert_eq!(store.trigger_state("nightly").unwrap(), None);
}

// ---------------------------------------------------------------------------
// A whole start in one batch, and concurrent writers

/// What the runtime writes when an execution starts and then waits.
fn start_batch(record: &ExecutionRecord) -> Vec<WriteOp> {
    vec![
        WriteOp::CreateExecution(record.clone()),
        append_journal(&record.arn, vec![entry(1)]),
        append_history(&record.arn, events(1, 4)),
        WriteOp::PutTimer(timer(&record.arn, 1, t0() + ms(30_000))),
        WriteOp::PutTaskToken(token(&format!("token-{}", record.name), &record.arn, 1)),
    ]
}

/// Checks what [`start_batch`] wrote.
#[track_caller]
fn assert_started(store: &dyn Store, record: &ExecutionRecord) {
    assert_eq!(store.execution(&record.arn).unwrap(), Some(record.clone()));
    assert_eq!(
        store
            .execution_by_name(&record.state_machine_arn, &record.name)
            .unwrap(),
        Some(record.clone())
    );
    assert_eq!(store.journal(&record.arn).unwrap(), vec![entry(1)]);
    assert_eq!(store.history_len(&record.arn).unwrap(), 4);
    assert_eq!(store.history(&record.arn, 1, 4).unwrap(), events(1, 4));
    assert_eq!(
        store.timers_of(&record.arn).unwrap(),
        vec![timer(&record.arn, 1, t0() + ms(30_000))]
    );
    assert_eq!(
        store.task_token(&format!("token-{}", record.name)).unwrap(),
        Some(token(&format!("token-{}", record.name), &record.arn, 1))
    );
}

pub fn check_start_in_one_batch(store: &dyn Store) {
    let record = execution("M", "run");
    let mut ops = vec![WriteOp::PutStateMachine(machine("M", 1))];
    ops.extend(start_batch(&record));
    ok(store, ops);
    store.flush().unwrap();
    assert_started(store, &record);
    assert_eq!(store.open_executions().unwrap(), vec![record]);
}

/// Racing creations of one name: exactly one wins.
pub fn check_concurrent_creations(store: &dyn Store) {
    let results: Vec<Result<(), StoreError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                scope.spawn(move || {
                    let mut record = execution("M", "race");
                    record.seed = i;
                    apply(store, vec![WriteOp::CreateExecution(record)])
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    for result in results.into_iter().filter(|r| r.is_err()) {
        assert_exists_error(result, "M", "race");
    }
    assert_eq!(executions(store, None).len(), 1);
}

/// Writers racing on one history: each reads the length and appends the
/// next event, retrying on a gap. No event is lost or written twice.
pub fn check_concurrent_history_appends(store: &dyn Store) {
    let e = execution_arn("M", "run");
    let (threads, each) = (4, 25);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let e = e.as_str();
            scope.spawn(move || {
                let mut written = 0;
                while written < each {
                    let next = store.history_len(e).unwrap() + 1;
                    match apply(store, vec![append_history(e, vec![event(next)])]) {
                        Ok(()) => written += 1,
                        Err(StoreError::HistoryGap { .. }) => {}
                        Err(other) => panic!("unexpected error: {other}"),
                    }
                }
            });
        }
    });
    let total = threads * each;
    assert_eq!(store.history_len(&e).unwrap(), total);
    assert_eq!(store.history(&e, 1, u64::MAX).unwrap(), events(1, total));
}

// ---------------------------------------------------------------------------
// Copying between backends

/// Fills `from` with one of everything (a machine with three revisions and
/// one deleted since, running and finished executions with journals,
/// histories longer than a copy's chunk, timers, tokens, task logs, a Map
/// Run, notices, activities, triggers), copies it into the empty `to`, and
/// reads everything back from `to`. Then a second copy is refused.
pub fn check_copy_between(from: &dyn Store, to: &dyn Store) {
    let mut m = machine("M", 1);
    let gone = machine("Gone", 1);
    ok(from, vec![WriteOp::PutStateMachine(gone.clone())]);
    for revision in 1..=3 {
        m.revision = revision;
        ok(from, vec![WriteOp::PutStateMachine(m.clone())]);
    }
    let mut old = execution("Gone", "old");
    old.revision = 1;
    let running = execution("M", "running");
    let done = finished(&execution("M", "done"), ExecutionStatus::Succeeded);
    for record in [&old, &running, &done] {
        ok(from, start_batch(record));
    }
    ok(
        from,
        vec![
            WriteOp::DeleteStateMachine(gone.arn.clone()),
            append_history(&running.arn, events(5, 2500)),
            WriteOp::PutTaskLog {
                record: task_log(&running.arn, 1),
                keep: 2,
            },
            WriteOp::PutTaskLog {
                record: task_log(&running.arn, 2),
                keep: 2,
            },
            WriteOp::PutTaskLog {
                record: task_log(&running.arn, 3),
                keep: 2,
            },
            WriteOp::PutEndedNotice(done.arn.clone()),
            WriteOp::PutMapRun(crate::MapRunRecord {
                map_run_arn: "arn:aws:states:us-east-1:111111111111:mapRun:M/Map:r".into(),
                execution_arn: running.arn.clone(),
                status: "RUNNING".into(),
                start: t0(),
                stop: None,
                max_concurrency: 10,
                tolerated_failure_percentage: Some(5.0),
                tolerated_failure_count: None,
                items: Default::default(),
                executions: Default::default(),
            }),
            WriteOp::PutActivity(ActivityRecord {
                arn: "arn:aws:states:us-east-1:123456789012:activity:work".into(),
                name: "work".into(),
                created: t0(),
                tags: Default::default(),
            }),
            WriteOp::PutTrigger(trigger("nightly", true)),
            WriteOp::PutTriggerState(trigger_state("nightly", 3)),
            WriteOp::AddStats(crate::StatsDelta {
                state_machine: m.arn.clone(),
                hour: 500_000,
                stats: crate::MachineStats::end(&done),
            }),
            WriteOp::AddStats(crate::StatsDelta {
                state_machine: gone.arn.clone(),
                hour: 500_001,
                stats: crate::MachineStats::start(),
            }),
        ],
    );

    let mut heard = Vec::new();
    let summary = crate::copy::copy(from, to, &mut |n| heard.push(n)).unwrap();
    assert_eq!(heard, [1, 2, 3]);
    assert_eq!(summary.executions, 3);
    assert_eq!(summary.history_events, 2500 + 4 + 4);

    assert_eq!(to.state_machines().unwrap(), from.state_machines().unwrap());
    assert_eq!(to.state_machine(&gone.arn).unwrap(), None);
    for (arn, revision) in [(&m.arn, 1), (&m.arn, 2), (&m.arn, 3), (&gone.arn, 1)] {
        assert_eq!(
            to.state_machine_revision(arn, revision).unwrap(),
            from.state_machine_revision(arn, revision).unwrap(),
            "{arn} revision {revision}"
        );
    }
    for record in [&old, &running, &done] {
        let arn = &record.arn;
        assert_eq!(to.execution(arn).unwrap(), Some(record.clone()));
        assert_eq!(to.journal(arn).unwrap(), from.journal(arn).unwrap());
        assert_eq!(
            to.history(arn, 1, u64::MAX).unwrap(),
            from.history(arn, 1, u64::MAX).unwrap()
        );
        assert_eq!(to.timers_of(arn).unwrap(), from.timers_of(arn).unwrap());
        assert_eq!(to.map_runs(arn).unwrap(), from.map_runs(arn).unwrap());
        // Logs are numbered again from 1 in the copy.
        let unnumbered = |store: &dyn Store| {
            let mut logs = store.task_logs(arn).unwrap();
            logs.iter_mut().for_each(|l| l.seq = 0);
            logs
        };
        assert_eq!(unnumbered(to), unnumbered(from));
        let token = format!("token-{}", record.name);
        assert_eq!(
            to.task_token(&token).unwrap(),
            from.task_token(&token).unwrap()
        );
    }
    assert_eq!(to.task_logs(&running.arn).unwrap().len(), 2);
    assert_eq!(to.ended_notices().unwrap(), vec![done.arn.clone()]);
    assert_eq!(to.activities().unwrap(), from.activities().unwrap());
    assert_eq!(to.triggers().unwrap(), from.triggers().unwrap());
    assert_eq!(
        to.trigger_state("nightly").unwrap(),
        Some(trigger_state("nightly", 3))
    );
    for arn in [&m.arn, &gone.arn] {
        assert_eq!(
            to.stats_hours(arn, 0, i64::MAX).unwrap(),
            from.stats_hours(arn, 0, i64::MAX).unwrap()
        );
        assert_eq!(to.stats_total(arn).unwrap(), from.stats_total(arn).unwrap());
    }
    assert_eq!(to.stats_total(&m.arn).unwrap().succeeded, 1);
    assert_eq!(
        listed(to, ExecutionQuery::new(ExecutionsOf::All, 10)),
        listed(from, ExecutionQuery::new(ExecutionsOf::All, 10))
    );

    let again = crate::copy::copy(from, to, &mut |_| {}).unwrap_err();
    assert!(
        again.to_string().contains("copy into an empty store only"),
        "{again}"
    );
}

#[cfg(test)]
#[test]
fn a_copy_from_memory_into_sled_and_back_keeps_everything() {
    use crate::StateMachines;
    let dir = sled_only::TempDir::new("copy");
    let sled = crate::SledStore::open(dir.path()).unwrap();
    check_copy_between(&crate::MemoryStore::new(), &sled);
    let back = crate::MemoryStore::new();
    crate::copy::copy(&sled, &back, &mut |_| {}).unwrap();
    assert_eq!(
        back.state_machines().unwrap(),
        sled.state_machines().unwrap()
    );
}

// ---------------------------------------------------------------------------
// Running the suite

/// Every check, by name; and, in this crate's tests, one `#[test]` per
/// check and backend, named after the check.
macro_rules! checks {
    ($($check:ident),* $(,)?) => {
        /// Every check of the suite, with its name.
        pub const CHECKS: &[(&str, fn(&dyn Store))] = &[$((stringify!($check), $check)),*];

        #[cfg(test)]
        mod memory_store {
            $(
                #[test]
                fn $check() {
                    super::$check(&crate::MemoryStore::new());
                }
            )*
        }

        #[cfg(test)]
        mod sled_store {
            $(
                #[test]
                fn $check() {
                    // Declared first, dropped last: the store closes before
                    // its directory goes.
                    let dir = super::sled_only::TempDir::new(stringify!($check));
                    let store = crate::SledStore::open(dir.path()).unwrap();
                    super::$check(&store);
                }
            )*
        }
    };
}

checks!(
    check_state_machines,
    check_executions,
    check_listing_order_filters_and_pages,
    check_listing_follows_status_changes_and_deletes,
    check_listing_cursor_is_stable_under_new_starts,
    check_listing_map_run_children,
    check_listing_dates_and_names,
    check_stats,
    check_open_executions,
    check_name_taken_rejects_whole_batch,
    check_relaxed_batch,
    check_express_names_are_not_unique,
    check_name_twice_in_one_batch,
    check_same_name_other_machine,
    check_journal,
    check_journal_pages,
    check_history_pages,
    check_history_append,
    check_history_gap,
    check_history_range,
    check_timers_far_past_and_future,
    check_timers_of,
    check_timer_put_again_replaces_it,
    check_task_tokens,
    check_task_tokens_pages,
    check_activities,
    check_revisions_outlive_updates_and_deletes,
    check_delete_execution,
    check_task_logs,
    check_ended_notices,
    check_map_runs,
    check_triggers,
    check_trigger_state_with_a_taken_name,
    check_start_in_one_batch,
    check_concurrent_creations,
    check_concurrent_history_appends,
    check_task_cache,
    check_lineage,
);

/// Runs every check of the suite, each on a fresh store from `fresh`
/// (given the check's name, say for a database or directory of its own).
/// Panics at the first check that fails; the name of each check is
/// printed before it runs, so the failing one is the last printed.
pub fn run_all<S: Store>(mut fresh: impl FnMut(&str) -> S) {
    for (name, check) in CHECKS {
        eprintln!("store suite: {name}");
        let store = fresh(name);
        check(&store);
    }
}

#[cfg(test)]
#[test]
fn run_all_runs_every_check_on_a_fresh_store() {
    let mut made = Vec::new();
    run_all(|name| {
        made.push(name.to_owned());
        crate::MemoryStore::new()
    });
    let names: Vec<&str> = CHECKS.iter().map(|(name, _)| *name).collect();
    assert_eq!(made, names);
}

// ---------------------------------------------------------------------------
// Sled only: what lives on disk

#[cfg(test)]
mod sled_only {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;
    use crate::{
        EndedNotices, Executions, FORMAT_VERSION, Histories, Journals, SledStore, StateMachines,
        TaskTokens, Timers,
    };

    /// A directory under the system's temporary directory, unique to this
    /// process and test, removed when dropped.
    #[derive(Debug)]
    pub(super) struct TempDir(PathBuf);

    impl TempDir {
        pub(super) fn new(test: &str) -> Self {
            static COUNTER: AtomicU64 = AtomicU64::new(0);
            let path = std::env::temp_dir().join(format!(
                "stepline-store-suite-{}-{}-{}",
                std::process::id(),
                test,
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&path);
            Self(path)
        }

        pub(super) fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn sled_keeps_everything_across_a_reopen() {
        let dir = TempDir::new("reopen");
        let record = execution("M", "run");
        let done = finished(&execution("M", "done"), ExecutionStatus::Succeeded);
        {
            let store = SledStore::open(dir.path()).unwrap();
            let mut ops = vec![
                WriteOp::PutStateMachine(machine("M", 3)),
                WriteOp::PutStateMachine(machine("N", 1)),
                WriteOp::CreateExecution(done.clone()),
            ];
            ops.extend(start_batch(&record));
            ok(&store, ops);
            ok(&store, vec![append_journal(&record.arn, vec![entry(2)])]);
            ok(&store, vec![append_history(&record.arn, events(5, 6))]);
            store.flush().unwrap();
        }

        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(
            store.state_machines().unwrap(),
            vec![machine("M", 3), machine("N", 1)]
        );
        assert_eq!(store.execution(&done.arn).unwrap(), Some(done.clone()));
        assert_eq!(
            executions(&store, Some(&machine_arn("M"))),
            vec![done, record.clone()]
        );
        assert_eq!(store.open_executions().unwrap(), vec![record.clone()]);
        assert_eq!(
            store.journal(&record.arn).unwrap(),
            vec![entry(1), entry(2)]
        );
        assert_eq!(store.history_len(&record.arn).unwrap(), 6);
        assert_eq!(store.history(&record.arn, 1, 100).unwrap(), events(1, 6));
        let due = timer(&record.arn, 1, t0() + ms(30_000));
        assert_eq!(store.timers_of(&record.arn).unwrap(), vec![due]);
        assert_eq!(
            store.task_token("token-run").unwrap(),
            Some(token("token-run", &record.arn, 1))
        );

        // The counters and the name index came back too: the history goes on
        // from 7, and the name is still taken.
        assert_gap_error(
            apply(&store, vec![append_history(&record.arn, events(1, 1))]),
            &record.arn,
            7,
            1,
        );
        ok(&store, vec![append_history(&record.arn, events(7, 7))]);
        assert_eq!(store.history_len(&record.arn).unwrap(), 7);
        assert_exists_error(
            apply(
                &store,
                vec![WriteOp::CreateExecution(execution("M", "run"))],
            ),
            "M",
            "run",
        );
    }

    /// Atomic batches are staged and go into sled together: at a flush, when
    /// a read touches one of their keys, and when the store is dropped. A
    /// relaxed batch is written at once, unless it writes a staged key (a
    /// key's writes keep their order).
    #[test]
    fn sled_stages_atomic_batches_until_a_flush_or_a_read_needs_them() {
        let dir = TempDir::new("staged");
        let first = execution("M", "first");
        let second = execution("M", "second");
        {
            let store = SledStore::open(dir.path()).unwrap();
            ok(&store, start_batch(&first));
            assert!(store.staged_keys() > 0, "the start is staged");
            // Checks of later batches see it: the name is taken.
            assert_exists_error(
                apply(&store, vec![WriteOp::CreateExecution(first.clone())]),
                "M",
                "first",
            );
            // A read of other keys leaves it staged; a read of its keys brings it in.
            assert_eq!(store.execution(&second.arn).unwrap(), None);
            assert!(store.staged_keys() > 0);
            assert_eq!(store.execution(&first.arn).unwrap(), Some(first.clone()));
            assert_eq!(store.staged_keys(), 0);
            ok(&store, start_batch(&second));
            store.flush().unwrap();
            assert_eq!(store.staged_keys(), 0, "a flush applies what is staged");
            ok(
                &store,
                vec![
                    append_history(&second.arn, events(5, 6)),
                    append_journal(&second.arn, vec![entry(2)]),
                ],
            );
            assert!(store.staged_keys() > 0);
            let mut relaxed = WriteBatch::relaxed();
            relaxed.push(WriteOp::PutEndedNotice(second.arn.clone()));
            store.apply(&relaxed).unwrap();
            let staged = store.staged_keys();
            assert!(staged > 0, "other keys: written at once");
            // Journal entry 2 is staged: the whole batch is staged too.
            let mut relaxed = WriteBatch::relaxed();
            relaxed.push(append_journal(&second.arn, vec![entry(2)]));
            relaxed.push(append_history(&second.arn, events(7, 7)));
            store.apply(&relaxed).unwrap();
            assert!(store.staged_keys() > staged, "a staged key: staged too");
            assert_eq!(store.history_len(&second.arn).unwrap(), 7);
            ok(
                &store,
                vec![
                    append_journal(&second.arn, vec![entry(3)]),
                    append_history(&second.arn, events(8, 8)),
                ],
            );
            assert!(store.staged_keys() > 0);
            // Dropped with a batch staged and no flush.
        }
        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(store.history_len(&second.arn).unwrap(), 8);
        assert_eq!(store.ended_notices().unwrap(), vec![second.arn.clone()]);
        assert_eq!(
            store.journal(&second.arn).unwrap(),
            vec![entry(1), entry(2), entry(3)]
        );
        // The last history id and journal seq are found again after a reopen:
        // the next append must follow them.
        assert_gap_error(
            apply(&store, vec![append_history(&second.arn, events(10, 10))]),
            &second.arn,
            9,
            10,
        );
        ok(&store, vec![append_history(&second.arn, events(9, 9))]);
        assert_eq!(store.history_len(&second.arn).unwrap(), 9);
    }

    /// An execution that starts and ends in one batch (one step) writes each
    /// key once and never its open mark: sled's cost is per key written.
    #[test]
    fn sled_writes_each_key_of_a_batch_once() {
        let dir = TempDir::new("once");
        let store = SledStore::open(dir.path()).unwrap();
        let run = execution("M", "run");
        ok(
            &store,
            vec![
                WriteOp::CreateExecution(run.clone()),
                append_journal(&run.arn, vec![entry(1)]),
                append_history(&run.arn, events(1, 3)),
                WriteOp::UpdateExecution(finished(&run, ExecutionStatus::Succeeded)),
            ],
        );
        // Record, journal entry, history run, the machine's and every
        // execution's listing keys (under SUCCEEDED only: the RUNNING ones
        // came and went inside the batch): the name is in the record's key
        // (the ARN), the last journal seq and history id in the keys.
        assert_eq!(store.staged_keys(), 5);
        store.flush().unwrap();
        assert!(store.open_executions().unwrap().is_empty());
        assert_eq!(
            store.execution(&run.arn).unwrap(),
            Some(finished(&run, ExecutionStatus::Succeeded))
        );
        assert_eq!(store.history_len(&run.arn).unwrap(), 3);
    }

    /// State machine records are cached; every write of one is seen by the
    /// next read.
    #[test]
    fn sled_reads_a_state_machine_as_last_written() {
        let dir = TempDir::new("machines");
        let store = SledStore::open(dir.path()).unwrap();
        let first = machine("M", 1);
        ok(&store, vec![WriteOp::PutStateMachine(first.clone())]);
        assert_eq!(
            store.state_machine(&first.arn).unwrap(),
            Some(first.clone())
        );
        let second = machine("M", 2);
        ok(&store, vec![WriteOp::PutStateMachine(second.clone())]);
        assert_eq!(store.state_machine(&first.arn).unwrap(), Some(second));
        ok(&store, vec![WriteOp::DeleteStateMachine(first.arn.clone())]);
        assert_eq!(store.state_machine(&first.arn).unwrap(), None);
    }

    #[test]
    fn sled_writes_its_format_version() {
        let dir = TempDir::new("format");
        drop(SledStore::open(dir.path()).unwrap());
        let db = ::sled::open(dir.path()).unwrap();
        let format = db.open_tree("meta").unwrap().get("format").unwrap();
        assert_eq!(format.as_deref(), Some(&FORMAT_VERSION.to_be_bytes()[..]));
        drop(db);
        // And reads it back.
        SledStore::open(dir.path()).unwrap();
    }

    /// Format 1 kept one event per key; format 2 keeps a step's events under
    /// one key. A format-1 directory opens, reads as it was, takes new
    /// appends and is marked format 2 (so an older build refuses it).
    #[test]
    fn sled_reads_and_upgrades_format_1() {
        let dir = TempDir::new("format1");
        let e = execution_arn("M", "run");
        {
            let db = ::sled::open(dir.path()).unwrap();
            let data = db.open_tree("data").unwrap();
            data.insert([b'F'], &1u32.to_be_bytes()).unwrap();
            db.open_tree("meta")
                .unwrap()
                .insert("format", &1u32.to_be_bytes())
                .unwrap();
            for event in events(1, 4) {
                let mut k = vec![b'h'];
                k.extend_from_slice(e.as_bytes());
                k.push(0);
                k.extend_from_slice(&event.id.to_be_bytes());
                data.insert(k, serde_json::to_vec(&event).unwrap()).unwrap();
            }
            let mut counter = vec![b'c'];
            counter.extend_from_slice(e.as_bytes());
            counter.extend_from_slice(&[0, b'h']);
            data.insert(counter, &4u64.to_be_bytes()).unwrap();
            db.flush().unwrap();
        }
        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(store.history(&e, 2, 3).unwrap(), events(2, 3));
        ok(&store, vec![append_history(&e, events(5, 7))]);
        assert_eq!(store.history(&e, 1, 100).unwrap(), events(1, 7));
        assert_eq!(store.history(&e, 4, 6).unwrap(), events(4, 6));
        drop(store);
        let db = ::sled::open(dir.path()).unwrap();
        let format = db.open_tree("data").unwrap().get([b'F']).unwrap();
        assert_eq!(format.as_deref(), Some(&FORMAT_VERSION.to_be_bytes()[..]));
        let meta = db.open_tree("meta").unwrap().get("format").unwrap();
        assert_eq!(meta.as_deref(), Some(&FORMAT_VERSION.to_be_bytes()[..]));
    }

    /// A format 3 directory has no listing index: it is built at open, once,
    /// from the records (a large one kept in pieces, a Map Run's child), and
    /// the directory is marked with this build's format.
    #[test]
    fn sled_builds_the_listing_index_of_an_earlier_format() {
        let dir = TempDir::new("format3");
        let mut big = started_at("M", "big", 2, ExecutionStatus::Succeeded);
        big.input = format!("\"{}\"", "x".repeat(5 * crate::sled_store::PIECE));
        let small = started_at("M", "small", 1, ExecutionStatus::Running);
        let mut child = started_at("M/Map", "child", 3, ExecutionStatus::Failed);
        let run = "arn:aws:states:us-east-1:123456789012:mapRun:M/Map:r".to_owned();
        child.map_run = Some(MapRunChild {
            map_run_arn: run.clone(),
            machine_arn: machine_arn("M"),
            revision: 1,
            scope: 1,
            express: false,
        });
        {
            let store = SledStore::open(dir.path()).unwrap();
            let creates = [&big, &small, &child].map(|r| WriteOp::CreateExecution(r.clone()));
            ok(&store, creates.to_vec());
            store.flush().unwrap();
        }
        {
            // As format 3 left it: the records, no listing keys.
            let db = ::sled::open(dir.path()).unwrap();
            let data = db.open_tree("data").unwrap();
            for tag in [b'i', b'I', b'A'] {
                for item in data.scan_prefix([tag]) {
                    data.remove(item.unwrap().0).unwrap();
                }
            }
            data.insert([b'F'], &3u32.to_be_bytes()).unwrap();
            db.open_tree("meta")
                .unwrap()
                .insert("format", &3u32.to_be_bytes())
                .unwrap();
            db.flush().unwrap();
        }
        let store = SledStore::open(dir.path()).unwrap();
        assert!(listed(&store, query(ExecutionsOf::All, None, 10)).len() == 3);
        assert_eq!(
            listed(&store, query(ExecutionsOf::All, None, 1)),
            vec![child.summary(), big.summary(), small.summary()]
        );
        assert_eq!(
            listed(
                &store,
                query(of_machine("M"), Some(ExecutionStatus::Running), 10)
            ),
            vec![small.summary()]
        );
        assert_eq!(
            listed(&store, query(ExecutionsOf::MapRun(run), None, 10)),
            vec![child.summary()]
        );
        // And keeps it from then on.
        ok(
            &store,
            vec![WriteOp::UpdateExecution(finished(
                &small,
                ExecutionStatus::Aborted,
            ))],
        );
        assert!(
            listed(
                &store,
                query(of_machine("M"), Some(ExecutionStatus::Running), 10)
            )
            .is_empty()
        );
        drop(store);
        let db = ::sled::open(dir.path()).unwrap();
        let format = db.open_tree("data").unwrap().get([b'F']).unwrap();
        assert_eq!(format.as_deref(), Some(&FORMAT_VERSION.to_be_bytes()[..]));
    }

    #[test]
    fn sled_refuses_a_newer_format() {
        let dir = TempDir::new("newer");
        {
            let db = ::sled::open(dir.path()).unwrap();
            let meta = db.open_tree("meta").unwrap();
            meta.insert("format", &(FORMAT_VERSION + 1).to_be_bytes())
                .unwrap();
            db.flush().unwrap();
        }
        match SledStore::open(dir.path()) {
            Err(StoreError::NewerFormat { found, supported }) => {
                assert_eq!((found, supported), (FORMAT_VERSION + 1, FORMAT_VERSION));
            }
            other => panic!("expected NewerFormat, got {other:?}"),
        }
    }

    #[test]
    fn sled_refuses_an_unreadable_format() {
        let dir = TempDir::new("unreadable");
        {
            let db = ::sled::open(dir.path()).unwrap();
            db.open_tree("meta")
                .unwrap()
                .insert("format", b"v1")
                .unwrap();
            db.flush().unwrap();
        }
        match SledStore::open(dir.path()) {
            Err(StoreError::Corrupt(_)) => {}
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[test]
    fn sled_open_on_a_regular_file_is_an_error() {
        let dir = TempDir::new("file");
        std::fs::create_dir_all(dir.path()).unwrap();
        let file = dir.path().join("not-a-directory");
        std::fs::write(&file, b"hello").unwrap();

        match SledStore::open(&file) {
            Err(e @ StoreError::Open { .. }) => {
                let StoreError::Open { path, source } = &e else {
                    unreachable!()
                };
                assert_eq!(*path, file.display().to_string());
                // The io error is kept as the source, and said in the message.
                assert!(matches!(source, crate::OpenError::Io(_)), "{source:?}");
                let shown = std::error::Error::source(&e).map(ToString::to_string);
                assert_eq!(
                    e.to_string(),
                    format!("cannot open the data directory {path}: {}", shown.unwrap())
                );
            }
            other => panic!("expected Open, got {other:?}"),
        }
        // Nor can it be a directory inside a file.
        match SledStore::open(&file.join("data")) {
            Err(StoreError::Open { .. }) => {}
            other => panic!("expected Open, got {other:?}"),
        }
        assert_eq!(std::fs::read(&file).unwrap(), b"hello");
    }

    /// Values longer than a piece are kept in pieces (issue 10: sled 0.34
    /// never evicts pages written as blobs); they read back whole, a rewrite
    /// with fewer pieces and a delete leave no piece behind.
    #[test]
    fn sled_keeps_large_values_in_pieces_and_leaves_none_behind() {
        let dir = TempDir::new("pieces");
        let store = SledStore::open(dir.path()).unwrap();
        let mut record = execution("M", "big");
        record.input = format!("\"{}\"", "x".repeat(5 * crate::sled_store::PIECE + 17));
        ok(&store, vec![WriteOp::CreateExecution(record.clone())]);
        assert_eq!(store.execution(&record.arn).unwrap(), Some(record.clone()));
        let pieces = |store: &SledStore| store.pieces_count();
        assert!(pieces(&store) >= 5, "{}", pieces(&store));
        // Rewritten shorter: fewer pieces, none stale.
        record.input = format!("\"{}\"", "y".repeat(crate::sled_store::PIECE + 1));
        ok(&store, vec![WriteOp::UpdateExecution(record.clone())]);
        assert_eq!(store.execution(&record.arn).unwrap(), Some(record.clone()));
        assert_eq!(pieces(&store), 2);
        // Rewritten small: kept whole.
        record.input = "{}".into();
        ok(&store, vec![WriteOp::UpdateExecution(record.clone())]);
        assert_eq!(store.execution(&record.arn).unwrap(), Some(record.clone()));
        assert_eq!(pieces(&store), 0);
        record.input = format!("\"{}\"", "z".repeat(3 * crate::sled_store::PIECE));
        ok(&store, vec![WriteOp::UpdateExecution(record.clone())]);
        assert!(executions(&store, None).contains(&record));
        drop(store);
        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(store.execution(&record.arn).unwrap(), Some(record.clone()));
        ok(&store, vec![WriteOp::DeleteExecution(record.arn.clone())]);
        assert_eq!(store.execution(&record.arn).unwrap(), None);
        assert_eq!(pieces(&store), 0);
    }

    /// A large value read while it is rewritten is the old or the new one,
    /// never pieces of both.
    #[test]
    fn sled_reads_a_large_value_whole_while_it_is_rewritten() {
        let dir = TempDir::new("pieces-race");
        let store = Arc::new(SledStore::open(dir.path()).unwrap());
        let big = |c: char| format!("\"{}\"", c.to_string().repeat(4 * crate::sled_store::PIECE));
        let mut record = execution("M", "race");
        record.input = big('a');
        ok(&*store, vec![WriteOp::CreateExecution(record.clone())]);
        let writer = {
            let store = Arc::clone(&store);
            let mut record = record.clone();
            std::thread::spawn(move || {
                for i in 0..300 {
                    record.input = big(if i % 2 == 0 { 'b' } else { 'a' });
                    ok(&*store, vec![WriteOp::UpdateExecution(record.clone())]);
                }
            })
        };
        let (a, b) = (big('a'), big('b'));
        while !writer.is_finished() {
            let read = store.execution(&record.arn).unwrap().expect("the record");
            assert!(read.input == a || read.input == b, "a torn read");
        }
        writer.join().unwrap();
    }

    /// Journal entries as earlier builds wrote them (the interpreter's own
    /// commands through serde; bytes taken from such a directory) read back
    /// through the store's journal types.
    #[test]
    fn sled_reads_journal_entries_written_by_earlier_builds() {
        let dir = TempDir::new("old-journal");
        let e = execution_arn("M", "run");
        let written = [
            r#"{"seq":1,"at":"2026-01-01T00:00:00Z","command":{"Start":{"input":{"items":[1,2,3]}}}}"#,
            r#"{"seq":2,"at":"2026-01-01T00:00:00Z","command":{"TaskStarted":{"task":1}}}"#,
            r#"{"seq":3,"at":"2026-01-01T00:00:00.010Z","command":{"TaskFailed":{"task":1,"error":"Flaky","cause":null}}}"#,
            r#"{"seq":4,"at":"2026-01-01T00:00:02.015Z","command":{"TimerFired":{"timer":1}}}"#,
            r#"{"seq":5,"at":"2026-01-01T00:00:03Z","command":"Redrive"}"#,
        ];
        {
            let db = ::sled::open(dir.path()).unwrap();
            let data = db.open_tree("data").unwrap();
            for (seq, text) in written.iter().enumerate() {
                let mut k = vec![b'j'];
                k.extend_from_slice(e.as_bytes());
                k.push(0);
                k.extend_from_slice(&(seq as u64 + 1).to_be_bytes());
                data.insert(k, text.as_bytes()).unwrap();
            }
            db.flush().unwrap();
        }
        let store = SledStore::open(dir.path()).unwrap();
        let journal = store.journal(&e).unwrap();
        assert_eq!(
            journal
                .iter()
                .map(|j| j.command.clone())
                .collect::<Vec<_>>(),
            vec![
                JournalCommand::Start {
                    input: json!({"items": [1, 2, 3]})
                },
                JournalCommand::TaskStarted {
                    task: 1,
                    worker_name: None,
                    pool: None,
                },
                JournalCommand::TaskFailed {
                    task: 1,
                    error: Some("Flaky".into()),
                    cause: None
                },
                JournalCommand::TimerFired { timer: 1 },
                JournalCommand::Redrive,
            ]
        );
        let rewritten: Vec<String> = journal
            .iter()
            .map(|j| serde_json::to_string(j).unwrap())
            .collect();
        assert_eq!(rewritten, written);
        // The next entry continues the old ones.
        ok(&store, vec![append_journal(&e, vec![entry(6)])]);
        assert_eq!(store.journal(&e).unwrap().len(), 6);
    }

    /// Format 4 kept each timer under `t` (by due time) and its `t` key under
    /// `x`. A format 4 directory opens: its timers read back from `x`, a
    /// dangling `x` key goes, no `t` key is left, and the directory is marked
    /// with this build's format.
    #[test]
    fn sled_drops_the_due_time_timers_of_format_4() {
        let dir = TempDir::new("format4");
        let e = execution_arn("M", "run");
        let kept = timer(&e, 1, t0() + ms(30_000));
        let later = timer(&e, 300, at("9999-12-31T23:59:59.999Z"));
        {
            let db = ::sled::open(dir.path()).unwrap();
            let data = db.open_tree("data").unwrap();
            let x_key = |timer: u64| {
                let mut k = vec![b'x'];
                k.extend_from_slice(e.as_bytes());
                k.push(0);
                k.extend_from_slice(&timer.to_be_bytes());
                k
            };
            for t in [&kept, &later] {
                // Format 4's `t` key: due ms shifted, the ARN, 0, the timer.
                let mut t_key = vec![b't'];
                t_key.extend_from_slice(
                    &(t.due.timestamp_millis() as u64 ^ (1 << 63)).to_be_bytes(),
                );
                t_key.extend_from_slice(e.as_bytes());
                t_key.push(0);
                t_key.extend_from_slice(&t.timer.to_be_bytes());
                data.insert(&t_key, serde_json::to_vec(t).unwrap()).unwrap();
                data.insert(x_key(t.timer), t_key).unwrap();
            }
            // An `x` key whose `t` key is gone, and a `t` key no `x` names.
            data.insert(x_key(7), b"t-gone".to_vec()).unwrap();
            data.insert(b"t-orphan", b"{}".to_vec()).unwrap();
            data.insert([b'F'], &4u32.to_be_bytes()).unwrap();
            db.open_tree("meta")
                .unwrap()
                .insert("format", &4u32.to_be_bytes())
                .unwrap();
            db.flush().unwrap();
        }
        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(store.timers_of(&e).unwrap(), vec![kept.clone(), later]);
        ok(&store, vec![WriteOp::RemoveTimer(kept)]);
        assert_eq!(store.timers_of(&e).unwrap().len(), 1);
        drop(store);
        let db = ::sled::open(dir.path()).unwrap();
        let data = db.open_tree("data").unwrap();
        assert_eq!(data.scan_prefix([b't']).count(), 0, "no t key is left");
        assert_eq!(data.scan_prefix([b'x']).count(), 1);
        let format = data.get([b'F']).unwrap();
        assert_eq!(format.as_deref(), Some(&FORMAT_VERSION.to_be_bytes()[..]));
    }

    /// A stored value that does not decode is damage, with serde's error as
    /// its source; what the faces show reads as before.
    #[test]
    fn sled_reports_an_undecodable_value_with_its_source() {
        let dir = TempDir::new("undecodable");
        let record = execution("M", "run");
        {
            let db = ::sled::open(dir.path()).unwrap();
            let mut k = vec![b'e'];
            k.extend_from_slice(record.arn.as_bytes());
            db.open_tree("data")
                .unwrap()
                .insert(k, b"{not json".to_vec())
                .unwrap();
            db.flush().unwrap();
        }
        let store = SledStore::open(dir.path()).unwrap();
        let e = store.execution(&record.arn).unwrap_err();
        let source = std::error::Error::source(&e).expect("a source");
        assert!(
            source.downcast_ref::<serde_json::Error>().is_some(),
            "{source:?}"
        );
        assert_eq!(
            e.to_string(),
            format!("the stored data is damaged: {source}")
        );
        assert!(!e.is_io());
    }
}

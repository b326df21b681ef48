use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};

use super::{Engine, EngineConfig, EngineError};
use crate::Clock;
use crate::{TaskCall, TaskFuture, TaskRunner};
use stepline_store::{ExecutionStatus, MemoryStore, SledStore, Store, WorkflowType};

/// Time from tokio's clock, so that paused tests move both together.
pub(super) struct TokioClock {
    base: DateTime<Utc>,
    start: tokio::time::Instant,
}

impl TokioClock {
    pub(super) fn new() -> Arc<Self> {
        Self::starting_at(
            Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
                .single()
                .expect("date"),
        )
    }

    /// Showing `base` now, and moving with tokio's time from here.
    pub(super) fn starting_at(base: DateTime<Utc>) -> Arc<Self> {
        Arc::new(Self {
            base,
            start: tokio::time::Instant::now(),
        })
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        self.base + (tokio::time::Instant::now() - self.start)
    }
}

/// Answers every task with its input under "echo", after `delay_ms`,
/// and counts calls per idempotency key.
#[derive(Default)]
struct Echo {
    delay_ms: u64,
    calls: Mutex<Vec<String>>,
    total: AtomicU32,
}

impl TaskRunner for Echo {
    fn run(&self, call: TaskCall) -> TaskFuture {
        let request = call.request;
        self.calls.lock().expect("lock").push(call.idempotency_key);
        self.total.fetch_add(1, Ordering::SeqCst);
        let delay = self.delay_ms;
        Box::pin(async move {
            tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
            Ok(json!({"echo": request.input}))
        })
    }
}

const FLOW: &str = r#"{
  "StartAt": "Prepare",
  "States": {
    "Prepare": {"Type": "Pass", "Parameters": {"n.$": "$.n"}, "Next": "Work"},
    "Work": {"Type": "Task", "Resource": "stepline:process:echo", "ResultPath": "$.work", "Next": "Rest"},
    "Rest": {"Type": "Wait", "Seconds": 3600, "Next": "Done"},
    "Done": {"Type": "Succeed"}
  }
}"#;

fn engine(store: Arc<dyn Store>, runner: Arc<Echo>, clock: Arc<TokioClock>) -> Engine {
    Engine::open(store, runner, clock, EngineConfig::default()).expect("open")
}

/// An engine on a memory store and the paused clock, with FLOW created.
async fn with_flow(runner: &Arc<Echo>) -> (Engine, stepline_store::StateMachineRecord) {
    let engine = engine(
        Arc::new(MemoryStore::new()),
        Arc::clone(runner),
        TokioClock::new(),
    );
    let machine = engine
        .create_state_machine("flow", FLOW, None, WorkflowType::Standard)
        .await
        .expect("create");
    (engine, machine)
}

#[tokio::test(start_paused = true)]
async fn an_execution_runs_to_its_end() {
    let runner = Arc::new(Echo {
        delay_ms: 50,
        ..Echo::default()
    });
    let engine = engine(
        Arc::new(MemoryStore::new()),
        Arc::clone(&runner),
        TokioClock::new(),
    );
    let machine = engine
        .create_state_machine("flow", FLOW, None, WorkflowType::Standard)
        .await
        .expect("create");
    assert_eq!(
        machine.arn,
        "arn:aws:states:us-east-1:111111111111:stateMachine:flow"
    );
    let started = engine
        .start_execution(&machine.arn, Some("first"), Some(r#"{"n": 7}"#))
        .await
        .expect("start");
    assert_eq!(
        started.arn,
        "arn:aws:states:us-east-1:111111111111:execution:flow:first"
    );
    let done = engine.wait_for(&started.arn).await.expect("wait");
    assert_eq!(done.status, ExecutionStatus::Succeeded);
    let output: Value =
        serde_json::from_str(done.output.as_deref().expect("output")).expect("json");
    assert_eq!(output, json!({"n": 7, "work": {"echo": {"n": 7}}}));
    // The Wait took an hour of (paused) time.
    let took = done.stop.expect("stop") - done.start;
    assert!(took >= chrono::Duration::seconds(3600), "{took}");
    let len = engine.history_len(&started.arn).expect("len");
    let types: Vec<&str> = engine
        .history(&started.arn, 1, len)
        .expect("history")
        .iter()
        .map(|e| e.event.type_name())
        .collect();
    assert_eq!(types.first(), Some(&"ExecutionStarted"));
    assert_eq!(types.last(), Some(&"ExecutionSucceeded"));
    assert!(types.contains(&"TaskSucceeded"));
    assert_eq!(runner.total.load(Ordering::SeqCst), 1);
}

/// A durable end leaves a notice until its observers announced it; with
/// no observer (nobody to announce it) none is left behind.
#[tokio::test(start_paused = true)]
async fn an_end_leaves_a_notice_only_for_an_observer() {
    const ONE_PASS: &str = r#"{"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}"#;
    let (observer, mut ended) = tokio::sync::mpsc::unbounded_channel();
    for observers in [vec![], vec![observer]] {
        let store = Arc::new(MemoryStore::new());
        let config = EngineConfig {
            ended: observers.clone(),
            ..EngineConfig::default()
        };
        let engine = Engine::open(
            Arc::clone(&store) as Arc<dyn Store>,
            Arc::new(Echo::default()),
            TokioClock::new(),
            config,
        )
        .expect("open");
        let machine = engine
            .create_state_machine("one", ONE_PASS, None, WorkflowType::Standard)
            .await
            .expect("create");
        let run = engine
            .start_execution(&machine.arn, Some("run"), None)
            .await
            .expect("start");
        engine.wait_for(&run.arn).await.expect("wait");
        let notices = stepline_store::EndedNotices::ended_notices(&*store).expect("notices");
        if observers.is_empty() {
            assert!(notices.is_empty(), "{notices:?}");
        } else {
            assert_eq!(notices, vec![run.arn.clone()]);
            assert_eq!(ended.recv().await.expect("told").record.arn, run.arn);
        }
    }
}

/// A caller that goes away while its start is being flushed (a client
/// hanging up) leaves an execution that runs, not a RUNNING record
/// that nothing runs.
#[tokio::test(start_paused = true)]
async fn a_start_dropped_during_its_flush_still_runs() {
    let runner = Arc::new(Echo::default());
    let (engine, machine) = with_flow(&runner).await;
    // Polled once (the first step is written, the flush awaited),
    // then dropped.
    let start = engine.start_execution(&machine.arn, Some("dropped"), Some(r#"{"n": 1}"#));
    tokio::select! {
        biased;
        _ = start => panic!("the start did not wait for its flush"),
        _ = std::future::ready(()) => {}
    }
    let arn = "arn:aws:states:us-east-1:111111111111:execution:flow:dropped";
    let done = tokio::time::timeout(std::time::Duration::from_secs(7200), engine.wait_for(arn))
        .await
        .expect("the execution never ended")
        .expect("wait");
    assert_eq!(done.status, ExecutionStatus::Succeeded);
    assert_eq!(runner.total.load(Ordering::SeqCst), 1);
}

/// The engine's timers follow its clock: on a manual clock, an execution
/// in a Wait of an hour (asleep, out of memory, after `sleep_after`) ends
/// when the clock is moved an hour on, with no real time spent and no
/// tokio time stubbed.
#[tokio::test]
async fn a_manual_clock_drives_the_whole_engine() {
    let start = Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("date");
    let clock = Arc::new(stepline_language::clock::ManualClock::new(start));
    let runner = Arc::new(Echo::default());
    let engine = Engine::open(
        Arc::new(MemoryStore::new()),
        runner,
        Arc::clone(&clock) as Arc<dyn Clock>,
        EngineConfig::default(),
    )
    .expect("open");
    let machine = engine
        .create_state_machine("flow", FLOW, None, WorkflowType::Standard)
        .await
        .expect("create");
    let record = engine
        .start_execution(&machine.arn, Some("hour"), Some(r#"{"n": 1}"#))
        .await
        .expect("start");
    let real = std::time::Duration::from_secs(10);
    // The task answers at once; the execution then waits an hour, asleep.
    tokio::time::timeout(real, async {
        while asleep(&engine) != "stepline_executions_asleep 1" {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the execution falls asleep in its Wait");
    clock.advance(chrono::Duration::minutes(59));
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let waiting = engine.describe_execution(&record.arn).expect("describe");
    assert_eq!(waiting.status, ExecutionStatus::Running, "not yet an hour");
    clock.advance(chrono::Duration::minutes(1));
    let ended = tokio::time::timeout(real, engine.wait_for(&record.arn))
        .await
        .expect("the Wait ends when the clock says so")
        .expect("wait");
    assert_eq!(ended.status, ExecutionStatus::Succeeded);
    assert_eq!(ended.stop, Some(start + chrono::Duration::hours(1)));
}

fn asleep(engine: &Engine) -> String {
    engine
        .metrics_text()
        .lines()
        .find(|l| l.starts_with("stepline_executions_asleep "))
        .expect("gauge")
        .to_owned()
}

/// An execution waiting on a distant timer leaves memory (its loop
/// ends) and comes back from the store when the timer is due, or at
/// once for a message: its history reads as if it had never slept.
#[tokio::test(start_paused = true)]
async fn a_distant_wait_sleeps_and_wakes_for_its_timer_or_a_stop() {
    let runner = Arc::new(Echo::default());
    let (engine, machine) = with_flow(&runner).await;
    let sleeper = engine
        .start_execution(&machine.arn, Some("sleeper"), Some(r#"{"n": 1}"#))
        .await
        .expect("start");
    let stopped = engine
        .start_execution(&machine.arn, Some("stopped"), Some(r#"{"n": 2}"#))
        .await
        .expect("start");
    tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    assert_eq!(asleep(&engine), "stepline_executions_asleep 2");
    assert!(engine.metrics_text().contains("stepline_open_executions 2"));

    engine
        .stop_execution(&stopped.arn, Some("Enough".into()), None)
        .expect("stop");
    let aborted = engine.wait_for(&stopped.arn).await.expect("wait");
    assert_eq!(aborted.status, ExecutionStatus::Aborted);
    assert_eq!(asleep(&engine), "stepline_executions_asleep 1");

    let done = engine.wait_for(&sleeper.arn).await.expect("wait");
    assert_eq!(done.status, ExecutionStatus::Succeeded);
    let took = done.stop.expect("stop") - done.start;
    assert!(took >= chrono::Duration::seconds(3600), "{took}");
    assert_eq!(asleep(&engine), "stepline_executions_asleep 0");
    for arn in [&sleeper.arn, &stopped.arn] {
        let len = engine.history_len(arn).expect("len");
        let events = engine.history(arn, 1, len).expect("history");
        let ids: Vec<u64> = events.iter().map(|e| e.id).collect();
        assert_eq!(ids, (1..=len).collect::<Vec<_>>(), "{arn}");
        let count = |t: &str| events.iter().filter(|e| e.event.type_name() == t).count();
        assert_eq!(count("WaitStateEntered"), 1, "{arn}");
        assert_eq!(count("TaskSucceeded"), 1, "{arn}");
    }
    // The task ran once per execution: waking replays, it does not
    // invoke again.
    assert_eq!(runner.total.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn names_follow_the_aws_rules() {
    let engine = engine(
        Arc::new(MemoryStore::new()),
        Arc::default(),
        TokioClock::new(),
    );
    let bad = engine
        .create_state_machine("has space", FLOW, None, WorkflowType::Standard)
        .await;
    assert!(matches!(bad, Err(EngineError::InvalidName(_))));
    let invalid = engine
        .create_state_machine(
            "broken",
            r#"{"StartAt": "X", "States": {}}"#,
            None,
            WorkflowType::Standard,
        )
        .await;
    assert!(matches!(invalid, Err(EngineError::InvalidDefinition(d)) if !d.is_empty()));
    let machine = engine
        .create_state_machine("flow", FLOW, None, WorkflowType::Standard)
        .await
        .expect("create");
    let again = engine
        .create_state_machine("flow", FLOW, None, WorkflowType::Standard)
        .await;
    assert!(matches!(
        again,
        Err(EngineError::StateMachineAlreadyExists(_))
    ));
    let first = engine
        .start_execution(&machine.arn, Some("n1"), Some(r#"{"n": 1}"#))
        .await
        .expect("start");
    // Same name and input while running: the same execution.
    let same = engine
        .start_execution(&machine.arn, Some("n1"), Some(r#"{"n": 1}"#))
        .await
        .expect("idempotent start");
    assert_eq!(same.arn, first.arn);
    // Another input: refused.
    let other = engine
        .start_execution(&machine.arn, Some("n1"), Some(r#"{"n": 2}"#))
        .await;
    assert!(matches!(other, Err(EngineError::ExecutionAlreadyExists(_))));
    let bad_input = engine
        .start_execution(&machine.arn, None, Some("{nope"))
        .await;
    assert!(matches!(
        bad_input,
        Err(EngineError::InvalidExecutionInput(_))
    ));
    let missing = engine
        .start_execution(
            "arn:aws:states:us-east-1:111111111111:stateMachine:nope",
            None,
            None,
        )
        .await;
    assert!(matches!(
        missing,
        Err(EngineError::StateMachineDoesNotExist(_))
    ));
    // A generated name is a UUID.
    let unnamed = engine
        .start_execution(&machine.arn, None, None)
        .await
        .expect("start");
    assert_eq!(unnamed.name.len(), 36, "{}", unnamed.name);
}

#[tokio::test(start_paused = true)]
async fn stop_aborts_a_running_execution() {
    let engine = engine(
        Arc::new(MemoryStore::new()),
        Arc::default(),
        TokioClock::new(),
    );
    let machine = engine
        .create_state_machine("flow", FLOW, None, WorkflowType::Standard)
        .await
        .expect("create");
    let run = engine
        .start_execution(&machine.arn, Some("s"), Some(r#"{"n": 1}"#))
        .await
        .expect("start");
    tokio::time::sleep(std::time::Duration::from_secs(10)).await;
    engine
        .stop_execution(&run.arn, Some("Cancelled".into()), Some("by a test".into()))
        .expect("stop");
    let done = engine.wait_for(&run.arn).await.expect("wait");
    assert_eq!(done.status, ExecutionStatus::Aborted);
    assert_eq!(done.error.as_deref(), Some("Cancelled"));
}

/// A paused current-thread runtime: dropping it ends every task, as a
/// crash ends the process.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime")
}

/// Starts 5 executions, "crashes" after `crash_after_secs` (the first
/// runtime is dropped with every task in it), restarts on the same
/// sled directory, and checks every execution ends as it should.
fn crash_and_restart(task_delay_ms: u64, crash_after_secs: u64) -> u32 {
    let dir = std::env::temp_dir().join(format!(
        "stepline-engine-restart-{}-{task_delay_ms}-{crash_after_secs}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let runner = Arc::new(Echo {
        delay_ms: task_delay_ms,
        ..Echo::default()
    });
    let arns = runtime().block_on(async {
        let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir).expect("open"));
        let engine = engine(store, Arc::clone(&runner), TokioClock::new());
        let machine = engine
            .create_state_machine("flow", FLOW, None, WorkflowType::Standard)
            .await
            .expect("create");
        let mut arns = Vec::new();
        for i in 0..5 {
            let input = format!(r#"{{"n": {i}}}"#);
            let run = engine
                .start_execution(&machine.arn, Some(&format!("r{i}")), Some(&input))
                .await
                .expect("start");
            arns.push(run.arn);
        }
        tokio::time::sleep(std::time::Duration::from_secs(crash_after_secs)).await;
        for arn in &arns {
            let status = engine.describe_execution(arn).expect("describe").status;
            assert_eq!(status, ExecutionStatus::Running, "open at the crash");
        }
        arns
    });
    // The first runtime is gone with its tasks; the store is closed.
    runtime().block_on(async {
        let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir).expect("reopen"));
        let engine = engine(store, Arc::clone(&runner), TokioClock::new());
        for (i, arn) in arns.iter().enumerate() {
            let done = engine.wait_for(arn).await.expect("wait");
            assert_eq!(done.status, ExecutionStatus::Succeeded, "{arn}");
            let output: Value =
                serde_json::from_str(done.output.as_deref().expect("output")).expect("json");
            assert_eq!(output["work"]["echo"]["n"], json!(i));
            let len = engine.history_len(arn).expect("len");
            let ids: Vec<u64> = engine
                .history(arn, 1, len)
                .expect("history")
                .iter()
                .map(|e| e.id)
                .collect();
            assert_eq!(ids, (1..=len).collect::<Vec<_>>(), "contiguous ids");
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
    runner.total.load(Ordering::SeqCst)
}

#[test]
fn a_restart_resumes_executions_waiting_on_a_timer() {
    // Tasks answered before the crash are not run again.
    assert_eq!(crash_and_restart(0, 60), 5);
}

#[test]
fn a_restart_runs_again_the_tasks_that_were_in_flight() {
    // The crash comes while every task is running: each runs once more.
    assert_eq!(crash_and_restart(120_000, 60), 10);
}

/// Windows open over fixed intervals, for the tests.
#[derive(Debug)]
struct Intervals(Vec<(DateTime<Utc>, DateTime<Utc>)>);

impl crate::windows::Calendar for Intervals {
    fn is_open(&self, t: DateTime<Utc>) -> bool {
        self.0.iter().any(|(from, to)| *from <= t && t < *to)
    }

    fn next_open(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.is_open(t) {
            return Some(t);
        }
        self.0.iter().map(|(from, _)| *from).find(|from| *from > t)
    }

    fn describe(&self) -> String {
        "the test's windows".into()
    }
}

const TWO_TASKS: &str = r#"{
  "StartAt": "First",
  "States": {
    "First": {"Type": "Task", "Resource": "stepline:process:echo", "ResultPath": "$.first", "Next": "Second"},
    "Second": {"Type": "Task", "Resource": "stepline:process:echo", "ResultPath": "$.second", "End": true}
  }
}"#;

/// An engine on a manual clock at `start` whose state machine `windowed`
/// has `windows` with `outside` and `drain`.
async fn windowed(
    start: DateTime<Utc>,
    windows: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    outside: crate::windows::Outside,
    drain: bool,
    runner: Arc<Echo>,
) -> (
    Engine,
    Arc<stepline_language::clock::ManualClock>,
    String,
    tokio::sync::mpsc::UnboundedReceiver<crate::windows::OutsideWindow>,
) {
    let clock = Arc::new(stepline_language::clock::ManualClock::new(start));
    let (alerts, alerted) = tokio::sync::mpsc::unbounded_channel();
    let mut config = EngineConfig::default();
    config.windows.insert(
        "windowed".into(),
        Arc::new(crate::windows::WindowRule {
            calendar: Arc::new(Intervals(windows)),
            outside,
            drain,
        }),
    );
    config.window_alerts.push(alerts);
    let engine = Engine::open(
        Arc::new(MemoryStore::new()),
        runner,
        Arc::clone(&clock) as Arc<dyn Clock>,
        config,
    )
    .expect("open");
    let machine = engine
        .create_state_machine("windowed", TWO_TASKS, None, WorkflowType::Standard)
        .await
        .expect("create");
    (engine, clock, machine.arn, alerted)
}

/// Lets the engine's tasks run (real time, a little).
async fn settle() {
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
}

/// A start outside its windows is held, a stopped one never runs, and the
/// others start once when the clock reaches the window.
#[tokio::test]
async fn a_held_start_waits_for_its_window_on_the_engines_clock() {
    let start = Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("date");
    let opens = start + chrono::Duration::hours(2);
    let runner = Arc::new(Echo::default());
    let (engine, clock, machine, _) = windowed(
        start,
        vec![(opens, opens + chrono::Duration::hours(1))],
        crate::windows::Outside::Hold,
        false,
        Arc::clone(&runner),
    )
    .await;
    let held = engine
        .start_execution(&machine, Some("held"), None)
        .await
        .expect("start");
    let stopped = engine
        .start_execution(&machine, Some("stopped"), None)
        .await
        .expect("start");
    assert_eq!(held.status, ExecutionStatus::Running);
    assert_eq!(engine.held_until(&held), Some(opens));
    engine
        .stop_execution(&stopped.arn, Some("No".into()), None)
        .expect("stop");
    clock.advance(chrono::Duration::minutes(119));
    settle().await;
    assert_eq!(
        runner.total.load(Ordering::SeqCst),
        0,
        "not before it opens"
    );
    assert!(
        engine
            .metrics_text()
            .contains("stepline_window_held{state_machine=\"windowed\"} 1")
    );
    clock.advance(chrono::Duration::minutes(1));
    let ended = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        engine.wait_for(&held.arn),
    )
    .await
    .expect("it runs when the window opens")
    .expect("wait");
    assert_eq!(ended.status, ExecutionStatus::Succeeded);
    assert_eq!(
        runner.total.load(Ordering::SeqCst),
        2,
        "two tasks, once each"
    );
    let history = engine.history(&held.arn, 1, 1).expect("history");
    assert_eq!(
        history[0].timestamp, opens,
        "started when the window opened"
    );
    let stopped = engine.describe_execution(&stopped.arn).expect("describe");
    assert_eq!(stopped.status, ExecutionStatus::Aborted);
    assert_eq!(engine.history_len(&stopped.arn).expect("len"), 0);
}

/// Refused: an error naming the windows, nothing stored. Alerted: it runs
/// and the observers hear of it once.
#[tokio::test]
async fn refused_and_alerted_starts() {
    let start = Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("date");
    let opens = start + chrono::Duration::hours(2);
    let window = vec![(opens, opens + chrono::Duration::hours(1))];
    let runner = Arc::new(Echo::default());
    let (engine, _, machine, _) = windowed(
        start,
        window.clone(),
        crate::windows::Outside::Refuse,
        false,
        Arc::clone(&runner),
    )
    .await;
    let refused = engine
        .start_execution(&machine, Some("no"), None)
        .await
        .expect_err("refused");
    let EngineError::OutsideWindow(message) = &refused else {
        panic!("{refused:?}");
    };
    assert!(
        message.contains("the test's windows") && message.contains("2026-01-01T02:00:00Z"),
        "{message}"
    );
    assert!(
        engine
            .describe_execution(&format!(
                "{}:no",
                machine.replace(":stateMachine:", ":execution:")
            ))
            .is_err()
    );

    let (engine, _, machine, mut alerted) = windowed(
        start,
        window,
        crate::windows::Outside::Alert,
        false,
        Arc::clone(&runner),
    )
    .await;
    let record = engine
        .start_execution(&machine, Some("anyway"), None)
        .await
        .expect("start");
    let ended = engine.wait_for(&record.arn).await.expect("wait");
    assert_eq!(ended.status, ExecutionStatus::Succeeded);
    let alert = alerted.recv().await.expect("an alert");
    assert_eq!(alert.execution_arn, record.arn);
    assert_eq!(alert.next_open, Some(opens));
    assert!(alerted.try_recv().is_err(), "one alert");
    // Kept in the store until its delivery is reported.
    assert_eq!(engine.pending_window_alerts(), std::slice::from_ref(&alert));
    // A start of a name taken alerts nothing more.
    engine
        .start_execution(&machine, Some("anyway"), None)
        .await
        .expect_err("the name is taken");
    assert!(alerted.try_recv().is_err(), "still one alert");
    assert_eq!(engine.pending_window_alerts(), std::slice::from_ref(&alert));
    engine.window_alert_delivered(&alert.execution_arn);
    assert!(engine.pending_window_alerts().is_empty());
}

/// Answers `First` once the test adds a permit, `Second` at once; counts
/// the calls of each.
struct Gate {
    open: tokio::sync::Semaphore,
    calls: Mutex<Vec<String>>,
}

impl TaskRunner for Arc<Gate> {
    fn run(&self, call: TaskCall) -> TaskFuture {
        let gate = Arc::clone(self);
        Box::pin(async move {
            gate.calls
                .lock()
                .expect("lock")
                .push(call.request.state_name.clone());
            if call.request.state_name == "First" {
                gate.open.acquire().await.expect("gate").forget();
            }
            Ok(json!({}))
        })
    }
}

/// Draining: the task running when the window closes finishes; the next
/// one waits (listed) and is called when the next window opens.
#[tokio::test]
async fn a_draining_state_machine_calls_no_task_between_windows() {
    let start = Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("date");
    let reopens = start + chrono::Duration::hours(5);
    let clock = Arc::new(stepline_language::clock::ManualClock::new(start));
    let mut config = EngineConfig::default();
    config.windows.insert(
        "windowed".into(),
        Arc::new(crate::windows::WindowRule {
            calendar: Arc::new(Intervals(vec![
                (start, start + chrono::Duration::hours(1)),
                (reopens, reopens + chrono::Duration::hours(1)),
            ])),
            outside: crate::windows::Outside::Hold,
            drain: true,
        }),
    );
    let gate = Arc::new(Gate {
        open: tokio::sync::Semaphore::new(0),
        calls: Mutex::default(),
    });
    let engine = Engine::open(
        Arc::new(MemoryStore::new()),
        Arc::new(Arc::clone(&gate)),
        Arc::clone(&clock) as Arc<dyn Clock>,
        config,
    )
    .expect("open");
    let machine = engine
        .create_state_machine("windowed", TWO_TASKS, None, WorkflowType::Standard)
        .await
        .expect("create");
    let record = engine
        .start_execution(&machine.arn, Some("drained"), None)
        .await
        .expect("start");
    let calls = || gate.calls.lock().expect("lock").clone();
    while calls().is_empty() {
        settle().await;
    }
    // The window closes while First runs; First finishes.
    clock.advance(chrono::Duration::hours(2));
    gate.open.add_permits(1);
    settle().await;
    assert_eq!(calls(), ["First"], "Second is not called between windows");
    let waits = engine.drain_waits(&record.arn);
    assert_eq!(
        waits,
        [crate::windows::DrainWait {
            state_name: "Second".into(),
            until: reopens
        }]
    );
    assert!(
        engine
            .metrics_text()
            .contains("stepline_window_draining_tasks{state_machine=\"windowed\"} 1")
    );
    clock.advance_to(reopens);
    let ended = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        engine.wait_for(&record.arn),
    )
    .await
    .expect("runs in the next window")
    .expect("wait");
    assert_eq!(ended.status, ExecutionStatus::Succeeded);
    assert_eq!(calls(), ["First", "Second"]);
    assert!(engine.drain_waits(&record.arn).is_empty());
}

/// A held execution is held again from the store when the engine opens;
/// one whose window opened and closed while the engine was away is held
/// until the next window, then starts once.
#[tokio::test]
async fn held_executions_survive_a_restart_and_wait_for_an_open_window() {
    let start = Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("date");
    let (first, second) = (
        start + chrono::Duration::hours(2),
        start + chrono::Duration::hours(10),
    );
    let clock = Arc::new(stepline_language::clock::ManualClock::new(start));
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let runner = Arc::new(Echo::default());
    let open = || {
        let mut config = EngineConfig::default();
        config.windows.insert(
            "windowed".into(),
            Arc::new(crate::windows::WindowRule {
                calendar: Arc::new(Intervals(vec![
                    (first, first + chrono::Duration::hours(1)),
                    (second, second + chrono::Duration::hours(1)),
                ])),
                outside: crate::windows::Outside::Hold,
                drain: false,
            }),
        );
        Engine::open(
            Arc::clone(&store),
            Arc::clone(&runner) as Arc<dyn TaskRunner>,
            Arc::clone(&clock) as Arc<dyn Clock>,
            config,
        )
        .expect("open")
    };
    let engine = open();
    let machine = engine
        .create_state_machine("windowed", TWO_TASKS, None, WorkflowType::Standard)
        .await
        .expect("create");
    let held = engine
        .start_execution(&machine.arn, Some("held"), None)
        .await
        .expect("start");
    drop(engine);
    settle().await;
    // Away for the whole first window.
    clock.advance(chrono::Duration::hours(4));
    let engine = open();
    settle().await;
    let record = engine.describe_execution(&held.arn).expect("describe");
    assert_eq!(engine.held_until(&record), Some(second), "held again");
    assert_eq!(runner.total.load(Ordering::SeqCst), 0);
    clock.advance_to(second);
    let ended = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        engine.wait_for(&held.arn),
    )
    .await
    .expect("runs in the next window")
    .expect("wait");
    assert_eq!(ended.status, ExecutionStatus::Succeeded);
    assert_eq!(runner.total.load(Ordering::SeqCst), 2, "once");
}

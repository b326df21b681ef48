//! Waiting executions: the memory each one holds and the time to recover
//! them all after a restart. `cargo bench -p stepline-runtime --bench
//! recovery` (100,000 executions; `STEPLINE_BENCH_EXECUTIONS=N` for
//! another count). Prints its figures; they go to docs/performance.md.
//!
//! Phase one starts N executions of a small machine (a Pass, then a Wait
//! of an hour) on a real sled directory and measures the resident memory
//! they add once every one is waiting. Phase two runs in a fresh process
//! (this program again, so that phase one's heap does not count): it opens
//! the engine on the same directory, which resumes every open execution,
//! and measures how long that takes and the memory it adds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use stepline_language::interp::Failure;
use stepline_runtime::{Engine, EngineConfig, TaskCall, TaskFuture, TaskRunner, WallClock};
use stepline_store::{SledStore, Store, WorkflowType};

const MACHINE: &str = r#"{
  "StartAt": "Prepare",
  "States": {
    "Prepare": {"Type": "Pass", "Parameters": {"order.$": "$.order", "stage": "waiting"}, "Next": "Hold"},
    "Hold": {"Type": "Wait", "Seconds": 3600, "End": true}
  }
}"#;

const RECOVER: &str = "--recover-phase";

struct NoTasks;

impl TaskRunner for NoTasks {
    fn run(&self, _: TaskCall) -> TaskFuture {
        Box::pin(async { Err(Failure::new("States.TaskFailed", "no tasks in benchmarks")) })
    }
}

/// Resident set size of this process, in bytes.
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// sled's page cache, bounded so that the figures show the engine's own
/// memory (`STEPLINE_BENCH_CACHE_MIB`, default 32).
fn cache_bytes() -> u64 {
    std::env::var("STEPLINE_BENCH_CACHE_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32)
        * 1024
        * 1024
}

fn open(dir: &std::path::Path) -> (Arc<dyn Store>, Engine) {
    let store: Arc<dyn Store> =
        Arc::new(SledStore::open_with_cache(dir, cache_bytes()).expect("open"));
    let engine = Engine::open(
        Arc::clone(&store),
        Arc::new(NoTasks),
        Arc::new(WallClock),
        EngineConfig::default(),
    )
    .expect("engine");
    (store, engine)
}

/// Waits until `n` executions are stored: each reached its Wait in its
/// first step.
async fn until_waiting(store: &dyn Store, n: usize) {
    loop {
        if store.open_executions().expect("open executions").len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn start_phase(dir: &std::path::Path, n: usize) {
    let runtime = runtime();
    runtime.block_on(async {
        let (store, engine) = open(dir);
        let machine = engine
            .create_state_machine("hold", MACHINE, None, WorkflowType::Standard).await
            .expect("create");
        let before = resident_bytes();
        let started = Instant::now();
        let mut running = tokio::task::JoinSet::new();
        for i in 0..n {
            if running.len() >= 512 {
                running.join_next().await.expect("a start").expect("join");
            }
            let engine = engine.clone();
            let arn = machine.arn.clone();
            running.spawn(async move {
                let input = format!(r#"{{"order": {{"id": "o-{i}", "items": 3, "total": 42.5}}}}"#);
                engine
                    .start_execution(&arn, Some(&format!("w{i}")), Some(&input))
                    .await
                    .expect("start");
            });
        }
        while running.join_next().await.is_some() {}
        until_waiting(&*store, n).await;
        let took = started.elapsed().as_secs_f64();
        let grown = resident_bytes().saturating_sub(before);
        println!(
            "start: {n} executions waiting after {took:.1} s ({:.0} starts/s); resident memory +{:.1} MiB, {:.0} bytes per waiting execution",
            n as f64 / took,
            grown as f64 / 1048576.0,
            grown as f64 / n as f64
        );
        engine.flush_now().await.expect("flush");
    });
}

fn recover_phase(dir: &std::path::Path, n: usize) {
    let runtime = runtime();
    runtime.block_on(async {
        let before = resident_bytes();
        let started = Instant::now();
        let (store, engine) = open(dir);
        let took = started.elapsed().as_secs_f64();
        // Let the resumed executions' tasks run once (they re-arm timers).
        tokio::time::sleep(Duration::from_millis(500)).await;
        let grown = resident_bytes().saturating_sub(before);
        let open_now = engine
            .metrics_text()
            .lines()
            .find(|l| l.starts_with("stepline_open_executions"))
            .unwrap_or("")
            .to_owned();
        println!(
            "recover: {n} open executions resumed in {took:.2} s ({:.0}/s); resident memory +{:.1} MiB ({:.0} bytes per waiting execution, store cache included); {open_now}",
            n as f64 / took,
            grown as f64 / 1048576.0,
            grown as f64 / n as f64
        );
        drop(store);
    });
}

fn main() {
    let n: usize = std::env::var("STEPLINE_BENCH_EXECUTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == RECOVER) {
        recover_phase(std::path::Path::new(&args[at + 1]), n);
        return;
    }
    let dir = std::env::temp_dir().join(format!("stepline-bench-recovery-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    start_phase(&dir, n);
    let status = std::process::Command::new(std::env::current_exe().expect("self"))
        .arg(RECOVER)
        .arg(&dir)
        .status()
        .expect("the recovery phase runs");
    assert!(status.success());
    let _ = std::fs::remove_dir_all(&dir);
}

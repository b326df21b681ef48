//! What a page of a listing costs with many executions stored in sled: a
//! page of 100, unfiltered and filtered (machine, status, redrive, and a
//! rare status), first pages and pages deep in the order by cursor.
//!
//! `cargo bench -p stepline-runtime --bench listing` stores 100,000
//! executions over 10 state machines; `STEPLINE_BENCH_EXECUTIONS=1000000`
//! the full size the listing is held to (writing them takes about a
//! minute, once), `STEPLINE_BENCH_MACHINES=N` another spread. The store is
//! written once into `listing-bench-N[-MACHINES]/` in the target directory
//! (or `STEPLINE_BENCH_DIR`) and reused by later runs; delete it to write
//! it again. Besides criterion's figures, each case prints the p50 and p99 of
//! every page it timed (warm-up included). Figures go to
//! docs/performance.md ("Listing executions").

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use stepline_store::{
    ExecutionQuery, ExecutionRecord, ExecutionStatus, Executions, ExecutionsOf, ListCursor,
    SledStore, Store, WriteBatch, WriteOp,
};

const PAGE: usize = 100;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

fn executions() -> u64 {
    env_or("STEPLINE_BENCH_EXECUTIONS", 100_000)
}

/// How many state machines the executions are spread over: a page of
/// every execution merges each machine's runs.
fn machines() -> u64 {
    env_or("STEPLINE_BENCH_MACHINES", 10)
}

fn machine_arn(m: u64) -> String {
    format!("arn:aws:states:us-east-1:123456789012:stateMachine:machine-{m}")
}

/// Execution `i`: machine `i % machines()`, started `i` ms after a fixed
/// time.
/// Of each machine's, mostly SUCCEEDED, 1 in 50 FAILED, 1 in 1,000 still
/// RUNNING, and 1 in 500 redriven once (then SUCCEEDED).
fn record(i: u64) -> ExecutionRecord {
    let t0: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().expect("time");
    let start = t0 + chrono::Duration::milliseconds(i as i64);
    let nth = i / machines();
    let status = if nth % 1000 == 7 {
        ExecutionStatus::Running
    } else if nth % 50 == 3 {
        ExecutionStatus::Failed
    } else {
        ExecutionStatus::Succeeded
    };
    let machine = i % machines();
    ExecutionRecord {
        arn: format!(
            "arn:aws:states:us-east-1:123456789012:execution:machine-{machine}:run-{i:07}"
        ),
        state_machine_arn: machine_arn(machine),
        revision: 1,
        name: format!("run-{i:07}"),
        input: format!(
            r#"{{"order": {i}, "lines": [{{"sku": "A-1", "quantity": 2}}, {{"sku": "B-7", "quantity": 1}}], "note": "{}"}}"#,
            "x".repeat(200)
        ),
        status,
        start,
        stop: (status != ExecutionStatus::Running)
            .then(|| start + chrono::Duration::milliseconds(40)),
        output: (status == ExecutionStatus::Succeeded).then(|| r#"{"ok": true}"#.to_owned()),
        error: (status == ExecutionStatus::Failed).then(|| "States.TaskFailed".to_owned()),
        cause: None,
        seed: i,
        redrive_count: u32::from(nth % 500 == 11),
        token_secret: String::new(),
        test_case: None,
        map_run: None,
        queued: None,
    }
}

/// `STEPLINE_BENCH_DIR`, or the target directory this bench was built in
/// (it runs from `target/release/deps/`).
fn data_dir(n: u64, machines: u64) -> PathBuf {
    let base = std::env::var_os("STEPLINE_BENCH_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            let exe = std::env::current_exe().ok()?;
            Some(exe.parent()?.parent()?.parent()?.to_path_buf())
        })
        .unwrap_or_else(std::env::temp_dir);
    if machines == 10 {
        base.join(format!("listing-bench-{n}"))
    } else {
        base.join(format!("listing-bench-{n}-{machines}"))
    }
}

/// The store with every execution in it: written now, or by an earlier run.
fn store() -> &'static SledStore {
    static STORE: OnceLock<SledStore> = OnceLock::new();
    STORE.get_or_init(|| {
        let n = executions();
        let dir = data_dir(n, machines());
        let complete = dir.join("complete");
        if !complete.exists() {
            let _ = std::fs::remove_dir_all(&dir);
            let store = SledStore::open(&dir).expect("open");
            let started = Instant::now();
            const BATCH: u64 = 10_000;
            for first in (0..n).step_by(BATCH as usize) {
                let mut batch = WriteBatch::new();
                for i in first..(first + BATCH).min(n) {
                    batch.push(WriteOp::CreateExecution(record(i)));
                }
                store.apply(&batch).expect("apply");
                store.flush().expect("flush");
            }
            eprintln!(
                "wrote {n} executions into {} in {:.1} s",
                dir.display(),
                started.elapsed().as_secs_f64()
            );
            drop(store);
            std::fs::write(&complete, b"").expect("mark");
        }
        SledStore::open(&dir).expect("open")
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn listing(c: &mut Criterion) {
    let n = executions();
    let store = store();
    let query = |of: ExecutionsOf,
                 status: Option<ExecutionStatus>,
                 redriven: Option<bool>,
                 after: Option<u64>| ExecutionQuery {
        status,
        redriven,
        after: after.map(|i| ListCursor::of(&record(i).summary())),
        ..ExecutionQuery::new(of, PAGE)
    };
    let all = || ExecutionsOf::All;
    let machine = || ExecutionsOf::Machine(machine_arn(3));
    // A cursor halfway through the order, on machine 3's execution.
    let halfway = Some(n / 2 / machines() * machines() + 3);
    use ExecutionStatus::*;
    let cases = [
        ("all", query(all(), None, None, None)),
        ("all, FAILED", query(all(), Some(Failed), None, None)),
        ("all, REDRIVEN", query(all(), None, Some(true), None)),
        ("all, halfway", query(all(), None, None, halfway)),
        ("machine", query(machine(), None, None, None)),
        (
            "machine, SUCCEEDED",
            query(machine(), Some(Succeeded), None, None),
        ),
        (
            "machine, FAILED",
            query(machine(), Some(Failed), None, None),
        ),
        (
            "machine, RUNNING",
            query(machine(), Some(Running), None, None),
        ),
        (
            "machine, NOT_REDRIVEN",
            query(machine(), None, Some(false), None),
        ),
        ("machine, halfway", query(machine(), None, None, halfway)),
        (
            "machine, FAILED, halfway",
            query(machine(), Some(Failed), None, halfway),
        ),
    ];
    let mut group = c.benchmark_group(format!("listing/{n}/{}", machines()));
    group
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let mut summary = Vec::new();
    for (label, q) in &cases {
        // A full page, unless the store is too small for a rare filter.
        let first = store.list_executions(q).expect("list");
        assert!(
            first.executions.len() == PAGE || first.next.is_none(),
            "{label}: a short page with more to come"
        );
        let mut times = Vec::new();
        group.bench_function(*label, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let started = Instant::now();
                    black_box(store.list_executions(q).expect("list"));
                    let took = started.elapsed();
                    times.push(took);
                    total += took;
                }
                total
            })
        });
        times.sort();
        summary.push(format!(
            "{label:<26} {:>4} listed  p50 {:>7.3} ms  p99 {:>7.3} ms  ({} pages)",
            first.executions.len(),
            percentile(&times, 0.50).as_secs_f64() * 1e3,
            percentile(&times, 0.99).as_secs_f64() * 1e3,
            times.len()
        ));
    }
    group.finish();
    println!(
        "\n{n} executions, {} machines, pages of {PAGE}:",
        machines()
    );
    for line in summary {
        println!("{line}");
    }
}

criterion_group!(benches, listing);
criterion_main!(benches);

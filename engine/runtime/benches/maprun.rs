//! Distributed Map throughput and memory: items per second through a Map
//! Run whose children are Pass states or `/bin/cat` process tasks, and the
//! peak memory of a Map Run as its input file grows.
//!
//! ```sh
//! cargo bench -p stepline-runtime --bench maprun                 # every case
//! cargo bench -p stepline-runtime --bench maprun -- memory       # only cases whose label has a word
//! ```
//!
//! Throughput cases run one execution whose distributed Map reads a JSONL
//! file from a bucket and starts one child per item (or per batch), and
//! print items per second from StartExecution to the end (results written
//! by a ResultWriter, so the Map's own result stays small). Memory cases
//! each run in a fresh process (this binary started again with the case's
//! label), so the peak resident size (`VmHWM`) is that case's alone: a CSV
//! of N rows in batches of 1,000 with a ResultWriter, N from 100,000 to
//! 10,000,000 rows (up to ~300 MB of CSV).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use stepline_runtime::maprun::Buckets;
use stepline_runtime::tasks::Invokers;
use stepline_runtime::tasks::config::{ProcessConfig, TaskConfig};
use stepline_runtime::{Engine, EngineConfig, TaskCall, TaskFuture, TaskRunner, WallClock};
use stepline_store::{MemoryStore, SledStore, Store, WorkflowType};

struct NoTasks;

/// A throughput case: label, items, batch size, the child state, on sled,
/// the task runner.
type Case = (
    &'static str,
    usize,
    Option<u64>,
    serde_json::Value,
    bool,
    Arc<dyn TaskRunner>,
);

impl TaskRunner for NoTasks {
    fn run(&self, _call: TaskCall) -> TaskFuture {
        Box::pin(async { Err(stepline_language::interp::Failure::new("NoTasks", "none")) })
    }
}

fn scratch(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "stepline-bench-maprun-{label}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("bucket")).expect("scratch dir");
    dir
}

/// A distributed Map over `key` in bucket `data`, children running `child`.
fn definition(
    input_type: &str,
    batch: Option<u64>,
    writer: bool,
    child: serde_json::Value,
) -> String {
    let concurrency: u64 = std::env::var("STEPLINE_BENCH_MAX_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let mut map = json!({
        "Type": "Map",
        "MaxConcurrency": concurrency,
        "ItemReader": {
            "Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": input_type},
            "Parameters": {"Bucket": "data", "Key": "items"}
        },
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "Child",
            "States": {"Child": child}
        },
        "ResultSelector": {"done": true},
        "End": true
    });
    if let Some(n) = batch {
        map["ItemBatcher"] = json!({"MaxItemsPerBatch": n});
    }
    if writer {
        map["ResultWriter"] = json!({
            "Resource": "arn:aws:states:::s3:putObject",
            "Parameters": {"Bucket": "data", "Prefix": "results"}
        });
    }
    json!({"StartAt": "Each", "States": {"Each": map}}).to_string()
}

/// Runs one execution of `definition` on a fresh engine; seconds taken.
fn run_once(
    runtime: &tokio::runtime::Runtime,
    dir: &Path,
    store: Arc<dyn Store>,
    runner: Arc<dyn TaskRunner>,
    definition: &str,
) -> f64 {
    let config = EngineConfig {
        buckets: Buckets::new(BTreeMap::from([("data".to_owned(), dir.join("bucket"))])),
        retention: None,
        ..EngineConfig::default()
    };
    runtime.block_on(async {
        let engine = Engine::open(store, runner, Arc::new(WallClock), config).expect("engine");
        let machine = engine
            .create_state_machine("bench", definition, None, WorkflowType::Standard)
            .await
            .expect("create");
        let began = Instant::now();
        let started = engine
            .start_execution(&machine.arn, None, None)
            .await
            .expect("start");
        let ended = engine.wait_for(&started.arn).await.expect("end");
        assert_eq!(
            ended.status.as_str(),
            "SUCCEEDED",
            "{:?} {:?}",
            ended.error,
            ended.cause
        );
        began.elapsed().as_secs_f64()
    })
}

fn write_jsonl(path: &Path, n: usize) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("file"));
    for i in 0..n {
        writeln!(out, "{{\"id\": {i}, \"amount\": {}}}", i % 100).expect("write");
    }
    out.flush().expect("flush");
}

fn write_csv(path: &Path, n: usize) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("file"));
    writeln!(out, "id,customer,amount,note").expect("write");
    for i in 0..n {
        writeln!(
            out,
            "{i},customer-{},{}.{:02},\"note, {i}\"",
            i % 1000,
            i % 500,
            i % 100
        )
        .expect("write");
    }
    out.flush().expect("flush");
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// One memory case, in this (fresh) process: prints one line.
fn memory_case(rows: usize) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = scratch(&format!("memory-{rows}"));
    write_csv(&dir.join("bucket/items"), rows);
    let size = std::fs::metadata(dir.join("bucket/items")).map_or(0, |m| m.len());
    let before = peak_rss_kib();
    // `STEPLINE_BENCH_CACHE_MIB` bounds sled's page cache (default: sled's
    // own, 1 GiB), to tell the engine's memory from sled's cache.
    let store: Arc<dyn Store> = Arc::new(
        match std::env::var("STEPLINE_BENCH_CACHE_MIB")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
        {
            Some(mib) => SledStore::open_with_cache(&dir.join("store"), mib * 1024 * 1024),
            None => SledStore::open(&dir.join("store")),
        }
        .expect("sled"),
    );
    let child =
        json!({"Type": "Pass", "Parameters": {"n.$": "States.ArrayLength($.Items)"}, "End": true});
    let seconds = run_once(
        &runtime,
        &dir,
        store,
        Arc::new(NoTasks),
        &definition("CSV", Some(1000), true, child),
    );
    println!(
        "memory-{rows}: {:.0} MB of CSV, {rows} rows in {:.2} s ({:.0} rows/s); peak RSS {} MiB (before the run {} MiB)",
        size as f64 / 1e6,
        seconds,
        rows as f64 / seconds,
        peak_rss_kib() / 1024,
        before / 1024
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The ItemReader alone over a CSV of `rows` rows, in this (fresh)
/// process: every row parsed into an item, nothing kept.
fn reader_case(rows: usize) {
    let dir = scratch(&format!("reader-{rows}"));
    write_csv(&dir.join("bucket/items"), rows);
    let size = std::fs::metadata(dir.join("bucket/items")).map_or(0, |m| m.len());
    let buckets = Buckets::new(BTreeMap::from([("data".to_owned(), dir.join("bucket"))]));
    let spec = stepline_language::map_run::ReaderSpec {
        resource: "arn:aws:states:::s3:getObject".into(),
        parameters: json!({"Bucket": "data", "Key": "items"}),
        input_type: Some("CSV".into()),
        csv_header_location: None,
        csv_headers: None,
        csv_delimiter: None,
        max_items: None,
    };
    let began = Instant::now();
    let mut count = 0usize;
    for item in stepline_runtime::maprun::reader::open(&spec, &buckets).expect("open") {
        item.expect("item");
        count += 1;
    }
    let seconds = began.elapsed().as_secs_f64();
    assert_eq!(count, rows);
    println!(
        "reader-memory-{rows}: {:.0} MB of CSV read in {seconds:.2} s ({:.0} rows/s); peak RSS {} MiB",
        size as f64 / 1e6,
        rows as f64 / seconds,
        peak_rss_kib() / 1024
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if let Some(rows) = args.first().and_then(|a| a.strip_prefix("memory-case-")) {
        memory_case(rows.parse().expect("rows"));
        return;
    }
    if let Some(rows) = args.first().and_then(|a| a.strip_prefix("reader-case-")) {
        reader_case(rows.parse().expect("rows"));
        return;
    }
    let wanted = |label: &str| args.is_empty() || args.iter().any(|a| label.contains(a.as_str()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "{} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let pass = json!({"Type": "Pass", "End": true});
    let cat = ProcessConfig {
        command: PathBuf::from("/bin/cat"),
        args: Vec::new(),
        working_dir: None,
        env: BTreeMap::new(),
        env_allow: Vec::new(),
        timeout_seconds: None,
        max_stdout_bytes: 1024 * 1024,
        stderr_tail_bytes: 16 * 1024,
    };
    let mut tasks = TaskConfig::default();
    tasks.processes.insert("cat".into(), cat);
    let invokers: Arc<dyn TaskRunner> = Arc::new(Invokers::new(tasks).expect("invokers"));
    let process = json!({"Type": "Task", "Resource": "stepline:process:cat", "End": true});
    let cases: Vec<Case> = vec![
        (
            "pass-memory",
            20_000,
            None,
            pass.clone(),
            false,
            Arc::new(NoTasks),
        ),
        (
            "pass-sled",
            20_000,
            None,
            pass.clone(),
            true,
            Arc::new(NoTasks),
        ),
        (
            "pass-batched-100-sled",
            1_000_000,
            Some(100),
            pass.clone(),
            true,
            Arc::new(NoTasks),
        ),
        (
            "process-sled",
            5_000,
            None,
            process.clone(),
            true,
            Arc::clone(&invokers),
        ),
        (
            "process-batched-100-sled",
            200_000,
            Some(100),
            process,
            true,
            invokers,
        ),
    ];
    for (label, items, batch, child, sled, runner) in cases {
        if !wanted(label) {
            continue;
        }
        let dir = scratch(label);
        write_jsonl(&dir.join("bucket/items"), items);
        let store: Arc<dyn Store> = if sled {
            Arc::new(SledStore::open(&dir.join("store")).expect("sled"))
        } else {
            Arc::new(MemoryStore::new())
        };
        let seconds = run_once(
            &runtime,
            &dir,
            store,
            runner,
            &definition("JSONL", batch, true, child),
        );
        let children = batch.map_or(items, |b| items.div_ceil(b as usize));
        println!(
            "{label}: {items} items ({children} children) in {seconds:.2} s: {:.0} items/s, {:.0} children/s",
            items as f64 / seconds,
            children as f64 / seconds
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
    // Memory: each size in a process of its own, the reader alone and the
    // whole Map Run.
    for (kind, rows) in [
        ("reader", 100_000usize),
        ("reader", 1_000_000),
        ("reader", 10_000_000),
        ("memory", 100_000),
        ("memory", 1_000_000),
        ("memory", 10_000_000),
    ] {
        let label = match kind {
            "reader" => format!("reader-memory-{rows}"),
            _ => format!("memory-{rows}"),
        };
        if !wanted(&label) {
            continue;
        }
        let status = std::process::Command::new(std::env::current_exe().expect("exe"))
            .arg(format!("{kind}-case-{rows}"))
            .status()
            .expect("memory case");
        assert!(status.success(), "{label}");
    }
}

//! Task throughput: HTTP and process tasks run by the durable engine on a
//! real sled store, against the same calls made without the engine.
//! `cargo bench -p stepline-runtime --bench tasks [-- WORD...]` (only the
//! cases whose label contains a WORD). Prints one line per case; figures
//! go to docs/performance.md.
//!
//! Every case keeps C operations in flight (C workers, each starting the
//! next operation when its last one ends) for a fixed time, at C = 1, 16
//! and 256, and reports operations per second, the mean latency and the
//! CPU time this process spent per operation (the echo server's thread
//! excluded; for processes the children's CPU is shown apart).
//!
//! The cases, from the call alone to the whole engine:
//! - `http-direct`: a reqwest client built as the HTTP invoker builds it,
//!   POSTing a small JSON body with an Idempotency-Key header to the echo
//!   server and parsing the JSON answer: the call itself.
//! - `http-invoker`: the same call through `Invokers::run` (parameters
//!   read, allowlist checked, AWS's output shape built), no engine.
//! - `noop-memory`, `noop-sled`: a one-Task execution whose task answers at
//!   once (no I/O), on a `MemoryStore` (flush is a no-op) and on sled
//!   (flush is an fsync, shared by concurrent executions): the engine alone.
//! - `http-memory`: the HTTP task below on a `MemoryStore`: the engine and
//!   the call without durable storage.
//! - `http-engine`: a one-Task execution (`arn:aws:states:::http:invoke`)
//!   on sled with `Invokers`: start, TaskScheduled, the call, the result,
//!   the end, each step flushed before its effects.
//! - `process-direct`, `process-invoker`, `process-engine`: `/bin/cat`
//!   (echoes its stdin) spawned bare with tokio, through `Invokers::run`
//!   (own process group, empty environment, bounded reads), and as a
//!   `stepline:process:cat` task through the engine on sled.
//!
//! The echo server is a minimal HTTP/1.1 keep-alive server on its own
//! thread (a current-thread tokio runtime), written here so the figures
//! measure stepline rather than a framework.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stepline_language::asl;
use stepline_language::interp::{TaskId, TaskRequest};
use stepline_runtime::tasks::Invokers;
use stepline_runtime::tasks::config::{ProcessConfig, TaskConfig};
use stepline_runtime::{Engine, EngineConfig, TaskCall, TaskFuture, TaskRunner, WallClock};
use stepline_store::{MemoryStore, SledStore, Store, WorkflowType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long each case runs (after a short warm-up).
const MEASURE: Duration = Duration::from_secs(3);
const WARM_UP: Duration = Duration::from_millis(300);
const CONCURRENCIES: [usize; 3] = [1, 16, 256];

/// The body every call sends (and the echo server sends back).
fn payload() -> Value {
    json!({"order": {"id": 42, "items": ["a", "b", "c"], "total": 12.5}})
}

// --- The echo server --------------------------------------------------

/// Starts the echo server on its own thread; returns its address.
fn start_echo_server() -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("echo-server".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("echo runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                tx.send(listener.local_addr().expect("addr")).expect("send");
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(echo_connection(stream));
                }
            });
        })
        .expect("echo thread");
    rx.recv().expect("echo address")
}

/// Serves one keep-alive connection: each request's body is sent back as
/// `application/json`.
async fn echo_connection(mut stream: tokio::net::TcpStream) {
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        // A whole head, then the body its Content-Length announces.
        let head_end = loop {
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + length {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = &buf[head_end..head_end + length];
        let mut answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        answer.extend_from_slice(body);
        if stream.write_all(&answer).await.is_err() {
            return;
        }
        buf.drain(..head_end + length);
    }
}

// --- Measuring ----------------------------------------------------------

/// CPU time (user + system) of this process, of its reaped children, and
/// of the echo server's thread, in seconds.
#[derive(Debug, Clone, Copy, Default)]
struct Cpu {
    process: f64,
    children: f64,
    echo: f64,
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Fields 14.. of a /proc stat line (after the command name).
fn stat_fields(path: &str) -> Vec<f64> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let after = text.rsplit_once(')').map_or("", |(_, rest)| rest);
    // `after` starts at field 3 (state); utime is field 14.
    after
        .split_whitespace()
        .skip(11)
        .take(4)
        .map(|f| f.parse().unwrap_or(0.0))
        .collect()
}

fn cpu_now(ticks: f64) -> Cpu {
    let own = stat_fields("/proc/self/stat");
    let mut echo = 0.0;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            let dir = task.path();
            let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
            if comm.trim() == "echo-server" {
                let f = stat_fields(&dir.join("stat").display().to_string());
                echo += f.iter().take(2).sum::<f64>();
            }
        }
    }
    let get = |i: usize| own.get(i).copied().unwrap_or(0.0);
    Cpu {
        process: (get(0) + get(1)) / ticks,
        children: (get(2) + get(3)) / ticks,
        echo: echo / ticks,
    }
}

/// Keeps `concurrency` operations in flight for WARM_UP + MEASURE and
/// prints what was measured. `op(worker, n)` performs one operation.
async fn measure<F, Fut>(label: &str, concurrency: usize, ticks: f64, op: F)
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    if !selected(label) {
        return;
    }
    let op = Arc::new(op);
    let counting = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let latency_us = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for worker in 0..concurrency {
        let (op, counting, stop, done, latency_us) = (
            Arc::clone(&op),
            Arc::clone(&counting),
            Arc::clone(&stop),
            Arc::clone(&done),
            Arc::clone(&latency_us),
        );
        workers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let began = Instant::now();
                op(worker, n).await;
                n += 1;
                if counting.load(Ordering::Relaxed) {
                    done.fetch_add(1, Ordering::Relaxed);
                    latency_us.fetch_add(began.elapsed().as_micros() as u64, Ordering::Relaxed);
                }
            }
        }));
    }
    tokio::time::sleep(WARM_UP).await;
    let cpu_before = cpu_now(ticks);
    let started = Instant::now();
    counting.store(true, Ordering::Relaxed);
    tokio::time::sleep(MEASURE).await;
    counting.store(false, Ordering::Relaxed);
    let seconds = started.elapsed().as_secs_f64();
    let cpu_after = cpu_now(ticks);
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.expect("worker");
    }
    let ops = done.load(Ordering::Relaxed).max(1) as f64;
    let own_cpu = (cpu_after.process - cpu_after.echo) - (cpu_before.process - cpu_before.echo);
    let children = cpu_after.children - cpu_before.children;
    let mut line = format!(
        "{label:<15} concurrency {concurrency:>3}: {:>8.0} tasks/s, mean latency {:>8.1} µs, stepline CPU {:>6.1} µs/task",
        ops / seconds,
        latency_us.load(Ordering::Relaxed) as f64 / ops,
        own_cpu * 1e6 / ops,
    );
    if children > 0.0 {
        line.push_str(&format!(
            ", children CPU {:.1} µs/task",
            children * 1e6 / ops
        ));
    }
    println!("{line}");
}

/// Whether a case runs: every case, or those whose label contains one of
/// the words given after `--` (`cargo bench --bench tasks -- sled`).
fn selected(label: &str) -> bool {
    let words: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    words.is_empty() || words.iter().any(|w| label.contains(w.as_str()))
}

// --- The engine cases ---------------------------------------------------

/// Answers every task at once with its input: the engine without a call.
struct Instant0;

impl TaskRunner for Instant0 {
    fn run(&self, call: TaskCall) -> TaskFuture {
        Box::pin(async move { Ok(call.request.input) })
    }
}

fn one_task(resource: &str, parameters: Value) -> String {
    json!({"StartAt": "Work", "States": {"Work": {
        "Type": "Task", "Resource": resource, "Parameters": parameters, "End": true}}})
    .to_string()
}

/// Runs executions of `definition` on a fresh engine over `store`, one
/// case per concurrency.
async fn engine_cases(
    label: &str,
    store: Arc<dyn Store>,
    runner: Arc<dyn TaskRunner>,
    definition: &str,
    ticks: f64,
) {
    if !selected(label) {
        return;
    }
    // Kept to drop the store here, outside the measurements: a memory
    // store holding a hundred thousand histories takes seconds to free,
    // and the engine's last holder (its flusher task) would do it on a
    // runtime worker while the next case runs.
    let keep = Arc::clone(&store);
    let engine =
        Engine::open(store, runner, Arc::new(WallClock), EngineConfig::default()).expect("engine");
    let machine = engine
        .create_state_machine(label, definition, None, WorkflowType::Standard)
        .await
        .expect("create");
    let input = payload().to_string();
    for concurrency in CONCURRENCIES {
        let (engine, machine, input) = (engine.clone(), machine.arn.clone(), input.clone());
        let label_owned = label.to_owned();
        measure(label, concurrency, ticks, move |worker, n| {
            let (engine, machine, input) = (engine.clone(), machine.clone(), input.clone());
            let name = format!("{label_owned}-{concurrency}-{worker}-{n}");
            async move {
                let run = engine
                    .start_execution(&machine, Some(&name), Some(&input))
                    .await
                    .expect("start");
                let end = engine.wait_for(&run.arn).await.expect("wait");
                assert_eq!(
                    end.status,
                    stepline_store::ExecutionStatus::Succeeded,
                    "{end:?}"
                );
            }
        })
        .await;
    }
    drop(engine);
    let deadline = Instant::now() + Duration::from_secs(30);
    while Arc::strong_count(&keep) > 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(keep);
}

fn sled_dir(label: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "stepline-bench-tasks-{label}-{}",
        std::process::id()
    ))
}

fn open_sled(label: &str) -> Arc<dyn Store> {
    let dir = sled_dir(label);
    let _ = std::fs::remove_dir_all(&dir);
    Arc::new(SledStore::open(&dir).expect("open sled"))
}

fn task_call(resource: &str, input: Value, n: u64) -> TaskCall {
    TaskCall {
        handed_over: Default::default(),
        request: TaskRequest {
            task: TaskId(n),
            state_name: "Work".into(),
            resource: asl::resource::parse(resource).expect("resource"),
            input,
            timeout_seconds: None,
            heartbeat_seconds: None,
            attempt: 0,
            credentials: None,
            token: None,
            invocation: 0,
        },
        execution_arn: "arn:aws:states:us-east-1:111111111111:execution:bench:direct".into(),
        idempotency_key: format!(
            "arn:aws:states:us-east-1:111111111111:execution:bench:direct#{n}"
        ),
        logs: Default::default(),
    }
}

fn main() {
    // `cargo bench` passes --bench; a filter argument is not supported.
    let ticks = clock_ticks();
    let echo = start_echo_server();
    let url = format!("http://{echo}/echo");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
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
    let mut config = TaskConfig::default();
    config.processes.insert("cat".into(), cat);
    let invokers = Invokers::new(config).expect("invokers");
    println!(
        "{} cores; echo server at {echo}; {} s per case after {} ms of warm-up",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        MEASURE.as_secs(),
        WARM_UP.as_millis()
    );
    runtime.block_on(async {
        // The call alone: the client the HTTP invoker builds.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(64)
            .build()
            .expect("client");
        let body = payload().to_string();
        for concurrency in CONCURRENCIES {
            let (client, url, body) = (client.clone(), url.clone(), body.clone());
            measure("http-direct", concurrency, ticks, move |worker, n| {
                let request = client
                    .post(&url)
                    .header("Idempotency-Key", format!("direct-{worker}-{n}"))
                    .header("Content-Type", "application/json")
                    .body(body.clone());
                async move {
                    let response = request.send().await.expect("send");
                    assert!(response.status().is_success());
                    let bytes = response.bytes().await.expect("body");
                    let _: Value = serde_json::from_slice(&bytes).expect("json");
                }
            })
            .await;
        }

        // The same call through the invoker, no engine.
        let http_parameters = json!({
            "ApiEndpoint": url, "Method": "POST", "RequestBody": payload()});
        for concurrency in CONCURRENCIES {
            let (invokers, parameters) = (invokers.clone(), http_parameters.clone());
            measure("http-invoker", concurrency, ticks, move |worker, n| {
                let call = task_call(
                    "arn:aws:states:::http:invoke",
                    parameters.clone(),
                    ((worker as u64) << 32) | n,
                );
                let future = invokers.run(call);
                async move {
                    future.await.expect("http task");
                }
            })
            .await;
        }

        // The engine alone: a task that answers at once.
        let instant = one_task("stepline:process:none", json!({"order.$": "$.order"}));
        engine_cases(
            "noop-memory",
            Arc::new(MemoryStore::new()),
            Arc::new(Instant0),
            &instant,
            ticks,
        )
        .await;
        engine_cases(
            "noop-sled",
            open_sled("noop"),
            Arc::new(Instant0),
            &instant,
            ticks,
        )
        .await;

        // The whole thing: HTTP tasks through the engine on sled.
        let http = one_task(
            "arn:aws:states:::http:invoke",
            json!({"ApiEndpoint": url, "Method": "POST", "RequestBody.$": "$"}),
        );
        engine_cases(
            "http-memory",
            Arc::new(MemoryStore::new()),
            Arc::new(invokers.clone()),
            &http,
            ticks,
        )
        .await;
        engine_cases(
            "http-engine",
            open_sled("http"),
            Arc::new(invokers.clone()),
            &http,
            ticks,
        )
        .await;

        // Processes: /bin/cat spawned bare, through the invoker, then as a
        // task.
        let input = payload().to_string();
        for concurrency in CONCURRENCIES {
            let input = input.clone();
            measure("process-direct", concurrency, ticks, move |_, _| {
                let input = input.clone();
                async move {
                    let mut child = tokio::process::Command::new("/bin/cat")
                        .env_clear()
                        .stdin(Stdio::piped())
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped())
                        .kill_on_drop(true)
                        .spawn()
                        .expect("spawn");
                    let mut stdin = child.stdin.take().expect("stdin");
                    let mut stdout = child.stdout.take().expect("stdout");
                    let feed = async move {
                        stdin.write_all(input.as_bytes()).await.expect("write");
                        drop(stdin);
                    };
                    let mut out = Vec::new();
                    let read = stdout.read_to_end(&mut out);
                    let ((), read) = tokio::join!(feed, read);
                    read.expect("read");
                    assert!(child.wait().await.expect("wait").success());
                    let _: Value = serde_json::from_slice(&out).expect("json");
                }
            })
            .await;
        }
        let input = payload();
        for concurrency in CONCURRENCIES {
            let (invokers, input) = (invokers.clone(), input.clone());
            measure("process-invoker", concurrency, ticks, move |worker, n| {
                let call = task_call(
                    "stepline:process:cat",
                    input.clone(),
                    ((worker as u64) << 32) | n,
                );
                let future = invokers.run(call);
                async move {
                    future.await.expect("process task");
                }
            })
            .await;
        }
        let process = one_task("stepline:process:cat", json!({"order.$": "$.order"}));
        engine_cases(
            "process-engine",
            open_sled("process"),
            Arc::new(invokers.clone()),
            &process,
            ticks,
        )
        .await;
    });
    drop(runtime);
    for label in ["noop", "http", "process"] {
        let _ = std::fs::remove_dir_all(sled_dir(label));
    }
}

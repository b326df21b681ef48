//! `stepline-web-pages`: how long the REST calls of each web page take
//! with 100,000 executions stored, for docs/performance.md ("The web
//! pages"). Not a test: it prints figures and says which call, if any,
//! took longer than the pages' budget (50 ms at p95).
//!
//! It opens a sled store in `--data-dir` (default
//! `target/web-pages-N/`), and, when the store is new, fills it through the
//! engine: `--machines` state machines (a Choice that succeeds, or fails
//! with `Rejected` one time in fifty), `--executions` executions spread
//! over them in turn, of which one in a thousand waits an hour (RUNNING),
//! three triggers, and the dashboard's counts for the week's 167 earlier
//! hours (written as the engine writes them, `WriteOp::AddStats`, since
//! executions cannot be started in the past). Then it serves the store on
//! a loopback port (the real router: `stepline::http::serve`) and times
//! each page's calls over HTTP, `--rounds` times each after a warm-up.
//! A second run reuses the store.
//!
//! ```sh
//! cargo build --release -p stepline-tests --bin stepline-web-pages
//! target/release/stepline-web-pages                      # 100,000 executions
//! target/release/stepline-web-pages --executions 1000000
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stepline_runtime::{Engine, EngineConfig, TaskCall, TaskFuture, TaskRunner, WallClock};
use stepline_store::stats::{MachineStats, hour_of};
use stepline_store::{SledStore, StatsDelta, Store, WriteBatch, WriteOp};

/// The pages' budget for one call, at p95.
const BUDGET: Duration = Duration::from_millis(50);

struct Options {
    data_dir: Option<PathBuf>,
    machines: usize,
    executions: usize,
    rounds: usize,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        data_dir: None,
        machines: 10,
        executions: 100_000,
        rounds: 50,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--data-dir" => options.data_dir = Some(PathBuf::from(value()?)),
            "--machines" => options.machines = value()?.parse().map_err(|e| format!("{e}"))?,
            "--executions" => {
                options.executions = value()?.parse().map_err(|e| format!("{e}"))?;
            }
            "--rounds" => options.rounds = value()?.parse().map_err(|e| format!("{e}"))?,
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    if options.machines == 0 || options.rounds == 0 {
        return Err("--machines and --rounds must be at least 1".into());
    }
    Ok(options)
}

/// No task runs: the machines have none.
struct NoTasks;

impl TaskRunner for NoTasks {
    fn run(&self, _call: TaskCall) -> TaskFuture {
        Box::pin(async { Ok(json!({})) })
    }
}

const MACHINE: &str = r#"{"StartAt": "Wait?", "States": {
    "Wait?": {"Type": "Choice", "Choices": [{"Variable": "$.wait", "BooleanEquals": true, "Next": "Nap"}], "Default": "Check"},
    "Nap": {"Type": "Wait", "Seconds": 3600, "Next": "Check"},
    "Check": {"Type": "Choice", "Choices": [{"Variable": "$.ok", "BooleanEquals": true, "Next": "Accept"}], "Default": "Reject"},
    "Accept": {"Type": "Pass", "Next": "Done"},
    "Reject": {"Type": "Fail", "Error": "Rejected", "Cause": "not ok"},
    "Done": {"Type": "Succeed"}}}"#;

fn main() {
    let options = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("stepline-web-pages: {e}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let over = runtime.block_on(run(options));
    std::process::exit(i32::from(over));
}

/// Runs everything; whether a call went over the budget.
async fn run(options: Options) -> bool {
    let dir = options.data_dir.clone().unwrap_or_else(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("target"));
        target.join(format!("web-pages-{}", options.executions))
    });
    let fresh = !dir.exists();
    let store = Arc::new(SledStore::open(&dir).expect("open the store"));
    let engine = Engine::open(
        store.clone(),
        Arc::new(NoTasks),
        Arc::new(WallClock),
        EngineConfig::default(),
    )
    .expect("engine");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(stepline::http::serve(listener, engine.clone(), async {
        let _ = stopped.await;
    }));
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();

    if fresh {
        fill(&client, &base, &engine, store.as_ref(), &options).await;
    } else {
        println!("reusing the store in {}", dir.display());
    }

    let over = measure(&client, &base, &options).await;
    let _ = stop.send(());
    let _ = server.await;
    over
}

async fn send(client: &reqwest::Client, method: &str, url: &str, body: Option<String>) -> Value {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = client.request(method, url);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body);
    }
    let reply = request.send().await.expect("the server answers");
    let status = reply.status();
    let text = reply.text().await.expect("a body");
    assert!(status.is_success(), "{url}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// The machines, the executions, the triggers and the week's counts.
async fn fill(
    client: &reqwest::Client,
    base: &str,
    engine: &Engine,
    store: &dyn Store,
    options: &Options,
) {
    let began = Instant::now();
    let mut arns = Vec::new();
    for m in 0..options.machines {
        let created = send(
            client,
            "POST",
            &format!("{base}/v1/state-machines?name=machine-{m:02}"),
            Some(MACHINE.to_owned()),
        )
        .await;
        arns.push(created["arn"].as_str().expect("an ARN").to_owned());
    }
    for (name, spec) in [
        (
            "nightly",
            json!({"kind": "schedule", "schedule": "cron(0 2 * * ? *)", "input": {"ok": true}}),
        ),
        (
            "hourly",
            json!({"kind": "schedule", "schedule": "rate(1 hour)", "input": {"ok": true}}),
        ),
        ("deploys", json!({"kind": "webhook"})),
    ] {
        let mut spec = spec;
        spec["name"] = json!(name);
        spec["stateMachine"] = json!("machine-00");
        // Disabled: their own firings would add to what is measured.
        spec["enabled"] = json!(false);
        send(
            client,
            "POST",
            &format!("{base}/v1/triggers"),
            Some(spec.to_string()),
        )
        .await;
    }
    let engine = Arc::new(engine.clone());
    let arns = Arc::new(arns);
    let permits = Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..options.executions {
        let permit = permits.clone().acquire_owned().await.expect("permit");
        let (engine, arns) = (engine.clone(), arns.clone());
        tasks.spawn(async move {
            let _permit = permit;
            let arn = &arns[i % arns.len()];
            let input = json!({"ok": i % 50 != 7, "wait": i % 1000 == 3}).to_string();
            engine
                .start_execution(arn, Some(&format!("run-{i:07}")), Some(&input))
                .await
                .expect("start");
        });
        while tasks.try_join_next().is_some() {}
        if (i + 1) % 10_000 == 0 {
            println!("{} executions started ({:.0?})", i + 1, began.elapsed());
        }
    }
    while tasks.join_next().await.is_some() {}
    // The week's earlier hours, as if the executions had run all week.
    let now = hour_of(chrono::Utc::now());
    let per_hour = (options.executions / 168 / options.machines).max(1) as u64;
    for arn in arns.iter() {
        let mut batch = WriteBatch::new();
        for hour in now - 167..now {
            let mut stats = MachineStats {
                started: per_hour,
                succeeded: per_hour - per_hour / 50,
                failed: per_hour / 50,
                ..MachineStats::default()
            };
            stats.durations = vec![0; 8];
            stats.durations[3] = per_hour;
            batch.push(WriteOp::AddStats(StatsDelta {
                state_machine: arn.clone(),
                hour,
                stats,
            }));
        }
        store.apply(&batch).expect("the week's counts");
    }
    store.flush().expect("flush");
    println!(
        "stored {} executions over {} machines in {:.1?}",
        options.executions,
        options.machines,
        began.elapsed()
    );
}

/// Times each page's calls; whether one went over the budget.
async fn measure(client: &reqwest::Client, base: &str, options: &Options) -> bool {
    // A failed execution (machine-07 has them: one in fifty fails, the
    // 8th of every 50) and the start of the execution in the middle of
    // the order, found through the API as the pages find them.
    let machine = "machine-07";
    let found = send(
        client,
        "GET",
        &format!("{base}/v1/executions?machine={machine}&status=FAILED&limit=1"),
        None,
    )
    .await;
    let failed = found["executions"][0]["id"]
        .as_str()
        .expect("a failed execution")
        .to_owned();
    let half = options.executions / 2;
    let middle_name = format!("run-{half:07}");
    let middle = send(
        client,
        "GET",
        &format!(
            "{base}/v1/executions/machine-{:02}/{middle_name}",
            half % options.machines
        ),
        None,
    )
    .await["startDate"]
        .as_str()
        .expect("the middle execution's start")
        .to_owned();
    let week_ago = (chrono::Utc::now() - chrono::Duration::days(7))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let grid_runs = send(
        client,
        "GET",
        &format!("{base}/v1/executions?limit=25&machine={machine}"),
        None,
    )
    .await;
    let grid_ids: Vec<String> = grid_runs["executions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["id"].as_str().map(str::to_owned))
        .collect();

    let calls: Vec<(&str, Vec<String>)> = vec![
        ("dashboard: GET /v1/dashboard", vec!["/v1/dashboard".into()]),
        (
            "dashboard: one machine",
            vec![format!("/v1/dashboard?machine={machine}")],
        ),
        ("list: first page", vec!["/v1/executions?limit=25".into()]),
        (
            "list: machine and status FAILED",
            vec![format!(
                "/v1/executions?limit=25&machine={machine}&status=FAILED"
            )],
        ),
        (
            "list: started before the middle",
            vec![format!("/v1/executions?limit=25&to={middle}")],
        ),
        (
            "list: machine, from a week ago to the middle",
            vec![format!(
                "/v1/executions?limit=25&machine={machine}&from={week_ago}&to={middle}"
            )],
        ),
        (
            "list: name search, every name matches",
            vec!["/v1/executions?limit=25&name=run-".to_owned()],
        ),
        (
            "list: name search, no match (5,000 read)",
            vec!["/v1/executions?limit=25&name=nothing".to_owned()],
        ),
        (
            "list: status counts (dashboard range)",
            vec![format!("/v1/dashboard?from={week_ago}")],
        ),
        (
            "grid: 25 runs and their histories",
            std::iter::once(format!("/v1/state-machines/{machine}"))
                .chain(std::iter::once(format!(
                    "/v1/executions?limit=25&machine={machine}"
                )))
                .chain(
                    grid_ids
                        .iter()
                        .map(|id| format!("/v1/executions/{id}/history?after=0&limit=1000")),
                )
                .collect(),
        ),
        (
            "triggers: list and each one's recent executions",
            std::iter::once("/v1/triggers".to_owned())
                .chain(
                    ["nightly", "hourly", "deploys"]
                        .map(|t| format!("/v1/executions?limit=5&machine=machine-00&name={t}-")),
                )
                .collect(),
        ),
        (
            "execution page: describe, definition, history, logs",
            ["", "/state-machine", "/history?after=0&limit=1000", "/logs"]
                .iter()
                .map(|suffix| format!("/v1/executions/{failed}{suffix}"))
                .collect(),
        ),
    ];
    println!(
        "\n{:<52} {:>6} {:>9} {:>9} {:>9}",
        "page: calls", "calls", "p50 ms", "p95 ms", "max ms"
    );
    let mut over = false;
    for (what, paths) in &calls {
        // Every call of the page on its own is timed; the row is the
        // slowest call's figures.
        let mut worst: Option<(f64, f64, f64)> = None;
        for path in paths {
            let url = format!("{base}{path}");
            for _ in 0..3 {
                send(client, "GET", &url, None).await;
            }
            let mut times = Vec::with_capacity(options.rounds);
            for _ in 0..options.rounds {
                let t = Instant::now();
                send(client, "GET", &url, None).await;
                times.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            times.sort_by(f64::total_cmp);
            let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
            let figures = (at(0.5), at(0.95), times[times.len() - 1]);
            if worst.is_none_or(|w| figures.1 > w.1) {
                worst = Some(figures);
            }
        }
        let (p50, p95, max) = worst.unwrap_or_default();
        let flag = if p95 > BUDGET.as_secs_f64() * 1000.0 {
            over = true;
            "  OVER"
        } else {
            ""
        };
        println!(
            "{what:<52} {:>6} {p50:>9.2} {p95:>9.2} {max:>9.2}{flag}",
            paths.len()
        );
    }
    if over {
        println!("\nsome calls took longer than {BUDGET:?} at p95");
    } else {
        println!("\nevery call within {BUDGET:?} at p95");
    }
    over
}

//! Result caching and lineage end to end. The real binary with a
//! stepline.toml: a second identical task is answered from the cache
//! without a call (the process counts its calls in a file), the history
//! says so in a member AWS's clients skip (boto3 and the AWS CLI still
//! read it), a redriven Map iteration is answered from the cache, and
//! lineage answers which execution wrote a file and which read it (REST
//! and `stepline lineage`). Expiry, the purge's bounds and an activity's
//! result reused without a worker on a server driven by a manual clock;
//! two nodes on one PostgreSQL sharing the cache.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use stepline_runtime::cache::TaskCache;
use stepline_runtime::tasks::Invokers;
use stepline_runtime::tasks::config::TaskConfig;
use stepline_runtime::{Engine, EngineConfig, ManualClock};
use stepline_store::{MemoryStore, Store, TaskCache as _};

use crate::rest::{Reply, http};
use crate::support::eventually;
use crate::support::{Serve, TempDir, stepline_binary};

/// A process that counts its calls (a line each in `$COUNTER`) and
/// answers its input with the count so far.
const COUNT: &str = r#"input=$(cat)
echo x >> "$COUNTER"
printf '{"calls": %s, "got": %s}' "$(wc -l < "$COUNTER" | tr -d ' ')" "$input"
"#;

/// Fails for day d2 until `$FLAG` exists; else answers its input.
const CHECK: &str = r#"input=$(cat)
case "$input" in
  *d2*) [ -e "$FLAG" ] || { echo "not yet" >&2; exit 1; } ;;
esac
printf '%s' "$input"
"#;

fn get(addr: SocketAddr, path: &str) -> Reply {
    http(addr, "GET", path, &[], b"")
}

fn post(addr: SocketAddr, path: &str, body: &str) -> Reply {
    http(addr, "POST", path, &[], body.as_bytes())
}

fn create(addr: SocketAddr, name: &str, definition: &Value) {
    let reply = post(
        addr,
        &format!("/v1/state-machines?name={name}"),
        &definition.to_string(),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
}

/// Starts `machine/name` with `input` and waits for its end.
fn run(addr: SocketAddr, machine: &str, name: &str, input: &Value) -> Value {
    let reply = post(
        addr,
        &format!("/v1/state-machines/{machine}/executions?name={name}"),
        &input.to_string(),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    wait(addr, &format!("{machine}/{name}"))
}

fn wait(addr: SocketAddr, id: &str) -> Value {
    let mut described = Value::Null;
    eventually(&format!("{id} to end"), 30, || {
        described = get(addr, &format!("/v1/executions/{id}")).json();
        described["status"].as_str().is_some_and(|s| s != "RUNNING")
    });
    described
}

fn calls(counter: &Path) -> usize {
    std::fs::read_to_string(counter)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

/// The REST details of every event of `type_name`.
fn details(addr: SocketAddr, id: &str, type_name: &str) -> Vec<Value> {
    let history = get(addr, &format!("/v1/executions/{id}/history")).json();
    history["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"] == type_name)
        .map(|e| e["details"].clone())
        .collect()
}

fn script(dir: &TempDir, name: &str, text: &str) -> String {
    dir.write(name, text).display().to_string()
}

#[test]
fn a_second_identical_task_is_served_from_the_cache_without_a_call() {
    let dir = TempDir::new("cache-serve");
    let counter = dir.path().join("calls");
    let flag = dir.path().join("fixed");
    let config = dir.write(
        "stepline.toml",
        format!(
            r#"
[tasks.processes.count]
command = "/bin/sh"
args = ["{count}"]
env = {{ COUNTER = "{counter}" }}

[tasks.processes.check]
command = "/bin/sh"
args = ["{check}"]
env = {{ FLAG = "{flag}" }}

[[tasks.cache.rules]]
process = "count"
ttl_seconds = 3600
key = {{ "day.$" = "$.day" }}
"#,
            count = script(&dir, "count.sh", COUNT),
            check = script(&dir, "check.sh", CHECK),
            counter = counter.display(),
            flag = flag.display(),
        ),
    );
    let data = dir.path().join("data");
    let serve = Serve::start_with(&stepline_binary(), &data, Some(&config));
    let addr = serve.addr;
    create(
        addr,
        "daily",
        &json!({"StartAt": "Count", "States": {
            "Count": {"Type": "Task", "Resource": "stepline:process:count", "End": true}}}),
    );

    let first = run(addr, "daily", "e1", &json!({"day": "d1", "run": 1}));
    assert_eq!(first["status"], "SUCCEEDED", "{first}");
    assert_eq!(first["output"]["calls"], 1);
    assert_eq!(calls(&counter), 1);
    // The key template keeps only the day: another run of the same day is
    // answered with the first run's result, without a call.
    let second = run(addr, "daily", "e2", &json!({"run": 2, "day": "d1"}));
    assert_eq!(second["status"], "SUCCEEDED", "{second}");
    assert_eq!(second["output"], first["output"]);
    assert_eq!(calls(&counter), 1, "the second run called the process");
    let e1 = first["arn"].as_str().expect("arn").to_owned();
    let e2 = second["arn"].as_str().expect("arn").to_owned();
    // The history says where the result came from; the first one's none.
    let hit = &details(addr, "daily/e2", "TaskSucceeded")[0];
    assert_eq!(hit["cache"]["executionArn"], e1.as_str(), "{hit}");
    assert_eq!(hit["cache"]["key"].as_str().map(str::len), Some(64));
    assert!(
        details(addr, "daily/e1", "TaskSucceeded")[0]
            .get("cache")
            .is_none()
    );
    // The TaskStarted/TaskSucceeded pair is there as for a call.
    assert_eq!(details(addr, "daily/e2", "TaskStarted").len(), 1);
    // The AWS dialect: a member AWS's clients skip.
    let (status, history) = serve.call("GetExecutionHistory", &json!({"executionArn": e2}));
    assert_eq!(status, 200);
    let succeeded = history["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["type"] == "TaskSucceeded")
        .expect("TaskSucceeded")
        .clone();
    let member = &succeeded["taskSucceededEventDetails"]["steplineCache"];
    assert_eq!(member["executionArn"], e1.as_str(), "{succeeded}");
    assert!(
        member["stored"].is_f64() || member["stored"].is_u64(),
        "{member}"
    );
    // Another day is called.
    let other = run(addr, "daily", "e3", &json!({"day": "d2"}));
    assert_eq!(other["output"]["calls"], 2);
    assert_eq!(calls(&counter), 2);
    let metrics = get(addr, "/metrics").body;
    assert!(
        metrics.contains("stepline_task_cache_lookups_total{outcome=\"hit\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("stepline_task_cache_lookups_total{outcome=\"miss\"} 2"),
        "{metrics}"
    );

    // A redriven Map iteration runs its cached task again: from the cache.
    create(
        addr,
        "nightly",
        &json!({"StartAt": "Days", "States": {"Days": {
            "Type": "Map", "ItemsPath": "$.days", "MaxConcurrency": 1, "End": true,
            "ItemProcessor": {"StartAt": "Count", "States": {
                "Count": {"Type": "Task", "Resource": "stepline:process:count",
                          "ResultPath": "$.count", "Next": "Check"},
                "Check": {"Type": "Task", "Resource": "stepline:process:check", "End": true}}}}}}),
    );
    let failed = run(
        addr,
        "nightly",
        "n1",
        &json!({"days": [{"day": "d3"}, {"day": "d4"}, {"day": "d2"}]}),
    );
    assert_eq!(failed["status"], "FAILED", "{failed}");
    // d3 and d4 called; d2 answered from e3's entry.
    assert_eq!(calls(&counter), 4);
    std::fs::write(&flag, "").expect("flag");
    let reply = post(addr, "/v1/executions/nightly/n1/redrive", "{}");
    assert!(reply.status < 300, "{}", reply.body);
    let redriven = wait(addr, "nightly/n1");
    assert_eq!(redriven["status"], "SUCCEEDED", "{redriven}");
    assert_eq!(calls(&counter), 4, "the redrive called the process again");
    let hits = details(addr, "nightly/n1", "TaskSucceeded")
        .into_iter()
        .filter(|d| d.get("cache").is_some())
        .count();
    assert!(
        hits >= 2,
        "the redriven iteration was not served from the cache"
    );

    // boto3 and the AWS CLI read a history with the member unchanged.
    if crate::support::boto3_available() {
        let script = r#"
import json, sys, boto3
sfn = boto3.client("stepfunctions", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="test", aws_secret_access_key="test")
events = sfn.get_execution_history(executionArn=sys.argv[2])["events"]
done = [e for e in events if e["type"] == "TaskSucceeded"][0]
print(json.dumps({"types": [e["type"] for e in events],
                  "output": json.loads(done["taskSucceededEventDetails"]["output"])}))
"#;
        let out = std::process::Command::new("python3")
            .args(["-c", script, &format!("http://{addr}"), &e2])
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "boto3: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let seen: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert_eq!(seen["output"], first["output"]);
        assert!(
            seen["types"]
                .as_array()
                .is_some_and(|t| t.contains(&json!("TaskSucceeded")))
        );
    }
    let aws = std::process::Command::new("aws")
        .args([
            "stepfunctions",
            "get-execution-history",
            "--endpoint-url",
            &format!("http://{addr}"),
            "--region",
            "us-east-1",
            "--execution-arn",
            &e2,
            "--output",
            "json",
        ])
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .output();
    match aws {
        Ok(out) if out.status.success() => {
            let seen: Value = serde_json::from_slice(&out.stdout).expect("JSON");
            assert!(
                seen["events"].as_array().is_some_and(|e| e.len() >= 5),
                "{seen}"
            );
        }
        Ok(out) if std::env::var_os("STEPLINE_REQUIRE_AWS_CLIENTS").is_some() => {
            panic!("aws: {}", String::from_utf8_lossy(&out.stderr))
        }
        _ => eprintln!("SKIPPED: the AWS CLI did not run"),
    }
}

/// A server on a manual clock, with `config`'s cache, the process `count`
/// and the store at hand.
struct Clocked {
    addr: SocketAddr,
    clock: Arc<ManualClock>,
    store: Arc<MemoryStore>,
    engine: Engine,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Clocked {
    fn start(tasks: TaskConfig) -> Self {
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let clock = Arc::new(ManualClock::new(
            chrono::DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z")
                .expect("time")
                .with_timezone(&chrono::Utc),
        ));
        let store = Arc::new(MemoryStore::new());
        let (c, s) = (Arc::clone(&clock), Arc::clone(&store));
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let config = EngineConfig {
                    cache: Arc::new(TaskCache::new(&tasks.cache).expect("cache")),
                    ..EngineConfig::default()
                };
                let engine = Engine::open(
                    s as Arc<dyn Store>,
                    Arc::new(Invokers::new(tasks).expect("invokers")),
                    c,
                    config,
                )
                .expect("engine");
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                tx.send((listener.local_addr().expect("addr"), engine.clone()))
                    .expect("send");
                stepline::http::serve(listener, engine, async {
                    let _ = stopped.await;
                })
                .await
                .expect("serve");
            });
        });
        let (addr, engine) = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the server starts");
        Self {
            addr,
            clock,
            store,
            engine,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn keys(&self) -> usize {
        self.store
            .cache_entries_page("", 1000)
            .expect("entries")
            .len()
    }

    fn purge(&self) -> stepline_runtime::CachePurge {
        let engine = self.engine.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(engine.purge_cache()).expect("purge")
    }
}

impl Drop for Clocked {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn expired_results_are_called_again_and_the_purge_keeps_the_bounds() {
    let dir = TempDir::new("cache-expiry");
    let counter = dir.path().join("calls");
    let tasks: TaskConfig = serde_json::from_value(json!({
        "processes": {"count": {
            "command": "/bin/sh",
            "args": [script(&dir, "count.sh", COUNT)],
            "env": {"COUNTER": counter.display().to_string()},
        }},
        // Purged when over its count, or when asked: not by its period
        // during the test.
        "cache": {"max_entries": 2, "purge_interval_seconds": 3600,
                  "rules": [{"process": "count", "ttl_seconds": 60}]},
    }))
    .expect("config");
    let server = Clocked::start(tasks);
    let addr = server.addr;
    create(
        addr,
        "prices",
        &json!({"StartAt": "Count", "States": {
            "Count": {"Type": "Task", "Resource": "stepline:process:count", "End": true}}}),
    );
    let input = json!({"day": "d1"});
    assert_eq!(run(addr, "prices", "p1", &input)["output"]["calls"], 1);
    assert_eq!(run(addr, "prices", "p2", &input)["output"]["calls"], 1);
    assert_eq!(calls(&counter), 1);
    // 59 s later the entry still answers; at 60 s it has expired.
    server.clock.advance(chrono::Duration::seconds(59));
    assert_eq!(run(addr, "prices", "p3", &input)["output"]["calls"], 1);
    server.clock.advance(chrono::Duration::seconds(1));
    assert_eq!(run(addr, "prices", "p4", &input)["output"]["calls"], 2);
    assert_eq!(calls(&counter), 2);
    // The new result replaced the old entry and answers again.
    assert_eq!(run(addr, "prices", "p5", &input)["output"]["calls"], 2);
    let hit = &details(addr, "prices/p5", "TaskSucceeded")[0];
    assert!(
        hit["cache"]["executionArn"]
            .as_str()
            .is_some_and(|a| a.ends_with(":p4")),
        "{hit}"
    );

    // Bounds: two more days make three entries, one over max_entries;
    // the purge removes the one expiring soonest (p4's day).
    server.clock.advance(chrono::Duration::seconds(10));
    run(addr, "prices", "p6", &json!({"day": "d2"}));
    server.clock.advance(chrono::Duration::seconds(10));
    run(addr, "prices", "p7", &json!({"day": "d3"}));
    eventually("the purge woken by the third entry", 30, || {
        server.keys() == 2
    });
    assert_eq!(calls(&counter), 4);
    assert_eq!(run(addr, "prices", "p8", &input)["output"]["calls"], 5);
    eventually("the purge woken by p8's entry", 30, || server.keys() == 2);
    // Expired entries are purged.
    server.clock.advance(chrono::Duration::seconds(120));
    let purged = server.purge();
    assert_eq!((purged.expired, purged.kept), (2, 0), "{purged:?}");
    assert_eq!(server.keys(), 0);
}

/// A process that writes the file its input names and reports it.
const EXTRACT: &str = r#"input=$(cat)
out=$(printf '%s' "$input" | sed 's/.*"out": *"\([^"]*\)".*/\1/')
printf 'id,amount\n1,10\n' > "$out"
printf '{"rows": 1, "stepline:outputs": ["%s"]}' "$out"
"#;

/// A process that reads the file its input names and reports it.
const LOAD: &str = r#"input=$(cat)
file=$(printf '%s' "$input" | sed 's/.*"file": *"\([^"]*\)".*/\1/')
n=$(wc -l < "$file" | tr -d ' ')
printf '{"lines": %s, "stepline:inputs": [{"path": "%s"}]}' "$n" "$file"
"#;

#[test]
fn lineage_answers_which_execution_wrote_a_file_and_which_read_it() {
    let dir = TempDir::new("lineage");
    let inbox = dir.path().join("inbox");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&inbox).expect("inbox");
    std::fs::create_dir_all(&out).expect("out");
    std::fs::create_dir_all(dir.path().join("lake")).expect("lake");
    std::fs::write(dir.path().join("lake/items.json"), "[1, 2]").expect("items");
    let root = std::fs::canonicalize(dir.path()).expect("root");
    let config = dir.write(
        "stepline.toml",
        format!(
            r#"
[tasks.processes.extract]
command = "/bin/sh"
args = ["{extract}"]

[tasks.processes.load]
command = "/bin/sh"
args = ["{load}"]

[triggers]
file_roots = ["{root}"]

[buckets]
lake = "{root}/lake"
"#,
            extract = script(&dir, "extract.sh", EXTRACT),
            load = script(&dir, "load.sh", LOAD),
            root = root.display(),
        ),
    );
    let data = dir.path().join("data");
    let serve = Serve::start_with(&stepline_binary(), &data, Some(&config));
    let addr = serve.addr;
    let orders = root.join("out").join("orders.csv");
    let orders = orders.display().to_string();
    create(
        addr,
        "extract",
        &json!({"StartAt": "Extract", "States": {
            "Extract": {"Type": "Task", "Resource": "stepline:process:extract", "End": true}}}),
    );
    create(
        addr,
        "load",
        &json!({"StartAt": "Load", "States": {
            "Load": {"Type": "Task", "Resource": "stepline:process:load", "End": true}}}),
    );
    // The file trigger's execution reads the file that arrived.
    create(
        addr,
        "ingest",
        &json!({"StartAt": "Seen", "States": {"Seen": {"Type": "Pass", "End": true}}}),
    );
    let trigger = json!({"name": "inbox", "kind": "file", "stateMachine": "ingest",
                         "directory": root.join("inbox").display().to_string(),
                         "glob": "*.csv", "stableMs": 100, "pollMs": 50});
    let reply = post(addr, "/v1/triggers", &trigger.to_string());
    assert!(reply.status < 300, "{}", reply.body);

    let wrote = run(addr, "extract", "x1", &json!({"out": orders}));
    assert_eq!(wrote["status"], "SUCCEEDED", "{wrote}");
    let read = run(addr, "load", "l1", &json!({"file": orders}));
    assert_eq!(read["output"]["lines"], 2, "{read}");
    let x1 = wrote["arn"].as_str().expect("arn").to_owned();
    let l1 = read["arn"].as_str().expect("arn").to_owned();

    let lineage = get(addr, &format!("/v1/lineage?path={orders}")).json();
    assert_eq!(lineage["path"], orders.as_str());
    assert_eq!(
        lineage["writtenBy"].as_array().map(Vec::len),
        Some(1),
        "{lineage}"
    );
    assert_eq!(lineage["writtenBy"][0]["executionArn"], x1.as_str());
    assert_eq!(lineage["writtenBy"][0]["via"], "task");
    assert_eq!(lineage["writtenBy"][0]["stateName"], "Extract");
    assert_eq!(lineage["readBy"][0]["executionArn"], l1.as_str());
    // A path is normalised as it was recorded.
    let again = get(
        addr,
        &format!(
            "/v1/lineage?path={}/out/../out/./orders.csv",
            root.display()
        ),
    )
    .json();
    assert_eq!(again["writtenBy"], lineage["writtenBy"]);
    let by_execution = get(addr, "/v1/executions/load/l1/lineage").json();
    assert_eq!(
        by_execution["read"][0]["path"],
        orders.as_str(),
        "{by_execution}"
    );
    assert_eq!(by_execution["wrote"], json!([]));
    assert_eq!(get(addr, "/v1/lineage?path=relative/x").status, 400);
    assert_eq!(get(addr, "/v1/lineage").status, 400);
    assert_eq!(get(addr, "/v1/executions/load/missing/lineage").status, 404);

    let arrived = root.join("inbox").join("day1.csv");
    std::fs::write(&arrived, "id\n1\n").expect("arrive");
    let arrived = arrived.display().to_string();
    let mut readers = Value::Null;
    eventually("the trigger's execution", 30, || {
        readers = get(addr, &format!("/v1/lineage?path={arrived}")).json();
        readers["readBy"].as_array().is_some_and(|r| !r.is_empty())
    });
    assert_eq!(readers["readBy"][0]["via"], "trigger", "{readers}");
    assert!(
        readers["readBy"][0]["executionArn"]
            .as_str()
            .is_some_and(|a| a.contains(":execution:ingest:inbox-"))
    );

    // A dataset trigger's run reads its period's files.
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let day_dir = root.join("sets").join(&today);
    std::fs::create_dir_all(&day_dir).expect("day");
    let dataset = json!({"name": "daily", "kind": "dataset", "stateMachine": "ingest",
                         "inputs": [format!("{}/sets/{{date}}/a.csv", root.display()),
                                    format!("{}/sets/{{date}}/b.csv", root.display())],
                         "pollMs": 50});
    let reply = post(addr, "/v1/triggers", &dataset.to_string());
    assert!(reply.status < 300, "{}", reply.body);
    std::fs::write(day_dir.join("a.csv"), "a\n").expect("a");
    std::fs::write(day_dir.join("b.csv"), "b\n").expect("b");
    let second_file = day_dir.join("b.csv").display().to_string();
    readers = Value::Null;
    eventually("the dataset's run", 30, || {
        readers = get(addr, &format!("/v1/lineage?path={second_file}")).json();
        readers["readBy"].as_array().is_some_and(|r| !r.is_empty())
    });
    assert_eq!(readers["readBy"][0]["via"], "dataset", "{readers}");
    assert!(
        readers["readBy"][0]["executionArn"]
            .as_str()
            .is_some_and(|a| a.contains(":execution:ingest:daily-")),
        "{readers}"
    );

    // A distributed Map reads its ItemReader's object and writes its
    // ResultWriter's files.
    create(
        addr,
        "fanout",
        &json!({"StartAt": "Each", "States": {"Each": {
            "Type": "Map", "End": true,
            "ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
                           "ReaderConfig": {"InputType": "JSON"},
                           "Parameters": {"Bucket": "lake", "Key": "items.json"}},
            "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject",
                             "Parameters": {"Bucket": "lake", "Prefix": "runs"}},
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                "StartAt": "Item", "States": {"Item": {"Type": "Pass", "End": true}}}}}}),
    );
    let fanned = run(addr, "fanout", "f1", &json!({}));
    assert_eq!(fanned["status"], "SUCCEEDED", "{fanned}");
    let manifest = fanned["output"]["ResultWriterDetails"]["Key"]
        .as_str()
        .expect("manifest key")
        .to_owned();
    let map_lineage = get(addr, "/v1/executions/fanout/f1/lineage").json();
    let lake = root.join("lake");
    assert_eq!(
        map_lineage["read"],
        json!([{"path": lake.join("items.json").display().to_string(), "via": "itemReader",
                "time": map_lineage["read"][0]["time"]}]),
        "{map_lineage}"
    );
    let written: Vec<&str> = map_lineage["wrote"]
        .as_array()
        .expect("wrote")
        .iter()
        .filter(|w| w["via"] == "resultWriter")
        .filter_map(|w| w["path"].as_str())
        .collect();
    let manifest_path = lake.join(&manifest).display().to_string();
    assert!(written.contains(&manifest_path.as_str()), "{map_lineage}");
    assert!(
        written.iter().any(|p| p.ends_with("/SUCCEEDED_0.json")),
        "{map_lineage}"
    );
    let writer = get(addr, &format!("/v1/lineage?path={manifest_path}")).json();
    assert!(
        writer["writtenBy"][0]["executionArn"]
            .as_str()
            .is_some_and(|a| a.ends_with(":execution:fanout:f1")),
        "{writer}"
    );

    // The command line.
    let endpoint = format!("http://{addr}");
    let cli = crate::cli::run_at(&endpoint, &["lineage", &orders, "-o", "json"]);
    assert_eq!(cli.status, 0, "{cli:?}");
    assert_eq!(cli.json()["writtenBy"][0]["executionArn"], x1.as_str());
    let cli = crate::cli::run_at(&endpoint, &["lineage", &orders]);
    assert_eq!(cli.status, 0, "{cli:?}");
    assert!(cli.stdout.contains("WROTE  extract/x1"), "{}", cli.stdout);
    assert!(cli.stdout.contains("READ   load/l1"), "{}", cli.stdout);
    let cli = crate::cli::run_at(&endpoint, &["lineage", "--execution", "extract/x1"]);
    assert_eq!(cli.status, 0, "{cli:?}");
    assert!(
        cli.stdout.contains(&format!("WROTE  {orders}")),
        "{}",
        cli.stdout
    );
    let cli = crate::cli::run_at(&endpoint, &["lineage", "--execution", "extract/none"]);
    assert_ne!(cli.status, 0, "{cli:?}");
}

/// Two nodes on one PostgreSQL share the cache: a result stored by a task
/// on one node answers the same task on the other. Skipped without
/// `STEPLINE_TEST_POSTGRES`.
#[test]
fn nodes_of_a_cluster_share_the_cache_through_the_database() {
    let dir = TempDir::new("cache-cluster");
    let counter = dir.path().join("calls");
    let more = counted_and_cached(&dir, &counter);
    let Some(config) = crate::postgres::postgres_config_with(&dir, "the cache across nodes", &more)
    else {
        return;
    };
    let binary = stepline_binary();
    let first = Serve::start_with(&binary, &dir.path().join("a"), Some(&config));
    let second = Serve::start_with(&binary, &dir.path().join("b"), Some(&config));
    create(
        first.addr,
        "shared",
        &json!({"StartAt": "Count", "States": {
            "Count": {"Type": "Task", "Resource": "stepline:process:count", "End": true}}}),
    );
    let input = json!({"day": "d1"});
    let on_first = run(first.addr, "shared", "s1", &input);
    assert_eq!(on_first["output"]["calls"], 1, "{on_first}");
    let on_second = run(second.addr, "shared", "s2", &input);
    assert_eq!(on_second["output"]["calls"], 1, "{on_second}");
    assert_eq!(calls(&counter), 1, "the second node called the process");
    let hit = &details(second.addr, "shared/s2", "TaskSucceeded")[0];
    assert!(
        hit["cache"]["executionArn"]
            .as_str()
            .is_some_and(|a| a.ends_with(":s1")),
        "{hit}"
    );
}

/// An activity a rule covers: the first task goes to a worker, whose
/// answer is kept; the second is answered from the cache with no worker,
/// and its ActivitySucceeded says so.
#[test]
fn an_activity_result_is_reused_without_a_worker() {
    let tasks: TaskConfig = serde_json::from_value(json!({
        "cache": {"rules": [{"activity": "render", "ttl_seconds": 60}]},
    }))
    .expect("config");
    let server = Clocked::start(tasks);
    let addr = server.addr;
    let aws = |action: &str, body: Value| crate::aws::call_raw(addr, action, &body.to_string());
    let (status, created) = aws("CreateActivity", json!({"name": "render"}));
    assert_eq!(status, 200, "{created}");
    let activity = created["activityArn"].as_str().expect("arn").to_owned();
    create(
        addr,
        "report",
        &json!({"StartAt": "Render", "States": {
            "Render": {"Type": "Task", "Resource": activity, "End": true}}}),
    );
    let input = json!({"page": 1});
    let reply = post(
        addr,
        "/v1/state-machines/report/executions?name=r1",
        &input.to_string(),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    let (status, work) = aws(
        "GetActivityTask",
        json!({"activityArn": activity, "workerName": "w1"}),
    );
    assert_eq!(status, 200, "{work}");
    let (status, _) = aws(
        "SendTaskSuccess",
        json!({"taskToken": work["taskToken"], "output": "{\"pdf\": \"r1.pdf\"}"}),
    );
    assert_eq!(status, 200);
    assert_eq!(wait(addr, "report/r1")["output"], json!({"pdf": "r1.pdf"}));
    // No worker polls now: the cache answers.
    let second = run(addr, "report", "r2", &input);
    assert_eq!(second["status"], "SUCCEEDED", "{second}");
    assert_eq!(second["output"], json!({"pdf": "r1.pdf"}));
    let hit = &details(addr, "report/r2", "ActivitySucceeded")[0];
    assert!(
        hit["cache"]["executionArn"]
            .as_str()
            .is_some_and(|a| a.ends_with(":r1")),
        "{hit}"
    );
    let (_, history) = aws(
        "GetExecutionHistory",
        json!({"executionArn": second["arn"]}),
    );
    let types: Vec<&str> = history["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert!(
        types.ends_with(&[
            "ActivityScheduled",
            "ActivityStarted",
            "ActivitySucceeded",
            "TaskStateExited",
            "ExecutionSucceeded"
        ]),
        "{types:?}"
    );
    let succeeded = history["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["type"] == "ActivitySucceeded")
        .expect("ActivitySucceeded");
    assert!(
        succeeded["activitySucceededEventDetails"]["steplineCache"]["key"].is_string(),
        "{succeeded}"
    );
}

/// stepline.toml lines: the process `count` (counting its calls in
/// `counter`), its results cached for an hour.
fn counted_and_cached(dir: &TempDir, counter: &Path) -> String {
    format!(
        r#"
[tasks.processes.count]
command = "/bin/sh"
args = ["{count}"]
env = {{ COUNTER = "{counter}" }}

[[tasks.cache.rules]]
process = "count"
ttl_seconds = 3600
"#,
        count = script(dir, "count.sh", COUNT),
        counter = counter.display(),
    )
}

/// The stored results are listed over REST (without the results), and
/// dropped one by one or by resource: the next call is made again.
#[test]
fn cached_results_are_listed_and_dropped_over_rest() {
    let dir = TempDir::new("cache-rest");
    let counter = dir.path().join("calls");
    let config = dir.write("stepline.toml", counted_and_cached(&dir, &counter));
    let serve = Serve::start_with(&stepline_binary(), &dir.path().join("data"), Some(&config));
    let addr = serve.addr;
    create(
        addr,
        "daily",
        &json!({"StartAt": "Count", "States": {
            "Count": {"Type": "Task", "Resource": "stepline:process:count", "End": true}}}),
    );
    let input = json!({"day": "d1"});
    assert_eq!(run(addr, "daily", "e1", &input)["output"]["calls"], 1);
    assert_eq!(run(addr, "daily", "e2", &input)["output"]["calls"], 1);

    let listed = get(addr, "/v1/cache").json();
    let entries = listed["entries"].as_array().expect("entries").clone();
    assert_eq!(entries.len(), 1, "{listed}");
    let entry = &entries[0];
    assert_eq!(entry["resource"], "stepline:process:count", "{entry}");
    assert!(
        entry["executionArn"]
            .as_str()
            .is_some_and(|a| a.ends_with(":daily:e1")),
        "{entry}"
    );
    assert_eq!(entry["expired"], false);
    assert!(
        entry["resultBytes"].as_u64().is_some_and(|n| n > 0),
        "{entry}"
    );
    assert!(
        entry.get("output").is_none(),
        "a listing never carries results"
    );
    assert!(listed.get("after").is_none(), "{listed}");
    let key = entry["key"].as_str().expect("key").to_owned();

    // Dropped: the same input is called again.
    let path = format!("/v1/cache/{key}");
    assert_eq!(http(addr, "DELETE", &path, &[], b"").status, 204);
    let again = http(addr, "DELETE", &path, &[], b"");
    assert_eq!(again.status, 404, "{}", again.body);
    assert_eq!(run(addr, "daily", "e3", &input)["output"]["calls"], 2);
    assert_eq!(calls(&counter), 2);

    // By resource: another resource's name drops nothing, its own all.
    let none = http(
        addr,
        "DELETE",
        "/v1/cache?resource=stepline:process:other",
        &[],
        b"",
    );
    assert_eq!(none.json()["dropped"], 0, "{}", none.body);
    let all = http(
        addr,
        "DELETE",
        "/v1/cache?resource=stepline:process:count",
        &[],
        b"",
    );
    assert_eq!(all.json()["dropped"], 1, "{}", all.body);
    assert_eq!(get(addr, "/v1/cache").json()["entries"], json!([]));
    assert_eq!(get(addr, "/v1/cache?limit=1000").status, 400);
}

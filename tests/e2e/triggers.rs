//! Triggers end to end on a real server: webhooks with good and bad
//! signatures and idempotency keys, the `/v1/triggers` API, files dropped
//! into a watched directory (stability, moves, symlinks, a burst, a restart,
//! a crash between starting an execution and moving its file), and
//! `stepline backfill` against the server. Schedules driven by a manual
//! clock are tested beside the driver (server/src/triggers/tests.rs).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stepline::triggers::Triggers;
use stepline::triggers::files::{self, Found};
use stepline::triggers::hmac::{hex, hmac_sha256};
use stepline_runtime::{Engine, EngineConfig, TaskCall, TaskFuture, TaskRunner, WallClock};
use stepline_store::{
    ExecutionQuery, ExecutionRecord, ExecutionStatus, ExecutionsOf, MemoryStore, SledStore, Store,
};

use crate::rest::{Reply, http};
use crate::support::eventually;
use crate::support::{TempDir, repo_root, stepline};

struct NoTasks;

impl TaskRunner for NoTasks {
    fn run(&self, _call: TaskCall) -> TaskFuture {
        Box::pin(async { Ok(json!({})) })
    }
}

/// A server with triggers (file roots as given), on 127.0.0.1:0; stopped
/// when dropped. `data`: a sled directory, else memory.
struct Server {
    addr: SocketAddr,
    engine: Engine,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(roots: &[PathBuf], data: Option<&Path>) -> Self {
        Self::start_with(roots, data, Arc::new(NoTasks))
    }

    fn start_with(roots: &[PathBuf], data: Option<&Path>, runner: Arc<dyn TaskRunner>) -> Self {
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let roots = roots.to_vec();
        let data = data.map(Path::to_path_buf);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let store: Arc<dyn Store> = match data {
                    Some(dir) => Arc::new(SledStore::open(&dir).expect("sled")),
                    None => Arc::new(MemoryStore::new()),
                };
                let engine =
                    Engine::open(store, runner, Arc::new(WallClock), EngineConfig::default())
                        .expect("engine");
                let triggers = Triggers::new(engine.clone(), &roots).expect("triggers");
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                tx.send((listener.local_addr().expect("addr"), engine.clone()))
                    .expect("send");
                stepline::http::serve_with_triggers(listener, engine, triggers, async {
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
            engine,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn get(&self, path: &str) -> Reply {
        http(self.addr, "GET", path, &[], b"")
    }

    fn post(&self, path: &str, body: &str) -> Reply {
        http(self.addr, "POST", path, &[], body.as_bytes())
    }

    fn machine(&self, name: &str, definition: &str) {
        let reply = self.post(&format!("/v1/state-machines?name={name}"), definition);
        assert_eq!(reply.status, 201, "{}", reply.body);
    }

    fn trigger(&self, spec: Value) -> Reply {
        self.post("/v1/triggers", &spec.to_string())
    }

    fn executions(&self) -> Vec<ExecutionRecord> {
        let listed = self
            .engine
            .list_executions(&ExecutionQuery::new(ExecutionsOf::All, 1000))
            .expect("list");
        let mut all: Vec<ExecutionRecord> = listed
            .executions
            .iter()
            .map(|e| self.engine.describe_execution(&e.arn).expect("describe"))
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

const PASS: &str = r#"{"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}"#;
const FAIL: &str =
    r#"{"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Bad", "Cause": "no"}}}"#;

fn sign(secret: &str, body: &str) -> String {
    format!(
        "sha256={}",
        hex(&hmac_sha256(secret.as_bytes(), body.as_bytes()))
    )
}

// ---------------------------------------------------------------------------
// Webhooks

#[test]
fn webhooks_check_signatures_and_start_once_per_key() {
    let server = Server::start(&[], None);
    server.machine("hooked", PASS);
    let created = server.trigger(json!({
        "name": "deploys", "kind": "webhook", "stateMachine": "hooked", "secret": "s3cret"
    }));
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.json()["hasSecret"], true);
    assert!(
        created.json().get("secret").is_none(),
        "the secret is never shown"
    );

    let body = r#"{"ref": "main", "n": 1}"#;
    let good = sign("s3cret", body);
    let call = |headers: &[(&str, &str)], body: &str| {
        http(
            server.addr,
            "POST",
            "/v1/hooks/deploys",
            headers,
            body.as_bytes(),
        )
    };
    let first = call(
        &[
            ("X-Hub-Signature-256", &good),
            ("Idempotency-Key", "delivery-1"),
        ],
        body,
    );
    assert_eq!(first.status, 202, "{}", first.body);
    let arn = first.json()["executionArn"]
        .as_str()
        .expect("arn")
        .to_owned();
    assert_eq!(first.json()["name"], "deploys-delivery-1");
    assert_eq!(first.json()["new"], true);
    // A redelivery: the same execution, nothing new.
    let again = call(
        &[
            ("X-Hub-Signature-256", &good),
            ("Idempotency-Key", "delivery-1"),
        ],
        body,
    );
    assert_eq!(again.status, 202, "{}", again.body);
    assert_eq!(again.json()["executionArn"], arn.as_str());
    assert_eq!(again.json()["new"], false);

    // Bad, missing and truncated signatures; a body changed after signing.
    for headers in [
        vec![("X-Hub-Signature-256", sign("wrong", body))],
        vec![],
        vec![("X-Hub-Signature-256", good[..good.len() - 2].to_owned())],
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let reply = call(&headers, body);
        assert_eq!(reply.status, 401, "{headers:?}: {}", reply.body);
        assert_eq!(reply.json()["code"], "InvalidSignature");
    }
    let reply = call(
        &[("X-Hub-Signature-256", &good)],
        r#"{"ref": "evil", "n": 1}"#,
    );
    assert_eq!(reply.status, 401);

    // Unknown hooks, and triggers that are not webhooks, are 404.
    let reply = call(&[], "{}");
    assert_eq!(reply.status, 401, "known hook, no signature");
    let reply = http(server.addr, "POST", "/v1/hooks/nope", &[], b"{}");
    assert_eq!(reply.status, 404, "{}", reply.body);
    assert_eq!(reply.json()["code"], "TriggerDoesNotExist");

    // The body is the input.
    let executions = server.executions();
    assert_eq!(executions.len(), 1);
    let input: Value = serde_json::from_str(&executions[0].input).expect("json");
    assert_eq!(input, json!({"ref": "main", "n": 1}));
    let state = server.get("/v1/triggers/deploys").json();
    assert_eq!(state["fired"], 2, "{state}");
    assert_eq!(state["lastExecutionArn"], arn.as_str());
}

#[test]
fn webhooks_without_a_secret_or_key() {
    let server = Server::start(&[], None);
    server.machine("hooked", PASS);
    let created = server.trigger(json!({
        "name": "open", "kind": "webhook", "stateMachine": "hooked",
        "input": {"who.$": "$.user", "via": "hook"}
    }));
    assert_eq!(created.status, 201, "{}", created.body);
    // No key: each call is its own event.
    for _ in 0..2 {
        let reply = server.post("/v1/hooks/open", r#"{"user": "ada"}"#);
        assert_eq!(reply.status, 202, "{}", reply.body);
    }
    let executions = server.executions();
    assert_eq!(executions.len(), 2);
    for e in &executions {
        let input: Value = serde_json::from_str(&e.input).expect("json");
        assert_eq!(input, json!({"who": "ada", "via": "hook"}));
    }
    // A long key is hashed into the name; not JSON is refused.
    let long = "k".repeat(200);
    let reply = http(
        server.addr,
        "POST",
        "/v1/hooks/open",
        &[("Idempotency-Key", &long)],
        br#"{"user": "bob"}"#,
    );
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert!(reply.json()["name"].as_str().expect("name").len() <= 80);
    let reply = server.post("/v1/hooks/open", "{not json");
    assert_eq!(reply.status, 400, "{}", reply.body);
    // A template that selects nothing fails the start, and says why.
    let reply = server.post("/v1/hooks/open", r#"{"nobody": 1}"#);
    assert_eq!(reply.status, 422, "{}", reply.body);
    assert!(
        server.get("/v1/triggers/open").json()["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("$.user"))
    );
    // Disabled: refused.
    assert_eq!(server.post("/v1/triggers/open/disable", "").status, 200);
    assert_eq!(
        server.post("/v1/hooks/open", r#"{"user": "x"}"#).status,
        409
    );
}

// ---------------------------------------------------------------------------
// The /v1/triggers API

#[test]
fn triggers_are_created_listed_enabled_and_deleted() {
    let server = Server::start(&[], None);
    server.machine("etl", PASS);
    let created = server.trigger(json!({
        "name": "nightly", "kind": "schedule", "stateMachine": "etl",
        "schedule": "cron(0 2 * * ? *)", "timezone": "+01:00", "catchUp": "all"
    }));
    assert_eq!(created.status, 201, "{}", created.body);
    let t = created.json();
    assert_eq!(
        (
            &t["name"],
            &t["kind"],
            &t["enabled"],
            &t["origin"],
            &t["catchUp"]
        ),
        (
            &json!("nightly"),
            &json!("schedule"),
            &json!(true),
            &json!("api"),
            &json!("all")
        )
    );
    // The driver computes the next fire time: 02:00 at +01:00 is 01:00 UTC.
    eventually("nextFire", 10, || {
        server.get("/v1/triggers/nightly").json()["nextFire"].is_string()
    });
    let next = server.get("/v1/triggers/nightly").json()["nextFire"]
        .as_str()
        .expect("time")
        .to_owned();
    assert!(next.ends_with("T01:00:00.000Z"), "{next}");

    let listed = server.get("/v1/triggers").json();
    assert_eq!(listed["triggers"].as_array().expect("list").len(), 1);
    assert!(listed["triggers"][0].get("lastFired").is_some());
    assert!(listed["triggers"][0].get("lastError").is_some());

    assert_eq!(
        server.trigger(created.json()).status,
        400,
        "output fields are not input"
    );
    let dup = server.trigger(json!({"name": "nightly", "kind": "webhook", "stateMachine": "etl"}));
    assert_eq!(
        (dup.status, dup.json()["code"].clone()),
        (409, json!("TriggerAlreadyExists"))
    );

    let disabled = server.post("/v1/triggers/nightly/disable", "");
    assert_eq!(disabled.status, 200, "{}", disabled.body);
    assert_eq!(disabled.json()["enabled"], false);
    assert_eq!(
        server.post("/v1/triggers/nightly/enable", "").json()["enabled"],
        true
    );

    for (spec, words) in [
        (
            json!({"name": "x", "kind": "schedule", "stateMachine": "etl", "schedule": "cron(0 2 * * * *)"}),
            "one of them must be '?'",
        ),
        (
            json!({"name": "x", "kind": "schedule", "stateMachine": "etl", "schedule": "rate(1 hour)", "colour": 1}),
            "unknown field 'colour'",
        ),
        (
            json!({"name": "x y", "kind": "webhook", "stateMachine": "etl"}),
            "not a trigger name",
        ),
        (
            json!({"name": "x", "kind": "file", "stateMachine": "etl", "directory": "/tmp"}),
            "no file roots",
        ),
        (
            json!({"name": "x", "kind": "mail", "stateMachine": "etl"}),
            "unknown variant",
        ),
        (json!({"name": "x", "kind": "webhook"}), "`stateMachine`"),
    ] {
        let reply = server.trigger(spec.clone());
        assert_eq!(reply.status, 400, "{spec}: {}", reply.body);
        assert!(
            reply.json()["message"]
                .as_str()
                .expect("message")
                .contains(words),
            "{spec}: {}",
            reply.body
        );
    }

    let deleted = http(server.addr, "DELETE", "/v1/triggers/nightly", &[], b"");
    assert_eq!(deleted.status, 204);
    let gone = server.get("/v1/triggers/nightly");
    assert_eq!(
        (gone.status, gone.json()["code"].clone()),
        (404, json!("TriggerDoesNotExist"))
    );
    assert_eq!(
        http(server.addr, "DELETE", "/v1/triggers/nightly", &[], b"").status,
        404
    );
}

#[test]
fn backfill_through_the_command_line() {
    let server = Server::start(&[], None);
    server.machine("etl", PASS);
    let created = server.trigger(json!({
        "name": "hourly", "kind": "schedule", "stateMachine": "etl", "schedule": "rate(1 hour)"
    }));
    assert_eq!(created.status, 201, "{}", created.body);
    let endpoint = format!("http://{}", server.addr);
    let args = [
        "backfill",
        "hourly",
        "--from",
        "2026-01-01T00:00:00Z",
        "--to",
        "2026-01-01T05:00:00Z",
        "--endpoint",
        endpoint.as_str(),
    ];
    let run = stepline(&args);
    assert_eq!(run.status, 0, "{run:?}");
    assert!(
        run.stdout.contains("6 slot(s)") && run.stdout.contains("6 started"),
        "{run:?}"
    );
    let run = stepline(&args);
    assert!(
        run.stdout.contains("0 started, 6 already started"),
        "{run:?}"
    );
    let names: Vec<String> = server.executions().into_iter().map(|e| e.name).collect();
    assert_eq!(names.len(), 6);
    assert_eq!(names[0], "hourly-20260101T000000Z");
    let input: Value = serde_json::from_str(&server.executions()[5].input).expect("json");
    assert_eq!(input["scheduledTime"], "2026-01-01T05:00:00Z");
    assert_eq!(input["backfill"], true);

    let run = stepline(&[
        "backfill",
        "nope",
        "--from",
        "2026-01-01T00:00:00Z",
        "--to",
        "2026-01-02T00:00:00Z",
        "--endpoint",
        endpoint.as_str(),
    ]);
    assert_eq!(run.status, 1);
    assert!(run.stderr.contains("TriggerDoesNotExist"), "{run:?}");
    let run = stepline(&[
        "backfill",
        "hourly",
        "--from",
        "yesterday",
        "--to",
        "2026-01-02T00:00:00Z",
    ]);
    assert_eq!(run.status, 2);
    assert!(run.stderr.contains("--from 'yesterday'"), "{run:?}");
}

// ---------------------------------------------------------------------------
// Files

fn file_trigger(name: &str, machine: &str, directory: &Path, extra: Value) -> Value {
    let mut spec = json!({
        "name": name, "kind": "file", "stateMachine": machine,
        "directory": directory.display().to_string(), "glob": "*.csv",
        "stableMs": 100, "pollMs": 20, "moveWhenDone": true,
    });
    if let (Value::Object(spec), Value::Object(extra)) = (&mut spec, extra) {
        spec.extend(extra);
    }
    spec
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn files_start_once_and_are_moved_when_done() {
    let root = TempDir::new("triggers-files");
    let inbox = root.path().join("inbox");
    std::fs::create_dir_all(&inbox).expect("inbox");
    // Files already there before the trigger exists are picked up too.
    std::fs::write(inbox.join("early.csv"), "a,b\n1,2\n").expect("write");
    std::fs::write(inbox.join("notes.txt"), "not matched").expect("write");
    let server = Server::start(&[root.path().to_path_buf()], None);
    server.machine("etl", PASS);
    server.machine("broken", FAIL);
    let reply = server.trigger(file_trigger("inbox", "etl", &inbox, json!({})));
    assert_eq!(reply.status, 201, "{}", reply.body);
    std::fs::write(inbox.join("late.csv"), "x\n").expect("write");

    eventually("both files processed", 20, || {
        names_in(&inbox.join("processed")) == ["early.csv", "late.csv"]
    });
    assert_eq!(names_in(&inbox), ["notes.txt"]);
    let executions = server.executions();
    assert_eq!(executions.len(), 2, "{executions:?}");
    let early = executions
        .iter()
        .map(|e| serde_json::from_str::<Value>(&e.input).expect("json"))
        .find(|i| i["name"] == "early.csv")
        .expect("early");
    assert_eq!(early["size"], 8);
    assert_eq!(early["trigger"], "inbox");
    assert_eq!(early["kind"], "file");
    assert!(
        early["path"]
            .as_str()
            .expect("path")
            .ends_with("inbox/early.csv")
    );
    assert!(early["modified"].as_str().expect("time").ends_with('Z'));

    // A failing state machine: the file goes to failed/.
    let outbox = root.path().join("outbox");
    std::fs::create_dir_all(&outbox).expect("outbox");
    let reply = server.trigger(file_trigger("outbox", "broken", &outbox, json!({})));
    assert_eq!(reply.status, 201, "{}", reply.body);
    std::fs::write(outbox.join("bad.csv"), "x\n").expect("write");
    eventually("the failed file moved", 20, || {
        names_in(&outbox.join("failed")) == ["bad.csv"]
    });
}

#[test]
fn a_file_still_being_written_waits_for_the_window() {
    let root = TempDir::new("triggers-stable");
    let inbox = root.path().join("inbox");
    std::fs::create_dir_all(&inbox).expect("inbox");
    let server = Server::start(&[root.path().to_path_buf()], None);
    server.machine("etl", PASS);
    let spec = file_trigger(
        "slow",
        "etl",
        &inbox,
        json!({"stableMs": 600, "moveWhenDone": false}),
    );
    assert_eq!(server.trigger(spec).status, 201);
    // Growing every 100 ms for 1 s: never stable for 600 ms meanwhile.
    let path = inbox.join("growing.csv");
    let started = Instant::now();
    for i in 0..10 {
        std::fs::write(&path, "x".repeat(i + 1)).expect("write");
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            server.executions().is_empty(),
            "started while growing ({i})"
        );
    }
    eventually("the stable file starts", 20, || {
        server.executions().len() == 1
    });
    assert!(started.elapsed() >= Duration::from_millis(1500));
    let input: Value = serde_json::from_str(&server.executions()[0].input).expect("json");
    assert_eq!(input["size"], 10, "the whole file");
    // Not moved: it stays, and is not started again.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(server.executions().len(), 1);
    assert_eq!(names_in(&inbox), ["growing.csv"]);
}

#[cfg(unix)]
#[test]
fn symbolic_links_never_lead_outside_the_roots() {
    let root = TempDir::new("triggers-root");
    let outside = TempDir::new("triggers-outside");
    outside.write("secret.csv", "do not read");
    let inbox = root.path().join("inbox");
    std::fs::create_dir_all(&inbox).expect("inbox");
    std::os::unix::fs::symlink(outside.path(), root.path().join("escape")).expect("link");
    std::os::unix::fs::symlink(outside.path().join("secret.csv"), inbox.join("linked.csv"))
        .expect("link");
    let server = Server::start(&[root.path().to_path_buf()], None);
    server.machine("etl", PASS);
    // A directory reached through a link that leaves the root is refused.
    let reply = server.trigger(file_trigger(
        "escape",
        "etl",
        &root.path().join("escape"),
        json!({}),
    ));
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(
        reply.json()["message"]
            .as_str()
            .expect("message")
            .contains("outside the configured file roots")
    );
    let reply = server.trigger(file_trigger(
        "dots",
        "etl",
        &inbox.join("../../"),
        json!({}),
    ));
    assert_eq!(reply.status, 400, "{}", reply.body);
    // A linked file inside the directory is not followed.
    assert_eq!(
        server
            .trigger(file_trigger("inbox", "etl", &inbox, json!({})))
            .status,
        201
    );
    std::fs::write(inbox.join("real.csv"), "ok").expect("write");
    eventually("the real file", 20, || {
        names_in(&inbox.join("processed")) == ["real.csv"]
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(server.executions().len(), 1);
    assert!(std::fs::symlink_metadata(inbox.join("linked.csv")).is_ok());
}

/// A `processed/` (or `failed/`) replaced by a link to a directory outside
/// the roots: the finished file is not moved through it; it stays where it
/// is and the trigger's last error says why.
#[cfg(unix)]
#[test]
fn a_linked_processed_directory_does_not_move_files_out_of_the_roots() {
    let root = TempDir::new("triggers-moved-root");
    let outside = TempDir::new("triggers-moved-outside");
    let inbox = root.path().join("inbox");
    std::fs::create_dir_all(&inbox).expect("inbox");
    std::os::unix::fs::symlink(outside.path(), inbox.join("processed")).expect("link");
    std::os::unix::fs::symlink(outside.path().join("gone"), inbox.join("failed"))
        .expect("dangling link");
    let server = Server::start(&[root.path().to_path_buf()], None);
    server.machine("etl", PASS);
    server.machine("broken", FAIL);
    let reply = server.trigger(file_trigger("linked", "etl", &inbox, json!({})));
    assert_eq!(reply.status, 201, "{}", reply.body);
    std::fs::write(inbox.join("order.csv"), "a\n").expect("write");
    eventually("the move refused", 20, || {
        server.get("/v1/triggers/linked").json()["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("symbolic link"))
    });
    let error = server.get("/v1/triggers/linked").json()["lastError"].clone();
    assert!(
        error.as_str().expect("error").contains("order.csv"),
        "{error}"
    );
    assert_eq!(server.executions().len(), 1);
    assert_eq!(names_in(&inbox), ["order.csv"], "the file stays");
    assert_eq!(names_in(outside.path()), Vec::<String>::new());

    // A failing machine: `failed/` is a dangling link, not followed either.
    let outbox = root.path().join("outbox");
    std::fs::create_dir_all(&outbox).expect("outbox");
    std::os::unix::fs::symlink(outside.path().join("gone"), outbox.join("failed"))
        .expect("dangling link");
    let reply = server.trigger(file_trigger("dangling", "broken", &outbox, json!({})));
    assert_eq!(reply.status, 201, "{}", reply.body);
    std::fs::write(outbox.join("bad.csv"), "x\n").expect("write");
    eventually("the move refused", 20, || {
        server.get("/v1/triggers/dangling").json()["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("symbolic link"))
    });
    assert_eq!(names_in(&outbox), ["bad.csv"], "the file stays");
    assert!(!outside.path().join("gone").exists());
}

#[test]
fn a_burst_of_files_starts_each_once_with_bounded_concurrency() {
    let root = TempDir::new("triggers-burst");
    let inbox = root.path().join("inbox");
    std::fs::create_dir_all(&inbox).expect("inbox");
    let count = 500;
    for i in 0..count {
        std::fs::write(inbox.join(format!("f{i:05}.csv")), format!("{i}\n")).expect("write");
    }
    let server = Server::start(&[root.path().to_path_buf()], None);
    server.machine("etl", PASS);
    let spec = file_trigger(
        "burst",
        "etl",
        &inbox,
        json!({"maxInFlight": 8, "stableMs": 0}),
    );
    assert_eq!(server.trigger(spec).status, 201);
    eventually("every file processed", 60, || {
        names_in(&inbox.join("processed")).len() == count
    });
    let executions = server.executions();
    assert_eq!(executions.len(), count, "one execution per file");
    assert!(
        executions
            .iter()
            .all(|e| e.status == ExecutionStatus::Succeeded)
    );
    assert_eq!(server.get("/v1/triggers/burst").json()["fired"], count);
}

/// Files dropped while the server is down are picked up when it starts;
/// a file whose execution started just before a crash (not yet moved) is
/// not started again, only moved.
#[test]
fn after_a_restart_nothing_is_missed_and_nothing_started_twice() {
    let root = TempDir::new("triggers-restart");
    let data = TempDir::new("triggers-restart-data");
    let inbox = root.path().join("inbox");
    std::fs::create_dir_all(&inbox).expect("inbox");
    {
        let server = Server::start(&[root.path().to_path_buf()], Some(data.path()));
        server.machine("etl", PASS);
        assert_eq!(
            server
                .trigger(file_trigger("inbox", "etl", &inbox, json!({})))
                .status,
            201
        );
        std::fs::write(inbox.join("a.csv"), "a").expect("write");
        eventually("a processed", 20, || {
            names_in(&inbox.join("processed")) == ["a.csv"]
        });
        assert_eq!(
            http(server.addr, "POST", "/v1/triggers/inbox/disable", &[], b"").status,
            200
        );
        // The crash: c.csv's execution started, the file never moved.
        std::fs::write(inbox.join("c.csv"), "c").expect("write");
        let found = files::scan(&inbox.canonicalize().expect("canonical"), "c.csv").expect("scan");
        let c: &Found = &found[0];
        let started = server.post(
            &format!("/v1/state-machines/etl/executions?name=inbox-{}", c.id()),
            &json!({"trigger": "inbox", "kind": "file", "path": c.path.display().to_string(),
                    "name": c.name, "size": c.size, "modified": stepline::triggers::rfc3339(c.modified)})
                .to_string(),
        );
        assert_eq!(started.status, 201, "{}", started.body);
    }
    // While down.
    std::fs::write(inbox.join("b.csv"), "b").expect("write");
    let server = Server::start(&[root.path().to_path_buf()], Some(data.path()));
    assert_eq!(server.post("/v1/triggers/inbox/enable", "").status, 200);
    eventually("b and c processed", 20, || {
        names_in(&inbox.join("processed")) == ["a.csv", "b.csv", "c.csv"]
    });
    let executions = server.executions();
    assert_eq!(
        executions.len(),
        3,
        "{:?}",
        executions.iter().map(|e| &e.name).collect::<Vec<_>>()
    );
}

/// The worked example of docs/triggers.md: a CSV dropped into an inbox runs
/// state-machines/csv-etl.asl.json, whose extract step is the registered
/// process docs/examples/csv-extract.py.
#[test]
fn the_worked_example_runs() {
    let root = TempDir::new("triggers-example");
    let inbox = root.path().join("inbox");
    std::fs::create_dir_all(&inbox).expect("inbox");
    let script = repo_root().join("docs/examples/csv-extract.py");
    let config = stepline::config::parse(&format!(
        "[tasks.processes.csv-extract]\ncommand = \"/usr/bin/python3\"\nargs = [{:?}]\ntimeout_seconds = 60\n",
        script.display().to_string()
    ))
    .expect("config");
    let runner = stepline_runtime::tasks::Invokers::new(config.tasks).expect("invokers");
    let server = Server::start_with(&[root.path().to_path_buf()], None, Arc::new(runner));
    let definition = std::fs::read_to_string(repo_root().join("state-machines/csv-etl.asl.json"))
        .expect("the example");
    server.machine("csv-etl", &definition);
    let spec = file_trigger("inbox", "csv-etl", &inbox, json!({"stableMs": 200}));
    assert_eq!(server.trigger(spec).status, 201);

    std::fs::write(inbox.join(".orders.tmp"), "id,amount\n1,12.5\n2,7\n").expect("write");
    std::fs::rename(inbox.join(".orders.tmp"), inbox.join("orders.csv")).expect("rename");
    std::fs::write(inbox.join("empty.csv"), "id,amount\n").expect("write");
    eventually("orders.csv processed, empty.csv failed", 30, || {
        names_in(&inbox.join("processed")) == ["orders.csv"]
            && names_in(&inbox.join("failed")) == ["empty.csv"]
    });
    let executions = server.executions();
    let orders = executions
        .iter()
        .find(|e| e.status == ExecutionStatus::Succeeded)
        .expect("the orders execution");
    let output: Value =
        serde_json::from_str(orders.output.as_deref().expect("output")).expect("json");
    assert_eq!(
        output,
        json!({"file": "orders.csv", "rows": 2, "columns": ["id", "amount"], "amounts": [12.5, 7]})
    );
    let empty = executions
        .iter()
        .find(|e| e.status == ExecutionStatus::Failed)
        .expect("the empty execution");
    assert_eq!(empty.error.as_deref(), Some("Csv.Empty"));
}

/// The figures in docs/performance.md: file arrival to ExecutionStarted
/// latency, and a burst of 10,000 files started exactly once, on sled.
/// Measured only with STEPLINE_TRIGGER_BENCH=1 (it takes a while); without
/// it the test checks nothing and says so.
#[test]
fn benchmark_file_triggers() {
    if std::env::var_os("STEPLINE_TRIGGER_BENCH").is_none() {
        eprintln!("benchmark_file_triggers: set STEPLINE_TRIGGER_BENCH=1 to measure");
        return;
    }
    let root = TempDir::new("triggers-bench");
    let data = TempDir::new("triggers-bench-data");
    let inbox = root.path().join("inbox");
    let burst = root.path().join("burst");
    std::fs::create_dir_all(&inbox).expect("inbox");
    std::fs::create_dir_all(&burst).expect("burst");
    let server = Server::start(&[root.path().to_path_buf()], Some(data.path()));
    server.machine("etl", PASS);
    let (stable, poll) = (200u64, 20u64);
    let spec = file_trigger(
        "latency",
        "etl",
        &inbox,
        json!({"stableMs": stable, "pollMs": poll, "moveWhenDone": false}),
    );
    assert_eq!(server.trigger(spec).status, 201);

    // Latency: one file at a time, from the write to the execution's start.
    let mut latencies = Vec::new();
    for i in 0..200 {
        let written = chrono::Utc::now();
        std::fs::write(inbox.join(format!("l{i:04}.csv")), "x\n").expect("write");
        eventually("the start", 10, || server.executions().len() == i + 1);
        let started = server
            .executions()
            .into_iter()
            .map(|e| e.start)
            .max()
            .expect("one");
        latencies.push((started - written).num_milliseconds());
        std::thread::sleep(Duration::from_millis(7));
    }
    latencies.sort();
    let pct = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
    eprintln!(
        "latency (stable {stable} ms, poll {poll} ms, {} files): p50 {} ms, p90 {} ms, p99 {} ms, max {} ms",
        latencies.len(),
        pct(50),
        pct(90),
        pct(99),
        latencies[latencies.len() - 1]
    );

    // Burst: 10,000 files, then the trigger; each started exactly once.
    let count = 10_000;
    for i in 0..count {
        std::fs::write(burst.join(format!("b{i:05}.csv")), format!("{i}\n")).expect("write");
    }
    let before = server.executions().len();
    let began = Instant::now();
    let spec = file_trigger(
        "burst",
        "etl",
        &burst,
        json!({"stableMs": stable, "pollMs": 50, "maxInFlight": 64}),
    );
    assert_eq!(server.trigger(spec).status, 201);
    eventually("every file processed", 600, || {
        names_in(&burst.join("processed")).len() == count
    });
    let took = began.elapsed();
    let executions = server.executions();
    let burst_executions: Vec<&ExecutionRecord> = executions
        .iter()
        .filter(|e| e.name.starts_with("burst-"))
        .collect();
    assert_eq!(burst_executions.len(), count, "one execution per file");
    assert_eq!(executions.len() - before, count);
    let mut names: Vec<&str> = burst_executions.iter().map(|e| e.name.as_str()).collect();
    names.dedup();
    assert_eq!(names.len(), count);
    eprintln!(
        "burst: {count} files started and moved in {:.1} s ({:.0} files/s), max_in_flight 64, exactly once",
        took.as_secs_f64(),
        count as f64 / took.as_secs_f64()
    );
}

/// `kill -9` of the real `stepline serve` (its file trigger defined in
/// stepline.toml) while a burst of files is being started and their
/// executions run, then a restart on the same data directory: every file
/// ends up processed, each by exactly one execution.
#[test]
fn kill_9_during_a_burst_starts_each_file_once() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let root = TempDir::new("triggers-kill");
    let data = TempDir::new("triggers-kill-data");
    let inbox = root.path().join("inbox");
    std::fs::create_dir_all(&inbox).expect("inbox");
    let config = root.path().join("stepline.toml");
    std::fs::write(
        &config,
        format!(
            "[triggers]\nfile_roots = [{root:?}]\n\n[[triggers.define]]\nname = \"inbox\"\nkind = \"file\"\nstate_machine = \"nap\"\ndirectory = {inbox:?}\nglob = \"*.csv\"\nstable_ms = 0\npoll_ms = 10\nmax_in_flight = 8\nmove_when_done = true\n",
            root = root.path().display().to_string(),
            inbox = inbox.display().to_string(),
        ),
    )
    .expect("config");
    let serve = || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_stepline-under-test"))
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(data.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("serve starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the first line");
        let addr: SocketAddr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        (child, addr)
    };
    let (mut child, addr) = serve();
    let nap =
        r#"{"StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "Seconds": 1, "End": true}}}"#;
    assert_eq!(
        http(
            addr,
            "POST",
            "/v1/state-machines?name=nap",
            &[],
            nap.as_bytes()
        )
        .status,
        201
    );
    // The trigger comes from the config file.
    let trigger = http(addr, "GET", "/v1/triggers/inbox", &[], b"");
    assert_eq!(trigger.json()["origin"], "config", "{}", trigger.body);
    let count = 40;
    // Each file appears whole (written aside, then renamed in): with
    // `stable_ms = 0` a file caught half written is another event once it
    // grows, and would rightly start a second execution.
    for i in 0..count {
        let aside = inbox.join(format!("k{i:03}.part"));
        std::fs::write(&aside, format!("{i}\n")).expect("write");
        std::fs::rename(&aside, inbox.join(format!("k{i:03}.csv"))).expect("rename");
    }
    // Some started, some running, most waiting: then SIGKILL.
    std::thread::sleep(Duration::from_millis(1500));
    let _ = child.kill();
    let _ = child.wait();
    let done_before = names_in(&inbox.join("processed")).len();
    assert!(
        done_before < count,
        "the kill came too late to test anything"
    );

    let (mut child, addr) = serve();
    eventually("every file processed after the restart", 60, || {
        names_in(&inbox.join("processed")).len() == count
    });
    let listed = http(
        addr,
        "GET",
        "/v1/executions?machine=nap&limit=1000",
        &[],
        b"",
    );
    let executions = listed.json()["executions"]
        .as_array()
        .cloned()
        .expect("list");
    let mut names: Vec<&str> = executions
        .iter()
        .map(|e| e["name"].as_str().expect("name"))
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(
        names.len(),
        count,
        "one execution per file: {}",
        listed.body
    );
    assert_eq!(executions.len(), count);
    assert!(executions.iter().all(|e| e["status"] == "SUCCEEDED"));
    let _ = child.kill();
    let _ = child.wait();
}

// ---------------------------------------------------------------------------
// The real binary: triggers of stepline.toml across a restart

/// `GET path` on the real server, as JSON.
fn get_json(serve: &crate::ops::Serve, path: &str) -> Value {
    let (status, body) = serve.get(path);
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).expect("json")
}

/// Through `stepline serve --config`: schedules in named zones show their
/// next fire in UTC; a file's execution says which file started it (its
/// input, and the log line of its start); a trigger of the file disabled
/// over REST shows no next fire and is still disabled after a restart.
#[test]
fn config_triggers_on_the_real_server_across_a_restart() {
    let root = TempDir::new("triggers-real");
    let inbox = root.path().join("inbox");
    std::fs::create_dir_all(&inbox).expect("inbox");
    let data = root.path().join("data");
    let config = root.write(
        "stepline.toml",
        format!(
            r#"
[triggers]
file_roots = [{root:?}]

[[triggers.define]]
name = "paris"
kind = "schedule"
state_machine = "etl"
schedule = "cron(0 9 * * ? *)"
timezone = "Europe/Paris"

[[triggers.define]]
name = "tokyo"
kind = "schedule"
state_machine = "etl"
schedule = "cron(0 9 * * ? *)"
timezone = "Asia/Tokyo"

[[triggers.define]]
name = "inbox"
kind = "file"
state_machine = "etl"
directory = {inbox:?}
glob = "*.csv"
stable_ms = 100
poll_ms = 20
move_when_done = true
"#,
            root = root.path().display().to_string(),
            inbox = inbox.display().to_string(),
        ),
    );
    let serve = crate::ops::Serve::start(&data, &config, root.path().join("first.log"));
    let (status, _) = serve.post(
        "/v1/state-machines?name=etl",
        &serde_json::from_str(PASS).expect("json"),
    );
    assert_eq!(status, 201);

    // 09:00 in Tokyo (+09:00, no daylight saving time) is 00:00 UTC; in
    // Paris, 08:00 UTC in winter and 07:00 UTC in summer.
    let next_fire = |name: &str| -> Option<String> {
        get_json(&serve, &format!("/v1/triggers/{name}"))["nextFire"]
            .as_str()
            .map(str::to_owned)
    };
    eventually("next fires", 10, || {
        next_fire("tokyo").is_some() && next_fire("paris").is_some()
    });
    let tokyo = next_fire("tokyo").expect("tokyo");
    assert!(tokyo.ends_with("T00:00:00.000Z"), "{tokyo}");
    let paris = next_fire("paris").expect("paris");
    assert!(
        paris.ends_with("T07:00:00.000Z") || paris.ends_with("T08:00:00.000Z"),
        "{paris}"
    );

    // A file: its execution's name is a hash; its input and the log name
    // the file.
    std::fs::write(inbox.join("orders.csv"), "id,amount\n1,12.5\n").expect("write");
    eventually("orders.csv processed", 20, || {
        names_in(&inbox.join("processed")) == ["orders.csv"]
    });
    let listed = get_json(&serve, "/v1/executions?machine=etl");
    let executions = listed["executions"].as_array().expect("executions");
    assert_eq!(executions.len(), 1, "{listed}");
    let name = executions[0]["name"].as_str().expect("name").to_owned();
    assert!(name.starts_with("inbox-"), "{name}");
    let execution = get_json(&serve, &format!("/v1/executions/etl/{name}"));
    assert_eq!(execution["input"]["name"], "orders.csv", "{execution}");
    assert!(
        execution["input"]["path"]
            .as_str()
            .is_some_and(|p| p.ends_with("inbox/orders.csv")),
        "{execution}"
    );
    let arn = execution["arn"].as_str().expect("arn").to_owned();
    eventually("the start's log line", 10, || {
        std::fs::read_to_string(&serve.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .any(|l| {
                l["fields"]["message"] == "file trigger started an execution"
                    && l["fields"]["file"] == "orders.csv"
                    && l["fields"]["execution"] == arn.as_str()
            })
    });

    // Disabled over REST: no next fire, now and after a restart.
    let (status, disabled) = serve.post("/v1/triggers/paris/disable", &json!({}));
    assert_eq!(status, 200, "{disabled}");
    assert_eq!(
        (&disabled["enabled"], &disabled["nextFire"]),
        (&json!(false), &Value::Null)
    );
    let listed = get_json(&serve, "/v1/triggers");
    let paris = listed["triggers"]
        .as_array()
        .expect("triggers")
        .iter()
        .find(|t| t["name"] == "paris")
        .expect("paris")
        .clone();
    assert_eq!(paris["nextFire"], Value::Null, "{paris}");
    drop(serve);

    let serve = crate::ops::Serve::start(&data, &config, root.path().join("second.log"));
    let paris = get_json(&serve, "/v1/triggers/paris");
    assert_eq!(
        (&paris["enabled"], &paris["nextFire"], &paris["origin"]),
        (&json!(false), &Value::Null, &json!("config")),
        "{paris}"
    );
    eventually("tokyo's next fire after the restart", 10, || {
        get_json(&serve, "/v1/triggers/tokyo")["nextFire"].is_string()
    });
    // Enabled again: it has a next fire again.
    let (status, enabled) = serve.post("/v1/triggers/paris/enable", &json!({}));
    assert_eq!((status, &enabled["enabled"]), (200, &json!(true)));
    eventually("paris's next fire", 10, || {
        get_json(&serve, "/v1/triggers/paris")["nextFire"].is_string()
    });
}

//! `stepline serve` on PostgreSQL (`--store` / `[store]`): the database
//! named by `STEPLINE_TEST_POSTGRES` (`tests/postgres/start` starts one),
//! each test in a schema of its own. Without it these tests say so and
//! pass, unless `STEPLINE_REQUIRE_POSTGRES=1` (as in CI).

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::json;

use crate::support::{Serve, TempDir, eventually, stepline_binary};

/// A config file putting the store in a new schema of the test database
/// (nodes' leases of two seconds, so that a killed node's executions are
/// taken over soon), or `None` when no database is configured.
pub(crate) fn postgres_config(dir: &TempDir, test: &str) -> Option<std::path::PathBuf> {
    postgres_config_with(dir, test, "")
}

/// [`postgres_config`], with `more` appended to the file.
pub(crate) fn postgres_config_with(
    dir: &TempDir,
    test: &str,
    more: &str,
) -> Option<std::path::PathBuf> {
    let Ok(url) = std::env::var("STEPLINE_TEST_POSTGRES") else {
        assert!(
            std::env::var("STEPLINE_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "STEPLINE_REQUIRE_POSTGRES=1 but STEPLINE_TEST_POSTGRES is not set"
        );
        eprintln!("{test}: skipped, STEPLINE_TEST_POSTGRES is not set (see tests/postgres/start)");
        return None;
    };
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let schema = format!(
        "e2e_{}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros()),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    Some(dir.write(
        "stepline.toml",
        format!("[store]\nurl = \"{url}\"\nschema = \"{schema}\"\nlease_seconds = 2\n{more}"),
    ))
}

#[test]
fn kill_9_on_postgresql_loses_nothing() {
    let binary = stepline_binary();
    let dir = TempDir::new("pg-crash");
    let Some(config) = postgres_config(&dir, "kill -9 on PostgreSQL") else {
        return;
    };
    // The data directory stays empty: everything is in the database.
    let data = dir.path().join("unused");
    crate::crash::kills_lose_nothing(|| Serve::start_with(&binary, &data, Some(&config)));
    assert!(!data.exists(), "a PostgreSQL node wrote a data directory");
}

#[test]
fn an_unreachable_database_stops_the_start_with_a_clear_error() {
    let binary = stepline_binary();
    let dir = TempDir::new("pg-down");
    let out = Command::new(&binary)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .args(["--store", "postgres://stepline:hunter2@127.0.0.1:1/none"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot open the store at postgres://stepline:***@127.0.0.1:1/none"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn store_migrate_creates_the_schema_once() {
    let dir = TempDir::new("pg-migrate");
    let Some(config) = postgres_config(&dir, "store migrate") else {
        return;
    };
    let config = config.to_str().expect("utf-8 path");
    let first = crate::support::stepline(&["store", "migrate", "--config", config]);
    assert_eq!(first.status, 0, "{}", first.stderr);
    assert!(
        first.stdout.contains("migrated from version 0 to 6"),
        "{}",
        first.stdout
    );
    let again = crate::support::stepline(&["store", "migrate", "--config", config]);
    assert_eq!(again.status, 0, "{}", again.stderr);
    assert!(
        again.stdout.contains("is at version 6: nothing to do"),
        "{}",
        again.stdout
    );
    let none = crate::support::stepline(&["store", "migrate"]);
    assert_eq!(none.status, 2, "{}", none.stderr);
    assert!(
        none.stderr.contains("no PostgreSQL database given"),
        "{}",
        none.stderr
    );
}

/// A PostgreSQL of this test's own (it is stopped and started again),
/// stopped when dropped.
pub(crate) struct OwnDatabase {
    dir: TempDir,
    pub(crate) url: String,
    port: u16,
}

impl OwnDatabase {
    pub(crate) fn start() -> Self {
        let dir = TempDir::new("pg-own");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut database = Self {
            dir,
            url: String::new(),
            port,
        };
        database.url = database.up();
        database
    }

    fn script(name: &str) -> std::path::PathBuf {
        crate::support::repo_root()
            .join("tests/postgres")
            .join(name)
    }

    pub(crate) fn up(&self) -> String {
        let out = Command::new(Self::script("start"))
            .arg(self.dir.path())
            .arg(self.port.to_string())
            .output()
            .expect("tests/postgres/start runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    pub(crate) fn down(&self) {
        let out = Command::new(Self::script("stop"))
            .arg(self.dir.path())
            .output()
            .expect("tests/postgres/stop runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for OwnDatabase {
    fn drop(&mut self) {
        let _ = Command::new(Self::script("stop"))
            .arg(self.dir.path())
            .output();
    }
}

#[test]
fn while_the_database_is_down_calls_answer_503_and_serving_resumes_after() {
    let dir = TempDir::new("pg-outage");
    if postgres_config(&dir, "database outage").is_none() {
        return;
    }
    let database = OwnDatabase::start();
    let binary = stepline_binary();
    let mut command = Command::new(&binary);
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("unused"))
        .args(["--store", &database.url]);
    let serve = Serve::spawn(command);
    let created = serve.call(
        "CreateStateMachine",
        &json!({"name": "m", "roleArn": "arn:aws:iam::111111111111:role/r",
                "definition": r#"{"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}"#}),
    );
    assert_eq!(created.0, 200, "{}", created.1);
    let machine = created.1["stateMachineArn"]
        .as_str()
        .expect("arn")
        .to_owned();
    // An execution whose Wait ends while the database is away.
    let waiting = serve.call(
        "CreateStateMachine",
        &json!({"name": "w", "roleArn": "arn:aws:iam::111111111111:role/r",
                "definition": r#"{"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 1, "End": true}}}"#}),
    );
    assert_eq!(waiting.0, 200, "{}", waiting.1);
    let (status, paused) = serve.call(
        "StartExecution",
        &json!({"stateMachineArn": waiting.1["stateMachineArn"]}),
    );
    assert_eq!(status, 200, "{paused}");
    let paused = paused["executionArn"].as_str().expect("arn").to_owned();

    database.down();
    let (status, answer) = serve.call("DescribeStateMachine", &json!({"stateMachineArn": machine}));
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["__type"], "ServiceUnavailable", "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap_or_default()
            .contains("PostgreSQL"),
        "{answer}"
    );
    let ready = crate::rest::http(serve.addr, "GET", "/ready", &[], b"");
    assert_eq!(ready.status, 503, "{}", ready.body);
    // The Wait ends meanwhile: its step cannot be written.
    std::thread::sleep(std::time::Duration::from_millis(1500));

    database.up();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let started = loop {
        let (status, answer) = serve.call("StartExecution", &json!({"stateMachineArn": machine}));
        if status == 200 {
            break answer;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never served again: {answer}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let arn = started["executionArn"].as_str().expect("arn");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, described) = serve.call("DescribeExecution", &json!({"executionArn": arn}));
        if described["status"] == "SUCCEEDED" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{described}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The paused execution resumed by itself, without a restart.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, described) = serve.call("DescribeExecution", &json!({"executionArn": paused}));
        if described["status"] == "SUCCEEDED" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never resumed: {described}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (_, history) = serve.call("GetExecutionHistory", &json!({"executionArn": paused}));
    let types: Vec<&str> = history["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["type"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        types,
        [
            "ExecutionStarted",
            "WaitStateEntered",
            "WaitStateExited",
            "ExecutionSucceeded"
        ]
    );
}

#[test]
fn store_copy_moves_a_data_directory_to_postgresql_and_back() {
    let binary = stepline_binary();
    let dir = TempDir::new("pg-copy");
    let Some(config) = postgres_config(&dir, "store copy") else {
        return;
    };
    let text = std::fs::read_to_string(&config).expect("config");
    let schema = text
        .lines()
        .find_map(|l| l.strip_prefix("schema = \""))
        .and_then(|s| s.strip_suffix('"'))
        .expect("schema")
        .to_owned();
    let url = std::env::var("STEPLINE_TEST_POSTGRES").expect("url");
    let sled = dir.path().join("sled");
    let arn = {
        let serve = Serve::start(&binary, &sled);
        let created = serve.call(
            "CreateStateMachine",
            &json!({"name": "m", "roleArn": "arn:aws:iam::111111111111:role/r",
                    "definition": r#"{"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": {"copied": true}, "End": true}}}"#}),
        );
        assert_eq!(created.0, 200, "{}", created.1);
        let machine = created.1["stateMachineArn"]
            .as_str()
            .expect("arn")
            .to_owned();
        let started = serve.call(
            "StartExecution",
            &json!({"stateMachineArn": machine, "name": "before-the-move"}),
        );
        assert_eq!(started.0, 200, "{}", started.1);
        let arn = started.1["executionArn"].as_str().expect("arn").to_owned();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while serve
            .call("DescribeExecution", &json!({"executionArn": arn}))
            .1["status"]
            != "SUCCEEDED"
        {
            assert!(std::time::Instant::now() < deadline);
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        arn
    };
    let config_arg = config.to_str().expect("utf-8");
    let sled_arg = sled.to_str().expect("utf-8");
    let moved = crate::support::stepline(&[
        "store", "copy", "--from", sled_arg, "--to", &url, "--config", config_arg,
    ]);
    assert_eq!(moved.status, 0, "{}", moved.stderr);
    assert!(
        moved.stdout.contains("1 executions (4 history events)"),
        "{}",
        moved.stdout
    );
    // Into a store that is not empty: refused.
    let again = crate::support::stepline(&[
        "store", "copy", "--from", sled_arg, "--to", &url, "--config", config_arg,
    ]);
    assert_eq!(again.status, 1);
    assert!(
        again.stderr.contains("copy into an empty store only"),
        "{}",
        again.stderr
    );

    let described = |serve: &Serve| {
        let (status, described) = serve.call("DescribeExecution", &json!({"executionArn": arn}));
        assert_eq!(status, 200, "{described}");
        assert_eq!(described["output"], r#"{"copied":true}"#);
        let (_, history) = serve.call("GetExecutionHistory", &json!({"executionArn": arn}));
        assert_eq!(
            history["events"].as_array().map(Vec::len),
            Some(4),
            "{history}"
        );
    };
    {
        let serve = Serve::start_with(&binary, &dir.path().join("unused"), Some(&config));
        described(&serve);
    }
    let back = dir.path().join("back");
    let copy_back = || {
        crate::support::stepline(&[
            "store",
            "copy",
            "--from",
            &url,
            "--to",
            back.to_str().expect("utf-8"),
            "--config",
            config_arg,
        ])
    };
    // The node was killed, not stopped: it counts as live until its
    // lease (two seconds) runs out, and a copy waits for that.
    let mut returned = copy_back();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while returned
        .stderr
        .contains("stepline nodes serve this database")
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(300));
        returned = copy_back();
    }
    assert_eq!(returned.status, 0, "{}", returned.stderr);
    described(&Serve::start(&binary, &back));
    assert!(!schema.is_empty());
}

/// Two nodes on one database: executions started and ended on either
/// node add to the same dashboard counts, which both nodes answer alike.
#[test]
fn two_nodes_share_the_dashboards_counts() {
    let dir = TempDir::new("pg-dashboard");
    let Some(config) = postgres_config(&dir, "shared dashboard") else {
        return;
    };
    let binary = stepline_binary();
    let nodes = [0, 1].map(|i| {
        Serve::start_with(
            &binary,
            &dir.path().join(format!("node-{i}")),
            Some(&config),
        )
    });
    let definition = r#"{"StartAt": "Check", "States": {
        "Check": {"Type": "Choice", "Choices": [{"Variable": "$.ok", "BooleanEquals": true, "Next": "Done"}], "Default": "Reject"},
        "Reject": {"Type": "Fail", "Error": "Rejected"},
        "Done": {"Type": "Succeed"}}}"#;
    let (status, created) = nodes[0].call(
        "CreateStateMachine",
        &json!({"name": "grader", "definition": definition,
                "roleArn": "arn:aws:iam::111111111111:role/r"}),
    );
    assert_eq!(status, 200, "{created}");
    let machine = created["stateMachineArn"].as_str().expect("arn").to_owned();
    // Six on each node, one in three failing.
    for i in 0..12 {
        let (status, started) = nodes[i % 2].call(
            "StartExecution",
            &json!({"stateMachineArn": machine, "name": format!("run-{i}"),
                    "input": json!({"ok": i % 3 != 0}).to_string()}),
        );
        assert_eq!(status, 200, "{started}");
    }
    let day = |node: &Serve| {
        let reply = crate::rest::http(node.addr, "GET", "/v1/dashboard", &[], b"");
        assert_eq!(reply.status, 200, "{}", reply.body);
        let body = reply.json();
        let m = &body["stateMachines"][0];
        (m["running"].clone(), m["windows"]["day"].clone())
    };
    // Each node gathers its counts in memory and adds them to the table
    // once a second: a node sees the other's within about a second.
    for node in &nodes {
        eventually("every execution counted on both nodes", 20, || {
            day(node).1["finished"] == 12
        });
        let (running, window) = day(node);
        assert_eq!(running, 0, "{window}");
        assert_eq!(
            (&window["started"], &window["succeeded"], &window["failed"]),
            (&json!(12), &json!(8), &json!(4)),
            "{window}"
        );
    }
    // The node an execution ended on counts it at once, flushed or not.
    let (status, started) = nodes[1].call(
        "StartExecution",
        &json!({"stateMachineArn": machine, "name": "one-more",
                "input": json!({"ok": true}).to_string()}),
    );
    assert_eq!(status, 200, "{started}");
    let arn = started["executionArn"].as_str().expect("arn").to_owned();
    eventually("one-more ends", 20, || {
        nodes[1]
            .call("DescribeExecution", &json!({"executionArn": arn}))
            .1["status"]
            == "SUCCEEDED"
    });
    let (running, window) = day(&nodes[1]);
    assert_eq!(running, 0, "{window}");
    assert_eq!(
        (&window["started"], &window["succeeded"]),
        (&json!(13), &json!(9)),
        "{window}"
    );
}

/// `max_running` over two nodes: eight starts of a state machine limited
/// to 2, through both nodes, never run more than two at once (counted by
/// the gate's log); a queued one is seen queued from either node and
/// stopped through the other before it runs; then the node that started
/// half of them dies (SIGKILL) with executions running, and the other
/// carries them and the rest of the queue on: every one but the stopped
/// one succeeds, each started once in its history.
#[test]
fn max_running_is_counted_across_the_cluster() {
    use crate::limits::{GATE, read_log};
    use crate::rest::http;

    let dir = TempDir::new("pg-limits");
    let log = dir.path().join("log");
    let go = dir.path().join("go");
    std::fs::create_dir_all(&go).expect("go dir");
    let gate = dir.write("gate.sh", GATE);
    let more = format!(
        r#"
[tasks.processes.gate]
command = "/bin/sh"
args = ["{gate}"]
env = {{ LOG = "{log}", GO = "{go}" }}

[[limits]]
state_machine = "gated"
max_running = 2
"#,
        gate = gate.display(),
        log = log.display(),
        go = go.display(),
    );
    let Some(config) = crate::postgres::postgres_config_with(&dir, "cluster max_running", &more)
    else {
        return;
    };
    let binary = stepline_binary();
    let [first, second] = [0, 1].map(|i| {
        Serve::start_with(
            &binary,
            &dir.path().join(format!("node-{i}")),
            Some(&config),
        )
    });
    let definition = json!({
        "StartAt": "Gate",
        "States": {
            "Gate": {"Type": "Task", "Resource": "stepline:process:gate", "TimeoutSeconds": 300, "End": true}
        }
    });
    let reply = http(
        first.addr,
        "POST",
        "/v1/state-machines?name=gated",
        &[],
        definition.to_string().as_bytes(),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    let mut arns = Vec::new();
    for i in 0..8 {
        let node = if i % 2 == 0 { &first } else { &second };
        let reply = http(
            node.addr,
            "POST",
            &format!("/v1/state-machines/gated/executions?name=e{i}"),
            &[],
            json!({"name": format!("e{i}")}).to_string().as_bytes(),
        );
        assert_eq!(reply.status, 201, "{}", reply.body);
        arns.push(reply.json()["arn"].as_str().expect("arn").to_owned());
    }
    eventually("two to start", 30, || read_log(&log).0.len() == 2);
    // The nodes' queue rounds come and go: still two.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let (started, most, _) = read_log(&log);
    assert_eq!((started.len(), most), (2, 2), "{started:?}");

    // Queued, as either node sees it: the six not started wait.
    let waiting: Vec<usize> = (0..8)
        .filter(|i| !started.contains(&format!("e{i}")))
        .collect();
    let last = waiting[waiting.len() - 1];
    for node in [&first, &second] {
        let e = http(
            node.addr,
            "GET",
            &format!("/v1/executions/gated/e{last}"),
            &[],
            b"",
        )
        .json();
        assert_eq!(e["status"], "RUNNING", "{e}");
        assert_eq!(
            e["queued"],
            json!({"reason": "max_running", "position": 6, "length": 6, "priority": 0}),
            "{e}"
        );
    }
    let metrics = http(second.addr, "GET", "/metrics", &[], b"").body;
    assert!(
        metrics.contains("stepline_limited_running{state_machine=\"gated\"} 2")
            && metrics.contains("stepline_limited_queued{state_machine=\"gated\"} 6"),
        "{metrics}"
    );
    // Stopped through the node that did not start it: never runs.
    let stopped = waiting[0];
    let (status, reply) = second.call(
        "StopExecution",
        &json!({"executionArn": arns[stopped], "error": "NotNeeded"}),
    );
    assert_eq!(status, 200, "{reply}");
    let e = http(
        first.addr,
        "GET",
        &format!("/v1/executions/gated/e{stopped}"),
        &[],
        b"",
    )
    .json();
    assert_eq!(e["status"], "ABORTED", "{e}");

    // The first node dies with its share running; the second carries on.
    first.kill();
    for i in 0..8 {
        std::fs::write(go.join(format!("e{i}")), b"").expect("go");
    }
    for i in (0..8).filter(|i| *i != stopped) {
        eventually(&format!("e{i} to succeed"), 60, || {
            http(
                second.addr,
                "GET",
                &format!("/v1/executions/gated/e{i}"),
                &[],
                b"",
            )
            .json()["status"]
                == "SUCCEEDED"
        });
        let history = http(
            second.addr,
            "GET",
            &format!("/v1/executions/gated/e{i}/history"),
            &[],
            b"",
        )
        .json();
        let starts = history["events"]
            .as_array()
            .expect("events")
            .iter()
            .filter(|e| e["type"] == "ExecutionStarted")
            .count();
        assert_eq!(starts, 1, "e{i}: {history}");
    }
    let (started, most, _) = read_log(&log);
    assert!(most <= 2, "{most} ran at once");
    assert!(
        !started.contains(&format!("e{stopped}")),
        "the stopped one never ran: {started:?}"
    );
    assert_eq!(started.len(), 7, "{started:?}");
    eventually("the slots and the queue to empty", 10, || {
        let metrics = http(second.addr, "GET", "/metrics", &[], b"").body;
        metrics.contains("stepline_limited_running{state_machine=\"gated\"} 0")
            && metrics.contains("stepline_limited_queued{state_machine=\"gated\"} 0")
    });
}

/// A state machine's settings put through one node apply on the other:
/// `max_running` set to 1 through the first holds the second's starts to
/// one at a time; raised through the first, the queue moves on. Windows
/// stay refused with the postgres store, over the API too.
#[test]
fn settings_put_through_one_node_apply_on_the_other() {
    use crate::limits::{GATE, read_log};
    use crate::rest::http;

    let dir = TempDir::new("pg-settings");
    let log = dir.path().join("log");
    let go = dir.path().join("go");
    std::fs::create_dir_all(&go).expect("go dir");
    let gate = dir.write("gate.sh", GATE);
    let more = format!(
        r#"
[tasks.processes.gate]
command = "/bin/sh"
args = ["{gate}"]
env = {{ LOG = "{log}", GO = "{go}" }}
"#,
        gate = gate.display(),
        log = log.display(),
        go = go.display(),
    );
    let Some(config) = crate::postgres::postgres_config_with(&dir, "cluster settings", &more)
    else {
        return;
    };
    let binary = stepline_binary();
    let [first, second] = [0, 1].map(|i| {
        Serve::start_with(
            &binary,
            &dir.path().join(format!("node-{i}")),
            Some(&config),
        )
    });
    let definition = json!({
        "StartAt": "Gate",
        "States": {
            "Gate": {"Type": "Task", "Resource": "stepline:process:gate", "TimeoutSeconds": 300, "End": true}
        }
    });
    let reply = http(
        first.addr,
        "POST",
        "/v1/state-machines?name=gated",
        &[],
        definition.to_string().as_bytes(),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    let put = |addr, body: serde_json::Value| {
        http(
            addr,
            "PUT",
            "/v1/state-machines/gated/settings",
            &[],
            body.to_string().as_bytes(),
        )
    };
    let reply = put(first.addr, json!({"maxRunning": 1}));
    assert_eq!(reply.status, 200, "{}", reply.body);
    let limit_on = |serve: &Serve, n: u32| {
        http(serve.addr, "GET", "/metrics", &[], b"")
            .body
            .contains(&format!(
                "stepline_max_running{{state_machine=\"gated\"}} {n}"
            ))
    };
    eventually("the second node to take the limit", 20, || {
        limit_on(&second, 1)
    });
    for i in 0..3 {
        let reply = http(
            second.addr,
            "POST",
            &format!("/v1/state-machines/gated/executions?name=e{i}"),
            &[],
            json!({"name": format!("e{i}")}).to_string().as_bytes(),
        );
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
    eventually("one to start", 30, || read_log(&log).0.len() == 1);
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(read_log(&log).0.len(), 1, "only one runs");

    let reply = put(first.addr, json!({"maxRunning": 2}));
    assert_eq!(reply.status, 200, "{}", reply.body);
    eventually("a second to start", 30, || read_log(&log).0.len() == 2);
    eventually("the second node to take the raise", 20, || {
        limit_on(&second, 2)
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    let (started, most, _) = read_log(&log);
    assert_eq!((started.len(), most), (2, 2), "{started:?}");

    let reply = put(
        second.addr,
        json!({"windows": {"windows": ["01:00-02:00"]}}),
    );
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(
        reply
            .body
            .contains("execution windows cannot be used with the postgres store"),
        "{}",
        reply.body
    );
    // The limit removed through the second node: the last queued starts.
    let cleared = http(
        second.addr,
        "DELETE",
        "/v1/state-machines/gated/settings",
        &[],
        b"",
    );
    assert_eq!(cleared.status, 200, "{}", cleared.body);
    assert_eq!(cleared.json()["maxRunning"], serde_json::Value::Null);
    eventually("the last to start without a limit", 30, || {
        read_log(&log).0.len() == 3
    });
    for i in 0..3 {
        std::fs::write(go.join(format!("e{i}")), b"").expect("go");
    }
    for i in 0..3 {
        eventually(&format!("e{i} to succeed"), 60, || {
            http(
                first.addr,
                "GET",
                &format!("/v1/executions/gated/e{i}"),
                &[],
                b"",
            )
            .json()["status"]
                == "SUCCEEDED"
        });
    }
}

//! Pools of slots (`[pools.NAME]`) end to end, through the real binary:
//! a pool runs at most its slots of the tasks that draw from it, with the
//! rest waiting first come first served; the wait is visible (REST
//! `/v1/pools`, the execution's `poolWaits`, `/metrics`, `stepline
//! pools`) and recorded on the task's TaskStarted or ActivityStarted
//! (REST `pool`, AWS `steplinePool`, `stepline history`); activities and
//! nested executions draw from pools too; and on PostgreSQL the nodes of
//! a cluster share one pool's slots.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};

use crate::rest::{Reply, http};
use crate::support::eventually;
use crate::support::{Serve, TempDir, stepline_binary};

fn get(addr: SocketAddr, path: &str) -> Reply {
    http(addr, "GET", path, &[], b"")
}

fn post(addr: SocketAddr, path: &str, body: &str) -> Reply {
    http(addr, "POST", path, &[], body.as_bytes())
}

/// An HTTP endpoint that holds every request until `release` is set,
/// counting how many it holds at once and the most it ever held.
struct Endpoint {
    addr: SocketAddr,
    counts: std::sync::Arc<Counts>,
}

#[derive(Default)]
struct Counts {
    now: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
    total: std::sync::atomic::AtomicUsize,
    release: std::sync::atomic::AtomicBool,
    /// The requests' bodies, in the order they came.
    bodies: std::sync::Mutex<Vec<String>>,
}

impl Endpoint {
    fn start() -> Self {
        use std::io::{BufRead, BufReader, Read, Write};
        use std::sync::atomic::Ordering::SeqCst;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let counts = std::sync::Arc::new(Counts::default());
        let shared = std::sync::Arc::clone(&counts);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let counts = std::sync::Arc::clone(&shared);
                std::thread::spawn(move || {
                    // The request: headers, then Content-Length bytes.
                    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                    let mut length = 0;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let lower = line.to_ascii_lowercase();
                        if let Some(v) = lower.strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let mut body = vec![0; length];
                    let _ = reader.read_exact(&mut body);
                    counts
                        .bodies
                        .lock()
                        .expect("bodies")
                        .push(String::from_utf8_lossy(&body).into_owned());
                    let now = counts.now.fetch_add(1, SeqCst) + 1;
                    counts.most.fetch_max(now, SeqCst);
                    counts.total.fetch_add(1, SeqCst);
                    while !counts.release.load(SeqCst) {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    // A moment held, so that a slot given back too early
                    // would show as a third at once.
                    std::thread::sleep(Duration::from_millis(20));
                    counts.now.fetch_sub(1, SeqCst);
                    let _ = stream.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
                    );
                });
            }
        });
        Self { addr, counts }
    }
}

#[test]
fn a_pool_runs_at_most_its_slots_with_ten_times_more_waiting() {
    use std::sync::atomic::Ordering::SeqCst;
    let endpoint = Endpoint::start();
    let dir = TempDir::new("pools");
    let config = dir.write(
        "stepline.toml",
        format!(
            r#"
[pools.warehouse]
slots = 2
http = ["http://{addr}/load"]
"#,
            addr = endpoint.addr
        ),
    );
    let serve = Serve::start_with(&stepline_binary(), &dir.path().join("data"), Some(&config));
    let addr = serve.addr;
    let definition = json!({
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "MaxConcurrency": 0,
                "ItemProcessor": {
                    "StartAt": "Load",
                    "States": {
                        "Load": {
                            "Type": "Task",
                            "Resource": "arn:aws:states:::http:invoke",
                            "Parameters": {
                                "ApiEndpoint": format!("http://{}/load", endpoint.addr),
                                "Method": "POST",
                                "RequestBody.$": "$"
                            },
                            "End": true
                        }
                    }
                },
                "End": true
            }
        }
    });
    let reply = post(
        addr,
        "/v1/state-machines?name=loads",
        &definition.to_string(),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    let items: Vec<Value> = (0..22).map(|i| json!({"n": i})).collect();
    let reply = post(
        addr,
        "/v1/state-machines/loads/executions?name=all",
        &json!({ "items": items }).to_string(),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);

    // Two called, twenty waiting: visible over REST and in /metrics.
    eventually("twenty tasks to wait", 30, || {
        let pools = get(addr, "/v1/pools").json();
        pools["pools"][0]["waiting"].as_array().map(Vec::len) == Some(20)
    });
    eventually("two calls held", 30, || {
        endpoint.counts.now.load(SeqCst) == 2
    });
    let pools = get(addr, "/v1/pools").json();
    let pool = &pools["pools"][0];
    assert_eq!(pool["name"], "warehouse");
    assert_eq!(pool["slots"], 2);
    assert_eq!(pool["inUse"], 2, "{pools}");
    assert_eq!(pool["waiting"][0]["stateName"], "Load", "{pools}");
    assert!(
        pool["waiting"][0]["executionArn"]
            .as_str()
            .is_some_and(|a| a.ends_with(":loads:all")),
        "{pools}"
    );
    let metrics = get(addr, "/metrics").body;
    for line in [
        "stepline_pool_slots{pool=\"warehouse\"} 2",
        "stepline_pool_slots_in_use{pool=\"warehouse\"} 2",
        "stepline_pool_waiting{pool=\"warehouse\"} 20",
    ] {
        assert!(metrics.contains(line), "{line} not in {metrics}");
    }
    // Who holds and who waits: the pools endpoint, the execution's REST
    // describe and `stepline pools`.
    assert_eq!(pool["holders"].as_array().map(Vec::len), Some(2), "{pools}");
    let described = get(addr, "/v1/executions/loads/all").json();
    let waits = described["poolWaits"].as_array().expect("poolWaits");
    assert_eq!(waits.len(), 20, "{described}");
    assert_eq!(waits[0]["pool"], "warehouse", "{described}");
    assert_eq!(waits[0]["stateName"], "Load", "{described}");
    let endpoint_url = format!("http://{addr}");
    let listed = crate::support::stepline(&["pools", "--endpoint", &endpoint_url]);
    assert_eq!(listed.status, 0, "{}", listed.stderr);
    let head = listed.stdout.lines().nth(1).unwrap_or_default().to_owned();
    assert_eq!(
        head.split_whitespace().collect::<Vec<_>>(),
        ["warehouse", "2", "2", "20"],
        "{}",
        listed.stdout
    );
    assert_eq!(
        listed.stdout.matches(" waits ").count(),
        20,
        "{}",
        listed.stdout
    );
    assert_eq!(
        listed.stdout.matches(" holds ").count(),
        2,
        "{}",
        listed.stdout
    );
    let shown = crate::support::stepline(&[
        "executions",
        "describe",
        "loads/all",
        "--endpoint",
        &endpoint_url,
    ]);
    assert_eq!(shown.status, 0, "{}", shown.stderr);
    assert_eq!(
        shown
            .stdout
            .matches("Load waits for warehouse since")
            .count(),
        20,
        "{}",
        shown.stdout
    );
    let as_json = crate::support::stepline(&["pools", "-o", "json", "--endpoint", &endpoint_url]);
    let as_json: Value = serde_json::from_str(&as_json.stdout).expect("json");
    assert_eq!(as_json["pools"][0]["inUse"], 2, "{as_json}");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(endpoint.counts.total.load(SeqCst), 2, "only two called");

    endpoint.counts.release.store(true, SeqCst);
    eventually("the execution to succeed", 30, || {
        get(addr, "/v1/executions/loads/all").json()["status"] == "SUCCEEDED"
    });
    // Each task started once it had its slot; its TaskStarted says which
    // pool and how long it waited (the REST face's `pool`, the AWS
    // face's `steplinePool`, which AWS's clients skip).
    let history = get(addr, "/v1/executions/loads/all/history?limit=1000").json();
    let events = history["events"].as_array().expect("events");
    let started: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "TaskStarted")
        .collect();
    let pools_of: Vec<&Value> = started.iter().map(|e| &e["details"]["pool"]).collect();
    assert_eq!(started.len(), 22, "{pools_of:?}");
    assert!(
        pools_of.iter().all(|p| p["name"] == "warehouse"),
        "{pools_of:?}"
    );
    let waited = started
        .iter()
        .filter(|e| {
            e["details"]["pool"]["waitedMs"]
                .as_u64()
                .is_some_and(|ms| ms >= 200)
        })
        .count();
    assert_eq!(
        waited, 20,
        "twenty waited at least the 200 ms held: {pools_of:?}"
    );
    let timeline = crate::support::stepline(&["history", "loads/all", "--endpoint", &endpoint_url]);
    assert_eq!(timeline.status, 0, "{}", timeline.stderr);
    assert_eq!(
        timeline.stdout.matches("pool warehouse, waited").count(),
        22,
        "{}",
        timeline.stdout
    );
    let arn = described["arn"].as_str().expect("arn").to_owned();
    let (status, aws) = serve.call("GetExecutionHistory", &json!({"executionArn": arn}));
    assert_eq!(status, 200);
    let first = aws["events"]
        .as_array()
        .and_then(|e| e.iter().find(|e| e["type"] == "TaskStarted"))
        .expect("TaskStarted");
    assert_eq!(
        first["taskStartedEventDetails"]["steplinePool"]["name"], "warehouse",
        "{first}"
    );
    if crate::aws::aws_cli_available() {
        let history = crate::aws::aws_cli(
            &endpoint_url,
            &[],
            &["get-execution-history", "--execution-arn", &arn],
        )
        .expect("the AWS CLI reads a history with pool waits");
        assert!(
            history["events"]
                .as_array()
                .is_some_and(|e| e.len() == events.len())
        );
    }
    assert_eq!(endpoint.counts.total.load(SeqCst), 22);
    assert_eq!(
        endpoint.counts.most.load(SeqCst),
        2,
        "never more than the slots"
    );
    let pools = get(addr, "/v1/pools").json();
    assert_eq!(pools["pools"][0]["inUse"], 0, "{pools}");
    assert_eq!(pools["pools"][0]["waiting"], json!([]), "{pools}");
}

/// Activities and nested executions draw from pools too: with one slot,
/// a second activity task is not handed to a worker until the first is
/// answered (its ActivityStarted records the wait), and the nested
/// executions of a pooled state machine run one at a time.
#[test]
fn activities_and_nested_executions_wait_for_their_pool() {
    let dir = TempDir::new("pools-activities");
    let config = dir.write(
        "stepline.toml",
        r#"
[pools.gpu]
slots = 1
activities = ["render"]

[pools.children]
slots = 1
state_machines = ["child"]
"#,
    );
    let serve = Serve::start_with(&stepline_binary(), &dir.path().join("data"), Some(&config));
    let addr = serve.addr;
    let (status, created) = serve.call("CreateActivity", &json!({"name": "render"}));
    assert_eq!(status, 200, "{created}");
    let activity = created["activityArn"].as_str().expect("arn").to_owned();
    let map_of = |task: Value| {
        json!({"StartAt": "Each", "States": {"Each": {
            "Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 0, "End": true,
            "ItemProcessor": {"StartAt": "Work", "States": {"Work": task}}}}})
    };
    let reply = post(
        addr,
        "/v1/state-machines?name=renders",
        &map_of(json!({"Type": "Task", "Resource": activity, "End": true})).to_string(),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    let reply = post(
        addr,
        "/v1/state-machines/renders/executions?name=r",
        &json!({"items": [1, 2]}).to_string(),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);

    // One task is the workers'; the other waits for the slot.
    let take = {
        let activity = activity.clone();
        move || {
            crate::aws::call_raw(
                addr,
                "GetActivityTask",
                &json!({"activityArn": activity, "workerName": "w"}).to_string(),
            )
        }
    };
    let (status, first) = take();
    assert_eq!(status, 200, "{first}");
    assert!(first["taskToken"].is_string(), "{first}");
    eventually("one render to wait for the slot", 30, || {
        let pools = get(addr, "/v1/pools").json();
        // By name: children, gpu.
        let gpu = &pools["pools"][1];
        gpu["name"] == "gpu"
            && gpu["inUse"] == 1
            && gpu["waiting"].as_array().map(Vec::len) == Some(1)
    });
    let described = get(addr, "/v1/executions/renders/r").json();
    assert_eq!(described["poolWaits"][0]["pool"], "gpu", "{described}");
    assert_eq!(
        described["poolWaits"][0]["stateName"], "Work",
        "{described}"
    );
    let (tx, second) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(take());
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        second.try_recv().is_err(),
        "no worker gets the second task while the first holds the slot"
    );
    let (status, _) = serve.call(
        "SendTaskSuccess",
        &json!({"taskToken": first["taskToken"], "output": "{}"}),
    );
    assert_eq!(status, 200);
    let (status, second) = second
        .recv_timeout(Duration::from_secs(30))
        .expect("the second task, once the slot is free");
    assert_eq!(status, 200, "{second}");
    let (status, _) = serve.call(
        "SendTaskSuccess",
        &json!({"taskToken": second["taskToken"], "output": "{}"}),
    );
    assert_eq!(status, 200);
    eventually("the renders to succeed", 30, || {
        get(addr, "/v1/executions/renders/r").json()["status"] == "SUCCEEDED"
    });
    let history = get(addr, "/v1/executions/renders/r/history?limit=1000").json();
    let started: Vec<Value> = history["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"] == "ActivityStarted")
        .map(|e| e["details"].clone())
        .collect();
    assert_eq!(started.len(), 2, "{started:?}");
    assert!(
        started
            .iter()
            .all(|d| d["pool"]["name"] == "gpu" && d["workerName"] == "w"),
        "{started:?}"
    );
    assert!(
        started[1]["pool"]["waitedMs"]
            .as_u64()
            .is_some_and(|ms| ms >= 300),
        "{started:?}"
    );
    let pools = get(addr, "/v1/pools").json();
    assert_eq!(pools["pools"][1]["inUse"], 0, "{pools}");

    // Nested executions of `child`, one at a time.
    let reply = post(
        addr,
        "/v1/state-machines?name=child",
        &json!({"StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "Seconds": 1, "End": true}}})
            .to_string(),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    let child_arn = serve.call("ListStateMachines", &json!({})).1["stateMachines"]
        .as_array()
        .expect("machines")
        .iter()
        .find(|m| m["name"] == "child")
        .expect("child")["stateMachineArn"]
        .clone();
    let reply = post(
        addr,
        "/v1/state-machines?name=parent",
        &map_of(
            json!({"Type": "Task", "Resource": "arn:aws:states:::states:startExecution.sync:2",
            "Parameters": {"StateMachineArn": child_arn, "Input": {}}, "End": true}),
        )
        .to_string(),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    let reply = post(
        addr,
        "/v1/state-machines/parent/executions?name=p",
        &json!({"items": [1, 2]}).to_string(),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    eventually("a nested start to wait for the slot", 30, || {
        let pools = get(addr, "/v1/pools").json();
        let children = &pools["pools"][0];
        children["name"] == "children"
            && children["inUse"] == 1
            && children["waiting"].as_array().map(Vec::len) == Some(1)
    });
    eventually("the parent to succeed", 30, || {
        get(addr, "/v1/executions/parent/p").json()["status"] == "SUCCEEDED"
    });
    let children = get(addr, "/v1/executions?machine=child").json();
    let mut runs: Vec<(String, String)> = children["executions"]
        .as_array()
        .expect("executions")
        .iter()
        .map(|e| {
            (
                e["startDate"].as_str().expect("start").to_owned(),
                e["stopDate"].as_str().expect("stop").to_owned(),
            )
        })
        .collect();
    runs.sort();
    assert_eq!(runs.len(), 2, "{children}");
    assert!(runs[0].1 <= runs[1].0, "one after the other: {runs:?}");
    let history = get(addr, "/v1/executions/parent/p/history?limit=1000").json();
    let waits: Vec<Value> = history["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"] == "TaskStarted")
        .map(|e| e["details"]["pool"].clone())
        .collect();
    assert_eq!(waits.len(), 2, "{waits:?}");
    assert!(waits.iter().all(|p| p["name"] == "children"), "{waits:?}");
    assert!(
        waits
            .iter()
            .any(|p| p["waitedMs"].as_u64().is_some_and(|ms| ms >= 900)),
        "{waits:?}"
    );
}

/// Two nodes on one PostgreSQL share a pool of two slots: twelve tasks
/// started through both nodes are called at most two at a time, and each
/// node's `/v1/pools` shows the slots held on either.
#[test]
fn two_nodes_share_a_pool_on_postgresql() {
    use std::sync::atomic::Ordering::SeqCst;
    let endpoint = Endpoint::start();
    let dir = TempDir::new("pools-cluster");
    let more = format!(
        "[pools.warehouse]\nslots = 2\nhttp = [\"http://{}/load\"]\n",
        endpoint.addr
    );
    let Some(config) =
        crate::postgres::postgres_config_with(&dir, "pools shared by two nodes", &more)
    else {
        return;
    };
    let binary = stepline_binary();
    let nodes = [
        Serve::start_with(&binary, &dir.path().join("unused-0"), Some(&config)),
        Serve::start_with(&binary, &dir.path().join("unused-1"), Some(&config)),
    ];
    let definition = json!({
        "StartAt": "Each",
        "States": {"Each": {
            "Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 0, "End": true,
            "ItemProcessor": {"StartAt": "Load", "States": {"Load": {
                "Type": "Task", "Resource": "arn:aws:states:::http:invoke",
                "Parameters": {
                    "ApiEndpoint": format!("http://{}/load", endpoint.addr),
                    "Method": "POST", "RequestBody.$": "$"},
                "End": true}}}}}
    });
    let reply = post(
        nodes[0].addr,
        "/v1/state-machines?name=loads",
        &definition.to_string(),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    let waiting = |node: &Serve| {
        get(node.addr, "/v1/pools").json()["pools"][0]["waiting"]
            .as_array()
            .map_or(0, Vec::len)
    };
    // e0 through the first node: two called, four queued; then e1
    // through the second, six queued behind them.
    for (i, node) in nodes.iter().enumerate() {
        let items: Vec<Value> = (0..6).map(|n| json!({"e": i, "n": n})).collect();
        let reply = post(
            node.addr,
            &format!("/v1/state-machines/loads/executions?name=e{i}"),
            &json!({ "items": items }).to_string(),
        );
        assert_eq!(reply.status, 201, "{}", reply.body);
        let queued = [4, 10][i];
        eventually("the tasks to queue", 30, || waiting(node) == queued);
    }
    // Either node shows the queue of both.
    assert_eq!(waiting(&nodes[0]), 10);
    eventually("two calls held", 30, || {
        endpoint.counts.now.load(SeqCst) == 2
    });
    for node in &nodes {
        let pools = get(node.addr, "/v1/pools").json();
        assert_eq!(pools["pools"][0]["inUse"], 2, "{pools}");
        assert_eq!(
            pools["pools"][0]["holders"].as_array().map(Vec::len),
            Some(2),
            "{pools}"
        );
        let metrics = get(node.addr, "/metrics").body;
        assert!(
            metrics.contains("stepline_pool_slots_in_use{pool=\"warehouse\"} 2"),
            "{metrics}"
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(endpoint.counts.total.load(SeqCst), 2, "only two called");

    endpoint.counts.release.store(true, SeqCst);
    for (i, node) in nodes.iter().enumerate() {
        eventually("both executions to succeed", 60, || {
            get(node.addr, &format!("/v1/executions/loads/e{i}")).json()["status"] == "SUCCEEDED"
        });
    }
    assert_eq!(endpoint.counts.total.load(SeqCst), 12);
    assert_eq!(
        endpoint.counts.most.load(SeqCst),
        2,
        "never more than the slots, across the nodes"
    );
    // First come first served across the nodes: e0's six, then e1's.
    let bodies = endpoint.counts.bodies.lock().expect("bodies").clone();
    let order: Vec<u64> = bodies
        .iter()
        .map(|b| {
            serde_json::from_str::<Value>(b).expect("a body")["e"]
                .as_u64()
                .expect("e")
        })
        .collect();
    assert_eq!(order, [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1], "{bodies:?}");
    for node in &nodes {
        let pools = get(node.addr, "/v1/pools").json();
        assert_eq!(pools["pools"][0]["inUse"], 0, "{pools}");
    }
    let history = get(nodes[1].addr, "/v1/executions/loads/e0/history?limit=1000").json();
    let waits: Vec<&Value> = history["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"] == "TaskStarted")
        .map(|e| &e["details"]["pool"])
        .collect();
    assert_eq!(waits.len(), 6, "{waits:?}");
    assert!(waits.iter().all(|p| p["name"] == "warehouse"), "{waits:?}");
}

/// A node killed while its tasks hold a shared pool's slots: once its
/// row in the store expires, the slots are free for the other node's
/// waiters (and for the killed node's tasks, which the other node takes
/// over and calls again).
#[test]
fn a_dead_nodes_slots_are_freed_on_postgresql() {
    use std::sync::atomic::Ordering::SeqCst;
    let endpoint = Endpoint::start();
    let dir = TempDir::new("pools-dead-node");
    let more = format!(
        "[pools.warehouse]\nslots = 2\nhttp = [\"http://{}/load\"]\n",
        endpoint.addr
    );
    let Some(config) =
        crate::postgres::postgres_config_with(&dir, "a dead node's pool slots", &more)
    else {
        return;
    };
    let binary = stepline_binary();
    let first = Serve::start_with(&binary, &dir.path().join("unused-0"), Some(&config));
    let second = Serve::start_with(&binary, &dir.path().join("unused-1"), Some(&config));
    let definition = json!({
        "StartAt": "Each",
        "States": {"Each": {
            "Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 0, "End": true,
            "ItemProcessor": {"StartAt": "Load", "States": {"Load": {
                "Type": "Task", "Resource": "arn:aws:states:::http:invoke",
                "Parameters": {
                    "ApiEndpoint": format!("http://{}/load", endpoint.addr),
                    "Method": "POST", "RequestBody.$": "$"},
                "End": true}}}}}
    });
    let reply = post(
        first.addr,
        "/v1/state-machines?name=loads",
        &definition.to_string(),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    let items = json!({"items": [1, 2, 3]});
    let reply = post(
        first.addr,
        "/v1/state-machines/loads/executions?name=a",
        &items.to_string(),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    eventually("the first node's two calls", 30, || {
        endpoint.counts.total.load(SeqCst) == 2
    });
    let reply = post(
        second.addr,
        "/v1/state-machines/loads/executions?name=b",
        &items.to_string(),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    // Its three, and the first node's third.
    eventually("the second node's tasks to wait", 30, || {
        get(second.addr, "/v1/pools").json()["pools"][0]["waiting"]
            .as_array()
            .map(Vec::len)
            == Some(4)
    });
    first.kill();
    // Its row runs out (two seconds here), and two more calls go out.
    eventually("the dead node's slots to be taken again", 30, || {
        endpoint.counts.total.load(SeqCst) == 4
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(endpoint.counts.total.load(SeqCst), 4, "still two slots");
    endpoint.counts.release.store(true, SeqCst);
    for name in ["a", "b"] {
        eventually("both executions to succeed", 60, || {
            get(second.addr, &format!("/v1/executions/loads/{name}")).json()["status"]
                == "SUCCEEDED"
        });
    }
}

/// A restart on one node: the task that held the pool's only slot when
/// the server was killed takes it back first, ahead of a task that was
/// waiting (and was resumed first), and its TaskStarted is not written
/// again.
#[test]
fn after_kill_9_the_task_in_flight_takes_its_slot_back_first() {
    use std::sync::atomic::Ordering::SeqCst;
    let endpoint = Endpoint::start();
    let dir = TempDir::new("pools-restart");
    let config = dir.write(
        "stepline.toml",
        format!(
            "[pools.warehouse]\nslots = 1\nhttp = [\"http://{}/load\"]\n",
            endpoint.addr
        ),
    );
    let binary = stepline_binary();
    let data = dir.path().join("data");
    let serve = Serve::start_with(&binary, &data, Some(&config));
    let definition = json!({"StartAt": "Load", "States": {"Load": {
        "Type": "Task", "Resource": "arn:aws:states:::http:invoke",
        "Parameters": {"ApiEndpoint": format!("http://{}/load", endpoint.addr),
                       "Method": "POST", "RequestBody.$": "$"},
        "End": true}}});
    let reply = post(
        serve.addr,
        "/v1/state-machines?name=loads",
        &definition.to_string(),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    // `z-holder` holds the slot; `a-waiter`, first by name, waits.
    for name in ["z-holder", "a-waiter"] {
        let reply = post(
            serve.addr,
            &format!("/v1/state-machines/loads/executions?name={name}"),
            &json!({ "who": name }).to_string(),
        );
        assert_eq!(reply.status, 201, "{}", reply.body);
        if name == "z-holder" {
            eventually("the holder's call", 30, || {
                endpoint.counts.total.load(SeqCst) == 1
            });
        }
    }
    eventually("the waiter to wait", 30, || {
        get(serve.addr, "/v1/pools").json()["pools"][0]["waiting"]
            .as_array()
            .map(Vec::len)
            == Some(1)
    });
    serve.kill();
    let serve = Serve::start_with(&binary, &data, Some(&config));
    eventually("a call after the restart", 30, || {
        endpoint.counts.total.load(SeqCst) == 2
    });
    let bodies = endpoint.counts.bodies.lock().expect("bodies").clone();
    assert!(bodies[1].contains("z-holder"), "{bodies:?}");
    let pools = get(serve.addr, "/v1/pools").json();
    assert_eq!(
        pools["pools"][0]["holders"][0]["stateName"], "Load",
        "{pools}"
    );
    assert!(
        pools["pools"][0]["holders"][0]["executionArn"]
            .as_str()
            .is_some_and(|a| a.ends_with(":z-holder")),
        "{pools}"
    );
    assert_eq!(
        pools["pools"][0]["waiting"].as_array().map(Vec::len),
        Some(1),
        "{pools}"
    );
    endpoint.counts.release.store(true, SeqCst);
    for name in ["z-holder", "a-waiter"] {
        eventually("both to succeed", 30, || {
            get(serve.addr, &format!("/v1/executions/loads/{name}")).json()["status"] == "SUCCEEDED"
        });
    }
    let history = get(serve.addr, "/v1/executions/loads/z-holder/history").json();
    let started: Vec<&Value> = history["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"] == "TaskStarted")
        .collect();
    assert_eq!(started.len(), 1, "{history}");
    assert_eq!(started[0]["details"]["pool"]["waitedMs"], 0, "{history}");
    let bodies = endpoint.counts.bodies.lock().expect("bodies").clone();
    assert_eq!(bodies.len(), 3, "{bodies:?}");
    assert!(bodies[2].contains("a-waiter"), "{bodies:?}");
}

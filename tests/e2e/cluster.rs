//! Three `stepline serve` nodes on one PostgreSQL, with clients calling
//! random nodes, while nodes are killed, paused past their leases, and
//! the database restarts. The load is the crash soak's (Pass chains,
//! Waits, Parallel over a Map of HTTP tasks, retried HTTP tasks, against
//! a server that counts calls by Idempotency-Key) plus callbacks whose
//! SendTaskSuccess goes to whichever node the client picks, activity
//! tasks for workers that each poll their own node and answer through
//! another, nested executions, and distributed Maps.
//!
//! CI runs a small version; the full one (500 executions, 30 faults) is
//!
//! ```sh
//! STEPLINE_CLUSTER_EXECUTIONS=500 STEPLINE_CLUSTER_FAULTS=30 \
//!     cargo test -p stepline-tests --test e2e -- cluster:: --nocapture
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::postgres::{OwnDatabase, postgres_config};
use crate::soak::{CHAIN, CountingServer, FANOUT, HTTP, Planned, WAITS, env_number};
use crate::support::{Serve, TempDir, stepline_binary};

const PREFIX: &str = "arn:aws:states:us-east-1:111111111111";

/// A callback task: the process hands its token out (a file named after
/// the task's idempotency key) and the execution waits for an answer.
const CALLBACK: &str = r#"{
  "StartAt": "Approve",
  "States": {
    "Approve": {"Type": "Task", "Resource": "stepline:process:notify.waitForTaskToken",
      "Parameters": {"token.$": "$$.Task.Token"}, "ResultPath": "$.approval", "End": true}
  }
}"#;

/// An activity task; a task lost with a node that handed it to a worker
/// times out and is tried again, as on AWS.
const ACTIVITY: &str = r#"{
  "StartAt": "Work",
  "States": {
    "Work": {"Type": "Task", "Resource": "arn:aws:states:us-east-1:111111111111:activity:cluster-work",
      "TimeoutSeconds": 6, "ResultPath": "$.work", "End": true,
      "Retry": [{"ErrorEquals": ["States.Timeout"], "IntervalSeconds": 1, "MaxAttempts": 6, "BackoffRate": 1}]}
  }
}"#;

/// A nested execution of the Pass chain, waited for.
const NESTED: &str = r#"{
  "StartAt": "Child",
  "States": {
    "Child": {"Type": "Task", "Resource": "arn:aws:states:::states:startExecution.sync:2",
      "Parameters": {"StateMachineArn": "arn:aws:states:us-east-1:111111111111:stateMachine:chain", "Input": {"n.$": "$.n"}},
      "OutputPath": "$.Output", "End": true}
  }
}"#;

/// A distributed Map over a file every node reads (a shared bucket),
/// its children waiting a second each.
const DMAP: &str = r#"{
  "StartAt": "Each",
  "States": {
    "Each": {"Type": "Map",
      "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSON"},
        "Parameters": {"Bucket": "data", "Key": "items.json"}},
      "ItemSelector": {"v.$": "$$.Map.Item.Value", "n.$": "$.n"},
      "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
        "StartAt": "Nap", "States": {
          "Nap": {"Type": "Wait", "Seconds": 1, "Next": "Add"},
          "Add": {"Type": "Pass", "Parameters": {"x.$": "States.MathAdd($.v, $.n)"}, "End": true}}},
      "MaxConcurrency": 2, "ResultPath": "$.mapped", "End": true}
  }
}"#;

/// How long a node's leases last in this test.
const LEASE_SECONDS: u64 = 2;

/// The nodes, each running or not.
struct Nodes {
    binary: std::path::PathBuf,
    dir: std::path::PathBuf,
    config: std::path::PathBuf,
    nodes: Vec<Option<Serve>>,
    /// Nodes stopped with SIGSTOP: up, but no client may wait on them.
    paused: Vec<bool>,
    /// A xorshift state: which node a client calls.
    pick: u64,
    /// The addresses of the nodes up and not paused, for the workers.
    up: Arc<Mutex<Vec<Option<SocketAddr>>>>,
}

impl Nodes {
    fn start(binary: &Path, dir: &Path, config: &Path, count: usize) -> Self {
        let mut nodes = Self {
            binary: binary.to_path_buf(),
            dir: dir.to_path_buf(),
            config: config.to_path_buf(),
            nodes: Vec::new(),
            paused: vec![false; count],
            pick: 0x9e37_79b9_7f4a_7c15,
            up: Arc::new(Mutex::new(vec![None; count])),
        };
        for i in 0..count {
            let serve = nodes.spawn(i);
            nodes.nodes.push(Some(serve));
        }
        nodes.publish();
        nodes
    }

    /// Tells the workers which nodes they may poll.
    fn publish(&self) {
        let mut up = self.up.lock().expect("up");
        for (i, node) in self.nodes.iter().enumerate() {
            up[i] = node.as_ref().filter(|_| !self.paused[i]).map(|s| s.addr);
        }
    }

    fn spawn(&self, i: usize) -> Serve {
        Serve::start_with(
            &self.binary,
            &self.dir.join(format!("unused-{i}")),
            Some(&self.config),
        )
    }

    fn next(&mut self) -> u64 {
        self.pick ^= self.pick << 13;
        self.pick ^= self.pick >> 7;
        self.pick ^= self.pick << 17;
        self.pick
    }

    /// A node a client may call now, at random.
    fn any(&mut self) -> &Serve {
        let up: Vec<usize> = (0..self.nodes.len())
            .filter(|i| self.nodes[*i].is_some() && !self.paused[*i])
            .collect();
        let i = up[(self.next() % up.len() as u64) as usize];
        self.nodes[i].as_ref().expect("up")
    }

    /// Calls a random node until one answers with something other than a
    /// 5xx or a broken connection (a node may be dying, the database
    /// restarting).
    fn call(&mut self, action: &str, body: &Value) -> (u16, Value) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let addr = self.any().addr;
            match crate::aws::try_call_raw(addr, action, &body.to_string()) {
                Ok((status, answer)) if status != 0 && status < 500 => return (status, answer),
                _ => {}
            }
            assert!(Instant::now() < deadline, "no node answers {action}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn kill_and_restart(&mut self, i: usize) {
        if let Some(serve) = self.nodes[i].take() {
            serve.kill();
        }
        self.publish();
        std::thread::sleep(Duration::from_millis(300));
        self.nodes[i] = Some(self.spawn(i));
        self.publish();
    }

    fn pause(&mut self, i: usize, paused: bool) {
        self.signal(i, if paused { "-STOP" } else { "-CONT" });
        self.paused[i] = paused;
        self.publish();
    }

    fn signal(&self, i: usize, signal: &str) {
        let pid = self.nodes[i].as_ref().expect("up").pid();
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }
}

/// The operator's configuration: the shared store, and the `notify`
/// process, which writes its task token to `tokens/<key>`.
fn cluster_config(dir: &TempDir, url: &str, tokens: &Path) -> Option<std::path::PathBuf> {
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("bucket dir");
    std::fs::write(data.join("items.json"), "[1, 2, 3]").expect("items");
    let notify = dir.write(
        "notify.sh",
        format!(
            "cat > /dev/null\n\
             name=$(printf '%s' \"$STEPLINE_IDEMPOTENCY_KEY\" | tr -c 'A-Za-z0-9' '_')\n\
             printf '%s' \"$STEPLINE_TASK_TOKEN\" > {tokens}/$name.tmp && /bin/mv {tokens}/$name.tmp {tokens}/$name\n\
             echo '{{\"queued\": true}}'\n",
            tokens = tokens.display()
        ),
    );
    let shared = postgres_config(dir, "cluster")?;
    let text = std::fs::read_to_string(&shared).expect("config");
    // This test's own database, which it restarts.
    let text = text
        .lines()
        .map(|line| {
            if line.starts_with("url = ") {
                format!("url = \"{url}\"")
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    Some(dir.write(
        "cluster.toml",
        format!(
            "{text}\n\n[tasks.processes.notify]\ncommand = \"/bin/sh\"\nargs = [\"{}\"]\n\n[buckets]\ndata = \"{}\"\n",
            notify.display(),
            data.display()
        ),
    ))
}

/// One execution of the test: the soak's, a callback, an activity task
/// or a nested execution.
fn plan(i: usize, api: &str) -> Planned {
    let machine = match i % 8 {
        4 => "callback",
        5 => "activity",
        6 => "nested",
        7 => "dmap",
        _ => return crate::soak::plan(i, api),
    };
    Planned {
        machine,
        name: format!("{}{i}", &machine[..1]),
        input: json!({"n": i}),
        // A Map Run records no task result of its own.
        tasks: usize::from(machine != "dmap"),
    }
}

fn expected_output(i: usize, planned: &Planned, output: &Value) -> Value {
    match planned.machine {
        "callback" => json!({"n": i, "approval": {"approved": true}}),
        "activity" => json!({"n": i, "work": {"worked": 3 * i}}),
        "nested" => json!({"n": i, "count": 10}),
        "dmap" => {
            json!({"n": i, "mapped": (1..=3).map(|v| json!({"x": v + i})).collect::<Vec<_>>()})
        }
        _ => crate::soak::expected_output(i, planned, output),
    }
}

/// An activity worker: polls one node (its own, by number, or the next one
/// up), and answers through another, until `stop`.
fn worker(id: usize, up: Arc<Mutex<Vec<Option<SocketAddr>>>>, stop: Arc<AtomicBool>) {
    let pick = |offset: usize| {
        let up = up.lock().expect("up");
        (0..up.len()).find_map(|k| up[(id + offset + k) % up.len()])
    };
    let activity = format!("{PREFIX}:activity:cluster-work");
    while !stop.load(Ordering::Relaxed) {
        let Some(addr) = pick(0) else {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        let poll = json!({"activityArn": activity, "workerName": format!("worker-{id}")});
        let task = match crate::aws::try_call_waiting(
            addr,
            "GetActivityTask",
            &poll.to_string(),
            Duration::from_secs(75),
        ) {
            Ok((200, task)) if task["taskToken"].as_str().is_some_and(|t| !t.is_empty()) => task,
            Ok(_) => continue,
            Err(_) => {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let input: Value =
            serde_json::from_str(task["input"].as_str().expect("input")).expect("json");
        let answer = json!({
            "taskToken": task["taskToken"],
            "output": json!({"worked": input["n"].as_u64().expect("n") * 3}).to_string(),
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let Some(addr) = pick(1) else {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            };
            match crate::aws::try_call_raw(addr, "SendTaskSuccess", &answer.to_string()) {
                Ok((200, _)) => break,
                // The task timed out meanwhile (a lost reply); its retry
                // goes to a worker again.
                Ok((_, e)) if e["__type"] == "TaskTimedOut" => break,
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
}

/// Starts the planned executions before `upto` not yet acknowledged.
/// "Already exists" counts: an earlier attempt's answer was lost.
fn start_pending(nodes: &mut Nodes, plans: &[Planned], started: &mut [bool], upto: usize) {
    for (i, planned) in plans.iter().enumerate().take(upto) {
        if started[i] {
            continue;
        }
        let body = planned.start_request();
        match nodes.call("StartExecution", &body) {
            (200, _) => started[i] = true,
            (400, answer) if answer["__type"] == "ExecutionAlreadyExists" => started[i] = true,
            (status, answer) => panic!("StartExecution {}: {status} {answer}", planned.name),
        }
    }
}

/// Answers every callback whose token was handed out and not yet
/// answered, each through a random node.
fn answer_callbacks(nodes: &mut Nodes, tokens: &Path, answered: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(tokens) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".tmp") || answered.contains(&name) {
            continue;
        }
        let Ok(token) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        let (status, answer) = nodes.call(
            "SendTaskSuccess",
            &json!({"taskToken": token, "output": "{\"approved\": true}"}),
        );
        // TaskTimedOut: answered already (a retry after a lost reply).
        assert!(
            status == 200 || answer["__type"] == "TaskTimedOut",
            "SendTaskSuccess {name}: {status} {answer}"
        );
        answered.push(name);
    }
}

#[test]
fn three_nodes_lose_nothing_while_nodes_die_pause_and_the_database_restarts() {
    let executions = env_number("STEPLINE_CLUSTER_EXECUTIONS", 50);
    let faults = env_number("STEPLINE_CLUSTER_FAULTS", 4);
    let dir = TempDir::new("cluster");
    if postgres_config(&dir, "cluster").is_none() {
        return;
    }
    let database = OwnDatabase::start();
    let tokens = dir.path().join("tokens");
    std::fs::create_dir_all(&tokens).expect("tokens dir");
    let config = cluster_config(&dir, &database.url, &tokens).expect("config");
    let counting = CountingServer::start();
    let api = format!("http://{}", counting.addr);
    let binary = stepline_binary();
    let mut nodes = Nodes::start(&binary, dir.path(), &config, 3);
    crate::soak::create_machines(
        |action, body| nodes.call(action, body),
        &[
            ("chain", CHAIN),
            ("waits", WAITS),
            ("fanout", FANOUT),
            ("http", HTTP),
            ("callback", CALLBACK),
            ("activity", ACTIVITY),
            ("nested", NESTED),
            ("dmap", DMAP),
        ],
    );
    // Every node sees the three, each alive.
    let first = nodes.any().addr;
    let reply = crate::rest::http(first, "GET", "/v1/cluster", &[], b"");
    assert_eq!(reply.status, 200, "{}", reply.body);
    let cluster: Value = serde_json::from_str(&reply.body).expect("json");
    assert_eq!(cluster["clustered"], true, "{cluster}");
    let alive = cluster["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter(|n| n["alive"] == true)
        .count();
    assert_eq!(alive, 3, "{cluster}");
    assert_eq!(
        cluster["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .filter(|n| n["self"] == true)
            .count(),
        1,
        "{cluster}"
    );
    let (status, answer) = nodes.call("CreateActivity", &json!({"name": "cluster-work"}));
    assert_eq!(status, 200, "{answer}");
    let stop_workers = Arc::new(AtomicBool::new(false));
    for id in 0..3 {
        let (up, stop) = (Arc::clone(&nodes.up), Arc::clone(&stop_workers));
        std::thread::spawn(move || worker(id, up, stop));
    }
    let plans: Vec<Planned> = (0..executions).map(|i| plan(i, &api)).collect();
    let mut started = vec![false; executions];
    let mut answered = Vec::new();
    let restart_database_at = faults / 2;
    eprintln!("cluster: {executions} executions, {faults} faults");
    for fault in 0..faults {
        let upto = executions * (fault + 1) / (faults + 1);
        start_pending(&mut nodes, &plans, &mut started, upto);
        answer_callbacks(&mut nodes, &tokens, &mut answered);
        std::thread::sleep(Duration::from_millis(300 + 150 * (fault as u64 % 4)));
        let victim = fault % 3;
        if fault % 2 == 0 {
            eprintln!("cluster: fault {fault}: kill -9 node {victim}");
            nodes.kill_and_restart(victim);
        } else {
            // Past its lease: the others take its executions, and what it
            // writes when it wakes must be refused.
            eprintln!("cluster: fault {fault}: SIGSTOP node {victim}");
            nodes.pause(victim, true);
            answer_callbacks(&mut nodes, &tokens, &mut answered);
            std::thread::sleep(Duration::from_secs(LEASE_SECONDS + 2));
            nodes.pause(victim, false);
        }
        if fault == restart_database_at {
            eprintln!("cluster: the database restarts");
            database.down();
            std::thread::sleep(Duration::from_millis(500));
            database.up();
        }
    }
    start_pending(&mut nodes, &plans, &mut started, executions);
    assert!(started.iter().all(|s| *s), "every execution was started");

    // Every execution ends, with callbacks answered as their tokens come.
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut described: HashMap<usize, Value> = HashMap::new();
    while described.len() < executions {
        answer_callbacks(&mut nodes, &tokens, &mut answered);
        for (i, planned) in plans.iter().enumerate() {
            if described.contains_key(&i) {
                continue;
            }
            let arn = format!("{PREFIX}:execution:{}:{}", planned.machine, planned.name);
            let (status, record) = nodes.call("DescribeExecution", &json!({"executionArn": arn}));
            assert_eq!(status, 200, "{record}");
            if record["status"] != "RUNNING" {
                described.insert(i, record);
            }
        }
        if Instant::now() >= deadline {
            let stuck: Vec<String> = plans
                .iter()
                .enumerate()
                .filter(|(i, _)| !described.contains_key(i))
                .map(|(_, p)| {
                    let arn = format!("{PREFIX}:execution:{}:{}", p.machine, p.name);
                    let (_, history) = nodes.call(
                        "GetExecutionHistory",
                        &json!({"executionArn": arn, "maxResults": 1000}),
                    );
                    let events = history["events"].as_array().cloned().unwrap_or_default();
                    let tail: Vec<String> = events
                        .iter()
                        .rev()
                        .take(3)
                        .map(|e| format!("{} {}", e["id"], e["type"]))
                        .collect();
                    format!("{arn}: last events {tail:?}")
                })
                .collect();
            panic!("executions never ended:\n{}", stuck.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    stop_workers.store(true, Ordering::Relaxed);
    let mut keys_recorded = 0;
    for (i, planned) in plans.iter().enumerate() {
        let arn = format!("{PREFIX}:execution:{}:{}", planned.machine, planned.name);
        let record = &described[&i];
        assert_eq!(record["status"], "SUCCEEDED", "{arn}: {record}");
        let output: Value =
            serde_json::from_str(record["output"].as_str().expect("output")).expect("json");
        assert_eq!(output, expected_output(i, planned, &output), "{arn}");
        let (status, history) = nodes.call(
            "GetExecutionHistory",
            &json!({"executionArn": arn, "maxResults": 1000}),
        );
        assert_eq!(status, 200, "{history}");
        let events = history["events"].as_array().expect("events");
        let ids: Vec<u64> = events.iter().map(|e| e["id"].as_u64().unwrap()).collect();
        assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>(), "{arn}");
        let count = |t: &str| events.iter().filter(|e| e["type"] == t).count();
        assert_eq!(count("ExecutionStarted"), 1, "{arn}");
        assert_eq!(count("ExecutionSucceeded"), 1, "{arn}");
        if planned.machine == "dmap" {
            assert_eq!(count("MapRunSucceeded"), 1, "{arn}");
        }
        assert_eq!(
            count("TaskSucceeded") + count("ActivitySucceeded"),
            planned.tasks,
            "{arn}: results"
        );
        if matches!(planned.machine, "fanout" | "http") {
            keys_recorded += planned.tasks;
        }
    }

    // No HTTP task was called more often than once plus the faults that
    // could have caught it in flight.
    let calls = counting.calls.lock().expect("calls");
    let mut by_key: HashMap<&str, usize> = HashMap::new();
    for call in calls.iter() {
        *by_key.entry(&call.key).or_default() += 1;
    }
    let most = by_key.values().copied().max().unwrap_or(0);
    assert!(
        most <= 1 + faults + 1,
        "a task was called {most} times with {faults} node faults and one database restart"
    );
    let repeated = by_key.values().filter(|n| **n > 1).count();
    eprintln!(
        "cluster: {executions} executions succeeded; {} HTTP calls for {} keys ({repeated} repeated), {keys_recorded} results recorded once each",
        calls.len(),
        by_key.len()
    );
}

/// Waits on a timer long enough for a rebalance to move it.
const SLOW: &str = r#"{
  "StartAt": "Nap",
  "States": {"Nap": {"Type": "Wait", "Seconds": 15, "Next": "Done"}, "Done": {"Type": "Succeed"}}
}"#;

#[test]
fn nodes_that_join_take_a_share_of_the_running_executions() {
    let dir = TempDir::new("cluster-balance");
    let Some(config) = postgres_config(&dir, "cluster balance") else {
        return;
    };
    let binary = stepline_binary();
    let mut nodes = Nodes::start(&binary, dir.path(), &config, 1);
    crate::soak::create_machines(|action, body| nodes.call(action, body), &[("slow", SLOW)]);
    let executions = 30;
    for i in 0..executions {
        let (status, answer) = nodes.call(
            "StartExecution",
            &json!({"stateMachineArn": format!("{PREFIX}:stateMachine:slow"), "name": format!("slow-{i}")}),
        );
        assert_eq!(status, 200, "{answer}");
    }
    for i in 1..3 {
        let serve = nodes.spawn(i);
        nodes.nodes.push(Some(serve));
        nodes.paused.push(false);
    }
    // Every node ends up with a share, well before the Waits end.
    let deadline = Instant::now() + Duration::from_secs(12);
    let owned = loop {
        let reply = crate::rest::http(nodes.any().addr, "GET", "/v1/cluster", &[], b"");
        let cluster: Value = serde_json::from_str(&reply.body).expect("json");
        let owned: Vec<u64> = cluster["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .filter(|n| n["alive"] == true)
            .map(|n| n["openExecutions"].as_u64().expect("count"))
            .collect();
        // Counted while none is between a release and its claim.
        if owned.len() == 3
            && owned.iter().all(|n| *n >= 5)
            && owned.iter().sum::<u64>() == executions
        {
            break owned;
        }
        assert!(Instant::now() < deadline, "never balanced: {cluster}");
        std::thread::sleep(Duration::from_millis(300));
    };
    eprintln!("balanced: {owned:?}");
    // And each still ends once, where it now runs.
    let deadline = Instant::now() + Duration::from_secs(40);
    for i in 0..executions {
        let arn = format!("{PREFIX}:execution:slow:slow-{i}");
        loop {
            let (status, record) = nodes.call("DescribeExecution", &json!({"executionArn": arn}));
            assert_eq!(status, 200, "{record}");
            if record["status"] != "RUNNING" {
                assert_eq!(record["status"], "SUCCEEDED", "{record}");
                break;
            }
            assert!(Instant::now() < deadline, "{arn} never ended");
            std::thread::sleep(Duration::from_millis(200));
        }
        let (_, history) = nodes.call(
            "GetExecutionHistory",
            &json!({"executionArn": arn, "maxResults": 1000}),
        );
        let types: Vec<&str> = history["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| e["type"].as_str().expect("type"))
            .collect();
        assert_eq!(
            types,
            [
                "ExecutionStarted",
                "WaitStateEntered",
                "WaitStateExited",
                "SucceedStateEntered",
                "SucceedStateExited",
                "ExecutionSucceeded"
            ],
            "{arn}"
        );
    }
}

#[test]
fn a_running_express_execution_is_nobody_elses_orphan() {
    let dir = TempDir::new("cluster-express");
    let Some(config) = postgres_config(&dir, "cluster express") else {
        return;
    };
    let binary = stepline_binary();
    let mut nodes = Nodes::start(&binary, dir.path(), &config, 1);
    // Half a claim round apart (rounds are a third of the 2-second
    // lease), so that each node's rounds fall between the other's.
    std::thread::sleep(Duration::from_millis(330));
    let serve = nodes.spawn(1);
    nodes.nodes.push(Some(serve));
    let (first, second) = (
        nodes.nodes[0].as_ref().expect("up"),
        nodes.nodes[1].as_ref().expect("up"),
    );
    let definition =
        r#"{"StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "Seconds": 4, "End": true}}}"#;
    let (status, answer) = first.call(
        "CreateStateMachine",
        &json!({"name": "quick", "definition": definition, "type": "EXPRESS",
                "roleArn": "arn:aws:iam::111111111111:role/r"}),
    );
    assert_eq!(status, 200, "{answer}");
    // Started in waves, so that claim rounds of both nodes fall between
    // them: an open execution without a lease would be either node's to
    // claim, and the other node would end it as one it cannot resume.
    let mut arns = Vec::new();
    for wave in 0..4 {
        for i in 0..5 {
            let (status, started) = first.call(
                "StartExecution",
                &json!({"stateMachineArn": format!("{PREFIX}:stateMachine:quick"), "name": format!("e{wave}-{i}")}),
            );
            assert_eq!(status, 200, "{started}");
            arns.push(started["executionArn"].as_str().expect("arn").to_owned());
        }
        std::thread::sleep(Duration::from_millis(350));
    }
    std::thread::sleep(Duration::from_millis(1200));
    for arn in &arns {
        let (status, record) = second.call("DescribeExecution", &json!({"executionArn": arn}));
        assert_eq!(status, 200, "{record}");
        assert_eq!(record["status"], "RUNNING", "{record}");
    }
}

#[test]
fn a_node_stopped_with_sigterm_hands_its_executions_over_at_once() {
    let dir = TempDir::new("cluster-handover");
    let Some(shared) = postgres_config(&dir, "cluster handover") else {
        return;
    };
    // Leases of 9 seconds: a takeover within them is the hand-over, not
    // the expiry.
    let text = std::fs::read_to_string(&shared)
        .expect("config")
        .replace("lease_seconds = 2", "lease_seconds = 9");
    let config = dir.write("handover.toml", text);
    let binary = stepline_binary();
    let mut nodes = Nodes::start(&binary, dir.path(), &config, 2);
    let definition =
        r#"{"StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "Seconds": 1, "End": true}}}"#;
    let first = nodes.nodes[0].as_ref().expect("up");
    let (status, answer) = first.call(
        "CreateStateMachine",
        &json!({"name": "nap", "definition": definition, "roleArn": "arn:aws:iam::111111111111:role/r"}),
    );
    assert_eq!(status, 200, "{answer}");
    let mut arns = Vec::new();
    for i in 0..10 {
        let (status, started) = first.call(
            "StartExecution",
            &json!({"stateMachineArn": format!("{PREFIX}:stateMachine:nap"), "name": format!("n{i}")}),
        );
        assert_eq!(status, 200, "{started}");
        arns.push(started["executionArn"].as_str().expect("arn").to_owned());
    }
    nodes.signal(0, "-TERM");
    let stopped = Instant::now();
    let mut first = nodes.nodes[0].take().expect("up");
    let exit = first.child.wait().expect("the node exits");
    assert!(exit.success(), "{exit:?}");
    let second = nodes.nodes[1].as_ref().expect("up");
    for arn in &arns {
        loop {
            let (status, record) = second.call("DescribeExecution", &json!({"executionArn": arn}));
            assert_eq!(status, 200, "{record}");
            if record["status"] == "SUCCEEDED" {
                break;
            }
            assert_eq!(record["status"], "RUNNING", "{record}");
            assert!(
                stopped.elapsed() < Duration::from_secs(7),
                "{arn} waited for the stopped node's lease"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A distributed Map whose children take a while: they start spread over
/// the nodes, not all on the Map Run's node.
const SPREAD: &str = r#"{
  "StartAt": "Each",
  "States": {
    "Each": {"Type": "Map", "ItemsPath": "$.items",
      "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
        "StartAt": "Nap", "States": {
          "Nap": {"Type": "Wait", "Seconds": 6, "Next": "Done"},
          "Done": {"Type": "Pass", "Parameters": {"n.$": "$.n"}, "End": true}}},
      "End": true}
  }
}"#;

/// A counter's value in a node's `/metrics`.
fn metric(serve: &Serve, line_start: &str) -> u64 {
    let reply = crate::rest::http(serve.addr, "GET", "/metrics", &[], b"");
    reply
        .body
        .lines()
        .find_map(|l| l.strip_prefix(line_start))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {line_start} in {}", reply.body))
}

#[test]
fn a_map_runs_children_start_spread_over_the_nodes() {
    let dir = TempDir::new("cluster-map-spread");
    let Some(config) = postgres_config(&dir, "cluster map spread") else {
        return;
    };
    let binary = stepline_binary();
    let mut nodes = Nodes::start(&binary, dir.path(), &config, 3);
    crate::soak::create_machines(
        |action, body| nodes.call(action, body),
        &[("spread", SPREAD)],
    );
    // Each node learns how many are live from its claim rounds and its
    // balance (every third round: two seconds with this test's lease).
    let first = nodes.nodes[0].as_ref().expect("up");
    crate::support::eventually("three live nodes", 10, || {
        let reply = crate::rest::http(first.addr, "GET", "/v1/cluster", &[], b"");
        let cluster: Value = serde_json::from_str(&reply.body).expect("json");
        cluster["nodes"]
            .as_array()
            .is_some_and(|n| n.iter().filter(|n| n["alive"] == true).count() == 3)
    });
    std::thread::sleep(Duration::from_millis(2500));

    let items: Vec<Value> = (0..30).map(|n| json!({"n": n})).collect();
    let (status, started) = first.call(
        "StartExecution",
        &json!({"stateMachineArn": format!("{PREFIX}:stateMachine:spread"), "name": "wide",
                "input": json!({"items": items}).to_string()}),
    );
    assert_eq!(status, 200, "{started}");
    let handovers = "stepline_cluster_handovers_total{reason=\"map_run\"} ";
    let claims = "stepline_cluster_claims_total ";
    // Two children in three go to the other nodes as they start; each of
    // them claims its share well before the children's Waits end.
    crate::support::eventually("the children handed over", 5, || {
        metric(first, handovers) >= 15
    });
    crate::support::eventually("the other nodes' claims", 5, || {
        nodes.nodes[1..]
            .iter()
            .all(|n| metric(n.as_ref().expect("up"), claims) >= 5)
    });
    let arn = format!("{PREFIX}:execution:spread:wide");
    crate::support::eventually("the Map's end", 30, || {
        let (_, record) = first.call("DescribeExecution", &json!({"executionArn": arn}));
        record["status"] != "RUNNING"
    });
    let (_, record) = first.call("DescribeExecution", &json!({"executionArn": arn}));
    assert_eq!(record["status"], "SUCCEEDED", "{record}");
    let output: Value =
        serde_json::from_str(record["output"].as_str().expect("output")).expect("json");
    assert_eq!(
        output,
        json!((0..30).map(|n| json!({"n": n})).collect::<Vec<_>>())
    );
}

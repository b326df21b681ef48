//! Three `stepline serve` nodes on one PostgreSQL, with clients calling
//! random nodes, while nodes are killed, paused past their leases, and
//! the database restarts. The load is the crash soak's (Pass chains,
//! Waits, Parallel over a Map of HTTP tasks, retried HTTP tasks, against
//! a server that counts calls by Idempotency-Key) plus callbacks whose
//! SendTaskSuccess goes to whichever node the client picks.
//!
//! CI runs a small version; the full one (500 executions, 30 faults) is
//!
//! ```sh
//! STEPLINE_CLUSTER_EXECUTIONS=500 STEPLINE_CLUSTER_FAULTS=30 \
//!     cargo test -p stepline-tests --test e2e -- cluster:: --nocapture
//! ```

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
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
        };
        for i in 0..count {
            let serve = nodes.spawn(i);
            nodes.nodes.push(Some(serve));
        }
        nodes
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
        std::thread::sleep(Duration::from_millis(300));
        self.nodes[i] = Some(self.spawn(i));
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
            "{text}\n\n[tasks.processes.notify]\ncommand = \"/bin/sh\"\nargs = [\"{}\"]\n",
            notify.display()
        ),
    ))
}

/// One execution of the test: the soak's, or a callback.
fn plan(i: usize, api: &str) -> Planned {
    if i % 5 == 4 {
        return Planned {
            machine: "callback",
            name: format!("c{i}"),
            input: json!({"n": i}),
            tasks: 1,
        };
    }
    crate::soak::plan(i, api)
}

fn expected_output(i: usize, planned: &Planned, output: &Value) -> Value {
    if planned.machine == "callback" {
        return json!({"n": i, "approval": {"approved": true}});
    }
    crate::soak::expected_output(i, planned, output)
}

/// Starts the planned executions before `upto` not yet acknowledged.
/// "Already exists" counts: an earlier attempt's answer was lost.
fn start_pending(nodes: &mut Nodes, plans: &[Planned], started: &mut [bool], upto: usize) {
    for (i, planned) in plans.iter().enumerate().take(upto) {
        if started[i] {
            continue;
        }
        let body = json!({
            "stateMachineArn": format!("{PREFIX}:stateMachine:{}", planned.machine),
            "name": planned.name,
            "input": planned.input.to_string(),
        });
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
    for (name, definition) in [
        ("chain", CHAIN),
        ("waits", WAITS),
        ("fanout", FANOUT),
        ("http", HTTP),
        ("callback", CALLBACK),
    ] {
        let (status, answer) = nodes.call(
            "CreateStateMachine",
            &json!({"name": name, "definition": definition, "roleArn": "arn:aws:iam::111111111111:role/r"}),
        );
        assert_eq!(status, 200, "{answer}");
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
            nodes.signal(victim, "-STOP");
            nodes.paused[victim] = true;
            answer_callbacks(&mut nodes, &tokens, &mut answered);
            std::thread::sleep(Duration::from_secs(LEASE_SECONDS + 2));
            nodes.signal(victim, "-CONT");
            nodes.paused[victim] = false;
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
        assert!(
            Instant::now() < deadline,
            "{} executions never ended",
            executions - described.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

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
        assert_eq!(count("TaskSucceeded"), planned.tasks, "{arn}: results");
        if planned.machine != "callback" {
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

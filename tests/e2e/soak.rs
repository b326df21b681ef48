//! The crash soak of issue 5: many executions of every kind (Pass chains
//! with a Choice loop, Waits, Map, Parallel, retries, HTTP tasks against a
//! server here that counts every call) while the real `stepline serve` is
//! killed with SIGKILL at random moments, many times, and started again on
//! the same data directory.
//!
//! CI runs a smaller soak; the full one (500 executions, 20 kills) is
//!
//! ```sh
//! STEPLINE_SOAK_EXECUTIONS=500 STEPLINE_SOAK_KILLS=20 \
//!     cargo test -p stepline-tests --test e2e -- soak:: --nocapture
//! ```
//!
//! (`STEPLINE_SOAK_SEED` replays one run's kill moments.)

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::crash::{history, wait_until_ended};
use crate::support::{Serve, TempDir, stepline_binary};

const PREFIX: &str = "arn:aws:states:us-east-1:111111111111";

/// A Pass chain that loops through a Choice ten times.
pub(crate) const CHAIN: &str = r#"{
  "StartAt": "Init",
  "States": {
    "Init": {"Type": "Pass", "Parameters": {"n.$": "$.n", "count": 0}, "Next": "Step"},
    "Step": {"Type": "Pass", "Parameters": {"n.$": "$.n", "count.$": "States.MathAdd($.count, 1)"}, "Next": "More?"},
    "More?": {"Type": "Choice", "Choices": [{"Variable": "$.count", "NumericLessThan": 10, "Next": "Step"}], "Default": "Done"},
    "Done": {"Type": "Succeed"}
  }
}"#;

/// Waits (a fixed one, one from the input) around a Pass.
pub(crate) const WAITS: &str = r#"{
  "StartAt": "Nap",
  "States": {
    "Nap": {"Type": "Wait", "Seconds": 1, "Next": "Mark"},
    "Mark": {"Type": "Pass", "Result": "rested", "ResultPath": "$.mark", "Next": "Again"},
    "Again": {"Type": "Wait", "SecondsPath": "$.pause", "End": true}
  }
}"#;

/// A Parallel whose first branch maps every item through an HTTP task and
/// whose second waits; then a Choice checks the sum.
pub(crate) const FANOUT: &str = r#"{
  "StartAt": "Split",
  "States": {
    "Split": {"Type": "Parallel", "ResultPath": "$.split", "Next": "Check", "Branches": [
      {"StartAt": "Each", "States": {"Each": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 2,
        "ItemSelector": {"n.$": "$$.Map.Item.Value", "api.$": "$.api"},
        "ItemProcessor": {"StartAt": "Double", "States": {"Double": {"Type": "Task",
          "Resource": "arn:aws:states:::http:invoke",
          "Parameters": {"ApiEndpoint.$": "States.Format('{}/double', $.api)", "Method": "POST", "RequestBody": {"n.$": "$.n"}},
          "ResultSelector": {"v.$": "$.ResponseBody.v", "key.$": "$.ResponseBody.key"},
          "End": true}}},
        "End": true}}},
      {"StartAt": "Pause", "States": {"Pause": {"Type": "Wait", "Seconds": 1, "End": true}}}]},
    "Check": {"Type": "Choice", "Choices": [{"Variable": "$.split[0][2].v", "NumericEqualsPath": "$.expect", "Next": "Done"}], "Default": "Wrong"},
    "Wrong": {"Type": "Fail", "Error": "Wrong"},
    "Done": {"Type": "Pass", "Parameters": {"n.$": "$.n", "mapped.$": "$.split[0]"}, "End": true}
  }
}"#;

/// An HTTP task, then one that fails with a 503 the first time it is seen
/// (retried), then a Pass.
pub(crate) const HTTP: &str = r#"{
  "StartAt": "Double",
  "States": {
    "Double": {"Type": "Task", "Resource": "arn:aws:states:::http:invoke",
      "Parameters": {"ApiEndpoint.$": "States.Format('{}/double', $.api)", "Method": "POST", "RequestBody": {"n.$": "$.n"}},
      "ResultSelector": {"v.$": "$.ResponseBody.v", "key.$": "$.ResponseBody.key"},
      "ResultPath": "$.double", "Next": "Flaky"},
    "Flaky": {"Type": "Task", "Resource": "arn:aws:states:::http:invoke",
      "Parameters": {"ApiEndpoint.$": "States.Format('{}/flaky', $.api)", "Method": "POST", "RequestBody": {"id.$": "$$.Execution.Name"}},
      "Retry": [{"ErrorEquals": ["States.Http.StatusCode.503"], "IntervalSeconds": 1, "MaxAttempts": 3, "BackoffRate": 1}],
      "ResultSelector": {"ok.$": "$.ResponseBody.ok", "key.$": "$.ResponseBody.key"},
      "ResultPath": "$.flaky", "Next": "Done"},
    "Done": {"Type": "Pass", "Parameters": {"n.$": "$.n", "v.$": "$.double.v", "ok.$": "$.flaky.ok", "keys.$": "States.Array($.double.key, $.flaky.key)"}, "End": true}
  }
}"#;

/// One execution of the soak: its machine, name, input, expected output
/// and how many HTTP task results its history must record.
pub(crate) struct Planned {
    pub(crate) machine: &'static str,
    pub(crate) name: String,
    pub(crate) input: Value,
    pub(crate) tasks: usize,
}

impl Planned {
    /// The StartExecution request that starts it.
    pub(crate) fn start_request(&self) -> Value {
        json!({
            "stateMachineArn": format!("{PREFIX}:stateMachine:{}", self.machine),
            "name": self.name,
            "input": self.input.to_string(),
        })
    }
}

pub(crate) fn plan(i: usize, api: &str) -> Planned {
    let name = format!("s{i}");
    match i % 4 {
        0 => Planned {
            machine: "chain",
            name,
            input: json!({"n": i}),
            tasks: 0,
        },
        1 => Planned {
            machine: "waits",
            name,
            input: json!({"n": i, "pause": i % 3}),
            tasks: 0,
        },
        2 => Planned {
            machine: "fanout",
            name,
            input: json!({"n": i, "api": api, "items": [i, i + 1, i + 2], "expect": 2 * (i + 2)}),
            tasks: 3,
        },
        _ => Planned {
            machine: "http",
            name,
            input: json!({"n": i, "api": api}),
            tasks: 2,
        },
    }
}

/// What a finished execution's output must be, given the keys the HTTP
/// tasks reported (checked against the counting server separately).
pub(crate) fn expected_output(i: usize, planned: &Planned, output: &Value) -> Value {
    match planned.machine {
        "chain" => json!({"n": i, "count": 10}),
        "waits" => json!({"n": i, "pause": i % 3, "mark": "rested"}),
        "fanout" => {
            let keys: Vec<&Value> = (0..3).map(|k| &output["mapped"][k]["key"]).collect();
            json!({"n": i, "mapped": (0..3).map(|k| json!({"v": 2 * (i + k), "key": keys[k]})).collect::<Vec<_>>()})
        }
        _ => json!({"n": i, "v": 2 * i, "ok": true, "keys": output["keys"]}),
    }
}

/// One call the counting server answered: the task's idempotency key,
/// the path and when it arrived.
pub(crate) struct Call {
    pub(crate) key: String,
    at: Instant,
}

/// An HTTP server that counts every call by its Idempotency-Key and
/// answers after a pause (so kills find calls in flight): `/double`
/// answers `{"v": 2n, "key": K}`; `/flaky` answers 503 the first time it
/// sees an `id` and `{"ok": true, "key": K}` after that.
pub(crate) struct CountingServer {
    pub(crate) addr: SocketAddr,
    pub(crate) calls: Arc<Mutex<Vec<Call>>>,
}

impl CountingServer {
    pub(crate) fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let calls = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::new(Mutex::new(std::collections::HashSet::new()));
        let shared = Arc::clone(&calls);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let calls = Arc::clone(&shared);
                let seen = Arc::clone(&seen);
                std::thread::spawn(move || serve_connection(stream, &calls, &seen));
            }
        });
        Self { addr, calls }
    }
}

/// HTTP/1.1 with keep-alive (the engine pools its connections).
fn serve_connection(
    stream: TcpStream,
    calls: &Mutex<Vec<Call>>,
    seen: &Mutex<std::collections::HashSet<String>>,
) {
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_owned();
        let mut length = 0;
        let mut key = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap_or(0),
                    "idempotency-key" => key = value.trim().to_owned(),
                    _ => {}
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        calls.lock().expect("calls").push(Call {
            key: key.clone(),
            at: Instant::now(),
        });
        std::thread::sleep(Duration::from_millis(60));
        let (status, answer) = match path.as_str() {
            "/double" => (
                "200 OK",
                json!({"v": body["n"].as_i64().unwrap_or(0) * 2, "key": key}),
            ),
            "/flaky" => {
                let id = body["id"].as_str().unwrap_or("").to_owned();
                if seen.lock().expect("seen").insert(id) {
                    ("503 Service Unavailable", json!({"retry": true}))
                } else {
                    ("200 OK", json!({"ok": true, "key": key}))
                }
            }
            _ => ("404 Not Found", json!({})),
        };
        let answer = answer.to_string();
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}",
            answer.len()
        );
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

/// A small xorshift generator: the kill moments, replayable by seed.
struct Moments(u64);

impl Moments {
    fn next_ms(&mut self, low: u64, high: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        low + self.0 % (high - low)
    }
}

/// Creates each `(name, definition)` through `call` (an AWS action on
/// some server), expecting success.
pub(crate) fn create_machines(
    mut call: impl FnMut(&str, &Value) -> (u16, Value),
    machines: &[(&str, &str)],
) {
    for (name, definition) in machines {
        let (status, answer) = call(
            "CreateStateMachine",
            &json!({"name": name, "definition": definition, "roleArn": "arn:aws:iam::111111111111:role/r"}),
        );
        assert_eq!(status, 200, "{name}: {answer}");
    }
}

pub(crate) fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Starts the planned executions before `upto` not yet acknowledged, in
/// order, until the server stops answering. "Already exists" counts as
/// started: the acknowledgement of an earlier attempt was lost to a kill.
fn start_pending(serve: &Serve, plans: &[Planned], started: &mut [bool], upto: usize) {
    for (i, planned) in plans.iter().enumerate().take(upto) {
        if started[i] {
            continue;
        }
        let body = planned.start_request();
        match crate::aws::try_call_raw(serve.addr, "StartExecution", &body.to_string()) {
            Ok((200, _)) => started[i] = true,
            Ok((400, answer)) if answer["__type"] == "ExecutionAlreadyExists" => started[i] = true,
            Ok((status, answer)) if status != 0 && status < 500 => {
                panic!("StartExecution {}: {status} {answer}", planned.name)
            }
            _ => return,
        }
    }
}

#[test]
fn kill_9_again_and_again_under_a_mixed_load_loses_nothing_and_repeats_only_calls_in_flight() {
    let executions = env_number("STEPLINE_SOAK_EXECUTIONS", 120);
    let kills = env_number("STEPLINE_SOAK_KILLS", 6);
    let seed = std::env::var("STEPLINE_SOAK_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(7, |d| d.as_nanos() as u64 | 1)
        });
    eprintln!("soak: {executions} executions, {kills} kills, STEPLINE_SOAK_SEED={seed}");
    let mut moments = Moments(seed);
    let counting = CountingServer::start();
    let api = format!("http://{}", counting.addr);
    let binary = stepline_binary();
    let dir = TempDir::new("soak");
    let data = dir.path().join("data");
    let plans: Vec<Planned> = (0..executions).map(|i| plan(i, &api)).collect();
    let mut started = vec![false; executions];

    // Each server life: [start, end); a call belongs to the life it
    // arrived in (a pause after each kill lets calls sent before it land).
    let mut lives: Vec<(Instant, Instant)> = Vec::new();
    for life in 0..=kills {
        let begun = Instant::now();
        let serve = Serve::start_with(&binary, &data, None);
        if life == 0 {
            create_machines(
                |action, body| serve.call(action, body),
                &[
                    ("chain", CHAIN),
                    ("waits", WAITS),
                    ("fanout", FANOUT),
                    ("http", HTTP),
                ],
            );
        }
        if life == kills {
            start_pending(&serve, &plans, &mut started, executions);
            lives.push((begun, Instant::now() + Duration::from_secs(3600)));
            verify(&serve, &plans, &started, &counting, &lives);
            return;
        }
        // The killer fires at a random moment while executions start and
        // run; starting stops when the server is gone.
        let pid = serve.pid();
        let pause = Duration::from_millis(moments.next_ms(150, 1500));
        let killer = std::thread::spawn(move || {
            std::thread::sleep(pause);
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
        });
        // A wave of new executions in each life, so that every kill finds
        // work under way.
        let upto = executions * (life + 1) / kills;
        start_pending(&serve, &plans, &mut started, upto);
        killer.join().expect("killer");
        serve.kill();
        lives.push((begun, Instant::now()));
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn verify(
    serve: &Serve,
    plans: &[Planned],
    started: &[bool],
    counting: &CountingServer,
    lives: &[(Instant, Instant)],
) {
    assert!(started.iter().all(|s| *s), "every execution was started");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut recorded_keys: Vec<String> = Vec::new();
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    for (i, planned) in plans.iter().enumerate() {
        let arn = format!("{PREFIX}:execution:{}:{}", planned.machine, planned.name);
        let described = wait_until_ended(serve, &arn, deadline);
        *by_status
            .entry(described["status"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
        assert_eq!(described["status"], "SUCCEEDED", "{arn}: {described}");
        let output: Value =
            serde_json::from_str(described["output"].as_str().expect("output")).expect("json");
        assert_eq!(output, expected_output(i, planned, &output), "{arn}");

        let events = history(serve, &arn);
        let ids: Vec<u64> = events.iter().map(|e| e["id"].as_u64().unwrap()).collect();
        assert_eq!(
            ids,
            (1..=ids.len() as u64).collect::<Vec<_>>(),
            "{arn}: ids"
        );
        let count = |t: &str| events.iter().filter(|e| e["type"] == t).count();
        assert_eq!(count("ExecutionStarted"), 1, "{arn}");
        assert_eq!(count("ExecutionSucceeded"), 1, "{arn}");
        assert_eq!(count("TaskSucceeded"), planned.tasks, "{arn}: results");
        for event in &events {
            if event["type"] == "TaskSucceeded" {
                let output: Value = serde_json::from_str(
                    event["taskSucceededEventDetails"]["output"]
                        .as_str()
                        .expect("output"),
                )
                .expect("json");
                let key = output["ResponseBody"]["key"].as_str().expect("key");
                recorded_keys.push(key.to_owned());
            }
        }
    }

    // The counting server's view: each call belongs to one server life.
    let calls = counting.calls.lock().expect("calls");
    let life_of = |at: Instant| lives.iter().rposition(|(begun, _)| *begun <= at);
    let mut by_key: HashMap<&str, Vec<usize>> = HashMap::new();
    for call in calls.iter() {
        let life = life_of(call.at).expect("a call from a server life");
        by_key.entry(&call.key).or_default().push(life);
    }
    let mut repeated = 0;
    for (key, lives_of_key) in &by_key {
        let mut distinct = lives_of_key.clone();
        distinct.dedup();
        assert_eq!(
            &distinct, lives_of_key,
            "{key}: called twice within one server life: {lives_of_key:?}"
        );
        if lives_of_key.len() > 1 {
            repeated += 1;
        }
    }
    for key in &recorded_keys {
        assert!(
            by_key.contains_key(key.as_str()),
            "{key} recorded, never called"
        );
    }
    let mut unique = recorded_keys.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), recorded_keys.len(), "a result recorded twice");
    eprintln!(
        "soak: {by_status:?}; {} calls for {} keys, {} results recorded, {repeated} keys called again after a kill, {} server lives",
        calls.len(),
        by_key.len(),
        recorded_keys.len(),
        lives.len()
    );
}

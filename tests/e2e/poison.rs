//! One poisoned execution must never stop the server: a JSONata expression
//! that would build a gigabyte, run by a real `stepline serve` under a
//! memory limit, fails its state and leaves the server serving; and an
//! execution whose stored journal cannot be replayed is failed at start
//! while the server binds its port and the others resume.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stepline_language::history::{Event, HistoryEvent};
use stepline_store::{Histories, SledStore, Store, WriteBatch, WriteOp};

use crate::aws::try_call_raw;
use crate::rest::http;
use crate::support::{Serve, TempDir, stepline_binary};

const ROLE: &str = "arn:aws:iam::111111111111:role/r";
const MACHINES: &str = "arn:aws:states:us-east-1:111111111111:stateMachine";
const EXECUTIONS: &str = "arn:aws:states:us-east-1:111111111111:execution";

/// The address space the server may reserve: enough for its threads'
/// stacks, sled and mimalloc's arenas, far from the gigabyte the attack
/// builds.
const ADDRESS_SPACE: u64 = 1536 << 20;

/// `stepline serve` under `prlimit --as`: an allocation past the limit
/// fails, and the Rust allocator then aborts the whole process.
///
/// glibc's malloc, which only C code and thread start-up use beside
/// mimalloc, reserves 64 MiB of address space per thread arena (seven of
/// them at rest: 448 MiB reserved, a few KiB used). One arena keeps the
/// limit about the memory the server uses, not about those reservations.
fn serve_limited(data: &Path) -> Serve {
    let mut command = Command::new("prlimit");
    command
        .env("MALLOC_ARENA_MAX", "1")
        .arg(format!("--as={ADDRESS_SPACE}"))
        .arg("--")
        .arg(stepline_binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data);
    Serve::spawn(command)
}

/// The peak resident memory of a process, in bytes (VmHWM).
fn peak_memory(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .expect("VmHWM")
}

fn healthy(serve: &Serve) -> bool {
    http(serve.addr, "GET", "/health", &[], b"").status == 200
}

/// Describes `arn` until it is no longer RUNNING (or the deadline).
fn ended(serve: &Serve, arn: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (status, described) = try_call_raw(
            serve.addr,
            "DescribeExecution",
            &json!({"executionArn": arn}).to_string(),
        )
        .expect("the server answers while the execution runs");
        assert_eq!(status, 200, "{described}");
        if described["status"] != "RUNNING" {
            return described;
        }
        assert!(Instant::now() < deadline, "{arn} never ended: {described}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn create(serve: &Serve, name: &str, definition: &Value) {
    let (status, body) = serve.call(
        "CreateStateMachine",
        &json!({"name": name, "definition": definition.to_string(), "roleArn": ROLE}),
    );
    assert_eq!(status, 200, "{body}");
}

fn start(serve: &Serve, machine: &str, name: &str) -> String {
    let (status, body) = serve.call(
        "StartExecution",
        &json!({"stateMachineArn": format!("{MACHINES}:{machine}"), "name": name, "input": "{}"}),
    );
    assert_eq!(status, 200, "{body}");
    body["executionArn"].as_str().expect("an ARN").to_owned()
}

/// The attack as reported: `$join` over a range of copies of a megabyte
/// string, a gigabyte in all. Under a memory limit it used to abort the
/// server (and, replayed at every start, keep it down).
#[test]
fn a_gigabyte_join_fails_its_state_and_the_server_keeps_serving() {
    let data = TempDir::new("poison-join");
    let serve = serve_limited(data.path());
    let join = json!({
        "QueryLanguage": "JSONata",
        "StartAt": "Build",
        "States": {"Build": {
            "Type": "Pass",
            "Output": "{% ($s := $pad('', 1000000, 'x'); $length($join([1..1000].($s)))) %}",
            "End": true
        }}
    });
    create(&serve, "join", &join);
    let arn = start(&serve, "join", "attack");
    let described = ended(&serve, &arn, Duration::from_secs(60));
    assert_eq!(described["status"], "FAILED", "{described}");
    assert_eq!(
        described["error"], "States.QueryEvaluationError",
        "{described}"
    );
    let cause = described["cause"].as_str().unwrap_or_default();
    assert!(
        cause.contains("more data than one evaluation may"),
        "{cause}"
    );
    // The server is still the same process, and serves.
    assert!(healthy(&serve));
    let peak = peak_memory(serve.pid());
    assert!(peak < 512 << 20, "the server peaked at {} MiB", peak >> 20);
    // A restart finds nothing to replay that could take it down.
    serve.kill();
    let serve = serve_limited(data.path());
    assert!(healthy(&serve));
    let described = ended(&serve, &arn, Duration::from_secs(10));
    assert_eq!(described["status"], "FAILED", "{described}");
}

/// Two executions wait in a Wait state when the server stops; the journal
/// of one is damaged (its stored history gets an event its journal does
/// not give). At the next start the server serves, the damaged one is
/// FAILED with a cause that says why, and the other finishes.
#[test]
fn an_execution_that_cannot_be_replayed_fails_and_the_others_resume() {
    let data = TempDir::new("poison-journal");
    let waiting = json!({
        "StartAt": "Nap",
        "States": {
            "Nap": {"Type": "Wait", "Seconds": 2, "Next": "Done"},
            "Done": {"Type": "Pass", "Result": {"woke": true}, "End": true}
        }
    });
    let (damaged, healthy_one) = {
        let serve = Serve::start(&stepline_binary(), data.path());
        create(&serve, "napper", &waiting);
        let damaged = start(&serve, "napper", "damaged");
        let other = start(&serve, "napper", "other");
        // Both are in their Wait state (and durable) before the stop.
        for arn in [&damaged, &other] {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let (_, history) = serve.call("GetExecutionHistory", &json!({"executionArn": arn}));
                let entered = history["events"]
                    .as_array()
                    .is_some_and(|e| e.iter().any(|e| e["type"] == "WaitStateEntered"));
                if entered {
                    break;
                }
                assert!(Instant::now() < deadline, "{arn} never waited");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        serve.kill();
        (damaged, other)
    };
    assert_eq!(damaged, format!("{EXECUTIONS}:napper:damaged"));
    {
        // The server is down: damage the one execution through the store.
        let store = SledStore::open(data.path()).expect("the store opens");
        let last = store.history_len(&damaged).expect("its history");
        let mut batch = WriteBatch::new();
        batch.push(WriteOp::AppendHistory {
            execution: damaged.clone(),
            events: vec![HistoryEvent {
                id: last + 1,
                previous_event_id: last,
                timestamp: chrono::Utc::now(),
                event: Event::ExecutionSucceeded {
                    output: std::sync::Arc::new(json!({"forged": true})),
                },
            }],
        });
        store.apply(&batch).expect("the damage is written");
        store.flush().expect("and flushed");
    }
    let serve = Serve::start(&stepline_binary(), data.path());
    assert!(healthy(&serve), "the server serves");
    let failed = ended(&serve, &damaged, Duration::from_secs(10));
    assert_eq!(failed["status"], "FAILED", "{failed}");
    assert_eq!(failed["error"], "States.Runtime", "{failed}");
    let cause = failed["cause"].as_str().unwrap_or_default();
    assert!(
        cause.contains("could not resume this execution") && cause.contains("history events"),
        "{cause}"
    );
    let (_, history) = serve.call("GetExecutionHistory", &json!({"executionArn": damaged}));
    let events = history["events"].as_array().expect("events");
    assert_eq!(
        events.last().map(|e| e["type"].clone()),
        Some(json!("ExecutionFailed")),
        "{history}"
    );
    let finished = ended(&serve, &healthy_one, Duration::from_secs(20));
    assert_eq!(finished["status"], "SUCCEEDED", "{finished}");
    assert_eq!(finished["output"], json!({"woke": true}).to_string());
}

/// Values nested without end: JSONata folding a value into itself, a
/// JSONPath loop wrapping its input a level per pass, an input nested
/// past the bound. Each fails its own execution (or is refused) with a
/// cause that says so, its history stays readable, and the server, its
/// worker threads' stacks included, keeps serving.
#[test]
fn values_nested_without_end_fail_their_execution_and_the_server_keeps_serving() {
    let data = TempDir::new("poison-depth");
    let serve = Serve::start(&stepline_binary(), data.path());
    let fold = json!({
        "QueryLanguage": "JSONata",
        "StartAt": "Fold",
        "States": {"Fold": {
            "Type": "Pass",
            "Output": "{% $reduce([1..100000], function($a, $b) { {'a': $a} }, {}) %}",
            "End": true
        }}
    });
    let wrap = json!({
        "StartAt": "Wrap",
        "States": {
            "Wrap": {"Type": "Pass", "Parameters": {"a.$": "$"}, "Next": "Again"},
            "Again": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.stop", "IsPresent": true, "Next": "Done"}],
                "Default": "Wrap"
            },
            "Done": {"Type": "Succeed"}
        }
    });
    create(&serve, "fold", &fold);
    create(&serve, "wrap", &wrap);
    let expected = [
        (
            "fold",
            "States.QueryEvaluationError",
            "nested more than 500 levels",
        ),
        (
            "wrap",
            "States.DataLimitExceeded",
            "more than 100 levels deep",
        ),
    ];
    for (machine, error, cause) in expected {
        let arn = start(&serve, machine, "deep");
        let described = ended(&serve, &arn, Duration::from_secs(60));
        assert_eq!(described["status"], "FAILED", "{described}");
        assert_eq!(described["error"], error, "{described}");
        let text = described["cause"].as_str().unwrap_or_default();
        assert!(text.contains(cause), "{machine}: {text}");
        let (status, history) = serve.call(
            "GetExecutionHistory",
            &json!({"executionArn": arn, "maxResults": 1000}),
        );
        assert_eq!(status, 200, "{machine}: the history reads back: {history}");
        let last = history["events"].as_array().and_then(|e| e.last()).cloned();
        assert_eq!(
            last.as_ref().map(|e| &e["type"]),
            Some(&json!("ExecutionFailed")),
            "{machine}: {last:?}"
        );
    }
    // An input nested past the bound (but within what the JSON reader
    // takes) is refused before anything is stored.
    let deep_input = format!("{}1{}", "[".repeat(110), "]".repeat(110));
    let (status, body) = serve.call(
        "StartExecution",
        &json!({"stateMachineArn": format!("{MACHINES}:wrap"), "input": deep_input}),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["__type"], "InvalidExecutionInput", "{body}");
    assert!(healthy(&serve));
    // A restart replays nothing that could take the server down.
    serve.kill();
    let serve = Serve::start(&stepline_binary(), data.path());
    assert!(healthy(&serve));
}

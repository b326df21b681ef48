//! The AWS face's answers, byte for byte: one scenario through every
//! action, on a manual clock (dates and ids repeat from run to run), its
//! status lines and bodies compared with `golden.txt`. Field order is part
//! of what is compared: serde_json keeps it, and Value comparisons do not
//! see it. `STEPLINE_GOLDEN=write` records the file anew.
//!
//! Masked: pagination and task tokens and UUIDs (drawn from sources that
//! differ per process). Every date is the manual clock's: the face reads
//! the engine's clock, never the system's.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use chrono::TimeZone;
use serde_json::{Value, json};
use stepline_runtime::{Engine, EngineConfig, ManualClock, TaskCall, TaskFuture, TaskRunner};
use stepline_store::MemoryStore;

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/aws/golden.txt");

/// Tasks answer with their input under "echo"; a task given
/// `{"fail": true}` fails.
#[derive(Debug)]
struct Echo;

impl TaskRunner for Echo {
    fn run(&self, call: TaskCall) -> TaskFuture {
        Box::pin(async move {
            if call.request.input.get("fail") == Some(&Value::Bool(true)) {
                return Err(stepline_language::interp::Failure {
                    error: Some("Boom".into()),
                    cause: Some("asked to fail".into()),
                });
            }
            Ok(json!({"echo": call.request.input}))
        })
    }
}

struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start() -> Self {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let start = chrono::Utc
                    .timestamp_millis_opt(1_767_225_600_125)
                    .single()
                    .expect("a date");
                let engine = Engine::open(
                    Arc::new(MemoryStore::new()),
                    Arc::new(Echo),
                    Arc::new(ManualClock::new(start)),
                    EngineConfig::default(),
                )
                .expect("engine");
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                addr_tx.send(listener.local_addr().expect("addr")).ok();
                crate::http::serve(listener, engine, async {
                    let _ = stopped.await;
                })
                .await
                .expect("serve");
            });
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the server starts");
        Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// One call: the status and the body exactly as sent.
    fn call(&self, action: &str, body: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(self.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let request = format!(
            "POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-amz-json-1.0\r\nX-Amz-Target: AWSStepFunctions.{action}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        stream.write_all(request.as_bytes()).expect("write");
        let mut response = Vec::new();
        stream.read_to_end(&mut response).expect("read");
        let text = String::from_utf8(response).expect("UTF-8");
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status");
        let body = text
            .split_once("\r\n\r\n")
            .map_or("", |(_, b)| b)
            .to_owned();
        (status, body)
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

/// `"KEY":"..."` with the string replaced.
fn mask_string(body: &str, key: &str) -> String {
    let key = format!("\"{key}\":\"");
    let mut out = String::new();
    let mut rest = body;
    while let Some(at) = rest.find(&key) {
        out.push_str(&rest[..at + key.len()]);
        rest = &rest[at + key.len()..];
        let end = rest.find('"').unwrap_or(rest.len());
        out.push_str("<token>");
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Every UUID (8-4-4-4-12 hexadecimal digits) replaced.
fn mask_uuids(text: &str) -> String {
    let shape = [8, 4, 4, 4, 12];
    let bytes = text.as_bytes();
    let is_uuid = |at: usize| {
        let mut i = at;
        for (n, len) in shape.iter().enumerate() {
            if n > 0 {
                if bytes.get(i) != Some(&b'-') {
                    return false;
                }
                i += 1;
            }
            for _ in 0..*len {
                if !bytes.get(i).is_some_and(u8::is_ascii_hexdigit) {
                    return false;
                }
                i += 1;
            }
        }
        true
    };
    let mut out = String::new();
    let mut i = 0;
    while i < text.len() {
        if text.is_char_boundary(i) && is_uuid(i) {
            out.push_str("<uuid>");
            i += 36;
        } else {
            let c = text[i..].chars().next().unwrap_or_default();
            out.push(c);
            i += c.len_utf8().max(1);
        }
    }
    out
}

fn mask(text: &str) -> String {
    mask_uuids(&mask_string(&mask_string(text, "nextToken"), "taskToken"))
}

/// The recorded calls, one `ACTION REQUEST\n-> STATUS BODY` block each.
struct Record<'a> {
    server: &'a Server,
    text: String,
}

impl Record<'_> {
    fn call(&mut self, action: &str, request: Value) -> Value {
        let request = request.to_string();
        let (status, body) = self.server.call(action, &request);
        self.text
            .push_str(&mask(&format!("{action} {request}\n-> {status} {body}\n")));
        serde_json::from_str(&body).unwrap_or(Value::Null)
    }

    /// Polls (unrecorded) until the execution is no longer RUNNING.
    fn wait(&self, arn: &str) {
        for _ in 0..1000 {
            let (_, body) = self.server.call(
                "DescribeExecution",
                &json!({"executionArn": arn}).to_string(),
            );
            let described: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            if described["status"] != "RUNNING" {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("{arn} did not finish");
    }
}

const ROLE: &str = "arn:aws:iam::111111111111:role/r";

fn scenario(r: &mut Record) {
    let flow = json!({"StartAt": "Work", "States": {
        "Work": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:111111111111:function:echo",
                 "ResultPath": "$.work", "Next": "Done"},
        "Done": {"Type": "Succeed"}}})
    .to_string();
    // State machines.
    let created = r.call(
        "CreateStateMachine",
        json!({"name": "flow", "definition": flow, "roleArn": ROLE,
               "tags": [{"key": "team", "value": "a"}], "publish": true,
               "versionDescription": "first"}),
    );
    let machine = created["stateMachineArn"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    r.call("DescribeStateMachine", json!({"stateMachineArn": machine}));
    r.call(
        "DescribeStateMachine",
        json!({"stateMachineArn": format!("{machine}:1")}),
    );
    r.call(
        "CreateStateMachine",
        json!({"name": "other", "definition": flow}),
    );
    r.call("ListStateMachines", json!({}));
    r.call("ListStateMachines", json!({"maxResults": 1}));
    r.call(
        "ValidateStateMachineDefinition",
        json!({"definition": flow}),
    );
    r.call(
        "ValidateStateMachineDefinition",
        json!({"definition": "{\"StartAt\": \"Nope\", \"States\": {}}"}),
    );
    r.call(
        "CreateStateMachine",
        json!({"name": "bad", "definition": "{\"StartAt\": \"Nope\", \"States\": {}}"}),
    );
    r.call(
        "CreateStateMachine",
        json!({"name": "flow", "definition": "{}"}),
    );
    // Executions.
    let started = r.call(
        "StartExecution",
        json!({"stateMachineArn": machine, "name": "e1", "input": "{\"n\": 1}"}),
    );
    let e1 = started["executionArn"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    r.wait(&e1);
    r.call("DescribeExecution", json!({"executionArn": e1}));
    r.call("GetExecutionHistory", json!({"executionArn": e1}));
    r.call(
        "GetExecutionHistory",
        json!({"executionArn": e1, "reverseOrder": true, "includeExecutionData": false,
               "maxResults": 2}),
    );
    r.call(
        "DescribeStateMachineForExecution",
        json!({"executionArn": e1}),
    );
    let failed = r.call(
        "StartExecution",
        json!({"stateMachineArn": machine, "name": "e2", "input": "{\"fail\": true}"}),
    );
    let e2 = failed["executionArn"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    r.wait(&e2);
    r.call("DescribeExecution", json!({"executionArn": e2}));
    r.call("RedriveExecution", json!({"executionArn": e2}));
    r.wait(&e2);
    r.call("DescribeExecution", json!({"executionArn": e2}));
    r.call("ListExecutions", json!({"stateMachineArn": machine}));
    r.call(
        "ListExecutions",
        json!({"stateMachineArn": machine, "statusFilter": "FAILED", "redriveFilter": "REDRIVEN"}),
    );
    r.call(
        "ListExecutions",
        json!({"stateMachineArn": machine, "maxResults": 1}),
    );
    r.call(
        "ListExecutions",
        json!({"stateMachineArn": machine, "statusFilter": "PENDING_REDRIVE"}),
    );
    // Updates and versions.
    r.call(
        "UpdateStateMachine",
        json!({"stateMachineArn": machine, "definition": flow, "publish": true}),
    );
    r.call("UpdateStateMachine", json!({"stateMachineArn": machine}));
    r.call(
        "PublishStateMachineVersion",
        json!({"stateMachineArn": machine, "description": "third"}),
    );
    r.call(
        "PublishStateMachineVersion",
        json!({"stateMachineArn": machine, "revisionId": "x"}),
    );
    r.call(
        "ListStateMachineVersions",
        json!({"stateMachineArn": machine}),
    );
    let routing =
        |v: u32| json!([{"stateMachineVersionArn": format!("{machine}:{v}"), "weight": 100}]);
    let alias = r.call(
        "CreateStateMachineAlias",
        json!({"name": "prod", "description": "live", "routingConfiguration": routing(1)}),
    );
    let alias = alias["stateMachineAliasArn"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    r.call(
        "DescribeStateMachineAlias",
        json!({"stateMachineAliasArn": alias}),
    );
    r.call(
        "UpdateStateMachineAlias",
        json!({"stateMachineAliasArn": alias, "routingConfiguration": routing(2)}),
    );
    r.call(
        "ListStateMachineAliases",
        json!({"stateMachineArn": machine}),
    );
    r.call(
        "CreateStateMachineAlias",
        json!({"name": "bad", "routingConfiguration": [{"weight": 100}]}),
    );
    r.call(
        "DeleteStateMachineAlias",
        json!({"stateMachineAliasArn": alias}),
    );
    r.call(
        "DeleteStateMachineVersion",
        json!({"stateMachineVersionArn": format!("{machine}:3")}),
    );
    // Tags.
    r.call("ListTagsForResource", json!({"resourceArn": machine}));
    r.call(
        "TagResource",
        json!({"resourceArn": machine, "tags": [{"key": "env", "value": "test"}]}),
    );
    r.call(
        "UntagResource",
        json!({"resourceArn": machine, "tagKeys": ["team"]}),
    );
    r.call("ListTagsForResource", json!({"resourceArn": machine}));
    r.call("UntagResource", json!({"resourceArn": machine}));
    r.call(
        "TagResource",
        json!({"resourceArn": machine, "tags": [{"value": "x"}]}),
    );
    // EXPRESS.
    let express = r.call(
        "CreateStateMachine",
        json!({"name": "quick", "definition": flow, "type": "EXPRESS"}),
    );
    let express = express["stateMachineArn"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    r.call(
        "StartSyncExecution",
        json!({"stateMachineArn": express, "name": "s1", "input": "{\"n\": 2}"}),
    );
    r.call(
        "StartSyncExecution",
        json!({"stateMachineArn": express, "name": "s2", "input": "{\"fail\": true}"}),
    );
    r.call("StartSyncExecution", json!({"stateMachineArn": machine}));
    // Activities and task tokens.
    let activity = r.call("CreateActivity", json!({"name": "review"}));
    let activity = activity["activityArn"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    r.call("DescribeActivity", json!({"activityArn": activity}));
    r.call("ListActivities", json!({}));
    let waiting = json!({"StartAt": "Review", "States": {
        "Review": {"Type": "Task", "Resource": activity, "End": true}}})
    .to_string();
    let waiting = r.call(
        "CreateStateMachine",
        json!({"name": "waiting", "definition": waiting}),
    );
    let waiting = waiting["stateMachineArn"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let w1 = r.call(
        "StartExecution",
        json!({"stateMachineArn": waiting, "name": "w1", "input": "{\"doc\": 7}"}),
    );
    let w1 = w1["executionArn"].as_str().unwrap_or_default().to_owned();
    let task = r.call(
        "GetActivityTask",
        json!({"activityArn": activity, "workerName": "w"}),
    );
    let token = task["taskToken"].as_str().unwrap_or_default().to_owned();
    r.call("SendTaskHeartbeat", json!({"taskToken": token}));
    r.call(
        "SendTaskSuccess",
        json!({"taskToken": token, "output": "{\"ok\": true}"}),
    );
    r.wait(&w1);
    r.call("DescribeExecution", json!({"executionArn": w1}));
    r.call(
        "SendTaskFailure",
        json!({"taskToken": "nope", "error": "E", "cause": "C"}),
    );
    let w2 = r.call(
        "StartExecution",
        json!({"stateMachineArn": waiting, "name": "w2"}),
    );
    let w2 = w2["executionArn"].as_str().unwrap_or_default().to_owned();
    r.call(
        "StopExecution",
        json!({"executionArn": w2, "error": "Stopped", "cause": "by hand"}),
    );
    r.wait(&w2);
    r.call("DescribeExecution", json!({"executionArn": w2}));
    r.call("DeleteActivity", json!({"activityArn": activity}));
    // Map Runs.
    let map = json!({"StartAt": "Each", "States": {"Each": {
        "Type": "Map", "MaxConcurrency": 1, "Label": "each",
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "Item", "States": {"Item": {"Type": "Pass", "End": true}}},
        "End": true}}})
    .to_string();
    let mapper = r.call(
        "CreateStateMachine",
        json!({"name": "mapper", "definition": map}),
    );
    let mapper = mapper["stateMachineArn"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let m1 = r.call(
        "StartExecution",
        json!({"stateMachineArn": mapper, "name": "m1", "input": "[1, 2]"}),
    );
    let m1 = m1["executionArn"].as_str().unwrap_or_default().to_owned();
    r.wait(&m1);
    let runs = r.call("ListMapRuns", json!({"executionArn": m1}));
    let run = runs["mapRuns"][0]["mapRunArn"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    r.call("DescribeMapRun", json!({"mapRunArn": run}));
    r.call("ListExecutions", json!({"mapRunArn": run}));
    r.call(
        "UpdateMapRun",
        json!({"mapRunArn": run, "maxConcurrency": 5, "toleratedFailurePercentage": 10}),
    );
    r.call(
        "UpdateMapRun",
        json!({"mapRunArn": run, "maxConcurrency": -1}),
    );
    r.call(
        "ListExecutions",
        json!({"mapRunArn": run, "stateMachineArn": mapper}),
    );
    // TestState.
    let pass = json!({"Type": "Pass", "Parameters": {"x.$": "$.a"}, "Next": "After"}).to_string();
    r.call(
        "TestState",
        json!({"definition": pass, "input": "{\"a\": 1}", "inspectionLevel": "DEBUG"}),
    );
    let task_state =
        json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": true})
            .to_string();
    r.call(
        "TestState",
        json!({"definition": task_state, "mock": {"errorOutput": {"error": "E", "cause": "C"}}}),
    );
    r.call(
        "TestState",
        json!({"definition": task_state, "mock": {"result": "{\"r\": 1}"}}),
    );
    r.call("TestState", json!({"definition": pass, "input": "nope"}));
    r.call("TestState", json!({"definition": pass, "variables": "[1]"}));
    // Refusals.
    r.call("NoSuchAction", json!({}));
    r.call("DescribeStateMachine", json!({}));
    r.call("DescribeStateMachine", json!({"stateMachineArn": 5}));
    r.call(
        "DescribeStateMachine",
        json!({"stateMachineArn": "arn:nope"}),
    );
    r.call(
        "DescribeExecution",
        json!({"executionArn": "arn:aws:states:us-east-1:111111111111:execution:flow:missing"}),
    );
    r.call(
        "StartExecution",
        json!({"stateMachineArn": machine, "name": "n".repeat(81), "input": "x"}),
    );
    r.call(
        "ListExecutions",
        json!({"stateMachineArn": machine, "nextToken": "forged"}),
    );
    r.call(
        "ListStateMachineVersions",
        json!({"stateMachineArn": machine, "maxResults": 5000}),
    );
    r.call(
        "CreateStateMachine",
        json!({"name": null, "definition": flow}),
    );
    r.call("DeleteStateMachine", json!({"stateMachineArn": express}));
}

#[test]
fn every_action_answers_byte_for_byte_as_recorded() {
    let server = Server::start();
    let mut record = Record {
        server: &server,
        text: String::new(),
    };
    scenario(&mut record);
    let text = record.text;
    if std::env::var("STEPLINE_GOLDEN").as_deref() == Ok("write") {
        std::fs::write(GOLDEN, &text).expect("write golden.txt");
        return;
    }
    let expected = std::fs::read_to_string(GOLDEN).expect("golden.txt");
    for (i, (got, want)) in text.lines().zip(expected.lines()).enumerate() {
        assert_eq!(got, want, "line {} of golden.txt", i + 1);
    }
    assert_eq!(text.lines().count(), expected.lines().count());
}

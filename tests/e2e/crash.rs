//! `kill -9` of the real `stepline serve` process at arbitrary moments,
//! then a restart on the same data directory: every execution must reach
//! the right end, with a contiguous history and nothing done twice that
//! should be done once.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::TempDir;

/// The `stepline` program as a real process: the tests crate's own copy
/// of the binary (same entry point), which cargo builds with the tests.
fn stepline_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_stepline-under-test"))
}

/// A running `stepline serve` and the port it chose.
struct Serve {
    child: Child,
    addr: std::net::SocketAddr,
}

impl Serve {
    fn start(binary: &PathBuf, data: &std::path::Path) -> Self {
        let mut child = Command::new(binary)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("serve starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the first line");
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        Self { child, addr }
    }

    fn kill(mut self) {
        // SIGKILL: no shutdown code runs.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn call(&self, action: &str, body: &Value) -> (u16, Value) {
        crate::aws::call_raw(self.addr, action, &body.to_string())
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const MIXED: &str = r#"{
  "StartAt": "Split",
  "States": {
    "Split": {"Type": "Parallel", "ResultPath": "$.parallel", "Next": "Each", "Branches": [
      {"StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "Seconds": 1, "End": true}}},
      {"StartAt": "Count", "States": {"Count": {"Type": "Pass", "Result": 1, "End": true}}}]},
    "Each": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 2, "ResultPath": "$.mapped",
      "ItemProcessor": {"StartAt": "Double", "States": {
        "Double": {"Type": "Pass", "Parameters": {"v.$": "States.MathAdd($, $)"}, "Next": "Pause"},
        "Pause": {"Type": "Wait", "Seconds": 1, "End": true}}},
      "Next": "Try"},
    "Try": {"Type": "Task", "Resource": "stepline:process:none",
      "Retry": [{"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 1, "MaxAttempts": 1}],
      "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.caught", "Next": "Check"}],
      "End": true},
    "Check": {"Type": "Choice", "Choices": [{"Variable": "$.mapped[2].v", "NumericEquals": 6, "Next": "Done"}], "Default": "Wrong"},
    "Wrong": {"Type": "Fail", "Error": "Wrong"},
    "Done": {"Type": "Pass", "Parameters": {"mapped.$": "$.mapped", "n.$": "$.n"}, "End": true}
  }
}"#;

#[test]
fn kill_9_at_any_moment_loses_nothing() {
    let binary = stepline_binary();
    let data = TempDir::new("crash");
    let executions = 12;
    let machine = "arn:aws:states:us-east-1:111111111111:stateMachine:mixed";
    {
        let serve = Serve::start(&binary, data.path());
        let created = serve.call(
            "CreateStateMachine",
            &json!({"name": "mixed", "definition": MIXED, "roleArn": "arn:aws:iam::111111111111:role/r"}),
        );
        assert_eq!(created.0, 200, "{}", created.1);
        for i in 0..executions {
            let input = json!({"n": i, "items": [1, 2, 3]}).to_string();
            let started = serve.call(
                "StartExecution",
                &json!({"stateMachineArn": machine, "name": format!("e{i}"), "input": input}),
            );
            assert_eq!(started.0, 200, "{}", started.1);
        }
        std::thread::sleep(Duration::from_millis(300));
        serve.kill();
    }
    // Kill again at other moments while the executions are under way.
    for pause_ms in [700, 1100, 400] {
        let serve = Serve::start(&binary, data.path());
        std::thread::sleep(Duration::from_millis(pause_ms));
        serve.kill();
    }
    let serve = Serve::start(&binary, data.path());
    let deadline = Instant::now() + Duration::from_secs(60);
    for i in 0..executions {
        let arn = format!("arn:aws:states:us-east-1:111111111111:execution:mixed:e{i}");
        let described = loop {
            let (status, described) =
                serve.call("DescribeExecution", &json!({"executionArn": arn}));
            assert_eq!(status, 200, "{described}");
            if described["status"] != "RUNNING" {
                break described;
            }
            assert!(Instant::now() < deadline, "{arn} never finished");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(described["status"], "SUCCEEDED", "{described}");
        let output: Value =
            serde_json::from_str(described["output"].as_str().expect("output")).expect("json");
        assert_eq!(
            output,
            json!({"mapped": [{"v": 2}, {"v": 4}, {"v": 6}], "n": i})
        );
        let (_, history) = serve.call("GetExecutionHistory", &json!({"executionArn": arn}));
        let events = history["events"].as_array().expect("events");
        let ids: Vec<u64> = events
            .iter()
            .map(|e| e["id"].as_u64().expect("id"))
            .collect();
        assert_eq!(
            ids,
            (1..=ids.len() as u64).collect::<Vec<_>>(),
            "{arn}: contiguous ids"
        );
        let count = |t: &str| events.iter().filter(|e| e["type"] == t).count();
        assert_eq!(count("ExecutionStarted"), 1, "{arn}");
        assert_eq!(count("ExecutionSucceeded"), 1, "{arn}");
        assert_eq!(count("MapIterationSucceeded"), 3, "{arn}");
        // The task failed twice (one retry), whatever the crashes.
        assert_eq!(count("TaskFailed"), 2, "{arn}");
        assert_eq!(count("WaitStateExited"), 4, "{arn}");
    }
}

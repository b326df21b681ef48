//! `stepline run`: a definition run in process, through the command line.

use serde_json::{Value, json};

use crate::support::{TempDir, repo_root, stepline};

fn run_with(definition: &str, input: Option<&str>) -> (crate::support::Run, TempDir) {
    let tmp = TempDir::new("run");
    let file = tmp.write("machine.asl.json", definition);
    let history = tmp.path().join("history.jsonl");
    let mut args = vec![
        "run".into(),
        file.into_os_string(),
        "--seed".into(),
        "7".into(),
        "--history".into(),
        history.into_os_string(),
    ];
    if let Some(input) = input {
        args.push("--input".into());
        args.push(input.into());
    }
    (stepline(&args), tmp)
}

fn history(tmp: &TempDir) -> Vec<Value> {
    std::fs::read_to_string(tmp.path().join("history.jsonl"))
        .expect("the history file")
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON event per line"))
        .collect()
}

#[test]
fn a_succeeding_run_prints_the_output_and_writes_the_history() {
    let definition = r#"{
      "StartAt": "Greet",
      "States": {
        "Greet": {"Type": "Pass", "Parameters": {"text.$": "States.Format('Hello, {}!', $.name)"}, "Next": "Done"},
        "Done": {"Type": "Succeed"}
      }
    }"#;
    let (run, tmp) = run_with(definition, Some(r#"{"name": "Ada"}"#));
    assert_eq!(run.status, 0, "{}", run.stderr);
    let output: Value = serde_json::from_str(run.stdout.trim()).expect("output JSON");
    assert_eq!(output, json!({"text": "Hello, Ada!"}));
    let events = history(&tmp);
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["type"].as_str().expect("type"))
        .collect();
    assert_eq!(
        types,
        [
            "ExecutionStarted",
            "PassStateEntered",
            "PassStateExited",
            "SucceedStateEntered",
            "SucceedStateExited",
            "ExecutionSucceeded"
        ]
    );
    // AWS's shape: ids from 1, payloads as JSON text.
    assert_eq!(events[0]["id"], 1);
    assert_eq!(events[1]["stateEnteredEventDetails"]["name"], "Greet");
    assert_eq!(
        events[2]["stateExitedEventDetails"]["output"],
        r#"{"text":"Hello, Ada!"}"#
    );
    assert_eq!(events[5]["previousEventId"], 5);
}

#[test]
fn a_failing_run_exits_with_one_and_names_the_error() {
    let definition = r#"{"StartAt": "No", "States": {"No": {"Type": "Fail", "Error": "Order.Invalid", "Cause": "no lines"}}}"#;
    let (run, _tmp) = run_with(definition, None);
    assert_eq!(run.status, 1);
    assert!(run.stdout.is_empty());
    assert_eq!(
        run.stderr.trim(),
        "execution failed: Order.Invalid: no lines"
    );
}

#[test]
fn an_invalid_definition_is_not_run() {
    let (run, _tmp) = run_with(r#"{"StartAt": "A", "States": {}}"#, None);
    assert_eq!(run.status, 2);
    assert!(
        run.stderr.contains("MISSING_TRANSITION_TARGET"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("is not a valid state machine"),
        "{}",
        run.stderr
    );
}

#[test]
fn bad_input_is_refused_clearly() {
    let definition = r#"{"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}"#;
    let (run, _tmp) = run_with(definition, Some("{not json"));
    assert_eq!(run.status, 2);
    assert!(
        run.stderr.contains("the input (--input) is not JSON"),
        "{}",
        run.stderr
    );
    let big = format!("\"{}\"", "x".repeat(300 * 1024));
    let (run, _tmp) = run_with(definition, Some(&big));
    assert_eq!(run.status, 2);
    assert!(
        run.stderr.contains("larger than 262144 bytes"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_task_without_a_runner_fails_honestly_and_can_be_caught() {
    let definition = r#"{
      "StartAt": "Work",
      "States": {
        "Work": {
          "Type": "Task", "Resource": "stepline:process:resize",
          "Catch": [{"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.error", "Next": "Recover"}],
          "End": true
        },
        "Recover": {"Type": "Pass", "End": true}
      }
    }"#;
    let (run, tmp) = run_with(definition, Some(r#"{"id": 1}"#));
    assert_eq!(run.status, 0, "{}", run.stderr);
    let output: Value = serde_json::from_str(run.stdout.trim()).expect("output JSON");
    assert_eq!(output["id"], 1);
    assert_eq!(output["error"]["Error"], "States.TaskFailed");
    assert!(
        output["error"]["Cause"]
            .as_str()
            .expect("cause")
            .contains("no task runner")
    );
    let types: Vec<String> = history(&tmp)
        .iter()
        .map(|e| e["type"].as_str().expect("type").to_owned())
        .collect();
    assert!(
        types.contains(&"TaskScheduled".to_owned()) && types.contains(&"TaskFailed".to_owned()),
        "{types:?}"
    );
}

/// With `--config`, a Task runs through the `[tasks]` of stepline.toml, as
/// under `stepline serve`; without it, the cause says how to configure one.
#[test]
fn a_task_runs_through_the_configured_processes() {
    let definition = r#"{"StartAt": "Shout", "States": {"Shout": {
        "Type": "Task", "Resource": "stepline:process:shout", "End": true}}}"#;
    let tmp = TempDir::new("run-config");
    let file = tmp.write("machine.asl.json", definition);
    let config = tmp.write(
        "stepline.toml",
        "[tasks.processes.shout]\ncommand = \"/usr/bin/tr\"\nargs = [\"[:lower:]\", \"[:upper:]\"]\n",
    );
    let args = |config: Option<&std::path::Path>| {
        let mut args: Vec<std::ffi::OsString> = vec![
            "run".into(),
            file.clone().into_os_string(),
            "--input".into(),
            r#"{"word": "hello"}"#.into(),
        ];
        if let Some(config) = config {
            args.push("--config".into());
            args.push(config.into());
        }
        args
    };
    let run = stepline(&args(Some(&config)));
    assert_eq!(run.status, 0, "{}", run.stderr);
    let output: Value = serde_json::from_str(run.stdout.trim()).expect("output JSON");
    assert_eq!(output, json!({"WORD": "HELLO"}));

    let run = stepline(&args(None));
    assert_eq!(run.status, 1);
    assert!(run.stderr.contains("--config"), "{}", run.stderr);
}

/// Every example in state-machines/ that needs no task runner runs to
/// success; the others fail only at their first Task.
#[test]
fn the_examples_run() {
    let dir = repo_root().join("state-machines");
    let hello = dir.join("hello.asl.json");
    let run = stepline(&[
        "run".as_ref(),
        hello.as_os_str(),
        "--input".as_ref(),
        r#"{"name": "stepline"}"#.as_ref(),
    ]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.stdout.trim(), r#"{"greeting":"Hello, stepline!"}"#);
    let order = dir.join("order-processing.asl.json");
    let input = r#"{"order": {"id": "o-1", "total": 0}}"#;
    let run = stepline(&[
        "run".as_ref(),
        order.as_os_str(),
        "--input".as_ref(),
        input.as_ref(),
    ]);
    assert_eq!(run.status, 1);
    assert_eq!(
        run.stderr.trim(),
        "execution failed: Order.Invalid: The order has no lines or a zero total."
    );
}

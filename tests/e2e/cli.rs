//! The client commands of the real `stepline` binary against a real server
//! on a loopback port: state machines, start (with --wait and its exit
//! statuses), executions, history (and --follow on a running execution),
//! stop and graph, in text and in JSON, and the errors: unknown names, a
//! server that is not there, input that is not JSON.
//!
//! The binary runs with its output in pipes and NO_COLOR set, so the text
//! is the plain text a script or a log would see; the terminal path (the
//! progress line) is exercised through `script`, which gives it a pty.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::aws::Server;
use crate::rest::get;
use crate::support::TempDir;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_stepline-under-test");

/// What one run of the binary printed and returned.
#[derive(Debug)]
pub(crate) struct Out {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }

    /// Exit status and a single line on stderr, as every failure is told.
    pub fn failed(&self, status: i32, needle: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert!(self.stderr.contains(needle), "{needle} not in {self:?}");
        assert!(!self.stderr.contains("panicked"), "{self:?}");
    }
}

pub(crate) fn command(endpoint: &str, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .env("STEPLINE_ENDPOINT", endpoint)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    c
}

pub(crate) fn run_at(endpoint: &str, args: &[&str]) -> Out {
    output(command(endpoint, args))
}

/// What a prepared command printed and returned.
pub(crate) fn output(mut command: Command) -> Out {
    let out = command.output().expect("run stepline");
    Out {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub(crate) fn run(server: &Server, args: &[&str]) -> Out {
    run_at(&format!("http://{}", server.addr), args)
}

pub(crate) const HELLO: &str = r#"{"StartAt": "Hello", "States": {
  "Hello": {"Type": "Pass", "Parameters": {"greeting.$": "States.Format('Hello, {}!', $.name)"}, "End": true}
}}"#;

pub(crate) const FAILS: &str = r#"{"StartAt": "Check", "States": {
  "Check": {"Type": "Pass", "Next": "Broken"},
  "Broken": {"Type": "Fail", "Error": "Broken.Pipe", "Cause": "the pipe broke"}
}}"#;

/// Runs about one second: long enough to be seen running.
const WAITS: &str = r#"{"StartAt": "Prepare", "States": {
  "Prepare": {"Type": "Pass", "Result": {"ready": true}, "Next": "Pause"},
  "Pause": {"Type": "Wait", "Seconds": 1, "Next": "Finish"},
  "Finish": {"Type": "Task", "Resource": "stepline:process:echo", "End": true}
}}"#;

pub(crate) const LONG: &str =
    r#"{"StartAt": "Pause", "States": {"Pause": {"Type": "Wait", "Seconds": 60, "End": true}}}"#;

pub(crate) fn create(server: &Server, dir: &TempDir, name: &str, definition: &str) {
    let file = dir.write(&format!("{name}.asl.json"), definition);
    let out = run(
        server,
        &["machines", "create", name, file.to_str().expect("utf-8")],
    );
    assert_eq!(out.status, 0, "{out:?}");
}

#[test]
fn state_machines_are_created_listed_shown_updated_and_deleted() {
    let server = Server::start();
    let dir = TempDir::new("cli-machines");
    let file = dir.write("hello.asl.json", HELLO);
    let path = file.to_str().expect("utf-8");

    let out = run(&server, &["machines", "create", "hello", path]);
    assert_eq!(out.status, 0, "{out:?}");
    assert_eq!(out.stdout, "created state machine hello (revision 1)\n");
    let out = run(
        &server,
        &["machines", "create", "second", path, "-o", "json"],
    );
    assert_eq!(out.json()["name"], "second");
    assert_eq!(out.json()["type"], "STANDARD");

    let out = run(&server, &["machines", "list"]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{out:?}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(header, ["NAME", "TYPE", "REVISION", "CREATED"]);
    assert!(lines[1].starts_with("hello   STANDARD  1"), "{out:?}");
    // Columns line up: every row's TYPE starts where the header's does.
    let at = lines[0].find("TYPE").expect("TYPE");
    assert!(lines.iter().skip(1).all(|l| &l[at..at + 8] == "STANDARD"));
    let out = run(&server, &["machines", "list", "--output", "json"]);
    let listed = out.json();
    let names: Vec<&str> = listed["stateMachines"]
        .as_array()
        .expect("list")
        .iter()
        .map(|m| m["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["hello", "second"]);

    let out = run(&server, &["machines", "show", "hello"]);
    assert!(out.stdout.contains("type:     STANDARD"), "{out:?}");
    assert!(out.stdout.contains("\"Type\": \"Pass\""), "{out:?}");
    let shown = run(&server, &["machines", "show", "hello", "-o", "json"]).json();
    assert_eq!(shown["definition"], HELLO, "the definition as it was given");

    let updated = dir.write("v2.asl.json", FAILS);
    let out = run(
        &server,
        &[
            "machines",
            "update",
            "hello",
            updated.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(out.stdout, "updated state machine hello (revision 2)\n");

    let out = run(&server, &["machines", "delete", "second", "-o", "json"]);
    assert_eq!(
        out.json(),
        serde_json::json!({"name": "second", "deleted": true})
    );
    run(&server, &["machines", "show", "second"]).failed(1, "StateMachineDoesNotExist");
    run(&server, &["machines", "delete", "second"]).failed(1, "StateMachineDoesNotExist");

    // An invalid definition: the server's diagnostics, one per line, as
    // `stepline validate` writes them.
    let bad = dir.write("bad.asl.json", "{\"StartAt\": \"Nope\",\n \"States\": {}}");
    let out = run(
        &server,
        &["machines", "create", "bad", bad.to_str().expect("utf-8")],
    );
    out.failed(1, "InvalidDefinition");
    let at = format!("{}:1:13: error[MISSING_TRANSITION_TARGET]: ", bad.display());
    assert!(
        out.stderr.lines().skip(1).any(|l| l.starts_with(&at)),
        "every diagnostic at its line:column: {out:?}"
    );
    run(
        &server,
        &["machines", "create", "x", "/nonexistent/file.json"],
    )
    .failed(2, "cannot read /nonexistent/file.json");
}

#[test]
fn start_waits_and_says_how_the_execution_ended() {
    let server = Server::start();
    let dir = TempDir::new("cli-start");
    create(&server, &dir, "hello", HELLO);
    create(&server, &dir, "fails", FAILS);

    let out = run(
        &server,
        &[
            "start",
            "hello",
            "--input",
            r#"{"name": "Ada"}"#,
            "--name",
            "first",
        ],
    );
    assert_eq!(out.status, 0, "{out:?}");
    assert!(out.stdout.starts_with("started hello/first ("), "{out:?}");

    let out = run(
        &server,
        &["start", "hello", "--input", r#"{"name": "Bo"}"#, "--wait"],
    );
    assert_eq!(out.status, 0, "{out:?}");
    let first = out.stdout.lines().next().expect("a line");
    assert!(
        first.starts_with("hello/") && first.contains(" SUCCEEDED in "),
        "{out:?}"
    );
    assert!(
        out.stdout.contains("\"greeting\": \"Hello, Bo!\""),
        "{out:?}"
    );
    assert_eq!(
        out.stderr, "",
        "no progress line when stderr is not a terminal"
    );

    let input = dir.write("input.json", r#"{"name": "File"}"#);
    let at_file = format!("@{}", input.display());
    let out = run(
        &server,
        &["start", "hello", "-i", &at_file, "--wait", "-o", "json"],
    );
    assert_eq!(out.status, 0, "{out:?}");
    let ended = out.json();
    assert_eq!(ended["status"], "SUCCEEDED");
    assert_eq!(ended["output"]["greeting"], "Hello, File!");

    let out = run(&server, &["start", "fails", "--wait"]);
    assert_eq!(out.status, 3, "a failed execution exits with 3: {out:?}");
    assert!(out.stdout.contains(" FAILED in "), "{out:?}");
    assert!(out.stdout.contains("error: Broken.Pipe"), "{out:?}");
    assert!(out.stdout.contains("cause: the pipe broke"), "{out:?}");
    let out = run(&server, &["start", "fails", "--wait", "-o", "json"]);
    assert_eq!(out.status, 3);
    assert_eq!(out.json()["error"], "Broken.Pipe");

    run(&server, &["start", "nope"]).failed(1, "StateMachineDoesNotExist");
    let before = run(&server, &["executions", "list", "-o", "json"]).json();
    run(&server, &["start", "hello", "--input", "{\"name\": "])
        .failed(2, "the input (--input) is not JSON");
    run(
        &server,
        &["start", "hello", "--input", "@/nonexistent.json"],
    )
    .failed(2, "cannot read /nonexistent.json");
    let after = run(&server, &["executions", "list", "-o", "json"]).json();
    assert_eq!(before, after, "bad input starts nothing");
}

#[test]
fn executions_are_listed_by_status_and_machine_and_described() {
    let server = Server::start();
    let dir = TempDir::new("cli-executions");
    create(&server, &dir, "hello", HELLO);
    create(&server, &dir, "fails", FAILS);
    let ada = r#"{"name": "Ada"}"#;
    let starts: [&[&str]; 3] = [
        &["start", "hello", "--name", "ok-1", "-i", ada, "--wait"],
        &["start", "hello", "--name", "ok-2", "-i", ada, "--wait"],
        &["start", "fails", "--name", "bad-1", "--wait"],
    ];
    for args in starts {
        run(&server, args);
    }

    let out = run(&server, &["executions", "list"]);
    assert_eq!(out.status, 0, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["EXECUTION", "STATUS", "STARTED", "DURATION"]
    );
    assert_eq!(lines.len(), 4, "{out:?}");
    assert!(out.stdout.contains("fails/bad-1  FAILED"), "{out:?}");

    let ids = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["executions", "list", "-o", "json"];
        all.extend_from_slice(args);
        let out = run(&server, &all);
        assert_eq!(out.status, 0, "{out:?}");
        let mut ids: Vec<String> = out.json()["executions"]
            .as_array()
            .expect("executions")
            .iter()
            .map(|e| e["id"].as_str().expect("id").to_owned())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&["--status", "FAILED"]), ["fails/bad-1"]);
    assert_eq!(
        ids(&["--status", "succeeded"]),
        ["hello/ok-1", "hello/ok-2"]
    );
    assert_eq!(ids(&["--machine", "hello"]), ["hello/ok-1", "hello/ok-2"]);
    assert_eq!(ids(&["--machine", "hello", "--limit", "1"]).len(), 1);
    run(&server, &["executions", "list", "--machine", "nope"])
        .failed(1, "StateMachineDoesNotExist");
    run(&server, &["executions", "list", "--status", "LOST"]).failed(2, "possible values");

    let out = run(&server, &["executions", "describe", "fails/bad-1"]);
    assert_eq!(out.status, 0, "{out:?}");
    for expected in [
        "execution: fails/bad-1",
        "status:    FAILED",
        "error:     Broken.Pipe",
        "cause:     the pipe broke",
        "input:",
    ] {
        assert!(out.stdout.contains(expected), "{expected}: {out:?}");
    }
    let arn = run(
        &server,
        &["executions", "describe", "hello/ok-1", "-o", "json"],
    )
    .json()["arn"]
        .as_str()
        .expect("arn")
        .to_owned();
    let by_arn = run(&server, &["executions", "describe", &arn, "-o", "json"]).json();
    assert_eq!(by_arn["id"], "hello/ok-1", "an ARN names an execution too");
    assert_eq!(
        by_arn["output"],
        serde_json::json!({"greeting": "Hello, Ada!"})
    );
    run(&server, &["executions", "describe", "hello/nope"]).failed(1, "ExecutionDoesNotExist");
    run(&server, &["executions", "describe", "no-slash"])
        .failed(2, "is not an execution: write MACHINE/NAME");
}

/// The event types of a JSON history document.
fn types(events: &Value) -> Vec<String> {
    events
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["type"].as_str().expect("type").to_owned())
        .collect()
}

#[test]
fn history_is_a_timeline_and_follow_tails_a_running_execution() {
    let server = Server::start();
    let dir = TempDir::new("cli-history");
    create(&server, &dir, "waits", WAITS);
    create(&server, &dir, "fails", FAILS);

    let out = run(&server, &["start", "waits", "--name", "w1"]);
    assert_eq!(out.status, 0, "{out:?}");
    let mut child = command(
        &format!("http://{}", server.addr),
        &["history", "waits/w1", "--follow"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    // The column headings come first; the clock's names its zone.
    let header = lines.next().expect("a heading").expect("read");
    assert!(
        header.starts_with("TIME (UTC)") && header.ends_with("DETAIL"),
        "{header}"
    );
    let mut seen = Vec::new();
    let started = Instant::now();
    // The Wait state's entry arrives while the execution still runs.
    loop {
        let line = lines.next().expect("a line before the end").expect("read");
        seen.push(line.clone());
        if line.contains("WaitStateEntered") {
            let status = get(&server, "/v1/executions/waits/w1").json()["status"].clone();
            assert_eq!(status, "RUNNING", "followed live: {seen:?}");
            assert!(line.contains("Pause"), "the state's name: {line}");
            break;
        }
    }
    seen.extend(lines.map(|l| l.expect("read")));
    let status = child.wait().expect("wait");
    assert!(status.success(), "{seen:?}");
    assert!(started.elapsed() < Duration::from_secs(30));
    let kinds: Vec<&str> = seen
        .iter()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    assert_eq!(
        kinds,
        [
            "ExecutionStarted",
            "PassStateEntered",
            "PassStateExited",
            "WaitStateEntered",
            "WaitStateExited",
            "TaskStateEntered",
            "TaskScheduled",
            "TaskStarted",
            "TaskSucceeded",
            "TaskStateExited",
            "ExecutionSucceeded",
        ],
        "{seen:?}"
    );
    assert_eq!(seen.last().map(String::as_str), Some("status: SUCCEEDED"));
    // Each line: a time, the time since the start, the event, its state
    // and a short payload.
    let entered = &seen[1];
    assert!(
        entered.contains("+0.") && entered.contains("Prepare"),
        "{entered}"
    );
    assert!(seen[2].contains(r#"output {"ready":true}"#), "{seen:?}");
    // Task events name no state; the timeline takes it from the event
    // they follow.
    let scheduled = seen
        .iter()
        .find(|l| l.contains("TaskScheduled"))
        .expect("TaskScheduled");
    assert!(
        scheduled.contains("Finish") && scheduled.contains("resource stepline:process:echo"),
        "{scheduled}"
    );

    // A failure's error and cause are on its line.
    run(&server, &["start", "fails", "--name", "f1", "--wait"]);
    let out = run(&server, &["history", "fails/f1"]);
    assert_eq!(out.status, 0, "{out:?}");
    assert!(
        out.stdout
            .lines()
            .any(|l| l.contains("ExecutionFailed")
                && l.contains("error Broken.Pipe: the pipe broke")),
        "{out:?}"
    );

    // JSON: one document, or with --follow one event per line.
    let doc = run(&server, &["history", "waits/w1", "-o", "json"]).json();
    assert_eq!(doc["execution"], "waits/w1");
    assert_eq!(doc["status"], "SUCCEEDED");
    assert_eq!(types(&doc["events"]).len(), 11);
    let out = run(&server, &["history", "waits/w1", "-f", "-o", "json"]);
    let streamed: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(Value::Array(streamed), doc["events"]);

    run(&server, &["history", "waits/none"]).failed(1, "ExecutionDoesNotExist");
}

#[test]
fn stop_aborts_a_running_execution_with_its_error_and_cause() {
    let server = Server::start();
    let dir = TempDir::new("cli-stop");
    create(&server, &dir, "long", LONG);
    run(&server, &["start", "long", "--name", "l1"]);
    let out = run(
        &server,
        &[
            "stop",
            "long/l1",
            "--error",
            "Operator.Halt",
            "--cause",
            "by hand",
        ],
    );
    assert_eq!(out.status, 0, "{out:?}");
    assert_eq!(out.stdout, "stopped long/l1: ABORTED\n");
    let e = run(
        &server,
        &["executions", "describe", "long/l1", "-o", "json"],
    )
    .json();
    assert_eq!(
        (
            e["status"].as_str(),
            e["error"].as_str(),
            e["cause"].as_str()
        ),
        (Some("ABORTED"), Some("Operator.Halt"), Some("by hand"))
    );
    run(&server, &["start", "long", "--name", "l2"]);
    let stopped = run(&server, &["stop", "long/l2", "-o", "json"]).json();
    assert_eq!(stopped["status"], "ABORTED");
    run(&server, &["stop", "long/none"]).failed(1, "ExecutionDoesNotExist");
    let out = run(&server, &["stop", "long/l1"]);
    assert_eq!(out.stdout, "already ended: long/l1: ABORTED\n", "{out:?}");
}

/// A mistake in the command line is a usage error (exit status 2) caught
/// before any request, and a mistyped word gets a suggestion.
#[test]
fn usage_errors_exit_two_and_suggest_what_was_meant() {
    let endpoint = "http://127.0.0.1:1";
    let out = run_at(endpoint, &["executions", "list", "--status", "BOGUS"]);
    out.failed(2, "RUNNING");
    assert!(!out.stderr.contains("cannot reach"), "{out:?}");
    let out = run_at(endpoint, &["valdate", "x.json"]);
    out.failed(2, "validate");
    let out = run_at(endpoint, &["executions", "lst"]);
    out.failed(2, "list");
    // Lower case names a status too, as before.
    let out = run_at(endpoint, &["executions", "list", "--status", "failed"]);
    out.failed(1, "cannot reach the server");
}

#[test]
fn a_server_that_is_not_there_is_one_clear_line() {
    // Port 1 on loopback: nothing listens there.
    let endpoint = "http://127.0.0.1:1";
    let commands: &[&[&str]] = &[
        &["machines", "list"],
        &["machines", "show", "x"],
        &["start", "x", "--wait"],
        &["executions", "list"],
        &["executions", "describe", "x/y"],
        &["history", "x/y", "--follow"],
        &["stop", "x/y"],
        &["graph", "not-a-file"],
    ];
    for args in commands {
        let out = run_at(endpoint, args);
        out.failed(1, "cannot reach the server at http://127.0.0.1:1");
        assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
        assert_eq!(out.stdout, "", "{out:?}");
    }
    // --endpoint wins over the environment.
    let out = run_at(
        "http://127.0.0.1:9",
        &["machines", "list", "--endpoint", endpoint],
    );
    out.failed(1, "http://127.0.0.1:1");
    run_at("ftp://example.com", &["machines", "list"])
        .failed(2, "must start with http:// or https://");
}

/// What the tests read back from a Mermaid flowchart.
#[derive(Debug, Default)]
struct Flowchart {
    /// `(from, to, label)`, the label prefixed with `dashed ` for `-.->`.
    edges: Vec<(String, String, String)>,
    /// The label of each node and subgraph id.
    names: HashMap<String, String>,
    /// `(group name, member name)` for every node and subgraph in a subgraph.
    nesting: Vec<(String, String)>,
}

impl Flowchart {
    fn parse(text: &str) -> Self {
        let mut chart = Flowchart::default();
        let mut open: Vec<String> = Vec::new();
        for line in text.lines().map(str::trim) {
            if line == "end" {
                open.pop();
                continue;
            }
            let arrow = [" -.->", " -->"].into_iter().find(|a| line.contains(a));
            if let Some(arrow) = arrow {
                let (from, rest) = line.split_once(arrow).expect("arrow");
                let rest = rest.trim();
                let (label, to) = match rest.strip_prefix('|') {
                    Some(labelled) => {
                        let (label, to) = labelled.split_once('|').expect("closing |");
                        (label.trim_matches('"').to_owned(), to.trim())
                    }
                    None => (String::new(), rest),
                };
                let label = if arrow == " -.->" {
                    format!("dashed {label}")
                } else {
                    label
                };
                chart.edges.push((from.to_owned(), to.to_owned(), label));
                continue;
            }
            let (id, name, opens) = match line.strip_prefix("subgraph ") {
                Some(rest) => {
                    let (id, label) = rest.split_once(' ').expect("subgraph id and label");
                    (id.to_owned(), label.trim_matches(['[', ']', '"']), true)
                }
                None => {
                    let Some(quote) = line.find('"') else {
                        continue;
                    };
                    let id = line
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    let name = line[quote + 1..].split('"').next().unwrap_or("");
                    (id, name, false)
                }
            };
            chart.names.insert(id.clone(), name.to_owned());
            if let Some(parent) = open.last() {
                chart
                    .nesting
                    .push((chart.names[parent].clone(), name.to_owned()));
            }
            if opens {
                open.push(id);
            }
        }
        chart
    }

    fn id(&self, name: &str) -> String {
        self.names
            .iter()
            .find(|(_, n)| n.as_str() == name)
            .map(|(id, _)| id.clone())
            .unwrap_or_else(|| panic!("no node {name}: {:?}", self.names))
    }

    /// The labels of the edges from one named node to another.
    fn edge(&self, from: &str, to: &str) -> Vec<String> {
        let (from, to) = (self.id(from), self.id(to));
        self.edges
            .iter()
            .filter(|(f, t, _)| *f == from && *t == to)
            .map(|(_, _, l)| l.clone())
            .collect()
    }
}

const DIAGRAM: &str = r#"{"StartAt": "Route", "States": {
  "Route": {"Type": "Choice", "Choices": [
      {"Variable": "$.kind", "StringEquals": "fan", "Next": "Fan"},
      {"Variable": "$.count", "NumericGreaterThan": 2, "Next": "Each"}],
    "Default": "Done"},
  "Fan": {"Type": "Parallel", "Branches": [
      {"StartAt": "Left", "States": {"Left": {"Type": "Pass", "End": true}}},
      {"StartAt": "Right", "States": {"Right": {"Type": "Task", "Resource": "arn:aws:states:::http:invoke",
        "Parameters": {"ApiEndpoint": "https://example.com", "Method": "GET"}, "End": true}}}],
    "Catch": [{"ErrorEquals": ["States.TaskFailed"], "Next": "Failed"}],
    "Next": "Done"},
  "Each": {"Type": "Map", "ItemProcessor": {"StartAt": "One", "States": {"One": {"Type": "Pass", "End": true}}},
    "Next": "Done"},
  "Failed": {"Type": "Fail", "Error": "Fan.Failed"},
  "Done": {"Type": "Succeed"}
}}"#;

#[test]
fn graph_draws_choices_catches_parallel_and_map_offline_and_from_the_server() {
    let dir = TempDir::new("cli-graph");
    let file = dir.write("diagram.asl.json", DIAGRAM);
    let path = file.to_str().expect("utf-8");
    // Offline: no server anywhere.
    let out = run_at("http://127.0.0.1:1", &["graph", path]);
    assert_eq!(out.status, 0, "{out:?}");
    assert!(out.stdout.starts_with("flowchart TD\n"), "{out:?}");
    let chart = Flowchart::parse(&out.stdout);
    let edge = |from: &str, to: &str| chart.edge(from, to);
    assert_eq!(
        edge("Route", "Fan (Parallel)"),
        [r#"$.kind StringEquals #quot;fan#quot;"#]
    );
    assert_eq!(
        edge("Route", "Each (Map)"),
        ["$.count NumericGreaterThan 2"]
    );
    assert_eq!(edge("Route", "Done"), ["Default"]);
    assert_eq!(
        edge("Fan (Parallel)", "Failed"),
        ["dashed Catch: States.TaskFailed"]
    );
    assert_eq!(edge("Fan (Parallel)", "Done"), [""]);
    assert_eq!(edge("Each (Map)", "Done"), [""]);
    // The branches and the processor are groups inside their state's group.
    let nesting = &chart.nesting;
    for (group, member) in [
        ("Fan (Parallel)", "Branch 1"),
        ("Fan (Parallel)", "Branch 2"),
        ("Branch 1", "Left"),
        ("Branch 2", "Right"),
        ("Each (Map)", "Item processor"),
        ("Item processor", "One"),
    ] {
        assert!(
            nesting.contains(&(group.to_owned(), member.to_owned())),
            "{member} in {group}: {nesting:?}"
        );
    }

    // Graphviz: the same edges, Parallel and Map as clusters.
    let out = run_at("http://127.0.0.1:1", &["graph", path, "--format", "dot"]);
    assert_eq!(out.status, 0, "{out:?}");
    let dot = &out.stdout;
    assert!(dot.starts_with("digraph stepline {") && dot.trim_end().ends_with('}'));
    let route = chart.id("Route");
    let dot_edges: Vec<&str> = dot
        .lines()
        .map(str::trim)
        .filter(|l| l.contains(" -> "))
        .collect();
    let from_route: HashSet<&str> = dot_edges
        .iter()
        .filter(|l| l.starts_with(&format!("{route} -> ")))
        .copied()
        .collect();
    assert_eq!(from_route.len(), 3, "{dot}");
    assert!(
        from_route.iter().any(|l| l.contains("lhead=cluster_")
            && l.contains("label=\"$.kind StringEquals \\\"fan\\\"\"")),
        "{dot}"
    );
    assert!(
        dot_edges.iter().any(|l| l.contains("ltail=cluster_")
            && l.contains("style=dashed")
            && l.contains("Catch: States.TaskFailed")),
        "{dot}"
    );
    for label in [
        "Fan (Parallel)",
        "Each (Map)",
        "Branch 1",
        "Branch 2",
        "Item processor",
    ] {
        assert!(
            dot.contains(&format!("label=\"{label}\";")),
            "{label}: {dot}"
        );
    }
    assert_eq!(dot.matches("subgraph cluster_").count(), 5);
    graphviz_accepts(dot);

    // JSON, and the same picture from a server by name.
    let model = run_at("http://127.0.0.1:1", &["graph", path, "--format", "json"]);
    let model: Value = serde_json::from_str(&model.stdout).expect("json");
    assert_eq!(model["groups"].as_array().expect("groups").len(), 4);
    assert!(
        model["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .any(|e| e["kind"] == "catch" && e["label"] == "States.TaskFailed")
    );
    let server = Server::start();
    create(&server, &dir, "drawn", DIAGRAM);
    let from_server = run(&server, &["graph", "drawn"]);
    assert_eq!(from_server.status, 0, "{from_server:?}");
    let offline = run_at("http://127.0.0.1:1", &["graph", path]);
    assert_eq!(from_server.stdout, offline.stdout);
    // The REST API serves the same model, for the web page.
    let served = get(&server, "/v1/state-machines/drawn/graph");
    assert_eq!(served.status, 200, "{}", served.body);
    let served = served.json();
    assert_eq!(served["graph"], model);
    assert_eq!(
        (served["name"].as_str(), served["revision"].as_u64()),
        (Some("drawn"), Some(1))
    );
    let first = get(&server, "/v1/state-machines/drawn/graph?revision=1").json();
    assert_eq!(first["graph"], model);
    assert_eq!(get(&server, "/v1/state-machines/missing/graph").status, 404);
    run(&server, &["graph", "missing"]).failed(1, "StateMachineDoesNotExist");
    run(&server, &["graph", "missing.asl.json"]).failed(2, "cannot read missing.asl.json");
    let bad = dir.write("bad.asl.json", r#"{"StartAt": "X", "States": {}}"#);
    let out = run_at(
        "http://127.0.0.1:1",
        &["graph", bad.to_str().expect("utf-8")],
    );
    out.failed(1, "is not a valid definition");
}

/// Graphviz itself reads the digraph, where it is installed (Debian's
/// `graphviz`); elsewhere the structural checks above stand.
fn graphviz_accepts(dot: &str) {
    use std::io::Write;
    let Ok(mut child) = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        eprintln!("graphviz is not installed: the digraph was checked by structure only");
        return;
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(dot.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("dot");
    assert!(
        out.status.success() && out.stdout.starts_with(b"<?xml"),
        "dot refused it: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// On a terminal (a pty from `script`), `start --wait` keeps one progress
/// line naming the states passed, then prints the result in colour.
#[test]
fn start_wait_shows_progress_on_a_terminal() {
    let available = Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        eprintln!("skipped: `script` (util-linux) is not installed");
        return;
    }
    let server = Server::start();
    let dir = TempDir::new("cli-progress");
    create(&server, &dir, "waits", WAITS);
    let line = format!("{BIN} start waits --wait --endpoint http://{}", server.addr);
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env_remove("NO_COLOR")
        .env("COLUMNS", "100")
        .stdin(Stdio::null())
        .output()
        .expect("script");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("RUNNING"), "{text:?}");
    assert!(text.contains("Prepare → Pause"), "{text:?}");
    assert!(text.contains("\x1b[32mSUCCEEDED\x1b[0m"), "{text:?}");
}

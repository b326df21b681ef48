//! The task examples in state-machines/, each run through a real server
//! configured from stepline.toml text as an operator writes it (the same
//! text docs/tasks.md shows), with the counterparts each needs: scripts
//! registered as processes, an HTTP server in the test, callbacks and an
//! activity worker over the AWS API, the hello example as a nested child.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stepline_runtime::tasks::Invokers;

use crate::aws::{Server, create};
use crate::support::{TempDir, repo_root};

/// A server whose tasks may reach what `toml` (a stepline.toml) allows.
fn server(toml: &str) -> Server {
    let config = stepline::config::parse(toml).unwrap_or_else(|e| panic!("{e}\n{toml}"));
    Server::start_with(Arc::new(Invokers::new(config.tasks).expect("invokers")))
}

/// Creates the example `file` (in state-machines/) under `name`; returns
/// the state machine's ARN.
fn create_example(server: &Server, name: &str, file: &str) -> String {
    let path = repo_root().join("state-machines").join(file);
    let definition = std::fs::read_to_string(&path).expect("the example exists");
    let (status, created) = create(server, name, &definition);
    assert_eq!(status, 200, "{file}: {created}");
    created["stateMachineArn"].as_str().expect("arn").to_owned()
}

fn start(server: &Server, machine: &str, input: Value) -> String {
    let request = json!({"stateMachineArn": machine, "input": input.to_string()});
    let (status, started) = server.call("StartExecution", &request.to_string());
    assert_eq!(status, 200, "{started}");
    started["executionArn"].as_str().expect("arn").to_owned()
}

fn finish(server: &Server, arn: &str) -> Value {
    crate::tasks::finish(server, arn, Duration::from_secs(20))
}

/// Runs one execution to its end and returns its output (it must succeed).
fn run(server: &Server, machine: &str, input: Value) -> (String, Value) {
    let arn = start(server, machine, input);
    let done = finish(server, &arn);
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    let output = serde_json::from_str(done["output"].as_str().expect("output")).expect("json");
    (arn, output)
}

fn events(server: &Server, arn: &str) -> Vec<Value> {
    let (_, history) = server.call(
        "GetExecutionHistory",
        &json!({"executionArn": arn}).to_string(),
    );
    history["events"].as_array().expect("events").clone()
}

/// The task and activity events of an execution, in order.
fn task_events(server: &Server, arn: &str) -> Vec<String> {
    events(server, arn)
        .iter()
        .filter_map(|e| e["type"].as_str())
        .filter(|t| (t.starts_with("Task") || t.starts_with("Activity")) && !t.contains("State"))
        .map(str::to_owned)
        .collect()
}

/// word-count as a shell script: counts the words of `text` in its input,
/// or names the error `Text.Empty` on stderr (the last line) and exits 1.
const WORD_COUNT: &str = r#"text=$(sed -n 's/.*"text":"\(.*\)"}$/\1/p')
n=$(printf '%s' "$text" | wc -w | tr -d ' ')
if [ "$n" -eq 0 ]; then
  echo "counting..." >&2
  echo '{"error": "Text.Empty", "cause": "there is no word to count"}' >&2
  exit 1
fi
printf '{"words": %s}\n' "$n"
"#;

#[test]
fn text_pipeline_runs_registered_processes() {
    let dir = TempDir::new("ex-pipeline");
    let script = dir.write("word-count.sh", WORD_COUNT);
    // No shell between stepline and tr: the program and its arguments are
    // fixed here; the input arrives on stdin.
    let server = server(&format!(
        r#"
[tasks.processes.normalize-text]
command = "/usr/bin/tr"
args = ["[:upper:]", "[:lower:]"]

[tasks.processes.word-count]
command = "/bin/sh"
args = ["{}"]
env_allow = ["PATH"]
timeout_seconds = 10
"#,
        script.display()
    ));
    let machine = create_example(&server, "text-pipeline", "text-pipeline.asl.json");
    let (arn, out) = run(&server, &machine, json!({"text": "The Quick brown FOX"}));
    assert_eq!(out, json!({"text": "the quick brown fox", "words": 4}));
    assert_eq!(
        task_events(&server, &arn),
        [
            "TaskScheduled",
            "TaskStarted",
            "TaskSucceeded",
            "TaskScheduled",
            "TaskStarted",
            "TaskSucceeded"
        ]
    );
    let scheduled = events(&server, &arn)
        .into_iter()
        .find(|e| e["type"] == "TaskScheduled")
        .unwrap();
    let details = &scheduled["taskScheduledEventDetails"];
    assert_eq!(details["resourceType"], "stepline");
    assert_eq!(details["resource"], "process:normalize-text");

    // The error the process names on stderr is what Catch matches.
    let (arn, out) = run(&server, &machine, json!({"text": "  "}));
    assert_eq!(
        out,
        json!({"words": 0, "error": "Text.Empty", "cause": "there is no word to count"})
    );
    assert!(task_events(&server, &arn).contains(&"TaskFailed".to_owned()));
}

/// A request as the upstream saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

type Handler = dyn Fn(&Seen, usize) -> (u16, Value) + Send + Sync;

/// An HTTP server in the test: `handler` answers each request (given how
/// many requests for the same target came before); every request is kept.
struct Upstream {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Upstream {
    fn start(handler: impl Fn(&Seen, usize) -> (u16, Value) + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        let handler: Arc<Handler> = Arc::new(handler);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (record, handler) = (Arc::clone(&record), Arc::clone(&handler));
                std::thread::spawn(move || answer(stream, &record, &*handler));
            }
        });
        Self { addr, seen }
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn answer(stream: TcpStream, record: &Mutex<Vec<Seen>>, handler: &Handler) {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let target = parts.next().unwrap_or("").to_owned();
    let mut headers = Vec::new();
    let mut length = 0;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.trim().split_once(':') {
            let (k, v) = (k.trim().to_owned(), v.trim().to_owned());
            if k.eq_ignore_ascii_case("content-length") {
                length = v.parse().unwrap_or(0);
            }
            headers.push((k, v));
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let seen = Seen {
        method,
        target,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let before = {
        let mut all = record.lock().unwrap();
        let before = all.iter().filter(|s| s.target == seen.target).count();
        all.push(seen.clone());
        before
    };
    let (status, payload) = handler(&seen, before);
    let text = payload.to_string();
    let mut stream = reader.into_inner();
    let _ = write!(
        stream,
        "HTTP/1.1 {status} Whatever\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
}

#[test]
fn http_lookup_catches_a_404_and_retries_a_503() {
    let upstream = Upstream::start(|seen, before| {
        match seen.target.split('?').next().unwrap_or("") {
            "/customers/42" => (200, json!({"name": "Ada", "tier": "gold"})),
            // Busy the first time, fine the second.
            "/customers/9" if before == 0 => (503, json!({"message": "busy"})),
            "/customers/9" => (200, json!({"name": "Grace", "tier": "silver"})),
            _ => (404, json!({"message": "no such customer"})),
        }
    });
    // Loopback is allowed by default: no configuration needed.
    let server = server("");
    let machine = create_example(&server, "http-lookup", "http-lookup.asl.json");
    let api = upstream.base();

    let (_, out) = run(&server, &machine, json!({"api": api, "customerId": 42}));
    assert_eq!(
        out,
        json!({"customerId": 42, "greeting": "Welcome back, Ada (gold)"})
    );
    let (_, out) = run(&server, &machine, json!({"api": api, "customerId": 7}));
    assert_eq!(
        out,
        json!({"customerId": 7, "greeting": "Welcome, new customer", "error": "States.Http.StatusCode.404"})
    );
    let (arn, out) = run(&server, &machine, json!({"api": api, "customerId": 9}));
    assert_eq!(out["greeting"], "Welcome back, Grace (silver)");

    let seen = upstream.seen();
    let first = &seen[0];
    assert_eq!(first.method, "GET");
    assert_eq!(first.target, "/customers/42?fields=name%2Ctier");
    assert_eq!(first.header("accept"), Some("application/json"));
    // A retry is a new invocation with a key of its own; a run repeated
    // after a crash would carry the same key.
    let keys: Vec<&str> = seen
        .iter()
        .filter(|s| s.target.starts_with("/customers/9"))
        .map(|s| s.header("idempotency-key").unwrap())
        .collect();
    assert_eq!(keys.len(), 2);
    assert!(keys.iter().all(|k| k.starts_with(&format!("{arn}#"))));
    assert_ne!(keys[0], keys[1]);

    // The same definition on a server that does not allow loopback: the
    // call never leaves, and the error is not the 404 the Catch expects.
    let closed = server_without_loopback();
    let machine = create_example(&closed, "http-lookup", "http-lookup.asl.json");
    let arn = start(&closed, &machine, json!({"api": api, "customerId": 42}));
    let done = finish(&closed, &arn);
    assert_eq!(done["error"], "States.TaskFailed", "{done}");
    assert!(done["cause"].as_str().unwrap().contains("does not allow"));
    assert_eq!(upstream.seen().len(), seen.len(), "nothing more was called");
}

fn server_without_loopback() -> Server {
    server(
        r#"
[tasks.http]
allow = ["https://api.example.com/v1/"]
allow_loopback = false
"#,
    )
}

/// Waits for a file the process writes, returns its contents and removes it.
fn take_file(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if !text.is_empty() {
                let _ = std::fs::remove_file(path);
                return text;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{} was never written",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn callback_approval_waits_for_an_answer() {
    let dir = TempDir::new("ex-approval");
    let inbox = dir.path().join("request.json");
    // Stands for "send the approver an e-mail with two links": the request
    // (its token included) is written where the test reads it.
    let script = dir.write(
        "request-approval.sh",
        format!(
            "cat > {inbox}.tmp\nprintf '%s' \"$STEPLINE_TASK_TOKEN\" > {inbox}.token\nmv {inbox}.tmp {inbox}\necho '{{\"sent\": true}}'\n",
            inbox = inbox.display()
        ),
    );
    let server = server(&format!(
        r#"
[tasks.processes.request-approval]
command = "/bin/sh"
args = ["{}"]
env_allow = ["PATH"]
timeout_seconds = 10
"#,
        script.display()
    ));
    let machine = create_example(&server, "approval", "callback-approval.asl.json");
    let input = json!({"expense": {"amount": 120, "what": "train"}, "approver": "ada@example.com"});

    let arn = start(&server, &machine, input.clone());
    let request: Value = serde_json::from_str(&take_file(&inbox)).unwrap();
    let token = request["token"].as_str().unwrap().to_owned();
    let env_token = std::fs::read_to_string(format!("{}.token", inbox.display())).unwrap();
    assert_eq!(token, env_token, "$$.Task.Token is STEPLINE_TASK_TOKEN");
    assert_eq!(request["approver"], "ada@example.com");
    let (status, body) = server.call(
        "SendTaskHeartbeat",
        &json!({"taskToken": token}).to_string(),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = server.call(
        "SendTaskSuccess",
        &json!({"taskToken": token, "output": "{\"by\": \"ada\"}"}).to_string(),
    );
    assert_eq!(status, 200, "{body}");
    let done = finish(&server, &arn);
    assert_eq!(done["output"], r#"{"status":"approved","by":"ada"}"#);
    assert_eq!(
        task_events(&server, &arn),
        [
            "TaskScheduled",
            "TaskStarted",
            "TaskSubmitted",
            "TaskSucceeded"
        ]
    );
    let (_, again) = server.call(
        "SendTaskSuccess",
        &json!({"taskToken": token, "output": "{}"}).to_string(),
    );
    assert_eq!(again["__type"], "TaskTimedOut", "a token answers once");

    let arn = start(&server, &machine, input);
    let request: Value = serde_json::from_str(&take_file(&inbox)).unwrap();
    let (status, body) = server.call(
        "SendTaskFailure",
        &json!({"taskToken": request["token"], "error": "Approval.Rejected", "cause": "over budget"})
            .to_string(),
    );
    assert_eq!(status, 200, "{body}");
    let done = finish(&server, &arn);
    assert_eq!(
        done["output"],
        r#"{"status":"rejected","reason":"over budget"}"#
    );
}

#[test]
fn activity_review_is_answered_by_a_worker() {
    let server = server("");
    let (status, created) = server.call(
        "CreateActivity",
        &json!({"name": "review-document"}).to_string(),
    );
    assert_eq!(status, 200, "{created}");
    let activity = created["activityArn"].as_str().unwrap().to_owned();
    let machine = create_example(&server, "review", "activity-review.asl.json");
    let arn = start(&server, &machine, json!({"document": "doc-7"}));

    // The worker: poll, heartbeat while working, answer.
    let (status, task) = server.call(
        "GetActivityTask",
        &json!({"activityArn": activity, "workerName": "reviewer-1"}).to_string(),
    );
    assert_eq!(status, 200, "{task}");
    let input: Value = serde_json::from_str(task["input"].as_str().unwrap()).unwrap();
    let name = arn.rsplit(':').next().unwrap();
    assert_eq!(input, json!({"document": "doc-7", "requestedBy": name}));
    let token = task["taskToken"].as_str().unwrap();
    let (status, _) = server.call(
        "SendTaskHeartbeat",
        &json!({"taskToken": token}).to_string(),
    );
    assert_eq!(status, 200);
    let (status, body) = server.call(
        "SendTaskSuccess",
        &json!({"taskToken": token, "output": "{\"verdict\": \"accepted\"}"}).to_string(),
    );
    assert_eq!(status, 200, "{body}");
    let done = finish(&server, &arn);
    assert_eq!(
        done["output"],
        r#"{"document":"doc-7","verdict":"accepted"}"#
    );
    assert_eq!(
        task_events(&server, &arn),
        ["ActivityScheduled", "ActivityStarted", "ActivitySucceeded"]
    );
    let started = events(&server, &arn)
        .into_iter()
        .find(|e| e["type"] == "ActivityStarted")
        .unwrap();
    assert_eq!(
        started["activityStartedEventDetails"]["workerName"],
        "reviewer-1"
    );
}

#[test]
fn nested_greetings_run_hello_as_children() {
    let server = server("");
    let hello = create_example(&server, "hello", "hello.asl.json");
    assert_eq!(
        hello, "arn:aws:states:us-east-1:111111111111:stateMachine:hello",
        "the ARN the example names"
    );
    let machine = create_example(&server, "greetings", "nested-greetings.asl.json");
    let input = json!({"people": [{"name": "Ada"}, {"name": "Grace"}, {"nickname": "x"}]});
    let (_, out) = run(&server, &machine, input);
    let greetings = out["greetings"].as_array().unwrap();
    assert_eq!(greetings[0]["greeting"], "Hello, Ada!");
    assert_eq!(greetings[1]["greeting"], "Hello, Grace!");
    assert_eq!(
        greetings[2],
        json!({"greeting": null, "error": "States.TaskFailed"})
    );
    let child = greetings[0]["child"].as_str().unwrap();
    assert!(child.starts_with("arn:aws:states:us-east-1:111111111111:execution:hello:"));
    // A child started without a Name gets one derived from the parent
    // task's idempotency key (UUID-shaped), so a start repeated after a
    // crash finds the same child.
    let name = child.rsplit(':').next().unwrap();
    assert_eq!((name.len(), name.matches('-').count()), (36, 4), "{name}");
    assert!(out["announced"]["announcement"].is_string());
    let (_, listed) = server.call(
        "ListExecutions",
        &json!({"stateMachineArn": hello}).to_string(),
    );
    assert_eq!(listed["executions"].as_array().unwrap().len(), 4);
}

#[test]
fn lambda_compatible_runs_unchanged_on_mapped_functions() {
    let dir = TempDir::new("ex-lambda");
    let script = dir.write("word-count.sh", WORD_COUNT);
    let upstream = Upstream::start(|seen, _| {
        if seen.body.contains("offline") {
            // How a Lambda function reports an error: errorType names it.
            (
                500,
                json!({"errorType": "Enrich.Unavailable", "errorMessage": "the CRM is offline"}),
            )
        } else {
            (200, json!({"segment": "reader"}))
        }
    });
    let server = server(&format!(
        r#"
[tasks.processes.word-count]
command = "/bin/sh"
args = ["{script}"]
env_allow = ["PATH"]

[tasks.lambda]
count-words = {{ process = "word-count" }}
enrich = {{ url = "{base}/enrich" }}
"#,
        script = script.display(),
        base = upstream.base()
    ));
    let machine = create_example(&server, "lambda-compatible", "lambda-compatible.asl.json");
    let (arn, out) = run(&server, &machine, json!({"text": "one two three"}));
    assert_eq!(
        out,
        json!({"text": "one two three", "count": {"words": 3, "status": 200},
               "enriched": {"segment": "reader"}})
    );
    let sent: Value = serde_json::from_str(&upstream.seen()[0].body).unwrap();
    assert_eq!(
        sent["count"]["words"], 3,
        "the function got the state's input"
    );
    let scheduled: Vec<Value> = events(&server, &arn)
        .into_iter()
        .filter(|e| e["type"] == "TaskScheduled")
        .map(|e| e["taskScheduledEventDetails"].clone())
        .collect();
    assert_eq!(
        (&scheduled[0]["resourceType"], &scheduled[0]["resource"]),
        (&json!("lambda"), &json!("invoke"))
    );

    let (_, out) = run(&server, &machine, json!({"text": "offline please"}));
    assert_eq!(out, json!({"words": 2, "enriched": false}));
}

/// A task's id (and so its token and idempotency key) is never reused: a
/// failed Parallel branch cancels several open tasks at once and the
/// Catch's task still gets a fresh one. (Task ids once counted open tasks
/// plus history length, which repeated here.)
#[test]
fn task_ids_never_repeat_after_cancelled_branches() {
    let server = Server::start();
    let task = json!({"Type": "Task", "Resource": "stepline:process:x.waitForTaskToken",
                      "Parameters": {"token.$": "$$.Task.Token"}, "End": true});
    let mut branches: Vec<Value> = (0..6)
        .map(|i| json!({"StartAt": format!("T{i}"), "States": {format!("T{i}"): task}}))
        .collect();
    branches.push(json!({"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Boom"}}}));
    let definition = json!({"StartAt": "Fan", "States": {
        "Fan": {"Type": "Parallel", "Branches": branches,
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "After"}], "End": true},
        "After": task}});
    let (status, created) = create(&server, "ids", &definition.to_string());
    assert_eq!(status, 200, "{created}");
    let arn = start(
        &server,
        created["stateMachineArn"].as_str().unwrap(),
        json!({}),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let tokens = loop {
        let tokens: Vec<String> = events(&server, &arn)
            .iter()
            .filter(|e| e["type"] == "TaskScheduled")
            .map(|e| {
                let details = &e["taskScheduledEventDetails"];
                let p: Value =
                    serde_json::from_str(details["parameters"].as_str().unwrap()).unwrap();
                p["token"].as_str().unwrap().to_owned()
            })
            .collect();
        if tokens.len() == 7 {
            break tokens;
        }
        assert!(Instant::now() < deadline, "{tokens:?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let after = &tokens[6];
    assert!(
        !tokens[..6].contains(after),
        "the Catch's task reuses a cancelled task's token: {tokens:?}"
    );
}

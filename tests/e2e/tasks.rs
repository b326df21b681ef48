//! Tasks through the server, against real counterparts: scripts run as
//! registered processes, an HTTP server in the test, callbacks and an
//! activity worker over the AWS API, nested executions. Each kind with its
//! errors, timeouts and the security rules (nothing unregistered runs,
//! nothing outside the allowlist is called, the server keeps serving).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stepline_runtime::tasks::Invokers;
use stepline_runtime::tasks::config::{LambdaConfig, ProcessConfig, TaskConfig};

use crate::aws::{Server, create};
use crate::support::TempDir;

fn process(script: &Path) -> ProcessConfig {
    ProcessConfig {
        command: PathBuf::from("/bin/sh"),
        args: vec![script.display().to_string()],
        working_dir: None,
        env: BTreeMap::new(),
        env_allow: vec!["PATH".into()],
        timeout_seconds: None,
        max_stdout_bytes: 64 * 1024,
        stderr_tail_bytes: 4096,
    }
}

fn server(config: TaskConfig) -> Server {
    Server::start_with(Arc::new(Invokers::new(config).expect("invokers")))
}

/// Creates `name` and starts one execution; returns its ARN.
fn start(server: &Server, name: &str, definition: &Value, input: Value) -> String {
    let (status, created) = create(server, name, &definition.to_string());
    assert_eq!(status, 200, "{created}");
    let request =
        json!({"stateMachineArn": created["stateMachineArn"], "input": input.to_string()});
    let (status, started) = server.call("StartExecution", &request.to_string());
    assert_eq!(status, 200, "{started}");
    started["executionArn"].as_str().expect("arn").to_owned()
}

pub fn finish(server: &Server, arn: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (_, described) = server.call(
            "DescribeExecution",
            &json!({"executionArn": arn}).to_string(),
        );
        if described["status"] != "RUNNING" {
            return described;
        }
        assert!(
            Instant::now() < deadline,
            "{arn} still running: {described}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn output(described: &Value) -> Value {
    serde_json::from_str(described["output"].as_str().expect("output")).expect("json")
}

fn history_types(server: &Server, arn: &str) -> Vec<String> {
    events(server, arn)
        .iter()
        .map(|e| e["type"].as_str().expect("type").to_owned())
        .collect()
}

fn events(server: &Server, arn: &str) -> Vec<Value> {
    let (_, history) = server.call(
        "GetExecutionHistory",
        &json!({"executionArn": arn}).to_string(),
    );
    history["events"].as_array().expect("events").clone()
}

fn one_task(resource: &str, extra: Value) -> Value {
    let mut task = json!({"Type": "Task", "Resource": resource, "End": true});
    if let (Value::Object(t), Value::Object(e)) = (&mut task, extra) {
        t.extend(e);
    }
    json!({"StartAt": "Work", "States": {"Work": task}})
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

#[test]
fn a_registered_process_gets_its_input_and_environment() {
    let dir = TempDir::new("proc-ok");
    let script = dir.write(
        "work.sh",
        r#"input=$(cat)
printf '{"input": %s, "arn": "%s", "state": "%s", "attempt": "%s", "key": "%s", "home": "%s"}\n' \
  "$input" "$STEPLINE_EXECUTION_ARN" "$STEPLINE_STATE_NAME" "$STEPLINE_ATTEMPT" "$STEPLINE_IDEMPOTENCY_KEY" "${HOME:-unset}"
"#,
    );
    let mut config = TaskConfig::default();
    config.processes.insert("work".into(), process(&script));
    let server = server(config);
    let definition = one_task(
        "stepline:process:work",
        json!({"Parameters": {"text.$": "$.text"}}),
    );
    // Shell metacharacters in the input are data, never commands.
    let marker = dir.path().join("pwned");
    let text = format!(
        "$(touch {}); `touch {}` && rm -rf /",
        marker.display(),
        marker.display()
    );
    let arn = start(&server, "proc", &definition, json!({"text": text}));
    let done = finish(&server, &arn, Duration::from_secs(10));
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    let out = output(&done);
    assert_eq!(out["input"], json!({"text": text}));
    assert_eq!(out["arn"], json!(arn));
    assert_eq!(out["state"], "Work");
    assert_eq!(out["attempt"], "1");
    assert!(out["key"].as_str().unwrap().starts_with(&arn), "{out}");
    assert_eq!(out["home"], "unset", "the environment starts empty");
    assert!(!marker.exists(), "nothing in the input was run");
    let types = history_types(&server, &arn);
    for t in ["TaskScheduled", "TaskStarted", "TaskSucceeded"] {
        assert!(types.contains(&t.to_owned()), "{types:?}");
    }
}

#[test]
fn process_failures_are_named_and_caught() {
    let dir = TempDir::new("proc-fail");
    let named = dir.write(
        "named.sh",
        "echo 'progress...' >&2\necho '{\"error\": \"Inventory.OutOfStock\", \"cause\": \"no widgets\"}' >&2\nexit 3\n",
    );
    let plain = dir.write("plain.sh", "echo 'disk on fire' >&2\nexit 7\n");
    let not_json = dir.write("notjson.sh", "echo hello\n");
    let mut config = TaskConfig::default();
    config.processes.insert("named".into(), process(&named));
    config.processes.insert("plain".into(), process(&plain));
    config
        .processes
        .insert("notjson".into(), process(&not_json));
    let server = server(config);
    let definition = json!({"StartAt": "Named", "States": {
        "Named": {"Type": "Task", "Resource": "stepline:process:named",
                  "Catch": [{"ErrorEquals": ["Inventory.OutOfStock"], "ResultPath": "$.named", "Next": "Plain"}],
                  "End": true},
        "Plain": {"Type": "Task", "Resource": "stepline:process:plain",
                  "Retry": [{"ErrorEquals": ["States.TaskFailed"], "MaxAttempts": 1, "IntervalSeconds": 1}],
                  "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.plain", "Next": "NotJson"}],
                  "End": true},
        "NotJson": {"Type": "Task", "Resource": "stepline:process:notjson", "End": true}
    }});
    let arn = start(&server, "failing", &definition, json!({}));
    let done = finish(&server, &arn, Duration::from_secs(15));
    assert_eq!(done["status"], "FAILED", "{done}");
    assert_eq!(done["error"], "States.TaskFailed");
    assert!(
        done["cause"].as_str().unwrap().contains("not JSON"),
        "{done}"
    );
    let events = events(&server, &arn);
    let caught: Vec<Value> = events
        .iter()
        .filter(|e| e["type"] == "TaskFailed")
        .map(|e| e["taskFailedEventDetails"].clone())
        .collect();
    assert_eq!(caught[0]["error"], "Inventory.OutOfStock");
    assert_eq!(caught[0]["cause"], "no widgets");
    // The plain failure ran twice (one retry) and kept the stderr tail.
    assert_eq!(caught[1]["error"], "States.TaskFailed");
    let cause = caught[1]["cause"].as_str().unwrap();
    assert!(
        cause.contains("exited with status 7") && cause.contains("disk on fire"),
        "{cause}"
    );
    assert_eq!(caught[2]["error"], "States.TaskFailed");
}

#[test]
fn a_process_that_never_ends_is_killed_with_its_whole_group() {
    let dir = TempDir::new("proc-hang");
    let pids = dir.path().join("pids");
    let script = dir.write(
        "hang.sh",
        format!("sleep 600 &\necho $$ $! > {}\nwait\n", pids.display()),
    );
    let mut config = TaskConfig::default();
    config.processes.insert("hang".into(), process(&script));
    let server = server(config);
    let definition = one_task("stepline:process:hang", json!({"TimeoutSeconds": 1}));
    let arn = start(&server, "hang", &definition, json!({}));
    let done = finish(&server, &arn, Duration::from_secs(15));
    assert_eq!(done["status"], "FAILED", "{done}");
    assert_eq!(done["error"], "States.Timeout");
    assert!(history_types(&server, &arn).contains(&"TaskTimedOut".to_owned()));
    let text = std::fs::read_to_string(&pids).expect("the script wrote its pids");
    let ids: Vec<u32> = text
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    while ids.iter().any(|&p| pid_alive(p)) {
        assert!(Instant::now() < deadline, "still alive: {ids:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn floods_unregistered_commands_and_missing_programs_are_clear_errors() {
    let dir = TempDir::new("proc-flood");
    let flood = dir.write("flood.sh", "yes '{\"a\": 1}'\n");
    // Ignores the closed pipe and would write (and fail) forever.
    let stubborn = dir.write(
        "stubborn.sh",
        "trap '' PIPE\nwhile true; do echo '{\"a\": 1}' 2>/dev/null; done\n",
    );
    let mut config = TaskConfig::default();
    config.processes.insert("flood".into(), process(&flood));
    config
        .processes
        .insert("stubborn".into(), process(&stubborn));
    let mut missing = process(&flood);
    missing.command = PathBuf::from("/nonexistent/program");
    config.processes.insert("missing".into(), missing);
    let server = server(config);
    for (name, resource, error, words) in [
        (
            "flood",
            "stepline:process:flood",
            "States.DataLimitExceeded",
            "more than 65536 bytes",
        ),
        (
            "stubborn",
            "stepline:process:stubborn",
            "States.DataLimitExceeded",
            "more than 65536 bytes",
        ),
        (
            "unregistered",
            "stepline:process:rm",
            "States.TaskFailed",
            "not registered",
        ),
        (
            "missing",
            "stepline:process:missing",
            "States.TaskFailed",
            "could not start",
        ),
    ] {
        let arn = start(&server, name, &one_task(resource, json!({})), json!({}));
        let done = finish(&server, &arn, Duration::from_secs(15));
        assert_eq!(done["status"], "FAILED", "{name}: {done}");
        assert_eq!(done["error"], error, "{name}: {done}");
        assert!(
            done["cause"].as_str().unwrap().contains(words),
            "{name}: {done}"
        );
    }
    let (status, _) = server.call("ListStateMachines", "{}");
    assert_eq!(status, 200, "the server keeps serving");
}

/// An HTTP server for the tests: answers `/json` with what it received,
/// `/status/N` with status N, and records every request.
struct Upstream {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Value>>>,
}

impl Upstream {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let record = Arc::clone(&record);
                std::thread::spawn(move || serve_one(stream, &record));
            }
        });
        Self { addr, seen }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

fn serve_one(stream: std::net::TcpStream, record: &Mutex<Vec<Value>>) {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let mut headers = serde_json::Map::new();
    let mut length = 0;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.trim().split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_owned());
            if k == "content-length" {
                length = v.parse().unwrap_or(0);
            }
            headers.insert(k, json!(v));
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let seen = json!({"method": method, "target": target, "headers": headers,
                      "body": String::from_utf8_lossy(&body)});
    record.lock().unwrap().push(seen.clone());
    let (status, reason, payload) = match target.split('?').next().unwrap_or("") {
        "/token" => (
            200,
            "OK",
            json!({"access_token": "token-for-id", "expires_in": 3600}),
        ),
        p if p.contains("/status/") => {
            let code: u16 = p.rsplit('/').next().unwrap_or("").parse().unwrap_or(500);
            (code, "Status", json!({"failed": code}))
        }
        _ => (200, "OK", seen),
    };
    let text = payload.to_string();
    let mut stream = reader.into_inner();
    let _ = write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
}

#[test]
fn http_tasks_call_allowed_endpoints_with_aws_parameters_and_output() {
    let upstream = Upstream::start();
    let server = server(TaskConfig::default());
    let definition = json!({"StartAt": "Call", "States": {
        "Call": {"Type": "Task", "Resource": "arn:aws:states:::http:invoke",
                 "Parameters": {"ApiEndpoint": upstream.url("/json"), "Method": "POST",
                                "Headers": {"X-Trace": "t-1"},
                                "QueryParameters": {"q": "a b"},
                                "RequestBody": {"order.$": "$.order"}},
                 "ResultSelector": {"status.$": "$.StatusCode", "text.$": "$.StatusText",
                                    "seen.$": "$.ResponseBody", "type.$": "$.Headers.content-type[0]"},
                 "Next": "Missing"},
        "Missing": {"Type": "Task", "Resource": "arn:aws:states:::http:invoke",
                    "Parameters": {"ApiEndpoint": upstream.url("/status/404"), "Method": "GET"},
                    "Catch": [{"ErrorEquals": ["States.Http.StatusCode.404"], "ResultPath": "$.missing", "Next": "Done"}],
                    "ResultPath": "$.unreached", "Next": "Done"},
        "Done": {"Type": "Succeed"}
    }});
    let arn = start(&server, "http", &definition, json!({"order": 42}));
    let done = finish(&server, &arn, Duration::from_secs(10));
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    let out = output(&done);
    assert_eq!(out["status"], 200);
    assert_eq!(out["text"], "OK");
    assert_eq!(out["type"], "application/json");
    let seen = &out["seen"];
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["target"], "/json?q=a+b");
    assert_eq!(seen["headers"]["x-trace"], "t-1");
    assert_eq!(seen["headers"]["content-type"], "application/json");
    assert!(
        seen["headers"]["idempotency-key"]
            .as_str()
            .unwrap()
            .starts_with(&arn)
    );
    assert_eq!(seen["body"], r#"{"order":42}"#);
    assert_eq!(out["missing"]["Error"], "States.Http.StatusCode.404");
    let cause: Value = serde_json::from_str(out["missing"]["Cause"].as_str().unwrap()).unwrap();
    assert_eq!(cause["ResponseBody"], json!({"failed": 404}));
}

#[test]
fn http_tasks_cannot_leave_the_allowlist_and_socket_errors_are_named() {
    let upstream = Upstream::start();
    let mut config = TaskConfig::default();
    config.http.allow_loopback = false;
    config.http.allow = vec![format!("http://{}/allowed/", upstream.addr)];
    let server = server(config);
    // A closed port on loopback: not allowed either (loopback is off).
    for (name, url, error, words) in [
        (
            "denied",
            upstream.url("/json"),
            "States.TaskFailed",
            "does not allow",
        ),
        (
            "metadata",
            "http://169.254.169.254/latest/meta-data".to_owned(),
            "States.TaskFailed",
            "does not allow",
        ),
        (
            "sibling",
            upstream.url("/allowedx/y"),
            "States.TaskFailed",
            "does not allow",
        ),
        (
            "allowed",
            upstream.url("/allowed/status/503"),
            "States.Http.StatusCode.503",
            "503",
        ),
    ] {
        let definition = one_task(
            "arn:aws:states:::http:invoke",
            json!({"Parameters": {"ApiEndpoint": url, "Method": "GET"}}),
        );
        let arn = start(&server, name, &definition, json!({}));
        let done = finish(&server, &arn, Duration::from_secs(10));
        assert_eq!(done["error"], error, "{name}: {done}");
        assert!(
            done["cause"].as_str().unwrap().contains(words),
            "{name}: {done}"
        );
    }
    let targets: Vec<String> = upstream
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|s| s["target"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        targets,
        vec!["/allowed/status/503"],
        "only the allowed call went out"
    );

    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let server = self::server(TaskConfig::default());
    let definition = one_task(
        "arn:aws:states:::http:invoke",
        json!({"Parameters": {"ApiEndpoint": format!("http://{closed}/"), "Method": "GET"}}),
    );
    let arn = start(&server, "closed", &definition, json!({}));
    let done = finish(&server, &arn, Duration::from_secs(10));
    assert_eq!(done["error"], "States.Http.Socket", "{done}");
}

/// What the upstream recorder received, as request targets.
fn targets(upstream: &Upstream) -> Vec<String> {
    upstream
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|s| s["target"].as_str().unwrap().to_owned())
        .collect()
}

/// Runs `definition` on `server` to its end.
fn run_to_end(server: &Server, name: &str, definition: &Value) -> Value {
    let arn = start(server, name, definition, json!({}));
    finish(server, &arn, Duration::from_secs(10))
}

#[test]
fn http_tasks_cannot_pick_another_virtual_host_or_climb_out_of_the_prefix() {
    let upstream = Upstream::start();
    let mut config = TaskConfig::default();
    config.http.allow_loopback = false;
    config.http.allow = vec![format!("http://{}/api/", upstream.addr)];
    let server = server(config);
    let mut not_refused = Vec::new();
    for (name, parameters, error, words) in [
        (
            "vhost",
            json!({"ApiEndpoint": upstream.url("/api/x"), "Method": "GET",
                   "Headers": {"Host": "admin.internal"}}),
            "States.Runtime",
            "'Host' cannot be set",
        ),
        (
            "chunked",
            json!({"ApiEndpoint": upstream.url("/api/x"), "Method": "POST",
                   "Headers": {"Transfer-Encoding": "chunked"}, "RequestBody": "0\r\n\r\nGET /secret HTTP/1.1"}),
            "States.Runtime",
            "'Transfer-Encoding' cannot be set",
        ),
        (
            "proxy",
            json!({"ApiEndpoint": upstream.url("/api/x"), "Method": "GET",
                   "Headers": {"Proxy-Authorization": "Basic x"}}),
            "States.Runtime",
            "cannot be set",
        ),
        (
            "slash",
            json!({"ApiEndpoint": upstream.url("/api/..%2fsecret"), "Method": "GET"}),
            "States.TaskFailed",
            "encoded '/'",
        ),
        (
            "backslash",
            json!({"ApiEndpoint": upstream.url("/api/..%5Csecret"), "Method": "GET"}),
            "States.TaskFailed",
            "encoded '/' or '\\'",
        ),
        (
            "double",
            json!({"ApiEndpoint": upstream.url("/api/%252e%252e/secret"), "Method": "GET"}),
            "States.TaskFailed",
            "'..' segment",
        ),
        (
            "semicolon",
            json!({"ApiEndpoint": upstream.url("/api/..;/secret"), "Method": "GET"}),
            "States.TaskFailed",
            "'..' segment",
        ),
    ] {
        let definition = one_task(
            "arn:aws:states:::http:invoke",
            json!({"Parameters": parameters}),
        );
        let done = run_to_end(&server, name, &definition);
        // Every attack is tried before judging, so a failure lists them all.
        let refused = done["status"] == "FAILED"
            && done["error"] == error
            && done["cause"].as_str().is_some_and(|c| c.contains(words));
        if !refused {
            not_refused.push(format!("{name}: {done}"));
        }
    }
    assert_eq!(not_refused, Vec::<String>::new(), "attacks not refused");
    assert_eq!(targets(&upstream), Vec::<String>::new(), "nothing was sent");
    // Inside the prefix, with ordinary headers, the call goes out.
    let definition = one_task(
        "arn:aws:states:::http:invoke",
        json!({"Parameters": {"ApiEndpoint": upstream.url("/api/%41b"), "Method": "GET",
                              "Headers": {"X-Host": "fine"}}}),
    );
    let done = run_to_end(&server, "inside", &definition);
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(targets(&upstream), ["/api/%41b"]);
}

#[test]
fn a_connection_is_sent_only_to_the_urls_it_is_bound_to() {
    use stepline_runtime::tasks::config::{ConnectionAuth, ConnectionConfig};
    let upstream = Upstream::start();
    let mut config = TaskConfig::default();
    config.http.allow_loopback = false;
    config.http.allow = vec![
        format!("http://{}/crm/", upstream.addr),
        format!("http://{}/public/", upstream.addr),
    ];
    config.connections.insert(
        "crm".into(),
        ConnectionConfig {
            allow: vec![format!("http://{}/crm/", upstream.addr)],
            auth: ConnectionAuth::Bearer {
                token: "crm-secret".into(),
            },
        },
    );
    config.connections.insert(
        "legacy".into(),
        ConnectionConfig {
            allow: Vec::new(),
            auth: ConnectionAuth::Bearer {
                token: "legacy-secret".into(),
            },
        },
    );
    let server = server(config);
    let task = |connection: &str, path: &str| {
        json!({"Type": "Task", "Resource": "arn:aws:states:::http:invoke",
               "Parameters": {"ApiEndpoint": upstream.url(path), "Method": "GET",
                              "Authentication": {"ConnectionArn": format!("arn:aws:events:us-east-1:111111111111:connection/{connection}/0b1c")}},
               "End": true})
    };
    for (name, connection, path, words) in [
        (
            "elsewhere",
            "crm",
            "/public/collect",
            "the connection 'crm' may not be sent",
        ),
        ("climb", "crm", "/crm/..%2fpublic/collect", "does not allow"),
        (
            "unbound",
            "legacy",
            "/crm/x",
            "[tasks.connections.legacy] allow",
        ),
    ] {
        let definition = json!({"StartAt": "Work", "States": {"Work": task(connection, path)}});
        let done = run_to_end(&server, name, &definition);
        assert_eq!(done["status"], "FAILED", "{name}: {done}");
        assert_eq!(done["error"], "States.TaskFailed", "{name}: {done}");
        assert!(
            done["cause"].as_str().unwrap().contains(words),
            "{name}: {done}"
        );
        // TestState runs the task through the same door.
        let body = json!({"definition": task(connection, path).to_string(), "input": "{}",
                          "roleArn": "arn:aws:iam::111111111111:role/r"});
        let (status, tested) = server.call("TestState", &body.to_string());
        assert_eq!(status, 200, "{tested}");
        assert_eq!(tested["status"], "FAILED", "{name}: {tested}");
        assert!(
            tested["cause"].as_str().unwrap().contains(words),
            "{name}: {tested}"
        );
    }
    assert_eq!(targets(&upstream), Vec::<String>::new(), "nothing was sent");
    // Where it is bound, the credentials go.
    let definition = json!({"StartAt": "Work", "States": {"Work": task("crm", "/crm/x")}});
    let done = run_to_end(&server, "bound", &definition);
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    let seen = upstream.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0]["headers"]["authorization"], "Bearer crm-secret");
}

#[test]
fn a_definition_cannot_call_stepline_own_api_by_default() {
    let data = TempDir::new("own-api");
    let serve = crate::support::Serve::start_with(
        &crate::support::stepline_binary(),
        &data.path().join("data"),
        None,
    );
    let port = serve.addr.port();
    let definition = |url: String| {
        one_task(
            "arn:aws:states:::http:invoke",
            json!({"Parameters": {"ApiEndpoint": url, "Method": "GET"}}),
        )
        .to_string()
    };
    for (name, host) in [
        ("literal", "127.0.0.1".to_owned()),
        ("named", "localhost".to_owned()),
        ("unspecified", "0.0.0.0".to_owned()),
        ("v6", "[::1]".to_owned()),
        ("other-loopback", "127.0.0.2".to_owned()),
    ] {
        let url = format!("http://{host}:{port}/v1/state-machines");
        let (status, created) = serve.call(
            "CreateStateMachine",
            &json!({"name": name, "definition": definition(url),
                    "roleArn": "arn:aws:iam::111111111111:role/r"}),
        );
        assert_eq!(status, 200, "{created}");
        let (status, started) = serve.call(
            "StartExecution",
            &json!({"stateMachineArn": created["stateMachineArn"], "input": "{}"}),
        );
        assert_eq!(status, 200, "{started}");
        let arn = started["executionArn"].as_str().unwrap().to_owned();
        let deadline = Instant::now() + Duration::from_secs(10);
        let done = loop {
            let (_, d) = serve.call("DescribeExecution", &json!({"executionArn": arn}));
            if d["status"] != "RUNNING" {
                break d;
            }
            assert!(Instant::now() < deadline, "{d}");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(done["status"], "FAILED", "{name}: {done}");
        assert_eq!(done["error"], "States.TaskFailed", "{name}: {done}");
        assert!(
            done["cause"]
                .as_str()
                .unwrap()
                .contains("stepline's own address"),
            "{name}: {done}"
        );
    }
}

/// A process that hands its task token to the test through a file.
fn token_writer(dir: &TempDir) -> (TaskConfig, PathBuf) {
    let file = dir.path().join("token");
    let script = dir.write(
        "callback.sh",
        format!("cat > /dev/null\nprintf '%s' \"$STEPLINE_TASK_TOKEN\" > {}.tmp && mv {}.tmp {}\necho '{{\"queued\": true}}'\n", file.display(), file.display(), file.display()),
    );
    let mut config = TaskConfig::default();
    config.processes.insert("notify".into(), process(&script));
    (config, file)
}

fn read_token(file: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(token) = std::fs::read_to_string(file) {
            if !token.is_empty() {
                let _ = std::fs::remove_file(file);
                return token;
            }
        }
        assert!(Instant::now() < deadline, "no token was written");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn callbacks_answer_wait_for_task_token_tasks_once() {
    let dir = TempDir::new("callback");
    let (config, file) = token_writer(&dir);
    let server = server(config);
    let definition = one_task(
        "stepline:process:notify.waitForTaskToken",
        json!({"Parameters": {"token.$": "$$.Task.Token"}, "HeartbeatSeconds": 2, "TimeoutSeconds": 30}),
    );
    let arn = start(&server, "callback", &definition, json!({}));
    let token = read_token(&file);
    assert_eq!(token.len(), 43, "{token}");
    // Heartbeats keep it alive past HeartbeatSeconds.
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(900));
        let (status, body) = server.call(
            "SendTaskHeartbeat",
            &json!({"taskToken": token}).to_string(),
        );
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = server.call(
        "SendTaskSuccess",
        &json!({"taskToken": token, "output": "{\"approved\": true}"}).to_string(),
    );
    assert_eq!(status, 200, "{body}");
    let done = finish(&server, &arn, Duration::from_secs(5));
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(output(&done), json!({"approved": true}));
    let types = history_types(&server, &arn);
    let task_events: Vec<&str> = types
        .iter()
        .map(String::as_str)
        .filter(|t| t.starts_with("Task") && !t.contains("State"))
        .collect();
    assert_eq!(
        task_events,
        [
            "TaskScheduled",
            "TaskStarted",
            "TaskSubmitted",
            "TaskSucceeded"
        ]
    );
    // Used tokens, garbage and bad output are refused as AWS refuses them.
    for (action, body, kind) in [
        (
            "SendTaskSuccess",
            json!({"taskToken": token, "output": "{}"}),
            "TaskTimedOut",
        ),
        (
            "SendTaskFailure",
            json!({"taskToken": token}),
            "TaskTimedOut",
        ),
        (
            "SendTaskHeartbeat",
            json!({"taskToken": token}),
            "TaskTimedOut",
        ),
        (
            "SendTaskSuccess",
            json!({"taskToken": "garbage", "output": "{}"}),
            "InvalidToken",
        ),
        (
            "SendTaskSuccess",
            json!({"taskToken": token, "output": "{not json"}),
            "InvalidOutput",
        ),
    ] {
        let (status, answer) = server.call(action, &body.to_string());
        assert_eq!(
            (status, answer["__type"].as_str()),
            (400, Some(kind)),
            "{action} {body}: {answer}"
        );
    }
}

#[test]
fn callbacks_fail_tasks_and_silence_times_them_out() {
    let dir = TempDir::new("callback-fail");
    let (config, file) = token_writer(&dir);
    let server = server(config);
    let definition = one_task(
        "stepline:process:notify.waitForTaskToken",
        json!({"Parameters": {"token.$": "$$.Task.Token"}}),
    );
    let arn = start(&server, "rejected", &definition, json!({}));
    let token = read_token(&file);
    let (status, body) = server.call(
        "SendTaskFailure",
        &json!({"taskToken": token, "error": "Review.Rejected", "cause": "too expensive"})
            .to_string(),
    );
    assert_eq!(status, 200, "{body}");
    let done = finish(&server, &arn, Duration::from_secs(5));
    assert_eq!(
        (done["error"].as_str(), done["cause"].as_str()),
        (Some("Review.Rejected"), Some("too expensive"))
    );

    let silent = one_task(
        "stepline:process:notify.waitForTaskToken",
        json!({"Parameters": {"token.$": "$$.Task.Token"}, "HeartbeatSeconds": 1}),
    );
    let arn = start(&server, "silent", &silent, json!({}));
    let token = read_token(&file);
    let done = finish(&server, &arn, Duration::from_secs(10));
    assert_eq!(done["error"], "States.HeartbeatTimeout", "{done}");
    let (_, answer) = server.call(
        "SendTaskSuccess",
        &json!({"taskToken": token, "output": "{}"}).to_string(),
    );
    assert_eq!(answer["__type"], "TaskTimedOut");
}

#[test]
fn activity_workers_poll_take_and_answer() {
    let server = server(TaskConfig::default());
    let (status, created) = server.call("CreateActivity", &json!({"name": "review"}).to_string());
    assert_eq!(status, 200, "{created}");
    let activity = created["activityArn"].as_str().unwrap().to_owned();
    assert_eq!(
        activity,
        "arn:aws:states:us-east-1:111111111111:activity:review"
    );
    let (_, again) = server.call("CreateActivity", &json!({"name": "review"}).to_string());
    assert_eq!(
        again["activityArn"],
        json!(activity),
        "CreateActivity is idempotent"
    );
    let (_, listed) = server.call("ListActivities", "{}");
    assert_eq!(listed["activities"][0]["name"], "review");

    let definition = one_task(
        &activity,
        json!({"Parameters": {"doc.$": "$.doc"}, "HeartbeatSeconds": 30}),
    );
    let arn = start(&server, "reviewed", &definition, json!({"doc": "d-1"}));
    let (status, task) = server.call(
        "GetActivityTask",
        &json!({"activityArn": activity, "workerName": "worker-7"}).to_string(),
    );
    assert_eq!(status, 200, "{task}");
    let input: Value = serde_json::from_str(task["input"].as_str().unwrap()).unwrap();
    assert_eq!(input, json!({"doc": "d-1"}));
    let token = task["taskToken"].as_str().unwrap();
    let (status, _) = server.call(
        "SendTaskHeartbeat",
        &json!({"taskToken": token}).to_string(),
    );
    assert_eq!(status, 200);
    let (status, body) = server.call(
        "SendTaskSuccess",
        &json!({"taskToken": token, "output": "{\"ok\": 1}"}).to_string(),
    );
    assert_eq!(status, 200, "{body}");
    let done = finish(&server, &arn, Duration::from_secs(5));
    assert_eq!(output(&done), json!({"ok": 1}));
    let events = events(&server, &arn);
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert!(
        types
            .windows(3)
            .any(|w| w == ["ActivityScheduled", "ActivityStarted", "ActivitySucceeded"]),
        "{types:?}"
    );
    let started = events
        .iter()
        .find(|e| e["type"] == "ActivityStarted")
        .unwrap();
    assert_eq!(
        started["activityStartedEventDetails"]["workerName"],
        "worker-7"
    );
    let scheduled = events
        .iter()
        .find(|e| e["type"] == "ActivityScheduled")
        .unwrap();
    assert_eq!(
        scheduled["activityScheduledEventDetails"]["resource"],
        json!(activity)
    );
    assert_eq!(
        scheduled["activityScheduledEventDetails"]["heartbeatInSeconds"],
        30
    );

    // An activity that times out while nobody polls: ActivityTimedOut.
    let definition = one_task(&activity, json!({"TimeoutSeconds": 1}));
    let arn = start(&server, "unattended", &definition, json!({}));
    let done = finish(&server, &arn, Duration::from_secs(10));
    assert_eq!(done["error"], "States.Timeout");
    assert!(history_types(&server, &arn).contains(&"ActivityTimedOut".to_owned()));

    let (_, missing) = server.call(
        "DescribeActivity",
        &json!({"activityArn": "arn:aws:states:us-east-1:111111111111:activity:nope"}).to_string(),
    );
    assert_eq!(missing["__type"], "ActivityDoesNotExist");
    let (status, _) = server.call(
        "DeleteActivity",
        &json!({"activityArn": activity}).to_string(),
    );
    assert_eq!(status, 200);
}

#[test]
fn nested_executions_start_and_follow_children() {
    let server = server(TaskConfig::default());
    let child = json!({"StartAt": "Double", "States": {
        "Double": {"Type": "Pass", "Parameters": {"twice.$": "States.MathAdd($.n, $.n)"}, "End": true}}});
    let (_, created) = create(&server, "child", &child.to_string());
    let child_arn = created["stateMachineArn"].as_str().unwrap().to_owned();
    let slow = json!({"StartAt": "Sleep", "States": {"Sleep": {"Type": "Wait", "Seconds": 600, "End": true}}});
    let (_, created) = create(&server, "slow", &slow.to_string());
    let slow_arn = created["stateMachineArn"].as_str().unwrap().to_owned();

    let parent = json!({"StartAt": "Sync2", "States": {
        "Sync2": {"Type": "Task", "Resource": "arn:aws:states:::states:startExecution.sync:2",
                  "Parameters": {"StateMachineArn": child_arn, "Input": {"n.$": "$.n"}},
                  "ResultSelector": {"out.$": "$.Output", "status.$": "$.Status"},
                  "ResultPath": "$.sync2", "Next": "Sync"},
        "Sync": {"Type": "Task", "Resource": "arn:aws:states:::states:startExecution.sync",
                 "Parameters": {"StateMachineArn": child_arn, "Input": {"n": 5}, "Name": "named-child"},
                 "ResultSelector": {"out.$": "$.Output"},
                 "ResultPath": "$.sync", "Next": "Fire"},
        "Fire": {"Type": "Task", "Resource": "arn:aws:states:::states:startExecution",
                 "Parameters": {"StateMachineArn": child_arn, "Input": {"n": 1}},
                 "ResultPath": "$.fired", "End": true}
    }});
    let arn = start(&server, "parent", &parent, json!({"n": 21}));
    let done = finish(&server, &arn, Duration::from_secs(10));
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    let out = output(&done);
    assert_eq!(
        out["sync2"],
        json!({"out": {"twice": 42}, "status": "SUCCEEDED"})
    );
    assert_eq!(out["sync"]["out"], r#"{"twice":10}"#);
    assert!(
        out["fired"]["ExecutionArn"]
            .as_str()
            .unwrap()
            .contains(":execution:child:")
    );
    assert!(out["fired"]["StartDate"].is_number());
    let (_, listed) = server.call(
        "ListExecutions",
        &json!({"stateMachineArn": child_arn}).to_string(),
    );
    assert_eq!(listed["executions"].as_array().unwrap().len(), 3);

    // Stopping a parent stops the child it follows with .sync.
    let waiting = one_task(
        "arn:aws:states:::states:startExecution.sync:2",
        json!({"Parameters": {"StateMachineArn": slow_arn, "Name": "followed"}}),
    );
    let parent_arn = start(&server, "waiting-parent", &waiting, json!({}));
    let child_exec = slow_arn.replace(":stateMachine:", ":execution:") + ":followed";
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, _) = server.call(
            "DescribeExecution",
            &json!({"executionArn": child_exec}).to_string(),
        );
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the child never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, _) = server.call(
        "StopExecution",
        &json!({"executionArn": parent_arn}).to_string(),
    );
    assert_eq!(status, 200);
    assert_eq!(
        finish(&server, &parent_arn, Duration::from_secs(5))["status"],
        "ABORTED"
    );
    assert_eq!(
        finish(&server, &child_exec, Duration::from_secs(5))["status"],
        "ABORTED"
    );
}

#[test]
fn lambda_functions_map_to_processes_with_aws_output_shapes() {
    let dir = TempDir::new("lambda");
    let script = dir.write(
        "double.sh",
        "read n\necho \"{\\\"doubled\\\": $((n * 2))}\"\n",
    );
    let mut config = TaskConfig::default();
    config.processes.insert("double".into(), process(&script));
    config
        .lambda
        .insert("double".into(), LambdaConfig::Process("double".into()));
    let server = server(config);
    let definition = json!({"StartAt": "Direct", "States": {
        "Direct": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:111111111111:function:double",
                   "InputPath": "$.n", "ResultPath": "$.direct", "Next": "Invoke"},
        "Invoke": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                   "Parameters": {"FunctionName": "arn:aws:lambda:us-east-1:111111111111:function:double:$LATEST", "Payload.$": "$.n"},
                   "ResultPath": "$.invoked", "Next": "Unknown"},
        "Unknown": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                    "Parameters": {"FunctionName": "nope"},
                    "Catch": [{"ErrorEquals": ["Lambda.ResourceNotFoundException"], "ResultPath": "$.unknown", "Next": "Done"}],
                    "End": true},
        "Done": {"Type": "Succeed"}
    }});
    let arn = start(&server, "lambda", &definition, json!({"n": 4}));
    let done = finish(&server, &arn, Duration::from_secs(10));
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    let out = output(&done);
    assert_eq!(out["direct"], json!({"doubled": 8}));
    assert_eq!(out["invoked"]["Payload"], json!({"doubled": 8}));
    assert_eq!(out["invoked"]["StatusCode"], 200);
    assert_eq!(out["unknown"]["Error"], "Lambda.ResourceNotFoundException");
}

#[test]
fn mocked_test_cases_answer_tasks_as_step_functions_local_does() {
    let mocks = stepline_runtime::tasks::mock::MockConfig::parse(
        r#"{
          "StateMachines": {"orders": {"TestCases": {
            "Flaky": {"Charge": "FailTwice"},
            "Declined": {"Charge": "Declined"}}}},
          "MockedResponses": {
            "FailTwice": {"0-1": {"Throw": {"Error": "Flaky", "Cause": "again"}},
                          "2": {"Return": {"paid": true}}},
            "Declined": {"0": {"Throw": {"Error": "Card.Declined", "Cause": "insufficient funds"}}}}
        }"#,
    )
    .expect("mocks");
    let config = stepline_runtime::EngineConfig {
        mocks: Some(Arc::new(mocks)),
        ..Default::default()
    };
    let server = Server::start_configured(
        Arc::new(Invokers::new(TaskConfig::default()).expect("invokers")),
        config,
    );
    // The real endpoint is outside the allowlist: only a mock can answer.
    let definition = json!({"StartAt": "Charge", "States": {
        "Charge": {"Type": "Task", "Resource": "arn:aws:states:::http:invoke",
                   "Parameters": {"ApiEndpoint": "https://payments.example.com/charge", "Method": "POST"},
                   "Retry": [{"ErrorEquals": ["Flaky"], "IntervalSeconds": 1, "MaxAttempts": 3, "BackoffRate": 1}],
                   "End": true}}});
    let (_, created) = create(&server, "orders", &definition.to_string());
    let machine = created["stateMachineArn"].as_str().unwrap().to_owned();
    let run = |case: &str| -> Value {
        let request = json!({"stateMachineArn": format!("{machine}#{case}"), "input": "{}"});
        let (status, started) = server.call("StartExecution", &request.to_string());
        assert_eq!(status, 200, "{started}");
        finish(
            &server,
            started["executionArn"].as_str().unwrap(),
            Duration::from_secs(10),
        )
    };
    let flaky = run("Flaky");
    assert_eq!(flaky["status"], "SUCCEEDED", "{flaky}");
    assert_eq!(output(&flaky), json!({"paid": true}));
    let declined = run("Declined");
    assert_eq!(declined["error"], "Card.Declined", "{declined}");
    let (status, refused) = server.call(
        "StartExecution",
        &json!({"stateMachineArn": format!("{machine}#Nope")}).to_string(),
    );
    assert_eq!(
        (status, refused["__type"].as_str()),
        (400, Some("ValidationException")),
        "{refused}"
    );
    // Without a test case the task runs for real (and is refused here).
    let request = json!({"stateMachineArn": machine});
    let (_, started) = server.call("StartExecution", &request.to_string());
    let real = finish(
        &server,
        started["executionArn"].as_str().unwrap(),
        Duration::from_secs(10),
    );
    assert!(
        real["cause"].as_str().unwrap().contains("does not allow"),
        "{real}"
    );
}

/// An activity worker written with boto3 (the door AWS users' workers use):
/// it polls with get_activity_task, heartbeats, and answers.
#[test]
fn a_boto3_activity_worker_serves_an_activity() {
    if !crate::support::boto3_available() {
        return;
    }
    let server = server(TaskConfig::default());
    let script = r#"
import json, sys, time, boto3
from botocore.config import Config
sfn = boto3.client("stepfunctions", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="test", aws_secret_access_key="test",
                   config=Config(retries={"max_attempts": 1}, read_timeout=70))
activity = sfn.create_activity(name="resize")["activityArn"]
definition = {"StartAt": "Resize", "States": {"Resize": {
    "Type": "Task", "Resource": activity, "HeartbeatSeconds": 10, "End": True}}}
machine = sfn.create_state_machine(name="images", definition=json.dumps(definition),
                                   roleArn="arn:aws:iam::111111111111:role/r")["stateMachineArn"]
execution = sfn.start_execution(stateMachineArn=machine, input=json.dumps({"w": 640}))["executionArn"]
task = sfn.get_activity_task(activityArn=activity, workerName="boto-worker")
work = json.loads(task["input"])
sfn.send_task_heartbeat(taskToken=task["taskToken"])
sfn.send_task_success(taskToken=task["taskToken"], output=json.dumps({"w": work["w"] // 2}))
for _ in range(500):
    described = sfn.describe_execution(executionArn=execution)
    if described["status"] != "RUNNING":
        break
    time.sleep(0.01)
try:
    sfn.send_task_success(taskToken=task["taskToken"], output="{}")
    again = "accepted"
except sfn.exceptions.TaskTimedOut:
    again = "TaskTimedOut"
events = sfn.get_execution_history(executionArn=execution)["events"]
started = [e for e in events if e["type"] == "ActivityStarted"][0]
print(json.dumps({"status": described["status"], "output": json.loads(described["output"]),
                  "again": again, "worker": started["activityStartedEventDetails"]["workerName"]}))
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script, &format!("http://{}", server.addr)])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "boto3 worker failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: Value = serde_json::from_slice(&out.stdout).expect("the script prints JSON");
    assert_eq!(
        result,
        json!({"status": "SUCCEEDED", "output": {"w": 320}, "again": "TaskTimedOut", "worker": "boto-worker"})
    );
}

#[test]
fn http_connections_authenticate_as_configured() {
    let upstream = Upstream::start();
    let mut config = TaskConfig::default();
    use stepline_runtime::tasks::config::{ConnectionAuth, ConnectionConfig};
    let bound = |auth| ConnectionConfig {
        allow: vec![upstream.url("/json")],
        auth,
    };
    config.connections.insert(
        "keyed".into(),
        bound(ConnectionAuth::ApiKey {
            name: "x-api-key".into(),
            value: "k-123".into(),
        }),
    );
    config.connections.insert(
        "basic".into(),
        bound(ConnectionAuth::Basic {
            username: "ann".into(),
            password: "pw".into(),
        }),
    );
    config.connections.insert(
        "oauth".into(),
        bound(ConnectionAuth::Oauth {
            token_url: upstream.url("/token"),
            client_id: "id".into(),
            client_secret: "secret".into(),
            scope: Some("read".into()),
        }),
    );
    let server = server(config);
    let call = |name: &str| {
        json!({"Type": "Task", "Resource": "arn:aws:states:::http:invoke",
               "Parameters": {"ApiEndpoint": upstream.url("/json"), "Method": "GET",
                              "Authentication": {"ConnectionArn": format!("arn:aws:events:us-east-1:111111111111:connection/{name}/0b1c")}},
               "ResultSelector": {"headers.$": "$.ResponseBody.headers"}})
    };
    let mut keyed = call("keyed");
    keyed["ResultPath"] = json!("$.keyed");
    keyed["Next"] = json!("Basic");
    let mut basic = call("basic");
    basic["ResultPath"] = json!("$.basic");
    basic["Next"] = json!("OAuth");
    let mut oauth = call("oauth");
    oauth["ResultPath"] = json!("$.oauth");
    oauth["Next"] = json!("Unknown");
    let mut unknown = call("nope");
    unknown["End"] = json!(true);
    let definition = json!({"StartAt": "Keyed", "States": {
        "Keyed": keyed, "Basic": basic, "OAuth": oauth, "Unknown": unknown}});
    let arn = start(&server, "auth", &definition, json!({}));
    let done = finish(&server, &arn, Duration::from_secs(10));
    assert_eq!(done["status"], "FAILED", "{done}");
    assert!(
        done["cause"]
            .as_str()
            .unwrap()
            .contains("'nope' is not configured"),
        "{done}"
    );
    let events = events(&server, &arn);
    let outputs: Vec<Value> = events
        .iter()
        .filter(|e| e["type"] == "TaskStateExited")
        .map(|e| {
            serde_json::from_str(e["stateExitedEventDetails"]["output"].as_str().unwrap()).unwrap()
        })
        .collect();
    let last = outputs.last().expect("three calls succeeded");
    assert_eq!(last["keyed"]["headers"]["x-api-key"], "k-123");
    assert_eq!(last["basic"]["headers"]["authorization"], "Basic YW5uOnB3");
    assert_eq!(
        last["oauth"]["headers"]["authorization"],
        "Bearer token-for-id"
    );
    let token_request = upstream
        .seen
        .lock()
        .unwrap()
        .iter()
        .find(|s| s["target"] == "/token")
        .cloned()
        .expect("a token was fetched");
    assert_eq!(
        token_request["body"],
        "grant_type=client_credentials&client_id=id&client_secret=secret&scope=read"
    );
}

/// A server with one process task, `name`, that fails until a fix lands:
/// `script` gets the paths of the file each run appends to and of the file
/// whose presence is the fix.
struct UntilFixed {
    server: Server,
    runs: std::path::PathBuf,
    ready: std::path::PathBuf,
    _dir: TempDir,
}

impl UntilFixed {
    fn new(name: &str, script: impl Fn(&str, &str) -> String) -> Self {
        let dir = TempDir::new(name);
        let ready = dir.path().join("ready");
        let runs = dir.path().join("runs");
        let body = script(&runs.display().to_string(), &ready.display().to_string());
        let script = dir.write(&format!("{name}.sh"), body);
        let mut config = TaskConfig::default();
        config.processes.insert(name.into(), process(&script));
        Self {
            server: server(config),
            runs,
            ready,
            _dir: dir,
        }
    }

    /// Lands the fix, redrives `arn` and waits for its end.
    fn fix_and_redrive(&self, arn: &str) -> Value {
        std::fs::write(&self.ready, "").unwrap();
        let (status, body) = self.server.call(
            "RedriveExecution",
            &json!({"executionArn": arn}).to_string(),
        );
        assert_eq!(status, 200, "{body}");
        finish(&self.server, arn, Duration::from_secs(10))
    }
}

#[test]
fn redrive_restarts_a_failed_execution_from_the_state_that_failed() {
    let flaky = UntilFixed::new("flaky", |runs, ready| {
        format!(
            "cat > /dev/null\necho run >> {runs}\nif [ -e {ready} ]; then echo '{{\"fixed\": true}}'; else echo '{{\"error\": \"Not.Ready\"}}' >&2; exit 1; fi\n"
        )
    });
    let server = &flaky.server;
    let definition = json!({"StartAt": "Prepare", "States": {
        "Prepare": {"Type": "Pass", "Result": {"prepared": true}, "ResultPath": "$.prep", "Next": "Work"},
        "Work": {"Type": "Task", "Resource": "stepline:process:flaky", "ResultPath": "$.work", "Next": "Count"},
        "Count": {"Type": "Pass", "Parameters": {"redrives.$": "$$.Execution.RedriveCount", "work.$": "$.work"}, "End": true}
    }});
    let arn = start(server, "redriven", &definition, json!({"id": 7}));
    let failed = finish(server, &arn, Duration::from_secs(10));
    assert_eq!(failed["error"], "Not.Ready", "{failed}");
    let (_, refused) = server.call(
        "RedriveExecution",
        &json!({"executionArn": arn.replace("redriven:", "redriven:x")}).to_string(),
    );
    assert_eq!(refused["__type"], "ExecutionDoesNotExist", "{refused}");

    let done = flaky.fix_and_redrive(&arn);
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(done["redriveCount"], 1);
    assert_eq!(
        output(&done),
        json!({"redrives": 1, "work": {"fixed": true}})
    );
    let types = history_types(server, &arn);
    let count = |t: &str| types.iter().filter(|x| *x == t).count();
    assert_eq!(count("ExecutionRedriven"), 1, "{types:?}");
    assert_eq!(
        count("PassStateEntered"),
        2,
        "Prepare ran once, Count once: {types:?}"
    );
    assert_eq!(count("TaskStateEntered"), 2, "Work ran again: {types:?}");
    assert_eq!(
        std::fs::read_to_string(&flaky.runs)
            .unwrap()
            .lines()
            .count(),
        2
    );
    let (_, again) = server.call(
        "RedriveExecution",
        &json!({"executionArn": arn}).to_string(),
    );
    assert_eq!(again["__type"], "ExecutionNotRedrivable", "{again}");

    // An aborted execution resumes at the state it was stopped in.
    let waiting = json!({"StartAt": "Hold", "States": {
        "Hold": {"Type": "Wait", "Seconds": 1, "Next": "Done"}, "Done": {"Type": "Succeed"}}});
    let arn = start(server, "stopped", &waiting, json!({"k": 1}));
    let (status, _) = server.call("StopExecution", &json!({"executionArn": arn}).to_string());
    assert_eq!(status, 200);
    assert_eq!(
        finish(server, &arn, Duration::from_secs(5))["status"],
        "ABORTED"
    );
    let (status, body) = server.call(
        "RedriveExecution",
        &json!({"executionArn": arn}).to_string(),
    );
    assert_eq!(status, 200, "{body}");
    let done = finish(server, &arn, Duration::from_secs(10));
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(output(&done), json!({"k": 1}));
}

/// RedriveExecution over an inline Map: "reschedules and redrives only the
/// iterations and branches that failed or aborted". Item "b" fails until
/// the fix lands; the redrive runs "b" and the never-started "c", not "a".
#[test]
fn redrive_of_an_inline_map_reruns_only_the_iterations_that_did_not_succeed() {
    let item = UntilFixed::new("item", |runs, ready| {
        format!(
            "item=$(cat)\necho \"$item\" >> {runs}\nif [ \"$item\" = '\"b\"' ] && [ ! -e {ready} ]; then echo '{{\"error\": \"Not.Ready\"}}' >&2; exit 1; fi\necho \"{{\\\"done\\\": $item}}\"\n"
        )
    });
    let server = &item.server;
    let definition = json!({"StartAt": "Each", "States": {
        "Each": {"Type": "Map", "MaxConcurrency": 1, "End": true,
            "ItemProcessor": {"StartAt": "Work", "States": {
                "Work": {"Type": "Task", "Resource": "stepline:process:item", "End": true}}}}
    }});
    let arn = start(server, "redriven-map", &definition, json!(["a", "b", "c"]));
    let failed = finish(server, &arn, Duration::from_secs(10));
    assert_eq!(failed["status"], "FAILED", "{failed}");
    let done = item.fix_and_redrive(&arn);
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(
        output(&done),
        json!([{"done": "a"}, {"done": "b"}, {"done": "c"}])
    );
    let ran = std::fs::read_to_string(&item.runs).unwrap();
    assert_eq!(
        ran.lines().collect::<Vec<_>>(),
        ["\"a\"", "\"b\"", "\"b\"", "\"c\""]
    );
    let types = history_types(server, &arn);
    let redriven = types.iter().position(|t| t == "ExecutionRedriven").unwrap();
    let started_after = types[redriven..]
        .iter()
        .filter(|t| *t == "MapIterationStarted")
        .count();
    assert_eq!(started_after, 2, "{types:?}");
}

//! The AWS Step Functions JSON 1.0 protocol on a real server bound to a
//! loopback port: raw HTTP requests for the protocol's edges, and boto3,
//! the AWS SDK for Python, for the door AWS users actually use.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use stepline_runtime::{Engine, EngineConfig, TaskCall, TaskFuture, TaskRunner, WallClock};
use stepline_store::MemoryStore;

/// Tasks answer with their input under "echo".
struct Echo;

impl TaskRunner for Echo {
    fn run(&self, call: TaskCall) -> TaskFuture {
        Box::pin(async move { Ok(json!({"echo": call.request.input})) })
    }
}

/// A server on 127.0.0.1:0, stopped when dropped.
pub struct Server {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    pub fn start() -> Self {
        Self::start_with(Arc::new(Echo))
    }

    /// A server whose tasks go to `runner`.
    pub fn start_with(runner: Arc<dyn TaskRunner>) -> Self {
        Self::start_configured(runner, EngineConfig::default())
    }

    /// A server with its own engine configuration.
    pub fn start_configured(runner: Arc<dyn TaskRunner>, config: EngineConfig) -> Self {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let engine = Engine::open(
                    Arc::new(MemoryStore::new()),
                    runner,
                    Arc::new(WallClock),
                    config,
                )
                .expect("engine");
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                addr_tx
                    .send(listener.local_addr().expect("addr"))
                    .expect("send addr");
                stepline::http::serve(listener, engine, async {
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

    /// One AWS JSON call: the HTTP status and the parsed body.
    pub fn call(&self, action: &str, body: &str) -> (u16, Value) {
        call_raw(self.addr, action, body)
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

/// One AWS JSON call to `addr`: the HTTP status and the parsed body.
pub fn call_raw(addr: SocketAddr, action: &str, body: &str) -> (u16, Value) {
    try_call_raw(addr, action, body).expect("the server answers")
}

/// `call_raw` for a server that may be gone (the crash tests kill it):
/// an error when it cannot be reached or closes without an answer.
pub fn try_call_raw(addr: SocketAddr, action: &str, body: &str) -> std::io::Result<(u16, Value)> {
    try_call_waiting(addr, action, body, Duration::from_secs(10))
}

/// `try_call_raw` waiting up to `wait` for the answer (a worker's
/// GetActivityTask polls for up to a minute).
pub fn try_call_waiting(
    addr: SocketAddr,
    action: &str,
    body: &str,
    wait: Duration,
) -> std::io::Result<(u16, Value)> {
    let (status, text) = try_raw(
        addr,
        &[("X-Amz-Target", &format!("AWSStepFunctions.{action}"))],
        body.as_bytes(),
        wait,
    )?;
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((status, value))
}

/// A raw HTTP/1.1 POST to `/`; returns the status and the body.
fn raw(addr: SocketAddr, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    try_raw(addr, headers, body, Duration::from_secs(10)).expect("the server answers")
}

fn try_raw(
    addr: SocketAddr,
    headers: &[(&str, &str)],
    body: &[u8],
    wait: Duration,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(wait))?;
    let mut request = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    let _ = stream.write_all(body);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let Some(status) = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()) else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the connection closed without an HTTP answer",
        ));
    };
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    Ok((status, body))
}

const FLOW: &str = r#"{"StartAt": "Work", "States": {
  "Work": {"Type": "Task", "Resource": "stepline:process:echo", "ResultPath": "$.work", "Next": "Done"},
  "Done": {"Type": "Succeed"}}}"#;

pub fn create(server: &Server, name: &str, definition: &str) -> (u16, Value) {
    let body = json!({"name": name, "definition": definition, "roleArn": "arn:aws:iam::111111111111:role/r"});
    server.call("CreateStateMachine", &body.to_string())
}

pub fn wait_until_done(server: &Server, arn: &str) -> Value {
    for _ in 0..500 {
        let (status, described) = server.call(
            "DescribeExecution",
            &json!({"executionArn": arn}).to_string(),
        );
        assert_eq!(status, 200, "{described}");
        if described["status"] != "RUNNING" {
            return described;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("{arn} did not finish");
}

#[test]
fn a_state_machine_runs_through_the_aws_protocol() {
    let server = Server::start();
    let (status, created) = create(&server, "flow", FLOW);
    assert_eq!(status, 200, "{created}");
    let machine = created["stateMachineArn"].as_str().expect("arn").to_owned();
    assert_eq!(
        machine,
        "arn:aws:states:us-east-1:111111111111:stateMachine:flow"
    );
    assert!(created["creationDate"].is_number());

    let start = json!({"stateMachineArn": machine, "name": "e1", "input": "{\"n\": 1}"});
    let (status, started) = server.call("StartExecution", &start.to_string());
    assert_eq!(status, 200, "{started}");
    let arn = started["executionArn"].as_str().expect("arn").to_owned();
    let done = wait_until_done(&server, &arn);
    assert_eq!(done["status"], "SUCCEEDED");
    let output: Value =
        serde_json::from_str(done["output"].as_str().expect("output")).expect("json");
    assert_eq!(output, json!({"n": 1, "work": {"echo": {"n": 1}}}));

    let (_, history) = server.call(
        "GetExecutionHistory",
        &json!({"executionArn": arn}).to_string(),
    );
    let types: Vec<&str> = history["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["type"].as_str().expect("type"))
        .collect();
    assert_eq!(types.first(), Some(&"ExecutionStarted"));
    assert_eq!(types.last(), Some(&"ExecutionSucceeded"));
    assert!(
        types.contains(&"TaskScheduled") && types.contains(&"TaskSucceeded"),
        "{types:?}"
    );
    let (_, reversed) = server.call(
        "GetExecutionHistory",
        &json!({"executionArn": arn, "reverseOrder": true}).to_string(),
    );
    assert_eq!(reversed["events"][0]["type"], "ExecutionSucceeded");

    let (_, listed) = server.call(
        "ListExecutions",
        &json!({"stateMachineArn": machine}).to_string(),
    );
    assert_eq!(listed["executions"][0]["name"], "e1");
    let (_, machines) = server.call("ListStateMachines", "{}");
    assert_eq!(machines["stateMachines"][0]["name"], "flow");
    let (_, described) = server.call(
        "DescribeStateMachine",
        &json!({"stateMachineArn": machine}).to_string(),
    );
    assert_eq!(described["definition"], FLOW);
    assert_eq!(described["status"], "ACTIVE");
}

#[test]
fn errors_have_aws_names_and_the_server_keeps_serving() {
    let server = Server::start();
    let check = |(status, body): (u16, Value), kind: &str| {
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["__type"], kind, "{body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
    };
    check(
        create(&server, "bad", r#"{"StartAt": "A", "States": {}}"#),
        "InvalidDefinition",
    );
    let (_, invalid) = create(
        &server,
        "bad",
        "{\n  \"StartAt\": \"A\",\n  \"States\": {}\n}",
    );
    let message = invalid["message"].as_str().expect("message");
    assert!(
        message.contains("MISSING_TRANSITION_TARGET") && message.contains("line 2, column 14"),
        "{message}"
    );
    check(create(&server, "has space", FLOW), "InvalidName");
    assert_eq!(create(&server, "flow", FLOW).0, 200);
    check(create(&server, "flow", FLOW), "StateMachineAlreadyExists");
    check(
        server.call("DescribeExecution", r#"{"executionArn": "nope"}"#),
        "InvalidArn",
    );
    check(
        server.call(
            "DescribeExecution",
            r#"{"executionArn": "arn:aws:states:us-east-1:111111111111:execution:flow:none"}"#,
        ),
        "ExecutionDoesNotExist",
    );
    check(
        server.call("DescribeExecution", "{}"),
        "ValidationException",
    );
    check(server.call("StartExecution", r#"{"stateMachineArn": "arn:aws:states:us-east-1:111111111111:stateMachine:flow", "input": "{oops"}"#), "InvalidExecutionInput");
    check(
        server.call("NoSuchAction", "{}"),
        "UnknownOperationException",
    );
    check(
        server.call("DescribeExecution", "{not json"),
        "SerializationException",
    );
    let (status, body) = raw(server.addr, &[], b"{}");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("UnknownOperationException"), "{body}");
    // An oversized body is refused without reading it all.
    let big = vec![b' '; 5 * 1024 * 1024];
    let (status, _) = raw(
        server.addr,
        &[("X-Amz-Target", "AWSStepFunctions.ListStateMachines")],
        &big,
    );
    assert_eq!(status, 413);
    // Still serving.
    let (status, _) = server.call("ListStateMachines", "{}");
    assert_eq!(status, 200);
    // The same name with the same input while open returns the same
    // execution; another input is ExecutionAlreadyExists.
    let machine = "arn:aws:states:us-east-1:111111111111:stateMachine:flow";
    let first = server.call(
        "StartExecution",
        &json!({"stateMachineArn": machine, "name": "x", "input": "{}"}).to_string(),
    );
    assert_eq!(first.0, 200);
    let arn = first.1["executionArn"].as_str().expect("arn").to_owned();
    wait_until_done(&server, &arn);
    check(
        server.call(
            "StartExecution",
            &json!({"stateMachineArn": machine, "name": "x", "input": "{\"other\": 1}"})
                .to_string(),
        ),
        "ExecutionAlreadyExists",
    );
}

/// boto3, pointed at the server with `endpoint_url`, runs a whole
/// lifecycle unchanged. Skipped (loudly) where boto3 is not installed,
/// unless STEPLINE_REQUIRE_AWS_CLIENTS is set, as .ci/run does after
/// installing it.
#[test]
fn boto3_works_unchanged() {
    if !crate::support::boto3_available() {
        return;
    }
    let server = Server::start();
    let script = r#"
import json, sys, time, boto3
from botocore.config import Config
sfn = boto3.client("stepfunctions", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="test", aws_secret_access_key="test",
                   config=Config(retries={"max_attempts": 1}))
definition = sys.argv[2]
created = sfn.create_state_machine(name="boto", definition=definition,
                                   roleArn="arn:aws:iam::111111111111:role/r")
arn = created["stateMachineArn"]
valid = sfn.validate_state_machine_definition(definition=definition)
started = sfn.start_execution(stateMachineArn=arn, name="b1", input=json.dumps({"n": 2}))
for _ in range(500):
    described = sfn.describe_execution(executionArn=started["executionArn"])
    if described["status"] != "RUNNING":
        break
    time.sleep(0.01)
events = sfn.get_execution_history(executionArn=started["executionArn"])["events"]
try:
    sfn.describe_execution(executionArn=arn.replace("stateMachine", "execution") + ":missing")
    missing = "no error"
except sfn.exceptions.ExecutionDoesNotExist as e:
    missing = "ExecutionDoesNotExist"
print(json.dumps({
    "arn": arn,
    "valid": valid["result"],
    "status": described["status"],
    "output": json.loads(described["output"]),
    "start_is_datetime": hasattr(described["startDate"], "year"),
    "types": [e["type"] for e in events],
    "missing": missing,
}))
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script, &format!("http://{}", server.addr), FLOW])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "boto3 script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: Value = serde_json::from_slice(&out.stdout).expect("the script prints JSON");
    assert_eq!(
        result["arn"],
        "arn:aws:states:us-east-1:111111111111:stateMachine:boto"
    );
    assert_eq!(result["valid"], "OK");
    assert_eq!(result["status"], "SUCCEEDED");
    assert_eq!(
        result["output"],
        json!({"n": 2, "work": {"echo": {"n": 2}}})
    );
    assert_eq!(result["start_is_datetime"], true);
    assert_eq!(result["types"][0], "ExecutionStarted");
    assert_eq!(result["missing"], "ExecutionDoesNotExist");
}

/// Whether the AWS CLI (v1, from PyPI) runs here. Without it a test is
/// skipped, like the boto3 one, unless STEPLINE_REQUIRE_AWS_CLIENTS is set.
pub(crate) fn aws_cli_available() -> bool {
    let has_cli = std::process::Command::new("aws")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_cli {
        assert!(
            std::env::var_os("STEPLINE_REQUIRE_AWS_CLIENTS").is_none(),
            "the AWS CLI is required (pip install awscli)"
        );
        eprintln!(
            "SKIPPED: the AWS CLI is not installed (pip install awscli); .ci/run installs it"
        );
    }
    has_cli
}

/// `aws stepfunctions --endpoint-url ENDPOINT --output json ARGS...` with
/// test credentials (and `env` on top): its JSON answer, or its stderr.
pub(crate) fn aws_cli(
    endpoint: &str,
    env: &[(&str, &str)],
    args: &[&str],
) -> Result<Value, String> {
    let out = std::process::Command::new("aws")
        .args([
            "stepfunctions",
            "--endpoint-url",
            endpoint,
            "--output",
            "json",
        ])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_PAGER", "")
        .envs(env.iter().copied())
        .output()
        .expect("aws runs");
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap_or(Value::Null))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The AWS CLI, pointed at the server with `--endpoint-url`, works
/// unchanged.
#[test]
fn the_aws_cli_works_unchanged() {
    if !aws_cli_available() {
        return;
    }
    let server = Server::start();
    let endpoint = format!("http://{}", server.addr);
    let aws = |args: &[&str]| -> Value {
        aws_cli(&endpoint, &[], args).unwrap_or_else(|e| panic!("aws {args:?} failed: {e}"))
    };
    let created = aws(&[
        "create-state-machine",
        "--name",
        "cli",
        "--definition",
        FLOW,
        "--role-arn",
        "arn:aws:iam::111111111111:role/r",
    ]);
    let machine = created["stateMachineArn"].as_str().expect("arn").to_owned();
    let started = aws(&[
        "start-execution",
        "--state-machine-arn",
        &machine,
        "--name",
        "c1",
        "--input",
        r#"{"n": 3}"#,
    ]);
    let arn = started["executionArn"].as_str().expect("arn").to_owned();
    let described = wait_until_done(&server, &arn);
    assert_eq!(described["status"], "SUCCEEDED");
    let via_cli = aws(&["describe-execution", "--execution-arn", &arn]);
    assert_eq!(via_cli["status"], "SUCCEEDED");
    let output: Value =
        serde_json::from_str(via_cli["output"].as_str().expect("output")).expect("json");
    assert_eq!(output, json!({"n": 3, "work": {"echo": {"n": 3}}}));
    let history = aws(&["get-execution-history", "--execution-arn", &arn]);
    assert_eq!(history["events"][0]["type"], "ExecutionStarted");
    let listed = aws(&["list-executions", "--state-machine-arn", &machine]);
    assert_eq!(listed["executions"][0]["name"], "c1");
}

/// TestState and StartSyncExecution with the AWS CLI. botocore sends
/// them to `sync-` + the endpoint's host (`sync-127.0.0.1`, which does not
/// resolve); `AWS_DISABLE_HOST_PREFIX_INJECTION=true`, or
/// `disable_host_prefix_injection = true` in the AWS config file, keeps the
/// endpoint as given (docs/api.md).
#[test]
fn the_aws_cli_reaches_test_state_and_sync_executions_without_the_host_prefix() {
    if !aws_cli_available() {
        return;
    }
    let server = Server::start();
    let endpoint = format!("http://{}", server.addr);
    let pass = r#"{"Type": "Pass", "Result": {"ok": true}, "ResultPath": "$.r", "End": true}"#;
    let test_state = ["test-state", "--definition", pass, "--input", r#"{"n": 1}"#];

    // The environment variable.
    let no_prefix = [("AWS_DISABLE_HOST_PREFIX_INJECTION", "true")];
    let tested = aws_cli(&endpoint, &no_prefix, &test_state).expect("test-state");
    assert_eq!(tested["status"], "SUCCEEDED", "{tested}");
    let output: Value =
        serde_json::from_str(tested["output"].as_str().expect("output")).expect("json");
    assert_eq!(output, json!({"n": 1, "r": {"ok": true}}));

    // The config-file key, for a profile.
    let tmp = crate::support::TempDir::new("awsconfig");
    let config = tmp.write(
        "config",
        "[default]\ndisable_host_prefix_injection = true\n",
    );
    let config = config.to_str().expect("a UTF-8 path");
    let from_file = [("AWS_CONFIG_FILE", config)];
    let created = aws_cli(
        &endpoint,
        &from_file,
        &[
            "create-state-machine",
            "--name",
            "quick-cli",
            "--type",
            "EXPRESS",
            "--definition",
            FLOW,
            "--role-arn",
            "arn:aws:iam::111111111111:role/r",
        ],
    )
    .expect("create-state-machine");
    let machine = created["stateMachineArn"].as_str().expect("arn");
    let done = aws_cli(
        &endpoint,
        &from_file,
        &[
            "start-sync-execution",
            "--state-machine-arn",
            machine,
            "--input",
            r#"{"n": 2}"#,
        ],
    )
    .expect("start-sync-execution");
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    let output: Value =
        serde_json::from_str(done["output"].as_str().expect("output")).expect("json");
    assert_eq!(output, json!({"n": 2, "work": {"echo": {"n": 2}}}));
}

/// maxResults and nextToken page through lists and histories; a token
/// that was altered, or used for another list, is InvalidToken.
#[test]
fn pagination_tokens_page_and_refuse_tampering() {
    let server = Server::start();
    assert_eq!(create(&server, "paged", FLOW).0, 200);
    let machine = "arn:aws:states:us-east-1:111111111111:stateMachine:paged";
    let mut arns = Vec::new();
    for i in 0..3 {
        let (_, started) = server.call(
            "StartExecution",
            &json!({"stateMachineArn": machine, "name": format!("p{i}")}).to_string(),
        );
        arns.push(started["executionArn"].as_str().expect("arn").to_owned());
    }
    for arn in &arns {
        wait_until_done(&server, arn);
    }
    let (_, first) = server.call(
        "ListExecutions",
        &json!({"stateMachineArn": machine, "maxResults": 2}).to_string(),
    );
    assert_eq!(first["executions"].as_array().map(Vec::len), Some(2));
    let token = first["nextToken"]
        .as_str()
        .expect("a next token")
        .to_owned();
    let (_, second) = server.call(
        "ListExecutions",
        &json!({"stateMachineArn": machine, "maxResults": 2, "nextToken": token}).to_string(),
    );
    assert_eq!(second["executions"].as_array().map(Vec::len), Some(1));
    assert!(second.get("nextToken").is_none(), "{second}");
    let mut names: Vec<String> = first["executions"]
        .as_array()
        .into_iter()
        .chain(second["executions"].as_array())
        .flatten()
        .map(|e| e["name"].as_str().expect("name").to_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["p0", "p1", "p2"]);
    // Tampered, or for another list: refused.
    let mut tampered = token.clone();
    tampered.insert(0, 'A');
    let (status, body) = server.call(
        "ListExecutions",
        &json!({"stateMachineArn": machine, "nextToken": tampered}).to_string(),
    );
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("InvalidToken")),
        "{body}"
    );
    let (status, body) = server.call(
        "ListStateMachines",
        &json!({"nextToken": token}).to_string(),
    );
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("InvalidToken")),
        "{body}"
    );
    // A history read three events at a time is the whole history.
    let (_, whole) = server.call(
        "GetExecutionHistory",
        &json!({"executionArn": arns[0]}).to_string(),
    );
    let mut paged = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let mut request = json!({"executionArn": arns[0], "maxResults": 3});
        if let Some(token) = &next {
            request["nextToken"] = json!(token);
        }
        let (status, page) = server.call("GetExecutionHistory", &request.to_string());
        assert_eq!(status, 200, "{page}");
        paged.extend(page["events"].as_array().expect("events").iter().cloned());
        match page["nextToken"].as_str() {
            Some(token) => next = Some(token.to_owned()),
            None => break,
        }
    }
    assert_eq!(Value::Array(paged), whole["events"]);
    let (status, body) = server.call(
        "GetExecutionHistory",
        &json!({"executionArn": arns[0], "maxResults": 5000}).to_string(),
    );
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("ValidationException")),
        "{body}"
    );
}

#[test]
fn start_sync_execution_runs_express_machines_to_their_end() {
    let server = Server::start();
    let express = |name: &str, definition: &str| {
        let body = json!({"name": name, "definition": definition, "type": "EXPRESS",
                          "roleArn": "arn:aws:iam::111111111111:role/r"});
        let (status, created) = server.call("CreateStateMachine", &body.to_string());
        assert_eq!(status, 200, "{created}");
        created["stateMachineArn"].as_str().expect("arn").to_owned()
    };
    let ok = express("quick", FLOW);
    let (status, done) = server.call(
        "StartSyncExecution",
        &json!({"stateMachineArn": ok, "name": "s1", "input": "{\"n\": 3}"}).to_string(),
    );
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["status"], "SUCCEEDED");
    let output: Value =
        serde_json::from_str(done["output"].as_str().expect("output")).expect("json");
    assert_eq!(output, json!({"n": 3, "work": {"echo": {"n": 3}}}));
    assert!(done["stopDate"].as_f64() >= done["startDate"].as_f64());
    assert!(done["billingDetails"]["billedDurationInMilliseconds"].is_number());
    // AWS's EXPRESS ARN: `express:MACHINE:NAME:ID`; a name may be used
    // again (AWS runs both), each execution with an id of its own.
    let express_arn = |arn: &Value| {
        let arn = arn.as_str().expect("arn");
        let parts: Vec<&str> = arn.split(':').collect();
        assert_eq!(parts.len(), 9, "{arn}");
        assert_eq!(parts[5..8], ["express", "quick", "s1"], "{arn}");
        assert_eq!(parts[8].len(), 36, "a UUID: {arn}");
        arn.to_owned()
    };
    let first = express_arn(&done["executionArn"]);
    let (status, again) = server.call(
        "StartExecution",
        &json!({"stateMachineArn": ok, "name": "s1", "input": "{\"n\": 4}"}).to_string(),
    );
    assert_eq!(status, 200, "{again}");
    let second = express_arn(&again["executionArn"]);
    assert_ne!(first, second);
    let described = wait_until_done(&server, &second);
    assert_eq!(
        (described["name"].as_str(), described["input"].as_str()),
        (Some("s1"), Some("{\"n\": 4}"))
    );
    let (status, described) = server.call(
        "DescribeExecution",
        &json!({"executionArn": first}).to_string(),
    );
    assert_eq!(
        (status, described["input"].as_str()),
        (200, Some("{\"n\": 3}")),
        "{described}"
    );

    let failing = express(
        "failing",
        r#"{"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Bad", "Cause": "worse"}}}"#,
    );
    let (status, failed) = server.call(
        "StartSyncExecution",
        &json!({"stateMachineArn": failing}).to_string(),
    );
    assert_eq!(status, 200, "a failed execution is still a 200: {failed}");
    assert_eq!(
        (
            failed["status"].as_str(),
            failed["error"].as_str(),
            failed["cause"].as_str()
        ),
        (Some("FAILED"), Some("Bad"), Some("worse"))
    );

    let (_, standard) = create(&server, "standard", FLOW);
    let (status, refused) = server.call(
        "StartSyncExecution",
        &json!({"stateMachineArn": standard["stateMachineArn"]}).to_string(),
    );
    assert_eq!(
        (status, refused["__type"].as_str()),
        (400, Some("StateMachineTypeNotSupported"))
    );
}

#[test]
fn tags_and_the_state_machine_of_an_execution() {
    let server = Server::start();
    let body = json!({"name": "tagged", "definition": FLOW, "roleArn": "arn:aws:iam::111111111111:role/r",
                      "tags": [{"key": "team", "value": "data"}]});
    let (status, created) = server.call("CreateStateMachine", &body.to_string());
    assert_eq!(status, 200, "{created}");
    let machine = created["stateMachineArn"].as_str().expect("arn").to_owned();
    let list = |arn: &str| {
        server.call(
            "ListTagsForResource",
            &json!({"resourceArn": arn}).to_string(),
        )
    };
    assert_eq!(
        list(&machine).1,
        json!({"tags": [{"key": "team", "value": "data"}]})
    );
    let tags = json!({"resourceArn": machine, "tags": [{"key": "env", "value": "prod"}, {"key": "team", "value": "ml"}]});
    assert_eq!(server.call("TagResource", &tags.to_string()).0, 200);
    assert_eq!(
        list(&machine).1,
        json!({"tags": [{"key": "env", "value": "prod"}, {"key": "team", "value": "ml"}]})
    );
    let untag = json!({"resourceArn": machine, "tagKeys": ["team"]});
    assert_eq!(server.call("UntagResource", &untag.to_string()).0, 200);
    assert_eq!(
        list(&machine).1,
        json!({"tags": [{"key": "env", "value": "prod"}]})
    );
    let missing = "arn:aws:states:us-east-1:111111111111:stateMachine:nope";
    assert_eq!(list(missing).1["__type"], "ResourceNotFound");
    let too_many: Vec<Value> = (0..51)
        .map(|i| json!({"key": format!("k{i}"), "value": "v"}))
        .collect();
    let (status, refused) = server.call(
        "TagResource",
        &json!({"resourceArn": machine, "tags": too_many}).to_string(),
    );
    assert_eq!(
        (status, refused["__type"].as_str()),
        (400, Some("TooManyTags"))
    );

    // The definition an execution runs, even after the machine changed.
    let (_, started) = server.call(
        "StartExecution",
        &json!({"stateMachineArn": machine, "input": "{}"}).to_string(),
    );
    let execution = started["executionArn"].as_str().expect("arn").to_owned();
    wait_until_done(&server, &execution);
    let changed = r#"{"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}"#;
    let (status, _) = server.call(
        "UpdateStateMachine",
        &json!({"stateMachineArn": machine, "definition": changed}).to_string(),
    );
    assert_eq!(status, 200);
    let (status, described) = server.call(
        "DescribeStateMachineForExecution",
        &json!({"executionArn": execution}).to_string(),
    );
    assert_eq!(status, 200, "{described}");
    assert_eq!(described["definition"], FLOW);
    assert_eq!(described["name"], "tagged");
}

#[test]
fn test_state_runs_one_state_with_mocks_catch_retry_and_choice() {
    let server = Server::start();
    let test = |definition: Value, input: Value, mock: Option<Value>| -> (u16, Value) {
        let mut body = json!({"definition": definition.to_string(), "input": input.to_string(),
                              "roleArn": "arn:aws:iam::111111111111:role/r"});
        if let Some(mock) = mock {
            body["mock"] = mock;
        }
        server.call("TestState", &body.to_string())
    };
    let (status, pass) = test(
        json!({"Type": "Pass", "Parameters": {"doubled.$": "States.MathAdd($.n, $.n)"}, "Next": "Later"}),
        json!({"n": 4}),
        None,
    );
    assert_eq!(status, 200, "{pass}");
    assert_eq!(
        (
            pass["status"].as_str(),
            pass["nextState"].as_str(),
            pass["output"].as_str()
        ),
        (Some("SUCCEEDED"), Some("Later"), Some(r#"{"doubled":8}"#))
    );
    let task = json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
        "ResultSelector": {"v.$": "$.Payload.v"}, "ResultPath": "$.res", "Next": "Ship",
        "Retry": [{"ErrorEquals": ["Flaky"], "MaxAttempts": 2}],
        "Catch": [{"ErrorEquals": ["Broken"], "ResultPath": "$.err", "Next": "Repair"}]});
    let (_, ok) = test(
        task.clone(),
        json!({"id": 1}),
        Some(json!({"result": "{\"Payload\": {\"v\": 5}}"})),
    );
    assert_eq!(ok["status"], "SUCCEEDED", "{ok}");
    assert_eq!(ok["nextState"], "Ship");
    assert_eq!(ok["output"], r#"{"id":1,"res":{"v":5}}"#);
    // INFO (the default) shows no inspection data, as AWS.
    assert!(ok.get("inspectionData").is_none(), "{ok}");
    let (_, retriable) = test(
        task.clone(),
        json!({}),
        Some(json!({"errorOutput": {"error": "Flaky", "cause": "try again"}})),
    );
    assert_eq!(
        (retriable["status"].as_str(), retriable["error"].as_str()),
        (Some("RETRIABLE"), Some("Flaky")),
        "{retriable}"
    );
    let (_, caught) = test(
        task,
        json!({}),
        Some(json!({"errorOutput": {"error": "Broken", "cause": "gears"}})),
    );
    assert_eq!(caught["status"], "CAUGHT_ERROR", "{caught}");
    assert_eq!(caught["nextState"], "Repair");
    assert_eq!(caught["error"], "Broken");
    assert_eq!(
        caught["output"],
        r#"{"err":{"Error":"Broken","Cause":"gears"}}"#
    );
    let (_, chosen) = test(
        json!({"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericGreaterThan": 3, "Next": "Big"}], "Default": "Small"}),
        json!({"n": 4}),
        None,
    );
    assert_eq!(chosen["nextState"], "Big", "{chosen}");
    let (_, failed) = test(
        json!({"Type": "Fail", "Error": "E", "Cause": "C"}),
        json!({}),
        None,
    );
    assert_eq!(
        (
            failed["status"].as_str(),
            failed["error"].as_str(),
            failed["cause"].as_str()
        ),
        (Some("FAILED"), Some("E"), Some("C"))
    );
    let (status, invalid) = test(json!({"Type": "Pass", "Next": 5}), json!({}), None);
    assert_eq!(
        (status, invalid["__type"].as_str()),
        (400, Some("InvalidDefinition")),
        "{invalid}"
    );
}

#[test]
fn versions_and_aliases_route_executions_to_fixed_revisions() {
    let server = Server::start();
    let pass = |v: &str| {
        json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": v, "End": true}}})
            .to_string()
    };
    let body = json!({"name": "routed", "definition": pass("one"), "publish": true,
                      "versionDescription": "first", "roleArn": "arn:aws:iam::111111111111:role/r"});
    let (status, created) = server.call("CreateStateMachine", &body.to_string());
    assert_eq!(status, 200, "{created}");
    let machine = created["stateMachineArn"].as_str().expect("arn").to_owned();
    assert_eq!(created["stateMachineVersionArn"], format!("{machine}:1"));
    let (_, updated) = server.call(
        "UpdateStateMachine",
        &json!({"stateMachineArn": machine, "definition": pass("two"), "publish": true})
            .to_string(),
    );
    assert_eq!(
        updated["stateMachineVersionArn"],
        format!("{machine}:2"),
        "{updated}"
    );
    let (_, again) = server.call(
        "PublishStateMachineVersion",
        &json!({"stateMachineArn": machine}).to_string(),
    );
    assert_eq!(
        again["stateMachineVersionArn"],
        format!("{machine}:2"),
        "same revision, same version"
    );
    let (_, listed) = server.call(
        "ListStateMachineVersions",
        &json!({"stateMachineArn": machine}).to_string(),
    );
    let versions: Vec<&str> = listed["stateMachineVersions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| v["stateMachineVersionArn"].as_str().expect("arn"))
        .collect();
    assert_eq!(versions, [format!("{machine}:2"), format!("{machine}:1")]);
    let (_, v1) = server.call(
        "DescribeStateMachine",
        &json!({"stateMachineArn": format!("{machine}:1")}).to_string(),
    );
    assert_eq!(
        (v1["definition"].as_str(), v1["description"].as_str()),
        (Some(pass("one").as_str()), Some("first"))
    );

    let routing =
        |v: u64| json!([{"stateMachineVersionArn": format!("{machine}:{v}"), "weight": 100}]);
    let (status, alias) = server.call(
        "CreateStateMachineAlias",
        &json!({"name": "prod", "routingConfiguration": routing(1)}).to_string(),
    );
    assert_eq!(status, 200, "{alias}");
    let prod = alias["stateMachineAliasArn"]
        .as_str()
        .expect("arn")
        .to_owned();
    assert_eq!(prod, format!("{machine}:prod"));
    let run = |target: &str| -> Value {
        let (status, started) = server.call(
            "StartExecution",
            &json!({"stateMachineArn": target}).to_string(),
        );
        assert_eq!(status, 200, "{started}");
        let done = wait_until_done(&server, started["executionArn"].as_str().expect("arn"));
        serde_json::from_str(done["output"].as_str().expect("output")).expect("json")
    };
    assert_eq!(run(&prod), json!("one"));
    assert_eq!(run(&format!("{machine}:2")), json!("two"));
    assert_eq!(run(&machine), json!("two"));
    let (_, conflict) = server.call(
        "DeleteStateMachineVersion",
        &json!({"stateMachineVersionArn": format!("{machine}:1")}).to_string(),
    );
    assert_eq!(conflict["__type"], "ConflictException", "{conflict}");
    let (status, _) = server.call(
        "UpdateStateMachineAlias",
        &json!({"stateMachineAliasArn": prod, "routingConfiguration": routing(2)}).to_string(),
    );
    assert_eq!(status, 200);
    assert_eq!(run(&prod), json!("two"));
    let (_, described) = server.call(
        "DescribeStateMachineAlias",
        &json!({"stateMachineAliasArn": prod}).to_string(),
    );
    assert_eq!(described["routingConfiguration"], routing(2));
    let (status, _) = server.call(
        "DeleteStateMachineVersion",
        &json!({"stateMachineVersionArn": format!("{machine}:1")}).to_string(),
    );
    assert_eq!(status, 200);
    let (_, bad) = server.call(
        "CreateStateMachineAlias",
        &json!({"name": "half", "routingConfiguration": [
            {"stateMachineVersionArn": format!("{machine}:2"), "weight": 50}]})
        .to_string(),
    );
    assert_eq!(bad["__type"], "ValidationException", "{bad}");
    let (_, missing) = server.call(
        "StartExecution",
        &json!({"stateMachineArn": format!("{machine}:staging")}).to_string(),
    );
    assert_eq!(missing["__type"], "ResourceNotFound", "{missing}");
    let (_, aliases) = server.call(
        "ListStateMachineAliases",
        &json!({"stateMachineArn": machine}).to_string(),
    );
    assert_eq!(
        aliases["stateMachineAliases"][0]["stateMachineAliasArn"],
        json!(prod)
    );
    assert_eq!(
        server
            .call(
                "DeleteStateMachineAlias",
                &json!({"stateMachineAliasArn": prod}).to_string()
            )
            .0,
        200
    );
}

#[test]
fn metrics_count_executions_transitions_tasks_and_flushes() {
    let server = Server::start();
    let (_, created) = create(&server, "counted", FLOW);
    let machine = created["stateMachineArn"].as_str().expect("arn").to_owned();
    for name in ["m1", "m2"] {
        let (_, started) = server.call(
            "StartExecution",
            &json!({"stateMachineArn": machine, "name": name}).to_string(),
        );
        wait_until_done(&server, started["executionArn"].as_str().expect("arn"));
    }
    let lines = [
        "stepline_executions_started_total{state_machine=\"counted\"} 2",
        "stepline_executions_finished_total{state_machine=\"counted\",status=\"SUCCEEDED\"} 2",
        "stepline_state_transitions_total 4",
        "stepline_task_duration_seconds_count{resource_type=\"stepline\"} 2",
        "stepline_open_executions 0",
    ];
    // An execution's end is counted once its last step is flushed, a
    // moment after DescribeExecution can show it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let text = loop {
        let reply = crate::rest::get(&server, "/metrics");
        assert_eq!(reply.status, 200);
        let missing = lines.iter().find(|line| !reply.body.contains(*line));
        match missing {
            None => break reply.body,
            Some(line) if std::time::Instant::now() > deadline => {
                panic!("{line} not in:\n{}", reply.body)
            }
            Some(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    };
    assert!(text.contains("# TYPE stepline_store_flush_seconds histogram"));
}

/// TestState's `inspectionLevel` (DEBUG: every data-flow stage as JSON
/// text), `variables` (in scope before the state; the state's Assign on
/// top) and `stateName` (one state of a whole state machine).
#[test]
fn test_state_inspects_variables_and_named_states() {
    let server = Server::start();
    let call = |body: Value| server.call("TestState", &body.to_string());
    let task = json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
        "InputPath": "$.order", "Parameters": {"id.$": "$.id", "limit.$": "$limit"},
        "ResultSelector": {"v.$": "$.Payload.v"}, "ResultPath": "$.res",
        "Assign": {"seen.$": "$.v"}, "OutputPath": "$.res", "End": true});
    let (status, debug) = call(json!({
        "definition": task.to_string(),
        "input": r#"{"order": {"id": 7}}"#,
        "inspectionLevel": "DEBUG",
        "variables": r#"{"limit": 3}"#,
        "mock": {"result": r#"{"Payload": {"v": 5}}"#},
    }));
    assert_eq!(status, 200, "{debug}");
    assert_eq!(debug["status"], "SUCCEEDED");
    assert_eq!(debug["output"], r#"{"v":5}"#);
    let data = &debug["inspectionData"];
    assert_eq!(data["input"], r#"{"order":{"id":7}}"#);
    assert_eq!(data["afterInputPath"], r#"{"id":7}"#);
    assert_eq!(data["afterParameters"], r#"{"id":7,"limit":3}"#);
    assert_eq!(data["result"], r#"{"Payload":{"v":5}}"#);
    assert_eq!(data["afterResultSelector"], r#"{"v":5}"#);
    assert_eq!(
        data["afterResultPath"],
        r#"{"order":{"id":7},"res":{"v":5}}"#
    );
    assert_eq!(data["variables"], r#"{"limit":3,"seen":5}"#);

    // A whole machine and the name of one of its states (JSONata at the top).
    let machine = json!({"QueryLanguage": "JSONata", "StartAt": "A", "States": {
        "A": {"Type": "Pass", "Next": "B"},
        "B": {"Type": "Pass", "Output": "{% $states.input.n * $k %}", "Next": "C"},
        "C": {"Type": "Succeed"}}});
    let (status, named) = call(json!({
        "definition": machine.to_string(),
        "stateName": "B",
        "input": r#"{"n": 4}"#,
        "variables": r#"{"k": 10}"#,
        "inspectionLevel": "TRACE",
    }));
    assert_eq!(status, 200, "{named}");
    assert_eq!(
        (
            named["status"].as_str(),
            named["output"].as_str(),
            named["nextState"].as_str()
        ),
        (Some("SUCCEEDED"), Some("40"), Some("C")),
        "{named}"
    );
    assert_eq!(named["inspectionData"]["input"], r#"{"n":4}"#);
    let (status, missing) = call(json!({"definition": machine.to_string(), "stateName": "Z"}));
    assert_eq!(
        (status, missing["__type"].as_str()),
        (400, Some("ValidationException")),
        "{missing}"
    );
    let (status, bad) = call(json!({"definition": task.to_string(), "variables": "[1]"}));
    assert_eq!(
        (status, bad["__type"].as_str()),
        (400, Some("ValidationException")),
        "{bad}"
    );
    let (status, level) = call(json!({"definition": task.to_string(), "inspectionLevel": "ALL"}));
    assert_eq!(
        (status, level["__type"].as_str()),
        (400, Some("ValidationException")),
        "{level}"
    );
}

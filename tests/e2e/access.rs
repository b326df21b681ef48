//! Access control and connection limits on the real `stepline serve`
//! configured by a stepline.toml: SigV4 checked against boto3 and the AWS
//! CLI signing for real with right and wrong keys, each AWS refusal made
//! by hand, bearer tokens on the REST API, the start-up warning, and the
//! limits that keep slow or greedy clients from starving the server.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::rest::http;
use crate::support::{Serve, TempDir, boto3_available, stepline_binary};

const KEY_ID: &str = "AKIASTEPLINETEST0001";
const SECRET: &str = "c2VjcmV0LWZvci1zdGVwbGluZS10ZXN0cw";
const TOKEN: &str = "rest-token-0123456789";

/// A server whose access key secret and token come from the environment,
/// as an operator would keep them out of the file.
fn secured(dir: &TempDir, extra: &str) -> Serve {
    let config = dir.write(
        "stepline.toml",
        format!(
            "[server]\nregion = \"eu-west-3\"\n{extra}\n[[server.access_keys]]\nid = \"{KEY_ID}\"\nsecret_env = \"TEST_SFN_SECRET\"\n\n[[server.tokens]]\ntoken_env = \"TEST_SFN_TOKEN\"\n"
        ),
    );
    Serve::start_with_env(
        &stepline_binary(),
        &dir.path().join("data"),
        Some(&config),
        &[("TEST_SFN_SECRET", SECRET), ("TEST_SFN_TOKEN", TOKEN)],
    )
}

fn aws_raw(addr: SocketAddr, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut all = vec![
        ("X-Amz-Target", "AWSStepFunctions.ListStateMachines"),
        ("Content-Type", "application/x-amz-json-1.0"),
    ];
    all.extend_from_slice(headers);
    let reply = http(addr, "POST", "/", &all, b"{}");
    let body = serde_json::from_str(&reply.body).unwrap_or(Value::String(reply.body));
    (reply.status, body)
}

/// boto3 signs for real: the right key works end to end; a wrong secret,
/// an unknown key and the wrong region are refused with AWS's types; a
/// body changed after botocore signed it is refused.
#[test]
fn boto3_with_right_and_wrong_keys() {
    if !boto3_available() {
        return;
    }
    let dir = TempDir::new("access-boto3");
    let server = secured(&dir, "");
    let script = r#"
import json, sys, boto3
from botocore.config import Config
endpoint = sys.argv[1]
def client(key, secret, region="eu-west-3"):
    return boto3.client("stepfunctions", endpoint_url=endpoint, region_name=region,
        aws_access_key_id=key, aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}, inject_host_prefix=False))
def error(call):
    try:
        call()
        return "no error"
    except Exception as e:
        return [e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]]
good = client(sys.argv[2], sys.argv[3])
created = good.create_state_machine(name="signed", roleArn="arn:aws:iam::111111111111:role/r",
    definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}), type="EXPRESS")
run = good.start_sync_execution(stateMachineArn=created["stateMachineArn"], input='{"a": 1}')
# botocore's own signer, then the body changed after signing.
import urllib.request, urllib.error
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
signed = AWSRequest(method="POST", url=endpoint + "/", data="{}", headers={
    "Content-Type": "application/x-amz-json-1.0",
    "X-Amz-Target": "AWSStepFunctions.ListStateMachines"})
SigV4Auth(Credentials(sys.argv[2], sys.argv[3]), "states", "eu-west-3").add_auth(signed)
def send(body):
    request = urllib.request.Request(endpoint + "/", data=body.encode(),
        headers=dict(signed.headers), method="POST")
    try:
        return [urllib.request.urlopen(request).status, "ok"]
    except urllib.error.HTTPError as e:
        return [e.code, json.loads(e.read())["__type"]]
print(json.dumps({
    "as_signed": send("{}"),
    "tampered": send('{"maxResults": 1}'),
    "status": run["status"],
    "output": json.loads(run["output"]),
    "listed": [m["name"] for m in good.list_state_machines()["stateMachines"]],
    "wrong_secret": error(lambda: client(sys.argv[2], "not-the-secret").list_state_machines()),
    "unknown_key": error(lambda: client("AKIANOTCONFIGURED000", sys.argv[3]).list_state_machines()),
    "wrong_region": error(lambda: client(sys.argv[2], sys.argv[3], "us-east-1").list_state_machines()),
}))
"#;
    let out = Command::new("python3")
        .args([
            "-c",
            script,
            &format!("http://{}", server.addr),
            KEY_ID,
            SECRET,
        ])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "boto3 script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(result["status"], "SUCCEEDED");
    assert_eq!(result["output"], json!({"a": 1}));
    assert_eq!(result["as_signed"], json!([200, "ok"]));
    assert_eq!(
        result["tampered"],
        json!([400, "InvalidSignatureException"])
    );
    assert_eq!(result["listed"], json!(["signed"]));
    assert_eq!(
        result["wrong_secret"],
        json!(["InvalidSignatureException", 400])
    );
    assert_eq!(
        result["unknown_key"],
        json!(["UnrecognizedClientException", 400])
    );
    assert_eq!(
        result["wrong_region"],
        json!(["InvalidSignatureException", 400])
    );
}

/// The AWS CLI signs for real too.
#[test]
fn the_aws_cli_with_right_and_wrong_keys() {
    let has_cli = Command::new("aws")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_cli {
        assert!(
            std::env::var_os("STEPLINE_REQUIRE_AWS_CLIENTS").is_none(),
            "the AWS CLI is required (pip install awscli)"
        );
        eprintln!("SKIPPED: the AWS CLI is not installed (pip install awscli)");
        return;
    }
    let dir = TempDir::new("access-cli");
    let server = secured(&dir, "");
    let endpoint = format!("http://{}", server.addr);
    let aws = |secret: &str| {
        Command::new("aws")
            .args([
                "stepfunctions",
                "list-activities",
                "--endpoint-url",
                &endpoint,
            ])
            .args(["--output", "json"])
            .env("AWS_ACCESS_KEY_ID", KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_DEFAULT_REGION", "eu-west-3")
            .env("AWS_MAX_ATTEMPTS", "1")
            .env("AWS_PAGER", "")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .output()
            .expect("aws runs")
    };
    let ok = aws(SECRET);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let listed: Value = serde_json::from_slice(&ok.stdout).expect("JSON");
    assert_eq!(listed["activities"], json!([]));
    let refused = aws("wrong");
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("(InvalidSignatureException)")
            && stderr.contains("The request signature we calculated does not match"),
        "{stderr}"
    );
}

/// Headers to send, the `__type` expected and words of its message.
type Refusal = (Vec<(&'static str, String)>, &'static str, &'static str);

/// Each refusal, made by hand: the type, the status and AWS's message.
#[test]
fn unsigned_and_malformed_aws_requests_are_refused_as_aws_does() {
    let dir = TempDir::new("access-raw");
    let server = secured(&dir, "");
    let addr = server.addr;
    let now = chrono::Utc::now();
    let date = now.format("%Y%m%dT%H%M%SZ").to_string();
    let day = &date[..8];
    let auth = |key: &str, day: &str, region: &str, service: &str| {
        format!(
            "AWS4-HMAC-SHA256 Credential={key}/{day}/{region}/{service}/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature={}",
            "0".repeat(64)
        )
    };
    let good_scope = auth(KEY_ID, day, "eu-west-3", "states");
    let old = (now - chrono::Duration::minutes(16))
        .format("%Y%m%dT%H%M%SZ")
        .to_string();
    let future = (now + chrono::Duration::minutes(16))
        .format("%Y%m%dT%H%M%SZ")
        .to_string();
    let cases: Vec<Refusal> = vec![
        (
            vec![],
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        ),
        (
            vec![("Authorization", "Bearer abc".into())],
            "IncompleteSignatureException",
            "missing equal-sign",
        ),
        (
            vec![
                (
                    "Authorization",
                    format!(
                        "AWS4-HMAC-SHA256 Credential={KEY_ID}/{day}/eu-west-3/states/aws4_request"
                    ),
                ),
                ("X-Amz-Date", date.clone()),
            ],
            "IncompleteSignatureException",
            "Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter.",
        ),
        (
            vec![("Authorization", good_scope.clone())],
            "IncompleteSignatureException",
            "requires existence of either a 'X-Amz-Date' or a 'Date' header",
        ),
        (
            vec![
                ("Authorization", good_scope.clone()),
                ("X-Amz-Date", "2026-11-22".into()),
            ],
            "IncompleteSignatureException",
            "Date must be in ISO-8601 'basic format'",
        ),
        (
            vec![
                ("Authorization", good_scope.replace("host;", "")),
                ("X-Amz-Date", date.clone()),
            ],
            "IncompleteSignatureException",
            "'Host' or ':authority' must be a 'SignedHeader'",
        ),
        (
            vec![
                ("Authorization", good_scope.replace(";x-amz-target", "")),
                ("X-Amz-Date", date.clone()),
            ],
            "IncompleteSignatureException",
            "'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization.",
        ),
        (
            vec![
                (
                    "Authorization",
                    auth("AKIANOTCONFIGURED000", day, "eu-west-3", "states"),
                ),
                ("X-Amz-Date", date.clone()),
            ],
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ),
        (
            vec![
                ("Authorization", auth(KEY_ID, day, "us-east-1", "states")),
                ("X-Amz-Date", date.clone()),
            ],
            "InvalidSignatureException",
            "Credential should be scoped to a valid region, not 'us-east-1'.",
        ),
        (
            vec![
                ("Authorization", auth(KEY_ID, day, "eu-west-3", "lambda")),
                ("X-Amz-Date", date.clone()),
            ],
            "InvalidSignatureException",
            "Credential should be scoped to correct service: 'states'.",
        ),
        (
            vec![
                (
                    "Authorization",
                    auth(KEY_ID, "20200101", "eu-west-3", "states"),
                ),
                ("X-Amz-Date", date.clone()),
            ],
            "InvalidSignatureException",
            "Date in Credential scope does not match YYYYMMDD",
        ),
        (
            vec![
                (
                    "Authorization",
                    auth(KEY_ID, &old[..8], "eu-west-3", "states"),
                ),
                ("X-Amz-Date", old.clone()),
            ],
            "InvalidSignatureException",
            "Signature expired:",
        ),
        (
            vec![
                (
                    "Authorization",
                    auth(KEY_ID, &future[..8], "eu-west-3", "states"),
                ),
                ("X-Amz-Date", future.clone()),
            ],
            "InvalidSignatureException",
            "Signature not yet current:",
        ),
        (
            vec![
                ("Authorization", good_scope.clone()),
                ("X-Amz-Date", date.clone()),
            ],
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided.",
        ),
    ];
    for (headers, kind, words) in cases {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let (status, body) = aws_raw(addr, &headers);
        assert_eq!(status, 400, "{headers:?}: {body}");
        assert_eq!(body["__type"], kind, "{headers:?}: {body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains(words), "{headers:?}: {message}");
    }
    // The server still answers, and nothing was created by the refusals.
    let health = http(addr, "GET", "/health", &[], b"");
    assert_eq!(health.status, 200);
}

/// REST requests need a configured bearer token; /health and webhooks do
/// not (webhooks carry their own HMAC).
#[test]
fn rest_requests_need_a_bearer_token() {
    let dir = TempDir::new("access-rest");
    let server = secured(&dir, "");
    let addr = server.addr;
    let bearer = format!("Bearer {TOKEN}");
    let none = http(addr, "GET", "/v1/state-machines", &[], b"");
    assert_eq!(none.status, 401, "{}", none.body);
    let body: Value = serde_json::from_str(&none.body).expect("JSON");
    assert_eq!(body["code"], "Unauthorized");
    assert!(
        none.headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("www-authenticate") && v.starts_with("Bearer"))
    );
    let wrong = http(
        addr,
        "GET",
        "/v1/state-machines",
        &[("Authorization", "Bearer rest-token-0123456788")],
        b"",
    );
    assert_eq!(wrong.status, 401);
    let ok = http(
        addr,
        "GET",
        "/v1/state-machines",
        &[("Authorization", &bearer)],
        b"",
    );
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(http(addr, "GET", "/metrics", &[], b"").status, 401);
    assert_eq!(
        http(addr, "GET", "/metrics", &[("Authorization", &bearer)], b"").status,
        200
    );
    assert_eq!(http(addr, "GET", "/health", &[], b"").status, 200);
    // Not 401: the hook's own checks answer (there is no such trigger).
    let hook = http(addr, "POST", "/v1/hooks/none", &[], b"{}");
    assert_eq!(hook.status, 404, "{}", hook.body);
    // The CLI client sends $STEPLINE_TOKEN; without it, one clear line.
    let endpoint = format!("http://{addr}");
    let listed = std::process::Command::new(crate::support::stepline_binary())
        .args(["machines", "list", "-o", "json", "--endpoint", &endpoint])
        .env("STEPLINE_TOKEN", TOKEN)
        .output()
        .expect("stepline runs");
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let refused = std::process::Command::new(crate::support::stepline_binary())
        .args(["machines", "list", "--endpoint", &endpoint])
        .env_remove("STEPLINE_TOKEN")
        .output()
        .expect("stepline runs");
    assert_eq!(refused.status.code(), Some(1));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("Unauthorized") || said.contains("401"),
        "{said}"
    );
    // A token is not an AWS signature.
    let (status, body) = aws_raw(addr, &[("Authorization", &bearer)]);
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("IncompleteSignatureException"))
    );
}

/// `stepline serve` on a non-loopback address without credentials warns;
/// with credentials it does not; a secret_env that is not set stops it.
#[test]
fn the_start_warns_about_open_non_loopback_servers() {
    let dir = TempDir::new("access-warn");
    let start = |config: Option<&std::path::Path>, env: &[(&str, &str)]| {
        let mut command = Command::new(stepline_binary());
        command
            .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
            .arg(dir.path().join("data"))
            .env_remove("TEST_SFN_SECRET")
            .env_remove("TEST_SFN_TOKEN");
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("serve starts");
        let mut first = [0u8; 1];
        // Wait for the first byte of "stepline listening ..." (or the end).
        let _ = child.stdout.take().expect("stdout").read(&mut first);
        let _ = child.kill();
        let out = child.wait_with_output().expect("output");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (_, open) = start(None, &[]);
    assert!(
        open.contains("warning: listening on 0.0.0.0:") && open.contains("without credentials"),
        "{open}"
    );
    let config = dir.write(
        "stepline.toml",
        format!(
            "[[server.access_keys]]\nid = \"{KEY_ID}\"\nsecret_env = \"TEST_SFN_SECRET\"\n\n[[server.tokens]]\ntoken = \"{TOKEN}\"\n"
        ),
    );
    let (_, closed) = start(Some(&config), &[("TEST_SFN_SECRET", SECRET)]);
    assert!(!closed.contains("warning"), "{closed}");
    let (code, unset) = start(Some(&config), &[]);
    assert_eq!(code, Some(2), "{unset}");
    assert!(
        unset.contains("the environment variable TEST_SFN_SECRET is not set"),
        "{unset}"
    );
}

/// Reads until the peer closes or `limit` passes; whether it closed and
/// what it sent.
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (bool, String) {
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buffer = [0u8; 4096];
    while start.elapsed() < limit {
        match stream.read(&mut buffer) {
            Ok(0) => return (true, String::from_utf8_lossy(&got).into_owned()),
            Ok(n) => got.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return (true, String::from_utf8_lossy(&got).into_owned());
            }
            Err(_) => {}
        }
    }
    (false, String::from_utf8_lossy(&got).into_owned())
}

/// Slow headers, idle connections, slow bodies and oversized heads are cut
/// off within the configured limits, and the server serves on.
#[test]
fn slow_and_oversized_requests_are_cut_off() {
    let dir = TempDir::new("limits-slow");
    let server = secured(
        &dir,
        "header_timeout_seconds = 1\nbody_timeout_seconds = 1\nmax_header_bytes = 8192\n",
    );
    let addr = server.addr;
    // Slowloris: a header line a little at a time, never finished.
    let mut slow = TcpStream::connect(addr).expect("connect");
    let start = Instant::now();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .expect("write");
    let mut closed = false;
    for _ in 0..30 {
        std::thread::sleep(Duration::from_millis(100));
        if slow.write_all(b"X-Slow: a\r\n").is_err() {
            closed = true;
            break;
        }
        let (gone, _) = read_until_closed(&mut slow, Duration::from_millis(1));
        if gone {
            closed = true;
            break;
        }
    }
    assert!(closed, "a slow head is cut off");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );

    // An idle kept-alive connection is closed too.
    let mut idle = TcpStream::connect(addr).expect("connect");
    let (gone, _) = read_until_closed(&mut idle, Duration::from_secs(3));
    assert!(gone, "an idle connection is closed");

    // A body that stops coming: 408 in each dialect's shape.
    let mut slow_body = TcpStream::connect(addr).expect("connect");
    slow_body
        .write_all(
            format!(
                "POST /v1/validate HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"a\":"
            )
            .as_bytes(),
        )
        .expect("write");
    let (_, answer) = read_until_closed(&mut slow_body, Duration::from_secs(4));
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"RequestTimeout\""), "{answer}");
    let mut slow_aws = TcpStream::connect(addr).expect("connect");
    slow_aws
        .write_all(format!("POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-amz-json-1.0\r\nX-Amz-Target: AWSStepFunctions.ListActivities\r\nContent-Length: 100\r\n\r\n{{").as_bytes())
        .expect("write");
    let (_, answer) = read_until_closed(&mut slow_aws, Duration::from_secs(4));
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("RequestTimeoutException"), "{answer}");

    // A head over max_header_bytes: 431.
    let big = "a".repeat(9000);
    let reply = http(addr, "GET", "/health", &[("X-Big", &big)], b"");
    assert_eq!(reply.status, 431);

    assert_eq!(http(addr, "GET", "/health", &[], b"").status, 200);
}

/// A connection from `source` (an address of the loopback range) to
/// `addr`: another client, as the server counts clients.
fn connect_from(source: &str, addr: SocketAddr) -> TcpStream {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let stream = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(format!("{source}:0").parse().expect("source"))
            .expect("bind the source address");
        socket.connect(addr).await.expect("connect")
    });
    let stream = stream.into_std().expect("std stream");
    stream.set_nonblocking(false).expect("blocking");
    stream
}

/// Past max_connections, a new connection takes the place of the oldest
/// one between requests; when every connection is in the middle of a
/// request, the new one is answered 503 at once (never left waiting in
/// the backlog, where a health probe would wait behind an attacker).
#[test]
fn connections_past_the_limit_take_an_idle_place_or_get_503() {
    let dir = TempDir::new("limits-conns");
    let server = secured(&dir, "max_connections = 2\nheader_timeout_seconds = 20\n");
    let addr = server.addr;
    let mut first = TcpStream::connect(addr).expect("connect");
    std::thread::sleep(Duration::from_millis(100));
    let _second = TcpStream::connect(addr).expect("connect");
    std::thread::sleep(Duration::from_millis(100));
    let health = format!("GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let mut third = TcpStream::connect(addr).expect("connect");
    third.write_all(health.as_bytes()).expect("write");
    let (closed, answer) = read_until_closed(&mut third, Duration::from_secs(2));
    assert!(closed && answer.starts_with("HTTP/1.1 200"), "{answer}");
    let (gone, _) = read_until_closed(&mut first, Duration::from_secs(2));
    assert!(gone, "the oldest idle connection made room");

    // Two requests whose bodies are still coming: both places are busy.
    let busy = || {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream
            .write_all(
                format!(
                    "POST /v1/validate HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
                )
                .as_bytes(),
            )
            .expect("write");
        std::thread::sleep(Duration::from_millis(200));
        stream
    };
    let _busy = (busy(), busy());
    let start = Instant::now();
    let mut refused = TcpStream::connect(addr).expect("connect");
    let _ = refused.write_all(health.as_bytes());
    let (closed, answer) = read_until_closed(&mut refused, Duration::from_secs(5));
    assert!(closed && answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

/// One client (one address) holds at most max_connections_per_client;
/// past it, its own oldest idle connection goes, and another client's
/// connections are untouched.
#[test]
fn one_client_holds_at_most_its_share() {
    let dir = TempDir::new("limits-client");
    let server = secured(
        &dir,
        "max_connections_per_client = 2\nheader_timeout_seconds = 20\n",
    );
    let addr = server.addr;
    let mut other = connect_from("127.0.0.2", addr);
    std::thread::sleep(Duration::from_millis(100));
    let mut oldest = connect_from("127.0.0.3", addr);
    std::thread::sleep(Duration::from_millis(100));
    let _next = connect_from("127.0.0.3", addr);
    std::thread::sleep(Duration::from_millis(100));
    let mut third = connect_from("127.0.0.3", addr);
    third
        .write_all(
            format!("GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .expect("write");
    let (_, answer) = read_until_closed(&mut third, Duration::from_secs(2));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let (gone, _) = read_until_closed(&mut oldest, Duration::from_secs(2));
    assert!(gone, "the client's own oldest connection made room");
    let (gone, _) = read_until_closed(&mut other, Duration::from_millis(500));
    assert!(!gone, "another client's connection was closed");
}

/// A raw request (the whole text, head and body); the status and body.
fn raw_request(addr: SocketAddr, request: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.write_all(request.as_bytes()).expect("write");
    let (_, answer) = read_until_closed(&mut stream, Duration::from_secs(10));
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

/// DNS rebinding: a request naming a host the server does not answer to
/// is refused (421) before anything else, in each dialect's shape; the
/// loopback names and the names in `[server] hosts` are served.
#[test]
fn a_foreign_host_is_refused() {
    let dir = TempDir::new("origin-host");
    let config = dir.write("stepline.toml", "[server]\nhosts = [\"stepline.test\"]\n");
    let server = Serve::start_with(&stepline_binary(), &dir.path().join("data"), Some(&config));
    let addr = server.addr;
    let port = addr.port();
    let get = |host: &str| {
        raw_request(
            addr,
            &format!(
                "GET /v1/state-machines HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
            ),
        )
    };
    let (status, body) = get("attacker.example");
    assert_eq!(status, 421, "{body}");
    let body: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(body["code"], "MisdirectedRequest");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("[server] hosts"),
        "{body}"
    );
    assert_eq!(get(&format!("attacker.example:{port}")).0, 421);
    assert_eq!(get(&format!("localhost:{}", port + 1)).0, 421);
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        "stepline.test".to_owned(),
        format!("stepline.test:{port}"),
    ] {
        assert_eq!(get(&host).0, 200, "{host}");
    }
    let aws = "POST / HTTP/1.1\r\nHost: attacker.example\r\nContent-Type: application/x-amz-json-1.0\r\nX-Amz-Target: AWSStepFunctions.ListStateMachines\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
    let (status, body) = raw_request(addr, aws);
    assert_eq!(status, 421, "{body}");
    assert!(body.contains("MisdirectedRequestException"), "{body}");
}

/// What a page on another site can send without a preflight (a form, a
/// text/plain or typeless body, an Origin that is not the server's) is
/// refused before it reaches a handler; curl-like requests are served.
#[test]
fn cross_site_writes_are_refused_and_plain_clients_served() {
    let dir = TempDir::new("origin-writes");
    let config = dir.write(
        "stepline.toml",
        "[server]\norigins = [\"https://tools.example.com\"]\n",
    );
    let server = Serve::start_with(&stepline_binary(), &dir.path().join("data"), Some(&config));
    let addr = server.addr;
    let definition = r#"{"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}"#;
    let create = |name: &str, headers: &str| {
        raw_request(
            addr,
            &format!(
                "POST /v1/state-machines?name={name} HTTP/1.1\r\nHost: {addr}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{definition}",
                definition.len()
            ),
        )
    };
    let json = "Content-Type: application/json\r\n";
    for (name, headers, status, code) in [
        ("typeless", String::new(), 415, "UnsupportedMediaType"),
        (
            "plain",
            "Content-Type: text/plain\r\n".into(),
            415,
            "UnsupportedMediaType",
        ),
        (
            "foreign",
            format!("{json}Origin: http://evil.example\r\n"),
            403,
            "CrossOriginRequestRefused",
        ),
        (
            "null-origin",
            format!("{json}Origin: null\r\n"),
            403,
            "CrossOriginRequestRefused",
        ),
        (
            "cross-site",
            format!("{json}Sec-Fetch-Site: cross-site\r\n"),
            403,
            "CrossOriginRequestRefused",
        ),
    ] {
        let (got, body) = create(name, &headers);
        assert_eq!(got, status, "{name}: {body}");
        assert!(body.contains(code), "{name}: {body}");
    }
    let listed =
        format!("{json}Origin: https://tools.example.com\r\nSec-Fetch-Site: cross-site\r\n");
    assert_eq!(create("listed", &listed).0, 201);
    let own = format!("{json}Origin: http://{addr}\r\nSec-Fetch-Site: same-origin\r\n");
    assert_eq!(create("own", &own).0, 201);
    assert_eq!(create("plain-json", json).0, 201);
    // curl -X POST with no body and no content type, as `stepline start`
    // without input sends it.
    let (status, body) = raw_request(
        addr,
        &format!(
            "POST /v1/state-machines/plain-json/executions?name=bare HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(status, 201, "{body}");
    // The same from a browser (it says where it comes from) is refused.
    let (status, body) = raw_request(
        addr,
        &format!(
            "POST /v1/state-machines/plain-json/executions?name=bare2 HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://{addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(status, 415, "{body}");
    let listed_machines = crate::rest::http(addr, "GET", "/v1/state-machines", &[], b"");
    let names: Vec<String> = listed_machines.json()["stateMachines"]
        .as_array()
        .expect("machines")
        .iter()
        .filter_map(|m| m["name"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(names, ["listed", "own", "plain-json"]);
    let executions = crate::rest::http(addr, "GET", "/v1/executions?machine=plain-json", &[], b"");
    assert_eq!(
        executions.json()["executions"].as_array().map(Vec::len),
        Some(1)
    );
}

/// On a server with credentials, a webhook without a secret is the one
/// door anyone could use: `stepline serve` refuses to start with one, and
/// the REST API refuses to create one, unless the operator opts in.
#[test]
fn unsigned_webhooks_need_an_opt_in_on_a_secured_server() {
    let dir = TempDir::new("access-webhooks");
    let hook =
        "[[triggers.define]]\nname = \"open-door\"\nkind = \"webhook\"\nstate_machine = \"m\"\n";
    let config = dir.write(
        "stepline.toml",
        format!(
            "[[server.access_keys]]\nid = \"{KEY_ID}\"\nsecret = \"{SECRET}\"\n\n[[server.tokens]]\ntoken = \"{TOKEN}\"\n\n{hook}"
        ),
    );
    let out = Command::new(stepline_binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::null())
        .output()
        .expect("serve runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("'open-door'") && stderr.contains("allow_unsigned_webhooks = true"),
        "{stderr}"
    );

    // Opted in, it starts and the hook works without a signature.
    let server = secured(&dir, &format!("allow_unsigned_webhooks = true\n\n{hook}"));
    drop(server);

    // Without the opt-in and without hooks in the file: the API refuses
    // an unsigned hook, and takes a signed one.
    let other = TempDir::new("access-webhooks-api");
    let server = secured(&other, "");
    let bearer = format!("Bearer {TOKEN}");
    let create = |body: &str| {
        http(
            server.addr,
            "POST",
            "/v1/triggers",
            &[("Authorization", &bearer)],
            body.as_bytes(),
        )
    };
    let refused = create(r#"{"name": "open", "kind": "webhook", "stateMachine": "m"}"#);
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused.body.contains("allow_unsigned_webhooks"),
        "{}",
        refused.body
    );
    let signed =
        create(r#"{"name": "signed", "kind": "webhook", "stateMachine": "m", "secret": "s3cret"}"#);
    assert_eq!(signed.status, 201, "{}", signed.body);
    let opted = TempDir::new("access-webhooks-opted");
    let server = secured(&opted, "allow_unsigned_webhooks = true\n");
    let created = http(
        server.addr,
        "POST",
        "/v1/triggers",
        &[("Authorization", &bearer)],
        br#"{"name": "open", "kind": "webhook", "stateMachine": "m"}"#,
    );
    assert_eq!(created.status, 201, "{}", created.body);
}

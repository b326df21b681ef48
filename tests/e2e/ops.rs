//! Operations, through the real `stepline serve` process: `/metrics` moves
//! with executions, tasks, timers and flushes; `/health` and `/ready`;
//! alerts reach a webhook receiver in this test (EventBridge JSON with its
//! signature, Slack text, a retry after a 500); a destination outside the
//! allowlist is refused when the config is loaded; JSON log lines carry
//! the execution ARN and state; process task output is kept per attempt,
//! bounded, and read over REST and with `stepline logs`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use stepline::triggers::hmac::{hex, hmac_sha256};

use crate::rest::http;
use crate::support::eventually;
use crate::support::{TempDir, stepline};

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_stepline-under-test"))
}

/// `stepline serve --log-format json` with its stderr in a file.
pub(crate) struct Serve {
    child: Child,
    pub(crate) addr: SocketAddr,
    pub(crate) log: PathBuf,
}

impl Serve {
    pub(crate) fn start(data: &Path, config: &Path, log: PathBuf) -> Self {
        let mut child = Command::new(binary())
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
            .args(["--log-level", "info,stepline_runtime=debug"])
            .arg("--data-dir")
            .arg(data)
            .arg("--config")
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("serve starts");
        let addr = crate::support::listening_address(&mut child, "http")
            .unwrap_or_else(|line| panic!("no address in {line:?}"));
        Self { child, addr, log }
    }

    pub(crate) fn get(&self, path: &str) -> (u16, String) {
        let reply = http(self.addr, "GET", path, &[], b"");
        (reply.status, reply.body)
    }

    pub(crate) fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let reply = http(self.addr, "POST", path, &[], body.to_string().as_bytes());
        (
            reply.status,
            serde_json::from_str(&reply.body).unwrap_or(Value::Null),
        )
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) path: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A webhook receiver: records every request; answers 500 to the first
/// `fail_first` requests on `/flaky`, 200 to everything else.
pub(crate) struct Receiver {
    pub(crate) addr: SocketAddr,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    pub(crate) fn start(fail_first: usize) -> Self {
        Self::start_at("127.0.0.1:0", fail_first)
    }

    /// A receiver on `addr` (a port a test chose before it listened).
    pub(crate) fn start_at(addr: &str, fail_first: usize) -> Self {
        let listener = TcpListener::bind(addr).expect("bind");
        let addr = listener.local_addr().expect("addr");
        let got = Arc::new(Mutex::new(Vec::new()));
        let failures = Arc::new(AtomicUsize::new(fail_first));
        let record = Arc::clone(&got);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (record, failures) = (Arc::clone(&record), Arc::clone(&failures));
                std::thread::spawn(move || answer(stream, &record, &failures));
            }
        });
        Self { addr, got }
    }

    pub(crate) fn on(&self, path: &str) -> Vec<Received> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }
}

fn answer(mut stream: TcpStream, record: &Mutex<Vec<Received>>, failures: &AtomicUsize) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((n, v)) = line.split_once(':') {
            headers.push((n.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let fail = path == "/flaky"
        && failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
    record.lock().unwrap().push(Received {
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let status = if fail {
        "500 Internal Server Error"
    } else {
        "200 OK"
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
}

/// The value of the metric line that starts with `series` (name and labels).
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// A process that writes ~110 KB on stderr, fails its first two attempts
/// (with some stdout) and succeeds on the third.
const FLAKY: &str = r#"#!/bin/sh
cat >/dev/null
i=0
while [ $i -lt 1200 ]; do
  echo "noise line $i of attempt $STEPLINE_ATTEMPT ..........................................." >&2
  i=$((i+1))
done
echo "attempt $STEPLINE_ATTEMPT ends" >&2
if [ "$STEPLINE_ATTEMPT" -lt 3 ]; then echo "partial output $STEPLINE_ATTEMPT"; exit 1; fi
echo '{"ok": true}'
"#;

const WORKS: &str = r#"{
  "StartAt": "Work",
  "States": {
    "Work": {"Type": "Task", "Resource": "stepline:process:flaky",
             "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 2, "BackoffRate": 1}],
             "Next": "Pause"},
    "Pause": {"Type": "Wait", "Seconds": 1, "Next": "Done"},
    "Done": {"Type": "Succeed"}
  }
}"#;

const FAILS: &str = r#"{"StartAt": "Boom", "States": {"Boom": {"Type": "Fail", "Error": "Bad", "Cause": "it broke"}}}"#;

fn wait_for_end(serve: &Serve, id: &str) -> Value {
    let mut described = Value::Null;
    eventually(&format!("{id} to end"), 30, || {
        let (_, body) = serve.get(&format!("/v1/executions/{id}"));
        described = serde_json::from_str(&body).unwrap_or(Value::Null);
        described["status"].as_str().is_some_and(|s| s != "RUNNING")
    });
    described
}

#[test]
fn metrics_alerts_logs_and_task_output_through_the_real_server() {
    let dir = TempDir::new("ops");
    let script = dir.write("flaky.sh", FLAKY);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let receiver = Receiver::start(1);
    let base = format!("http://{}", receiver.addr);
    let config = dir.write(
        "stepline.toml",
        format!(
            r#"
[tasks.processes.flaky]
command = "{script}"

[[alerts.webhooks]]
url = "{base}/flaky"
secret = "s3cret"
max_attempts = 3

[[alerts.webhooks]]
url = "{base}/slack"
format = "slack"
state_machines = ["fails"]

[[alerts.webhooks]]
url = "{base}/other"
state_machines = ["nobody"]
statuses = ["FAILED", "SUCCEEDED"]
"#,
            script = script.display()
        ),
    );
    let serve = Serve::start(
        &dir.path().join("data"),
        &config,
        dir.path().join("serve.log"),
    );

    assert_eq!(serve.get("/health"), (200, "ok\n".to_owned()));
    assert_eq!(serve.get("/ready"), (200, "ready\n".to_owned()));

    for (name, definition) in [("works", WORKS), ("fails", FAILS)] {
        let (status, body) = serve.post(
            "/v1/state-machines",
            &json!({"name": name, "definition": serde_json::from_str::<Value>(definition).unwrap()}),
        );
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = serve.post("/v1/state-machines/works/executions?name=run1", &json!({}));
    assert_eq!(status, 201, "{body}");
    // Retry delays and the Wait are timers: the queue depth shows them.
    let mut saw_timer = false;
    eventually("a pending timer in /metrics", 20, || {
        saw_timer = metric(&serve.get("/metrics").1, "stepline_timers_pending") >= Some(1.0);
        saw_timer
    });
    let (status, body) = serve.post("/v1/state-machines/fails/executions?name=bad1", &json!({}));
    assert_eq!(status, 201, "{body}");
    assert_eq!(wait_for_end(&serve, "works/run1")["status"], "SUCCEEDED");
    let failed = wait_for_end(&serve, "fails/bad1");
    assert_eq!(failed["status"], "FAILED");

    // Metrics moved (an execution is counted as ended when its loop
    // stops, a moment after its end is stored).
    eventually("both executions counted as ended", 10, || {
        metric(&serve.get("/metrics").1, "stepline_open_executions") == Some(0.0)
    });
    let (status, text) = serve.get("/metrics");
    assert_eq!(status, 200);
    for (series, value) in [
        (
            "stepline_executions_started_total{state_machine=\"works\"}",
            1.0,
        ),
        (
            "stepline_executions_finished_total{state_machine=\"works\",status=\"SUCCEEDED\"}",
            1.0,
        ),
        (
            "stepline_executions_finished_total{state_machine=\"fails\",status=\"FAILED\"}",
            1.0,
        ),
        (
            "stepline_task_duration_seconds_count{resource_type=\"stepline\"}",
            3.0,
        ),
        ("stepline_open_executions", 0.0),
        ("stepline_timers_pending", 0.0),
    ] {
        assert_eq!(metric(&text, series), Some(value), "{series} in:\n{text}");
    }
    // Work, Pause, Done and Boom at least (a retry re-enters no state).
    assert!(
        metric(&text, "stepline_state_transitions_total") >= Some(4.0),
        "{text}"
    );
    assert!(
        metric(&text, "stepline_store_flush_seconds_count") > Some(0.0),
        "{text}"
    );
    assert!(
        metric(
            &text,
            "stepline_task_duration_seconds_bucket{resource_type=\"stepline\",le=\"+Inf\"}"
        ) == Some(3.0),
        "{text}"
    );
    assert!(
        !text.contains("run1"),
        "no execution name in labels:\n{text}"
    );

    // Alerts: the failure, retried once after a 500, signed; Slack text;
    // nothing for the success, nothing for a webhook of another machine.
    eventually("two POSTs on /flaky", 20, || {
        receiver.on("/flaky").len() >= 2
    });
    eventually("a POST on /slack", 20, || !receiver.on("/slack").is_empty());
    std::thread::sleep(Duration::from_millis(300));
    let flaky = receiver.on("/flaky");
    assert_eq!(flaky.len(), 2, "one failure, one retry: {flaky:?}");
    assert_eq!(
        flaky[0].body, flaky[1].body,
        "the retry sends the same body"
    );
    let event: Value = serde_json::from_str(&flaky[1].body).expect("JSON");
    assert_eq!(
        event["detail-type"],
        "Step Functions Execution Status Change"
    );
    assert_eq!(event["source"], "aws.states");
    assert_eq!(event["detail"]["status"], "FAILED");
    assert_eq!(event["detail"]["executionArn"], failed["arn"]);
    assert_eq!(event["detail"]["error"], "Bad");
    assert_eq!(event["detail"]["cause"], "it broke");
    assert_eq!(event["resources"][0], failed["arn"]);
    let signature = format!(
        "sha256={}",
        hex(&hmac_sha256(b"s3cret", flaky[1].body.as_bytes()))
    );
    assert_eq!(
        flaky[1].header("x-stepline-signature"),
        Some(signature.as_str())
    );
    assert_eq!(flaky[1].header("content-type"), Some("application/json"));
    let slack = receiver.on("/slack");
    assert_eq!(slack.len(), 1);
    let text_payload: Value = serde_json::from_str(&slack[0].body).expect("JSON");
    let message = text_payload["text"].as_str().expect("text");
    assert!(
        message.starts_with("stepline: execution bad1 of fails FAILED: Bad (it broke)"),
        "{message}"
    );
    assert!(receiver.on("/other").is_empty());
    let (_, text) = serve.get("/metrics");
    assert_eq!(
        metric(&text, "stepline_alerts_total{outcome=\"delivered\"}"),
        Some(2.0),
        "{text}"
    );

    // Task output per attempt over REST: bounded, the end kept.
    let (status, body) = serve.get("/v1/executions/works/run1/logs");
    assert_eq!(status, 200, "{body}");
    let logs: Value = serde_json::from_str(&body).expect("JSON");
    let attempts = logs["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 3, "{body:.2000}");
    for (i, a) in attempts.iter().enumerate() {
        let n = i + 1;
        assert_eq!(a["stateName"], "Work");
        assert_eq!(a["attempt"], n);
        let stderr = a["stderr"].as_str().expect("stderr");
        assert!(stderr.len() <= 64 * 1024, "{} bytes", stderr.len());
        assert!(stderr.ends_with(&format!("attempt {n} ends\n")));
        assert!(!stderr.contains("noise line 0 "), "the start was dropped");
        assert_eq!(a["truncated"], true);
        if n < 3 {
            assert_eq!(a["outcome"], "FAILED");
            assert_eq!(a["error"], "States.TaskFailed");
            assert_eq!(a["stdout"], format!("partial output {n}\n"));
        } else {
            assert_eq!(a["outcome"], "SUCCEEDED");
            assert!(
                a.get("stdout").is_none(),
                "a success's stdout is its output"
            );
        }
    }
    let (status, _) = serve.get("/v1/executions/works/nope/logs");
    assert_eq!(status, 404);

    // The same through the CLI, human and JSON.
    let endpoint = format!("http://{}", serve.addr);
    let human = stepline(&["logs", "works/run1", "--endpoint", &endpoint]);
    assert_eq!(human.status, 0, "{}", human.stderr);
    assert!(
        human.stdout.contains("== Work attempt 1 (task "),
        "{:.500}",
        human.stdout
    );
    assert!(human.stdout.contains("FAILED States.TaskFailed"));
    assert!(human.stdout.contains("-- stdout\npartial output 2\n"));
    assert!(human.stdout.contains("attempt 3 ends\n"));
    let arn = failed["arn"]
        .as_str()
        .unwrap()
        .replace("fails:bad1", "works:run1");
    let as_json = stepline(&["logs", &arn, "--endpoint", &endpoint, "--output", "json"]);
    assert_eq!(as_json.status, 0, "{}", as_json.stderr);
    let parsed: Value = serde_json::from_str(&as_json.stdout).expect("JSON output");
    assert_eq!(parsed, logs);
    let missing = stepline(&["logs", "works/nope", "--endpoint", &endpoint]);
    assert_eq!(missing.status, 1);
    assert!(
        missing.stderr.contains("ExecutionDoesNotExist"),
        "{}",
        missing.stderr
    );

    // JSON logs: every line parses; lines about the execution name it and
    // its state.
    let log = std::fs::read_to_string(&serve.log).expect("log");
    let run_arn = failed["arn"]
        .as_str()
        .unwrap()
        .replace("fails:bad1", "works:run1");
    let mut invoked = 0;
    let mut entered = Vec::new();
    for line in log.lines() {
        let line: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let spans = line["spans"].as_array().cloned().unwrap_or_default();
        let about_run = spans.iter().any(|s| s["execution"] == run_arn.as_str());
        match line["fields"]["message"].as_str() {
            Some("task invoked") if about_run => {
                invoked += 1;
                assert!(spans.iter().any(|s| s["state"] == "Work"), "{line}");
            }
            Some("state entered") if about_run => {
                entered.push(
                    line["fields"]["state"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                );
            }
            _ => {}
        }
    }
    assert_eq!(invoked, 3, "{log:.3000}");
    assert_eq!(entered, ["Work", "Pause", "Done"], "{log:.3000}");
}

#[test]
fn an_alert_destination_outside_the_allowlists_is_refused_at_load() {
    let dir = TempDir::new("ops-refused");
    let config = dir.write(
        "stepline.toml",
        "[[alerts.webhooks]]\nurl = \"https://hooks.example.com/services/x\"\n",
    );
    let out = Command::new(binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(&config)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("alerts.webhooks[0].url: 'https://hooks.example.com/services/x' is not an allowed destination"),
        "{stderr}"
    );
    // Listed for alerts only, it is accepted.
    let allowed = dir.write(
        "allowed.toml",
        "[alerts]\nallow = [\"https://hooks.example.com/services/\"]\n\n[[alerts.webhooks]]\nurl = \"https://hooks.example.com/services/x\"\n",
    );
    assert!(stepline::config::load(&allowed).is_ok());
}

/// An alert still being retried when the server is killed is sent after
/// the restart (the end notice was stored with the end); once delivered,
/// a later restart does not send it again.
#[test]
fn an_alert_not_yet_delivered_survives_kill_9() {
    let dir = TempDir::new("ops-restart");
    let down = Receiver::start(usize::MAX);
    let up = Receiver::start(0);
    let config = |url: String| format!("[[alerts.webhooks]]\nurl = \"{url}\"\nmax_attempts = 20\n");
    let first = dir.write("first.toml", config(format!("http://{}/flaky", down.addr)));
    let second = dir.write("second.toml", config(format!("http://{}/hook", up.addr)));
    let data = dir.path().join("data");

    let serve = Serve::start(&data, &first, dir.path().join("first.log"));
    let (status, body) = serve.post(
        "/v1/state-machines",
        &json!({"name": "fails", "definition": serde_json::from_str::<Value>(FAILS).unwrap()}),
    );
    assert_eq!(status, 201, "{body}");
    serve.post("/v1/state-machines/fails/executions?name=bad1", &json!({}));
    eventually("a first (refused) attempt", 20, || {
        !down.on("/flaky").is_empty()
    });
    drop(serve); // SIGKILL

    let serve = Serve::start(&data, &second, dir.path().join("second.log"));
    eventually("the alert after the restart", 20, || {
        !up.on("/hook").is_empty()
    });
    let event: Value = serde_json::from_str(&up.on("/hook")[0].body).expect("JSON");
    assert_eq!(event["detail"]["name"], "bad1");
    assert_eq!(event["detail"]["status"], "FAILED");
    eventually("the delivery counted", 10, || {
        metric(
            &serve.get("/metrics").1,
            "stepline_alerts_total{outcome=\"delivered\"}",
        ) == Some(1.0)
    });
    // A graceful stop flushes the notice's removal: nothing is sent again.
    let stopped = Command::new("kill")
        .args(["-TERM", &serve.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(stopped.success());
    let mut serve = serve;
    let _ = serve.child.wait();
    let serve = Serve::start(&data, &second, dir.path().join("third.log"));
    assert_eq!(serve.get("/ready").0, 200);
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(up.on("/hook").len(), 1, "delivered once, not again");
}

/// The log lines of `serve` once its start line is written (lines reach
/// the file a few milliseconds after they are logged), as JSON.
fn log_lines(serve: &Serve) -> Vec<Value> {
    let read = || -> Vec<Value> {
        std::fs::read_to_string(&serve.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    eventually("the start's log line", 10, || {
        read()
            .iter()
            .any(|l| l["fields"]["message"] == "stepline started")
    });
    read()
}

/// One line at start says what the server runs with: the store, the state
/// machines, the processes, connections, triggers and alerts configured,
/// the executions resumed, and the address, which no other line repeats.
#[test]
fn the_start_is_summed_up_in_one_log_line() {
    let dir = TempDir::new("ops-start");
    let data = dir.path().join("data");
    let config = dir.write(
        "stepline.toml",
        r#"
[tasks.processes.echo]
command = "/bin/cat"

[tasks.processes.other]
command = "/bin/cat"

[tasks.connections.api]
allow = ["https://api.example.com/v1/"]
api_key = { name = "x-api-key", value = "change-me" }

[[triggers.define]]
name = "nightly"
kind = "schedule"
state_machine = "waits"
schedule = "cron(0 2 * * ? *)"
timezone = "Europe/Paris"

[[triggers.define]]
name = "paused"
kind = "schedule"
state_machine = "waits"
schedule = "rate(1 hour)"
enabled = false

[[alerts.webhooks]]
url = "http://127.0.0.1:9/alerts"
"#,
    );
    let serve = Serve::start(&data, &config, dir.path().join("first.log"));
    let waits =
        json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": true}}});
    let (status, body) = serve.post(
        "/v1/state-machines",
        &json!({"name": "waits", "definition": waits}),
    );
    assert_eq!(status, 201, "{body}");
    for name in ["one", "two"] {
        let (status, body) = serve.post(
            &format!("/v1/state-machines/waits/executions?name={name}"),
            &json!({}),
        );
        assert_eq!(status, 201, "{body}");
    }
    let first = log_lines(&serve);
    let started: Vec<&Value> = first
        .iter()
        .filter(|l| l["fields"]["message"] == "stepline started")
        .collect();
    assert_eq!(started.len(), 1, "{first:?}");
    assert_eq!(started[0]["fields"]["executions_resumed"], 0);
    drop(serve); // SIGKILL: both executions stay open

    let serve = Serve::start(&data, &config, dir.path().join("second.log"));
    let lines = log_lines(&serve);
    let started: Vec<&Value> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "stepline started")
        .collect();
    assert_eq!(started.len(), 1, "{lines:?}");
    let fields = &started[0]["fields"];
    let url = format!("http://{}", serve.addr);
    assert_eq!(
        fields,
        &json!({
            "message": "stepline started",
            "store": "sled",
            "data": data.display().to_string(),
            "state_machines": 1,
            "processes": 2,
            "connections": 1,
            "lambda_mappings": 0,
            "triggers": 2,
            "triggers_enabled": 1,
            "alert_webhooks": 1,
            "executions_resumed": 2,
            "listen": url,
        })
    );
    assert_eq!(started[0]["level"], "INFO");
    let naming = lines
        .iter()
        .filter(|l| l.to_string().contains(&serve.addr.to_string()))
        .count();
    assert_eq!(naming, 1, "the address is logged once: {lines:?}");

    // SIGHUP (systemctl reload) reloads the TLS files; without [tls] it is
    // logged and changes nothing: the server does not end.
    let hung_up = Command::new("kill")
        .args(["-HUP", &serve.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(hung_up.success());
    eventually("the SIGHUP logged", 10, || {
        std::fs::read_to_string(&serve.log)
            .unwrap_or_default()
            .contains("SIGHUP: nothing to reload")
    });
    assert_eq!(serve.get("/health").0, 200);
}

// ---------------------------------------------------------------------------
// Packaging: the Dockerfile and the systemd unit

/// The instruction lines of a Dockerfile, continuation lines joined.
fn dockerfile_instructions(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && current.is_empty()) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                if !current.trim().is_empty() {
                    out.push(current.trim().to_owned());
                }
                current.clear();
            }
        }
    }
    out
}

/// The Dockerfile as docs/operations.md describes it: two stages, the
/// runtime one small and run by a user who is not root, the data in the
/// /data volume, `serve --listen 0.0.0.0:8083`, and a health check on
/// /ready. The image is not built here (no container daemon, no access to
/// image registries); the health check's own command is run against a real
/// server.
#[test]
fn the_dockerfile_builds_a_small_non_root_image_with_a_health_check() {
    let text = std::fs::read_to_string(crate::support::repo_root().join("Dockerfile"))
        .expect("Dockerfile");
    let lines = dockerfile_instructions(&text);
    let from: Vec<&String> = lines.iter().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(from.len(), 2, "multi-stage: {from:?}");
    assert!(from[0].ends_with(" AS build"), "{from:?}");
    assert!(from[1].contains("-slim"), "a small runtime base: {from:?}");
    let runtime: Vec<&String> = lines.iter().skip_while(|l| *l != from[1]).collect();
    let has = |prefix: &str| runtime.iter().any(|l| l.starts_with(prefix));
    assert!(
        runtime.iter().any(|l| l.starts_with("USER ")
            && !l.starts_with("USER root")
            && !l.starts_with("USER 0")),
        "a user who is not root"
    );
    assert!(has("VOLUME [\"/data\"]"));
    assert!(has("COPY --from=build "));
    assert!(has("EXPOSE 8083"));
    let cmd = runtime.iter().find(|l| l.starts_with("CMD ")).expect("CMD");
    let cmd: Vec<String> = serde_json::from_str(&cmd["CMD ".len()..]).expect("CMD in exec form");
    assert_eq!(cmd[..3], ["serve", "--listen", "0.0.0.0:8083"]);
    let entrypoint = runtime
        .iter()
        .find(|l| l.starts_with("ENTRYPOINT "))
        .expect("ENTRYPOINT");
    assert_eq!(entrypoint.as_str(), "ENTRYPOINT [\"stepline\"]");

    // The health check, run as Docker would (its exec form), against a
    // real server whose port replaces 8083: 200 when ready.
    let health = runtime
        .iter()
        .find(|l| l.starts_with("HEALTHCHECK "))
        .expect("HEALTHCHECK");
    let probe: Vec<String> =
        serde_json::from_str(&health[health.find("CMD [").expect("CMD in exec form") + 4..])
            .expect("exec form");
    assert_eq!(probe[..2], ["bash", "-c"]);
    assert!(probe[2].contains("GET /ready "), "{}", probe[2]);
    let dir = TempDir::new("ops-health");
    let config = dir.write("stepline.toml", "");
    let serve = Serve::start(&dir.path().join("data"), &config, dir.path().join("log"));
    let script = probe[2].replace("8083", &serve.addr.port().to_string());
    let ready = Command::new("bash")
        .args(["-c", &script])
        .status()
        .expect("bash");
    assert!(ready.success(), "the probe sees 200 from /ready");
    drop(serve);
    let down = Command::new("bash")
        .args(["-c", &script])
        .stderr(Stdio::null())
        .status()
        .expect("bash");
    assert!(!down.success(), "the probe fails when nothing answers");
}

/// packaging/stepline.service passes `systemd-analyze verify` without a
/// warning (with ExecStart pointing at the binary under test, which must
/// exist), and its hardening keeps `systemd-analyze security` at "OK".
/// Skipped, saying so, where systemd-analyze is not installed.
#[test]
fn the_systemd_unit_verifies_and_is_hardened() {
    let unit =
        std::fs::read_to_string(crate::support::repo_root().join("packaging/stepline.service"))
            .expect("packaging/stepline.service");
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("STEPLINE_REQUIRE_SYSTEMD_ANALYZE").is_none(),
            "systemd-analyze is required (Debian package systemd)"
        );
        eprintln!("SKIPPED: systemd-analyze is not installed (Debian package systemd)");
        return;
    }
    let dir = TempDir::new("ops-systemd");
    let under_test = binary();
    let path = dir.write(
        "stepline.service",
        unit.replace("/usr/local/bin/stepline", &under_test.display().to_string()),
    );
    let verified = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze verify");
    let said = String::from_utf8_lossy(&verified.stderr).into_owned()
        + &String::from_utf8_lossy(&verified.stdout);
    assert!(verified.status.success(), "{said}");
    assert!(said.trim().is_empty(), "no warning: {said}");

    let security = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&path)
        .output()
        .expect("systemd-analyze security");
    let text = String::from_utf8_lossy(&security.stdout).into_owned();
    let exposure: f64 = text
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for stepline.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in {text}"));
    assert!(exposure <= 2.0, "exposure {exposure}: {text}");
    for setting in [
        "User=stepline",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "CapabilityBoundingSet=\n",
        "StateDirectory=stepline",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        assert!(unit.contains(setting), "{setting}");
    }
}

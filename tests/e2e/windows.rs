//! Execution windows end to end, through the real binary and its
//! stepline.toml (docs/orchestration.md, "Execution windows"). Windows are
//! written in UTC with seconds, a few seconds from now, so that they open
//! and close while a test watches:
//! - hold: REST starts held (queued, reason window, with the time it
//!   opens; the CLI and `GET /v1/windows` say so), one stopped by an AWS client, a `kill -9`
//!   and a restart, then each started once when the window opens, one at
//!   a time under `max_running = 1`;
//! - refuse: REST's 409 naming the windows, AWS's ExecutionLimitExceeded
//!   through raw HTTP, boto3 and the AWS CLI (where installed);
//! - alert: the execution runs and one alert reaches a webhook, once,
//!   even when a `kill -9` comes before its delivery;
//! - drain: a task running when the window closes finishes, the next one
//!   waits (REST shows it) across a `kill -9`, and starts when the next
//!   window opens;
//! - triggers: a webhook trigger that refuses (skipped, counted) and one
//!   that holds.

use std::net::SocketAddr;
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::ops::Receiver;
use crate::rest::{Reply, http};
use crate::support::{Serve, TempDir, eventually, serve_refused, stepline_binary};

/// Appends `start NAME TIME` to `$LOG`, sleeps `$SLEEP` seconds (or the
/// input's `sleep`), appends `end NAME TIME`, answers its input.
const STEP: &str = r#"input=$(cat)
name=$(printf '%s' "$input" | sed 's/.*"name": *"\([^"]*\)".*/\1/')
pause=$(printf '%s' "$input" | sed -n 's/.*"sleep": *\([0-9.]*\).*/\1/p')
echo "start $name $(date -u +%s.%N)" >> "$LOG"
sleep "${pause:-0}"
echo "end $name $(date -u +%s.%N)" >> "$LOG"
printf '%s' "$input"
"#;

fn get(addr: SocketAddr, path: &str) -> Reply {
    http(addr, "GET", path, &[], b"")
}

fn post(addr: SocketAddr, path: &str, body: &str) -> Reply {
    http(addr, "POST", path, &[], body.as_bytes())
}

/// `t` cut to the second: windows are written to the second.
fn second(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).expect("a time")
}

/// `HH:MM:SS` of `t` in UTC.
fn hms(t: DateTime<Utc>) -> String {
    t.format("%H:%M:%S").to_string()
}

/// A window from `from` to `to`, as stepline.toml writes it.
fn window(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    format!("{}-{}", hms(from), hms(to))
}

/// The log's lines as (event, name, time).
fn log_lines(log: &Path) -> Vec<(String, String, DateTime<Utc>)> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|line| {
            let parts: Vec<&str> = line.split(' ').collect();
            let seconds: f64 = parts[2].parse().expect("time");
            let at = DateTime::from_timestamp_millis((seconds * 1000.0) as i64).expect("time");
            (parts[0].to_owned(), parts[1].to_owned(), at)
        })
        .collect()
}

fn starts_of(log: &Path, name: &str) -> Vec<DateTime<Utc>> {
    log_lines(log)
        .into_iter()
        .filter(|(event, n, _)| event == "start" && n == name)
        .map(|(_, _, at)| at)
        .collect()
}

/// A directory with the step script and a stepline.toml of `extra`
/// after the step's registration.
fn setup(label: &str, extra: &str) -> (TempDir, std::path::PathBuf, std::path::PathBuf) {
    let dir = TempDir::new(label);
    let log = dir.path().join("log");
    let step = dir.write("step.sh", STEP);
    let config = dir.write(
        "stepline.toml",
        format!(
            r#"
[tasks.processes.step]
command = "/bin/sh"
args = ["{step}"]
env = {{ LOG = "{log}" }}
{extra}
"#,
            step = step.display(),
            log = log.display(),
        ),
    );
    (dir, config, log)
}

fn create(serve: &Serve, name: &str, definition: &Value) {
    let reply = post(
        serve.addr,
        &format!("/v1/state-machines?name={name}"),
        &definition.to_string(),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
}

fn one_step() -> Value {
    json!({
        "StartAt": "Step",
        "States": {"Step": {"Type": "Task", "Resource": "stepline:process:step", "End": true}}
    })
}

fn succeeded(serve: &Serve, machine: &str, name: &str, seconds: u64) -> Value {
    let mut last = Value::Null;
    eventually(&format!("{machine}/{name} to succeed"), seconds, || {
        last = get(serve.addr, &format!("/v1/executions/{machine}/{name}")).json();
        last["status"] == "SUCCEEDED"
    });
    last
}

fn started_events(serve: &Serve, machine: &str, name: &str) -> usize {
    let history = get(
        serve.addr,
        &format!("/v1/executions/{machine}/{name}/history"),
    )
    .json();
    history["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"] == "ExecutionStarted")
        .count()
}

#[test]
fn windows_hold_starts_until_they_open_across_kill_9() {
    let opens = second(Utc::now() + Duration::seconds(20));
    let (dir, config, log) = setup(
        "windows-hold",
        &format!(
            r#"
[[windows]]
state_machine = "nightly"
windows = ["{}"]
outside = "hold"

[[limits]]
state_machine = "nightly"
max_running = 1
"#,
            window(opens, opens + Duration::minutes(10))
        ),
    );
    let data = dir.path().join("data");
    let binary = stepline_binary();
    let mut serve = Serve::start_with(&binary, &data, Some(&config));
    create(&serve, "nightly", &one_step());
    for name in ["h1", "h2", "h3"] {
        let reply = post(
            serve.addr,
            &format!("/v1/state-machines/nightly/executions?name={name}"),
            &json!({"name": name, "sleep": 0.5}).to_string(),
        );
        assert_eq!(reply.status, 201, "{}", reply.body);
        assert_eq!(reply.json()["status"], "RUNNING");
    }
    // Held: RUNNING to every client, queued for its window over REST.
    let h1 = get(serve.addr, "/v1/executions/nightly/h1").json();
    assert_eq!(h1["status"], "RUNNING", "{h1}");
    assert_eq!(h1["queued"]["reason"], "window", "{h1}");
    let at: DateTime<Utc> = h1["queued"]["opens"]
        .as_str()
        .expect("opens")
        .parse()
        .expect("a date");
    assert_eq!(at.timestamp(), opens.timestamp(), "{h1}");
    let out = crate::cli::command(
        &format!("http://{}", serve.addr),
        &["executions", "describe", "nightly/h2", "--utc"],
    )
    .output()
    .expect("stepline runs");
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}");
    assert!(
        out.status.success() && text.contains("held by its windows until"),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metrics = get(serve.addr, "/metrics").body;
    assert!(
        metrics.contains("stepline_window_held{state_machine=\"nightly\"} 3")
            && metrics.contains("stepline_window_open{state_machine=\"nightly\"} 0"),
        "{metrics}"
    );
    // AWS clients see it RUNNING, no state entered.
    let (status, described) = serve.call("DescribeExecution", &json!({"executionArn": h1["arn"]}));
    assert_eq!(status, 200, "{described}");
    assert_eq!(described["status"], "RUNNING");
    let (status, history) = serve.call("GetExecutionHistory", &json!({"executionArn": h1["arn"]}));
    assert_eq!(status, 200, "{history}");
    assert_eq!(history["events"], json!([]), "{history}");
    let windows = get(serve.addr, "/v1/windows").json();
    let rule = &windows["windows"][0];
    assert_eq!(rule["stateMachine"], "nightly", "{windows}");
    assert_eq!(rule["outside"], "hold", "{windows}");
    assert_eq!(rule["open"], false, "{windows}");
    assert_eq!(rule["held"], 3, "{windows}");
    let next: DateTime<Utc> = rule["nextOpen"]
        .as_str()
        .expect("nextOpen")
        .parse()
        .expect("a date");
    assert_eq!(next.timestamp(), opens.timestamp(), "{windows}");
    // Cancellable: stopped by an AWS client, it ends ABORTED, never run.
    let h3 = get(serve.addr, "/v1/executions/nightly/h3").json();
    let (status, stopped) = serve.call(
        "StopExecution",
        &json!({"executionArn": h3["arn"], "error": "NotTonight"}),
    );
    assert_eq!(status, 200, "{stopped}");
    let h3 = get(serve.addr, "/v1/executions/nightly/h3").json();
    assert_eq!(h3["status"], "ABORTED", "{h3}");
    assert!(h3.get("queued").is_none(), "{h3}");
    // A stop is answered before its write is flushed (as for a running
    // execution); the flush follows within milliseconds.
    std::thread::sleep(std::time::Duration::from_millis(500));

    // kill -9 before the window opens; the held starts survive it.
    serve.kill();
    serve = Serve::start_with(&binary, &data, Some(&config));
    let h1 = get(serve.addr, "/v1/executions/nightly/h1").json();
    assert_eq!(h1["queued"]["reason"], "window", "{h1}");
    assert!(
        Utc::now() < opens,
        "the test was too slow: the window opened before the checks"
    );
    assert!(log_lines(&log).is_empty(), "nothing ran before the window");

    for name in ["h1", "h2"] {
        succeeded(&serve, "nightly", name, 60);
        assert_eq!(started_events(&serve, "nightly", name), 1, "{name}");
        let starts = starts_of(&log, name);
        assert_eq!(starts.len(), 1, "{name} ran once: {starts:?}");
        assert!(
            starts[0] >= opens - Duration::milliseconds(1),
            "{name} started at {} before its window opened at {opens}",
            starts[0]
        );
    }
    // max_running = 1 applies too: one ended before the other started,
    // in the order they were started.
    let lines = log_lines(&log);
    let events: Vec<(&str, &str)> = lines
        .iter()
        .map(|(e, n, _)| (e.as_str(), n.as_str()))
        .collect();
    assert_eq!(
        events,
        [
            ("start", "h1"),
            ("end", "h1"),
            ("start", "h2"),
            ("end", "h2")
        ],
        "{lines:?}"
    );
    assert!(
        starts_of(&log, "h3").is_empty(),
        "the stopped one never ran"
    );
    assert_eq!(
        get(serve.addr, "/v1/executions/nightly/h3").json()["status"],
        "ABORTED"
    );
    let metrics = get(serve.addr, "/metrics").body;
    assert!(
        metrics.contains("stepline_window_held{state_machine=\"nightly\"} 0")
            && metrics.contains("stepline_window_open{state_machine=\"nightly\"} 1"),
        "{metrics}"
    );
}

#[test]
fn windows_refuse_starts_outside_with_rest_and_aws_errors() {
    let from = Utc::now() + Duration::hours(3);
    let text = window(from, from + Duration::hours(1));
    let (dir, config, _log) = setup(
        "windows-refuse",
        &format!(
            r#"
[[windows]]
state_machine = "strict"
windows = ["{text}"]
timezone = "UTC"
outside = "refuse"
"#
        ),
    );
    let serve = Serve::start_with(&stepline_binary(), &dir.path().join("data"), Some(&config));
    create(&serve, "strict", &one_step());
    let reply = post(
        serve.addr,
        "/v1/state-machines/strict/executions?name=r1",
        "{}",
    );
    assert_eq!(reply.status, 409, "{}", reply.body);
    let body = reply.json();
    assert_eq!(body["code"], "OutsideWindow", "{body}");
    let message = body["message"].as_str().expect("message");
    assert!(
        message.contains(&format!("{text} (UTC)")) && message.contains("the next opens at"),
        "{message}"
    );
    // AWS's JSON dialect: StartExecution's ExecutionLimitExceeded.
    let arn = "arn:aws:states:us-east-1:111111111111:stateMachine:strict";
    let (status, error) = serve.call(
        "StartExecution",
        &json!({"stateMachineArn": arn, "name": "r2"}),
    );
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["__type"], "ExecutionLimitExceeded", "{error}");
    assert!(
        error["message"].as_str().unwrap_or("").contains(&text),
        "{error}"
    );
    let endpoint = format!("http://{}", serve.addr);
    if crate::support::boto3_available() {
        let script = r#"
import json, sys, boto3
from botocore.config import Config
sfn = boto3.client("stepfunctions", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="test", aws_secret_access_key="test",
                   config=Config(retries={"max_attempts": 1}))
try:
    sfn.start_execution(stateMachineArn=sys.argv[2], name="r3")
    print(json.dumps({"error": None}))
except sfn.exceptions.ExecutionLimitExceeded as e:
    print(json.dumps({"error": "ExecutionLimitExceeded", "message": str(e)}))
"#;
        let out = std::process::Command::new("python3")
            .args(["-c", script, &endpoint, arn])
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let result: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert_eq!(result["error"], "ExecutionLimitExceeded", "{result}");
        assert!(
            result["message"].as_str().unwrap_or("").contains(&text),
            "{result}"
        );
    }
    if crate::aws::aws_cli_available() {
        let refused = crate::aws::aws_cli(
            &endpoint,
            &[],
            &[
                "start-execution",
                "--state-machine-arn",
                arn,
                "--name",
                "r4",
            ],
        )
        .expect_err("refused");
        assert!(refused.contains("ExecutionLimitExceeded"), "{refused}");
    }
    // Nothing was stored.
    let list = get(serve.addr, "/v1/executions?machine=strict").json();
    assert_eq!(list["executions"], json!([]), "{list}");
}

#[test]
fn windows_alert_runs_the_execution_and_sends_one_alert() {
    let hooks = Receiver::start(0);
    let from = Utc::now() + Duration::hours(3);
    let text = window(from, from + Duration::hours(1));
    let (dir, config, log) = setup(
        "windows-alert",
        &format!(
            r#"
[[alerts.webhooks]]
url = "http://{hooks}/json"

[[windows]]
state_machine = "loose"
windows = ["{text}"]
outside = "alert"

[[triggers.define]]
name = "loud"
kind = "webhook"
state_machine = "loose"
windows = ["{text}"]
outside = "alert"
"#,
            hooks = hooks.addr,
        ),
    );
    let serve = Serve::start_with(&stepline_binary(), &dir.path().join("data"), Some(&config));
    create(&serve, "loose", &one_step());
    let reply = post(
        serve.addr,
        "/v1/state-machines/loose/executions?name=a1",
        &json!({"name": "a1"}).to_string(),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    succeeded(&serve, "loose", "a1", 30);
    assert_eq!(starts_of(&log, "a1").len(), 1);
    eventually("the alert", 30, || !hooks.on("/json").is_empty());
    std::thread::sleep(std::time::Duration::from_millis(300));
    let got = hooks.on("/json");
    assert_eq!(got.len(), 1, "one alert: {got:?}");
    let event: Value = serde_json::from_str(&got[0].body).expect("JSON");
    assert_eq!(event["detail-type"], "Stepline Started Outside Window");
    assert_eq!(event["detail"]["kind"], "window");
    assert_eq!(event["detail"]["stateMachine"], "loose");
    assert_eq!(event["detail"]["name"], "a1");
    assert!(
        event["detail"]["windows"]
            .as_str()
            .unwrap_or("")
            .contains(&text),
        "{event}"
    );
    assert!(event["detail"]["nextOpen"].is_string(), "{event}");
    assert!(event["detail"]["trigger"].is_null(), "{event}");

    // A trigger's windows alert too, naming the trigger.
    let reply = http(
        serve.addr,
        "POST",
        "/v1/hooks/loud",
        &[("idempotency-key", "k1")],
        json!({"name": "loud"}).to_string().as_bytes(),
    );
    assert_eq!(reply.status, 202, "{}", reply.body);
    let name = reply.json()["name"].as_str().expect("name").to_owned();
    succeeded(&serve, "loose", &name, 30);
    eventually("the trigger's alert", 30, || hooks.on("/json").len() == 2);
    let event: Value = serde_json::from_str(&hooks.on("/json")[1].body).expect("JSON");
    assert_eq!(event["detail"]["trigger"], "loud", "{event}");
    assert_eq!(event["detail"]["name"], name.as_str(), "{event}");
}

/// The alert of a start outside its windows outlives a `kill -9` that
/// comes before its delivery: the receiver is down until the server was
/// killed, and gets it once from the restarted server.
#[test]
fn windows_alert_undelivered_before_kill_9_is_sent_after_the_restart() {
    // A port nobody listens on yet.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let from = Utc::now() + Duration::hours(3);
    let (dir, config, _log) = setup(
        "windows-alert-kill",
        &format!(
            r#"
[[alerts.webhooks]]
url = "http://127.0.0.1:{port}/json"

[[windows]]
state_machine = "loose"
windows = ["{}"]
outside = "alert"
"#,
            window(from, from + Duration::hours(1)),
        ),
    );
    let data = dir.path().join("data");
    let binary = stepline_binary();
    let serve = Serve::start_with(&binary, &data, Some(&config));
    create(&serve, "loose", &one_step());
    let reply = post(
        serve.addr,
        "/v1/state-machines/loose/executions?name=k1",
        &json!({"name": "k1"}).to_string(),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    succeeded(&serve, "loose", "k1", 30);
    serve.kill();
    let hooks = Receiver::start_at(&format!("127.0.0.1:{port}"), 0);
    let serve = Serve::start_with(&binary, &data, Some(&config));
    eventually("the alert after the restart", 30, || {
        !hooks.on("/json").is_empty()
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    let got = hooks.on("/json");
    assert_eq!(got.len(), 1, "once: {got:?}");
    let event: Value = serde_json::from_str(&got[0].body).expect("JSON");
    assert_eq!(event["detail"]["name"], "k1", "{event}");
    drop(serve);
}

#[test]
fn windows_drain_puts_new_tasks_off_until_the_next_window_across_kill_9() {
    let now = second(Utc::now());
    let closes = now + Duration::seconds(8);
    let reopens = now + Duration::seconds(25);
    let (dir, config, log) = setup(
        "windows-drain",
        &format!(
            r#"
[[windows]]
state_machine = "drained"
windows = ["{}", "{}"]
drain = true
"#,
            window(now - Duration::minutes(1), closes),
            window(reopens, reopens + Duration::minutes(10)),
        ),
    );
    let data = dir.path().join("data");
    let binary = stepline_binary();
    let mut serve = Serve::start_with(&binary, &data, Some(&config));
    let definition = json!({
        "StartAt": "Long",
        "States": {
            "Long": {"Type": "Task", "Resource": "stepline:process:step",
                     "Parameters": {"name": "long", "sleep": 10}, "ResultPath": null, "Next": "After"},
            "After": {"Type": "Task", "Resource": "stepline:process:step",
                      "Parameters": {"name": "after"}, "End": true}
        }
    });
    create(&serve, "drained", &definition);
    let reply = post(
        serve.addr,
        "/v1/state-machines/drained/executions?name=d1",
        "{}",
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    // The task in flight when the window closes finishes; the next waits.
    eventually("the long task to end", 30, || {
        log_lines(&log)
            .iter()
            .any(|(e, n, _)| e == "end" && n == "long")
    });
    let mut d1 = Value::Null;
    eventually("the next task to wait for the window", 10, || {
        d1 = get(serve.addr, "/v1/executions/drained/d1").json();
        d1.get("draining").is_some()
    });
    assert_eq!(d1["status"], "RUNNING", "{d1}");
    assert_eq!(d1["draining"]["states"], json!(["After"]), "{d1}");
    let until: DateTime<Utc> = d1["draining"]["until"]
        .as_str()
        .expect("until")
        .parse()
        .expect("a date");
    assert_eq!(until.timestamp(), reopens.timestamp(), "{d1}");
    let metrics = get(serve.addr, "/metrics").body;
    assert!(
        metrics.contains("stepline_window_draining_tasks{state_machine=\"drained\"} 1"),
        "{metrics}"
    );
    let out = crate::cli::command(
        &format!("http://{}", serve.addr),
        &["executions", "describe", "drained/d1", "--utc"],
    )
    .output()
    .expect("stepline runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("After wait(s) for the next window, at "),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    // The wait survives a kill -9: the task is called again after the
    // restart, and waits again.
    serve.kill();
    serve = Serve::start_with(&binary, &data, Some(&config));
    assert!(
        Utc::now() < reopens,
        "the test was too slow: the window opened before the restart"
    );
    eventually("the wait again after the restart", 10, || {
        get(serve.addr, "/v1/executions/drained/d1")
            .json()
            .get("draining")
            .is_some()
    });
    let d1 = succeeded(&serve, "drained", "d1", 60);
    assert!(d1.get("draining").is_none(), "{d1}");
    let after = starts_of(&log, "after");
    assert_eq!(after.len(), 1, "{after:?}");
    assert!(
        after[0] >= reopens - Duration::milliseconds(1),
        "the next task started at {} before the window reopened at {reopens}",
        after[0]
    );
    let long_end = log_lines(&log)
        .into_iter()
        .find(|(e, n, _)| e == "end" && n == "long")
        .expect("long ended")
        .2;
    assert!(long_end > closes, "the long task ran past the close");
}

#[test]
fn windows_of_triggers_skip_or_hold_their_fires() {
    let later = Utc::now() + Duration::hours(3);
    let opens = second(Utc::now() + Duration::seconds(15));
    let (dir, _config, log) = setup("windows-triggers", "");
    let config = dir.write(
        "triggers.toml",
        format!(
            r#"{base}
[[triggers.define]]
name = "closed"
kind = "webhook"
state_machine = "hooked"
windows = ["{closed}"]
timezone = "Europe/Paris"
outside = "refuse"

[[triggers.define]]
name = "soon"
kind = "webhook"
state_machine = "hooked"
windows = ["{soon}"]
"#,
            base = std::fs::read_to_string(dir.path().join("stepline.toml")).expect("config"),
            closed = window(later, later + Duration::hours(1)),
            soon = window(opens, opens + Duration::minutes(10)),
        ),
    );
    let serve = Serve::start_with(&stepline_binary(), &dir.path().join("data"), Some(&config));
    create(&serve, "hooked", &one_step());
    // Refused: skipped, answered 409, counted; nothing started.
    let reply = http(
        serve.addr,
        "POST",
        "/v1/hooks/closed",
        &[("idempotency-key", "k1")],
        json!({"name": "closed"}).to_string().as_bytes(),
    );
    assert_eq!(reply.status, 409, "{}", reply.body);
    assert_eq!(reply.json()["code"], "OutsideWindow");
    let metrics = get(serve.addr, "/metrics").body;
    assert!(
        metrics.contains("stepline_trigger_window_skips_total{trigger=\"closed\"} 1"),
        "{metrics}"
    );
    let out = crate::cli::command(
        &format!("http://{}", serve.addr),
        &["triggers", "show", "closed"],
    )
    .output()
    .expect("stepline runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && text.contains("(Europe/Paris), outside: refuse")
            && text.contains("Outside execution windows"),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Held: accepted, stored, started when the trigger's window opens.
    let reply = http(
        serve.addr,
        "POST",
        "/v1/hooks/soon",
        &[("idempotency-key", "k2")],
        json!({"name": "soon"}).to_string().as_bytes(),
    );
    assert_eq!(reply.status, 202, "{}", reply.body);
    let name = reply.json()["name"].as_str().expect("name").to_owned();
    let held = get(serve.addr, &format!("/v1/executions/hooked/{name}")).json();
    assert_eq!(held["queued"]["reason"], "window", "{held}");
    succeeded(&serve, "hooked", &name, 60);
    let starts = starts_of(&log, "soon");
    assert_eq!(starts.len(), 1, "{starts:?}");
    assert!(starts[0] >= opens - Duration::milliseconds(1));
    let list = get(serve.addr, "/v1/executions?machine=hooked").json();
    assert_eq!(
        list["executions"].as_array().map(Vec::len),
        Some(1),
        "{list}"
    );
}

#[test]
fn windows_are_checked_with_the_configuration() {
    let dir = TempDir::new("windows-config");
    for (text, error) in [
        (
            "[[windows]]\nstate_machine = \"m\"\nwindows = [\"Mon-Fri 25:00-26:00\"]\n",
            "windows[0].windows: \"Mon-Fri 25:00-26:00\": '25:00' is not a time of day",
        ),
        (
            "[[windows]]\nstate_machine = \"m\"\nwindows = [\"01:00-02:00\"]\noutside = \"later\"\n",
            "windows[0].outside: 'later' is not one of hold, refuse, alert",
        ),
    ] {
        let config = dir.write("stepline.toml", text);
        let data = dir.path().join("data");
        let stderr = serve_refused(&[
            "--data-dir".as_ref(),
            data.as_os_str(),
            "--config".as_ref(),
            config.as_os_str(),
        ]);
        assert!(stderr.contains(error), "{text}: {stderr}");
    }
    // Not with PostgreSQL, named in the file or on the command line.
    let config = dir.write(
        "stepline.toml",
        "[[windows]]\nstate_machine = \"m\"\nwindows = [\"01:00-02:00\"]\n",
    );
    let stderr = serve_refused(&[
        "--store",
        "postgres://stepline@127.0.0.1:1/stepline",
        "--config",
        config.to_str().expect("utf-8"),
    ]);
    assert!(
        stderr.contains("execution windows cannot be used with the postgres store"),
        "{stderr}"
    );
}

//! A state machine's settings over the REST API and the CLI, through the
//! real binary (docs/orchestration.md, "Settings over the REST API"):
//! - `max_running` set to 1 with starts queued behind it, raised to 3:
//!   the queued ones start at once; a `kill -9` keeps the setting, and the
//!   queue goes on under it;
//! - a field stepline.toml sets is 409, bad values are the file's checks'
//!   words, an unknown state machine is 404;
//! - the CLI shows, sets and clears;
//! - windows set over REST hold the next start until they open.
//!
//! Deadlines set over REST are in `orchestration.rs` (a manual clock);
//! two PostgreSQL nodes in `postgres.rs`.

use std::net::SocketAddr;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::limits::{GATE, read_log};
use crate::rest::{Reply, http};
use crate::support::{Serve, TempDir, eventually, stepline_binary};

fn get(addr: SocketAddr, path: &str) -> Reply {
    http(addr, "GET", path, &[], b"")
}

fn post(addr: SocketAddr, path: &str, body: &str) -> Reply {
    http(addr, "POST", path, &[], body.as_bytes())
}

fn put(addr: SocketAddr, path: &str, body: &Value) -> Reply {
    http(addr, "PUT", path, &[], body.to_string().as_bytes())
}

const GATED: &str = r#"{"StartAt": "Gate", "States": {
    "Gate": {"Type": "Task", "Resource": "stepline:process:gate", "TimeoutSeconds": 300, "End": true}}}"#;

#[test]
fn max_running_set_over_rest_starts_the_queue_and_survives_kill_9() {
    let dir = TempDir::new("settings-limits");
    let log = dir.path().join("log");
    let go = dir.path().join("go");
    std::fs::create_dir_all(&go).expect("go dir");
    let gate = dir.write("gate.sh", GATE);
    let config = dir.write(
        "stepline.toml",
        format!(
            r#"
[tasks.processes.gate]
command = "/bin/sh"
args = ["{gate}"]
env = {{ LOG = "{log}", GO = "{go}" }}

[[limits]]
state_machine = "fixed"
max_running = 1

[[deadlines]]
state_machine = "fixed"
expected_seconds = 60
"#,
            gate = gate.display(),
            log = log.display(),
            go = go.display(),
        ),
    );
    let data = dir.path().join("data");
    let binary = stepline_binary();
    let mut serve = Serve::start_with(&binary, &data, Some(&config));
    for name in ["gated", "fixed"] {
        let reply = post(
            serve.addr,
            &format!("/v1/state-machines?name={name}"),
            GATED,
        );
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
    let settings = "/v1/state-machines/gated/settings";

    // Nothing set yet.
    let reply = get(serve.addr, settings);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.json(),
        json!({"stateMachine": "gated", "maxRunning": null, "expectedSeconds": null,
               "stateExpectedSeconds": {}, "windows": null, "source": {}})
    );

    // max_running = 1, then five starts: one runs, four queue.
    let reply = put(serve.addr, settings, &json!({"maxRunning": 1}));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["maxRunning"], 1);
    assert_eq!(reply.json()["source"], json!({"maxRunning": "api"}));
    for i in 0..5 {
        let reply = post(
            serve.addr,
            &format!("/v1/state-machines/gated/executions?name=e{i}"),
            &json!({"name": format!("e{i}")}).to_string(),
        );
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
    eventually("one to start", 30, || read_log(&log).0.len() == 1);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(read_log(&log).0, ["e0"]);
    let e2 = get(serve.addr, "/v1/executions/gated/e2").json();
    assert_eq!(e2["queued"]["reason"], "max_running", "{e2}");

    // The file's checks, in the API's words.
    for (body, words) in [
        (json!({"maxRunning": 0}), "maxRunning: 0 is not at least 1"),
        (json!({"maxRunning": -1}), "maxRunning: "),
        (
            json!({"expectedSeconds": 0}),
            "expectedSeconds: 0 is not between 1 and",
        ),
        (
            json!({"stateExpectedSeconds": {"Gate": 0}}),
            "stateExpectedSeconds.Gate: 0 is not between 1 and",
        ),
        (
            json!({"windows": {"windows": ["Mon-Fry 01:00-02:00"]}}),
            "windows.windows: \"Mon-Fry 01:00-02:00\": 'Fry' is not a day",
        ),
        (
            json!({"windows": {"windows": ["01:00-02:00"], "timezone": "Europe/Pariss"}}),
            "windows.timezone: 'Europe/Pariss' is not a time zone",
        ),
        (json!({"max_running": 2}), "'max_running' is not a setting"),
        (json!({}), "nothing to set"),
    ] {
        let reply = put(serve.addr, settings, &body);
        assert_eq!(reply.status, 400, "{body}: {}", reply.body);
        assert_eq!(reply.json()["code"], "InvalidRequest", "{}", reply.body);
        assert!(
            reply.json()["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(words)),
            "{body}: {}",
            reply.body
        );
    }
    let reply = http(
        serve.addr,
        "PUT",
        settings,
        &[("Content-Type", "text/plain")],
        b"{\"maxRunning\": 2}",
    );
    assert_eq!(reply.status, 415, "{}", reply.body);
    // A write from another site's page reaches no handler.
    for method in ["PUT", "DELETE"] {
        let reply = http(
            serve.addr,
            method,
            settings,
            &[("Origin", "http://evil.example")],
            b"{\"maxRunning\": 5}",
        );
        assert_eq!(reply.status, 403, "{method}: {}", reply.body);
        assert!(
            reply.body.contains("CrossOriginRequestRefused"),
            "{}",
            reply.body
        );
    }
    // Set in stepline.toml: one source of truth.
    let reply = put(
        serve.addr,
        "/v1/state-machines/fixed/settings",
        &json!({"maxRunning": 2}),
    );
    assert_eq!(reply.status, 409, "{}", reply.body);
    assert_eq!(reply.json()["code"], "SetInConfiguration");
    assert!(
        reply.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("stepline.toml")),
        "{}",
        reply.body
    );
    // ... while what the file leaves is the API's to set.
    let reply = put(
        serve.addr,
        "/v1/state-machines/fixed/settings",
        &json!({"stateExpectedSeconds": {"Gate": 30}}),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.json()["source"],
        json!({"maxRunning": "config", "expectedSeconds": "config", "stateExpectedSeconds": "api"})
    );
    assert_eq!(reply.json()["maxRunning"], 1);
    assert_eq!(reply.json()["expectedSeconds"], 60);
    for method in ["GET", "PUT", "DELETE"] {
        let reply = http(
            serve.addr,
            method,
            "/v1/state-machines/nope/settings",
            &[],
            if method == "PUT" {
                b"{\"maxRunning\": 1}"
            } else {
                b""
            },
        );
        assert_eq!(reply.status, 404, "{method}: {}", reply.body);
        assert_eq!(reply.json()["code"], "StateMachineDoesNotExist");
    }
    // Nothing was changed by the refusals.
    assert_eq!(get(serve.addr, settings).json()["maxRunning"], 1);

    // Raised to 3: two more of the queue start at once.
    let reply = put(serve.addr, settings, &json!({"maxRunning": 3}));
    assert_eq!(reply.status, 200, "{}", reply.body);
    eventually("three to run", 30, || read_log(&log).0.len() == 3);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (mut started, most, _) = read_log(&log);
    // The two let in start together, in either order.
    started[1..].sort();
    assert_eq!(started, ["e0", "e1", "e2"]);
    assert_eq!(most, 3);

    // kill -9: the setting stays, and the queue goes on under it.
    serve.kill();
    serve = Serve::start_with(&binary, &data, Some(&config));
    let after = get(serve.addr, settings).json();
    assert_eq!(after["maxRunning"], 3, "{after}");
    assert_eq!(after["source"], json!({"maxRunning": "api"}), "{after}");
    let metrics = get(serve.addr, "/metrics").body;
    assert!(
        metrics.contains("stepline_max_running{state_machine=\"gated\"} 3"),
        "{metrics}"
    );
    std::fs::write(go.join("e0"), b"").expect("go");
    eventually("e3 to start once e0 ended", 30, || {
        read_log(&log).0.len() == 4
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (mut started, most, _) = read_log(&log);
    started[1..3].sort();
    assert_eq!(started, ["e0", "e1", "e2", "e3"]);
    assert!(most <= 3, "{most} ran at once");

    // The CLI shows, sets and clears.
    let endpoint = format!("http://{}", serve.addr);
    let cli = |args: &[&str]| {
        let out = crate::cli::command(&endpoint, args)
            .output()
            .expect("stepline runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, text, err) = cli(&["machines", "settings", "gated"]);
    assert!(ok, "{err}");
    assert!(text.contains("max running:       3  (api)"), "{text}");
    let (ok, text, err) = cli(&[
        "machines",
        "settings",
        "gated",
        "--expected-seconds",
        "3600",
        "--state-seconds",
        "Gate=900",
    ]);
    assert!(ok, "{err}");
    assert!(text.contains("expected seconds:  3600  (api)"), "{text}");
    assert!(
        text.contains("state seconds:     Gate=900  (api)"),
        "{text}"
    );
    let (ok, text, err) = cli(&["machines", "-o", "json", "settings", "gated"]);
    assert!(ok, "{err}");
    let shown: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(shown["stateExpectedSeconds"], json!({"Gate": 900}));
    let (ok, text, err) = cli(&["machines", "settings", "gated", "--unset", "state-seconds"]);
    assert!(ok, "{err}");
    assert!(text.contains("state seconds:     none"), "{text}");
    let (ok, _, err) = cli(&["machines", "settings", "fixed", "--max-running", "2"]);
    assert!(!ok);
    assert!(err.contains("stepline.toml"), "{err}");
    let (ok, _, err) = cli(&["machines", "settings", "gated", "--max-running", "0"]);
    assert!(!ok);
    assert!(err.contains("maxRunning: 0 is not at least 1"), "{err}");

    // Cleared: no limit, so the last queued one starts.
    let (ok, text, err) = cli(&["machines", "settings", "gated", "--clear"]);
    assert!(ok, "{err}");
    assert!(text.contains("max running:       none"), "{text}");
    eventually("the rest of the queue to start", 30, || {
        read_log(&log).0.len() == 5
    });
    let cleared = get(serve.addr, settings).json();
    assert_eq!(cleared["source"], json!({}), "{cleared}");
    for i in 0..5 {
        std::fs::write(go.join(format!("e{i}")), b"").expect("go");
    }
    for i in 0..5 {
        eventually(&format!("e{i} to succeed"), 30, || {
            get(serve.addr, &format!("/v1/executions/gated/e{i}")).json()["status"] == "SUCCEEDED"
        });
    }
}

/// `HH:MM:SS` of `t` in UTC.
fn hms(t: DateTime<Utc>) -> String {
    t.format("%H:%M:%S").to_string()
}

#[test]
fn windows_set_over_rest_hold_the_next_start_until_they_open() {
    let dir = TempDir::new("settings-windows");
    let data = dir.path().join("data");
    let binary = stepline_binary();
    let serve = Serve::start_with(&binary, &data, None);
    let reply = post(
        serve.addr,
        "/v1/state-machines?name=nightly",
        r#"{"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}"#,
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    // A window that opens a few seconds from now (to the second), and
    // does not cross midnight.
    let mut opens = DateTime::from_timestamp(Utc::now().timestamp() + 6, 0).expect("a time");
    if hms(opens) > hms(opens + chrono::Duration::seconds(120)) {
        std::thread::sleep(std::time::Duration::from_secs(130));
        opens = DateTime::from_timestamp(Utc::now().timestamp() + 6, 0).expect("a time");
    }
    let window = format!(
        "{}-{}",
        hms(opens),
        hms(opens + chrono::Duration::seconds(120))
    );
    let reply = put(
        serve.addr,
        "/v1/state-machines/nightly/settings",
        &json!({"windows": {"windows": [window], "outside": "hold"}}),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["source"], json!({"windows": "api"}));
    assert_eq!(
        reply.json()["windows"],
        json!({"windows": [window], "timezone": null, "outside": "hold", "drain": false})
    );
    let windows = get(serve.addr, "/v1/windows").json();
    assert_eq!(
        windows["windows"][0]["stateMachine"], "nightly",
        "{windows}"
    );

    let reply = post(
        serve.addr,
        "/v1/state-machines/nightly/executions?name=h1",
        "{}",
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    let held = get(serve.addr, "/v1/executions/nightly/h1").json();
    assert_eq!(held["status"], "RUNNING", "{held}");
    assert_eq!(held["queued"]["reason"], "window", "{held}");
    eventually("the held start to run once its window opens", 30, || {
        get(serve.addr, "/v1/executions/nightly/h1").json()["status"] == "SUCCEEDED"
    });
    let done = get(serve.addr, "/v1/executions/nightly/h1").json();
    let started: DateTime<Utc> = done["startDate"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("startDate");
    let stopped: DateTime<Utc> = done["stopDate"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("stopDate");
    assert!(stopped >= opens, "{started} {stopped} {opens}");

    // Removed: the next start runs at once, whatever the clock.
    let reply = put(
        serve.addr,
        "/v1/state-machines/nightly/settings",
        &json!({"windows": null}),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["windows"], Value::Null);
}

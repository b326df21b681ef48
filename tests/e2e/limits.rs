//! `max_running` end to end, through the real binary: with a limit of 2,
//! ten starts of a state machine whose task waits for the test's word run
//! two at a time, the rest in first-in-first-out order with a priority
//! respected; a queued one is visible (REST: queued with its position;
//! AWS: RUNNING with an empty history), a queued one stopped never runs,
//! and across a `kill -9` of the server the queue resumes with no
//! execution lost or run twice.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::rest::{Reply, http};
use crate::support::eventually;
use crate::support::{Serve, TempDir, serve_refused, stepline_binary};

/// Logs `start NAME`, waits until `$GO/NAME` exists, logs `end NAME`.
pub(crate) const GATE: &str = r#"input=$(cat)
name=$(printf '%s' "$input" | sed 's/.*"name": *"\([^"]*\)".*/\1/')
echo "start $name" >> "$LOG"
while [ ! -e "$GO/$name" ]; do sleep 0.02; done
echo "end $name" >> "$LOG"
printf '{"name": "%s"}' "$name"
"#;

fn get(addr: SocketAddr, path: &str) -> Reply {
    http(addr, "GET", path, &[], b"")
}

fn post(addr: SocketAddr, path: &str, body: &str) -> Reply {
    http(addr, "POST", path, &[], body.as_bytes())
}

/// The log read as events: the names in the order they first started,
/// and the most that ever ran at once (a name started again after a
/// crash, while its first process still waits, counts once).
pub(crate) fn read_log(log: &Path) -> (Vec<String>, usize, BTreeSet<String>) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut first_starts = Vec::new();
    let mut running = BTreeSet::new();
    let mut ended = BTreeSet::new();
    let mut most = 0;
    for line in text.lines() {
        match line.split_once(' ') {
            Some(("start", name)) => {
                if !first_starts.iter().any(|n| n == name) {
                    first_starts.push(name.to_owned());
                }
                if !ended.contains(name) {
                    running.insert(name.to_owned());
                }
                most = most.max(running.len());
            }
            Some(("end", name)) => {
                running.remove(name);
                ended.insert(name.to_owned());
            }
            _ => panic!("unexpected log line {line:?}"),
        }
    }
    (first_starts, most, running)
}

#[test]
fn max_running_queues_starts_in_order_and_survives_kill_9() {
    let dir = TempDir::new("limits");
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
state_machine = "gated"
max_running = 2
"#,
            gate = gate.display(),
            log = log.display(),
            go = go.display(),
        ),
    );
    let data = dir.path().join("data");
    let binary = stepline_binary();
    let mut serve = Serve::start_with(&binary, &data, Some(&config));
    let definition = json!({
        "StartAt": "Gate",
        "States": {
            "Gate": {"Type": "Task", "Resource": "stepline:process:gate", "TimeoutSeconds": 300, "End": true}
        }
    });
    let reply = post(
        serve.addr,
        "/v1/state-machines?name=gated",
        &definition.to_string(),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);

    // e0..e8 with the default priority, e9 ahead of them.
    let mut arns = Vec::new();
    for i in 0..10 {
        let priority = if i == 9 { "&priority=5" } else { "" };
        let reply = post(
            serve.addr,
            &format!("/v1/state-machines/gated/executions?name=e{i}{priority}"),
            &json!({"name": format!("e{i}")}).to_string(),
        );
        assert_eq!(reply.status, 201, "{}", reply.body);
        let body = reply.json();
        assert_eq!(body["status"], "RUNNING", "{body}");
        arns.push(body["arn"].as_str().expect("arn").to_owned());
    }
    eventually("two to start", 30, || read_log(&log).0.len() == 2);
    std::thread::sleep(Duration::from_millis(300));
    let (mut started, most, _) = read_log(&log);
    started.sort();
    assert_eq!(started, ["e0", "e1"], "only two run");
    assert_eq!(most, 2);

    // A queued execution as REST shows it: queued, with its place.
    let e3 = get(serve.addr, "/v1/executions/gated/e3").json();
    assert_eq!(e3["status"], "RUNNING");
    assert_eq!(
        e3["queued"],
        json!({"reason": "max_running", "position": 3, "length": 8, "priority": 0}),
        "{e3}"
    );
    // ... and the command line.
    let out = crate::cli::command(
        &format!("http://{}", serve.addr),
        &["executions", "describe", "gated/e3"],
    )
    .output()
    .expect("stepline runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("queued") && text.contains("3 of 8, priority 0"),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let e9 = get(serve.addr, "/v1/executions/gated/e9").json();
    assert_eq!(e9["queued"]["position"], 1, "{e9}");
    // ... and as AWS clients see it: RUNNING, no state entered.
    let (status, described) = serve.call("DescribeExecution", &json!({"executionArn": arns[3]}));
    assert_eq!(status, 200, "{described}");
    assert_eq!(described["status"], "RUNNING");
    let (status, history) = serve.call("GetExecutionHistory", &json!({"executionArn": arns[3]}));
    assert_eq!(status, 200, "{history}");
    assert_eq!(history["events"], json!([]), "{history}");
    let metrics = get(serve.addr, "/metrics").body;
    assert!(
        metrics.contains("stepline_limited_running{state_machine=\"gated\"} 2")
            && metrics.contains("stepline_limited_queued{state_machine=\"gated\"} 8"),
        "{metrics}"
    );

    // A queued one stopped ends ABORTED without ever running.
    let (status, stopped) = serve.call(
        "StopExecution",
        &json!({"executionArn": arns[5], "error": "NotNeeded"}),
    );
    assert_eq!(status, 200, "{stopped}");
    let e5 = get(serve.addr, "/v1/executions/gated/e5").json();
    assert_eq!(e5["status"], "ABORTED", "{e5}");
    assert_eq!(e5["error"], "NotNeeded", "{e5}");
    assert!(e5.get("queued").is_none(), "{e5}");

    // Release them one by one, oldest running first; a kill -9 midway.
    let order = ["e0", "e1", "e9", "e2", "e3", "e4", "e6", "e7", "e8"];
    for (released, name) in order.iter().enumerate() {
        if released == 4 {
            serve.kill();
            serve = Serve::start_with(&binary, &data, Some(&config));
        }
        std::fs::write(go.join(name), b"").expect("go");
        let want = (released + 3).min(order.len());
        eventually(&format!("{want} started after {name} ended"), 30, || {
            read_log(&log).0.len() == want
        });
        let (mut started, most, _) = read_log(&log);
        // The first two start together, in either order; each later one
        // starts alone, when a slot frees.
        started[..2].sort();
        assert_eq!(started, order[..want], "the order of starts");
        assert!(most <= 2, "{most} ran at once");
    }
    for name in order {
        eventually(&format!("{name} to succeed"), 30, || {
            get(serve.addr, &format!("/v1/executions/gated/{name}")).json()["status"] == "SUCCEEDED"
        });
        // Run once: one start in its history, however it was resumed.
        let history = get(serve.addr, &format!("/v1/executions/gated/{name}/history")).json();
        let starts = history["events"]
            .as_array()
            .expect("events")
            .iter()
            .filter(|e| e["type"] == "ExecutionStarted")
            .count();
        assert_eq!(starts, 1, "{name}: {history}");
    }
    let (started, most, _) = read_log(&log);
    assert!(
        !started.iter().any(|n| n == "e5"),
        "the stopped one never ran"
    );
    assert!(most <= 2, "{most} ran at once");
    let e5 = get(serve.addr, "/v1/executions/gated/e5").json();
    assert_eq!(e5["status"], "ABORTED", "{e5}");
    let metrics = get(serve.addr, "/metrics").body;
    assert!(
        metrics.contains("stepline_limited_running{state_machine=\"gated\"} 0")
            && metrics.contains("stepline_limited_queued{state_machine=\"gated\"} 0"),
        "{metrics}"
    );
}

#[test]
fn limits_are_checked_with_the_configuration() {
    let dir = TempDir::new("limits-config");
    for (text, error) in [
        (
            "[[limits]]\nstate_machine = \"m\"\nmax_running = 0\n",
            "limits[0].max_running",
        ),
        (
            "[[limits]]\nstate_machine = \"m\"\nmax_running = 1\n[[limits]]\nstate_machine = \"m\"\nmax_running = 2\n",
            "limited twice",
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
        assert!(stderr.contains(error), "{stderr}");
    }
}

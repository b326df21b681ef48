//! `kill -9` of the real `stepline serve` process at arbitrary moments,
//! then a restart on the same data directory: every execution must reach
//! the right end, with a contiguous history and nothing done twice that
//! should be done once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Serve, TempDir, stepline_binary};

const MIXED: &str = r#"{
  "StartAt": "Split",
  "States": {
    "Split": {"Type": "Parallel", "ResultPath": "$.parallel", "Next": "Each", "Branches": [
      {"StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "Seconds": 1, "End": true}}},
      {"StartAt": "Count", "States": {"Count": {"Type": "Pass", "Result": 1, "End": true}}}]},
    "Each": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 2, "ResultPath": "$.mapped",
      "ItemProcessor": {"StartAt": "Double", "States": {
        "Double": {"Type": "Pass", "Parameters": {"v.$": "States.MathAdd($, $)"}, "Next": "Pause"},
        "Pause": {"Type": "Wait", "Seconds": 1, "End": true}}},
      "Next": "Try"},
    "Try": {"Type": "Task", "Resource": "stepline:process:none",
      "Retry": [{"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 1, "MaxAttempts": 1}],
      "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.caught", "Next": "Check"}],
      "End": true},
    "Check": {"Type": "Choice", "Choices": [{"Variable": "$.mapped[2].v", "NumericEquals": 6, "Next": "Done"}], "Default": "Wrong"},
    "Wrong": {"Type": "Fail", "Error": "Wrong"},
    "Done": {"Type": "Pass", "Parameters": {"mapped.$": "$.mapped", "n.$": "$.n"}, "End": true}
  }
}"#;

#[test]
fn kill_9_at_any_moment_loses_nothing() {
    let binary = stepline_binary();
    let data = TempDir::new("crash");
    kills_lose_nothing(|| Serve::start(&binary, data.path()));
}

/// Twelve executions of [`MIXED`] through four `kill -9`s of the servers
/// `start` starts, one after the other, on one store.
pub(crate) fn kills_lose_nothing(start: impl Fn() -> Serve) {
    let executions = 12;
    let machine = "arn:aws:states:us-east-1:111111111111:stateMachine:mixed";
    {
        let serve = start();
        let created = serve.call(
            "CreateStateMachine",
            &json!({"name": "mixed", "definition": MIXED, "roleArn": "arn:aws:iam::111111111111:role/r"}),
        );
        assert_eq!(created.0, 200, "{}", created.1);
        for i in 0..executions {
            let input = json!({"n": i, "items": [1, 2, 3]}).to_string();
            let started = serve.call(
                "StartExecution",
                &json!({"stateMachineArn": machine, "name": format!("e{i}"), "input": input}),
            );
            assert_eq!(started.0, 200, "{}", started.1);
        }
        std::thread::sleep(Duration::from_millis(300));
        serve.kill();
    }
    // Kill again at other moments while the executions are under way.
    for pause_ms in [700, 1100, 400] {
        let serve = start();
        std::thread::sleep(Duration::from_millis(pause_ms));
        serve.kill();
    }
    let serve = start();
    let deadline = Instant::now() + Duration::from_secs(60);
    for i in 0..executions {
        let arn = format!("arn:aws:states:us-east-1:111111111111:execution:mixed:e{i}");
        let described = loop {
            let (status, described) =
                serve.call("DescribeExecution", &json!({"executionArn": arn}));
            assert_eq!(status, 200, "{described}");
            if described["status"] != "RUNNING" {
                break described;
            }
            assert!(Instant::now() < deadline, "{arn} never finished");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(described["status"], "SUCCEEDED", "{described}");
        let output: Value =
            serde_json::from_str(described["output"].as_str().expect("output")).expect("json");
        assert_eq!(
            output,
            json!({"mapped": [{"v": 2}, {"v": 4}, {"v": 6}], "n": i})
        );
        let (_, history) = serve.call("GetExecutionHistory", &json!({"executionArn": arn}));
        let events = history["events"].as_array().expect("events");
        let ids: Vec<u64> = events
            .iter()
            .map(|e| e["id"].as_u64().expect("id"))
            .collect();
        assert_eq!(
            ids,
            (1..=ids.len() as u64).collect::<Vec<_>>(),
            "{arn}: contiguous ids"
        );
        let count = |t: &str| events.iter().filter(|e| e["type"] == t).count();
        assert_eq!(count("ExecutionStarted"), 1, "{arn}");
        assert_eq!(count("ExecutionSucceeded"), 1, "{arn}");
        assert_eq!(count("MapIterationSucceeded"), 3, "{arn}");
        // The task failed twice (one retry), whatever the crashes.
        assert_eq!(count("TaskFailed"), 2, "{arn}");
        assert_eq!(count("WaitStateExited"), 4, "{arn}");
    }
    // The listing index went through the same kills: every execution
    // once, under its last status.
    let list = |filter: Value| {
        let mut request = json!({"stateMachineArn": machine, "maxResults": 1000});
        if let Some(status) = filter.as_str() {
            request["statusFilter"] = json!(status);
        }
        let (status, page) = serve.call("ListExecutions", &request);
        assert_eq!(status, 200, "{page}");
        let mut names: Vec<String> = page["executions"]
            .as_array()
            .expect("executions")
            .iter()
            .map(|e| e["name"].as_str().expect("name").to_owned())
            .collect();
        names.sort();
        names
    };
    let mut all: Vec<String> = (0..executions).map(|i| format!("e{i}")).collect();
    all.sort();
    assert_eq!(list(Value::Null), all);
    assert_eq!(list(json!("SUCCEEDED")), all);
    assert!(list(json!("RUNNING")).is_empty());
}

/// Two registered process tasks in a row; each result is the idempotency
/// key the process was given.
const PAIR: &str = r#"{
  "StartAt": "First",
  "States": {
    "First": {"Type": "Task", "Resource": "stepline:process:work", "ResultPath": "$.first", "Next": "Second"},
    "Second": {"Type": "Task", "Resource": "stepline:process:work", "ResultPath": "$.second", "End": true}
  }
}"#;

/// A callback task: the process hands the token out and the execution
/// waits for SendTaskSuccess.
const CALLBACK: &str = r#"{
  "StartAt": "Approve",
  "States": {
    "Approve": {"Type": "Task", "Resource": "stepline:process:notify.waitForTaskToken",
      "Parameters": {"token.$": "$$.Task.Token"}, "End": true}
  }
}"#;

/// The operator's configuration for the test: `work` appends its key and
/// the pid of the server that ran it to `log` (first thing, so a process
/// started just before a kill has written its line), then sleeps a little,
/// so that kills find tasks in flight; `notify` writes its task token to
/// `token`.
fn task_config(dir: &TempDir) -> (PathBuf, PathBuf, PathBuf) {
    let log = dir.path().join("invocations.log");
    let token = dir.path().join("token");
    let work = dir.write(
        "work.sh",
        format!(
            "printf '%s %s\\n' \"$STEPLINE_IDEMPOTENCY_KEY\" \"$PPID\" >> {log}\n\
             cat > /dev/null\n\
             /bin/sleep 0.3\n\
             printf '{{\"key\": \"%s\"}}\\n' \"$STEPLINE_IDEMPOTENCY_KEY\"\n",
            log = log.display()
        ),
    );
    let notify = dir.write(
        "notify.sh",
        format!(
            "cat > /dev/null\n\
             printf '%s' \"$STEPLINE_TASK_TOKEN\" > {token}.tmp && /bin/mv {token}.tmp {token}\n\
             echo '{{\"queued\": true}}'\n",
            token = token.display()
        ),
    );
    let config = dir.write(
        "stepline.toml",
        format!(
            "[tasks.processes.work]\ncommand = \"/bin/sh\"\nargs = [\"{}\"]\n\n\
             [tasks.processes.notify]\ncommand = \"/bin/sh\"\nargs = [\"{}\"]\n",
            work.display(),
            notify.display()
        ),
    );
    (config, log, token)
}

/// Every line of the invocation log: (idempotency key, server pid).
fn invocations(log: &Path) -> Vec<(String, u32)> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|line| {
            let (key, pid) = line.rsplit_once(' ').expect("KEY PID");
            (key.to_owned(), pid.parse().expect("pid"))
        })
        .collect()
}

/// Waits for a server's processes to have written what they will: the log
/// stops growing (processes started just before a kill live on, orphaned,
/// and write their line first thing).
fn settle(log: &Path) {
    let mut last = None;
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(150));
        let now = std::fs::metadata(log).map(|m| m.len()).ok();
        if now == last {
            return;
        }
        last = now;
    }
}

pub(crate) fn wait_until_ended(serve: &Serve, arn: &str, deadline: Instant) -> Value {
    loop {
        let (status, described) = serve.call("DescribeExecution", &json!({"executionArn": arn}));
        assert_eq!(status, 200, "{described}");
        if described["status"] != "RUNNING" {
            return described;
        }
        assert!(Instant::now() < deadline, "{arn} never finished");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub(crate) fn history(serve: &Serve, arn: &str) -> Vec<Value> {
    let (status, history) = serve.call(
        "GetExecutionHistory",
        &json!({"executionArn": arn, "maxResults": 1000}),
    );
    assert_eq!(status, 200, "{history}");
    history["events"].as_array().expect("events").clone()
}

/// Issue 7: processes in flight when the server dies are run again with
/// the same idempotency key after the restart (at least once, as AWS),
/// and only those; every execution ends with a whole history; a task
/// token captured before the kills still answers its task afterwards.
#[test]
fn kill_9_with_process_tasks_in_flight_runs_them_again_with_the_same_key() {
    let binary = stepline_binary();
    let dir = TempDir::new("crash-tasks");
    let data = dir.path().join("data");
    let (config, log, token_file) = task_config(&dir);
    let executions = 100;
    let prefix = "arn:aws:states:us-east-1:111111111111";
    let mut servers = Vec::new();
    let serve = Serve::start_with(&binary, &data, Some(&config));
    servers.push(serve.pid());
    for (name, definition) in [("pair", PAIR), ("callback", CALLBACK)] {
        let created = serve.call(
            "CreateStateMachine",
            &json!({"name": name, "definition": definition, "roleArn": "arn:aws:iam::111111111111:role/r"}),
        );
        assert_eq!(created.0, 200, "{}", created.1);
    }
    let started = serve.call(
        "StartExecution",
        &json!({"stateMachineArn": format!("{prefix}:stateMachine:callback"), "name": "approve"}),
    );
    assert_eq!(started.0, 200, "{}", started.1);
    for i in 0..executions {
        let started = serve.call(
            "StartExecution",
            &json!({"stateMachineArn": format!("{prefix}:stateMachine:pair"), "name": format!("p{i}"), "input": json!({"n": i}).to_string()}),
        );
        assert_eq!(started.0, 200, "{}", started.1);
    }
    // The token, as the process handed it out before any kill.
    let deadline = Instant::now() + Duration::from_secs(10);
    let token = loop {
        if let Ok(token) = std::fs::read_to_string(&token_file) {
            break token;
        }
        assert!(Instant::now() < deadline, "no task token was written");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(token.len(), 43, "{token}");
    std::thread::sleep(Duration::from_millis(100));
    serve.kill();
    settle(&log);
    let mut kills = 1;
    // Kill again while the recovered executions run their tasks again.
    for pause_ms in [350, 200, 450] {
        let serve = Serve::start_with(&binary, &data, Some(&config));
        servers.push(serve.pid());
        std::thread::sleep(Duration::from_millis(pause_ms));
        serve.kill();
        settle(&log);
        kills += 1;
    }
    let serve = Serve::start_with(&binary, &data, Some(&config));
    servers.push(serve.pid());
    let last_server = serve.pid();

    // The callback answers after the restarts, with the token from before.
    let callback_arn = format!("{prefix}:execution:callback:approve");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, answer) = serve.call(
            "SendTaskSuccess",
            &json!({"taskToken": token, "output": "{\"approved\": true}"}),
        );
        if status == 200 {
            break;
        }
        // Before its (repeated) submission is recorded the task may not
        // take answers yet; nothing else is acceptable.
        assert_eq!(answer["__type"], "TaskTimedOut", "{answer}");
        assert!(
            Instant::now() < deadline,
            "the token never answered: {answer}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let described = wait_until_ended(&serve, &callback_arn, deadline);
    assert_eq!(described["status"], "SUCCEEDED", "{described}");
    assert_eq!(described["output"], "{\"approved\":true}", "{described}");
    let events = history(&serve, &callback_arn);
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    let ids: Vec<u64> = events.iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>(), "{types:?}");
    let count = |t: &str| types.iter().filter(|&&x| x == t).count();
    assert_eq!(count("TaskSucceeded"), 1, "{types:?}");
    assert_eq!(count("ExecutionSucceeded"), 1, "{types:?}");
    // A token written again by a repeated run is the same token.
    if let Ok(again) = std::fs::read_to_string(&token_file) {
        assert_eq!(again, token);
    }

    // Every pair execution succeeds with two distinct keys as results.
    let mut recorded: BTreeMap<String, String> = BTreeMap::new();
    for i in 0..executions {
        let arn = format!("{prefix}:execution:pair:p{i}");
        let described = wait_until_ended(&serve, &arn, deadline);
        assert_eq!(described["status"], "SUCCEEDED", "{described}");
        let output: Value =
            serde_json::from_str(described["output"].as_str().expect("output")).expect("json");
        assert_eq!(output["n"], i, "{output}");
        let keys = [&output["first"]["key"], &output["second"]["key"]]
            .map(|k| k.as_str().expect("key").to_owned());
        assert_ne!(keys[0], keys[1], "{output}");
        for key in keys {
            assert!(key.starts_with(&format!("{arn}#")), "{key}");
            recorded.insert(key, arn.clone());
        }
        let events = history(&serve, &arn);
        let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        let ids: Vec<u64> = events.iter().map(|e| e["id"].as_u64().unwrap()).collect();
        assert_eq!(
            ids,
            (1..=ids.len() as u64).collect::<Vec<_>>(),
            "{arn}: contiguous ids"
        );
        // Exactly the events of one run, whatever the crashes.
        assert_eq!(
            types,
            [
                "ExecutionStarted",
                "TaskStateEntered",
                "TaskScheduled",
                "TaskStarted",
                "TaskSucceeded",
                "TaskStateExited",
                "TaskStateEntered",
                "TaskScheduled",
                "TaskStarted",
                "TaskSucceeded",
                "TaskStateExited",
                "ExecutionSucceeded"
            ],
            "{arn}"
        );
    }

    // The processes' own log: at least once, and again only after a kill.
    let log = invocations(&log);
    let mut by_key: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    let mut orphans = 0;
    for (key, pid) in &log {
        // A process forked just before its server was killed can read its
        // parent as init (1): it ran, but which server ran it is unknown.
        if *pid == 1 {
            orphans += 1;
            by_key.entry(key).or_default();
            continue;
        }
        assert!(servers.contains(pid), "{key} run by {pid}, not a server");
        by_key.entry(key).or_default().push(*pid);
    }
    assert!(orphans <= kills, "{orphans} runs without a server");
    let logged: BTreeSet<&str> = by_key.keys().copied().collect();
    let results: BTreeSet<&str> = recorded.keys().map(String::as_str).collect();
    let never_run: Vec<&&str> = results.difference(&logged).take(5).collect();
    let not_recorded: Vec<&&str> = logged.difference(&results).take(5).collect();
    assert!(
        never_run.is_empty() && not_recorded.is_empty(),
        "every recorded key was run, and nothing else was: recorded, never run: {never_run:?}; run under another key: {not_recorded:?}"
    );
    let mut repeated = 0;
    for (key, pids) in &by_key {
        // One run per server life at most: a second run comes only from a
        // later server, for a task the killed one had in flight.
        let distinct: BTreeSet<&u32> = pids.iter().collect();
        assert_eq!(
            distinct.len(),
            pids.len(),
            "{key} ran twice in one server: {pids:?}"
        );
        let order: Vec<usize> = pids
            .iter()
            .map(|p| servers.iter().position(|s| s == p).expect("a server"))
            .collect();
        assert!(order.is_sorted(), "{key}: {order:?}");
        if pids.len() > 1 {
            repeated += 1;
            assert!(
                pids[..pids.len() - 1].iter().all(|p| *p != last_server),
                "{key}: repeated within the last server {pids:?}"
            );
        }
    }
    eprintln!(
        "crash with tasks: {} tasks, {} runs, {repeated} tasks run again after {kills} kills",
        results.len(),
        log.len()
    );
    assert!(
        repeated > 0,
        "no kill caught a task in flight: the test did not test"
    );
}

/// `[server] store_cache_mib`: below the minimum, `serve` stops at once
/// with the key named; a small bound serves and runs executions.
#[test]
fn the_store_cache_bound_is_checked_and_served_with() {
    let dir = TempDir::new("store-cache");
    let tiny = dir.write("tiny.toml", "[server]\nstore_cache_mib = 2\n");
    let data = dir.path().join("data");
    let refused = crate::support::stepline(&[
        "serve".as_ref(),
        "--config".as_ref(),
        tiny.as_os_str(),
        "--data-dir".as_ref(),
        data.as_os_str(),
    ]);
    assert_ne!(refused.status, 0, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("server.store_cache_mib: 2 is below the minimum, 8"),
        "{}",
        refused.stderr
    );
    let small = dir.write("small.toml", "[server]\nstore_cache_mib = 8\n");
    let serve = Serve::start_with(&stepline_binary(), &data, Some(&small));
    let definition = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}});
    let (status, answer) = serve.call(
        "CreateStateMachine",
        &json!({"name": "cached", "definition": definition.to_string(), "roleArn": "arn:aws:iam::111111111111:role/r"}),
    );
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = serve.call(
        "StartExecution",
        &json!({"stateMachineArn": "arn:aws:states:us-east-1:111111111111:stateMachine:cached", "input": "{\"k\": 1}"}),
    );
    assert_eq!(status, 200, "{answer}");
    let ended = wait_until_ended(
        &serve,
        answer["executionArn"].as_str().expect("arn"),
        Instant::now() + Duration::from_secs(20),
    );
    assert_eq!(ended["status"], "SUCCEEDED", "{ended}");
}

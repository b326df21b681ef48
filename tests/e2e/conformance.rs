//! The conformance cases recorded against AWS (../shared/conformance/):
//! every definition is run in process and compared with what AWS answered,
//! in tiers: the outcome (status, output or error), the cause text (AWS's
//! words, exactly: docs/errors.md), and the history (event types, then
//! every event).
//!
//! Every case, JSONPath and JSONata, must pass the outcome tier, give
//! AWS's cause word for word where AWS recorded a failure, and match AWS's
//! full history, except those listed in `KNOWN_OUTCOME_GAPS` /
//! `KNOWN_HISTORY_GAPS` with the reason (no cause may differ). A listed
//! case that starts passing fails the test too, so the lists stay true.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use serde_json::Value;
use stepline::aws::history::event_json;
use stepline::cli::run::local_execution;
use stepline_language::asl;
use stepline_language::interp::{Failure, Status};
use stepline_runtime::{
    Engine, EngineConfig, ManualClock, Outcome, TaskCall, TaskFuture, TaskRunner,
    UnavailableInvoker, WallClock, run_to_completion,
};
use stepline_store::{ExecutionStatus, MemoryStore, WorkflowType};

use crate::support::conformance_cases;

/// Cases whose outcome does not match AWS yet: (file name prefix, why).
const KNOWN_OUTCOME_GAPS: &[(&str, &str)] = &[];

/// Cases whose full history differs from AWS's record: (file name
/// prefix, why). Every other case with a recorded history must
/// match it event by event (ids, previousEventId, type, details).
const KNOWN_HISTORY_GAPS: &[(&str, &str)] = &[
    (
        "assign_test_assign_reference_variables__TestAssignReferenceVariables__test_reference_in_map_state_MAP_STATE_REFERENCE_IN_ITEM_SELECTOR",
        "a distributed Map: AWS links MapStateExited to MapRunStarted here, and to MapRunSucceeded in the four other recorded distributed Maps, which we follow",
    ),
    (
        "scenarios_test_base_scenarios__TestBaseScenarios__test_parallel_state_PARALLEL_STATE",
        "Parallel branches run concurrently on AWS; the recording's order (and its ids, [0]) cannot be reproduced by any deterministic schedule",
    ),
    (
        "scenarios_test_base_scenarios__TestBaseScenarios__test_parallel_state_order",
        "Parallel branches run concurrently on AWS (as above)",
    ),
];

#[derive(Debug, Default)]
struct Tally {
    cases: usize,
    outcome: usize,
    cause: (usize, usize),
    history: (usize, usize),
    events: (usize, usize),
}

#[derive(Debug)]
struct Verdict {
    name: String,
    jsonata: bool,
    outcome: Result<(), String>,
    /// Where both AWS and we failed: the cause, word for word.
    cause: Option<Result<(), String>>,
    history: Option<Result<(), String>>,
    /// The strictest tier: every event's id, previousEventId, type and
    /// details, where AWS's full history was recorded.
    events: Option<Result<(), String>>,
}

#[test]
fn conformance_cases_match_aws() {
    let Some(dir) = conformance_cases() else {
        eprintln!(
            "SKIPPED: ../shared/conformance/cases is absent; set STEPLINE_SHARED_DIR to run the conformance cases"
        );
        return;
    };
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("read the cases")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let verdicts: Vec<Verdict> = files
        .iter()
        .map(|path| {
            let case: Value =
                serde_json::from_slice(&std::fs::read(path).expect("read")).expect("case JSON");
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            run_case(name, &case)
        })
        .collect();

    let mut tallies = [Tally::default(), Tally::default()];
    for v in &verdicts {
        let t = &mut tallies[usize::from(v.jsonata)];
        t.cases += 1;
        t.outcome += usize::from(v.outcome.is_ok());
        if let Some(cause) = &v.cause {
            t.cause.1 += 1;
            t.cause.0 += usize::from(cause.is_ok());
        }
        if let Some(h) = &v.history {
            t.history.1 += 1;
            t.history.0 += usize::from(h.is_ok());
        }
        if let Some(e) = &v.events {
            t.events.1 += 1;
            t.events.0 += usize::from(e.is_ok());
        }
    }
    let (matched, recorded) = tallies
        .iter()
        .fold((0, 0), |(m, r), t| (m + t.cause.0, r + t.cause.1));
    eprintln!(
        "conformance cause tier: {matched}/{recorded} recorded causes match AWS's word for word"
    );
    for (label, t) in ["JSONPath", "JSONata"].iter().zip(&tallies) {
        eprintln!(
            "conformance {label}: outcome {}/{}, cause text {}/{}, history event types {}/{}, full history events {}/{}",
            t.outcome,
            t.cases,
            t.cause.0,
            t.cause.1,
            t.history.0,
            t.history.1,
            t.events.0,
            t.events.1
        );
    }
    if std::env::var_os("STEPLINE_CONFORMANCE_EVENTS").is_some() {
        for v in verdicts.iter().filter(|v| !v.jsonata) {
            if let Some(Err(why)) = &v.events {
                eprintln!("  events differ: {}: {why}", v.name);
            }
        }
    }
    for v in verdicts
        .iter()
        .filter(|v| v.history.as_ref().is_some_and(Result::is_err) && v.outcome.is_ok())
    {
        if let Some(Err(why)) = &v.history {
            eprintln!("  history differs: {}: {why}", v.name);
        }
    }

    let mut problems = Vec::new();
    for v in &verdicts {
        let known = KNOWN_OUTCOME_GAPS
            .iter()
            .find(|(prefix, _)| v.name.starts_with(prefix));
        match (&v.outcome, known) {
            (Err(why), None) => problems.push(format!("{}: {why}", v.name)),
            (Ok(()), Some((prefix, _))) => problems.push(format!(
                "{}: passes now; remove '{prefix}' from KNOWN_OUTCOME_GAPS",
                v.name
            )),
            _ => {}
        }
    }
    for v in &verdicts {
        if let Some(Err(why)) = &v.cause {
            problems.push(format!("{}: cause: {why}", v.name));
        }
    }
    for v in verdicts.iter().filter(|v| v.outcome.is_ok()) {
        let known = KNOWN_HISTORY_GAPS
            .iter()
            .find(|(prefix, _)| v.name.starts_with(prefix));
        match (&v.events, known) {
            (Some(Err(why)), None) => problems.push(format!("{}: history: {why}", v.name)),
            (Some(Ok(())), Some((prefix, _))) => problems.push(format!(
                "{}: the history matches now; remove '{prefix}' from KNOWN_HISTORY_GAPS",
                v.name
            )),
            _ => {}
        }
    }
    assert!(
        problems.is_empty(),
        "{} cases differ from AWS (outcome, cause or history):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

fn run_case(name: String, case: &Value) -> Verdict {
    let definition = &case["definition"];
    let jsonata = definition.to_string().contains("JSONata");
    let expected = &case["expected"];
    let text = serde_json::to_vec(definition).expect("serialise");
    let validation = asl::validate(&text);
    let Some(machine) = validation.machine else {
        let errors: Vec<String> = validation.errors().map(ToString::to_string).collect();
        return Verdict {
            name,
            jsonata,
            outcome: Err(format!(
                "the definition did not validate: {}",
                errors.join("; ")
            )),
            cause: None,
            history: None,
            events: None,
        };
    };
    let start = Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("a date");
    let clock = ManualClock::new(start);
    let info = local_execution("ArnPart_0idx", "ExecArnPart_0idx", start);
    // A distributed Map is a Map Run of child executions: only the engine
    // (what `stepline serve` runs) has them; `stepline run` runs it inline.
    // An EXPRESS recording (its execution ARN says so) runs as one.
    let express = expected.to_string().contains(":express:");
    let outcome = if express {
        run_in_engine(&text, &case["input"], WorkflowType::Express)
    } else if definition.to_string().contains("DISTRIBUTED") {
        run_in_engine(&text, &case["input"], WorkflowType::Standard)
    } else {
        run_to_completion(
            Arc::new(machine),
            info,
            case["input"].clone(),
            0,
            &clock,
            &mut UnavailableInvoker,
        )
    };
    let (status, output, error, cause) = match &outcome.status {
        Status::Succeeded { output } => ("SUCCEEDED", Some(Value::clone(output)), None, None),
        Status::Failed(f) => ("FAILED", None, f.error.clone(), f.cause.clone()),
        Status::Aborted(f) => ("ABORTED", None, f.error.clone(), f.cause.clone()),
        Status::TimedOut(f) => ("TIMED_OUT", None, f.error.clone(), f.cause.clone()),
        Status::Running => ("RUNNING", None, None, None),
    };
    let expected_status = expected["status"].as_str().unwrap_or_default();
    let outcome_check = if status != expected_status {
        Err(format!(
            "status {status} (error {error:?}, cause {cause:?}), AWS {expected_status}"
        ))
    } else if status == "SUCCEEDED" {
        let actual = output.unwrap_or(Value::Null);
        if same(&expected["output"], &actual) {
            Ok(())
        } else {
            Err(format!("output {actual}, AWS {}", expected["output"]))
        }
    } else {
        let expected_error = expected["error"].as_str();
        if expected_error == error.as_deref() {
            Ok(())
        } else {
            Err(format!("error {error:?}, AWS {expected_error:?}"))
        }
    };
    let cause_check = (status == "FAILED" && expected_status == "FAILED").then(|| {
        let ours = cause.map_or(Value::Null, Value::String);
        if same(&expected["cause"], &ours) {
            Ok(())
        } else {
            Err(format!("{ours}, AWS {}", expected["cause"]))
        }
    });
    let history_check = expected["history_event_types"].as_array().map(|types| {
        let expected_types: Vec<&str> = types.iter().filter_map(Value::as_str).collect();
        let actual: Vec<Value> = outcome.history.iter().map(event_json).collect();
        let actual_types: Vec<&str> = actual.iter().filter_map(|e| e["type"].as_str()).collect();
        if expected_types == actual_types {
            Ok(())
        } else {
            Err(format!("types {actual_types:?}, AWS {expected_types:?}"))
        }
    });
    let events_check = expected["history"].as_array().map(|recorded| {
        let actual: Vec<Value> = outcome.history.iter().map(event_json).collect();
        if recorded.len() != actual.len() {
            return Err(format!("{} events, AWS {}", actual.len(), recorded.len()));
        }
        for (ours, theirs) in actual.iter().zip(recorded) {
            let mut theirs = theirs.clone();
            let mut ours = ours.clone();
            // Timestamps are placeholders in the recording.
            theirs.as_object_mut().map(|o| o.remove("timestamp"));
            ours.as_object_mut().map(|o| o.remove("timestamp"));
            if !same(&theirs, &ours) {
                return Err(format!("event {ours}, AWS {theirs}"));
            }
        }
        Ok(())
    });
    Verdict {
        name,
        jsonata,
        outcome: outcome_check,
        cause: cause_check,
        history: history_check,
        events: events_check,
    }
}

/// Compares a recorded value with ours: numbers by value, JSON text by its
/// parsed value, and the recording's placeholders (`<...>`, `date`,
/// `timestamp`, the role) as wildcards.
/// No Task of a recorded distributed Map case reaches a runner.
struct NoTasks;

impl TaskRunner for NoTasks {
    fn run(&self, _call: TaskCall) -> TaskFuture {
        Box::pin(async { Err(Failure::new("States.Runtime", "no task runner here")) })
    }
}

/// Runs a definition through the engine (in memory), as `stepline serve`
/// does, named as the recordings name it.
fn run_in_engine(definition: &[u8], input: &Value, workflow_type: WorkflowType) -> Outcome {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let engine = Engine::open(
            Arc::new(MemoryStore::new()),
            Arc::new(NoTasks),
            Arc::new(WallClock),
            EngineConfig::default(),
        )
        .expect("engine");
        let text = String::from_utf8_lossy(definition);
        let machine = engine
            .create_state_machine("ArnPart_0idx", &text, Some("snf_role_arn"), workflow_type)
            .await
            .expect("create");
        let started = engine
            .start_execution(
                &machine.arn,
                Some("ExecArnPart_0idx"),
                Some(&input.to_string()),
            )
            .await
            .expect("start");
        let ended = engine.wait_for(&started.arn).await.expect("wait");
        // An EXPRESS execution keeps no history.
        let len = engine.history_len(&ended.arn).unwrap_or(0);
        let history = if len == 0 {
            Vec::new()
        } else {
            engine.history(&ended.arn, 1, len).expect("history")
        };
        let failure = || Failure {
            error: ended.error.clone(),
            cause: ended.cause.clone(),
        };
        let status = match ended.status {
            ExecutionStatus::Succeeded => Status::Succeeded {
                output: Arc::new(
                    serde_json::from_str(ended.output.as_deref().unwrap_or("null"))
                        .expect("output"),
                ),
            },
            ExecutionStatus::Failed => Status::Failed(failure()),
            ExecutionStatus::Aborted => Status::Aborted(failure()),
            ExecutionStatus::TimedOut => Status::TimedOut(failure()),
            ExecutionStatus::Running => Status::Running,
        };
        Outcome { status, history }
    })
}

fn same(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::String(e), Value::String(a)) => {
            if e == a || wildcard_match(e, a) {
                return true;
            }
            match (
                serde_json::from_str::<Value>(e),
                serde_json::from_str::<Value>(a),
            ) {
                // Both JSON text: compare what they hold ("\"date\"" matches
                // any quoted date).
                (Ok(ev), Ok(av)) if ev != Value::String(e.clone()) => same(&ev, &av),
                _ => false,
            }
        }
        (Value::String(e), other) if matches!(other, Value::Object(_) | Value::Array(_)) => {
            serde_json::from_str::<Value>(e).is_ok_and(|ev| same(&ev, other))
        }
        // The recording parsed some JSON text (payloads in events); ours is text.
        (e, Value::String(a)) => serde_json::from_str::<Value>(a).is_ok_and(|av| same(e, &av)),
        (Value::Array(e), Value::Array(a)) => {
            e.len() == a.len() && e.iter().zip(a).all(|(x, y)| same(x, y))
        }
        (Value::Object(e), Value::Object(a)) => {
            e.len() == a.len()
                && e.iter()
                    .all(|(k, v)| a.get(k).is_some_and(|av| same(v, av)))
        }
        (e, a) => e == a,
    }
}

/// `expected` with each placeholder matching any text.
fn wildcard_match(expected: &str, actual: &str) -> bool {
    if matches!(
        expected,
        "date" | "timestamp" | "snf_role_arn" | "sfn_role_arn" | "start-time" | "entered-time"
    ) {
        return true;
    }
    let mut pieces = Vec::new();
    let mut rest = expected;
    while let Some(start) = rest.find('<') {
        let Some(len) = rest[start..].find('>') else {
            break;
        };
        let token = &rest[start + 1..start + len];
        if token.is_empty()
            || !token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_:-".contains(c))
        {
            break;
        }
        pieces.push(&rest[..start]);
        rest = &rest[start + len + 1..];
    }
    if pieces.is_empty() {
        return false;
    }
    pieces.push(rest);
    glob(&pieces, actual)
}

fn glob(pieces: &[&str], text: &str) -> bool {
    match pieces {
        [] => text.is_empty(),
        [only] => text == *only,
        [first, rest @ ..] => {
            let Some(after) = text.strip_prefix(first) else {
                return false;
            };
            (1..=after.len())
                .filter(|&i| after.is_char_boundary(i))
                .any(|i| glob_tail(rest, &after[i..]))
        }
    }
}

/// Like `glob`, but the text before the first piece was a placeholder's.
fn glob_tail(pieces: &[&str], text: &str) -> bool {
    glob(pieces, text)
}

#[test]
fn recorded_placeholders_match_our_values() {
    let aws = serde_json::json!({"assignedVariables":{"startAt":"\"date\"","waitTime":"0"},"name":"Start","output":{}});
    let ours = serde_json::json!({"name":"Start","output":"{}","assignedVariables":{"waitTime":"0","startAt":"\"2024-11-06T09:42:03Z\""}});
    assert!(same(
        &aws["assignedVariables"]["startAt"],
        &ours["assignedVariables"]["startAt"]
    ));
    assert!(same(&aws["output"], &ours["output"]));
    assert!(same(&aws, &ours));
}

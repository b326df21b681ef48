//! The journal's entries: the store's own types, part of its format.
//!
//! A journal entry records one command an execution received. The runtime
//! converts the interpreter's commands to and from these types at its
//! boundary (`stepline_runtime::durable`), so that a refactoring of the
//! interpreter can never change what is on disk without a change here.
//!
//! Every name on disk is spelled out (`rename`), so renaming a Rust item
//! changes nothing stored. The shapes are serde's external tagging, as the
//! interpreter's `Command` derived them when the journal stored it
//! directly: `{"Start":{"input":...}}`, `"Redrive"`; task and timer ids are
//! plain numbers. The bytes of every variant are pinned by a test
//! (`journal_bytes_are_pinned` below). A change that an earlier build could
//! not read (a new variant, a field it would require) goes with a new
//! [`crate::FORMAT_VERSION`]; a new optional field read with a default
//! needs none.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One command of an execution's journal, numbered from 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    #[serde(rename = "seq")]
    pub seq: u64,
    /// When the command was applied: replay gives it to the interpreter.
    #[serde(rename = "at")]
    pub at: DateTime<Utc>,
    #[serde(rename = "command")]
    pub command: JournalCommand,
}

/// Something that happened outside the interpreter, as the journal keeps
/// it: one variant per command of the interpreter, field for field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum JournalCommand {
    /// The execution starts with `input`.
    #[serde(rename = "Start")]
    Start {
        #[serde(rename = "input")]
        input: Value,
    },
    /// A task was handed to its runner (or taken by an activity worker).
    #[serde(rename = "TaskStarted")]
    TaskStarted {
        #[serde(rename = "task")]
        task: u64,
        /// The activity worker that took the task (GetActivityTask).
        #[serde(
            rename = "worker_name",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        worker_name: Option<String>,
        /// The pool of slots the task drew from and how long it waited
        /// for its slot (absent for every task outside a pool).
        #[serde(rename = "pool", default, skip_serializing_if = "Option::is_none")]
        pool: Option<JournalPoolWait>,
    },
    /// A `.sync` or `.waitForTaskToken` request was accepted, with the
    /// service's answer; the task's result comes later.
    #[serde(rename = "TaskSubmitted")]
    TaskSubmitted {
        #[serde(rename = "task")]
        task: u64,
        #[serde(rename = "output")]
        output: Value,
    },
    /// SendTaskHeartbeat for a task.
    #[serde(rename = "TaskHeartbeat")]
    TaskHeartbeat {
        #[serde(rename = "task")]
        task: u64,
    },
    #[serde(rename = "TaskSucceeded")]
    TaskSucceeded {
        #[serde(rename = "task")]
        task: u64,
        #[serde(rename = "output")]
        output: Value,
        /// Set when the result came from the task cache (absent before
        /// the cache existed, and for every call).
        #[serde(rename = "cached", default, skip_serializing_if = "Option::is_none")]
        cached: Option<JournalCacheHit>,
    },
    /// A task failed; error and cause are written even when absent (`null`).
    #[serde(rename = "TaskFailed")]
    TaskFailed {
        #[serde(rename = "task")]
        task: u64,
        #[serde(rename = "error", default)]
        error: Option<String>,
        #[serde(rename = "cause", default)]
        cause: Option<String>,
    },
    #[serde(rename = "TimerFired")]
    TimerFired {
        #[serde(rename = "timer")]
        timer: u64,
    },
    /// StopExecution (or a timeout of the whole execution).
    #[serde(rename = "Stop")]
    Stop {
        #[serde(rename = "error", default)]
        error: Option<String>,
        #[serde(rename = "cause", default)]
        cause: Option<String>,
    },
    /// RedriveExecution.
    #[serde(rename = "Redrive")]
    Redrive,
}

/// A task's wait for a slot of a pool, as the journal keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalPoolWait {
    #[serde(rename = "name")]
    pub name: String,
    #[serde(rename = "waited_ms")]
    pub waited_ms: u64,
}

/// Where a cached result came from, as the journal keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalCacheHit {
    #[serde(rename = "key")]
    pub key: String,
    #[serde(rename = "execution_arn")]
    pub execution_arn: String,
    #[serde(rename = "stored")]
    pub stored: DateTime<Utc>,
    #[serde(rename = "expires")]
    pub expires: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::{JournalCommand, JournalEntry};
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    /// Every variant, and the exact bytes the journal holds for it (what
    /// builds before these types wrote too). A change to these types that
    /// changes a byte fails here.
    fn pinned() -> Vec<(JournalCommand, &'static str)> {
        vec![
            (
                JournalCommand::Start {
                    input: json!({"order": 7, "items": ["a"]}),
                },
                r#"{"Start":{"input":{"order":7,"items":["a"]}}}"#,
            ),
            (
                JournalCommand::TaskStarted {
                    task: 3,
                    worker_name: None,
                    pool: None,
                },
                r#"{"TaskStarted":{"task":3}}"#,
            ),
            (
                JournalCommand::TaskStarted {
                    task: 4,
                    worker_name: Some("w-1".into()),
                    pool: None,
                },
                r#"{"TaskStarted":{"task":4,"worker_name":"w-1"}}"#,
            ),
            (
                JournalCommand::TaskSubmitted {
                    task: 5,
                    output: json!({"ExecutionArn": "x"}),
                },
                r#"{"TaskSubmitted":{"task":5,"output":{"ExecutionArn":"x"}}}"#,
            ),
            (
                JournalCommand::TaskHeartbeat { task: 6 },
                r#"{"TaskHeartbeat":{"task":6}}"#,
            ),
            (
                JournalCommand::TaskSucceeded {
                    task: 7,
                    output: json!([1, null]),
                    cached: None,
                },
                r#"{"TaskSucceeded":{"task":7,"output":[1,null]}}"#,
            ),
            (
                JournalCommand::TaskSucceeded {
                    task: 7,
                    output: json!(1),
                    cached: Some(super::JournalCacheHit {
                        key: "ab12".into(),
                        execution_arn: "arn:x".into(),
                        stored: Utc.timestamp_millis_opt(1_767_225_600_000).unwrap(),
                        expires: Utc.timestamp_millis_opt(1_767_229_200_000).unwrap(),
                    }),
                },
                r#"{"TaskSucceeded":{"task":7,"output":1,"cached":{"key":"ab12","execution_arn":"arn:x","stored":"2026-01-01T00:00:00Z","expires":"2026-01-01T01:00:00Z"}}}"#,
            ),
            (
                JournalCommand::TaskFailed {
                    task: 8,
                    error: Some("Flaky".into()),
                    cause: None,
                },
                r#"{"TaskFailed":{"task":8,"error":"Flaky","cause":null}}"#,
            ),
            (
                JournalCommand::TimerFired { timer: 9 },
                r#"{"TimerFired":{"timer":9}}"#,
            ),
            (
                JournalCommand::Stop {
                    error: None,
                    cause: Some("by hand".into()),
                },
                r#"{"Stop":{"error":null,"cause":"by hand"}}"#,
            ),
            (JournalCommand::Redrive, r#""Redrive""#),
        ]
    }

    #[test]
    fn journal_bytes_are_pinned() {
        for (command, text) in pinned() {
            assert_eq!(serde_json::to_string(&command).unwrap(), text);
            let read: JournalCommand = serde_json::from_str(text).unwrap();
            assert_eq!(read, command, "{text}");
        }
    }

    #[test]
    fn an_entry_reads_and_writes_as_before() {
        let text = r#"{"seq":2,"at":"2026-01-01T00:00:00.005Z","command":{"TaskSucceeded":{"task":1,"output":{"paid":true}}}}"#;
        let entry: JournalEntry = serde_json::from_str(text).unwrap();
        assert_eq!(
            entry,
            JournalEntry {
                seq: 2,
                at: Utc.timestamp_millis_opt(1_767_225_600_005).unwrap(),
                command: JournalCommand::TaskSucceeded {
                    cached: None,
                    task: 1,
                    output: json!({"paid": true}),
                },
            }
        );
        assert_eq!(serde_json::to_string(&entry).unwrap(), text);
    }
}

//! What the store keeps, as plain serialisable records.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// STANDARD or EXPRESS, as AWS names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkflowType {
    #[serde(rename = "STANDARD")]
    Standard,
    #[serde(rename = "EXPRESS")]
    Express,
}

impl WorkflowType {
    /// AWS's name of the type.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkflowType::Standard => "STANDARD",
            WorkflowType::Express => "EXPRESS",
        }
    }
}

/// A state machine: its definition as written, and what AWS keeps with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateMachineRecord {
    pub arn: String,
    pub name: String,
    /// The definition text exactly as given (compiled again at start).
    pub definition: String,
    pub role_arn: String,
    pub workflow_type: WorkflowType,
    pub created: DateTime<Utc>,
    /// Bumped by every update.
    pub revision: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Published versions (PublishStateMachineVersion), by number.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub versions: BTreeMap<u64, VersionRecord>,
    /// The last version number given (numbers are never reused).
    #[serde(default)]
    pub last_version: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub aliases: BTreeMap<String, AliasRecord>,
}

/// A published version: a revision that no longer changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionRecord {
    pub revision: u64,
    pub created: DateTime<Utc>,
    pub description: Option<String>,
}

/// An alias: a name routing executions to one or two versions by weight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AliasRecord {
    pub description: Option<String>,
    /// (version, weight in percent); the weights add up to 100.
    pub routing: Vec<(u64, u32)>,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
}

/// An activity: a named queue of tasks that remote workers poll.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityRecord {
    pub arn: String,
    pub name: String,
    pub created: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// An execution's status, as AWS names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExecutionStatus {
    #[serde(rename = "RUNNING")]
    Running,
    #[serde(rename = "SUCCEEDED")]
    Succeeded,
    #[serde(rename = "FAILED")]
    Failed,
    #[serde(rename = "TIMED_OUT")]
    TimedOut,
    #[serde(rename = "ABORTED")]
    Aborted,
}

impl ExecutionStatus {
    /// Every status, in the order AWS lists them.
    pub const ALL: [ExecutionStatus; 5] = [
        ExecutionStatus::Running,
        ExecutionStatus::Succeeded,
        ExecutionStatus::Failed,
        ExecutionStatus::TimedOut,
        ExecutionStatus::Aborted,
    ];

    /// The status AWS's name names, if any (AWS's PENDING_REDRIVE is none
    /// of ours: a redrive takes an execution straight back to RUNNING).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// AWS's name of the status.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::Running => "RUNNING",
            ExecutionStatus::Succeeded => "SUCCEEDED",
            ExecutionStatus::Failed => "FAILED",
            ExecutionStatus::TimedOut => "TIMED_OUT",
            ExecutionStatus::Aborted => "ABORTED",
        }
    }
}

/// An execution: what DescribeExecution answers, plus what replay needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionRecord {
    pub arn: String,
    pub state_machine_arn: String,
    /// The state machine revision it runs.
    pub revision: u64,
    pub name: String,
    /// The input as JSON text.
    pub input: String,
    pub status: ExecutionStatus,
    pub start: DateTime<Utc>,
    pub stop: Option<DateTime<Utc>>,
    /// The output as JSON text, once SUCCEEDED.
    pub output: Option<String>,
    pub error: Option<String>,
    pub cause: Option<String>,
    /// The interpreter's random seed: replay needs it.
    pub seed: u64,
    pub redrive_count: u32,
    /// What the execution's task tokens are minted from (never shown).
    #[serde(default)]
    pub token_secret: String,
    /// The mock test case it runs (started as `stateMachineArn#TestCase`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_case: Option<String>,
    /// A child of a distributed Map: what it runs (recovery needs it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map_run: Option<MapRunChild>,
    /// Waiting for a slot of its state machine's `max_running`, or for
    /// its window to open (`Queued::until`): stored,
    /// RUNNING to AWS clients, but not started (no journal, no history).
    /// Durable, so the queue survives a restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued: Option<Queued>,
}

/// How a queued execution is ordered: higher `priority` first, then the
/// earlier start (first in, first out); and, for one held by execution
/// windows, when its window opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queued {
    pub priority: i32,
    /// Held by its windows until then (`outside = "hold"`); past that
    /// time it waits for a slot of `max_running`, if any, or starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
}

impl ExecutionRecord {
    /// Whether no other execution of its state machine may have its name.
    /// Not so for an EXPRESS execution started on its own: AWS runs
    /// EXPRESS executions of one name side by side, each with an id of its
    /// own in its ARN (`...:express:MACHINE:NAME:ID`). A distributed Map's
    /// EXPRESS children (`...:express:MACHINE/LABEL:NAME`) keep unique
    /// names: their Map Run finds them by name.
    pub fn has_unique_name(&self) -> bool {
        unique_name(&self.arn, self.map_run.is_some())
    }

    /// What a listing shows of it (see [`ExecutionSummary`]).
    pub fn summary(&self) -> ExecutionSummary {
        ExecutionSummary {
            arn: self.arn.clone(),
            state_machine_arn: self.state_machine_arn.clone(),
            name: self.name.clone(),
            status: self.status,
            start: self.start,
            stop: self.stop,
            redrive_count: self.redrive_count,
            map_run_arn: self.map_run.as_ref().map(|m| m.map_run_arn.clone()),
            error: self.error.as_ref().map(|e| summary_error(e)),
        }
    }
}

/// How much of an error name a summary keeps (AWS bounds error names at
/// 256 characters; this keeps a listing's entries small whatever a task
/// wrote).
pub const SUMMARY_ERROR_CHARS: usize = 256;

fn summary_error(error: &str) -> String {
    error.chars().take(SUMMARY_ERROR_CHARS).collect()
}

/// See [`ExecutionRecord::has_unique_name`].
fn unique_name(arn: &str, map_run_child: bool) -> bool {
    map_run_child || !is_express_arn(arn)
}

/// Whether `arn` is an EXPRESS execution's (`...:express:...`), started on
/// its own or as a distributed Map's child: one that no journal resumes.
pub fn is_express_arn(arn: &str) -> bool {
    arn.split(':').nth(5) == Some("express")
}

/// An execution as a listing shows it (ListExecutions, the REST list, the
/// CLI and the web list): never its input, output or error, so that a
/// page reads a few hundred bytes per execution however large those are.
/// The store keeps it in its listing index, rewritten at every change of
/// status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionSummary {
    pub arn: String,
    pub state_machine_arn: String,
    pub name: String,
    pub status: ExecutionStatus,
    pub start: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub redrive_count: u32,
    /// The Map Run that started it, for a distributed Map's child.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map_run_arn: Option<String>,
    /// The error it failed with (its name, never the cause), for the
    /// list's error column; summaries written before this field read
    /// `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl ExecutionSummary {
    /// As [`ExecutionRecord::has_unique_name`].
    pub fn has_unique_name(&self) -> bool {
        unique_name(&self.arn, self.map_run_arn.is_some())
    }
}

/// Where a distributed Map's child execution comes from: it runs the
/// ItemProcessor scope of its parent's state machine revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapRunChild {
    pub map_run_arn: String,
    /// The parent's state machine (its record holds the definition).
    pub machine_arn: String,
    pub revision: u64,
    /// The ItemProcessor's scope in the compiled definition.
    pub scope: u32,
    /// ExecutionType EXPRESS: not resumed after a restart.
    #[serde(default)]
    pub express: bool,
}

/// A Map Run (DescribeMapRun): its settings and its counts, kept up to
/// date by the Map Run runner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MapRunRecord {
    pub map_run_arn: String,
    pub execution_arn: String,
    /// RUNNING, SUCCEEDED, FAILED or ABORTED.
    pub status: String,
    pub start: DateTime<Utc>,
    pub stop: Option<DateTime<Utc>>,
    pub max_concurrency: u64,
    /// `None`: not set (with neither set, no failure is tolerated).
    pub tolerated_failure_percentage: Option<f64>,
    pub tolerated_failure_count: Option<u64>,
    /// Item counts (each item of a batch counts).
    pub items: MapRunCounts,
    /// Child execution counts.
    pub executions: MapRunCounts,
}

/// DescribeMapRun's itemCounts / executionCounts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapRunCounts {
    pub pending: u64,
    pub running: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub timed_out: u64,
    pub aborted: u64,
    pub total: u64,
    pub results_written: u64,
}

/// A pending timer: which execution, which of its timers, when.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TimerRecord {
    pub due: DateTime<Utc>,
    pub execution: String,
    pub timer: u64,
}

/// A task token and the task it answers for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskTokenRecord {
    pub token: String,
    pub execution: String,
    pub task: u64,
}

/// A trigger's definition: what starts executions by itself (a schedule,
/// a webhook, files arriving). The store keeps the definition as JSON and
/// does not interpret it; the server owns its shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriggerRecord {
    pub name: String,
    /// The definition as the server reads it (kind, state machine, ...).
    pub spec: serde_json::Value,
    pub enabled: bool,
    /// Where it was defined: `config` (the operator's file, replaced at
    /// every start) or `api` (REST, kept until deleted).
    pub origin: String,
    pub created: DateTime<Utc>,
}

/// What a trigger has done: written by the trigger's driver only, kept
/// apart from [`TriggerRecord`] so that enabling a trigger and recording a
/// firing never overwrite each other.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TriggerStateRecord {
    pub name: String,
    /// The last schedule slot handled (fired or skipped by the catch-up
    /// policy): the cursor a restart resumes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_slot: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_fired: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_fire: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_execution: Option<String>,
    /// Executions started (an event already started counts once).
    #[serde(default)]
    pub fired: u64,
    /// Deadlines (a schedule's `finished_by`, a dataset's timeout, a state
    /// machine's expected durations): every one due up to this instant has
    /// been checked and its alert raised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadlines_checked: Option<DateTime<Utc>>,
    /// Alerts raised and not yet delivered (the server's JSON): written in
    /// the same record as the cursor above, removed once delivered, sent
    /// again after a restart.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_alerts: Vec<serde_json::Value>,
    /// A state machine's settings set over the API (the server's JSON),
    /// in its `settings:NAME` record: one small record per state machine,
    /// read by every node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<serde_json::Value>,
}

/// What one attempt of a process task wrote: its stderr, and its stdout
/// when it failed (a successful attempt's stdout is its output, already in
/// the history). Each text is the attempt's last bytes, bounded by the
/// engine (`runtime::TASK_LOG_BYTES`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskLogRecord {
    pub execution: String,
    /// Given by the store when the record is put: 1, 2... per execution.
    #[serde(default)]
    pub seq: u64,
    pub state_name: String,
    /// The interpreter's task id (a Map iteration's tasks differ by it).
    pub task: u64,
    /// 1 for the first attempt, 2 for the first retry...
    pub attempt: u32,
    pub time: DateTime<Utc>,
    /// The ASL error of a failed attempt; `None` when it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub stderr: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
    /// Whether earlier bytes were dropped to keep within the bound.
    #[serde(default)]
    pub truncated: bool,
}

/// A task result kept for reuse (result caching, `[tasks.cache]`): what a
/// task of `resource` answered for the input whose hash is `key`, until
/// `expires`. Written in the same batch as the TaskSucceeded it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheEntryRecord {
    /// The hash of the resource and the task's effective input (or of the
    /// rule's key template over it), as lowercase hex.
    pub key: String,
    /// The task's resource, as the definition names it.
    pub resource: String,
    /// The result, as the task answered it.
    pub output: serde_json::Value,
    /// The execution whose task stored the result.
    pub execution_arn: String,
    pub state_name: String,
    pub stored: DateTime<Utc>,
    pub expires: DateTime<Utc>,
}

/// Whether an execution read a file or wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum LineageKind {
    #[serde(rename = "read")]
    Read,
    #[serde(rename = "wrote")]
    Wrote,
}

impl LineageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LineageKind::Read => "read",
            LineageKind::Wrote => "wrote",
        }
    }
}

/// One file an execution read or wrote (lineage). One record per (path,
/// execution, kind): reading a file twice is one read. Deleted with the
/// execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LineageRecord {
    /// The file, as an absolute local path (a bucket's key resolved
    /// through the operator's bucket mapping).
    pub path: String,
    pub execution_arn: String,
    pub kind: LineageKind,
    /// How it was seen: `trigger`, `itemReader`, `resultWriter` or `task`.
    pub via: String,
    /// The state that read or wrote it, when a state did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_name: Option<String>,
    pub time: DateTime<Utc>,
}

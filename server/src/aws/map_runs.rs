//! Map Runs (a distributed Map's run of child executions): Describe, List
//! (an execution's), Update (concurrency and tolerated failures).

use serde::{Deserialize, Serialize};
use stepline_runtime::Engine;
use stepline_store::MapRunCounts;

use super::error::AwsError;
use super::machines::ExecutionArnInput;
use super::pagination::Tokens;
use super::wire::{Empty, Epoch, Member, Paging};

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct MapRunArnInput {
    map_run_arn: Member<String>,
}

/// DescribeMapRun's itemCounts and executionCounts. Nothing here is
/// redriven, so the redrive counts are always 0.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pending: u64,
    running: u64,
    succeeded: u64,
    failed: u64,
    timed_out: u64,
    aborted: u64,
    total: u64,
    results_written: u64,
    failures_not_redrivable: u64,
    pending_redrive: u64,
}

impl From<&MapRunCounts> for Counts {
    fn from(c: &MapRunCounts) -> Self {
        Self {
            pending: c.pending,
            running: c.running,
            succeeded: c.succeeded,
            failed: c.failed,
            timed_out: c.timed_out,
            aborted: c.aborted,
            total: c.total,
            results_written: c.results_written,
            failures_not_redrivable: 0,
            pending_redrive: 0,
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeMapRunOutput {
    map_run_arn: String,
    execution_arn: String,
    status: String,
    start_date: Epoch,
    max_concurrency: u64,
    tolerated_failure_percentage: f64,
    tolerated_failure_count: u64,
    item_counts: Counts,
    execution_counts: Counts,
    redrive_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_date: Option<Epoch>,
}

pub fn describe(engine: &Engine, input: MapRunArnInput) -> Result<DescribeMapRunOutput, AwsError> {
    let arn = input.map_run_arn.arn("mapRunArn", "mapRun")?;
    let r = engine.describe_map_run(arn)?;
    Ok(DescribeMapRunOutput {
        start_date: Epoch(r.start),
        max_concurrency: r.max_concurrency,
        tolerated_failure_percentage: r.tolerated_failure_percentage.unwrap_or(0.0),
        tolerated_failure_count: r.tolerated_failure_count.unwrap_or(0),
        item_counts: (&r.items).into(),
        execution_counts: (&r.executions).into(),
        redrive_count: 0,
        stop_date: r.stop.map(Epoch),
        map_run_arn: r.map_run_arn,
        execution_arn: r.execution_arn,
        status: r.status,
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ListMapRunsInput {
    #[serde(flatten)]
    execution: ExecutionArnInput,
    #[serde(flatten)]
    paging: Paging,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MapRunListItem {
    execution_arn: String,
    map_run_arn: String,
    state_machine_arn: String,
    start_date: Epoch,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_date: Option<Epoch>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListMapRunsOutput {
    map_runs: Vec<MapRunListItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

pub fn list(
    engine: &Engine,
    tokens: &Tokens,
    input: ListMapRunsInput,
) -> Result<ListMapRunsOutput, AwsError> {
    let execution = input.execution.arn()?;
    let runs = engine
        .list_map_runs(execution)?
        .into_iter()
        .map(|r| MapRunListItem {
            execution_arn: r.execution_arn,
            state_machine_arn: map_run_machine_arn(&r.map_run_arn),
            map_run_arn: r.map_run_arn,
            start_date: Epoch(r.start),
            stop_date: r.stop.map(Epoch),
        })
        .collect();
    let scope = format!("ListMapRuns:{execution}");
    let (map_runs, next_token) = input.paging.page(tokens, &scope, runs)?;
    Ok(ListMapRunsOutput {
        map_runs,
        next_token,
    })
}

/// The state machine a Map Run's children run, as AWS names it:
/// `arn:...:stateMachine:MACHINE/LABEL`, from `arn:...:mapRun:MACHINE/LABEL:ID`.
fn map_run_machine_arn(map_run_arn: &str) -> String {
    let without_id = map_run_arn
        .rsplit_once(':')
        .map_or(map_run_arn, |(head, _)| head);
    without_id.replacen(":mapRun:", ":stateMachine:", 1)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct UpdateMapRunInput {
    map_run_arn: Member<String>,
    max_concurrency: Member<f64>,
    tolerated_failure_percentage: Member<f64>,
    tolerated_failure_count: Member<f64>,
}

pub async fn update(engine: &Engine, input: UpdateMapRunInput) -> Result<Empty, AwsError> {
    let arn = input.map_run_arn.arn("mapRunArn", "mapRun")?;
    let concurrency = input.max_concurrency.number("maxConcurrency")?;
    let percentage = input
        .tolerated_failure_percentage
        .number("toleratedFailurePercentage")?;
    let count = input
        .tolerated_failure_count
        .number("toleratedFailureCount")?;
    let out_of_range = concurrency
        .is_some_and(|n| !(0.0..=10_000.0).contains(&n) || n.fract() != 0.0)
        || percentage.is_some_and(|p| !(0.0..=100.0).contains(&p))
        || count.is_some_and(|n| n < 0.0 || n.fract() != 0.0);
    if out_of_range {
        return Err(AwsError::new(
            "ValidationException",
            "maxConcurrency must be an integer from 0 to 10000, toleratedFailurePercentage from 0 to 100, toleratedFailureCount a non-negative integer",
        ));
    }
    // AWS: a maxConcurrency of 0 means no limit (10,000).
    let concurrency = concurrency.map(|n| match n as u64 {
        0 => 10_000,
        n => n,
    });
    engine
        .update_map_run(arn, concurrency, percentage, count.map(|n| n as u64))
        .await?;
    Ok(Empty {})
}

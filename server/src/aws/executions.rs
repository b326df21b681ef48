//! Executions: Start, StartSync, Redrive, Stop, Describe, List, and
//! GetExecutionHistory.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use stepline_runtime::Engine;
use stepline_store::{
    ExecutionQuery, ExecutionStatus, ExecutionSummary, ExecutionsOf, ListCursor, WorkflowType,
};

use super::error::AwsError;
use super::history::event_json;
use super::machines::ExecutionArnInput;
use super::pagination::Tokens;
use super::wire::{Epoch, INCLUDED, Included, Member, Paging, invalid_token};

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct StartExecutionInput {
    state_machine_arn: Member<String>,
    name: Member<String>,
    input: Member<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StartExecutionOutput {
    execution_arn: String,
    start_date: Epoch,
}

pub async fn start(
    engine: &Engine,
    input: StartExecutionInput,
) -> Result<StartExecutionOutput, AwsError> {
    let machine = input
        .state_machine_arn
        .arn("stateMachineArn", "stateMachine")?;
    let name = input.name.optional("name")?;
    let payload = input.input.optional("input")?;
    let record = engine.start_execution(machine, name, payload).await?;
    Ok(StartExecutionOutput {
        execution_arn: record.arn,
        start_date: Epoch(record.start),
    })
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BillingDetails {
    #[serde(rename = "billedMemoryUsedInMB")]
    billed_memory_used_in_mb: u64,
    billed_duration_in_milliseconds: i64,
}

/// An execution's end as StartSyncExecution and DescribeExecution close
/// their answers: output (when it succeeded), error and cause.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_details: Option<Included>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cause: Option<String>,
}

impl Outcome {
    fn of(output: Option<String>, error: Option<String>, cause: Option<String>) -> Self {
        Self {
            output_details: output.as_ref().map(|_| INCLUDED),
            output,
            error,
            cause,
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StartSyncExecutionOutput {
    execution_arn: String,
    state_machine_arn: String,
    name: String,
    start_date: Epoch,
    stop_date: Epoch,
    status: &'static str,
    input: String,
    input_details: Included,
    billing_details: BillingDetails,
    #[serde(flatten)]
    outcome: Outcome,
}

pub async fn start_sync(
    engine: &Engine,
    input: StartExecutionInput,
) -> Result<StartSyncExecutionOutput, AwsError> {
    let machine = input
        .state_machine_arn
        .arn("stateMachineArn", "stateMachine")?;
    let name = input.name.optional("name")?;
    let payload = input.input.optional("input")?;
    let machine_record =
        engine.describe_state_machine(machine.split('#').next().unwrap_or(machine))?;
    if machine_record.workflow_type != WorkflowType::Express {
        return Err(AwsError::new(
            "StateMachineTypeNotSupported",
            "This operation is not supported by this type of state machine",
        ));
    }
    let started = engine.start_execution(machine, name, payload).await?;
    let e = engine.wait_for(&started.arn).await?;
    let stop = e.stop.unwrap_or(e.start);
    Ok(StartSyncExecutionOutput {
        execution_arn: e.arn,
        state_machine_arn: e.state_machine_arn,
        name: e.name,
        start_date: Epoch(e.start),
        stop_date: Epoch(stop),
        status: e.status.as_str(),
        input: e.input,
        input_details: INCLUDED,
        billing_details: BillingDetails {
            billed_memory_used_in_mb: 64,
            billed_duration_in_milliseconds: (stop - e.start).num_milliseconds().max(100),
        },
        outcome: Outcome::of(e.output, e.error, e.cause),
    })
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RedriveExecutionOutput {
    redrive_date: Epoch,
}

pub async fn redrive(
    engine: &Engine,
    input: ExecutionArnInput,
) -> Result<RedriveExecutionOutput, AwsError> {
    let arn = input.arn()?;
    let record = engine.redrive_execution(arn).await?;
    Ok(RedriveExecutionOutput {
        redrive_date: Epoch(record.start.max(engine.now())),
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct StopExecutionInput {
    execution_arn: Member<String>,
    error: Member<String>,
    cause: Member<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StopExecutionOutput {
    stop_date: Epoch,
}

pub fn stop(engine: &Engine, input: StopExecutionInput) -> Result<StopExecutionOutput, AwsError> {
    let arn = input.execution_arn.arn("executionArn", "execution")?;
    let error = input.error.optional("error")?.map(str::to_owned);
    let cause = input.cause.optional("cause")?.map(str::to_owned);
    engine.stop_execution(arn, error, cause)?;
    Ok(StopExecutionOutput {
        stop_date: Epoch(engine.now()),
    })
}

/// What ListExecutions shows of an execution and DescribeExecution
/// starts from (AWS's ExecutionListItem).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionListItem {
    execution_arn: String,
    state_machine_arn: String,
    name: String,
    status: &'static str,
    start_date: Epoch,
    redrive_count: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_date: Option<Epoch>,
    #[serde(skip_serializing_if = "Option::is_none")]
    map_run_arn: Option<String>,
}

impl From<ExecutionSummary> for ExecutionListItem {
    fn from(e: ExecutionSummary) -> Self {
        Self {
            status: e.status.as_str(),
            start_date: Epoch(e.start),
            redrive_count: e.redrive_count,
            stop_date: e.stop.map(Epoch),
            execution_arn: e.arn,
            state_machine_arn: e.state_machine_arn,
            name: e.name,
            map_run_arn: e.map_run_arn,
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeExecutionOutput {
    #[serde(flatten)]
    item: ExecutionListItem,
    input: String,
    input_details: Included,
    #[serde(flatten)]
    outcome: Outcome,
}

pub fn describe(
    engine: &Engine,
    input: ExecutionArnInput,
) -> Result<DescribeExecutionOutput, AwsError> {
    let arn = input.arn()?;
    let e = engine.describe_execution(arn)?;
    Ok(DescribeExecutionOutput {
        item: e.summary().into(),
        input: e.input,
        input_details: INCLUDED,
        outcome: Outcome::of(e.output, e.error, e.cause),
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ListExecutionsInput {
    state_machine_arn: Member<String>,
    map_run_arn: Member<String>,
    status_filter: Member<String>,
    redrive_filter: Member<String>,
    #[serde(flatten)]
    paging: Paging,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListExecutionsOutput {
    executions: Vec<ExecutionListItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// ListExecutions: one page read from the store's listing index (never an
/// input or output), its nextToken the signed position of its last
/// execution in the order, bound to the list and its filters.
pub fn list(
    engine: &Engine,
    tokens: &Tokens,
    input: ListExecutionsInput,
) -> Result<ListExecutionsOutput, AwsError> {
    let of = match (input.state_machine_arn.given(), input.map_run_arn.given()) {
        (true, true) => {
            return Err(AwsError::new(
                "ValidationException",
                "Specify either a mapRunArn or a stateMachineArn, not both",
            ));
        }
        (false, true) => {
            ExecutionsOf::MapRun(input.map_run_arn.arn("mapRunArn", "mapRun")?.to_owned())
        }
        _ => {
            let machine = input
                .state_machine_arn
                .arn("stateMachineArn", "stateMachine")?;
            engine.describe_state_machine(machine)?;
            ExecutionsOf::Machine(machine.to_owned())
        }
    };
    let size = input.paging.size()?;
    let status_filter = input.status_filter.optional("statusFilter")?;
    let redrive_filter = input.redrive_filter.optional("redriveFilter")?;
    let redriven = match redrive_filter {
        None => None,
        Some("REDRIVEN") => Some(true),
        Some("NOT_REDRIVEN") => Some(false),
        Some(other) => {
            return Err(AwsError::new(
                "ValidationException",
                format!(
                    "1 validation error detected: Value '{other}' at 'redriveFilter' failed to satisfy constraint: Member must satisfy enum value set: [REDRIVEN, NOT_REDRIVEN]"
                ),
            ));
        }
    };
    let listed = match &of {
        ExecutionsOf::Machine(arn) | ExecutionsOf::MapRun(arn) => arn.as_str(),
        ExecutionsOf::All => "",
    };
    let scope = format!(
        "ListExecutions:{listed}:{}:{}",
        status_filter.unwrap_or(""),
        redrive_filter.unwrap_or("")
    );
    let after = match input.paging.next_token.optional("nextToken")? {
        None => None,
        Some(token) => Some(
            tokens
                .check_cursor(&scope, token)
                .as_deref()
                .and_then(ListCursor::from_text)
                .ok_or_else(|| invalid_token(token))?,
        ),
    };
    let status = match status_filter.map(ExecutionStatus::from_name) {
        None => None,
        Some(Some(status)) => Some(status),
        // PENDING_REDRIVE (the service model admits no other name): a
        // redrive here takes an execution straight back to RUNNING, so
        // none is ever pending. The Map Run must exist all the same.
        Some(None) => {
            if let ExecutionsOf::MapRun(run) = &of {
                engine.describe_map_run(run)?;
            }
            return Ok(ListExecutionsOutput {
                executions: Vec::new(),
                next_token: None,
            });
        }
    };
    let page = engine.list_executions(&ExecutionQuery {
        status,
        redriven,
        after,
        ..ExecutionQuery::new(of, size)
    })?;
    Ok(ListExecutionsOutput {
        next_token: page.next.map(|c| tokens.issue_cursor(&scope, &c.to_text())),
        executions: page.executions.into_iter().map(Into::into).collect(),
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct GetExecutionHistoryInput {
    execution_arn: Member<String>,
    reverse_order: Member<bool>,
    include_execution_data: Member<bool>,
    #[serde(flatten)]
    paging: Paging,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetExecutionHistoryOutput {
    events: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

pub fn history(
    engine: &Engine,
    tokens: &Tokens,
    input: GetExecutionHistoryInput,
) -> Result<GetExecutionHistoryOutput, AwsError> {
    let arn = input.execution_arn.arn("executionArn", "execution")?;
    let len = engine.history_len(arn)?;
    let mut events = engine.history(arn, 1, len)?;
    let reverse = input.reverse_order.is(true);
    if reverse {
        events.reverse();
    }
    let include_data = !input.include_execution_data.is(false);
    let scope = format!("GetExecutionHistory:{arn}:{reverse}");
    let (events, next_token) = input.paging.page(tokens, &scope, events)?;
    let events = events
        .iter()
        .map(|e| {
            let mut event = event_json(e);
            if !include_data {
                strip_data(&mut event);
            }
            event
        })
        .collect();
    Ok(GetExecutionHistoryOutput { events, next_token })
}

/// includeExecutionData=false: payloads are left out of every event.
fn strip_data(event: &mut Value) {
    if let Value::Object(map) = event {
        for details in map.values_mut() {
            if let Value::Object(d) = details {
                let d: &mut Map<String, Value> = d;
                for field in ["input", "output", "parameters"] {
                    d.remove(field);
                }
            }
        }
    }
}

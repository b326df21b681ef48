//! Activities and task tokens: Create, Describe, Delete and List
//! activities; GetActivityTask for workers; SendTaskSuccess, Failure and
//! Heartbeat for activity workers and callbacks alike.

use serde::{Deserialize, Serialize};
use stepline_runtime::Engine;
use stepline_store::ActivityRecord;

use super::error::AwsError;
use super::pagination::Tokens;
use super::tags::tag_list;
use super::wire::{Empty, Epoch, Member, Paging};

/// How long GetActivityTask waits for a task, as AWS (about a minute).
const ACTIVITY_POLL: std::time::Duration = std::time::Duration::from_secs(60);

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CreateActivityInput {
    name: Member<String>,
    tags: Member<serde_json::Value>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateActivityOutput {
    activity_arn: String,
    creation_date: Epoch,
}

pub async fn create(
    engine: &Engine,
    input: CreateActivityInput,
) -> Result<CreateActivityOutput, AwsError> {
    let name = input.name.required("name")?;
    let tags = tag_list(&input.tags, "tags")?;
    let a = engine.create_activity(name).await?;
    if !tags.is_empty() {
        engine.tag_resource(&a.arn, &tags).await?;
    }
    Ok(CreateActivityOutput {
        activity_arn: a.arn,
        creation_date: Epoch(a.created),
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ActivityArnInput {
    activity_arn: Member<String>,
}

/// DescribeActivity's answer, and an item of ListActivities.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivityListItem {
    activity_arn: String,
    name: String,
    creation_date: Epoch,
}

impl From<ActivityRecord> for ActivityListItem {
    fn from(a: ActivityRecord) -> Self {
        Self {
            activity_arn: a.arn,
            name: a.name,
            creation_date: Epoch(a.created),
        }
    }
}

pub fn describe(engine: &Engine, input: ActivityArnInput) -> Result<ActivityListItem, AwsError> {
    let arn = input.activity_arn.arn("activityArn", "activity")?;
    Ok(engine.describe_activity(arn)?.into())
}

pub async fn delete(engine: &Engine, input: ActivityArnInput) -> Result<Empty, AwsError> {
    let arn = input.activity_arn.arn("activityArn", "activity")?;
    engine.delete_activity(arn).await?;
    Ok(Empty {})
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ListActivitiesInput {
    #[serde(flatten)]
    paging: Paging,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListActivitiesOutput {
    activities: Vec<ActivityListItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

pub fn list(
    engine: &Engine,
    tokens: &Tokens,
    input: ListActivitiesInput,
) -> Result<ListActivitiesOutput, AwsError> {
    let activities = engine
        .list_activities()?
        .into_iter()
        .map(ActivityListItem::from)
        .collect();
    let (activities, next_token) = input.paging.page(tokens, "ListActivities", activities)?;
    Ok(ListActivitiesOutput {
        activities,
        next_token,
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct GetActivityTaskInput {
    activity_arn: Member<String>,
    worker_name: Member<String>,
}

/// Empty (`{}`) when no task came during the poll, as AWS answers.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetActivityTaskOutput {
    #[serde(skip_serializing_if = "Option::is_none")]
    task_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    input: Option<String>,
}

pub async fn get_task(
    engine: &Engine,
    input: GetActivityTaskInput,
) -> Result<GetActivityTaskOutput, AwsError> {
    let arn = input.activity_arn.arn("activityArn", "activity")?;
    let worker = input.worker_name.optional("workerName")?;
    let task = engine.get_activity_task(arn, worker, ACTIVITY_POLL).await?;
    Ok(match task {
        Some(task) => GetActivityTaskOutput {
            task_token: Some(task.token),
            input: Some(task.input),
        },
        None => GetActivityTaskOutput {
            task_token: None,
            input: None,
        },
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SendTaskSuccessInput {
    task_token: Member<String>,
    output: Member<String>,
}

pub async fn send_success(engine: &Engine, input: SendTaskSuccessInput) -> Result<Empty, AwsError> {
    let token = input.task_token.required("taskToken")?;
    let output = input.output.required("output")?;
    engine.send_task_success(token, output).await?;
    Ok(Empty {})
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SendTaskFailureInput {
    task_token: Member<String>,
    error: Member<String>,
    cause: Member<String>,
}

pub async fn send_failure(engine: &Engine, input: SendTaskFailureInput) -> Result<Empty, AwsError> {
    let token = input.task_token.required("taskToken")?;
    let error = input.error.optional("error")?.map(str::to_owned);
    let cause = input.cause.optional("cause")?.map(str::to_owned);
    engine.send_task_failure(token, error, cause).await?;
    Ok(Empty {})
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SendTaskHeartbeatInput {
    task_token: Member<String>,
}

pub async fn send_heartbeat(
    engine: &Engine,
    input: SendTaskHeartbeatInput,
) -> Result<Empty, AwsError> {
    let token = input.task_token.required("taskToken")?;
    engine.send_task_heartbeat(token).await?;
    Ok(Empty {})
}

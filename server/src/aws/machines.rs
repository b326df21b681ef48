//! State machines: Create, Describe (a version too), List, Update, Delete,
//! ValidateStateMachineDefinition, and DescribeStateMachineForExecution.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use stepline_language::asl;
use stepline_runtime::Engine;
use stepline_store::{StateMachineRecord, WorkflowType};

use super::error::AwsError;
use super::pagination::Tokens;
use super::tags::tag_list;
use super::versions::publish_if_asked;
use super::wire::{Empty, Epoch, Member, Paging};

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CreateStateMachineInput {
    name: Member<String>,
    definition: Member<String>,
    role_arn: Member<String>,
    r#type: Member<String>,
    tags: Member<Value>,
    publish: Member<bool>,
    version_description: Member<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateStateMachineOutput {
    state_machine_arn: String,
    creation_date: Epoch,
    #[serde(skip_serializing_if = "Option::is_none")]
    state_machine_version_arn: Option<String>,
}

pub async fn create(
    engine: &Engine,
    input: CreateStateMachineInput,
) -> Result<CreateStateMachineOutput, AwsError> {
    let name = input.name.required("name")?;
    let definition = input.definition.required("definition")?;
    let role = input.role_arn.optional("roleArn")?;
    let kind = match input.r#type.optional("type")? {
        Some("EXPRESS") => WorkflowType::Express,
        _ => WorkflowType::Standard,
    };
    let tags = tag_list(&input.tags, "tags")?;
    let record = engine
        .create_state_machine(name, definition, role, kind)
        .await?;
    if !tags.is_empty() {
        engine.tag_resource(&record.arn, &tags).await?;
    }
    let version = publish_if_asked(
        engine,
        &input.publish,
        &input.version_description,
        &record.arn,
    )
    .await?;
    Ok(CreateStateMachineOutput {
        state_machine_arn: record.arn,
        creation_date: Epoch(record.created),
        state_machine_version_arn: version,
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct StateMachineArnInput {
    state_machine_arn: Member<String>,
}

impl StateMachineArnInput {
    pub fn arn(&self) -> Result<&str, AwsError> {
        self.state_machine_arn
            .arn("stateMachineArn", "stateMachine")
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeStateMachineOutput {
    state_machine_arn: String,
    name: String,
    status: &'static str,
    definition: String,
    role_arn: String,
    r#type: &'static str,
    creation_date: Epoch,
    revision_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
}

/// A state machine, or one of its versions (`...:stateMachine:NAME:N`).
pub fn describe(
    engine: &Engine,
    input: StateMachineArnInput,
) -> Result<DescribeStateMachineOutput, AwsError> {
    let arn = input.arn()?;
    let describe =
        |m: StateMachineRecord, arn: String, created, description| DescribeStateMachineOutput {
            state_machine_arn: arn,
            name: m.name,
            status: "ACTIVE",
            definition: m.definition,
            role_arn: m.role_arn,
            r#type: m.workflow_type.as_str(),
            creation_date: Epoch(created),
            revision_id: m.revision.to_string(),
            description,
        };
    if arn.split(':').count() == 8 {
        let (m, v) = engine.describe_version(arn)?;
        return Ok(describe(m, arn.to_owned(), v.created, v.description));
    }
    let m = engine.describe_state_machine(arn)?;
    let arn = m.arn.clone();
    let created = m.created;
    Ok(describe(m, arn, created, None))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ListStateMachinesInput {
    #[serde(flatten)]
    paging: Paging,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateMachineListItem {
    state_machine_arn: String,
    name: String,
    r#type: &'static str,
    creation_date: Epoch,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListStateMachinesOutput {
    state_machines: Vec<StateMachineListItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

pub fn list(
    engine: &Engine,
    tokens: &Tokens,
    input: ListStateMachinesInput,
) -> Result<ListStateMachinesOutput, AwsError> {
    let machines = engine.list_state_machines()?;
    let (machines, next_token) = input.paging.page(tokens, "ListStateMachines", machines)?;
    Ok(ListStateMachinesOutput {
        state_machines: machines
            .into_iter()
            .map(|m| StateMachineListItem {
                r#type: m.workflow_type.as_str(),
                creation_date: Epoch(m.created),
                state_machine_arn: m.arn,
                name: m.name,
            })
            .collect(),
        next_token,
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct UpdateStateMachineInput {
    state_machine_arn: Member<String>,
    definition: Member<String>,
    role_arn: Member<String>,
    publish: Member<bool>,
    version_description: Member<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateStateMachineOutput {
    update_date: Epoch,
    revision_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    state_machine_version_arn: Option<String>,
}

pub async fn update(
    engine: &Engine,
    input: UpdateStateMachineInput,
) -> Result<UpdateStateMachineOutput, AwsError> {
    let arn = input
        .state_machine_arn
        .arn("stateMachineArn", "stateMachine")?;
    let definition = input.definition.optional("definition")?;
    let role = input.role_arn.optional("roleArn")?;
    if definition.is_none() && role.is_none() {
        return Err(AwsError::new(
            "MissingRequiredParameter",
            "Either the definition, the roleArn or the loggingConfiguration must be specified",
        ));
    }
    let record = engine.update_state_machine(arn, definition, role).await?;
    let update_date = Epoch(engine.now());
    let version = publish_if_asked(engine, &input.publish, &input.version_description, arn).await?;
    Ok(UpdateStateMachineOutput {
        update_date,
        revision_id: record.revision.to_string(),
        state_machine_version_arn: version,
    })
}

pub async fn delete(engine: &Engine, input: StateMachineArnInput) -> Result<Empty, AwsError> {
    let arn = input.arn()?;
    engine.delete_state_machine(arn).await?;
    Ok(Empty {})
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ValidateStateMachineDefinitionInput {
    definition: Member<String>,
}

#[derive(Debug, Serialize)]
pub struct ValidateStateMachineDefinitionDiagnostic {
    severity: &'static str,
    code: &'static str,
    message: String,
    location: String,
}

#[derive(Debug, Serialize)]
pub struct ValidateStateMachineDefinitionOutput {
    result: &'static str,
    diagnostics: Vec<ValidateStateMachineDefinitionDiagnostic>,
    truncated: bool,
}

pub fn validate(
    input: ValidateStateMachineDefinitionInput,
) -> Result<ValidateStateMachineDefinitionOutput, AwsError> {
    let definition = input.definition.required("definition")?;
    let validation = asl::validate(definition.as_bytes());
    let result = if validation.errors().next().is_some() {
        "FAIL"
    } else {
        "OK"
    };
    Ok(ValidateStateMachineDefinitionOutput {
        result,
        diagnostics: validation
            .diagnostics
            .into_iter()
            .map(|d| ValidateStateMachineDefinitionDiagnostic {
                severity: d.severity.as_str(),
                code: d.code.as_str(),
                message: d.message,
                location: d.pointer,
            })
            .collect(),
        truncated: false,
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ExecutionArnInput {
    execution_arn: Member<String>,
}

impl ExecutionArnInput {
    pub fn arn(&self) -> Result<&str, AwsError> {
        self.execution_arn.arn("executionArn", "execution")
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeStateMachineForExecutionOutput {
    state_machine_arn: String,
    name: String,
    definition: String,
    role_arn: String,
    update_date: Epoch,
    revision_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    map_run_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<String>,
}

pub fn for_execution(
    engine: &Engine,
    input: ExecutionArnInput,
) -> Result<DescribeStateMachineForExecutionOutput, AwsError> {
    let arn = input.arn()?;
    let e = engine.describe_execution(arn)?;
    // A Map Run's child runs its parent's revision (the Map state's
    // ItemProcessor): that definition, with the Map Run and label.
    let (machine_arn, revision) = match &e.map_run {
        Some(child) => (child.machine_arn.as_str(), child.revision),
        None => (e.state_machine_arn.as_str(), e.revision),
    };
    let m = engine.describe_state_machine_revision(machine_arn, revision)?;
    let label = e.map_run.as_ref().map(|_| {
        e.state_machine_arn
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned()
    });
    Ok(DescribeStateMachineForExecutionOutput {
        name: m.name,
        definition: m.definition,
        role_arn: m.role_arn,
        update_date: Epoch(m.created),
        revision_id: m.revision.to_string(),
        map_run_arn: e.map_run.map(|child| child.map_run_arn),
        label,
        state_machine_arn: e.state_machine_arn,
    })
}

//! Versions (a published revision: `...:stateMachine:NAME:N`) and aliases
//! (a name routing to one or two versions: `...:stateMachine:NAME:ALIAS`).

use serde::{Deserialize, Serialize};
use stepline_runtime::Engine;

use super::error::AwsError;
use super::machines::StateMachineArnInput;
use super::pagination::Tokens;
use super::wire::{Empty, Epoch, Member, Paging};

/// `publish: true` on Create/UpdateStateMachine: the new revision becomes
/// a version, whose ARN the answer gives.
pub async fn publish_if_asked(
    engine: &Engine,
    publish: &Member<bool>,
    description: &Member<String>,
    machine_arn: &str,
) -> Result<Option<String>, AwsError> {
    if !publish.is(true) {
        return Ok(None);
    }
    let description = description.optional("versionDescription")?;
    let (number, _) = engine
        .publish_version(machine_arn, description, None)
        .await?;
    Ok(Some(format!("{machine_arn}:{number}")))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PublishStateMachineVersionInput {
    state_machine_arn: Member<String>,
    description: Member<String>,
    revision_id: Member<String>,
}

/// PublishStateMachineVersion's answer, and an item of
/// ListStateMachineVersions.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateMachineVersionListItem {
    state_machine_version_arn: String,
    creation_date: Epoch,
}

pub async fn publish(
    engine: &Engine,
    input: PublishStateMachineVersionInput,
) -> Result<StateMachineVersionListItem, AwsError> {
    let arn = input
        .state_machine_arn
        .arn("stateMachineArn", "stateMachine")?;
    let description = input.description.optional("description")?;
    let revision = input
        .revision_id
        .optional("revisionId")?
        .map(|r| {
            r.parse::<u64>().map_err(|_| {
                AwsError::new("ValidationException", format!("'{r}' is not a revisionId"))
            })
        })
        .transpose()?;
    let (number, created) = engine.publish_version(arn, description, revision).await?;
    Ok(StateMachineVersionListItem {
        state_machine_version_arn: format!("{arn}:{number}"),
        creation_date: Epoch(created),
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ListByMachineInput {
    #[serde(flatten)]
    machine: StateMachineArnInput,
    #[serde(flatten)]
    paging: Paging,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListStateMachineVersionsOutput {
    state_machine_versions: Vec<StateMachineVersionListItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

pub fn list_versions(
    engine: &Engine,
    tokens: &Tokens,
    input: ListByMachineInput,
) -> Result<ListStateMachineVersionsOutput, AwsError> {
    let arn = input.machine.arn()?;
    let machine = engine.describe_state_machine(arn)?;
    // Newest first, as AWS lists them.
    let versions = machine
        .versions
        .iter()
        .rev()
        .map(|(n, v)| StateMachineVersionListItem {
            state_machine_version_arn: format!("{arn}:{n}"),
            creation_date: Epoch(v.created),
        })
        .collect();
    let scope = format!("ListStateMachineVersions:{arn}");
    let (versions, next_token) = input.paging.page(tokens, &scope, versions)?;
    Ok(ListStateMachineVersionsOutput {
        state_machine_versions: versions,
        next_token,
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DeleteStateMachineVersionInput {
    state_machine_version_arn: Member<String>,
}

pub async fn delete_version(
    engine: &Engine,
    input: DeleteStateMachineVersionInput,
) -> Result<Empty, AwsError> {
    let arn = input
        .state_machine_version_arn
        .arn("stateMachineVersionArn", "stateMachine")?;
    engine.delete_version(arn).await?;
    Ok(Empty {})
}

/// One route of an alias, as AWS writes it.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoutingConfigurationListItem {
    state_machine_version_arn: String,
    weight: u32,
}

/// An alias's `routingConfiguration`, read.
struct Routing {
    /// As sent: the first names the state machine.
    items: Vec<RoutingConfigurationListItem>,
    /// (version, weight) pairs, as the engine takes them.
    pairs: Vec<(u64, u32)>,
}

fn routing(member: &Member<Vec<RoutingConfigurationListItem>>) -> Result<Routing, AwsError> {
    let bad = || {
        AwsError::new(
            "ValidationException",
            "routingConfiguration must list one or two {stateMachineVersionArn, weight} entries",
        )
    };
    let items = member
        .json()
        .and_then(|v| Vec::<RoutingConfigurationListItem>::deserialize(v).ok())
        .ok_or_else(bad)?;
    let pairs = items
        .iter()
        .map(|item| {
            let version = item
                .state_machine_version_arn
                .rsplit(':')
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .ok_or_else(bad)?;
            match item.weight {
                weight @ 0..=100 => Ok((version, weight)),
                _ => Err(bad()),
            }
        })
        .collect::<Result<_, _>>()?;
    Ok(Routing { items, pairs })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CreateStateMachineAliasInput {
    name: Member<String>,
    description: Member<String>,
    routing_configuration: Member<Vec<RoutingConfigurationListItem>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateStateMachineAliasOutput {
    state_machine_alias_arn: String,
    creation_date: Epoch,
}

pub async fn create_alias(
    engine: &Engine,
    input: CreateStateMachineAliasInput,
) -> Result<CreateStateMachineAliasOutput, AwsError> {
    let name = input.name.required("name")?;
    let routing = routing(&input.routing_configuration)?;
    // The state machine of the first version the alias routes to.
    let first = routing
        .items
        .first()
        .map(|item| item.state_machine_version_arn.as_str())
        .ok_or_else(|| {
            AwsError::new(
                "ValidationException",
                "routingConfiguration needs a stateMachineVersionArn",
            )
        })?;
    let machine = first.rsplit_once(':').map_or(first, |(m, _)| m);
    let description = input.description.optional("description")?;
    let (arn, at) = engine
        .put_alias(machine, name, routing.pairs, description, true)
        .await?;
    Ok(CreateStateMachineAliasOutput {
        state_machine_alias_arn: arn,
        creation_date: Epoch(at),
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct UpdateStateMachineAliasInput {
    state_machine_alias_arn: Member<String>,
    description: Member<String>,
    routing_configuration: Member<Vec<RoutingConfigurationListItem>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateStateMachineAliasOutput {
    update_date: Epoch,
}

pub async fn update_alias(
    engine: &Engine,
    input: UpdateStateMachineAliasInput,
) -> Result<UpdateStateMachineAliasOutput, AwsError> {
    let alias = input
        .state_machine_alias_arn
        .arn("stateMachineAliasArn", "stateMachine")?;
    let (machine, name) = alias.rsplit_once(':').unwrap_or((alias, ""));
    // Routes not given stay as they are.
    let routes = if input.routing_configuration.given() {
        routing(&input.routing_configuration)?.pairs
    } else {
        engine.describe_alias(alias)?.1.routing
    };
    let description = input.description.optional("description")?;
    let (_, at) = engine
        .put_alias(machine, name, routes, description, false)
        .await?;
    Ok(UpdateStateMachineAliasOutput {
        update_date: Epoch(at),
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct StateMachineAliasArnInput {
    state_machine_alias_arn: Member<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeStateMachineAliasOutput {
    state_machine_alias_arn: String,
    name: String,
    routing_configuration: Vec<RoutingConfigurationListItem>,
    creation_date: Epoch,
    update_date: Epoch,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
}

pub fn describe_alias(
    engine: &Engine,
    input: StateMachineAliasArnInput,
) -> Result<DescribeStateMachineAliasOutput, AwsError> {
    let alias = input
        .state_machine_alias_arn
        .arn("stateMachineAliasArn", "stateMachine")?;
    let (name, a) = engine.describe_alias(alias)?;
    let machine = alias.rsplit_once(':').map_or(alias, |(m, _)| m);
    Ok(DescribeStateMachineAliasOutput {
        state_machine_alias_arn: alias.to_owned(),
        name,
        routing_configuration: a
            .routing
            .iter()
            .map(|(v, w)| RoutingConfigurationListItem {
                state_machine_version_arn: format!("{machine}:{v}"),
                weight: *w,
            })
            .collect(),
        creation_date: Epoch(a.created),
        update_date: Epoch(a.updated),
        description: a.description,
    })
}

pub async fn delete_alias(
    engine: &Engine,
    input: StateMachineAliasArnInput,
) -> Result<Empty, AwsError> {
    let alias = input
        .state_machine_alias_arn
        .arn("stateMachineAliasArn", "stateMachine")?;
    engine.delete_alias(alias).await?;
    Ok(Empty {})
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateMachineAliasListItem {
    state_machine_alias_arn: String,
    creation_date: Epoch,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListStateMachineAliasesOutput {
    state_machine_aliases: Vec<StateMachineAliasListItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

pub fn list_aliases(
    engine: &Engine,
    tokens: &Tokens,
    input: ListByMachineInput,
) -> Result<ListStateMachineAliasesOutput, AwsError> {
    let arn = input.machine.arn()?;
    let machine = engine.describe_state_machine(arn)?;
    let aliases = machine
        .aliases
        .iter()
        .map(|(name, a)| StateMachineAliasListItem {
            state_machine_alias_arn: format!("{arn}:{name}"),
            creation_date: Epoch(a.created),
        })
        .collect();
    let scope = format!("ListStateMachineAliases:{arn}");
    let (aliases, next_token) = input.paging.page(tokens, &scope, aliases)?;
    Ok(ListStateMachineAliasesOutput {
        state_machine_aliases: aliases,
        next_token,
    })
}

//! The actions this face answers, as one closed enum parsed once from the
//! `X-Amz-Target` name, and the routing of each to its resource's module.
//! Adding an action is adding a variant: the compiler then asks for its
//! route here and its members in `constraints`.

use serde_json::Value;
use stepline_runtime::Engine;

use super::error::AwsError;
use super::pagination::Tokens;
use super::wire::{decode, encode};
use super::{activities, executions, machines, map_runs, tags, test_state, versions};

/// Declares [`Action`] with its variants named exactly as AWS names the
/// actions, so that the name on the wire and the variant cannot differ.
macro_rules! actions {
    ($($action:ident),* $(,)?) => {
        /// An action of the AWS Step Functions API that stepline answers.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Action {
            $($action,)*
        }

        impl Action {
            /// Every action, in declaration order.
            pub const ALL: &'static [Action] = &[$(Action::$action,)*];

            /// The action named `name` (the part of `X-Amz-Target` after
            /// `AWSStepFunctions.`), if stepline answers it.
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $(stringify!($action) => Some(Action::$action),)*
                    _ => None,
                }
            }

            /// The action's name as AWS writes it.
            pub fn name(self) -> &'static str {
                match self {
                    $(Action::$action => stringify!($action),)*
                }
            }
        }
    };
}

actions! {
    // State machines (machines.rs).
    CreateStateMachine,
    DescribeStateMachine,
    ListStateMachines,
    UpdateStateMachine,
    DeleteStateMachine,
    ValidateStateMachineDefinition,
    DescribeStateMachineForExecution,
    // Executions (executions.rs).
    StartExecution,
    StartSyncExecution,
    RedriveExecution,
    StopExecution,
    DescribeExecution,
    ListExecutions,
    GetExecutionHistory,
    // Activities and task tokens (activities.rs).
    CreateActivity,
    DescribeActivity,
    DeleteActivity,
    ListActivities,
    GetActivityTask,
    SendTaskSuccess,
    SendTaskFailure,
    SendTaskHeartbeat,
    // Map Runs (map_runs.rs).
    DescribeMapRun,
    ListMapRuns,
    UpdateMapRun,
    // Versions and aliases (versions.rs).
    PublishStateMachineVersion,
    ListStateMachineVersions,
    DeleteStateMachineVersion,
    CreateStateMachineAlias,
    UpdateStateMachineAlias,
    DescribeStateMachineAlias,
    DeleteStateMachineAlias,
    ListStateMachineAliases,
    // Tags (tags.rs).
    TagResource,
    UntagResource,
    ListTagsForResource,
    // TestState (test_state.rs).
    TestState,
}

/// The answer to an action name stepline does not know.
pub fn unknown(name: &str) -> AwsError {
    AwsError::new(
        "UnknownOperationException",
        format!("stepline does not implement the action '{name}' yet"),
    )
}

/// Runs `action` on `request` (a JSON object its constraints have passed)
/// and gives its answer's body.
pub async fn dispatch(
    engine: &Engine,
    tokens: &Tokens,
    action: Action,
    request: &Value,
) -> Result<Value, AwsError> {
    use Action as A;
    let r = request;
    match action {
        A::CreateStateMachine => encode(&machines::create(engine, decode(r)?).await?),
        A::DescribeStateMachine => encode(&machines::describe(engine, decode(r)?)?),
        A::ListStateMachines => encode(&machines::list(engine, tokens, decode(r)?)?),
        A::UpdateStateMachine => encode(&machines::update(engine, decode(r)?).await?),
        A::DeleteStateMachine => encode(&machines::delete(engine, decode(r)?).await?),
        A::ValidateStateMachineDefinition => encode(&machines::validate(decode(r)?)?),
        A::DescribeStateMachineForExecution => {
            encode(&machines::for_execution(engine, decode(r)?)?)
        }
        A::StartExecution => encode(&executions::start(engine, decode(r)?).await?),
        A::StartSyncExecution => encode(&executions::start_sync(engine, decode(r)?).await?),
        A::RedriveExecution => encode(&executions::redrive(engine, decode(r)?).await?),
        A::StopExecution => encode(&executions::stop(engine, decode(r)?)?),
        A::DescribeExecution => encode(&executions::describe(engine, decode(r)?)?),
        A::ListExecutions => encode(&executions::list(engine, tokens, decode(r)?)?),
        A::GetExecutionHistory => encode(&executions::history(engine, tokens, decode(r)?)?),
        A::CreateActivity => encode(&activities::create(engine, decode(r)?).await?),
        A::DescribeActivity => encode(&activities::describe(engine, decode(r)?)?),
        A::DeleteActivity => encode(&activities::delete(engine, decode(r)?).await?),
        A::ListActivities => encode(&activities::list(engine, tokens, decode(r)?)?),
        A::GetActivityTask => encode(&activities::get_task(engine, decode(r)?).await?),
        A::SendTaskSuccess => encode(&activities::send_success(engine, decode(r)?).await?),
        A::SendTaskFailure => encode(&activities::send_failure(engine, decode(r)?).await?),
        A::SendTaskHeartbeat => encode(&activities::send_heartbeat(engine, decode(r)?).await?),
        A::DescribeMapRun => encode(&map_runs::describe(engine, decode(r)?)?),
        A::ListMapRuns => encode(&map_runs::list(engine, tokens, decode(r)?)?),
        A::UpdateMapRun => encode(&map_runs::update(engine, decode(r)?).await?),
        A::PublishStateMachineVersion => encode(&versions::publish(engine, decode(r)?).await?),
        A::ListStateMachineVersions => {
            encode(&versions::list_versions(engine, tokens, decode(r)?)?)
        }
        A::DeleteStateMachineVersion => {
            encode(&versions::delete_version(engine, decode(r)?).await?)
        }
        A::CreateStateMachineAlias => encode(&versions::create_alias(engine, decode(r)?).await?),
        A::UpdateStateMachineAlias => encode(&versions::update_alias(engine, decode(r)?).await?),
        A::DescribeStateMachineAlias => encode(&versions::describe_alias(engine, decode(r)?)?),
        A::DeleteStateMachineAlias => encode(&versions::delete_alias(engine, decode(r)?).await?),
        A::ListStateMachineAliases => encode(&versions::list_aliases(engine, tokens, decode(r)?)?),
        A::TagResource => encode(&tags::tag(engine, decode(r)?).await?),
        A::UntagResource => encode(&tags::untag(engine, decode(r)?).await?),
        A::ListTagsForResource => encode(&tags::list(engine, decode(r)?)?),
        A::TestState => encode(&test_state::run(engine, decode(r)?).await?),
    }
}

#[cfg(test)]
mod tests {
    use super::Action;

    #[test]
    fn every_action_is_parsed_from_its_own_name() {
        for action in Action::ALL {
            assert_eq!(Action::from_name(action.name()), Some(*action));
        }
        assert_eq!(Action::from_name("SomeFutureAction"), None);
        assert_eq!(Action::from_name("describeStateMachine"), None);
    }
}

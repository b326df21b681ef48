//! aws-sdk-sfn, the AWS SDK for Rust, against the real `stepline serve`
//! with an access key configured, so every request is signed with SigV4
//! for real and every answer is read by the SDK's own deserializers: a
//! full flow (create, describe, update, list, start, follow the history
//! page by page both ways, stop, redrive, delete), activities answered by
//! a worker running beside the execution, EXPRESS machines run to their
//! end, validation, TestState, versions and aliases, tags, and errors
//! matched by the SDK's typed error enums (not by string).
//!
//! The SDK puts `sync-` in front of the host for StartSyncExecution and
//! TestState, as AWS routes them. `SyncHost` stands in for a DNS name that
//! resolves with the prefix: it connects to the server's own address and
//! keeps the prefixed `Host` header the SDK signed.

use std::future::Future;
use std::time::Duration;

use aws_sdk_sfn::Client;
use aws_sdk_sfn::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_sfn::config::retry::RetryConfig;
use aws_sdk_sfn::config::{
    BehaviorVersion, ConfigBag, Credentials, Intercept, Region, RuntimeComponents,
};
use aws_sdk_sfn::error::{BoxError, ProvideErrorMetadata, SdkError};
use aws_sdk_sfn::operation::{
    create_state_machine::CreateStateMachineError,
    create_state_machine_alias::CreateStateMachineAliasError,
    describe_activity::DescribeActivityError, describe_execution::DescribeExecutionError,
    describe_state_machine::DescribeStateMachineError, get_activity_task::GetActivityTaskError,
    get_execution_history::GetExecutionHistoryError, list_executions::ListExecutionsError,
    list_tags_for_resource::ListTagsForResourceError, redrive_execution::RedriveExecutionError,
    send_task_failure::SendTaskFailureError, send_task_heartbeat::SendTaskHeartbeatError,
    send_task_success::SendTaskSuccessError, start_execution::StartExecutionError,
    start_sync_execution::StartSyncExecutionError, stop_execution::StopExecutionError,
    test_state::TestStateError, update_state_machine::UpdateStateMachineError,
};
use aws_sdk_sfn::types::{
    ExecutionStatus, HistoryEvent, InspectionLevel, RoutingConfigurationListItem, StateMachineType,
    SyncExecutionStatus, Tag, TestExecutionStatus, ValidateStateMachineDefinitionResultCode,
    ValidateStateMachineDefinitionSeverity,
};
use serde_json::{Value, json};

use crate::support::{Serve, TempDir, stepline_binary};

const KEY_ID: &str = "AKIASTEPLINESDK00001";
const SECRET: &str = "sdk-secret-for-the-rust-client";
const REGION: &str = "eu-west-3";
const ROLE: &str = "arn:aws:iam::111111111111:role/sdk";

/// A server that requires SigV4 with one access key (and a bearer token
/// on the REST API, which these tests do not use).
fn secured(dir: &TempDir) -> Serve {
    let config = dir.write(
        "stepline.toml",
        format!(
            "[server]\nregion = \"{REGION}\"\n\n[[server.access_keys]]\nid = \"{KEY_ID}\"\nsecret = \"{SECRET}\"\n\n[[server.tokens]]\ntoken = \"sdk-token-0123456789\"\n"
        ),
    );
    Serve::start_with(&stepline_binary(), &dir.path().join("data"), Some(&config))
}

/// Connects to the server's address whatever host prefix the SDK put in
/// the URI, and sends the `Host` header the SDK signed.
#[derive(Debug)]
struct SyncHost;

impl Intercept for SyncHost {
    fn name(&self) -> &'static str {
        "SyncHost"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request_mut();
        let Some(rest) = request.uri().strip_prefix("http://sync-") else {
            return Ok(());
        };
        let authority = rest.split('/').next().unwrap_or(rest).to_owned();
        let direct = format!("http://{rest}");
        request
            .headers_mut()
            .insert("host", format!("sync-{authority}"));
        request.set_uri(direct)?;
        Ok(())
    }
}

fn client_with(serve: &Serve, key: &str, secret: &str) -> Client {
    let config = aws_sdk_sfn::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(format!("http://{}", serve.addr))
        .credentials_provider(Credentials::new(key, secret, None, None, "stepline-tests"))
        // Plain HTTP on loopback: no TLS stack to build.
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .interceptor(SyncHost)
        // An error is asserted as the server gave it, not retried.
        .retry_config(RetryConfig::disabled())
        .build();
    Client::from_conf(config)
}

fn client(serve: &Serve) -> Client {
    client_with(serve, KEY_ID, SECRET)
}

/// Runs the test body on a runtime of its own (the SDK is async).
fn run<F: Future<Output = ()>>(body: F) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(body);
}

fn pass(result: Value) -> String {
    json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": result, "End": true}}})
        .to_string()
}

async fn create(sfn: &Client, name: &str, definition: &str, kind: StateMachineType) -> String {
    sfn.create_state_machine()
        .name(name)
        .definition(definition)
        .role_arn(ROLE)
        .r#type(kind)
        .send()
        .await
        .expect("CreateStateMachine")
        .state_machine_arn()
        .to_owned()
}

async fn start(sfn: &Client, machine: &str, name: &str, input: &str) -> String {
    sfn.start_execution()
        .state_machine_arn(machine)
        .name(name)
        .input(input)
        .send()
        .await
        .expect("StartExecution")
        .execution_arn()
        .to_owned()
}

/// DescribeExecution until the execution is no longer RUNNING.
async fn finished(
    sfn: &Client,
    execution: &str,
) -> aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput {
    for _ in 0..500 {
        let described = sfn
            .describe_execution()
            .execution_arn(execution)
            .send()
            .await
            .expect("DescribeExecution");
        if described.status() != &ExecutionStatus::Running {
            return described;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{execution} did not finish");
}

fn types(events: &[HistoryEvent]) -> Vec<&str> {
    events.iter().map(|e| e.r#type().as_str()).collect()
}

fn json_text(text: Option<&str>) -> Value {
    serde_json::from_str(text.expect("JSON text")).expect("valid JSON")
}

/// Create, describe, update, list, start, follow the history with the
/// SDK's paginator in both orders, stop, the machine of an execution,
/// tags, delete.
#[test]
fn the_rust_sdk_runs_the_full_flow() {
    let dir = TempDir::new("sdk-flow");
    let serve = secured(&dir);
    run(async {
        let sfn = client(&serve);
        let first = json!({"StartAt": "Hello", "States": {
            "Hello": {"Type": "Pass", "Result": "first", "ResultPath": "$.greeting", "Next": "Nap"},
            "Nap": {"Type": "Wait", "Seconds": 60, "End": true}}})
        .to_string();
        let created = sfn
            .create_state_machine()
            .name("sdk-flow")
            .definition(&first)
            .role_arn(ROLE)
            .tags(Tag::builder().key("team").value("steps").build())
            .send()
            .await
            .expect("CreateStateMachine");
        let machine = created.state_machine_arn().to_owned();
        assert!(
            machine.starts_with(&format!("arn:aws:states:{REGION}:")),
            "{machine}"
        );
        let described = sfn
            .describe_state_machine()
            .state_machine_arn(&machine)
            .send()
            .await
            .expect("DescribeStateMachine");
        assert_eq!(described.name(), "sdk-flow");
        assert_eq!(described.definition(), first);
        assert_eq!(described.role_arn(), ROLE);
        assert_eq!(described.r#type(), &StateMachineType::Standard);
        let first_revision = described.revision_id().expect("revisionId").to_owned();

        let second = first.replace("\"first\"", "\"second\"");
        let updated = sfn
            .update_state_machine()
            .state_machine_arn(&machine)
            .definition(&second)
            .send()
            .await
            .expect("UpdateStateMachine");
        assert_ne!(updated.revision_id(), Some(first_revision.as_str()));
        let described = sfn
            .describe_state_machine()
            .state_machine_arn(&machine)
            .send()
            .await
            .expect("DescribeStateMachine");
        assert_eq!(described.definition(), second);

        create(
            &sfn,
            "sdk-other",
            &pass(json!(1)),
            StateMachineType::Express,
        )
        .await;
        let listed: Vec<String> = sfn
            .list_state_machines()
            .into_paginator()
            .page_size(1)
            .items()
            .send()
            .try_collect()
            .await
            .expect("ListStateMachines")
            .iter()
            .map(|m| format!("{} {}", m.name(), m.r#type().as_str()))
            .collect();
        assert_eq!(listed, ["sdk-flow STANDARD", "sdk-other EXPRESS"]);

        let execution = start(&sfn, &machine, "napping", r#"{"n": 1}"#).await;
        let running = sfn
            .describe_execution()
            .execution_arn(&execution)
            .send()
            .await
            .expect("DescribeExecution");
        assert_eq!(running.status(), &ExecutionStatus::Running);
        assert_eq!(running.name(), Some("napping"));
        assert_eq!(running.state_machine_arn(), machine);
        assert_eq!(json_text(running.input()), json!({"n": 1}));

        // Wait until the Wait state is entered, then read the history one
        // event per page with the SDK's paginator, forwards and backwards.
        let mut forward = Vec::new();
        for _ in 0..200 {
            forward = sfn
                .get_execution_history()
                .execution_arn(&execution)
                .into_paginator()
                .page_size(1)
                .items()
                .send()
                .try_collect()
                .await
                .expect("GetExecutionHistory");
            if types(&forward).contains(&"WaitStateEntered") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            types(&forward),
            [
                "ExecutionStarted",
                "PassStateEntered",
                "PassStateExited",
                "WaitStateEntered"
            ]
        );
        let ids: Vec<i64> = forward.iter().map(HistoryEvent::id).collect();
        assert_eq!(ids, [1, 2, 3, 4]);
        let started = forward[0]
            .execution_started_event_details()
            .expect("executionStartedEventDetails");
        assert_eq!(json_text(started.input()), json!({"n": 1}));
        let exited = forward[2]
            .state_exited_event_details()
            .expect("stateExitedEventDetails");
        assert_eq!(exited.name(), "Hello");
        assert_eq!(
            json_text(exited.output()),
            json!({"n": 1, "greeting": "second"})
        );
        let backward: Vec<HistoryEvent> = sfn
            .get_execution_history()
            .execution_arn(&execution)
            .reverse_order(true)
            .into_paginator()
            .page_size(3)
            .items()
            .send()
            .try_collect()
            .await
            .expect("GetExecutionHistory reverseOrder");
        let mut reversed = forward.clone();
        reversed.reverse();
        assert_eq!(backward, reversed);
        let page = sfn
            .get_execution_history()
            .execution_arn(&execution)
            .max_results(2)
            .include_execution_data(false)
            .send()
            .await
            .expect("one page");
        assert_eq!(page.events().len(), 2);
        assert!(page.next_token().is_some());
        let details = page.events()[0]
            .execution_started_event_details()
            .expect("details");
        assert_eq!(details.input(), None, "no data asked for");

        let stopped = sfn
            .stop_execution()
            .execution_arn(&execution)
            .error("Enough")
            .cause("the test is done waiting")
            .send()
            .await
            .expect("StopExecution");
        let aborted = finished(&sfn, &execution).await;
        assert_eq!(aborted.status(), &ExecutionStatus::Aborted);
        assert_eq!(aborted.error(), Some("Enough"));
        assert!(
            aborted
                .stop_date()
                .is_some_and(|d| d.secs() <= stopped.stop_date().secs() + 1)
        );
        let last = sfn
            .get_execution_history()
            .execution_arn(&execution)
            .reverse_order(true)
            .max_results(1)
            .send()
            .await
            .expect("the last event");
        let abort = last.events()[0]
            .execution_aborted_event_details()
            .expect("executionAbortedEventDetails");
        assert_eq!(
            (abort.error(), abort.cause()),
            (Some("Enough"), Some("the test is done waiting"))
        );

        let executions = sfn
            .list_executions()
            .state_machine_arn(&machine)
            .status_filter(ExecutionStatus::Aborted)
            .send()
            .await
            .expect("ListExecutions");
        let names: Vec<&str> = executions.executions().iter().map(|e| e.name()).collect();
        assert_eq!(names, ["napping"]);
        let of_execution = sfn
            .describe_state_machine_for_execution()
            .execution_arn(&execution)
            .send()
            .await
            .expect("DescribeStateMachineForExecution");
        assert_eq!(of_execution.definition(), second);

        sfn.tag_resource()
            .resource_arn(&machine)
            .tags(Tag::builder().key("stage").value("test").build())
            .send()
            .await
            .expect("TagResource");
        sfn.untag_resource()
            .resource_arn(&machine)
            .tag_keys("team")
            .send()
            .await
            .expect("UntagResource");
        let tags = sfn
            .list_tags_for_resource()
            .resource_arn(&machine)
            .send()
            .await
            .expect("ListTagsForResource");
        let tags: Vec<(Option<&str>, Option<&str>)> =
            tags.tags().iter().map(|t| (t.key(), t.value())).collect();
        assert_eq!(tags, [(Some("stage"), Some("test"))]);

        sfn.delete_state_machine()
            .state_machine_arn(&machine)
            .send()
            .await
            .expect("DeleteStateMachine");
        typed(
            sfn.describe_state_machine()
                .state_machine_arn(&machine)
                .send()
                .await,
            DescribeStateMachineError::is_state_machine_does_not_exist,
        );
    });
}

/// An activity worker polls (GetActivityTask) while the execution runs,
/// heartbeats, fails the first attempt (SendTaskFailure), the execution is
/// redriven, and the worker answers the second (SendTaskSuccess).
#[test]
fn the_rust_sdk_drives_an_activity_worker_and_redrives_a_failed_execution() {
    let dir = TempDir::new("sdk-activity");
    let serve = secured(&dir);
    run(async {
        let sfn = client(&serve);
        let activity = sfn
            .create_activity()
            .name("sdk-worker")
            .send()
            .await
            .expect("CreateActivity")
            .activity_arn()
            .to_owned();
        let described = sfn
            .describe_activity()
            .activity_arn(&activity)
            .send()
            .await
            .expect("DescribeActivity");
        assert_eq!(described.name(), "sdk-worker");
        let activities = sfn.list_activities().send().await.expect("ListActivities");
        assert_eq!(activities.activities().len(), 1);

        // The worker polls before the execution exists: its long poll is
        // answered when the task is scheduled.
        let worker = {
            let sfn = sfn.clone();
            let activity = activity.clone();
            tokio::spawn(async move {
                let mut inputs = Vec::new();
                for attempt in 0..2 {
                    let task = loop {
                        let task = sfn
                            .get_activity_task()
                            .activity_arn(&activity)
                            .worker_name("sdk-worker-1")
                            .send()
                            .await
                            .expect("GetActivityTask");
                        if task.task_token().is_some() {
                            break task;
                        }
                    };
                    let token = task.task_token().expect("a token").to_owned();
                    inputs.push(json_text(task.input()));
                    sfn.send_task_heartbeat()
                        .task_token(&token)
                        .send()
                        .await
                        .expect("SendTaskHeartbeat");
                    if attempt == 0 {
                        sfn.send_task_failure()
                            .task_token(&token)
                            .error("Worker.Flaky")
                            .cause("the first attempt fails")
                            .send()
                            .await
                            .expect("SendTaskFailure");
                    } else {
                        sfn.send_task_success()
                            .task_token(&token)
                            .output(r#"{"done": true}"#)
                            .send()
                            .await
                            .expect("SendTaskSuccess");
                    }
                    // An answered token is closed.
                    typed(
                        sfn.send_task_success()
                            .task_token(&token)
                            .output("{}")
                            .send()
                            .await,
                        SendTaskSuccessError::is_task_timed_out,
                    );
                }
                inputs
            })
        };
        let definition = json!({"StartAt": "Work", "States": {
            "Work": {"Type": "Task", "Resource": activity, "HeartbeatSeconds": 30,
                     "ResultPath": "$.work", "End": true}}})
        .to_string();
        let machine = create(&sfn, "sdk-worked", &definition, StateMachineType::Standard).await;
        let execution = start(&sfn, &machine, "worked", r#"{"job": 7}"#).await;
        let failed = finished(&sfn, &execution).await;
        assert_eq!(failed.status(), &ExecutionStatus::Failed);
        assert_eq!(
            (failed.error(), failed.cause()),
            (Some("Worker.Flaky"), Some("the first attempt fails"))
        );

        sfn.redrive_execution()
            .execution_arn(&execution)
            .send()
            .await
            .expect("RedriveExecution");
        let succeeded = finished(&sfn, &execution).await;
        assert_eq!(succeeded.status(), &ExecutionStatus::Succeeded);
        assert_eq!(succeeded.redrive_count(), Some(1));
        assert_eq!(
            json_text(succeeded.output()),
            json!({"job": 7, "work": {"done": true}})
        );
        let inputs = tokio::time::timeout(Duration::from_secs(30), worker)
            .await
            .expect("the worker ends")
            .expect("the worker did not panic");
        assert_eq!(inputs, [json!({"job": 7}), json!({"job": 7})]);

        let history: Vec<HistoryEvent> = sfn
            .get_execution_history()
            .execution_arn(&execution)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .expect("GetExecutionHistory");
        let kinds = types(&history);
        for kind in [
            "ActivityScheduled",
            "ActivityStarted",
            "ActivityFailed",
            "ExecutionFailed",
            "ExecutionRedriven",
            "ActivitySucceeded",
            "ExecutionSucceeded",
        ] {
            assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
        }
        let started = history
            .iter()
            .find_map(HistoryEvent::activity_started_event_details)
            .expect("activityStartedEventDetails");
        assert_eq!(started.worker_name(), Some("sdk-worker-1"));
        let redriven = history
            .iter()
            .find_map(HistoryEvent::execution_redriven_event_details)
            .expect("executionRedrivenEventDetails");
        assert_eq!(redriven.redrive_count(), Some(1));

        sfn.delete_activity()
            .activity_arn(&activity)
            .send()
            .await
            .expect("DeleteActivity");
        typed(
            sfn.describe_activity().activity_arn(&activity).send().await,
            DescribeActivityError::is_activity_does_not_exist,
        );
    });
}

/// Every history event reaches the SDK's HistoryEvent with its details:
/// variables, Parallel and Map with their iterations, a caught failure, a
/// nested execution followed with `.sync:2`, an activity that times out, a
/// JSONata expression that throws, an execution that times out.
#[test]
fn the_rust_sdk_reads_every_kind_of_history_event() {
    let dir = TempDir::new("sdk-history");
    let serve = secured(&dir);
    run(async {
        let sfn = client(&serve);
        let activity = sfn
            .create_activity()
            .name("sdk-nobody")
            .send()
            .await
            .expect("CreateActivity")
            .activity_arn()
            .to_owned();
        let child = create(
            &sfn,
            "sdk-child",
            &pass(json!({"child": true})),
            StateMachineType::Standard,
        )
        .await;
        let parent = json!({"StartAt": "Remember", "States": {
            "Remember": {"Type": "Pass", "Assign": {"seen": 1}, "Next": "Both"},
            "Both": {"Type": "Parallel", "Branches": [
                {"StartAt": "Each", "States": {"Each": {"Type": "Map", "ItemsPath": "$.items",
                    "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Item",
                        "States": {"Item": {"Type": "Pass", "End": true}}},
                    "End": true}}},
                {"StartAt": "Boom", "States": {"Boom": {"Type": "Fail", "Error": "Branch.Failed", "Cause": "on purpose"}}}],
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.caught", "Next": "Nested"}],
                "Next": "Nested"},
            "Nested": {"Type": "Task", "Resource": "arn:aws:states:::states:startExecution.sync:2",
                "Parameters": {"StateMachineArn": child, "Input": {}}, "ResultPath": "$.nested", "Next": "Work"},
            "Work": {"Type": "Task", "Resource": activity, "TimeoutSeconds": 1,
                "Catch": [{"ErrorEquals": ["States.Timeout"], "ResultPath": "$.late", "Next": "Done"}],
                "Next": "Done"},
            "Done": {"Type": "Succeed"}}})
        .to_string();
        let machine = create(&sfn, "sdk-every-event", &parent, StateMachineType::Standard).await;
        let execution = start(&sfn, &machine, "every", r#"{"items": [1, 2]}"#).await;
        let done = finished(&sfn, &execution).await;
        assert_eq!(done.status(), &ExecutionStatus::Succeeded, "{done:?}");
        let history: Vec<HistoryEvent> = sfn
            .get_execution_history()
            .execution_arn(&execution)
            .into_paginator()
            .page_size(7)
            .items()
            .send()
            .try_collect()
            .await
            .expect("GetExecutionHistory");
        let kinds = types(&history);
        for kind in [
            "ParallelStateStarted",
            "MapStateStarted",
            "MapIterationStarted",
            "MapIterationSucceeded",
            "MapStateSucceeded",
            "FailStateEntered",
            "ParallelStateFailed",
            "TaskScheduled",
            "TaskStarted",
            "TaskSucceeded",
            "ActivityScheduled",
            "ActivityTimedOut",
            "SucceedStateEntered",
            "ExecutionSucceeded",
        ] {
            assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
        }
        let assigned = history
            .iter()
            .filter_map(HistoryEvent::state_exited_event_details)
            .find(|d| d.name() == "Remember")
            .and_then(|d| d.assigned_variables())
            .expect("assignedVariables");
        assert_eq!(assigned.get("seen").map(String::as_str), Some("1"));
        let length = history
            .iter()
            .find_map(HistoryEvent::map_state_started_event_details)
            .map(|d| d.length());
        assert_eq!(length, Some(2));
        let indexes: Vec<i32> = history
            .iter()
            .filter_map(HistoryEvent::map_iteration_started_event_details)
            .map(|d| d.index())
            .collect();
        assert_eq!(indexes, [0, 1]);
        let scheduled = history
            .iter()
            .find_map(HistoryEvent::task_scheduled_event_details)
            .expect("taskScheduledEventDetails");
        assert_eq!(
            (scheduled.resource_type(), scheduled.resource()),
            ("states", "startExecution.sync:2")
        );
        assert_eq!(
            json_text(Some(scheduled.parameters()))["StateMachineArn"],
            json!(child)
        );
        let nested = history
            .iter()
            .find_map(HistoryEvent::task_succeeded_event_details)
            .expect("taskSucceededEventDetails");
        assert_eq!(json_text(nested.output())["Output"], json!({"child": true}));
        let activity_scheduled = history
            .iter()
            .find_map(HistoryEvent::activity_scheduled_event_details)
            .expect("activityScheduledEventDetails");
        assert_eq!(activity_scheduled.resource(), activity);
        assert_eq!(activity_scheduled.timeout_in_seconds(), Some(1));
        let timed_out = history
            .iter()
            .find_map(HistoryEvent::activity_timed_out_event_details)
            .expect("activityTimedOutEventDetails");
        assert_eq!(timed_out.error(), Some("States.Timeout"));

        let throws = json!({"QueryLanguage": "JSONata", "StartAt": "X", "States": {
            "X": {"Type": "Pass", "Output": "{% $undefinedFunction(1) %}", "End": true}}})
        .to_string();
        let machine = create(&sfn, "sdk-throws", &throws, StateMachineType::Standard).await;
        let execution = start(&sfn, &machine, "throws", "{}").await;
        let failed = finished(&sfn, &execution).await;
        assert_eq!(failed.error(), Some("States.QueryEvaluationError"));
        let history = sfn
            .get_execution_history()
            .execution_arn(&execution)
            .send()
            .await
            .expect("GetExecutionHistory");
        let evaluation = history
            .events()
            .iter()
            .find_map(HistoryEvent::evaluation_failed_event_details)
            .expect("evaluationFailedEventDetails");
        assert_eq!(
            (evaluation.error(), evaluation.state()),
            (Some("States.QueryEvaluationError"), "X")
        );
        let failure = history
            .events()
            .iter()
            .find_map(HistoryEvent::execution_failed_event_details)
            .expect("executionFailedEventDetails");
        assert_eq!(failure.error(), Some("States.QueryEvaluationError"));

        // A distributed Map: the Map Run actions and a child's machine.
        let distributed = json!({"StartAt": "Fan", "States": {"Fan": {"Type": "Map",
            "ItemsPath": "$.items", "Label": "fan",
            "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                "StartAt": "Item", "States": {"Item": {"Type": "Pass", "End": true}}},
            "End": true}}})
        .to_string();
        let machine = create(&sfn, "sdk-fan", &distributed, StateMachineType::Standard).await;
        let execution = start(&sfn, &machine, "fan", r#"{"items": [1, 2, 3]}"#).await;
        let fanned = finished(&sfn, &execution).await;
        assert_eq!(json_text(fanned.output()), json!([1, 2, 3]));
        let runs = sfn
            .list_map_runs()
            .execution_arn(&execution)
            .send()
            .await
            .expect("ListMapRuns");
        let map_run = runs.map_runs()[0].map_run_arn().to_owned();
        let described = sfn
            .describe_map_run()
            .map_run_arn(&map_run)
            .send()
            .await
            .expect("DescribeMapRun");
        let counts = described.item_counts().expect("itemCounts");
        assert_eq!((counts.total(), counts.succeeded()), (3, 3));
        sfn.update_map_run()
            .map_run_arn(&map_run)
            .max_concurrency(2)
            .send()
            .await
            .expect("UpdateMapRun");
        let children = sfn
            .list_executions()
            .map_run_arn(&map_run)
            .send()
            .await
            .expect("ListExecutions of a Map Run");
        assert_eq!(children.executions().len(), 3);
        let child = sfn
            .describe_state_machine_for_execution()
            .execution_arn(children.executions()[0].execution_arn())
            .send()
            .await
            .expect("DescribeStateMachineForExecution of a child");
        assert_eq!(child.map_run_arn(), Some(map_run.as_str()));
        assert_eq!(child.label(), Some("fan"));
        let history = sfn
            .get_execution_history()
            .execution_arn(&execution)
            .send()
            .await
            .expect("GetExecutionHistory");
        let started = history
            .events()
            .iter()
            .find_map(HistoryEvent::map_run_started_event_details)
            .expect("mapRunStartedEventDetails");
        assert_eq!(started.map_run_arn(), Some(map_run.as_str()));

        let slow = json!({"TimeoutSeconds": 1, "StartAt": "Nap", "States": {
            "Nap": {"Type": "Wait", "Seconds": 30, "End": true}}})
        .to_string();
        let machine = create(&sfn, "sdk-slow", &slow, StateMachineType::Standard).await;
        let execution = start(&sfn, &machine, "slow", "{}").await;
        let timed_out = finished(&sfn, &execution).await;
        assert_eq!(timed_out.status(), &ExecutionStatus::TimedOut);
        let last = sfn
            .get_execution_history()
            .execution_arn(&execution)
            .reverse_order(true)
            .max_results(1)
            .send()
            .await
            .expect("GetExecutionHistory");
        assert_eq!(
            last.events()[0].r#type(),
            &aws_sdk_sfn::types::HistoryEventType::ExecutionTimedOut
        );
        assert!(
            last.events()[0]
                .execution_timed_out_event_details()
                .is_some()
        );
    });
}

/// StartSyncExecution (through the `sync-` host, signed), a failure
/// returned as data, ValidateStateMachineDefinition and TestState.
#[test]
fn the_rust_sdk_runs_express_machines_validates_and_tests_states() {
    let dir = TempDir::new("sdk-express");
    let serve = secured(&dir);
    run(async {
        let sfn = client(&serve);
        let adder = json!({"StartAt": "Add", "States": {
            "Add": {"Type": "Pass", "Parameters": {"sum.$": "States.MathAdd($.a, $.b)"}, "Next": "Check"},
            "Check": {"Type": "Choice", "Choices": [
                {"Variable": "$.sum", "NumericGreaterThan": 100, "Next": "TooBig"}],
                "Default": "Done"},
            "TooBig": {"Type": "Fail", "Error": "Sum.TooBig", "Cause": "over 100"},
            "Done": {"Type": "Succeed"}}})
        .to_string();
        let machine = create(&sfn, "sdk-adder", &adder, StateMachineType::Express).await;
        let ran = sfn
            .start_sync_execution()
            .state_machine_arn(&machine)
            .name("small")
            .input(r#"{"a": 2, "b": 3}"#)
            .send()
            .await
            .expect("StartSyncExecution");
        assert_eq!(ran.status(), &SyncExecutionStatus::Succeeded);
        assert_eq!(json_text(ran.output()), json!({"sum": 5}));
        assert_eq!(ran.name(), Some("small"));
        assert!(ran.billing_details().is_some());
        let failed = sfn
            .start_sync_execution()
            .state_machine_arn(&machine)
            .input(r#"{"a": 200, "b": 3}"#)
            .send()
            .await
            .expect("a failed execution is an answer, not an error");
        assert_eq!(failed.status(), &SyncExecutionStatus::Failed);
        assert_eq!(
            (failed.error(), failed.cause()),
            (Some("Sum.TooBig"), Some("over 100"))
        );

        let ok = sfn
            .validate_state_machine_definition()
            .definition(&adder)
            .send()
            .await
            .expect("ValidateStateMachineDefinition");
        assert_eq!(ok.result(), &ValidateStateMachineDefinitionResultCode::Ok);
        assert!(ok.diagnostics().is_empty(), "{:?}", ok.diagnostics());
        let bad = sfn
            .validate_state_machine_definition()
            .definition(r#"{"StartAt": "Nowhere", "States": {"P": {"Type": "Pass", "End": true}}}"#)
            .send()
            .await
            .expect("ValidateStateMachineDefinition");
        assert_eq!(
            bad.result(),
            &ValidateStateMachineDefinitionResultCode::Fail
        );
        let errors: Vec<(&str, Option<&str>)> = bad
            .diagnostics()
            .iter()
            .filter(|d| d.severity() == &ValidateStateMachineDefinitionSeverity::Error)
            .map(|d| (d.code(), d.location()))
            .collect();
        assert!(!errors.is_empty(), "{:?}", bad.diagnostics());
        assert!(
            errors.iter().any(|(_, at)| *at == Some("/StartAt")),
            "{errors:?}"
        );

        let state = json!({"Type": "Pass", "Parameters": {"double.$": "States.MathAdd($.n, $.n)"},
                           "ResultPath": "$.out", "Next": "Elsewhere"})
        .to_string();
        let tested = sfn
            .test_state()
            .definition(&state)
            .role_arn(ROLE)
            .input(r#"{"n": 21}"#)
            .inspection_level(InspectionLevel::Debug)
            .send()
            .await
            .expect("TestState");
        assert_eq!(tested.status(), Some(&TestExecutionStatus::Succeeded));
        assert_eq!(tested.next_state(), Some("Elsewhere"));
        assert_eq!(
            json_text(tested.output()),
            json!({"n": 21, "out": {"double": 42}})
        );
        let inspection = tested.inspection_data().expect("inspectionData at DEBUG");
        assert_eq!(
            json_text(inspection.after_parameters()),
            json!({"double": 42})
        );
        let failing = json!({"Type": "Fail", "Error": "Nope", "Cause": "tested"}).to_string();
        let tested = sfn
            .test_state()
            .definition(&failing)
            .role_arn(ROLE)
            .send()
            .await
            .expect("TestState");
        assert_eq!(tested.status(), Some(&TestExecutionStatus::Failed));
        assert_eq!(
            (tested.error(), tested.cause()),
            (Some("Nope"), Some("tested"))
        );
    });
}

/// Versions and aliases: publish on create and update, list, describe a
/// version, route an alias, start through it, move it, delete.
#[test]
fn the_rust_sdk_publishes_versions_and_routes_aliases() {
    let dir = TempDir::new("sdk-versions");
    let serve = secured(&dir);
    run(async {
        let sfn = client(&serve);
        let created = sfn
            .create_state_machine()
            .name("sdk-routed")
            .definition(pass(json!("one")))
            .role_arn(ROLE)
            .publish(true)
            .version_description("first")
            .send()
            .await
            .expect("CreateStateMachine");
        let machine = created.state_machine_arn().to_owned();
        assert_eq!(
            created.state_machine_version_arn(),
            Some(format!("{machine}:1").as_str())
        );
        let updated = sfn
            .update_state_machine()
            .state_machine_arn(&machine)
            .definition(pass(json!("two")))
            .publish(true)
            .send()
            .await
            .expect("UpdateStateMachine");
        let v2 = updated
            .state_machine_version_arn()
            .expect("a version")
            .to_owned();
        assert_eq!(v2, format!("{machine}:2"));
        let published = sfn
            .publish_state_machine_version()
            .state_machine_arn(&machine)
            .send()
            .await
            .expect("PublishStateMachineVersion");
        assert_eq!(published.state_machine_version_arn(), v2, "same revision");
        let versions = sfn
            .list_state_machine_versions()
            .state_machine_arn(&machine)
            .send()
            .await
            .expect("ListStateMachineVersions");
        let versions: Vec<&str> = versions
            .state_machine_versions()
            .iter()
            .map(|v| v.state_machine_version_arn())
            .collect();
        assert_eq!(versions, [v2.clone(), format!("{machine}:1")]);
        let v1 = sfn
            .describe_state_machine()
            .state_machine_arn(format!("{machine}:1"))
            .send()
            .await
            .expect("DescribeStateMachine of a version");
        assert_eq!(v1.definition(), pass(json!("one")));
        assert_eq!(v1.description(), Some("first"));

        let route = |version: &str| {
            RoutingConfigurationListItem::builder()
                .state_machine_version_arn(version)
                .weight(100)
                .build()
                .expect("a route")
        };
        let alias = sfn
            .create_state_machine_alias()
            .name("prod")
            .routing_configuration(route(&format!("{machine}:1")))
            .send()
            .await
            .expect("CreateStateMachineAlias")
            .state_machine_alias_arn()
            .to_owned();
        assert_eq!(alias, format!("{machine}:prod"));
        let output = |sfn: Client, target: String| async move {
            let execution = sfn
                .start_execution()
                .state_machine_arn(target)
                .send()
                .await
                .expect("StartExecution")
                .execution_arn()
                .to_owned();
            json_text(finished(&sfn, &execution).await.output())
        };
        assert_eq!(output(sfn.clone(), alias.clone()).await, json!("one"));
        sfn.update_state_machine_alias()
            .state_machine_alias_arn(&alias)
            .routing_configuration(route(&v2))
            .send()
            .await
            .expect("UpdateStateMachineAlias");
        assert_eq!(output(sfn.clone(), alias.clone()).await, json!("two"));
        let described = sfn
            .describe_state_machine_alias()
            .state_machine_alias_arn(&alias)
            .send()
            .await
            .expect("DescribeStateMachineAlias");
        assert_eq!(described.name(), Some("prod"));
        assert_eq!(described.routing_configuration(), [route(&v2)]);
        let aliases = sfn
            .list_state_machine_aliases()
            .state_machine_arn(&machine)
            .send()
            .await
            .expect("ListStateMachineAliases");
        assert_eq!(aliases.state_machine_aliases().len(), 1);
        sfn.delete_state_machine_alias()
            .state_machine_alias_arn(&alias)
            .send()
            .await
            .expect("DeleteStateMachineAlias");
        sfn.delete_state_machine_version()
            .state_machine_version_arn(format!("{machine}:1"))
            .send()
            .await
            .expect("DeleteStateMachineVersion");
    });
}

/// The service error of a failed call, which must be the variant `is`
/// names in the SDK's typed error enum of that operation.
#[track_caller]
fn typed<T: std::fmt::Debug, E: std::fmt::Debug>(
    result: Result<T, SdkError<E>>,
    is: fn(&E) -> bool,
) -> E {
    match result {
        Err(SdkError::ServiceError(e)) if is(e.err()) => e.into_err(),
        other => panic!("not the expected error: {other:?}"),
    }
}

/// Every error the server gives arrives as the SDK's typed variant.
#[test]
fn the_rust_sdk_reads_every_error_by_type() {
    let dir = TempDir::new("sdk-errors");
    let serve = secured(&dir);
    run(async {
        let sfn = client(&serve);
        let machine = create(
            &sfn,
            "sdk-errors",
            &pass(json!(1)),
            StateMachineType::Standard,
        )
        .await;
        let execution = start(&sfn, &machine, "once", "{}").await;
        let done = finished(&sfn, &execution).await;
        assert_eq!(done.status(), &ExecutionStatus::Succeeded);
        let prefix = machine.trim_end_matches(":sdk-errors");
        let missing_execution = format!(
            "{}:sdk-errors:missing",
            prefix.replace(":stateMachine", ":execution")
        );
        let missing_activity = format!("{}:missing", prefix.replace(":stateMachine", ":activity"));

        let describe = |arn: String| sfn.describe_execution().execution_arn(arn).send();
        typed(
            describe(missing_execution.clone()).await,
            DescribeExecutionError::is_execution_does_not_exist,
        );
        typed(
            describe(format!("arn:aws:states:{REGION}:111111111111:nothing:x")).await,
            DescribeExecutionError::is_invalid_arn,
        );
        typed(
            sfn.stop_execution()
                .execution_arn(&missing_execution)
                .send()
                .await,
            StopExecutionError::is_execution_does_not_exist,
        );
        let start_as = |target: &str, name: Option<&str>, input: &str| {
            sfn.start_execution()
                .state_machine_arn(target)
                .set_name(name.map(str::to_owned))
                .input(input)
                .send()
        };
        typed(
            start_as(&machine, Some("once"), r#"{"other": true}"#).await,
            StartExecutionError::is_execution_already_exists,
        );
        typed(
            start_as(&format!("{prefix}:missing"), None, "{}").await,
            StartExecutionError::is_state_machine_does_not_exist,
        );
        typed(
            start_as(&machine, None, "not json").await,
            StartExecutionError::is_invalid_execution_input,
        );
        typed(
            start_as(&machine, Some("no spaces allowed"), "{}").await,
            StartExecutionError::is_invalid_name,
        );
        typed(
            sfn.describe_state_machine()
                .state_machine_arn(format!("{prefix}:missing"))
                .send()
                .await,
            DescribeStateMachineError::is_state_machine_does_not_exist,
        );

        let create_as = |name: &str, definition: String| {
            sfn.create_state_machine()
                .name(name)
                .definition(definition)
                .role_arn(ROLE)
                .send()
        };
        let invalid = typed(
            create_as(
                "broken",
                r#"{"StartAt": "Nowhere", "States": {}}"#.to_owned(),
            )
            .await,
            CreateStateMachineError::is_invalid_definition,
        );
        assert!(
            invalid.message().is_some_and(|m| m.contains("StartAt")),
            "{invalid:?}"
        );
        typed(
            create_as("sdk-errors", pass(json!(2))).await,
            CreateStateMachineError::is_state_machine_already_exists,
        );
        typed(
            sfn.update_state_machine()
                .state_machine_arn(&machine)
                .definition("{}")
                .send()
                .await,
            UpdateStateMachineError::is_invalid_definition,
        );
        typed(
            sfn.test_state()
                .definition(r#"{"Type": "Teleport"}"#)
                .role_arn(ROLE)
                .send()
                .await,
            TestStateError::is_invalid_definition,
        );

        typed(
            sfn.list_executions()
                .state_machine_arn(&machine)
                .max_results(5000)
                .send()
                .await,
            ListExecutionsError::is_validation_exception,
        );
        typed(
            sfn.get_execution_history()
                .execution_arn(&execution)
                .next_token("bm90LWEtdG9rZW4")
                .send()
                .await,
            GetExecutionHistoryError::is_invalid_token,
        );
        typed(
            sfn.redrive_execution()
                .execution_arn(&execution)
                .send()
                .await,
            RedriveExecutionError::is_execution_not_redrivable,
        );
        typed(
            sfn.start_sync_execution()
                .state_machine_arn(&machine)
                .send()
                .await,
            StartSyncExecutionError::is_state_machine_type_not_supported,
        );

        typed(
            sfn.send_task_success()
                .task_token("not-a-token")
                .output("{}")
                .send()
                .await,
            SendTaskSuccessError::is_invalid_token,
        );
        typed(
            sfn.send_task_failure()
                .task_token("A".repeat(43))
                .send()
                .await,
            SendTaskFailureError::is_task_timed_out,
        );
        typed(
            sfn.send_task_heartbeat()
                .task_token("A".repeat(43))
                .send()
                .await,
            SendTaskHeartbeatError::is_task_timed_out,
        );
        typed(
            sfn.get_activity_task()
                .activity_arn(&missing_activity)
                .send()
                .await,
            GetActivityTaskError::is_activity_does_not_exist,
        );
        typed(
            sfn.describe_activity()
                .activity_arn(&missing_activity)
                .send()
                .await,
            DescribeActivityError::is_activity_does_not_exist,
        );

        typed(
            sfn.list_tags_for_resource()
                .resource_arn(format!("{prefix}:missing"))
                .send()
                .await,
            ListTagsForResourceError::is_resource_not_found,
        );
        let half = RoutingConfigurationListItem::builder()
            .state_machine_version_arn(format!("{machine}:1"))
            .weight(50)
            .build()
            .expect("a route");
        typed(
            sfn.create_state_machine_alias()
                .name("half")
                .routing_configuration(half)
                .send()
                .await,
            CreateStateMachineAliasError::is_validation_exception,
        );

        // The server still answers after all of that.
        sfn.list_state_machines()
            .send()
            .await
            .expect("ListStateMachines");
    });
}

/// A wrong secret and an unknown key are refused as AWS refuses them; the
/// SDK has no modeled variant for these, so the raw code is checked.
#[test]
fn the_rust_sdk_with_a_wrong_key_is_refused() {
    let dir = TempDir::new("sdk-refused");
    let serve = secured(&dir);
    run(async {
        let refused = client_with(&serve, KEY_ID, "not-the-secret")
            .list_state_machines()
            .send()
            .await
            .expect_err("a wrong secret");
        assert_eq!(
            refused.code(),
            Some("InvalidSignatureException"),
            "{refused:?}"
        );
        assert_eq!(
            refused.raw_response().map(|r| r.status().as_u16()),
            Some(400)
        );
        let unknown = client_with(&serve, "AKIANOTCONFIGURED000", SECRET)
            .list_state_machines()
            .send()
            .await
            .expect_err("an unknown key");
        assert_eq!(
            unknown.code(),
            Some("UnrecognizedClientException"),
            "{unknown:?}"
        );
        // Through the sync- host as well.
        let refused = client_with(&serve, KEY_ID, "not-the-secret")
            .start_sync_execution()
            .state_machine_arn(format!(
                "arn:aws:states:{REGION}:111111111111:stateMachine:x"
            ))
            .send()
            .await
            .expect_err("a wrong secret");
        assert_eq!(
            refused.code(),
            Some("InvalidSignatureException"),
            "{refused:?}"
        );
        client(&serve)
            .list_state_machines()
            .send()
            .await
            .expect("the right key");
    });
}

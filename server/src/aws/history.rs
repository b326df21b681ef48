//! History events in the shape of AWS's GetExecutionHistory `events`.

use serde_json::{Map, Value, json};
use stepline_language::history::{CacheHit, Event, HistoryEvent, PoolWait};

use super::wire::Epoch;

/// One event as AWS renders it: `{"timestamp", "type", "id",
/// "previousEventId", "<kind>EventDetails": {...}}`. Payloads are JSON text,
/// as in AWS; timestamps are epoch seconds, as on AWS's wire.
pub fn event_json(event: &HistoryEvent) -> Value {
    let mut out = Map::new();
    out.insert("timestamp".into(), json!(Epoch(event.timestamp).seconds()));
    out.insert("type".into(), json!(event.event.type_name()));
    out.insert("id".into(), json!(event.id));
    out.insert("previousEventId".into(), json!(event.previous_event_id));
    if let Some((key, details)) = details(&event.event) {
        out.insert(key.into(), details);
    }
    Value::Object(out)
}

fn text(value: &Value) -> Value {
    Value::String(value.to_string())
}

fn not_truncated() -> Value {
    json!({"truncated": false})
}

/// `{"error": ..., "cause": ...}` with absent fields left out.
fn error_cause(error: &Option<String>, cause: &Option<String>) -> Value {
    let mut out = Map::new();
    if let Some(error) = error {
        out.insert("error".into(), json!(error));
    }
    if let Some(cause) = cause {
        out.insert("cause".into(), json!(cause));
    }
    Value::Object(out)
}

fn with_resource(resource_type: &str, resource: &str, mut rest: Value) -> Value {
    if let Value::Object(map) = &mut rest {
        map.insert("resourceType".into(), json!(resource_type));
        map.insert("resource".into(), json!(resource));
    }
    rest
}

/// The name of the member that says a result came from the task cache: a
/// stepline addition to AWS's event details, which AWS's clients (boto3,
/// the AWS CLI, the SDKs) skip as they skip any member their model lacks.
pub const CACHE_MEMBER: &str = "steplineCache";

/// `details` with the cache's member when the result came from it:
/// `{"key", "executionArn" (the execution that stored it), "stored",
/// "expires"}` (epoch seconds, as every AWS timestamp).
fn with_cache(mut details: Value, cache: Option<&CacheHit>) -> Value {
    if let (Some(hit), Value::Object(map)) = (cache, &mut details) {
        map.insert(
            CACHE_MEMBER.into(),
            json!({
                "key": hit.key,
                "executionArn": hit.execution_arn,
                "stored": Epoch(hit.stored).seconds(),
                "expires": Epoch(hit.expires).seconds(),
            }),
        );
    }
    details
}

/// The name of the member that says a task drew from a pool of slots
/// (`[pools.NAME]`) and waited for its slot: a stepline addition AWS's
/// clients skip, as [`CACHE_MEMBER`].
pub const POOL_MEMBER: &str = "steplinePool";

/// `details` with the pool's member when the task drew from one:
/// `{"name", "waitedMs"}`.
fn with_pool(mut details: Value, pool: Option<&PoolWait>) -> Value {
    if let (Some(wait), Value::Object(map)) = (pool, &mut details) {
        map.insert(
            POOL_MEMBER.into(),
            json!({"name": wait.name, "waitedMs": wait.waited_ms}),
        );
    }
    details
}

fn details(event: &Event) -> Option<(&'static str, Value)> {
    Some(match event {
        Event::ExecutionStarted { input, role_arn } => (
            "executionStartedEventDetails",
            json!({"input": text(input), "inputDetails": not_truncated(), "roleArn": role_arn}),
        ),
        Event::ExecutionSucceeded { output } => (
            "executionSucceededEventDetails",
            json!({"output": text(output), "outputDetails": not_truncated()}),
        ),
        Event::ExecutionFailed { error, cause } => {
            ("executionFailedEventDetails", error_cause(error, cause))
        }
        Event::ExecutionAborted { error, cause } => {
            ("executionAbortedEventDetails", error_cause(error, cause))
        }
        Event::ExecutionTimedOut { error, cause } => {
            ("executionTimedOutEventDetails", error_cause(error, cause))
        }
        Event::ExecutionRedriven { redrive_count } => (
            "executionRedrivenEventDetails",
            json!({"redriveCount": redrive_count}),
        ),
        Event::StateEntered { name, input, .. } => (
            "stateEnteredEventDetails",
            json!({"name": &**name, "input": text(input), "inputDetails": not_truncated()}),
        ),
        Event::StateExited {
            name,
            output,
            assigned_variables,
            ..
        } => {
            let mut d =
                json!({"name": &**name, "output": text(output), "outputDetails": not_truncated()});
            if let (Some(vars), Value::Object(map)) = (assigned_variables, &mut d) {
                map.insert("assignedVariables".into(), Value::Object((**vars).clone()));
                map.insert("assignedVariablesDetails".into(), not_truncated());
            }
            ("stateExitedEventDetails", d)
        }
        Event::MapStateStarted { length } => {
            ("mapStateStartedEventDetails", json!({"length": length}))
        }
        Event::MapIterationStarted { name, index } => (
            "mapIterationStartedEventDetails",
            json!({"name": &**name, "index": index}),
        ),
        Event::MapIterationSucceeded { name, index } => (
            "mapIterationSucceededEventDetails",
            json!({"name": &**name, "index": index}),
        ),
        Event::MapIterationFailed { name, index } => (
            "mapIterationFailedEventDetails",
            json!({"name": &**name, "index": index}),
        ),
        Event::MapIterationAborted { name, index } => (
            "mapIterationAbortedEventDetails",
            json!({"name": &**name, "index": index}),
        ),
        Event::TaskScheduled(t) => {
            let mut d = json!({"region": t.region, "parameters": text(&t.parameters)});
            if let Value::Object(map) = &mut d {
                if let Some(seconds) = t.timeout_in_seconds {
                    map.insert("timeoutInSeconds".into(), json!(seconds));
                }
                if let Some(seconds) = t.heartbeat_in_seconds {
                    map.insert("heartbeatInSeconds".into(), json!(seconds));
                }
            }
            (
                "taskScheduledEventDetails",
                with_resource(&t.resource_type, &t.resource, d),
            )
        }
        Event::TaskStarted(t) => (
            "taskStartedEventDetails",
            with_pool(
                with_resource(&t.resource_type, &t.resource, json!({})),
                t.pool.as_deref(),
            ),
        ),
        Event::TaskSucceeded(t) => (
            "taskSucceededEventDetails",
            with_cache(
                with_resource(
                    &t.resource_type,
                    &t.resource,
                    json!({"output": text(&t.output), "outputDetails": not_truncated()}),
                ),
                t.cache.as_deref(),
            ),
        ),
        Event::TaskFailed(t) => (
            "taskFailedEventDetails",
            with_resource(
                &t.resource_type,
                &t.resource,
                error_cause(&t.error, &t.cause),
            ),
        ),
        Event::TaskTimedOut(t) => (
            "taskTimedOutEventDetails",
            with_resource(
                &t.resource_type,
                &t.resource,
                error_cause(&t.error, &t.cause),
            ),
        ),
        Event::TaskSubmitted(t) => (
            "taskSubmittedEventDetails",
            with_resource(
                &t.resource_type,
                &t.resource,
                json!({"output": text(&t.output), "outputDetails": not_truncated()}),
            ),
        ),
        Event::ActivityScheduled(a) => {
            let mut d = json!({"resource": a.resource, "input": text(&a.input), "inputDetails": not_truncated()});
            if let Value::Object(map) = &mut d {
                if let Some(seconds) = a.timeout_in_seconds {
                    map.insert("timeoutInSeconds".into(), json!(seconds));
                }
                if let Some(seconds) = a.heartbeat_in_seconds {
                    map.insert("heartbeatInSeconds".into(), json!(seconds));
                }
            }
            ("activityScheduledEventDetails", d)
        }
        Event::ActivityStarted { worker_name, pool } => {
            let mut d = Map::new();
            if let Some(name) = worker_name {
                d.insert("workerName".into(), json!(name));
            }
            (
                "activityStartedEventDetails",
                with_pool(Value::Object(d), pool.as_deref()),
            )
        }
        Event::ActivitySucceeded { output, cache } => (
            "activitySucceededEventDetails",
            with_cache(
                json!({"output": text(output), "outputDetails": not_truncated()}),
                cache.as_deref(),
            ),
        ),
        Event::ActivityFailed { error, cause } => {
            ("activityFailedEventDetails", error_cause(error, cause))
        }
        Event::ActivityTimedOut { error, cause } => {
            ("activityTimedOutEventDetails", error_cause(error, cause))
        }
        Event::EvaluationFailed(e) => {
            let mut d = json!({"state": e.state, "error": e.error, "cause": e.cause});
            if let (Some(location), Value::Object(map)) = (&e.location, &mut d) {
                map.insert("location".into(), json!(location));
            }
            ("evaluationFailedEventDetails", d)
        }
        Event::MapRunStarted { map_run_arn } => (
            "mapRunStartedEventDetails",
            json!({"mapRunArn": map_run_arn}),
        ),
        Event::MapRunRedriven {
            map_run_arn,
            redrive_count,
        } => (
            "mapRunRedrivenEventDetails",
            json!({"mapRunArn": map_run_arn, "redriveCount": redrive_count}),
        ),
        Event::MapRunFailed { error, cause } => {
            ("mapRunFailedEventDetails", error_cause(error, cause))
        }
        Event::ParallelStateStarted
        | Event::MapRunSucceeded
        | Event::MapRunAborted
        | Event::ParallelStateSucceeded
        | Event::ParallelStateFailed
        | Event::ParallelStateAborted
        | Event::MapStateSucceeded
        | Event::MapStateFailed
        | Event::MapStateAborted => return None,
    })
}

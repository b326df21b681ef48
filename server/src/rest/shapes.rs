//! The REST API's JSON shapes, converted from engine records by hand:
//! camelCase members, RFC 3339 timestamps, and payloads (inputs, outputs,
//! task parameters) as JSON values rather than JSON text, so that `jq` reads
//! them directly.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use stepline_language::asl::Diagnostic;
use stepline_language::history::HistoryEvent;
use stepline_store::{ExecutionRecord, ExecutionSummary, StateMachineRecord};

pub fn time(t: DateTime<Utc>) -> Value {
    Value::String(t.to_rfc3339_opts(SecondsFormat::Millis, true))
}
/// JSON text stored by the engine, as a value (text that somehow is not
/// JSON stays a string rather than failing the request).
fn payload(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

pub fn machine_summary(m: &StateMachineRecord) -> Value {
    json!({
        "name": m.name,
        "arn": m.arn,
        "type": m.workflow_type.as_str(),
        "creationDate": time(m.created),
        "revision": m.revision,
    })
}

/// A state machine with its definition, exactly as it was given.
pub fn machine_detail(m: &StateMachineRecord) -> Value {
    let mut out = machine_summary(m);
    if let Value::Object(map) = &mut out {
        map.insert("roleArn".into(), json!(m.role_arn));
        map.insert("definition".into(), json!(m.definition));
    }
    out
}

/// The name of a state machine from its ARN (the last `:` part).
pub fn machine_name(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or(arn)
}

/// An execution's id in REST paths: `MACHINE/NAME`, or `MACHINE/NAME:ID`
/// for an EXPRESS execution (whose name need not be unique; its ARN ends
/// with `NAME:ID`). No part can hold a `/` or a `:` (AWS's name rule), so
/// the id is unambiguous.
pub fn execution_id(e: &ExecutionSummary) -> String {
    format!(
        "{}/{}",
        machine_name(&e.state_machine_arn),
        execution_key(e)
    )
}

/// The part of [`execution_id`] after the machine.
pub fn execution_key(e: &ExecutionSummary) -> String {
    if e.has_unique_name() {
        return e.name.clone();
    }
    let id = e.arn.rsplit(':').next().unwrap_or_default();
    format!("{}:{id}", e.name)
}

pub fn execution_summary(e: &ExecutionSummary) -> Value {
    let mut out = json!({
        "id": execution_id(e),
        "name": e.name,
        "stateMachine": machine_name(&e.state_machine_arn),
        "arn": e.arn,
        "stateMachineArn": e.state_machine_arn,
        "status": e.status.as_str(),
        "startDate": time(e.start),
    });
    if let Value::Object(map) = &mut out {
        if let Some(stop) = e.stop {
            map.insert("stopDate".into(), time(stop));
        }
        if let Some(error) = &e.error {
            map.insert("error".into(), json!(error));
        }
    }
    out
}

pub fn execution_detail(e: &ExecutionRecord) -> Value {
    let mut out = execution_summary(&e.summary());
    if let Value::Object(map) = &mut out {
        map.insert("revision".into(), json!(e.revision));
        map.insert("input".into(), payload(&e.input));
        if let Some(output) = &e.output {
            map.insert("output".into(), payload(output));
        }
        if let Some(error) = &e.error {
            map.insert("error".into(), json!(error));
        }
        if let Some(cause) = &e.cause {
            map.insert("cause".into(), json!(cause));
        }
    }
    out
}

/// One history event: `{id, previousEventId, timestamp, type, details}`,
/// where `details` holds the members of AWS's `<kind>EventDetails` with
/// payloads as JSON values.
pub fn event_json(event: &HistoryEvent) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), json!(event.id));
    out.insert("previousEventId".into(), json!(event.previous_event_id));
    out.insert("timestamp".into(), time(event.timestamp));
    out.insert("type".into(), json!(event.event.type_name()));
    let aws = crate::aws::history::event_json(event);
    let details = aws
        .as_object()
        .and_then(|m| {
            m.iter()
                .find(|(k, _)| k.ends_with("EventDetails"))
                .map(|(_, v)| v.clone())
        })
        .unwrap_or_else(|| json!({}));
    let details = match details {
        Value::Object(mut d) => {
            for key in ["input", "output", "parameters"] {
                if let Some(Value::String(text)) = d.get(key) {
                    let value = payload(text);
                    d.insert(key.to_owned(), value);
                }
            }
            // The task cache's member, with RFC 3339 times as REST has them.
            if d.remove(crate::aws::history::CACHE_MEMBER).is_some() {
                if let Some(hit) = cache_hit(&event.event) {
                    d.insert(
                        "cache".into(),
                        json!({
                            "key": hit.key,
                            "executionArn": hit.execution_arn,
                            "stored": time(hit.stored),
                            "expires": time(hit.expires),
                        }),
                    );
                }
            }
            // The pool's member, as `pool`.
            if let Some(pool) = d.remove(crate::aws::history::POOL_MEMBER) {
                d.insert("pool".into(), pool);
            }
            Value::Object(d)
        }
        other => other,
    };
    out.insert("details".into(), details);
    Value::Object(out)
}

fn cache_hit(
    event: &stepline_language::history::Event,
) -> Option<&stepline_language::history::CacheHit> {
    use stepline_language::history::Event;
    match event {
        Event::TaskSucceeded(t) => t.cache.as_deref(),
        Event::ActivitySucceeded { cache, .. } => cache.as_deref(),
        _ => None,
    }
}

pub fn diagnostic_json(d: &Diagnostic) -> Value {
    json!({
        "severity": d.severity.as_str(),
        "code": d.code.as_str(),
        "message": d.message,
        "pointer": d.pointer,
        "line": d.line,
        "column": d.column,
    })
}

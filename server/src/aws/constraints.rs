//! The checks AWS makes before an action runs, from the service model: each
//! member's JSON type (a mismatch is `SerializationException`, as AWS's
//! deserializer reports it) and its length, range and enum constraints (a
//! violation is `ValidationException`, "N validation error(s) detected:
//! ...", every violation listed). [`members`] gives each [`Action`]'s
//! members in one exhaustive match: a new action must say here what it
//! checks, an empty list if nothing.
//!
//! Unknown members are ignored, as AWS's JSON services ignore them.

use serde_json::Value;

use super::dispatch::Action;
use super::error::AwsError;

#[derive(Debug, Clone, Copy)]
enum Kind {
    /// A string with a length range (in characters, or in UTF-8 bytes for
    /// payloads, as AWS counts them).
    Str {
        min: usize,
        max: usize,
        bytes: bool,
    },
    /// A string from a closed set.
    Enum(&'static [&'static str]),
    Int {
        min: i64,
        max: i64,
    },
    Bool,
    /// An ARN of a stepline resource (`stateMachine`, `execution`): a
    /// string of 1..256 characters in AWS's shape, every part filled in,
    /// or `InvalidArn`.
    Arn(&'static str),
}

/// Is the value shown in the message? Not for definitions and payloads
/// (AWS marks them sensitive, and they may be megabytes).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Shown {
    Yes,
    No,
}

#[derive(Debug, Clone, Copy)]
struct Constraint {
    name: &'static str,
    kind: Kind,
    shown: Shown,
}

const fn string(name: &'static str, min: usize, max: usize) -> Constraint {
    Constraint {
        name,
        kind: Kind::Str {
            min,
            max,
            bytes: false,
        },
        shown: Shown::Yes,
    }
}

const fn payload(name: &'static str, max: usize) -> Constraint {
    Constraint {
        name,
        kind: Kind::Str {
            min: 0,
            max,
            bytes: true,
        },
        shown: Shown::No,
    }
}

const fn one_of(name: &'static str, values: &'static [&'static str]) -> Constraint {
    Constraint {
        name,
        kind: Kind::Enum(values),
        shown: Shown::Yes,
    }
}

const fn int(name: &'static str, min: i64, max: i64) -> Constraint {
    Constraint {
        name,
        kind: Kind::Int { min, max },
        shown: Shown::Yes,
    }
}

const fn arn(name: &'static str, resource: &'static str) -> Constraint {
    Constraint {
        name,
        kind: Kind::Arn(resource),
        shown: Shown::Yes,
    }
}

/// `arn:PARTITION:states:REGION:ACCOUNT:stateMachine:NAME[:VERSION]`,
/// `arn:PARTITION:states:REGION:ACCOUNT:activity:NAME`,
/// `arn:PARTITION:states:REGION:ACCOUNT:execution:MACHINE:NAME` or, for an
/// EXPRESS execution, `...:express:MACHINE:NAME:ID` (a distributed Map's
/// EXPRESS children: `...:express:MACHINE/LABEL:NAME`).
fn arn_shape_ok(value: &str, resource: &str) -> bool {
    let parts: Vec<&str> = value.split(':').collect();
    let express = resource == "execution" && parts.get(5) == Some(&"express");
    let sizes = match resource {
        "stateMachine" => 7..=8,
        "activity" => 7..=7,
        _ if express => 8..=9,
        _ => 8..=8,
    };
    sizes.contains(&parts.len())
        && parts[0] == "arn"
        && parts[2] == "states"
        && (parts[5] == resource || express)
        && parts.iter().all(|p| !p.is_empty())
}

const fn boolean(name: &'static str) -> Constraint {
    Constraint {
        name,
        kind: Kind::Bool,
        shown: Shown::Yes,
    }
}

/// AWS's limits: names 1..80 characters, ARNs 1..256, definitions 1 MiB,
/// inputs 256 KiB (UTF-8 bytes), StopExecution's error 256 and cause 32768.
const NAME: usize = 80;
const ARN: usize = 256;
const DEFINITION: usize = 1024 * 1024;
const INPUT: usize = 256 * 1024;
const TOKEN: usize = 1024;
const TYPES: &[&str] = &["STANDARD", "EXPRESS"];
const STATUSES: &[&str] = &[
    "RUNNING",
    "SUCCEEDED",
    "FAILED",
    "TIMED_OUT",
    "ABORTED",
    "PENDING_REDRIVE",
];

/// A definition: 1 byte to 1 MiB, never shown.
const DEFINITION_MEMBER: Constraint = Constraint {
    name: "definition",
    kind: Kind::Str {
        min: 1,
        max: DEFINITION,
        bytes: true,
    },
    shown: Shown::No,
};
const MAX_RESULTS: Constraint = int("maxResults", 0, 1000);
const NEXT_TOKEN: Constraint = string("nextToken", 1, TOKEN);
const TASK_TOKEN: Constraint = string("taskToken", 1, 2048);

/// A `'static` list of constraints (`const` items, as function calls in
/// a plain `&[...]` are not promoted to `'static`).
macro_rules! rules {
    ($($member:expr),* $(,)?) => {{
        const MEMBERS: &[Constraint] = &[$($member),*];
        MEMBERS
    }};
}

/// The members of `action` that AWS's service model constrains, in the
/// order they are checked.
fn members(action: Action) -> &'static [Constraint] {
    use Action as A;
    match action {
        A::CreateStateMachine => rules![
            string("name", 1, NAME),
            DEFINITION_MEMBER,
            string("roleArn", 1, ARN),
            one_of("type", TYPES),
            boolean("publish"),
        ],
        A::DescribeStateMachine | A::DeleteStateMachine => {
            rules![arn("stateMachineArn", "stateMachine")]
        }
        A::UpdateStateMachine => rules![
            arn("stateMachineArn", "stateMachine"),
            DEFINITION_MEMBER,
            string("roleArn", 1, ARN),
            boolean("publish"),
        ],
        A::ListStateMachines | A::ListActivities => rules![MAX_RESULTS, NEXT_TOKEN],
        A::ValidateStateMachineDefinition => rules![DEFINITION_MEMBER, one_of("type", TYPES)],
        A::StartExecution | A::StartSyncExecution => rules![
            arn("stateMachineArn", "stateMachine"),
            string("name", 1, NAME),
            payload("input", INPUT),
            string("traceHeader", 0, 256),
        ],
        A::DescribeExecution | A::RedriveExecution | A::DescribeStateMachineForExecution => {
            rules![arn("executionArn", "execution")]
        }
        A::DescribeMapRun | A::UpdateMapRun => rules![arn("mapRunArn", "mapRun")],
        A::ListMapRuns => rules![arn("executionArn", "execution"), MAX_RESULTS, NEXT_TOKEN],
        A::TestState => rules![
            DEFINITION_MEMBER,
            payload("input", INPUT),
            string("roleArn", 1, ARN),
            one_of("inspectionLevel", &["INFO", "DEBUG", "TRACE"]),
            boolean("revealSecrets"),
            payload("variables", INPUT),
            string("stateName", 1, NAME),
        ],
        A::TagResource | A::UntagResource | A::ListTagsForResource => {
            rules![string("resourceArn", 1, ARN)]
        }
        A::ListExecutions => rules![
            arn("stateMachineArn", "stateMachine"),
            arn("mapRunArn", "mapRun"),
            one_of("statusFilter", STATUSES),
            one_of("redriveFilter", &["REDRIVEN", "NOT_REDRIVEN"]),
            MAX_RESULTS,
            NEXT_TOKEN,
        ],
        A::GetExecutionHistory => rules![
            arn("executionArn", "execution"),
            boolean("reverseOrder"),
            boolean("includeExecutionData"),
            MAX_RESULTS,
            NEXT_TOKEN,
        ],
        A::StopExecution => rules![
            arn("executionArn", "execution"),
            payload("error", 256),
            payload("cause", 32768),
        ],
        A::CreateActivity => rules![string("name", 1, NAME)],
        A::DescribeActivity | A::DeleteActivity => rules![arn("activityArn", "activity")],
        A::GetActivityTask => rules![
            arn("activityArn", "activity"),
            string("workerName", 1, NAME),
        ],
        A::SendTaskSuccess => rules![TASK_TOKEN, payload("output", INPUT)],
        A::SendTaskFailure => rules![TASK_TOKEN, payload("error", 256), payload("cause", 32768),],
        A::SendTaskHeartbeat => rules![TASK_TOKEN],
        // Versions and aliases: each action reads its members itself.
        A::PublishStateMachineVersion
        | A::ListStateMachineVersions
        | A::DeleteStateMachineVersion
        | A::CreateStateMachineAlias
        | A::UpdateStateMachineAlias
        | A::DescribeStateMachineAlias
        | A::DeleteStateMachineAlias
        | A::ListStateMachineAliases => &[],
    }
}

/// The JSON type's name as AWS's deserializer writes it.
fn token_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "VALUE_NULL",
        Value::Bool(_) => "VALUE_BOOLEAN",
        Value::Number(_) => "VALUE_NUMBER",
        Value::String(_) => "VALUE_STRING",
        Value::Array(_) => "START_ARRAY",
        Value::Object(_) => "START_OBJECT",
    }
}

fn serialization(member: &str, value: &Value, expected: &str) -> AwsError {
    AwsError {
        kind: "SerializationException",
        message: format!(
            "member '{member}': a {} can not be converted to {expected}",
            token_name(value)
        ),
        status: 400,
    }
}

/// Checks `request` (a JSON object) against the model of `action`.
pub fn check(action: Action, request: &Value) -> Result<(), AwsError> {
    let mut violations = Vec::new();
    let mut bad_arn = None;
    for member in members(action) {
        let value = match request.get(member.name) {
            None | Some(Value::Null) => continue,
            Some(v) => v,
        };
        let shown = |v: &str| match member.shown {
            Shown::Yes => format!("Value '{v}' at '{}'", member.name),
            Shown::No => format!("Value at '{}'", member.name),
        };
        match member.kind {
            Kind::Str { min, max, bytes } => {
                let Value::String(s) = value else {
                    return Err(serialization(member.name, value, "a String"));
                };
                let len = if bytes { s.len() } else { s.chars().count() };
                if len < min {
                    violations.push(format!(
                        "{} failed to satisfy constraint: Member must have length greater than or equal to {min}",
                        shown(s)
                    ));
                } else if len > max {
                    violations.push(format!(
                        "{} failed to satisfy constraint: Member must have length less than or equal to {max}",
                        shown(s)
                    ));
                }
            }
            Kind::Enum(values) => {
                let Value::String(s) = value else {
                    return Err(serialization(member.name, value, "a String"));
                };
                if !values.contains(&s.as_str()) {
                    violations.push(format!(
                        "{} failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                        shown(s),
                        values.join(", ")
                    ));
                }
            }
            Kind::Int { min, max } => {
                let Some(n) = value.as_i64() else {
                    return Err(serialization(member.name, value, "an Integer"));
                };
                if n < min {
                    violations.push(format!(
                        "{} failed to satisfy constraint: Member must have value greater than or equal to {min}",
                        shown(&n.to_string())
                    ));
                } else if n > max {
                    violations.push(format!(
                        "{} failed to satisfy constraint: Member must have value less than or equal to {max}",
                        shown(&n.to_string())
                    ));
                }
            }
            Kind::Bool => {
                if !value.is_boolean() {
                    return Err(serialization(member.name, value, "a Boolean"));
                }
            }
            Kind::Arn(resource) => {
                let Value::String(s) = value else {
                    return Err(serialization(member.name, value, "a String"));
                };
                let len = s.chars().count();
                if len == 0 {
                    violations.push(format!(
                        "{} failed to satisfy constraint: Member must have length greater than or equal to 1",
                        shown(s)
                    ));
                } else if len > ARN {
                    violations.push(format!(
                        "{} failed to satisfy constraint: Member must have length less than or equal to {ARN}",
                        shown(s)
                    ));
                } else if !arn_shape_ok(s, resource) && bad_arn.is_none() {
                    bad_arn = Some(s.clone());
                }
            }
        }
    }
    if violations.is_empty() {
        return match bad_arn {
            None => Ok(()),
            Some(value) => Err(AwsError {
                kind: "InvalidArn",
                message: format!("Invalid Arn: '{value}'"),
                status: 400,
            }),
        };
    }
    let count = violations.len();
    Err(AwsError {
        kind: "ValidationException",
        message: format!(
            "{count} validation error{} detected: {}",
            if count == 1 { "" } else { "s" },
            violations.join("; ")
        ),
        status: 400,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::check;
    use crate::aws::dispatch::Action;

    #[test]
    fn types_lengths_and_enums_are_checked_before_the_action() {
        let ok = json!({"name": "a", "definition": "{}", "type": "EXPRESS", "unknown": 1});
        assert!(check(Action::CreateStateMachine, &ok).is_ok());
        let e = check(Action::CreateStateMachine, &json!({"name": 5})).unwrap_err();
        assert_eq!(e.kind, "SerializationException");
        let long = "n".repeat(81);
        let e = check(
            Action::StartExecution,
            &json!({"name": long, "input": "x".repeat(262_145)}),
        )
        .unwrap_err();
        assert_eq!(e.kind, "ValidationException");
        assert!(
            e.message.starts_with("2 validation errors detected"),
            "{}",
            e.message
        );
        let e = check(Action::ListExecutions, &json!({"statusFilter": "DONE"})).unwrap_err();
        assert!(e.message.contains("enum value set"), "{}", e.message);
        let e = check(Action::GetExecutionHistory, &json!({"reverseOrder": "yes"})).unwrap_err();
        assert_eq!(e.kind, "SerializationException");
        // Aliases read their members themselves: nothing is checked here.
        assert!(check(Action::DescribeStateMachineAlias, &json!({"name": 5})).is_ok());
        for bad in [
            "arn:aws:states:::execution::",
            "arn:aws:states:us-east-1:1:stateMachine:m",
            "arn:aws:states:us-east-1:1:execution:m",
            "arn:aws:states:us-east-1:1:execution:m:e:id",
            "arn:aws:states:us-east-1:1:express:m",
        ] {
            let e = check(Action::DescribeExecution, &json!({"executionArn": bad})).unwrap_err();
            assert_eq!(e.kind, "InvalidArn", "{bad}");
        }
        for good in [
            "arn:aws:states:us-east-1:1:execution:m:e",
            "arn:aws:states:us-east-1:1:express:m:e:0b6a34e2-5c1d-4b0e-9f57-3f2a1c7d9e10",
            "arn:aws:states:us-east-1:1:express:m/Each:e",
        ] {
            let good = json!({"executionArn": good});
            assert!(check(Action::DescribeExecution, &good).is_ok(), "{good}");
        }
    }
}

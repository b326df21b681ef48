//! Recognising a Task's `Resource` string.

use super::model::{IntegrationPattern, Resource, ResourceKind};

/// The prefix of stepline's own subprocess resources: `stepline:process:NAME`.
pub const PROCESS_PREFIX: &str = "stepline:process:";

/// Parses a Resource, or says in a sentence why it is not one.
pub fn parse(resource: &str) -> Result<Resource, String> {
    if let Some(name) = resource.strip_prefix(PROCESS_PREFIX) {
        let (name, pattern) = split_pattern(name);
        if !is_simple_name(name) {
            return Err(format!(
                "'{resource}' names no valid command: after '{PROCESS_PREFIX}' write the name the operator registered (letters, digits, '-', '_' and '.')"
            ));
        }
        if matches!(
            pattern,
            IntegrationPattern::Sync | IntegrationPattern::Sync2
        ) {
            return Err(format!(
                "'{resource}': a process task is already synchronous; remove the .sync suffix"
            ));
        }
        return Ok(Resource {
            arn: format!("{PROCESS_PREFIX}{name}"),
            kind: ResourceKind::Process {
                name: name.to_owned(),
            },
            pattern,
        });
    }
    let parts: Vec<&str> = resource.splitn(6, ':').collect();
    if parts.len() < 6 || parts[0] != "arn" || parts[1].is_empty() || parts[2].is_empty() {
        return Err(format!(
            "'{resource}' is not a resource stepline knows: use an ARN (arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE, e.g. arn:aws:states:::http:invoke) or {PROCESS_PREFIX}NAME for a registered command"
        ));
    }
    let (service, rest) = (parts[2], parts[5]);
    let (kind, pattern) = match service {
        "states" => {
            let (rest, pattern) = split_pattern(rest);
            let kind = if let Some(name) = rest.strip_prefix("activity:") {
                if !is_simple_name(name) {
                    return Err(format!("'{resource}' has no valid activity name"));
                }
                ResourceKind::Activity {
                    name: name.to_owned(),
                }
            } else {
                match rest.split_once(':') {
                    Some(("http", "invoke")) => ResourceKind::HttpInvoke,
                    Some(("lambda", "invoke")) => ResourceKind::LambdaInvoke,
                    Some(("states", "startExecution")) => ResourceKind::StartExecution,
                    Some((service, action)) if !service.is_empty() && !action.is_empty() => {
                        ResourceKind::Service {
                            service: service.to_owned(),
                            action: action.to_owned(),
                        }
                    }
                    _ => {
                        return Err(format!(
                            "'{resource}' is not a Step Functions resource: expected arn:aws:states:::SERVICE:ACTION or arn:aws:states:REGION:ACCOUNT:activity:NAME"
                        ));
                    }
                }
            };
            (kind, pattern)
        }
        "lambda" => {
            let Some(function) = rest.strip_prefix("function:") else {
                return Err(format!(
                    "'{resource}' is not a Lambda function ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME)"
                ));
            };
            let name = function.split(':').next().unwrap_or_default();
            if !is_simple_name(name) {
                return Err(format!("'{resource}' has no valid function name"));
            }
            (
                ResourceKind::LambdaFunction {
                    name: name.to_owned(),
                },
                IntegrationPattern::RequestResponse,
            )
        }
        _ => {
            return Err(format!(
                "'{resource}' uses the service '{service}', which a Task cannot call directly; use arn:aws:states:::{service}:ACTION"
            ));
        }
    };
    let suffix_len = match pattern {
        IntegrationPattern::RequestResponse => 0,
        IntegrationPattern::Sync => ".sync".len(),
        IntegrationPattern::Sync2 => ".sync:2".len(),
        IntegrationPattern::WaitForTaskToken => ".waitForTaskToken".len(),
    };
    Ok(Resource {
        arn: resource[..resource.len() - suffix_len].to_owned(),
        kind,
        pattern,
    })
}

fn split_pattern(s: &str) -> (&str, IntegrationPattern) {
    if let Some(base) = s.strip_suffix(".sync:2") {
        (base, IntegrationPattern::Sync2)
    } else if let Some(base) = s.strip_suffix(".sync") {
        (base, IntegrationPattern::Sync)
    } else if let Some(base) = s.strip_suffix(".waitForTaskToken") {
        (base, IntegrationPattern::WaitForTaskToken)
    } else {
        (s, IntegrationPattern::RequestResponse)
    }
}

fn is_simple_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 80
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_every_kind() {
        let cases = [
            (
                "arn:aws:states:::http:invoke",
                ResourceKind::HttpInvoke,
                IntegrationPattern::RequestResponse,
            ),
            (
                "arn:aws:states:::lambda:invoke.waitForTaskToken",
                ResourceKind::LambdaInvoke,
                IntegrationPattern::WaitForTaskToken,
            ),
            (
                "arn:aws:states:::states:startExecution.sync:2",
                ResourceKind::StartExecution,
                IntegrationPattern::Sync2,
            ),
            (
                "arn:aws:states:::states:startExecution.sync",
                ResourceKind::StartExecution,
                IntegrationPattern::Sync,
            ),
            (
                "arn:aws:states:us-east-1:111111111111:activity:work",
                ResourceKind::Activity {
                    name: "work".into(),
                },
                IntegrationPattern::RequestResponse,
            ),
            (
                "arn:aws:lambda:us-east-1:111111111111:function:f:prod",
                ResourceKind::LambdaFunction { name: "f".into() },
                IntegrationPattern::RequestResponse,
            ),
            (
                "arn:aws:states:::sqs:sendMessage",
                ResourceKind::Service {
                    service: "sqs".into(),
                    action: "sendMessage".into(),
                },
                IntegrationPattern::RequestResponse,
            ),
            (
                "stepline:process:resize-image",
                ResourceKind::Process {
                    name: "resize-image".into(),
                },
                IntegrationPattern::RequestResponse,
            ),
        ];
        for (text, kind, pattern) in cases {
            let r = parse(text).unwrap();
            assert_eq!((r.kind, r.pattern), (kind, pattern), "{text}");
        }
        assert_eq!(
            parse("arn:aws:states:::http:invoke").unwrap().arn,
            "arn:aws:states:::http:invoke"
        );
        assert_eq!(
            parse("arn:aws:states:::lambda:invoke.waitForTaskToken")
                .unwrap()
                .arn,
            "arn:aws:states:::lambda:invoke"
        );
    }

    #[test]
    fn rejects_what_no_one_can_run() {
        for bad in [
            "",
            "hello",
            "arn:aws:states",
            "arn:aws:s3:::bucket",
            "arn:aws:states:::http",
            "arn:aws:lambda:us-east-1:1:layer:x",
            "stepline:process:",
            "stepline:process:rm -rf",
            "stepline:process:x.sync",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}

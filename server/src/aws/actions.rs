//! The AWS Step Functions JSON 1.0 protocol: `POST /` with
//! `X-Amz-Target: AWSStepFunctions.<Action>`, JSON in and out, errors as
//! `{"__type": ..., "message": ...}` with HTTP 400. Each action reads its
//! request shape, calls the engine, and writes AWS's response shape.

use serde_json::{Map, Value, json};
use stepline_language::asl::{self, Severity};
use stepline_language::interp::Failure;
use stepline_runtime::{Engine, EngineError, InspectionLevel, TestStateMock, TestStateOptions};
use stepline_store::{
    ExecutionQuery, ExecutionStatus, ExecutionSummary, ExecutionsOf, ListCursor,
    StateMachineRecord, WorkflowType,
};

use super::history::event_json;
use super::pagination::{DEFAULT_PAGE, MAX_PAGE, Tokens};

/// An AWS error: its `__type` name, its message, its HTTP status.
#[derive(Debug)]
pub struct AwsError {
    pub kind: &'static str,
    pub message: String,
    pub status: u16,
}

impl AwsError {
    fn new(kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            status: 400,
        }
    }

    pub fn body(&self) -> Value {
        json!({"__type": self.kind, "message": self.message})
    }
}

impl From<EngineError> for AwsError {
    fn from(e: EngineError) -> Self {
        let message = e.to_string();
        match e {
            EngineError::InvalidDefinition(diagnostics) => {
                let first: Vec<String> = diagnostics
                    .iter()
                    .filter(|d| d.severity == Severity::Error)
                    .map(|d| {
                        format!(
                            "{}: {} at {} (line {}, column {})",
                            d.code,
                            d.message,
                            if d.pointer.is_empty() {
                                "/"
                            } else {
                                &d.pointer
                            },
                            d.line,
                            d.column
                        )
                    })
                    .collect();
                AwsError::new(
                    "InvalidDefinition",
                    format!("Invalid State Machine Definition: '{}'", first.join("; ")),
                )
            }
            EngineError::InvalidName(_) => AwsError::new("InvalidName", message),
            EngineError::InvalidExecutionInput(_) => {
                AwsError::new("InvalidExecutionInput", message)
            }
            EngineError::StateMachineAlreadyExists(_) => {
                AwsError::new("StateMachineAlreadyExists", message)
            }
            EngineError::StateMachineDoesNotExist(_) => {
                AwsError::new("StateMachineDoesNotExist", message)
            }
            EngineError::ExecutionDoesNotExist(_) => {
                AwsError::new("ExecutionDoesNotExist", message)
            }
            EngineError::ExecutionAlreadyExists(_) => {
                AwsError::new("ExecutionAlreadyExists", message)
            }
            EngineError::ActivityDoesNotExist(_) => AwsError::new("ActivityDoesNotExist", message),
            EngineError::InvalidToken(_) => AwsError::new("InvalidToken", message),
            EngineError::TaskTimedOut => AwsError::new("TaskTimedOut", message),
            EngineError::InvalidOutput(_) => AwsError::new("InvalidOutput", message),
            EngineError::Validation(_) => AwsError::new("ValidationException", message),
            EngineError::ResourceNotFound(_) => AwsError::new("ResourceNotFound", message),
            EngineError::TooManyTags(_) => AwsError::new("TooManyTags", message),
            EngineError::Conflict(_) => AwsError::new("ConflictException", message),
            EngineError::ExecutionNotRedrivable(_) => {
                AwsError::new("ExecutionNotRedrivable", message)
            }
            EngineError::Store(_) | EngineError::NoEntropy(_) => AwsError {
                kind: "ServiceUnavailable",
                message,
                status: 500,
            },
        }
    }
}

/// Epoch seconds, as AWS's JSON protocol writes timestamps.
fn epoch(t: chrono::DateTime<chrono::Utc>) -> Value {
    json!(t.timestamp() as f64 + f64::from(t.timestamp_subsec_millis()) / 1000.0)
}

/// A required string member of the request.
fn required<'a>(request: &'a Value, field: &str) -> Result<&'a str, AwsError> {
    match request.get(field) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(AwsError::new(
            "ValidationException",
            format!(
                "1 validation error detected: Value at '{field}' failed to satisfy constraint: Member must be a string"
            ),
        )),
        None => Err(AwsError::new(
            "ValidationException",
            format!(
                "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
            ),
        )),
    }
}

fn optional<'a>(request: &'a Value, field: &str) -> Result<Option<&'a str>, AwsError> {
    match request.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(AwsError::new(
            "ValidationException",
            format!(
                "1 validation error detected: Value at '{field}' failed to satisfy constraint: Member must be a string"
            ),
        )),
    }
}

/// ARNs are checked for shape before anything is looked up, as AWS does.
fn arn<'a>(request: &'a Value, field: &str, kind: &str) -> Result<&'a str, AwsError> {
    let value = required(request, field)?;
    let parts: Vec<&str> = value.split(':').collect();
    // An EXPRESS execution's ARN says `express` where others say `execution`.
    let kind_ok = parts
        .get(5)
        .is_some_and(|k| *k == kind || (kind == "execution" && *k == "express"));
    if parts.len() < 7 || parts[0] != "arn" || parts[2] != "states" || !kind_ok {
        return Err(AwsError::new(
            "InvalidArn",
            format!("Invalid Arn: '{value}'"),
        ));
    }
    Ok(value)
}

/// The state machine a Map Run's children run, as AWS names it:
/// `arn:...:stateMachine:MACHINE/LABEL`, from `arn:...:mapRun:MACHINE/LABEL:ID`.
fn map_run_machine_arn(map_run_arn: &str) -> String {
    let without_id = map_run_arn
        .rsplit_once(':')
        .map_or(map_run_arn, |(head, _)| head);
    without_id.replacen(":mapRun:", ":stateMachine:", 1)
}

fn workflow_type(name: &str) -> &'static str {
    match name {
        "EXPRESS" => "EXPRESS",
        _ => "STANDARD",
    }
}
/// How long GetActivityTask waits for a task, as AWS (about a minute).
const ACTIVITY_POLL: std::time::Duration = std::time::Duration::from_secs(60);

fn machine_summary(m: &StateMachineRecord) -> Value {
    json!({
        "stateMachineArn": m.arn,
        "name": m.name,
        "type": m.workflow_type.as_str(),
        "creationDate": epoch(m.created),
    })
}

/// What ListExecutions shows of an execution and DescribeExecution
/// starts from (AWS's ExecutionListItem).
fn execution_summary(e: &ExecutionSummary) -> Value {
    let mut out = json!({
        "executionArn": e.arn,
        "stateMachineArn": e.state_machine_arn,
        "name": e.name,
        "status": e.status.as_str(),
        "startDate": epoch(e.start),
        "redriveCount": e.redrive_count,
    });
    if let Value::Object(map) = &mut out {
        if let Some(stop) = e.stop {
            map.insert("stopDate".into(), epoch(stop));
        }
        if let Some(run) = &e.map_run_arn {
            map.insert("mapRunArn".into(), json!(run));
        }
    }
    out
}

/// A page's size: maxResults, or the default.
fn page_size(request: &Value) -> Result<usize, AwsError> {
    Ok(match request.get("maxResults") {
        None | Some(Value::Null) => DEFAULT_PAGE,
        Some(v) => match v.as_u64() {
            Some(0) => DEFAULT_PAGE,
            Some(n) if n as usize <= MAX_PAGE => n as usize,
            _ => {
                return Err(AwsError::new(
                    "ValidationException",
                    format!(
                        "1 validation error detected: Value '{v}' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to {MAX_PAGE}"
                    ),
                ));
            }
        },
    })
}

/// AWS's answer to a nextToken that is not one of ours, or not for this
/// list (or from before a restart: tokens are signed with a secret drawn
/// at start).
fn invalid_token(token: &str) -> AwsError {
    AwsError::new("InvalidToken", format!("Invalid Token: '{token}'"))
}

/// One page of `items`, by maxResults and nextToken, with the token of the
/// next page when there is one.
fn page<T>(
    tokens: &Tokens,
    request: &Value,
    scope: &str,
    items: Vec<T>,
) -> Result<(Vec<T>, Option<String>), AwsError> {
    let size = page_size(request)?;
    let start = match optional(request, "nextToken")? {
        None => 0,
        Some(token) => tokens
            .check(scope, token)
            .ok_or_else(|| invalid_token(token))?,
    };
    let total = items.len();
    let end = start.saturating_add(size).min(total);
    let next = (end < total).then(|| tokens.issue(scope, end));
    let page = items
        .into_iter()
        .skip(start)
        .take(end.saturating_sub(start))
        .collect();
    Ok((page, next))
}

/// ListExecutions: one page read from the store's listing index (never an
/// input or output), its nextToken the signed position of its last
/// execution in the order, bound to the list and its filters.
fn list_executions(engine: &Engine, tokens: &Tokens, request: &Value) -> Result<Value, AwsError> {
    let of = match (request.get("stateMachineArn"), request.get("mapRunArn")) {
        (Some(_), Some(_)) => {
            return Err(AwsError::new(
                "ValidationException",
                "Specify either a mapRunArn or a stateMachineArn, not both",
            ));
        }
        (None, Some(_)) => ExecutionsOf::MapRun(arn(request, "mapRunArn", "mapRun")?.to_owned()),
        _ => {
            let machine = arn(request, "stateMachineArn", "stateMachine")?;
            engine.describe_state_machine(machine)?;
            ExecutionsOf::Machine(machine.to_owned())
        }
    };
    let size = page_size(request)?;
    let status_filter = optional(request, "statusFilter")?;
    let redrive_filter = optional(request, "redriveFilter")?;
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
    let after = match optional(request, "nextToken")? {
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
            return Ok(json!({"executions": []}));
        }
    };
    let page = engine.list_executions(&ExecutionQuery {
        of,
        status,
        redriven,
        after,
        limit: size,
    })?;
    let listed: Vec<Value> = page.executions.iter().map(execution_summary).collect();
    let next = page.next.map(|c| tokens.issue_cursor(&scope, &c.to_text()));
    Ok(with_token(json!({"executions": listed}), next))
}

fn with_token(mut body: Value, next: Option<String>) -> Value {
    if let (Some(next), Value::Object(map)) = (next, &mut body) {
        map.insert("nextToken".into(), json!(next));
    }
    body
}

/// Runs one action. `action` is the part after `AWSStepFunctions.`.
pub async fn dispatch(
    engine: &Engine,
    tokens: &Tokens,
    action: &str,
    request: &Value,
) -> Result<Value, AwsError> {
    match action {
        "CreateStateMachine" => {
            let name = required(request, "name")?;
            let definition = required(request, "definition")?;
            let role = optional(request, "roleArn")?;
            let kind = match optional(request, "type")?.map(workflow_type) {
                Some("EXPRESS") => WorkflowType::Express,
                _ => WorkflowType::Standard,
            };
            let tags = tag_list(request, "tags")?;
            let record = engine.create_state_machine(name, definition, role, kind)?;
            if !tags.is_empty() {
                engine.tag_resource(&record.arn, &tags)?;
            }
            let out = json!({"stateMachineArn": record.arn, "creationDate": epoch(record.created)});
            publish_if_asked(engine, request, &record.arn, out)
        }
        "DescribeStateMachine" => {
            let arn = arn(request, "stateMachineArn", "stateMachine")?;
            if arn.split(':').count() == 8 {
                let (m, v) = engine.describe_version(arn)?;
                let mut out = json!({
                    "stateMachineArn": arn,
                    "name": m.name,
                    "status": "ACTIVE",
                    "definition": m.definition,
                    "roleArn": m.role_arn,
                    "type": m.workflow_type.as_str(),
                    "creationDate": epoch(v.created),
                    "revisionId": m.revision.to_string(),
                });
                if let (Some(d), Value::Object(map)) = (&v.description, &mut out) {
                    map.insert("description".into(), json!(d));
                }
                return Ok(out);
            }
            let m = engine.describe_state_machine(arn)?;
            Ok(json!({
                "stateMachineArn": m.arn,
                "name": m.name,
                "status": "ACTIVE",
                "definition": m.definition,
                "roleArn": m.role_arn,
                "type": m.workflow_type.as_str(),
                "creationDate": epoch(m.created),
                "revisionId": m.revision.to_string(),
            }))
        }
        "ListStateMachines" => {
            let machines = engine.list_state_machines()?;
            let (machines, next) = page(tokens, request, "ListStateMachines", machines)?;
            let body =
                json!({"stateMachines": machines.iter().map(machine_summary).collect::<Vec<_>>()});
            Ok(with_token(body, next))
        }
        "UpdateStateMachine" => {
            let arn = arn(request, "stateMachineArn", "stateMachine")?;
            let definition = optional(request, "definition")?;
            let role = optional(request, "roleArn")?;
            if definition.is_none() && role.is_none() {
                return Err(AwsError::new(
                    "MissingRequiredParameter",
                    "Either the definition, the roleArn or the loggingConfiguration must be specified",
                ));
            }
            let record = engine.update_state_machine(arn, definition, role)?;
            let out = json!({"updateDate": epoch(chrono::Utc::now()), "revisionId": record.revision.to_string()});
            publish_if_asked(engine, request, arn, out)
        }
        "DeleteStateMachine" => {
            let arn = arn(request, "stateMachineArn", "stateMachine")?;
            engine.delete_state_machine(arn)?;
            Ok(json!({}))
        }
        "ValidateStateMachineDefinition" => {
            let definition = required(request, "definition")?;
            let validation = asl::validate(definition.as_bytes());
            let diagnostics: Vec<Value> = validation
                .diagnostics
                .iter()
                .map(|d| {
                    json!({
                        "severity": d.severity.as_str(),
                        "code": d.code.as_str(),
                        "message": d.message,
                        "location": d.pointer,
                    })
                })
                .collect();
            let result = if validation.errors().next().is_some() {
                "FAIL"
            } else {
                "OK"
            };
            Ok(json!({"result": result, "diagnostics": diagnostics, "truncated": false}))
        }
        "StartExecution" => {
            let machine = arn(request, "stateMachineArn", "stateMachine")?;
            let name = optional(request, "name")?;
            let input = optional(request, "input")?;
            let record = engine.start_execution(machine, name, input).await?;
            Ok(json!({"executionArn": record.arn, "startDate": epoch(record.start)}))
        }
        "StartSyncExecution" => {
            let machine = arn(request, "stateMachineArn", "stateMachine")?;
            let name = optional(request, "name")?;
            let input = optional(request, "input")?;
            let machine_record =
                engine.describe_state_machine(machine.split('#').next().unwrap_or(machine))?;
            if machine_record.workflow_type != WorkflowType::Express {
                return Err(AwsError::new(
                    "StateMachineTypeNotSupported",
                    "This operation is not supported by this type of state machine",
                ));
            }
            let started = engine.start_execution(machine, name, input).await?;
            let e = engine.wait_for(&started.arn).await?;
            let mut out = json!({
                "executionArn": e.arn,
                "stateMachineArn": e.state_machine_arn,
                "name": e.name,
                "startDate": epoch(e.start),
                "stopDate": epoch(e.stop.unwrap_or(e.start)),
                "status": e.status.as_str(),
                "input": e.input,
                "inputDetails": {"included": true},
                "billingDetails": {
                    "billedMemoryUsedInMB": 64,
                    "billedDurationInMilliseconds": (e.stop.unwrap_or(e.start) - e.start).num_milliseconds().max(100),
                },
            });
            if let Value::Object(map) = &mut out {
                if let Some(output) = &e.output {
                    map.insert("output".into(), json!(output));
                    map.insert("outputDetails".into(), json!({"included": true}));
                }
                if let Some(error) = &e.error {
                    map.insert("error".into(), json!(error));
                }
                if let Some(cause) = &e.cause {
                    map.insert("cause".into(), json!(cause));
                }
            }
            Ok(out)
        }
        "RedriveExecution" => {
            let arn = arn(request, "executionArn", "execution")?;
            let record = engine.redrive_execution(arn).await?;
            Ok(json!({"redriveDate": epoch(record.start.max(chrono::Utc::now()))}))
        }
        "TestState" => {
            let definition = required(request, "definition")?;
            let input_text = optional(request, "input")?.unwrap_or("{}");
            let input: Value = serde_json::from_str(input_text).map_err(|e| {
                AwsError::new("InvalidExecutionInput", format!("Invalid input: '{e}'"))
            })?;
            let mock = match request.get("mock") {
                None | Some(Value::Null) => None,
                Some(mock) => Some(test_state_mock(mock)?),
            };
            let variables = match optional(request, "variables")? {
                None => None,
                Some(text) => match serde_json::from_str(text) {
                    Ok(Value::Object(map)) => Some(map),
                    _ => {
                        return Err(AwsError::new(
                            "ValidationException",
                            "variables must be a JSON object of variable names to values",
                        ));
                    }
                },
            };
            let inspection_level = match optional(request, "inspectionLevel")? {
                Some("DEBUG") => InspectionLevel::Debug,
                Some("TRACE") => InspectionLevel::Trace,
                _ => InspectionLevel::Info,
            };
            let options = TestStateOptions {
                mock,
                variables,
                state_name: optional(request, "stateName")?.map(str::to_owned),
                inspection_level,
            };
            let r = engine
                .test_state(definition.to_owned(), input, options)
                .await?;
            let mut out = json!({"status": r.status});
            if let Value::Object(map) = &mut out {
                if let Some(inspection) = r.inspection {
                    map.insert("inspectionData".into(), inspection);
                }
                if let Some(output) = r.output {
                    map.insert("output".into(), json!(output.to_string()));
                }
                if let Some(error) = r.error {
                    map.insert("error".into(), json!(error));
                }
                if let Some(cause) = r.cause {
                    map.insert("cause".into(), json!(cause));
                }
                if let Some(next) = r.next_state {
                    map.insert("nextState".into(), json!(next));
                }
            }
            Ok(out)
        }
        "PublishStateMachineVersion" => {
            let arn = arn(request, "stateMachineArn", "stateMachine")?;
            let description = optional(request, "description")?;
            let revision = optional(request, "revisionId")?
                .map(|r| {
                    r.parse::<u64>().map_err(|_| {
                        AwsError::new("ValidationException", format!("'{r}' is not a revisionId"))
                    })
                })
                .transpose()?;
            let (number, created) = engine.publish_version(arn, description, revision)?;
            Ok(
                json!({"stateMachineVersionArn": format!("{arn}:{number}"), "creationDate": epoch(created)}),
            )
        }
        "ListStateMachineVersions" => {
            let arn = arn(request, "stateMachineArn", "stateMachine")?;
            let machine = engine.describe_state_machine(arn)?;
            // Newest first, as AWS lists them.
            let versions: Vec<Value> = machine
                .versions
                .iter()
                .rev()
                .map(|(n, v)| json!({"stateMachineVersionArn": format!("{arn}:{n}"), "creationDate": epoch(v.created)}))
                .collect();
            let (versions, next) = page(
                tokens,
                request,
                &format!("ListStateMachineVersions:{arn}"),
                versions,
            )?;
            Ok(with_token(json!({"stateMachineVersions": versions}), next))
        }
        "DeleteStateMachineVersion" => {
            let arn = arn(request, "stateMachineVersionArn", "stateMachine")?;
            engine.delete_version(arn)?;
            Ok(json!({}))
        }
        "CreateStateMachineAlias" | "UpdateStateMachineAlias" => {
            let create = action == "CreateStateMachineAlias";
            let (machine, name) = if create {
                let name = required(request, "name")?;
                let routing = routing(request)?;
                let first = routing_version_arn(request)?;
                let machine = first.rsplit_once(':').map_or(first, |(m, _)| m).to_owned();
                (machine, (name.to_owned(), routing))
            } else {
                let alias = arn(request, "stateMachineAliasArn", "stateMachine")?;
                let (machine, name) = alias.rsplit_once(':').unwrap_or((alias, ""));
                let routing = match request.get("routingConfiguration") {
                    Some(_) => routing(request)?,
                    None => engine.describe_alias(alias)?.1.routing,
                };
                (machine.to_owned(), (name.to_owned(), routing))
            };
            let description = optional(request, "description")?;
            let (arn, at) = engine.put_alias(&machine, &name.0, name.1, description, create)?;
            Ok(if create {
                json!({"stateMachineAliasArn": arn, "creationDate": epoch(at)})
            } else {
                json!({"updateDate": epoch(at)})
            })
        }
        "DescribeStateMachineAlias" => {
            let alias = arn(request, "stateMachineAliasArn", "stateMachine")?;
            let (name, a) = engine.describe_alias(alias)?;
            let machine = alias.rsplit_once(':').map_or(alias, |(m, _)| m);
            let mut out = json!({
                "stateMachineAliasArn": alias,
                "name": name,
                "routingConfiguration": a.routing.iter()
                    .map(|(v, w)| json!({"stateMachineVersionArn": format!("{machine}:{v}"), "weight": w}))
                    .collect::<Vec<_>>(),
                "creationDate": epoch(a.created),
                "updateDate": epoch(a.updated),
            });
            if let (Some(d), Value::Object(map)) = (&a.description, &mut out) {
                map.insert("description".into(), json!(d));
            }
            Ok(out)
        }
        "DeleteStateMachineAlias" => {
            let alias = arn(request, "stateMachineAliasArn", "stateMachine")?;
            engine.delete_alias(alias)?;
            Ok(json!({}))
        }
        "ListStateMachineAliases" => {
            let arn = arn(request, "stateMachineArn", "stateMachine")?;
            let machine = engine.describe_state_machine(arn)?;
            let aliases: Vec<Value> = machine
                .aliases
                .iter()
                .map(|(name, a)| json!({"stateMachineAliasArn": format!("{arn}:{name}"), "creationDate": epoch(a.created)}))
                .collect();
            let (aliases, next) = page(
                tokens,
                request,
                &format!("ListStateMachineAliases:{arn}"),
                aliases,
            )?;
            Ok(with_token(json!({"stateMachineAliases": aliases}), next))
        }
        "DescribeStateMachineForExecution" => {
            let arn = arn(request, "executionArn", "execution")?;
            let e = engine.describe_execution(arn)?;
            // A Map Run's child runs its parent's revision (the Map state's
            // ItemProcessor): that definition, with the Map Run and label.
            let (machine_arn, revision) = match &e.map_run {
                Some(child) => (child.machine_arn.as_str(), child.revision),
                None => (e.state_machine_arn.as_str(), e.revision),
            };
            let m = engine.describe_state_machine_revision(machine_arn, revision)?;
            let mut out = json!({
                "stateMachineArn": e.state_machine_arn,
                "name": m.name,
                "definition": m.definition,
                "roleArn": m.role_arn,
                "updateDate": epoch(m.created),
                "revisionId": m.revision.to_string(),
            });
            if let (Some(child), Value::Object(map)) = (&e.map_run, &mut out) {
                let label = e.state_machine_arn.rsplit('/').next().unwrap_or_default();
                map.insert("mapRunArn".into(), json!(child.map_run_arn));
                map.insert("label".into(), json!(label));
            }
            Ok(out)
        }
        "TagResource" => {
            let resource = required(request, "resourceArn")?;
            let tags = tag_list(request, "tags")?;
            engine.tag_resource(resource, &tags)?;
            Ok(json!({}))
        }
        "UntagResource" => {
            let resource = required(request, "resourceArn")?;
            let keys: Vec<String> = match request.get("tagKeys") {
                Some(Value::Array(keys)) => keys
                    .iter()
                    .map(|k| k.as_str().map(str::to_owned))
                    .collect::<Option<_>>()
                    .ok_or_else(|| {
                        AwsError::new("ValidationException", "tagKeys must be a list of strings")
                    })?,
                _ => {
                    return Err(AwsError::new(
                        "ValidationException",
                        "1 validation error detected: Value null at 'tagKeys' failed to satisfy constraint: Member must not be null",
                    ));
                }
            };
            engine.untag_resource(resource, &keys)?;
            Ok(json!({}))
        }
        "ListTagsForResource" => {
            let resource = required(request, "resourceArn")?;
            let tags: Vec<Value> = engine
                .tags(resource)?
                .iter()
                .map(|(k, v)| json!({"key": k, "value": v}))
                .collect();
            Ok(json!({"tags": tags}))
        }
        "DescribeExecution" => {
            let arn = arn(request, "executionArn", "execution")?;
            let e = engine.describe_execution(arn)?;
            let mut out = execution_summary(&e.summary());
            if let Value::Object(map) = &mut out {
                map.insert("input".into(), json!(e.input));
                map.insert("inputDetails".into(), json!({"included": true}));
                if let Some(output) = &e.output {
                    map.insert("output".into(), json!(output));
                    map.insert("outputDetails".into(), json!({"included": true}));
                }
                if let Some(error) = &e.error {
                    map.insert("error".into(), json!(error));
                }
                if let Some(cause) = &e.cause {
                    map.insert("cause".into(), json!(cause));
                }
            }
            Ok(out)
        }
        "DescribeMapRun" => {
            let arn = arn(request, "mapRunArn", "mapRun")?;
            let r = engine.describe_map_run(arn)?;
            let counts = |c: &stepline_store::MapRunCounts| {
                json!({
                    "pending": c.pending,
                    "running": c.running,
                    "succeeded": c.succeeded,
                    "failed": c.failed,
                    "timedOut": c.timed_out,
                    "aborted": c.aborted,
                    "total": c.total,
                    "resultsWritten": c.results_written,
                    "failuresNotRedrivable": 0,
                    "pendingRedrive": 0,
                })
            };
            let mut out = json!({
                "mapRunArn": r.map_run_arn,
                "executionArn": r.execution_arn,
                "status": r.status,
                "startDate": epoch(r.start),
                "maxConcurrency": r.max_concurrency,
                "toleratedFailurePercentage": r.tolerated_failure_percentage.unwrap_or(0.0),
                "toleratedFailureCount": r.tolerated_failure_count.unwrap_or(0),
                "itemCounts": counts(&r.items),
                "executionCounts": counts(&r.executions),
                "redriveCount": 0,
            });
            if let (Some(stop), Value::Object(map)) = (r.stop, &mut out) {
                map.insert("stopDate".into(), epoch(stop));
            }
            Ok(out)
        }
        "ListMapRuns" => {
            let execution = arn(request, "executionArn", "execution")?;
            let runs: Vec<Value> = engine
                .list_map_runs(execution)?
                .iter()
                .map(|r| {
                    let mut item = json!({
                        "executionArn": r.execution_arn,
                        "mapRunArn": r.map_run_arn,
                        "stateMachineArn": map_run_machine_arn(&r.map_run_arn),
                        "startDate": epoch(r.start),
                    });
                    if let (Some(stop), Value::Object(map)) = (r.stop, &mut item) {
                        map.insert("stopDate".into(), epoch(stop));
                    }
                    item
                })
                .collect();
            let scope = format!("ListMapRuns:{execution}");
            let (runs, next) = page(tokens, request, &scope, runs)?;
            Ok(with_token(json!({"mapRuns": runs}), next))
        }
        "UpdateMapRun" => {
            let arn = arn(request, "mapRunArn", "mapRun")?;
            let number = |field: &str| -> Result<Option<f64>, AwsError> {
                match request.get(field) {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::Number(n)) => Ok(n.as_f64()),
                    Some(_) => Err(AwsError::new(
                        "ValidationException",
                        format!(
                            "1 validation error detected: Value at '{field}' failed to satisfy constraint: Member must be a number"
                        ),
                    )),
                }
            };
            let concurrency = number("maxConcurrency")?;
            let percentage = number("toleratedFailurePercentage")?;
            let count = number("toleratedFailureCount")?;
            let out_of_range = concurrency
                .is_some_and(|n| !(0.0..=10_000.0).contains(&n) || n.fract() != 0.0)
                || percentage.is_some_and(|p| !(0.0..=100.0).contains(&p))
                || count.is_some_and(|n| n < 0.0 || n.fract() != 0.0);
            if out_of_range {
                return Err(AwsError::new(
                    "ValidationException",
                    "maxConcurrency must be an integer from 0 to 10000, toleratedFailurePercentage from 0 to 100, toleratedFailureCount a non-negative integer",
                ));
            }
            // AWS: a maxConcurrency of 0 means no limit (10,000).
            let concurrency = concurrency.map(|n| match n as u64 {
                0 => 10_000,
                n => n,
            });
            engine
                .update_map_run(arn, concurrency, percentage, count.map(|n| n as u64))
                .await?;
            Ok(json!({}))
        }
        "ListExecutions" => list_executions(engine, tokens, request),
        "GetExecutionHistory" => {
            let arn = arn(request, "executionArn", "execution")?;
            let len = engine.history_len(arn)?;
            let mut events = engine.history(arn, 1, len)?;
            if request.get("reverseOrder") == Some(&Value::Bool(true)) {
                events.reverse();
            }
            let include_data = request.get("includeExecutionData") != Some(&Value::Bool(false));
            let scope = format!(
                "GetExecutionHistory:{arn}:{}",
                request.get("reverseOrder") == Some(&Value::Bool(true))
            );
            let (events, next) = page(tokens, request, &scope, events)?;
            let events: Vec<Value> = events
                .iter()
                .map(|e| {
                    let mut event = event_json(e);
                    if !include_data {
                        strip_data(&mut event);
                    }
                    event
                })
                .collect();
            Ok(with_token(json!({"events": events}), next))
        }
        "StopExecution" => {
            let arn = arn(request, "executionArn", "execution")?;
            let error = optional(request, "error")?.map(str::to_owned);
            let cause = optional(request, "cause")?.map(str::to_owned);
            engine.stop_execution(arn, error, cause)?;
            Ok(json!({"stopDate": epoch(chrono::Utc::now())}))
        }
        "CreateActivity" => {
            let name = required(request, "name")?;
            let tags = tag_list(request, "tags")?;
            let a = engine.create_activity(name)?;
            if !tags.is_empty() {
                engine.tag_resource(&a.arn, &tags)?;
            }
            Ok(json!({"activityArn": a.arn, "creationDate": epoch(a.created)}))
        }
        "DescribeActivity" => {
            let arn = arn(request, "activityArn", "activity")?;
            let a = engine.describe_activity(arn)?;
            Ok(json!({"activityArn": a.arn, "name": a.name, "creationDate": epoch(a.created)}))
        }
        "DeleteActivity" => {
            let arn = arn(request, "activityArn", "activity")?;
            engine.delete_activity(arn)?;
            Ok(json!({}))
        }
        "ListActivities" => {
            let activities: Vec<Value> = engine
                .list_activities()?
                .iter()
                .map(|a| json!({"activityArn": a.arn, "name": a.name, "creationDate": epoch(a.created)}))
                .collect();
            let (activities, next) = page(tokens, request, "ListActivities", activities)?;
            Ok(with_token(json!({"activities": activities}), next))
        }
        "GetActivityTask" => {
            let arn = arn(request, "activityArn", "activity")?;
            let worker = optional(request, "workerName")?;
            match engine.get_activity_task(arn, worker, ACTIVITY_POLL).await? {
                Some(task) => Ok(json!({"taskToken": task.token, "input": task.input})),
                // AWS's answer when no task came during the poll.
                None => Ok(json!({})),
            }
        }
        "SendTaskSuccess" => {
            let token = required(request, "taskToken")?;
            let output = required(request, "output")?;
            engine.send_task_success(token, output).await?;
            Ok(json!({}))
        }
        "SendTaskFailure" => {
            let token = required(request, "taskToken")?;
            let error = optional(request, "error")?.map(str::to_owned);
            let cause = optional(request, "cause")?.map(str::to_owned);
            engine.send_task_failure(token, error, cause).await?;
            Ok(json!({}))
        }
        "SendTaskHeartbeat" => {
            let token = required(request, "taskToken")?;
            engine.send_task_heartbeat(token).await?;
            Ok(json!({}))
        }
        other => Err(AwsError::new(
            "UnknownOperationException",
            format!("stepline does not implement the action '{other}' yet"),
        )),
    }
}

/// TestState's `mock`: `{"result": "<JSON text>"}` or
/// `{"errorOutput": {"error", "cause"}}`.
fn test_state_mock(mock: &Value) -> Result<TestStateMock, AwsError> {
    if let Some(result) = mock.get("result").and_then(Value::as_str) {
        let value = serde_json::from_str(result).map_err(|e| {
            AwsError::new(
                "ValidationException",
                format!("mock.result is not JSON: {e}"),
            )
        })?;
        return Ok(TestStateMock::Result(value));
    }
    if let Some(Value::Object(e)) = mock.get("errorOutput") {
        let field = |name: &str| e.get(name).and_then(Value::as_str).map(str::to_owned);
        return Ok(TestStateMock::Error(Failure {
            error: field("error"),
            cause: field("cause"),
        }));
    }
    Err(AwsError::new(
        "ValidationException",
        "mock needs a result (JSON text) or an errorOutput {error, cause}",
    ))
}

/// `publish: true` on Create/UpdateStateMachine: the new revision becomes
/// a version, named in the answer.
fn publish_if_asked(
    engine: &Engine,
    request: &Value,
    machine_arn: &str,
    mut out: Value,
) -> Result<Value, AwsError> {
    if request.get("publish") != Some(&Value::Bool(true)) {
        return Ok(out);
    }
    let description = optional(request, "versionDescription")?;
    let (number, _) = engine.publish_version(machine_arn, description, None)?;
    if let Value::Object(map) = &mut out {
        map.insert(
            "stateMachineVersionArn".into(),
            json!(format!("{machine_arn}:{number}")),
        );
    }
    Ok(out)
}

/// An alias's `routingConfiguration` as (version, weight) pairs.
fn routing(request: &Value) -> Result<Vec<(u64, u32)>, AwsError> {
    let bad = || {
        AwsError::new(
            "ValidationException",
            "routingConfiguration must list one or two {stateMachineVersionArn, weight} entries",
        )
    };
    let items = request
        .get("routingConfiguration")
        .and_then(Value::as_array)
        .ok_or_else(bad)?;
    items
        .iter()
        .map(|item| {
            let version = item
                .get("stateMachineVersionArn")
                .and_then(Value::as_str)
                .and_then(|a| a.rsplit(':').next())
                .and_then(|n| n.parse::<u64>().ok())
                .ok_or_else(bad)?;
            let weight = item
                .get("weight")
                .and_then(Value::as_u64)
                .filter(|w| *w <= 100)
                .ok_or_else(bad)?;
            Ok((version, weight as u32))
        })
        .collect()
}

/// The state machine of the first version an alias routes to.
fn routing_version_arn(request: &Value) -> Result<&str, AwsError> {
    request
        .pointer("/routingConfiguration/0/stateMachineVersionArn")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            AwsError::new(
                "ValidationException",
                "routingConfiguration needs a stateMachineVersionArn",
            )
        })
}

/// AWS's tag list, `[{"key": ..., "value": ...}]`, as a map.
fn tag_list(
    request: &Value,
    field: &str,
) -> Result<std::collections::BTreeMap<String, String>, AwsError> {
    let mut tags = std::collections::BTreeMap::new();
    let items = match request.get(field) {
        None | Some(Value::Null) => return Ok(tags),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(AwsError::new(
                "ValidationException",
                format!("{field} must be a list of {{\"key\", \"value\"}} objects"),
            ));
        }
    };
    for item in items {
        let key = item.get("key").and_then(Value::as_str);
        let value = item.get("value").and_then(Value::as_str).unwrap_or("");
        match key {
            Some(key) if !key.is_empty() && key.len() <= 128 && value.len() <= 256 => {
                tags.insert(key.to_owned(), value.to_owned());
            }
            _ => {
                return Err(AwsError::new(
                    "ValidationException",
                    format!(
                        "every tag in {field} needs a key of 1 to 128 characters and a value of at most 256"
                    ),
                ));
            }
        }
    }
    Ok(tags)
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

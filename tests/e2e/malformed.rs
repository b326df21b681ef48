//! Malformed requests, in both dialects, against one real server: each case
//! asserts the HTTP status and the error type (`__type` for the AWS
//! dialect, `code` for REST); after every case the server must still
//! answer and what it stores must be exactly what it stored before.
//!
//! The AWS behaviours follow AWS's service model and its JSON protocol: a
//! missing or unknown `X-Amz-Target` is `UnknownOperationException`; a body
//! that is not a JSON object, or a member of the wrong JSON type, is
//! `SerializationException`; a missing member or a length, range or enum
//! constraint is `ValidationException` ("1 validation error detected:
//! ..."); an ARN of the wrong shape is `InvalidArn`. Unknown members are
//! ignored, as AWS ignores them, so they are not among the cases.

use std::net::SocketAddr;

use serde_json::{Value, json};

use crate::aws::Server;
use crate::rest::{FLOW, http, post, waiting};

const MACHINE: &str = "arn:aws:states:us-east-1:111111111111:stateMachine:seed";
const DONE: &str = "arn:aws:states:us-east-1:111111111111:execution:seed:done";
const MISSING_MACHINE: &str = "arn:aws:states:us-east-1:111111111111:stateMachine:nope";
const MISSING_EXECUTION: &str = "arn:aws:states:us-east-1:111111111111:execution:seed:nope";
const AWS_JSON: &str = "application/x-amz-json-1.0";

/// One malformed request and the answer it must get.
struct Case {
    label: String,
    method: &'static str,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    status: u16,
    /// The error type; `None` when the answer is not ours to shape (the
    /// HTTP layer refusing oversized headers).
    code: Option<&'static str>,
}

/// An AWS call with `target` (None: no X-Amz-Target) and `content_type`
/// (empty: no Content-Type).
fn aws_raw(
    label: &str,
    target: Option<&str>,
    content_type: &str,
    body: impl Into<Vec<u8>>,
    status: u16,
    code: &'static str,
) -> Case {
    let mut headers = vec![("Content-Type".to_owned(), content_type.to_owned())];
    if let Some(target) = target {
        headers.push(("X-Amz-Target".to_owned(), target.to_owned()));
    }
    Case {
        label: format!("aws: {label}"),
        method: "POST",
        path: "/".into(),
        headers,
        body: body.into(),
        status,
        code: Some(code),
    }
}

/// A well-formed AWS call of `action` with a JSON `body`, refused with 400.
fn aws(label: &str, action: &str, body: Value, code: &'static str) -> Case {
    aws_raw(
        label,
        Some(&format!("AWSStepFunctions.{action}")),
        AWS_JSON,
        body.to_string(),
        400,
        code,
    )
}

fn rest(
    label: &str,
    method: &'static str,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Vec<u8>>,
    status: u16,
    code: &'static str,
) -> Case {
    Case {
        label: format!("rest: {label}"),
        method,
        path: path.to_owned(),
        headers: headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
        body: body.into(),
        status,
        code: Some(code),
    }
}

/// A definition of more than 1 MiB that is otherwise valid.
fn huge_definition() -> String {
    let padding = " ".repeat(1024 * 1024);
    format!(r#"{{"StartAt": "A",{padding} "States": {{"A": {{"Type": "Succeed"}}}}}}"#)
}

/// An input of more than 256 KiB.
fn huge_input() -> String {
    json!({"data": "x".repeat(256 * 1024)}).to_string()
}

#[rustfmt::skip]
fn aws_cases() -> Vec<Case> {
    let t = |a: &str| format!("AWSStepFunctions.{a}");
    let list = t("ListStateMachines");
    let mut cases = vec![
        // The target header.
        aws_raw("no X-Amz-Target", None, AWS_JSON, "{}", 400, "UnknownOperationException"),
        aws_raw("target without an action", Some("AWSStepFunctions"), AWS_JSON, "{}", 400, "UnknownOperationException"),
        aws_raw("target with an empty action", Some("AWSStepFunctions."), AWS_JSON, "{}", 400, "UnknownOperationException"),
        aws_raw("another service's target", Some("DynamoDB_20120810.ListTables"), AWS_JSON, "{}", 400, "UnknownOperationException"),
        aws_raw("unknown action", Some("AWSStepFunctions.LaunchRocket"), AWS_JSON, "{}", 400, "UnknownOperationException"),
        aws_raw("lowercase service", Some("awsstepfunctions.ListStateMachines"), AWS_JSON, "{}", 400, "UnknownOperationException"),
        aws_raw("lowercase action", Some("AWSStepFunctions.listStateMachines"), AWS_JSON, "{}", 400, "UnknownOperationException"),
        aws_raw("target with a trailing dot", Some("AWSStepFunctions.ListStateMachines."), AWS_JSON, "{}", 400, "UnknownOperationException"),
        // The content type.
        aws_raw("text/plain", Some(&list), "text/plain", "{}", 400, "SerializationException"),
        aws_raw("application/xml", Some(&list), "application/xml", "<a/>", 400, "SerializationException"),
        aws_raw("form content type", Some(&list), "application/x-www-form-urlencoded", "a=b", 400, "SerializationException"),
        aws_raw("multipart content type", Some(&list), "multipart/form-data; boundary=x", "{}", 400, "SerializationException"),
        aws_raw("octet-stream", Some(&list), "application/octet-stream", "{}", 400, "SerializationException"),
        // Bodies that are not a JSON object.
        aws_raw("an open brace", Some(&t("CreateStateMachine")), AWS_JSON, "{", 400, "SerializationException"),
        aws_raw("a missing value", Some(&t("CreateStateMachine")), AWS_JSON, r#"{"name": }"#, 400, "SerializationException"),
        aws_raw("an array", Some(&t("CreateStateMachine")), AWS_JSON, "[]", 400, "SerializationException"),
        aws_raw("a string", Some(&t("CreateStateMachine")), AWS_JSON, r#""text""#, 400, "SerializationException"),
        aws_raw("null", Some(&t("CreateStateMachine")), AWS_JSON, "null", 400, "SerializationException"),
        aws_raw("a number", Some(&t("StartExecution")), AWS_JSON, "123", 400, "SerializationException"),
        aws_raw("two objects", Some(&t("StartExecution")), AWS_JSON, r#"{"a":1}{"b":2}"#, 400, "SerializationException"),
        aws_raw("invalid UTF-8", Some(&t("CreateStateMachine")), AWS_JSON, b"{\"name\": \"\xff\xfe\"}".to_vec(), 400, "SerializationException"),
        aws_raw("single quotes", Some(&t("CreateStateMachine")), AWS_JSON, "{'name': 'x'}", 400, "SerializationException"),
        aws_raw("NaN", Some(&list), AWS_JSON, r#"{"maxResults": NaN}"#, 400, "SerializationException"),
        aws_raw("a trailing comma", Some(&list), AWS_JSON, r#"{"maxResults": 1,}"#, 400, "SerializationException"),
        aws_raw("nesting 100,000 deep", Some(&t("StartExecution")), AWS_JSON, "[".repeat(100_000), 400, "SerializationException"),
        aws_raw("a comment", Some(&list), AWS_JSON, "{/* hi */}", 400, "SerializationException"),
        // Members of the wrong JSON type.
        aws("name is a number", "CreateStateMachine", json!({"name": 5, "definition": FLOW}), "SerializationException"),
        aws("definition is an object", "CreateStateMachine", json!({"name": "x", "definition": {"StartAt": "A"}}), "SerializationException"),
        aws("roleArn is an array", "CreateStateMachine", json!({"name": "x", "definition": FLOW, "roleArn": []}), "SerializationException"),
        aws("type is a boolean", "CreateStateMachine", json!({"name": "x", "definition": FLOW, "type": true}), "SerializationException"),
        aws("input is an object", "StartExecution", json!({"stateMachineArn": MACHINE, "input": {"a": 1}}), "SerializationException"),
        aws("execution name is a number", "StartExecution", json!({"stateMachineArn": MACHINE, "name": 1}), "SerializationException"),
        aws("stateMachineArn is a number", "DescribeStateMachine", json!({"stateMachineArn": 7}), "SerializationException"),
        aws("executionArn is a number", "DescribeExecution", json!({"executionArn": 42}), "SerializationException"),
        aws("executionArn is an object", "GetExecutionHistory", json!({"executionArn": {"arn": DONE}}), "SerializationException"),
        aws("maxResults is a string", "ListStateMachines", json!({"maxResults": "10"}), "SerializationException"),
        aws("maxResults is a fraction", "ListStateMachines", json!({"maxResults": 1.5}), "SerializationException"),
        aws("reverseOrder is a string", "GetExecutionHistory", json!({"executionArn": DONE, "reverseOrder": "true"}), "SerializationException"),
        aws("includeExecutionData is a number", "GetExecutionHistory", json!({"executionArn": DONE, "includeExecutionData": 1}), "SerializationException"),
        aws("cause is an object", "StopExecution", json!({"executionArn": DONE, "cause": {}}), "SerializationException"),
        aws("statusFilter is a number", "ListExecutions", json!({"stateMachineArn": MACHINE, "statusFilter": 3}), "SerializationException"),
        aws("nextToken is a number", "ListStateMachines", json!({"nextToken": 3}), "SerializationException"),
        aws("definition is an array", "ValidateStateMachineDefinition", json!({"definition": []}), "SerializationException"),
        // Missing members.
        aws("CreateStateMachine without a name", "CreateStateMachine", json!({"definition": FLOW}), "ValidationException"),
        aws("CreateStateMachine without a definition", "CreateStateMachine", json!({"name": "x"}), "ValidationException"),
        aws("DescribeStateMachine without an ARN", "DescribeStateMachine", json!({}), "ValidationException"),
        aws("DeleteStateMachine without an ARN", "DeleteStateMachine", json!({}), "ValidationException"),
        aws("StartExecution without an ARN", "StartExecution", json!({"input": "{}"}), "ValidationException"),
        aws("a null ARN is a missing ARN", "StartExecution", json!({"stateMachineArn": null}), "ValidationException"),
        aws("DescribeExecution without an ARN", "DescribeExecution", json!({}), "ValidationException"),
        aws("StopExecution without an ARN", "StopExecution", json!({}), "ValidationException"),
        aws("GetExecutionHistory without an ARN", "GetExecutionHistory", json!({}), "ValidationException"),
        aws("ListExecutions without an ARN", "ListExecutions", json!({}), "ValidationException"),
        aws("ValidateStateMachineDefinition without a definition", "ValidateStateMachineDefinition", json!({}), "ValidationException"),
        aws("UpdateStateMachine with nothing to update", "UpdateStateMachine", json!({"stateMachineArn": MACHINE}), "MissingRequiredParameter"),
        // Constraints of the model.
        aws("a state machine name of 81 characters", "CreateStateMachine", json!({"name": "n".repeat(81), "definition": FLOW}), "ValidationException"),
        aws("an empty state machine name", "CreateStateMachine", json!({"name": "", "definition": FLOW}), "ValidationException"),
        aws("an empty definition", "CreateStateMachine", json!({"name": "x", "definition": ""}), "ValidationException"),
        aws("an unknown type", "CreateStateMachine", json!({"name": "x", "definition": FLOW, "type": "FAST"}), "ValidationException"),
        aws("a definition over 1 MiB", "CreateStateMachine", json!({"name": "x", "definition": huge_definition()}), "ValidationException"),
        aws("an updated definition over 1 MiB", "UpdateStateMachine", json!({"stateMachineArn": MACHINE, "definition": huge_definition()}), "ValidationException"),
        aws("validating a definition over 1 MiB", "ValidateStateMachineDefinition", json!({"definition": huge_definition()}), "ValidationException"),
        aws("a roleArn of 257 characters", "CreateStateMachine", json!({"name": "x", "definition": FLOW, "roleArn": "r".repeat(257)}), "ValidationException"),
        aws("an execution name of 81 characters", "StartExecution", json!({"stateMachineArn": MACHINE, "name": "e".repeat(81)}), "ValidationException"),
        aws("an input over 256 KiB", "StartExecution", json!({"stateMachineArn": MACHINE, "input": huge_input()}), "ValidationException"),
        aws("an unknown statusFilter", "ListExecutions", json!({"stateMachineArn": MACHINE, "statusFilter": "DONE"}), "ValidationException"),
        aws("maxResults over 1000", "ListStateMachines", json!({"maxResults": 1001}), "ValidationException"),
        aws("maxResults below 0", "ListStateMachines", json!({"maxResults": -1}), "ValidationException"),
        aws("an empty nextToken", "ListStateMachines", json!({"nextToken": ""}), "ValidationException"),
        aws("a nextToken over 1024 characters", "ListStateMachines", json!({"nextToken": "t".repeat(1025)}), "ValidationException"),
        aws("a stop error over 256 bytes", "StopExecution", json!({"executionArn": DONE, "error": "e".repeat(257)}), "ValidationException"),
        aws("a stop cause over 32768 bytes", "StopExecution", json!({"executionArn": DONE, "cause": "c".repeat(32769)}), "ValidationException"),
        aws("an ARN over 256 characters", "DescribeStateMachine", json!({"stateMachineArn": format!("{MACHINE}{}", "x".repeat(256))}), "ValidationException"),
        aws("an empty ARN", "DescribeExecution", json!({"executionArn": ""}), "ValidationException"),
        aws("two violations at once", "StartExecution", json!({"stateMachineArn": MACHINE, "name": "e".repeat(81), "input": huge_input()}), "ValidationException"),
        // ARNs of the wrong shape.
        aws("not an ARN", "DescribeStateMachine", json!({"stateMachineArn": "not-an-arn"}), "InvalidArn"),
        aws("an execution ARN for a state machine", "DescribeStateMachine", json!({"stateMachineArn": DONE}), "InvalidArn"),
        aws("a state machine ARN for an execution", "DescribeExecution", json!({"executionArn": MACHINE}), "InvalidArn"),
        aws("an ARN without a name", "DescribeStateMachine", json!({"stateMachineArn": "arn:aws:states:us-east-1:111111111111:stateMachine"}), "InvalidArn"),
        aws("a Lambda ARN", "StartExecution", json!({"stateMachineArn": "arn:aws:lambda:us-east-1:111111111111:function:f"}), "InvalidArn"),
        aws("an ARN with empty parts", "StopExecution", json!({"executionArn": "arn:aws:states:::execution::"}), "InvalidArn"),
        aws("an execution ARN without a machine", "GetExecutionHistory", json!({"executionArn": "arn:aws:states:us-east-1:111111111111:execution:done"}), "InvalidArn"),
        aws("an ARN with spaces for parts", "ListExecutions", json!({"stateMachineArn": "arn aws states"}), "InvalidArn"),
        aws("an ARN with an extra part", "DeleteStateMachine", json!({"stateMachineArn": format!("{MACHINE}:1:2")}), "InvalidArn"),
        // Well-formed, but about nothing that exists.
        aws("describe a missing state machine", "DescribeStateMachine", json!({"stateMachineArn": MISSING_MACHINE}), "StateMachineDoesNotExist"),
        aws("update a missing state machine", "UpdateStateMachine", json!({"stateMachineArn": MISSING_MACHINE, "definition": FLOW}), "StateMachineDoesNotExist"),
        aws("start a missing state machine", "StartExecution", json!({"stateMachineArn": MISSING_MACHINE}), "StateMachineDoesNotExist"),
        aws("list executions of a missing state machine", "ListExecutions", json!({"stateMachineArn": MISSING_MACHINE}), "StateMachineDoesNotExist"),
        aws("describe a missing execution", "DescribeExecution", json!({"executionArn": MISSING_EXECUTION}), "ExecutionDoesNotExist"),
        aws("history of a missing execution", "GetExecutionHistory", json!({"executionArn": MISSING_EXECUTION}), "ExecutionDoesNotExist"),
        aws("stop a missing execution", "StopExecution", json!({"executionArn": MISSING_EXECUTION}), "ExecutionDoesNotExist"),
        aws("an execution in another region", "DescribeExecution", json!({"executionArn": "arn:aws:states:eu-west-1:111111111111:execution:seed:done"}), "ExecutionDoesNotExist"),
        // Well-formed, but refused by the service.
        aws("an existing state machine, another definition", "CreateStateMachine", json!({"name": "seed", "definition": waiting(1)}), "StateMachineAlreadyExists"),
        aws("an invalid definition", "CreateStateMachine", json!({"name": "x", "definition": r#"{"StartAt": "A", "States": {}}"#}), "InvalidDefinition"),
        aws("a definition that is not JSON", "CreateStateMachine", json!({"name": "x", "definition": "{"}), "InvalidDefinition"),
        aws("an updated definition that is invalid", "UpdateStateMachine", json!({"stateMachineArn": MACHINE, "definition": "[]"}), "InvalidDefinition"),
        aws("a state machine name with a space", "CreateStateMachine", json!({"name": "a b", "definition": FLOW}), "InvalidName"),
        aws("a state machine name with a slash", "CreateStateMachine", json!({"name": "a/b", "definition": FLOW}), "InvalidName"),
        aws("an execution name with a wildcard", "StartExecution", json!({"stateMachineArn": MACHINE, "name": "run*"}), "InvalidName"),
        aws("a state machine name with a right-to-left override", "CreateStateMachine", json!({"name": "invoice\u{202E}fdp.exe", "definition": FLOW}), "InvalidName"),
        aws("an execution name with a zero-width space", "StartExecution", json!({"stateMachineArn": MACHINE, "name": "run\u{200B}1"}), "InvalidName"),
        aws("an activity name with a byte order mark", "CreateActivity", json!({"name": "\u{FEFF}worker"}), "InvalidName"),
        aws("an execution name with a noncharacter", "StartExecution", json!({"stateMachineArn": MACHINE, "name": "run\u{FFFF}"}), "InvalidName"),
        aws("an input that is not JSON", "StartExecution", json!({"stateMachineArn": MACHINE, "input": "{"}), "InvalidExecutionInput"),
        aws("an empty input", "StartExecution", json!({"stateMachineArn": MACHINE, "input": ""}), "InvalidExecutionInput"),
        aws("a closed execution's name, another input", "StartExecution", json!({"stateMachineArn": MACHINE, "name": "done", "input": "{\"again\": true}"}), "ExecutionAlreadyExists"),
        aws("a forged nextToken", "ListStateMachines", json!({"nextToken": "bm90IG91cnM.AAAAAAAAAAAAAAAAAAAAAA"}), "InvalidToken"),
        aws("a garbage nextToken", "GetExecutionHistory", json!({"executionArn": DONE, "nextToken": "garbage"}), "InvalidToken"),
    ];
    // Bodies and methods the HTTP layer sees.
    cases.push(aws_raw(
        "a body over 4 MiB",
        Some(&list),
        AWS_JSON,
        format!(r#"{{"nextToken": "{}"}}"#, "x".repeat(4 * 1024 * 1024 + 1)),
        413,
        "RequestEntityTooLarge",
    ));
    // GET / is the web pages (docs/web.md); other methods are the AWS
    // dialect's 405.
    for method in ["PUT", "DELETE", "PATCH"] {
        cases.push(Case {
            label: format!("aws: {method} /"),
            method,
            path: "/".into(),
            headers: vec![("X-Amz-Target".into(), list.clone())],
            body: Vec::new(),
            status: 405,
            code: Some("UnknownOperationException"),
        });
    }
    let mut many_headers: Vec<(String, String)> = (0..200)
        .map(|i| (format!("X-Filler-{i}"), "x".into()))
        .collect();
    many_headers.push(("X-Amz-Target".into(), list.clone()));
    cases.push(Case {
        label: "aws: 200 headers".into(),
        method: "POST",
        path: "/".into(),
        headers: many_headers,
        body: b"{}".to_vec(),
        status: 431,
        code: None,
    });
    cases.push(Case {
        label: "aws: a header of 1 MiB".into(),
        method: "POST",
        path: "/".into(),
        headers: vec![
            ("X-Amz-Target".into(), list),
            ("X-Filler".into(), "x".repeat(1024 * 1024)),
        ],
        body: b"{}".to_vec(),
        status: 431,
        code: None,
    });
    cases
}

#[rustfmt::skip]
fn rest_cases() -> Vec<Case> {
    let plain = [("Content-Type", "text/plain")];
    let huge_definition = huge_definition();
    let wrapped = |v: Value| v.to_string();
    let definition: Value = serde_json::from_str(FLOW).expect("FLOW is JSON");
    vec![
        // Content types.
        rest("create as text/plain", "POST", "/v1/state-machines?name=x", &plain, FLOW, 415, "UnsupportedMediaType"),
        rest("create as a form", "POST", "/v1/state-machines?name=x", &[("Content-Type", "application/x-www-form-urlencoded")], FLOW, 415, "UnsupportedMediaType"),
        rest("create as XML", "POST", "/v1/state-machines?name=x", &[("Content-Type", "application/xml")], "<a/>", 415, "UnsupportedMediaType"),
        rest("start as text/plain", "POST", "/v1/state-machines/seed/executions", &plain, "{}", 415, "UnsupportedMediaType"),
        rest("update as HTML", "PUT", "/v1/state-machines/seed", &[("Content-Type", "text/html")], FLOW, 415, "UnsupportedMediaType"),
        rest("validate as text/plain", "POST", "/v1/validate", &plain, FLOW, 415, "UnsupportedMediaType"),
        rest("stop as multipart", "POST", "/v1/executions/seed/running/stop", &[("Content-Type", "multipart/form-data; boundary=x")], "{}", 415, "UnsupportedMediaType"),
        // Query parameters.
        rest("an unknown query parameter", "GET", "/v1/state-machines?foo=1", &[], "", 400, "InvalidRequest"),
        rest("limit=0", "GET", "/v1/state-machines?limit=0", &[], "", 400, "InvalidRequest"),
        rest("limit over 1000", "GET", "/v1/executions?limit=1001", &[], "", 400, "InvalidRequest"),
        rest("limit not a number", "GET", "/v1/executions?limit=abc", &[], "", 400, "InvalidRequest"),
        rest("limit negative", "GET", "/v1/state-machines?limit=-1", &[], "", 400, "InvalidRequest"),
        rest("a forged next token", "GET", "/v1/state-machines?next=garbage", &[], "", 400, "InvalidToken"),
        rest("a parameter given twice", "GET", "/v1/executions?limit=1&limit=2", &[], "", 400, "InvalidRequest"),
        rest("a malformed escape", "POST", "/v1/state-machines?name=%zz", &[], FLOW, 400, "InvalidRequest"),
        rest("a query that is not UTF-8", "POST", "/v1/state-machines?name=%ff", &[], FLOW, 400, "InvalidRequest"),
        rest("an unknown status", "GET", "/v1/executions?status=DONE", &[], "", 400, "InvalidRequest"),
        rest("a lowercase status", "GET", "/v1/executions?status=running", &[], "", 400, "InvalidRequest"),
        rest("a missing machine filter", "GET", "/v1/executions?machine=nope", &[], "", 404, "StateMachineDoesNotExist"),
        rest("history after a word", "GET", "/v1/executions/seed/done/history?after=x", &[], "", 400, "InvalidRequest"),
        rest("a wait over 60 s", "GET", "/v1/executions/seed/done/history?wait=61", &[], "", 400, "InvalidRequest"),
        rest("a negative wait", "GET", "/v1/executions/seed/done/history?wait=-5", &[], "", 400, "InvalidRequest"),
        rest("history limit=0", "GET", "/v1/executions/seed/done/history?limit=0", &[], "", 400, "InvalidRequest"),
        rest("history with an unknown parameter", "GET", "/v1/executions/seed/done/history?reverse=true", &[], "", 400, "InvalidRequest"),
        rest("events after a word", "GET", "/v1/executions/seed/done/events?after=abc", &[], "", 400, "InvalidRequest"),
        rest("events with a bad Last-Event-ID", "GET", "/v1/executions/seed/done/events", &[("Last-Event-ID", "abc")], "", 400, "InvalidRequest"),
        rest("describe with a parameter", "GET", "/v1/state-machines/seed?verbose=1", &[], "", 400, "InvalidRequest"),
        rest("an execution name given twice", "POST", "/v1/state-machines/seed/executions?name=a&name=b", &[], "{}", 400, "InvalidRequest"),
        rest("query and header names differ", "POST", "/v1/state-machines/seed/executions?name=a", &[("Execution-Name", "b")], "{}", 400, "InvalidRequest"),
        rest("delete with a parameter", "DELETE", "/v1/state-machines/seed?force=true", &[], "", 400, "InvalidRequest"),
        // Create bodies.
        rest("an unknown field", "POST", "/v1/state-machines", &[], wrapped(json!({"name": "x", "definition": FLOW, "color": "red"})), 400, "InvalidRequest"),
        rest("a numeric name", "POST", "/v1/state-machines", &[], wrapped(json!({"name": 5, "definition": FLOW})), 400, "InvalidRequest"),
        rest("a numeric definition", "POST", "/v1/state-machines", &[], wrapped(json!({"name": "x", "definition": 5})), 400, "InvalidRequest"),
        rest("an array definition", "POST", "/v1/state-machines", &[], wrapped(json!({"name": "x", "definition": []})), 400, "InvalidRequest"),
        rest("an unknown type", "POST", "/v1/state-machines", &[], wrapped(json!({"name": "x", "definition": FLOW, "type": "FAST"})), 400, "InvalidRequest"),
        rest("a numeric type", "POST", "/v1/state-machines", &[], wrapped(json!({"name": "x", "definition": FLOW, "type": 1})), 400, "InvalidRequest"),
        rest("an unknown type in the query", "POST", "/v1/state-machines?name=x&type=fast", &[], FLOW, 400, "InvalidRequest"),
        rest("a roleArn that is not an ARN", "POST", "/v1/state-machines", &[], wrapped(json!({"name": "x", "definition": FLOW, "roleArn": "admin"})), 400, "InvalidRequest"),
        rest("no name anywhere", "POST", "/v1/state-machines", &[], wrapped(json!({"definition": definition})), 400, "InvalidRequest"),
        rest("a bare definition without ?name", "POST", "/v1/state-machines", &[], FLOW, 400, "InvalidRequest"),
        rest("an empty body", "POST", "/v1/state-machines?name=x", &[], "", 400, "InvalidRequest"),
        rest("no definition", "POST", "/v1/state-machines", &[], wrapped(json!({"name": "x"})), 400, "InvalidRequest"),
        rest("names that differ", "POST", "/v1/state-machines?name=x", &[], wrapped(json!({"name": "y", "definition": FLOW})), 400, "InvalidRequest"),
        rest("an invalid definition", "POST", "/v1/state-machines?name=x", &[], r#"{"StartAt": "A", "States": {}}"#, 422, "InvalidDefinition"),
        rest("a definition that is not JSON", "POST", "/v1/state-machines?name=x", &[], "{\"StartAt\": ", 422, "InvalidDefinition"),
        rest("a definition that is an array", "POST", "/v1/state-machines?name=x", &[], "[1, 2]", 422, "InvalidDefinition"),
        rest("a definition that is not UTF-8", "POST", "/v1/state-machines?name=x", &[], b"{\"StartAt\": \"\xff\"}".to_vec(), 400, "InvalidRequest"),
        rest("a name with a space", "POST", "/v1/state-machines?name=a+b", &[], FLOW, 400, "InvalidName"),
        rest("a name of 81 characters", "POST", &format!("/v1/state-machines?name={}", "n".repeat(81)), &[], FLOW, 400, "InvalidName"),
        rest("a name with a colon", "POST", "/v1/state-machines?name=a%3Ab", &[], FLOW, 400, "InvalidName"),
        rest("an existing name", "POST", "/v1/state-machines?name=seed", &[], waiting(1), 409, "StateMachineAlreadyExists"),
        rest("a definition over 1 MiB", "POST", "/v1/state-machines?name=x", &[], huge_definition.clone(), 413, "DefinitionTooLarge"),
        rest("a wrapped definition over 1 MiB", "POST", "/v1/state-machines", &[], wrapped(json!({"name": "x", "definition": huge_definition.clone()})), 413, "DefinitionTooLarge"),
        rest("a body over 4 MiB", "POST", "/v1/state-machines?name=x", &[], " ".repeat(4 * 1024 * 1024 + 1), 413, "PayloadTooLarge"),
        rest("validating over 1 MiB", "POST", "/v1/validate", &[], huge_definition.clone(), 413, "DefinitionTooLarge"),
        rest("validate with a parameter", "POST", "/v1/validate?strict=1", &[], FLOW, 400, "InvalidRequest"),
        // Update bodies.
        rest("update with an empty body", "PUT", "/v1/state-machines/seed", &[], "", 400, "InvalidRequest"),
        rest("update with an unknown field", "PUT", "/v1/state-machines/seed", &[], wrapped(json!({"color": 1})), 400, "InvalidRequest"),
        rest("update with an empty object", "PUT", "/v1/state-machines/seed", &[], "{}", 400, "InvalidRequest"),
        rest("update with a name", "PUT", "/v1/state-machines/seed", &[], wrapped(json!({"name": "other", "definition": FLOW})), 400, "InvalidRequest"),
        rest("update to an invalid definition", "PUT", "/v1/state-machines/seed", &[], r#"{"StartAt": "Nowhere", "States": {"A": {"Type": "Succeed"}}}"#, 422, "InvalidDefinition"),
        rest("update a missing state machine", "PUT", "/v1/state-machines/nope", &[], FLOW, 404, "StateMachineDoesNotExist"),
        rest("update with a numeric roleArn", "PUT", "/v1/state-machines/seed", &[], wrapped(json!({"roleArn": 5})), 400, "InvalidRequest"),
        rest("update to over 1 MiB", "PUT", "/v1/state-machines/seed", &[], huge_definition, 413, "DefinitionTooLarge"),
        // Executions.
        rest("an input that is not JSON", "POST", "/v1/state-machines/seed/executions", &[], "{", 400, "InvalidExecutionInput"),
        rest("an input with trailing text", "POST", "/v1/state-machines/seed/executions", &[], "{} x", 400, "InvalidExecutionInput"),
        rest("an input that is not UTF-8", "POST", "/v1/state-machines/seed/executions", &[], b"\"\xff\"".to_vec(), 400, "InvalidExecutionInput"),
        rest("an input over 256 KiB", "POST", "/v1/state-machines/seed/executions", &[], huge_input(), 413, "InputTooLarge"),
        rest("start a missing state machine", "POST", "/v1/state-machines/nope/executions", &[], "{}", 404, "StateMachineDoesNotExist"),
        rest("an execution name with a space", "POST", "/v1/state-machines/seed/executions?name=a+b", &[], "{}", 400, "InvalidName"),
        rest("an execution name of 81 characters", "POST", &format!("/v1/state-machines/seed/executions?name={}", "e".repeat(81)), &[], "{}", 400, "InvalidName"),
        rest("a header name with a wildcard", "POST", "/v1/state-machines/seed/executions", &[("Execution-Name", "run*")], "{}", 400, "InvalidName"),
        rest("a closed execution's name", "POST", "/v1/state-machines/seed/executions?name=done", &[], r#"{"again": true}"#, 409, "ExecutionAlreadyExists"),
        rest("describe a missing execution", "GET", "/v1/executions/seed/nope", &[], "", 404, "ExecutionDoesNotExist"),
        rest("describe an execution of a missing machine", "GET", "/v1/executions/nope/done", &[], "", 404, "ExecutionDoesNotExist"),
        rest("history of a missing execution", "GET", "/v1/executions/seed/nope/history", &[], "", 404, "ExecutionDoesNotExist"),
        rest("events of a missing execution", "GET", "/v1/executions/seed/nope/events", &[], "", 404, "ExecutionDoesNotExist"),
        rest("stop a missing execution", "POST", "/v1/executions/seed/nope/stop", &[], "", 404, "ExecutionDoesNotExist"),
        rest("stop with an array", "POST", "/v1/executions/seed/running/stop", &[], "[]", 400, "InvalidRequest"),
        rest("stop with an unknown field", "POST", "/v1/executions/seed/running/stop", &[], r#"{"reason": "x"}"#, 400, "InvalidRequest"),
        rest("stop with a numeric error", "POST", "/v1/executions/seed/running/stop", &[], r#"{"error": 5}"#, 400, "InvalidRequest"),
        rest("stop with a long error", "POST", "/v1/executions/seed/running/stop", &[], wrapped(json!({"error": "e".repeat(257)})), 400, "InvalidRequest"),
        rest("stop with invalid JSON", "POST", "/v1/executions/seed/running/stop", &[], "{", 400, "InvalidJson"),
        // Routing.
        rest("an unknown path", "GET", "/v1/nothing", &[], "", 404, "NotFound"),
        rest("an execution id of one segment", "GET", "/v1/executions/seed", &[], "", 404, "NotFound"),
        rest("an execution id of three segments", "GET", "/v1/executions/seed/done/extra/more", &[], "", 404, "NotFound"),
        rest("a path that is not UTF-8", "GET", "/v1/state-machines/%FF", &[], "", 400, "InvalidRequest"),
        rest("PATCH a state machine", "PATCH", "/v1/state-machines/seed", &[], "{}", 405, "MethodNotAllowed"),
        rest("DELETE the execution list", "DELETE", "/v1/executions", &[], "", 405, "MethodNotAllowed"),
        rest("POST to a history", "POST", "/v1/executions/seed/done/history", &[], "{}", 405, "MethodNotAllowed"),
        rest("GET a start", "GET", "/v1/state-machines/seed/executions", &[], "", 405, "MethodNotAllowed"),
        rest("PUT the OpenAPI document", "PUT", "/v1/openapi.json", &[], "{}", 405, "MethodNotAllowed"),
        rest("GET a stop", "GET", "/v1/executions/seed/done/stop", &[], "", 405, "MethodNotAllowed"),
        rest("DELETE an execution", "DELETE", "/v1/executions/seed/done", &[], "", 405, "MethodNotAllowed"),
        rest("delete a missing state machine", "DELETE", "/v1/state-machines/nope", &[], "", 404, "StateMachineDoesNotExist"),
    ]
}

/// What the server stores, as the REST API shows it: every state machine
/// with its definition and revision, every execution with its status and
/// output, and the length of every history.
fn snapshot(addr: SocketAddr) -> Value {
    let get = |path: &str| {
        let reply = http(addr, "GET", path, &[], b"");
        assert_eq!(reply.status, 200, "GET {path}: {}", reply.body);
        reply.json()
    };
    let machines: Vec<Value> = get("/v1/state-machines?limit=1000")["stateMachines"]
        .as_array()
        .expect("machines")
        .iter()
        .map(|m| {
            get(&format!(
                "/v1/state-machines/{}",
                m["name"].as_str().expect("name")
            ))
        })
        .collect();
    let executions: Vec<Value> = get("/v1/executions?limit=1000")["executions"]
        .as_array()
        .expect("executions")
        .iter()
        .map(|e| {
            let id = e["id"].as_str().expect("id");
            let mut detail = get(&format!("/v1/executions/{id}"));
            detail["historyLength"] =
                get(&format!("/v1/executions/{id}/history?limit=1000"))["lastEventId"].clone();
            detail
        })
        .collect();
    json!({"stateMachines": machines, "executions": executions})
}

#[test]
fn malformed_requests_are_refused_and_change_nothing() {
    let server = Server::start();
    assert_eq!(
        post(&server, "/v1/state-machines?name=seed", FLOW).status,
        201
    );
    assert_eq!(
        post(&server, "/v1/state-machines?name=sleepy", &waiting(3600)).status,
        201
    );
    let done = post(
        &server,
        "/v1/state-machines/seed/executions?name=done",
        r#"{"who": "x"}"#,
    );
    assert_eq!(done.status, 201, "{}", done.body);
    let running = post(
        &server,
        "/v1/state-machines/sleepy/executions?name=running",
        "{}",
    );
    assert_eq!(running.status, 201, "{}", running.body);
    // The seed execution has ended and the sleeper is in its Wait state.
    for id in ["seed/done", "sleepy/running"] {
        let expected = if id == "seed/done" {
            "SUCCEEDED"
        } else {
            "RUNNING"
        };
        let mut status = Value::Null;
        for _ in 0..500 {
            status = http(
                server.addr,
                "GET",
                &format!("/v1/executions/{id}"),
                &[],
                b"",
            )
            .json()["status"]
                .clone();
            if status == expected {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(status, expected, "{id}");
    }
    // Stop cases name "seed/running": it does not exist, so a stop that
    // slipped through would be ExecutionDoesNotExist, not a quiet success.
    let mut before = snapshot(server.addr);

    let cases: Vec<Case> = aws_cases().into_iter().chain(rest_cases()).collect();
    assert!(cases.len() >= 100, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let headers: Vec<(&str, &str)> = case
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let reply = http(server.addr, case.method, &case.path, &headers, &case.body);
        let body: Value = serde_json::from_str(&reply.body).unwrap_or(Value::Null);
        let code = if case.path == "/" {
            body["__type"].as_str()
        } else {
            body["code"].as_str()
        };
        let message_ok =
            case.code.is_none() || body["message"].as_str().is_some_and(|m| !m.is_empty());
        if reply.status != case.status || code != case.code || !message_ok {
            failures.push(format!(
                "{}: expected {} {:?}, got {} {}",
                case.label,
                case.status,
                case.code,
                reply.status,
                reply.body.chars().take(300).collect::<String>()
            ));
        }
        let health = http(server.addr, "GET", "/health", &[], b"");
        assert_eq!(
            health.status, 200,
            "the server stopped answering after {}",
            case.label
        );
        // A change is a failure; later cases compare with the new state so
        // that one run lists every failing case.
        let after = snapshot(server.addr);
        if after != before {
            failures.push(format!("{}: changed what is stored", case.label));
            before = after;
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

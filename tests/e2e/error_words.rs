//! AWS's exact words: every cause stepline raises is worded in one place
//! (`stepline_language::cause`), the table in docs/errors.md is that place
//! row for row, and executions run through the AWS face fail with AWS's
//! error names and causes: the JSONPath `...Path` fields, Wait's fields,
//! the JSONata fields (named by their place, `Assign/x`, `Items[1]`), Map's
//! fields, intrinsic functions, bracket-notation paths, the context object
//! of STANDARD and EXPRESS executions, and the input limit at start.
//!
//! Every expected cause below is written from AWS's documented or recorded
//! behaviour (docs/errors.md gives the evidence), never copied from a run
//! of ours.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use stepline_language::cause::TEMPLATES;
use stepline_runtime::{
    Engine, EngineConfig, EngineError, TaskCall, TaskFuture, TaskRunner, WallClock,
};
use stepline_store::{MemoryStore, WorkflowType};

use crate::aws::{Server, wait_until_done};
use crate::support::repo_root;

// ---------------------------------------------------------------------------
// One place for the words
// ---------------------------------------------------------------------------

/// A row of docs/errors.md's table: the template's name, its error names
/// and stepline's cause.
fn table_rows() -> Vec<(String, Vec<String>, String)> {
    let text = std::fs::read_to_string(repo_root().join("docs/errors.md")).expect("docs/errors.md");
    let mut rows = Vec::new();
    let table = text
        .lines()
        .skip_while(|l| !l.starts_with("| Template |"))
        .take_while(|l| !l.trim().is_empty());
    for line in table {
        let Some(inner) = line.strip_prefix("| `").and_then(|l| l.strip_suffix(" |")) else {
            continue;
        };
        let row = format!("`{inner}");
        let cells: Vec<&str> = row.split(" | ").collect();
        assert_eq!(cells.len(), 5, "a row of five cells: {line}");
        let errors = cells[1]
            .split(", ")
            .map(|e| unquote(e).to_owned())
            .collect();
        let cause = match cells[4] {
            "(no cause)" => String::new(),
            other => unquote(other).to_owned(),
        };
        rows.push((unquote(cells[0]).to_owned(), errors, cause));
    }
    rows
}

/// A Markdown code span's text: `` `x` `` or ``` `` x `` ```.
fn unquote(cell: &str) -> &str {
    let cell = cell.trim();
    if let Some(inner) = cell.strip_prefix("`` ").and_then(|c| c.strip_suffix(" ``")) {
        return inner;
    }
    cell.strip_prefix('`')
        .and_then(|c| c.strip_suffix('`'))
        .unwrap_or_else(|| panic!("a code span: {cell}"))
}

#[test]
fn the_table_of_docs_errors_md_is_the_cause_module() {
    let rows = table_rows();
    let mut problems = Vec::new();
    for template in TEMPLATES {
        match rows.iter().find(|(id, _, _)| id == template.id) {
            None => problems.push(format!("{}: no row in docs/errors.md", template.id)),
            Some((_, errors, cause)) => {
                if errors != template.errors {
                    problems.push(format!(
                        "{}: the table says {errors:?}, the code {:?}",
                        template.id, template.errors
                    ));
                }
                if cause != template.text {
                    problems.push(format!(
                        "{}: the table says\n  {cause}\nthe code\n  {}",
                        template.id, template.text
                    ));
                }
            }
        }
    }
    for (id, _, _) in &rows {
        if !TEMPLATES.iter().any(|t| t.id == id) {
            problems.push(format!(
                "{id}: a row of docs/errors.md that no template has"
            ));
        }
    }
    let order: Vec<&str> = rows.iter().map(|(id, _, _)| id.as_str()).collect();
    let code_order: Vec<&str> = TEMPLATES.iter().map(|t| t.id).collect();
    if problems.is_empty() && order != code_order {
        problems.push("the rows are not in the order of cause::TEMPLATES".to_owned());
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Non-test code of `dir`, file by file (a file's `#[cfg(test)]` tail and
/// test files left out).
fn code_of(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if path.is_dir() {
            if name != "tests" {
                code_of(&path, out);
            }
            continue;
        }
        if !name.ends_with(".rs") || name == "tests.rs" || name.ends_with("_tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read");
        let code = match text.find("\n#[cfg(test)]") {
            Some(at) => text[..at].to_owned(),
            None => text,
        };
        out.push((path.display().to_string(), code));
    }
}

/// A new state or field cannot invent its own wording: outside the cause
/// module, the engine builds no failure from a literal error name or a
/// cause of its own (a task's own error passes through as it came).
#[test]
fn every_cause_is_worded_in_the_cause_module() {
    let mut files = Vec::new();
    for crate_dir in ["engine/language/src", "engine/runtime/src"] {
        code_of(&repo_root().join(crate_dir), &mut files);
    }
    assert!(files.len() > 40, "the engine's code was read");
    let mut found = Vec::new();
    for (path, code) in &files {
        if path.ends_with("cause.rs") {
            continue;
        }
        for (n, line) in code.lines().enumerate() {
            let trimmed = line.trim_start();
            if trimmed.starts_with("//") {
                continue;
            }
            for raise in ["Failure::new(", "EvalError::new(", "error: Some(\""] {
                if line.contains(raise) {
                    found.push(format!("{path}:{}: {}", n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "failures worded outside stepline_language::cause (use a template there, and a row in docs/errors.md):\n{}",
        found.join("\n")
    );
}

// ---------------------------------------------------------------------------
// Executions through the AWS face
// ---------------------------------------------------------------------------

static MACHINES: AtomicUsize = AtomicUsize::new(0);

/// Runs `definition` on `input` as an EXPRESS execution (StartSyncExecution)
/// and gives DescribeExecution's answer.
fn run_express(server: &Server, definition: &Value, input: &Value) -> Value {
    let name = format!("words-{}", MACHINES.fetch_add(1, Ordering::Relaxed));
    let body = json!({"name": name, "definition": definition.to_string(), "type": "EXPRESS",
                      "roleArn": "arn:aws:iam::111111111111:role/r"});
    let (status, created) = server.call("CreateStateMachine", &body.to_string());
    assert_eq!(status, 200, "{created}\n{definition}");
    let start = json!({"stateMachineArn": created["stateMachineArn"], "input": input.to_string()});
    let (status, done) = server.call("StartSyncExecution", &start.to_string());
    assert_eq!(status, 200, "{done}");
    done
}

/// Runs `definition` on `input` as a STANDARD execution and gives
/// DescribeExecution's answer once it ended.
fn run_standard(server: &Server, definition: &Value, input: &Value) -> Value {
    let name = format!("words-{}", MACHINES.fetch_add(1, Ordering::Relaxed));
    let (status, created) = crate::aws::create(server, &name, &definition.to_string());
    assert_eq!(status, 200, "{created}\n{definition}");
    let start = json!({"stateMachineArn": created["stateMachineArn"], "input": input.to_string()});
    let (status, started) = server.call("StartExecution", &start.to_string());
    assert_eq!(status, 200, "{started}");
    wait_until_done(server, started["executionArn"].as_str().expect("arn"))
}

fn output(done: &Value) -> Value {
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    serde_json::from_str(done["output"].as_str().expect("output")).expect("JSON")
}

/// AWS's prefix before a state's runtime or evaluation failure.
fn at(state: &str, event: u64, cause: &str) -> String {
    format!(
        "An error occurred while executing the state '{state}' (entered at the event id #{event}). {cause}"
    )
}

/// A failure expected from a definition on an input.
struct Case {
    name: &'static str,
    definition: Value,
    input: Value,
    error: &'static str,
    cause: String,
}

fn case(
    name: &'static str,
    definition: Value,
    input: Value,
    error: &'static str,
    cause: String,
) -> Case {
    Case {
        name,
        definition,
        input,
        error,
        cause,
    }
}

/// Runs every case and reports every difference at once.
fn check_all(cases: Vec<Case>) {
    let server = Server::start();
    let mut problems = Vec::new();
    for c in &cases {
        let done = run_express(&server, &c.definition, &c.input);
        let got = (
            done["status"].as_str().unwrap_or_default(),
            done["error"].as_str().unwrap_or_default(),
            done["cause"].as_str().unwrap_or_default(),
        );
        if got != ("FAILED", c.error, c.cause.as_str()) {
            problems.push(format!(
                "{}:\n   got {} {} {}\n  want FAILED {} {}",
                c.name, got.0, got.1, got.2, c.error, c.cause
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {} cases differ:\n{}",
        problems.len(),
        cases.len(),
        problems.join("\n")
    );
}

/// One state `S` of `state`, in JSONPath (the default).
fn one(state: Value) -> Value {
    json!({"StartAt": "S", "States": {"S": state}})
}

/// One state `S` of `state` in a JSONata state machine.
fn one_jsonata(state: Value) -> Value {
    json!({"QueryLanguage": "JSONata", "StartAt": "S", "States": {"S": state}})
}

const RUNTIME: &str = "States.Runtime";
const QUERY: &str = "States.QueryEvaluationError";
const LAMBDA: &str = "arn:aws:lambda:us-east-1:111111111111:function:echo";

fn wait_path(field: &str, path: &str) -> Value {
    one(json!({"Type": "Wait", field: path, "End": true}))
}

#[test]
fn wait_fields_that_are_not_waits_fail_with_aws_words() {
    let ts = |v: Value| json!({"t": v});
    let seconds = |v: Value| json!({"s": v});
    let bad_timestamp = |value: &str| {
        at(
            "S",
            2,
            &format!(
                "The TimestampPath parameter does not reference a valid ISO-8601 extended offset date-time format string: $.t == {value}"
            ),
        )
    };
    let jsonata_timestamp = |value: &str| {
        at(
            "S",
            2,
            &format!(
                "The Timestamp field cannot be parsed as an ISO-8601 extended offset date-time format string: {value}"
            ),
        )
    };
    let jsonata_seconds = |expr: &str, actual: &str, value: &str| {
        at(
            "S",
            2,
            &format!(
                "The JSONata expression '{expr}' specified for the field 'Seconds' returned an unexpected result type. Expected 'integer', but was '{actual}' for value: {value}"
            ),
        )
    };
    let wait = |field: &str, expr: &str| {
        one_jsonata(json!({"Type": "Wait", field: format!("{{% {expr} %}}"), "End": true}))
    };
    check_all(vec![
        // SecondsPath: a non-negative integer (a Java long).
        case(
            "SecondsPath negative",
            wait_path("SecondsPath", "$.s"),
            seconds(json!(-1)),
            RUNTIME,
            at(
                "S",
                2,
                "The SecondsPath parameter references a negative value: $.s == -1",
            ),
        ),
        case(
            "SecondsPath fractional",
            wait_path("SecondsPath", "$.s"),
            seconds(json!(1.5)),
            RUNTIME,
            at(
                "S",
                2,
                "The SecondsPath parameter cannot be parsed as a long value: $.s == 1.5",
            ),
        ),
        case(
            "SecondsPath a string",
            wait_path("SecondsPath", "$.s"),
            seconds(json!("ten")),
            RUNTIME,
            at(
                "S",
                2,
                "The SecondsPath parameter cannot be parsed as a long value: $.s == ten",
            ),
        ),
        case(
            "SecondsPath an object",
            wait_path("SecondsPath", "$.s"),
            seconds(json!({"a": 1})),
            RUNTIME,
            at(
                "S",
                2,
                "The SecondsPath parameter cannot be parsed as a long value: $.s == {\"a\":1}",
            ),
        ),
        case(
            "SecondsPath nothing",
            wait_path("SecondsPath", "$.s"),
            json!({}),
            RUNTIME,
            at("S", 2, "Invalid path '$.s' : No results for path: $['s']"),
        ),
        // TimestampPath: an ISO-8601 extended offset date-time.
        case(
            "TimestampPath without T",
            wait_path("TimestampPath", "$.t"),
            ts(json!("2016-12-05 21:29:29Z")),
            RUNTIME,
            bad_timestamp("2016-12-05 21:29:29Z"),
        ),
        case(
            "TimestampPath without Z",
            wait_path("TimestampPath", "$.t"),
            ts(json!("2016-12-05T21:29:29")),
            RUNTIME,
            bad_timestamp("2016-12-05T21:29:29"),
        ),
        case(
            "TimestampPath lowercase",
            wait_path("TimestampPath", "$.t"),
            ts(json!("2016-12-05t21:29:29z")),
            RUNTIME,
            bad_timestamp("2016-12-05t21:29:29z"),
        ),
        case(
            "TimestampPath a date only",
            wait_path("TimestampPath", "$.t"),
            ts(json!("2016-12-05")),
            RUNTIME,
            bad_timestamp("2016-12-05"),
        ),
        case(
            "TimestampPath month 13",
            wait_path("TimestampPath", "$.t"),
            ts(json!("2016-13-05T21:29:29Z")),
            RUNTIME,
            bad_timestamp("2016-13-05T21:29:29Z"),
        ),
        case(
            "TimestampPath a number",
            wait_path("TimestampPath", "$.t"),
            ts(json!(1_480_972_169)),
            RUNTIME,
            bad_timestamp("1480972169"),
        ),
        case(
            "TimestampPath nothing",
            wait_path("TimestampPath", "$.t"),
            json!({}),
            RUNTIME,
            at("S", 2, "Invalid path '$.t' : No results for path: $['t']"),
        ),
        // JSONata Seconds: an integer; Timestamp: a timestamp.
        case(
            "Seconds negative",
            wait("Seconds", "-1"),
            json!({}),
            QUERY,
            jsonata_seconds("-1", "number", "-1"),
        ),
        case(
            "Seconds fractional",
            wait("Seconds", "1.5"),
            json!({}),
            QUERY,
            jsonata_seconds("1.5", "number", "1.5"),
        ),
        case(
            "Seconds a string",
            wait("Seconds", "'ten'"),
            json!({}),
            QUERY,
            jsonata_seconds("'ten'", "string", "\"ten\""),
        ),
        case(
            "Seconds undefined",
            wait("Seconds", "$states.input.s"),
            json!({}),
            QUERY,
            at(
                "S",
                2,
                "The JSONata expression '$states.input.s' specified for the field 'Seconds' returned nothing (undefined).",
            ),
        ),
        case(
            "Timestamp without T",
            wait("Timestamp", "'2016-12-05 21:29:29Z'"),
            json!({}),
            QUERY,
            jsonata_timestamp("2016-12-05 21:29:29Z"),
        ),
        case(
            "Timestamp without Z",
            wait("Timestamp", "'2016-12-05T21:29:29'"),
            json!({}),
            QUERY,
            jsonata_timestamp("2016-12-05T21:29:29"),
        ),
        case(
            "Timestamp not a date",
            wait("Timestamp", "'tomorrow'"),
            json!({}),
            QUERY,
            jsonata_timestamp("tomorrow"),
        ),
        case(
            "Timestamp a time only",
            wait("Timestamp", "'21:29:29Z'"),
            json!({}),
            QUERY,
            jsonata_timestamp("21:29:29Z"),
        ),
        case(
            "Timestamp a number",
            wait("Timestamp", "1480972169"),
            json!({}),
            QUERY,
            jsonata_timestamp("1480972169"),
        ),
        case(
            "Timestamp an object",
            wait("Timestamp", "{'at': 1}"),
            json!({}),
            QUERY,
            jsonata_timestamp("{\"at\":1}"),
        ),
        case(
            "Timestamp undefined",
            wait("Timestamp", "$states.input.t"),
            json!({}),
            QUERY,
            at(
                "S",
                2,
                "The JSONata expression '$states.input.t' specified for the field 'Timestamp' returned nothing (undefined).",
            ),
        ),
    ]);
}

#[test]
fn path_fields_that_select_nothing_or_the_wrong_value_fail_with_aws_words() {
    let fail = |field: &str| one(json!({"Type": "Fail", field: "$.ErrorX"}));
    let task =
        |field: &str| one(json!({"Type": "Task", "Resource": LAMBDA, field: "$.n", "End": true}));
    let map = |extra: Value| {
        let mut state = json!({"Type": "Map", "ItemsPath": "$.items", "End": true,
            "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}});
        for (k, v) in extra.as_object().expect("fields") {
            state[k] = v.clone();
        }
        one(state)
    };
    let items = |v: Value| json!({"items": [1, 2], "n": v});
    let refers = |field: &str, value: &str, kind: &str| {
        at(
            "S",
            2,
            &format!(
                "The {field} field refers to value \"{value}\" which is not a valid {kind}: $.n"
            ),
        )
    };
    check_all(vec![
        case(
            "ErrorPath selects nothing",
            fail("ErrorPath"),
            json!({"a": 1}),
            RUNTIME,
            at(
                "S",
                2,
                "The JSONPath '$.ErrorX' specified for the field 'ErrorPath' could not be found in the input '{\"a\":1}'",
            ),
        ),
        case(
            "CausePath selects nothing",
            one(json!({"Type": "Fail", "Error": "E", "CausePath": "$.ErrorX"})),
            json!({"a": 1}),
            RUNTIME,
            at(
                "S",
                2,
                "The JSONPath '$.ErrorX' specified for the field 'CausePath' could not be found in the input '{\"a\":1}'",
            ),
        ),
        case(
            "InputPath selects nothing",
            one(json!({"Type": "Pass", "InputPath": "$.a.b", "End": true})),
            json!({"a": {}}),
            RUNTIME,
            at(
                "S",
                2,
                "Invalid path '$.a.b' : No results for path: $['a']['b']",
            ),
        ),
        case(
            "OutputPath selects nothing",
            one(json!({"Type": "Pass", "OutputPath": "$.x[2]", "End": true})),
            json!({"x": [1]}),
            RUNTIME,
            at(
                "S",
                2,
                "Invalid path '$.x[2]' : No results for path: $['x'][2]",
            ),
        ),
        case(
            "Parameters path selects nothing",
            one(json!({"Type": "Pass", "Parameters": {"v.$": "$.missing"}, "End": true})),
            json!({"a": 1}),
            RUNTIME,
            at(
                "S",
                2,
                "The JSONPath '$.missing' specified for the field 'v.$' could not be found in the input '{\"a\":1}'",
            ),
        ),
        case(
            "Assign path selects nothing",
            one(json!({"Type": "Pass", "Assign": {"v.$": "$.missing"}, "End": true})),
            json!({"a": 1}),
            RUNTIME,
            at(
                "S",
                2,
                "The JSONPath '$.missing' specified for the field 'v.$' could not be found in the input '{\"a\":1}'",
            ),
        ),
        case(
            "TimeoutSecondsPath zero",
            task("TimeoutSecondsPath"),
            json!({"n": 0}),
            RUNTIME,
            refers("TimeoutSecondsPath", "0", "positive integer"),
        ),
        case(
            "HeartbeatSecondsPath a string",
            one(
                json!({"Type": "Task", "Resource": LAMBDA, "TimeoutSeconds": 100, "HeartbeatSecondsPath": "$.n", "End": true}),
            ),
            json!({"n": "x"}),
            RUNTIME,
            refers("HeartbeatSecondsPath", "x", "positive integer"),
        ),
        case(
            "ItemsPath selects nothing",
            map(json!({})),
            json!({}),
            RUNTIME,
            at(
                "S",
                2,
                "Invalid path '$.items' : No results for path: $['items']",
            ),
        ),
        case(
            "ItemsPath selects an object",
            map(json!({})),
            json!({"items": {"a": 1}}),
            RUNTIME,
            at(
                "S",
                2,
                "Map state input must be an array but was: {\"a\":1}",
            ),
        ),
        case(
            "MaxConcurrencyPath an object",
            map(json!({"MaxConcurrencyPath": "$.n"})),
            items(json!({})),
            RUNTIME,
            refers("MaxConcurrencyPath", "{}", "integer"),
        ),
        case(
            "MaxConcurrencyPath negative",
            map(json!({"MaxConcurrencyPath": "$.n"})),
            items(json!(-1)),
            RUNTIME,
            at(
                "S",
                2,
                "Expected non-negative integer for MaxConcurrency, got '-1' instead.",
            ),
        ),
        case(
            "ToleratedFailureCountPath a word",
            map(json!({"ToleratedFailureCountPath": "$.n"})),
            items(json!("NoNumber")),
            RUNTIME,
            refers("ToleratedFailureCountPath", "NoNumber", "integer"),
        ),
        case(
            "ToleratedFailureCountPath negative",
            map(json!({"ToleratedFailureCountPath": "$.n"})),
            items(json!(-1)),
            RUNTIME,
            at("S", 2, "ToleratedFailureCount cannot be negative."),
        ),
        case(
            "ToleratedFailurePercentagePath a word",
            map(json!({"ToleratedFailurePercentagePath": "$.n"})),
            items(json!("abc")),
            RUNTIME,
            refers("ToleratedFailurePercentagePath", "abc", "float"),
        ),
        case(
            "ToleratedFailurePercentagePath an object",
            map(json!({"ToleratedFailurePercentagePath": "$.n"})),
            items(json!({"p": 1})),
            RUNTIME,
            refers("ToleratedFailurePercentagePath", "{\"p\":1}", "float"),
        ),
        case(
            "ToleratedFailurePercentagePath over 100",
            map(json!({"ToleratedFailurePercentagePath": "$.n"})),
            items(json!(100.1)),
            RUNTIME,
            at(
                "S",
                2,
                "ToleratedFailurePercentage must be between 0 and 100.",
            ),
        ),
        case(
            "ToleratedFailurePercentagePath negative",
            map(json!({"ToleratedFailurePercentagePath": "$.n"})),
            items(json!(-1)),
            RUNTIME,
            at(
                "S",
                2,
                "ToleratedFailurePercentage must be between 0 and 100.",
            ),
        ),
    ]);
}

#[test]
fn jsonata_causes_name_the_field_where_the_expression_is() {
    let undefined = |field: &str| {
        at(
            "S",
            2,
            &format!(
                "The JSONata expression '$x' specified for the field '{field}' returned nothing (undefined)."
            ),
        )
    };
    let pass = |fields: Value| {
        let mut state = json!({"Type": "Pass", "End": true});
        for (k, v) in fields.as_object().expect("fields") {
            state[k] = v.clone();
        }
        one_jsonata(state)
    };
    let map = |fields: Value| {
        let mut state = json!({"Type": "Map", "End": true,
            "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}});
        for (k, v) in fields.as_object().expect("fields") {
            state[k] = v.clone();
        }
        one_jsonata(state)
    };
    let wrong = |expr: &str, field: &str, expected: &str, actual: &str, value: &str| {
        at(
            "S",
            2,
            &format!(
                "The JSONata expression '{expr}' specified for the field '{field}' returned an unexpected result type. Expected '{expected}', but was '{actual}' for value: {value}"
            ),
        )
    };
    check_all(vec![
        case("Output", pass(json!({"Output": "{% $x %}"})), json!({}), QUERY, undefined("Output")),
        case("Output member", pass(json!({"Output": {"v": "{% $x %}"}})), json!({}), QUERY, undefined("Output/v")),
        case("Output deep member", pass(json!({"Output": {"a": {"b": "{% $x %}"}}})), json!({}), QUERY, undefined("Output/a/b")),
        case("Output array element", pass(json!({"Output": {"list": [1, "{% $x %}"]}})), json!({}), QUERY, undefined("Output/list[1]")),
        case("Assign variable", pass(json!({"Assign": {"result": "{% $x %}"}})), json!({}), QUERY, undefined("Assign/result")),
        case("Assign nested", pass(json!({"Assign": {"result": {"n": ["{% $x %}"]}}})), json!({}), QUERY, undefined("Assign/result/n[0]")),
        case("Arguments member", one_jsonata(json!({"Type": "Task", "Resource": LAMBDA, "Arguments": {"MessageGroupId": "{% $x %}"}, "End": true})), json!({}), QUERY,
            undefined("Arguments/MessageGroupId")),
        case("Choice rule Condition", one_jsonata(json!({"Type": "Choice", "Default": "D", "Choices": [
                {"Condition": "{% false %}", "Next": "D"}, {"Condition": "{% $x %}", "Next": "D"}]}))
                .as_object().map(|m| { let mut m = m.clone(); m["States"]["D"] = json!({"Type": "Succeed"}); Value::Object(m) }).expect("machine"),
            json!({}), QUERY, undefined("Choices[1]/Condition")),
        case("Choice rule Output", one_jsonata(json!({"Type": "Choice", "Default": "D", "Choices": [
                {"Condition": "{% true %}", "Output": {"v": "{% $x %}"}, "Next": "D"}]}))
                .as_object().map(|m| { let mut m = m.clone(); m["States"]["D"] = json!({"Type": "Succeed"}); Value::Object(m) }).expect("machine"),
            json!({}), QUERY, undefined("Choices[0]/Output/v")),
        case("Choice rule Assign", one_jsonata(json!({"Type": "Choice", "Default": "D", "Choices": [
                {"Condition": "{% true %}", "Assign": {"x": "{% $x %}"}, "Next": "D"}]}))
                .as_object().map(|m| { let mut m = m.clone(); m["States"]["D"] = json!({"Type": "Succeed"}); Value::Object(m) }).expect("machine"),
            json!({}), QUERY, undefined("Choices[0]/Assign/x")),
        case("Catch Output", one_jsonata(json!({"Type": "Task", "Resource": LAMBDA, "Arguments": "{% $nope %}", "End": true,
                "Catch": [{"ErrorEquals": ["States.Timeout"], "Next": "S"},
                          {"ErrorEquals": ["States.ALL"], "Output": {"v": "{% $x %}"}, "Next": "S"}]})),
            json!({}), QUERY, undefined("Catch[1]/Output/v")),
        case("Fail Error", one_jsonata(json!({"Type": "Fail", "Error": "{% $x %}"})), json!({}), QUERY, undefined("Error")),
        case("Fail Cause a number", one_jsonata(json!({"Type": "Fail", "Error": "E", "Cause": "{% 5 %}"})), json!({}), QUERY,
            wrong("5", "Cause", "string", "number", "5")),
        case("Items undefined", map(json!({"Items": "{% $x %}"})), json!({}), QUERY, undefined("Items")),
        case("Items element undefined", map(json!({"Items": [1, "{% $x %}", 3]})), json!({}), QUERY, undefined("Items[1]")),
        case("Items a string", map(json!({"Items": "{% 'abc' %}"})), json!({}), QUERY,
            wrong("'abc'", "Items", "array", "string", "\"abc\"")),
        case("Map input not an array", map(json!({})), json!({"a": 1}), QUERY,
            at("S", 2, "Map state input must be an array but was: {\"a\":1}")),
        case("ItemSelector member", map(json!({"Items": [1], "ItemSelector": {"v": "{% $x %}"}})), json!({}), QUERY,
            undefined("ItemSelector/v")),
        case("MaxConcurrency a string", map(json!({"Items": [1], "MaxConcurrency": "{% 'x' %}"})), json!({}), QUERY,
            wrong("'x'", "MaxConcurrency", "integer", "string", "\"x\"")),
        case("ToleratedFailureCount a string", map(json!({"Items": [1], "ToleratedFailureCount": "{% 'x' %}"})), json!({}), QUERY,
            wrong("'x'", "ToleratedFailureCount", "integer", "string", "\"x\"")),
        case("ToleratedFailurePercentage a string", map(json!({"Items": [1], "ToleratedFailurePercentage": "{% 'abc' %}"})), json!({}), QUERY,
            wrong("'abc'", "ToleratedFailurePercentage", "number", "string", "\"abc\"")),
        case("ToleratedFailurePercentage over 100", map(json!({"Items": [1], "ToleratedFailurePercentage": "{% 100.5 %}"})), json!({}), RUNTIME,
            at("S", 2, "ToleratedFailurePercentage must be between 0 and 100.")),
        case("TimeoutSeconds zero", one_jsonata(json!({"Type": "Task", "Resource": LAMBDA, "TimeoutSeconds": "{% 0 %}", "End": true})), json!({}), QUERY,
            wrong("0", "TimeoutSeconds", "integer", "number", "0")),
        case("HeartbeatSeconds a string", one_jsonata(json!({"Type": "Task", "Resource": LAMBDA, "TimeoutSeconds": 10, "HeartbeatSeconds": "{% 'x' %}", "End": true})), json!({}), QUERY,
            wrong("'x'", "HeartbeatSeconds", "integer", "string", "\"x\"")),
    ]);
}

#[test]
fn a_failing_jsonata_expression_names_its_field_and_error() {
    let server = Server::start();
    for (fields, field) in [
        (json!({"Items": "{% $number('abc') %}"}), "Items"),
        (json!({"Items": ["{% $number('abc') %}"]}), "Items[0]"),
    ] {
        let mut state = json!({"Type": "Map", "End": true,
            "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}});
        for (k, v) in fields.as_object().expect("fields") {
            state[k] = v.clone();
        }
        let done = run_express(&server, &one_jsonata(state), &json!({}));
        assert_eq!(done["error"], QUERY, "{done}");
        let cause = done["cause"].as_str().expect("cause");
        let expected = at(
            "S",
            2,
            &format!(
                "The JSONata expression '$number('abc')' specified for the field '{field}' threw an error during evaluation. "
            ),
        );
        assert!(cause.starts_with(&expected), "{cause}");
    }
    // Assign: the variable is named.
    let done = run_express(
        &server,
        &one_jsonata(
            json!({"Type": "Pass", "Assign": {"result": "{% $number('abc') %}"}, "End": true}),
        ),
        &json!({}),
    );
    let cause = done["cause"].as_str().expect("cause");
    assert!(
        cause.contains("specified for the field 'Assign/result' threw an error during evaluation."),
        "{cause}"
    );
}

#[test]
fn jsonata_expressions_inside_arrays_and_objects_are_evaluated() {
    let server = Server::start();
    let map = one_jsonata(
        json!({"Type": "Map", "Items": [1, "{% $number('2') %}", 3], "End": true,
        "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}}),
    );
    assert_eq!(
        output(&run_express(&server, &map, &json!({}))),
        json!([1, 2, 3])
    );
    let nested = one_jsonata(json!({"Type": "Pass", "End": true,
        "Assign": {"list": ["{% 1 + 1 %}", {"deep": "{% 'x' %}"}]},
        "Output": {"a": [1, "{% 1 + 1 %}", {"b": "{% $uppercase('x') %}"}], "v": "{% $list %}"}}));
    // Output does not see the state's own assignments (the Developer Guide).
    let done = run_express(&server, &nested, &json!({}));
    assert_eq!(done["status"], "FAILED", "{done}");
    let pass = one_jsonata(json!({"Type": "Pass", "End": true,
        "Output": {"a": [1, "{% 1 + 1 %}", {"b": "{% $uppercase('x') %}"}], "c": [["{% 3 %}"]]}}));
    assert_eq!(
        output(&run_express(&server, &pass, &json!({}))),
        json!({"a": [1, 2, {"b": "X"}], "c": [[3]]})
    );
    let selector = one_jsonata(
        json!({"Type": "Map", "Items": "{% [10, 20] %}", "End": true,
        "ItemSelector": {"pair": ["{% $states.context.Map.Item.Index %}", "{% $states.context.Map.Item.Value %}"]},
        "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}}),
    );
    assert_eq!(
        output(&run_express(&server, &selector, &json!({}))),
        json!([{"pair": [0, 10]}, {"pair": [1, 20]}])
    );
}

#[test]
fn intrinsic_failures_are_runtime_errors_that_no_catch_takes() {
    let task = |call: &str| {
        json!({"StartAt": "S", "States": {
            "S": {"Type": "Task", "Resource": LAMBDA, "Parameters": {"v.$": call}, "End": true,
                  "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}]},
            "Caught": {"Type": "Succeed"}}})
    };
    check_all(vec![
        case(
            "a path argument selects nothing",
            task("States.Array($.missing)"),
            json!({"a": 1}),
            RUNTIME,
            at(
                "S",
                2,
                "The function 'States.Array($.missing)' had the following error: The JsonPath argument for the field '$.missing' could not be found in the input '{\"a\":1}'",
            ),
        ),
        case(
            "an index out of range",
            task("States.ArrayGetItem($.a, 5)"),
            json!({"a": [1]}),
            RUNTIME,
            at(
                "S",
                2,
                "The function 'States.ArrayGetItem($.a, 5)' had the following error: the index (second argument) is 5, but the array has 1 item: indexes go from 0 to the length minus 1",
            ),
        ),
        case(
            "a nested call names itself",
            task("States.Format('n={}', States.ArrayLength($.s))"),
            json!({"s": "x"}),
            RUNTIME,
            at(
                "S",
                2,
                "The function 'States.ArrayLength($.s)' had the following error: the argument must be an array, but it is the string \"x\"",
            ),
        ),
    ]);
}

#[test]
fn bracket_paths_with_escaped_quotes_and_backslashes_find_their_field() {
    let server = Server::start();
    let input = json!({"Test\"Name": {"v": 1}, "back\\slash": [7], "it's": "q"});
    let quote = r#"$['Test\"Name']"#;
    let backslash = r#"$['back\\slash']"#;
    let apostrophe = r#"$['it\'s']"#;
    let pass = |fields: Value| {
        let mut state = json!({"Type": "Pass", "End": true});
        for (k, v) in fields.as_object().expect("fields") {
            state[k] = v.clone();
        }
        one(state)
    };
    for (state, expected) in [
        (pass(json!({"InputPath": quote})), json!({"v": 1})),
        (
            pass(json!({"Parameters": {"a.$": quote, "b.$": backslash, "c.$": apostrophe}})),
            json!({"a": {"v": 1}, "b": [7], "c": "q"}),
        ),
        (
            pass(
                json!({"Parameters": {"a.$": format!("{quote}.v"), "b.$": format!("{backslash}[0]")}}),
            ),
            json!({"a": 1, "b": 7}),
        ),
        (pass(json!({"OutputPath": backslash})), json!([7])),
        (
            pass(json!({"Result": 2, "ResultPath": quote, "OutputPath": quote})),
            json!(2),
        ),
        (
            pass(json!({"Parameters": {"n.$": format!("States.ArrayLength({backslash})")}})),
            json!({"n": 1}),
        ),
        (
            pass(json!({"Parameters": {
                "all.$": format!("{quote}[*]"),
                "deep.$": r#"$..['back\\slash'][0]"#}})),
            json!({"all": [1], "deep": [7]}),
        ),
    ] {
        assert_eq!(
            output(&run_express(&server, &state, &input)),
            expected,
            "{state}"
        );
    }
    let choice = json!({"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [{"Variable": format!("{quote}.v"), "NumericEquals": 1, "Next": "Yes"}], "Default": "No"},
        "Yes": {"Type": "Pass", "Result": "yes", "End": true},
        "No": {"Type": "Pass", "Result": "no", "End": true}}});
    assert_eq!(output(&run_express(&server, &choice, &input)), json!("yes"));
    let map = one(json!({"Type": "Map", "ItemsPath": backslash, "End": true,
        "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}}));
    assert_eq!(output(&run_express(&server, &map, &input)), json!([7]));
    let fail = one(json!({"Type": "Fail", "ErrorPath": apostrophe, "CausePath": apostrophe}));
    let done = run_express(&server, &fail, &input);
    assert_eq!(
        (done["error"].as_str(), done["cause"].as_str()),
        (Some("q"), Some("q"))
    );
}

/// `$$` holds what AWS's holds (docs/errors.md, "The context object").
#[test]
fn the_context_object_has_aws_fields_per_state_type_and_execution_type() {
    let server = Server::start();
    let machine = json!({"StartAt": "P", "States": {
        "P": {"Type": "Pass", "Parameters": {"c.$": "$$"}, "ResultPath": "$.pass", "Next": "T"},
        "T": {"Type": "Task", "Resource": LAMBDA, "Parameters": {"s.$": "$$.State"},
              "Retry": [{"ErrorEquals": ["States.ALL"]}], "ResultPath": "$.task", "Next": "M"},
        "M": {"Type": "Map", "ItemsPath": "$.items", "ItemSelector": {"s.$": "$$.State", "i.$": "$$.Map.Item"},
              "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": true}}},
              "ResultPath": "$.map", "Next": "L"},
        "L": {"Type": "Parallel", "Parameters": {"s.$": "$$.State"}, "ResultPath": "$.parallel", "End": true,
              "Branches": [{"StartAt": "B", "States": {"B": {"Type": "Pass", "Parameters": {"s.$": "$$.State"}, "End": true}}}]}}});
    let input = json!({"items": ["a"]});
    let entered = |state: &Value| {
        state["EnteredTime"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z') && t.contains('T'))
    };
    for (run, express) in [
        (run_standard as fn(&Server, &Value, &Value) -> Value, false),
        (run_express, true),
    ] {
        let out = output(&run(&server, &machine, &input));
        let context = &out["pass"]["c"];
        let keys = |v: &Value| {
            let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
            k.sort();
            k
        };
        assert_eq!(
            keys(context),
            ["Execution", "State", "StateMachine"],
            "{context}"
        );
        let mut execution = vec!["Id", "Input", "Name", "RoleArn", "StartTime"];
        if !express {
            execution.push("RedriveCount");
            assert_eq!(context["Execution"]["RedriveCount"], 0);
        }
        execution.sort_unstable();
        assert_eq!(
            keys(&context["Execution"]),
            execution,
            "express {express}: {context}"
        );
        let id = context["Execution"]["Id"].as_str().expect("id");
        assert_eq!(
            id.split(':').nth(5),
            Some(if express { "express" } else { "execution" }),
            "{id}"
        );
        assert_eq!(context["Execution"]["Input"], input);
        assert_eq!(keys(&context["StateMachine"]), ["Id", "Name"]);
        // A Pass state: its name and when it was entered, no RetryCount.
        assert_eq!(
            keys(&context["State"]),
            ["EnteredTime", "Name"],
            "{context}"
        );
        assert!(entered(&context["State"]), "{context}");
        // The states that retry have a RetryCount.
        let task = &out["task"]["echo"]["s"];
        assert_eq!(
            (task["Name"].as_str(), task["RetryCount"].as_u64()),
            (Some("T"), Some(0)),
            "{out}"
        );
        let item = &out["map"][0]["s"];
        assert_eq!(
            (item["Name"].as_str(), item["RetryCount"].as_u64()),
            (Some("M"), Some(0)),
            "{out}"
        );
        assert_eq!(out["map"][0]["i"], json!({"Index": 0, "Value": "a"}));
        let parallel = &out["parallel"];
        assert_eq!(parallel[0]["s"]["Name"], "B");
        assert_eq!(keys(&parallel[0]["s"]), ["EnteredTime", "Name"], "{out}");
    }
}

#[test]
fn a_seeded_random_is_a_function_of_its_seed() {
    let server = Server::start();
    let machine = one_jsonata(json!({"Type": "Pass", "End": true,
        "Output": {"a": "{% $random(7) %}", "b": "{% $random(7) %}", "c": "{% $random(8) %}"}}));
    let first = output(&run_express(&server, &machine, &json!({})));
    let second = output(&run_express(&server, &machine, &json!({})));
    assert_eq!(
        first, second,
        "the same seed gives the same number in every execution"
    );
    assert_eq!(first["a"], first["b"]);
    assert_ne!(first["a"], first["c"]);
    let a = first["a"].as_f64().expect("a number");
    assert!((0.0..1.0).contains(&a), "{a}");
    let bad =
        one_jsonata(json!({"Type": "Pass", "End": true, "Output": {"a": "{% $random('x') %}"}}));
    let done = run_express(&server, &bad, &json!({}));
    assert_eq!(done["error"], QUERY, "{done}");
    let cause = done["cause"].as_str().expect("cause");
    assert!(
        cause.starts_with(&at("S", 2, "The JSONata expression '$random('x')' specified for the field 'Output/a' threw an error during evaluation. ")),
        "{cause}"
    );
}

/// Tasks that answer with their input under "echo".
struct Echo;

impl TaskRunner for Echo {
    fn run(&self, call: TaskCall) -> TaskFuture {
        Box::pin(async move { Ok(json!({"echo": call.request.input})) })
    }
}

#[test]
fn an_execution_input_over_the_limit_is_refused_at_start() {
    // Through the AWS face: AWS's API constraint on the input member.
    let server = Server::start();
    let (status, created) = crate::aws::create(
        &server,
        "big-input",
        &one(json!({"Type": "Succeed"})).to_string(),
    );
    assert_eq!(status, 200, "{created}");
    let big = json!({"s": "x".repeat(262_144)}).to_string();
    let (status, refused) = server.call(
        "StartExecution",
        &json!({"stateMachineArn": created["stateMachineArn"], "input": big}).to_string(),
    );
    assert_eq!(
        (status, refused["__type"].as_str()),
        (400, Some("ValidationException")),
        "{refused}"
    );
    // Through the engine (what a nested execution or a Map Run child
    // reaches): refused before anything is stored, with the size.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let engine = Engine::open(Arc::new(MemoryStore::new()), Arc::new(Echo), Arc::new(WallClock), EngineConfig::default())
            .expect("engine");
        let machine = engine
            .create_state_machine("big", &one(json!({"Type": "Succeed"})).to_string(), None, WorkflowType::Standard)
            .await
            .expect("create");
        let size = big.len();
        match engine.start_execution(&machine.arn, Some("e"), Some(&big)).await {
            Err(EngineError::InvalidExecutionInput(message)) => assert_eq!(
                message,
                format!("Invalid State Machine Execution Input: 'The input has a size of {size} bytes, exceeding the maximum number of bytes service limit (262144).'")
            ),
            other => panic!("refused as InvalidExecutionInput, not {other:?}"),
        }
    });
}

/// AWS's words for a payload over 256 KiB name the state, or a task's
/// resource for its result, and have no state prefix.
#[test]
fn results_over_the_limit_name_the_state_or_the_resource_without_a_prefix() {
    let limit = |name: &str| {
        format!(
            "The state/task '{name}' returned a result with a size exceeding the maximum number of bytes service limit."
        )
    };
    let task = |result_path: &str| {
        one(json!({"Type": "Task", "Resource": LAMBDA, "ResultPath": result_path, "End": true}))
    };
    // `{"s":"..."}` of 262,140 bytes: within the limit; the echo around it
    // (`{"echo":...}`) is not.
    let near = json!({"s": "x".repeat(262_140 - 8)});
    let half = json!({"s": "x".repeat(200_000)});
    check_all(vec![
        case(
            "a task's result",
            task("$"),
            near,
            "States.DataLimitExceeded",
            limit(LAMBDA),
        ),
        case(
            "a state's output",
            task("$.r"),
            half,
            "States.DataLimitExceeded",
            limit("S"),
        ),
    ]);
}

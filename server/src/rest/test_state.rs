//! `POST /v1/test-state`: one state run on its own, as the AWS dialect's
//! TestState runs it (the same engine call), in REST's shapes: the input,
//! the mock's result and every inspected stage are JSON values rather
//! than JSON text. The authoring page's "Test this state" calls it.

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Map, Value, json};
use stepline_language::interp::Failure;
use stepline_runtime::{InspectionLevel, TestStateMock, TestStateOptions};

use super::error::RestError;
use super::machines::json_response;
use super::request::{
    Fields, MAX_DEFINITION_BYTES, MAX_INPUT_BYTES, Query, json_body, kind, parse_json,
};
use crate::http::App;

const FIELDS: &[&str] = &[
    "definition",
    "stateName",
    "input",
    "mock",
    "variables",
    "inspectionLevel",
];

/// `{"definition", "stateName"?, "input"?, "mock"?, "variables"?,
/// "inspectionLevel"?}` to `{"status", "output"?, "error"?, "cause"?,
/// "nextState"?, "inspectionData"?}`.
pub async fn test_state(
    axum::extract::State(app): axum::extract::State<App>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, RestError> {
    Query::parse(&uri, &[])?;
    let body = json_body(&headers, body).await?;
    let Some(Value::Object(object)) = parse_json(&body)? else {
        return Err(RestError::invalid(
            "the body must be an object: {\"definition\": ..., \"input\": ...}",
        ));
    };
    let fields = Fields::new(&object, FIELDS)?;
    let definition = match fields.value("definition") {
        Some(Value::String(text)) => text.clone(),
        Some(v @ Value::Object(_)) => v.to_string(),
        Some(other) => {
            return Err(RestError::invalid(format!(
                "the field 'definition' must be a state or a state machine (an object) or its text (a string), not {}",
                kind(other)
            )));
        }
        None => return Err(RestError::invalid("the field 'definition' is missing")),
    };
    if definition.len() > MAX_DEFINITION_BYTES {
        return Err(RestError::too_large(
            "DefinitionTooLarge",
            format!(
                "the definition is {} bytes; the limit is {MAX_DEFINITION_BYTES} bytes (1 MiB)",
                definition.len()
            ),
        ));
    }
    let input = fields.value("input").cloned().unwrap_or_else(|| json!({}));
    if input.to_string().len() > MAX_INPUT_BYTES {
        return Err(RestError::too_large(
            "InputTooLarge",
            format!("the input is larger than {MAX_INPUT_BYTES} bytes (256 KiB)"),
        ));
    }
    let variables = match fields.value("variables") {
        None => None,
        Some(Value::Object(map)) => Some(map.clone()),
        Some(other) => {
            return Err(RestError::invalid(format!(
                "the field 'variables' must be an object of variable names to values, not {}",
                kind(other)
            )));
        }
    };
    let inspection_level = match fields.string("inspectionLevel")? {
        None | Some("INFO") => InspectionLevel::Info,
        Some("DEBUG") => InspectionLevel::Debug,
        Some("TRACE") => InspectionLevel::Trace,
        Some(other) => {
            return Err(RestError::invalid(format!(
                "the inspectionLevel must be INFO, DEBUG or TRACE, not '{other}'"
            )));
        }
    };
    let options = TestStateOptions {
        mock: fields.value("mock").map(mock).transpose()?,
        variables,
        state_name: fields.string("stateName")?.map(str::to_owned),
        inspection_level,
    };
    let r = app.engine.test_state(definition, input, options).await?;
    let mut answer = Map::new();
    answer.insert("status".into(), json!(r.status));
    let mut put = |name: &str, value: Option<Value>| {
        if let Some(value) = value {
            answer.insert(name.into(), value);
        }
    };
    put("output", r.output);
    put("error", r.error.map(Value::String));
    put("cause", r.cause.map(Value::String));
    put("nextState", r.next_state.map(Value::String));
    put("inspectionData", r.inspection.map(parsed_stages));
    Ok(json_response(StatusCode::OK, &Value::Object(answer)))
}

/// `{"result": VALUE}` or `{"errorOutput": {"error", "cause"}}`.
fn mock(value: &Value) -> Result<TestStateMock, RestError> {
    let Value::Object(object) = value else {
        return Err(RestError::invalid(format!(
            "the field 'mock' must be an object, not {}",
            kind(value)
        )));
    };
    let fields = Fields::new(object, &["result", "errorOutput"])?;
    match (fields.value("result"), fields.value("errorOutput")) {
        (Some(result), None) => Ok(TestStateMock::Result(result.clone())),
        (None, Some(Value::Object(e))) => {
            let e = Fields::new(e, &["error", "cause"])?;
            Ok(TestStateMock::Error(Failure {
                error: e.string("error")?.map(str::to_owned),
                cause: e.string("cause")?.map(str::to_owned),
            }))
        }
        _ => Err(RestError::invalid(
            "the mock needs either a result (any JSON value) or an errorOutput {\"error\", \"cause\"}",
        )),
    }
}

/// The engine's inspection data holds each stage as JSON text, as AWS
/// sends it; REST answers values.
fn parsed_stages(data: Value) -> Value {
    match data {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let parsed = match &v {
                        Value::String(text) => serde_json::from_str(text).unwrap_or(v),
                        _ => v,
                    };
                    (k, parsed)
                })
                .collect(),
        ),
        other => other,
    }
}

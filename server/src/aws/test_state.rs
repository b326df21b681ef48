//! TestState: one state run on its own, with an optional mocked task
//! answer, variables and an inspection level.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use stepline_language::interp::Failure;
use stepline_runtime::{Engine, InspectionLevel, TestStateMock, TestStateOptions};

use super::error::AwsError;
use super::wire::Member;

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TestStateInput {
    definition: Member<String>,
    input: Member<String>,
    mock: Member<Value>,
    variables: Member<String>,
    inspection_level: Member<String>,
    state_name: Member<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TestStateOutput {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    inspection_data: Option<Value>,
    /// The state's output as JSON text.
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cause: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_state: Option<String>,
}

pub async fn run(engine: &Engine, input: TestStateInput) -> Result<TestStateOutput, AwsError> {
    let definition = input.definition.required("definition")?;
    let input_text = input.input.optional("input")?.unwrap_or("{}");
    let payload: Value = serde_json::from_str(input_text)
        .map_err(|e| AwsError::new("InvalidExecutionInput", format!("Invalid input: '{e}'")))?;
    let mock = match input.mock.json() {
        None | Some(Value::Null) => None,
        Some(mock) => Some(test_state_mock(mock)?),
    };
    let variables = match input.variables.optional("variables")? {
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
    let inspection_level = match input.inspection_level.optional("inspectionLevel")? {
        Some("DEBUG") => InspectionLevel::Debug,
        Some("TRACE") => InspectionLevel::Trace,
        _ => InspectionLevel::Info,
    };
    let options = TestStateOptions {
        mock,
        variables,
        state_name: input.state_name.optional("stateName")?.map(str::to_owned),
        inspection_level,
    };
    let r = engine
        .test_state(definition.to_owned(), payload, options)
        .await?;
    Ok(TestStateOutput {
        status: r.status,
        inspection_data: r.inspection,
        output: r.output.map(|output| output.to_string()),
        error: r.error,
        cause: r.cause,
        next_state: r.next_state,
    })
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

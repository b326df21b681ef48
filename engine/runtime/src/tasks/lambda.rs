//! Lambda functions, mapped by the operator to an HTTP endpoint or a
//! registered process, so that definitions written for AWS run unchanged.
//!
//! - `arn:aws:lambda:REGION:ACCOUNT:function:NAME`: the function gets the
//!   effective input; its result is the task's result.
//! - `arn:aws:states:::lambda:invoke`: the parameters carry `FunctionName`
//!   (a name or an ARN) and `Payload`; the result is AWS's envelope
//!   `{ExecutedVersion, Payload, StatusCode, ...}`.
//!
//! A function's error becomes the task's error as Lambda reports it: a JSON
//! answer with `errorType` (and `errorMessage`) from a URL mapping, or the
//! process's named error. An unmapped function is
//! `Lambda.ResourceNotFoundException`.

use serde_json::{Value, json};

use super::config::{LambdaConfig, TaskConfig};
use super::http::{HttpInvoker, check_allowed};
use super::process;
use crate::TaskCall;
use stepline_language::asl::model::ResourceKind;
use stepline_language::cause;
use stepline_language::interp::Failure;

/// Invokes the function `call` names.
pub async fn invoke(
    config: &TaskConfig,
    http: &HttpInvoker,
    call: &TaskCall,
) -> Result<Value, Failure> {
    let envelope = matches!(call.request.resource.kind, ResourceKind::LambdaInvoke);
    let (function, payload) = match &call.request.resource.kind {
        ResourceKind::LambdaFunction { name } => (name.clone(), call.request.input.clone()),
        _ => {
            let name = call
                .request
                .input
                .get("FunctionName")
                .and_then(Value::as_str)
                .ok_or_else(|| cause::LAMBDA_NO_FUNCTION_NAME.failure(&[]))?;
            let payload = call
                .request
                .input
                .get("Payload")
                .cloned()
                .unwrap_or(json!({}));
            (function_name(name), payload)
        }
    };
    let mapping = config
        .lambda
        .get(&function)
        .ok_or_else(|| cause::LAMBDA_NOT_FOUND.failure(&[("function", &function)]))?;
    let result = match mapping {
        LambdaConfig::Process(name) => {
            let registered = config.processes.get(name).ok_or_else(|| {
                cause::LAMBDA_PROCESS_NOT_REGISTERED
                    .failure(&[("function", &function), ("name", name)])
            })?;
            let mut inner = call.clone();
            inner.request.input = payload;
            process::run(name, registered, &inner).await?
        }
        LambdaConfig::Url(url) => {
            let parsed = reqwest::Url::parse(url).map_err(|e| {
                cause::LAMBDA_BAD_URL.failure(&[
                    ("function", &function),
                    ("url", url),
                    ("reason", &e),
                ])
            })?;
            check_allowed(config, &parsed)?;
            let mut inner = call.clone();
            inner.request.input = json!({
                "ApiEndpoint": url,
                "Method": "POST",
                "RequestBody": payload,
            });
            match http.invoke(config, &inner).await {
                Ok(output) => output["ResponseBody"].clone(),
                Err(failure) => return Err(function_error(failure)),
            }
        }
    };
    if envelope {
        Ok(json!({
            "ExecutedVersion": "$LATEST",
            "Payload": result,
            "SdkHttpMetadata": {"HttpStatusCode": 200},
            "SdkResponseMetadata": {},
            "StatusCode": 200,
        }))
    } else {
        Ok(result)
    }
}

/// The name of a function given as a name, a partial or a full ARN, with
/// any version or alias qualifier removed.
fn function_name(given: &str) -> String {
    let name = match given.split_once("function:") {
        Some((_, rest)) => rest,
        None => given,
    };
    name.split(':').next().unwrap_or(name).to_owned()
}

/// A failed call to a URL mapping: Lambda's `errorType` names the error.
fn function_error(failure: Failure) -> Failure {
    let Some(cause) = failure.cause.as_deref() else {
        return failure;
    };
    let Ok(output) = serde_json::from_str::<Value>(cause) else {
        return failure;
    };
    let body = &output["ResponseBody"];
    match body.get("errorType").and_then(Value::as_str) {
        Some(error_type) => cause::TASK_ERROR.failure_as(error_type, &[("cause", &body)]),
        None => failure,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_come_out_of_arns() {
        assert_eq!(function_name("resize"), "resize");
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:1:function:resize:$LATEST"),
            "resize"
        );
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:1:function:resize"),
            "resize"
        );
        assert_eq!(function_name("123:function:resize:prod"), "resize");
    }

    #[test]
    fn lambda_error_types_name_the_failure() {
        let cause = json!({"StatusCode": 500, "ResponseBody": {"errorType": "ValueError", "errorMessage": "bad"}});
        let f = function_error(Failure::new(
            "States.Http.StatusCode.500",
            cause.to_string(),
        ));
        assert_eq!(f.error.as_deref(), Some("ValueError"));
    }
}

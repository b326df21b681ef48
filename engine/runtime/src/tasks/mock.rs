//! Mocked task responses, in AWS Step Functions Local's mock configuration
//! format, so a definition's paths can be tested without its services:
//!
//! ```json
//! {"StateMachines": {"Orders": {"TestCases": {"HappyPath": {"Charge": "ChargeOk"}}}},
//!  "MockedResponses": {"ChargeOk": {"0": {"Return": {"paid": true}},
//!                                   "1-2": {"Throw": {"Error": "Flaky", "Cause": "again"}}}}}
//! ```
//!
//! An execution runs a test case when it is started with
//! `stateMachineArn#TestCaseName`. Each Task state the test case names is
//! answered by its mocked response instead of being invoked: the n-th
//! invocation of the state in the execution (0-based, retries included)
//! takes the entry whose key is `n` or a range `a-b` holding `n`. States the
//! test case does not name run for real.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use stepline_language::cause;
use stepline_language::interp::Failure;

/// A whole mock configuration file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MockConfig {
    #[serde(default)]
    pub state_machines: BTreeMap<String, MockedMachine>,
    #[serde(default)]
    pub mocked_responses: BTreeMap<String, BTreeMap<String, MockedResponse>>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MockedMachine {
    /// Test case name -> (state name -> mocked response name).
    #[serde(default)]
    pub test_cases: BTreeMap<String, BTreeMap<String, String>>,
}

/// One invocation's answer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub enum MockedResponse {
    Return(Value),
    Throw(MockedError),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MockedError {
    #[serde(rename = "Error")]
    pub error: Option<String>,
    #[serde(rename = "Cause")]
    pub cause: Option<String>,
}

/// Why a mock file was refused.
#[derive(Debug, thiserror::Error)]
pub enum MockConfigError {
    #[error("line {line}, column {column}")]
    Json {
        line: usize,
        column: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("{at} names the mocked response '{response}', which MockedResponses does not define")]
    UnknownResponse { at: String, response: String },
    #[error(
        "MockedResponses.{response}: '{key}' is not an invocation number or range (like \"0\" or \"1-3\")"
    )]
    BadInvocation { response: String, key: String },
}

impl MockConfig {
    /// Parses a mock file and checks that every test case points at a
    /// response that exists and that every invocation key is `n` or `a-b`.
    pub fn parse(text: &str) -> Result<Self, MockConfigError> {
        let config: Self = serde_json::from_str(text).map_err(|source| MockConfigError::Json {
            line: source.line(),
            column: source.column(),
            source,
        })?;
        for (machine, cases) in &config.state_machines {
            for (case, states) in &cases.test_cases {
                for (state, response) in states {
                    if !config.mocked_responses.contains_key(response) {
                        return Err(MockConfigError::UnknownResponse {
                            at: format!("StateMachines.{machine}.TestCases.{case}.{state}"),
                            response: response.clone(),
                        });
                    }
                }
            }
        }
        for (name, invocations) in &config.mocked_responses {
            for key in invocations.keys() {
                if invocation_range(key).is_none() {
                    return Err(MockConfigError::BadInvocation {
                        response: name.clone(),
                        key: key.clone(),
                    });
                }
            }
        }
        Ok(config)
    }

    /// Whether `machine` has the test case `case`.
    pub fn has_test_case(&self, machine: &str, case: &str) -> bool {
        self.state_machines
            .get(machine)
            .is_some_and(|m| m.test_cases.contains_key(case))
    }

    /// The mocked answer of the `invocation`-th call of `state`, if the test
    /// case mocks that state. A mocked state with no entry for this
    /// invocation fails the task, as Step Functions Local does.
    pub fn answer(
        &self,
        machine: &str,
        case: &str,
        state: &str,
        invocation: u32,
    ) -> Option<Result<Value, Failure>> {
        let response = self
            .state_machines
            .get(machine)?
            .test_cases
            .get(case)?
            .get(state)?;
        let entries = self.mocked_responses.get(response)?;
        let entry = entries.iter().find(|(key, _)| {
            invocation_range(key).is_some_and(|(a, b)| a <= invocation && invocation <= b)
        });
        Some(match entry {
            Some((_, MockedResponse::Return(value))) => Ok(value.clone()),
            Some((_, MockedResponse::Throw(e))) => Err(Failure {
                error: e.error.clone(),
                cause: e.cause.clone(),
            }),
            None => Err(cause::MOCK_MISSING.failure(&[
                ("response", response),
                ("invocation", &invocation),
                ("state", &state),
            ])),
        })
    }
}

/// `"3"` -> (3, 3); `"1-2"` -> (1, 2).
fn invocation_range(key: &str) -> Option<(u32, u32)> {
    match key.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
            (a <= b).then_some((a, b))
        }
        None => {
            let n = key.trim().parse().ok()?;
            Some((n, n))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const MOCKS: &str = r#"{
      "StateMachines": {"Orders": {"TestCases": {"Flaky": {"Charge": "FailTwice"}}}},
      "MockedResponses": {"FailTwice": {
        "0-1": {"Throw": {"Error": "Flaky", "Cause": "again"}},
        "2": {"Return": {"paid": true}}}}
    }"#;

    #[test]
    fn invocations_pick_their_entry() {
        let mocks = MockConfig::parse(MOCKS).unwrap();
        assert!(mocks.has_test_case("Orders", "Flaky"));
        assert!(!mocks.has_test_case("Orders", "Happy"));
        let f = mocks
            .answer("Orders", "Flaky", "Charge", 1)
            .unwrap()
            .unwrap_err();
        assert_eq!(f.error.as_deref(), Some("Flaky"));
        assert_eq!(
            mocks
                .answer("Orders", "Flaky", "Charge", 2)
                .unwrap()
                .unwrap(),
            json!({"paid": true})
        );
        assert!(
            mocks
                .answer("Orders", "Flaky", "Charge", 3)
                .unwrap()
                .is_err()
        );
        assert!(mocks.answer("Orders", "Flaky", "Ship", 0).is_none());
    }

    #[test]
    fn broken_files_are_explained() {
        let e = MockConfig::parse("{\"StateMachines\": 1}").unwrap_err();
        assert!(matches!(e, MockConfigError::Json { line: 1, .. }), "{e:?}");
        let e = e.to_string();
        assert!(e.starts_with("line 1"), "{e}");
        let e =
            MockConfig::parse(r#"{"StateMachines": {"M": {"TestCases": {"T": {"S": "Nope"}}}}}"#)
                .unwrap_err()
                .to_string();
        assert!(e.contains("'Nope'"), "{e}");
        let e =
            MockConfig::parse(r#"{"MockedResponses": {"R": {"x": {"Return": 1}}}}"#).unwrap_err();
        assert!(e.to_string().contains("'x'"), "{e}");
    }
}

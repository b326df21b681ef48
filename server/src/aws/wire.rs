//! What every action's request and response share: a request member as
//! it was sent, dates as AWS writes them, and pages of lists.
//!
//! Requests are read in two steps. Serde names the members (each action's
//! input struct, `rename_all = "camelCase"`), and never fails: a member is
//! kept as the JSON it was. The action then reads each member where it
//! needs it, so that a member of the wrong type is refused with AWS's
//! message at the point the action reaches it (some after an engine call:
//! ListStateMachineVersions reports a missing state machine before a bad
//! page size).

use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::error::AwsError;
use super::pagination::{DEFAULT_PAGE, MAX_PAGE, Tokens};

/// Reads an action's input struct from the request object. Every member
/// is a [`Member`], so this fails only on a body that is not an object,
/// which the HTTP layer refuses before.
pub fn decode<T: DeserializeOwned>(request: &Value) -> Result<T, AwsError> {
    T::deserialize(request).map_err(|e| {
        AwsError::new(
            "SerializationException",
            format!("the request body does not fit the action: {e}"),
        )
    })
}

/// Serialises an action's output struct (in its fields' order).
pub fn encode<T: Serialize>(output: &T) -> Result<Value, AwsError> {
    serde_json::to_value(output).map_err(|e| AwsError {
        kind: "ServiceUnavailable",
        message: format!("the answer could not be written: {e}"),
        status: 500,
    })
}

/// One member of a request as sent: absent, or a JSON value, `null`
/// included (a few actions tell `null` from absent: a required string
/// that is `null` is "not a string", and ListExecutions refuses a
/// stateMachineArn and a mapRunArn together even when one is `null`).
/// `T` is the shape AWS gives the member; the readers below are defined
/// per shape.
#[derive(Debug)]
pub struct Member<T> {
    value: Option<Value>,
    shape: PhantomData<T>,
}

impl<T> Default for Member<T> {
    fn default() -> Self {
        Self {
            value: None,
            shape: PhantomData,
        }
    }
}

impl<'de, T> Deserialize<'de> for Member<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Self {
            value: Some(Value::deserialize(deserializer)?),
            shape: PhantomData,
        })
    }
}

impl<T> Member<T> {
    /// Present in the request, `null` included.
    pub fn given(&self) -> bool {
        self.value.is_some()
    }

    /// The JSON as sent, for members read by their action's own rules.
    pub fn json(&self) -> Option<&Value> {
        self.value.as_ref()
    }
}

fn not_a_string(field: &str) -> AwsError {
    AwsError::new(
        "ValidationException",
        format!(
            "1 validation error detected: Value at '{field}' failed to satisfy constraint: Member must be a string"
        ),
    )
}

impl Member<String> {
    /// A required string; `null` is refused as "not a string".
    pub fn required(&self, field: &str) -> Result<&str, AwsError> {
        match &self.value {
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(not_a_string(field)),
            None => Err(AwsError::new(
                "ValidationException",
                format!(
                    "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
                ),
            )),
        }
    }

    /// An optional string; `null` is absent.
    pub fn optional(&self, field: &str) -> Result<Option<&str>, AwsError> {
        match &self.value {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(not_a_string(field)),
        }
    }

    /// A required ARN of a `kind` resource, checked for shape before
    /// anything is looked up, as AWS does.
    pub fn arn(&self, field: &str, kind: &str) -> Result<&str, AwsError> {
        let value = self.required(field)?;
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
}

impl Member<bool> {
    /// Exactly `true` or `false` as sent; anything else is neither.
    pub fn is(&self, flag: bool) -> bool {
        self.value == Some(Value::Bool(flag))
    }
}

impl Member<f64> {
    /// An optional number; `null` is absent.
    pub fn number(&self, field: &str) -> Result<Option<f64>, AwsError> {
        match &self.value {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(_) => Err(AwsError::new(
                "ValidationException",
                format!(
                    "1 validation error detected: Value at '{field}' failed to satisfy constraint: Member must be a number"
                ),
            )),
        }
    }
}

/// A date as AWS's JSON protocol writes it: epoch seconds, with the
/// milliseconds as a fraction. The one place dates are turned into numbers.
#[derive(Debug, Clone, Copy)]
pub struct Epoch(pub DateTime<Utc>);

impl Epoch {
    pub fn seconds(self) -> f64 {
        self.0.timestamp() as f64 + f64::from(self.0.timestamp_subsec_millis()) / 1000.0
    }
}

impl Serialize for Epoch {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.seconds())
    }
}

/// `{"included": true}`: AWS's inputDetails and outputDetails.
#[derive(Debug, Serialize)]
pub struct Included {
    pub included: bool,
}

pub const INCLUDED: Included = Included { included: true };

/// An output with nothing in it: `{}`.
#[derive(Debug, Serialize)]
pub struct Empty {}

/// The paging members of a list action's input.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Paging {
    pub max_results: Member<u64>,
    pub next_token: Member<String>,
}

impl Paging {
    /// A page's size: maxResults, or the default.
    pub fn size(&self) -> Result<usize, AwsError> {
        Ok(match self.max_results.json() {
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

    /// One page of `items`, with the token of the next page when there
    /// is one.
    pub fn page<T>(
        &self,
        tokens: &Tokens,
        scope: &str,
        items: Vec<T>,
    ) -> Result<(Vec<T>, Option<String>), AwsError> {
        let size = self.size()?;
        let token = self.next_token.optional("nextToken")?;
        tokens
            .page(scope, token, size, items)
            .ok_or_else(|| invalid_token(token.unwrap_or_default()))
    }
}

/// AWS's answer to a nextToken that is not one of ours, or not for this
/// list (or from before a restart: tokens are signed with a secret drawn
/// at start).
pub fn invalid_token(token: &str) -> AwsError {
    AwsError::new("InvalidToken", format!("Invalid Token: '{token}'"))
}

//! The JSONPath side of a state's data flow: InputPath, Parameters,
//! ResultSelector, ResultPath and OutputPath, fields given by a path
//! (`...Path`) or an intrinsic call, and Choice's comparison rules, with
//! the error texts AWS gives for each.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::super::choice;
use super::super::failure::Failure;
use super::jsonata::{FieldPath, States};
use super::{Data, Evaluator};
use crate::asl::model::{Condition, PathFlow, Payload};
use crate::asl::timestamp;
use crate::cause;
use crate::query::intrinsic::IntrinsicCall;
use crate::query::path::{Path, PathRoot, Segment};
use crate::query::reference::ReferencePath;
use crate::query::template::Template;
use crate::query::{compact_json, resolve_path};

impl Evaluator<'_> {
    /// InputPath then Parameters.
    pub(super) fn path_effective_input(&mut self, flow: &PathFlow) -> Result<Data, Failure> {
        let selected = self.select_input(flow.input_path.as_ref())?;
        match &flow.parameters {
            Some(template) => self.template(template, &selected).map(Arc::new),
            None => Ok(selected),
        }
    }

    #[inline]
    pub(super) fn select_input(&mut self, input_path: Option<&Path>) -> Result<Data, Failure> {
        let input = self.run_input;
        match input_path {
            None => Ok(Arc::new(Value::Object(Map::new()))),
            Some(path) => self.select(path, input),
        }
    }

    /// A path that must match, against `input`. `$` shares the input
    /// instead of copying it.
    pub(super) fn select(&mut self, path: &Path, input: &Data) -> Result<Data, Failure> {
        if is_identity(path) {
            return Ok(Arc::clone(input));
        }
        let env = self.env(input);
        match resolve_path(path, &env) {
            Some(v) => Ok(Arc::new(v.into_owned())),
            None => Err(self.runtime(
                &cause::INVALID_PATH,
                &[("path", path), ("selector", &bracket_form(path))],
            )),
        }
    }

    /// A path that must match, written in the field `field` (ErrorPath,
    /// CausePath): AWS names the field and quotes the input when it
    /// selects nothing.
    pub(super) fn select_field(
        &mut self,
        path: &Path,
        input: &Data,
        field: &str,
    ) -> Result<Data, Failure> {
        let env = self.env(input);
        match resolve_path(path, &env) {
            Some(v) => Ok(Arc::new(v.into_owned())),
            None => {
                let input = compact_json(input);
                Err(self.runtime(
                    &cause::JSONPATH_NOT_FOUND,
                    &[("path", path), ("field", &field), ("input", &input)],
                ))
            }
        }
    }

    pub(super) fn template(
        &mut self,
        template: &Template,
        input: &Value,
    ) -> Result<Value, Failure> {
        let mut env = self.env(input);
        template
            .evaluate(&mut env)
            .map_err(|e| self.eval_failure(e))
    }

    /// An intrinsic function call against `input`.
    pub(super) fn call(&mut self, call: &IntrinsicCall, input: &Value) -> Result<Value, Failure> {
        let mut env = self.env(input);
        call.evaluate(&mut env).map_err(|e| self.eval_failure(e))
    }

    /// ResultSelector, Assign, ResultPath and OutputPath.
    pub(super) fn path_finish(
        &mut self,
        flow: &PathFlow,
        result: Data,
        assign: Option<&Payload>,
        assign_field: &FieldPath<'_>,
    ) -> Result<(Data, Option<Map<String, Value>>), Failure> {
        let result = match &flow.result_selector {
            Some(selector) => Arc::new(self.template(selector, &result)?),
            None => result,
        };
        let assigned = self.assign(assign, assign_field, &result, &States::none())?;
        let combined = match &flow.result_path {
            None => Arc::clone(self.run_input),
            Some(path) if path.segments().is_empty() => result,
            Some(path) => self.put_result(path, Arc::unwrap_or_clone(result))?,
        };
        let output = match &flow.output_path {
            None => Arc::new(Value::Object(Map::new())),
            Some(path) => self.select(path, &combined)?,
        };
        Ok((output, assigned))
    }

    /// ResultPath: the state input with `value` placed at `path`.
    pub(super) fn put_result(&self, path: &ReferencePath, value: Value) -> Result<Data, Failure> {
        let mut target = Value::clone(self.run_input);
        path.set(&mut target, value).map_err(|e| {
            cause::RESULT_PATH_MATCH_FAILURE.failure(&[
                ("path", &e.path),
                ("input", &e.input),
                ("reason", &e.reason),
            ])
        })?;
        Ok(Arc::new(target))
    }

    /// ErrorPath or CausePath: what the path or call gave must be a string.
    pub(super) fn path_text(&self, value: Value, field: &str) -> Result<Option<String>, Failure> {
        match value {
            Value::String(s) => Ok(Some(s)),
            other => Err(self.runtime(
                &cause::FAIL_FIELD_NOT_STRING,
                &[("field", &field), ("value", &compact_json(&other))],
            )),
        }
    }

    /// A Choice rule written with comparison operators.
    pub(super) fn path_condition(
        &mut self,
        condition: &Condition,
        effective: &Value,
    ) -> Result<bool, Failure> {
        let mut env = self.env(effective);
        choice::holds(condition, &mut env).map_err(|f| {
            if f.name() == "States.Runtime" {
                self.prefixed(f)
            } else {
                f
            }
        })
    }

    /// A Wait state's SecondsPath: a non-negative integer (a long, for
    /// AWS: `2.0` is not one).
    pub(super) fn path_wait_seconds(
        &mut self,
        path: &Path,
        effective: &Data,
    ) -> Result<u64, Failure> {
        let value = self.select(path, effective)?;
        if let Some(seconds) = value.as_u64() {
            return Ok(seconds);
        }
        let template = if value.as_i64().is_some() {
            &cause::SECONDS_PATH_NEGATIVE
        } else {
            &cause::SECONDS_PATH_NOT_INTEGER
        };
        Err(self.runtime(
            template,
            &[("path", path), ("value", &display_plain(&value))],
        ))
    }

    /// A Wait state's TimestampPath.
    pub(super) fn path_timestamp(
        &mut self,
        path: &Path,
        effective: &Data,
    ) -> Result<DateTime<Utc>, Failure> {
        let value = self.select(path, effective)?;
        let parsed = value.as_str().and_then(timestamp::parse);
        match parsed {
            Some(t) => Ok(t.with_timezone(&Utc)),
            None => Err(self.runtime(
                &cause::TIMESTAMP_PATH_INVALID,
                &[("path", path), ("value", &display_plain(&value))],
            )),
        }
    }

    /// TimeoutSecondsPath or HeartbeatSecondsPath, against the raw input.
    pub(super) fn path_seconds(&mut self, path: &Path, field: &str) -> Result<u64, Failure> {
        let input = self.run_input;
        let value = self.select(path, input)?;
        value.as_u64().filter(|&s| s > 0).ok_or_else(|| {
            self.runtime(
                &cause::SECONDS_FIELD_PATH_INVALID,
                &[
                    ("field", &field),
                    ("value", &display_plain(&value)),
                    ("path", path),
                ],
            )
        })
    }

    /// An integer by path: a number, or a string of digits, as AWS accepts.
    pub(super) fn path_integer(
        &mut self,
        path: &Path,
        input: &Data,
        field: &str,
    ) -> Result<i64, Failure> {
        let value = self.select(path, input)?;
        let n = match &*value {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        };
        n.ok_or_else(|| {
            self.runtime(
                &cause::INTEGER_PATH_INVALID,
                &[
                    ("field", &field),
                    ("value", &display_plain(&value)),
                    ("path", path),
                ],
            )
        })
    }

    /// ToleratedFailurePercentagePath: a number, or a string of one.
    pub(super) fn path_percentage(&mut self, path: &Path, input: &Data) -> Result<f64, Failure> {
        let value = self.select(path, input)?;
        let n = match &*value {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        };
        n.ok_or_else(|| {
            self.runtime(
                &cause::PERCENTAGE_PATH_INVALID,
                &[("value", &display_plain(&value)), ("path", path)],
            )
        })
    }
}

/// Whether a path is `$` itself: selecting it shares the input.
fn is_identity(path: &Path) -> bool {
    matches!(path.root(), PathRoot::Input) && path.segments().is_some_and(<[Segment]>::is_empty)
}

/// A value as AWS prints it inside a message: strings without quotes,
/// anything else as compact JSON.
pub(super) fn display_plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => compact_json(other),
    }
}

/// `$.a.b[0]` as Jayway prints it in errors: `$['a']['b'][0]`.
fn bracket_form(path: &Path) -> String {
    match path.segments() {
        Some(segments) => {
            let mut out = String::from("$");
            for segment in segments {
                match segment {
                    Segment::Name(name) => out.push_str(&format!("['{name}']")),
                    Segment::Index(i) => out.push_str(&format!("[{i}]")),
                }
            }
            out
        }
        None => path.as_str().to_owned(),
    }
}

//! Data flow inside one state, in AWS's order: InputPath -> Parameters ->
//! (the state's work) -> ResultSelector -> Assign -> ResultPath ->
//! OutputPath, with AWS's null rules and error texts. Also the per-type
//! evaluations (Fail's error, Wait's due time, Map's items) that read the
//! same fields.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value};

use super::Data;
use super::choice;
use super::context::VarScope;
use super::failure::Failure;
use super::jsonata_unsupported;
use crate::asl::model::{
    Catcher, Choice, DataFlow, Fail, Map as MapState, Payload, Source, State, StateId, Task, Wait,
    WaitUntil,
};
use crate::asl::timestamp;
use crate::query::eval::{Env, EvalError, SplitMix64};
use crate::query::jsonata::JsonataTemplate;
use crate::query::path::{Path, PathRoot, Segment};
use crate::query::resolve_path;
use crate::query::template::Template;

/// Evaluates one state's fields against its input, the context object and
/// the visible variables.
pub(super) struct Evaluator<'a> {
    pub state: &'a State,
    /// The raw state input (before InputPath).
    pub run_input: &'a Data,
    pub entered_event: u64,
    pub context: &'a Value,
    pub vars: &'a VarScope,
    pub random: &'a mut SplitMix64,
}

/// What a Map state needs to start its iterations.
pub(super) struct MapSetup {
    pub effective: Data,
    pub items: Vec<Value>,
    pub max_concurrency: usize,
    pub tolerated_count: Option<u64>,
    pub tolerated_percentage: Option<f64>,
}

impl<'a> Evaluator<'a> {
    fn env<'e>(&'e mut self, input: &'e Value) -> Env<'e> {
        Env {
            input,
            context: self.context,
            variables: self.vars,
            random: self.random,
        }
    }

    /// A runtime failure, prefixed as AWS does with the state and the
    /// event it was entered at.
    fn runtime(&self, detail: impl std::fmt::Display) -> Failure {
        Failure::new(
            "States.Runtime",
            format!(
                "An error occurred while executing the state '{}' (entered at the event id #{}). {detail}",
                self.state.name, self.entered_event
            ),
        )
    }

    fn eval_failure(&self, e: EvalError) -> Failure {
        if e.error == "States.Runtime" {
            self.runtime(e.cause)
        } else {
            Failure::new(e.error, e.cause)
        }
    }

    /// InputPath then Parameters (JSONPath), or Arguments (JSONata).
    pub fn effective_input(&mut self) -> Result<Data, Failure> {
        match &self.state.data {
            DataFlow::JsonPath(flow) => {
                let selected = self.select_input(flow.input_path.as_ref())?;
                match &flow.parameters {
                    Some(template) => self.template(template, &selected).map(Arc::new),
                    None => Ok(selected),
                }
            }
            DataFlow::Jsonata(flow) => match &flow.arguments {
                Some(arguments) => jsonata_value(arguments, "Arguments").map(Arc::new),
                None => Ok(Arc::clone(self.run_input)),
            },
        }
    }

    /// InputPath only (Choice, Wait, Succeed).
    pub fn input_only(&mut self) -> Result<Data, Failure> {
        match &self.state.data {
            DataFlow::JsonPath(flow) => self.select_input(flow.input_path.as_ref()),
            DataFlow::Jsonata(_) => Ok(Arc::clone(self.run_input)),
        }
    }

    fn select_input(&mut self, input_path: Option<&Path>) -> Result<Data, Failure> {
        let input = self.run_input;
        match input_path {
            None => Ok(Arc::new(Value::Object(Map::new()))),
            Some(path) => self.select(path, input),
        }
    }

    /// A path that must match, against `input`. `$` shares the input
    /// instead of copying it.
    fn select(&mut self, path: &Path, input: &Data) -> Result<Data, Failure> {
        if is_identity(path) {
            return Ok(Arc::clone(input));
        }
        let env = self.env(input);
        match resolve_path(path, &env) {
            Some(v) => Ok(Arc::new(v.into_owned())),
            None => Err(self.runtime(format!(
                "Invalid path '{path}' : No results for path: {}",
                bracket_form(path)
            ))),
        }
    }

    fn template(&mut self, template: &Template, input: &Value) -> Result<Value, Failure> {
        let mut env = self.env(input);
        template
            .evaluate(&mut env)
            .map_err(|e| self.eval_failure(e))
    }

    fn payload(&mut self, payload: &Payload, input: &Value, field: &str) -> Result<Value, Failure> {
        match payload {
            Payload::JsonPath(template) => self.template(template, input),
            Payload::Jsonata(template) => jsonata_value(template, field),
        }
    }

    /// ResultSelector, Assign, ResultPath and OutputPath applied to a
    /// state's result. Returns the output and the variables assigned.
    pub fn finish(
        &mut self,
        result: Data,
        assign: Option<&Payload>,
    ) -> Result<(Data, Option<Map<String, Value>>), Failure> {
        let state = self.state;
        match &state.data {
            DataFlow::JsonPath(flow) => {
                let result = match &flow.result_selector {
                    Some(selector) => Arc::new(self.template(selector, &result)?),
                    None => result,
                };
                let mut assigned = None;
                if let Some(assign) = assign {
                    let values = self.payload(assign, &result, "Assign")?;
                    merge_assigned(&mut assigned, values);
                }
                let combined = match &flow.result_path {
                    None => Arc::clone(self.run_input),
                    Some(path) if path.segments().is_empty() => result,
                    Some(path) => {
                        let mut target = Value::clone(self.run_input);
                        path.set(&mut target, Arc::unwrap_or_clone(result))
                            .map_err(|e| {
                                Failure::new("States.ResultPathMatchFailure", e.to_string())
                            })?;
                        Arc::new(target)
                    }
                };
                let output = match &flow.output_path {
                    None => Arc::new(Value::Object(Map::new())),
                    Some(path) => self.select(path, &combined)?,
                };
                Ok((output, assigned))
            }
            DataFlow::Jsonata(flow) => {
                let mut assigned = None;
                if let Some(assign) = assign {
                    let values = self.payload(assign, &result, "Assign")?;
                    merge_assigned(&mut assigned, values);
                }
                let output = match &flow.output {
                    Some(output) => Arc::new(jsonata_value(output, "Output")?),
                    None => result,
                };
                Ok((output, assigned))
            }
        }
    }

    /// A Fail state's error and cause.
    pub fn fail_error(&mut self, fail: &Fail) -> Result<Failure, Failure> {
        let input = self.run_input;
        let error = self.text(fail.error.as_ref(), input, "ErrorPath")?;
        let cause = self.text(fail.cause.as_ref(), input, "CausePath")?;
        Ok(Failure { error, cause })
    }

    fn text(
        &mut self,
        source: Option<&Source<String>>,
        input: &Data,
        field: &str,
    ) -> Result<Option<String>, Failure> {
        let value = match source {
            None => return Ok(None),
            Some(Source::Literal(s)) => return Ok(Some(s.clone())),
            Some(Source::Path(path)) => Value::clone(&*self.select(path, input)?),
            Some(Source::Call(call)) => {
                let mut env = self.env(input);
                call.evaluate(&mut env).map_err(|e| self.eval_failure(e))?
            }
            Some(Source::Jsonata(_)) => return Err(jsonata_unsupported(field)),
        };
        match value {
            Value::String(s) => Ok(Some(s)),
            other => Err(self.runtime(format!(
                "The {field} field must resolve to a string, but it resolved to {other}"
            ))),
        }
    }

    /// The Choice state's decision: its effective input, the next state
    /// (None when nothing matched and there is no Default), and the
    /// matching rule's Assign.
    pub fn choose(
        &mut self,
        choice: &Choice,
    ) -> Result<(Data, Option<StateId>, Option<usize>), Failure> {
        let effective = self.input_only()?;
        for (index, rule) in choice.choices.iter().enumerate() {
            let mut env = Env {
                input: &effective,
                context: self.context,
                variables: self.vars,
                random: self.random,
            };
            let holds = choice::holds(&rule.condition, &mut env).map_err(|f| {
                if f.name() == "States.Runtime" {
                    self.runtime(f.cause.unwrap_or_default())
                } else {
                    f
                }
            })?;
            if holds {
                return Ok((effective, Some(rule.next), Some(index)));
            }
        }
        Ok((effective, choice.default, None))
    }

    /// When a Wait state is over.
    pub fn wait_due(
        &mut self,
        wait: &Wait,
        entered: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, Failure> {
        let effective = self.input_only()?;
        match &wait.until {
            WaitUntil::Seconds(source) => {
                let seconds = match source {
                    Source::Literal(s) => *s,
                    Source::Path(path) => {
                        let value = self.select(path, &effective)?;
                        match value.as_u64() {
                            Some(s) => s,
                            None => {
                                return Err(self.runtime(format!(
                                    "The SecondsPath parameter does not reference a valid non-negative integer: {path} == {value}"
                                )));
                            }
                        }
                    }
                    Source::Call(_) | Source::Jsonata(_) => {
                        return Err(jsonata_unsupported("Seconds"));
                    }
                };
                let seconds = i64::try_from(seconds).unwrap_or(i64::MAX / 1000);
                Ok(entered + Duration::seconds(seconds.min(99_999_999)))
            }
            WaitUntil::Timestamp(source) => match source {
                Source::Literal(t) => Ok(t.with_timezone(&Utc)),
                Source::Path(path) => {
                    let value = self.select(path, &effective)?;
                    let parsed = value.as_str().and_then(timestamp::parse);
                    match parsed {
                        Some(t) => Ok(t.with_timezone(&Utc)),
                        None => {
                            let shown = value
                                .as_str()
                                .map_or_else(|| value.to_string(), str::to_owned);
                            Err(self.runtime(format!(
                                "The TimestampPath parameter does not reference a valid ISO-8601 extended offset date-time format string: {path} == {shown}"
                            )))
                        }
                    }
                }
                Source::Call(_) | Source::Jsonata(_) => Err(jsonata_unsupported("Timestamp")),
            },
        }
    }

    /// A Task's parameters, timeout, heartbeat and credentials.
    #[allow(clippy::type_complexity)]
    pub fn task_input(
        &mut self,
        task: &Task,
    ) -> Result<(Data, Option<u64>, Option<u64>, Option<Value>), Failure> {
        let input = self.effective_input()?;
        let timeout = self.seconds(task.timeout_seconds.as_ref(), "TimeoutSecondsPath")?;
        let heartbeat = self.seconds(task.heartbeat_seconds.as_ref(), "HeartbeatSecondsPath")?;
        let credentials = match &task.credentials {
            Some(c) => Some(self.payload(c, &input, "Credentials")?),
            None => None,
        };
        Ok((input, timeout, heartbeat, credentials))
    }

    fn seconds(
        &mut self,
        source: Option<&Source<u64>>,
        field: &str,
    ) -> Result<Option<u64>, Failure> {
        match source {
            None => Ok(None),
            Some(Source::Literal(s)) => Ok(Some(*s)),
            Some(Source::Path(path)) => {
                let input = self.run_input;
                let value = self.select(path, input)?;
                match value.as_u64().filter(|&s| s > 0) {
                    Some(s) => Ok(Some(s)),
                    None => Err(self.runtime(format!(
                        "The {field} field refers to value \"{value}\" which is not a valid positive integer: {path}"
                    ))),
                }
            }
            Some(Source::Call(_) | Source::Jsonata(_)) => Err(jsonata_unsupported(field)),
        }
    }

    /// A Map state's items and limits. The error carries whether
    /// MapStateStarted was already due (AWS checks the tolerated failure
    /// fields after it, MaxConcurrency before).
    pub fn map_setup(&mut self, map: &MapState) -> Result<MapSetup, (Failure, Option<usize>)> {
        let effective = self.input_only().map_err(|f| (f, None))?;
        let max_concurrency = self
            .integer(&map.max_concurrency, &effective, "MaxConcurrencyPath")
            .map_err(|f| (f, None))?;
        let Ok(max_concurrency) = u64::try_from(max_concurrency) else {
            let f = self.runtime(format!(
                "MaxConcurrency must be a non-negative integer, not {max_concurrency}."
            ));
            return Err((f, None));
        };
        let items = match &map.items {
            None => Arc::clone(&effective),
            Some(Source::Path(path)) => self.select(path, &effective).map_err(|f| (f, None))?,
            Some(Source::Literal(value)) => Arc::new(value.clone()),
            Some(Source::Call(_) | Source::Jsonata(_)) => {
                return Err((jsonata_unsupported("Items"), None));
            }
        };
        let items = match Arc::unwrap_or_clone(items) {
            Value::Array(items) => items,
            other => {
                let f = self.runtime(format!("Map state input must be an array but was: {other}"));
                return Err((f, None));
            }
        };
        // AWS records MapStateStarted with the item count before it checks
        // the tolerated failure fields.
        let length = items.len();
        let tolerated_count = match &map.tolerated_failure_count {
            None => None,
            Some(source) => {
                let count = self
                    .integer(source, &effective, "ToleratedFailureCountPath")
                    .map_err(|f| (f, Some(length)))?;
                if count < 0 {
                    return Err((
                        self.runtime("ToleratedFailureCount cannot be negative."),
                        Some(length),
                    ));
                }
                Some(count as u64)
            }
        };
        let tolerated_percentage = match &map.tolerated_failure_percentage {
            None => None,
            Some(source) => {
                let pct = self
                    .percentage(source, &effective)
                    .map_err(|f| (f, Some(length)))?;
                if !(0.0..=100.0).contains(&pct) {
                    return Err((
                        self.runtime("ToleratedFailurePercentage must be between 0 and 100."),
                        Some(length),
                    ));
                }
                Some(pct)
            }
        };
        Ok(MapSetup {
            effective,
            items,
            max_concurrency: usize::try_from(max_concurrency).unwrap_or(usize::MAX),
            tolerated_count,
            tolerated_percentage,
        })
    }

    /// The item an iteration receives: ItemSelector (or legacy Parameters)
    /// evaluated against the Map's effective input, with `$$.Map.Item` set
    /// by the caller; the item itself otherwise.
    pub fn map_item(
        &mut self,
        selector: Option<&Payload>,
        effective: &Data,
        item: Data,
    ) -> Result<Data, Failure> {
        match selector {
            Some(selector) => self
                .payload(selector, effective, "ItemSelector")
                .map(Arc::new),
            None => Ok(item),
        }
    }

    /// An integer given literally or by a path (a number, or a string of
    /// digits, as AWS accepts).
    fn integer(&mut self, source: &Source<u64>, input: &Data, field: &str) -> Result<i64, Failure> {
        match source {
            Source::Literal(n) => Ok(i64::try_from(*n).unwrap_or(i64::MAX)),
            Source::Path(path) => {
                let value = self.select(path, input)?;
                let n = match &*value {
                    Value::Number(n) => n.as_i64(),
                    Value::String(s) => s.parse().ok(),
                    _ => None,
                };
                n.ok_or_else(|| {
                    self.runtime(format!(
                    "The {field} field refers to value \"{}\" which is not a valid integer: {path}",
                    display_plain(&value)
                ))
                })
            }
            Source::Call(_) | Source::Jsonata(_) => Err(jsonata_unsupported(field)),
        }
    }

    fn percentage(&mut self, source: &Source<f64>, input: &Data) -> Result<f64, Failure> {
        match source {
            Source::Literal(n) => Ok(*n),
            Source::Path(path) => {
                let value = self.select(path, input)?;
                let n = match &*value {
                    Value::Number(n) => n.as_f64(),
                    Value::String(s) => s.parse().ok(),
                    _ => None,
                };
                n.ok_or_else(|| self.runtime(format!(
                    "The ToleratedFailurePercentagePath field refers to value \"{}\" which is not a valid number: {path}",
                    display_plain(&value)
                )))
            }
            Source::Call(_) | Source::Jsonata(_) => {
                Err(jsonata_unsupported("ToleratedFailurePercentage"))
            }
        }
    }

    /// The output when `catcher` handles `failure`, and its assignments.
    pub fn catch_output(
        &mut self,
        catcher: &Catcher,
        failure: &Failure,
    ) -> Result<(Data, Option<Map<String, Value>>), Failure> {
        let error_output = failure.to_output();
        let mut assigned = None;
        if let Some(assign) = &catcher.assign {
            let values = self.payload(assign, &error_output, "Assign")?;
            merge_assigned(&mut assigned, values);
        }
        let output = match &self.state.data {
            DataFlow::JsonPath(_) => match &catcher.result_path {
                None => Arc::clone(self.run_input),
                Some(path) => {
                    let mut target = Value::clone(self.run_input);
                    path.set(&mut target, error_output).map_err(|e| {
                        Failure::new("States.ResultPathMatchFailure", e.to_string())
                    })?;
                    Arc::new(target)
                }
            },
            DataFlow::Jsonata(_) => Arc::new(match &catcher.output {
                Some(output) => jsonata_value(output, "Output")?,
                None => error_output,
            }),
        };
        Ok((output, assigned))
    }
}

/// Whether a path is `$` itself: selecting it shares the input.
fn is_identity(path: &Path) -> bool {
    matches!(path.root(), PathRoot::Input) && path.segments().is_some_and(<[Segment]>::is_empty)
}

/// A JSONata template's value when it holds no expression; expressions wait
/// for the JSONata engine.
fn jsonata_value(template: &JsonataTemplate, field: &str) -> Result<Value, Failure> {
    match template {
        JsonataTemplate::Static(v) => Ok(v.clone()),
        _ => Err(jsonata_unsupported(field)),
    }
}

fn merge_assigned(assigned: &mut Option<Map<String, Value>>, values: Value) {
    if let Value::Object(values) = values {
        assigned.get_or_insert_with(Map::new).extend(values);
    }
}

/// A value as AWS prints it inside a message: strings without quotes.
fn display_plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
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

/// The length of a number as JSON text, without formatting integers.
fn number_len(n: &serde_json::Number) -> usize {
    match (n.as_u64(), n.as_i64()) {
        (Some(u), _) => u.checked_ilog10().map_or(1, |d| d as usize + 1),
        (None, Some(i)) => {
            i.unsigned_abs()
                .checked_ilog10()
                .map_or(1, |d| d as usize + 1)
                + 1
        }
        _ => n.to_string().len(),
    }
}

/// The size of `value` as compact JSON, counting no further than `limit`.
pub(super) fn json_size(value: &Value, limit: usize) -> usize {
    fn walk(value: &Value, total: &mut usize, limit: usize) {
        if *total > limit {
            return;
        }
        match value {
            Value::Null => *total += 4,
            Value::Bool(b) => *total += if *b { 4 } else { 5 },
            Value::Number(n) => *total += number_len(n),
            Value::String(s) => *total += s.len() + 2,
            Value::Array(items) => {
                *total += 2 + items.len().saturating_sub(1);
                for item in items {
                    walk(item, total, limit);
                }
            }
            Value::Object(map) => {
                *total += 2 + map.len().saturating_sub(1);
                for (k, v) in map {
                    *total += k.len() + 3;
                    walk(v, total, limit);
                }
            }
        }
    }
    let mut total = 0;
    walk(value, &mut total, limit);
    total
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::json_size;

    #[test]
    fn json_size_is_the_length_of_compact_json() {
        for value in [
            json!(null),
            json!(0),
            json!(9),
            json!(10),
            json!(-1),
            json!(-10),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(1.5),
            json!("é\"x"),
            json!([1, [2, {"a": true}], false]),
            json!({"k": {"nested": [null, "s"]}, "n": -42}),
            json!({}),
            json!([]),
        ] {
            let text = serde_json::to_string(&value).expect("serialise");
            let expected = if let Value::String(s) = &value {
                // Escapes are not counted: the size is a bound, not a copy.
                s.len() + 2
            } else {
                text.len()
            };
            assert_eq!(json_size(&value, usize::MAX), expected, "{text}");
        }
    }
}

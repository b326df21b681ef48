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
use crate::asl::model::ResultWriter;
use crate::asl::model::{
    Catcher, Choice, DataFlow, Fail, Map as MapState, Payload, Source, State, StateId, StateKind,
    Task, Wait, WaitUntil,
};
use crate::asl::timestamp;
use crate::map_run::{BatcherSpec, MAX_CONCURRENCY, MapRunSpec, ReaderSpec, WriterSpec};
use crate::payload::{MAX_PAYLOAD_BYTES, json_size};
use crate::query::eval::{Env, EvalError, RandomSource, SplitMix64, Variables, uuid_v4};
use crate::query::jsonata::{Host, JErr, JsonataExpr, JsonataTemplate, Scope};
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
                Some(arguments) => {
                    let input = Arc::clone(self.run_input);
                    self.jsonata_template(arguments, "Arguments", &States::input(&input))
                        .map(Arc::new)
                }
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

    /// A payload template: JSONPath against `input`, or JSONata with
    /// `$states` as given.
    fn payload(
        &mut self,
        payload: &Payload,
        input: &Value,
        field: &str,
        states: &States<'_>,
    ) -> Result<Value, Failure> {
        match payload {
            Payload::JsonPath(template) => self.template(template, input),
            Payload::Jsonata(template) => self.jsonata_template(template, field, states),
        }
    }

    /// The cause prefix AWS puts before a JSONata failure.
    fn in_state(&self, detail: impl std::fmt::Display) -> String {
        format!(
            "An error occurred while executing the state '{}' (entered at the event id #{}). {detail}",
            self.state.name, self.entered_event
        )
    }

    fn query_error(&self, detail: impl std::fmt::Display) -> Failure {
        Failure::new("States.QueryEvaluationError", self.in_state(detail))
    }

    /// One JSONata expression; undefined is `None`.
    fn jsonata(
        &mut self,
        expr: &JsonataExpr,
        field: &str,
        states: &States<'_>,
    ) -> Result<Option<Value>, Failure> {
        let scope = JsonataScope {
            states,
            context: self.context,
            vars: self.vars,
        };
        let mut host = JsonataHost {
            now: entered_millis(self.context),
            random: self.random,
        };
        expr.evaluate(&scope, &mut host).map_err(|e: JErr| {
            self.query_error(format!(
                "The JSONata expression '{}' specified for the field '{field}' threw an error during evaluation. {} ({})",
                expr.body(),
                e.message,
                e.code
            ))
        })
    }

    /// One JSONata expression that must give a value.
    fn jsonata_defined(
        &mut self,
        expr: &JsonataExpr,
        field: &str,
        states: &States<'_>,
    ) -> Result<Value, Failure> {
        match self.jsonata(expr, field, states)? {
            Some(v) => Ok(v),
            None => Err(self.query_error(format!(
                "The JSONata expression '{}' specified for the field '{field}' returned nothing (undefined).",
                expr.body()
            ))),
        }
    }

    /// A JSONata template: every expression in it evaluated.
    fn jsonata_template(
        &mut self,
        template: &JsonataTemplate,
        field: &str,
        states: &States<'_>,
    ) -> Result<Value, Failure> {
        let mut given = 0;
        self.jsonata_template_counted(template, field, states, &mut given)
    }

    /// A JSONata template; `given` counts the bytes (as compact JSON) its
    /// expressions gave so far. Each result is within the payload limit,
    /// but a template may hold thousands of expressions: together they
    /// must be within it too.
    fn jsonata_template_counted(
        &mut self,
        template: &JsonataTemplate,
        field: &str,
        states: &States<'_>,
        given: &mut usize,
    ) -> Result<Value, Failure> {
        Ok(match template {
            JsonataTemplate::Static(v) => v.clone(),
            JsonataTemplate::Expr(e) => {
                let value = self.jsonata_defined(e, field, states)?;
                *given += json_size(&value, MAX_PAYLOAD_BYTES + 1);
                if *given > MAX_PAYLOAD_BYTES {
                    return Err(self.query_error(format!(
                        "The JSONata expressions specified for the field '{field}' give a value larger than the payload limit of {MAX_PAYLOAD_BYTES} bytes."
                    )));
                }
                value
            }
            JsonataTemplate::Object(fields) => {
                let mut out = Map::new();
                for (k, t) in fields {
                    out.insert(
                        k.clone(),
                        self.jsonata_template_counted(t, field, states, given)?,
                    );
                }
                Value::Object(out)
            }
            JsonataTemplate::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|t| self.jsonata_template_counted(t, field, states, given))
                    .collect::<Result<_, _>>()?,
            ),
        })
    }

    /// A JSONata value of an expected JSON type, or AWS's type error.
    fn jsonata_typed(
        &mut self,
        expr: &JsonataExpr,
        field: &str,
        expected: &str,
        states: &States<'_>,
    ) -> Result<Value, Failure> {
        let value = self.jsonata_defined(expr, field, states)?;
        let ok = match expected {
            "array" => value.is_array(),
            "boolean" => value.is_boolean(),
            "string" => value.is_string(),
            "number" | "integer" => value.is_number(),
            _ => true,
        };
        if ok {
            return Ok(value);
        }
        Err(self.query_error(format!(
            "The JSONata expression '{}' specified for the field '{field}' returned an unexpected result type. Expected '{expected}', but was '{}' for value: {value}",
            expr.body(),
            json_type(&value)
        )))
    }

    /// ResultSelector, Assign, ResultPath and OutputPath applied to a
    /// state's result. Returns the output and the variables assigned.
    /// `rule_output` is a matching Choice rule's own JSONata Output, which
    /// replaces the state's.
    pub fn finish_with(
        &mut self,
        result: Data,
        assign: Option<&Payload>,
        rule_output: Option<&JsonataTemplate>,
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
                    let values = self.payload(assign, &result, "Assign", &States::none())?;
                    super::check_depth(&values, "the variables assigned")?;
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
                // Assign and Output see the same state: Output does not see
                // this state's assignments.
                let input = Arc::clone(self.run_input);
                let states = States {
                    input: &input,
                    // Only these states have a result of their own.
                    result: matches!(
                        self.state.kind,
                        StateKind::Task(_) | StateKind::Map(_) | StateKind::Parallel(_)
                    )
                    .then_some(&*result),
                    error_output: None,
                };
                let mut assigned = None;
                if let Some(assign) = assign {
                    let values = self.payload(assign, &result, "Assign", &states)?;
                    super::check_depth(&values, "the variables assigned")?;
                    merge_assigned(&mut assigned, values);
                }
                let output = match rule_output.or(flow.output.as_ref()) {
                    Some(output) => Arc::new(self.jsonata_template(output, "Output", &states)?),
                    None => Arc::clone(&result),
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
            Some(Source::Jsonata(expr)) => {
                let name = if field == "ErrorPath" {
                    "Error"
                } else {
                    "Cause"
                };
                let value = self.jsonata_typed(expr, name, "string", &States::input(input))?;
                return Ok(value.as_str().map(str::to_owned));
            }
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
            if let crate::asl::model::Condition::Jsonata(Source::Jsonata(expr)) = &rule.condition {
                let holds =
                    self.jsonata_typed(expr, "Condition", "boolean", &States::input(&effective))?;
                if holds == Value::Bool(true) {
                    return Ok((effective, Some(rule.next), Some(index)));
                }
                continue;
            }
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
                    Source::Jsonata(expr) => {
                        let value =
                            self.jsonata_defined(expr, "Seconds", &States::input(&effective))?;
                        match value.as_u64() {
                            Some(s) => s,
                            None => {
                                return Err(self.query_error(format!(
                                    "The JSONata expression '{}' specified for the field 'Seconds' returned an unexpected result type. Expected 'integer', but was '{}' for value: {value}",
                                    expr.body(),
                                    json_type(&value)
                                )));
                            }
                        }
                    }
                    Source::Call(_) => return Err(unsupported_call("Seconds")),
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
                Source::Jsonata(expr) => {
                    let value = self.jsonata_typed(
                        expr,
                        "Timestamp",
                        "string",
                        &States::input(&effective),
                    )?;
                    let text = value.as_str().unwrap_or_default();
                    match timestamp::parse(text) {
                        Some(t) => Ok(t.with_timezone(&Utc)),
                        None => Err(self.query_error(format!(
                            "The Timestamp field cannot be parsed as an ISO-8601 extended offset date-time format string: {text}"
                        ))),
                    }
                }
                Source::Call(_) => Err(unsupported_call("Timestamp")),
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
            Some(c) => {
                let raw = Arc::clone(self.run_input);
                Some(self.payload(c, &input, "Credentials", &States::input(&raw))?)
            }
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
            Some(Source::Jsonata(expr)) => {
                let name = field.trim_end_matches("Path");
                let input = Arc::clone(self.run_input);
                let value = self.jsonata_defined(expr, name, &States::input(&input))?;
                match value.as_u64().filter(|&s| s > 0) {
                    Some(s) => Ok(Some(s)),
                    None => Err(self.query_error(format!(
                        "The JSONata expression '{}' specified for the field '{name}' returned an unexpected result type. Expected 'integer', but was '{}' for value: {value}",
                        expr.body(),
                        json_type(&value)
                    ))),
                }
            }
            Some(Source::Call(_)) => Err(unsupported_call(field)),
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
            Some(Source::Jsonata(expr)) => {
                let value = self
                    .jsonata_typed(expr, "Items", "array", &States::input(&effective))
                    .map_err(|f| (f, None))?;
                Arc::new(value)
            }
            Some(Source::Call(_)) => return Err((unsupported_call("Items"), None)),
        };
        let jsonata = matches!(self.state.data, DataFlow::Jsonata(_));
        let items = match Arc::unwrap_or_clone(items) {
            Value::Array(items) => items,
            other => {
                let detail = format!("Map state input must be an array but was: {other}");
                let f = if jsonata {
                    self.query_error(detail)
                } else {
                    self.runtime(detail)
                };
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

    /// A distributed Map's fields, evaluated against its input: what the
    /// Map Run runner needs (the ARN, label and context are the caller's).
    pub fn distributed_setup(
        &mut self,
        map: &MapState,
    ) -> Result<MapRunSpec, (Failure, Option<usize>)> {
        // Inline items are read (and the tolerance fields checked) in
        // the order and with the errors of an inline Map.
        let items = match &map.item_reader {
            Some(_) => None,
            None => Some(self.map_setup(map)?.items),
        };
        let mut spec = self.distributed_fields(map, items).map_err(|f| (f, None))?;
        // AWS records MapStateStarted (the caller's) before it checks the
        // tolerated failure fields, as for an inline Map.
        let length = spec.items.as_ref().map_or(0, Vec::len);
        let effective = Arc::new(spec.effective.clone());
        if let Some(source) = &map.tolerated_failure_count {
            let count = self
                .non_negative(source, &effective, "ToleratedFailureCountPath")
                .map_err(|f| (f, Some(length)))?;
            spec.tolerated_count = Some(count);
        }
        if let Some(source) = &map.tolerated_failure_percentage {
            let pct = self
                .percentage(source, &effective)
                .map_err(|f| (f, Some(length)))?;
            if !(0.0..=100.0).contains(&pct) {
                let f = self.runtime("ToleratedFailurePercentage must be between 0 and 100.");
                return Err((f, Some(length)));
            }
            spec.tolerated_percentage = Some(pct);
        }
        Ok(spec)
    }

    fn distributed_fields(
        &mut self,
        map: &MapState,
        items: Option<Vec<Value>>,
    ) -> Result<MapRunSpec, Failure> {
        let effective = self.input_only()?;
        let raw = Arc::clone(self.run_input);
        let states = States::input(&raw);
        let max_concurrency =
            self.integer(&map.max_concurrency, &effective, "MaxConcurrencyPath")?;
        let max_concurrency = u64::try_from(max_concurrency)
            .ok()
            .filter(|n| *n <= MAX_CONCURRENCY)
            .ok_or_else(|| {
                self.runtime(format!(
                    "MaxConcurrency must be an integer from 0 to {MAX_CONCURRENCY}, not {max_concurrency}."
                ))
            })?;
        let reader = match &map.item_reader {
            None => None,
            Some(reader) => {
                let parameters = match &reader.parameters {
                    Some(p) => self.payload(p, &effective, "Arguments", &states)?,
                    None => Value::Object(Map::new()),
                };
                let c = &reader.reader_config;
                let max_items = match &c.max_items {
                    Some(source) => Some(self.non_negative(source, &effective, "MaxItemsPath")?),
                    None => None,
                };
                Some(ReaderSpec {
                    resource: reader.resource.clone(),
                    parameters,
                    input_type: c.input_type.clone(),
                    csv_header_location: c.csv_header_location.clone(),
                    csv_headers: c.csv_headers.clone(),
                    csv_delimiter: c.csv_delimiter.clone(),
                    max_items,
                })
            }
        };
        let batcher = match &map.item_batcher {
            None => None,
            Some(b) => {
                let max_items_per_batch = match &b.max_items_per_batch {
                    Some(s) => Some(self.non_negative(s, &effective, "MaxItemsPerBatchPath")?),
                    None => None,
                };
                let max_input_bytes_per_batch = match &b.max_input_bytes_per_batch {
                    Some(s) => {
                        Some(self.non_negative(s, &effective, "MaxInputBytesPerBatchPath")?)
                    }
                    None => None,
                };
                let batch_input = match &b.batch_input {
                    Some(p) => Some(self.payload(p, &effective, "BatchInput", &states)?),
                    None => None,
                };
                Some(BatcherSpec {
                    max_items_per_batch,
                    max_input_bytes_per_batch,
                    batch_input,
                })
            }
        };
        let writer = match &map.result_writer {
            Some(ResultWriter {
                resource,
                parameters,
                output_type,
                transformation,
            }) => {
                let parameters = match parameters {
                    Some(p) => self.payload(p, &effective, "Arguments", &states)?,
                    None => Value::Object(Map::new()),
                };
                Some(WriterSpec {
                    resource: resource.clone(),
                    parameters,
                    output_type: output_type.clone(),
                    transformation: transformation.clone(),
                })
            }
            None => None,
        };
        Ok(MapRunSpec {
            map_run_arn: String::new(),
            state: 0,
            processor: map.processor.0,
            label: String::new(),
            express: false,
            raw_input: Value::clone(&raw),
            effective: Value::clone(&effective),
            context: Value::Null,
            items,
            reader,
            batcher,
            writer,
            max_concurrency,
            tolerated_count: None,
            tolerated_percentage: None,
            redrive: false,
        })
    }

    fn non_negative(
        &mut self,
        source: &Source<u64>,
        input: &Data,
        field: &str,
    ) -> Result<u64, Failure> {
        let n = self.integer(source, input, field)?;
        u64::try_from(n).map_err(|_| {
            self.runtime(format!(
                "{} must be a non-negative integer, not {n}.",
                field.trim_end_matches("Path")
            ))
        })
    }

    /// A fresh UUID from the execution's seeded random source (a Map
    /// Run's id): replay draws the same one.
    pub fn new_uuid(&mut self) -> String {
        JsonataHost {
            now: 0,
            random: self.random,
        }
        .uuid()
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
            Some(selector) => {
                let raw = Arc::clone(self.run_input);
                let selected =
                    self.payload(selector, effective, "ItemSelector", &States::input(&raw))?;
                // A template nests the input within itself: the child's
                // input must be storable like any other.
                super::check_depth(&selected, "the input the ItemSelector gives an iteration")?;
                Ok(Arc::new(selected))
            }
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
            Source::Jsonata(expr) => {
                let name = field.trim_end_matches("Path");
                let value = self.jsonata_defined(expr, name, &States::input(input))?;
                match value.as_i64() {
                    Some(n) => Ok(n),
                    None => Err(self.query_error(format!(
                        "The JSONata expression '{}' specified for the field '{name}' returned an unexpected result type. Expected 'integer', but was '{}' for value: {value}",
                        expr.body(),
                        json_type(&value)
                    ))),
                }
            }
            Source::Call(_) => Err(unsupported_call(field)),
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
            Source::Jsonata(expr) => {
                let value = self.jsonata_typed(
                    expr,
                    "ToleratedFailurePercentage",
                    "number",
                    &States::input(input),
                )?;
                Ok(value.as_f64().unwrap_or_default())
            }
            Source::Call(_) => Err(unsupported_call("ToleratedFailurePercentage")),
        }
    }

    /// The output when `catcher` handles `failure`, and its assignments.
    pub fn catch_output(
        &mut self,
        catcher: &Catcher,
        failure: &Failure,
    ) -> Result<(Data, Option<Map<String, Value>>), Failure> {
        let error_output = failure.to_output();
        let input = Arc::clone(self.run_input);
        let states = States {
            input: &input,
            result: None,
            error_output: Some(&error_output),
        };
        let mut assigned = None;
        if let Some(assign) = &catcher.assign {
            let values = self.payload(assign, &error_output, "Assign", &states)?;
            super::check_depth(&values, "the variables assigned")?;
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
                Some(output) => self.jsonata_template(output, "Output", &states)?,
                None => error_output.clone(),
            }),
        };
        Ok((output, assigned))
    }
}

/// Whether a path is `$` itself: selecting it shares the input.
fn is_identity(path: &Path) -> bool {
    matches!(path.root(), PathRoot::Input) && path.segments().is_some_and(<[Segment]>::is_empty)
}

/// What `$states` holds for one evaluation (`context` is always there).
pub(super) struct States<'v> {
    input: &'v Value,
    result: Option<&'v Value>,
    error_output: Option<&'v Value>,
}

static NULL: Value = Value::Null;

impl<'v> States<'v> {
    fn input(input: &'v Value) -> Self {
        Self {
            input,
            result: None,
            error_output: None,
        }
    }

    fn none() -> Self {
        Self::input(&NULL)
    }
}

/// Variables for a JSONata expression: `$states`, then the branch's own.
struct JsonataScope<'a> {
    states: &'a States<'a>,
    context: &'a Value,
    vars: &'a VarScope,
}

impl JsonataScope<'_> {
    fn parts(&self) -> Vec<(&'static str, &Value)> {
        let mut parts = vec![("input", self.states.input)];
        if let Some(r) = self.states.result {
            parts.push(("result", r));
        }
        if let Some(e) = self.states.error_output {
            parts.push(("errorOutput", e));
        }
        parts.push(("context", self.context));
        parts
    }
}

impl Scope for JsonataScope<'_> {
    fn variable(&self, name: &str) -> Option<std::borrow::Cow<'_, Value>> {
        if name == "states" {
            let states: Map<String, Value> = self
                .parts()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.clone()))
                .collect();
            return Some(std::borrow::Cow::Owned(Value::Object(states)));
        }
        Variables::get(self.vars, name).map(std::borrow::Cow::Borrowed)
    }

    /// The fields apart: the engine converts only those an expression
    /// reads (the context object, holding the execution input, only when
    /// `$states.context` is read).
    fn states_parts(&self) -> Option<Vec<(&'static str, &Value)>> {
        Some(self.parts())
    }
}

/// Time and randomness for JSONata: the state's entered time (recorded in
/// the context object) and the execution's seeded generator.
struct JsonataHost<'a> {
    now: i64,
    random: &'a mut SplitMix64,
}

impl Host for JsonataHost<'_> {
    fn now_millis(&mut self) -> i64 {
        self.now
    }

    fn random(&mut self) -> f64 {
        (self.random.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn uuid(&mut self) -> String {
        uuid_v4(self.random.next_u64(), self.random.next_u64())
    }
}

/// `$$.State.EnteredTime` in milliseconds: what `$now()` and `$millis()`
/// return, so replay gives the same value.
fn entered_millis(context: &Value) -> i64 {
    context
        .pointer("/State/EnteredTime")
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map_or(0, |t| t.timestamp_millis())
}

/// A JSON value's type as AWS names it in messages.
fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// An intrinsic call where the definition model allows none (the builder
/// never produces one there).
fn unsupported_call(field: &str) -> Failure {
    Failure::new(
        "States.Runtime",
        format!("An intrinsic function is not allowed in the field '{field}'."),
    )
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

//! Data flow inside one state, in AWS's order: InputPath -> Parameters ->
//! (the state's work) -> ResultSelector -> Assign -> ResultPath ->
//! OutputPath, with AWS's null rules and error texts. Also the per-type
//! evaluations (Fail's error, Wait's due time, Map's items) that read the
//! same fields.
//!
//! This file holds the steps both query languages share and picks the
//! language for each field; `jsonpath.rs` (paths, payload templates,
//! ResultPath) and `jsonata.rs` (`$states`, expressions, their type
//! checks) hold what only one of them does.

mod jsonata;
mod jsonpath;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value};

use super::Data;
use super::context::VarScope;
use super::failure::Failure;
use super::limits::check_depth;
use crate::asl::model::ResultWriter;
use crate::asl::model::{
    Catcher, Choice, Condition, DataFlow, Fail, Items, Map as MapState, Payload, Source, State,
    StateId, Task, Wait, WaitUntil,
};
use crate::cause::{self, Args, Template};
use crate::map_run::{BatcherSpec, MAX_CONCURRENCY, MapRunSpec, ReaderSpec, WriterSpec};
use crate::query::eval::{Env, EvalError, RandomSource, SplitMix64, uuid_v4};
use crate::query::jsonata::JsonataTemplate;

use jsonata::{FieldPath, States};

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

    /// `failure` with the prefix AWS puts before a runtime or JSONata
    /// failure's cause: the state and the event it was entered at.
    fn prefixed(&self, failure: Failure) -> Failure {
        cause::in_state(failure, &self.state.name, self.entered_event)
    }

    /// A `States.Runtime` failure worded by `template`, prefixed as AWS
    /// does.
    fn runtime(&self, template: &Template, args: &Args<'_>) -> Failure {
        self.prefixed(template.failure(args))
    }

    fn eval_failure(&self, e: EvalError) -> Failure {
        let failure = Failure::from(e);
        if failure.name() == "States.Runtime" {
            self.prefixed(failure)
        } else {
            failure
        }
    }

    /// InputPath then Parameters (JSONPath), or Arguments (JSONata).
    pub fn effective_input(&mut self) -> Result<Data, Failure> {
        match &self.state.data {
            DataFlow::JsonPath(flow) => self.path_effective_input(flow),
            DataFlow::Jsonata(flow) => self.jsonata_arguments(flow),
        }
    }

    /// InputPath only (Choice, Wait, Succeed).
    pub fn input_only(&mut self) -> Result<Data, Failure> {
        match &self.state.data {
            DataFlow::JsonPath(flow) => self.select_input(flow.input_path.as_ref()),
            DataFlow::Jsonata(_) => Ok(Arc::clone(self.run_input)),
        }
    }

    /// A payload template: JSONPath against `input`, or JSONata with
    /// `$states` as given.
    fn payload(
        &mut self,
        payload: &Payload,
        input: &Value,
        field: &FieldPath<'_>,
        states: &States<'_>,
    ) -> Result<Value, Failure> {
        match payload {
            Payload::JsonPath(template) => self.template(template, input),
            Payload::Jsonata(template) => self.jsonata_template(template, field, states),
        }
    }

    /// Assign (a state's, a Choice rule's or a catcher's) evaluated
    /// against `value`: the variables it sets, if any. Most states assign
    /// nothing: that case stays inline in the caller (a call for it cost
    /// the Pass chain benchmark about 3% of its instructions).
    #[inline(always)]
    fn assign(
        &mut self,
        assign: Option<&Payload>,
        field: &FieldPath<'_>,
        value: &Value,
        states: &States<'_>,
    ) -> Result<Option<Map<String, Value>>, Failure> {
        match assign {
            None => Ok(None),
            Some(assign) => self.assigned(assign, field, value, states),
        }
    }

    fn assigned(
        &mut self,
        assign: &Payload,
        field: &FieldPath<'_>,
        value: &Value,
        states: &States<'_>,
    ) -> Result<Option<Map<String, Value>>, Failure> {
        let values = self.payload(assign, value, field, states)?;
        check_depth(&values, &self.state.name)?;
        Ok(match values {
            Value::Object(values) => Some(values),
            _ => None,
        })
    }

    /// ResultSelector, Assign, ResultPath and OutputPath applied to a
    /// state's result. Returns the output and the variables assigned.
    /// `rule` is the index of a matching Choice rule whose Assign (given)
    /// and JSONata Output (`rule_output`, replacing the state's) apply:
    /// AWS names their fields `Choices[i]/...`.
    pub fn finish_with(
        &mut self,
        result: Data,
        assign: Option<&Payload>,
        rule: Option<usize>,
        rule_output: Option<&JsonataTemplate>,
    ) -> Result<(Data, Option<Map<String, Value>>), Failure> {
        let rule = rule.map(|i| FieldPath::Index("Choices", i));
        let assign_field = match &rule {
            Some(rule) => FieldPath::Key(rule, "Assign"),
            None => FieldPath::Root("Assign"),
        };
        match &self.state.data {
            DataFlow::JsonPath(flow) => self.path_finish(flow, result, assign, &assign_field),
            DataFlow::Jsonata(flow) => {
                let output_field = match (&rule, rule_output) {
                    (Some(rule), Some(_)) => FieldPath::Key(rule, "Output"),
                    _ => FieldPath::Root("Output"),
                };
                let fields = (&assign_field, &output_field);
                self.jsonata_finish(flow, result, assign, rule_output, fields)
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
        match source {
            None => Ok(None),
            Some(Source::Literal(s)) => Ok(Some(s.clone())),
            Some(Source::Path(path)) => {
                let value = Value::clone(&*self.select_field(path, input, field)?);
                self.path_text(value, field)
            }
            Some(Source::Call(call)) => {
                let value = self.call(call, input)?;
                self.path_text(value, field)
            }
            Some(Source::Jsonata(expr)) => self.jsonata_text(expr, input, field),
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
            let holds = match &rule.condition {
                Condition::Jsonata(Source::Jsonata(expr)) => {
                    let rule = FieldPath::Index("Choices", index);
                    let field = FieldPath::Key(&rule, "Condition");
                    self.jsonata_condition(expr, &field, &effective)?
                }
                condition => self.path_condition(condition, &effective)?,
            };
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
                    Source::Path(path) => self.path_wait_seconds(path, &effective)?,
                    Source::Jsonata(expr) => self.jsonata_integer(
                        expr,
                        &FieldPath::Root("Seconds"),
                        &States::input(&effective),
                        Value::as_u64,
                    )?,
                    Source::Call(_) => return Err(self.unsupported_call("Seconds")),
                };
                let seconds = i64::try_from(seconds).unwrap_or(i64::MAX / 1000);
                Ok(entered + Duration::seconds(seconds.min(99_999_999)))
            }
            WaitUntil::Timestamp(source) => match source {
                Source::Literal(t) => Ok(t.with_timezone(&Utc)),
                Source::Path(path) => self.path_timestamp(path, &effective),
                Source::Jsonata(expr) => self.jsonata_timestamp(expr, &effective),
                Source::Call(_) => Err(self.unsupported_call("Timestamp")),
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
                let field = FieldPath::Root("Credentials");
                Some(self.payload(c, &input, &field, &States::input(&raw))?)
            }
            None => None,
        };
        Ok((input, timeout, heartbeat, credentials))
    }

    /// TimeoutSeconds or HeartbeatSeconds: a positive integer.
    fn seconds(
        &mut self,
        source: Option<&Source<u64>>,
        field: &str,
    ) -> Result<Option<u64>, Failure> {
        match source {
            None => Ok(None),
            Some(Source::Literal(s)) => Ok(Some(*s)),
            Some(Source::Path(path)) => self.path_seconds(path, field).map(Some),
            Some(Source::Jsonata(expr)) => {
                let name = field.trim_end_matches("Path");
                let input = Arc::clone(self.run_input);
                let field = FieldPath::Root(name);
                self.jsonata_integer(expr, &field, &States::input(&input), |v| {
                    v.as_u64().filter(|&s| s > 0)
                })
                .map(Some)
            }
            Some(Source::Call(_)) => Err(self.unsupported_call(field)),
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
            let f = self.runtime(
                &cause::MAX_CONCURRENCY_NEGATIVE,
                &[("value", &max_concurrency)],
            );
            return Err((f, None));
        };
        let items = self.map_items(map, &effective).map_err(|f| (f, None))?;
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
                        self.runtime(&cause::TOLERATED_COUNT_NEGATIVE, &[]),
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
                        self.runtime(&cause::TOLERATED_PERCENTAGE_RANGE, &[]),
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
                let f = self.runtime(&cause::TOLERATED_PERCENTAGE_RANGE, &[]);
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
        let max_concurrency = match u64::try_from(max_concurrency) {
            Ok(n) if n <= MAX_CONCURRENCY => n,
            Ok(_) => {
                return Err(self.runtime(
                    &cause::MAX_CONCURRENCY_TOO_LARGE,
                    &[("max", &MAX_CONCURRENCY), ("value", &max_concurrency)],
                ));
            }
            Err(_) => {
                return Err(self.runtime(
                    &cause::MAX_CONCURRENCY_NEGATIVE,
                    &[("value", &max_concurrency)],
                ));
            }
        };
        let reader = match &map.item_reader {
            None => None,
            Some(reader) => {
                let parameters = match &reader.parameters {
                    Some(p) => {
                        let reader = FieldPath::Root("ItemReader");
                        let field = FieldPath::Key(&reader, "Arguments");
                        self.payload(p, &effective, &field, &states)?
                    }
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
                    Some(p) => {
                        let batcher = FieldPath::Root("ItemBatcher");
                        let field = FieldPath::Key(&batcher, "BatchInput");
                        Some(self.payload(p, &effective, &field, &states)?)
                    }
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
                    Some(p) => {
                        let writer = FieldPath::Root("ResultWriter");
                        let field = FieldPath::Key(&writer, "Arguments");
                        self.payload(p, &effective, &field, &states)?
                    }
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
            self.runtime(
                &cause::NON_NEGATIVE_FIELD,
                &[("field", &field.trim_end_matches("Path")), ("value", &n)],
            )
        })
    }

    /// A fresh UUID from the execution's seeded random source (a Map
    /// Run's id): replay draws the same one.
    pub fn new_uuid(&mut self) -> String {
        let high = self.random.next_u64();
        uuid_v4(high, self.random.next_u64())
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
                let field = FieldPath::Root("ItemSelector");
                let selected = self.payload(selector, effective, &field, &States::input(&raw))?;
                // A template nests the input within itself: the child's
                // input must be storable like any other.
                check_depth(&selected, &self.state.name)?;
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
            Source::Path(path) => self.path_integer(path, input, field),
            Source::Jsonata(expr) => {
                let field = FieldPath::Root(field.trim_end_matches("Path"));
                self.jsonata_integer(expr, &field, &States::input(input), Value::as_i64)
            }
            Source::Call(_) => Err(self.unsupported_call(field)),
        }
    }

    fn percentage(&mut self, source: &Source<f64>, input: &Data) -> Result<f64, Failure> {
        match source {
            Source::Literal(n) => Ok(*n),
            Source::Path(path) => self.path_percentage(path, input),
            Source::Jsonata(expr) => {
                let value = self.jsonata_typed(
                    expr,
                    &FieldPath::Root("ToleratedFailurePercentage"),
                    "number",
                    &States::input(input),
                )?;
                Ok(value.as_f64().unwrap_or_default())
            }
            Source::Call(_) => Err(self.unsupported_call("ToleratedFailurePercentage")),
        }
    }

    /// The output when `catcher` (the `index`-th of the Catch field)
    /// handles `failure`, and its assignments. AWS names the catcher's
    /// fields `Catch[i]/Output` and `Catch[i]/Assign`.
    pub fn catch_output(
        &mut self,
        catcher: &Catcher,
        index: usize,
        failure: &Failure,
    ) -> Result<(Data, Option<Map<String, Value>>), Failure> {
        let error_output = failure.to_output();
        let input = Arc::clone(self.run_input);
        let states = States::error(&input, &error_output);
        let at = FieldPath::Index("Catch", index);
        let assign_field = FieldPath::Key(&at, "Assign");
        let assigned = self.assign(
            catcher.assign.as_ref(),
            &assign_field,
            &error_output,
            &states,
        )?;
        let output = match &self.state.data {
            DataFlow::JsonPath(_) => match &catcher.result_path {
                None => Arc::clone(self.run_input),
                Some(path) => self.put_result(path, error_output)?,
            },
            DataFlow::Jsonata(_) => Arc::new(match &catcher.output {
                Some(output) => {
                    let field = FieldPath::Key(&at, "Output");
                    self.jsonata_template(output, &field, &states)?
                }
                None => error_output.clone(),
            }),
        };
        Ok((output, assigned))
    }

    /// An intrinsic call where the definition model allows none (the
    /// builder never produces one there).
    fn unsupported_call(&self, field: &str) -> Failure {
        self.runtime(&cause::INTRINSIC_NOT_ALLOWED, &[("field", &field)])
    }

    /// A Map's items: its effective input, what ItemsPath selects, or what
    /// Items gives (every expression in it evaluated).
    fn map_items(&mut self, map: &MapState, effective: &Data) -> Result<Vec<Value>, Failure> {
        let jsonata = matches!(self.state.data, DataFlow::Jsonata(_));
        let items = match &map.items {
            None => Arc::clone(effective),
            Some(Items::Path(path)) => self.select(path, effective)?,
            Some(Items::Jsonata(JsonataTemplate::Expr(expr))) => {
                let field = FieldPath::Root("Items");
                let states = States::input(effective);
                Arc::new(self.jsonata_typed(expr, &field, "array", &states)?)
            }
            Some(Items::Jsonata(template)) => {
                let field = FieldPath::Root("Items");
                let states = States::input(effective);
                Arc::new(self.jsonata_template(template, &field, &states)?)
            }
        };
        match Arc::unwrap_or_clone(items) {
            Value::Array(items) => Ok(items),
            other => {
                let error = cause::items_not_array_error(jsonata);
                let f = cause::ITEMS_NOT_ARRAY.failure_as(error, &[("value", &other)]);
                Err(self.prefixed(f))
            }
        }
    }
}

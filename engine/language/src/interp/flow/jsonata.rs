//! The JSONata side of a state's data flow: Arguments and Output, fields
//! given as `{% ... %}` expressions, `$states` (input, result,
//! errorOutput, context), the time and randomness an expression sees, and
//! the type checks and error texts AWS gives for each field.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::super::context::VarScope;
use super::super::failure::Failure;
use super::jsonpath::display_plain;
use super::{Data, Evaluator};
use crate::asl::model::{JsonataFlow, Payload, StateKind};
use crate::asl::timestamp;
use crate::cause::{self, Args, Template};
use crate::payload::{MAX_PAYLOAD_BYTES, json_size};
use crate::query::compact_json;
use crate::query::eval::{RandomSource, SplitMix64, Variables, uuid_v4};
use crate::query::jsonata::{Host, JErr, JsonataExpr, JsonataTemplate, Scope};

/// Where a JSONata expression is written in its state, as AWS names it in
/// a cause: `Output`, `Assign/total`, `Choices[1]/Condition`,
/// `Catch[0]/Output/error`, `Items[1]`. Built on the stack as templates
/// are walked, and written out only when a cause needs it.
#[derive(Debug, Clone, Copy)]
pub(super) enum FieldPath<'a> {
    /// A field of the state: `Output`.
    Root(&'a str),
    /// An element of an array field of the state: `Choices[1]`.
    Index(&'a str, usize),
    /// A member of an object: `Assign/total`.
    Key(&'a FieldPath<'a>, &'a str),
    /// An element of an array inside a template: `Items[1]`.
    Item(&'a FieldPath<'a>, usize),
}

impl std::fmt::Display for FieldPath<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FieldPath::Root(name) => f.write_str(name),
            FieldPath::Index(name, i) => write!(f, "{name}[{i}]"),
            FieldPath::Key(parent, key) => write!(f, "{parent}/{key}"),
            FieldPath::Item(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

impl Evaluator<'_> {
    /// Arguments, against `$states.input`; the raw input without them.
    pub(super) fn jsonata_arguments(&mut self, flow: &JsonataFlow) -> Result<Data, Failure> {
        match &flow.arguments {
            Some(arguments) => {
                let input = Arc::clone(self.run_input);
                let field = FieldPath::Root("Arguments");
                self.jsonata_template(arguments, &field, &States::input(&input))
                    .map(Arc::new)
            }
            None => Ok(Arc::clone(self.run_input)),
        }
    }

    /// Assign and Output (a matching Choice rule's Output replaces the
    /// state's); `fields` names them (Assign's, then Output's).
    pub(super) fn jsonata_finish(
        &mut self,
        flow: &JsonataFlow,
        result: Data,
        assign: Option<&Payload>,
        rule_output: Option<&JsonataTemplate>,
        fields: (&FieldPath<'_>, &FieldPath<'_>),
    ) -> Result<(Data, Option<Map<String, Value>>), Failure> {
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
        let assigned = self.assign(assign, fields.0, &result, &states)?;
        let output = match rule_output.or(flow.output.as_ref()) {
            Some(output) => Arc::new(self.jsonata_template(output, fields.1, &states)?),
            None => Arc::clone(&result),
        };
        Ok((output, assigned))
    }

    /// A `States.QueryEvaluationError` worded by `template`, prefixed as
    /// AWS does.
    fn query_error(&self, template: &Template, args: &Args<'_>) -> Failure {
        self.prefixed(template.failure(args))
    }

    /// One JSONata expression; undefined is `None`.
    fn jsonata(
        &mut self,
        expr: &JsonataExpr,
        field: &FieldPath<'_>,
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
            self.query_error(
                &cause::JSONATA_ERROR,
                &[
                    ("expr", &expr.body()),
                    ("field", field),
                    ("message", &e.message),
                    ("code", &e.code),
                ],
            )
        })
    }

    /// One JSONata expression that must give a value.
    fn jsonata_defined(
        &mut self,
        expr: &JsonataExpr,
        field: &FieldPath<'_>,
        states: &States<'_>,
    ) -> Result<Value, Failure> {
        match self.jsonata(expr, field, states)? {
            Some(v) => Ok(v),
            None => Err(self.query_error(
                &cause::JSONATA_UNDEFINED,
                &[("expr", &expr.body()), ("field", field)],
            )),
        }
    }

    /// A JSONata template: every expression in it evaluated, wherever it
    /// is (an object's member, an array's element).
    pub(super) fn jsonata_template(
        &mut self,
        template: &JsonataTemplate,
        field: &FieldPath<'_>,
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
        field: &FieldPath<'_>,
        states: &States<'_>,
        given: &mut usize,
    ) -> Result<Value, Failure> {
        Ok(match template {
            JsonataTemplate::Static(v) => v.clone(),
            JsonataTemplate::Expr(e) => {
                let value = self.jsonata_defined(e, field, states)?;
                *given += json_size(&value, MAX_PAYLOAD_BYTES + 1);
                if *given > MAX_PAYLOAD_BYTES {
                    return Err(self.query_error(
                        &cause::JSONATA_TOO_LARGE,
                        &[("field", field), ("limit", &MAX_PAYLOAD_BYTES)],
                    ));
                }
                value
            }
            JsonataTemplate::Object(fields) => {
                let mut out = Map::new();
                for (k, t) in fields {
                    let member = FieldPath::Key(field, k);
                    out.insert(
                        k.clone(),
                        self.jsonata_template_counted(t, &member, states, given)?,
                    );
                }
                Value::Object(out)
            }
            JsonataTemplate::Array(items) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, t)| {
                        let item = FieldPath::Item(field, i);
                        self.jsonata_template_counted(t, &item, states, given)
                    })
                    .collect::<Result<_, _>>()?,
            ),
        })
    }

    /// A JSONata value of an expected JSON type, or AWS's type error.
    pub(super) fn jsonata_typed(
        &mut self,
        expr: &JsonataExpr,
        field: &FieldPath<'_>,
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
        Err(self.unexpected_type(expr, field, expected, &value))
    }

    /// A JSONata value that `convert` takes as an integer, or AWS's type
    /// error.
    pub(super) fn jsonata_integer<T>(
        &mut self,
        expr: &JsonataExpr,
        field: &FieldPath<'_>,
        states: &States<'_>,
        convert: impl FnOnce(&Value) -> Option<T>,
    ) -> Result<T, Failure> {
        let value = self.jsonata_defined(expr, field, states)?;
        match convert(&value) {
            Some(n) => Ok(n),
            None => Err(self.unexpected_type(expr, field, "integer", &value)),
        }
    }

    fn unexpected_type(
        &self,
        expr: &JsonataExpr,
        field: &FieldPath<'_>,
        expected: &str,
        value: &Value,
    ) -> Failure {
        self.query_error(
            &cause::JSONATA_WRONG_TYPE,
            &[
                ("expr", &expr.body()),
                ("field", field),
                ("expected", &expected),
                ("actual", &json_type(value)),
                ("value", &compact_json(value)),
            ],
        )
    }

    /// A Fail state's Error or Cause (`field` is the JSONPath name,
    /// ErrorPath or CausePath).
    pub(super) fn jsonata_text(
        &mut self,
        expr: &JsonataExpr,
        input: &Data,
        field: &str,
    ) -> Result<Option<String>, Failure> {
        let name = if field == "ErrorPath" {
            "Error"
        } else {
            "Cause"
        };
        let field = FieldPath::Root(name);
        let value = self.jsonata_typed(expr, &field, "string", &States::input(input))?;
        Ok(value.as_str().map(str::to_owned))
    }

    /// A Choice rule's JSONata Condition.
    pub(super) fn jsonata_condition(
        &mut self,
        expr: &JsonataExpr,
        field: &FieldPath<'_>,
        effective: &Value,
    ) -> Result<bool, Failure> {
        let holds = self.jsonata_typed(expr, field, "boolean", &States::input(effective))?;
        Ok(holds == Value::Bool(true))
    }

    /// A Wait state's Timestamp: any value that is not an ASL timestamp
    /// (a string in another format, a number, an object) cannot be parsed
    /// as one.
    pub(super) fn jsonata_timestamp(
        &mut self,
        expr: &JsonataExpr,
        effective: &Value,
    ) -> Result<DateTime<Utc>, Failure> {
        let field = FieldPath::Root("Timestamp");
        let value = self.jsonata_defined(expr, &field, &States::input(effective))?;
        match value.as_str().and_then(timestamp::parse) {
            Some(t) => Ok(t.with_timezone(&Utc)),
            None => Err(self.query_error(
                &cause::TIMESTAMP_FIELD_INVALID,
                &[("value", &display_plain(&value))],
            )),
        }
    }
}

/// What `$states` holds for one evaluation (`context` is always there).
pub(super) struct States<'v> {
    input: &'v Value,
    result: Option<&'v Value>,
    error_output: Option<&'v Value>,
}

static NULL: Value = Value::Null;

impl<'v> States<'v> {
    pub(super) fn input(input: &'v Value) -> Self {
        Self {
            input,
            result: None,
            error_output: None,
        }
    }

    /// For a catcher: the state's input and the error it caught.
    pub(super) fn error(input: &'v Value, error_output: &'v Value) -> Self {
        Self {
            input,
            result: None,
            error_output: Some(error_output),
        }
    }

    /// Where no expression can read `$states` (a JSONPath state's Assign).
    pub(super) fn none() -> Self {
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

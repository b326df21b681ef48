//! JSONata expressions (`"{% ... %}"` strings): our own engine.
//!
//! An expression is parsed once, when the definition is validated
//! ([`JsonataExpr::parse`]), into an AST that evaluation only reads. The
//! engine is ours (see docs/jsonata.md for why): `lexer` and `parser` (a
//! Pratt parser and the reference implementation's AST rewrite), `eval`
//! (sequences and singletons as the reference implementation has them),
//! `functions` (the library, with AWS's additions) and `format` (picture
//! strings). The rest of stepline sees only [`JsonataExpr`],
//! [`JsonataTemplate`], [`Scope`] and [`Host`], so another engine could
//! stand behind the same types.
//!
//! Evaluation is bounded: nesting depth, a fuel budget for steps, a memory
//! budget that every string, array, object and frame is charged to before
//! it is made, a result no larger than the payload limit, and a panic
//! inside the engine fails the one evaluation.

mod error;
mod eval;
mod format;
mod functions;
mod lexer;
mod parser;
mod value;

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use serde_json::Value;

pub use error::JErr;

/// Variables an expression can read, looked up by name (without `$`).
pub trait Scope {
    fn variable(&self, name: &str) -> Option<Cow<'_, Value>>;

    /// `$states` as its fields, borrowed, when the scope keeps them apart:
    /// evaluation then converts only the fields an expression reads, with
    /// no intermediate copy. `variable("states")` is used otherwise.
    fn states_parts(&self) -> Option<Vec<(&'static str, &Value)>> {
        None
    }
}

/// What evaluation takes from outside: the time (`$now`, `$millis`) and
/// randomness (`$random`, `$uuid`, `$shuffle`). The interpreter supplies
/// recorded values, so replay gives the same results.
pub trait Host {
    fn now_millis(&mut self) -> i64;
    /// A number in [0, 1).
    fn random(&mut self) -> f64;
    fn uuid(&mut self) -> String;
}

/// A JSONata expression taken from a `"{% ... %}"` string, parsed.
#[derive(Clone)]
pub struct JsonataExpr {
    /// The text between `{%` and `%}`, trimmed.
    body: String,
    ast: Arc<parser::Node>,
    /// The `$name` variables it mentions (builtins and `states` included).
    variables: Arc<BTreeSet<String>>,
    /// The fields it reads as `$states.NAME`.
    states_fields: Arc<BTreeSet<String>>,
    /// Whether it uses `$states` other than as `$states.NAME`.
    states_whole: bool,
}

impl PartialEq for JsonataExpr {
    fn eq(&self, other: &Self) -> bool {
        self.body == other.body
    }
}

impl Eq for JsonataExpr {}

/// Why a string is not a JSONata expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonataError {
    #[error("the JSONata expression between {{% and %}} is empty")]
    Empty,
    /// A syntax error; `offset` counts characters from the start of the
    /// whole string (the `{` of `{%`).
    #[error("{message} ({code}, at character {column} of the expression)", column = offset + 1)]
    Syntax {
        code: &'static str,
        message: String,
        offset: usize,
    },
}

impl JsonataExpr {
    /// True when `s` is written as a JSONata expression: `{%` ... `%}`.
    pub fn is_expression(s: &str) -> bool {
        s.len() >= 4 && s.starts_with("{%") && s.ends_with("%}")
    }

    /// Parses a `"{% ... %}"` string. The caller has checked
    /// [`JsonataExpr::is_expression`].
    pub fn parse(s: &str) -> Result<Self, JsonataError> {
        let inner = &s[2..s.len() - 2];
        let body = inner.trim();
        if body.is_empty() {
            return Err(JsonataError::Empty);
        }
        let lead = 2 + inner[..inner.len() - inner.trim_start().len()]
            .chars()
            .count();
        let ast = parser::parse(body).map_err(|e| JsonataError::Syntax {
            code: e.code,
            message: e.message,
            offset: lead + e.position.unwrap_or(0),
        })?;
        let mut variables = BTreeSet::new();
        let mut states_fields = BTreeSet::new();
        let mut states_whole = false;
        collect_variables(&ast, &mut variables, &mut states_fields, &mut states_whole);
        Ok(Self {
            body: body.to_owned(),
            ast: Arc::new(ast),
            variables: Arc::new(variables),
            states_fields: Arc::new(states_fields),
            states_whole,
        })
    }

    /// The expression text between the delimiters.
    pub fn body(&self) -> &str {
        &self.body
    }

    /// The variables (`$name`, without `$`) the expression mentions.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.variables.iter().map(String::as_str)
    }

    /// The fields of `$states` it reads by name (`$states.result` gives
    /// `result`), for the definition-time check of where each is legal.
    pub fn states_fields(&self) -> impl Iterator<Item = &str> {
        self.states_fields.iter().map(String::as_str)
    }

    /// Evaluates against no context value (AWS gives expressions none: data
    /// comes in through `$states` and variables). `None` is JSONata's
    /// undefined.
    pub fn evaluate(&self, scope: &dyn Scope, host: &mut dyn Host) -> Result<Option<Value>, JErr> {
        self.evaluate_with_input(None, scope, host)
    }

    /// Evaluates with `input` as the context value (`$` and `$$`).
    pub fn evaluate_with_input(
        &self,
        input: Option<&Value>,
        scope: &dyn Scope,
        host: &mut dyn Host,
    ) -> Result<Option<Value>, JErr> {
        let run =
            std::panic::AssertUnwindSafe(|| self.run(input, scope, host, eval::MEMORY_BUDGET));
        match std::panic::catch_unwind(run) {
            Ok(result) => result,
            Err(_) => Err(JErr::new(
                "U1000",
                "Internal error in the JSONata engine; the evaluation was abandoned",
            )),
        }
    }

    /// Evaluates with a memory budget of `memory` bytes instead of the
    /// usual one.
    #[cfg(test)]
    fn evaluate_within(
        &self,
        scope: &dyn Scope,
        host: &mut dyn Host,
        memory: usize,
    ) -> Result<Option<Value>, JErr> {
        self.run(None, scope, host, memory)
    }

    fn run(
        &self,
        input: Option<&Value>,
        scope: &dyn Scope,
        host: &mut dyn Host,
        memory: usize,
    ) -> Result<Option<Value>, JErr> {
        let mut ev = eval::Evaluator::with_memory(host, memory);
        let root = ev.frame(None)?;
        let input = input.map(|v| {
            let converted = value::V::from_json(v);
            // A top-level array is one value: `$` is the whole array.
            match converted {
                value::V::Arr(items, f) => value::V::Arr(
                    std::rc::Rc::new(value::Items::from(vec![value::V::Arr(items, f)])),
                    value::SEQ | value::WRAP,
                ),
                other => other,
            }
        });
        if let Some(v) = input.as_ref().map(|v| match v {
            value::V::Arr(items, f) if f & value::WRAP != 0 => {
                items.first().cloned().unwrap_or(value::V::Null)
            }
            other => other.clone(),
        }) {
            root.bind("$", v);
        }
        for name in self.variables.iter() {
            if name == "states" {
                if let Some(parts) = scope.states_parts() {
                    let fields: value::Obj = parts
                        .into_iter()
                        .filter(|(k, _)| self.states_whole || self.states_fields.contains(*k))
                        .map(|(k, v)| (k.to_owned(), value::V::from_json(v)))
                        .collect();
                    root.bind(name, value::V::Obj(std::rc::Rc::new(fields)));
                    continue;
                }
            }
            if let Some(v) = scope.variable(name) {
                root.bind(name, value::V::from_json(&v));
            } else if let Some(f) = functions::builtin(name) {
                root.bind(name, f);
            }
        }
        let result = ev.eval(&self.ast, input.as_ref(), &root)?;
        let result = eval::finish_sequence(result, false);
        match result {
            None => Ok(None),
            Some(value::V::Func(_)) => Err(JErr::new(
                "T0001",
                "The expression evaluated to a function, which has no JSON value",
            )),
            Some(v) => {
                // A result made of one large part shared many times is
                // small here and huge as JSON: measure before writing it.
                let estimate = value::json_text_size(&v, 2 * MAX_RESULT_BYTES);
                if estimate > 2 * MAX_RESULT_BYTES {
                    return Err(result_too_large());
                }
                let json = v.to_json()?;
                if crate::payload::json_size(&json, MAX_RESULT_BYTES + 1) > MAX_RESULT_BYTES {
                    return Err(result_too_large());
                }
                Ok(Some(json))
            }
        }
    }
}

/// The largest result an evaluation may give, as compact JSON: the
/// payload limit, which no state's input, output or variable may pass.
pub const MAX_RESULT_BYTES: usize = crate::payload::MAX_PAYLOAD_BYTES;

fn result_too_large() -> JErr {
    JErr::new(
        "U1004",
        format!(
            "The result is larger than the payload limit of {MAX_RESULT_BYTES} bytes (as compact JSON)"
        ),
    )
}

fn collect_variables(
    node: &parser::Node,
    out: &mut BTreeSet<String>,
    states: &mut BTreeSet<String>,
    whole: &mut bool,
) {
    use parser::{Kind, Stage};
    let mut skip_first = false;
    if let Kind::Path { steps, .. } = &node.kind {
        if let [first, second, ..] = steps.as_slice() {
            if let (Kind::Var(v), Kind::Name(n)) = (&first.kind, &second.kind) {
                let plain = first.ann.stages.is_empty()
                    && first.ann.predicate.is_empty()
                    && first.ann.focus.is_none()
                    && first.ann.index.is_none();
                if v == "states" && plain {
                    states.insert(n.clone());
                    out.insert(v.clone());
                    skip_first = true;
                }
            }
        }
    }
    let mut visit = |n: &parser::Node| collect_variables(n, out, states, whole);
    match &node.kind {
        Kind::Path { steps, .. } => steps
            .iter()
            .skip(usize::from(skip_first))
            .for_each(&mut visit),
        Kind::Binary { lhs, rhs, .. } | Kind::Apply { lhs, rhs } => {
            visit(lhs);
            visit(rhs);
        }
        Kind::Neg(n) => visit(n),
        Kind::Array(items) | Kind::Block(items) => items.iter().for_each(&mut visit),
        Kind::Object(pairs) => pairs.iter().for_each(|(k, v)| {
            visit(k);
            visit(v);
        }),
        Kind::Condition {
            cond,
            then,
            otherwise,
        } => {
            visit(cond);
            visit(then);
            if let Some(o) = otherwise {
                visit(o);
            }
        }
        Kind::Bind { value, .. } => visit(value),
        Kind::Lambda(def) => visit(&def.body),
        Kind::Call {
            procedure, args, ..
        } => {
            visit(procedure);
            args.iter().for_each(&mut visit);
        }
        Kind::Transform(def) => {
            visit(&def.pattern);
            visit(&def.update);
            if let Some(d) = &def.delete {
                visit(d);
            }
        }
        Kind::Sort(terms) => terms.iter().for_each(|(_, t)| visit(t)),
        Kind::Var(name) if !name.is_empty() && name != "$" => {
            if name == "states" {
                *whole = true;
            }
            out.insert(name.clone());
        }
        _ => {}
    }
    for stage in node.ann.predicate.iter().chain(&node.ann.stages) {
        if let Stage::Filter(f) = stage {
            collect_variables(f, out, states, whole);
        }
    }
    if let Some(group) = &node.ann.group {
        for (k, v) in group {
            collect_variables(k, out, states, whole);
            collect_variables(v, out, states, whole);
        }
    }
}

impl fmt::Debug for JsonataExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{% {} %}}", self.body)
    }
}

/// A JSON value in which any string may be a `"{% ... %}"` expression:
/// Arguments, Output and Assign of JSONata states.
#[derive(Debug, Clone)]
pub enum JsonataTemplate {
    /// A subtree with no expression, returned as is.
    Static(serde_json::Value),
    Expr(JsonataExpr),
    Object(Vec<(String, JsonataTemplate)>),
    Array(Vec<JsonataTemplate>),
}

/// An expression that failed to compile, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonataTemplateError {
    /// JSON pointer relative to the template's root.
    pub pointer: String,
    pub error: JsonataError,
}

impl JsonataTemplate {
    /// Compiles every expression in `value`, reporting every bad one.
    pub fn compile(value: &serde_json::Value) -> Result<Self, Vec<JsonataTemplateError>> {
        let mut errors = Vec::new();
        let template = compile_at(value, String::new(), &mut errors);
        if errors.is_empty() {
            Ok(template)
        } else {
            Err(errors)
        }
    }

    /// Every expression in the template, with its pointer relative to the
    /// template's root.
    pub fn expressions(&self) -> Vec<(String, &JsonataExpr)> {
        fn walk<'t>(t: &'t JsonataTemplate, at: String, out: &mut Vec<(String, &'t JsonataExpr)>) {
            match t {
                JsonataTemplate::Static(_) => {}
                JsonataTemplate::Expr(e) => out.push((at, e)),
                JsonataTemplate::Object(fields) => {
                    for (k, v) in fields {
                        walk(v, crate::pointer::pointer_push(&at, k), out);
                    }
                }
                JsonataTemplate::Array(items) => {
                    for (i, v) in items.iter().enumerate() {
                        walk(v, format!("{at}/{i}"), out);
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk(self, String::new(), &mut out);
        out
    }

    fn is_static(&self) -> bool {
        matches!(self, JsonataTemplate::Static(_))
    }
}

fn compile_at(
    value: &serde_json::Value,
    pointer: String,
    errors: &mut Vec<JsonataTemplateError>,
) -> JsonataTemplate {
    use serde_json::Value;
    match value {
        Value::String(s) if JsonataExpr::is_expression(s) => match JsonataExpr::parse(s) {
            Ok(expr) => JsonataTemplate::Expr(expr),
            Err(error) => {
                errors.push(JsonataTemplateError { pointer, error });
                JsonataTemplate::Static(Value::Null)
            }
        },
        Value::Object(map) => {
            let fields: Vec<_> = map
                .iter()
                .map(|(k, v)| {
                    let child = crate::pointer::pointer_push(&pointer, k);
                    (k.clone(), compile_at(v, child, errors))
                })
                .collect();
            if fields.iter().all(|(_, t)| t.is_static()) {
                JsonataTemplate::Static(value.clone())
            } else {
                JsonataTemplate::Object(fields)
            }
        }
        Value::Array(items) => {
            let items: Vec<_> = items
                .iter()
                .enumerate()
                .map(|(i, v)| compile_at(v, format!("{pointer}/{i}"), errors))
                .collect();
            if items.iter().all(JsonataTemplate::is_static) {
                JsonataTemplate::Static(value.clone())
            } else {
                JsonataTemplate::Array(items)
            }
        }
        other => JsonataTemplate::Static(other.clone()),
    }
}

#[cfg(test)]
mod tests;

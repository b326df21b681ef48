//! JSONata expressions (`"{% ... %}"` strings).
//!
//! This is the seam for the JSONata engine: at definition time an expression
//! is recognised and its body kept; the JSONata work plugs a real parser and
//! evaluator in behind [`JsonataExpr`] without changing the definition model.

use std::fmt;

/// A JSONata expression taken from a `"{% ... %}"` string.
#[derive(Clone, PartialEq, Eq)]
pub struct JsonataExpr {
    /// The text between `{%` and `%}`, trimmed.
    body: String,
}

/// Why a string is not a JSONata expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonataError {
    #[error("the JSONata expression between {{% and %}} is empty")]
    Empty,
}

impl JsonataExpr {
    /// True when `s` is written as a JSONata expression: `{%` ... `%}`.
    pub fn is_expression(s: &str) -> bool {
        s.len() >= 4 && s.starts_with("{%") && s.ends_with("%}")
    }

    /// Parses a `"{% ... %}"` string. The caller has checked
    /// [`JsonataExpr::is_expression`].
    pub fn parse(s: &str) -> Result<Self, JsonataError> {
        let body = s[2..s.len() - 2].trim();
        if body.is_empty() {
            return Err(JsonataError::Empty);
        }
        Ok(Self {
            body: body.to_owned(),
        })
    }

    /// The expression text between the delimiters.
    pub fn body(&self) -> &str {
        &self.body
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
                    let child = crate::asl::source::pointer_push(&pointer, k);
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

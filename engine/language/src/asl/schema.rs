//! The structural check: `schemas/asl.schema.json`, compiled once, and its
//! errors turned into diagnostics a person can act on.
//!
//! The schema says which fields each state type has and of which JSON type;
//! everything that needs more than one field at a time (transitions,
//! exclusive pairs, query-language rules) is the builder's job.

use std::sync::LazyLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde_json::Value;

use super::diagnostic::{Code, Diagnostic, Severity};
use super::source::Document;
use super::suggest::{closest, did_you_mean};
use crate::pointer::pointer_push;

/// The ASL schema text, as shipped in `schemas/` for editors too.
pub const ASL_SCHEMA: &str = include_str!("../../../../schemas/asl.schema.json");

struct Compiled {
    schema: Value,
    validator: jsonschema::Validator,
}

static COMPILED: LazyLock<Compiled> = LazyLock::new(|| {
    // The schema is part of the source tree and covered by tests; failing
    // here is a build defect, not a user error.
    let schema: Value = serde_json::from_str(ASL_SCHEMA).expect("schemas/asl.schema.json is JSON");
    let validator = jsonschema::draft202012::new(&schema).expect("the ASL schema compiles");
    Compiled { schema, validator }
});

/// Checks `instance` (the document's value) against the ASL schema.
pub fn check(doc: &Document, instance: &Value) -> Vec<Diagnostic> {
    let compiled = &*COMPILED;
    let mut out: Vec<Diagnostic> = Vec::new();
    for error in compiled.validator.iter_errors(instance) {
        let pointer = error.instance_path().as_str().to_owned();
        let schema_path = error.schema_path().as_str().to_owned();
        match error.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected }
            | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
                let known = known_properties(&compiled.schema, &schema_path);
                for key in unexpected {
                    let at = pointer_push(&pointer, key);
                    let mut message = format!("'{key}' is not a field allowed here");
                    if let Some(hint) = did_you_mean(&closest(key, &known)) {
                        message.push_str(&format!("; {hint}"));
                    } else if !known.is_empty() {
                        message.push_str(&format!(
                            " (allowed: {})",
                            known
                                .iter()
                                .map(|k| k.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ));
                    }
                    push(&mut out, doc, &at, true, message);
                }
            }
            ValidationErrorKind::Required { property } => {
                let name = property.as_str().unwrap_or_default();
                let message = format!("the required field '{name}' is missing");
                push(&mut out, doc, &pointer, false, message);
            }
            kind => {
                let message = describe(kind, error.instance(), &pointer, &error.to_string());
                push(&mut out, doc, &pointer, false, message);
            }
        }
    }
    out
}

fn push(out: &mut Vec<Diagnostic>, doc: &Document, pointer: &str, at_key: bool, message: String) {
    let position = if at_key {
        doc.key_position(pointer)
    } else {
        doc.value_position(pointer)
    };
    let diagnostic = Diagnostic {
        severity: Severity::Error,
        code: Code::SchemaValidationFailed,
        message,
        pointer: pointer.to_owned(),
        line: position.line,
        column: position.column,
    };
    // Several schema branches can say the same thing about one place.
    if !out.contains(&diagnostic) {
        out.push(diagnostic);
    }
}

/// A message for the other kinds of schema error, naming the field.
fn describe(kind: &ValidationErrorKind, instance: &Value, pointer: &str, fallback: &str) -> String {
    let field = pointer
        .rsplit('/')
        .next()
        .filter(|f| !f.is_empty())
        .map_or_else(|| "the definition".to_owned(), |f| format!("'{f}'"));
    match kind {
        ValidationErrorKind::Type { kind } => {
            let expected = match kind {
                TypeKind::Single(t) => article(t.as_str()),
                TypeKind::Multiple(set) => set
                    .iter()
                    .map(|t| article(t.as_str()))
                    .collect::<Vec<_>>()
                    .join(" or "),
            };
            format!("{field} must be {expected}, not {}", value_kind(instance))
        }
        ValidationErrorKind::Enum { options } => {
            let options = options.as_array().map_or(&[][..], Vec::as_slice);
            let mut message = format!(
                "{field} must be one of {}, not {instance}",
                options
                    .iter()
                    .map(Value::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            // A misspelt Type ("Succed", "pass") is the common case.
            if let Some(given) = instance.as_str() {
                let names: Vec<&str> = options.iter().filter_map(Value::as_str).collect();
                if let Some(hint) = did_you_mean(&closest(given, &names)) {
                    message.push_str(&format!("; {hint}"));
                }
            }
            message
        }
        ValidationErrorKind::MinItems { limit: 1 } => format!("{field} must not be empty"),
        ValidationErrorKind::Pattern { pattern } if pattern.contains("{%") => format!(
            "{field} must be a number, not the string {instance}; a string is only allowed as a JSONata expression written \"{{% ... %}}\""
        ),
        ValidationErrorKind::Minimum { limit } => {
            format!("{field} must be at least {limit}, not {instance}")
        }
        ValidationErrorKind::Maximum { limit } => {
            format!("{field} must be at most {limit}, not {instance}")
        }
        ValidationErrorKind::ExclusiveMinimum { limit } => {
            format!("{field} must be greater than {limit}, not {instance}")
        }
        ValidationErrorKind::AnyOf { .. } | ValidationErrorKind::OneOfNotValid { .. } => {
            format!(
                "{field} has the wrong form: {instance} {}",
                fallback_tail(fallback)
            )
        }
        _ => format!("{field}: {fallback}"),
    }
}

fn fallback_tail(fallback: &str) -> &str {
    fallback
        .split_once(" is not valid under any of the schemas")
        .map_or(
            fallback,
            |_| "is not valid here (see the field's description in schemas/asl.schema.json)",
        )
}

fn article(expected: &str) -> String {
    match expected {
        "object" | "array" | "integer" => format!("an {expected}"),
        "null" => expected.to_owned(),
        other if other.starts_with(['a', 'e', 'i', 'o', 'u']) => format!("an {other}"),
        other => format!("a {other}"),
    }
}

fn value_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a decimal number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The property names the schema allows where `additionalProperties` or
/// `unevaluatedProperties` failed: the object's own `properties` and those
/// of the definitions it refers to with `$ref`.
fn known_properties(schema: &Value, schema_path: &str) -> Vec<String> {
    let Some(parent) = schema_path
        .strip_suffix("/additionalProperties")
        .or_else(|| schema_path.strip_suffix("/unevaluatedProperties"))
    else {
        return Vec::new();
    };
    let mut known = Vec::new();
    collect_properties(schema, schema.pointer(parent), &mut known, 0);
    known
}

fn collect_properties(schema: &Value, node: Option<&Value>, known: &mut Vec<String>, depth: usize) {
    let Some(node) = node else { return };
    if depth > 4 {
        return;
    }
    if let Some(props) = node.get("properties").and_then(Value::as_object) {
        known.extend(
            props
                .keys()
                .filter(|k| !known.contains(k))
                .cloned()
                .collect::<Vec<_>>(),
        );
    }
    if let Some(target) = node
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix('#'))
    {
        collect_properties(schema, schema.pointer(target), known, depth + 1);
    }
}

//! Payload templates: the JSONPath-mode `Parameters`, `ResultSelector`,
//! `ItemSelector` and `Assign` fields.
//!
//! A payload template is a JSON value in which any object member whose name
//! ends in `.$` is dynamic: its value is a string holding a path (`$...`,
//! `$$...`, `$var...`) or an intrinsic function call (`States.Format(...)`),
//! and the output member drops the `.$` from the name. AWS applies this at any
//! depth, inside arrays too.
//!
//! [`Template::compile`] turns the JSON into a [`Template`] once, when a
//! definition is validated, reporting every bad field at once. Subtrees
//! without dynamic members are folded into [`Template::Static`], so that
//! evaluation copies them without looking inside. Evaluation belongs to the
//! interpreter.

use serde_json::Value;

use super::intrinsic::{self, IntrinsicCall};
use super::path::Path;

/// How deep a template may nest. JSON parsed by `serde_json` stops at 128
/// levels already; this bounds the compiler's recursion for values built
/// some other way.
const MAX_DEPTH: usize = 512;

/// A compiled payload template.
#[derive(Debug, Clone, PartialEq)]
pub enum Template {
    /// A subtree with no dynamic parts, copied as it is.
    Static(Value),
    /// An object with at least one dynamic member somewhere below; the names
    /// are the output names (without `.$`), in the definition's order.
    Object(Vec<(String, Template)>),
    /// An array with at least one dynamic element somewhere below.
    Array(Vec<Template>),
    /// The value of a `"name.$": "$..."` member: a path to evaluate.
    Path(Path),
    /// The value of a `"name.$": "States...."` member: a call to evaluate.
    Call(IntrinsicCall),
}

/// A problem in one field of a payload template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pointer}: {message}")]
pub struct TemplateError {
    /// RFC 6901 pointer to the field, relative to the template's root, e.g.
    /// `/foo.$` or `/a/0/b.$` (`~` written `~0`, `/` written `~1`).
    pub pointer: String,
    /// What is wrong, for a person.
    pub message: String,
    /// Byte offset inside the field's string value, when the problem is at a
    /// known place in a path or call.
    pub offset: Option<usize>,
}

impl Template {
    /// Compiles a payload template, reporting every bad field.
    pub fn compile(value: &Value) -> Result<Template, Vec<TemplateError>> {
        let mut compiler = Compiler {
            pointer: String::new(),
            errors: Vec::new(),
        };
        let template = compiler.node(value, 0);
        if compiler.errors.is_empty() {
            Ok(template)
        } else {
            Err(compiler.errors)
        }
    }

    /// True when the template has no dynamic parts at all.
    pub fn is_static(&self) -> bool {
        matches!(self, Template::Static(_))
    }
}

/// The name an object member has in the output: `Some("a")` for a dynamic
/// member `"a.$"`, `None` for a static member.
fn dynamic_name(name: &str) -> Option<&str> {
    name.strip_suffix(".$")
}

struct Compiler {
    /// The pointer to the value being compiled.
    pointer: String,
    errors: Vec<TemplateError>,
}

impl Compiler {
    fn error(&mut self, message: String, offset: Option<usize>) {
        self.errors.push(TemplateError {
            pointer: self.pointer.clone(),
            message,
            offset,
        });
    }

    /// Runs `f` with the pointer extended by `token`.
    fn at<T>(&mut self, token: &str, f: impl FnOnce(&mut Self) -> T) -> T {
        let len = self.pointer.len();
        self.pointer.push('/');
        for c in token.chars() {
            match c {
                '~' => self.pointer.push_str("~0"),
                '/' => self.pointer.push_str("~1"),
                c => self.pointer.push(c),
            }
        }
        let result = f(self);
        self.pointer.truncate(len);
        result
    }

    fn node(&mut self, value: &Value, depth: usize) -> Template {
        if depth > MAX_DEPTH {
            self.error(
                format!("the template is nested more than {MAX_DEPTH} levels deep"),
                None,
            );
            return Template::Static(Value::Null);
        }
        match value {
            Value::Object(members) => {
                let mut out = Vec::with_capacity(members.len());
                for (name, member) in members {
                    let template = self.at(name, |this| match dynamic_name(name) {
                        Some(output) => {
                            if members.contains_key(output) {
                                this.error(
                                    format!(
                                        "the fields '{name}' and '{output}' would both produce \
                                         the field '{output}': keep only one of them"
                                    ),
                                    None,
                                );
                            }
                            this.dynamic(name, member)
                        }
                        None => this.node(member, depth + 1),
                    });
                    let output = dynamic_name(name).unwrap_or(name);
                    out.push((output.to_owned(), template));
                }
                if out.iter().all(|(_, t)| t.is_static()) && members.keys().all(|k| dynamic_name(k).is_none()) {
                    Template::Static(value.clone())
                } else {
                    Template::Object(out)
                }
            }
            Value::Array(items) => {
                let out: Vec<Template> = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| self.at(&i.to_string(), |this| this.node(item, depth + 1)))
                    .collect();
                if out.iter().all(Template::is_static) {
                    Template::Static(value.clone())
                } else {
                    Template::Array(out)
                }
            }
            other => Template::Static(other.clone()),
        }
    }

    /// The value of a `"name.$"` member.
    fn dynamic(&mut self, name: &str, value: &Value) -> Template {
        let Some(text) = value.as_str() else {
            self.error(
                format!(
                    "the value of '{name}' must be a string holding a path (such as \"$.id\") or \
                     an intrinsic function (such as \"States.Format('{{}}', $.id)\"), but it is \
                     {}; to give a fixed value, drop the '.$' from the field's name",
                    kind(value)
                ),
                None,
            );
            return Template::Static(Value::Null);
        };
        if text.starts_with('$') {
            match Path::parse(text) {
                Ok(path) => Template::Path(path),
                Err(e) => {
                    self.error(
                        format!("the value of '{name}' is not a valid path: {e}"),
                        e.offset(),
                    );
                    Template::Static(Value::Null)
                }
            }
        } else if text.starts_with("States.") || intrinsic::looks_like_call(text) {
            match intrinsic::parse(text) {
                Ok(call) => Template::Call(call),
                Err(e) => {
                    self.error(
                        format!("the value of '{name}' is not a valid intrinsic function: {e}"),
                        Some(e.offset),
                    );
                    Template::Static(Value::Null)
                }
            }
        } else {
            self.error(
                format!(
                    "the value of '{name}' must be a path starting with '$' or an intrinsic \
                     function like States.Format(...), but it is \"{text}\"; to give a fixed \
                     string, drop the '.$' from the field's name"
                ),
                None,
            );
            Template::Static(Value::Null)
        }
    }
}

/// "a number", "an object"...: the kind of a JSON value, for messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

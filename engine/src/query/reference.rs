//! Reference paths: paths that name exactly one place in a JSON value, so
//! that a value can be read from it or written into it. `ResultPath` is the
//! reason this type exists: it writes a state's result into its input.
//!
//! AWS: "a reference path is a path whose syntax is limited in such a way that
//! it can identify only a single node in a JSON structure". Only `.name`,
//! `['name']` and `[index]` steps are accepted, rooted at `$`: no `$$`, no
//! variables, no wildcard, slice, union, filter or `..`. Names and indexes are
//! spelled exactly as in [`crate::query::Path`], whose parser this module
//! shares.
//!
//! Read-only fields that AWS also calls reference paths (`ItemsPath`,
//! `SecondsPath`, Choice `Variable`...) may start with `$$` or a variable on
//! AWS; they are better served by a [`crate::query::Path`] checked with
//! [`crate::query::Path::is_definite`].

use std::fmt;

use serde_json::{Map, Value};

use super::path::{self, PathError, Segment};

/// A parsed reference path such as `$.result` or `$.a['b c'][0]`.
#[derive(Clone, PartialEq, Eq)]
pub struct ReferencePath {
    /// The text as written in the definition, for messages.
    source: String,
    /// The steps from the root; empty for `$`.
    segments: Vec<Segment>,
}

/// Why a value could not be written at a reference path. The target is left
/// unchanged. The message follows the cause AWS gives for the
/// `States.Runtime` error, with the reason added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Unable to apply ReferencePath {path} to input {input}: {reason}")]
pub struct SetError {
    /// The reference path as written.
    pub path: String,
    /// The target value, serialized as JSON.
    pub input: String,
    /// What was in the way, e.g. "$.a is a string, not an object, so it
    /// cannot hold the field 'b'".
    pub reason: String,
}

impl ReferencePath {
    /// Parses a reference path.
    pub fn parse(source: &str) -> Result<ReferencePath, PathError> {
        let mut chars = source.chars();
        match chars.next() {
            None => return Err(PathError::Empty),
            Some('$') => {}
            Some(found) => return Err(PathError::MissingRoot { found }),
        }
        match chars.next() {
            Some('$') => {
                return Err(PathError::ReferenceRoot {
                    what: "the context object '$$'",
                });
            }
            Some(c) if c.is_alphanumeric() || c == '_' => {
                return Err(PathError::ReferenceRoot {
                    what: "a variable ('$name')",
                });
            }
            _ => {}
        }
        let steps = path::parse_steps(source, 1)?;
        let mut segments = Vec::with_capacity(steps.len());
        for step in steps {
            if !step.is_definite() {
                return Err(PathError::NotReference {
                    offset: step.offset,
                    what: step.describe(),
                });
            }
            segments.extend(step.into_segment());
        }
        Ok(ReferencePath {
            source: source.to_owned(),
            segments,
        })
    }

    /// The path as written in the definition.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The steps from the root; empty for `$`.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The value at this path inside `value`, if there is one.
    pub fn get<'a>(&self, value: &'a Value) -> Option<&'a Value> {
        path::lookup(&self.segments, value)
    }

    /// Writes `value` at this path inside `target`, as `ResultPath` does:
    /// `$` replaces the whole target; missing objects on the way are created
    /// (`$.a.b` on `{}` gives `{"a": {"b": value}}`); an existing member is
    /// replaced in place.
    ///
    /// Fails, leaving `target` unchanged, when a value on the way is not an
    /// object (for a name) or not an array (for an index), or when an index is
    /// past the end of its array: arrays are never created or extended.
    pub fn set(&self, target: &mut Value, value: Value) -> Result<(), SetError> {
        // Check first, so that a failure never leaves half-created parents.
        if let Err(reason) = self.check_settable(target) {
            return Err(self.error(target, reason));
        }
        let Some((last, parents)) = self.segments.split_last() else {
            *target = value;
            return Ok(());
        };
        let mut current = target;
        for segment in parents {
            current = match (segment, current) {
                (Segment::Name(name), Value::Object(members)) => members
                    .entry(name.clone())
                    .or_insert_with(|| Value::Object(Map::new())),
                (Segment::Index(index), Value::Array(items)) => match items.get_mut(*index) {
                    Some(item) => item,
                    None => return Err(self.unreachable_error()),
                },
                _ => return Err(self.unreachable_error()),
            };
        }
        match (last, current) {
            (Segment::Name(name), Value::Object(members)) => {
                members.insert(name.clone(), value);
            }
            (Segment::Index(index), Value::Array(items)) => match items.get_mut(*index) {
                Some(item) => *item = value,
                None => return Err(self.unreachable_error()),
            },
            _ => return Err(self.unreachable_error()),
        }
        Ok(())
    }

    /// Walks the path without writing; explains the first obstacle.
    fn check_settable(&self, target: &Value) -> Result<(), String> {
        // `None` once the walk has gone past the existing values: from there
        // on, `set` creates empty objects.
        let mut current = Some(target);
        for (i, segment) in self.segments.iter().enumerate() {
            let here = || path::render_segments(&self.segments[..i]);
            current = match (segment, current) {
                (Segment::Name(name), Some(Value::Object(members))) => members.get(name),
                (Segment::Name(_), None) => None,
                (Segment::Name(name), Some(other)) => {
                    return Err(format!(
                        "{} is {}, not an object, so it cannot hold the field '{name}'",
                        here(),
                        kind(other)
                    ));
                }
                (Segment::Index(index), Some(Value::Array(items))) => match items.get(*index) {
                    Some(item) => Some(item),
                    None => {
                        return Err(format!(
                            "{} has {} element{}, so there is no index {index} to write \
                             (arrays are not extended)",
                            here(),
                            items.len(),
                            if items.len() == 1 { "" } else { "s" }
                        ));
                    }
                },
                (Segment::Index(index), None) => {
                    return Err(format!(
                        "{} does not exist, and an array cannot be created to write index {index}",
                        here()
                    ));
                }
                (Segment::Index(index), Some(other)) => {
                    return Err(format!(
                        "{} is {}, not an array, so it has no index {index}",
                        here(),
                        kind(other)
                    ));
                }
            };
        }
        Ok(())
    }

    /// For the write pass meeting what the check pass ruled out: cannot
    /// happen, but is an error rather than a panic.
    fn unreachable_error(&self) -> SetError {
        SetError {
            path: self.source.clone(),
            input: String::new(),
            reason: "internal error: the target changed shape while being written".to_owned(),
        }
    }

    fn error(&self, target: &Value, reason: String) -> SetError {
        SetError {
            path: self.source.clone(),
            input: target.to_string(),
            reason,
        }
    }
}

/// "a string", "an array"...: the kind of a JSON value, for messages.
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

impl fmt::Display for ReferencePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl fmt::Debug for ReferencePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReferencePath({:?})", self.source)
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(source: &str) -> ReferencePath {
        match ReferencePath::parse(source) {
            Ok(path) => path,
            Err(e) => panic!("{source:?} should parse: {e}"),
        }
    }

    fn set(path: &str, target: Value, value: Value) -> Result<Value, SetError> {
        let mut target = target;
        parse(path).set(&mut target, value).map(|()| target)
    }

    #[test]
    fn reference_paths_parse() {
        for source in [
            "$",
            "$.foo",
            "$.a['b c'][0]",
            "$.detail-type",
            "$[2].x",
            "$.abc.['def ghi']",
        ] {
            assert_eq!(parse(source).as_str(), source);
        }
        assert_eq!(
            parse("$.a['b c'][0]").segments(),
            &[
                Segment::Name("a".to_owned()),
                Segment::Name("b c".to_owned()),
                Segment::Index(0)
            ]
        );
        assert!(parse("$").segments().is_empty());
    }

    #[test]
    fn only_single_node_paths_rooted_at_the_input_are_reference_paths() {
        let refused = |source: &str| match ReferencePath::parse(source) {
            Ok(path) => panic!("{source:?} is not a reference path, but gave {path:?}"),
            Err(e) => e,
        };
        assert!(matches!(
            refused("$$.Execution"),
            PathError::ReferenceRoot { .. }
        ));
        assert!(matches!(refused("$$"), PathError::ReferenceRoot { .. }));
        assert!(matches!(
            refused("$myVar.x"),
            PathError::ReferenceRoot { .. }
        ));
        assert_eq!(
            refused("$.a[*]"),
            PathError::NotReference {
                offset: 3,
                what: "the wildcard '*'"
            }
        );
        assert!(matches!(
            refused("$.a.*"),
            PathError::NotReference { offset: 3, .. }
        ));
        assert!(matches!(
            refused("$..a"),
            PathError::NotReference { offset: 1, .. }
        ));
        assert!(matches!(
            refused("$.a[1:2]"),
            PathError::NotReference { offset: 3, .. }
        ));
        assert!(matches!(
            refused("$.a[?(@.x)]"),
            PathError::NotReference { offset: 3, .. }
        ));
        assert!(matches!(
            refused("$['a','b']"),
            PathError::NotReference { offset: 1, .. }
        ));
        assert!(matches!(
            refused("$.a[-1]"),
            PathError::NegativeIndex { .. }
        ));
        assert_eq!(refused(""), PathError::Empty);
        assert_eq!(refused("result"), PathError::MissingRoot { found: 'r' });
        let message = refused("$.items[*].id").to_string();
        assert!(
            message.contains("not allowed in a reference path"),
            "{message}"
        );
        assert!(message.contains(".name, ['name'] and [index]"), "{message}");
    }

    #[test]
    fn get_follows_the_aws_examples() {
        let input = json!({"foo": 123, "bar": ["a", "b", "c"], "car": {"cdr": true}});
        assert_eq!(parse("$.foo").get(&input), Some(&json!(123)));
        assert_eq!(parse("$.bar").get(&input), Some(&json!(["a", "b", "c"])));
        assert_eq!(parse("$.car.cdr").get(&input), Some(&json!(true)));
        assert_eq!(parse("$.bar[1]").get(&input), Some(&json!("b")));
        assert_eq!(parse("$").get(&input), Some(&input));
        assert_eq!(parse("$.nope").get(&input), None);
        assert_eq!(parse("$.bar[9]").get(&input), None);
    }

    #[test]
    fn set_at_the_root_replaces_the_target() {
        assert_eq!(
            set("$", json!({"a": 1}), json!("result")),
            Ok(json!("result"))
        );
        assert_eq!(
            set("$", json!("text"), json!({"b": 2})),
            Ok(json!({"b": 2}))
        );
    }

    #[test]
    fn set_creates_missing_parents() {
        // AWS guide: ResultPath "$.taskresult" adds the result to the input.
        assert_eq!(
            set("$.taskresult", json!({"comment": "x"}), json!("Hello")).map(|v| v.to_string()),
            Ok(r#"{"comment":"x","taskresult":"Hello"}"#.to_owned())
        );
        assert_eq!(
            set("$.a.b.c", json!({}), json!(1)),
            Ok(json!({"a": {"b": {"c": 1}}}))
        );
        assert_eq!(
            set("$.a['b c'].d", json!({"a": {"x": 0}}), json!(true)),
            Ok(json!({"a": {"x": 0, "b c": {"d": true}}}))
        );
    }

    #[test]
    fn set_replaces_in_place_keeping_member_order() {
        let result = set("$.b", json!({"a": 1, "b": 2, "c": 3}), json!({"new": true}));
        assert_eq!(
            result.map(|v| v.to_string()),
            Ok(r#"{"a":1,"b":{"new":true},"c":3}"#.to_owned())
        );
        assert_eq!(
            set("$.a.b", json!({"a": {"b": [1], "k": 0}}), json!(null)),
            Ok(json!({"a": {"b": null, "k": 0}}))
        );
    }

    #[test]
    fn set_replaces_an_existing_array_element() {
        // The AWS workaround: create an array, then fill it with ResultPath "$.array[0]".
        assert_eq!(
            set("$.array[0]", json!({"array": [0, 0]}), json!("person")),
            Ok(json!({"array": ["person", 0]}))
        );
        assert_eq!(
            set(
                "$.list[1].name",
                json!({"list": [{}, {"name": "old"}]}),
                json!("new")
            ),
            Ok(json!({"list": [{}, {"name": "new"}]}))
        );
        assert_eq!(
            set("$.list[0].a.b", json!({"list": [{}]}), json!(1)),
            Ok(json!({"list": [{"a": {"b": 1}}]}))
        );
    }

    #[test]
    fn set_into_a_non_object_fails_like_aws() {
        // The AWS States.Runtime cause: the Lambda payload was a string.
        let target = json!("{\"min_size\":10000}");
        let mut written = target.clone();
        let error = parse("$.partitioned").set(&mut written, json!(1));
        assert_eq!(written, target, "the target is unchanged");
        let error = match error {
            Ok(()) => panic!("setting a field of a string must fail"),
            Err(e) => e,
        };
        assert_eq!(error.path, "$.partitioned");
        assert_eq!(error.input, target.to_string());
        let message = error.to_string();
        assert!(
            message.starts_with(
                r#"Unable to apply ReferencePath $.partitioned to input "{\"min_size\":10000}""#
            ),
            "{message}"
        );
        assert!(
            message.contains("$ is a string, not an object"),
            "{message}"
        );

        let error = set("$.a.b.c", json!({"a": {"b": 5}}), json!(1));
        let reason = error.map_err(|e| e.reason);
        assert_eq!(
            reason,
            Err("$.a.b is a number, not an object, so it cannot hold the field 'c'".to_owned())
        );
        assert!(set("$.a.b", json!({"a": null}), json!(1)).is_err());
        assert!(set("$.a.b", json!({"a": [1]}), json!(1)).is_err());
        assert!(set("$.a", json!([1]), json!(1)).is_err());
    }

    #[test]
    fn set_never_creates_or_extends_arrays() {
        let reason = |path: &str, target: Value| set(path, target, json!(1)).map_err(|e| e.reason);
        assert_eq!(
            reason("$.array[2]", json!({"array": [0, 0]})),
            Err(
                "$.array has 2 elements, so there is no index 2 to write (arrays are not extended)"
                    .to_owned()
            )
        );
        assert_eq!(
            reason("$.o[0]", json!({"o": {"0": 1}})),
            Err("$.o is an object, not an array, so it has no index 0".to_owned())
        );
        // No half-created parents on failure.
        let mut target = json!({"keep": 1});
        assert!(parse("$.x.y[0]").set(&mut target, json!(1)).is_err());
        assert_eq!(target, json!({"keep": 1}));
        assert_eq!(
            reason("$.x.y[0]", json!({})),
            Err("$.x.y does not exist, and an array cannot be created to write index 0".to_owned())
        );
    }

    #[test]
    fn reference_paths_can_be_shared_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<ReferencePath>();
        assert_send_sync::<SetError>();
    }
}

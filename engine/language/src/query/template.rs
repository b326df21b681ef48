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
    pub kind: TemplateErrorKind,
}

/// What kind of problem a [`TemplateError`] is, so callers can name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateErrorKind {
    /// A `".$"` value that is not a valid path (or not a path or call at all).
    Path,
    /// A `".$"` value that is not a valid intrinsic call.
    Intrinsic,
    /// `"x"` and `"x.$"` side by side.
    Conflict,
    /// The template is nested too deep.
    TooDeep,
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
    fn error(&mut self, kind: TemplateErrorKind, message: String, offset: Option<usize>) {
        self.errors.push(TemplateError {
            pointer: self.pointer.clone(),
            message,
            offset,
            kind,
        });
    }

    /// Runs `f` with the pointer extended by `token`.
    fn at<T>(&mut self, token: &str, f: impl FnOnce(&mut Self) -> T) -> T {
        let len = self.pointer.len();
        crate::pointer::push_token(&mut self.pointer, token);
        let result = f(self);
        self.pointer.truncate(len);
        result
    }

    fn node(&mut self, value: &Value, depth: usize) -> Template {
        if depth > MAX_DEPTH {
            self.error(
                TemplateErrorKind::TooDeep,
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
                                    TemplateErrorKind::Conflict,
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
                if out.iter().all(|(_, t)| t.is_static())
                    && members.keys().all(|k| dynamic_name(k).is_none())
                {
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
                TemplateErrorKind::Path,
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
                        TemplateErrorKind::Path,
                        format!("the value of '{name}' is not a valid path: {e}"),
                        e.offset(),
                    );
                    Template::Static(Value::Null)
                }
            }
        } else if text.starts_with("States.") {
            // Wider than `intrinsic::looks_like_call`, so that "States.Format"
            // without its parentheses gets the intrinsic parser's message.
            match intrinsic::parse(text) {
                Ok(call) => Template::Call(call),
                Err(e) => {
                    self.error(
                        TemplateErrorKind::Intrinsic,
                        format!("the value of '{name}' is not a valid intrinsic function: {e}"),
                        Some(e.offset),
                    );
                    Template::Static(Value::Null)
                }
            }
        } else {
            self.error(
                TemplateErrorKind::Path,
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

/// Evaluation, at run time, against the state's data.
impl Template {
    /// Evaluates the template: static parts are copied, each `"name.$"` member
    /// gets the value its path selects or its intrinsic call returns.
    ///
    /// A path that selects nothing fails with `States.Runtime`, in AWS's words:
    /// `The JSONPath '$.x' specified for the field 'name.$' could not be found
    /// in the input '{"a":1}'`; a failing intrinsic function with
    /// `States.Runtime` too, as AWS raises it: `The function 'States.X(...)'
    /// had the following error: ...`.
    pub fn evaluate(
        &self,
        env: &mut super::eval::Env<'_>,
    ) -> Result<Value, super::eval::EvalError> {
        super::intrinsic_eval::evaluate_template(self, env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::{Arg, Intrinsic, PathRoot};
    use serde_json::json;

    fn compile(value: Value) -> Template {
        match Template::compile(&value) {
            Ok(template) => template,
            Err(errors) => panic!("{value} should compile: {errors:?}"),
        }
    }

    fn errors(value: Value) -> Vec<TemplateError> {
        match Template::compile(&value) {
            Ok(template) => panic!("{value} should not compile, but gave {template:?}"),
            Err(errors) => errors,
        }
    }

    fn path(source: &str) -> Template {
        match Path::parse(source) {
            Ok(path) => Template::Path(path),
            Err(e) => panic!("{source:?} should parse: {e}"),
        }
    }

    #[test]
    fn templates_without_dynamic_fields_are_static() {
        for value in [
            json!({"a": 1, "b": {"c": [1, 2, {"d": null}]}}),
            json!([1, "$.not-a-path", {"x": "States.Format('{}', $.a)"}]),
            json!("$.a"),
            json!(null),
            json!({}),
        ] {
            assert_eq!(compile(value.clone()), Template::Static(value));
        }
    }

    #[test]
    fn the_aws_parameters_example_compiles() {
        // From the AWS guide, "InputPath and Parameters".
        let template = compile(json!({
            "comment": "Selecting what I care about.",
            "MyDetails": {
                "size.$": "$.product.details.size",
                "exists.$": "$.product.availability",
                "StaticValue": "foo"
            }
        }));
        assert_eq!(
            template,
            Template::Object(vec![
                (
                    "comment".to_owned(),
                    Template::Static(json!("Selecting what I care about."))
                ),
                (
                    "MyDetails".to_owned(),
                    Template::Object(vec![
                        ("size".to_owned(), path("$.product.details.size")),
                        ("exists".to_owned(), path("$.product.availability")),
                        ("StaticValue".to_owned(), Template::Static(json!("foo"))),
                    ])
                ),
            ])
        );
    }

    #[test]
    fn paths_and_calls_of_every_root_compile() {
        let template = compile(json!({
            "input.$": "$",
            "context.$": "$$.Execution.Input",
            "variable.$": "$myVar.field[2]",
            "many.$": "$.items[*].id",
            "KeyId.$": "States.Array($.Id)",
            "greeting.$": "States.Format('Hello {}, welcome to {}!', $name, $place)",
            "uuid.$": "States.UUID()",
        }));
        let Template::Object(fields) = template else {
            panic!("an object");
        };
        let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "input", "context", "variable", "many", "KeyId", "greeting", "uuid"
            ]
        );
        assert_eq!(fields[0].1, path("$"));
        assert!(matches!(&fields[1].1, Template::Path(p) if p.root() == &PathRoot::Context));
        assert!(
            matches!(&fields[2].1, Template::Path(p) if p.root() == &PathRoot::Variable("myVar".to_owned()))
        );
        assert!(matches!(&fields[3].1, Template::Path(p) if !p.is_definite()));
        assert!(
            matches!(&fields[4].1, Template::Call(c) if c.function == Intrinsic::Array
            && matches!(c.args.as_slice(), [Arg::Path(_)]))
        );
        assert!(matches!(&fields[5].1, Template::Call(c) if c.function == Intrinsic::Format));
        assert!(matches!(&fields[6].1, Template::Call(c) if c.function == Intrinsic::Uuid));
    }

    #[test]
    fn dynamic_fields_inside_arrays_compile() {
        let template = compile(json!({"list": [{"a.$": "$.x"}, 1, [2, {"b.$": "$$.y"}]]}));
        assert_eq!(
            template,
            Template::Object(vec![(
                "list".to_owned(),
                Template::Array(vec![
                    Template::Object(vec![("a".to_owned(), path("$.x"))]),
                    Template::Static(json!(1)),
                    Template::Array(vec![
                        Template::Static(json!(2)),
                        Template::Object(vec![("b".to_owned(), path("$$.y"))]),
                    ]),
                ])
            )])
        );
    }

    #[test]
    fn every_bad_field_is_reported() {
        let found = errors(json!({
            "number.$": 5,
            "array.$": ["$.a"],
            "text.$": "hello",
            "badPath.$": "$.a[-1]",
            "badCall.$": "States.ArrayRange(1, 9)",
            "unknown.$": "States.Foo()",
            "nested": {"deep": [{"x.$": "$.a b"}]},
            "fine.$": "$.ok",
        }));
        let pointers: Vec<&str> = found.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/number.$",
                "/array.$",
                "/text.$",
                "/badPath.$",
                "/badCall.$",
                "/unknown.$",
                "/nested/deep/0/x.$"
            ]
        );
        assert_eq!(
            found[0].message,
            "the value of 'number.$' must be a string holding a path (such as \"$.id\") or an \
             intrinsic function (such as \"States.Format('{}', $.id)\"), but it is a number; to \
             give a fixed value, drop the '.$' from the field's name"
        );
        assert!(found[1].message.contains("but it is an array"));
        assert!(
            found[2].message.starts_with(
                "the value of 'text.$' must be a path starting with '$' or an intrinsic function \
                 like States.Format(...)"
            ),
            "{}",
            found[2].message
        );
        assert_eq!(found[2].offset, None);
        assert!(found[3].message.contains("negative index -1 at offset 4"));
        assert_eq!(found[3].offset, Some(4));
        assert!(
            found[4].message.contains(
                "States.ArrayRange takes 3 arguments (start, end, step), but 2 were given"
            )
        );
        assert_eq!(found[4].offset, Some(0));
        assert!(
            found[5]
                .message
                .contains("unknown intrinsic function 'States.Foo'")
        );
        assert_eq!(found[6].offset, Some(3));
        assert_eq!(
            found[6].to_string(),
            format!("/nested/deep/0/x.$: {}", found[6].message)
        );
    }

    #[test]
    fn colliding_output_names_are_refused() {
        let found = errors(json!({"a": 1, "a.$": "$.a"}));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].pointer, "/a.$");
        assert_eq!(
            found[0].message,
            "the fields 'a.$' and 'a' would both produce the field 'a': keep only one of them"
        );
        // Order in the definition does not matter.
        assert_eq!(errors(json!({"b.$": "$.b", "b": 2}))[0].pointer, "/b.$");
    }

    #[test]
    fn pointers_escape_tilde_and_slash() {
        let found = errors(json!({"a/b": {"c~d.$": 1}, "list": [0, {"e.$": 2}]}));
        let pointers: Vec<&str> = found.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(pointers, ["/a~1b/c~0d.$", "/list/1/e.$"]);
    }

    #[test]
    fn a_field_named_only_dot_dollar_is_dynamic() {
        assert_eq!(
            compile(json!({".$": "$.a"})),
            Template::Object(vec![(String::new(), path("$.a"))])
        );
    }

    #[test]
    fn very_deep_templates_are_refused_without_exhausting_the_stack() {
        let mut value = json!({"x.$": "$.a"});
        for _ in 0..MAX_DEPTH + 10 {
            value = json!([value]);
        }
        let found = errors(value);
        assert_eq!(found.len(), 1);
        assert!(found[0].message.contains("nested more than 512 levels"));
    }

    #[test]
    fn templates_can_be_shared_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Template>();
        assert_send_sync::<TemplateError>();
    }

    /// Evaluation of compiled templates.
    mod evaluate {
        use super::*;
        use crate::query::eval::{Env, EvalError, SplitMix64};
        use serde_json::Map;

        fn evaluate_with(
            template: Value,
            input: &Value,
            context: &Value,
            variables: &Map<String, Value>,
        ) -> Result<Value, EvalError> {
            let template = compile(template);
            let mut random = SplitMix64(3);
            let mut env = Env {
                input,
                context,
                variables,
                random: &mut random,
            };
            template.evaluate(&mut env)
        }

        fn evaluate(template: Value, input: Value) -> Result<Value, EvalError> {
            evaluate_with(template, &input, &json!({}), &Map::new())
        }

        #[test]
        fn a_template_that_copies_more_than_the_payload_limit_fails() {
            let input = json!({"big": "x".repeat(100_000)});
            let mut fields = Map::new();
            for i in 0..1000 {
                fields.insert(format!("f{i}.$"), json!("$.big"));
            }
            let e = evaluate(Value::Object(fields), input.clone()).unwrap_err();
            assert_eq!(e.error, "States.DataLimitExceeded", "{e}");
            assert!(e.cause.contains("262144"), "{e}");
            let mut calls = Map::new();
            for i in 0..1000 {
                calls.insert(format!("f{i}.$"), json!("States.Format('{}', $.big)"));
            }
            let e = evaluate(Value::Object(calls), input.clone()).unwrap_err();
            assert_eq!(e.error, "States.DataLimitExceeded", "{e}");
            // Two copies fit.
            let two = evaluate(json!({"a.$": "$.big", "b.$": "$.big"}), input);
            assert!(two.is_ok());
        }

        #[test]
        fn the_aws_parameters_example() {
            // From the AWS guide, "InputPath and Parameters".
            let input = json!({
                "comment": "Example for Parameters.",
                "product": {
                    "details": {"color": "blue", "size": "small", "material": "cotton"},
                    "availability": "in stock",
                    "sku": "2317",
                    "cost": "$23"
                }
            });
            let output = evaluate(
                json!({
                    "comment": "Selecting what I care about.",
                    "MyDetails": {
                        "size.$": "$.product.details.size",
                        "exists.$": "$.product.availability",
                        "StaticValue": "foo"
                    }
                }),
                input,
            );
            assert_eq!(
                output,
                Ok(json!({
                    "comment": "Selecting what I care about.",
                    "MyDetails": {"size": "small", "exists": "in stock", "StaticValue": "foo"}
                }))
            );
        }

        #[test]
        fn every_root_and_intrinsics_at_any_depth() {
            let mut variables = Map::new();
            variables.insert("name".to_owned(), json!("John"));
            variables.insert("place".to_owned(), json!("LocalStack"));
            let output = evaluate_with(
                json!({
                    "static": {"keep": ["$.not-a-path", 1]},
                    "input.$": "$",
                    "context.$": "$$.Execution.Name",
                    "greeting.$": "States.Format('Hello {}, welcome to {}!', $name, $place)",
                    "list": [1, {"deep.$": "States.ArrayLength($.items)"}, [{"x.$": "$.items[1]"}]],
                    "many.$": "$.items[*]",
                    "nothing.$": "$.items[?(@ > 10)]",
                    "null.$": "$.none",
                }),
                &json!({"items": [1, 2, 3], "none": null}),
                &json!({"Execution": {"Name": "run-1"}}),
                &variables,
            )
            .unwrap();
            assert_eq!(
                output,
                json!({
                    "static": {"keep": ["$.not-a-path", 1]},
                    "input": {"items": [1, 2, 3], "none": null},
                    "context": "run-1",
                    "greeting": "Hello John, welcome to LocalStack!",
                    "list": [1, {"deep": 3}, [{"x": 2}]],
                    "many": [1, 2, 3],
                    "nothing": [],
                    "null": null,
                })
            );
            // The definition's member order is kept.
            let keys: Vec<&String> = output.as_object().unwrap().keys().collect();
            assert_eq!(
                keys,
                [
                    "static", "input", "context", "greeting", "list", "many", "nothing", "null"
                ]
            );
        }

        #[test]
        fn a_path_that_selects_nothing_fails_with_aws_cause() {
            // The cause AWS gave in the recorded conformance case
            // test_invalid_jsonpath[INVALID_JSONPATH_IN_STRING_EXPR_JSONPATH], without
            // the interpreter's "An error occurred while executing the state ..." prefix.
            let e = evaluate(
                json!({"value.$": "$.no_such_jsonpath"}),
                json!({"int-literal": 0}),
            )
            .unwrap_err();
            assert_eq!(e.error, "States.Runtime");
            assert_eq!(
                e.cause,
                "The JSONPath '$.no_such_jsonpath' specified for the field 'value.$' could not \
                 be found in the input '{\"int-literal\":0}'"
            );
            // ...and [INVALID_JSONPATH_IN_STRING_EXPR_CONTEXTPATH]: AWS quotes the input.
            let e = evaluate(
                json!({"value.$": "$$.Execution.Input.no_such_jsonpath"}),
                json!({"int-literal": 0}),
            )
            .unwrap_err();
            assert_eq!(
                e.cause,
                "The JSONPath '$$.Execution.Input.no_such_jsonpath' specified for the field \
                 'value.$' could not be found in the input '{\"int-literal\":0}'"
            );
            // Nested fields name the innermost field.
            let e = evaluate(
                json!({"a": [{"b": {"FieldName.$": "$.no_such_jsonpath"}}]}),
                json!({"a": 1}),
            )
            .unwrap_err();
            assert_eq!(
                e.cause,
                "The JSONPath '$.no_such_jsonpath' specified for the field 'FieldName.$' could \
                 not be found in the input '{\"a\":1}'"
            );
            // A path inside a call fails the call, in AWS's words.
            let e = evaluate(json!({"f.$": "States.Array($.x)"}), json!({})).unwrap_err();
            assert_eq!(e.error, "States.Runtime");
            assert_eq!(
                e.cause,
                "The function 'States.Array($.x)' had the following error: The JsonPath \
                 argument for the field '$.x' could not be found in the input '{}'"
            );
            let e = evaluate(json!({"v.$": "$undefinedVariable"}), json!({})).unwrap_err();
            assert!(
                e.cause
                    .starts_with("The JSONPath '$undefinedVariable' specified"),
                "{e}"
            );
        }

        #[test]
        fn a_failing_intrinsic_names_its_call() {
            let e = evaluate(
                json!({"outer": {"item.$": "States.ArrayGetItem($.a, 3)"}}),
                json!({"a": [1]}),
            )
            .unwrap_err();
            assert_eq!(e.error, "States.Runtime");
            assert!(
                e.cause.starts_with(
                    "The function 'States.ArrayGetItem($.a, 3)' had the following error: "
                ),
                "{e}"
            );
        }

        #[test]
        fn the_recorded_conformance_templates() {
            // assign/BASE_REFERENCE_IN_INTRINSIC_FUNCTION, state State1.
            let variables: Map<String, Value> = serde_json::from_value(json!({
                "inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9],
                "duplicateArray": [1, 2, 2, 3, 3, 4],
                "rawString": "Hello World",
                "encodedString": "SGVsbG8gV29ybGQ=",
                "inputString": "Hash this string",
                "json1": {"a": 1, "b": 2},
                "json2": {"c": 3, "d": 4},
                "jsonString": "{\"key\":\"value\"}",
                "jsonObject": {"test": "object"},
                "value1": 5,
                "value2": 3,
                "csvString": "a,b,c,d,e",
                "name": "John",
                "place": "LocalStack",
                "additionalInfo": {"age": 30, "role": "developer"}
            }))
            .unwrap();
            let mut output = evaluate_with(
                json!({
                    "encodingOps": {
                        "encoded.$": "States.Base64Encode($rawString)",
                        "decoded.$": "States.Base64Decode($encodedString)"
                    },
                    "hashOps": {"hashValue.$": "States.Hash($inputString, 'SHA-256')"},
                    "jsonOps": {
                        "mergedJson.$": "States.JsonMerge($json1, $json2, false)",
                        "parsedJson.$": "States.StringToJson($jsonString)",
                        "stringifiedJson.$": "States.JsonToString($jsonObject)"
                    },
                    "mathOps": {"sum.$": "States.MathAdd($value1, $value2)"},
                    "stringOps": {
                        "splitString.$": "States.StringSplit($csvString, ',')",
                        "formattedString.$":
                            "States.Format('Hello {}, welcome to {}!', $name, $place)"
                    },
                    "uuidOp": {"uniqueId.$": "States.UUID()"}
                }),
                &json!({}),
                &json!({}),
                &variables,
            )
            .unwrap();
            let uuid = output["uuidOp"]["uniqueId"].take();
            assert_eq!(uuid.as_str().map(str::len), Some(36));
            output["uuidOp"]["uniqueId"] = json!("<uuid:1>");
            assert_eq!(
                output,
                json!({
                    "encodingOps": {"decoded": "Hello World", "encoded": "SGVsbG8gV29ybGQ="},
                    "hashOps": {
                        "hashValue":
                            "1cac63f39fd68d8c531f27b807610fb3d50f0fc3f186995767fb6316e7200a3e"
                    },
                    "jsonOps": {
                        "parsedJson": {"key": "value"},
                        "mergedJson": {"a": 1, "b": 2, "c": 3, "d": 4},
                        "stringifiedJson": "{\"test\":\"object\"}"
                    },
                    "mathOps": {"sum": 8},
                    "stringOps": {
                        "formattedString": "Hello John, welcome to LocalStack!",
                        "splitString": ["a", "b", "c", "d", "e"]
                    },
                    "uuidOp": {"uniqueId": "<uuid:1>"}
                })
            );

            // assign/BASE_ASSIGN_FROM_INTRINSIC_FUNCTION: the Assign of State0,
            // evaluated against the state's result.
            let result = json!({
                "inputArray": [1, 2, 3, 4, 5, 6],
                "duplicateArray": [1, 2, 2, 3, 3, 4],
                "rawString": "Hello World",
                "encodedString": "SGVsbG8gV29ybGQ=",
                "inputString": "Hash this string",
                "json1": {"a": 1, "b": 2},
                "json2": {"c": 3, "d": 4},
                "jsonString": "{\"key\":\"value\"}",
                "jsonObject": {"test": "object"},
                "value1": 5,
                "value2": 3,
                "csvString": "a,b,c,d,e",
                "name": "John",
                "place": "LocalStack",
                "additionalInfo": {"age": 30, "role": "developer"}
            });
            let mut assigned = evaluate(
                json!({
                    "arrayOps": {
                        "simpleArray.$": "States.Array('a', 'b', 'c')",
                        "partitionedArray.$": "States.ArrayPartition($.inputArray, 2)",
                        "containsElement.$": "States.ArrayContains($.inputArray, 5)",
                        "numberRange.$": "States.ArrayRange(1, 10, 2)",
                        "thirdElement.$": "States.ArrayGetItem($.inputArray, 2)",
                        "arraySize.$": "States.ArrayLength($.inputArray)",
                        "uniqueValues.$": "States.ArrayUnique($.duplicateArray)"
                    },
                    "encodingOps": {
                        "encoded.$": "States.Base64Encode($.rawString)",
                        "decoded.$": "States.Base64Decode($.encodedString)"
                    },
                    "hashOps": {"hashValue.$": "States.Hash($.inputString, 'SHA-256')"},
                    "jsonOps": {
                        "mergedJson.$": "States.JsonMerge($.json1, $.json2, false)",
                        "parsedJson.$": "States.StringToJson($.jsonString)",
                        "stringifiedJson.$": "States.JsonToString($.jsonObject)"
                    },
                    "mathOps": {"sum.$": "States.MathAdd($.value1, $.value2)"},
                    "stringOps": {
                        "splitString.$": "States.StringSplit($.csvString, ',')",
                        "formattedString.$":
                            "States.Format('Hello {}, welcome to {}!', $.name, $.place)"
                    },
                    "uuidOp": {"uniqueId.$": "States.UUID()"}
                }),
                result,
            )
            .unwrap();
            assigned["uuidOp"]["uniqueId"] = json!("<uuid:1>");
            assert_eq!(
                assigned,
                json!({
                    "arrayOps": {
                        "uniqueValues": [1, 2, 3, 4],
                        "simpleArray": ["a", "b", "c"],
                        "thirdElement": 3,
                        "partitionedArray": [[1, 2], [3, 4], [5, 6]],
                        "arraySize": 6,
                        "containsElement": true,
                        "numberRange": [1, 3, 5, 7, 9]
                    },
                    "encodingOps": {"decoded": "Hello World", "encoded": "SGVsbG8gV29ybGQ="},
                    "hashOps": {
                        "hashValue":
                            "1cac63f39fd68d8c531f27b807610fb3d50f0fc3f186995767fb6316e7200a3e"
                    },
                    "jsonOps": {
                        "parsedJson": {"key": "value"},
                        "mergedJson": {"a": 1, "b": 2, "c": 3, "d": 4},
                        "stringifiedJson": "{\"test\":\"object\"}"
                    },
                    "mathOps": {"sum": 8},
                    "stringOps": {
                        "formattedString": "Hello John, welcome to LocalStack!",
                        "splitString": ["a", "b", "c", "d", "e"]
                    },
                    "uuidOp": {"uniqueId": "<uuid:1>"}
                })
            );

            // scenarios/test_map_state_legacy_reentrant, StartState.
            assert_eq!(
                evaluate(
                    json!({"Iterations": 3, "Values.$": "States.ArrayRange(0, 3, 1)"}),
                    json!({})
                ),
                Ok(json!({"Iterations": 3, "Values": [0, 1, 2, 3]}))
            );
            // ...and BeforeIteration.
            assert_eq!(
                evaluate(
                    json!({"Iterations.$": "States.MathAdd($.Iterations, -1)", "Values.$": "$.Values"}),
                    json!({"Iterations": 3, "Values": [0, 1, 2, 3]})
                ),
                Ok(json!({"Values": [0, 1, 2, 3], "Iterations": 2}))
            );
        }

        #[test]
        fn static_templates_and_randomness() {
            assert_eq!(
                evaluate(json!({"a": [1, {"b": null}]}), json!({})),
                Ok(json!({"a": [1, {"b": null}]}))
            );
            // The same Env randomness gives the same UUIDs, in order.
            let template = json!({"a.$": "States.UUID()", "b.$": "States.UUID()"});
            let first = evaluate(template.clone(), json!({})).unwrap();
            assert_eq!(evaluate(template, json!({})).unwrap(), first);
            assert_ne!(first["a"], first["b"]);
        }

        #[test]
        fn a_bare_path_template_selects_or_fails_without_a_field_name() {
            let template = path("$.a");
            let mut random = SplitMix64(0);
            let variables = Map::new();
            let input = json!({"a": 1});
            let mut env = Env {
                input: &input,
                context: &input,
                variables: &variables,
                random: &mut random,
            };
            assert_eq!(template.evaluate(&mut env), Ok(json!(1)));
            let e = path("$.b").evaluate(&mut env).unwrap_err();
            assert_eq!(
                e.cause,
                "The JSONPath '$.b' could not be found in the input '{\"a\":1}'"
            );
        }
    }
}

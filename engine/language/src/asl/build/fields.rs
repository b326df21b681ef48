//! Reading one field of a state into its compiled form: paths, templates,
//! JSONata, literal-or-path pairs, Assign. Each reader reports what is wrong
//! with the field and returns a placeholder, so the build goes on.

use serde_json::Value;

use super::Builder;
use crate::asl::diagnostic::Code;
use crate::asl::model::{Payload, QueryLanguage, Source};
use crate::asl::source::{Member, Node, NodeValue};
use crate::pointer::pointer_push;
use crate::query::intrinsic::{self, IntrinsicCall};
use crate::query::jsonata::{JsonataError, JsonataExpr, JsonataTemplate};
use crate::query::path::Path;
use crate::query::reference::ReferencePath;
use crate::query::template::{Template, TemplateErrorKind};

/// The object being read (a state, a rule, a catcher) and where it is.
#[derive(Debug, Clone)]
pub(super) struct Ctx<'d> {
    pub node: &'d Node,
    pub pointer: String,
    pub lang: QueryLanguage,
}

impl<'d> Ctx<'d> {
    pub fn member(&self, key: &str) -> Option<&'d Member> {
        self.node.member(key)
    }

    pub fn has(&self, key: &str) -> bool {
        self.node.member(key).is_some()
    }

    pub fn ptr(&self, key: &str) -> String {
        pointer_push(&self.pointer, key)
    }

    pub fn str(&self, key: &str) -> Option<&'d str> {
        self.member(key).and_then(|m| m.value.as_str())
    }

    pub fn bool(&self, key: &str) -> Option<bool> {
        match self.member(key).map(|m| &m.value.value) {
            Some(NodeValue::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    pub fn u64(&self, key: &str) -> Option<u64> {
        match self.member(key).map(|m| &m.value.value) {
            Some(NodeValue::Number(n)) => n.as_u64(),
            _ => None,
        }
    }

    pub fn f64(&self, key: &str) -> Option<f64> {
        match self.member(key).map(|m| &m.value.value) {
            Some(NodeValue::Number(n)) => n.as_f64(),
            _ => None,
        }
    }

    /// A view of a nested object field.
    pub fn child(&self, key: &str) -> Option<Ctx<'d>> {
        let member = self.member(key)?;
        matches!(member.value.value, NodeValue::Object(_)).then(|| Ctx {
            node: &member.value,
            pointer: self.ptr(key),
            lang: self.lang,
        })
    }
}

/// The longest variable name accepted in Assign.
const MAX_VARIABLE_NAME_LEN: usize = 80;

impl Builder<'_> {
    /// A JSONPath path field (InputPath, OutputPath, ItemsPath...): absent
    /// means `$`, `null` means "nothing" (`None`).
    pub(super) fn path_or_null(&mut self, cx: &Ctx<'_>, key: &str) -> Option<Path> {
        match cx.member(key).map(|m| &m.value.value) {
            None => Some(root_path()),
            Some(NodeValue::Null) => None,
            Some(NodeValue::String(s)) => self.path(s, &cx.ptr(key)),
            Some(_) => Some(root_path()),
        }
    }

    /// ResultPath: absent means `$`, `null` means "discard the result".
    pub(super) fn result_path(&mut self, cx: &Ctx<'_>, key: &str) -> Option<ReferencePath> {
        match cx.member(key).map(|m| &m.value.value) {
            Some(NodeValue::Null) => None,
            Some(NodeValue::String(s)) => match ReferencePath::parse(s) {
                Ok(path) => Some(path),
                Err(e) => {
                    let message = format!(
                        "{key} must be a reference path such as $.result or $.a.b[0] (only names and indexes, no wildcards or filters): {e}"
                    );
                    self.error(Code::InvalidReferencePath, &cx.ptr(key), message);
                    Some(root_reference())
                }
            },
            _ => Some(root_reference()),
        }
    }

    /// Parses a path, reporting INVALID_PATH at `pointer`.
    pub(super) fn path(&mut self, text: &str, pointer: &str) -> Option<Path> {
        match Path::parse(text) {
            Ok(path) => Some(path),
            Err(e) => {
                let message = format!("'{text}' is not a valid JSONPath: {e}");
                self.error(Code::InvalidPath, pointer, message);
                None
            }
        }
    }

    /// Reports a path that can select several values where AWS requires a
    /// reference path (one value: names and indexes only).
    pub(super) fn require_definite(&mut self, path: &Path, field: &str, pointer: &str) {
        if !path.is_definite() {
            let message = format!(
                "{field} must be a reference path that selects one value (names and indexes only, such as $.items or $.a.b[0]), but '{path}' can select several"
            );
            self.error(Code::InvalidReferencePath, pointer, message);
        }
    }

    /// A path or an intrinsic call, as in a `".$"` field or ErrorPath.
    pub(super) fn path_or_call<T>(&mut self, text: &str, pointer: &str) -> Option<Source<T>> {
        if intrinsic::looks_like_call(text) {
            self.call(text, pointer).map(Source::Call)
        } else {
            self.path(text, pointer).map(Source::Path)
        }
    }

    fn call(&mut self, text: &str, pointer: &str) -> Option<IntrinsicCall> {
        match intrinsic::parse(text) {
            Ok(call) => Some(call),
            Err(e) => {
                self.error(Code::InvalidIntrinsicFunction, pointer, e.to_string());
                None
            }
        }
    }

    /// A JSONPath payload template (Parameters, ResultSelector, ItemSelector).
    pub(super) fn template(&mut self, node: &Node, pointer: &str) -> Option<Template> {
        let value = node.to_value();
        self.warn_no_dollar(&value, pointer);
        match Template::compile(&value) {
            Ok(template) => Some(template),
            Err(errors) => {
                for e in errors {
                    let at = format!("{pointer}{}", e.pointer);
                    match e.kind {
                        TemplateErrorKind::Path => self.error(Code::InvalidPath, &at, e.message),
                        TemplateErrorKind::Intrinsic => {
                            self.error(Code::InvalidIntrinsicFunction, &at, e.message)
                        }
                        TemplateErrorKind::Conflict => {
                            self.error_at_key(Code::ConflictingFields, &at, e.message)
                        }
                        TemplateErrorKind::TooDeep => {
                            self.error(Code::SchemaValidationFailed, &at, e.message)
                        }
                    }
                }
                None
            }
        }
    }

    /// AWS's NO_DOLLAR warning: a plain key whose string value looks like a
    /// path or an intrinsic call was probably meant to end in `.$`.
    fn warn_no_dollar(&mut self, value: &Value, pointer: &str) {
        match value {
            Value::Object(map) => {
                for (key, v) in map {
                    let at = pointer_push(pointer, key);
                    if let (false, Value::String(s)) = (key.ends_with(".$"), v) {
                        if s.starts_with("$.")
                            || s.starts_with("$$.")
                            || intrinsic::looks_like_call(s)
                        {
                            let message = format!(
                                "the value of '{key}' looks like a path or an intrinsic function, but it is used as a literal string; to evaluate it, name the key '{key}.$'"
                            );
                            self.warning(Code::NoDollar, &at, false, message);
                        }
                    }
                    if !key.ends_with(".$") {
                        self.warn_no_dollar(v, &at);
                    }
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    self.warn_no_dollar(v, &format!("{pointer}/{i}"));
                }
            }
            _ => {}
        }
    }

    /// A JSONata template (Arguments, Output, Assign in JSONata states).
    pub(super) fn jsonata_template(
        &mut self,
        node: &Node,
        pointer: &str,
    ) -> Option<JsonataTemplate> {
        match JsonataTemplate::compile(&node.to_value()) {
            Ok(template) => {
                for (at, expr) in template.expressions() {
                    self.check_states_access(&format!("{pointer}{at}"), expr);
                }
                Some(template)
            }
            Err(errors) => {
                for e in errors {
                    let at = format!("{pointer}{}", e.pointer);
                    self.jsonata_error(&at, &e.error);
                }
                None
            }
        }
    }

    /// One JSONata expression held in a string field.
    pub(super) fn jsonata_expr(&mut self, text: &str, pointer: &str) -> Option<JsonataExpr> {
        match JsonataExpr::parse(text) {
            Ok(expr) => {
                self.check_states_access(pointer, &expr);
                Some(expr)
            }
            Err(e) => {
                self.jsonata_error(pointer, &e);
                None
            }
        }
    }

    /// `$states.result` only in Output and Assign of a Task, Map or
    /// Parallel state; `$states.errorOutput` only in a Catch; `input` and
    /// `context` everywhere; nothing else exists.
    fn check_states_access(&mut self, pointer: &str, expr: &JsonataExpr) {
        let fields: Vec<String> = expr.states_fields().map(str::to_owned).collect();
        if fields.is_empty() {
            return;
        }
        let tokens: Vec<String> = crate::pointer::pointer_tokens(pointer).collect();
        let Some(i) = innermost_state(&tokens) else {
            return;
        };
        let state_pointer: String = tokens[..i + 2]
            .iter()
            .fold(String::new(), |p, t| crate::pointer::pointer_push(&p, t));
        let state_type = self
            .doc
            .node(&state_pointer)
            .and_then(|n| n.member("Type"))
            .and_then(|m| m.value.as_str())
            .unwrap_or_default()
            .to_owned();
        let field = tokens.get(i + 2).cloned().unwrap_or_default();
        let in_catch = field == "Catch";
        let result_here = matches!(field.as_str(), "Output" | "Assign")
            && matches!(state_type.as_str(), "Task" | "Map" | "Parallel");
        for name in fields {
            let problem = match name.as_str() {
                "input" | "context" => None,
                "result" if result_here => None,
                "result" => Some(format!(
                    "$states.result is not available here (field '{field}' of a {state_type} state): it holds a Task, Map or Parallel state's result in its Output and Assign only"
                )),
                "errorOutput" if in_catch => None,
                "errorOutput" => Some(format!(
                    "$states.errorOutput is not available here (field '{field}' of a {state_type} state): it holds the error in a Catch's Output and Assign only"
                )),
                other => Some(format!(
                    "$states.{other} does not exist: $states has input, context, result (Task, Map and Parallel Output and Assign) and errorOutput (Catch)"
                )),
            };
            if let Some(message) = problem {
                self.error(Code::InvalidStatesAccess, pointer, message);
            }
        }
    }

    /// INVALID_JSONATA_EXPRESSION, at the character where parsing failed.
    fn jsonata_error(&mut self, pointer: &str, e: &JsonataError) {
        let message = format!("Invalid JSONata expression: {e}");
        match e {
            JsonataError::Syntax { offset, .. } => {
                self.error_in_string(Code::InvalidJsonataExpression, pointer, *offset, message);
            }
            JsonataError::Empty => self.error(Code::InvalidJsonataExpression, pointer, message),
        }
    }

    /// A payload in the context's query language.
    pub(super) fn payload(&mut self, cx: &Ctx<'_>, key: &str) -> Option<Payload> {
        let member = cx.member(key)?;
        let pointer = cx.ptr(key);
        match cx.lang {
            QueryLanguage::JsonPath => self
                .template(&member.value, &pointer)
                .map(Payload::JsonPath),
            QueryLanguage::Jsonata => self
                .jsonata_template(&member.value, &pointer)
                .map(Payload::Jsonata),
        }
    }

    /// Assign: a payload whose keys are variable names.
    pub(super) fn assign(&mut self, cx: &Ctx<'_>) -> Option<Payload> {
        let member = cx.member("Assign")?;
        let pointer = cx.ptr("Assign");
        for m in member.value.members() {
            let name = match cx.lang {
                QueryLanguage::JsonPath => m.key.strip_suffix(".$").unwrap_or(&m.key),
                QueryLanguage::Jsonata => m.key.as_str(),
            };
            if let Some(problem) = variable_name_problem(name, cx.lang) {
                self.error_at_key(
                    Code::InvalidVariableName,
                    &pointer_push(&pointer, &m.key),
                    problem,
                );
            }
        }
        self.payload(cx, "Assign")
    }

    /// A value given literally in `key`, computed from `path_key` (JSONPath),
    /// or computed by a JSONata expression in `key` (JSONata). `literal`
    /// turns the JSON value into `T`; it is only called on well-typed values.
    pub(super) fn source<T>(
        &mut self,
        cx: &Ctx<'_>,
        key: &str,
        path_key: Option<&str>,
        literal: impl Fn(&Node) -> Option<T>,
    ) -> Option<Source<T>> {
        let value = cx.member(key);
        let path = path_key.and_then(|k| cx.member(k).map(|m| (k, m)));
        if let (Some(_), Some((path_key, _)), QueryLanguage::JsonPath) = (value, path, cx.lang) {
            let message = format!("use either '{key}' or '{path_key}', not both");
            self.error_at_key(Code::ConflictingFields, &cx.ptr(path_key), message);
        }
        if let Some(member) = value {
            let pointer = cx.ptr(key);
            if let Some(text) = member
                .value
                .as_str()
                .filter(|s| JsonataExpr::is_expression(s))
            {
                if cx.lang == QueryLanguage::JsonPath {
                    let message = format!(
                        "'{key}' holds a JSONata expression, but this state uses JSONPath; set \"QueryLanguage\": \"JSONata\" or use a literal value{}",
                        path_key.map(|k| format!(" or '{k}'")).unwrap_or_default()
                    );
                    self.error(Code::QueryLanguageMismatch, &pointer, message);
                    return None;
                }
                return self.jsonata_expr(text, &pointer).map(Source::Jsonata);
            }
            return literal(&member.value).map(Source::Literal);
        }
        let (path_key, member) = path?;
        let text = member.value.as_str()?;
        // In JSONata states the *Path fields are refused by `forbid_fields`.
        let pointer = cx.ptr(path_key);
        let source = self.path_or_call(text, &pointer)?;
        if let Source::Path(path) = &source {
            self.require_definite(path, path_key, &pointer);
        }
        Some(source)
    }

    /// A string given literally or by a path / intrinsic call (Fail's
    /// Error/ErrorPath, Cause/CausePath).
    pub(super) fn string_source(
        &mut self,
        cx: &Ctx<'_>,
        key: &str,
        path_key: &str,
    ) -> Option<Source<String>> {
        self.source(cx, key, Some(path_key), |n| n.as_str().map(str::to_owned))
    }

    /// Fields `cx.lang` does not have, each reported with what to use instead.
    pub(super) fn forbid_fields(&mut self, cx: &Ctx<'_>, fields: &[(&str, &str)]) {
        for (field, instead) in fields {
            if cx.has(field) {
                let message = match cx.lang {
                    QueryLanguage::Jsonata => format!(
                        "'{field}' is a JSONPath field, but this state uses JSONata; {instead}"
                    ),
                    QueryLanguage::JsonPath => format!(
                        "'{field}' is a JSONata field, but this state uses JSONPath; {instead}, or set \"QueryLanguage\": \"JSONata\""
                    ),
                };
                self.error_at_key(Code::QueryLanguageMismatch, &cx.ptr(field), message);
            }
        }
    }
}

/// Why `name` cannot be a variable, if it cannot.
pub(super) fn variable_name_problem(name: &str, lang: QueryLanguage) -> Option<String> {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return Some("a variable name must not be empty".to_owned());
    };
    if name.chars().count() > MAX_VARIABLE_NAME_LEN {
        return Some(format!(
            "the variable name '{name}' is longer than {MAX_VARIABLE_NAME_LEN} characters"
        ));
    }
    if !(first.is_alphabetic() || first == '_') || !chars.all(|c| c.is_alphanumeric() || c == '_') {
        return Some(format!(
            "'{name}' is not a valid variable name: use letters, digits and '_', starting with a letter or '_'"
        ));
    }
    if lang == QueryLanguage::Jsonata && name == "states" {
        return Some("'states' is reserved for $states; choose another variable name".to_owned());
    }
    None
}

fn root_path() -> Path {
    // "$" is always a valid path.
    Path::parse("$").expect("'$' is a path")
}

fn root_reference() -> ReferencePath {
    ReferencePath::parse("$").expect("'$' is a reference path")
}

/// Where the innermost state on a pointer's path is named: the index of
/// the `States` token before its name. Followed through the structure
/// (`States/NAME`, then `Iterator` or `ItemProcessor` or `Branches/N`,
/// then `States` again), never by the last token spelled `States`: a
/// variable or a parameter may be called that too.
fn innermost_state(tokens: &[String]) -> Option<usize> {
    let token = |i: usize| tokens.get(i).map(String::as_str);
    if token(0) != Some("States") || tokens.len() < 2 {
        return None;
    }
    let mut at = 0;
    loop {
        let next = match token(at + 2) {
            Some("Iterator" | "ItemProcessor") => at + 3,
            Some("Branches") => at + 4,
            _ => return Some(at),
        };
        if token(next) != Some("States") || tokens.len() < next + 2 {
            return Some(at);
        }
        at = next;
    }
}

#[cfg(test)]
mod innermost_state_tests {
    use super::innermost_state;

    fn at(pointer: &str) -> Option<usize> {
        let tokens: Vec<String> = pointer.split('/').skip(1).map(str::to_owned).collect();
        innermost_state(&tokens)
    }

    #[test]
    fn follows_the_structure_not_the_spelling() {
        assert_eq!(at("/States/Call/Output"), Some(0));
        assert_eq!(at("/States/Call/Assign/States"), Some(0));
        assert_eq!(at("/States/Map/ItemProcessor/States/Inner/Output"), Some(3));
        assert_eq!(at("/States/Par/Branches/1/States/B/Assign/States"), Some(4));
        assert_eq!(
            at("/States/Old/Iterator/States/I/Parameters/States"),
            Some(3)
        );
        assert_eq!(at("/States"), None);
        assert_eq!(at("/Comment"), None);
    }

    /// Found by the fuzzer: a variable named `States` in a Task's Assign,
    /// with `$states.result` in the expressions, panicked the validator.
    #[test]
    fn a_variable_named_states_is_validated_without_a_panic() {
        let definition = br#"{"QueryLanguage": "JSONata", "StartAt": "Call", "States": {
            "Call": {"Type": "Task", "Resource": "arn:aws:states:::http:invoke",
                "Arguments": {"ApiEndpoint": "https://example.com", "Method": "GET"},
                "Assign": {"States": "{% $states.result.StatusCode %}"}, "End": true}}}"#;
        let validation = crate::asl::validate(definition);
        assert!(validation.is_ok(), "{:?}", validation.diagnostics);
    }

    /// The messages of the INVALID_STATES_ACCESS errors of a definition.
    fn states_access_errors(definition: serde_json::Value) -> Vec<String> {
        crate::asl::validate(definition.to_string().as_bytes())
            .diagnostics
            .into_iter()
            .filter(|d| d.code == crate::asl::diagnostic::Code::InvalidStatesAccess)
            .map(|d| format!("{}: {}", d.pointer, d.message))
            .collect()
    }

    #[test]
    fn a_state_called_states_is_judged_by_its_own_type() {
        let errors = states_access_errors(serde_json::json!({
            "QueryLanguage": "JSONata",
            "StartAt": "States",
            "States": {
                "States": {"Type": "Task", "Resource": "arn:aws:states:::http:invoke",
                           "Arguments": {"ApiEndpoint": "https://example.com", "Method": "GET"},
                           "Output": "{% $states.result %}", "Next": "Pass"},
                "Pass": {"Type": "Pass", "Output": "{% $states.result %}", "End": true}
            }
        }));
        assert_eq!(
            errors,
            [
                "/States/Pass/Output: $states.result is not available here (field 'Output' of a Pass state): it holds a Task, Map or Parallel state's result in its Output and Assign only"
            ]
        );
    }

    #[test]
    fn states_in_branches_and_processors_are_the_innermost() {
        let task = serde_json::json!({"Type": "Task", "Resource": "arn:aws:states:::http:invoke",
                          "Arguments": {"ApiEndpoint": "https://example.com", "Method": "GET"},
                          "Output": "{% $states.result %}", "End": true});
        let pass =
            serde_json::json!({"Type": "Pass", "Output": "{% $states.errorOutput %}", "End": true});
        let errors = states_access_errors(serde_json::json!({
            "QueryLanguage": "JSONata",
            "StartAt": "Fork",
            "States": {
                "Fork": {"Type": "Parallel", "Next": "Each",
                         "Branches": [{"StartAt": "T1", "States": {"T1": task}},
                                      {"StartAt": "P1", "States": {"P1": pass}}]},
                "Each": {"Type": "Map", "End": true,
                         "Output": "{% $states.result %}",
                         "ItemProcessor": {"StartAt": "T2", "States": {"T2": task}}}
            }
        }));
        assert_eq!(
            errors,
            [
                "/States/Fork/Branches/1/States/P1/Output: $states.errorOutput is not available here (field 'Output' of a Pass state): it holds the error in a Catch's Output and Assign only"
            ]
        );
    }
}

//! What each fuzz target does with its bytes, shared by the cargo-fuzz
//! targets (`fuzz/fuzz_targets/*.rs`) and by the replay test of the normal
//! suite (`tests/e2e/fuzz_corpus.rs`), so the committed corpora and the
//! crash reproducers run on stable in every `cargo test`.
//!
//! A target fails by panicking. Beyond "no panic", each checks an invariant
//! that is cheap to state: a successful parse agrees with serde_json, a
//! reference path reads back what it set, diagnostics point inside the
//! text, schedule slots move forward.

// Each fuzz target uses one of these functions; the replay test uses all.
#![allow(dead_code)]

use std::borrow::Cow;
use std::io::Cursor;
use std::sync::OnceLock;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value, json};

use stepline::access::{Credentials, SignedRequest};
use stepline::aws::{Action, constraints, pagination::Tokens};
use stepline::triggers::schedule::{Schedule, Zone};
use stepline_language::asl;
use stepline_language::asl::source::{Document, MAX_DEPTH, Node, NodeValue};
use stepline_language::map_run::ReaderSpec;
use stepline_language::query::eval::{Env, SplitMix64};
use stepline_language::query::jsonata::{Host, JsonataExpr, JsonataTemplate, Scope};
use stepline_language::query::{Path, ReferencePath, Template, intrinsic};
use stepline_runtime::maprun::reader::read_items;

/// A target: what one fuzzer runs on each input.
pub type Target = fn(&[u8]);

/// Every target by name, as `fuzz/corpus/NAME` and `fuzz/fuzz_targets/NAME.rs`
/// are named.
pub const TARGETS: &[(&str, Target)] = &[
    ("json_source", json_source),
    ("definition", definition),
    ("jsonpath", jsonpath),
    ("intrinsic", intrinsic_call),
    ("jsonata", jsonata),
    ("template", template),
    ("schedule", schedule),
    ("aws_request", aws_request),
    ("sigv4", sigv4),
    ("item_reader", item_reader),
    ("config", config),
];

/// The data expressions run against: the JSONata differential test's
/// documents (nested objects, arrays, numbers, strings, nulls).
fn documents() -> &'static [Value] {
    static DOCS: OnceLock<Vec<Value>> = OnceLock::new();
    DOCS.get_or_init(|| {
        let text = include_str!("../tests/jsonata/inputs.json");
        match serde_json::from_str(text) {
            Ok(Value::Array(docs)) if !docs.is_empty() => docs,
            _ => panic!("tests/jsonata/inputs.json is a non-empty array of documents"),
        }
    })
}

/// The input for one run: a document chosen by the data's length, so
/// every document is reached without a byte of the data spent on it.
fn document_for(data: &[u8]) -> &'static Value {
    let docs = documents();
    &docs[data.len() % docs.len()]
}

fn context() -> Value {
    json!({
        "Execution": {"Id": "arn:aws:states:us-east-1:123456789012:execution:m:e", "Input": {"a": 1}, "Name": "e", "StartTime": "2026-01-01T00:00:00Z"},
        "State": {"Name": "S", "EnteredTime": "2026-01-01T00:00:00Z", "RetryCount": 0},
        "StateMachine": {"Id": "arn:aws:states:us-east-1:123456789012:stateMachine:m", "Name": "m"},
        "Map": {"Item": {"Index": 0, "Value": {"x": [1, 2]}}}
    })
}

fn variables() -> Map<String, Value> {
    let mut vars = Map::new();
    vars.insert("x".into(), json!(3));
    vars.insert("list".into(), json!([1, "two", {"three": 3}, [4], null]));
    vars.insert("obj".into(), json!({"a": {"b": "c"}, "n": -1.5}));
    vars
}

// --- the positioned JSON parser ---

/// `asl::source::Document::parse`: never panics; what it accepts serde_json
/// reads as the same value (serde_json stops at depth 128, before ours);
/// what serde_json accepts it accepts; every position is inside the text.
pub fn json_source(data: &[u8]) {
    let text = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    let ours = Document::parse(data);
    let theirs = serde_json::from_slice::<Value>(text);
    match (&ours, &theirs) {
        (Ok(doc), Ok(value)) => assert_eq!(&doc.root.to_value(), value, "the values differ"),
        (Ok(doc), Err(e)) => assert!(
            depth(&doc.root) > 127,
            "accepted what serde_json refuses ({e})"
        ),
        (Err((e, _)), Ok(_)) => panic!("refused what serde_json accepts: {e}"),
        (Err((e, position)), Err(_)) => {
            assert!(
                e.offset <= text.len(),
                "error offset {} past the end",
                e.offset
            );
            if let Some(p) = position {
                assert_inside(text, p.line, p.column);
            }
        }
    }
    if let Ok(doc) = ours {
        assert!(depth(&doc.root) <= MAX_DEPTH + 1);
        let mut pointers = Vec::new();
        collect_pointers(&doc.root, String::new(), &mut pointers);
        for pointer in pointers.iter().take(256) {
            let node = doc.node(pointer).map(|n| n.offset);
            assert!(node.is_some(), "pointer {pointer:?} designates nothing");
            for position in [
                doc.value_position(pointer),
                doc.key_position(pointer),
                doc.string_char_position(pointer, 0),
                doc.string_char_position(pointer, 3),
                doc.string_char_position(pointer, usize::MAX),
            ] {
                assert_inside(text, position.line, position.column);
            }
        }
        for duplicate in &doc.duplicates {
            let p = doc.position(duplicate.offset);
            assert_inside(text, p.line, p.column);
        }
    }
}

fn depth(node: &Node) -> usize {
    match &node.value {
        NodeValue::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        NodeValue::Object(members) => {
            1 + members.iter().map(|m| depth(&m.value)).max().unwrap_or(0)
        }
        _ => 0,
    }
}

fn collect_pointers(node: &Node, at: String, out: &mut Vec<String>) {
    if out.len() > 256 {
        return;
    }
    match &node.value {
        NodeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                collect_pointers(item, format!("{at}/{i}"), out);
            }
        }
        NodeValue::Object(members) => {
            // A pointer reaches the last of duplicated keys only.
            for (i, m) in members.iter().enumerate() {
                if members[i + 1..].iter().all(|later| later.key != m.key) {
                    collect_pointers(
                        &m.value,
                        stepline_language::pointer::pointer_push(&at, &m.key),
                        out,
                    );
                }
            }
        }
        _ => {}
    }
    out.push(at);
}

/// A 1-based line and column (in characters) lies in `text`, or just past
/// the end of a line.
fn assert_inside(text: &[u8], line: u32, column: u32) {
    let text = String::from_utf8_lossy(text);
    assert!(
        line >= 1 && column >= 1,
        "position {line}:{column} is not 1-based"
    );
    let lines: Vec<&str> = text.split('\n').collect();
    let Some(found) = lines.get(line as usize - 1) else {
        panic!("line {line} is past the last line ({})", lines.len());
    };
    let width = found.chars().count() as u32;
    assert!(
        column <= width + 1,
        "column {column} is past the end of line {line} ({width} characters)"
    );
}

// --- whole definitions through the validator ---

/// `asl::validate`: never panics; every diagnostic points inside the text;
/// a machine comes out exactly when there is no error.
pub fn definition(data: &[u8]) {
    let validation = asl::validate(data);
    let has_error = validation.errors().next().is_some();
    assert_eq!(
        validation.is_ok(),
        !has_error,
        "a machine with errors, or none without"
    );
    if data.len() <= asl::MAX_DEFINITION_BYTES {
        let text = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
        for d in &validation.diagnostics {
            assert!(!d.message.is_empty(), "an empty message: {d:?}");
            assert_inside(text, d.line, d.column);
        }
    }
    if let Some(machine) = &validation.machine {
        // The diagram is drawn from every machine the validator accepts.
        let _ = format!("{machine:?}");
    }
}

// --- JSONPath and reference paths ---

/// `query::Path` and `query::ReferencePath`: a definite path's lookup
/// agrees with its selection; a reference path reads back what it set.
pub fn jsonpath(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let doc = document_for(data);
    if let Ok(path) = Path::parse(text) {
        assert_eq!(path.as_str(), text);
        let selected = path.select(doc);
        if let (true, Some(segments)) = (path.is_definite(), path.segments()) {
            if matches!(path.root(), stepline_language::query::PathRoot::Input) {
                let looked_up = stepline_language::query::path::lookup(segments, doc);
                assert_eq!(looked_up, selected.as_deref(), "lookup and select differ");
            }
        }
        let vars = variables();
        let ctx = context();
        let mut random = SplitMix64(7);
        let env = Env {
            input: doc,
            context: &ctx,
            variables: &vars,
            random: &mut random,
        };
        let _ = stepline_language::query::resolve_path(&path, &env);
    }
    if let Ok(reference) = ReferencePath::parse(text) {
        let _ = reference.get(doc);
        let mut target = doc.clone();
        let marker = json!({"fuzz": [text]});
        if reference.set(&mut target, marker.clone()).is_ok() {
            assert_eq!(
                reference.get(&target),
                Some(&marker),
                "set, then get, differ"
            );
        }
    }
}

// --- intrinsic calls ---

/// `query::intrinsic::parse`, then evaluation, directly and as a template
/// field `"r.$"`.
pub fn intrinsic_call(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = intrinsic::looks_like_call(text);
    let doc = document_for(data);
    let vars = variables();
    let ctx = context();
    let mut random = SplitMix64(data.len() as u64);
    let mut env = Env {
        input: doc,
        context: &ctx,
        variables: &vars,
        random: &mut random,
    };
    if let Ok(call) = intrinsic::parse(text) {
        if let Ok(value) = call.evaluate(&mut env) {
            let _ = stepline_language::query::compact_json(&value);
        }
    }
    if let Ok(template) = Template::compile(&json!({ "r.$": text })) {
        let _ = template.evaluate(&mut env);
    }
}

// --- JSONata ---

#[derive(Debug)]
struct FixedHost(SplitMix64);

impl Host for FixedHost {
    fn now_millis(&mut self) -> i64 {
        1_767_225_600_000
    }
    fn random(&mut self) -> f64 {
        use stepline_language::query::eval::RandomSource;
        (self.0.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn uuid(&mut self) -> String {
        "6ba7b810-9dad-41d1-80b4-00c04fd430c8".into()
    }
}

#[derive(Debug)]
struct Variables {
    values: Map<String, Value>,
}

impl Scope for Variables {
    fn variable(&self, name: &str) -> Option<Cow<'_, Value>> {
        self.values.get(name).map(Cow::Borrowed)
    }
}

/// A JSONata expression (the bytes between `{%` and `%}`), parsed, then
/// evaluated against a document with `$states` and variables in scope,
/// within the engine's budget (the fuzzer's timeout is the hang check).
pub fn jsonata(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let source = format!("{{%{text}%}}");
    let Ok(expr) = JsonataExpr::parse(&source) else {
        return;
    };
    let doc = document_for(data);
    let mut values = variables();
    values.insert(
        "states".into(),
        json!({"input": doc, "context": context(), "result": {"ok": true}}),
    );
    let scope = Variables { values };
    let mut host = FixedHost(SplitMix64(1));
    if let Ok(Some(value)) = expr.evaluate_with_input(Some(doc), &scope, &mut host) {
        let _ = serde_json::to_string(&value);
    }
}

// --- payload templates ---

/// A JSON value as a payload template (`"name.$"` fields) and as a JSONata
/// template: compiled, and the JSONPath one evaluated.
pub fn template(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let doc = document_for(data);
    let vars = variables();
    let ctx = context();
    let mut random = SplitMix64(3);
    let mut env = Env {
        input: doc,
        context: &ctx,
        variables: &vars,
        random: &mut random,
    };
    match Template::compile(&value) {
        Ok(template) => {
            let static_ = template.is_static();
            let result = template.evaluate(&mut env);
            if static_ {
                assert_eq!(
                    result.as_ref().ok(),
                    Some(&value),
                    "a static template changed"
                );
            }
        }
        Err(errors) => {
            assert!(!errors.is_empty());
            for e in errors {
                let _ = e.to_string();
            }
        }
    }
    if let Ok(template) = JsonataTemplate::compile(&value) {
        let _ = template.expressions();
    }
}

// --- cron and rate expressions ---

/// `Schedule::parse` on the first line, `Zone::parse` on the second (a
/// fixed offset or an IANA zone): slots are strictly after their start and
/// strictly increasing, across daylight saving time changes too.
pub fn schedule(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (expression, zone) = text.split_once('\n').unwrap_or((text, "UTC"));
    let offset = Zone::parse(zone).unwrap_or_else(|_| Zone::utc());
    let Ok(schedule) = Schedule::parse(expression) else {
        return;
    };
    for start in [0i64, 1_767_225_600, 4_102_444_799, 7_258_118_400] {
        let Some(from) = DateTime::<Utc>::from_timestamp(start, 0) else {
            continue;
        };
        if let Some(next) = schedule.next_after(from, offset) {
            assert!(
                next > from,
                "{expression}: next slot {next} is not after {from}"
            );
        }
        let to = from + Duration::days(800);
        let slots = schedule.slots(from, to, offset, 24);
        for pair in slots.windows(2) {
            assert!(
                pair[0] < pair[1],
                "{expression}: slots out of order {slots:?}"
            );
        }
        assert!(slots.iter().all(|s| *s > from && *s <= to));
    }
}

// --- the AWS request decoder ---

/// The AWS dialect's decoding before an action runs: the first line is the
/// action (after `AWSStepFunctions.`), the rest the body, read as the
/// server reads it, then checked against the action's constraints; the body
/// is also tried as a pagination token.
pub fn aws_request(data: &[u8]) {
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let Ok(action) = std::str::from_utf8(&data[..split]) else {
        return;
    };
    let body = data.get(split + 1..).unwrap_or_default();
    let request = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Map::new())
    } else {
        match serde_json::from_slice(body) {
            Ok(v @ Value::Object(_)) => v,
            _ => return,
        }
    };
    // An unknown name is refused before any check, as the server does.
    if let Some(known) = Action::from_name(action) {
        if let Err(error) = constraints::check(known, &request) {
            assert!(!error.message.is_empty());
            let _ = error.body();
        }
    }
    let tokens = Tokens::new([9; 32]);
    if let Ok(token) = std::str::from_utf8(body) {
        let _ = tokens.check(action, token.trim());
    }
    let offset = data.len() * 7;
    assert_eq!(
        tokens.check(action, &tokens.issue(action, offset)),
        Some(offset)
    );
}

// --- the SigV4 Authorization header ---

/// `Credentials::verify_sigv4`, which parses the Authorization header and
/// the date: lines are Authorization, X-Amz-Date (or `Date: ...`), the path
/// with its query, the method; the rest is the body. A made-up signature
/// never verifies.
pub fn sigv4(data: &[u8]) {
    use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

    let mut lines = data.splitn(5, |b| *b == b'\n');
    let authorization = lines.next().unwrap_or_default();
    let date = lines.next().unwrap_or_default();
    let target = std::str::from_utf8(lines.next().unwrap_or_default()).unwrap_or("/");
    let method = std::str::from_utf8(lines.next().unwrap_or_default()).unwrap_or("POST");
    let body = lines.next().unwrap_or_default();
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_bytes(authorization) {
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    let (date_header, date_value) = match date.strip_prefix(b"Date: ") {
        Some(rest) => ("date", rest),
        None => ("x-amz-date", date),
    };
    if let Ok(value) = HeaderValue::from_bytes(date_value) {
        headers.insert(HeaderName::from_static(date_header), value);
    }
    headers.insert(
        reqwest::header::HOST,
        HeaderValue::from_static("localhost:8083"),
    );
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let credentials = Credentials::single("AKIDFUZZ", "fuzz-secret", "fuzz-token", "us-east-1");
    let request = SignedRequest {
        method,
        path,
        query,
        headers: &headers,
        body,
    };
    let Some(now) = DateTime::<Utc>::from_timestamp(1_767_225_600, 0) else {
        return;
    };
    if let Err(error) = credentials.verify_sigv4(&request, now) {
        let _ = (error.kind(), error.to_string());
    }
}

// --- the CSV, JSON and JSONL item readers ---

/// `maprun::reader::read_items`: the first byte chooses the InputType and
/// the CSV options, the rest is the object's content. CSV rows have one
/// field per header.
pub fn item_reader(data: &[u8]) {
    let Some((&mode, content)) = data.split_first() else {
        return;
    };
    let delimiters = ["COMMA", "PIPE", "SEMICOLON", "SPACE", "TAB"];
    let given = vec!["a".to_owned(), "b".to_owned(), "a".to_owned()];
    let spec = ReaderSpec {
        resource: "arn:aws:states:::s3:getObject".into(),
        parameters: Value::Null,
        input_type: Some(["CSV", "CSV", "JSONL", "JSON"][usize::from(mode % 4)].into()),
        csv_header_location: Some(if mode % 4 == 1 { "GIVEN" } else { "FIRST_ROW" }.into()),
        csv_headers: (mode % 4 == 1).then_some(given),
        csv_delimiter: Some(delimiters[usize::from(mode / 4) % delimiters.len()].into()),
        max_items: None,
    };
    let Ok(items) = read_items(Cursor::new(content.to_vec()), &spec) else {
        return;
    };
    for item in items.take(100_000) {
        match item {
            Ok(value) => {
                if spec.input_type.as_deref() == Some("CSV") {
                    assert!(value.is_object(), "a CSV row that is not an object");
                }
            }
            Err(e) => assert!(!e.0.is_empty()),
        }
    }
}

// --- the TOML configuration ---

/// `config::parse`, then the access keys it configures.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match stepline::config::parse(text) {
        Ok(config) => {
            let _ = Credentials::from_config(&config.server, "us-east-1", |_| {
                Some("fuzz-secret-from-env".into())
            });
        }
        Err(message) => assert!(!message.is_empty()),
    }
}

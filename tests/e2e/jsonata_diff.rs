//! The differential test of our JSONata engine against the reference
//! JavaScript implementation (npm package `jsonata`, run with node).
//!
//! Cases: every hand-written expression in tests/jsonata/expressions.txt
//! against every document in tests/jsonata/inputs.json, plus expressions
//! generated from a small grammar with a fixed seed. One node process
//! evaluates them all (tests/jsonata/reference.js), then ours do, and the
//! results are compared: values as JSON (numbers with a relative tolerance
//! of 1e-9), undefined with undefined, errors with errors (and the codes
//! counted apart).
//!
//! `npm ci` runs here when tests/jsonata/node_modules is absent. Without
//! node or npm the test is skipped, unless STEPLINE_REQUIRE_JSONATA_REFERENCE=1
//! (CI sets it), when it fails.

use std::borrow::Cow;
use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use stepline_language::query::jsonata::{Host, JsonataExpr, Scope};

use crate::support::repo_root;

/// Hand-written expressions whose result differs from the reference on
/// purpose or by a known limit: (expression, why).
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[(
    "$shuffle([1])",
    "random by design (compared only for shape)",
)];

/// The share of generated cases that must agree.
const GENERATED_AGREEMENT: f64 = 0.97;

struct TestHost(u64);

impl Host for TestHost {
    fn now_millis(&mut self) -> i64 {
        1_700_000_000_000
    }
    fn random(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn uuid(&mut self) -> String {
        "00000000-0000-4000-8000-000000000000".into()
    }
}

struct NoVariables;

impl Scope for NoVariables {
    fn variable(&self, _: &str) -> Option<Cow<'_, Value>> {
        None
    }
}

#[derive(Debug, Clone)]
struct Case {
    expr: String,
    input: Option<Value>,
    generated: bool,
}

/// Runs the reference implementation over every case; None when node or
/// npm is missing.
fn reference(cases: &[Case]) -> Option<Vec<Value>> {
    let dir = repo_root().join("tests/jsonata");
    let have = |cmd: &str| {
        Command::new(cmd)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !have("node") || !have("npm") {
        return None;
    }
    if !dir.join("node_modules/jsonata").exists() {
        let status = Command::new("npm")
            .args(["ci", "--silent", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("run npm ci");
        assert!(status.success(), "npm ci in tests/jsonata failed");
    }
    let mut child = Command::new("node")
        .arg("reference.js")
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start node");
    let mut lines = String::new();
    for c in cases {
        let mut line = json!({"expr": c.expr});
        if let Some(input) = &c.input {
            line["input"] = input.clone();
        }
        lines.push_str(&line.to_string());
        lines.push('\n');
    }
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(lines.as_bytes()));
    let out = child.wait_with_output().expect("node output");
    writer.join().expect("writer").expect("write cases");
    assert!(out.status.success(), "reference.js failed");
    let results: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(results.len(), cases.len(), "one result per case");
    Some(results)
}

fn ours(case: &Case) -> Value {
    let text = format!("{{% {} %}}", case.expr);
    let expr = match JsonataExpr::parse(&text) {
        Ok(e) => e,
        Err(e) => return json!({"error": "parse", "message": e.to_string()}),
    };
    let mut host = TestHost(7);
    match expr.evaluate_with_input(case.input.as_ref(), &NoVariables, &mut host) {
        Ok(Some(v)) => json!({"value": v}),
        Ok(None) => json!({"undefined": true}),
        Err(e) if e.code == "T0001" => json!({"function": true}),
        Err(e) => json!({"error": e.code, "message": e.message}),
    }
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs())
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((k1, v1), (k2, v2))| k1 == k2 && same(v1, v2))
        }
        _ => a == b,
    }
}

/// Whether two results agree. The reference prints non-finite numbers as
/// "NaN" (JSON has none); ours refuses them with an error.
fn agree(reference: &Value, ours: &Value) -> bool {
    let has_nan = |v: &Value| v.to_string().contains("\"NaN\"");
    if reference.get("error").is_some() {
        return ours.get("error").is_some();
    }
    if let Some(v) = reference.get("value") {
        if has_nan(v) {
            return ours.get("error").is_some();
        }
        return ours.get("value").is_some_and(|o| same(v, o));
    }
    if reference.get("undefined").is_some() {
        return ours.get("undefined").is_some();
    }
    if reference.get("function").is_some() {
        return ours.get("function").is_some();
    }
    false
}

fn hand_written() -> Vec<Case> {
    let dir = repo_root().join("tests/jsonata");
    let inputs: Vec<Value> =
        serde_json::from_slice(&std::fs::read(dir.join("inputs.json")).expect("inputs.json"))
            .expect("inputs JSON");
    let text = std::fs::read_to_string(dir.join("expressions.txt")).expect("expressions.txt");
    let mut cases = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        for input in &inputs {
            cases.push(Case {
                expr: line.to_owned(),
                input: Some(input.clone()),
                generated: false,
            });
        }
        cases.push(Case {
            expr: line.to_owned(),
            input: None,
            generated: false,
        });
    }
    cases
}

/// A tiny deterministic generator (no dependency).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const PATHS: &[&str] = &[
    "n",
    "s",
    "t",
    "f",
    "z",
    "nums",
    "strs",
    "empty",
    "obj",
    "obj.a",
    "obj.b",
    "obj.c.d",
    "nested",
    "Account.Name",
    "Account.Order.OrderID",
    "Account.Order.Product.Price",
    "Account.Order.Product.Quantity",
    "Account.Order.Product.SKU",
    "Account.Order.Product.Description.Colour",
    "Account.Order[0].Product",
    "nope",
    "$",
    "nums[0]",
    "nums[-1]",
    "strs[1]",
    "Account.Order.Product[Price > 30]",
    "**.Width",
    "obj.*",
    "nums[$ > 2]",
    "Account.Order[1].Product[0].`Product Name`",
];
const LITERALS: &[&str] = &[
    "0",
    "1",
    "2",
    "-3",
    "0.5",
    "10",
    "100",
    "1.25",
    "'a'",
    "'hello'",
    "''",
    "'Hello World'",
    "true",
    "false",
    "null",
    "[1,2,3]",
    "[]",
    "{}",
    "{'k': 1}",
    "['x','y']",
];
const BINARY: &[&str] = &[
    "+", "-", "*", "/", "%", "&", "=", "!=", "<", "<=", ">", ">=", "and", "or", "in",
];
const UNARY_FNS: &[&str] = &[
    "$sum",
    "$count",
    "$string",
    "$length",
    "$uppercase",
    "$lowercase",
    "$trim",
    "$sort",
    "$reverse",
    "$distinct",
    "$keys",
    "$boolean",
    "$not",
    "$exists",
    "$type",
    "$number",
    "$abs",
    "$floor",
    "$ceil",
    "$round",
    "$max",
    "$min",
    "$average",
    "$sqrt",
    "$spread",
    "$base64encode",
    "$encodeUrlComponent",
];

fn gen_expr(rng: &mut Rng, depth: u32) -> String {
    if depth == 0 {
        return if rng.below(2) == 0 {
            rng.pick(PATHS).to_owned()
        } else {
            rng.pick(LITERALS).to_owned()
        };
    }
    let d = depth - 1;
    match rng.below(16) {
        0 | 1 => rng.pick(PATHS).to_owned(),
        2 => rng.pick(LITERALS).to_owned(),
        3..=5 => format!(
            "{} {} {}",
            gen_expr(rng, d),
            rng.pick(BINARY),
            gen_expr(rng, d)
        ),
        6 | 7 => format!("{}({})", rng.pick(UNARY_FNS), gen_expr(rng, d)),
        8 => format!(
            "{} ? {} : {}",
            gen_expr(rng, d),
            gen_expr(rng, d),
            gen_expr(rng, d)
        ),
        9 => format!("[{}, {}]", gen_expr(rng, d), gen_expr(rng, d)),
        10 => format!("{{'a': {}, 'b': {}}}", gen_expr(rng, d), gen_expr(rng, d)),
        11 => format!(
            "({})[{}]",
            gen_expr(rng, d),
            rng.pick(&["0", "1", "-1", "$ > 1", "$ = 'a'", "true"])
        ),
        12 => format!(
            "$map({}, function($v, $i) {{ {} }})",
            gen_expr(rng, d),
            rng.pick(&["$v", "$i", "$v & $i", "$string($v)", "[$v]", "$v * 2"])
        ),
        13 => format!(
            "($x := {}; {} {} $x)",
            gen_expr(rng, d),
            gen_expr(rng, d),
            rng.pick(BINARY)
        ),
        14 => format!(
            "{}({}, {})",
            rng.pick(&[
                "$substring",
                "$join",
                "$split",
                "$contains",
                "$append",
                "$round",
                "$pad",
                "$power",
                "$lookup",
                "$formatBase",
                "$zip",
                "$filter"
            ]),
            gen_expr(rng, d),
            gen_expr(rng, d)
        ),
        _ => format!(
            "{}.{}",
            rng.pick(PATHS),
            rng.pick(&[
                "$",
                "($ * 2)",
                "$string()",
                "[0]",
                "{'v': $}",
                "$length($string($))",
                "a",
                "*"
            ])
        ),
    }
}

fn generated(count: usize) -> Vec<Case> {
    let dir = repo_root().join("tests/jsonata");
    let inputs: Vec<Value> =
        serde_json::from_slice(&std::fs::read(dir.join("inputs.json")).expect("inputs.json"))
            .expect("inputs JSON");
    let mut rng = Rng(0x5eed_1234_abcd_9876);
    (0..count)
        .map(|_| {
            let depth = 1 + rng.below(3) as u32;
            Case {
                expr: gen_expr(&mut rng, depth),
                input: Some(inputs[0].clone()),
                generated: true,
            }
        })
        .collect()
}

#[test]
fn jsonata_agrees_with_the_reference_implementation() {
    let mut cases = hand_written();
    let hand = cases.len();
    cases.extend(generated(4000));
    let Some(reference) = reference(&cases) else {
        assert!(
            std::env::var("STEPLINE_REQUIRE_JSONATA_REFERENCE").as_deref() != Ok("1"),
            "node and npm are required (STEPLINE_REQUIRE_JSONATA_REFERENCE=1)"
        );
        eprintln!("SKIPPED: node or npm is absent; the differential JSONata test did not run");
        return;
    };
    let mut problems = Vec::new();
    let (mut hand_ok, mut gen_ok, mut gen_total, mut codes_same, mut both_errors) = (0, 0, 0, 0, 0);
    let mut shown = std::collections::BTreeSet::new();
    for (case, theirs) in cases.iter().zip(&reference) {
        let mine = ours(case);
        assert_ne!(
            mine["error"], "U1000",
            "a panic inside the engine for {}",
            case.expr
        );
        let ok = agree(theirs, &mine);
        if theirs.get("error").is_some() && mine.get("error").is_some() {
            both_errors += 1;
            codes_same += usize::from(theirs["error"] == mine["error"]);
        }
        if case.generated {
            gen_total += 1;
            gen_ok += usize::from(ok);
        } else {
            hand_ok += usize::from(ok);
        }
        let known = KNOWN_DIFFERENCES.iter().any(|(e, _)| *e == case.expr);
        if !ok && shown.insert(case.expr.clone()) {
            let line = format!(
                "{}{} | input {} | reference {} | ours {}",
                if case.generated { "[generated] " } else { "" },
                case.expr,
                case.input.as_ref().map_or("undefined".into(), |i| i
                    .to_string()
                    .chars()
                    .take(40)
                    .collect::<String>()),
                theirs.to_string().chars().take(160).collect::<String>(),
                mine.to_string().chars().take(160).collect::<String>()
            );
            if std::env::var_os("STEPLINE_JSONATA_DIFF_VERBOSE").is_some() || !case.generated {
                eprintln!("  differs: {line}");
            }
            if !case.generated && !known {
                problems.push(line);
            }
        }
    }
    let rate = gen_ok as f64 / gen_total.max(1) as f64;
    eprintln!(
        "jsonata differential: {} cases; hand-written {hand_ok}/{hand} agree, generated {gen_ok}/{gen_total} agree ({:.1}%); errors on both sides {both_errors}, same code {codes_same}",
        cases.len(),
        rate * 100.0
    );
    assert!(
        rate >= GENERATED_AGREEMENT,
        "generated agreement {:.1}% is below {:.1}%",
        rate * 100.0,
        GENERATED_AGREEMENT * 100.0
    );
    assert!(
        problems.is_empty(),
        "{} hand-written cases differ from the reference:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

//! The engine's own tests: AWS's functions, the bounds on runaway
//! expressions, and hostile input into the parser. Language coverage is the
//! differential test's job (tests/e2e/jsonata_diff.rs).

use std::borrow::Cow;

use serde_json::{Value, json};

use super::{Host, JsonataError, JsonataExpr, Scope};

struct Fixed(u64);

impl Host for Fixed {
    fn now_millis(&mut self) -> i64 {
        1_700_000_000_000
    }
    fn random(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn uuid(&mut self) -> String {
        "00000000-0000-4000-8000-000000000000".into()
    }
}

struct Vars(Value);

impl Scope for Vars {
    fn variable(&self, name: &str) -> Option<Cow<'_, Value>> {
        self.0.get(name).map(Cow::Borrowed)
    }
}

fn eval_with(expr: &str, vars: Value) -> Result<Option<Value>, String> {
    let e = JsonataExpr::parse(&format!("{{% {expr} %}}")).map_err(|e| e.to_string())?;
    e.evaluate(&Vars(vars), &mut Fixed(1))
        .map_err(|e| format!("{}: {}", e.code, e.message))
}

fn eval(expr: &str) -> Result<Option<Value>, String> {
    eval_with(expr, json!({}))
}

fn check(expr: &str, expected: Value) {
    assert_eq!(eval(expr), Ok(Some(expected)), "{expr}");
}

fn fails(expr: &str, code: &str) {
    match eval(expr) {
        Err(e) => assert!(e.starts_with(code), "{expr}: {e}"),
        other => panic!("{expr}: expected {code}, got {other:?}"),
    }
}

#[test]
fn aws_functions() {
    check(
        "$partition([1,2,3,4,5,6,7,8,9], 3)",
        json!([[1, 2, 3], [4, 5, 6], [7, 8, 9]]),
    );
    check("$partition([1,2,3,4], 3)", json!([[1, 2, 3], [4]]));
    check("$range(0, 10, 2)", json!([0, 2, 4, 6, 8, 10]));
    check("$range(10, 0, -5)", json!([10, 5, 0]));
    check("$range(1, 9, 9)", json!(1));
    check(
        "$hash('input', 'SHA-1')",
        json!("140f86aae51ab9e1cda9b4254fe98a74eb54c1a1"),
    );
    check(
        "$hash('input', 'MD5')",
        json!("a43c1b0aa53a0c908810c06ab1ff3967"),
    );
    check("$parse('{\"a\": [1, 2]}').a[1]", json!(2));
    check("$uuid()", json!("00000000-0000-4000-8000-000000000000"));
    check("$random(42) = $random(42)", json!(true));
    check("$random(42) != $random(43)", json!(true));
    check("$random() < 1 and $random() >= 0", json!(true));
    check("$millis()", json!(1_700_000_000_000_i64));
    check("$now()", json!("2023-11-14T22:13:20.000Z"));
    fails("$eval('1 + 1')", "T1006");
    fails("$hash('x', 'SHA-3')", "D3137");
    fails("$parse('{')", "D3137");
    fails("$range(1, 5000, 1)", "D3137");
    fails("$partition([1], 0)", "D3137");
}

#[test]
fn variables_and_states_come_from_the_scope() {
    let vars = json!({"states": {"input": {"a": [1, 2, 3]}}, "x": 10});
    assert_eq!(
        eval_with("$sum($states.input.a) + $x", vars.clone()),
        Ok(Some(json!(16)))
    );
    assert_eq!(eval_with("$nope", vars.clone()), Ok(None));
    // A variable named like a function wins over the function.
    assert_eq!(eval_with("$sum", json!({"sum": 3})), Ok(Some(json!(3))));
    // `$` has no context value at the top (AWS gives expressions none).
    assert_eq!(eval_with("$", vars), Ok(None));
}

#[test]
fn runaway_expressions_fail_one_evaluation() {
    // Unbounded recursion: a clear error, not a stack overflow. Run on a
    // 2 MiB stack (a tokio worker's) to prove the bound fits in it.
    let handle = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(|| {
            let infinite = eval("($f := function($n) { $f($n + 1) }; $f(0))");
            let deep_data =
                eval("($f := function($n) { $n = 0 ? 0 : 1 + $f($n - 1) }; $f(100000))");
            let nested = eval(&format!("{}1{}", "[".repeat(150), "]".repeat(150)));
            (infinite, deep_data, nested)
        })
        .expect("spawn");
    let (infinite, deep_data, nested) = handle.join().expect("no stack overflow");
    assert!(
        infinite.as_ref().is_err_and(|e| e.starts_with("U1001")),
        "{infinite:?}"
    );
    assert!(
        deep_data.as_ref().is_err_and(|e| e.starts_with("U1001")),
        "{deep_data:?}"
    );
    // Deep nesting is refused (in a debug build) or evaluated, never a crash.
    assert!(
        nested
            .as_ref()
            .map_or_else(|e| e.contains("U1001"), |_| true),
        "{nested:?}"
    );
    check(
        &format!("{}1{}", "[".repeat(20), "]".repeat(20)),
        serde_json::from_str(&format!("{}1{}", "[".repeat(20), "]".repeat(20))).expect("json"),
    );
    // Shallow recursion is fine.
    check(
        "($f := function($n) { $n = 0 ? 0 : 1 + $f($n - 1) }; $f(40))",
        json!(40),
    );
    // Huge ranges and bulk data: the reference's limit, then our fuel.
    fails("[1..10000000000]", "D2014");
    fails("$count([1..9000000])", "U1002");
    // Doubling a string or an array: the memory budget stops it before
    // the fuel.
    fails(
        "$reduce([1..40], function($a, $b) { $a & $a }, 'xxxxxxxx')",
        "U1003",
    );
    fails(
        "$reduce([1..30], function($a, $b) { $append($a, $a) }, [1])",
        "U1003",
    );
    fails("$distinct([1..100000])", "U1002");
    fails("$pad('x', 100000000)", "U1002");
    // Millions of calls keep millions of frames until evaluation ends:
    // the budget stops them.
    fails(
        "($loop := function($n) { $n > 0 ? $loop($n - 1) : 0 }; [1..200000].$loop(20))",
        "U1003",
    );
}

#[test]
fn parse_errors_say_where() {
    let err = JsonataExpr::parse("{% $foo( %}").expect_err("unclosed call");
    match err {
        JsonataError::Syntax { code, offset, .. } => {
            assert!(code.starts_with('S'), "{code}");
            assert_eq!(offset, 8);
        }
        other => panic!("{other:?}"),
    }
    let err = JsonataExpr::parse("{%   1 + + %}").expect_err("bad operand");
    assert!(
        matches!(err, JsonataError::Syntax { offset: 9, .. }),
        "{err:?}"
    );
    assert!(JsonataExpr::parse("{% 'unterminated %}").is_err());
    assert!(JsonataExpr::parse("{% /[/ %}").is_err());
    assert!(JsonataExpr::parse(&format!("{{% {} %}}", "(".repeat(5000))).is_err());
}

/// Random bytes and random token soup into the parser and evaluator:
/// errors are fine, panics and hangs are not.
#[test]
fn hostile_input_never_panics() {
    const TOKENS: &[&str] = &[
        "$",
        "$$",
        "$x",
        "a",
        "b.c",
        "*",
        "**",
        "%",
        ".",
        "[",
        "]",
        "{",
        "}",
        "(",
        ")",
        ",",
        ";",
        ":",
        "?",
        "+",
        "-",
        "*",
        "/",
        "&",
        "=",
        "!=",
        "<",
        ">=",
        "~>",
        ":=",
        "..",
        "@$v",
        "#$i",
        "^(",
        ">",
        "|",
        "1",
        "0",
        "-1",
        "1e308",
        "'s'",
        "\"t\"",
        "true",
        "null",
        "function($a){",
        "λ($b)",
        "$map",
        "$sort",
        "$string",
        "$match",
        "/a+/",
        "/(/",
        "`x y`",
        " and ",
        " or ",
        " in ",
        "$sum",
        "$reduce",
        "$substring",
        "$formatNumber",
        "'#,##0.0'",
        "$fromMillis",
        "$pad",
        "$replace",
        "$split",
        "$partition",
        "$range",
        "$hash",
        "$parse",
        "$zip",
        "$keys",
        "$lookup",
        "$each",
        "$sift",
        "$spread",
        "$merge",
    ];
    let mut seed: u64 = 0x1234_5678_9abc_def0;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let input = json!({"a": [1, {"b": "x"}], "b": {"c": [true, null, 2.5]}, "x": "str"});
    for round in 0..6000 {
        let text: String = if round % 3 == 0 {
            (0..(next() % 24))
                .map(|_| (next() % 128) as u8 as char)
                .collect()
        } else {
            (0..(1 + next() % 12))
                .map(|_| TOKENS[(next() % TOKENS.len() as u64) as usize])
                .collect::<Vec<_>>()
                .join("")
        };
        let wrapped = format!("{{% {text} %}}");
        if let Ok(expr) = JsonataExpr::parse(&wrapped) {
            let result =
                expr.evaluate_with_input(Some(&input), &Vars(json!({"x": [1, 2]})), &mut Fixed(3));
            if let Err(e) = &result {
                assert_ne!(e.code, "U1000", "{text}: {e}");
            }
        }
    }
}

/// Evaluates `expr` with a memory budget of `memory` bytes.
fn eval_within(expr: &str, memory: usize) -> Result<Option<Value>, String> {
    let e = JsonataExpr::parse(&format!("{{% {expr} %}}")).map_err(|e| e.to_string())?;
    e.evaluate_within(&Vars(json!({})), &mut Fixed(1), memory)
        .map_err(|e| format!("{}: {}", e.code, e.message))
}

/// A budget of 4 MiB: each attack below builds four times that or more,
/// with little fuel, and its smaller twin passes within it.
const SMALL_BUDGET: usize = 4 << 20;

fn over_budget(expr: &str) {
    match eval_within(expr, SMALL_BUDGET) {
        Err(e) => assert!(e.starts_with("U1003"), "{expr}: {e}"),
        other => panic!("{expr}: expected U1003, got {other:?}"),
    }
}

fn within_budget(expr: &str) {
    let result = eval_within(expr, SMALL_BUDGET);
    assert!(result.is_ok(), "{expr}: {result:?}");
}

/// Every construct that builds strings, arrays or objects charges the
/// memory budget: one sequence per construct, the same shape smaller
/// passes.
#[test]
fn every_construct_charges_the_memory_budget() {
    let cases = [
        // (what builds, the attack, its small twin)
        (
            "&",
            "($s := $pad('', 65536); $count([1..100].($s & 'y')))",
            "($s := $pad('', 65536); $count([1..10].($s & 'y')))",
        ),
        (
            "$join",
            "($s := $pad('', 65536); $length($join([1..100].($s))))",
            "($s := $pad('', 65536); $length($join([1..10].($s))))",
        ),
        (
            "$pad",
            "$count([1..100].$pad('', 65536))",
            "$count([1..5].$pad('', 65536))",
        ),
        ("range", "$count([1..400000])", "$count([1..20000])"),
        (
            "$string",
            "($s := $pad('', 65536); $count([1..100].$string([$s])))",
            "($s := $pad('', 65536); $count([1..10].$string([$s])))",
        ),
        (
            "$split",
            "$count($split($pad('', 400000), ''))",
            "$count($split($pad('', 20000), ''))",
        ),
        (
            "$map",
            "$count($map([1..150000], function($v){ $v }))",
            "$count($map([1..1000], function($v){ $v }))",
        ),
        (
            "object constructor",
            "$count([1..100000].{'k' & $string($): $})",
            "$count([1..1000].{'k' & $string($): $})",
        ),
        (
            "$sort",
            "($a := [1..60000]; $count([1..5].$sort($a)))",
            "($a := [1..6000]; $count([1..5].$sort($a)))",
        ),
        (
            "$merge",
            "($o := $merge([1..1000].{'k' & $string($): 1}); $count([1..100].$keys($merge([$o, $o]))))",
            "($o := $merge([1..100].{'k' & $string($): 1}); $count([1..10].$keys($merge([$o, $o]))))",
        ),
        (
            "$spread",
            "($o := $merge([1..1000].{'k' & $string($): 1}); $count([1..100].$spread($o)))",
            "($o := $merge([1..100].{'k' & $string($): 1}); $count([1..10].$spread($o)))",
        ),
        (
            "$zip",
            "($a := [1..20000]; $count([1..20].$zip($a, $a, $a)))",
            "($a := [1..2000]; $count([1..5].$zip($a, $a, $a)))",
        ),
        (
            "$replace",
            "$length($replace($pad('', 65536, 'x'), /x/, $join([1..128].('$0'))))",
            "$length($replace($pad('', 1024, 'x'), /x/, $join([1..128].('$0'))))",
        ),
        (
            "$formatInteger (Roman)",
            "$length($formatInteger(1e11, 'I'))",
            "$length($formatInteger(1e6, 'I'))",
        ),
        (
            "$fromMillis (width)",
            "$length($fromMillis(0, '[Y,100000000]'))",
            "$length($fromMillis(0, '[Y,1000]'))",
        ),
        (
            "$formatNumber",
            "($p := $join([1..100000].('0')); $count([1..100].$formatNumber(1, $p)))",
            "($p := $join([1..100].('0')); $count([1..10].$formatNumber(1, $p)))",
        ),
        (
            "$uppercase",
            "($s := $pad('', 65536); $count([1..100].$uppercase($s)))",
            "($s := $pad('', 65536); $count([1..5].$uppercase($s)))",
        ),
        (
            "$base64encode",
            "($s := $pad('', 65536); $count([1..100].$base64encode($s)))",
            "($s := $pad('', 65536); $count([1..5].$base64encode($s)))",
        ),
        (
            "$parse",
            "($t := '[' & $join([1..10000].('1'), ',') & ']'; $count([1..20].$parse($t)))",
            "($t := '[' & $join([1..1000].('1'), ',') & ']'; $count([1..5].$parse($t)))",
        ),
        (
            "transform",
            "($o := {'a': [1..20000]}; $count([1..30].($o ~> |$|{'b': 1}|)))",
            "($o := {'a': [1..200]}; $count([1..3].($o ~> |$|{'b': 1}|)))",
        ),
        (
            "group by",
            "($a := [1..40000]; $count($keys($a{$string($): $})))",
            "($a := [1..2000]; $count($keys($a{$string($): $})))",
        ),
        (
            "filter",
            "($a := [1..20000]; $count([1..100].($a[$ > 0])))",
            "($a := [1..2000]; $count([1..10].($a[$ > 0])))",
        ),
    ];
    for (what, attack, twin) in cases {
        eprintln!("{what}");
        within_budget(twin);
        over_budget(attack);
    }
}

/// The attack as it was reported: `$join` of many copies of one large
/// string. It stops at the real budget, long before a gigabyte.
#[test]
fn join_of_a_gigabyte_stops_at_the_budget() {
    let started = std::time::Instant::now();
    let result = eval("($s := $pad('', 1000000, 'x'); $length($join([1..1000].($s))))");
    assert!(
        result.as_ref().is_err_and(|e| e.starts_with("U1003")),
        "{result:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

/// A result larger than the payload limit fails the evaluation, whether it
/// is one string or a small value that is huge as JSON.
#[test]
fn a_result_past_the_payload_limit_fails() {
    let limit = super::MAX_RESULT_BYTES;
    fails(&format!("$pad('', {})", limit + 1), "U1004");
    fails("($s := $pad('', 100000); [$s, $s, $s])", "U1004");
    // Just under the limit is fine (the quotes count).
    let fits = eval(&format!("$pad('', {})", limit - 2));
    assert!(fits.is_ok_and(|v| v.is_some()));
}

/// An error message quotes a value only when it is short.
#[test]
fn error_messages_do_not_quote_huge_values() {
    let e = eval("$number([$pad('', 100000)])").unwrap_err();
    assert!(e.len() < 200, "{e}");
    assert!(e.starts_with("D3030"), "{e}");
}

/// A value built a level at a time, by a fold, a recursive function, a
/// partial application or a chain, stops at the depth bound instead of
/// outgrowing the stack when it is converted, compared or dropped.
#[test]
fn values_nested_without_end_fail_one_evaluation() {
    for expr in [
        "$reduce([1..100000], function($a, $b) { {'a': $a} }, {})",
        "$reduce([1..100000], function($a, $b) { [[$a]] }, [])",
        "$reduce([1..100000], function($a, $b) { $map([1, 2], function($x) { $a }) }, [])",
        "($f := function($n, $v) { $n = 0 ? $v : $f($n - 1, {'a': $v}) }; $f(100000, 1))",
        "$reduce([1..100000], function($a, $b) { $a ~> $uppercase }, $lowercase)",
        "$reduce([1..100000], function($a, $b) { $append(?, $a) }, $string)",
    ] {
        match eval(expr) {
            Err(e) => assert!(
                e.starts_with("U1005") || e.starts_with("U1001") || e.starts_with("U1003"),
                "{expr}: {e}"
            ),
            Ok(v) => panic!("{expr}: expected a bound, got {}", v.is_some()),
        }
    }
    // The deepest value a payload may hold is far inside the bound.
    let hundred = "$reduce([1..99], function($a, $b) { {'a': $a} }, {})";
    let value = eval(hundred).unwrap().unwrap();
    let mut depth = 0;
    let mut at = &value;
    while let Some(inner) = at.get("a") {
        depth += 1;
        at = inner;
    }
    assert_eq!(depth, 99);
}

/// A sign is not a hexadecimal digit: `"\u+041"` and `%+1` are refused, as
/// jsonata-js and JavaScript's decodeURIComponent refuse them.
#[test]
fn a_sign_is_not_a_hex_digit() {
    let refused = |expr: &str, code: &str| {
        let e = eval(expr).expect_err(expr);
        assert!(e.contains(code), "{expr}: {e}");
    };
    refused(r#""\u+041""#, "S0104");
    check(r#""\u0041""#, json!("A"));
    check("$decodeUrlComponent('%41')", json!("A"));
    refused("$decodeUrlComponent('%+1')", "D3140");
}

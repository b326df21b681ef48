//! `stepline validate`: the corpus of invalid definitions, the conformance
//! definitions AWS accepted, hostile input, exit statuses and formats.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use crate::support::{TempDir, conformance_cases, repo_root, stepline};

/// One expected diagnostic: `LINE:COL SEVERITY CODE POINTER`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Expected {
    line: u64,
    column: u64,
    severity: String,
    code: String,
    pointer: String,
}

impl std::fmt::Display for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pointer = if self.pointer.is_empty() {
            "(root)"
        } else {
            &self.pointer
        };
        write!(
            f,
            "{}:{} {} {} {}",
            self.line, self.column, self.severity, self.code, pointer
        )
    }
}

fn parse_expected(text: &str) -> Vec<Expected> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| {
            let parts: Vec<&str> = line.splitn(4, ' ').collect();
            assert_eq!(parts.len(), 4, "bad expectation line: {line}");
            let (l, c) = parts[0].split_once(':').expect("LINE:COL");
            Expected {
                line: l.parse().expect("line"),
                column: c.parse().expect("column"),
                severity: parts[1].to_uppercase(),
                code: parts[2].to_owned(),
                pointer: if parts[3] == "(root)" {
                    String::new()
                } else {
                    parts[3].to_owned()
                },
            }
        })
        .collect()
}

fn actual(diagnostics: &Value) -> Vec<Expected> {
    diagnostics
        .as_array()
        .expect("diagnostics array")
        .iter()
        .map(|d| Expected {
            line: d["line"].as_u64().expect("line"),
            column: d["column"].as_u64().expect("column"),
            severity: d["severity"].as_str().expect("severity").to_owned(),
            code: d["code"].as_str().expect("code").to_owned(),
            pointer: d["location"].as_str().expect("location").to_owned(),
        })
        .collect()
}

/// Runs `validate --format json` over files and returns each file's report.
fn reports(files: &[PathBuf]) -> BTreeMap<String, Value> {
    let mut args = vec!["validate".into(), "--format".into(), "json".into()];
    args.extend(files.iter().map(|f| f.as_os_str().to_owned()));
    let run = stepline(&args);
    assert!(run.status <= 1, "validate failed to run: {}", run.stderr);
    run.stdout
        .lines()
        .map(|line| {
            let report: Value = serde_json::from_str(line).expect("one JSON object per line");
            (report["file"].as_str().expect("file").to_owned(), report)
        })
        .collect()
}

/// Every file in tests/validation/invalid/ produces exactly the diagnostics
/// its `.expected` file lists: code, pointer, line and column.
#[test]
fn invalid_corpus_reports_exactly_what_is_expected() {
    let dir = repo_root().join("tests/validation/invalid");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/validation/invalid exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 60,
        "the corpus has {} definitions; it should have at least 60",
        files.len()
    );
    let reports = reports(&files);
    let mut failures = Vec::new();
    for file in &files {
        let expected_path = file.with_extension("expected");
        let text = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|_| panic!("{} has no .expected file", file.display()));
        let mut expected = parse_expected(&text);
        expected.sort();
        let report = &reports[&file.display().to_string()];
        let mut got = actual(&report["diagnostics"]);
        got.sort();
        assert_eq!(
            report["result"],
            "FAIL",
            "{} should fail validation",
            file.display()
        );
        if got != expected {
            let show = |v: &[Expected]| {
                v.iter()
                    .map(|e| format!("    {e}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            failures.push(format!(
                "{}:\n  expected:\n{}\n  got:\n{}",
                file.file_name().unwrap_or_default().to_string_lossy(),
                show(&expected),
                show(&got)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} files differ:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

/// AWS accepted every recorded conformance definition, so must we.
#[test]
fn conformance_definitions_have_no_errors() {
    let Some(cases) = conformance_cases() else {
        eprintln!(
            "SKIPPED: ../shared/conformance/cases is absent; set STEPLINE_SHARED_DIR to run this test"
        );
        return;
    };
    let tmp = TempDir::new("conformance");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&cases).expect("read the cases") {
        let path = entry.expect("entry").path();
        let case: Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read a case")).expect("case JSON");
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let text = serde_json::to_string_pretty(&case["definition"]).expect("serialise");
        files.push(tmp.write(&name, text));
    }
    assert!(
        files.len() >= 200,
        "expected the conformance cases, found {}",
        files.len()
    );
    let run = stepline(&[&["validate".into()], files.as_slice()].concat());
    let errors: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.contains(": error["))
        .collect();
    assert!(
        errors.is_empty(),
        "AWS accepted these, stepline did not:\n{}",
        errors.join("\n")
    );
    assert_eq!(run.status, 0, "{}", run.stdout);
}

/// The state machines shipped as examples are valid.
#[test]
fn example_state_machines_are_valid() {
    let dir = repo_root().join("state-machines");
    let files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("state-machines/ exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert!(!files.is_empty(), "state-machines/ has no examples");
    let run = stepline(&[&["validate".into()], files.as_slice()].concat());
    assert_eq!(run.status, 0, "{}", run.stdout);
}

fn validate_one(bytes: &[u8]) -> (u8, Value) {
    let tmp = TempDir::new("one");
    let file = tmp.write("definition.json", bytes);
    let run = stepline(&[
        "validate".as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
        file.as_os_str(),
    ]);
    let report: Value = serde_json::from_str(run.stdout.trim()).expect("a JSON report");
    (run.status, report)
}

fn single_code(report: &Value) -> (String, u64, u64) {
    let diagnostics = report["diagnostics"].as_array().expect("diagnostics");
    assert_eq!(diagnostics.len(), 1, "{report}");
    let d = &diagnostics[0];
    (
        d["code"].as_str().expect("code").to_owned(),
        d["line"].as_u64().expect("line"),
        d["column"].as_u64().expect("column"),
    )
}

#[test]
fn hostile_input_gets_one_clear_diagnostic() {
    let deep = "[".repeat(100_000);
    let mut big = b"{\"Comment\": \"".to_vec();
    big.resize(50 * 1024 * 1024, b'x');
    let cases: Vec<(&str, Vec<u8>, &str, u64, u64)> = vec![
        ("empty", Vec::new(), "MISSING_DESCRIPTION", 1, 1),
        (
            "whitespace",
            b"  \n\t ".to_vec(),
            "MISSING_DESCRIPTION",
            1,
            1,
        ),
        (
            "binary",
            vec![0x00, 0x9f, 0x92, 0x96, 0xff, 0x10],
            "INVALID_JSON_DESCRIPTION",
            1,
            2,
        ),
        (
            "non-utf8",
            b"{\n  \"Comment\": \"caf\xe9\"\n}".to_vec(),
            "INVALID_JSON_DESCRIPTION",
            2,
            18,
        ),
        (
            "deep",
            deep.into_bytes(),
            "INVALID_JSON_DESCRIPTION",
            1,
            513,
        ),
        ("50 MiB", big, "DEFINITION_TOO_LARGE", 1, 1),
        (
            "truncated",
            b"{\"StartAt\": \"A\", \"States\": {".to_vec(),
            "INVALID_JSON_DESCRIPTION",
            1,
            29,
        ),
        ("array", b"[]".to_vec(), "SCHEMA_VALIDATION_FAILED", 1, 1),
    ];
    for (label, bytes, code, line, column) in cases {
        let (status, report) = validate_one(&bytes);
        assert_eq!(status, 1, "{label}: {report}");
        assert_eq!(report["result"], "FAIL", "{label}");
        assert_eq!(
            single_code(&report),
            (code.to_owned(), line, column),
            "{label}: {report}"
        );
    }
}

/// Nesting just under the parser's bound goes through every stage (schema,
/// builder, templates) without exhausting a test thread's stack.
#[test]
fn deep_but_legal_nesting_is_fine() {
    let depth = 500;
    let payload = format!("{}1{}", "{\"a\": ".repeat(depth), "}".repeat(depth));
    let text = format!(
        r#"{{"StartAt": "A", "States": {{"A": {{"Type": "Pass", "Parameters": {payload}, "End": true}}}}}}"#
    );
    let (status, report) = validate_one(text.as_bytes());
    assert_eq!(status, 0, "{report}");
}

#[test]
fn a_valid_definition_passes_with_status_zero() {
    let (status, report) =
        validate_one(br#"{"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}"#);
    assert_eq!(status, 0);
    assert_eq!(report["result"], "OK");
    assert_eq!(report["diagnostics"], serde_json::json!([]));
}

#[test]
fn warnings_alone_do_not_fail() {
    let (status, report) = validate_one(
        br#"{"StartAt": "A", "States": {"A": {"Type": "Succeed"}, "B": {"Type": "Succeed"}}}"#,
    );
    assert_eq!(status, 0, "{report}");
    assert_eq!(report["result"], "OK");
    assert_eq!(
        single_code(&report),
        ("UNREACHABLE_STATE".to_owned(), 1, 55)
    );
    assert_eq!(report["diagnostics"][0]["severity"], "WARNING");
}

#[test]
fn text_format_names_file_line_column_code_and_pointer() {
    let tmp = TempDir::new("text");
    let file = tmp.write(
        "m.json",
        "{\n  \"StartAt\": \"A\",\n  \"States\": {\n    \"A\": {\"Type\": \"Pass\", \"Next\": \"B\"}\n  }\n}\n",
    );
    let run = stepline(&["validate".as_ref(), file.as_os_str()]);
    assert_eq!(run.status, 1);
    let name = file.display();
    assert_eq!(
        run.stdout.lines().next(),
        Some(
            format!(
                "{name}:4:35: error[MISSING_TRANSITION_TARGET]: Next names the state 'B', but there is no state with that name (states here: A) (at /States/A/Next)"
            )
            .as_str()
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .ends_with("1 file checked: 1 with errors; 1 error, 0 warnings\n"),
        "{}",
        run.stdout
    );
}

#[test]
fn unreadable_files_and_bad_usage_exit_with_two() {
    let missing = stepline(&["validate", "/nonexistent/definition.json"]);
    assert_eq!(missing.status, 2);
    assert!(
        missing.stderr.contains("cannot read the file"),
        "{}",
        missing.stderr
    );
    let tmp = TempDir::new("usage");
    let directory = stepline(&["validate".as_ref(), tmp.path().as_os_str()]);
    assert_eq!(directory.status, 2, "{}", directory.stderr);
    assert_eq!(stepline(&["validate"]).status, 2);
    assert_eq!(
        stepline(&["validate", "--format", "yaml", "x.json"]).status,
        2
    );
    assert_eq!(stepline(&["frobnicate"]).status, 2);
    assert_eq!(stepline(&["--help"]).status, 0);
}

#[test]
fn one_bad_file_does_not_hide_the_others() {
    let tmp = TempDir::new("many");
    let good = tmp.write(
        "good.json",
        r#"{"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}"#,
    );
    let bad = tmp.write("bad.json", "{");
    let run = stepline(&["validate".as_ref(), bad.as_os_str(), good.as_os_str()]);
    assert_eq!(run.status, 1);
    assert!(
        run.stdout
            .contains("bad.json:1:2: error[INVALID_JSON_DESCRIPTION]"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .ends_with("2 files checked: 1 with errors; 1 error, 0 warnings\n"),
        "{}",
        run.stdout
    );
}

/// docs/validation.md explains every code the validator can produce.
#[test]
fn every_code_is_documented() {
    let doc = std::fs::read_to_string(repo_root().join("docs/validation.md"))
        .expect("docs/validation.md");
    let missing: Vec<&str> = stepline_language::asl::Code::ALL
        .iter()
        .map(|c| c.as_str())
        .filter(|code| !doc.contains(&format!("### {code} (")))
        .collect();
    assert!(missing.is_empty(), "undocumented codes: {missing:?}");
}

/// A diagnostic reads the same from `stepline validate`, from `stepline
/// serve --load` and from `stepline machines create`: `FILE:LINE:COL:
/// error[CODE]: message (at POINTER)`, `warning[...]` for a warning.
#[test]
fn every_command_writes_a_diagnostic_the_same_way() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::{Command, Stdio};

    let dir = TempDir::new("same-words");
    let data = TempDir::new("same-words-data");
    // An error ("Zebra" is no state, and near none) and a warning (Orphan).
    let file = dir.write(
        "typo.asl.json",
        "{\"StartAt\": \"A\", \"States\": {\n  \"A\": {\"Type\": \"Pass\", \"Next\": \"Zebra\"},\n  \"Orphan\": {\"Type\": \"Succeed\"}\n}}\n",
    );
    let name = file.display().to_string();
    let ours = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with(&format!("{name}:")))
            .map(str::to_owned)
            .collect()
    };

    let validated = stepline(&["validate".as_ref(), file.as_os_str()]);
    assert_eq!(validated.status, 1, "{validated:?}");
    let expected = ours(&validated.stdout);
    assert_eq!(
        expected,
        [
            format!(
                "{name}:2:33: error[MISSING_TRANSITION_TARGET]: Next names the state 'Zebra', but there is no state with that name (states here: A, Orphan) (at /States/A/Next)"
            ),
            format!(
                "{name}:3:3: warning[UNREACHABLE_STATE]: the state 'Orphan' can never run: no StartAt, Next, Default or Catch leads to it (at /States/Orphan)"
            ),
        ],
        "{}",
        validated.stdout
    );

    // serve --load reports the file before it prints its address.
    let mut serve = Command::new(env!("CARGO_BIN_EXE_stepline-under-test"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .arg("--load")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let mut line = String::new();
    BufReader::new(serve.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the address line");
    let endpoint = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();

    let created = stepline(&[
        "machines".as_ref(),
        "create".as_ref(),
        "copy".as_ref(),
        file.as_os_str(),
        "--endpoint".as_ref(),
        endpoint.as_ref(),
    ]);
    let _ = serve.kill();
    let _ = serve.wait();
    let mut loaded = String::new();
    serve
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut loaded)
        .expect("read");

    assert_eq!(created.status, 1, "{created:?}");
    assert_eq!(ours(&created.stderr), expected, "{}", created.stderr);
    assert_eq!(ours(&loaded), expected, "{loaded}");
}

//! The operator's day through the real binary: `-o` on every command that
//! prints results (and unknown values refused), one `--input` (text,
//! `@FILE`, `-`) for `run` and `start`, usage errors exit 2, `logs` with a
//! token, `history` fitted or `--wide` and its Parallel rows, times
//! labelled with their zone, one duration format, shell completions, the
//! triggers, Map Run, activity and redrive verbs, and `--version`.
//!
//! The helpers (the binary in pipes with NO_COLOR) are `cli.rs`'s.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::aws::Server;
use crate::cli::{BIN, FAILS, HELLO, LONG, Out, command, create, output, run, run_at};
use crate::rest::post;
use crate::support::{Serve, TempDir, stepline_binary};

/// Nothing listens on port 1: a usage error must be found before any
/// request, so it never says "cannot reach".
const NOWHERE: &str = "http://127.0.0.1:1";

/// Runs the binary with `stdin` as its standard input.
fn run_with_stdin(endpoint: &str, args: &[&str], stdin: &str) -> Out {
    let mut child = command(endpoint, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    Out {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn version_names_the_commit() {
    let out = run_at(NOWHERE, &["--version"]);
    assert_eq!(out.status, 0, "{out:?}");
    let line = out.stdout.trim();
    let (version, commit) = line
        .strip_prefix("stepline ")
        .and_then(|rest| rest.split_once(" (commit "))
        .unwrap_or_else(|| panic!("{line}"));
    assert_eq!(version, env!("CARGO_PKG_VERSION"));
    let commit = commit.strip_suffix(')').expect("closing parenthesis");
    assert!(
        commit == "unknown" || (commit.len() >= 7 && commit.chars().all(|c| c.is_ascii_hexdigit())),
        "{line}"
    );
}

/// `-o json` works on every command that prints results, `-o yaml` on
/// none (exit 2, before any request), and the old spellings still work.
#[test]
fn output_is_one_option_everywhere() {
    let dir = TempDir::new("cli-output");
    let file = dir.write("hello.asl.json", HELLO);
    let path = file.to_str().expect("utf-8");
    let commands: &[&[&str]] = &[
        &["validate", path],
        &["run", path],
        &["graph", path],
        &["machines", "list"],
        &["machines", "show", "x"],
        &["start", "x"],
        &["executions", "list"],
        &["executions", "describe", "x/y"],
        &["executions", "start", "x"],
        &["executions", "stop", "x/y"],
        &["executions", "redrive", "x/y"],
        &["stop", "x/y"],
        &["history", "x/y"],
        &["logs", "x/y"],
        &["triggers", "list"],
        &["triggers", "show", "t"],
        &["triggers", "enable", "t"],
        &["triggers", "disable", "t"],
        &[
            "triggers",
            "backfill",
            "t",
            "--from",
            "2026-01-01T00:00:00Z",
            "--to",
            "2026-01-02T00:00:00Z",
        ],
        &["map-runs", "list", "x/y"],
        &["map-runs", "show", "x/L:1"],
        &["activities", "list"],
    ];
    for args in commands {
        let mut bad = args.to_vec();
        bad.extend(["-o", "yaml"]);
        let out = run_at(NOWHERE, &bad);
        out.failed(2, "invalid value 'yaml'");
        assert!(
            out.stderr.contains("[possible values: text, json]"),
            "{out:?}"
        );
        let mut long = args.to_vec();
        long.extend(["--output", "json"]);
        let out = run_at(NOWHERE, &long);
        assert!(
            !out.stderr.contains("unexpected argument"),
            "{args:?}: {out:?}"
        );
    }
    // The local ones, for real.
    let out = run_at(NOWHERE, &["validate", path, "-o", "json"]);
    assert_eq!(out.json()["result"], "OK", "{out:?}");
    let old = run_at(NOWHERE, &["validate", path, "--format", "json"]);
    assert_eq!(old.stdout, out.stdout, "the old spelling");
    run_at(
        NOWHERE,
        &["validate", path, "--format", "json", "-o", "text"],
    )
    .failed(2, "cannot be used with");
    let out = run_at(
        NOWHERE,
        &["run", path, "-i", r#"{"name": "Ada"}"#, "-o", "json"],
    );
    assert_eq!(out.status, 0, "{out:?}");
    assert_eq!(out.json()["status"], "SUCCEEDED");
    assert_eq!(out.json()["output"], json!({"greeting": "Hello, Ada!"}));
    let fails = dir.write("fails.asl.json", FAILS);
    let out = run_at(
        NOWHERE,
        &["run", fails.to_str().expect("utf-8"), "-o", "json"],
    );
    assert_eq!(out.status, 1, "{out:?}");
    assert_eq!(
        (out.json()["status"].clone(), out.json()["error"].clone()),
        (json!("FAILED"), json!("Broken.Pipe"))
    );
    let graph = run_at(NOWHERE, &["graph", path, "-o", "json"]);
    assert_eq!(graph.status, 0, "{graph:?}");
    assert!(graph.json()["nodes"].is_array(), "{graph:?}");
    let old = run_at(NOWHERE, &["graph", path, "--format", "json"]);
    assert_eq!(old.stdout, graph.stdout, "the old spelling");
    run_at(NOWHERE, &["graph", path, "-o", "json", "--format", "dot"])
        .failed(2, "-o json writes the diagram as JSON");
    let dot = run_at(NOWHERE, &["graph", path, "--format", "dot", "-o", "text"]);
    assert!(dot.stdout.starts_with("digraph stepline {"), "{dot:?}");
}

/// `--input` is JSON text, `@FILE` or `-` (stdin), the same for `run`,
/// `start` and `executions start`; what is not JSON is a usage error.
#[test]
fn input_is_text_a_file_or_stdin_everywhere() {
    let server = Server::start();
    let dir = TempDir::new("cli-input");
    create(&server, &dir, "hello", HELLO);
    let file = dir.write("hello.asl.json", HELLO);
    let path = file.to_str().expect("utf-8");
    let input = dir.write("input.json", r#"{"name": "File"}"#);
    let at_file = format!("@{}", input.display());
    let endpoint = format!("http://{}", server.addr);

    let out = run_with_stdin(
        NOWHERE,
        &["run", path, "--input", "-"],
        r#"{"name": "Stdin"}"#,
    );
    assert_eq!(
        out.stdout.trim(),
        r#"{"greeting":"Hello, Stdin!"}"#,
        "{out:?}"
    );
    let out = run_at(NOWHERE, &["run", path, "-i", &at_file]);
    assert_eq!(
        out.stdout.trim(),
        r#"{"greeting":"Hello, File!"}"#,
        "{out:?}"
    );
    let out = run_at(NOWHERE, &["run", path, "--input-file", &at_file[1..]]);
    assert_eq!(
        out.stdout.trim(),
        r#"{"greeting":"Hello, File!"}"#,
        "the old spelling"
    );

    for start in [&["start"][..], &["executions", "start"][..]] {
        let mut args = start.to_vec();
        args.extend(["hello", "--input", "-", "--wait", "-o", "json"]);
        let out = run_with_stdin(&endpoint, &args, r#"{"name": "Piped"}"#);
        assert_eq!(out.status, 0, "{out:?}");
        assert_eq!(out.json()["output"]["greeting"], "Hello, Piped!");
        let mut args = start.to_vec();
        args.extend(["hello", "-i", &at_file, "--wait", "-o", "json"]);
        assert_eq!(
            run(&server, &args).json()["output"]["greeting"],
            "Hello, File!"
        );
        let mut args = start.to_vec();
        args.extend(["hello", "--input", "-"]);
        run_with_stdin(&endpoint, &args, "{not json").failed(2, "the input (stdin) is not JSON");
    }
    run_with_stdin(NOWHERE, &["run", path, "--input", "-"], "[1,")
        .failed(2, "the input (stdin) is not JSON");
    let huge = format!("\"{}\"", "x".repeat(300 * 1024));
    run_with_stdin(NOWHERE, &["run", path, "--input", "-"], &huge).failed(2, "larger than");
}

/// Mistakes in a command line exit with 2, before any request, whichever
/// command they are made in.
#[test]
fn usage_errors_exit_two_everywhere() {
    let long_error = "E".repeat(300);
    let commands: &[(&[&str], &str)] = &[
        (&["executions", "list", "--limit", "0"], "--limit"),
        (
            &["machines", "create", "x", "x.json", "--type", "QUICK"],
            "--type",
        ),
        (
            &[
                "triggers",
                "backfill",
                "t",
                "--from",
                "soon",
                "--to",
                "2026-01-01T00:00:00Z",
            ],
            "--from 'soon'",
        ),
        (
            &[
                "triggers",
                "backfill",
                "t",
                "--from",
                "2026-02-01T00:00:00Z",
                "--to",
                "2026-01-01T00:00:00Z",
            ],
            "is after --to",
        ),
        (&["backfill", "t", "--from", "x", "--to", "y"], "--from 'x'"),
        (&["map-runs", "show", "not-a-map-run"], "is not a Map Run"),
        (&["map-runs", "list", "no-slash"], "is not an execution"),
        (
            &["executions", "redrive", "no-slash"],
            "is not an execution",
        ),
        (&["logs", "no-slash"], "is not an execution"),
        (
            &["stop", "x/y", "--error", &long_error],
            "--error is 300 bytes",
        ),
        (&["completions", "tcsh"], "invalid value 'tcsh'"),
        (&["triggers", "lst"], "list"),
        (&["map-runs"], "Usage"),
        (&["history", "x/y", "--wide", "--wider"], "--wider"),
    ];
    for (args, needle) in commands {
        let out = run_at(NOWHERE, args);
        out.failed(2, needle);
        assert!(!out.stderr.contains("cannot reach"), "{args:?}: {out:?}");
    }
}

/// `stepline logs` goes through the shared client: against a server that
/// asks for a bearer token it sends STEPLINE_TOKEN, and without one it is
/// told 401 like every other command.
#[test]
fn logs_send_the_token() {
    let dir = TempDir::new("cli-logs-token");
    let token = "cli-token-0123456789";
    let config = dir.write(
        "stepline.toml",
        format!(
            "[[server.tokens]]\ntoken = \"{token}\"\n\n[tasks.processes.chatty]\ncommand = \"/bin/sh\"\nargs = [\"-c\", \"echo working hard >&2; cat\"]\n"
        ),
    );
    let serve = Serve::start_with(&stepline_binary(), &dir.path().join("data"), Some(&config));
    let endpoint = format!("http://{}", serve.addr);
    let definition = dir.write(
        "chatty.asl.json",
        r#"{"StartAt": "Talk", "States": {"Talk": {"Type": "Task", "Resource": "stepline:process:chatty", "End": true}}}"#,
    );
    let with_token = |args: &[&str]| {
        let mut c = command(&endpoint, args);
        c.env("STEPLINE_TOKEN", token);
        output(c)
    };
    let out = with_token(&[
        "machines",
        "create",
        "chatty",
        definition.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status, 0, "{out:?}");
    let out = with_token(&["start", "chatty", "--name", "c1", "--wait"]);
    assert_eq!(out.status, 0, "{out:?}");

    let out = with_token(&["logs", "chatty/c1"]);
    assert_eq!(out.status, 0, "{out:?}");
    assert!(
        out.stdout.starts_with("== Talk attempt 1 (task "),
        "{out:?}"
    );
    assert!(out.stdout.contains(" SUCCEEDED at "), "{out:?}");
    assert!(
        out.stdout
            .lines()
            .next()
            .is_some_and(|l| l.ends_with(" UTC")),
        "{out:?}"
    );
    assert!(out.stdout.contains("-- stderr\nworking hard\n"), "{out:?}");
    let json = with_token(&["logs", "chatty/c1", "-o", "json"]).json();
    assert_eq!(json["attempts"][0]["stderr"], "working hard\n");
    let human = with_token(&["logs", "chatty/c1", "--output", "human"]);
    assert_eq!(human.stdout, out.stdout, "the old spelling");

    // No token: refused, as any client command is.
    let out = run_at(&endpoint, &["logs", "chatty/c1"]);
    out.failed(1, "stepline logs: ");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    let listed = run_at(&endpoint, &["machines", "list"]);
    let code = |o: &Out| o.stderr.split(':').nth(1).map(str::trim).map(str::to_owned);
    assert_eq!(code(&out), code(&listed), "{out:?} {listed:?}");
}

const PARALLEL_FAILS: &str = r#"{"StartAt": "Fan", "States": {
  "Fan": {"Type": "Parallel", "Branches": [
      {"StartAt": "Fine", "States": {"Fine": {"Type": "Pass", "End": true}}},
      {"StartAt": "Boom", "States": {"Boom": {"Type": "Fail", "Error": "Branch.Broke", "Cause": "on purpose"}}}],
    "End": true}
}}"#;

/// 300 characters of output: more than any line shows unless asked.
const LONG_OUTPUT: &str = r#"{"StartAt": "Big", "States": {"Big": {"Type": "Pass", "Result": {"text": "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789-end"}, "End": true}}}"#;

/// The timeline: a ParallelStateFailed row names the Parallel state, not
/// the branch state that failed; details are cut to 80 characters in a
/// pipe, fit `$COLUMNS`, or come whole with `--wide`.
#[test]
fn history_fits_the_terminal_and_names_the_parallel_state() {
    let server = Server::start();
    let dir = TempDir::new("cli-history-ops");
    create(&server, &dir, "fan", PARALLEL_FAILS);
    create(&server, &dir, "big", LONG_OUTPUT);
    assert_eq!(
        run(&server, &["start", "fan", "--name", "f1", "--wait"]).status,
        3
    );
    assert_eq!(
        run(&server, &["start", "big", "--name", "b1", "--wait"]).status,
        0
    );

    let out = run(&server, &["history", "fan/f1"]);
    assert_eq!(out.status, 0, "{out:?}");
    let state_of = |kind: &str| -> Vec<String> {
        out.stdout
            .lines()
            .filter(|l| l.split_whitespace().nth(2) == Some(kind))
            .map(|l| l.split_whitespace().nth(3).unwrap_or("").to_owned())
            .collect()
    };
    assert_eq!(state_of("ParallelStateFailed"), ["Fan"], "{}", out.stdout);
    assert_eq!(state_of("ParallelStateStarted"), ["Fan"], "{}", out.stdout);
    assert_eq!(state_of("FailStateEntered"), ["Boom"], "{}", out.stdout);
    let failed = out
        .stdout
        .lines()
        .find(|l| l.contains("ExecutionFailed"))
        .expect("ExecutionFailed");
    assert!(
        failed.contains("error Branch.Broke: on purpose"),
        "{failed}"
    );

    let exited = |out: &Out| -> String {
        out.stdout
            .lines()
            .find(|l| l.contains("PassStateExited"))
            .unwrap_or_else(|| panic!("{out:?}"))
            .to_owned()
    };
    let piped = exited(&run(&server, &["history", "big/b1"]));
    let detail = &piped[piped.find("output ").expect("output")..];
    assert_eq!(detail.chars().count(), 80, "{piped}");
    assert!(detail.ends_with('…'), "{piped}");
    let mut wide_terminal = command(&format!("http://{}", server.addr), &["history", "big/b1"]);
    wide_terminal.env("COLUMNS", "200");
    let fitted = exited(&output(wide_terminal));
    assert_eq!(fitted.chars().count(), 200, "{fitted}");
    assert!(fitted.ends_with('…'), "{fitted}");
    let wide = exited(&run(&server, &["history", "big/b1", "--wide"]));
    assert!(wide.ends_with(r#"456789-end"}"#), "{wide}");
}

/// Times say their zone, UTC by default and the machine's with --local;
/// durations have one format.
#[test]
fn times_are_labelled_with_their_zone() {
    let server = Server::start();
    let dir = TempDir::new("cli-times");
    create(&server, &dir, "hello", HELLO);
    run(&server, &["start", "hello", "--name", "t1", "--wait"]);
    let endpoint = format!("http://{}", server.addr);
    let in_zone = |zone: &str, args: &[&str]| {
        let mut c = command(&endpoint, args);
        c.env("TZ", zone);
        output(c)
    };
    let utc = in_zone("IST-5:30", &["executions", "describe", "hello/t1"]);
    let started = |o: &Out| -> String {
        o.stdout
            .lines()
            .find_map(|l| l.strip_prefix("started:"))
            .map(|t| t.trim().to_owned())
            .unwrap_or_else(|| panic!("{o:?}"))
    };
    let utc_started = started(&utc);
    assert!(utc_started.ends_with(" UTC"), "{utc:?}");
    let local = in_zone(
        "IST-5:30",
        &["executions", "describe", "hello/t1", "--local"],
    );
    let local_started = started(&local);
    assert!(local_started.ends_with(" +05:30"), "{local:?}");
    assert_ne!(
        &utc_started[..16],
        &local_started[..16],
        "shifted by the offset"
    );
    let last_wins = in_zone(
        "IST-5:30",
        &["executions", "describe", "hello/t1", "--local", "--utc"],
    );
    assert_eq!(started(&last_wins), utc_started);
    let listed = in_zone("IST-5:30", &["executions", "list", "--local"]);
    assert!(listed.stdout.contains(" +05:30  "), "{listed:?}");
    let history = in_zone("IST-5:30", &["history", "hello/t1", "--local"]);
    assert!(history.stdout.starts_with("TIME (+05:30)"), "{history:?}");
    // The JSON is RFC 3339 in UTC whatever the option.
    let json = in_zone(
        "IST-5:30",
        &[
            "executions",
            "describe",
            "hello/t1",
            "--local",
            "-o",
            "json",
        ],
    )
    .json();
    assert!(
        json["startDate"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{json}"
    );
    // Durations: seconds with milliseconds under a minute.
    let duration = utc
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("duration:"))
        .map(str::trim)
        .expect("duration");
    let (seconds, millis) = duration
        .strip_suffix('s')
        .and_then(|d| d.split_once('.'))
        .unwrap_or_else(|| panic!("{duration}"));
    assert!(
        seconds.parse::<u32>().is_ok() && millis.len() == 3,
        "{duration}"
    );
}

#[test]
fn completions_are_written_for_each_shell() {
    for (shell, marker) in [
        ("bash", "_stepline()"),
        ("zsh", "#compdef stepline"),
        ("fish", "complete -c stepline"),
        ("elvish", "stepline"),
        ("powershell", "stepline"),
    ] {
        let out = run_at(NOWHERE, &["completions", shell]);
        assert_eq!(out.status, 0, "{shell}: {out:?}");
        assert!(out.stdout.contains(marker), "{shell}");
        for verb in ["triggers", "map-runs", "redrive", "backfill"] {
            assert!(out.stdout.contains(verb), "{shell} completes {verb}");
        }
    }
    // Bash reads it without complaint, where bash is installed.
    let script = run_at(NOWHERE, &["completions", "bash"]).stdout;
    if let Ok(check) = Command::new("bash").args(["-n", "-c", &script]).output() {
        assert!(
            check.status.success(),
            "{}",
            String::from_utf8_lossy(&check.stderr)
        );
    }
}

/// `triggers list|show|enable|disable|backfill`, the old `backfill`
/// spelling, and `--dry-run`.
#[test]
fn triggers_are_listed_shown_toggled_and_backfilled() {
    let server = Server::start();
    let dir = TempDir::new("cli-triggers");
    create(&server, &dir, "hello", HELLO);
    run_at(NOWHERE, &["triggers", "list"]).failed(1, "cannot reach");
    let created = post(
        &server,
        "/v1/triggers",
        r#"{"name": "hourly", "kind": "schedule", "stateMachine": "hello", "schedule": "rate(1 hour)", "input": {"name": "Cron"}}"#,
    );
    assert_eq!(created.status, 201, "{}", created.body);

    let out = run(&server, &["triggers", "list"]);
    assert_eq!(out.status, 0, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[0].starts_with("NAME    KIND      MACHINE  ENABLED  SOURCE"),
        "{out:?}"
    );
    assert!(
        lines[1].starts_with("hourly  schedule  hello    yes      rate(1 hour)"),
        "{out:?}"
    );
    assert!(
        lines[1].contains(" UTC"),
        "the next fire, with its zone: {out:?}"
    );
    let listed = run(&server, &["triggers", "list", "-o", "json"]).json();
    assert_eq!(listed["triggers"][0]["name"], "hourly");

    let out = run(&server, &["triggers", "show", "hourly"]);
    for expected in [
        "name:",
        "hourly",
        "kind:",
        "schedule",
        "source:",
        "rate(1 hour)",
        "next fire:",
    ] {
        assert!(out.stdout.contains(expected), "{expected}: {out:?}");
    }
    assert_eq!(
        run(&server, &["triggers", "show", "hourly", "-o", "json"]).json()["enabled"],
        true
    );
    run(&server, &["triggers", "show", "nope"]).failed(1, "TriggerDoesNotExist");

    let out = run(&server, &["triggers", "disable", "hourly"]);
    assert_eq!(out.stdout, "disabled trigger hourly\n", "{out:?}");
    assert_eq!(
        run(&server, &["triggers", "show", "hourly", "-o", "json"]).json()["enabled"],
        false
    );
    let enabled = run(&server, &["triggers", "enable", "hourly", "-o", "json"]).json();
    assert_eq!(enabled["enabled"], true);
    run(&server, &["triggers", "enable", "nope"]).failed(1, "TriggerDoesNotExist");

    let range = [
        "--from",
        "2026-01-01T00:00:00Z",
        "--to",
        "2026-01-01T05:00:00Z",
    ];
    let backfill = |extra: &[&str]| {
        let mut args = vec!["triggers", "backfill", "hourly"];
        args.extend_from_slice(&range);
        args.extend_from_slice(extra);
        run(&server, &args)
    };
    // One slot started before: the dry run says so.
    let mut first = vec![
        "triggers",
        "backfill",
        "hourly",
        "--from",
        "2026-01-01T00:00:00Z",
        "--to",
        "2026-01-01T00:00:00Z",
    ];
    first.extend(["-o", "json"]);
    assert_eq!(run(&server, &first).json()["started"], 1);
    let dry = backfill(&["--dry-run"]);
    assert_eq!(dry.status, 0, "{dry:?}");
    let lines: Vec<&str> = dry.stdout.lines().collect();
    assert_eq!(lines.len(), 1 + 6 + 1, "{dry:?}");
    assert!(
        lines[1].starts_with("2026-01-01 00:00:00 UTC  hourly-20260101T000000Z  already started"),
        "{dry:?}"
    );
    assert!(
        lines[6].starts_with("2026-01-01 05:00:00 UTC  hourly-20260101T050000Z  would start"),
        "{dry:?}"
    );
    assert!(
        lines[7].contains("6 slot(s)")
            && lines[7].contains("5 would start, 1 already started (dry run"),
        "{dry:?}"
    );
    let plan = backfill(&["--dry-run", "-o", "json"]).json();
    assert_eq!(
        (plan["dryRun"].clone(), plan["slots"].clone()),
        (json!(true), json!(6))
    );
    assert_eq!(
        plan["executions"][1],
        json!({"scheduledTime": "2026-01-01T01:00:00Z", "name": "hourly-20260101T010000Z", "exists": false})
    );
    // The backfilled executions (the live schedule may start others).
    let executions = || {
        let listed = run(
            &server,
            &["executions", "list", "--machine", "hello", "-o", "json"],
        )
        .json();
        listed["executions"]
            .as_array()
            .expect("executions")
            .iter()
            .filter(|e| {
                e["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("hourly-20260101T"))
            })
            .count()
    };
    assert_eq!(executions(), 1, "a dry run starts nothing");

    let out = backfill(&[]);
    assert_eq!(out.status, 0, "{out:?}");
    assert_eq!(
        out.stdout,
        "hourly: 6 slot(s) from 2026-01-01 00:00:00 UTC to 2026-01-01 05:00:00 UTC: 5 started, 1 already started\n"
    );
    assert_eq!(out.stderr, "", "no progress line off a terminal");
    assert_eq!(executions(), 6);
    // The old spelling, and JSON in the server's shape.
    let mut old = vec!["backfill", "hourly"];
    old.extend_from_slice(&range);
    old.extend(["-o", "json"]);
    let again = run(&server, &old).json();
    assert_eq!(
        (
            again["slots"].clone(),
            again["started"].clone(),
            again["existing"].clone(),
            again["errors"].clone()
        ),
        (json!(6), json!(0), json!(6), json!([]))
    );
    run(
        &server,
        &[
            "triggers",
            "backfill",
            "nope",
            "--from",
            "2026-01-01T00:00:00Z",
            "--to",
            "2026-01-01T01:00:00Z",
        ],
    )
    .failed(1, "TriggerDoesNotExist");

    // On a terminal, a progress line on stderr.
    if script_available() {
        let line = format!(
            "{BIN} triggers backfill hourly --from 2026-01-02T00:00:00Z --to 2026-01-04T23:00:00Z --endpoint http://{}",
            server.addr
        );
        let out = Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .expect("script");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        assert!(text.contains("BACKFILL hourly 50/72"), "{text:?}");
        assert!(text.contains("BACKFILL hourly 72/72"), "{text:?}");
        assert!(
            text.contains("72 slot(s)") && text.contains("72 started"),
            "{text:?}"
        );
    }
}

fn script_available() -> bool {
    let available = Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        eprintln!("skipped: `script` (util-linux) is not installed");
    }
    available
}

/// `executions redrive`, `map-runs list|show` and `activities list`.
#[test]
fn redrive_map_runs_and_activities() {
    let server = Server::start();
    let dir = TempDir::new("cli-verbs");
    // An execution stopped in a Wait state is redriven into it again.
    create(&server, &dir, "long", LONG);
    create(&server, &dir, "hello", HELLO);
    run(&server, &["start", "long", "--name", "r1"]);
    assert_eq!(run(&server, &["executions", "stop", "long/r1"]).status, 0);
    let out = run(&server, &["executions", "redrive", "long/r1"]);
    assert_eq!(out.status, 0, "{out:?}");
    assert_eq!(out.stdout, "redriven long/r1: RUNNING\n", "{out:?}");
    let history = run(&server, &["history", "long/r1", "-o", "json"]).json();
    assert!(
        history["events"]
            .as_array()
            .expect("events")
            .iter()
            .any(|e| e["type"] == "ExecutionRedriven"),
        "{history}"
    );
    let ok = run(
        &server,
        &[
            "start",
            "hello",
            "--name",
            "ok",
            "-i",
            r#"{"name": "Ok"}"#,
            "--wait",
        ],
    );
    assert_eq!(ok.status, 0, "{ok:?}");
    run(&server, &["executions", "redrive", "hello/ok"]).failed(1, "ExecutionNotRedrivable");
    run(&server, &["executions", "redrive", "hello/none"]).failed(1, "ExecutionDoesNotExist");

    let distributed = json!({"StartAt": "Fan", "States": {"Fan": {"Type": "Map",
        "ItemsPath": "$.items", "Label": "fan",
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "Item", "States": {"Item": {"Type": "Pass", "End": true}}},
        "End": true}}})
    .to_string();
    create(&server, &dir, "fan", &distributed);
    let out = run(
        &server,
        &[
            "start",
            "fan",
            "--name",
            "m1",
            "-i",
            r#"{"items": [1, 2, 3]}"#,
            "--wait",
        ],
    );
    assert_eq!(out.status, 0, "{out:?}");
    let out = run(&server, &["map-runs", "list", "fan/m1"]);
    assert_eq!(out.status, 0, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["MAP", "RUN", "STATUS", "STARTED", "DURATION", "ITEMS"]
    );
    assert!(lines[1].starts_with("fan/fan:"), "{out:?}");
    assert!(
        lines[1].contains("SUCCEEDED") && lines[1].ends_with("3/3 succeeded"),
        "{out:?}"
    );
    let runs = run(&server, &["map-runs", "list", "fan/m1", "-o", "json"]).json();
    let id = runs["mapRuns"][0]["id"].as_str().expect("id").to_owned();
    let arn = runs["mapRuns"][0]["arn"].as_str().expect("arn").to_owned();
    let shown = run(&server, &["map-runs", "show", &id]);
    for expected in [
        "map run:",
        "execution:",
        "fan/m1",
        "items:",
        "3/3 succeeded",
        "executions:",
    ] {
        assert!(shown.stdout.contains(expected), "{expected}: {shown:?}");
    }
    let by_arn = run(&server, &["map-runs", "show", &arn, "-o", "json"]).json();
    assert_eq!(by_arn["id"], id.as_str());
    assert_eq!(by_arn["itemCounts"]["succeeded"], 3);
    assert_eq!(by_arn["executionCounts"]["total"], 3);
    run(&server, &["map-runs", "show", "fan/fan:nope"]).failed(1, "ResourceNotFound");
    let out = run(&server, &["map-runs", "list", "hello/ok"]);
    assert_eq!(out.stdout, "no Map Runs in hello/ok\n", "{out:?}");

    assert_eq!(
        run(&server, &["activities", "list"]).stdout,
        "no activities\n"
    );
    for name in ["review", "approve"] {
        let (status, _) = server.call("CreateActivity", &json!({"name": name}).to_string());
        assert_eq!(status, 200);
    }
    let out = run(&server, &["activities", "list"]);
    let names: Vec<&str> = out
        .stdout
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(names, ["approve", "review"], "{out:?}");
    assert!(out.stdout.contains(" UTC  arn:aws:states:"), "{out:?}");
    let listed: Value = run(&server, &["activities", "list", "-o", "json"]).json();
    assert_eq!(listed["activities"][1]["name"], "review");
}

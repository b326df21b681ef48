//! The data directory through the doors an operator uses: a damaged
//! directory given to `stepline serve` and `stepline store check`, and a
//! backup taken from a running server with `stepline store backup`,
//! restored with `stepline store restore`, and served again.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Serve, TempDir, stepline, stepline_binary};

const MACHINE: &str = "arn:aws:states:us-east-1:111111111111:stateMachine:nap";
const NAP: &str =
    r#"{"StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "Seconds": 3600, "End": true}}}"#;
const DONE: &str = r#"{"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": true}}}"#;

/// A marker in every input, to find stored values in sled's file.
const MARKER: &str = "stepline-store-test-marker";

/// A server on `data` with one machine, `running` executions asleep and
/// `done` finished ones; the server is stopped with SIGTERM.
fn fill(data: &Path, running: usize, done: usize) {
    let serve = Serve::start(&stepline_binary(), data);
    for (name, definition) in [("nap", NAP), ("done", DONE)] {
        let created = serve.call(
            "CreateStateMachine",
            &json!({"name": name, "definition": definition, "roleArn": "arn:aws:iam::111111111111:role/r"}),
        );
        assert_eq!(created.0, 200, "{}", created.1);
    }
    let pad = "x".repeat(2000);
    for (machine, count) in [("nap", running), ("done", done)] {
        for i in 0..count {
            let input = json!({"marker": MARKER, "i": i, "pad": pad}).to_string();
            let started = serve.call(
                "StartExecution",
                &json!({
                    "stateMachineArn": MACHINE.replace(":nap", &format!(":{machine}")),
                    "name": format!("e{i}"),
                    "input": input,
                }),
            );
            assert_eq!(started.0, 200, "{}", started.1);
        }
    }
    terminate(serve);
}

/// SIGTERM, and the process's exit.
fn terminate(mut serve: Serve) {
    let status = Command::new("kill")
        .args(["-TERM", &serve.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while serve.child.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `stepline serve` on `data`, which must refuse it: its exit status and
/// what it wrote on stderr.
fn refused_serve(data: &Path) -> (i32, String) {
    let mut child = Command::new(stepline_binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve started on the damaged directory {}", data.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("stderr");
    (status.code().unwrap_or(-1), stderr)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

/// Where `needle` occurs in `haystack`.
fn marker_offsets(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
    haystack
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(at, _)| at)
        .collect()
}

#[test]
fn a_damaged_data_directory_is_refused_with_one_clear_message() {
    let root = TempDir::new("store-damage");
    let good = root.path().join("good");
    fill(&good, 10, 30);
    let checked = stepline(&[
        "store",
        "check",
        "--data-dir",
        good.to_str().expect("utf-8"),
    ]);
    assert_eq!(checked.status, 0, "{checked:?}");
    assert!(checked.stdout.contains("no problems found"), "{checked:?}");

    let db = std::fs::read(good.join("db")).expect("db");
    let truncated = root.path().join("truncated");
    copy_dir(&good, &truncated);
    std::fs::write(truncated.join("db"), &db[..db.len() / 3]).expect("truncate");

    let flipped = root.path().join("flipped");
    copy_dir(&good, &flipped);
    // One byte in every copy of the marker: some copies are in space sled
    // no longer reads (a flip there harms nothing), at least one is live.
    let mut bytes = db.clone();
    let copies = marker_offsets(&bytes, MARKER.as_bytes());
    assert!(!copies.is_empty(), "the marker is stored as written");
    for at in copies {
        bytes[at + 3] ^= 0x01;
    }
    std::fs::write(flipped.join("db"), &bytes).expect("flip");

    for damaged in [&truncated, &flipped] {
        let (status, stderr) = refused_serve(damaged);
        assert_ne!(status, 0, "{stderr}");
        assert!(
            stderr.contains("is damaged") && stderr.contains("stepline store restore"),
            "{}: {stderr}",
            damaged.display()
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(stderr.lines().count() <= 3, "one clear message: {stderr}");
        let checked = stepline(&[
            "store",
            "check",
            "--data-dir",
            damaged.to_str().expect("utf-8"),
        ]);
        assert_eq!(checked.status, 1, "{checked:?}");
        assert!(checked.stderr.contains("is damaged"), "{checked:?}");
    }
}

fn describe(serve: &Serve, machine: &str, name: &str) -> Value {
    let arn = format!("arn:aws:states:us-east-1:111111111111:execution:{machine}:{name}");
    let (status, described) = serve.call("DescribeExecution", &json!({"executionArn": arn}));
    assert_eq!(status, 200, "{described}");
    described
}

#[test]
fn a_backup_taken_while_serving_restores_every_execution() {
    let root = TempDir::new("store-backup");
    let data = root.path().join("data");
    fill(&data, 3, 5);
    let serve = Serve::start(&stepline_binary(), &data);
    let endpoint = format!("http://{}", serve.addr);
    let file = root.path().join("stepline.backup");
    let file_arg = file.to_str().expect("utf-8");
    let saved = stepline(&["store", "backup", file_arg, "--endpoint", &endpoint]);
    assert_eq!(saved.status, 0, "{saved:?}");
    assert!(saved.stdout.contains("checksum verified"), "{saved:?}");
    // Work done after the backup is not in it.
    let later = serve.call(
        "StartExecution",
        &json!({"stateMachineArn": MACHINE, "name": "after-the-backup", "input": "{}"}),
    );
    assert_eq!(later.0, 200, "{}", later.1);
    terminate(serve);

    // A damaged copy of the backup restores nothing.
    let mut damaged = std::fs::read(&file).expect("backup");
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x01;
    let damaged_file = root.path().join("damaged.backup");
    std::fs::write(&damaged_file, damaged).expect("write");
    let not_restored = root.path().join("not-restored");
    let refused = stepline(&[
        "store",
        "restore",
        damaged_file.to_str().expect("utf-8"),
        "--data-dir",
        not_restored.to_str().expect("utf-8"),
    ]);
    assert_eq!(refused.status, 1, "{refused:?}");
    assert!(refused.stderr.contains("checksum"), "{refused:?}");
    assert!(!not_restored.join("db").exists());

    let restored = root.path().join("restored");
    let restored_arg = restored.to_str().expect("utf-8");
    let done = stepline(&["store", "restore", file_arg, "--data-dir", restored_arg]);
    assert_eq!(done.status, 0, "{done:?}");
    let again = stepline(&["store", "restore", file_arg, "--data-dir", restored_arg]);
    assert_eq!(
        again.status, 1,
        "a restore never writes over a store: {again:?}"
    );

    let serve = Serve::start(&stepline_binary(), &restored);
    for i in 0..3 {
        assert_eq!(
            describe(&serve, "nap", &format!("e{i}"))["status"],
            "RUNNING"
        );
    }
    for i in 0..5 {
        let described = describe(&serve, "done", &format!("e{i}"));
        assert_eq!(described["status"], "SUCCEEDED");
        let input: Value =
            serde_json::from_str(described["input"].as_str().expect("input")).expect("input JSON");
        assert_eq!(input["i"], i);
    }
    let arn = "arn:aws:states:us-east-1:111111111111:execution:nap:after-the-backup";
    let (status, _) = serve.call("DescribeExecution", &json!({"executionArn": arn}));
    assert_eq!(
        status, 400,
        "the execution started after the backup is not in it"
    );
    // The restored sleepers still answer a stop: they resumed.
    let (status, body) = serve.call(
        "StopExecution",
        &json!({"executionArn": "arn:aws:states:us-east-1:111111111111:execution:nap:e0"}),
    );
    assert_eq!(status, 200, "{body}");
}

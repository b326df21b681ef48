//! Slowloris against the real `stepline serve`: `stepline-load --mode
//! slowloris` (the script behind the figures in docs/performance.md),
//! scaled down, holds more connections than the server's limit open with
//! request heads that never end, while it probes `/health`. Every probe
//! must be answered, and quickly: a server that lets the attack fill its
//! places makes probes wait for a place to free, for as long as the
//! attack's heads are allowed to take (seconds to tens of seconds).

use std::process::Command;
use std::time::Duration;

use crate::support::{Serve, TempDir, stepline_binary};

/// The numbers after `word` in the load tool's summary line.
fn figure(line: &str, word: &str) -> f64 {
    line.split(word)
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.trim_end_matches([',', ';']).parse().ok())
        .unwrap_or_else(|| panic!("no '{word}' in {line}"))
}

#[test]
fn health_answers_during_a_slowloris() {
    let dir = TempDir::new("slowloris");
    // A small server: the attack outnumbers its places.
    let config = dir.write("stepline.toml", "[server]\nmax_connections = 64\n");
    let server = Serve::start_with(&stepline_binary(), &dir.path().join("data"), Some(&config));
    let out = Command::new(env!("CARGO_BIN_EXE_stepline-load"))
        .args([
            "--mode",
            "slowloris",
            "--connections",
            "100",
            "--interval",
            "1",
        ])
        .args(["--seconds", "8", "--addr", &server.addr.to_string()])
        .output()
        .expect("stepline-load runs");
    let summary = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{summary}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ok = figure(&summary, "/health ");
    let failed = figure(&summary, "ok, ");
    let max_ms = figure(&summary, " max ");
    let p99_ms = figure(&summary, " p99 ");
    eprintln!("{summary}");
    assert!(ok >= 50.0, "too few probes: {summary}");
    assert_eq!(failed, 0.0, "probes got no answer: {summary}");
    // Generous on a shared 2-core machine; a starved server is tens of
    // seconds over it.
    let bound = Duration::from_secs(2).as_secs_f64() * 1000.0;
    assert!(max_ms < bound, "a probe waited {max_ms} ms: {summary}");
    assert!(p99_ms < bound, "{summary}");
    // The server still serves afterwards.
    let health = crate::rest::http(server.addr, "GET", "/health", &[], b"");
    assert_eq!(health.status, 200);
}

//! `stepline serve` on PostgreSQL (`--store` / `[store]`): the database
//! named by `STEPLINE_TEST_POSTGRES` (`tests/postgres/start` starts one),
//! each test in a schema of its own. Without it these tests say so and
//! pass, unless `STEPLINE_REQUIRE_POSTGRES=1` (as in CI).

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::json;

use crate::support::{Serve, TempDir, stepline_binary};

/// A config file putting the store in a new schema of the test database,
/// or `None` when no database is configured.
fn postgres_config(dir: &TempDir, test: &str) -> Option<std::path::PathBuf> {
    let Ok(url) = std::env::var("STEPLINE_TEST_POSTGRES") else {
        assert!(
            std::env::var("STEPLINE_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "STEPLINE_REQUIRE_POSTGRES=1 but STEPLINE_TEST_POSTGRES is not set"
        );
        eprintln!("{test}: skipped, STEPLINE_TEST_POSTGRES is not set (see tests/postgres/start)");
        return None;
    };
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let schema = format!(
        "e2e_{}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros()),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    Some(dir.write(
        "stepline.toml",
        format!("[store]\nurl = \"{url}\"\nschema = \"{schema}\"\n"),
    ))
}

#[test]
fn kill_9_on_postgresql_loses_nothing() {
    let binary = stepline_binary();
    let dir = TempDir::new("pg-crash");
    let Some(config) = postgres_config(&dir, "kill -9 on PostgreSQL") else {
        return;
    };
    // The data directory stays empty: everything is in the database.
    let data = dir.path().join("unused");
    crate::crash::kills_lose_nothing(|| Serve::start_with(&binary, &data, Some(&config)));
    assert!(!data.exists(), "a PostgreSQL node wrote a data directory");
}

#[test]
fn a_second_node_on_the_same_schema_is_refused_with_the_reason() {
    let binary = stepline_binary();
    let dir = TempDir::new("pg-two");
    let Some(config) = postgres_config(&dir, "second node") else {
        return;
    };
    let first = Serve::start_with(&binary, &dir.path().join("a"), Some(&config));
    let created = first.call("CreateActivity", &json!({"name": "still-serving"}));
    assert_eq!(created.0, 200, "{}", created.1);
    let second = Command::new(&binary)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("b"))
        .arg("--config")
        .arg(&config)
        .output()
        .expect("runs");
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("another stepline node serves this database"),
        "{stderr}"
    );
    // The first node kept serving.
    let (status, listed) = first.call("ListActivities", &json!({}));
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["activities"][0]["name"], "still-serving");
}

#[test]
fn an_unreachable_database_stops_the_start_with_a_clear_error() {
    let binary = stepline_binary();
    let dir = TempDir::new("pg-down");
    let out = Command::new(&binary)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .args(["--store", "postgres://stepline:hunter2@127.0.0.1:1/none"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot open the store at postgres://stepline:***@127.0.0.1:1/none"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn store_migrate_creates_the_schema_once() {
    let dir = TempDir::new("pg-migrate");
    let Some(config) = postgres_config(&dir, "store migrate") else {
        return;
    };
    let config = config.to_str().expect("utf-8 path");
    let first = crate::support::stepline(&["store", "migrate", "--config", config]);
    assert_eq!(first.status, 0, "{}", first.stderr);
    assert!(
        first.stdout.contains("migrated from version 0 to 1"),
        "{}",
        first.stdout
    );
    let again = crate::support::stepline(&["store", "migrate", "--config", config]);
    assert_eq!(again.status, 0, "{}", again.stderr);
    assert!(
        again.stdout.contains("is at version 1: nothing to do"),
        "{}",
        again.stdout
    );
    let none = crate::support::stepline(&["store", "migrate"]);
    assert_eq!(none.status, 2, "{}", none.stderr);
    assert!(
        none.stderr.contains("no PostgreSQL database given"),
        "{}",
        none.stderr
    );
}

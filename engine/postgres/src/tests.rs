//! The shared store suite, on a real PostgreSQL: `STEPLINE_TEST_POSTGRES`
//! names it (`tests/postgres/start` starts one and prints its URL). Without
//! it the tests say so and pass, unless `STEPLINE_REQUIRE_POSTGRES=1` (as
//! in CI), which makes a missing database a failure.

use std::sync::atomic::{AtomicU64, Ordering};

use stepline_store::{Executions, Histories, Store, StoreError, WriteBatch, WriteOp};

use super::*;

/// Options for a schema of its own, new to this run, or `None` (and why)
/// when no database is configured.
pub(crate) fn fresh_options(what: &str) -> Option<PostgresOptions> {
    let Ok(url) = std::env::var("STEPLINE_TEST_POSTGRES") else {
        assert!(
            std::env::var("STEPLINE_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "STEPLINE_REQUIRE_POSTGRES=1 but STEPLINE_TEST_POSTGRES is not set"
        );
        eprintln!("{what}: skipped, STEPLINE_TEST_POSTGRES is not set (see tests/postgres/start)");
        return None;
    };
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut options = PostgresOptions::new(url);
    options.schema = format!(
        "test_{}_{}_{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    Some(options)
}

#[test]
fn the_store_suite_passes_on_postgresql() {
    let Some(base) = fresh_options("the store suite") else {
        return;
    };
    let mut n = 0;
    stepline_store::suite::run_all(|_| {
        n += 1;
        let mut options = base.clone();
        options.schema = format!("{}_{n}", base.schema);
        PostgresStore::open(&options).unwrap()
    });
}

#[test]
fn a_second_open_finds_the_schema_migrated_and_the_data_kept() {
    let Some(options) = fresh_options("reopen") else {
        return;
    };
    assert_eq!(
        PostgresStore::migrate(&options).unwrap(),
        Migrated {
            from: 0,
            to: SCHEMA_VERSION
        }
    );
    let store = PostgresStore::open(&options).unwrap();
    let mut batch = WriteBatch::new();
    batch.push(WriteOp::PutEndedNotice("arn:one".to_owned()));
    store.apply(&batch).unwrap();
    store.flush().unwrap();
    drop(store);
    assert_eq!(
        PostgresStore::migrate(&options).unwrap(),
        Migrated {
            from: SCHEMA_VERSION,
            to: SCHEMA_VERSION
        }
    );
    let store = PostgresStore::open(&options).unwrap();
    assert_eq!(
        stepline_store::EndedNotices::ended_notices(&store).unwrap(),
        ["arn:one"]
    );
}

#[test]
fn a_schema_name_that_is_not_plain_is_refused() {
    let mut options = PostgresOptions::new("postgres://nobody@127.0.0.1:1/none");
    options.schema = "x; DROP TABLE executions".to_owned();
    let e = PostgresStore::open(&options).unwrap_err();
    assert!(
        e.to_string().contains("not a plain lowercase identifier"),
        "{e}"
    );
}

#[test]
fn an_unreachable_database_is_an_error_that_says_so() {
    let mut options = PostgresOptions::new("postgres://nobody@127.0.0.1:1/none");
    options.schema = "stepline".to_owned();
    let e = PostgresStore::open(&options).unwrap_err();
    assert!(e.is_io(), "{e:?}");
    assert!(e.to_string().contains("PostgreSQL"), "{e}");
}

#[test]
fn a_store_used_from_an_async_worker_answers() {
    let Some(options) = fresh_options("async caller") else {
        return;
    };
    let store = std::sync::Arc::new(PostgresStore::open(&options).unwrap());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let answered = runtime.block_on({
        let store = std::sync::Arc::clone(&store);
        async move { store.history_len("arn:none") }
    });
    assert_eq!(answered.unwrap(), 0);
    assert!(matches!(store.execution("arn:none"), Ok(None)));
    // Dropped on a runtime's thread: the store's own runtime must not
    // panic going away.
    runtime.block_on(async move { drop(store) });
    let _: Option<StoreError> = None;
}

#[test]
fn a_second_node_on_one_schema_is_refused() {
    let Some(options) = fresh_options("second node") else {
        return;
    };
    let first = PostgresStore::open(&options).unwrap();
    first.hold_sole_node().unwrap();
    let second = PostgresStore::open(&options).unwrap();
    let e = second.hold_sole_node().unwrap_err();
    assert!(e.to_string().contains("another stepline node"), "{e}");
    drop(first);
    // The lock goes with the first node's session.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while second.hold_sole_node().is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the lock was never released"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn a_copy_into_postgresql_and_back_keeps_everything() {
    let Some(options) = fresh_options("copy") else {
        return;
    };
    let store = PostgresStore::open(&options).unwrap();
    stepline_store::suite::check_copy_between(&stepline_store::MemoryStore::new(), &store);
    let back = stepline_store::MemoryStore::new();
    stepline_store::copy::copy(&store, &back, &mut |_| {}).unwrap();
    assert_eq!(
        stepline_store::StateMachines::state_machines(&back).unwrap(),
        stepline_store::StateMachines::state_machines(&store).unwrap()
    );
}

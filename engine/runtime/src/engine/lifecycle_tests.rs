use std::sync::Arc;

use chrono::{TimeZone, Utc};

use super::tests::TokioClock;
use super::{Engine, EngineConfig, EngineError};
use crate::Clock;
use crate::{TaskCall, TaskFuture, TaskRunner};
use stepline_language::interp::Failure;
use stepline_store::{MemoryStore, WorkflowType};

struct NoTasks;

impl TaskRunner for NoTasks {
    fn run(&self, _: TaskCall) -> TaskFuture {
        Box::pin(async { Err(Failure::new("States.TaskFailed", "none")) })
    }
}

#[tokio::test(start_paused = true)]
async fn closed_executions_are_purged_after_the_retention_period() {
    let clock = TokioClock::starting_at(
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .expect("date"),
    );
    let config = EngineConfig {
        retention: Some(chrono::Duration::days(2)),
        ..EngineConfig::default()
    };
    let engine = Engine::open(
        Arc::new(MemoryStore::new()),
        Arc::new(NoTasks),
        clock,
        config,
    )
    .expect("open");
    let machine = engine
        .create_state_machine(
            "m",
            r#"{"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 172800, "End": true}}}"#,
            None,
            WorkflowType::Standard,
        ).await
        .expect("create");
    let quick = engine
        .start_execution(&machine.arn, Some("quick"), None)
        .await
        .expect("start");
    engine.stop_execution(&quick.arn, None, None).expect("stop");
    engine.wait_for(&quick.arn).await.expect("stopped");
    let slow = engine
        .start_execution(&machine.arn, Some("slow"), None)
        .await
        .expect("start");
    // Day 2 and a bit: `quick` closed more than 2 days ago is not yet
    // true; `slow` is still running. Nothing goes.
    tokio::time::sleep(std::time::Duration::from_secs(36 * 3600)).await;
    assert_eq!(engine.purge_expired().await.expect("purge"), 0);
    // Past day 3: `quick` is gone (by the hourly purge), `slow` closed at
    // day 2 and stays.
    tokio::time::sleep(std::time::Duration::from_secs(26 * 3600)).await;
    assert!(matches!(
        engine.describe_execution(&quick.arn),
        Err(EngineError::ExecutionDoesNotExist(_))
    ));
    let slow = engine.describe_execution(&slow.arn).expect("kept");
    assert_eq!(slow.status, stepline_store::ExecutionStatus::Succeeded);
    assert_eq!(engine.history_len(&slow.arn).expect("len"), 4);
}

/// A restart resumes executions of an older revision with that
/// revision, and executions of a deleted state machine at all; an
/// EXPRESS execution (never journaled) ends FAILED instead.
#[tokio::test(start_paused = true)]
async fn restarts_resume_old_revisions_and_deleted_machines() {
    let clock = TokioClock::starting_at(
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .expect("date"),
    );
    let store: Arc<MemoryStore> = Arc::new(MemoryStore::new());
    let wait_then = |result: &str| -> String {
        format!(
            r#"{{"StartAt": "W", "States": {{"W": {{"Type": "Wait", "Seconds": 60, "Next": "R"}},
                "R": {{"Type": "Pass", "Result": "{result}", "End": true}}}}}}"#
        )
    };
    let open = || {
        Engine::open(
            Arc::clone(&store) as Arc<dyn stepline_store::Store>,
            Arc::new(NoTasks),
            Arc::clone(&clock) as Arc<dyn Clock>,
            EngineConfig::default(),
        )
        .expect("open")
    };
    // The first life runs on a runtime of its own, dropped at the end
    // with every task on it: what a crash leaves is the store alone.
    let (kept_arn, old_arn, orphan_arn, express_arn) = {
        let store = Arc::clone(&store);
        let base = clock.now();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .start_paused(true)
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let engine = Engine::open(
                    store,
                    Arc::new(NoTasks),
                    TokioClock::starting_at(base),
                    EngineConfig::default(),
                )
                .expect("open");
                let kept = engine
                    .create_state_machine("kept", &wait_then("first"), None, WorkflowType::Standard)
                    .await
                    .expect("create");
                let gone = engine
                    .create_state_machine(
                        "gone",
                        &wait_then("orphan"),
                        None,
                        WorkflowType::Standard,
                    )
                    .await
                    .expect("create");
                let old = engine
                    .start_execution(&kept.arn, Some("old"), None)
                    .await
                    .expect("start");
                let orphan = engine
                    .start_execution(&gone.arn, Some("orphan"), None)
                    .await
                    .expect("start");
                engine
                    .update_state_machine(&kept.arn, Some(&wait_then("second")), None)
                    .await
                    .expect("update");
                engine
                    .delete_state_machine(&gone.arn)
                    .await
                    .expect("delete");
                let fast = engine
                    .create_state_machine("fast", &wait_then("never"), None, WorkflowType::Express)
                    .await
                    .expect("create");
                let express = engine
                    .start_execution(&fast.arn, Some("express"), None)
                    .await
                    .expect("start");
                assert_eq!(
                    engine.history_len(&express.arn).expect("len"),
                    0,
                    "EXPRESS keeps no history"
                );
                (kept.arn, old.arn, orphan.arn, express.arn)
            })
        })
        .join()
        .expect("the first life")
    };
    // A fresh engine on the same store: what a restart sees.
    let engine = open();
    let old = engine.wait_for(&old_arn).await.expect("old ends");
    assert_eq!(old.output.as_deref(), Some("\"first\""));
    let orphan = engine.wait_for(&orphan_arn).await.expect("orphan ends");
    let express = engine.describe_execution(&express_arn).expect("express");
    assert_eq!(express.status, stepline_store::ExecutionStatus::Failed);
    assert_eq!(express.error.as_deref(), Some("States.Runtime"));
    assert_eq!(orphan.output.as_deref(), Some("\"orphan\""));
    let new = engine
        .start_execution(&kept_arn, Some("new"), None)
        .await
        .expect("start");
    let new = engine.wait_for(&new.arn).await.expect("new ends");
    assert_eq!(new.output.as_deref(), Some("\"second\""));
}

//! The trigger driver against a real engine on a memory store, with a
//! manual clock: schedules fire by calling `tick` at chosen instants, never
//! by waiting.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use stepline_runtime::{Engine, EngineConfig, ManualClock, TaskCall, TaskFuture, TaskRunner};
use stepline_store::{ExecutionQuery, ExecutionsOf, MemoryStore, WorkflowType};

use super::{Kind, TriggerSpec, Triggers, slot_id};

#[derive(Debug)]
struct NoTasks;

impl TaskRunner for NoTasks {
    fn run(&self, _call: TaskCall) -> TaskFuture {
        Box::pin(async {
            Err(stepline_language::interp::Failure::new(
                "States.TaskFailed",
                "no tasks here",
            ))
        })
    }
}

const PASS: &str = r#"{"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}"#;

fn t(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("time")
        .with_timezone(&Utc)
}

struct Setup {
    clock: Arc<ManualClock>,
    engine: Engine,
    triggers: Triggers,
}

async fn setup(start: &str) -> Setup {
    let clock = Arc::new(ManualClock::new(t(start)));
    let engine = Engine::open(
        Arc::new(MemoryStore::new()),
        Arc::new(NoTasks),
        clock.clone(),
        EngineConfig::default(),
    )
    .expect("engine");
    engine
        .create_state_machine("etl", PASS, None, WorkflowType::Standard)
        .await
        .expect("machine");
    let triggers = Triggers::new(engine.clone(), &[]).expect("triggers");
    Setup {
        clock,
        engine,
        triggers,
    }
}

fn schedule(name: &str, expr: &str, catch_up: &str) -> TriggerSpec {
    serde_json::from_value(json!({
        "name": name, "kind": "schedule", "state_machine": "etl",
        "schedule": expr, "catch_up": catch_up,
    }))
    .expect("spec")
}

impl Setup {
    fn at(&self, time: &str) {
        let now = self.clock.now_for_tests();
        self.clock.advance(t(time) - now);
    }

    /// Execution names, sorted.
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .engine
            .list_executions(&ExecutionQuery::new(ExecutionsOf::All, 1000))
            .expect("list")
            .executions
            .into_iter()
            .map(|e| e.name)
            .collect();
        names.sort();
        names
    }
}

trait Now {
    fn now_for_tests(&self) -> DateTime<Utc>;
}

impl Now for ManualClock {
    fn now_for_tests(&self) -> DateTime<Utc> {
        stepline_runtime::Clock::now(self)
    }
}

#[tokio::test]
async fn a_schedule_fires_each_slot_once_with_its_time() {
    let s = setup("2026-03-01T09:58:30Z").await;
    s.triggers
        .create(schedule("hourly", "cron(0 * * * ? *)", "latest"))
        .await
        .expect("create");
    // Created at 09:58:30: the next slot is 10:00, nothing before it.
    let next = s.triggers.tick().await;
    assert_eq!(next, t("2026-03-01T09:58:31Z"), "sleeps at most a second");
    assert_eq!(s.names(), Vec::<String>::new());
    let (_, state) = s.triggers.get("hourly").expect("get");
    assert_eq!(state.next_fire, Some(t("2026-03-01T10:00:00Z")));

    s.at("2026-03-01T10:00:00Z");
    s.triggers.tick().await;
    s.triggers.tick().await; // again at the same instant: nothing new
    s.at("2026-03-01T10:00:40Z");
    s.triggers.tick().await;
    assert_eq!(s.names(), vec!["hourly-20260301T100000Z"]);
    let listed = s
        .engine
        .list_executions(&ExecutionQuery::new(ExecutionsOf::All, 1))
        .expect("list")
        .executions
        .pop()
        .expect("one");
    let execution = s.engine.describe_execution(&listed.arn).expect("describe");
    let input: Value = serde_json::from_str(&execution.input).expect("json");
    assert_eq!(
        input,
        json!({"trigger": "hourly", "kind": "schedule", "scheduledTime": "2026-03-01T10:00:00Z"})
    );
    let (_, state) = s.triggers.get("hourly").expect("get");
    assert_eq!(state.fired, 1);
    assert_eq!(state.last_slot, Some(t("2026-03-01T10:00:00Z")));
    assert_eq!(state.next_fire, Some(t("2026-03-01T11:00:00Z")));
    assert_eq!(state.last_fired, Some(t("2026-03-01T10:00:00Z")));
    assert_eq!(state.last_error, None);
    assert_eq!(
        state.last_execution.as_deref(),
        Some(execution.arn.as_str())
    );

    s.at("2026-03-01T11:00:00Z");
    s.triggers.tick().await;
    assert_eq!(
        s.names(),
        vec!["hourly-20260301T100000Z", "hourly-20260301T110000Z"]
    );
}

/// Five slots missed while "down" (no tick between 10:00 and 15:00:30).
async fn after_downtime(policy: &str) -> Vec<String> {
    let s = setup("2026-03-01T09:59:00Z").await;
    s.triggers
        .create(schedule("s", "rate(1 hour)", policy))
        .await
        .expect("create");
    s.triggers.tick().await;
    s.at("2026-03-01T15:00:30Z");
    s.triggers.tick().await;
    s.triggers.tick().await;
    let (_, state) = s.triggers.get("s").expect("get");
    assert_eq!(state.last_slot, Some(t("2026-03-01T15:00:00Z")), "{policy}");
    assert_eq!(state.next_fire, Some(t("2026-03-01T16:00:00Z")), "{policy}");
    s.names()
}

#[tokio::test]
async fn catch_up_policies() {
    let all: Vec<String> = (10..=15).map(|h| format!("s-20260301T{h}0000Z")).collect();
    assert_eq!(after_downtime("all").await, all);
    assert_eq!(after_downtime("latest").await, vec!["s-20260301T150000Z"]);
    // 15:00 is 30 s late: still on time, so "none" fires it, not the rest.
    assert_eq!(after_downtime("none").await, vec!["s-20260301T150000Z"]);
}

#[tokio::test]
async fn none_skips_a_slot_that_is_long_past() {
    let s = setup("2026-03-01T09:59:00Z").await;
    s.triggers
        .create(schedule("s", "rate(1 hour)", "none"))
        .await
        .expect("create");
    s.triggers.tick().await;
    s.at("2026-03-01T10:05:00Z");
    s.triggers.tick().await;
    assert_eq!(s.names(), Vec::<String>::new());
    let (_, state) = s.triggers.get("s").expect("get");
    assert_eq!(state.last_slot, Some(t("2026-03-01T10:00:00Z")));
}

/// A crash after the execution started but before the cursor moved: the
/// slot is found again, its execution exists, nothing is started twice
/// and the cursor moves on.
#[tokio::test]
async fn a_crash_between_start_and_cursor_starts_nothing_twice() {
    let s = setup("2026-03-01T09:59:00Z").await;
    s.triggers
        .create(schedule("s", "rate(1 hour)", "all"))
        .await
        .expect("create");
    s.triggers.tick().await;
    s.at("2026-03-01T10:00:00Z");
    let machine = super::machine_arn(&s.engine, "etl");
    let input =
        json!({"trigger": "s", "kind": "schedule", "scheduledTime": "2026-03-01T10:00:00Z"});
    s.engine
        .start_execution(
            &machine,
            Some("s-20260301T100000Z"),
            Some(&input.to_string()),
        )
        .await
        .expect("started before the crash");
    s.triggers.tick().await;
    assert_eq!(s.names(), vec!["s-20260301T100000Z"]);
    let (_, state) = s.triggers.get("s").expect("get");
    assert_eq!(state.last_error, None);
    assert_eq!(state.last_slot, Some(t("2026-03-01T10:00:00Z")));
}

#[tokio::test]
async fn a_failed_start_is_recorded_and_tried_again() {
    let s = setup("2026-03-01T09:59:00Z").await;
    let mut spec = schedule("s", "rate(1 hour)", "all");
    spec.state_machine = "missing".into();
    s.triggers.create(spec).await.expect("create");
    s.triggers.tick().await;
    s.at("2026-03-01T10:00:00Z");
    s.triggers.tick().await;
    let (_, state) = s.triggers.get("s").expect("get");
    assert!(
        state
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("State Machine Does Not Exist")),
        "{state:?}"
    );
    assert!(state.last_slot < Some(t("2026-03-01T10:00:00Z")));
    s.engine
        .create_state_machine("missing", PASS, None, WorkflowType::Standard)
        .await
        .expect("machine");
    // Within the retry delay nothing is tried; after it, the slot fires.
    s.at("2026-03-01T10:00:05Z");
    s.triggers.tick().await;
    assert_eq!(s.names(), Vec::<String>::new());
    s.at("2026-03-01T10:00:11Z");
    s.triggers.tick().await;
    assert_eq!(s.names(), vec!["s-20260301T100000Z"]);
    let (_, state) = s.triggers.get("s").expect("get");
    assert_eq!(state.last_error, None);
}

#[tokio::test]
async fn disabled_schedules_fire_nothing_and_resume_from_now() {
    let s = setup("2026-03-01T09:59:00Z").await;
    s.triggers
        .create(schedule("s", "rate(1 hour)", "all"))
        .await
        .expect("create");
    s.triggers.tick().await;
    let (_, state) = s.triggers.get("s").expect("get");
    assert_eq!(state.next_fire, Some(t("2026-03-01T10:00:00Z")));
    s.triggers.set_enabled("s", false).await.expect("disable");
    s.at("2026-03-01T12:30:00Z");
    s.triggers.tick().await;
    assert_eq!(s.names(), Vec::<String>::new());
    // Nothing is due while disabled: no next fire, listed or not.
    let (_, state) = s.triggers.get("s").expect("get");
    assert_eq!(state.next_fire, None);
    let listed = s.triggers.list().expect("list");
    assert_eq!(listed[0].1.next_fire, None);
    s.triggers.set_enabled("s", true).await.expect("enable");
    s.triggers.tick().await;
    assert_eq!(
        s.names(),
        Vec::<String>::new(),
        "no catch-up of disabled time"
    );
    s.at("2026-03-01T13:00:00Z");
    s.triggers.tick().await;
    assert_eq!(s.names(), vec!["s-20260301T130000Z"]);
}

#[tokio::test]
async fn backfill_starts_each_slot_once() {
    let s = setup("2026-03-01T09:59:00Z").await;
    s.triggers
        .create(schedule("s", "rate(1 hour)", "all"))
        .await
        .expect("create");
    s.triggers.tick().await;
    s.at("2026-03-01T10:00:00Z");
    s.triggers.tick().await;
    // 06:00 to 10:00 inclusive: five slots, 10:00 fired already.
    let report = s
        .triggers
        .backfill("s", t("2026-03-01T06:00:00Z"), t("2026-03-01T10:00:00Z"))
        .await
        .expect("backfill");
    assert_eq!(
        (report.slots, report.started, report.existing),
        (5, 4, 1),
        "{report:?}"
    );
    assert!(report.errors.is_empty());
    let again = s
        .triggers
        .backfill("s", t("2026-03-01T06:00:00Z"), t("2026-03-01T10:00:00Z"))
        .await
        .expect("backfill");
    assert_eq!((again.started, again.existing), (0, 5));
    assert_eq!(s.names().len(), 5);
    assert_eq!(
        s.names()[0],
        format!("s-{}", slot_id(t("2026-03-01T06:00:00Z")))
    );
    // Bounded, and only for schedules.
    let e = s
        .triggers
        .backfill("s", t("2020-01-01T00:00:00Z"), t("2026-01-01T00:00:00Z"))
        .await
        .expect_err("too many");
    assert!(e.to_string().contains("more than 10000 slots"), "{e}");
    let e = s
        .triggers
        .backfill("nope", t("2026-03-01T06:00:00Z"), t("2026-03-01T10:00:00Z"))
        .await
        .expect_err("unknown");
    assert!(e.to_string().contains("Trigger Does Not Exist"), "{e}");
}

#[tokio::test]
async fn input_templates_shape_the_event() {
    let s = setup("2026-03-01T09:59:00Z").await;
    let mut spec = schedule("s", "rate(1 hour)", "all");
    spec.input = Some(json!({"day.$": "$.scheduledTime", "source": "schedule"}));
    s.triggers.create(spec).await.expect("create");
    s.triggers.tick().await;
    s.at("2026-03-01T10:00:00Z");
    s.triggers.tick().await;
    let listed = s
        .engine
        .list_executions(&ExecutionQuery::new(ExecutionsOf::All, 1))
        .expect("list")
        .executions
        .pop()
        .expect("one");
    let execution = s.engine.describe_execution(&listed.arn).expect("describe");
    let input: Value = serde_json::from_str(&execution.input).expect("json");
    assert_eq!(
        input,
        json!({"day": "2026-03-01T10:00:00Z", "source": "schedule"})
    );
}

#[tokio::test]
async fn config_triggers_are_replaced_at_each_start() {
    let s = setup("2026-03-01T09:59:00Z").await;
    s.triggers
        .create(schedule("from-api", "rate(1 hour)", "all"))
        .await
        .expect("create");
    s.triggers
        .install_config(&[
            schedule("a", "rate(1 hour)", "all"),
            schedule("b", "rate(1 hour)", "all"),
        ])
        .await
        .expect("install");
    s.triggers
        .install_config(&[schedule("b", "rate(2 hours)", "all")])
        .await
        .expect("install");
    let names: Vec<(String, String)> = s
        .triggers
        .list()
        .expect("list")
        .into_iter()
        .map(|(r, _)| (r.name, r.origin))
        .collect();
    assert_eq!(
        names,
        vec![
            ("b".to_owned(), "config".to_owned()),
            ("from-api".to_owned(), "api".to_owned())
        ]
    );
    let e = s
        .triggers
        .install_config(&[schedule("c", "rate(2 hour)", "all")])
        .await
        .expect_err("bad");
    assert!(e.contains("triggers 'c': schedule:"), "{e}");
    let e = s
        .triggers
        .create(schedule("b", "rate(1 hour)", "all"))
        .await
        .expect_err("taken");
    assert!(e.to_string().contains("Trigger Already Exists"), "{e}");
    assert!(matches!(
        s.triggers.compiled("b", Kind::Webhook),
        Err(super::TriggerError::Invalid(_))
    ));
}

fn in_zone(name: &str, expr: &str, zone: &str) -> TriggerSpec {
    serde_json::from_value(json!({
        "name": name, "kind": "schedule", "state_machine": "etl",
        "schedule": expr, "timezone": zone, "catch_up": "all",
    }))
    .expect("spec")
}

/// Ticks every `step` from the clock's time to `until`, as the driver's
/// loop would (it wakes at least every second; minutes suffice here).
async fn tick_through(s: &Setup, until: &str, step: chrono::Duration) {
    let until = t(until);
    loop {
        s.triggers.tick().await;
        let now = s.clock.now_for_tests();
        if now >= until {
            return;
        }
        s.clock.advance(step.min(until - now));
    }
}

/// Europe/Paris, spring 2026: on Sunday 29 March the clocks go from 02:00
/// CET to 03:00 CEST. A daily 02:30 has no slot that day (EventBridge
/// Scheduler skips it); the hour-by-hour schedule fires every real hour.
#[tokio::test]
async fn spring_forward_through_the_driver() {
    let s = setup("2026-03-28T00:00:00Z").await;
    s.triggers
        .create(in_zone("daily", "cron(30 2 * * ? *)", "Europe/Paris"))
        .await
        .expect("create");
    s.triggers
        .create(in_zone("hourly", "cron(0 * * * ? *)", "Europe/Paris"))
        .await
        .expect("create");
    tick_through(&s, "2026-03-28T00:00:30Z", chrono::Duration::minutes(1)).await;
    let (_, state) = s.triggers.get("daily").expect("get");
    assert_eq!(state.next_fire, Some(t("2026-03-28T01:30:00Z")));

    // Saturday 02:30 CET fires; on Sunday the driver's next fire jumps
    // over the missing 02:30 to Monday 02:30 CEST (00:30 UTC).
    tick_through(&s, "2026-03-28T02:00:00Z", chrono::Duration::minutes(1)).await;
    let (_, state) = s.triggers.get("daily").expect("get");
    assert_eq!(state.next_fire, Some(t("2026-03-30T00:30:00Z")));
    s.at("2026-03-29T00:50:00Z");
    tick_through(&s, "2026-03-29T02:10:00Z", chrono::Duration::minutes(1)).await;
    tick_through(&s, "2026-03-30T00:31:00Z", chrono::Duration::minutes(10)).await;
    let daily: Vec<String> = s
        .names()
        .into_iter()
        .filter(|n| n.starts_with("daily-"))
        .collect();
    assert_eq!(
        daily,
        vec!["daily-20260328T013000Z", "daily-20260330T003000Z"]
    );
    // 01:00 CET (00:00 UTC), then 03:00 CEST (01:00 UTC) and 04:00 CEST:
    // the missing 02:00 leaves no gap and no double in real time.
    let hourly: Vec<String> = s
        .names()
        .into_iter()
        .filter(|n| {
            n.as_str() >= "hourly-20260329T000000Z" && n.as_str() <= "hourly-20260329T020000Z"
        })
        .collect();
    assert_eq!(
        hourly,
        vec![
            "hourly-20260329T000000Z",
            "hourly-20260329T010000Z",
            "hourly-20260329T020000Z"
        ]
    );
}

/// Europe/Paris, autumn 2026: on Sunday 25 October the clocks go from 03:00
/// CEST back to 02:00 CET, so 02:00-02:59 happens twice. A daily 02:30
/// fires once, at the first 02:30 (CEST, 00:30 UTC); a half-hourly schedule
/// does not fire again in the repeated hour; a catch-up after a restart in
/// the middle of it starts nothing twice.
#[tokio::test]
async fn fall_back_through_the_driver() {
    let s = setup("2026-10-24T22:00:00Z").await;
    s.triggers
        .create(in_zone("daily", "cron(30 2 * * ? *)", "Europe/Paris"))
        .await
        .expect("create");
    s.triggers
        .create(in_zone(
            "halfhourly",
            "cron(0/30 * * * ? *)",
            "Europe/Paris",
        ))
        .await
        .expect("create");
    tick_through(&s, "2026-10-25T01:20:00Z", chrono::Duration::minutes(1)).await;
    let (_, state) = s.triggers.get("daily").expect("get");
    assert_eq!(state.next_fire, Some(t("2026-10-26T01:30:00Z")));
    // A restart in the repeated hour: the stored cursors say what ran.
    let triggers = Triggers::new(s.engine.clone(), &[]).expect("triggers");
    s.at("2026-10-25T01:40:00Z");
    triggers.tick().await;
    s.at("2026-10-25T02:00:30Z");
    triggers.tick().await;
    s.at("2026-10-26T01:30:10Z");
    triggers.tick().await;
    let daily: Vec<String> = s
        .names()
        .into_iter()
        .filter(|n| n.starts_with("daily-"))
        .collect();
    assert_eq!(
        daily,
        vec!["daily-20261025T003000Z", "daily-20261026T013000Z"]
    );
    // 00:00, 00:30 (02:00, 02:30 CEST), 02:00 (03:00 CET): not 01:00 or
    // 01:30 UTC, the same wall times again.
    let before_three: Vec<String> = s
        .names()
        .into_iter()
        .filter(|n| {
            n.starts_with("halfhourly-20261025T0") && n.as_str() <= "halfhourly-20261025T020000Z"
        })
        .collect();
    assert_eq!(
        before_three,
        vec![
            "halfhourly-20261025T000000Z",
            "halfhourly-20261025T003000Z",
            "halfhourly-20261025T020000Z"
        ]
    );
}

/// A config trigger disabled over REST stays disabled when the same file
/// is installed again (a restart); a change of `enabled` in the file wins.
#[tokio::test]
async fn a_config_trigger_disabled_over_rest_stays_disabled() {
    let s = setup("2026-03-01T09:59:00Z").await;
    let file = [schedule("a", "rate(1 hour)", "all")];
    s.triggers.install_config(&file).await.expect("install");
    s.triggers.set_enabled("a", false).await.expect("disable");
    s.triggers.install_config(&file).await.expect("restart");
    let (record, state) = s.triggers.get("a").expect("get");
    assert!(!record.enabled, "the REST word stands across a restart");
    assert_eq!(state.next_fire, None);
    s.at("2026-03-01T10:30:00Z");
    s.triggers.tick().await;
    assert_eq!(s.names(), Vec::<String>::new());

    // The operator writes enabled = false, then true: each change wins.
    let mut off = schedule("a", "rate(1 hour)", "all");
    off.enabled = false;
    s.triggers
        .install_config(std::slice::from_ref(&off))
        .await
        .expect("install");
    assert!(!s.triggers.get("a").expect("get").0.enabled);
    s.triggers.install_config(&file).await.expect("install");
    assert!(s.triggers.get("a").expect("get").0.enabled);
    // Enabled over REST while the file says false: stays enabled.
    s.triggers
        .install_config(std::slice::from_ref(&off))
        .await
        .expect("install");
    s.triggers.set_enabled("a", true).await.expect("enable");
    s.triggers
        .install_config(std::slice::from_ref(&off))
        .await
        .expect("restart");
    assert!(s.triggers.get("a").expect("get").0.enabled);
}

/// A schedule with `finished_by`, no alert sink: the alerts raised stay
/// pending in the trigger's state, one per late slot however often the
/// driver looks; a slot missed while the trigger was disabled is not late.
#[tokio::test]
async fn finished_by_raises_one_alert_per_late_slot() {
    let s = setup("2026-03-01T05:59:00Z").await;
    let spec = |name: &str, machine: &str| -> TriggerSpec {
        serde_json::from_value(json!({
            "name": name, "kind": "schedule", "state_machine": machine,
            "schedule": "cron(0 6 * * ? *)", "finished_by": "07:00",
        }))
        .expect("spec")
    };
    // "etl" succeeds at once; "gone" does not exist, so its slot never
    // starts.
    s.triggers
        .create(spec("fine", "etl"))
        .await
        .expect("create");
    s.triggers
        .create(spec("ghost", "gone"))
        .await
        .expect("create");
    s.triggers.tick().await;
    s.at("2026-03-01T06:00:00Z");
    s.triggers.tick().await;
    s.at("2026-03-01T07:00:01Z");
    s.triggers.tick().await;
    s.at("2026-03-01T07:30:00Z");
    s.triggers.tick().await;
    let pending = |name: &str| {
        s.engine
            .trigger_state(name)
            .expect("state")
            .map(|state| state.pending_alerts)
            .unwrap_or_default()
    };
    assert_eq!(pending("fine"), Vec::<Value>::new());
    let ghost = pending("ghost");
    assert_eq!(ghost.len(), 1, "{ghost:?}");
    assert_eq!(ghost[0]["id"], "slot/ghost/20260301T060000Z");
    assert_eq!(ghost[0]["kind"], "slot");
    assert!(
        ghost[0]["text"]
            .as_str()
            .is_some_and(|t| t.ends_with("it has not started")),
        "{ghost:?}"
    );

    // Disabled over the next slot, enabled again before its deadline:
    // not late.
    s.triggers
        .set_enabled("ghost", false)
        .await
        .expect("disable");
    s.at("2026-03-02T06:30:00Z");
    s.triggers.tick().await;
    s.triggers.set_enabled("ghost", true).await.expect("enable");
    s.at("2026-03-02T07:30:00Z");
    s.triggers.tick().await;
    assert_eq!(pending("ghost").len(), 1);
}

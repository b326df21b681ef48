//! Execution windows on the engine's side (the rules come from the
//! server through `crate::windows`): what a start outside its windows
//! does, and the starts held until a window opens.
//!
//! A held execution is a queued one (`limits.rs`): an ordinary stored
//! record, RUNNING to AWS clients, with the queued mark and no journal;
//! its mark also says until when it is held (`Queued::until`). So it is
//! listed, described and stopped as a queued execution is, and it
//! survives a restart: at open, every record with such a mark is held
//! again (released at once if its time has passed). When its window opens
//! it goes to its state machine's `max_running` queue if there is one,
//! and starts otherwise; the start writes the journal and drops the mark
//! in one write, and a record read without its mark is never started
//! again, so it starts once.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Weak};

use chrono::{DateTime, Utc};
use stepline_store::{
    ExecutionRecord, ExecutionStatus, Queued, TriggerStateRecord, WriteBatch, WriteOp,
};

use super::limits::machine_name;
use super::{Engine, EngineError, Inner, lock};
use crate::windows::{DrainWait, Outside, OutsideWindow, WindowRule, sleep_until};

/// The executions held by their windows, by the time they are released.
#[derive(Debug, Default)]
pub(super) struct Held {
    by_time: BTreeSet<(DateTime<Utc>, String)>,
    by_arn: HashMap<String, DateTime<Utc>>,
}

/// A trigger's windows, which replace its state machine's for the
/// trigger's starts.
#[derive(Debug, Clone)]
pub struct TriggerWindows {
    pub trigger: String,
    pub rule: Arc<WindowRule>,
}

/// How a start goes, beyond its input.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// Its place in its state machine's `max_running` queue: higher
    /// starts first.
    pub priority: i32,
    /// The windows of the trigger that starts it, if it has some.
    pub trigger_windows: Option<TriggerWindows>,
}

/// What the start path does about windows.
pub(super) enum WindowCheck {
    /// Inside (or no rule): start as usual.
    Go,
    /// Store it, held until then.
    Hold(DateTime<Utc>),
    /// Start as usual, then alert.
    Alert(Box<OutsideWindow>),
}

impl Engine {
    /// The `[[windows]]` rule of a state machine, by name. Cheap when no
    /// state machine has one: the start path asks every time.
    pub(super) fn window_rule(&self, machine: &str) -> Option<Arc<WindowRule>> {
        self.window_rule_of(machine)
    }

    /// Decides a new execution's start by its windows: the trigger's if
    /// it comes from a trigger that has some, else its state machine's.
    pub(super) fn check_window(
        &self,
        record: &ExecutionRecord,
        machine: &str,
        options: &StartOptions,
    ) -> Result<WindowCheck, EngineError> {
        let (trigger, rule) = match &options.trigger_windows {
            Some(t) => (Some(t.trigger.clone()), Arc::clone(&t.rule)),
            None => match self.window_rule(machine) {
                Some(rule) => (None, rule),
                None => return Ok(WindowCheck::Go),
            },
        };
        let now = record.start;
        if rule.calendar.is_open(now) {
            return Ok(WindowCheck::Go);
        }
        let next = rule.calendar.next_open(now);
        let windows = rule.calendar.describe();
        match rule.outside {
            Outside::Refuse => {
                let whose = match &trigger {
                    Some(t) => format!("the trigger '{t}' starts executions"),
                    None => format!("the state machine '{machine}' runs"),
                };
                let opens = match next {
                    Some(t) => format!("the next opens at {}", rfc3339(t)),
                    None => "none opens again".to_owned(),
                };
                Err(EngineError::OutsideWindow(format!(
                    "Outside execution windows: {whose} only within {windows}; {opens}"
                )))
            }
            Outside::Hold => Ok(next.map_or(WindowCheck::Go, WindowCheck::Hold)),
            Outside::Alert => Ok(WindowCheck::Alert(Box::new(OutsideWindow {
                execution_arn: record.arn.clone(),
                execution_name: record.name.clone(),
                state_machine: machine.to_owned(),
                trigger,
                windows,
                started: now,
                next_open: next,
            }))),
        }
    }

    /// Keeps the alert of a start outside its windows in the store, in a
    /// write the start's own flush makes durable (it is applied first),
    /// so that a crash before its delivery sends it at the next start.
    pub(super) fn keep_window_alert(&self, alert: &OutsideWindow) -> Result<(), EngineError> {
        let _guard = lock(&self.inner.window_alerts);
        let mut state = self
            .inner
            .store
            .trigger_state(WINDOW_ALERTS)?
            .unwrap_or_else(|| TriggerStateRecord {
                name: WINDOW_ALERTS.to_owned(),
                ..TriggerStateRecord::default()
            });
        if state.pending_alerts.len() >= MAX_PENDING_WINDOW_ALERTS {
            self.inner.metrics.alert("dropped");
            return Ok(());
        }
        state
            .pending_alerts
            .push(serde_json::to_value(alert).map_err(|e| {
                EngineError::Store(stepline_store::StoreError::Unavailable(e.to_string()))
            })?);
        let mut batch = WriteBatch::new();
        batch.push(WriteOp::PutTriggerState(state));
        self.inner.store.apply(&batch)?;
        Ok(())
    }

    /// The alerts of starts outside their windows not yet delivered.
    pub fn pending_window_alerts(&self) -> Vec<OutsideWindow> {
        self.inner
            .store
            .trigger_state(WINDOW_ALERTS)
            .ok()
            .flatten()
            .map(|s| s.pending_alerts)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|v| serde_json::from_value(v).ok())
            .collect()
    }

    /// The alert of `execution_arn`'s start outside its windows was
    /// delivered (or given up on): it leaves the store.
    pub fn window_alert_delivered(&self, execution_arn: &str) {
        let _guard = lock(&self.inner.window_alerts);
        let Ok(Some(mut state)) = self.inner.store.trigger_state(WINDOW_ALERTS) else {
            return;
        };
        let before = state.pending_alerts.len();
        state.pending_alerts.retain(|v| {
            v.get("execution_arn").and_then(serde_json::Value::as_str) != Some(execution_arn)
        });
        if state.pending_alerts.len() == before {
            return;
        }
        let mut batch = WriteBatch::new();
        batch.push(WriteOp::PutTriggerState(state));
        if let Err(e) = self.inner.store.apply(&batch) {
            tracing::warn!(execution = %execution_arn, error = %e, "a delivered window alert could not be removed; it is sent again at the next start");
        }
    }

    /// After a start outside its windows under `alert`: a new execution
    /// is handed to the observers; a start that made none (an error, or
    /// the name was taken) drops the alert kept for it.
    pub(super) fn window_alert_outcome(&self, alert: Option<Box<OutsideWindow>>, started: bool) {
        let Some(alert) = alert else {
            return;
        };
        if started {
            self.alert_outside(*alert);
        } else if !self.inner.config.window_alerts.is_empty() {
            self.drop_kept_alert(&alert);
        }
    }

    /// Takes back one alert `keep_window_alert` kept (the last equal one:
    /// an earlier start of the same name may have its own waiting).
    fn drop_kept_alert(&self, alert: &OutsideWindow) {
        let Ok(value) = serde_json::to_value(alert) else {
            return;
        };
        let _guard = lock(&self.inner.window_alerts);
        let Ok(Some(mut state)) = self.inner.store.trigger_state(WINDOW_ALERTS) else {
            return;
        };
        let Some(at) = state.pending_alerts.iter().rposition(|v| *v == value) else {
            return;
        };
        state.pending_alerts.remove(at);
        let mut batch = WriteBatch::new();
        batch.push(WriteOp::PutTriggerState(state));
        if let Err(e) = self.inner.store.apply(&batch) {
            tracing::warn!(execution = %alert.execution_arn, error = %e, "the alert of a start that did not happen could not be removed");
        }
    }

    /// Hands an execution that started outside its windows to the alert
    /// observers.
    fn alert_outside(&self, alert: OutsideWindow) {
        tracing::warn!(execution = %alert.execution_arn, windows = %alert.windows, "execution started outside its windows");
        for observer in &self.inner.config.window_alerts {
            let _ = observer.send(alert.clone());
        }
    }

    /// Stores a new execution held until `until` (durably), then waits
    /// for that time.
    pub(super) async fn hold(
        &self,
        mut record: ExecutionRecord,
        priority: i32,
        until: DateTime<Utc>,
    ) -> Result<ExecutionRecord, EngineError> {
        record.queued = Some(Queued {
            priority,
            until: Some(until),
        });
        self.store_queued(&record).await?;
        tracing::info!(execution = %record.arn, until = %rfc3339(until), "execution held until its window opens");
        self.held_insert(&record.arn, until);
        Ok(record)
    }

    fn held_insert(&self, arn: &str, until: DateTime<Utc>) {
        {
            let mut held = lock(&self.inner.held);
            if let Some(old) = held.by_arn.insert(arn.to_owned(), until) {
                held.by_time.remove(&(old, arn.to_owned()));
            }
            held.by_time.insert((until, arn.to_owned()));
        }
        self.inner.held_wake.notify_one();
    }

    /// Takes an execution out of the held ones; whether it was there.
    pub(super) fn unhold(&self, arn: &str) -> bool {
        let mut held = lock(&self.inner.held);
        match held.by_arn.remove(arn) {
            Some(until) => {
                held.by_time.remove(&(until, arn.to_owned()));
                true
            }
            None => false,
        }
    }

    /// When a held execution's window opens; `None` when it is not held
    /// (it may still wait for a slot of `max_running`).
    pub fn held_until(&self, record: &ExecutionRecord) -> Option<DateTime<Utc>> {
        record.queued?.until?;
        lock(&self.inner.held).by_arn.get(&record.arn).copied()
    }

    /// The tasks of an execution waiting for its state machine's next
    /// window (`drain`).
    pub fn drain_waits(&self, arn: &str) -> Vec<DrainWait> {
        self.inner.drain_waits.of(arn)
    }

    /// At open: holds again every execution the store says is held (one
    /// whose time has passed is released at once).
    pub(super) fn count_held(&self, open: &[ExecutionRecord]) {
        for record in open {
            if record.status != ExecutionStatus::Running || record.map_run.is_some() {
                continue;
            }
            if let Some(until) = record.queued.and_then(|q| q.until) {
                self.held_insert(&record.arn, until);
            }
        }
    }

    /// Releases executions whose time came together, one after the other
    /// in the order their queue would start them (higher priority, then
    /// the earlier start), so that a `max_running` slot goes to the first.
    async fn release_all(&self, due: Vec<String>) {
        let mut order: Vec<(std::cmp::Reverse<i32>, DateTime<Utc>, String)> = due
            .into_iter()
            .map(|arn| match self.inner.store.execution(&arn) {
                Ok(Some(r)) => (
                    std::cmp::Reverse(r.queued.map_or(0, |q| q.priority)),
                    r.start,
                    arn,
                ),
                _ => (std::cmp::Reverse(0), DateTime::<Utc>::MIN_UTC, arn),
            })
            .collect();
        order.sort();
        for (_, _, arn) in order {
            if let Err(e) = self.release(&arn).await {
                tracing::error!(execution = %arn, error = %e, "a held execution could not be released; it is tried again at the next start");
            }
        }
    }

    /// A held execution's time came: held again if its state machine's
    /// own windows hold it and are closed (a trigger's window opened, or
    /// the server was down while the window was open); otherwise into its
    /// state machine's `max_running` queue, or started.
    async fn release(&self, arn: &str) -> Result<(), EngineError> {
        let record = match self.inner.store.execution(arn)? {
            Some(r) if r.status == ExecutionStatus::Running => r,
            _ => return Ok(()),
        };
        let Some(queued) = record.queued else {
            return Ok(());
        };
        let machine = machine_name(&record.state_machine_arn).to_owned();
        let now = self.inner.clock.now();
        if let Some(rule) = self.window_rule(&machine)
            && rule.outside == Outside::Hold
            && !rule.calendar.is_open(now)
            && let Some(until) = rule.calendar.next_open(now)
        {
            let mut held = record.clone();
            held.queued = Some(Queued {
                until: Some(until),
                ..queued
            });
            let mut batch = WriteBatch::new();
            batch.push(WriteOp::UpdateExecution(held));
            self.inner.store.apply(&batch)?;
            self.flush().await?;
            tracing::info!(execution = %arn, until = %rfc3339(until), "execution held again: its state machine's window is closed");
            self.held_insert(arn, until);
            return Ok(());
        }
        tracing::info!(execution = %arn, "window open: held execution released");
        match self.max_running(&record.state_machine_arn) {
            Some(max) if !self.take_slot(&record.state_machine_arn, max) => {
                self.queue_for_slot(&record, queued);
                Ok(())
            }
            _ => self.run_queued_with(arn, None).await,
        }
    }

    /// Executions held by their windows, by state machine name.
    pub fn held_by_machine(&self) -> HashMap<String, u64> {
        let mut held: HashMap<String, u64> = HashMap::new();
        for arn in lock(&self.inner.held).by_arn.keys() {
            *held
                .entry(crate::windows::machine_of_execution(arn).to_owned())
                .or_default() += 1;
        }
        held
    }

    /// Tasks waiting for their state machine's next window, by name.
    pub fn draining_by_machine(&self) -> HashMap<String, usize> {
        self.inner.drain_waits.by_machine()
    }

    /// `/metrics`: executions held and tasks waiting for a window, and
    /// whether each rule's window is open, per state machine with windows.
    pub(super) fn windows_metrics(&self, out: &mut String) {
        use std::fmt::Write as _;
        let rules = self.window_rules();
        let held = self.held_by_machine();
        if rules.is_empty() && held.is_empty() {
            return;
        }
        let draining = self.inner.drain_waits.by_machine();
        let mut names: BTreeSet<String> = rules.keys().cloned().collect();
        names.extend(held.keys().cloned());
        let now = self.inner.clock.now();
        let _ = writeln!(
            out,
            "# HELP stepline_window_held Executions held until their window opens, by state machine.\n# TYPE stepline_window_held gauge"
        );
        for name in &names {
            let _ = writeln!(
                out,
                "stepline_window_held{{state_machine=\"{}\"}} {}",
                crate::metrics::label(name),
                held.get(name).copied().unwrap_or(0)
            );
        }
        let _ = writeln!(
            out,
            "# HELP stepline_window_open Whether a state machine's execution window is open (1) or closed (0).\n# TYPE stepline_window_open gauge"
        );
        for (name, rule) in &rules {
            let _ = writeln!(
                out,
                "stepline_window_open{{state_machine=\"{}\"}} {}",
                crate::metrics::label(name),
                u8::from(rule.calendar.is_open(now))
            );
        }
        let _ = writeln!(
            out,
            "# HELP stepline_window_draining_tasks Tasks waiting for their draining state machine's next window.\n# TYPE stepline_window_draining_tasks gauge"
        );
        for (name, rule) in &rules {
            if rule.drain {
                let _ = writeln!(
                    out,
                    "stepline_window_draining_tasks{{state_machine=\"{}\"}} {}",
                    crate::metrics::label(name),
                    draining.get(name).copied().unwrap_or(0)
                );
            }
        }
    }
}

/// The trigger-state record (a name no trigger can have) that keeps the
/// alerts of starts outside their windows until they are delivered.
const WINDOW_ALERTS: &str = "windows:alerts";
/// The most such alerts kept waiting; more are dropped (and counted).
const MAX_PENDING_WINDOW_ALERTS: usize = 256;

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Releases held executions as their times come, while the engine lives.
pub(super) async fn hold_loop(inner: Weak<Inner>) {
    loop {
        let (clock, wake, next) = {
            let Some(inner) = inner.upgrade() else {
                return;
            };
            let engine = Engine { inner };
            let now = engine.inner.clock.now();
            let (due, next) = {
                let mut held = lock(&engine.inner.held);
                let mut due = Vec::new();
                while let Some(first) = held.by_time.first().cloned() {
                    if first.0 > now {
                        break;
                    }
                    held.by_time.pop_first();
                    held.by_arn.remove(&first.1);
                    due.push(first.1);
                }
                (due, held.by_time.first().map(|(t, _)| *t))
            };
            if !due.is_empty() {
                let engine = engine.clone();
                tokio::spawn(async move { engine.release_all(due).await });
            }
            (
                Arc::clone(&engine.inner.clock),
                Arc::clone(&engine.inner.held_wake),
                next,
            )
        };
        tokio::select! {
            () = wake.notified() => {}
            () = async {
                match next {
                    Some(due) => sleep_until(&*clock, due).await,
                    None => std::future::pending().await,
                }
            } => {}
        }
    }
}

//! Execution windows: the seam through which the server tells the engine
//! when a state machine (or a trigger's starts) may run, what a start
//! outside its windows does, and the runner that keeps a draining state
//! machine's tasks from starting while its windows are closed.
//!
//! The engine never reads a window's text, a time zone or a calendar: the
//! server parses `[[windows]]` (zones and daylight saving time included)
//! and hands each rule's [`Calendar`] here, the way it hands task runners
//! through `TaskRunner`. The engine's side of holding starts lives in
//! `engine/windows.rs`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use crate::task_runner::{TaskCall, TaskFuture, TaskRunner};
use stepline_language::clock::Clock;

/// When a rule's windows are open. Pure: the caller says "at when".
pub trait Calendar: Send + Sync + std::fmt::Debug {
    /// Whether a window is open at `t`.
    fn is_open(&self, t: DateTime<Utc>) -> bool;
    /// The first instant at or after `t` when a window is open: `t`
    /// itself when one is open then. `None` when none ever opens again
    /// (a rule the server's checks would have refused).
    fn next_open(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>>;
    /// The windows as written, with their zone, for messages
    /// (`Mon-Fri 01:00-05:00 (Europe/Paris)`).
    fn describe(&self) -> String;
}

/// What a start outside the windows does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outside {
    /// Stored and queued until a window opens: visible, cancellable.
    Hold,
    /// Refused with an error naming the windows and the next opening.
    Refuse,
    /// Runs at once, and one alert goes to the alert sinks.
    Alert,
}

impl Outside {
    pub fn as_str(self) -> &'static str {
        match self {
            Outside::Hold => "hold",
            Outside::Refuse => "refuse",
            Outside::Alert => "alert",
        }
    }
}

/// One rule: a state machine's `[[windows]]` entry, or a trigger's
/// `windows`.
#[derive(Debug, Clone)]
pub struct WindowRule {
    pub calendar: Arc<dyn Calendar>,
    pub outside: Outside,
    /// Tasks of its executions start only while a window is open (a
    /// state machine's rule; a trigger's never drains).
    pub drain: bool,
}

/// A start that went ahead outside its windows under `outside = "alert"`:
/// the server's alerts send it. Kept in the store until delivered
/// (`Engine::pending_window_alerts`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OutsideWindow {
    pub execution_arn: String,
    pub execution_name: String,
    /// The state machine's name.
    pub state_machine: String,
    /// The trigger whose windows these are, when the rule is a trigger's.
    pub trigger: Option<String>,
    pub windows: String,
    pub started: DateTime<Utc>,
    pub next_open: Option<DateTime<Utc>>,
}

/// A task waiting for its draining state machine's next window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainWait {
    pub state_name: String,
    /// When the window opens (the task starts then).
    pub until: DateTime<Utc>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The state machine name of an execution ARN
/// (`arn:aws:states:R:A:execution:MACHINE:NAME`); a distributed Map's
/// child (`MACHINE/LABEL`) counts as its parent's.
pub(crate) fn machine_of_execution(arn: &str) -> &str {
    let rest = arn
        .split_once(":execution:")
        .or_else(|| arn.split_once(":express:"))
        .map_or(arn, |(_, rest)| rest);
    let machine = rest.split(':').next().unwrap_or(rest);
    machine.split('/').next().unwrap_or(machine)
}

/// Waits on `clock` until it shows `due` (a manual clock: until it is
/// advanced there). Wall-clock sleeps are cut to a minute at a time, so a
/// clock set forward is noticed.
pub(crate) async fn sleep_until(clock: &dyn Clock, due: DateTime<Utc>) {
    loop {
        let now = clock.now();
        if now >= due {
            return;
        }
        let step = if clock.as_manual().is_some() {
            due
        } else {
            due.min(now + chrono::Duration::minutes(1))
        };
        crate::timers::until(clock, now, Some(step)).await;
    }
}

/// Puts a draining state machine's task calls off while its windows are
/// closed: a call made then waits for the next window, and only then goes
/// to the runner underneath. A call already running is never touched
/// (work in flight finishes). After a restart, the tasks a crash left
/// unanswered are called again and wait here again: the wait is as
/// durable as the task's scheduling.
pub(crate) struct DrainingRunner {
    pub(crate) inner: Arc<dyn TaskRunner>,
    /// Draining rules by state machine name: the configuration's and
    /// those set over the API (`engine/settings.rs` replaces them).
    pub(crate) rules: Arc<std::sync::RwLock<HashMap<String, Arc<WindowRule>>>>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) waits: Arc<DrainWaits>,
}

/// The task calls waiting for a window, by execution ARN (for REST's
/// describe and `/metrics`).
#[derive(Debug, Default)]
pub struct DrainWaits {
    waits: Mutex<HashMap<String, Vec<(u64, DrainWait)>>>,
    next_id: std::sync::atomic::AtomicU64,
}

impl DrainWaits {
    /// What `arn` waits for, earliest first.
    pub fn of(&self, arn: &str) -> Vec<DrainWait> {
        let waits = lock(&self.waits);
        let mut list: Vec<DrainWait> = waits
            .get(arn)
            .map(|w| w.iter().map(|(_, w)| w.clone()).collect())
            .unwrap_or_default();
        list.sort_by_key(|w| w.until);
        list
    }

    /// Task calls waiting, by state machine name.
    pub fn by_machine(&self) -> HashMap<String, usize> {
        let waits = lock(&self.waits);
        let mut counts = HashMap::new();
        for (arn, list) in waits.iter() {
            *counts
                .entry(machine_of_execution(arn).to_owned())
                .or_default() += list.len();
        }
        counts
    }

    fn add(&self, arn: &str, wait: DrainWait) -> u64 {
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        lock(&self.waits)
            .entry(arn.to_owned())
            .or_default()
            .push((id, wait));
        id
    }

    fn remove(&self, arn: &str, id: u64) {
        let mut waits = lock(&self.waits);
        if let Some(list) = waits.get_mut(arn) {
            list.retain(|(i, _)| *i != id);
            if list.is_empty() {
                waits.remove(arn);
            }
        }
    }
}

/// Takes a wait out of the list however the call ends (a cancelled task
/// drops its future while it waits).
struct Waiting {
    waits: Arc<DrainWaits>,
    arn: String,
    id: u64,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.waits.remove(&self.arn, self.id);
    }
}

impl TaskRunner for DrainingRunner {
    fn run(&self, call: TaskCall) -> TaskFuture {
        let rule = {
            let rules = self.rules.read().unwrap_or_else(|e| e.into_inner());
            if rules.is_empty() {
                None
            } else {
                rules
                    .get(machine_of_execution(&call.execution_arn))
                    .cloned()
            }
        };
        let Some(rule) = rule else {
            return self.inner.run(call);
        };
        let (inner, clock, waits) = (
            Arc::clone(&self.inner),
            Arc::clone(&self.clock),
            Arc::clone(&self.waits),
        );
        Box::pin(async move {
            loop {
                let now = clock.now();
                if rule.calendar.is_open(now) {
                    break;
                }
                let Some(until) = rule.calendar.next_open(now) else {
                    break;
                };
                tracing::info!(execution = %call.execution_arn, state = %call.request.state_name, until = %until, "task waits for its state machine's next window (drain)");
                let id = waits.add(
                    &call.execution_arn,
                    DrainWait {
                        state_name: call.request.state_name.clone(),
                        until,
                    },
                );
                let _waiting = Waiting {
                    waits: Arc::clone(&waits),
                    arn: call.execution_arn.clone(),
                    id,
                };
                sleep_until(&*clock, until).await;
            }
            inner.run(call).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_names_of_execution_arns() {
        assert_eq!(
            machine_of_execution("arn:aws:states:us-east-1:1:execution:etl:run-1"),
            "etl"
        );
        assert_eq!(
            machine_of_execution("arn:aws:states:us-east-1:1:execution:etl/Map:abc"),
            "etl"
        );
        assert_eq!(
            machine_of_execution("arn:aws:states:us-east-1:1:express:etl:n:id"),
            "etl"
        );
    }
}

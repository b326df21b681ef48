//! Deadlines: a state machine's expected duration (`[[deadlines]]` in
//! stepline.toml), each of its states' expected durations, a schedule's
//! `finished_by` for each slot and a dataset's `timeout_minutes` for each
//! period. A deadline missed raises one alert through the alert sinks.
//!
//! Once, even across a restart: each subject (a trigger, or a state
//! machine's `deadlines:NAME` record among the trigger states, a name no
//! trigger can have) keeps a cursor, `deadlines_checked`: every deadline
//! due up to it has been looked at. A check looks only at deadlines in
//! `(cursor, now]`, and writes the alerts it raises into the same record
//! as the cursor that moves past them, in one write; an alert leaves the
//! record when it has been delivered. A crash before the write looks again
//! (nothing was sent); after it, the pending alerts are sent at the next
//! start (at least once, as every alert). Time is the engine's clock.
//!
//! A subject checked for the first time starts from now: what was late
//! before it had deadlines is not alerted.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use stepline_language::history::Event;
use stepline_store::{
    ExecutionQuery, ExecutionStatus, ExecutionsOf, ListCursor, TriggerStateRecord,
};

use super::{Triggers, lock, machine_arn, rfc3339};
use crate::alerts::{Deadline, Message};

/// `[[deadlines]]`: expected durations of one state machine's executions
/// and of its states.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineDeadlines {
    /// The state machine's name.
    pub state_machine: String,
    /// An execution still running this long after its start is late.
    pub expected_seconds: Option<u64>,
    /// State name to seconds: a state entered and not left within its
    /// time is late (each entry once; a Map's iterations each count).
    #[serde(default)]
    pub states: BTreeMap<String, u64>,
}

/// The longest expected duration (a year).
const MAX_SECONDS: u64 = 366 * 24 * 3600;
/// The most alerts one subject keeps waiting for delivery; more are
/// dropped (and counted as dropped alerts).
pub const MAX_PENDING_ALERTS: usize = 256;
/// The most executions of one state machine a check looks at.
const MAX_WATCHED: usize = 10_000;
/// A day in a zone with daylight saving time is at most this long: a
/// slot's deadline is never further after it.
const LONGEST_DAY: Duration = Duration::hours(26);

/// Checks `[[deadlines]]`; the error starts with the field.
pub fn check(all: &[MachineDeadlines]) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for (i, d) in all.iter().enumerate() {
        let at = format!("deadlines[{i}]");
        if d.state_machine.is_empty() || d.state_machine.contains(':') {
            return Err(format!(
                "{at}.state_machine: '{}' is not a state machine name",
                d.state_machine
            ));
        }
        if !seen.insert(d.state_machine.as_str()) {
            return Err(format!(
                "{at}.state_machine: '{}' is listed twice",
                d.state_machine
            ));
        }
        if d.expected_seconds.is_none() && d.states.is_empty() {
            return Err(format!("{at}: give expected_seconds, states, or both"));
        }
        for (what, seconds) in d
            .expected_seconds
            .iter()
            .map(|s| ("expected_seconds".to_owned(), *s))
            .chain(d.states.iter().map(|(n, s)| (format!("states.{n}"), *s)))
        {
            if !(1..=MAX_SECONDS).contains(&seconds) {
                return Err(format!(
                    "{at}.{what}: {seconds} is not between 1 and {MAX_SECONDS} seconds"
                ));
            }
        }
    }
    Ok(())
}

/// The record a state machine's deadlines keep their cursor in.
pub fn machine_record(machine: &str) -> String {
    format!("deadlines:{machine}")
}

/// What is known of one execution's history: how far it was read and the
/// state entries still open (or that ended past their time).
#[derive(Debug, Default)]
pub(crate) struct Scan {
    read: u64,
    /// State name, the entered event's id, when it was entered.
    open: Vec<(Arc<str>, u64, DateTime<Utc>)>,
    /// Entries that were left after their deadline, not yet alerted.
    late: Vec<(Arc<str>, u64, DateTime<Utc>)>,
    /// Kept while true; entries of executions not seen are dropped.
    seen: bool,
}

impl Triggers {
    /// Checks every state machine's `[[deadlines]]`; called by `tick`.
    pub(crate) async fn check_machines(&self, now: DateTime<Utc>) {
        let all = lock(&self.inner.machine_deadlines).clone();
        for deadlines in all.iter() {
            if let Err(e) = self.check_machine(deadlines, now).await {
                tracing::warn!(state_machine = %deadlines.state_machine, error = %e, "cannot check the state machine's deadlines");
            }
        }
        // Scans of executions no longer listed go.
        let mut scans = lock(&self.inner.scans);
        scans.retain(|_, scan| std::mem::take(&mut scan.seen));
    }

    async fn check_machine(
        &self,
        deadlines: &MachineDeadlines,
        now: DateTime<Utc>,
    ) -> Result<(), String> {
        let subject = machine_record(&deadlines.state_machine);
        let Some(cursor) = self.deadline_cursor(&subject, now).await else {
            return Ok(());
        };
        let machine = machine_arn(self.engine(), &deadlines.state_machine);
        let expected = deadlines.expected_seconds.map(seconds);
        let mut raised = Vec::new();
        // The executions whose deadline is in (cursor, now]: newest first,
        // until one started before `cursor - d` (older ones were looked at).
        if let Some(d) = expected {
            // Listed from those started at `now - d` back: the newer ones
            // are not due yet, and are not read at all.
            let from = ListCursor {
                start: now - d,
                arn: String::new(),
            };
            self.each_execution(&machine, None, Some(from), |summary| {
                let due = summary.start + d;
                if due <= cursor {
                    return false;
                }
                let late = summary.stop.is_none_or(|stop| stop > due);
                if due <= now && late {
                    raised.push(Deadline {
                        id: format!("execution/{}#{}", summary.arn, summary.redrive_count),
                        kind: "execution".into(),
                        state_machine: deadlines.state_machine.clone(),
                        deadline: due,
                        text: format!(
                            "execution {} of {} has run longer than its expected {}",
                            summary.name,
                            deadlines.state_machine,
                            seconds_text(d)
                        ),
                        detail: json!({
                            "resources": [summary.arn],
                            "executionArn": summary.arn,
                            "name": summary.name,
                            "status": summary.status.as_str(),
                            "startDate": rfc3339(summary.start),
                            "expectedSeconds": d.num_seconds(),
                        }),
                    });
                }
                true
            })?;
        }
        // States may be entered at any time: every running execution's
        // history is followed.
        if !deadlines.states.is_empty() {
            let mut running = Vec::new();
            self.each_execution(&machine, Some(ExecutionStatus::Running), None, |summary| {
                running.push((summary.arn.clone(), summary.name.clone()));
                true
            })?;
            for (arn, name) in running {
                self.scan_states(deadlines, &arn, &name, cursor, now, &mut raised)?;
            }
        }
        self.raise(&subject, now, raised).await;
        Ok(())
    }

    /// Calls `each` with the executions of `machine` (of `status`), newest
    /// first (after `after` in that order), until it answers false or
    /// [`MAX_WATCHED`] were seen.
    fn each_execution(
        &self,
        machine: &str,
        status: Option<ExecutionStatus>,
        mut after: Option<ListCursor>,
        mut each: impl FnMut(&stepline_store::ExecutionSummary) -> bool,
    ) -> Result<(), String> {
        let mut seen = 0;
        loop {
            let mut query = ExecutionQuery::new(ExecutionsOf::Machine(machine.to_owned()), 500);
            query.status = status;
            query.after = after;
            let page = self
                .engine()
                .list_executions(&query)
                .map_err(|e| e.to_string())?;
            for summary in &page.executions {
                seen += 1;
                if !each(summary) || seen >= MAX_WATCHED {
                    return Ok(());
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(()),
            }
        }
    }

    /// Reads what is new in a running execution's history and raises the
    /// state entries whose deadline is in `(cursor, now]` and that were
    /// still open then.
    fn scan_states(
        &self,
        deadlines: &MachineDeadlines,
        arn: &str,
        name: &str,
        cursor: DateTime<Utc>,
        now: DateTime<Utc>,
        raised: &mut Vec<Deadline>,
    ) -> Result<(), String> {
        let engine = self.engine();
        let from = lock(&self.inner.scans).get(arn).map_or(0, |s| s.read);
        let events = engine
            .history(arn, from + 1, u64::MAX)
            .map_err(|e| e.to_string())?;
        let mut scans = lock(&self.inner.scans);
        let scan = scans.entry(arn.to_owned()).or_default();
        scan.seen = true;
        let limit = |state: &Arc<str>| deadlines.states.get(&**state).map(|s| seconds(*s));
        for event in events {
            scan.read = scan.read.max(event.id);
            match &event.event {
                Event::StateEntered { name, .. } if limit(name).is_some() => {
                    scan.open
                        .push((Arc::clone(name), event.id, event.timestamp));
                }
                Event::StateExited { name, .. } => {
                    if let Some(at) = scan.open.iter().position(|(n, ..)| n == name) {
                        let entry = scan.open.remove(at);
                        if limit(name).is_some_and(|d| event.timestamp > entry.2 + d) {
                            scan.late.push(entry);
                        }
                    }
                }
                _ => {}
            }
        }
        let mut alert = |(state, id, entered): &(Arc<str>, u64, DateTime<Utc>)| {
            let Some(d) = limit(state) else { return };
            let due = *entered + d;
            if due > cursor && due <= now {
                raised.push(Deadline {
                    id: format!("state/{arn}/{id}"),
                    kind: "state".into(),
                    state_machine: deadlines.state_machine.clone(),
                    deadline: due,
                    text: format!(
                        "state {state} of execution {name} ({}) has run longer than its expected {}",
                        deadlines.state_machine,
                        seconds_text(d)
                    ),
                    detail: json!({
                        "resources": [arn],
                        "executionArn": arn,
                        "state": &**state,
                        "enteredEventId": id,
                        "enteredDate": rfc3339(*entered),
                        "expectedSeconds": d.num_seconds(),
                    }),
                });
            }
        };
        scan.open.iter().for_each(&mut alert);
        scan.late.drain(..).for_each(|e| alert(&e));
        Ok(())
    }

    /// A state machine given expected durations anew (over the API) is
    /// watched from its next check on, as a new `[[deadlines]]` entry is:
    /// a cursor left by durations it had before is dropped, so what was
    /// late meanwhile is not alerted.
    pub(crate) async fn watch_machine_afresh(&self, machine: &str) -> Result<(), String> {
        let _guard = self.inner.state_lock.lock().await;
        let engine = self.engine();
        let subject = machine_record(machine);
        if let Some(mut state) = engine.trigger_state(&subject).map_err(|e| e.to_string())? {
            if state.deadlines_checked.take().is_some() {
                engine.put_trigger_state(state).map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    /// The cursor of `subject`, or `None` when it is checked for the first
    /// time (the cursor is then set to now) or is already at now.
    pub(crate) async fn deadline_cursor(
        &self,
        subject: &str,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let _guard = self.inner.state_lock.lock().await;
        let engine = self.engine();
        let state = engine.trigger_state(subject).ok()?;
        let mut state = state.unwrap_or_else(|| TriggerStateRecord {
            name: subject.to_owned(),
            ..TriggerStateRecord::default()
        });
        match state.deadlines_checked {
            Some(cursor) if cursor < now => Some(cursor),
            Some(_) => None,
            None => {
                state.deadlines_checked = Some(now);
                let _ = engine.put_trigger_state(state);
                None
            }
        }
    }

    /// Moves `subject`'s cursor to `now` and keeps `raised` with it, in
    /// one write; then sends what is pending.
    pub(crate) async fn raise(&self, subject: &str, now: DateTime<Utc>, raised: Vec<Deadline>) {
        self.raise_with(subject, now, raised, |_| {}).await;
    }

    /// As `raise`, with `also` changing the same record in the same write
    /// (a dataset moves its period cursor with it).
    pub(crate) async fn raise_with(
        &self,
        subject: &str,
        now: DateTime<Utc>,
        raised: Vec<Deadline>,
        also: impl FnOnce(&mut TriggerStateRecord),
    ) {
        {
            let _guard = self.inner.state_lock.lock().await;
            let engine = self.engine();
            let mut state = engine
                .trigger_state(subject)
                .ok()
                .flatten()
                .unwrap_or_else(|| TriggerStateRecord {
                    name: subject.to_owned(),
                    ..TriggerStateRecord::default()
                });
            for alert in raised {
                tracing::warn!(alert = %alert.id, "{}", alert.text);
                if state.pending_alerts.len() >= MAX_PENDING_ALERTS {
                    engine.metrics().alert("dropped");
                    continue;
                }
                if let Ok(value) = serde_json::to_value(&alert) {
                    state.pending_alerts.push(value);
                }
            }
            state.deadlines_checked = Some(now.max(state.deadlines_checked.unwrap_or(now)));
            also(&mut state);
            if let Err(e) = engine.put_trigger_state(state) {
                tracing::warn!(subject, error = %e, "cannot record deadlines checked");
                return;
            }
        }
        self.send_pending(subject).await;
    }

    /// Sends `subject`'s pending alerts not already being sent; each
    /// leaves the record once delivered (or given up).
    pub(crate) async fn send_pending(&self, subject: &str) {
        let Some(alerter) = lock(&self.inner.alerter).clone() else {
            return;
        };
        let pending = self
            .engine()
            .trigger_state(subject)
            .ok()
            .flatten()
            .map(|s| s.pending_alerts)
            .unwrap_or_default();
        for value in pending {
            let Ok(alert) = serde_json::from_value::<Deadline>(value) else {
                continue;
            };
            if !lock(&self.inner.delivering).insert(alert.id.clone()) {
                continue;
            }
            let (this, alerter, subject) = (self.clone(), alerter.clone(), subject.to_owned());
            tokio::spawn(async move {
                alerter.send(&Message::Deadline(alert.clone())).await;
                {
                    let _guard = this.inner.state_lock.lock().await;
                    let engine = this.engine();
                    if let Ok(Some(mut state)) = engine.trigger_state(&subject) {
                        state
                            .pending_alerts
                            .retain(|v| v.get("id").and_then(Value::as_str) != Some(&alert.id));
                        let _ = engine.put_trigger_state(state);
                    }
                }
                lock(&this.inner.delivering).remove(&alert.id);
            });
        }
    }

    /// The `finished_by` deadlines of a schedule trigger due in `(cursor,
    /// now]`: each slot's execution must have succeeded by then.
    pub(crate) async fn check_slots(
        &self,
        trigger: &super::Trigger,
        created: DateTime<Utc>,
        now: DateTime<Utc>,
    ) {
        let super::Compiled::Schedule {
            schedule,
            zone,
            finished_by: Some(finished_by),
            ..
        } = &trigger.kind
        else {
            return;
        };
        let Some(cursor) = self.deadline_cursor(&trigger.name, now).await else {
            self.send_pending(&trigger.name).await;
            return;
        };
        let engine = self.engine();
        let executions = machine_arn(engine, &trigger.state_machine).replacen(
            ":stateMachine:",
            ":execution:",
            1,
        );
        let mut raised = Vec::new();
        for slot in schedule.slots(cursor - LONGEST_DAY, now, *zone, 10_000) {
            if slot < created {
                continue;
            }
            let due = zone.next_wall_time(slot, *finished_by);
            if due <= cursor || due > now {
                continue;
            }
            let name = format!("{}-{}", trigger.name, super::slot_id(slot));
            let record = engine
                .describe_execution(&format!("{executions}:{name}"))
                .ok();
            let outcome = match &record {
                None => "has not started".to_owned(),
                Some(r)
                    if r.status == ExecutionStatus::Succeeded
                        && r.stop.is_some_and(|stop| stop <= due) =>
                {
                    continue;
                }
                Some(r) if r.status == ExecutionStatus::Succeeded => "succeeded late".to_owned(),
                Some(r) if r.status == ExecutionStatus::Running => "is still running".to_owned(),
                Some(r) => format!("ended {}", r.status.as_str()),
            };
            raised.push(Deadline {
                id: format!("slot/{}/{}", trigger.name, super::slot_id(slot)),
                kind: "slot".into(),
                state_machine: trigger.state_machine.clone(),
                deadline: due,
                text: format!(
                    "the {} run of trigger {} was to finish by {}; it {outcome}",
                    rfc3339(slot),
                    trigger.name,
                    rfc3339(due)
                ),
                detail: json!({
                    "resources": record.as_ref().map(|r| vec![r.arn.clone()]).unwrap_or_default(),
                    "trigger": trigger.name,
                    "scheduledTime": rfc3339(slot),
                    "executionName": name,
                    "executionArn": record.as_ref().map(|r| r.arn.clone()),
                    "status": record.as_ref().map(|r| r.status.as_str()),
                }),
            });
        }
        self.raise(&trigger.name, now, raised).await;
    }
}

/// `s` seconds, at most [`MAX_SECONDS`] (what `check` allows).
fn seconds(s: u64) -> Duration {
    Duration::seconds(i64::try_from(s.min(MAX_SECONDS)).unwrap_or(0))
}

/// `90 s`, `5 min`, `2 h`: a duration as people read it.
fn seconds_text(d: Duration) -> String {
    let s = d.num_seconds();
    if s % 3600 == 0 {
        format!("{} h", s / 3600)
    } else if s % 60 == 0 {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}

/// Each followed execution's scan, by ARN.
pub(crate) type Scans = HashMap<String, Scan>;

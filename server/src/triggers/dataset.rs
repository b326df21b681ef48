//! Dataset triggers: one execution per period (a day or an hour in the
//! trigger's zone) once every file of the period's set exists, e.g.
//! `/data/{date}/orders.csv` and `/data/{date}/customers.csv` for each day.
//!
//! Exactly once per period: the execution is named `TRIGGER-PERIOD`
//! (`orders-20261207`), so a period is started once however often its files
//! are seen, across restarts and by backfill. The trigger's state keeps
//! `last_slot`, the start of the oldest period still waited for; periods
//! from there to the current one are looked at each poll. With
//! `timeout_minutes`, a period whose files are not all there that long
//! after its start raises one alert (`deadlines.rs`) and is no longer
//! waited for (a backfill can still start it).
//!
//! Files are confined to the operator's roots as file triggers' are: each
//! filled-in path's directory is canonicalised and must be inside a root,
//! and a file counts only as a regular file, never through a link.

use std::path::Path;

use chrono::{DateTime, Datelike, Duration, NaiveTime, Timelike, Utc};
use serde_json::{Value, json};

use super::spec::{Dataset, Period};
use super::{Compiled, Trigger, Triggers, lock, rfc3339};
use crate::alerts::Deadline;

/// The most periods one poll looks at (the oldest first).
pub const MAX_OPEN_PERIODS: usize = 400;

impl Dataset {
    /// The start of the period that holds `t`.
    pub fn period_start(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        let local = self.zone.local(t);
        let wall = match self.period {
            Period::Day => local.date().and_time(NaiveTime::MIN),
            Period::Hour => local
                .date()
                .and_hms_opt(local.hour(), 0, 0)
                .unwrap_or(local),
        };
        // Midnight skipped by a clock change: the period starts when the
        // day does.
        self.zone
            .instant(wall)
            .or_else(|| self.zone.instant(wall + Duration::hours(1)))
            .unwrap_or(t)
    }

    /// The start of the period after the one starting at `start`.
    pub fn next_period(&self, start: DateTime<Utc>) -> DateTime<Utc> {
        let step = match self.period {
            Period::Day => Duration::hours(25),
            Period::Hour => Duration::minutes(61),
        };
        let next = self.period_start(start + step);
        if next > start { next } else { start + step }
    }

    /// The period's part of an execution name: `20261207` or `20261207T05`.
    pub fn period_id(&self, start: DateTime<Utc>) -> String {
        let local = self.zone.local(start);
        match self.period {
            Period::Day => local.format("%Y%m%d").to_string(),
            Period::Hour => local.format("%Y%m%dT%H").to_string(),
        }
    }

    /// The period's files: every input with its placeholders filled in.
    pub fn files(&self, start: DateTime<Utc>) -> Vec<String> {
        let local = self.zone.local(start);
        self.inputs
            .iter()
            .map(|input| {
                input
                    .replace("{date}", &local.format("%Y-%m-%d").to_string())
                    .replace("{year}", &format!("{:04}", local.year()))
                    .replace("{month}", &format!("{:02}", local.month()))
                    .replace("{day}", &format!("{:02}", local.day()))
                    .replace("{hour}", &format!("{:02}", local.hour()))
            })
            .collect()
    }

    /// The first of the period's files that is missing (not a regular
    /// file, through a link, or outside the roots), or `None` when all
    /// are there.
    pub fn missing(&self, files: &[String]) -> Option<String> {
        files
            .iter()
            .find(|file| !present(Path::new(file), &self.roots))
            .cloned()
    }
}

/// A regular file (not a link) whose directory, canonical, is inside one
/// of `roots`.
fn present(file: &Path, roots: &[std::path::PathBuf]) -> bool {
    let (Some(parent), Some(name)) = (file.parent(), file.file_name()) else {
        return false;
    };
    let Ok(parent) = parent.canonicalize() else {
        return false;
    };
    if !roots.iter().any(|root| parent.starts_with(root)) {
        return false;
    }
    std::fs::symlink_metadata(parent.join(name)).is_ok_and(|m| m.file_type().is_file())
}

/// The event a period's execution gets (and its input, unless a template
/// shapes it).
pub fn event(
    trigger: &Trigger,
    dataset: &Dataset,
    start: DateTime<Utc>,
    files: &[String],
) -> Value {
    json!({
        "trigger": trigger.name,
        "kind": "dataset",
        "period": dataset.period_id(start),
        "periodStart": rfc3339(start),
        "files": files,
    })
}

impl Triggers {
    /// Polls one dataset trigger if its poll is due: starts the periods
    /// whose files are all there, alerts and gives up on those past their
    /// timeout. When to poll it next.
    pub(crate) async fn poll_dataset(
        &self,
        trigger: &Trigger,
        now: DateTime<Utc>,
    ) -> DateTime<Utc> {
        let Compiled::Dataset(dataset) = &trigger.kind else {
            return now + Duration::seconds(1);
        };
        let poll = Duration::from_std(dataset.poll).unwrap_or(Duration::seconds(5));
        let next = now + poll;
        // How often the files are read is pacing, not time the trigger
        // reasons about: it follows the monotonic clock, so a manual
        // engine clock that stands still does not stop the looking.
        {
            let mut polls = lock(&self.inner.dataset_polls);
            let due = polls
                .get(&trigger.name)
                .is_none_or(|at| *at <= std::time::Instant::now());
            if !due {
                return next;
            }
            polls.insert(
                trigger.name.clone(),
                std::time::Instant::now() + dataset.poll,
            );
        }
        let engine = self.engine();
        let state = engine.trigger_state(&trigger.name).ok().flatten();
        let current = dataset.period_start(now);
        // A new trigger waits from the current period on.
        let oldest = state.as_ref().and_then(|s| s.last_slot).unwrap_or(current);
        let cursor = state
            .as_ref()
            .and_then(|s| s.deadlines_checked)
            .unwrap_or(now);
        let executions = super::machine_arn(engine, &trigger.state_machine).replacen(
            ":stateMachine:",
            ":execution:",
            1,
        );
        let mut waiting_from: Option<DateTime<Utc>> = None;
        let mut raised = Vec::new();
        let mut period = oldest;
        let mut looked = 0;
        while period <= current && looked < MAX_OPEN_PERIODS {
            looked += 1;
            let id = dataset.period_id(period);
            let name = format!("{}-{id}", trigger.name);
            let started = engine
                .describe_execution(&format!("{executions}:{name}"))
                .is_ok();
            let files = dataset.files(period);
            let resolved = if started {
                true
            } else if dataset.missing(&files).is_none() {
                let event = event(trigger, dataset, period, &files);
                match self.fire(trigger, &id, event).await {
                    Ok(fired) => {
                        if fired.new {
                            tracing::info!(trigger = %trigger.name, period = %id, execution = %fired.execution_arn, "dataset trigger started an execution");
                        }
                        true
                    }
                    Err(_) => false,
                }
            } else if let Some(timeout) = dataset.timeout.filter(|t| period + *t <= now) {
                let due = period + timeout;
                if due > cursor {
                    let missing = dataset.missing(&files).unwrap_or_default();
                    raised.push(Deadline {
                        id: format!("dataset/{}/{id}", trigger.name),
                        kind: "dataset".into(),
                        state_machine: trigger.state_machine.clone(),
                        deadline: due,
                        text: format!(
                            "the files of period {id} of trigger {} were not all there by {}: {missing} is missing",
                            trigger.name,
                            rfc3339(due)
                        ),
                        detail: json!({
                            "trigger": trigger.name,
                            "period": id,
                            "periodStart": rfc3339(period),
                            "files": files,
                            "missing": missing,
                        }),
                    });
                }
                true
            } else {
                false
            };
            if !resolved && waiting_from.is_none() {
                waiting_from = Some(period);
            }
            period = dataset.next_period(period);
        }
        let oldest_open = waiting_from.unwrap_or(period);
        let next_fire = Some(dataset.next_period(current));
        self.raise_with(&trigger.name, now, raised, |state| {
            state.last_slot = Some(oldest_open);
            state.next_fire = next_fire;
        })
        .await;
        next
    }

    /// The periods of dataset trigger `trigger` starting in `[from, to]`.
    pub(crate) fn dataset_periods(
        dataset: &Dataset,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut period = dataset.period_start(from);
        if period < from {
            period = dataset.next_period(period);
        }
        while period <= to && out.len() < limit {
            out.push(period);
            period = dataset.next_period(period);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::triggers::schedule::Zone;

    fn t(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).expect("time").to_utc()
    }

    fn dataset(period: Period, zone: &str) -> Dataset {
        Dataset {
            inputs: vec![
                "/data/{date}/orders.csv".into(),
                "/data/{year}/{month}/{day}T{hour}.csv".into(),
            ],
            period,
            zone: Zone::parse(zone).expect("zone"),
            timeout: None,
            poll: std::time::Duration::from_secs(1),
            roots: Vec::new(),
        }
    }

    #[test]
    fn periods_follow_the_zone() {
        let d = dataset(Period::Day, "Europe/Paris");
        // 23:30 UTC on the 7th is 00:30 on the 8th in Paris (winter).
        let start = d.period_start(t("2026-12-07T23:30:00Z"));
        assert_eq!(start, t("2026-12-07T23:00:00Z"));
        assert_eq!(d.period_id(start), "20261208");
        assert_eq!(d.files(start)[0], "/data/2026-12-08/orders.csv");
        assert_eq!(d.next_period(start), t("2026-12-08T23:00:00Z"));
        // The spring change: the 29th of March 2026 has 23 hours.
        let spring = d.period_start(t("2026-03-29T12:00:00Z"));
        assert_eq!(spring, t("2026-03-28T23:00:00Z"));
        assert_eq!(d.next_period(spring), t("2026-03-29T22:00:00Z"));
        let h = dataset(Period::Hour, "UTC");
        let start = h.period_start(t("2026-12-07T05:59:59Z"));
        assert_eq!(start, t("2026-12-07T05:00:00Z"));
        assert_eq!(h.period_id(start), "20261207T05");
        assert_eq!(h.files(start)[1], "/data/2026/12/07T05.csv");
        assert_eq!(
            Triggers::dataset_periods(&h, t("2026-12-07T05:30:00Z"), t("2026-12-07T08:00:00Z"), 10),
            vec![
                t("2026-12-07T06:00:00Z"),
                t("2026-12-07T07:00:00Z"),
                t("2026-12-07T08:00:00Z")
            ]
        );
    }
}

//! What the engine counts, rendered in Prometheus's text format by the
//! server's `/metrics`: executions by state machine and outcome, state
//! transitions, task durations by resource type, store flush latency, the
//! executions open now, the timers armed, and trigger firings and errors.
//!
//! Label cardinality is bounded by what the operator creates: state
//! machine and trigger names, and a closed set of resource types. No
//! execution ARN, input or error text ever becomes a label.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Histogram buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (bound, count) in BUCKETS.iter().zip(self.counts) {
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {count}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

/// The engine's counters. Cheap to update from any task.
#[derive(Debug, Default)]
pub struct Metrics {
    started: Mutex<BTreeMap<String, u64>>,
    finished: Mutex<BTreeMap<(String, &'static str), u64>>,
    transitions: AtomicU64,
    tasks: Mutex<BTreeMap<String, Histogram>>,
    flushes: Mutex<Histogram>,
    /// Timers armed in this process (Wait states, retry delays, timeouts,
    /// heartbeats): the timer queue's depth.
    timers: AtomicI64,
    trigger_fires: Mutex<BTreeMap<String, u64>>,
    trigger_errors: Mutex<BTreeMap<String, u64>>,
    /// Trigger fires refused by the trigger's windows (`outside = "refuse"`).
    trigger_window_skips: Mutex<BTreeMap<String, u64>>,
    /// Alert notifications by outcome (`delivered`, `failed` after every
    /// retry, `dropped` when too many were pending).
    alerts: Mutex<BTreeMap<&'static str, u64>>,
    /// Task cache lookups that found a live result, and those that did not.
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    /// Executions this node took over (from a dead node, or handed over).
    claimed: AtomicU64,
    /// Executions this node handed to the others: Map Run children as
    /// they start, and the excess the balance releases.
    handed_map_run: AtomicU64,
    handed_balance: AtomicU64,
}

/// One counter per value of a label, with its HELP and TYPE lines.
fn counter_family(
    out: &mut String,
    name: &str,
    help: &str,
    label_name: &str,
    values: &[(&str, &AtomicU64)],
) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} counter");
    for (value, counter) in values {
        let _ = writeln!(
            out,
            "{name}{{{label_name}=\"{value}\"}} {}",
            counter.load(Ordering::Relaxed)
        );
    }
}

/// The resource types a task is counted under: a closed set, so a
/// definition naming `arn:aws:states:::anything:x` adds no label value.
const RESOURCE_TYPES: [&str; 5] = ["http", "activity", "lambda", "states", "stepline"];

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A label value with `\`, `"` and newlines escaped.
pub(crate) fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    pub fn execution_started(&self, machine: &str) {
        *lock(&self.started).entry(machine.to_owned()).or_default() += 1;
    }

    pub fn execution_finished(&self, machine: &str, status: &'static str) {
        *lock(&self.finished)
            .entry((machine.to_owned(), status))
            .or_default() += 1;
    }

    pub fn transitions(&self, n: u64) {
        self.transitions.fetch_add(n, Ordering::Relaxed);
    }

    pub fn task_done(&self, resource_type: &str, took: Duration) {
        let resource_type = if RESOURCE_TYPES.contains(&resource_type) {
            resource_type
        } else {
            "other"
        };
        lock(&self.tasks)
            .entry(resource_type.to_owned())
            .or_default()
            .observe(took.as_secs_f64());
    }

    pub fn flushed(&self, took: Duration) {
        lock(&self.flushes).observe(took.as_secs_f64());
    }

    /// The timer task's queue depth, set by the timer task itself.
    pub fn set_timers_pending(&self, n: usize) {
        self.timers.store(n as i64, Ordering::Relaxed);
    }

    /// A task call looked its result up in the cache.
    pub fn cache_lookup(&self, hit: bool) {
        let counter = if hit {
            &self.cache_hits
        } else {
            &self.cache_misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// This node took `n` executions over (a cluster's claim).
    pub fn claimed(&self, n: usize) {
        self.claimed.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// This node handed `n` executions to the others: a Map Run's child
    /// as it started (`map_run: true`) or the balance's excess.
    pub fn handed_over(&self, n: usize, map_run: bool) {
        let counter = if map_run {
            &self.handed_map_run
        } else {
            &self.handed_balance
        };
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// An alert notification reached its end: `delivered`, `failed` or
    /// `dropped`.
    pub fn alert(&self, outcome: &'static str) {
        *lock(&self.alerts).entry(outcome).or_default() += 1;
    }

    /// A trigger started an execution (a duplicate event does not count).
    pub fn trigger_fired(&self, trigger: &str) {
        *lock(&self.trigger_fires)
            .entry(trigger.to_owned())
            .or_default() += 1;
    }

    /// A trigger's event could not start its execution, or its source
    /// (a directory, a schedule) failed.
    pub fn trigger_failed(&self, trigger: &str) {
        *lock(&self.trigger_errors)
            .entry(trigger.to_owned())
            .or_default() += 1;
    }

    /// A trigger's fire came outside its windows and was skipped.
    pub fn trigger_window_skipped(&self, trigger: &str) {
        *lock(&self.trigger_window_skips)
            .entry(trigger.to_owned())
            .or_default() += 1;
    }

    /// Everything, in Prometheus's text exposition format.
    pub fn render(&self, open_executions: usize) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP stepline_executions_started_total Executions started, by state machine.\n",
        );
        out.push_str("# TYPE stepline_executions_started_total counter\n");
        for (machine, n) in lock(&self.started).iter() {
            let _ = writeln!(
                out,
                "stepline_executions_started_total{{state_machine=\"{}\"}} {n}",
                label(machine)
            );
        }
        out.push_str("# HELP stepline_executions_finished_total Executions ended, by state machine and status.\n");
        out.push_str("# TYPE stepline_executions_finished_total counter\n");
        for ((machine, status), n) in lock(&self.finished).iter() {
            let _ = writeln!(
                out,
                "stepline_executions_finished_total{{state_machine=\"{}\",status=\"{status}\"}} {n}",
                label(machine)
            );
        }
        out.push_str("# HELP stepline_open_executions Executions running in this process.\n");
        out.push_str("# TYPE stepline_open_executions gauge\n");
        let _ = writeln!(out, "stepline_open_executions {open_executions}");
        out.push_str("# HELP stepline_state_transitions_total States entered.\n");
        out.push_str("# TYPE stepline_state_transitions_total counter\n");
        let _ = writeln!(
            out,
            "stepline_state_transitions_total {}",
            self.transitions.load(Ordering::Relaxed)
        );
        out.push_str("# HELP stepline_task_duration_seconds Task invocations, by resource type.\n");
        out.push_str("# TYPE stepline_task_duration_seconds histogram\n");
        for (resource, h) in lock(&self.tasks).iter() {
            h.render(
                &mut out,
                "stepline_task_duration_seconds",
                &format!("resource_type=\"{}\"", label(resource)),
            );
        }
        out.push_str(
            "# HELP stepline_store_flush_seconds Store flushes (one serves many executions).\n",
        );
        out.push_str("# TYPE stepline_store_flush_seconds histogram\n");
        lock(&self.flushes).render(&mut out, "stepline_store_flush_seconds", "");
        out.push_str(
            "# HELP stepline_timers_pending Timers armed (Wait states, retry delays, timeouts).\n",
        );
        out.push_str("# TYPE stepline_timers_pending gauge\n");
        let _ = writeln!(
            out,
            "stepline_timers_pending {}",
            self.timers.load(Ordering::Relaxed).max(0)
        );
        for (name, help, map) in [
            (
                "stepline_trigger_fires_total",
                "Executions started by a trigger, by trigger.",
                &self.trigger_fires,
            ),
            (
                "stepline_trigger_errors_total",
                "Trigger events that failed to start an execution, and trigger source errors, by trigger.",
                &self.trigger_errors,
            ),
            (
                "stepline_trigger_window_skips_total",
                "Trigger fires skipped because they came outside the trigger's windows (outside = refuse), by trigger.",
                &self.trigger_window_skips,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            for (trigger, n) in lock(map).iter() {
                let _ = writeln!(out, "{name}{{trigger=\"{}\"}} {n}", label(trigger));
            }
        }
        out.push_str("# HELP stepline_alerts_total Alert notifications, by outcome (delivered, failed after its retries, dropped).\n");
        out.push_str("# TYPE stepline_alerts_total counter\n");
        for (outcome, n) in lock(&self.alerts).iter() {
            let _ = writeln!(out, "stepline_alerts_total{{outcome=\"{outcome}\"}} {n}");
        }
        counter_family(
            &mut out,
            "stepline_task_cache_lookups_total",
            "Task calls looked up in the task cache, by outcome (hit: answered from it; miss: called).",
            "outcome",
            &[("hit", &self.cache_hits), ("miss", &self.cache_misses)],
        );
        out.push_str("# HELP stepline_cluster_claims_total Executions this node took over from other nodes (a cluster).\n");
        out.push_str("# TYPE stepline_cluster_claims_total counter\n");
        let _ = writeln!(
            out,
            "stepline_cluster_claims_total {}",
            self.claimed.load(Ordering::Relaxed)
        );
        counter_family(
            &mut out,
            "stepline_cluster_handovers_total",
            "Executions this node handed to the other nodes, by reason (map_run: a Map Run's child as it started; balance: more than this node's share).",
            "reason",
            &[
                ("map_run", &self.handed_map_run),
                ("balance", &self.handed_balance),
            ],
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.execution_started("orders");
        m.execution_finished("orders", "SUCCEEDED");
        m.transitions(3);
        m.task_done("http", Duration::from_millis(3));
        m.flushed(Duration::from_micros(700));
        m.task_done("made-up-service", Duration::from_millis(1));
        m.set_timers_pending(1);
        m.trigger_fired("nightly");
        m.trigger_failed("inbox");
        m.cache_lookup(true);
        m.cache_lookup(false);
        m.cache_lookup(false);
        let text = m.render(2);
        assert!(text.contains("stepline_task_cache_lookups_total{outcome=\"hit\"} 1"));
        assert!(text.contains("stepline_task_cache_lookups_total{outcome=\"miss\"} 2"));
        assert!(text.contains("stepline_task_duration_seconds_count{resource_type=\"other\"} 1"));
        assert!(!text.contains("made-up-service"));
        assert!(text.contains("stepline_timers_pending 1"));
        assert!(text.contains("stepline_trigger_fires_total{trigger=\"nightly\"} 1"));
        assert!(text.contains("stepline_trigger_errors_total{trigger=\"inbox\"} 1"));
        assert!(text.contains("stepline_executions_started_total{state_machine=\"orders\"} 1"));
        assert!(text.contains(
            "stepline_executions_finished_total{state_machine=\"orders\",status=\"SUCCEEDED\"} 1"
        ));
        assert!(text.contains("stepline_open_executions 2"));
        assert!(text.contains("stepline_state_transitions_total 3"));
        assert!(text.contains(
            "stepline_task_duration_seconds_bucket{resource_type=\"http\",le=\"0.005\"} 1"
        ));
        assert!(text.contains(
            "stepline_task_duration_seconds_bucket{resource_type=\"http\",le=\"0.0025\"} 0"
        ));
        assert!(text.contains("stepline_store_flush_seconds_count 1"));
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}

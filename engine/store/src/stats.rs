//! What the dashboard shows of each state machine, kept as it happens:
//! per machine and per hour, how many executions started, were redriven
//! and ended (by status), and a small histogram of the durations of those
//! that ended. The runtime puts a [`WriteOp::AddStats`](crate::WriteOp)
//! in the same batch as an execution's start, redrive or end, so the
//! figures are as durable as the executions themselves, and every node of
//! a cluster adds to the same rows. A dashboard reads at most one bucket
//! per hour of its window (168 for a week) and the machine's all-time
//! total: never the executions.
//!
//! Durations are counted in log-scale buckets, two per doubling from one
//! millisecond ([`duration_bucket`]): a percentile read from them
//! ([`MachineStats::percentile`]) is within about 19 % of the true one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{ExecutionRecord, ExecutionStatus, StoreError};

/// How many duration buckets a histogram has: two per doubling (bucket 0
/// is under 2 ms), up to about 35 days in the last.
pub const DURATION_BUCKETS: usize = 64;

/// The hour under which a machine's all-time totals are kept (real hours
/// count from the epoch, from 0).
pub const TOTAL_HOUR: i64 = -1;

/// The bucket of a duration in milliseconds: `floor(2 * log2(ms))`, 0 for
/// anything under 1.41 ms, the last for anything longer than it covers.
pub fn duration_bucket(ms: u64) -> usize {
    if ms < 2 {
        return 0;
    }
    let log = 63 - u64::from(ms.leading_zeros()); // floor(log2 ms)
    // The half step: past 2^log * sqrt(2)?
    let half = (ms as f64) >= ((1u64 << log) as f64) * std::f64::consts::SQRT_2;
    (2 * log as usize + usize::from(half)).min(DURATION_BUCKETS - 1)
}

/// The duration (ms) a bucket stands for: the geometric middle of its
/// bounds.
pub fn bucket_duration(bucket: usize) -> f64 {
    if bucket == 0 {
        return 1.0;
    }
    2f64.powf((bucket as f64 + 0.5) / 2.0)
}

/// The hour (from the epoch) a time falls in.
pub fn hour_of(time: DateTime<Utc>) -> i64 {
    time.timestamp().div_euclid(3600)
}

/// Counts of one state machine over one hour (or over all time, without
/// durations).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineStats {
    #[serde(default)]
    pub started: u64,
    /// Redrives: an ended execution running again.
    #[serde(default)]
    pub redriven: u64,
    #[serde(default)]
    pub succeeded: u64,
    #[serde(default)]
    pub failed: u64,
    #[serde(default)]
    pub timed_out: u64,
    #[serde(default)]
    pub aborted: u64,
    /// How many ended executions' durations (start to end) fell in each bucket of [`duration_bucket`]; trailing empty
    /// buckets are left out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub durations: Vec<u64>,
}

impl MachineStats {
    /// Executions that ended, whatever their status.
    pub fn ended(&self) -> u64 {
        self.succeeded + self.failed + self.timed_out + self.aborted
    }

    /// Executions running now, when `self` is an all-time total.
    pub fn running(&self) -> u64 {
        (self.started + self.redriven).saturating_sub(self.ended())
    }

    /// Adds `other` in.
    pub fn add(&mut self, other: &MachineStats) {
        self.started += other.started;
        self.redriven += other.redriven;
        self.succeeded += other.succeeded;
        self.failed += other.failed;
        self.timed_out += other.timed_out;
        self.aborted += other.aborted;
        if self.durations.len() < other.durations.len() {
            self.durations.resize(other.durations.len(), 0);
        }
        for (mine, theirs) in self.durations.iter_mut().zip(&other.durations) {
            *mine += theirs;
        }
    }

    /// The same counts without the histogram (what a total keeps).
    pub fn without_durations(&self) -> MachineStats {
        MachineStats {
            durations: Vec::new(),
            ..self.clone()
        }
    }

    /// The duration (ms) under which `p` (0 to 1) of the ended executions
    /// fell, read from the histogram; `None` when none ended.
    pub fn percentile(&self, p: f64) -> Option<f64> {
        let total: u64 = self.durations.iter().sum();
        if total == 0 {
            return None;
        }
        // The rank of the p-th execution, 1-based, at least the first.
        let rank = ((p * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (bucket, count) in self.durations.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(bucket_duration(bucket));
            }
        }
        None
    }

    /// What a start adds.
    pub fn start() -> Self {
        MachineStats {
            started: 1,
            ..Default::default()
        }
    }

    /// What a redrive adds.
    pub fn redrive() -> Self {
        MachineStats {
            redriven: 1,
            ..Default::default()
        }
    }

    /// What the end of `record` (its closed record) adds: its status, and
    /// its duration from its start to its stop (for a redriven execution,
    /// the whole time since its first start).
    pub fn end(record: &ExecutionRecord) -> Self {
        let mut stats = MachineStats::default();
        match record.status {
            ExecutionStatus::Running => return stats,
            ExecutionStatus::Succeeded => stats.succeeded = 1,
            ExecutionStatus::Failed => stats.failed = 1,
            ExecutionStatus::TimedOut => stats.timed_out = 1,
            ExecutionStatus::Aborted => stats.aborted = 1,
        }
        let stop = record.stop.unwrap_or(record.start);
        let ms = u64::try_from((stop - record.start).num_milliseconds()).unwrap_or(0);
        let bucket = duration_bucket(ms);
        stats.durations = vec![0; bucket + 1];
        stats.durations[bucket] = 1;
        stats
    }
}

/// What one write adds to a machine's counts: to the bucket of `hour`,
/// and (without durations) to the machine's total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsDelta {
    pub state_machine: String,
    pub hour: i64,
    pub stats: MachineStats,
}

impl StatsDelta {
    /// The delta of `stats` at `time` for the machine of `record`; `None`
    /// for a distributed Map's child, whose counts its parent's Map Run
    /// already keeps (and whose many ends would all write one row).
    pub fn of(record: &ExecutionRecord, time: DateTime<Utc>, stats: MachineStats) -> Option<Self> {
        if record.map_run.is_some() {
            return None;
        }
        Some(StatsDelta {
            state_machine: record.state_machine_arn.clone(),
            hour: hour_of(time),
            stats,
        })
    }
}

/// One machine's counts for one hour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsBucket {
    pub hour: i64,
    pub stats: MachineStats,
}

/// The counts kept by [`WriteOp::AddStats`](crate::WriteOp).
pub trait Stats {
    /// The buckets of `state_machine` with an hour in `from..=to` that
    /// hold anything, by hour (a week is 168 at most).
    fn stats_hours(
        &self,
        state_machine: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<StatsBucket>, StoreError>;

    /// The machine's all-time total (no durations): what is running now.
    fn stats_total(&self, state_machine: &str) -> Result<MachineStats, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_half_doublings() {
        assert_eq!(duration_bucket(0), 0);
        assert_eq!(duration_bucket(1), 0);
        assert_eq!(duration_bucket(2), 2);
        assert_eq!(duration_bucket(3), 3);
        assert_eq!(duration_bucket(4), 4);
        assert_eq!(duration_bucket(1000), 19);
        assert_eq!(duration_bucket(u64::MAX), DURATION_BUCKETS - 1);
        for ms in [5u64, 17, 250, 1000, 60_000, 3_600_000] {
            let middle = bucket_duration(duration_bucket(ms));
            let ratio = middle / ms as f64;
            assert!((0.70..=1.42).contains(&ratio), "{ms} ms read as {middle}");
        }
    }

    #[test]
    fn percentiles_come_from_the_histogram() {
        let mut stats = MachineStats::default();
        for ms in [10u64, 10, 10, 10, 10, 10, 10, 10, 10, 5000] {
            let mut one = MachineStats::default();
            let b = duration_bucket(ms);
            one.durations = vec![0; b + 1];
            one.durations[b] = 1;
            stats.add(&one);
        }
        let p50 = stats.percentile(0.5).unwrap();
        let p95 = stats.percentile(0.95).unwrap();
        assert!((8.0..13.0).contains(&p50), "{p50}");
        assert!((4000.0..6000.0).contains(&p95), "{p95}");
        assert_eq!(MachineStats::default().percentile(0.5), None);
    }
}

//! The dashboard's counts ([`stepline_store::stats`]) on PostgreSQL:
//! gathered in this process's memory and added to `machine_stats` once a
//! second, one upsert per state machine and hour.
//!
//! Why not with each batch: every start and end of an execution would
//! upsert two of a machine's few count rows, and at thousands of starts a
//! second those upserts cost more than the starts themselves. Gathered, a
//! second's starts and ends of one machine are one upsert.
//!
//! What it costs: a count reaches the table up to a second after its
//! batch, so another node's dashboard shows it a second late, and a crash
//! (SIGKILL, power) loses the counts of its last second. A clean stop
//! (the node leaving the cluster, or the store dropped) adds them first.
//! The counts are a dashboard, not a ledger: the executions themselves
//! are never lost.
//!
//! What this node reads: the table plus its own pending counts, so a user
//! sees their execution counted the moment it ends. A read and a flush
//! never overlap (the `gate`), so a pending count is read either from
//! memory or from the table, never both nor neither.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::RwLock;

use stepline_store::{MachineStats, StatsBucket, StatsDelta};

use crate::PostgresError;
use crate::pool::Pool;
use crate::reads::{Param, int};

/// How often the pending counts are added to the table.
pub(crate) const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// How many rows each count is spread over (see the schema's migration 4).
const STATS_SHARDS: i16 = 8;

/// The counts this process has not yet added to the table.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    /// By state machine and hour (durations included).
    pending: Mutex<HashMap<(String, i64), MachineStats>>,
    /// Held for reading while a read sums the table and the pending
    /// counts, for writing while a flush moves counts from one to the
    /// other.
    gate: RwLock<()>,
}

impl Counts {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, i64), MachineStats>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps `deltas` (of a committed batch) until the next flush.
    pub(crate) fn add(&self, deltas: impl IntoIterator<Item = StatsDelta>) {
        let mut pending = self.lock();
        for delta in deltas {
            pending
                .entry((delta.state_machine, delta.hour))
                .or_default()
                .add(&delta.stats);
        }
    }

    /// Waits until no flush is moving counts, and holds it off while the
    /// guard lives.
    pub(crate) async fn reading(&self) -> tokio::sync::RwLockReadGuard<'_, ()> {
        self.gate.read().await
    }

    /// Adds this process's pending counts of `state_machine` for hours
    /// `from..=to` to `buckets` (ordered by hour, as read).
    pub(crate) fn add_pending_hours(
        &self,
        state_machine: &str,
        from: i64,
        to: i64,
        buckets: &mut Vec<StatsBucket>,
    ) {
        let pending = self.lock();
        let mut added = false;
        for ((machine, hour), stats) in pending.iter() {
            if machine != state_machine || !(from..=to).contains(hour) {
                continue;
            }
            match buckets.iter_mut().find(|b| b.hour == *hour) {
                Some(bucket) => bucket.stats.add(stats),
                None => {
                    buckets.push(StatsBucket {
                        hour: *hour,
                        stats: stats.clone(),
                    });
                    added = true;
                }
            }
        }
        if added {
            buckets.sort_by_key(|b| b.hour);
        }
    }

    /// Adds this process's pending counts of `state_machine` (every hour,
    /// without durations) to `total`.
    pub(crate) fn add_pending_total(&self, state_machine: &str, total: &mut MachineStats) {
        for ((machine, _), stats) in self.lock().iter() {
            if machine == state_machine {
                total.add(&stats.without_durations());
            }
        }
    }

    /// Adds the pending counts to the table: one statement per machine and
    /// hour (each its own transaction, so two flushes never wait on each
    /// other's rows for long), all sent at once. Counts whose statement
    /// failed stay pending for the next flush.
    pub(crate) async fn flush(&self, pool: &Arc<Pool>) -> Result<(), PostgresError> {
        let _moving = self.gate.write().await;
        let taken: Vec<((String, i64), MachineStats)> = self.lock().drain().collect();
        if taken.is_empty() {
            return Ok(());
        }
        let mut conn = match pool.get().await {
            Ok(conn) => conn,
            Err(e) => {
                self.put_back(taken);
                return Err(e);
            }
        };
        let statement = match conn.statement(ADD_STATS).await {
            Ok(statement) => statement,
            Err(e) => {
                self.put_back(taken);
                return Err(e);
            }
        };
        let params: Vec<Vec<Param>> = taken
            .iter()
            .map(|((machine, hour), stats)| params(machine, *hour, stats))
            .collect();
        let answers = futures_util::future::join_all(params.iter().map(|params| {
            let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
                .iter()
                .map(|p| p.as_ref() as &(dyn tokio_postgres::types::ToSql + Sync))
                .collect();
            let client = &conn.client;
            let statement = &statement;
            async move { client.execute(statement, &refs).await }
        }))
        .await;
        let mut failure = None;
        let mut failed = Vec::new();
        for (count, answer) in taken.into_iter().zip(answers) {
            if let Err(e) = answer {
                failed.push(count);
                failure.get_or_insert(e);
            }
        }
        self.put_back(failed);
        match failure {
            Some(e) => {
                conn.discard();
                Err(e.into())
            }
            None => Ok(()),
        }
    }

    fn put_back(&self, counts: Vec<((String, i64), MachineStats)>) {
        let mut pending = self.lock();
        for (key, stats) in counts {
            pending.entry(key).or_default().add(&stats);
        }
    }
}

/// Flushes `counts` every [`FLUSH_EVERY`] for as long as the store's
/// runtime runs.
pub(crate) async fn flush_loop(pool: Arc<Pool>, counts: Arc<Counts>) {
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = counts.flush(&pool).await {
            tracing::warn!(error = %e, "the dashboard's counts wait for the database");
        }
    }
}

/// The row a flush adds to: in turn, so that the nodes of a cluster
/// mostly take different rows.
fn next_shard() -> i16 {
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    (n % STATS_SHARDS as u16) as i16
}

fn params(machine: &str, hour: i64, stats: &MachineStats) -> Vec<Param> {
    let counts = [
        stats.started,
        stats.redriven,
        stats.succeeded,
        stats.failed,
        stats.timed_out,
        stats.aborted,
    ];
    let mut params: Vec<Param> = vec![
        Box::new(machine.to_owned()),
        Box::new(hour),
        Box::new(next_shard()),
    ];
    params.extend(counts.map(|n| Box::new(int(n)) as Param));
    params.push(Box::new(
        stats
            .durations
            .iter()
            .map(|n| int(*n))
            .collect::<Vec<i64>>(),
    ));
    params
}

/// Adds counts to their hour's row and (without durations) to the
/// total's: counts added, histograms added bucket by bucket.
const ADD_STATS: &str = "WITH bucket AS (
         INSERT INTO machine_stats AS s (state_machine, hour, shard, started, redriven,
             succeeded, failed, timed_out, aborted, durations)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (state_machine, hour, shard) DO UPDATE SET
             started = s.started + EXCLUDED.started,
             redriven = s.redriven + EXCLUDED.redriven,
             succeeded = s.succeeded + EXCLUDED.succeeded,
             failed = s.failed + EXCLUDED.failed,
             timed_out = s.timed_out + EXCLUDED.timed_out,
             aborted = s.aborted + EXCLUDED.aborted,
             durations = ARRAY(
                 SELECT coalesce(a, 0) + coalesce(b, 0)
                 FROM unnest(s.durations, EXCLUDED.durations) WITH ORDINALITY AS t(a, b, i)
                 ORDER BY i)
     )
     INSERT INTO machine_stats AS s (state_machine, hour, shard, started, redriven,
         succeeded, failed, timed_out, aborted, durations)
     VALUES ($1, -1, $3, $4, $5, $6, $7, $8, $9, '{}')
     ON CONFLICT (state_machine, hour, shard) DO UPDATE SET
         started = s.started + EXCLUDED.started,
         redriven = s.redriven + EXCLUDED.redriven,
         succeeded = s.succeeded + EXCLUDED.succeeded,
         failed = s.failed + EXCLUDED.failed,
         timed_out = s.timed_out + EXCLUDED.timed_out,
         aborted = s.aborted + EXCLUDED.aborted";

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(machine: &str, hour: i64, stats: MachineStats) -> StatsDelta {
        StatsDelta {
            state_machine: machine.to_owned(),
            hour,
            stats,
        }
    }

    #[test]
    fn pending_counts_are_summed_per_machine_and_hour() {
        let counts = Counts::default();
        counts.add([
            delta("a", 10, MachineStats::start()),
            delta("a", 10, MachineStats::start()),
            delta("a", 12, MachineStats::redrive()),
            delta("b", 10, MachineStats::start()),
        ]);
        assert_eq!(counts.lock().len(), 3);
        let mut buckets = vec![StatsBucket {
            hour: 11,
            stats: MachineStats::start(),
        }];
        counts.add_pending_hours("a", 0, 20, &mut buckets);
        let hours: Vec<(i64, u64, u64)> = buckets
            .iter()
            .map(|b| (b.hour, b.stats.started, b.stats.redriven))
            .collect();
        assert_eq!(hours, [(10, 2, 0), (11, 1, 0), (12, 0, 1)]);
        let mut total = MachineStats::default();
        counts.add_pending_total("a", &mut total);
        assert_eq!((total.started, total.redriven), (2, 1));
    }
}

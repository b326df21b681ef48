//! The read traits: one prepared statement each, the record decoded from
//! its JSON text.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use stepline_language::history::HistoryEvent;
use stepline_store::{
    Activities, ActivityRecord, CacheEntryRecord, EndedNotices, ExecutionPage, ExecutionQuery,
    ExecutionRecord, ExecutionSummary, Executions, ExecutionsOf, Histories, JournalEntry, Journals,
    Lineage, LineageRecord, ListCursor, MapRunRecord, MapRuns, StateMachineRecord, StateMachines,
    StoreError, TaskCache, TaskLogRecord, TaskLogs, TaskTokenRecord, TaskTokens, TimerRecord,
    Timers, TriggerRecord, TriggerStateRecord, Triggers,
};
use stepline_store::{MachineStats, Stats, StatsBucket};

use crate::{PostgresError, PostgresStore};

/// A statement's parameter, owned so that it can cross to the store's
/// runtime.
pub(crate) type Param = Box<dyn ToSql + Sync + Send>;

/// A count or id as PostgreSQL's `bigint` (ids past `i64::MAX` never
/// exist, so clamping loses nothing a query could find).
pub(crate) fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A time in nanoseconds since the epoch, clamped to what an `i64` holds
/// (years 1677 to 2262; a listing never orders anything outside them).
pub(crate) fn nanos(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(if t.timestamp() < 0 {
        i64::MIN
    } else {
        i64::MAX
    })
}

pub(crate) fn decode<T: DeserializeOwned>(text: &str) -> Result<T, PostgresError> {
    serde_json::from_str(text).map_err(PostgresError::Decode)
}

/// Column 0 of each row, decoded.
fn decode_all<T: DeserializeOwned>(rows: &[Row]) -> Result<Vec<T>, StoreError> {
    rows.iter()
        .map(|row| Ok(decode(row.get::<_, &str>(0))?))
        .collect()
}

fn decode_first<T: DeserializeOwned>(rows: &[Row]) -> Result<Option<T>, StoreError> {
    rows.first()
        .map(|row| Ok(decode(row.get::<_, &str>(0))?))
        .transpose()
}

fn limit(n: usize) -> i64 {
    i64::try_from(n.max(1)).unwrap_or(i64::MAX)
}

impl PostgresStore {
    /// The rows `sql` selects with `params`.
    pub(crate) fn rows(
        &self,
        sql: impl Into<String>,
        params: Vec<Param>,
    ) -> Result<Vec<Row>, StoreError> {
        let sql = sql.into();
        Ok(self.run(|pool| async move {
            let mut conn = pool.get().await?;
            let statement = conn.statement(&sql).await?;
            let refs: Vec<&(dyn ToSql + Sync)> = params
                .iter()
                .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                .collect();
            Ok(conn.client.query(&statement, &refs).await?)
        })?)
    }
}

fn text(s: &str) -> Param {
    Box::new(s.to_owned())
}

impl StateMachines for PostgresStore {
    fn state_machine(&self, arn: &str) -> Result<Option<StateMachineRecord>, StoreError> {
        decode_first(&self.rows(
            "SELECT record FROM state_machines WHERE arn = $1",
            vec![text(arn)],
        )?)
    }

    fn state_machines(&self) -> Result<Vec<StateMachineRecord>, StoreError> {
        decode_all(&self.rows("SELECT record FROM state_machines ORDER BY arn", vec![])?)
    }

    fn state_machine_revision(
        &self,
        arn: &str,
        revision: u64,
    ) -> Result<Option<StateMachineRecord>, StoreError> {
        decode_first(&self.rows(
            "SELECT record FROM state_machine_revisions WHERE arn = $1 AND revision = $2",
            vec![text(arn), Box::new(int(revision))],
        )?)
    }
}

impl Executions for PostgresStore {
    fn execution(&self, arn: &str) -> Result<Option<ExecutionRecord>, StoreError> {
        decode_first(&self.rows(
            "SELECT record FROM executions WHERE arn = $1",
            vec![text(arn)],
        )?)
    }

    fn execution_by_name(
        &self,
        state_machine: &str,
        name: &str,
    ) -> Result<Option<ExecutionRecord>, StoreError> {
        decode_first(&self.rows(
            "SELECT record FROM executions
             WHERE state_machine_arn = $1 AND name = $2 AND unique_name",
            vec![text(state_machine), text(name)],
        )?)
    }

    fn list_executions(&self, query: &ExecutionQuery) -> Result<ExecutionPage, StoreError> {
        let (sql, params) = listing(query);
        let wanted = query.limit.max(1);
        let mut executions: Vec<ExecutionSummary> = decode_all(&self.rows(sql, params)?)?;
        // One more than the page was read: whether a next page exists.
        let more = executions.len() > wanted;
        executions.truncate(wanted);
        let next = match executions.last() {
            Some(last) if more => Some(ListCursor::of(last)),
            _ => None,
        };
        Ok(ExecutionPage { executions, next })
    }

    fn open_executions(&self) -> Result<Vec<ExecutionRecord>, StoreError> {
        decode_all(&self.rows(
            "SELECT record FROM executions WHERE status = 'RUNNING' ORDER BY arn",
            vec![],
        )?)
    }
}

/// The SQL of a listing: only the conditions the query has, so that each
/// shape is its own prepared statement and its plan uses the index that
/// matches it.
fn listing(query: &ExecutionQuery) -> (String, Vec<Param>) {
    let mut conditions: Vec<String> = Vec::new();
    let mut params: Vec<Param> = Vec::new();
    let mut param = |value: Param| {
        params.push(value);
        format!("${}", params.len())
    };
    match &query.of {
        ExecutionsOf::All => {}
        ExecutionsOf::Machine(machine) => {
            conditions.push(format!("state_machine_arn = {}", param(text(machine))));
        }
        ExecutionsOf::MapRun(run) => {
            conditions.push(format!("map_run_arn = {}", param(text(run))));
        }
    }
    if let Some(status) = query.status {
        conditions.push(format!("status = {}", param(text(status.as_str()))));
    }
    if let Some(redriven) = query.redriven {
        conditions.push(format!("redriven = {}", param(Box::new(redriven))));
    }
    if let Some(t) = query.started_after {
        conditions.push(format!("start_ns >= {}", param(Box::new(nanos(t)))));
    }
    if let Some(t) = query.started_before {
        conditions.push(format!("start_ns < {}", param(Box::new(nanos(t)))));
    }
    if let Some(name) = &query.name_contains {
        conditions.push(format!("strpos(name, {}) > 0", param(text(name))));
    }
    if let Some(after) = &query.after {
        let start = param(Box::new(nanos(after.start)));
        let arn = param(text(&after.arn));
        conditions.push(format!(
            "(start_ns < {start} OR (start_ns = {start} AND arn > {arn}))"
        ));
    }
    let limit = param(Box::new(limit(query.limit).saturating_add(1)));
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    (
        format!(
            "SELECT summary FROM executions {filter} ORDER BY start_ns DESC, arn LIMIT {limit}"
        ),
        params,
    )
}

impl Journals for PostgresStore {
    fn journal_page(
        &self,
        execution: &str,
        after: u64,
        limit_: usize,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        decode_all(&self.rows(
            "SELECT entry FROM journal WHERE execution = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            vec![
                text(execution),
                Box::new(int(after)),
                Box::new(limit(limit_)),
            ],
        )?)
    }
}

impl Histories for PostgresStore {
    fn history_page(
        &self,
        execution: &str,
        after: u64,
        limit_: usize,
    ) -> Result<Vec<HistoryEvent>, StoreError> {
        decode_all(&self.rows(
            "SELECT event FROM history WHERE execution = $1 AND id > $2 ORDER BY id LIMIT $3",
            vec![
                text(execution),
                Box::new(int(after)),
                Box::new(limit(limit_)),
            ],
        )?)
    }

    fn history_len(&self, execution: &str) -> Result<u64, StoreError> {
        let rows = self.rows(
            "SELECT coalesce(max(id), 0) FROM history WHERE execution = $1",
            vec![text(execution)],
        )?;
        Ok(rows
            .first()
            .map_or(0, |row| u64::try_from(row.get::<_, i64>(0)).unwrap_or(0)))
    }
}

impl Timers for PostgresStore {
    fn timers_page(
        &self,
        execution: &str,
        after: u64,
        limit_: usize,
    ) -> Result<Vec<TimerRecord>, StoreError> {
        decode_all(&self.rows(
            "SELECT record FROM timers WHERE execution = $1 AND timer > $2 ORDER BY timer LIMIT $3",
            vec![
                text(execution),
                Box::new(int(after)),
                Box::new(limit(limit_)),
            ],
        )?)
    }
}

impl TaskTokens for PostgresStore {
    fn task_token(&self, token: &str) -> Result<Option<TaskTokenRecord>, StoreError> {
        let rows = self.rows(
            "SELECT execution, task FROM task_tokens WHERE token = $1",
            vec![text(token)],
        )?;
        Ok(rows.first().map(|row| TaskTokenRecord {
            token: token.to_owned(),
            execution: row.get(0),
            task: u64::try_from(row.get::<_, i64>(1)).unwrap_or(0),
        }))
    }

    fn task_tokens_page(
        &self,
        after: &str,
        limit_: usize,
    ) -> Result<Vec<TaskTokenRecord>, StoreError> {
        let rows = self.rows(
            "SELECT token, execution, task FROM task_tokens WHERE token > $1 ORDER BY token LIMIT $2",
            vec![text(after), Box::new(limit(limit_))],
        )?;
        Ok(rows
            .iter()
            .map(|row| TaskTokenRecord {
                token: row.get(0),
                execution: row.get(1),
                task: u64::try_from(row.get::<_, i64>(2)).unwrap_or(0),
            })
            .collect())
    }
}

impl Activities for PostgresStore {
    fn activity(&self, arn: &str) -> Result<Option<ActivityRecord>, StoreError> {
        decode_first(&self.rows(
            "SELECT record FROM activities WHERE arn = $1",
            vec![text(arn)],
        )?)
    }

    fn activities(&self) -> Result<Vec<ActivityRecord>, StoreError> {
        decode_all(&self.rows("SELECT record FROM activities ORDER BY arn", vec![])?)
    }
}

impl Stats for PostgresStore {
    fn stats_hours(
        &self,
        state_machine: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<StatsBucket>, StoreError> {
        let counts = Arc::clone(&self.counts);
        let machine = state_machine.to_owned();
        Ok(self.run(|pool| async move {
            // The table and this node's pending counts, with no flush
            // moving counts from one to the other in between.
            let _read = counts.reading().await;
            let mut conn = pool.get().await?;
            let statement = conn
                .statement(
                    "SELECT hour, started, redriven, succeeded, failed, timed_out, aborted,
                         durations
                     FROM machine_stats WHERE state_machine = $1 AND hour BETWEEN $2 AND $3
                     ORDER BY hour",
                )
                .await?;
            let rows = conn
                .client
                .query(&statement, &[&machine, &from.max(0), &to.max(0)])
                .await?;
            // A bucket's shards, one after the other: summed.
            let mut out: Vec<StatsBucket> = Vec::new();
            for row in &rows {
                let hour: i64 = row.get(0);
                let stats = stats_of(row);
                match out.last_mut() {
                    Some(last) if last.hour == hour => last.stats.add(&stats),
                    _ => out.push(StatsBucket { hour, stats }),
                }
            }
            counts.add_pending_hours(&machine, from.max(0), to.max(0), &mut out);
            Ok(out)
        })?)
    }

    fn stats_total(&self, state_machine: &str) -> Result<MachineStats, StoreError> {
        let counts = Arc::clone(&self.counts);
        let machine = state_machine.to_owned();
        Ok(self.run(|pool| async move {
            let _read = counts.reading().await;
            let mut conn = pool.get().await?;
            let statement = conn
                .statement(
                    "SELECT -1, started, redriven, succeeded, failed, timed_out, aborted,
                         durations
                     FROM machine_stats WHERE state_machine = $1 AND hour = -1",
                )
                .await?;
            let rows = conn.client.query(&statement, &[&machine]).await?;
            let mut total = MachineStats::default();
            for row in &rows {
                total.add(&stats_of(row));
            }
            counts.add_pending_total(&machine, &mut total);
            Ok(total)
        })?)
    }
}

/// A `machine_stats` row's counts (columns 1 to 7).
fn stats_of(row: &Row) -> MachineStats {
    let count = |i: usize| u64::try_from(row.get::<_, i64>(i)).unwrap_or(0);
    MachineStats {
        started: count(1),
        redriven: count(2),
        succeeded: count(3),
        failed: count(4),
        timed_out: count(5),
        aborted: count(6),
        durations: row
            .get::<_, Vec<i64>>(7)
            .into_iter()
            .map(|n| u64::try_from(n).unwrap_or(0))
            .collect(),
    }
}

impl Triggers for PostgresStore {
    fn trigger(&self, name: &str) -> Result<Option<TriggerRecord>, StoreError> {
        decode_first(&self.rows(
            "SELECT record FROM triggers WHERE name = $1",
            vec![text(name)],
        )?)
    }

    fn triggers(&self) -> Result<Vec<TriggerRecord>, StoreError> {
        decode_all(&self.rows("SELECT record FROM triggers ORDER BY name", vec![])?)
    }

    fn trigger_state(&self, name: &str) -> Result<Option<TriggerStateRecord>, StoreError> {
        decode_first(&self.rows(
            "SELECT record FROM trigger_states WHERE name = $1",
            vec![text(name)],
        )?)
    }
}

impl TaskLogs for PostgresStore {
    fn task_logs_page(
        &self,
        execution: &str,
        after: u64,
        limit_: usize,
    ) -> Result<Vec<TaskLogRecord>, StoreError> {
        let rows = self.rows(
            "SELECT record, seq FROM task_logs
             WHERE execution = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            vec![
                text(execution),
                Box::new(int(after)),
                Box::new(limit(limit_)),
            ],
        )?;
        rows.iter()
            .map(|row| {
                let mut record: TaskLogRecord = decode(row.get::<_, &str>(0))?;
                // The store numbers a log when it is put (see `writes`).
                record.seq = u64::try_from(row.get::<_, i64>(1)).unwrap_or(0);
                Ok(record)
            })
            .collect()
    }
}

impl EndedNotices for PostgresStore {
    fn ended_notices(&self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .rows("SELECT arn FROM ended_notices ORDER BY arn", vec![])?
            .iter()
            .map(|row| row.get(0))
            .collect())
    }
}

impl MapRuns for PostgresStore {
    fn map_run(&self, arn: &str) -> Result<Option<MapRunRecord>, StoreError> {
        decode_first(&self.rows(
            "SELECT record FROM map_runs WHERE arn = $1",
            vec![text(arn)],
        )?)
    }

    fn map_runs(&self, execution: &str) -> Result<Vec<MapRunRecord>, StoreError> {
        decode_all(&self.rows(
            "SELECT record FROM map_runs WHERE execution = $1 ORDER BY arn",
            vec![text(execution)],
        )?)
    }
}

impl TaskCache for PostgresStore {
    fn cache_entry(&self, key: &str) -> Result<Option<CacheEntryRecord>, StoreError> {
        decode_first(&self.rows(
            "SELECT record FROM task_cache WHERE key = $1",
            vec![text(key)],
        )?)
    }

    fn cache_entries_page(
        &self,
        after: &str,
        limit_: usize,
    ) -> Result<Vec<CacheEntryRecord>, StoreError> {
        decode_all(&self.rows(
            "SELECT record FROM task_cache WHERE key > $1 ORDER BY key LIMIT $2",
            vec![text(after), Box::new(limit(limit_))],
        )?)
    }
}

impl Lineage for PostgresStore {
    fn lineage_of_path(&self, path: &str, limit_: usize) -> Result<Vec<LineageRecord>, StoreError> {
        decode_all(&self.rows(
            "SELECT record FROM lineage WHERE path = $1 ORDER BY execution, kind LIMIT $2",
            vec![text(path), Box::new(limit(limit_))],
        )?)
    }

    fn lineage_of_execution(
        &self,
        execution: &str,
        limit_: usize,
    ) -> Result<Vec<LineageRecord>, StoreError> {
        decode_all(&self.rows(
            "SELECT record FROM lineage WHERE execution = $1 ORDER BY kind, path LIMIT $2",
            vec![text(execution), Box::new(limit(limit_))],
        )?)
    }
}

//! A [`WriteBatch`] as one transaction: every operation becomes one
//! prepared statement, and `BEGIN`, the statements and `COMMIT` are
//! pipelined (sent together, answered together), so that a step costs one
//! round trip however many operations it has.
//!
//! That holds because every refusal is an error raised inside the
//! transaction (`stepline_refuse`, schema migration 5), never a result
//! the client would have to look at before committing: once a statement
//! fails, PostgreSQL skips the rest, and the `COMMIT` rolls the
//! transaction back.

use std::sync::Arc;

use futures_util::future::{join_all, join3};
use serde::Serialize;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use stepline_store::{StoreError, WriteBatch, WriteOp};

use crate::PostgresError;
use crate::pool::Pool;
use crate::reads::{Param, int, nanos};

/// What a statement's failure means for the batch.
enum Meaning {
    Plain,
    /// Creating an execution: a taken name is `ExecutionExists`.
    Create {
        state_machine: String,
        name: String,
    },
    /// Appending events whose first id is `first`: the statement answers
    /// the stored length and how many rows it added (none: a gap).
    History {
        execution: String,
        first: u64,
    },
    /// A fence or a new lease: refused when the lease is not (or no
    /// longer) this node's.
    Lease(stepline_store::Lease),
    /// A slot claim: refused when the machine has no free slot.
    Slot(String),
    /// A queued execution leaving its queue: refused when it no longer
    /// waits there.
    Queued(String),
}

/// The SQLSTATE `stepline_refuse` raises for an append that does not
/// follow the stored history; its message is how many events are stored.
const HISTORY_GAP: &str = "SL001";
/// The SQLSTATE `stepline_refuse` raises for a fence or lease that does
/// not hold.
const LEASE_LOST: &str = "SL002";
/// ... for a slot claim with no free slot.
const NO_SLOT: &str = "SL003";
/// ... for a queued execution that is no longer queued.
const NOT_QUEUED: &str = "SL004";

struct Statement {
    sql: &'static str,
    params: Vec<Param>,
    meaning: Meaning,
}

fn encode<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(StoreError::Encode)
}

fn text(s: &str) -> Param {
    Box::new(s.to_owned())
}

fn plain(sql: &'static str, params: Vec<Param>) -> Statement {
    Statement {
        sql,
        params,
        meaning: Meaning::Plain,
    }
}

/// The statements of `batch`, built on the caller's thread: they own
/// their parameters, so the batch itself never crosses to the store's
/// runtime.
pub(crate) struct Statements(Vec<Statement>);

impl Statements {
    pub(crate) fn of(batch: &WriteBatch) -> Result<Self, StoreError> {
        let mut statements = Vec::with_capacity(batch.ops.len());
        for op in &batch.ops {
            // The claim counts in a statement of its own after the lock,
            // so that it sees every start committed before the lock was
            // granted (each statement reads as of its own start).
            if let WriteOp::TakeSlot(claim) = op {
                statements.push(plain(
                    "SELECT pg_advisory_xact_lock(hashtext('max_running ' || $1))",
                    vec![text(&claim.state_machine)],
                ));
            }
            if let Some(s) = statement(op)? {
                statements.push(s);
            }
        }
        Ok(Self(statements))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Applies a batch's `statements` in one transaction, in one round trip.
/// (The dashboard counts of the batch are not among them: see `counts`.)
pub(crate) async fn apply(pool: &Arc<Pool>, statements: Statements) -> Result<(), StoreError> {
    let statements = statements.0;
    if statements.is_empty() {
        return Ok(());
    }
    let mut conn = pool.get().await.map_err(StoreError::from)?;
    let mut prepared = Vec::with_capacity(statements.len());
    for s in &statements {
        prepared.push(conn.statement(s.sql).await.map_err(StoreError::from)?);
    }
    let params = parameters(&statements);
    let (begun, answers, committed) = join3(
        conn.client.batch_execute("BEGIN"),
        pipelined(&conn.client, &prepared, &params),
        conn.client.batch_execute("COMMIT"),
    )
    .await;
    if let Err(e) = begun {
        // The statements may have run outside a transaction, or not at
        // all: the connection is in no known state.
        conn.discard();
        return Err(PostgresError::from(e).into());
    }
    let failure = statements
        .iter()
        .zip(answers)
        .find_map(|(s, answer)| refusal(s, answer));
    let Some(failure) = failure else {
        if let Err(e) = committed {
            conn.discard();
            return Err(PostgresError::from(e).into());
        }
        return Ok(());
    };
    // A statement failed: the `COMMIT` rolled the transaction back.
    if committed.is_err() {
        conn.discard();
        return Err(failure);
    }
    // A concurrent writer took the ids: say where the history stands now.
    if let StoreError::HistoryGap {
        execution,
        expected: 0,
        got,
    } = failure
    {
        let row = conn
            .client
            .query_one(
                "SELECT coalesce(max(id), 0) FROM history WHERE execution = $1",
                &[&execution],
            )
            .await
            .map_err(|e| StoreError::from(PostgresError::from(e)))?;
        let stored = u64::try_from(row.get::<_, i64>(0)).unwrap_or(0);
        return Err(StoreError::HistoryGap {
            execution,
            expected: stored + 1,
            got,
        });
    }
    Err(failure)
}

/// Sends every prepared statement with its parameters at once, in order,
/// on one connection (the driver pipelines them); their answers.
async fn pipelined(
    client: &tokio_postgres::Client,
    prepared: &[tokio_postgres::Statement],
    params: &[Vec<&(dyn ToSql + Sync)>],
) -> Vec<Result<Vec<tokio_postgres::Row>, tokio_postgres::Error>> {
    join_all(
        prepared
            .iter()
            .zip(params)
            .map(|(statement, params)| client.query(statement, params)),
    )
    .await
}

/// Each statement's parameters, as the driver takes them.
fn parameters(statements: &[Statement]) -> Vec<Vec<&(dyn ToSql + Sync)>> {
    statements
        .iter()
        .map(|s| {
            s.params
                .iter()
                .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                .collect()
        })
        .collect()
}

/// Why the batch must roll back after `s` answered `answer`, if it must.
fn refusal(
    s: &Statement,
    answer: Result<Vec<tokio_postgres::Row>, tokio_postgres::Error>,
) -> Option<StoreError> {
    let taken = |e: &tokio_postgres::Error| e.code() == Some(&SqlState::UNIQUE_VIOLATION);
    match (&s.meaning, answer) {
        (
            Meaning::Create {
                state_machine,
                name,
            },
            Err(e),
        ) if taken(&e) => Some(StoreError::ExecutionExists {
            state_machine: state_machine.clone(),
            name: name.clone(),
        }),
        // Another writer appended the same ids first (`expected` is read
        // once the transaction is over).
        (Meaning::History { execution, first }, Err(e)) if taken(&e) => {
            Some(StoreError::HistoryGap {
                execution: execution.clone(),
                expected: 0,
                got: *first,
            })
        }
        // The statement saw `stored` events (its refusal's message), in
        // the transaction, after any earlier append of the batch.
        (Meaning::History { execution, first }, Err(e))
            if e.code().map(SqlState::code) == Some(HISTORY_GAP) =>
        {
            let stored = e
                .as_db_error()
                .and_then(|db| db.message().parse::<u64>().ok())
                .unwrap_or(0);
            Some(StoreError::HistoryGap {
                execution: execution.clone(),
                expected: stored + 1,
                got: *first,
            })
        }
        (Meaning::Lease(lease), Err(e)) if e.code().map(SqlState::code) == Some(LEASE_LOST) => {
            Some(stepline_store::cluster::fenced(lease))
        }
        (Meaning::Slot(machine), Err(e)) if e.code().map(SqlState::code) == Some(NO_SLOT) => {
            Some(StoreError::NoSlot {
                state_machine: machine.clone(),
            })
        }
        (Meaning::Queued(arn), Err(e)) if e.code().map(SqlState::code) == Some(NOT_QUEUED) => {
            Some(StoreError::NotQueued(arn.clone()))
        }
        (_, Err(e)) => Some(PostgresError::from(e).into()),
        (_, Ok(_)) => None,
    }
}

/// The statement of one operation (none for an append of nothing).
fn statement(op: &WriteOp) -> Result<Option<Statement>, StoreError> {
    Ok(Some(match op {
        WriteOp::PutStateMachine(r) => plain(
            "WITH revision AS (
                 INSERT INTO state_machine_revisions (arn, revision, record) VALUES ($1, $2, $3)
                 ON CONFLICT (arn, revision) DO UPDATE SET record = EXCLUDED.record
             )
             INSERT INTO state_machines (arn, record) VALUES ($1, $3)
             ON CONFLICT (arn) DO UPDATE SET record = EXCLUDED.record",
            vec![text(&r.arn), Box::new(int(r.revision)), Box::new(encode(r)?)],
        ),
        WriteOp::DeleteStateMachine(arn) => {
            plain("DELETE FROM state_machines WHERE arn = $1", vec![text(arn)])
        }
        WriteOp::CreateExecution(r) => Statement {
            sql: "INSERT INTO executions (arn, state_machine_arn, name, unique_name, status,
                     start_ns, redriven, map_run_arn, summary, record, queued_priority)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            params: execution_params(r)?,
            meaning: Meaning::Create {
                state_machine: r.state_machine_arn.clone(),
                name: r.name.clone(),
            },
        },
        WriteOp::UpdateExecution(r) => plain(
            "INSERT INTO executions (arn, state_machine_arn, name, unique_name, status,
                 start_ns, redriven, map_run_arn, summary, record, queued_priority)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (arn) DO UPDATE SET status = EXCLUDED.status,
                 start_ns = EXCLUDED.start_ns, redriven = EXCLUDED.redriven,
                 map_run_arn = EXCLUDED.map_run_arn, summary = EXCLUDED.summary,
                 record = EXCLUDED.record, queued_priority = EXCLUDED.queued_priority",
            execution_params(r)?,
        ),
        WriteOp::AppendJournal { entries, .. } if entries.is_empty() => return Ok(None),
        WriteOp::AppendHistory { events, .. } if events.is_empty() => return Ok(None),
        WriteOp::AppendJournal { execution, entries } => {
            let seqs: Vec<i64> = entries.iter().map(|e| int(e.seq)).collect();
            let texts = entries.iter().map(encode).collect::<Result<Vec<_>, _>>()?;
            plain(
                "INSERT INTO journal (execution, seq, entry)
                 SELECT $1, e.seq, e.entry FROM unnest($2::bigint[], $3::text[]) AS e(seq, entry)",
                vec![text(execution), Box::new(seqs), Box::new(texts)],
            )
        }
        WriteOp::AppendHistory { execution, events } => {
            let first = events.first().map_or(0, |e| e.id);
            // The events must follow each other; the statement checks that
            // the first follows what is stored.
            if let Some((i, e)) = (0..)
                .zip(events)
                .find(|(i, e)| e.id != first.saturating_add(*i))
            {
                return Err(StoreError::HistoryGap {
                    execution: execution.clone(),
                    expected: first + i,
                    got: e.id,
                });
            }
            let ids: Vec<i64> = events.iter().map(|e| int(e.id)).collect();
            let texts = events.iter().map(encode).collect::<Result<Vec<_>, _>>()?;
            Statement {
                sql: "WITH stored AS (
                          SELECT coalesce(max(id), 0) AS n FROM history WHERE execution = $1
                      ),
                      added AS (
                          INSERT INTO history (execution, id, event)
                          SELECT $1, e.id, e.event
                          FROM stored, unnest($2::bigint[], $3::text[]) AS e(id, event)
                          WHERE stored.n = $4
                          RETURNING 1
                      )
                      SELECT CASE WHEN stored.n = $4 THEN (SELECT count(*) FROM added)
                          ELSE stepline_refuse('SL001', stored.n::text)
                      END FROM stored",
                params: vec![
                    text(execution),
                    Box::new(ids),
                    Box::new(texts),
                    Box::new(int(first.saturating_sub(1))),
                ],
                meaning: Meaning::History {
                    execution: execution.clone(),
                    first,
                },
            }
        }
        WriteOp::PutTimer(t) => plain(
            "INSERT INTO timers (execution, timer, record) VALUES ($1, $2, $3)
             ON CONFLICT (execution, timer) DO UPDATE SET record = EXCLUDED.record",
            vec![text(&t.execution), Box::new(int(t.timer)), Box::new(encode(t)?)],
        ),
        WriteOp::RemoveTimer(t) => plain(
            "DELETE FROM timers WHERE execution = $1 AND timer = $2",
            vec![text(&t.execution), Box::new(int(t.timer))],
        ),
        WriteOp::PutTaskToken(t) => plain(
            "INSERT INTO task_tokens (token, execution, task) VALUES ($1, $2, $3)
             ON CONFLICT (token) DO UPDATE SET execution = EXCLUDED.execution, task = EXCLUDED.task",
            vec![text(&t.token), text(&t.execution), Box::new(int(t.task))],
        ),
        WriteOp::RemoveTaskToken(token) => {
            plain("DELETE FROM task_tokens WHERE token = $1", vec![text(token)])
        }
        WriteOp::PutActivity(a) => plain(
            "INSERT INTO activities (arn, record) VALUES ($1, $2)
             ON CONFLICT (arn) DO UPDATE SET record = EXCLUDED.record",
            vec![text(&a.arn), Box::new(encode(a)?)],
        ),
        WriteOp::DeleteActivity(arn) => {
            plain("DELETE FROM activities WHERE arn = $1", vec![text(arn)])
        }
        WriteOp::DeleteExecution(arn) => plain(
            "WITH journal AS (DELETE FROM journal WHERE execution = $1),
                  history AS (DELETE FROM history WHERE execution = $1),
                  timers AS (DELETE FROM timers WHERE execution = $1),
                  tokens AS (DELETE FROM task_tokens WHERE execution = $1),
                  logs AS (DELETE FROM task_logs WHERE execution = $1),
                  counters AS (DELETE FROM task_log_counters WHERE execution = $1),
                  notices AS (DELETE FROM ended_notices WHERE arn = $1),
                  runs AS (DELETE FROM map_runs WHERE execution = $1),
                  leases AS (DELETE FROM leases WHERE execution = $1),
                  messages AS (DELETE FROM messages WHERE execution = $1),
                  offered AS (DELETE FROM activity_tasks WHERE execution = $1),
                  lineage AS (DELETE FROM lineage WHERE execution = $1)
             DELETE FROM executions WHERE arn = $1",
            vec![text(arn)],
        ),
        WriteOp::PutTrigger(t) => plain(
            "INSERT INTO triggers (name, record) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET record = EXCLUDED.record",
            vec![text(&t.name), Box::new(encode(t)?)],
        ),
        WriteOp::DeleteTrigger(name) => plain(
            "WITH state AS (DELETE FROM trigger_states WHERE name = $1)
             DELETE FROM triggers WHERE name = $1",
            vec![text(name)],
        ),
        WriteOp::PutTriggerState(s) => plain(
            "INSERT INTO trigger_states (name, record) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET record = EXCLUDED.record",
            vec![text(&s.name), Box::new(encode(s)?)],
        ),
        // The new log takes the execution's next number; the ones more
        // than `keep` behind it go. (Both see the snapshot before the
        // insert, so the new log is never among those deleted.)
        WriteOp::PutTaskLog { record, keep } => plain(
            "WITH counter AS (
                 INSERT INTO task_log_counters (execution, last) VALUES ($1, 1)
                 ON CONFLICT (execution) DO UPDATE SET last = task_log_counters.last + 1
                 RETURNING last
             ),
             put AS (
                 INSERT INTO task_logs (execution, seq, record)
                 SELECT $1, counter.last, $2 FROM counter
             )
             DELETE FROM task_logs
             WHERE execution = $1 AND seq <= (SELECT last FROM counter) - $3",
            vec![
                text(&record.execution),
                Box::new(encode(record)?),
                Box::new(int((*keep).max(1))),
            ],
        ),
        WriteOp::PutEndedNotice(arn) => plain(
            "INSERT INTO ended_notices (arn) VALUES ($1) ON CONFLICT DO NOTHING",
            vec![text(arn)],
        ),
        WriteOp::RemoveEndedNotice(arn) => {
            plain("DELETE FROM ended_notices WHERE arn = $1", vec![text(arn)])
        }
        WriteOp::PutMapRun(r) => plain(
            "INSERT INTO map_runs (arn, execution, record) VALUES ($1, $2, $3)
             ON CONFLICT (arn) DO UPDATE SET execution = EXCLUDED.execution,
                 record = EXCLUDED.record",
            vec![
                text(&r.map_run_arn),
                text(&r.execution_arn),
                Box::new(encode(r)?),
            ],
        ),
        WriteOp::PutCacheEntry(e) => plain(
            "INSERT INTO task_cache (key, expires_ns, record) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO UPDATE SET expires_ns = EXCLUDED.expires_ns,
                 record = EXCLUDED.record",
            vec![text(&e.key), Box::new(nanos(e.expires)), Box::new(encode(e)?)],
        ),
        WriteOp::RemoveCacheEntry(key) => {
            plain("DELETE FROM task_cache WHERE key = $1", vec![text(key)])
        }
        WriteOp::PutLineage(r) => plain(
            "INSERT INTO lineage (path, execution, kind, record) VALUES ($1, $2, $3, $4)
             ON CONFLICT (path, execution, kind) DO UPDATE SET record = EXCLUDED.record",
            vec![
                text(&r.path),
                text(&r.execution_arn),
                text(r.kind.as_str()),
                Box::new(encode(r)?),
            ],
        ),
        // Gathered in memory and added once a second (see `counts`).
        WriteOp::AddStats(_) => return Ok(None),
        WriteOp::Fence(lease) => Statement {
            sql: crate::cluster::FENCE,
            params: lease_params(lease),
            meaning: Meaning::Lease(lease.clone()),
        },
        WriteOp::PutLease(lease) => Statement {
            sql: crate::cluster::PUT_LEASE,
            params: lease_params(lease),
            meaning: Meaning::Lease(lease.clone()),
        },
        WriteOp::TakeSlot(claim) => Statement {
            sql: TAKE_SLOT,
            params: vec![
                text(&claim.state_machine),
                Box::new(i64::from(claim.max)),
                Box::new(claim.queued.clone()),
            ],
            meaning: Meaning::Slot(claim.state_machine.clone()),
        },
        WriteOp::LeaveQueue(arn) => Statement {
            sql: "SELECT CASE WHEN EXISTS (
                     SELECT 1 FROM executions
                     WHERE arn = $1 AND status = 'RUNNING' AND queued_priority IS NOT NULL
                     FOR UPDATE
                 ) THEN 1 ELSE stepline_refuse('SL004', 'no longer queued') END",
            params: vec![text(arn)],
            meaning: Meaning::Queued(arn.clone()),
        },
        WriteOp::RemoveMessage(id) => plain(
            "DELETE FROM messages WHERE id = $1",
            vec![Box::new(int(*id))],
        ),
    }))
}

/// A slot claim, after the machine's lock: fewer running than the limit
/// (`$2`) and, for a new execution, nobody queued; for a queued one
/// (`$3`), that it still waits, its row locked so that a stop of it
/// waits for this start (and then finds it started).
const TAKE_SLOT: &str = "WITH mine AS (
         SELECT queued_priority IS NOT NULL AS queued FROM executions
         WHERE status = 'RUNNING' AND map_run_arn IS NULL
           AND (state_machine_arn = $1 OR starts_with(state_machine_arn, $1 || ':'))
     )
     SELECT CASE WHEN (SELECT count(*) FROM mine WHERE NOT queued) < $2
         AND CASE WHEN $3::text IS NULL THEN NOT EXISTS (SELECT 1 FROM mine WHERE queued)
             ELSE EXISTS (
                 SELECT 1 FROM executions
                 WHERE arn = $3 AND status = 'RUNNING' AND queued_priority IS NOT NULL
                 FOR UPDATE)
             END
         THEN 1 ELSE stepline_refuse('SL003', 'no free slot') END";

fn lease_params(lease: &stepline_store::Lease) -> Vec<Param> {
    vec![
        text(&lease.execution),
        text(&lease.node),
        Box::new(int(lease.epoch)),
    ]
}

fn execution_params(r: &stepline_store::ExecutionRecord) -> Result<Vec<Param>, StoreError> {
    let summary = r.summary();
    Ok(vec![
        text(&r.arn),
        text(&r.state_machine_arn),
        text(&r.name),
        Box::new(r.has_unique_name()),
        text(r.status.as_str()),
        Box::new(nanos(r.start)),
        Box::new(r.redrive_count > 0),
        Box::new(summary.map_run_arn.clone()),
        Box::new(encode(&summary)?),
        Box::new(encode(r)?),
        Box::new(r.queued.map(|q| q.priority)),
    ])
}

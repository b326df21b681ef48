//! Leases, nodes and messages (`stepline_store::cluster`) on PostgreSQL.
//!
//! Every time is the database's (`clock_timestamp()`), so the nodes' own
//! clocks never decide who owns what. A fence is a `SELECT ... FOR SHARE`
//! of the lease, first in its batch's transaction: while the batch is
//! open, a takeover (an `UPDATE` of that row) waits for it, and after the
//! takeover the old epoch matches nothing.
//!
//! A message wakes its execution's owner with `NOTIFY` on the schema's
//! channel, the owner's id as the payload; each node keeps one connection
//! that `LISTEN`s, and reads its messages on a wake-up or every few
//! seconds, so a lost notification delays a message and loses nothing.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use futures_util::future::poll_fn;
use tokio::sync::Notify;
use tokio_postgres::{AsyncMessage, NoTls};

use stepline_store::{
    Cluster, ClusterMessage, Lease, NodeRecord, PoolHolder, SharedActivityTask, SharedSlots,
    StoreError,
};

use crate::reads::{Param, int};
use crate::{PostgresError, PostgresStore};

/// The statement a [`stepline_store::WriteOp::Fence`] becomes: raises
/// SQLSTATE `SL002` unless the lease holds (an error, so that the batch's
/// pipelined `COMMIT` rolls back).
pub(crate) const FENCE: &str = "WITH fence AS (
         SELECT 1 FROM leases l JOIN nodes n ON n.id = l.node
         WHERE l.execution = $1 AND l.node = $2 AND l.epoch = $3
           AND n.expires > clock_timestamp()
         FOR SHARE OF l
     )
     SELECT CASE WHEN EXISTS (SELECT 1 FROM fence) THEN 1
         ELSE stepline_refuse('SL002', 'the lease is no longer this node''s') END";

/// The statement of [`stepline_store::WriteOp::PutLease`]: a new lease,
/// or a later epoch over an older one (a redrive); raises SQLSTATE
/// `SL002` when a lease at that epoch or later is already there.
pub(crate) const PUT_LEASE: &str = "WITH put AS (
         INSERT INTO leases (execution, node, epoch) VALUES ($1, $2, $3)
         ON CONFLICT (execution) DO UPDATE SET node = EXCLUDED.node, epoch = EXCLUDED.epoch
             WHERE leases.epoch < EXCLUDED.epoch
         RETURNING 1
     )
     SELECT CASE WHEN EXISTS (SELECT 1 FROM put) THEN 1
         ELSE stepline_refuse('SL002', 'a later lease is already there') END";

/// The wake-ups of the node this process is: notified on each `NOTIFY`
/// that names it.
#[derive(Debug, Default)]
pub(crate) struct Listener {
    started: std::sync::atomic::AtomicBool,
    woken: Arc<Notify>,
    /// Every activity poller of this process, on each offer anywhere.
    offered: Arc<Notify>,
    /// The pools' waiters of this process, on each slot given back
    /// anywhere.
    freed: Arc<Notify>,
}

/// The payload of an activity task's offer (node ids never take it: they
/// end in a process id and a suffix).
const OFFERED: &str = "activity task";

/// The payload of a pool slot given back.
const FREED: &str = "pool slot";

/// The free slot a task takes, its own first (a task invoked again after a
/// crash or a takeover): free means no holder, or a holder whose node's
/// row expired more than five seconds ago. Until then the slot waits for
/// its task, which the node that takes its execution over calls again:
/// the tasks in flight at a crash go ahead of the waiters.
const TAKE_SLOT: &str = "UPDATE pool_slots SET holder = $3, node = $4, execution = $5, state = $6,
         since_us = $7
     WHERE (pool, slot) = (
         SELECT pool, slot FROM pool_slots s
         WHERE s.pool = $1 AND s.slot < $2
           AND (s.holder IS NULL OR s.holder = $3 OR NOT EXISTS (
                SELECT 1 FROM nodes n WHERE n.id = s.node
                AND n.expires > clock_timestamp() - interval '5 seconds'))
           AND (s.holder = $3 OR $8 OR (
                SELECT count(*) FROM pool_waiters w
                WHERE w.pool = $1 AND w.holder <> $3
                  AND w.seq < COALESCE(
                      (SELECT seq FROM pool_waiters WHERE pool = $1 AND holder = $3),
                      9223372036854775807)
                  AND w.seen > clock_timestamp() - interval '5 seconds'
                  AND EXISTS (SELECT 1 FROM nodes n WHERE n.id = w.node
                              AND n.expires > clock_timestamp())
              ) < $2 - (
                SELECT count(*) FROM pool_slots h
                WHERE h.pool = $1 AND h.slot < $2 AND h.holder IS NOT NULL AND h.holder <> $3
                  AND EXISTS (SELECT 1 FROM nodes n WHERE n.id = h.node
                              AND n.expires > clock_timestamp() - interval '5 seconds')
              ))
         ORDER BY s.holder IS NOT DISTINCT FROM $3 DESC, s.slot
         LIMIT 1 FOR UPDATE SKIP LOCKED
     )
     RETURNING slot";

fn micros_to_time(micros: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(micros).single().unwrap_or_default()
}

fn text(s: &str) -> Param {
    Box::new(s.to_owned())
}

impl PostgresStore {
    /// [`TAKE_SLOT`] (making the pool's rows the first time).
    fn take_free_slot(
        &self,
        slots: u32,
        holder: &PoolHolder,
        first: bool,
    ) -> Result<bool, StoreError> {
        let params = || -> Vec<Param> {
            vec![
                text(&holder.pool),
                Box::new(i32::try_from(slots).unwrap_or(i32::MAX)),
                text(&holder.holder),
                text(&holder.node),
                text(&holder.execution),
                text(&holder.state),
                Box::new(holder.since.timestamp_micros()),
                Box::new(first),
            ]
        };
        if !self.rows(TAKE_SLOT, params())?.is_empty() {
            return Ok(true);
        }
        // The pool's rows, made once for each slot; then look again.
        let made = self.rows(
            "INSERT INTO pool_slots (pool, slot) SELECT $1, generate_series(0, $2 - 1)
             ON CONFLICT (pool, slot) DO NOTHING RETURNING slot",
            vec![
                text(&holder.pool),
                Box::new(i32::try_from(slots).unwrap_or(i32::MAX)),
            ],
        )?;
        if made.is_empty() {
            return Ok(false);
        }
        Ok(!self.rows(TAKE_SLOT, params())?.is_empty())
    }

    fn channel(&self) -> String {
        format!("stepline_{}", self.schema)
    }

    /// Starts the connection that listens for `node`'s wake-ups (once).
    fn listen(&self, node: &str) {
        if self
            .listener
            .started
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            return;
        }
        if let Some(runtime) = self.runtime.as_ref() {
            runtime.spawn(listen_loop(
                self.pool.config().clone(),
                self.channel(),
                node.to_owned(),
                Arc::clone(&self.listener),
            ));
        }
    }
}

/// Holds a `LISTEN` connection open, reconnecting after a failure, and
/// wakes the node for each notification that names it (and once after
/// each reconnection, for what was posted while it was away).
async fn listen_loop(
    config: tokio_postgres::Config,
    channel: String,
    node: String,
    listener: Arc<Listener>,
) {
    let (woken, offered, freed) = (&listener.woken, &listener.offered, &listener.freed);
    loop {
        match config.connect(NoTls).await {
            Ok((client, mut connection)) => {
                let (sent, mut notes) = tokio::sync::mpsc::unbounded_channel();
                let driver = tokio::spawn(async move {
                    while let Some(message) = poll_fn(|cx| connection.poll_message(cx)).await {
                        match message {
                            Ok(AsyncMessage::Notification(n)) => {
                                let _ = sent.send(n.payload().to_owned());
                            }
                            Ok(_) => {}
                            Err(_) => break,
                        }
                    }
                });
                if client
                    .batch_execute(&format!("LISTEN {channel}"))
                    .await
                    .is_ok()
                {
                    woken.notify_one();
                    offered.notify_waiters();
                    freed.notify_waiters();
                    while let Some(payload) = notes.recv().await {
                        if payload == node {
                            woken.notify_one();
                        } else if payload == OFFERED {
                            offered.notify_waiters();
                        } else if payload == FREED {
                            freed.notify_waiters();
                        }
                    }
                }
                driver.abort();
            }
            Err(e) => tracing::debug!(error = %e, "the cluster's listening connection cannot open"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The open executions node `$1` may claim: without a lease, or whose
/// owner's row expired or is gone. Never the claimer's own: a node whose
/// row expired while it was paused or cut off renews it and carries on
/// with the leases nobody took meanwhile. Not what it released either
/// (it had more than its share), unless no other node is alive to take
/// them.
const ORPHANS: &str = "LEFT JOIN leases l ON l.execution = e.arn
     LEFT JOIN nodes n ON n.id = l.node
     WHERE e.status = 'RUNNING' AND e.queued_priority IS NULL
       AND (n.id IS NULL OR n.expires <= clock_timestamp())
       AND l.node IS DISTINCT FROM $1
       AND (l.node IS DISTINCT FROM 'released by ' || $1
            OR NOT EXISTS (SELECT 1 FROM nodes o WHERE o.id <> $1 AND o.expires > clock_timestamp()))";

impl Cluster for PostgresStore {
    fn heartbeat(&self, node: &str, address: &str, ttl: Duration) -> Result<(), StoreError> {
        let micros = i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX);
        self.rows(
            "INSERT INTO nodes (id, address, expires)
             VALUES ($1, $2, clock_timestamp() + $3::bigint * interval '1 microsecond')
             ON CONFLICT (id) DO UPDATE SET address = EXCLUDED.address, expires = EXCLUDED.expires",
            vec![text(node), text(address), Box::new(micros)],
        )?;
        Ok(())
    }

    fn leave(&self, node: &str) -> Result<(), StoreError> {
        // A clean stop: the dashboard's counts of this node's last second
        // go to the table before it goes.
        if let Err(e) = self.flush_counts() {
            tracing::warn!(error = %e, "the dashboard's last counts were not added");
        }
        self.rows(
            "UPDATE nodes SET expires = clock_timestamp() - interval '1 second' WHERE id = $1",
            vec![text(node)],
        )?;
        Ok(())
    }

    fn claim(&self, node: &str, limit: usize) -> Result<Vec<Lease>, StoreError> {
        // SKIP LOCKED keeps two claiming nodes off each other's rows. The
        // conflict clause is a compare-and-set on the epoch this statement
        // saw: the row it then locks is the latest, but the rest of its
        // reading (which nodes are alive) is as old as the statement, so a
        // lease another node took meanwhile (a node whose row appeared or
        // was renewed after this statement began) has moved on and stays.
        let rows = self.rows(
            format!(
                "WITH orphans AS (
                     SELECT e.arn, coalesce(l.epoch, 0) AS seen FROM executions e {ORPHANS}
                     ORDER BY e.start_ns
                     LIMIT $2
                     FOR UPDATE OF e SKIP LOCKED
                 )
                 INSERT INTO leases (execution, node, epoch)
                 SELECT arn, $1, seen + 1 FROM orphans
                 ON CONFLICT (execution) DO UPDATE SET node = EXCLUDED.node, epoch = EXCLUDED.epoch
                     WHERE leases.epoch = EXCLUDED.epoch - 1
                       AND NOT EXISTS (
                         SELECT 1 FROM nodes n
                         WHERE n.id = leases.node AND n.expires > clock_timestamp()
                     )
                 RETURNING execution, node, epoch"
            ),
            vec![text(node), Box::new(int(limit as u64))],
        )?;
        Ok(rows.iter().map(lease).collect())
    }

    fn orphans(&self, node: &str) -> Result<u64, StoreError> {
        let rows = self.rows(
            format!("SELECT count(*) FROM executions e {ORPHANS}"),
            vec![text(node)],
        )?;
        Ok(rows
            .first()
            .map_or(0, |row| u64::try_from(row.get::<_, i64>(0)).unwrap_or(0)))
    }

    fn release(&self, lease: &Lease) -> Result<bool, StoreError> {
        // Owned by no node: any other node's next claim takes it.
        let rows = self.rows(
            "UPDATE leases SET node = 'released by ' || $2
             WHERE execution = $1 AND node = $2 AND epoch = $3
             RETURNING 1",
            vec![
                text(&lease.execution),
                text(&lease.node),
                Box::new(int(lease.epoch)),
            ],
        )?;
        Ok(!rows.is_empty())
    }

    fn lease(&self, execution: &str) -> Result<Option<Lease>, StoreError> {
        let rows = self.rows(
            "SELECT execution, node, epoch FROM leases WHERE execution = $1",
            vec![text(execution)],
        )?;
        Ok(rows.first().map(lease))
    }

    fn nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
        let rows = self.rows(
            "SELECT n.id, n.address,
                    (extract(epoch FROM n.started) * 1000000)::bigint,
                    (extract(epoch FROM n.expires) * 1000000)::bigint,
                    n.expires > clock_timestamp(),
                    (SELECT count(*) FROM leases l JOIN executions e ON e.arn = l.execution
                     WHERE l.node = n.id AND e.status = 'RUNNING')
             FROM nodes n ORDER BY n.id",
            vec![],
        )?;
        Ok(rows
            .iter()
            .map(|row| NodeRecord {
                id: row.get(0),
                address: row.get(1),
                started: micros_to_time(row.get(2)),
                expires: micros_to_time(row.get(3)),
                alive: row.get(4),
                executions: u64::try_from(row.get::<_, i64>(5)).unwrap_or(0),
            })
            .collect())
    }

    fn post(&self, execution: &str, body: &str) -> Result<(), StoreError> {
        self.rows(
            "WITH posted AS (INSERT INTO messages (execution, body) VALUES ($1, $2))
             SELECT pg_notify($3, coalesce((SELECT node FROM leases WHERE execution = $1), ''))",
            vec![text(execution), text(body), Box::new(self.channel())],
        )?;
        Ok(())
    }

    fn messages(&self, node: &str, limit: usize) -> Result<Vec<ClusterMessage>, StoreError> {
        let rows = self.rows(
            "SELECT m.id, m.execution, m.body FROM messages m
             JOIN leases l ON l.execution = m.execution
             WHERE l.node = $1 ORDER BY m.id LIMIT $2",
            vec![text(node), Box::new(int(limit.max(1) as u64))],
        )?;
        Ok(rows
            .iter()
            .map(|row| ClusterMessage {
                id: u64::try_from(row.get::<_, i64>(0)).unwrap_or(0),
                execution: row.get(1),
                body: row.get(2),
            })
            .collect())
    }

    fn wait_for_messages(&self, node: &str, timeout: Duration) -> bool {
        self.listen(node);
        let woken = Arc::clone(&self.listener.woken);
        self.run(|_| async move {
            Ok::<_, PostgresError>(
                tokio::time::timeout(timeout, woken.notified())
                    .await
                    .is_ok(),
            )
        })
        .unwrap_or(false)
    }

    fn offer_activity_task(&self, task: &SharedActivityTask) -> Result<(), StoreError> {
        self.rows(
            "WITH offer AS (
                 INSERT INTO activity_tasks (token, activity, execution, task, input)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (token) DO NOTHING
             )
             SELECT pg_notify($6, $7)",
            vec![
                text(&task.token),
                text(&task.activity),
                text(&task.execution),
                Box::new(int(task.task)),
                text(&task.input),
                Box::new(self.channel()),
                text(OFFERED),
            ],
        )?;
        Ok(())
    }

    fn take_activity_task(&self, activity: &str) -> Result<Option<SharedActivityTask>, StoreError> {
        let rows = self.rows(
            "DELETE FROM activity_tasks WHERE token = (
                 SELECT token FROM activity_tasks WHERE activity = $1
                 ORDER BY offered LIMIT 1 FOR UPDATE SKIP LOCKED
             )
             RETURNING token, activity, execution, task, input",
            vec![text(activity)],
        )?;
        Ok(rows.first().map(|row| SharedActivityTask {
            token: row.get(0),
            activity: row.get(1),
            execution: row.get(2),
            task: u64::try_from(row.get::<_, i64>(3)).unwrap_or(0),
            input: row.get(4),
        }))
    }

    fn withdraw_activity_task(&self, token: &str) -> Result<(), StoreError> {
        self.rows(
            "DELETE FROM activity_tasks WHERE token = $1",
            vec![text(token)],
        )?;
        Ok(())
    }

    fn lead(&self, role: &str, node: &str) -> Result<bool, StoreError> {
        let rows = self.rows(
            "INSERT INTO leaders (role, node) VALUES ($1, $2)
             ON CONFLICT (role) DO UPDATE SET node = EXCLUDED.node
                 WHERE leaders.node = EXCLUDED.node
                    OR NOT EXISTS (
                        SELECT 1 FROM nodes n
                        WHERE n.id = leaders.node AND n.expires > clock_timestamp()
                    )
             RETURNING node",
            vec![text(role), text(node)],
        )?;
        Ok(!rows.is_empty())
    }

    fn take_pool_slot(
        &self,
        slots: u32,
        holder: &PoolHolder,
        first: bool,
    ) -> Result<bool, StoreError> {
        if self.take_free_slot(slots, holder, first)? {
            self.leave_pool_queue(&holder.pool, &holder.holder)?;
            return Ok(true);
        }
        // In the queue (its place kept), or still there: seen now.
        self.rows(
            "INSERT INTO pool_waiters (pool, holder, node, execution, state, since_us)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (pool, holder) DO UPDATE SET node = EXCLUDED.node,
                 seen = clock_timestamp()",
            vec![
                text(&holder.pool),
                text(&holder.holder),
                text(&holder.node),
                text(&holder.execution),
                text(&holder.state),
                Box::new(holder.since.timestamp_micros()),
            ],
        )?;
        Ok(false)
    }

    fn leave_pool_queue(&self, pool: &str, holder: &str) -> Result<(), StoreError> {
        self.rows(
            "DELETE FROM pool_waiters WHERE pool = $1 AND holder = $2",
            vec![text(pool), text(holder)],
        )?;
        Ok(())
    }

    fn pool_waiters(&self) -> Result<Vec<PoolHolder>, StoreError> {
        let rows = self.rows(
            "SELECT w.pool, w.holder, w.node, w.execution, w.state, w.since_us
             FROM pool_waiters w JOIN nodes n ON n.id = w.node
             WHERE n.expires > clock_timestamp()
               AND w.seen > clock_timestamp() - interval '5 seconds'
             ORDER BY w.pool, w.seq",
            vec![],
        )?;
        Ok(rows.iter().map(pool_holder).collect())
    }

    fn release_pool_slot(&self, pool: &str, holder: &str) -> Result<(), StoreError> {
        self.rows(
            "WITH freed AS (
                 UPDATE pool_slots SET holder = NULL, node = NULL, execution = NULL,
                     state = NULL, since_us = NULL
                 WHERE pool = $1 AND holder = $2
             )
             SELECT pg_notify($3, $4)",
            vec![
                text(pool),
                text(holder),
                Box::new(self.channel()),
                text(FREED),
            ],
        )?;
        Ok(())
    }

    fn pool_holders(&self) -> Result<Vec<PoolHolder>, StoreError> {
        let rows = self.rows(
            "SELECT s.pool, s.holder, s.node, s.execution, s.state, s.since_us
             FROM pool_slots s JOIN nodes n ON n.id = s.node
             WHERE s.holder IS NOT NULL
               AND n.expires > clock_timestamp() - interval '5 seconds'
             ORDER BY s.pool, s.slot",
            vec![],
        )?;
        Ok(rows.iter().map(pool_holder).collect())
    }

    fn wait_for_pool_slots(&self, timeout: Duration) -> bool {
        let freed = Arc::clone(&self.listener.freed);
        self.run(|_| async move {
            Ok::<_, PostgresError>(
                tokio::time::timeout(timeout, freed.notified())
                    .await
                    .is_ok(),
            )
        })
        .unwrap_or(false)
    }

    fn wait_for_activity_tasks(&self, timeout: Duration) -> bool {
        let offered = Arc::clone(&self.listener.offered);
        self.run(|_| async move {
            Ok::<_, PostgresError>(
                tokio::time::timeout(timeout, offered.notified())
                    .await
                    .is_ok(),
            )
        })
        .unwrap_or(false)
    }

    fn slots(&self, state_machine: &str) -> Result<SharedSlots, StoreError> {
        // The running ones count; the queued ones come in the order they
        // start (what the in-memory queue of one node orders by).
        let rows = self.rows(
            "SELECT arn, queued_priority FROM executions
             WHERE status = 'RUNNING' AND map_run_arn IS NULL
               AND (state_machine_arn = $1 OR starts_with(state_machine_arn, $1 || ':'))
             ORDER BY queued_priority DESC NULLS LAST, start_ns, arn",
            vec![text(state_machine)],
        )?;
        let mut slots = SharedSlots::default();
        for row in &rows {
            match row.get::<_, Option<i32>>(1) {
                Some(priority) => slots.queued.push((row.get(0), priority)),
                None => slots.running += 1,
            }
        }
        Ok(slots)
    }
}

/// A pool slot's holder, or a waiter: `pool, holder, node, execution,
/// state, since_us`.
fn pool_holder(row: &tokio_postgres::Row) -> PoolHolder {
    PoolHolder {
        pool: row.get(0),
        holder: row.get(1),
        node: row.get(2),
        execution: row.get(3),
        state: row.get(4),
        since: micros_to_time(row.get(5)),
    }
}

fn lease(row: &tokio_postgres::Row) -> Lease {
    Lease {
        execution: row.get(0),
        node: row.get(1),
        epoch: u64::try_from(row.get::<_, i64>(2)).unwrap_or(0),
    }
}

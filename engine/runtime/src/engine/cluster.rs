//! Several nodes on one store (`stepline_store::cluster`): this node's
//! leases, the executions it takes over, and the messages other nodes
//! leave for the executions it runs.
//!
//! - A node renews its row every third of its lease time; a node that
//!   stops renewing (killed, paused, cut off) loses every lease at once
//!   when its row expires.
//! - Every execution this node starts is leased to it in the start's own
//!   batch, and every later batch of the execution is fenced with that
//!   lease. A refused batch (`StoreError::Fenced`) means another node took
//!   the execution over: its loop here stops without writing or announcing
//!   anything (`executor`), and the other node runs it on from the journal.
//! - Every third of the lease time, a node claims open executions whose
//!   owner is gone and resumes them exactly as a restart resumes them: a
//!   task in flight is invoked again with the same idempotency key.
//! - A callback, a worker's answer or a stop that arrives at a node that
//!   does not run the execution is stored as a message for it; its owner
//!   is woken (`LISTEN`/`NOTIFY` on PostgreSQL) or finds it within a few
//!   seconds, and removes it in the batch of the step it causes, so it is
//!   applied once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::durable::{DurableExecution, interp_command, journal_command};
use crate::executor::{self, Inbox, Message};
use stepline_language::interp::{Command, TaskId};
use stepline_store::{
    Cluster, ExecutionStatus, JournalCommand, Lease, NodeRecord, Store, WriteBatch, WriteOp,
    is_express_arn,
};

use super::{Engine, EngineError, Inner, off_worker};

/// This node in a cluster.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Unique among the nodes ever started on the store: a node that
    /// restarts is a new node, and takes over the old one's executions
    /// when its leases run out (at once after a clean shutdown).
    pub node: String,
    /// Where this node serves, shown to operators.
    pub address: String,
    /// How long a node's leases outlive its last renewal: how soon the
    /// others take over after it dies.
    pub lease: Duration,
}

/// The cluster side of the engine's state.
#[derive(Debug)]
pub(super) struct ClusterState {
    pub(super) config: ClusterConfig,
    /// Set once the node left: it renews nothing and claims nothing more.
    left: AtomicBool,
    /// The live nodes at the last look (claims and the balance read
    /// them): how many ways a Map Run's children are spread.
    live_nodes: AtomicUsize,
    /// Map Run children started here, for the round robin.
    children_started: AtomicUsize,
}

impl ClusterState {
    pub(super) fn new(config: ClusterConfig) -> Self {
        Self {
            config,
            left: AtomicBool::new(false),
            live_nodes: AtomicUsize::new(1),
            children_started: AtomicUsize::new(0),
        }
    }
}

/// Who runs an execution, as this node sees it.
pub(super) enum Ownership {
    /// One node on the store: this one.
    Alone,
    /// This node holds the lease.
    Mine(Lease),
    /// Another node holds it, or nobody yet (the claim loops will).
    Elsewhere,
}

/// A message for an execution, as stored: the journal's form of the
/// command (the store's own, stable format) and, for an answer, the task
/// it answers (applied only while that task is open).
#[derive(Debug, Serialize, Deserialize)]
struct Posted {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    task: Option<u64>,
    command: JournalCommand,
}

/// Executions claimed per store round trip.
const CLAIM_BATCH: usize = 64;

/// Messages read per round.
const MESSAGE_BATCH: usize = 256;

impl Engine {
    /// Whether this node shares its store with others.
    pub fn is_clustered(&self) -> bool {
        self.inner.cluster.is_some()
    }

    fn cluster(&self) -> Option<(&dyn Cluster, &ClusterState)> {
        let state = self.inner.cluster.as_ref()?;
        Some((self.inner.store.cluster()?, state))
    }

    /// The store's shared side, when this node is one of several.
    pub(super) fn shared_store(&self) -> Option<&dyn Cluster> {
        Some(self.cluster()?.0)
    }

    /// The lease of an execution this node starts now.
    pub(super) fn new_lease(&self, arn: &str) -> Option<Lease> {
        let state = self.inner.cluster.as_ref()?;
        Some(Lease {
            execution: arn.to_owned(),
            node: state.config.node.clone(),
            epoch: 1,
        })
    }

    /// The lease of an execution this node redrives: an epoch past the
    /// last, so that a node that still ran it cannot write.
    pub(super) fn redrive_lease(&self, arn: &str) -> Result<Option<Lease>, EngineError> {
        let Some((cluster, state)) = self.cluster() else {
            return Ok(None);
        };
        let epoch = off_worker(|| cluster.lease(arn))?.map_or(0, |l| l.epoch);
        Ok(Some(Lease {
            execution: arn.to_owned(),
            node: state.config.node.clone(),
            epoch: epoch + 1,
        }))
    }

    /// Whether this node may run `arn`, and with which lease.
    pub(super) fn ownership(&self, arn: &str) -> Result<Ownership, EngineError> {
        let Some((cluster, state)) = self.cluster() else {
            return Ok(Ownership::Alone);
        };
        Ok(match cluster.lease(arn)? {
            Some(lease) if lease.node == state.config.node => Ownership::Mine(lease),
            _ => Ownership::Elsewhere,
        })
    }

    /// Leaves `command` for `arn`'s owner (durable after the next flush).
    pub(super) fn post_command(
        &self,
        arn: &str,
        task: Option<TaskId>,
        command: &Command,
    ) -> Result<(), EngineError> {
        let Some((cluster, _)) = self.cluster() else {
            return Err(EngineError::ExecutionDoesNotExist(arn.to_owned()));
        };
        let posted = Posted {
            task: task.map(|t| t.0),
            command: journal_command(command),
        };
        let body = serde_json::to_string(&posted).map_err(stepline_store::StoreError::Encode)?;
        off_worker(|| cluster.post(arn, &body))?;
        Ok(())
    }

    /// Registers this node, before it resumes anything.
    pub(super) fn join_cluster(&self) -> Result<(), EngineError> {
        let Some((cluster, state)) = self.cluster() else {
            return Err(stepline_store::StoreError::Unsupported(
                "this store serves one node; a cluster needs a store several nodes share",
            )
            .into());
        };
        let c = &state.config;
        cluster.heartbeat(&c.node, &c.address, c.lease)?;
        Ok(())
    }

    /// Takes over the executions no live node owns and resumes them;
    /// how many it took.
    pub(super) fn claim_orphans(&self) -> Result<usize, EngineError> {
        let Some((cluster, state)) = self.cluster() else {
            return Ok(0);
        };
        if state.left.load(Ordering::Acquire) {
            return Ok(0);
        }
        let mut budget = self.claim_budget(cluster, state)?;
        let mut taken = 0;
        while budget > 0 {
            let leases = off_worker(|| cluster.claim(&state.config.node, CLAIM_BATCH.min(budget)))?;
            if leases.is_empty() {
                break;
            }
            taken += leases.len();
            self.inner.metrics.claimed(leases.len());
            budget = budget.saturating_sub(leases.len());
            for lease in leases {
                let arn = lease.execution;
                // A loop of it may still run here with an older lease (this
                // node was paused or cut off, and took it back): that loop
                // stops, and the execution resumes from the store when it
                // has (`execution_ended`). A sleeping one wakes with the
                // new lease and ignores the release.
                let older_loop = {
                    let live = super::lock(&self.inner.live);
                    live.get(&arn).cloned().inspect(|_| {
                        super::lock(&self.inner.reclaimed).insert(arn.clone());
                    })
                };
                if let Some(inbox) = older_loop {
                    let _ = inbox.send(Message::Release { epoch: lease.epoch });
                    continue;
                }
                match off_worker(|| self.inner.store.execution(&arn)) {
                    Ok(Some(record)) => {
                        tracing::info!(execution = %arn, epoch = lease.epoch, "execution taken over");
                        self.resume_or_fail(record);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(execution = %arn, error = %e, "a claimed execution cannot be read now; it is tried again when the store answers");
                        self.paused(&arn);
                    }
                }
            }
        }
        Ok(taken)
    }

    /// How many executions this node claims this round: its share of all
    /// the open executions less what it owns, so that the live nodes
    /// split a dead node's executions (or a batch another node handed
    /// over) instead of the quickest taking them all. At least one while
    /// any wait, so that stale counts leave none behind.
    fn claim_budget(
        &self,
        cluster: &dyn Cluster,
        state: &ClusterState,
    ) -> Result<usize, EngineError> {
        let me = &state.config.node;
        let orphans = off_worker(|| cluster.orphans(me))?;
        if orphans == 0 {
            return Ok(0);
        }
        let nodes = off_worker(|| cluster.nodes())?;
        let live: Vec<&NodeRecord> = nodes.iter().filter(|n| n.alive).collect();
        state.live_nodes.store(live.len().max(1), Ordering::Relaxed);
        let mine = live
            .iter()
            .find(|n| &n.id == me)
            .map_or(0, |n| n.executions);
        let sharing = live.iter().filter(|n| &n.id != me).count() as u64 + 1;
        let total = live.iter().map(|n| n.executions).sum::<u64>() + orphans;
        let budget = total
            .div_ceil(sharing)
            .saturating_sub(mine)
            .clamp(1, orphans);
        Ok(usize::try_from(budget).unwrap_or(usize::MAX))
    }

    /// Hands executions over when this node owns clearly more than its
    /// share of the cluster's open executions (a node joined, or took
    /// over a dead node's): their leases are released for the other
    /// nodes to claim, and their loops here stop without writing. How
    /// many it handed over.
    pub(super) fn rebalance(&self) -> Result<usize, EngineError> {
        let Some((cluster, state)) = self.cluster() else {
            return Ok(0);
        };
        if state.left.load(Ordering::Acquire) {
            return Ok(0);
        }
        let nodes = off_worker(|| cluster.nodes())?;
        let live: Vec<&NodeRecord> = nodes.iter().filter(|n| n.alive).collect();
        state.live_nodes.store(live.len().max(1), Ordering::Relaxed);
        let Some(me) = live.iter().find(|n| n.id == state.config.node) else {
            return Ok(0);
        };
        let total: u64 = live.iter().map(|n| n.executions).sum();
        let share = total.div_ceil(live.len() as u64);
        // Some slack, so that executions do not move back and forth.
        if me.executions <= share + (share / 5).max(2) {
            return Ok(0);
        }
        let excess = usize::try_from(me.executions - share).unwrap_or(0);
        // Never an EXPRESS execution: no other node could resume it.
        let candidates: Vec<String> = super::lock(&self.inner.live)
            .keys()
            .filter(|arn| !is_express_arn(arn))
            .take(excess)
            .cloned()
            .collect();
        let mut handed = 0;
        for arn in candidates {
            let Some(lease) = off_worker(|| cluster.lease(&arn))? else {
                continue;
            };
            if lease.node != state.config.node || !off_worker(|| cluster.release(&lease))? {
                continue;
            }
            // Past any epoch: the loop stops, whatever lease it holds.
            let _ = executor::send(self, &arn, Message::Release { epoch: u64::MAX });
            handed += 1;
        }
        self.inner.metrics.handed_over(handed, false);
        if handed > 0 {
            tracing::info!(
                executions = handed,
                "executions handed to other nodes, to balance the cluster"
            );
        }
        Ok(handed)
    }

    /// Hands a Map Run's child over to the other nodes just after its
    /// first step is stored, instead of running it here: one child in
    /// every live node's count stays, the others' leases are released for
    /// the other nodes' next claims. So a Map Run's work spreads as its
    /// children start, not only once the balance moves the long ones.
    /// Never an EXPRESS child (no other node could resume it). `false`
    /// when the child runs here.
    pub(super) fn hand_child_over(&self, execution: &DurableExecution) -> bool {
        let Some((cluster, state)) = self.cluster() else {
            return false;
        };
        let record = execution.record();
        if record.map_run.is_none() || execution.is_volatile() || state.left.load(Ordering::Acquire)
        {
            return false;
        }
        let live = state.live_nodes.load(Ordering::Relaxed);
        if live < 2 || state.children_started.fetch_add(1, Ordering::Relaxed) % live == 0 {
            return false;
        }
        let Some(epoch) = execution.lease_epoch() else {
            return false;
        };
        let lease = Lease {
            execution: record.arn.clone(),
            node: state.config.node.clone(),
            epoch,
        };
        match off_worker(|| cluster.release(&lease)) {
            Ok(released) => {
                if released {
                    self.inner.metrics.handed_over(1, true);
                }
                released
            }
            Err(e) => {
                tracing::warn!(execution = %record.arn, error = %e, "a Map Run child stays on this node: its lease could not be handed over");
                false
            }
        }
    }

    /// Gives up every lease at once (a clean shutdown), so that the other
    /// nodes take this node's executions without waiting for its leases to
    /// run out. From then on its writes are refused.
    pub fn leave_cluster(&self) -> Result<(), EngineError> {
        let Some((cluster, state)) = self.cluster() else {
            return Ok(());
        };
        state.left.store(true, Ordering::Release);
        off_worker(|| cluster.leave(&state.config.node))?;
        Ok(())
    }

    /// Whether this node does what one node of a cluster does (`role`:
    /// `"triggers"`, `"retention"`): always when it is the only node;
    /// otherwise when it leads the role, taking it over from a leader
    /// that died. A node that cannot ask the store does not lead.
    pub fn leads(&self, role: &str) -> bool {
        let Some((cluster, state)) = self.cluster() else {
            return true;
        };
        if state.left.load(Ordering::Acquire) {
            return false;
        }
        match off_worker(|| cluster.lead(role, &state.config.node)) {
            Ok(leads) => leads,
            Err(e) => {
                tracing::warn!(role, error = %e, "this node cannot tell whether it leads");
                false
            }
        }
    }

    /// This node's id, when it is one of several.
    pub fn node_id(&self) -> Option<&str> {
        Some(self.inner.cluster.as_ref()?.config.node.as_str())
    }

    /// Every node the store knows, live or not.
    pub fn cluster_nodes(&self) -> Result<Vec<NodeRecord>, EngineError> {
        let Some((cluster, _)) = self.cluster() else {
            return Ok(Vec::new());
        };
        Ok(off_worker(|| cluster.nodes())?)
    }

    /// Hands the messages waiting for this node's executions to them;
    /// `delivered` remembers those handed over and not yet removed, with
    /// the inbox they went to: one whose loop ended without applying them
    /// (it stopped, lost its lease, hit a storage failure) gets them again
    /// through the loop that runs the execution next.
    fn deliver_posted(&self, delivered: &mut HashMap<u64, Inbox>) -> Result<(), EngineError> {
        let Some((cluster, state)) = self.cluster() else {
            return Ok(());
        };
        let messages = off_worker(|| cluster.messages(&state.config.node, MESSAGE_BATCH))?;
        delivered.retain(|id, inbox| !inbox.is_closed() && messages.iter().any(|m| m.id == *id));
        for message in messages {
            if delivered.contains_key(&message.id) {
                continue;
            }
            let posted: Posted = match serde_json::from_str(&message.body) {
                Ok(posted) => posted,
                Err(e) => {
                    tracing::error!(execution = %message.execution, error = %e, "a message for an execution does not read; it is dropped");
                    self.drop_message(message.id);
                    continue;
                }
            };
            let inbox = super::lock(&self.inner.live)
                .get(&message.execution)
                .cloned();
            let sent = inbox.map(|inbox| {
                let sent = inbox.send(Message::Posted {
                    id: message.id,
                    task: posted.task.map(TaskId),
                    command: interp_command(posted.command),
                });
                (inbox, sent)
            });
            if let Some((inbox, Ok(()))) = sent {
                delivered.insert(message.id, inbox);
                continue;
            }
            // Not running here: ended (the message has nothing to do), or
            // paused or being resumed (it waits for the next round).
            let record = off_worker(|| self.inner.store.execution(&message.execution))?;
            if record.is_none_or(|r| r.status != ExecutionStatus::Running) {
                self.drop_message(message.id);
            }
        }
        Ok(())
    }

    /// Removes a message that has nothing left to do.
    pub(crate) fn drop_message(&self, id: u64) {
        let mut batch = WriteBatch::new();
        batch.push(WriteOp::RemoveMessage(id));
        if let Err(e) = self.inner.store.apply(&batch) {
            tracing::warn!(message = id, error = %e, "a spent message cannot be removed; it is read again");
        }
    }
}

/// Starts the node's loops: renewing its row, claiming orphans, and
/// delivering messages, while the engine lives.
pub(super) fn start(engine: &Engine) {
    let Some(state) = engine.inner.cluster.as_ref() else {
        return;
    };
    let every = (state.config.lease / 3).max(Duration::from_millis(100));
    tokio::spawn(heartbeat_loop(Arc::downgrade(&engine.inner), every));
    tokio::spawn(claim_loop(Arc::downgrade(&engine.inner), every));
    tokio::spawn(message_loop(
        Arc::downgrade(&engine.inner),
        Arc::clone(&engine.inner.store),
        state.config.node.clone(),
    ));
}

async fn heartbeat_loop(inner: Weak<Inner>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let Some(state) = inner.cluster.as_ref() else {
            return;
        };
        if state.left.load(Ordering::Acquire) {
            return;
        }
        let store = Arc::clone(&inner.store);
        let config = state.config.clone();
        let renewed = tokio::task::spawn_blocking(move || match store.cluster() {
            Some(cluster) => cluster.heartbeat(&config.node, &config.address, config.lease),
            None => Ok(()),
        })
        .await;
        match renewed {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "this node cannot renew its leases"),
            Err(e) => tracing::warn!(error = %e, "this node's lease renewal stopped"),
        }
    }
}

/// Claim rounds between two looks at the balance.
const BALANCE_EVERY: u32 = 3;

async fn claim_loop(inner: Weak<Inner>, every: Duration) {
    let mut round = 0u32;
    loop {
        tokio::time::sleep(every).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let engine = Engine { inner };
        if let Err(e) = engine.claim_orphans() {
            tracing::warn!(error = %e, "this node cannot claim executions now");
        }
        // Queued heads a dead node or a lost race left waiting.
        engine.start_shared_queues();
        round = round.wrapping_add(1);
        if round % BALANCE_EVERY == 0
            && let Err(e) = engine.rebalance()
        {
            tracing::warn!(error = %e, "this node cannot balance its executions now");
        }
    }
}

/// How long a node waits for a wake-up before it reads its messages
/// anyway.
const MESSAGE_POLL: Duration = Duration::from_secs(2);

async fn message_loop(inner: Weak<Inner>, store: Arc<dyn Store>, node: String) {
    let mut delivered = HashMap::new();
    loop {
        let waiting = Arc::clone(&store);
        let me = node.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(cluster) = waiting.cluster() {
                cluster.wait_for_messages(&me, MESSAGE_POLL);
            }
        })
        .await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let engine = Engine { inner };
        if let Err(e) = engine.deliver_posted(&mut delivered) {
            tracing::warn!(error = %e, "messages for this node's executions cannot be read now");
            tokio::time::sleep(MESSAGE_POLL).await;
        }
    }
}

//! Several nodes on one store: who owns each open execution, and the
//! messages other nodes leave for it.
//!
//! Ownership is a lease: an execution belongs to one node, with a fencing
//! epoch that grows each time another node takes it over. A node stays
//! alive by renewing its own row ([`Cluster::heartbeat`]); its leases are
//! valid while that row is. Every write of an owned execution carries
//! [`WriteOp::Fence`](crate::WriteOp::Fence) with the lease it holds, and
//! the store refuses the whole batch ([`StoreError::Fenced`]) unless that
//! lease is still the execution's and its node still alive, so a node that
//! was paused, cut off or slow past its lease cannot write over the node
//! that took its executions.
//!
//! Only a store several processes share implements this (PostgreSQL); the
//! embedded stores are one node by construction.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::StoreError;

/// An execution's owner, and the epoch its writes are fenced with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub execution: String,
    pub node: String,
    pub epoch: u64,
}

/// A node as the other nodes see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    pub id: String,
    /// Where the node serves (its advertised address, for operators).
    pub address: String,
    pub started: DateTime<Utc>,
    /// Its leases hold until then unless it renews them.
    pub expires: DateTime<Utc>,
    /// Whether `expires` is still ahead (by the store's clock).
    pub alive: bool,
    /// Open executions it owns.
    pub executions: u64,
}

/// A message left for an execution by a node that does not own it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterMessage {
    pub id: u64,
    pub execution: String,
    pub body: String,
}

/// An activity task waiting for a worker of any node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedActivityTask {
    pub activity: String,
    pub token: String,
    pub execution: String,
    pub task: u64,
    /// The effective input, as JSON text.
    pub input: String,
}

/// A start's claim on a slot of its state machine's `max_running`, when
/// every node counts the same slots: the executions of the machine that
/// run (RUNNING, not queued, not a distributed Map's children), whichever
/// node owns them. A dead node's executions keep their slots until they
/// end on the nodes that take them over; nothing else holds a slot, so
/// none leaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotClaim {
    /// The state machine's ARN (its versions' executions count too).
    pub state_machine: String,
    pub max: u32,
    /// The queued execution this start takes out of the queue; `None` for
    /// a new execution, which finds no slot while others wait.
    pub queued: Option<String>,
}

/// A limited state machine's slots, as every node sees them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SharedSlots {
    /// Executions running (holding a slot).
    pub running: u64,
    /// Queued executions, in the order they start (highest priority
    /// first, then first in, first out): ARN and priority.
    pub queued: Vec<(String, i32)>,
}

/// A slot of a pool of slots (`[pools.NAME]`) held by a task of one
/// node, as every node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolHolder {
    pub pool: String,
    /// The task's idempotency key (execution and task): the same task,
    /// invoked again after a crash or a takeover, finds its slot.
    pub holder: String,
    pub node: String,
    pub execution: String,
    pub state: String,
    pub since: DateTime<Utc>,
}

/// Leases, nodes and messages, on a store several nodes share.
pub trait Cluster: Send + Sync {
    /// Registers or renews `node`: its leases hold for `ttl` more, by the
    /// store's clock (one clock for every node, so no skew between them
    /// matters).
    fn heartbeat(&self, node: &str, address: &str, ttl: Duration) -> Result<(), StoreError>;
    /// Ends `node`'s life at once (a clean shutdown): the others may take
    /// its executions without waiting for its leases to run out.
    fn leave(&self, node: &str) -> Result<(), StoreError>;
    /// Takes over at most `limit` open executions that no live node owns
    /// (their owner's row expired or left, or they never had one), each
    /// with an epoch above any before. Two nodes never take the same one,
    /// and a node never takes its own back.
    fn claim(&self, node: &str, limit: usize) -> Result<Vec<Lease>, StoreError>;
    /// How many executions [`Cluster::claim`] would offer `node` now.
    fn orphans(&self, node: &str) -> Result<u64, StoreError>;
    /// Gives up `lease` so that another node takes the execution over (a
    /// node with more than its share); `false` when it was no longer
    /// this node's. The releasing node does not claim it back.
    fn release(&self, lease: &Lease) -> Result<bool, StoreError>;
    /// The execution's lease, if it has one.
    fn lease(&self, execution: &str) -> Result<Option<Lease>, StoreError>;
    /// Every node known, live or not, by id.
    fn nodes(&self) -> Result<Vec<NodeRecord>, StoreError>;
    /// Leaves a message for an execution, durably, and wakes its owner.
    fn post(&self, execution: &str, body: &str) -> Result<(), StoreError>;
    /// The messages waiting for executions `node` owns, oldest first, at
    /// most `limit`. A message goes when a batch with
    /// [`WriteOp::RemoveMessage`](crate::WriteOp::RemoveMessage) commits.
    fn messages(&self, node: &str, limit: usize) -> Result<Vec<ClusterMessage>, StoreError>;
    /// Waits up to `timeout` for a message to be posted to one of `node`'s
    /// executions; `true` when woken by one. A message may arrive without
    /// a wake-up (the wake-up is a hint), so callers read
    /// [`Cluster::messages`] after a timeout too.
    fn wait_for_messages(&self, node: &str, timeout: Duration) -> bool;
    /// Offers an activity task to the workers of every node (once: a task
    /// offered again is left as it is).
    fn offer_activity_task(&self, task: &SharedActivityTask) -> Result<(), StoreError>;
    /// Takes the oldest task of `activity`, if any; two nodes never take
    /// the same one.
    fn take_activity_task(&self, activity: &str) -> Result<Option<SharedActivityTask>, StoreError>;
    /// Withdraws a task no worker took (its state timed out or stopped).
    fn withdraw_activity_task(&self, token: &str) -> Result<(), StoreError>;
    /// Waits up to `timeout` for an activity task to be offered anywhere;
    /// a hint, as [`Cluster::wait_for_messages`].
    fn wait_for_activity_tasks(&self, timeout: Duration) -> bool;
    /// Whether `node` leads `role` (the schedules, the purge) now: it did
    /// and is alive, or the leader's row ran out and `node` takes over.
    /// One live leader per role.
    fn lead(&self, role: &str, node: &str) -> Result<bool, StoreError>;
    /// The running count and the queue of a limited state machine (see
    /// [`SlotClaim`]).
    fn slots(&self, state_machine: &str) -> Result<SharedSlots, StoreError>;
    /// Takes one of the first `slots` slots of `holder.pool` for
    /// `holder`: the one it holds already, else a free one (never taken,
    /// given back, or held by a node whose row expired), when no waiter
    /// of any node is ahead of it for the free slots (`first`: a task
    /// that held a slot before a restart, ahead of every waiter). `false`
    /// when it must wait: it is then in the pool's queue, its place kept
    /// while it asks again every few seconds. Two nodes never take the
    /// same slot.
    fn take_pool_slot(
        &self,
        slots: u32,
        holder: &PoolHolder,
        first: bool,
    ) -> Result<bool, StoreError>;
    /// Takes `holder` off `pool`'s queue (its wait ended without a slot).
    fn leave_pool_queue(&self, pool: &str, holder: &str) -> Result<(), StoreError>;
    /// Gives back `holder`'s slot of `pool` and wakes the waiters of
    /// every node.
    fn release_pool_slot(&self, pool: &str, holder: &str) -> Result<(), StoreError>;
    /// The slots held by live nodes, by pool then slot.
    fn pool_holders(&self) -> Result<Vec<PoolHolder>, StoreError>;
    /// The tasks of live nodes waiting for a slot, by pool, oldest first.
    fn pool_waiters(&self) -> Result<Vec<PoolHolder>, StoreError>;
    /// Waits up to `timeout` for a slot of any pool to be given back on
    /// any node; a hint, as [`Cluster::wait_for_messages`].
    fn wait_for_pool_slots(&self, timeout: Duration) -> bool;
}

/// What the embedded stores say to an operation only a shared store has.
pub(crate) const ONE_NODE: &str =
    "this store serves one node: leases and messages need a store several nodes share (PostgreSQL)";

/// The refusal of a batch whose fence no longer holds.
pub fn fenced(lease: &Lease) -> StoreError {
    StoreError::Fenced {
        execution: lease.execution.clone(),
        node: lease.node.clone(),
        epoch: lease.epoch,
    }
}

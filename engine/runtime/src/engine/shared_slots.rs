//! `max_running` when several nodes share the store: the slots and the
//! queue live in the store, not in one node's memory (`limits.rs` keeps
//! them in memory for a node alone).
//!
//! A slot is a running execution of the machine, whichever node runs it:
//! a start puts a [`SlotClaim`] first in its batch, and the store refuses
//! the batch ([`StoreError::NoSlot`]) unless, counted under a lock of the
//! machine, fewer than `max_running` run (and, for a new execution, none
//! waits). A refused start is stored queued instead. An end frees its
//! slot by ending; the node it ended on then starts the queue's head,
//! claiming its slot the same way, so that two nodes racing for one head
//! start it once. Every node also looks at each limited machine's queue
//! on its claim rounds, for heads that a node's death or a lost race
//! left waiting. A dead node's running executions keep their slots until
//! they end on the nodes that take them over: nothing else holds a slot,
//! so none leaks.

use stepline_store::{ExecutionRecord, SlotClaim, StoreError, WriteBatch, WriteOp};

use super::{Engine, EngineError, QueuePosition, off_worker};

/// How many heads one look at a queue starts at most (each start is a
/// write and a flush; the next look goes on).
const STARTS_PER_LOOK: usize = 64;

/// The state machine ARN (unqualified) of a state machine, version or
/// alias ARN.
pub(super) fn unqualified(machine_arn: &str) -> &str {
    match machine_arn.split_once(":stateMachine:") {
        Some((prefix, rest)) => match rest.find(':') {
            Some(end) => &machine_arn[..prefix.len() + ":stateMachine:".len() + end],
            None => machine_arn,
        },
        None => machine_arn,
    }
}

impl Engine {
    /// Whether `max_running` is counted by the store for every node.
    pub(super) fn shares_slots(&self) -> bool {
        self.shared_store().is_some()
    }

    /// The claim a new execution's start puts in its batch.
    pub(super) fn new_slot_claim(&self, machine_arn: &str, max: u32) -> SlotClaim {
        SlotClaim {
            state_machine: unqualified(machine_arn).to_owned(),
            max,
            queued: None,
        }
    }

    /// Starts the heads of a limited state machine's shared queue while
    /// it has free slots, in the background.
    pub(super) fn start_shared_queue(&self, machine_arn: &str, max: u32) {
        let engine = self.clone();
        let machine_arn = unqualified(machine_arn).to_owned();
        tokio::spawn(async move {
            if let Err(e) = engine.drain_shared_queue(&machine_arn, max).await {
                tracing::warn!(state_machine = %machine_arn, error = %e, "the queue of a limited state machine cannot be started now");
            }
        });
    }

    /// Every limited state machine's queue, looked at once (the claim
    /// rounds call it).
    pub(super) fn start_shared_queues(&self) {
        for (name, max) in &self.all_limits() {
            self.start_shared_queue(&self.machine_arn(name), *max);
        }
    }

    async fn drain_shared_queue(&self, machine_arn: &str, max: u32) -> Result<(), EngineError> {
        let Some(cluster) = self.shared_store() else {
            return Ok(());
        };
        for _ in 0..STARTS_PER_LOOK {
            let slots = off_worker(|| cluster.slots(machine_arn))?;
            if slots.running >= u64::from(max) {
                return Ok(());
            }
            let Some((head, _)) = slots.queued.into_iter().next() else {
                return Ok(());
            };
            let claim = SlotClaim {
                state_machine: machine_arn.to_owned(),
                max,
                queued: Some(head.clone()),
            };
            match self.run_queued_with(&head, Some(claim)).await {
                // Another node took the slot, or started this head first:
                // look again.
                Ok(()) | Err(EngineError::Store(StoreError::NoSlot { .. })) => {}
                // Left to the next look (a claim round), rather than tried
                // again at once.
                Err(e) => {
                    tracing::error!(execution = %head, error = %e, "a queued execution could not start");
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Where a queued execution stands in its machine's shared queue.
    pub(super) fn shared_queue_position(&self, record: &ExecutionRecord) -> Option<QueuePosition> {
        let queued = record.queued?;
        let cluster = self.shared_store()?;
        let machine_arn = unqualified(&record.state_machine_arn);
        let slots = off_worker(|| cluster.slots(machine_arn)).ok()?;
        let position = slots
            .queued
            .iter()
            .position(|(arn, _)| *arn == record.arn)?
            + 1;
        Some(QueuePosition {
            position,
            priority: queued.priority,
            length: slots.queued.len(),
        })
    }

    /// `/metrics`' (name, limit, running, queued) from the shared counts.
    pub(super) fn shared_limit_usage(&self) -> Vec<(String, u32, u32, usize)> {
        let Some(cluster) = self.shared_store() else {
            return Vec::new();
        };
        let mut usage: Vec<_> = self
            .all_limits()
            .iter()
            .map(|(name, max)| {
                let machine_arn = self.machine_arn(name);
                let (running, queued) = off_worker(|| cluster.slots(&machine_arn))
                    .map_or((0, 0), |s| {
                        (u32::try_from(s.running).unwrap_or(u32::MAX), s.queued.len())
                    });
                (name.clone(), *max, running, queued)
            })
            .collect();
        usage.sort();
        usage
    }

    /// StopExecution of an execution queued in a shared queue: aborted in
    /// a batch that the store refuses if another node started it
    /// meanwhile (`Ok(None)`: stop it as a running one).
    pub(super) fn stop_shared_queued(
        &self,
        stopped: &ExecutionRecord,
    ) -> Result<Option<()>, EngineError> {
        let mut batch = WriteBatch::new();
        batch.push(WriteOp::LeaveQueue(stopped.arn.clone()));
        batch.push(WriteOp::UpdateExecution(stopped.clone()));
        batch.ops.extend(crate::durable::ended_stats(stopped));
        match self.inner.store.apply(&batch) {
            Ok(()) => Ok(Some(())),
            Err(StoreError::NotQueued(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::unqualified;

    #[test]
    fn qualified_machine_arns_lose_their_qualifier() {
        let machine = "arn:aws:states:us-east-1:123456789012:stateMachine:orders";
        assert_eq!(unqualified(machine), machine);
        assert_eq!(unqualified(&format!("{machine}:3")), machine);
        assert_eq!(unqualified(&format!("{machine}:live")), machine);
        assert_eq!(unqualified("not an arn"), "not an arn");
    }
}

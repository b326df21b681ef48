//! Slots of the pools (`[pools.NAME]`, `pools.rs`) as the engine takes
//! them: in this node's memory when it is alone on its store, in the
//! store's `pool_slots` when several nodes share it, so that a pool's
//! slots bound its tasks on every node together.
//!
//! A shared slot is held by the task's idempotency key (its execution and
//! task), so the same task invoked again after a crash or a takeover finds
//! the slot it held; a slot whose node's row expired is free for anyone.
//! The waiters of every node queue in the store, first come first served
//! (a task that held a slot before a restart ahead of them); a waiter
//! looks again when a slot is given back anywhere (the store's wake-up,
//! as for activity tasks) or every second regardless, which also keeps
//! its place.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use stepline_store::PoolHolder;

use super::{Engine, off_worker};
use crate::pools::{PoolUsage, PoolWait, Slot, Waiting};

/// How long a waiter for a shared slot sleeps without a wake-up.
const LOOK_AGAIN: Duration = Duration::from_secs(1);

/// A task in a pool's queue in the store, taken off it when dropped
/// while `armed`.
struct Queued {
    store: Arc<dyn stepline_store::Store>,
    pool: String,
    holder: String,
    armed: bool,
}

impl Drop for Queued {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let store = Arc::clone(&self.store);
        let (pool, holder) = (
            std::mem::take(&mut self.pool),
            std::mem::take(&mut self.holder),
        );
        let leave = move || {
            if let Some(Err(e)) = store.cluster().map(|c| c.leave_pool_queue(&pool, &holder)) {
                // Passed over once it has not asked for a few seconds.
                tracing::warn!(pool, error = %e, "a pool's waiter cannot leave its queue now");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn_blocking(leave);
            }
            Err(_) => leave(),
        }
    }
}

impl Engine {
    /// Waits for a slot of `pool` for `who` (`holder`: the task's
    /// idempotency key); `first` for a task that held a slot before a
    /// restart. `None` for a pool that is not configured.
    pub(crate) async fn take_pool_slot(
        &self,
        pool: &str,
        who: Waiting,
        holder: String,
        first: bool,
    ) -> Option<Slot> {
        let pools = self.pools();
        let (Some(node), true) = (self.node_id(), self.shared_store().is_some()) else {
            return pools.acquire(pool, who, first, || self.now()).await;
        };
        let slots = pools.slots(pool)?;
        self.watch_freed_slots();
        let mut record = PoolHolder {
            pool: pool.to_owned(),
            holder,
            node: node.to_owned(),
            execution: who.execution_arn.clone(),
            state: who.state_name.clone(),
            since: who.since,
        };
        let mut listed = None;
        // Takes the task off the store's queue if its wait ends without a
        // slot (the task cancelled).
        let mut queued = Queued {
            store: Arc::clone(&self.inner.store),
            pool: record.pool.clone(),
            holder: record.holder.clone(),
            armed: false,
        };
        loop {
            // A holder's row says since when it has its slot.
            record.since = self.now();
            // Registered before looking, so that a slot given back between
            // the look and the wait still wakes this waiter.
            let freed = pools.freed.notified();
            let taken = off_worker(|| {
                self.shared_store()
                    .map(|cluster| cluster.take_pool_slot(slots, &record, first))
            });
            match taken {
                Some(Ok(true)) => break,
                Some(Ok(false)) => queued.armed = true,
                Some(Err(e)) => {
                    tracing::warn!(pool, error = %e, "a pool slot cannot be taken now; trying again");
                }
                None => return None,
            }
            if listed.is_none() {
                listed = pools.wait_here(pool, who.clone());
            }
            let _ = tokio::time::timeout(LOOK_AGAIN, freed).await;
        }
        // Taking the slot took it off the queue.
        queued.armed = false;
        drop(listed);
        let waited = (record.since - who.since).num_milliseconds().max(0) as u64;
        let store = Arc::clone(&self.inner.store);
        let pools = Arc::clone(&pools);
        let release = move || {
            let give_back = move || {
                if let Some(cluster) = store.cluster() {
                    if let Err(e) = cluster.release_pool_slot(&record.pool, &record.holder) {
                        // Held until this node's row expires, then free.
                        tracing::warn!(pool = %record.pool, error = %e, "a pool slot cannot be given back now");
                    }
                }
                pools.freed.notify_waiters();
            };
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn_blocking(give_back);
                }
                Err(_) => give_back(),
            }
        };
        Some(Slot::shared(
            PoolWait {
                name: pool.to_owned(),
                waited_ms: waited,
            },
            Box::new(release),
        ))
    }

    /// Starts (once) the watch that wakes this node's waiters when a slot
    /// is given back on another node.
    fn watch_freed_slots(&self) {
        let pools = self.pools();
        if pools.watching.swap(true, Ordering::AcqRel) {
            return;
        }
        let store = Arc::clone(&self.inner.store);
        tokio::spawn(async move {
            loop {
                let store = Arc::clone(&store);
                let woken = tokio::task::spawn_blocking(move || {
                    store
                        .cluster()
                        .is_some_and(|c| c.wait_for_pool_slots(Duration::from_secs(5)))
                })
                .await;
                match woken {
                    Ok(true) => pools.freed.notify_waiters(),
                    Ok(false) => {}
                    // The runtime shuts down.
                    Err(_) => return,
                }
            }
        });
    }

    /// The tasks of `execution_arn` waiting on this node for a slot, with
    /// their pool's name (no store read: the waiters are this node's).
    pub fn pool_waits(&self, execution_arn: &str) -> Vec<(String, Waiting)> {
        self.inner
            .config
            .pools
            .usage()
            .into_iter()
            .flat_map(|pool| {
                pool.waiting
                    .into_iter()
                    .filter(|w| w.execution_arn == execution_arn)
                    .map(move |w| (pool.name.clone(), w))
            })
            .collect()
    }

    /// Each pool's slots, slots in use and waiting tasks: with several
    /// nodes, those of every node, as the store has them.
    pub fn pool_usage(&self) -> Vec<PoolUsage> {
        let mut usage = self.inner.config.pools.usage();
        let Some(cluster) = self.shared_store().filter(|_| !usage.is_empty()) else {
            return usage;
        };
        let shared = off_worker(|| {
            Ok::<_, stepline_store::StoreError>((cluster.pool_holders()?, cluster.pool_waiters()?))
        });
        let (holders, waiters) = match shared {
            Ok(shared) => shared,
            Err(e) => {
                tracing::warn!(error = %e, "the pools' shared slots cannot be read now");
                return usage;
            }
        };
        for pool in &mut usage {
            pool.holders = holders
                .iter()
                .filter(|h| h.pool == pool.name)
                .map(|h| Waiting {
                    execution_arn: h.execution.clone(),
                    state_name: h.state.clone(),
                    since: h.since,
                })
                .collect();
            pool.waiting = waiters
                .iter()
                .filter(|w| w.pool == pool.name)
                .map(|w| Waiting {
                    execution_arn: w.execution.clone(),
                    state_name: w.state.clone(),
                    since: w.since,
                })
                .collect();
            // A pool whose configuration shrank shows no more than its slots.
            pool.holders.truncate(pool.slots as usize);
            pool.in_use = pool.holders.len() as u32;
        }
        usage
    }
}

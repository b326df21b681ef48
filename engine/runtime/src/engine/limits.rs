//! `max_running`: at most N executions of a state machine run at once;
//! the starts beyond wait in a queue, highest priority first, then first
//! in first out.
//!
//! A queued execution is an ordinary stored record (RUNNING, as AWS
//! clients see it) with a `queued` mark and no journal: the mark is what
//! makes the queue survive a restart, and the slots in use are counted
//! from the store's open executions at open. In memory, each limited
//! state machine has its count of running executions and its queue; an
//! end frees a slot and starts the head of the queue. Only STANDARD
//! executions started on their own are limited (not a distributed Map's
//! children, not EXPRESS executions). A redriven execution runs at once
//! and takes a slot.

use std::cmp::Reverse;
use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::Value;
use stepline_store::{
    ExecutionRecord, ExecutionStatus, MachineStats, Queued, SlotClaim, StatsDelta, StoreError,
    WriteBatch, WriteOp,
};

use super::{Engine, EngineError, lock};
use crate::durable::DurableExecution;
use crate::executor;

/// Where a queued execution stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuePosition {
    /// 1 for the next to start.
    pub position: usize,
    pub priority: i32,
    /// How many wait in its state machine's queue.
    pub length: usize,
}

/// One limited state machine's slots.
#[derive(Debug, Default)]
pub(super) struct MachineSlots {
    /// Executions running (started and not ended), asleep ones included.
    running: u32,
    /// Queued executions, in the order they start.
    queue: BTreeSet<(Reverse<i32>, DateTime<Utc>, String)>,
}

impl MachineSlots {
    /// Counts an open execution of its state machine, as the store has
    /// it: running (a slot), queued (in line) or held by its windows
    /// (`windows.rs`: in line once released).
    pub(super) fn count(&mut self, record: &ExecutionRecord) {
        match record.queued {
            Some(queued) if queued.until.is_some() => {}
            Some(queued) => {
                self.queue.insert(queue_key(record, queued));
            }
            None => self.running += 1,
        }
    }
}

/// The state machine name in a state machine (or version) ARN.
pub(super) fn machine_name(machine_arn: &str) -> &str {
    machine_arn
        .split_once(":stateMachine:")
        .map_or(machine_arn, |(_, rest)| {
            rest.split(':').next().unwrap_or(rest)
        })
}

fn queue_key(record: &ExecutionRecord, queued: Queued) -> (Reverse<i32>, DateTime<Utc>, String) {
    (Reverse(queued.priority), record.start, record.arn.clone())
}

impl Engine {
    /// The limit of a STANDARD execution's state machine, if any. Cheap
    /// when nothing is limited: the start path asks it every time.
    pub(super) fn max_running(&self, machine_arn: &str) -> Option<u32> {
        self.limit_of(machine_name(machine_arn))
    }

    /// Takes a slot for a new execution, or says it must queue (`false`).
    /// An execution queues while others wait, so that none overtakes.
    pub(super) fn take_slot(&self, machine_arn: &str, max: u32) -> bool {
        let mut slots = lock(&self.inner.slots);
        let machine = slots
            .entry(machine_name(machine_arn).to_owned())
            .or_default();
        if machine.running < max && machine.queue.is_empty() {
            machine.running += 1;
            true
        } else {
            false
        }
    }

    /// Gives back a slot a start took and did not use.
    pub(super) fn give_back_slot(&self, machine_arn: &str) {
        let mut slots = lock(&self.inner.slots);
        if let Some(machine) = slots.get_mut(machine_name(machine_arn)) {
            machine.running = machine.running.saturating_sub(1);
        }
    }

    /// Stores a new execution as queued (durably) and puts it in line.
    pub(super) async fn enqueue(
        &self,
        mut record: ExecutionRecord,
        priority: i32,
    ) -> Result<ExecutionRecord, EngineError> {
        let queued = Queued {
            priority,
            until: None,
        };
        record.queued = Some(queued);
        self.store_queued(&record).await?;
        tracing::info!(execution = %record.arn, priority, "execution queued: its state machine runs its max_running");
        self.queue_for_slot(&record, queued);
        Ok(record)
    }

    /// Writes a new queued (or held) execution and flushes it.
    pub(super) async fn store_queued(&self, record: &ExecutionRecord) -> Result<(), EngineError> {
        let mut batch = WriteBatch::new();
        batch.push(WriteOp::CreateExecution(record.clone()));
        // The dashboard counts it started now, as AWS clients see it.
        if let Some(delta) = StatsDelta::of(record, record.start, MachineStats::start()) {
            batch.push(WriteOp::AddStats(delta));
        }
        self.inner.store.apply(&batch)?;
        self.flush().await?;
        Ok(())
    }

    /// Puts a stored queued execution in its state machine's line, and
    /// starts the head if a slot is free.
    pub(super) fn queue_for_slot(&self, record: &ExecutionRecord, queued: Queued) {
        // In a cluster the store keeps the line (`shared_slots`).
        if self.shares_slots() {
            if let Some(max) = self.max_running(&record.state_machine_arn) {
                self.start_shared_queue(&record.state_machine_arn, max);
            }
            return;
        }
        {
            let mut slots = lock(&self.inner.slots);
            let machine = slots
                .entry(machine_name(&record.state_machine_arn).to_owned())
                .or_default();
            machine.queue.insert(queue_key(record, queued));
        }
        // A slot may have freed between the check and the queueing.
        self.start_queued(machine_name(&record.state_machine_arn).to_owned());
    }

    /// Where a queued execution stands; `None` when it is not queued here.
    pub fn queue_position(&self, record: &ExecutionRecord) -> Option<QueuePosition> {
        if self.shares_slots() {
            return self.shared_queue_position(record);
        }
        let queued = record.queued?;
        let slots = lock(&self.inner.slots);
        let machine = slots.get(machine_name(&record.state_machine_arn))?;
        let key = queue_key(record, queued);
        let position = machine.queue.iter().position(|k| *k == key)? + 1;
        Some(QueuePosition {
            position,
            priority: queued.priority,
            length: machine.queue.len(),
        })
    }

    /// Executions running and queued per limited state machine, for
    /// `/metrics`: (name, limit, running, queued).
    pub fn limit_usage(&self) -> Vec<(String, u32, u32, usize)> {
        if self.shares_slots() {
            return self.shared_limit_usage();
        }
        let slots = lock(&self.inner.slots);
        let mut usage: Vec<_> = self
            .all_limits()
            .iter()
            .map(|(name, max)| {
                let (running, queued) = slots
                    .get(name)
                    .map_or((0, 0), |m| (m.running, m.queue.len()));
                (name.clone(), *max, running, queued)
            })
            .collect();
        usage.sort();
        usage
    }

    /// `/metrics`: each limited state machine's limit, running count and
    /// queue length.
    pub(super) fn limits_metrics(&self, out: &mut String) {
        use std::fmt::Write as _;
        let usage = self.limit_usage();
        if usage.is_empty() {
            return;
        }
        for (metric, help, column) in [
            (
                "stepline_max_running",
                "Each limited state machine's max_running.",
                0,
            ),
            (
                "stepline_limited_running",
                "Executions of a limited state machine running (holding a slot).",
                1,
            ),
            (
                "stepline_limited_queued",
                "Executions of a limited state machine waiting for a slot.",
                2,
            ),
        ] {
            let _ = writeln!(out, "# HELP {metric} {help}\n# TYPE {metric} gauge");
            for (name, max, running, queued) in &usage {
                let value = match column {
                    0 => u64::from(*max),
                    1 => u64::from(*running),
                    _ => *queued as u64,
                };
                let _ = writeln!(
                    out,
                    "{metric}{{state_machine=\"{}\"}} {value}",
                    crate::metrics::label(name)
                );
            }
        }
    }

    /// An execution ended (or a stopped queued one left the queue): its
    /// slot is free for the head of the queue.
    pub(crate) fn slot_freed(&self, record: &ExecutionRecord) {
        let Some(max) = self.max_running(&record.state_machine_arn) else {
            return;
        };
        if record.map_run.is_some() {
            return;
        }
        if self.shares_slots() {
            self.start_shared_queue(&record.state_machine_arn, max);
            return;
        }
        self.give_back_slot(&record.state_machine_arn);
        self.start_queued(machine_name(&record.state_machine_arn).to_owned());
    }

    /// A redriven execution runs again: it holds a slot.
    pub(super) fn slot_taken_by_redrive(&self, record: &ExecutionRecord) {
        // Shared slots count it as it runs again.
        if self.max_running(&record.state_machine_arn).is_none() || self.shares_slots() {
            return;
        }
        let mut slots = lock(&self.inner.slots);
        slots
            .entry(machine_name(&record.state_machine_arn).to_owned())
            .or_default()
            .running += 1;
    }

    /// At open: counts the slots the open executions hold and queues the
    /// queued ones, from the store's records; then starts what fits.
    pub(super) fn count_slots(&self, open: &[ExecutionRecord]) {
        let limits = self.all_limits();
        if limits.is_empty() {
            return;
        }
        let mut slots = lock(&self.inner.slots);
        for record in open {
            if record.map_run.is_some() || record.status != ExecutionStatus::Running {
                continue;
            }
            let name = machine_name(&record.state_machine_arn);
            if !limits.contains_key(name) {
                continue;
            }
            slots.entry(name.to_owned()).or_default().count(record);
        }
        let names: Vec<String> = slots.keys().cloned().collect();
        drop(slots);
        for name in names {
            self.start_queued(name);
        }
    }

    /// Starts queued executions of a state machine while it has free
    /// slots, in the background (a start writes and flushes). A state
    /// machine whose limit was removed (over the API) starts them all.
    pub(super) fn start_queued(&self, name: String) {
        let max = self.limit_of(&name).unwrap_or(u32::MAX);
        loop {
            let next = {
                let mut slots = lock(&self.inner.slots);
                let Some(machine) = slots.get_mut(&name) else {
                    return;
                };
                if machine.running >= max {
                    return;
                }
                let Some(next) = machine.queue.pop_first() else {
                    return;
                };
                machine.running += 1;
                next.2
            };
            let engine = self.clone();
            tokio::spawn(async move {
                if let Err(e) = engine.run_queued_with(&next, None).await {
                    tracing::error!(execution = %next, error = %e, "a queued execution could not start");
                }
            });
        }
    }

    /// Starts one execution taken from the queue: it holds a slot of this
    /// node's, or (`claim`) claims one of the shared slots as it starts.
    pub(super) async fn run_queued_with(
        &self,
        arn: &str,
        claim: Option<SlotClaim>,
    ) -> Result<(), EngineError> {
        let shared = claim.is_some();
        let record = match self.inner.store.execution(arn)? {
            Some(r) if r.queued.is_some() && r.status == ExecutionStatus::Running => r,
            // Stopped meanwhile: its slot goes to the next.
            _ if shared => return Ok(()),
            _ => {
                self.give_back_slot_and_go_on(arn);
                return Ok(());
            }
        };
        let started = (|| {
            let (machine_record, machine, info) = self.definition_of(&record)?;
            let input: Value = serde_json::from_str(&record.input).map_err(|e| {
                EngineError::InvalidExecutionInput(format!(
                    "Invalid State Machine Execution Input: '{e}'"
                ))
            })?;
            let owner = self.new_lease(&record.arn);
            let now = self.inner.clock.now();
            let started = executor::span(&record.arn).in_scope(|| {
                DurableExecution::start_queued(
                    &*self.inner.store,
                    machine,
                    info,
                    record.clone(),
                    input,
                    owner,
                    self.end_notices(),
                    now,
                    claim,
                    self.pools(),
                )
            })?;
            Ok::<_, EngineError>((machine_record.name, started))
        })();
        let (name, (execution, effects)) = match started {
            Ok(s) => s,
            // No shared slot after all: it stays queued.
            Err(e @ EngineError::Store(StoreError::NoSlot { .. })) => return Err(e),
            Err(e) => {
                // It cannot run (its definition is gone, its input no
                // longer reads): it fails rather than wait forever. A
                // store that does not answer leaves it queued for the
                // next start.
                if !matches!(&e, EngineError::Store(s) if s.is_io())
                    && let Err(failed) = self.fail_unresumable(record, &e.to_string())
                {
                    tracing::error!(execution = %arn, error = %failed, "a queued execution that cannot start cannot be marked FAILED either");
                }
                if !shared {
                    self.give_back_slot_and_go_on(arn);
                }
                return Err(e);
            }
        };
        self.launch(execution, effects, true, move |engine, execution| {
            engine.inner.metrics.execution_started(&name);
            executor::span(&execution.record().arn).in_scope(|| {
                tracing::info!(state_machine = %name, "queued execution started");
                executor::count_transitions(engine, execution);
            });
        })
        .await
    }

    fn give_back_slot_and_go_on(&self, arn: &str) {
        let name = arn.rsplit_once(':').map_or(arn, |(left, _)| left);
        let name = name.rsplit(':').next().unwrap_or(name).to_owned();
        {
            let mut slots = lock(&self.inner.slots);
            if let Some(machine) = slots.get_mut(&name) {
                machine.running = machine.running.saturating_sub(1);
            }
        }
        self.start_queued(name);
    }

    /// StopExecution of a queued execution: it leaves the queue and ends
    /// ABORTED without ever running (its history stays empty). `Ok(false)`
    /// when it is not queued (any more): stop it as a running one.
    pub(super) fn stop_queued(
        &self,
        record: &ExecutionRecord,
        error: Option<String>,
        cause: Option<String>,
    ) -> Result<bool, EngineError> {
        let Some(queued) = record.queued else {
            return Ok(false);
        };
        let shared = self.shares_slots();
        // Held by its windows, or in line for a slot.
        let held = queued.until.is_some() && self.unhold(&record.arn);
        let mut slots = lock(&self.inner.slots);
        let in_line = shared
            || held
            || slots
                .get_mut(machine_name(&record.state_machine_arn))
                .is_some_and(|m| m.queue.remove(&queue_key(record, queued)));
        if !in_line {
            return Ok(false);
        }
        let mut stopped = record.clone();
        stopped.queued = None;
        stopped.status = ExecutionStatus::Aborted;
        stopped.stop = Some(self.inner.clock.now());
        stopped.error = error;
        stopped.cause = cause;
        // Shared: the store refuses the stop if a node started it.
        if shared {
            drop(slots);
            if self.stop_shared_queued(&stopped)?.is_none() {
                return Ok(false);
            }
            return self.queued_stopped(record, stopped);
        }
        let mut batch = WriteBatch::new();
        batch.push(WriteOp::UpdateExecution(stopped.clone()));
        batch.ops.extend(crate::durable::ended_stats(&stopped));
        // Written while the queue is held, so that it is never started
        // after it was taken out.
        self.inner.store.apply(&batch)?;
        drop(slots);
        self.queued_stopped(record, stopped)
    }

    /// What follows a queued execution's stop once it is written.
    fn queued_stopped(
        &self,
        record: &ExecutionRecord,
        stopped: ExecutionRecord,
    ) -> Result<bool, EngineError> {
        // Flushed soon, without holding up the answer (a stop is
        // answered at once, as for a running execution).
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let engine = self.clone();
            runtime.spawn(async move {
                if let Err(e) = engine.flush().await {
                    tracing::warn!(error = %e, "the stop of a queued execution could not be flushed");
                }
            });
        }
        tracing::info!(execution = %record.arn, "queued execution stopped before it ran");
        self.inner
            .metrics
            .execution_finished(machine_name(&record.state_machine_arn), "ABORTED");
        self.notify_ended(&stopped, false);
        Ok(true)
    }
}

//! Executions: start, describe, list, history, stop, redrive, and
//! waiting for one to end.

use serde_json::Value;
use tokio::sync::oneshot;

use crate::durable::DurableExecution;
use crate::executor::{self, Message};
use stepline_language::cause;
use stepline_language::interp::Command;
use stepline_language::payload::{MAX_PAYLOAD_BYTES, MAX_PAYLOAD_DEPTH};
use stepline_store::{
    ExecutionPage, ExecutionQuery, ExecutionRecord, ExecutionStatus, ExecutionsOf, MachineStats,
    SlotClaim, StatsBucket, StoreError, TaskLogRecord, WorkflowType,
};

use super::windows::{StartOptions, WindowCheck};
use super::{Engine, EngineError, check_name, lock, off_worker};
use crate::windows::OutsideWindow;

/// How long a redrive waits for a just-closed execution's executor to
/// finish closing.
const CLOSING_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// How soon [`Engine::wait_for`] first looks again at an execution that
/// runs elsewhere, and how far apart its looks grow.
const NOT_LIVE_POLL_FIRST: std::time::Duration = std::time::Duration::from_millis(50);
const NOT_LIVE_POLL_MAX: std::time::Duration = std::time::Duration::from_secs(1);

impl Engine {
    /// Starts an execution. With a name already used, AWS's rule: the same
    /// input while the first is open returns it; anything else is
    /// ExecutionAlreadyExists.
    pub async fn start_execution(
        &self,
        machine_arn: &str,
        name: Option<&str>,
        input: Option<&str>,
    ) -> Result<ExecutionRecord, EngineError> {
        self.start_execution_with_priority(machine_arn, name, input, 0)
            .await
    }

    /// [`Engine::start_execution`] with a priority in its state machine's
    /// queue (`max_running`): higher starts first; AWS clients' starts
    /// have 0. Without a limit, the priority does nothing.
    pub async fn start_execution_with_priority(
        &self,
        machine_arn: &str,
        name: Option<&str>,
        input: Option<&str>,
        priority: i32,
    ) -> Result<ExecutionRecord, EngineError> {
        let options = StartOptions {
            priority,
            ..StartOptions::default()
        };
        self.start_execution_with(machine_arn, name, input, &options)
            .await
    }

    /// [`Engine::start_execution`] with a priority and, for a trigger's
    /// start, the trigger's execution windows.
    pub async fn start_execution_with(
        &self,
        machine_arn: &str,
        name: Option<&str>,
        input: Option<&str>,
        options: &StartOptions,
    ) -> Result<ExecutionRecord, EngineError> {
        let priority = options.priority;
        let (machine_arn, test_case) = match machine_arn.split_once('#') {
            Some((arn, case)) => (arn, Some(case)),
            None => (machine_arn, None),
        };
        // A version or an alias runs its own revision.
        let resolved = self.resolve_machine_from(machine_arn, true)?;
        let machine_record = resolved.machine;
        let machine_arn = machine_record.arn.as_str();
        if let Some(case) = test_case {
            let known = self
                .inner
                .config
                .mocks
                .as_ref()
                .is_some_and(|m| m.has_test_case(&machine_record.name, case));
            if !known {
                return Err(EngineError::Validation(format!(
                    "The test case '{case}' of the state machine '{}' is not in the mock configuration",
                    machine_record.name
                )));
            }
        }
        let input_text = input.unwrap_or("{}");
        // The faces refuse a larger input before it gets here; a nested
        // execution's or a Map Run child's is built by the engine.
        if input_text.len() > MAX_PAYLOAD_BYTES {
            return Err(EngineError::InvalidExecutionInput(
                cause::EXECUTION_INPUT_TOO_LARGE
                    .render(&[("size", &input_text.len()), ("limit", &MAX_PAYLOAD_BYTES)]),
            ));
        }
        let input: Value = serde_json::from_str(input_text).map_err(|e| {
            EngineError::InvalidExecutionInput(format!(
                "Invalid State Machine Execution Input: '{e}'"
            ))
        })?;
        if stepline_language::payload::nests_deeper_than(&input, MAX_PAYLOAD_DEPTH) {
            return Err(EngineError::InvalidExecutionInput(format!(
                "Invalid State Machine Execution Input: 'arrays and objects nested more than {MAX_PAYLOAD_DEPTH} levels deep'"
            )));
        }
        let name = match name {
            Some(n) => {
                check_name(n, "execution")?;
                n.to_owned()
            }
            None => self.random_name(),
        };
        let express = machine_record.workflow_type == WorkflowType::Express;
        let arn = if express {
            self.express_arn(&machine_record.name, &name)?
        } else {
            self.execution_arn(&machine_record.name, &name)
        };
        let mut record = self.new_execution(
            arn,
            machine_arn.to_owned(),
            resolved.revision,
            name,
            input_text.to_owned(),
        )?;
        record.test_case = test_case.map(str::to_owned);
        // Execution windows: an EXPRESS execution is never held (nothing
        // of it is kept to hold).
        let mut alert = None;
        if !express {
            match self.check_window(&record, &machine_record.name, options)? {
                WindowCheck::Go => {}
                WindowCheck::Alert(outside) => {
                    // Kept before the start's write, whose flush covers
                    // both; only when someone (the server's alerts) will
                    // deliver it.
                    if !self.inner.config.window_alerts.is_empty() {
                        self.keep_window_alert(&outside)?;
                    }
                    alert = Some(outside);
                }
                WindowCheck::Hold(until) => {
                    return match self.hold(record.clone(), priority, until).await {
                        Err(EngineError::Store(StoreError::ExecutionExists { .. })) => {
                            self.existing_start(machine_arn, &record, input_text)
                        }
                        other => other,
                    };
                }
            }
        }
        // One look at an empty map when nothing is limited.
        let limited = if express {
            None
        } else {
            self.max_running(machine_arn)
        };
        // Shared by the nodes of a cluster, the slots are claimed by the
        // start's own write (`shared_slots`).
        let claim = limited
            .filter(|_| self.shares_slots())
            .map(|max| self.new_slot_claim(&machine_record.arn, max));
        if let Some(max) = limited
            && claim.is_none()
            && !self.take_slot(machine_arn, max)
        {
            return self
                .queue_start(machine_arn, record, priority, input_text, alert)
                .await;
        }
        let slot_of = limited
            .filter(|_| claim.is_none())
            .map(|_| machine_record.arn.clone());
        let to_queue = claim
            .as_ref()
            .map(|_| (record.clone(), machine_record.arn.clone()));
        let started = self
            .start_now(
                machine_record,
                resolved.revision,
                record,
                input,
                express,
                claim,
            )
            .await;
        if let Some((record, machine_arn)) = to_queue
            && matches!(started, Err(EngineError::Store(StoreError::NoSlot { .. })))
        {
            return self
                .queue_start(&machine_arn, record, priority, input_text, alert)
                .await;
        }
        // A start that did not run (an error, or the name was taken) does
        // not hold its slot.
        if let Some(machine_arn) = slot_of
            && !matches!(started, Ok((_, true)))
        {
            self.give_back_slot(&machine_arn);
        }
        self.window_alert_outcome(alert, matches!(started, Ok((_, true))));
        started.map(|(record, _)| record)
    }

    /// Stores a start that found no slot as queued, and settles the
    /// alert of a start outside its windows (raised when it is new).
    async fn queue_start(
        &self,
        machine_arn: &str,
        record: ExecutionRecord,
        priority: i32,
        input_text: &str,
        alert: Option<Box<OutsideWindow>>,
    ) -> Result<ExecutionRecord, EngineError> {
        let (queued, new) = match self.enqueue(record.clone(), priority).await {
            Err(EngineError::Store(StoreError::ExecutionExists { .. })) => {
                (self.existing_start(machine_arn, &record, input_text), false)
            }
            other => {
                let new = other.is_ok();
                (other, new)
            }
        };
        self.window_alert_outcome(alert, new);
        queued
    }

    /// The answer to a start whose name is taken: AWS answers a start
    /// repeated with the same input while the first runs with the first
    /// one.
    fn existing_start(
        &self,
        machine_arn: &str,
        record: &ExecutionRecord,
        input_text: &str,
    ) -> Result<ExecutionRecord, EngineError> {
        match self
            .inner
            .store
            .execution_by_name(machine_arn, &record.name)?
        {
            Some(existing)
                if existing.status == ExecutionStatus::Running && existing.input == input_text =>
            {
                Ok(existing)
            }
            Some(existing) => Err(EngineError::ExecutionAlreadyExists(existing.arn)),
            None => Err(EngineError::ExecutionAlreadyExists(record.arn.clone())),
        }
    }

    /// Runs a new execution's first step and launches it; `false` with
    /// the execution that already had the name.
    async fn start_now(
        &self,
        machine_record: stepline_store::StateMachineRecord,
        revision: u64,
        record: ExecutionRecord,
        input: Value,
        express: bool,
        slot: Option<SlotClaim>,
    ) -> Result<(ExecutionRecord, bool), EngineError> {
        let machine_arn = machine_record.arn.as_str();
        let machine = self.compiled(machine_arn, revision)?;
        let info = self.info(&machine_record, &record);
        let keeping = self.keeping(express);
        let owner = self.new_lease(&record.arn);
        let reads = self.input_reads(&record.arn, &input);
        // The first step's lines (states entered) belong to the execution.
        let first_step = executor::span(&record.arn).in_scope(|| {
            DurableExecution::start(
                &*self.inner.store,
                machine,
                info,
                record.clone(),
                input,
                keeping,
                owner,
                slot,
                self.pools(),
            )
        });
        let (execution, effects) = match first_step {
            Ok(started) => started,
            // The name is taken (found by the store's check, under its
            // writer lock: one read instead of two for every start). AWS
            // answers a start repeated with the same input while the first
            // runs with the first one.
            Err(StoreError::ExecutionExists { .. }) => {
                return Ok((
                    self.existing_start(machine_arn, &record, &record.input)?,
                    false,
                ));
            }
            Err(e) => {
                // A write whose answer was lost may have been stored: the
                // execution is then resumed from the store once it answers.
                if e.is_io() {
                    self.paused(&record.arn);
                }
                return Err(e.into());
            }
        };
        // Applied before the start's flush, which makes them durable with it.
        if let Err(e) = self.record_lineage(reads) {
            tracing::warn!(execution = %record.arn, error = %e, "the files the input names could not be recorded");
        }
        // An EXPRESS execution promises nothing across a crash: no flush.
        let name = machine_record.name;
        self.launch(execution, effects, !express, move |engine, execution| {
            engine.inner.metrics.execution_started(&name);
            executor::span(&execution.record().arn).in_scope(|| {
                tracing::info!(state_machine = %name, "execution started");
                executor::count_transitions(engine, execution);
            });
        })
        .await?;
        Ok((record, true))
    }

    pub fn describe_execution(&self, arn: &str) -> Result<ExecutionRecord, EngineError> {
        off_worker(|| self.inner.store.execution(arn))?
            .ok_or_else(|| EngineError::ExecutionDoesNotExist(arn.to_owned()))
    }

    /// One page of executions (ListExecutions, the REST list): summaries
    /// from the store's listing index, newest first. A Map Run must exist.
    pub fn list_executions(&self, query: &ExecutionQuery) -> Result<ExecutionPage, EngineError> {
        if let ExecutionsOf::MapRun(arn) = &query.of {
            self.describe_map_run(arn)?;
        }
        Ok(off_worker(|| self.inner.store.list_executions(query))?)
    }

    /// The dashboard's counts of a state machine (`stepline_store::stats`):
    /// its buckets with an hour in `from..=to` that hold anything, and its
    /// all-time total. Reads the counts kept, never the executions.
    pub fn machine_stats(
        &self,
        machine_arn: &str,
        from: i64,
        to: i64,
    ) -> Result<(Vec<StatsBucket>, MachineStats), EngineError> {
        let store = &self.inner.store;
        Ok(off_worker(|| {
            Ok::<_, StoreError>((
                store.stats_hours(machine_arn, from, to)?,
                store.stats_total(machine_arn)?,
            ))
        })?)
    }

    /// Events `from..=to` of an execution's history.
    pub fn history(
        &self,
        arn: &str,
        from: u64,
        to: u64,
    ) -> Result<Vec<stepline_language::history::HistoryEvent>, EngineError> {
        self.describe_execution(arn)?;
        Ok(off_worker(|| self.inner.store.history(arn, from, to))?)
    }

    pub fn history_len(&self, arn: &str) -> Result<u64, EngineError> {
        Ok(self.inner.store.history_len(arn)?)
    }

    /// Stops a running execution (ABORTED); a closed one is left as it is.
    pub fn stop_execution(
        &self,
        arn: &str,
        error: Option<String>,
        cause: Option<String>,
    ) -> Result<(), EngineError> {
        let record = self.describe_execution(arn)?;
        if record.queued.is_some() && self.stop_queued(&record, error.clone(), cause.clone())? {
            return Ok(());
        }
        let stop = Command::Stop { error, cause };
        if let Err(Message::Command(stop)) = executor::send(self, arn, Message::Command(stop))
            && record.status == ExecutionStatus::Running
            && self.is_clustered()
        {
            // Another node runs it (or will, once it resumes it).
            self.post_command(arn, None, &stop)?;
        }
        Ok(())
    }

    /// RedriveExecution: restarts a FAILED, TIMED_OUT or ABORTED execution
    /// from the top-level state that did not succeed. Returns the record,
    /// RUNNING again with its redrive count raised, once that is durable.
    pub async fn redrive_execution(&self, arn: &str) -> Result<ExecutionRecord, EngineError> {
        let mut record = self.describe_execution(arn)?;
        let not_redrivable = |why: &str| {
            EngineError::ExecutionNotRedrivable(format!(
                "Execution '{arn}' cannot be redriven: {why}"
            ))
        };
        match record.status {
            ExecutionStatus::Failed | ExecutionStatus::TimedOut | ExecutionStatus::Aborted => {}
            ExecutionStatus::Running => return Err(not_redrivable("it is still running")),
            ExecutionStatus::Succeeded => return Err(not_redrivable("it succeeded")),
        }
        // The record reads closed a moment before its executor lets go of
        // the execution; a client that saw ABORTED and redrives at once
        // is right to, so wait that moment out (bounded) rather than
        // refuse.
        let deadline = tokio::time::Instant::now() + CLOSING_WAIT;
        while lock(&self.inner.live).contains_key(arn) {
            if tokio::time::Instant::now() >= deadline {
                return Err(not_redrivable("it is still closing"));
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let (machine_record, machine, info) = self.definition_of(&record)?;
        let express_child = record.map_run.as_ref().is_some_and(|c| c.express);
        if machine_record.workflow_type == WorkflowType::Express || express_child {
            return Err(not_redrivable("EXPRESS executions are not redriven"));
        }
        let (mut execution, _) = DurableExecution::recover(
            &*self.inner.store,
            machine,
            info,
            record.clone(),
            self.end_notices(),
            None,
            self.pools(),
        )?;
        if !execution.execution().can_redrive() {
            return Err(not_redrivable("it failed before running any state"));
        }
        record.status = ExecutionStatus::Running;
        record.stop = None;
        record.output = None;
        record.error = None;
        record.cause = None;
        record.redrive_count += 1;
        let owner = self.redrive_lease(arn)?;
        let effects = execution.redrive(
            &*self.inner.store,
            self.inner.clock.now(),
            record.clone(),
            owner,
        )?;
        self.slot_taken_by_redrive(&record);
        self.launch(execution, effects, true, |_, _| {}).await?;
        Ok(record)
    }

    /// Waits until an execution has ended (nested executions, Map Run
    /// children, file triggers, StartSyncExecution).
    pub async fn wait_for(&self, arn: &str) -> Result<ExecutionRecord, EngineError> {
        let mut poll = NOT_LIVE_POLL_FIRST;
        loop {
            // Registered before the check, so an end in between is not missed.
            let (done, ended) = oneshot::channel();
            lock(&self.inner.waiters)
                .entry(arn.to_owned())
                .or_default()
                .push(done);
            let record = self.describe_execution(arn)?;
            if record.status != ExecutionStatus::Running {
                // Other waiters of an ended execution see the error and
                // look again; nothing is left registered.
                lock(&self.inner.waiters).remove(arn);
                return Ok(record);
            }
            // An execution that is not live here (it paused on a storage
            // error, or another node of a cluster runs it) never signals
            // here: poll it, less often the longer it runs, so that many
            // parents waiting on long children cost the store little.
            if !lock(&self.inner.live).contains_key(arn) {
                drop(ended);
                self.forget_closed_waiters(arn);
                tokio::time::sleep(poll).await;
                poll = (poll * 2).min(NOT_LIVE_POLL_MAX);
                continue;
            }
            let _ = ended.await;
        }
    }

    /// Drops the registrations of waiters that stopped waiting on `arn`.
    fn forget_closed_waiters(&self, arn: &str) {
        let mut waiters = lock(&self.inner.waiters);
        if let Some(waiting) = waiters.get_mut(arn) {
            waiting.retain(|done| !done.is_closed());
            if waiting.is_empty() {
                waiters.remove(arn);
            }
        }
    }

    /// The task logs an execution keeps, oldest first.
    pub fn task_logs(&self, arn: &str) -> Result<Vec<TaskLogRecord>, EngineError> {
        self.describe_execution(arn)?;
        Ok(self.inner.store.task_logs(arn)?)
    }
}

//! An execution whose every step is recorded in a [`Store`] before the world
//! sees it, and that can be rebuilt after a crash.
//!
//! Each command is applied to the interpreter, then written as one atomic
//! batch: the journal entry, the new history events, the timers started or
//! cleared, and the execution record when it ends. The caller flushes the
//! store (one flush for many executions: group commit) before carrying out
//! the effects, so nothing outside the process ever depends on something
//! the store could lose.
//!
//! Recovery is the fold of the journal through the interpreter: the same
//! commands give the same state, history and effects. What the fold leaves
//! outstanding (tasks invoked but never answered, timers not yet fired) is
//! handed back to be carried out again: a task may run twice across a
//! crash, never zero times, as on AWS. Its idempotency key is stable.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;

use stepline_language::asl::StateMachine;
use stepline_language::interp::{
    Command, Effect, Execution, ExecutionInfo, Status, TaskId, TaskRequest, TimerId,
};
use stepline_store::{
    ExecutionRecord, ExecutionStatus, JournalCacheHit, JournalCommand, JournalEntry,
    JournalPoolWait, Lease, MachineStats, SlotClaim, StatsDelta, Store, StoreError,
    TaskTokenRecord, TimerRecord, WriteBatch, WriteOp,
};

/// The dashboard's count of an execution that ended outside of a step
/// (recovery gave it up): its end, in the batch that closes it.
pub(crate) fn ended_stats(record: &ExecutionRecord) -> Option<WriteOp> {
    let stop = record.stop.unwrap_or(record.start);
    StatsDelta::of(record, stop, MachineStats::end(record)).map(WriteOp::AddStats)
}

/// An execution bound to the store that keeps it.
#[derive(Debug)]
pub struct DurableExecution {
    execution: Execution,
    record: ExecutionRecord,
    /// The last journal entry written.
    journal_seq: u64,
    /// States entered by the last `apply` (the transitions metric).
    entered_last_step: usize,
    /// Timers started and not yet fired or cancelled, with their due time
    /// (the store's timer keys need it).
    timers: BTreeMap<TimerId, DateTime<Utc>>,
    /// Tokens of tasks still waiting for an answer (kept in the store so a
    /// callback finds its execution).
    tokens: BTreeMap<TaskId, String>,
    keeping: Keeping,
    /// The lease this node holds on it (several nodes on one store): every
    /// batch is fenced with it, so once another node takes the execution
    /// over, this one's writes are refused.
    owner: Option<Lease>,
    /// The pools of slots: a pooled task starts once it has its slot
    /// (the executor records its start), not with the step that
    /// scheduled it.
    pools: Arc<crate::pools::Pools>,
}

/// How an execution is kept in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keeping {
    /// STANDARD: every step's journal entry, history and timers, so a
    /// restart resumes it. `end_notice`: its end writes a notice, removed
    /// once the ended observers (alerts) are done with it, so a crash
    /// between the end and its announcement does not lose the announcement;
    /// with no observers there is nothing to announce and no notice.
    Durable { end_notice: bool },
    /// EXPRESS: only its record (at the start and the end) and its task
    /// tokens are written; no journal, history or timers, so it is not
    /// resumed after a restart (at-most-once, as AWS).
    Volatile,
}

/// What a recovered execution still has to do.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outstanding {
    /// Tasks invoked (perhaps) but never answered: invoke them again.
    pub tasks: Vec<TaskRequest>,
    /// Timers started and neither fired nor cancelled.
    pub timers: Vec<(TimerId, DateTime<Utc>)>,
    /// Outstanding tasks whose start was recorded (an activity task a
    /// worker took holds its token: it is not offered again).
    pub started: Vec<TaskId>,
    /// Outstanding `.waitForTaskToken` tasks whose request was accepted
    /// (TaskSubmitted): they wait for their callback, not invoked again.
    pub submitted: Vec<TaskId>,
}

/// The key a task invocation keeps across retries of the same attempt and
/// across crashes: the execution and the task's id in it.
pub fn idempotency_key(execution_arn: &str, task: TaskId) -> String {
    format!("{execution_arn}#{}", task.0)
}

impl DurableExecution {
    /// Starts a new execution: its record (the name must be free), the Start
    /// command and the first events, in one batch; with `slot`, the batch
    /// claims a slot of a shared `max_running` first.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        store: &dyn Store,
        machine: Arc<StateMachine>,
        info: ExecutionInfo,
        record: ExecutionRecord,
        input: Value,
        keeping: Keeping,
        owner: Option<Lease>,
        slot: Option<SlotClaim>,
        pools: Arc<crate::pools::Pools>,
    ) -> Result<(Self, Vec<Effect>), StoreError> {
        let now = record.start;
        let create = WriteOp::CreateExecution(record.clone());
        Self::begin(
            store, machine, info, record, input, keeping, owner, create, now, slot, pools,
        )
    }

    /// Starts an execution that waited in its state machine's queue: its
    /// record is stored already (and loses its queued mark in the same
    /// batch as the first events); the run begins `now`.
    #[allow(clippy::too_many_arguments)]
    pub fn start_queued(
        store: &dyn Store,
        machine: Arc<StateMachine>,
        info: ExecutionInfo,
        mut record: ExecutionRecord,
        input: Value,
        owner: Option<Lease>,
        end_notice: bool,
        now: DateTime<Utc>,
        slot: Option<SlotClaim>,
        pools: Arc<crate::pools::Pools>,
    ) -> Result<(Self, Vec<Effect>), StoreError> {
        record.queued = None;
        let update = WriteOp::UpdateExecution(record.clone());
        let keeping = Keeping::Durable { end_notice };
        Self::begin(
            store, machine, info, record, input, keeping, owner, update, now, slot, pools,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn begin(
        store: &dyn Store,
        machine: Arc<StateMachine>,
        info: ExecutionInfo,
        record: ExecutionRecord,
        input: Value,
        keeping: Keeping,
        owner: Option<Lease>,
        write_record: WriteOp,
        now: DateTime<Utc>,
        slot: Option<SlotClaim>,
        pools: Arc<crate::pools::Pools>,
    ) -> Result<(Self, Vec<Effect>), StoreError> {
        let mut this = Self {
            execution: Execution::new(machine, info, record.seed)
                .with_token_secret(&record.token_secret),
            record,
            journal_seq: 0,
            entered_last_step: 0,
            timers: BTreeMap::new(),
            tokens: BTreeMap::new(),
            keeping,
            owner: None,
            pools,
        };
        let mut batch = this.new_batch();
        // A shared max_running's slot, claimed first (see `SlotClaim`).
        if let Some(slot) = slot {
            batch.push(WriteOp::TakeSlot(slot));
        }
        // A queued execution's start was counted when it was queued.
        let created = matches!(write_record, WriteOp::CreateExecution(_));
        batch.push(write_record);
        let started = this.record.start;
        if created && let Some(delta) = StatsDelta::of(&this.record, started, MachineStats::start())
        {
            batch.push(WriteOp::AddStats(delta));
        }
        if let Some(lease) = owner {
            batch.push(WriteOp::PutLease(lease.clone()));
            // An EXPRESS execution is leased only so that no other node
            // takes it for an orphan while it runs; its writes promise
            // nothing across a crash, and are not fenced.
            if !this.is_volatile() {
                this.owner = Some(lease);
            }
        }
        let effects = this.step(&mut batch, now, Command::Start { input });
        this.start_tasks(&mut batch, now, &effects);
        store.apply(&batch)?;
        Ok((this, effects))
    }

    /// Rebuilds a stored execution by folding its journal, and says what it
    /// still has to do. `end_notice` as in [`Keeping::Durable`].
    pub fn recover(
        store: &dyn Store,
        machine: Arc<StateMachine>,
        info: ExecutionInfo,
        record: ExecutionRecord,
        end_notice: bool,
        owner: Option<Lease>,
        pools: Arc<crate::pools::Pools>,
    ) -> Result<(Self, Outstanding), StoreError> {
        let journal = store.journal(&record.arn)?;
        let mut execution =
            Execution::new(machine, info, record.seed).with_token_secret(&record.token_secret);
        let mut tasks: BTreeMap<TaskId, TaskRequest> = BTreeMap::new();
        let mut timers: BTreeMap<TimerId, DateTime<Utc>> = BTreeMap::new();
        let mut started = Vec::new();
        let mut submitted = Vec::new();
        let mut journal_seq = 0;
        for entry in journal {
            journal_seq = entry.seq;
            let command = interp_command(entry.command);
            match &command {
                Command::TaskStarted { task, .. } => started.push(*task),
                Command::TaskSubmitted { task, .. } => submitted.push(*task),
                Command::TaskSucceeded { task, .. } | Command::TaskFailed { task, .. } => {
                    tasks.remove(task);
                }
                Command::TimerFired { timer } => {
                    timers.remove(timer);
                }
                _ => {}
            }
            for effect in execution.apply(entry.at, command) {
                match effect {
                    Effect::InvokeTask(request) => {
                        tasks.insert(request.task, *request);
                    }
                    Effect::CancelTask { task } => {
                        tasks.remove(&task);
                    }
                    Effect::StartTimer { timer, due } => {
                        timers.insert(timer, due);
                    }
                    Effect::CancelTimer { timer } => {
                        timers.remove(&timer);
                    }
                }
            }
        }
        let stored = store.history_len(&record.arn)?;
        let replayed = execution.event_count();
        // Replayed events are in the store already.
        drop(execution.take_history());
        if stored != replayed {
            return Err(StoreError::Corrupt(format!(
                "replaying the journal of {} gives {replayed} history events, but {stored} are stored",
                record.arn
            )));
        }
        let tokens = tasks
            .values()
            .filter_map(|t| Some((t.task, t.token.clone()?)))
            .collect();
        started.retain(|t| tasks.contains_key(t));
        submitted.retain(|t| tasks.contains_key(t));
        let outstanding = Outstanding {
            tasks: tasks.into_values().collect(),
            timers: timers.iter().map(|(t, due)| (*t, *due)).collect(),
            started,
            submitted,
        };
        Ok((
            Self {
                execution,
                record,
                journal_seq,
                entered_last_step: 0,
                timers,
                tokens,
                keeping: Keeping::Durable { end_notice },
                owner,
                pools,
            },
            outstanding,
        ))
    }

    /// Applies one command and stores what it did, atomically. Flush the
    /// store before carrying out the returned effects.
    pub fn apply(
        &mut self,
        store: &dyn Store,
        now: DateTime<Utc>,
        command: Command,
    ) -> Result<Vec<Effect>, StoreError> {
        self.apply_with(store, now, command, Vec::new())
    }

    /// [`DurableExecution::apply`], with `also` written in the same batch
    /// (the removal of the message that brought the command, the cache
    /// entry and the lineage a task's result makes).
    pub fn apply_with(
        &mut self,
        store: &dyn Store,
        now: DateTime<Utc>,
        command: Command,
        also: Vec<WriteOp>,
    ) -> Result<Vec<Effect>, StoreError> {
        let mut batch = self.new_batch();
        batch.ops.extend(also);
        self.entered_last_step = 0;
        let effects = self.step(&mut batch, now, command);
        self.start_tasks(&mut batch, now, &effects);
        store.apply(&batch)?;
        Ok(effects)
    }

    /// Records TaskStarted for the tasks a step schedules, in the step's
    /// own batch (one write instead of two per task). Activity tasks start
    /// when a worker takes them, and pooled tasks when they have their
    /// slot, not here.
    fn start_tasks(&mut self, batch: &mut WriteBatch, now: DateTime<Utc>, effects: &[Effect]) {
        for effect in effects {
            if let Effect::InvokeTask(request) = effect {
                if !matches!(
                    request.resource.kind,
                    stepline_language::asl::model::ResourceKind::Activity { .. }
                ) && self.pools.pool_of(request).is_none()
                {
                    let started = Command::TaskStarted {
                        task: request.task,
                        worker_name: None,
                        pool: None,
                    };
                    self.step(batch, now, started);
                }
            }
        }
    }

    /// Applies a Redrive with `record` (RUNNING again) written in the same
    /// batch, and `owner` as its new lease. Flush before carrying out the
    /// effects.
    pub fn redrive(
        &mut self,
        store: &dyn Store,
        now: DateTime<Utc>,
        record: ExecutionRecord,
        owner: Option<Lease>,
    ) -> Result<Vec<Effect>, StoreError> {
        let mut batch = WriteBatch::new();
        if let Some(lease) = owner {
            batch.push(WriteOp::PutLease(lease.clone()));
            self.owner = Some(lease);
        }
        self.record = record;
        batch.push(WriteOp::UpdateExecution(self.record.clone()));
        if let Some(delta) = StatsDelta::of(&self.record, now, MachineStats::redrive()) {
            batch.push(WriteOp::AddStats(delta));
        }
        let effects = self.step(&mut batch, now, Command::Redrive);
        store.apply(&batch)?;
        Ok(effects)
    }

    /// An EXPRESS execution promises nothing across a crash: its writes
    /// need not be atomic either.
    fn new_batch(&self) -> WriteBatch {
        let mut batch = if self.is_volatile() {
            WriteBatch::relaxed()
        } else {
            WriteBatch::new()
        };
        if let Some(lease) = &self.owner {
            batch.push(WriteOp::Fence(lease.clone()));
        }
        batch
    }

    /// Whether this is an EXPRESS execution (its steps need no flush).
    pub fn is_volatile(&self) -> bool {
        self.keeping == Keeping::Volatile
    }

    /// Whether its end writes an ended notice (see [`Keeping::Durable`]).
    pub fn writes_end_notice(&self) -> bool {
        self.keeping == Keeping::Durable { end_notice: true }
    }

    /// The epoch of the lease this node runs it with, if leased.
    pub fn lease_epoch(&self) -> Option<u64> {
        self.owner.as_ref().map(|l| l.epoch)
    }

    pub fn record(&self) -> &ExecutionRecord {
        &self.record
    }

    pub fn execution(&self) -> &Execution {
        &self.execution
    }

    /// How many states the last step entered.
    pub fn entered_last_step(&self) -> usize {
        self.entered_last_step
    }

    /// Applies a command and describes its consequences in `batch`.
    fn step(
        &mut self,
        batch: &mut WriteBatch,
        now: DateTime<Utc>,
        command: Command,
    ) -> Vec<Effect> {
        let arn = self.record.arn.clone();
        // What an EXPRESS execution leaves out: the journal, the history
        // and the timers (it is never replayed).
        let durable = !self.is_volatile();
        if durable {
            self.journal_seq += 1;
            batch.push(WriteOp::AppendJournal {
                execution: arn.clone(),
                entries: vec![JournalEntry {
                    seq: self.journal_seq,
                    at: now,
                    command: journal_command(&command),
                }],
            });
        }
        if let Command::TimerFired { timer } = &command {
            if let Some(due) = self.timers.remove(timer) {
                batch.push(WriteOp::RemoveTimer(TimerRecord {
                    due,
                    execution: arn.clone(),
                    timer: timer.0,
                }));
            }
        }
        if let Command::TaskSucceeded { task, .. } | Command::TaskFailed { task, .. } = &command {
            if let Some(token) = self.tokens.remove(task) {
                batch.push(WriteOp::RemoveTaskToken(token));
            }
        }
        let effects = self.execution.apply(now, command);
        let events = self.execution.take_history();
        for event in &events {
            if let stepline_language::history::Event::StateEntered { name, .. } = &event.event {
                self.entered_last_step += 1;
                tracing::debug!(state = %name, "state entered");
            }
        }
        if durable && !events.is_empty() {
            // One history run per batch: the events of the steps a batch
            // carries (a step and the TaskStarted of its tasks) continue
            // each other, and sled's cost is per key written.
            let run = batch.ops.iter_mut().find_map(|op| match op {
                WriteOp::AppendHistory { execution, events } if *execution == arn => Some(events),
                _ => None,
            });
            match run {
                Some(run) => run.extend(events),
                None => {
                    batch.push(WriteOp::AppendHistory {
                        execution: arn.clone(),
                        events,
                    });
                }
            }
        }
        for effect in &effects {
            match effect {
                Effect::StartTimer { timer, due } if durable => {
                    batch.push(WriteOp::PutTimer(TimerRecord {
                        due: *due,
                        execution: arn.clone(),
                        timer: timer.0,
                    }));
                    self.timers.insert(*timer, *due);
                }
                Effect::StartTimer { .. } => {}
                Effect::CancelTimer { timer } => {
                    if let Some(due) = self.timers.remove(timer) {
                        batch.push(WriteOp::RemoveTimer(TimerRecord {
                            due,
                            execution: arn.clone(),
                            timer: timer.0,
                        }));
                    }
                }
                Effect::InvokeTask(request) => {
                    if let Some(token) = &request.token {
                        batch.push(WriteOp::PutTaskToken(TaskTokenRecord {
                            token: token.clone(),
                            execution: arn.clone(),
                            task: request.task.0,
                        }));
                        self.tokens.insert(request.task, token.clone());
                    }
                }
                Effect::CancelTask { task } => {
                    if let Some(token) = self.tokens.remove(task) {
                        batch.push(WriteOp::RemoveTaskToken(token));
                    }
                }
            }
        }
        if let Some(done) = self.finished_record(now) {
            if let Some(delta) = StatsDelta::of(&done, now, MachineStats::end(&done)) {
                batch.push(WriteOp::AddStats(delta));
            }
            batch.push(WriteOp::UpdateExecution(done));
            // The end is announced (alerts) from this notice, written with
            // it, so a crash before the announcement does not lose it.
            if self.writes_end_notice() {
                batch.push(WriteOp::PutEndedNotice(arn.clone()));
            }
            for (_, token) in std::mem::take(&mut self.tokens) {
                batch.push(WriteOp::RemoveTaskToken(token));
            }
        }
        effects
    }

    /// The execution record once the execution has ended.
    fn finished_record(&mut self, now: DateTime<Utc>) -> Option<ExecutionRecord> {
        if self.record.status != ExecutionStatus::Running {
            return None;
        }
        let (status, output, failure) = match self.execution.status() {
            Status::Running => return None,
            Status::Succeeded { output } => {
                (ExecutionStatus::Succeeded, Some(output.to_string()), None)
            }
            Status::Failed(f) => (ExecutionStatus::Failed, None, Some(f.clone())),
            Status::Aborted(f) => (ExecutionStatus::Aborted, None, Some(f.clone())),
            Status::TimedOut(f) => (ExecutionStatus::TimedOut, None, Some(f.clone())),
        };
        self.record.status = status;
        self.record.stop = Some(now);
        self.record.output = output;
        if let Some(f) = failure {
            self.record.error = f.error;
            self.record.cause = f.cause;
        }
        Some(self.record.clone())
    }
}

/// The journal's form of a command: the store owns the journal's format,
/// so the interpreter's types never reach the disk.
pub(crate) fn journal_command(command: &Command) -> JournalCommand {
    match command.clone() {
        Command::Start { input } => JournalCommand::Start { input },
        Command::TaskStarted {
            task,
            worker_name,
            pool,
        } => JournalCommand::TaskStarted {
            task: task.0,
            worker_name,
            pool: pool.map(|wait| JournalPoolWait {
                name: wait.name,
                waited_ms: wait.waited_ms,
            }),
        },
        Command::TaskSubmitted { task, output } => JournalCommand::TaskSubmitted {
            task: task.0,
            output,
        },
        Command::TaskHeartbeat { task } => JournalCommand::TaskHeartbeat { task: task.0 },
        Command::TaskSucceeded {
            task,
            output,
            cached,
        } => JournalCommand::TaskSucceeded {
            task: task.0,
            output,
            cached: cached.map(|hit| JournalCacheHit {
                key: hit.key,
                execution_arn: hit.execution_arn,
                stored: hit.stored,
                expires: hit.expires,
            }),
        },
        Command::TaskFailed { task, error, cause } => JournalCommand::TaskFailed {
            task: task.0,
            error,
            cause,
        },
        Command::TimerFired { timer } => JournalCommand::TimerFired { timer: timer.0 },
        Command::Stop { error, cause } => JournalCommand::Stop { error, cause },
        Command::Redrive => JournalCommand::Redrive,
    }
}

/// The interpreter's command a journal entry records.
pub(crate) fn interp_command(command: JournalCommand) -> Command {
    match command {
        JournalCommand::Start { input } => Command::Start { input },
        JournalCommand::TaskStarted {
            task,
            worker_name,
            pool,
        } => Command::TaskStarted {
            task: TaskId(task),
            worker_name,
            pool: pool.map(|wait| {
                Box::new(stepline_language::history::PoolWait {
                    name: wait.name,
                    waited_ms: wait.waited_ms,
                })
            }),
        },
        JournalCommand::TaskSubmitted { task, output } => Command::TaskSubmitted {
            task: TaskId(task),
            output,
        },
        JournalCommand::TaskHeartbeat { task } => Command::TaskHeartbeat { task: TaskId(task) },
        JournalCommand::TaskSucceeded {
            task,
            output,
            cached,
        } => Command::TaskSucceeded {
            task: TaskId(task),
            output,
            cached: cached.map(|hit| {
                Box::new(stepline_language::history::CacheHit {
                    key: hit.key,
                    execution_arn: hit.execution_arn,
                    stored: hit.stored,
                    expires: hit.expires,
                })
            }),
        },
        JournalCommand::TaskFailed { task, error, cause } => Command::TaskFailed {
            task: TaskId(task),
            error,
            cause,
        },
        JournalCommand::TimerFired { timer } => Command::TimerFired {
            timer: TimerId(timer),
        },
        JournalCommand::Stop { error, cause } => Command::Stop { error, cause },
        JournalCommand::Redrive => Command::Redrive,
    }
}

#[cfg(test)]
mod tests {
    //! Crash and recovery: an execution stopped after any number of steps
    //! and rebuilt from the sled store ends exactly as an uninterrupted one.

    use std::collections::{BTreeMap, HashMap};
    use std::path::PathBuf;
    use std::sync::Arc;

    use chrono::{DateTime, Duration, TimeZone, Utc};
    use serde_json::{Value, json};

    use super::{
        DurableExecution, Keeping, Outstanding, idempotency_key, interp_command, journal_command,
    };
    use stepline_language::asl::{self, StateMachine};
    use stepline_language::interp::{
        Command, Effect, ExecutionInfo, Status, TaskId, TaskRequest, TimerId,
    };
    use stepline_store::{
        ExecutionRecord, ExecutionStatus, Executions, Histories, JournalCommand, JournalEntry,
        Journals, SledStore, Store, Timers,
    };

    const DEFINITION: &str = r#"{
      "StartAt": "Prepare",
      "States": {
        "Prepare": {"Type": "Pass", "Parameters": {"items.$": "$.items", "id.$": "States.UUID()"}, "Next": "Charge"},
        "Charge": {"Type": "Task", "Resource": "arn:aws:states:::http:invoke",
                   "Retry": [{"ErrorEquals": ["Flaky"], "IntervalSeconds": 2, "MaxAttempts": 2}],
                   "ResultPath": "$.charge", "Next": "Cool"},
        "Cool": {"Type": "Wait", "Seconds": 10, "Next": "Each"},
        "Each": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 2,
                 "ItemProcessor": {"StartAt": "Ship", "States": {
                   "Ship": {"Type": "Task", "Resource": "stepline:process:ship", "End": true}}},
                 "ResultPath": "$.shipped", "Next": "Done"},
        "Done": {"Type": "Succeed"}
      }
    }"#;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .expect("date")
    }

    const DURABLE: Keeping = Keeping::Durable { end_notice: true };

    fn machine() -> Arc<StateMachine> {
        Arc::new(asl::validate(DEFINITION.as_bytes()).machine.expect("valid"))
    }

    fn info() -> ExecutionInfo {
        ExecutionInfo {
            execution_arn: "arn:aws:states:us-east-1:111111111111:execution:m:e".into(),
            name: "e".into(),
            role_arn: "arn:aws:iam::111111111111:role/r".into(),
            state_machine_arn: "arn:aws:states:us-east-1:111111111111:stateMachine:m".into(),
            state_machine_name: "m".into(),
            start_time: t0(),
            region: "us-east-1".into(),
            redrive_count: 0,
        }
    }

    fn record() -> ExecutionRecord {
        let info = info();
        ExecutionRecord {
            arn: info.execution_arn,
            state_machine_arn: info.state_machine_arn,
            revision: 1,
            name: info.name,
            input: r#"{"items": [1, 2, 3]}"#.into(),
            status: ExecutionStatus::Running,
            start: t0(),
            stop: None,
            output: None,
            error: None,
            cause: None,
            seed: 42,
            redrive_count: 0,
            token_secret: "durable-test-secret".into(),
            test_case: None,
            map_run: None,
            queued: None,
        }
    }

    fn temp_dir(label: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("stepline-durable-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// The outside world: answers tasks (the first Charge fails with
    /// Flaky) and counts invocations by idempotency key.
    #[derive(Default)]
    struct World {
        calls: HashMap<String, u32>,
        charges: u32,
    }

    impl World {
        fn answer(&mut self, request: &TaskRequest) -> Command {
            let key = idempotency_key(&info().execution_arn, request.task);
            *self.calls.entry(key).or_default() += 1;
            if request.state_name == "Charge" {
                self.charges += 1;
                if request.attempt == 0 {
                    return Command::TaskFailed {
                        task: request.task,
                        error: Some("Flaky".into()),
                        cause: Some("try again".into()),
                    };
                }
                return Command::TaskSucceeded {
                    task: request.task,
                    output: json!({"paid": true}),
                    cached: None,
                };
            }
            Command::TaskSucceeded {
                task: request.task,
                output: json!({"shipped": request.input}),
                cached: None,
            }
        }
    }

    /// Work waiting to be done for the execution.
    #[derive(Default)]
    struct Pending {
        tasks: Vec<TaskRequest>,
        timers: BTreeMap<(DateTime<Utc>, TimerId), ()>,
    }

    impl Pending {
        fn absorb(&mut self, effects: Vec<Effect>) {
            for effect in effects {
                match effect {
                    Effect::InvokeTask(request) => self.tasks.push(*request),
                    Effect::StartTimer { timer, due } => {
                        self.timers.insert((due, timer), ());
                    }
                    Effect::CancelTask { task } => self.tasks.retain(|t| t.task != task),
                    Effect::CancelTimer { timer } => self.timers.retain(|(_, t), _| *t != timer),
                }
            }
        }

        fn from_outstanding(outstanding: Outstanding) -> Self {
            let mut pending = Self {
                tasks: outstanding.tasks,
                ..Self::default()
            };
            for (timer, due) in outstanding.timers {
                pending.timers.insert((due, timer), ());
            }
            pending
        }
    }

    /// Drives the execution for at most `budget` commands (None: to the
    /// end); flushes after every step, as the durability contract says.
    fn drive(
        store: &SledStore,
        execution: &mut DurableExecution,
        pending: &mut Pending,
        world: &mut World,
        now: &mut DateTime<Utc>,
        budget: Option<usize>,
        die_mid_task: bool,
    ) {
        let mut used = 0;
        while !execution.execution().is_finished() && budget.is_none_or(|b| used < b) {
            let command = if !pending.tasks.is_empty() {
                let request = pending.tasks.remove(0);
                world.answer(&request)
            } else if let Some(((due, timer), ())) = pending.timers.pop_first() {
                *now = (*now).max(due);
                Command::TimerFired { timer }
            } else {
                panic!("the execution waits for nothing");
            };
            *now += Duration::milliseconds(5);
            let effects = execution.apply(store, *now, command).expect("apply");
            store.flush().expect("flush");
            pending.absorb(effects);
            used += 1;
        }
        if die_mid_task && !execution.execution().is_finished() && !pending.tasks.is_empty() {
            // The task runs, but the process dies before its answer is
            // recorded: after recovery it must run again.
            let request = pending.tasks.remove(0);
            world.answer(&request);
        }
    }

    fn types(store: &SledStore) -> Vec<&'static str> {
        let arn = info().execution_arn;
        let len = store.history_len(&arn).expect("len");
        store
            .history(&arn, 1, len)
            .expect("history")
            .iter()
            .map(|e| e.event.type_name())
            .collect()
    }

    fn start(store: &SledStore) -> (DurableExecution, Pending) {
        let input: Value = serde_json::from_str(&record().input).expect("input");
        let (execution, effects) = DurableExecution::start(
            store,
            machine(),
            info(),
            record(),
            input,
            DURABLE,
            None,
            None,
            Default::default(),
        )
        .expect("start");
        store.flush().expect("flush");
        let mut pending = Pending::default();
        pending.absorb(effects);
        (execution, pending)
    }

    #[test]
    fn a_crash_after_any_step_loses_nothing_and_repeats_at_most_the_task_in_flight() {
        // The uninterrupted run.
        let dir = temp_dir("reference");
        let (reference_types, reference_output, reference_calls, steps) = {
            let store = SledStore::open(&dir).expect("open");
            let (mut execution, mut pending) = start(&store);
            let mut world = World::default();
            let mut now = t0();
            let arn = info().execution_arn;
            // Commands the driver applies (TaskStarted rides in their batches).
            let applied = |store: &SledStore| {
                store
                    .journal(&arn)
                    .expect("journal")
                    .iter()
                    .filter(|e| !matches!(e.command, JournalCommand::TaskStarted { .. }))
                    .count()
            };
            let before = applied(&store);
            drive(
                &store,
                &mut execution,
                &mut pending,
                &mut world,
                &mut now,
                None,
                false,
            );
            let stored = store
                .execution(&info().execution_arn)
                .expect("read")
                .expect("record");
            assert_eq!(stored.status, ExecutionStatus::Succeeded);
            let steps = applied(&store) - before;
            (types(&store), stored.output, world.calls.len(), steps)
        };
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            steps >= 7,
            "the scenario should have many steps, has {steps}"
        );

        for (crash_after, die_mid_task) in (0..steps).flat_map(|k| [(k, false), (k, true)]) {
            let dir = temp_dir(&format!("crash-{crash_after}-{die_mid_task}"));
            let mut world = World::default();
            let mut now = t0();
            {
                let store = SledStore::open(&dir).expect("open");
                let (mut execution, mut pending) = start(&store);
                drive(
                    &store,
                    &mut execution,
                    &mut pending,
                    &mut world,
                    &mut now,
                    Some(crash_after),
                    die_mid_task,
                );
                // The process dies here: memory is gone, the store stays.
            }
            let store = SledStore::open(&dir).expect("reopen");
            let open = store.open_executions().expect("open executions");
            assert_eq!(
                open.len(),
                1,
                "crash after {crash_after}: the execution is still open"
            );
            let (mut execution, outstanding) = DurableExecution::recover(
                &store,
                machine(),
                info(),
                open[0].clone(),
                true,
                None,
                Default::default(),
            )
            .expect("recover");
            // Stored timers agree with what the replay says is pending.
            let stored_timers = store.timers_of(&info().execution_arn).expect("timers");
            assert_eq!(
                stored_timers
                    .iter()
                    .map(|t| (t.timer, t.due))
                    .collect::<Vec<_>>(),
                outstanding
                    .timers
                    .iter()
                    .map(|(t, due)| (t.0, *due))
                    .collect::<Vec<_>>(),
                "crash after {crash_after}"
            );
            let mut pending = Pending::from_outstanding(outstanding);
            drive(
                &store,
                &mut execution,
                &mut pending,
                &mut world,
                &mut now,
                None,
                false,
            );
            let stored = store
                .execution(&info().execution_arn)
                .expect("read")
                .expect("record");
            assert_eq!(
                stored.status,
                ExecutionStatus::Succeeded,
                "crash after {crash_after}"
            );
            assert_eq!(stored.output, reference_output, "crash after {crash_after}");
            assert_eq!(types(&store), reference_types, "crash after {crash_after}");
            assert!(matches!(
                execution.execution().status(),
                Status::Succeeded { .. }
            ));
            // Every task ran; none more than twice (once more at most, for
            // the one in flight at the crash).
            assert_eq!(
                world.calls.len(),
                reference_calls,
                "crash after {crash_after}"
            );
            let repeated: Vec<_> = world.calls.values().filter(|&&n| n > 1).collect();
            assert!(
                repeated.len() <= 1 && repeated.iter().all(|&&n| n == 2),
                "crash after {crash_after}: {:?}",
                world.calls
            );
            assert!(
                store
                    .timers_of(&info().execution_arn)
                    .expect("timers")
                    .is_empty()
            );
            drop(store);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    /// Every command, with the fields that may be absent both present and
    /// absent.
    fn every_command() -> Vec<Command> {
        vec![
            Command::Start {
                input: json!({"b": 1, "a": [true, null, 2.5, "x"]}),
            },
            Command::TaskStarted {
                task: TaskId(1),
                worker_name: None,
                pool: None,
            },
            Command::TaskStarted {
                task: TaskId(2),
                worker_name: Some("worker-7".into()),
                pool: None,
            },
            Command::TaskSubmitted {
                task: TaskId(3),
                output: json!({"ExecutionArn": "arn:x"}),
            },
            Command::TaskHeartbeat { task: TaskId(4) },
            Command::TaskSucceeded {
                task: TaskId(u64::MAX),
                output: json!("done"),
                cached: None,
            },
            Command::TaskFailed {
                task: TaskId(5),
                error: None,
                cause: None,
            },
            Command::TaskFailed {
                task: TaskId(6),
                error: Some("Flaky".into()),
                cause: Some("try \"again\"".into()),
            },
            Command::TimerFired { timer: TimerId(7) },
            Command::Stop {
                error: None,
                cause: None,
            },
            Command::Stop {
                error: Some("Halt".into()),
                cause: Some("by hand".into()),
            },
            Command::Redrive,
        ]
    }

    /// The journal entry as builds before the store's own journal types
    /// wrote it: the interpreter's `Command` through its own serde.
    #[derive(serde::Serialize, serde::Deserialize)]
    struct EntryAsBefore {
        seq: u64,
        at: DateTime<Utc>,
        command: Command,
    }

    /// The store's journal types write the very bytes the interpreter's
    /// `Command` wrote when the journal stored it, for every command, and
    /// convert back to the same command.
    #[test]
    fn the_journal_writes_the_bytes_it_wrote_before() {
        for (seq, command) in every_command().into_iter().enumerate() {
            let seq = seq as u64 + 1;
            let at = t0() + Duration::milliseconds(seq as i64);
            let before = serde_json::to_string(&EntryAsBefore {
                seq,
                at,
                command: command.clone(),
            })
            .expect("old path");
            let now = serde_json::to_string(&JournalEntry {
                seq,
                at,
                command: journal_command(&command),
            })
            .expect("new path");
            assert_eq!(now, before, "{command:?}");
            // And what was written before reads back as the same command.
            let read: JournalEntry = serde_json::from_str(&before).expect("read back");
            assert_eq!((read.seq, read.at), (seq, at));
            assert_eq!(interp_command(read.command), command);
        }
    }

    /// An entry as a data directory of an earlier build holds it (bytes
    /// taken from one) reads back through the store and the conversion.
    #[test]
    fn an_entry_written_by_an_earlier_build_reads_back() {
        let stored = [
            (
                r#"{"seq":1,"at":"2026-01-01T00:00:00Z","command":{"Start":{"input":{"items":[1,2,3]}}}}"#,
                Command::Start {
                    input: json!({"items": [1, 2, 3]}),
                },
            ),
            (
                r#"{"seq":2,"at":"2026-01-01T00:00:00Z","command":{"TaskStarted":{"task":1}}}"#,
                Command::TaskStarted {
                    task: TaskId(1),
                    worker_name: None,
                    pool: None,
                },
            ),
            (
                r#"{"seq":3,"at":"2026-01-01T00:00:00.010Z","command":{"TaskFailed":{"task":1,"error":"Flaky","cause":"try again"}}}"#,
                Command::TaskFailed {
                    task: TaskId(1),
                    error: Some("Flaky".into()),
                    cause: Some("try again".into()),
                },
            ),
            (
                r#"{"seq":4,"at":"2026-01-01T00:00:02.015Z","command":{"TimerFired":{"timer":1}}}"#,
                Command::TimerFired { timer: TimerId(1) },
            ),
            (
                r#"{"seq":5,"at":"2026-01-01T00:00:03Z","command":"Redrive"}"#,
                Command::Redrive,
            ),
        ];
        for (text, command) in stored {
            let entry: JournalEntry = serde_json::from_str(text).expect(text);
            assert_eq!(serde_json::to_string(&entry).expect("write"), text);
            assert_eq!(interp_command(entry.command), command, "{text}");
        }
    }

    /// What sled writes for a STANDARD execution, step by step: a one-Task
    /// execution (start with the task scheduled and started, then its
    /// answer and the end) and one Wait state (start with the timer, then
    /// the timer firing and the end). The figures are pinned so a change
    /// in the keys per step is seen, and printed (`--nocapture`). The
    /// start and the end each add two keys of the dashboard's counts (the
    /// hour's and the machine's total).
    #[test]
    fn keys_written_per_step_of_a_standard_execution() {
        let cases = [
            (
                "one task",
                r#"{"StartAt": "T", "States": {"T": {"Type": "Task",
                    "Resource": "arn:aws:states:::http:invoke", "End": true}}}"#,
                [9, 10],
            ),
            (
                "one wait",
                r#"{"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 5,
                    "End": true}}}"#,
                [9, 11],
            ),
        ];
        let mut found = Vec::new();
        for (label, definition, expected) in cases {
            let dir = temp_dir(&format!("keys-{}", label.replace(' ', "-")));
            let store = SledStore::open(&dir).expect("open");
            let machine = Arc::new(asl::validate(definition.as_bytes()).machine.expect("valid"));
            let before = store.keys_written();
            // As the engine keeps it with no ended observer (no alerts).
            let keeping = Keeping::Durable { end_notice: false };
            let (mut execution, effects) = DurableExecution::start(
                &store,
                machine,
                info(),
                record(),
                json!({}),
                keeping,
                None,
                None,
                Default::default(),
            )
            .expect("start");
            let start = store.keys_written() - before;
            let command = match &effects[..] {
                [Effect::InvokeTask(request)] => Command::TaskSucceeded {
                    task: request.task,
                    output: json!({"ok": true}),
                    cached: None,
                },
                [Effect::StartTimer { timer, .. }] => Command::TimerFired { timer: *timer },
                other => panic!("{label}: unexpected effects {other:?}"),
            };
            let before = store.keys_written();
            execution
                .apply(&store, t0() + Duration::seconds(5), command)
                .expect("apply");
            let end = store.keys_written() - before;
            assert!(execution.execution().is_finished(), "{label}");
            eprintln!("{label}: {start} keys at the start, {end} at the end");
            found.push((label, [start, end], expected));
            drop(store);
            let _ = std::fs::remove_dir_all(&dir);
        }
        for (label, found, expected) in found {
            assert_eq!(found, expected, "{label}: keys at the start, at the end");
        }
    }

    #[test]
    fn a_second_start_with_the_same_name_is_refused() {
        let dir = temp_dir("twice");
        let store = SledStore::open(&dir).expect("open");
        let _first = start(&store);
        let input = json!({"items": []});
        let second = DurableExecution::start(
            &store,
            machine(),
            info(),
            record(),
            input,
            DURABLE,
            None,
            None,
            Default::default(),
        );
        assert!(matches!(
            second,
            Err(stepline_store::StoreError::ExecutionExists { .. })
        ));
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

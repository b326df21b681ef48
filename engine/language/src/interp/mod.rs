//! The interpreter: an execution as a deterministic state machine.
//!
//! [`Execution::apply`] takes one [`Command`] (start, a task's result, a
//! timer firing, a stop request) and the current time, advances every
//! branch of the execution as far as it can go without the outside world,
//! appends [`HistoryEvent`]s, and returns the [`Effect`]s the runtime must
//! carry out (invoke a task, start a timer, cancel either).
//!
//! Architecture invariant: no I/O, no clock, no ambient randomness here.
//! Time arrives with each command, randomness comes from a generator seeded
//! by the caller, so applying the same commands to the same definition
//! always gives the same history: that is what makes replay and recovery a
//! fold.
//!
//! Branches (the top level, each Parallel branch, each Map iteration) are
//! "threads" run one at a time, depth first, in a fixed order; a thread runs
//! until it finishes or waits for a task or a timer.
//!
//! Layout: this file holds [`Execution`] and the state it wraps (`Core`),
//! routes each command and records events; every concern below is one
//! module adding to `Core`:
//! - `protocol`: [`Command`], [`Effect`], [`TaskRequest`], the ids,
//!   [`Status`]: what the runtime and the interpreter say to each other.
//! - `scheduler`: threads, the ready stack, timers waking their thread.
//! - `lifecycle`: the execution's start and its ends (success, failure,
//!   timeout, stop).
//! - `state`: one state's run: enter, work, output and transition, Retry
//!   and Catch.
//! - `task`: a Task's invocation and its answers, heartbeats, timeouts.
//! - `frame`: the children of a Parallel or an inline Map.
//! - `map_run`: a distributed Map's Map Run, handed to the runtime.
//! - `redrive`: what a redrive keeps and where it starts.
//! - `items`: [`ItemSelection`], a Map Run child's input.
//! - `limits`: payload and history bounds.
//! - `flow/`: the data flow inside a state (shared steps in `mod.rs`,
//!   `jsonpath.rs`, `jsonata.rs`); `choice`: Choice rules; `context`: the
//!   context object and variables; `failure`: ASL errors, Retry/Catch
//!   matching; `token`: task tokens.

mod choice;
mod context;
pub mod failure;
mod flow;
mod frame;
mod items;
mod lifecycle;
mod limits;
mod map_run;
mod protocol;
mod redrive;
mod scheduler;
mod state;
mod task;
pub mod token;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;

pub use context::ExecutionInfo;
pub use failure::Failure;
pub use items::ItemSelection;
pub use limits::MAX_HISTORY_EVENTS;
pub use protocol::{Command, Effect, Status, TaskId, TaskRequest, TimerId};
pub use task::resource_type;

use crate::asl::model::{StateId, StateMachine};
use crate::history::{Event, HistoryEvent};
use crate::query::eval::SplitMix64;
use context::Context;
use redrive::Redrive;
use scheduler::{At, Thread, ThreadId};

/// A payload (a state's input or output), shared between the branch that
/// carries it and the history events that record it.
pub(crate) type Data = Arc<Value>;

/// A live execution: the definition it runs and where it is.
#[derive(Debug)]
pub struct Execution {
    machine: Arc<StateMachine>,
    /// Kept apart from `machine` so that the interpreter can hold a state of
    /// the definition while it changes the execution, without reference
    /// counting on every transition.
    core: Core,
}

impl Execution {
    /// A new execution of `machine`; `seed` drives every random choice
    /// (jitter, States.UUID, States.MathRandom) and must be recorded.
    pub fn new(machine: Arc<StateMachine>, info: ExecutionInfo, seed: u64) -> Self {
        Self {
            machine,
            core: Core::new(info, seed),
        }
    }

    /// Gives the execution the secret its task tokens are minted from
    /// (see [`crate::interp::token`]). Without one, `.waitForTaskToken`
    /// and activity tasks get no token.
    pub fn with_token_secret(mut self, secret: &str) -> Self {
        if !secret.is_empty() {
            self.core.token_secret = Some(secret.into());
        }
        self
    }

    /// Runs a distributed Map's items as iterations of this execution
    /// instead of handing a Map Run to the runtime: for `stepline run`
    /// (one execution in process, where no child execution can exist).
    /// An ItemReader then fails: reading buckets needs `stepline serve`.
    pub fn with_inline_distributed_maps(mut self) -> Self {
        self.core.inline_distributed = true;
        self
    }

    /// Whether RedriveExecution can restart this execution (it ended
    /// unsuccessfully after its first state began).
    pub fn can_redrive(&self) -> bool {
        self.core.can_redrive()
    }

    /// Whether `task` is open and its start recorded.
    pub fn is_task_started(&self, task: TaskId) -> bool {
        self.core
            .tasks
            .get(&task)
            .is_some_and(|&tid| matches!(self.core.threads[tid].at, At::Task { started: true, .. }))
    }

    /// Whether `task` is still waiting for its answer.
    pub fn is_task_open(&self, task: TaskId) -> bool {
        self.core.tasks.contains_key(&task)
    }

    pub fn status(&self) -> &Status {
        &self.core.status
    }

    /// The events not yet taken by [`Execution::take_history`] (all of
    /// them for an execution run in process).
    pub fn history(&self) -> &[HistoryEvent] {
        &self.core.history
    }

    /// Takes the events recorded since the last call: a durable execution
    /// writes them to its store and keeps none in memory.
    pub fn take_history(&mut self) -> Vec<HistoryEvent> {
        std::mem::take(&mut self.core.history)
    }

    /// How many events the history has, taken or not.
    pub fn event_count(&self) -> u64 {
        self.core.last_id()
    }

    /// The status and the history, taken out without a copy.
    pub fn into_outcome(self) -> (Status, Vec<HistoryEvent>) {
        (self.core.status, self.core.history)
    }

    pub fn is_finished(&self) -> bool {
        self.core.is_finished()
    }

    /// Applies one command at time `now` and returns what to do next.
    pub fn apply(&mut self, now: DateTime<Utc>, command: Command) -> Vec<Effect> {
        self.core.apply(&self.machine, now, command)
    }
}

/// The mutable part of an execution.
#[derive(Debug)]
struct Core {
    ctx: Context,
    status: Status,
    /// Events recorded and not yet taken (see `take_history`); nothing
    /// below reads them back, so that they need not stay in memory.
    history: Vec<HistoryEvent>,
    /// ExecutionStarted's input (the context object's, again at a redrive).
    input: Data,
    threads: Vec<Thread>,
    /// Threads with work to do; the last one runs first (depth first).
    ready: Vec<ThreadId>,
    random: SplitMix64,
    now: DateTime<Utc>,
    next_id: u64,
    effects: Vec<Effect>,
    tasks: HashMap<TaskId, ThreadId>,
    timers: HashMap<TimerId, ThreadId>,
    /// The last timer id given out (ids are never reused).
    next_timer: u64,
    /// The last task id given out (never reused either).
    next_task: u64,
    token_secret: Option<Arc<str>>,
    /// Task invocations so far, per Task state.
    invocations: HashMap<StateId, u32>,
    /// See [`Execution::with_inline_distributed_maps`].
    inline_distributed: bool,
    /// What a redrive keeps and where it starts.
    redrive: Redrive,
    /// The Map Run ARN of each Map Run task in flight.
    map_run_tasks: HashMap<TaskId, String>,
}

impl Core {
    fn new(info: ExecutionInfo, seed: u64) -> Self {
        let now = info.start_time;
        Self {
            ctx: Context::new(info),
            status: Status::Running,
            history: Vec::new(),
            input: Data::default(),
            threads: Vec::new(),
            ready: Vec::new(),
            random: SplitMix64(seed),
            now,
            next_id: 1,
            effects: Vec::new(),
            tasks: HashMap::new(),
            timers: HashMap::new(),
            next_timer: 0,
            next_task: 0,
            token_secret: None,
            invocations: HashMap::new(),
            inline_distributed: false,
            redrive: Redrive::default(),
            map_run_tasks: HashMap::new(),
        }
    }

    fn is_finished(&self) -> bool {
        self.status != Status::Running
    }

    fn apply(&mut self, m: &StateMachine, now: DateTime<Utc>, command: Command) -> Vec<Effect> {
        self.now = now.max(self.now);
        if let Command::Redrive = command {
            self.redrive_execution();
            self.run_ready(m);
            return std::mem::take(&mut self.effects);
        }
        if self.is_finished() {
            return Vec::new();
        }
        match command {
            Command::Start { input } => self.start(m, input),
            Command::TaskStarted {
                task,
                worker_name,
                pool,
            } => self.task_started(m, task, worker_name, pool),
            Command::TaskSubmitted { task, output } => self.task_submitted(m, task, output),
            Command::TaskHeartbeat { task } => self.task_heartbeat(task),
            Command::TaskSucceeded {
                task,
                output,
                cached,
            } => self.task_finished(m, task, Ok(output), cached),
            Command::TaskFailed { task, error, cause } => {
                self.task_finished(m, task, Err(Failure { error, cause }), None)
            }
            Command::TimerFired { timer } => self.timer_fired(m, timer),
            Command::Stop { error, cause } => self.stop(m, error, cause),
            Command::Redrive => {}
        }
        self.run_ready(m);
        std::mem::take(&mut self.effects)
    }

    /// The id of the last event recorded (0 before the first).
    fn last_id(&self) -> u64 {
        self.next_id - 1
    }

    fn emit(&mut self, previous: u64, event: Event) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.history.push(HistoryEvent {
            id,
            previous_event_id: previous,
            timestamp: self.now,
            event,
        });
        id
    }

    /// Emits an event that follows the thread's last one.
    fn emit_on(&mut self, tid: ThreadId, event: Event) -> u64 {
        let id = self.emit(self.threads[tid].last_event, event);
        self.threads[tid].last_event = id;
        id
    }
}

#[cfg(test)]
mod tests;

//! The interpreter: an execution as a deterministic state m.
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

mod choice;
mod context;
pub mod failure;
mod flow;
pub mod token;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use context::ExecutionInfo;
pub use failure::Failure;

use crate::asl::model::{
    Payload, ProcessorMode, Resource, ScopeId, StateId, StateKind, StateMachine, Transition,
};
use crate::history::{EvaluationFailed, Event, HistoryEvent, StateType};
use crate::payload::{MAX_PAYLOAD_BYTES, MAX_PAYLOAD_DEPTH, json_size, nests_deeper_than};
use crate::query::eval::SplitMix64;
use context::{Context, VarScope};
use flow::Evaluator;

/// The most events an execution's history holds, as AWS. The check runs
/// between two steps of a branch, so a history can pass it by the few
/// events of one step before the execution fails.
pub const MAX_HISTORY_EVENTS: usize = 25_000;

/// Identifies a task invocation of this execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TaskId(pub u64);

/// Identifies a timer of this execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TimerId(pub u64);

/// Something that happened outside the interpreter. Recorded (with its
/// time) in the execution's journal: replaying the journal rebuilds the
/// execution exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    Start {
        input: Value,
    },
    TaskStarted {
        task: TaskId,
        /// The activity worker that took the task (GetActivityTask).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        worker_name: Option<String>,
    },
    /// A `.sync` or `.waitForTaskToken` request was accepted: `output` is
    /// the service's answer; the task's result comes later.
    TaskSubmitted {
        task: TaskId,
        output: Value,
    },
    /// The task is alive (SendTaskHeartbeat): its HeartbeatSeconds restart.
    TaskHeartbeat {
        task: TaskId,
    },
    TaskSucceeded {
        task: TaskId,
        output: Value,
    },
    TaskFailed {
        task: TaskId,
        error: Option<String>,
        cause: Option<String>,
    },
    TimerFired {
        timer: TimerId,
    },
    Stop {
        error: Option<String>,
        cause: Option<String>,
    },
    /// RedriveExecution: a FAILED, TIMED_OUT or ABORTED execution runs
    /// again from the top-level state that did not succeed, with the input
    /// that state had.
    Redrive,
}

/// What the runtime must do for the execution to go on.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    InvokeTask(Box<TaskRequest>),
    StartTimer { timer: TimerId, due: DateTime<Utc> },
    CancelTask { task: TaskId },
    CancelTimer { timer: TimerId },
}

/// One task invocation to perform.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRequest {
    pub task: TaskId,
    pub state_name: String,
    pub resource: Resource,
    /// The effective parameters: what the task receives.
    pub input: Value,
    pub timeout_seconds: Option<u64>,
    pub heartbeat_seconds: Option<u64>,
    /// 0 for the first attempt, then 1, 2... for retries.
    pub attempt: u32,
    pub credentials: Option<Value>,
    /// The task token, for `.waitForTaskToken` and activity tasks.
    pub token: Option<String>,
    /// How many tasks this state invoked before this one in the execution
    /// (retries and loops included): mocked responses are chosen by it.
    pub invocation: u32,
}

/// Where an execution is.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Running,
    Succeeded { output: Arc<Value> },
    Failed(Failure),
    Aborted(Failure),
    TimedOut(Failure),
}

type ThreadId = usize;

/// A payload (a state's input or output), shared between the branch that
/// carries it and the history events that record it.
pub(crate) type Data = Arc<Value>;

/// A branch of the execution: the top level, a Parallel branch or a Map
/// iteration.
#[derive(Debug)]
struct Thread {
    /// The thread waiting for this one, and this one's index among its children.
    parent: Option<(ThreadId, usize)>,
    vars: Arc<VarScope>,
    /// The event the next event of this thread follows (previousEventId).
    last_event: u64,
    at: At,
}

/// What a thread is doing.
#[derive(Debug)]
enum At {
    Enter {
        state: StateId,
        input: Data,
    },
    Task {
        run: Run,
        task: TaskId,
        /// TaskStarted (or ActivityStarted) is recorded; a second start
        /// (a task invoked again after a crash) records nothing.
        started: bool,
        timeout: Option<TimerId>,
        heartbeat: Option<TimerId>,
        /// The resolved HeartbeatSeconds(Path), to renew the heartbeat timer.
        heartbeat_seconds: Option<u64>,
    },
    Timer {
        run: Run,
        timer: TimerId,
        then: AfterTimer,
    },
    Children {
        run: Run,
        frame: Box<Frame>,
    },
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AfterTimer {
    /// A Wait state's time has come.
    WaitOver,
    /// A retrier's interval is over: run the state again.
    Retry,
}

/// A state in progress.
#[derive(Debug, Clone)]
struct Run {
    state: StateId,
    /// The raw state input (before InputPath).
    input: Data,
    entered_event: u64,
    /// The event the state was entered after (the entry's previousEventId).
    entered_after: u64,
    entered_time: DateTime<Utc>,
    /// Attempts used per retrier.
    retries: Vec<u32>,
    /// Retries done so far in this state ($$.State.RetryCount).
    retry_count: u32,
}

/// The children of a Parallel or Map state.
#[derive(Debug)]
struct Frame {
    is_map: bool,
    /// The state's effective input: a Map's ItemSelector reads it.
    effective: Data,
    /// Map: every item (after ItemSelector) still to start or started.
    items: Vec<Data>,
    next_to_start: usize,
    limit: usize,
    tolerated_count: Option<u64>,
    tolerated_percentage: Option<f64>,
    failures: u64,
    children: Vec<Option<ThreadId>>,
    results: Vec<Data>,
    /// Children that succeeded (this run, or before a redrive).
    succeeded: Vec<bool>,
    running: usize,
    finished: usize,
    /// previousEventId for the next child start: the last event of the
    /// child that finished (or MapStateStarted / ParallelStateStarted).
    last_event: u64,
    /// previousEventId for the closing MapStateSucceeded and the Exited
    /// event: AWS links them to the last MapIterationSucceeded.
    closing_event: u64,
}

impl Frame {
    fn new(is_map: bool, effective: Data, items: Vec<Data>, limit: usize, started: u64) -> Self {
        let count = items.len();
        Self {
            is_map,
            effective,
            items,
            next_to_start: 0,
            limit,
            tolerated_count: None,
            tolerated_percentage: None,
            failures: 0,
            children: vec![None; count],
            results: vec![Data::default(); count],
            succeeded: vec![false; count],
            running: 0,
            finished: 0,
            last_event: started,
            closing_event: started,
        }
    }
}

/// What a redrive keeps of an inline Map or Parallel: the result of each
/// child that succeeded (AWS reruns only failed and aborted iterations and
/// branches).
#[derive(Debug)]
struct KeptChildren {
    state: StateId,
    results: Vec<Option<Data>>,
}

impl KeptChildren {
    fn of(run: &Run, frame: &Frame) -> Self {
        Self {
            state: run.state,
            results: frame
                .succeeded
                .iter()
                .zip(&frame.results)
                .map(|(&ok, result)| ok.then(|| Arc::clone(result)))
                .collect(),
        }
    }
}

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
    /// Where a redrive starts: the top-level state that was running when
    /// the execution ended unsuccessfully, and its input.
    redrive_from: Option<(StateId, Data)>,
    redrive_count: u32,
    /// See [`Execution::with_inline_distributed_maps`].
    inline_distributed: bool,
    /// The Map Run of each distributed Map state whose last Map Run
    /// failed: a redrive runs it again (its failed items only).
    failed_map_runs: HashMap<StateId, String>,
    /// Taken from `failed_map_runs` by a redrive; used by the next entry.
    redriven_map_runs: HashMap<StateId, String>,
    /// The children of the top-level inline Map or Parallel that succeeded
    /// before the execution ended in it: a redrive runs only the others.
    kept_children: Option<KeptChildren>,
    /// Taken from `kept_children` by a redrive; used when that state's
    /// children start again.
    redriven_children: Option<KeptChildren>,
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
            redrive_from: None,
            redrive_count: 0,
            inline_distributed: false,
            failed_map_runs: HashMap::new(),
            redriven_map_runs: HashMap::new(),
            kept_children: None,
            redriven_children: None,
            map_run_tasks: HashMap::new(),
        }
    }

    fn is_finished(&self) -> bool {
        self.status != Status::Running
    }

    fn apply(&mut self, m: &StateMachine, now: DateTime<Utc>, command: Command) -> Vec<Effect> {
        self.now = now.max(self.now);
        if let Command::Redrive = command {
            self.redrive();
            self.run_ready(m);
            return std::mem::take(&mut self.effects);
        }
        if self.is_finished() {
            return Vec::new();
        }
        match command {
            Command::Start { input } => self.start(m, input),
            Command::TaskStarted { task, worker_name } => self.task_started(m, task, worker_name),
            Command::TaskSubmitted { task, output } => self.task_submitted(m, task, output),
            Command::TaskHeartbeat { task } => self.task_heartbeat(task),
            Command::TaskSucceeded { task, output } => self.task_finished(m, task, Ok(output)),
            Command::TaskFailed { task, error, cause } => {
                self.task_finished(m, task, Err(Failure { error, cause }))
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

    fn start(&mut self, m: &StateMachine, input: Value) {
        if self.last_id() > 0 {
            return;
        }
        let input = Data::new(input);
        self.input = Arc::clone(&input);
        self.ctx.set_input(Arc::clone(&input));
        self.emit(
            0,
            Event::ExecutionStarted {
                input: Arc::clone(&input),
                role_arn: self.ctx.info.role_arn.clone(),
            },
        );
        let start = m.scope(ScopeId::ROOT).start_at;
        // Most executions never branch: room for the top level only (a
        // waiting execution is held in memory for as long as it waits).
        self.threads.reserve_exact(1);
        self.threads.push(Thread {
            parent: None,
            vars: Arc::new(VarScope::default()),
            last_event: 0,
            at: At::Enter {
                state: start,
                input,
            },
        });
        self.ready.push(0);
        if let Some(seconds) = m.timeout_seconds {
            let timer = TimerId(u64::MAX);
            self.timers.insert(timer, usize::MAX);
            let due = self.now + Duration::seconds(seconds as i64);
            self.effects.push(Effect::StartTimer { timer, due });
        }
    }

    fn run_ready(&mut self, m: &StateMachine) {
        while let Some(tid) = self.ready.pop() {
            if self.is_finished() {
                self.ready.clear();
                return;
            }
            if self.last_id() as usize >= MAX_HISTORY_EVENTS - 1 {
                self.ready.clear();
                let previous = self.last_id();
                let failure = Failure::new(
                    "States.Runtime",
                    format!(
                        "The execution reached the limit of {MAX_HISTORY_EVENTS} events in its history."
                    ),
                );
                return self.fail_execution(previous, failure);
            }
            let at = std::mem::replace(&mut self.threads[tid].at, At::Done);
            match at {
                At::Enter { state, input } => self.enter(m, tid, state, input),
                other => self.threads[tid].at = other,
            }
        }
    }

    fn evaluator<'s>(
        &'s mut self,
        m: &'s StateMachine,
        tid: ThreadId,
        run: &'s Run,
    ) -> Evaluator<'s> {
        self.item_evaluator(m, tid, run, None)
    }

    /// An evaluator for `run`'s state; `map_item` sets `$$.Map.Item` (a Map
    /// state selecting an iteration's input).
    fn item_evaluator<'s>(
        &'s mut self,
        m: &'s StateMachine,
        tid: ThreadId,
        run: &'s Run,
        map_item: Option<(usize, &Value)>,
    ) -> Evaluator<'s> {
        let thread = &self.threads[tid];
        let state = m.state(run.state);
        if state.uses_context || map_item.is_some() {
            self.ctx
                .enter_state(&state.name, run.entered_time, run.retry_count, map_item);
        }
        Evaluator {
            state,
            run_input: &run.input,
            entered_event: run.entered_event,
            context: self.ctx.value(),
            vars: &thread.vars,
            random: &mut self.random,
        }
    }

    fn enter(&mut self, m: &StateMachine, tid: ThreadId, state_id: StateId, input: Data) {
        let state = m.state(state_id);
        let entered_after = self.threads[tid].last_event;
        let entered_event = self.emit_on(
            tid,
            Event::StateEntered {
                state_type: state_type(&state.kind),
                name: Arc::clone(&state.name),
                input: Arc::clone(&input),
            },
        );
        let retries = match &state.kind {
            StateKind::Task(t) => vec![0; t.retry.len()],
            StateKind::Parallel(p) => vec![0; p.retry.len()],
            StateKind::Map(m) => vec![0; m.retry.len()],
            _ => Vec::new(),
        };
        let run = Run {
            state: state_id,
            input,
            entered_event,
            entered_after,
            entered_time: self.now,
            retries,
            retry_count: 0,
        };
        self.execute(m, tid, run);
    }

    /// Does a state's work (again, for a retry).
    fn execute(&mut self, m: &StateMachine, tid: ThreadId, run: Run) {
        if tid == 0 {
            // What a redrive keeps belongs to the run of the state that
            // ended the execution; a new run (a retry, the next state) has
            // its own.
            self.kept_children = None;
            if self
                .redriven_children
                .as_ref()
                .is_some_and(|k| k.state != run.state)
            {
                self.redriven_children = None;
            }
        }
        let state = m.state(run.state);
        match &state.kind {
            StateKind::Pass(pass) => {
                let result = {
                    let mut ev = self.evaluator(m, tid, &run);
                    ev.effective_input()
                        .map(|effective| pass.result.clone().unwrap_or(effective))
                };
                match result {
                    Ok(result) => self.complete(m, tid, run, result, None),
                    Err(f) => self.fail_state(m, tid, run, f),
                }
            }
            StateKind::Succeed => {
                let effective = self.evaluator(m, tid, &run).input_only();
                match effective {
                    Ok(effective) => self.complete(m, tid, run, effective, None),
                    Err(f) => self.fail_state(m, tid, run, f),
                }
            }
            StateKind::Fail(fail) => {
                let failure = self.evaluator(m, tid, &run).fail_error(fail);
                match failure {
                    Ok(failure) => self.thread_done(m, tid, Err(failure)),
                    Err(f) => self.fail_state(m, tid, run, f),
                }
            }
            StateKind::Choice(choice) => {
                let decision = self.evaluator(m, tid, &run).choose(choice);
                match decision {
                    Ok((effective, next, rule)) => match next {
                        Some(next) => self.complete(m, tid, run, effective, Some((next, rule))),
                        None => self.fail_state(
                            m,
                            tid,
                            run,
                            Failure::new(
                                "States.NoChoiceMatched",
                                format!(
                                    "No Matches! (state '{}' has no choice rule that matches and no Default)",
                                    state.name
                                ),
                            ),
                        ),
                    },
                    Err(f) => self.fail_state(m, tid, run, f),
                }
            }
            StateKind::Wait(wait) => {
                let due = self
                    .evaluator(m, tid, &run)
                    .wait_due(wait, run.entered_time);
                match due {
                    Ok(due) => {
                        let timer = self.new_timer(tid, due);
                        self.threads[tid].at = At::Timer {
                            run,
                            timer,
                            then: AfterTimer::WaitOver,
                        };
                    }
                    Err(f) => self.fail_state(m, tid, run, f),
                }
            }
            StateKind::Task(task) => {
                // Never reused: a cancelled task's late answer, token and
                // idempotency key must not reach a later task.
                self.next_task += 1;
                let task_id = TaskId(self.next_task);
                let token = self.task_token(&task.resource, task_id);
                self.ctx.task_token = token.clone();
                let prepared = self.evaluator(m, tid, &run).task_input(task);
                self.ctx.task_token = None;
                let (input, timeout, heartbeat, credentials) = match prepared {
                    Ok(p) => p,
                    Err(f) => return self.fail_state(m, tid, run, f),
                };
                if let Err(f) = check_size(&input, PayloadOf("task input", &state.name)) {
                    return self.fail_state(m, tid, run, f);
                }
                self.tasks.insert(task_id, tid);
                let count = self.invocations.entry(run.state).or_default();
                let invocation = *count;
                *count += 1;
                let scheduled = if is_activity(&task.resource) {
                    Event::ActivityScheduled(Box::new(crate::history::ActivityScheduled {
                        resource: task.resource.arn.clone(),
                        input: input.clone(),
                        timeout_in_seconds: timeout,
                        heartbeat_in_seconds: heartbeat,
                    }))
                } else {
                    Event::TaskScheduled(Box::new(crate::history::TaskScheduled {
                        resource_type: resource_type(&task.resource),
                        resource: resource_name(&task.resource),
                        region: self.ctx.info.region.clone(),
                        parameters: input.clone(),
                        timeout_in_seconds: timeout,
                        heartbeat_in_seconds: heartbeat,
                    }))
                };
                self.emit_on(tid, scheduled);
                let timeout_timer =
                    timeout.map(|s| self.new_timer(tid, self.now + Duration::seconds(s as i64)));
                let heartbeat_timer =
                    heartbeat.map(|s| self.new_timer(tid, self.now + Duration::seconds(s as i64)));
                self.effects.push(Effect::InvokeTask(Box::new(TaskRequest {
                    task: task_id,
                    state_name: state.name.to_string(),
                    resource: task.resource.clone(),
                    input: Value::clone(&input),
                    timeout_seconds: timeout,
                    heartbeat_seconds: heartbeat,
                    attempt: run.retry_count,
                    credentials,
                    token,
                    invocation,
                })));
                self.threads[tid].at = At::Task {
                    run,
                    task: task_id,
                    started: false,
                    timeout: timeout_timer,
                    heartbeat: heartbeat_timer,
                    heartbeat_seconds: heartbeat,
                };
            }
            StateKind::Parallel(parallel) => {
                let effective = self.evaluator(m, tid, &run).effective_input();
                let effective = match effective {
                    Ok(v) => v,
                    Err(f) => return self.fail_state(m, tid, run, f),
                };
                let started = self.emit_on(tid, Event::ParallelStateStarted);
                let count = parallel.branches.len();
                let mut frame = Frame::new(
                    false,
                    Data::default(),
                    vec![effective; count],
                    count,
                    started,
                );
                self.keep_redriven_children(tid, &run, &mut frame);
                self.threads[tid].at = At::Children {
                    run,
                    frame: Box::new(frame),
                };
                self.continue_children(m, tid);
            }
            StateKind::Map(map) => {
                if let ProcessorMode::Distributed { execution_type } = map.mode {
                    if !self.inline_distributed {
                        return self.start_map_run(m, tid, run, map, execution_type);
                    }
                    if map.item_reader.is_some() {
                        let f = Failure::new(
                            "States.ItemReaderFailed",
                            "An ItemReader reads buckets mapped in stepline.toml: run this definition with `stepline serve`",
                        );
                        return self.fail_state(m, tid, run, f);
                    }
                }
                let prepared = self.evaluator(m, tid, &run).map_setup(map);
                let setup = match prepared {
                    Ok(s) => s,
                    Err((f, started)) => {
                        if let Some(length) = started {
                            self.emit_on(tid, Event::MapStateStarted { length });
                        }
                        return self.fail_state(m, tid, run, f);
                    }
                };
                let count = setup.items.len();
                let started = self.emit_on(tid, Event::MapStateStarted { length: count });
                let limit = match setup.max_concurrency {
                    0 => usize::MAX,
                    n => n,
                };
                let items = setup.items.into_iter().map(Data::new).collect();
                let mut frame = Frame::new(true, setup.effective, items, limit, started);
                frame.tolerated_count = setup.tolerated_count;
                frame.tolerated_percentage = setup.tolerated_percentage;
                self.keep_redriven_children(tid, &run, &mut frame);
                self.threads[tid].at = At::Children {
                    run,
                    frame: Box::new(frame),
                };
                self.continue_children(m, tid);
            }
        }
    }

    /// A distributed Map: its fields are evaluated here, then its Map Run
    /// (reading items, child executions, results) is a task the runtime
    /// carries out; its answer is the Map's result.
    fn start_map_run(
        &mut self,
        m: &StateMachine,
        tid: ThreadId,
        run: Run,
        map: &crate::asl::model::Map,
        execution_type: crate::asl::model::ExecutionType,
    ) {
        let state = m.state(run.state);
        let prepared = {
            let mut ev = self.item_evaluator(m, tid, &run, None);
            ev.distributed_setup(map).map(|spec| (spec, ev.new_uuid()))
        };
        let (mut spec, id) = match prepared {
            Ok(p) => p,
            Err((f, started)) => {
                if let Some(length) = started {
                    self.emit_on(tid, Event::MapStateStarted { length });
                }
                return self.fail_state(m, tid, run, f);
            }
        };
        let info = &self.ctx.info;
        // AWS: the label is the Label field, else the state's name.
        let label = map.label.clone().unwrap_or_else(|| state.name.to_string());
        let account = info.execution_arn.split(':').nth(4).unwrap_or_default();
        let redriven = self.redriven_map_runs.remove(&run.state);
        spec.redrive = redriven.is_some();
        spec.map_run_arn = redriven.unwrap_or_else(|| {
            format!(
                "arn:aws:states:{}:{account}:mapRun:{}/{label}:{id}",
                info.region, info.state_machine_name
            )
        });
        spec.label = label;
        spec.state = run.state.0;
        spec.express = execution_type == crate::asl::model::ExecutionType::Express;
        self.ctx
            .enter_state(&state.name, run.entered_time, run.retry_count, None);
        spec.context = self.ctx.value().clone();
        // AWS records MapStateStarted (with the inline item count; an
        // ItemReader's count is not known yet) before MapRunStarted.
        let length = spec.items.as_ref().map_or(0, Vec::len);
        self.emit_on(tid, Event::MapStateStarted { length });
        let input = match serde_json::to_value(&spec) {
            Ok(v) => v,
            Err(e) => {
                let f = Failure::new("States.Runtime", e.to_string());
                return self.fail_state(m, tid, run, f);
            }
        };
        let event = if spec.redrive {
            Event::MapRunRedriven {
                map_run_arn: spec.map_run_arn.clone(),
                redrive_count: self.redrive_count,
            }
        } else {
            Event::MapRunStarted {
                map_run_arn: spec.map_run_arn.clone(),
            }
        };
        self.emit_on(tid, event);
        self.failed_map_runs.remove(&run.state);
        self.next_task += 1;
        let task_id = TaskId(self.next_task);
        self.tasks.insert(task_id, tid);
        self.map_run_tasks.insert(task_id, spec.map_run_arn.clone());
        self.effects.push(Effect::InvokeTask(Box::new(TaskRequest {
            task: task_id,
            state_name: state.name.to_string(),
            resource: Resource {
                arn: spec.map_run_arn,
                kind: crate::asl::model::ResourceKind::MapRun,
                pattern: crate::asl::model::IntegrationPattern::RequestResponse,
            },
            input,
            timeout_seconds: None,
            heartbeat_seconds: None,
            attempt: run.retry_count,
            credentials: None,
            token: None,
            invocation: 0,
        })));
        self.threads[tid].at = At::Task {
            run,
            task: task_id,
            started: false,
            timeout: None,
            heartbeat: None,
            heartbeat_seconds: None,
        };
    }

    /// After a redrive, the children of this state that succeeded before
    /// are done already: their results stand and they do not run again.
    fn keep_redriven_children(&mut self, tid: ThreadId, run: &Run, frame: &mut Frame) {
        if tid != 0 {
            return;
        }
        let Some(kept) = self
            .redriven_children
            .take_if(|k| k.state == run.state && k.results.len() == frame.items.len())
        else {
            return;
        };
        for (index, result) in kept.results.into_iter().enumerate() {
            if let Some(result) = result {
                frame.results[index] = result;
                frame.succeeded[index] = true;
                frame.finished += 1;
            }
        }
    }

    /// Starts children, or finishes the state when none is left to run.
    fn continue_children(&mut self, m: &StateMachine, tid: ThreadId) {
        let all_done = match &self.threads[tid].at {
            At::Children { frame, .. } => frame.finished == frame.items.len(),
            _ => false,
        };
        if all_done {
            self.children_finished(m, tid);
        } else {
            self.start_children(m, tid);
        }
    }

    /// Starts as many children as the frame's limit allows, in order.
    fn start_children(&mut self, m: &StateMachine, tid: ThreadId) {
        let At::Children { run, mut frame } =
            std::mem::replace(&mut self.threads[tid].at, At::Done)
        else {
            return;
        };
        let state = m.state(run.state);
        let vars = Arc::clone(&self.threads[tid].vars);
        let mut started = Vec::new();
        while frame.running < frame.limit && frame.next_to_start < frame.items.len() {
            let index = frame.next_to_start;
            frame.next_to_start += 1;
            if frame.succeeded[index] {
                continue;
            }
            frame.running += 1;
            let item = std::mem::take(&mut frame.items[index]);
            let (scope, input) = match &state.kind {
                StateKind::Map(map) => {
                    frame.last_event = self.emit(
                        frame.last_event,
                        Event::MapIterationStarted {
                            name: Arc::clone(&state.name),
                            index,
                        },
                    );
                    let selected = self
                        .item_evaluator(m, tid, &run, Some((index, &item)))
                        .map_item(map.item_selector.as_ref(), &frame.effective, item.clone());
                    match selected {
                        Ok(input) => (map.processor, input),
                        Err(failure) => {
                            self.threads[tid].at = At::Children { run, frame };
                            return self.children_failed(m, tid, self.next_id - 1, failure);
                        }
                    }
                }
                StateKind::Parallel(p) => (p.branches[index], item),
                _ => continue,
            };
            let child = self.threads.len();
            self.threads.push(Thread {
                parent: Some((tid, index)),
                vars: Arc::new(VarScope::child_of(Arc::clone(&vars))),
                last_event: frame.last_event,
                at: At::Enter {
                    state: m.scope(scope).start_at,
                    input,
                },
            });
            frame.children[index] = Some(child);
            started.push(child);
        }
        self.threads[tid].at = At::Children { run, frame };
        // Depth first in index order: the lowest index is popped first.
        self.ready.extend(started.into_iter().rev());
    }

    /// A thread finished: the execution ends, or its parent hears of it.
    fn thread_done(&mut self, m: &StateMachine, tid: ThreadId, result: Result<Data, Failure>) {
        self.threads[tid].at = At::Done;
        match self.threads[tid].parent {
            None => self.finish_execution(tid, result),
            Some((parent, index)) => self.child_done(m, parent, index, tid, result),
        }
    }

    fn finish_execution(&mut self, tid: ThreadId, result: Result<Data, Failure>) {
        let previous = self.threads[tid].last_event;
        match result {
            Ok(output) => {
                if let Err(f) = check_size(&output, "the execution output") {
                    return self.fail_execution(previous, f);
                }
                self.emit(
                    previous,
                    Event::ExecutionSucceeded {
                        output: Arc::clone(&output),
                    },
                );
                self.status = Status::Succeeded { output };
            }
            Err(failure) => self.fail_execution(previous, failure),
        }
        self.cancel_everything();
    }

    fn fail_execution(&mut self, previous: u64, failure: Failure) {
        self.emit(
            previous,
            Event::ExecutionFailed {
                error: failure.error.clone(),
                cause: failure.cause.clone(),
            },
        );
        self.status = Status::Failed(failure);
        self.cancel_everything();
    }

    /// Cancels every outstanding task and timer (the execution is over).
    fn cancel_everything(&mut self) {
        let mut tasks: Vec<TaskId> = self.tasks.drain().map(|(t, _)| t).collect();
        tasks.sort();
        let mut timers: Vec<TimerId> = self.timers.drain().map(|(t, _)| t).collect();
        timers.sort();
        self.effects
            .extend(tasks.into_iter().map(|task| Effect::CancelTask { task }));
        self.effects.extend(
            timers
                .into_iter()
                .map(|timer| Effect::CancelTimer { timer }),
        );
        self.ready.clear();
    }

    fn child_done(
        &mut self,
        m: &StateMachine,
        parent: ThreadId,
        index: usize,
        child: ThreadId,
        result: Result<Data, Failure>,
    ) {
        let child_last = self.threads[child].last_event;
        let At::Children { run, frame } = &mut self.threads[parent].at else {
            return;
        };
        let state_name = Arc::clone(&m.state(run.state).name);
        let is_map = frame.is_map;
        frame.running -= 1;
        frame.finished += 1;
        frame.children[index] = None;
        match result {
            Ok(output) => {
                frame.results[index] = output;
                frame.succeeded[index] = true;
                let closing = if is_map {
                    self.emit(
                        child_last,
                        Event::MapIterationSucceeded {
                            name: state_name,
                            index,
                        },
                    )
                } else {
                    child_last
                };
                if let At::Children { frame, .. } = &mut self.threads[parent].at {
                    frame.last_event = child_last;
                    frame.closing_event = closing;
                }
            }
            Err(failure) => {
                if failure.is_terminal() {
                    return self.fail_execution(child_last, failure);
                }
                frame.failures += 1;
                let total = frame.items.len() as f64;
                // Either threshold breached fails the Map (ASL); none set
                // tolerates nothing.
                let within_count = frame.tolerated_count.is_none_or(|c| frame.failures <= c);
                let within_percentage = frame
                    .tolerated_percentage
                    .is_none_or(|p| (frame.failures as f64) * 100.0 / total <= p);
                let tolerated = (frame.tolerated_count.is_some()
                    || frame.tolerated_percentage.is_some())
                    && within_count
                    && within_percentage;
                if is_map {
                    self.emit(
                        child_last,
                        Event::MapIterationFailed {
                            name: state_name,
                            index,
                        },
                    );
                }
                if tolerated {
                    if let At::Children { frame, .. } = &mut self.threads[parent].at {
                        frame.results[index] = Data::new(failure.to_output());
                        frame.last_event = child_last;
                    }
                } else {
                    let failure = if is_map && (frame_has_tolerance(&self.threads[parent].at)) {
                        Failure::new(
                            "States.ExceedToleratedFailureThreshold",
                            "The specified tolerated failure threshold was exceeded",
                        )
                    } else {
                        failure
                    };
                    return self.children_failed(m, parent, child_last, failure);
                }
            }
        }
        self.continue_children(m, parent);
    }

    /// Every child succeeded (or failed within tolerance).
    fn children_finished(&mut self, m: &StateMachine, tid: ThreadId) {
        let At::Children { run, frame } = std::mem::replace(&mut self.threads[tid].at, At::Done)
        else {
            return;
        };
        let previous = frame.closing_event;
        // AWS records MapStateSucceeded, but no ParallelStateSucceeded.
        if frame.is_map {
            self.emit(previous, Event::MapStateSucceeded);
        }
        // AWS links the Exited event to the last child event, not to the
        // Succeeded event.
        self.threads[tid].last_event = previous;
        let results = Data::new(Value::Array(
            frame
                .results
                .into_iter()
                .map(Arc::unwrap_or_clone)
                .collect(),
        ));
        self.complete(m, tid, run, results, None);
    }

    /// A child failed beyond tolerance: stop the others, then the state
    /// fails (and may be retried or caught).
    fn children_failed(
        &mut self,
        m: &StateMachine,
        tid: ThreadId,
        child_last: u64,
        failure: Failure,
    ) {
        let At::Children { run, frame } = std::mem::replace(&mut self.threads[tid].at, At::Done)
        else {
            return;
        };
        if tid == 0 {
            self.kept_children = Some(KeptChildren::of(&run, &frame));
        }
        let name = Arc::clone(&m.state(run.state).name);
        for (index, child) in frame.children.iter().enumerate() {
            if let Some(child) = *child {
                self.abort_thread(child);
                if frame.is_map {
                    let last = self.threads[child].last_event;
                    self.emit(
                        last,
                        Event::MapIterationAborted {
                            name: name.clone(),
                            index,
                        },
                    );
                }
            }
        }
        let closing = if frame.is_map {
            Event::MapStateFailed
        } else {
            Event::ParallelStateFailed
        };
        self.fail_state_closing(m, tid, run, failure, Some((child_last, closing)));
    }

    /// Stops a thread and everything under it, cancelling its effects.
    fn abort_thread(&mut self, tid: ThreadId) {
        let at = std::mem::replace(&mut self.threads[tid].at, At::Done);
        self.ready.retain(|&t| t != tid);
        match at {
            At::Task {
                task,
                timeout,
                heartbeat,
                ..
            } => self.cancel_task(task, timeout, heartbeat),
            At::Timer { timer, .. } => self.cancel_timer(timer),
            At::Children { frame, .. } => {
                for child in frame.children.into_iter().flatten() {
                    self.abort_thread(child);
                }
            }
            At::Enter { .. } | At::Done => {}
        }
    }

    /// Forgets a task still running, asks the runtime to cancel it, and
    /// cancels its timeout and heartbeat timers (those still pending).
    fn cancel_task(&mut self, task: TaskId, timeout: Option<TimerId>, heartbeat: Option<TimerId>) {
        self.tasks.remove(&task);
        self.effects.push(Effect::CancelTask { task });
        for timer in timeout.into_iter().chain(heartbeat) {
            self.cancel_timer(timer);
        }
    }

    fn new_timer(&mut self, tid: ThreadId, due: DateTime<Utc>) -> TimerId {
        self.next_timer += 1;
        let timer = TimerId(self.next_timer);
        self.timers.insert(timer, tid);
        self.effects.push(Effect::StartTimer { timer, due });
        timer
    }

    fn cancel_timer(&mut self, timer: TimerId) {
        if self.timers.remove(&timer).is_some() {
            self.effects.push(Effect::CancelTimer { timer });
        }
    }

    /// The state's work is done with `result`: ResultSelector, Assign,
    /// ResultPath, OutputPath, the Exited event, then the transition.
    /// `choice` carries a Choice state's decision and the index of the rule
    /// that matched (its Assign applies too).
    fn complete(
        &mut self,
        m: &StateMachine,
        tid: ThreadId,
        run: Run,
        result: Data,
        choice: Option<(StateId, Option<usize>)>,
    ) {
        let state = m.state(run.state);
        // A Choice applies the matching rule's Assign; its own Assign only
        // when no rule matched (the Default).
        let assign: Option<&Payload> = match (&state.kind, choice) {
            (StateKind::Choice(c), Some((_, Some(rule)))) => c.choices[rule].assign.as_ref(),
            _ => state.assign.as_ref(),
        };
        let rule_output = match (&state.kind, choice) {
            (StateKind::Choice(c), Some((_, Some(rule)))) => c.choices[rule].output.as_ref(),
            _ => None,
        };
        let finished = self
            .evaluator(m, tid, &run)
            .finish_with(result, assign, rule_output);
        let (output, assigned) = match finished {
            Ok(v) => v,
            Err(f) => return self.fail_state(m, tid, run, f),
        };
        // An output that is the input itself was measured on the way in.
        if !Arc::ptr_eq(&output, &run.input) {
            if let Err(f) = check_size(&output, PayloadOf("output", &state.name)) {
                return self.fail_state(m, tid, run, f);
            }
        }
        if let Some(assigned) = &assigned {
            let vars = Arc::make_mut(&mut self.threads[tid].vars);
            for (name, value) in assigned {
                vars.set(name.clone(), value.clone());
            }
        }
        if matches!(state.kind, StateKind::Fail(_)) {
            return;
        }
        self.emit_on(
            tid,
            Event::StateExited {
                state_type: state_type(&state.kind),
                name: state.name.clone(),
                output: output.clone(),
                assigned_variables: assigned.map(|a| Box::new(render_assigned(a))),
            },
        );
        let next = match choice {
            Some((next, _)) => Some(next),
            None => match state.transition {
                Some(Transition::Next(next)) => Some(next),
                _ => None,
            },
        };
        match next {
            Some(next) => {
                self.threads[tid].at = At::Enter {
                    state: next,
                    input: output,
                };
                self.ready.push(tid);
            }
            None => self.thread_done(m, tid, Ok(output)),
        }
    }

    /// The state failed: retry, catch, or fail its thread.
    fn fail_state(&mut self, m: &StateMachine, tid: ThreadId, run: Run, failure: Failure) {
        self.fail_state_closing(m, tid, run, failure, None);
    }

    /// AWS records a failed JSONata evaluation (and, for a Map, the Map's
    /// failure) before the state fails: EvaluationFailed follows the
    /// event the state was entered after (a Wait's follows its entry).
    fn evaluation_failed(&mut self, m: &StateMachine, tid: ThreadId, run: &Run, failure: &Failure) {
        let state = m.state(run.state);
        let previous = if matches!(state.kind, StateKind::Wait(_)) {
            run.entered_event
        } else {
            run.entered_after
        };
        let cause = failure.cause.clone().unwrap_or_default();
        let location = cause
            .split("specified for the field '")
            .nth(1)
            .and_then(|rest| rest.split('\'').next())
            .or_else(|| {
                cause
                    .split(". The ")
                    .nth(1)
                    .and_then(|rest| rest.split(" field cannot").next())
                    .filter(|f| !f.contains(' '))
            })
            .map(str::to_owned);
        let id = self.emit(
            previous,
            Event::EvaluationFailed(Box::new(EvaluationFailed {
                state: state.name.to_string(),
                location,
                error: "States.QueryEvaluationError".into(),
                cause,
            })),
        );
        self.threads[tid].last_event = id;
        if matches!(state.kind, StateKind::Map(_)) {
            let id = self.emit(id, Event::MapStateFailed);
            self.threads[tid].last_event = id;
        }
    }

    /// Like `fail_state`, for a Map or Parallel whose children failed:
    /// `closing` (MapStateFailed / ParallelStateFailed, with the event it
    /// follows) is recorded unless the state is retried, as AWS does.
    fn fail_state_closing(
        &mut self,
        m: &StateMachine,
        tid: ThreadId,
        mut run: Run,
        failure: Failure,
        closing: Option<(u64, Event)>,
    ) {
        let state = m.state(run.state);
        if tid == 0 {
            self.redrive_from = Some((run.state, Arc::clone(&run.input)));
        }
        if closing.is_none() && failure.error.as_deref() == Some("States.QueryEvaluationError") {
            self.evaluation_failed(m, tid, &run, &failure);
        }
        if failure.is_terminal() {
            if let Some((previous, event)) = closing {
                let id = self.emit(previous, event);
                self.threads[tid].last_event = id;
            }
            let failure = with_state_prefix(failure, &state.name, run.entered_event);
            return self.fail_execution(self.threads[tid].last_event, failure);
        }
        let (retriers, catchers) = match &state.kind {
            StateKind::Task(t) => (&t.retry[..], &t.catch[..]),
            StateKind::Parallel(p) => (&p.retry[..], &p.catch[..]),
            StateKind::Map(m) => (&m.retry[..], &m.catch[..]),
            _ => (&[][..], &[][..]),
        };
        if let Some(index) = retriers
            .iter()
            .position(|r| failure::matches(&r.error_equals, &failure))
        {
            let retrier = &retriers[index];
            let attempts = run.retries[index];
            if u64::from(attempts) < retrier.max_attempts {
                // A Map or Parallel retried after a child failed goes on
                // from that child's last event, as AWS links it.
                if let Some((previous, _)) = &closing {
                    self.threads[tid].last_event = *previous;
                }
                let delay = failure::retry_delay_ms(retrier, attempts, &mut self.random);
                run.retries[index] += 1;
                run.retry_count += 1;
                let due = self.now + Duration::milliseconds(delay.min(i64::MAX as u64) as i64);
                let timer = self.new_timer(tid, due);
                self.threads[tid].at = At::Timer {
                    run,
                    timer,
                    then: AfterTimer::Retry,
                };
                return;
            }
        }
        if let Some((previous, event)) = closing {
            let id = self.emit(previous, event);
            self.threads[tid].last_event = id;
        }
        if let Some(catcher) = catchers
            .iter()
            .find(|c| failure::matches(&c.error_equals, &failure))
        {
            if tid == 0 {
                self.redrive_from = None;
            }
            let caught = self.evaluator(m, tid, &run).catch_output(catcher, &failure);
            let (output, assigned) = match caught {
                Ok(v) => v,
                Err(f) => return self.fail_execution(self.threads[tid].last_event, f),
            };
            if let Some(assigned) = &assigned {
                let vars = Arc::make_mut(&mut self.threads[tid].vars);
                for (name, value) in assigned {
                    vars.set(name.clone(), value.clone());
                }
            }
            self.emit_on(
                tid,
                Event::StateExited {
                    state_type: state_type(&state.kind),
                    name: state.name.clone(),
                    output: output.clone(),
                    assigned_variables: assigned.map(|a| Box::new(render_assigned(a))),
                },
            );
            self.threads[tid].at = At::Enter {
                state: catcher.next,
                input: output,
            };
            self.ready.push(tid);
            return;
        }
        self.thread_done(m, tid, Err(failure));
    }

    fn task_started(&mut self, m: &StateMachine, task: TaskId, worker_name: Option<String>) {
        let Some(&tid) = self.tasks.get(&task) else {
            return;
        };
        let At::Task { run, started, .. } = &mut self.threads[tid].at else {
            return;
        };
        if std::mem::replace(started, true) {
            return;
        }
        let t = match &m.state(run.state).kind {
            StateKind::Task(t) => &t.resource,
            _ => return,
        };
        let event = if is_activity(t) {
            Event::ActivityStarted { worker_name }
        } else {
            Event::TaskStarted(Box::new(crate::history::TaskStarted {
                resource_type: resource_type(t),
                resource: resource_name(t),
            }))
        };
        self.emit_on(tid, event);
    }

    fn task_submitted(&mut self, m: &StateMachine, task: TaskId, output: Value) {
        let Some(&tid) = self.tasks.get(&task) else {
            return;
        };
        let At::Task { run, .. } = &self.threads[tid].at else {
            return;
        };
        let t = match &m.state(run.state).kind {
            StateKind::Task(t) => &t.resource,
            _ => return,
        };
        let event = Event::TaskSubmitted(Box::new(crate::history::TaskSucceeded {
            resource_type: resource_type(t),
            resource: resource_name(t),
            output: Data::new(output),
        }));
        self.emit_on(tid, event);
    }

    /// The token of a task that is answered by a callback or a worker.
    fn task_token(&self, resource: &Resource, task: TaskId) -> Option<String> {
        use crate::asl::model::IntegrationPattern;
        let secret = self.token_secret.as_deref()?;
        let wants =
            is_activity(resource) || resource.pattern == IntegrationPattern::WaitForTaskToken;
        wants.then(|| crate::interp::token::mint(secret, task))
    }

    fn task_heartbeat(&mut self, task: TaskId) {
        let Some(&tid) = self.tasks.get(&task) else {
            return;
        };
        let At::Task {
            heartbeat: Some(old),
            heartbeat_seconds: Some(seconds),
            ..
        } = &self.threads[tid].at
        else {
            return;
        };
        let (old, seconds) = (*old, *seconds);
        self.cancel_timer(old);
        let renewed = self.new_timer(tid, self.now + Duration::seconds(seconds as i64));
        if let At::Task { heartbeat, .. } = &mut self.threads[tid].at {
            *heartbeat = Some(renewed);
        }
    }

    fn task_finished(&mut self, m: &StateMachine, task: TaskId, result: Result<Value, Failure>) {
        let Some(tid) = self.tasks.remove(&task) else {
            return; // unknown, cancelled or already answered: ignore
        };
        let At::Task {
            run,
            timeout,
            heartbeat,
            ..
        } = std::mem::replace(&mut self.threads[tid].at, At::Done)
        else {
            return;
        };
        for timer in timeout.into_iter().chain(heartbeat) {
            self.cancel_timer(timer);
        }
        let resource = match &m.state(run.state).kind {
            StateKind::Task(t) => t.resource.clone(),
            StateKind::Map(_) => {
                let arn = self.map_run_tasks.remove(&task);
                if let (Err(_), Some(arn)) = (&result, arn) {
                    self.failed_map_runs.insert(run.state, arn);
                }
                return self.map_run_finished(m, tid, run, result);
            }
            _ => return,
        };
        match result {
            Ok(output) => {
                let output = Data::new(output);
                let event = if is_activity(&resource) {
                    Event::ActivitySucceeded {
                        output: Arc::clone(&output),
                    }
                } else {
                    Event::TaskSucceeded(Box::new(crate::history::TaskSucceeded {
                        resource_type: resource_type(&resource),
                        resource: resource_name(&resource),
                        output: Arc::clone(&output),
                    }))
                };
                self.emit_on(tid, event);
                match check_size(&output, "the task result") {
                    Ok(()) => self.complete(m, tid, run, output, None),
                    Err(f) => self.fail_state(m, tid, run, f),
                }
            }
            Err(failure) => {
                let event = if is_activity(&resource) {
                    Event::ActivityFailed {
                        error: failure.error.clone(),
                        cause: failure.cause.clone(),
                    }
                } else {
                    Event::TaskFailed(task_failure(&resource, &failure))
                };
                self.emit_on(tid, event);
                self.fail_state(m, tid, run, failure);
            }
        }
    }

    /// A Map Run answered: its result (the children's outputs, or the
    /// ResultWriter's details) goes through ResultSelector and ResultPath
    /// as a Map's result does; a failure meets Retry and Catch.
    fn map_run_finished(
        &mut self,
        m: &StateMachine,
        tid: ThreadId,
        run: Run,
        result: Result<Value, Failure>,
    ) {
        match result {
            Ok(output) => {
                // As AWS links them: MapStateSucceeded and MapStateExited
                // both follow MapRunSucceeded.
                let succeeded = self.emit_on(tid, Event::MapRunSucceeded);
                self.emit_on(tid, Event::MapStateSucceeded);
                self.threads[tid].last_event = succeeded;
                let output = Data::new(output);
                match check_size(&output, "the Map Run result") {
                    Ok(()) => self.complete(m, tid, run, output, None),
                    Err(f) => self.fail_state(m, tid, run, f),
                }
            }
            Err(failure) => {
                self.emit_on(
                    tid,
                    Event::MapRunFailed {
                        error: failure.error.clone(),
                        cause: failure.cause.clone(),
                    },
                );
                self.emit_on(tid, Event::MapStateFailed);
                self.fail_state(m, tid, run, failure);
            }
        }
    }

    fn timer_fired(&mut self, m: &StateMachine, timer: TimerId) {
        let Some(tid) = self.timers.remove(&timer) else {
            return;
        };
        if tid == usize::MAX {
            return self.time_out_execution();
        }
        match std::mem::replace(&mut self.threads[tid].at, At::Done) {
            At::Timer {
                run,
                then: AfterTimer::WaitOver,
                ..
            } => {
                let effective = self.evaluator(m, tid, &run).input_only();
                match effective {
                    Ok(v) => self.complete(m, tid, run, v, None),
                    Err(f) => self.fail_state(m, tid, run, f),
                }
            }
            At::Timer {
                run,
                then: AfterTimer::Retry,
                ..
            } => self.execute(m, tid, run),
            At::Task {
                run,
                task,
                timeout,
                heartbeat,
                ..
            } => {
                // The fired timer is already gone; the other one is cancelled.
                self.cancel_task(task, timeout, heartbeat);
                let resource = match &m.state(run.state).kind {
                    StateKind::Task(t) => t.resource.clone(),
                    _ => return,
                };
                let error = if heartbeat == Some(timer) {
                    "States.HeartbeatTimeout"
                } else {
                    "States.Timeout"
                };
                let failure = Failure {
                    error: Some(error.into()),
                    cause: None,
                };
                let event = if is_activity(&resource) {
                    Event::ActivityTimedOut {
                        error: failure.error.clone(),
                        cause: failure.cause.clone(),
                    }
                } else {
                    Event::TaskTimedOut(task_failure(&resource, &failure))
                };
                self.emit_on(tid, event);
                self.fail_state(m, tid, run, failure);
            }
            other => self.threads[tid].at = other,
        }
    }

    /// Remembers the top-level state in progress (a stop or a timeout ends
    /// the execution while it runs).
    fn note_redrive_point(&mut self) {
        let run = match self.threads.first().map(|t| &t.at) {
            Some(At::Children { run, frame }) => {
                self.kept_children = Some(KeptChildren::of(run, frame));
                run
            }
            Some(At::Task { run, .. } | At::Timer { run, .. }) => run,
            Some(At::Enter { state, input }) => {
                self.redrive_from = Some((*state, Arc::clone(input)));
                return;
            }
            _ => return,
        };
        self.redrive_from = Some((run.state, Arc::clone(&run.input)));
    }

    /// Whether RedriveExecution can restart this execution.
    fn can_redrive(&self) -> bool {
        matches!(
            self.status,
            Status::Failed(_) | Status::Aborted(_) | Status::TimedOut(_)
        ) && self.redrive_from.is_some()
    }

    fn redrive(&mut self) {
        if !self.can_redrive() {
            return;
        }
        let Some((state, input)) = self.redrive_from.take() else {
            return;
        };
        self.redrive_count += 1;
        self.ctx.info.redrive_count = self.redrive_count;
        self.redriven_map_runs = std::mem::take(&mut self.failed_map_runs);
        self.redriven_children = self.kept_children.take().filter(|k| k.state == state);
        self.ctx.set_input(Arc::clone(&self.ctx_input()));
        let previous = self.last_id();
        let id = self.emit(
            previous,
            Event::ExecutionRedriven {
                redrive_count: self.redrive_count,
            },
        );
        self.status = Status::Running;
        let root = &mut self.threads[0];
        root.last_event = id;
        root.at = At::Enter { state, input };
        self.ready.push(0);
    }

    /// The execution's input (ExecutionStarted's), for the context object.
    fn ctx_input(&self) -> Data {
        Arc::clone(&self.input)
    }

    fn time_out_execution(&mut self) {
        self.note_redrive_point();
        let previous = self.last_id();
        let failure = Failure {
            error: Some("States.Timeout".into()),
            cause: Some("The execution ran longer than the state machine's TimeoutSeconds.".into()),
        };
        self.emit(
            previous,
            Event::ExecutionTimedOut {
                error: failure.error.clone(),
                cause: failure.cause.clone(),
            },
        );
        self.status = Status::TimedOut(failure);
        self.cancel_everything();
    }

    fn stop(&mut self, m: &StateMachine, error: Option<String>, cause: Option<String>) {
        if self.last_id() == 0 {
            return;
        }
        self.note_redrive_point();
        // A distributed Map's Map Run stops with its execution.
        let map_runs: Vec<ThreadId> = (0..self.threads.len())
            .filter(|&tid| match &self.threads[tid].at {
                At::Task { run, .. } => matches!(m.state(run.state).kind, StateKind::Map(_)),
                _ => false,
            })
            .collect();
        for tid in map_runs {
            if let At::Task { run, task, .. } = &self.threads[tid].at {
                if let Some(arn) = self.map_run_tasks.remove(task) {
                    self.failed_map_runs.insert(run.state, arn);
                }
            }
            self.emit_on(tid, Event::MapRunAborted);
        }
        let previous = self.last_id();
        self.emit(
            previous,
            Event::ExecutionAborted {
                error: error.clone(),
                cause: cause.clone(),
            },
        );
        self.status = Status::Aborted(Failure { error, cause });
        self.cancel_everything();
    }
}

/// How a distributed Map's children get their input: the Map state's
/// ItemSelector evaluated with `$$.Map.Item` set, or the item itself.
/// Built once per Map Run; pure like the rest of the interpreter.
#[derive(Debug)]
pub struct ItemSelection {
    machine: Arc<StateMachine>,
    state: StateId,
    raw_input: Data,
    effective: Data,
    context: Value,
}

impl ItemSelection {
    pub fn new(machine: Arc<StateMachine>, spec: &crate::map_run::MapRunSpec) -> Self {
        Self {
            machine,
            state: StateId(spec.state),
            raw_input: Data::new(spec.raw_input.clone()),
            effective: Data::new(spec.effective.clone()),
            context: spec.context.clone(),
        }
    }

    /// The input of the child for `item` at `index`.
    pub fn select(&self, index: usize, item: Value) -> Result<Value, Failure> {
        let state = self.machine.state(self.state);
        let StateKind::Map(map) = &state.kind else {
            return Ok(item);
        };
        let Some(selector) = map.item_selector.as_ref() else {
            return Ok(item);
        };
        let mut context = self.context.clone();
        if let Value::Object(root) = &mut context {
            root.insert(
                "Map".into(),
                serde_json::json!({"Item": {"Index": index, "Value": item}}),
            );
        }
        let vars = VarScope::default();
        // ItemSelector has no use for randomness but States.UUID: seeded
        // by the index, so a child started again gets the same input.
        let mut random = SplitMix64(index as u64);
        let mut ev = Evaluator {
            state,
            run_input: &self.raw_input,
            entered_event: 0,
            context: &context,
            vars: &vars,
            random: &mut random,
        };
        ev.map_item(Some(selector), &self.effective, Data::new(Value::Null))
            .map(Arc::unwrap_or_clone)
    }
}

fn frame_has_tolerance(at: &At) -> bool {
    matches!(at, At::Children { frame, .. } if frame.tolerated_count.is_some() || frame.tolerated_percentage.is_some())
}

/// AWS prefixes runtime failures with the state and the event it entered at.
fn with_state_prefix(failure: Failure, state: &str, entered_event: u64) -> Failure {
    let prefix = format!(
        "An error occurred while executing the state '{state}' (entered at the event id #{entered_event})."
    );
    let cause = match failure.cause {
        Some(c) if c.starts_with("An error occurred while executing the state") => c,
        Some(c) => format!("{prefix} {c}"),
        None => prefix,
    };
    Failure {
        error: failure.error,
        cause: Some(cause),
    }
}

/// AWS records assigned variables as JSON text.
fn render_assigned(assigned: Map<String, Value>) -> Map<String, Value> {
    assigned
        .into_iter()
        .map(|(k, v)| (k, Value::String(v.to_string())))
        .collect()
}

/// States.DataLimitExceeded when `value` is larger than 256 KiB as
/// compact JSON, or nests too deep (see [`check_depth`]). `what` names it, and is only formatted on failure.
fn check_size(value: &Value, what: impl std::fmt::Display) -> Result<(), Failure> {
    let size = json_size(value, MAX_PAYLOAD_BYTES + 1);
    if size > MAX_PAYLOAD_BYTES {
        return Err(Failure::new(
            "States.DataLimitExceeded",
            format!(
                "The state/task returned a result with a size exceeding the maximum number of bytes service limit: {what} is larger than {MAX_PAYLOAD_BYTES} bytes."
            ),
        ));
    }
    check_depth(value, what)
}

/// States.DataLimitExceeded when `value` nests deeper than
/// [`MAX_PAYLOAD_DEPTH`].
fn check_depth(value: &Value, what: impl std::fmt::Display) -> Result<(), Failure> {
    if nests_deeper_than(value, MAX_PAYLOAD_DEPTH) {
        return Err(Failure::new(
            "States.DataLimitExceeded",
            format!(
                "The state/task returned a result nested deeper than the service limit: {what} nests arrays and objects more than {MAX_PAYLOAD_DEPTH} levels deep."
            ),
        ));
    }
    Ok(())
}

/// Names a state's payload in a message without formatting it up front.
struct PayloadOf<'a>(&'static str, &'a str);

impl std::fmt::Display for PayloadOf<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the {} of the state '{}'", self.0, self.1)
    }
}

fn state_type(kind: &StateKind) -> StateType {
    match kind {
        StateKind::Pass(_) => StateType::Pass,
        StateKind::Task(_) => StateType::Task,
        StateKind::Choice(_) => StateType::Choice,
        StateKind::Wait(_) => StateType::Wait,
        StateKind::Succeed => StateType::Succeed,
        StateKind::Fail(_) => StateType::Fail,
        StateKind::Parallel(_) => StateType::Parallel,
        StateKind::Map(_) => StateType::Map,
    }
}

/// The details of a TaskFailed or TaskTimedOut event.
fn task_failure(resource: &Resource, failure: &Failure) -> Box<crate::history::TaskFailed> {
    Box::new(crate::history::TaskFailed {
        resource_type: resource_type(resource),
        resource: resource_name(resource),
        error: failure.error.clone(),
        cause: failure.cause.clone(),
    })
}

/// Activity tasks are recorded as Activity* events, not Task* events.
fn is_activity(resource: &Resource) -> bool {
    matches!(
        resource.kind,
        crate::asl::model::ResourceKind::Activity { .. }
    )
}

/// AWS's `resourceType` in task events: the service part of the ARN.
pub fn resource_type(resource: &Resource) -> String {
    use crate::asl::model::ResourceKind as K;
    match &resource.kind {
        K::HttpInvoke => "http".into(),
        K::Activity { .. } => "activity".into(),
        K::LambdaFunction { .. } | K::LambdaInvoke => "lambda".into(),
        K::StartExecution | K::MapRun => "states".into(),
        K::Process { .. } => "stepline".into(),
        K::Service { service, .. } => service.clone(),
    }
}

/// AWS's `resource` in task events: the action, with the pattern suffix.
fn resource_name(resource: &Resource) -> String {
    use crate::asl::model::{IntegrationPattern as P, ResourceKind as K};
    let base = match &resource.kind {
        K::HttpInvoke => "invoke".to_owned(),
        K::Activity { .. } | K::LambdaFunction { .. } => resource.arn.clone(),
        K::LambdaInvoke => "invoke".to_owned(),
        K::StartExecution => "startExecution".to_owned(),
        K::MapRun => "mapRun".to_owned(),
        K::Process { name } => format!("process:{name}"),
        K::Service { action, .. } => action.clone(),
    };
    let suffix = match resource.pattern {
        P::RequestResponse => "",
        P::Sync => ".sync",
        P::Sync2 => ".sync:2",
        P::WaitForTaskToken => ".waitForTaskToken",
    };
    format!("{base}{suffix}")
}

#[cfg(test)]
mod tests;

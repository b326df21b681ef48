//! One execution's loop: carry out the effects of the last step (after its
//! flush), wait for the next message, apply it, flush, repeat.
//!
//! Tasks are dispatched here by kind: activity tasks are offered to
//! workers; nested executions are run by the engine itself; every other
//! resource goes to the [`TaskRunner`]. A `.waitForTaskToken` task records
//! TaskSubmitted when its request is accepted and then waits for a
//! callback; a task the interpreter cancels (timeout, stop, a failed
//! sibling branch) has its invocation dropped, which kills what it runs.
//!
//! Logs: the loop runs inside an `execution` span carrying the ARN, and
//! each state entered, task invoked and task answered is logged with the
//! state's name (a task's own lines run inside a `task` span with the
//! state and attempt), so every line about an execution says where it was.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::Instrument as _;

use super::durable::{DurableExecution, Outstanding, idempotency_key};
use super::engine::{Engine, EngineError, lock};
use super::metrics::Metrics;
use super::timers::TimerKey;
use crate::TaskCall;
use crate::tasks::activity::ActivityTask;
use crate::tasks::nested;
use stepline_language::asl::model::{IntegrationPattern, ResourceKind};
use stepline_language::interp::{Command, Effect, Failure, TaskId, TaskRequest, TimerId};

/// What reaches a running execution.
#[derive(Debug)]
pub(crate) enum Message {
    /// Applied as it is (task results of our own invocations, timers, stop).
    Command(Command),
    /// An answer from outside (a callback, an activity worker): applied
    /// only while its task is still open; `reply` is sent once the answer
    /// is durable, or with the reason it was refused.
    Answer {
        task: TaskId,
        command: Command,
        reply: oneshot::Sender<Result<(), EngineError>>,
    },
    /// The wake-up of an execution that went to sleep (see `try_sleep`);
    /// nothing to apply.
    Wake,
    /// A message another node left in the store (`engine/cluster.rs`):
    /// removed with the step it causes. With a task, an answer: applied
    /// only while that task is open, and removed unapplied otherwise.
    Posted {
        id: u64,
        task: Option<TaskId>,
        command: Command,
    },
    /// This node took the execution over again with a lease of `epoch`:
    /// a loop running on an older lease stops without writing, and the
    /// execution resumes from the store.
    Release { epoch: u64 },
    /// A pooled activity task has its slot: it is offered to the workers
    /// now, and its ActivityStarted records the wait.
    SlotTaken {
        task: TaskId,
        wait: Box<crate::pools::PoolWait>,
    },
}

/// Called once by the first message that reaches a sleeping execution.
type Waker = Box<dyn FnOnce() + Send>;

/// Where an execution's messages arrive: a queue and a wake-up, shared
/// by the senders and the execution's loop. Lighter than a tokio channel
/// (which allocates a cache-padded channel and a first block of 32 slots
/// up front) because a waiting execution holds one for as long as it
/// waits; the queue allocates only when messages arrive.
#[derive(Clone)]
pub(crate) struct Inbox(Arc<Mailbox>);

struct Mailbox {
    queue: std::sync::Mutex<Queue>,
    arrived: tokio::sync::Notify,
    /// Set when the execution's loop ends: sends fail from then on.
    closed: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
struct Queue {
    messages: std::collections::VecDeque<Message>,
    /// Set while the execution sleeps: the next message wakes it.
    sleeper: Option<Waker>,
}

/// The receiving side: only the execution's loop holds it.
pub(crate) struct Messages(Arc<Mailbox>);

impl Inbox {
    pub fn channel() -> (Self, Messages) {
        let mailbox = Arc::new(Mailbox {
            queue: std::sync::Mutex::new(Queue::default()),
            arrived: tokio::sync::Notify::new(),
            closed: std::sync::atomic::AtomicBool::new(false),
        });
        (Self(Arc::clone(&mailbox)), Messages(mailbox))
    }

    /// Sends `message`; it comes back when the execution has ended.
    pub fn send(&self, message: Message) -> Result<(), Message> {
        let sleeper = {
            let mut queue = lock(&self.0.queue);
            // Checked under the queue's lock, which `close` takes too: a
            // message is either refused or seen by the loop, never lost.
            if self.0.closed.load(std::sync::atomic::Ordering::Acquire) {
                return Err(message);
            }
            queue.messages.push_back(message);
            queue.sleeper.take()
        };
        self.0.arrived.notify_one();
        if let Some(wake) = sleeper {
            wake();
        }
        Ok(())
    }

    /// Whether the loop that received from it has ended (what it had not
    /// applied is gone with it).
    pub fn is_closed(&self) -> bool {
        self.0.closed.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The receiving side again, for the loop that wakes a sleeping
    /// execution (the loop that slept has ended).
    pub fn reopen(&self) -> Messages {
        Messages(Arc::clone(&self.0))
    }
}

impl Messages {
    /// The next message, waiting for one if there is none.
    async fn recv(&mut self) -> Message {
        loop {
            if let Some(message) = lock(&self.0.queue).messages.pop_front() {
                return message;
            }
            // notify_one leaves a permit when nobody waits, so a message
            // pushed between the check and this wait is not missed.
            self.0.arrived.notified().await;
        }
    }

    /// Refuses every later message; returns those not yet received.
    fn close(&mut self) -> Vec<Message> {
        let mut queue = lock(&self.0.queue);
        self.0
            .closed
            .store(true, std::sync::atomic::Ordering::Release);
        queue.messages.drain(..).collect()
    }

    /// Goes to sleep unless a message is waiting: from then on the next
    /// message calls `wake` (once).
    fn try_sleep(&self, wake: Waker) -> bool {
        let mut queue = lock(&self.0.queue);
        if !queue.messages.is_empty() {
            return false;
        }
        queue.sleeper = Some(wake);
        true
    }
}

/// Effects waiting to be carried out (after a flush).
#[derive(Debug, Default)]
pub(crate) struct Pending {
    tasks: Vec<TaskRequest>,
    /// Activity tasks a worker already took before a restart: not offered
    /// again (the worker holds the token).
    taken: Vec<TaskId>,
    /// Callback tasks whose request was accepted before a restart: they
    /// wait for their answer without being invoked again.
    submitted: Vec<TaskId>,
    timers: Vec<(TimerId, DateTime<Utc>)>,
    cancelled_timers: Vec<TimerId>,
    cancelled_tasks: Vec<TaskId>,
}

impl Pending {
    pub fn from_effects(effects: Vec<Effect>) -> Self {
        let mut pending = Self::default();
        pending.absorb(effects);
        pending
    }

    fn absorb(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::InvokeTask(request) => self.tasks.push(*request),
                Effect::StartTimer { timer, due } => self.timers.push((timer, due)),
                Effect::CancelTimer { timer } => self.cancelled_timers.push(timer),
                Effect::CancelTask { task } => self.cancelled_tasks.push(task),
            }
        }
    }

    pub fn from_outstanding(outstanding: Outstanding) -> Self {
        Self {
            tasks: outstanding.tasks,
            taken: outstanding.started,
            submitted: outstanding.submitted,
            timers: outstanding.timers,
            ..Self::default()
        }
    }
}

/// What the loop remembers of a task it handed out, for when its answer
/// comes: the request, and the cache key its result is to be kept under
/// (a call a cache rule covers that missed).
struct Handed {
    state_name: String,
    resource: String,
    cache: Option<crate::cache::CacheKey>,
}

impl Handed {
    fn of(request: &TaskRequest, cache: Option<crate::cache::CacheKey>) -> Self {
        Self {
            state_name: request.state_name.clone(),
            resource: request.resource.arn.clone(),
            cache,
        }
    }
}

/// A task being carried out: its invocation (dropped to cancel it) or its
/// place in an activity's queue.
enum Running {
    Invocation(JoinHandle<()>, crate::HandedOver),
    Activity {
        activity_arn: String,
        token: Option<String>,
        /// A pooled activity's slot: taken (or waited for) by this task,
        /// given back when the entry goes (the task ended or was
        /// cancelled).
        _slot: Option<SlotHolder>,
        /// The pooled task to offer once it has its slot.
        offer: Option<Box<TaskRequest>>,
        /// How long it waited for its slot: its ActivityStarted says so.
        wait: Option<Box<crate::pools::PoolWait>>,
    },
}

/// The task that takes and holds a pooled activity's slot; dropped, it
/// gives the slot back (or leaves the pool's waiters).
struct SlotHolder(JoinHandle<()>);

impl Drop for SlotHolder {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A pooled task's turn for a slot.
struct PoolTurn {
    pool: String,
    /// Its start is recorded: it held a slot before a restart and takes
    /// one again ahead of the tasks that were only waiting.
    first: bool,
    /// On one node, its place taken at once (in the loop, so that a node
    /// resuming its executions knows every task that retakes a slot
    /// before it lets the others have one); with several nodes the store
    /// is asked when the task runs.
    local: Option<crate::pools::Turn>,
    /// Since when it waits.
    since: DateTime<Utc>,
}

/// The span every line about one execution is logged in.
pub(crate) fn span(arn: &str) -> tracing::Span {
    tracing::info_span!("execution", execution = %arn)
}

/// Runs one execution until it ends (or its storage fails), inside a span
/// that names it.
///
/// An `async move` block rather than an `async fn`: an async fn's future
/// keeps its arguments and the locals they move into apart, and this one
/// lives as long as its execution waits.
#[allow(clippy::manual_async_fn)]
pub(crate) fn run(
    engine: Engine,
    mut execution: DurableExecution,
    mut pending: Pending,
    inbox: Inbox,
    mut messages: Messages,
) -> impl std::future::Future<Output = ()> + Send {
    let span = span(&execution.record().arn);
    async move {
        let arn = execution.record().arn.clone();
        let mut timers: HashMap<TimerId, TimerKey> = HashMap::new();
        let mut running: HashMap<TaskId, Running> = HashMap::new();
        let mut handed: HashMap<TaskId, Handed> = HashMap::new();
        // Set when a storage failure stops the loop: what the execution did
        // in memory since its last write is not stored, so its end (if it
        // reached one) is not announced; it resumes from the store.
        let mut paused = false;
        'life: loop {
            for task in pending.cancelled_tasks.drain(..) {
                handed.remove(&task);
                cancel(&engine, &arn, &mut running, task);
            }
            for timer in pending.cancelled_timers.drain(..) {
                if let Some(key) = timers.remove(&timer) {
                    engine.timers().cancel(key);
                }
            }
            for (timer, due) in pending.timers.drain(..) {
                let key = engine.timers().arm(due, inbox.clone(), timer);
                timers.insert(timer, key);
            }
            for request in std::mem::take(&mut pending.tasks) {
                let task = request.task;
                if pending.submitted.contains(&task) {
                    continue;
                }
                let mocked = engine.mocked(execution.record(), &request);
                // A call a cache rule covers is answered from the cache
                // when a live result is there; else its result is kept.
                let mut cached = None;
                if mocked.is_none() {
                    if let Some(key) = engine.task_cache().key_for(&request) {
                        cached = engine.cache_lookup(&key);
                        if cached.is_none() {
                            handed.insert(task, Handed::of(&request, Some(key)));
                        }
                    }
                }
                if !handed.contains_key(&task) && cached.is_none() {
                    handed.insert(task, Handed::of(&request, None));
                }
                let pool = (mocked.is_none() && cached.is_none())
                    .then(|| engine.pools().pool_of(&request).map(str::to_owned))
                    .flatten()
                    .map(|pool| {
                        let first = execution.execution().is_task_started(task);
                        let since = engine.now();
                        let local = (!engine.is_clustered())
                            .then(|| {
                                let who = crate::pools::Waiting {
                                    execution_arn: arn.clone(),
                                    state_name: request.state_name.clone(),
                                    since,
                                };
                                engine.pools().turn(&pool, who, first)
                            })
                            .flatten();
                        PoolTurn {
                            pool,
                            first,
                            local,
                            since,
                        }
                    });
                if mocked.is_none()
                    && cached.is_none()
                    && matches!(request.resource.kind, ResourceKind::Activity { .. })
                {
                    let activity_arn = request.resource.arn.clone();
                    let token = request.token.clone();
                    let taken = pending.taken.contains(&task);
                    let (slot, offer) = match pool {
                        Some(turn) => (
                            Some(hold_slot(&engine, &arn, &request, turn, inbox.clone())),
                            (!taken).then(|| Box::new(request)),
                        ),
                        None => {
                            if !taken {
                                offer_activity(&engine, &arn, request);
                            }
                            (None, None)
                        }
                    };
                    running.insert(
                        task,
                        Running::Activity {
                            activity_arn,
                            token,
                            _slot: slot,
                            offer,
                            wait: None,
                        },
                    );
                    continue;
                }
                // Usually recorded with the step that scheduled the task; a
                // task resumed after a restart (or a mocked activity) is
                // started here. No flush of its own: after a crash the task is
                // invoked again and starts again. A pooled task starts once
                // it has its slot (`invoke`).
                if pool.is_none() && !execution.execution().is_task_started(task) {
                    let started = Command::TaskStarted {
                        task,
                        worker_name: None,
                        pool: None,
                    };
                    if let Err(e) = execution.apply(engine.store(), engine.now(), started) {
                        pause(&engine, &arn, e.into());
                        paused = true;
                        break 'life;
                    }
                }
                let handed_over = crate::HandedOver::default();
                let handle = match (mocked, cached) {
                    (Some(answer), _) => answer_with(answer, task, inbox.clone()),
                    (None, Some((output, hit))) => {
                        tracing::info!(state = %request.state_name, key = %hit.key, "task answered from the cache");
                        answer_cached(output, hit, task, inbox.clone())
                    }
                    (None, None) => invoke(
                        &engine,
                        &arn,
                        request,
                        inbox.clone(),
                        handed_over.clone(),
                        pool,
                    ),
                };
                running.insert(task, Running::Invocation(handle, handed_over));
            }
            pending.taken.clear();
            pending.submitted.clear();
            // A resumed execution has taken its turns for slots.
            engine.pools().asked(&arn);
            if execution.execution().is_finished() {
                break;
            }
            if running.is_empty() && !execution.is_volatile() {
                if let Some(due) = sleep_until_due(&engine, &timers) {
                    if sleep(&engine, &arn, &inbox, &messages, &timers, due) {
                        return;
                    }
                }
            }
            let message = messages.recv().await;
            let (command, reply, posted) = match message {
                Message::Wake => continue,
                Message::Command(command) => (command, None, None),
                Message::Answer {
                    task,
                    command,
                    reply,
                } => {
                    if !execution.execution().is_task_open(task) {
                        let _ = reply.send(Err(EngineError::TaskTimedOut));
                        continue;
                    }
                    (command, Some(reply), None)
                }
                Message::Release { epoch } => {
                    if execution.lease_epoch().is_some_and(|held| held < epoch) {
                        paused = true;
                        break;
                    }
                    continue;
                }
                Message::SlotTaken { task, wait: taken } => {
                    if let Some(Running::Activity { offer, wait, .. }) = running.get_mut(&task) {
                        *wait = Some(taken);
                        if let Some(request) = offer.take() {
                            offer_activity(&engine, &arn, *request);
                        }
                    }
                    continue;
                }
                Message::Posted { id, task, command } => {
                    let spent = task.is_some_and(|t| {
                        !execution.execution().is_task_open(t)
                            || matches!(command, Command::TaskStarted { .. })
                                && execution.execution().is_task_started(t)
                    });
                    if spent {
                        engine.drop_message(id);
                        continue;
                    }
                    (
                        command,
                        None,
                        Some(stepline_store::WriteOp::RemoveMessage(id)),
                    )
                }
            };
            let mut command = command;
            // A pooled activity's start (a worker took it) says how long
            // it waited for its slot.
            if let Command::TaskStarted {
                task, pool: None, ..
            } = &command
            {
                if let Some(Running::Activity {
                    wait: Some(wait), ..
                }) = running.get(task)
                {
                    let wait = wait.clone();
                    if let Command::TaskStarted { pool, .. } = &mut command {
                        *pool = Some(wait);
                    }
                }
            }
            let mut also: Vec<stepline_store::WriteOp> = posted.into_iter().collect();
            let mut cache_written = false;
            match &command {
                Command::TimerFired { timer } => {
                    timers.remove(timer);
                }
                Command::TaskSucceeded {
                    task,
                    output,
                    cached,
                } => {
                    running.remove(task);
                    // Only a task still open gets a result recorded; the
                    // cache entry and the lineage go with it, in its batch.
                    let open = execution.execution().is_task_open(*task);
                    if let (Some(handed), true) = (handed.remove(task), open) {
                        if cached.is_none() {
                            if let Some(key) = &handed.cache {
                                if let Some(entry) = engine.cache_entry(
                                    key,
                                    &handed.resource,
                                    &handed.state_name,
                                    &arn,
                                    output,
                                ) {
                                    also.push(entry);
                                    cache_written = true;
                                }
                            }
                            let now = engine.now();
                            also.extend(
                                crate::lineage::reported(
                                    &arn,
                                    &handed.state_name,
                                    output,
                                    now,
                                )
                                .into_iter()
                                .map(stepline_store::WriteOp::PutLineage),
                            );
                        }
                    }
                }
                Command::TaskFailed { task, .. } => {
                    running.remove(task);
                    handed.remove(task);
                }
                _ => {}
            }
            let effects = match execution.apply_with(engine.store(), engine.now(), command, also)
            {
                Ok(effects) => effects,
                Err(e) => {
                    pause(&engine, &arn, e.into());
                    paused = true;
                    break;
                }
            };
            if cache_written {
                engine.cache_entry_written();
            }
            count_transitions(&engine, &execution);
            if !execution.is_volatile() {
                if let Err(e) = engine.flush().await {
                    pause(&engine, &arn, e);
                    paused = true;
                    break;
                }
            }
            if let Some(reply) = reply {
                let _ = reply.send(Ok(()));
            }
            pending = Pending::from_effects(effects);
        }
        for (_, key) in timers {
            engine.timers().cancel(key);
        }
        if paused {
            // This node lets go of the execution; whoever runs it next
            // invokes these tasks again and finds what they started.
            for (_, task) in running.drain() {
                if let Running::Invocation(handle, handed_over) = task {
                    handed_over.hand_over();
                    handle.abort();
                }
            }
        }
        let tasks: Vec<TaskId> = running.keys().copied().collect();
        for task in tasks {
            cancel(&engine, &arn, &mut running, task);
        }
        let record = execution.record();
        if !paused && record.status != stepline_store::ExecutionStatus::Running {
            let machine = record
                .state_machine_arn
                .rsplit(':')
                .next()
                .unwrap_or_default();
            tracing::info!(status = record.status.as_str(), "execution ended");
            engine
                .metrics()
                .execution_finished(machine, record.status.as_str());
            engine.notify_ended(record, execution.writes_end_notice());
            engine.slot_freed(record);
        }
        // Answers still queued get no reply: their callers hear the task
        // is closed (TaskTimedOut), as they would once it had ended.
        drop(messages.close());
        engine.pools().asked(&arn);
        engine.execution_ended(&arn);
    }
    .instrument(span)
}

/// How long an execution that waits only on timers would sleep: until its
/// earliest timer, if that is at least the engine's `sleep_after` away.
fn sleep_until_due(engine: &Engine, timers: &HashMap<TimerId, TimerKey>) -> Option<DateTime<Utc>> {
    let threshold = engine.config().sleep_after?;
    let earliest = timers.values().map(|k| k.due()).min()?;
    let wait = (earliest - engine.now()).to_std().unwrap_or_default();
    (wait >= threshold).then_some(earliest)
}

/// Puts an execution that waits only on timers to sleep: its loop ends and
/// its memory is freed; everything it needs is in the store, as after a
/// restart. Its inbox stays registered: a wake timer (at its earliest
/// timer) or any message (a stop) wakes it, and the engine resumes it from
/// the store as recovery does. `false` when a message is already waiting.
fn sleep(
    engine: &Engine,
    arn: &str,
    inbox: &Inbox,
    messages: &Messages,
    timers: &HashMap<TimerId, TimerKey>,
    due: DateTime<Utc>,
) -> bool {
    let waker = engine.waker();
    let name = arn.to_owned();
    // Counted first: a message may wake it (and uncount it) at once.
    engine.asleep_count(1);
    if !messages.try_sleep(Box::new(move || {
        let _ = waker.send(name);
    })) {
        engine.asleep_count(-1);
        return false;
    }
    // Recovery arms them again when it wakes.
    for key in timers.values() {
        engine.timers().cancel(*key);
    }
    engine
        .timers()
        .arm_message(due, inbox.clone(), Message::Wake);
    true
}

/// Counts the states entered by the last step.
pub(crate) fn count_transitions(engine: &Engine, execution: &DurableExecution) {
    engine
        .metrics()
        .transitions(execution.entered_last_step() as u64);
}

/// Stops carrying out a task: its invocation is dropped (a process is
/// killed, an HTTP request abandoned, a nested `.sync` execution stopped)
/// or its activity task withdrawn.
fn cancel(engine: &Engine, arn: &str, running: &mut HashMap<TaskId, Running>, task: TaskId) {
    match running.remove(&task) {
        Some(Running::Invocation(handle, _)) => handle.abort(),
        Some(Running::Activity {
            activity_arn,
            token,
            ..
        }) => {
            engine.withdraw_activity_task(&activity_arn, arn, task, token.as_deref());
        }
        None => {}
    }
}

fn offer_activity(engine: &Engine, arn: &str, request: TaskRequest) {
    let Some(token) = request.token else {
        // Every activity task gets a token from the interpreter; an
        // execution stored before tokens existed has none to offer.
        return;
    };
    engine.offer_activity_task(
        &request.resource.arn,
        ActivityTask {
            token,
            input: request.input.to_string(),
            execution_arn: arn.to_owned(),
            task: request.task,
        },
    );
}

/// Invokes a task and sends its answer to the execution.
fn invoke(
    engine: &Engine,
    arn: &str,
    request: TaskRequest,
    inbox: Inbox,
    handed_over: crate::HandedOver,
    pool: Option<PoolTurn>,
) -> JoinHandle<()> {
    let task = request.task;
    let callback = request.resource.pattern == IntegrationPattern::WaitForTaskToken;
    let logs = engine.task_log_sink(arn, &request);
    let call = TaskCall {
        idempotency_key: idempotency_key(arn, task),
        execution_arn: arn.to_owned(),
        request,
        logs,
        handed_over,
    };
    let resource_type = stepline_language::interp::resource_type(&call.request.resource);
    let span = tracing::info_span!(
        "task",
        state = %call.request.state_name,
        attempt = call.request.attempt + 1
    );
    // A task outside any pool is invoked here and now, as it always was;
    // a pooled one once it has its slot.
    let (now, later) = match pool {
        None => {
            span.in_scope(|| tracing::info!(resource = %call.request.resource.arn, "task invoked"));
            (Some(start_invocation(engine, call)), None)
        }
        Some(turn) => (None, Some((turn, call))),
    };
    let engine = engine.clone();
    tokio::spawn(
        async move {
            // Held until the call's answer is in.
            let mut _slot = None;
            let invocation = match (now, later) {
                (Some(invocation), _) => invocation,
                (None, Some((mut turn, call))) => {
                    _slot = take_slot(&engine, &call.execution_arn, &call.request, &mut turn).await;
                    if let (Some(slot), false) = (&_slot, turn.first) {
                        let started = Command::TaskStarted {
                            task,
                            worker_name: None,
                            pool: Some(Box::new(slot.wait.clone())),
                        };
                        let _ = inbox.send(Message::Command(started));
                    }
                    tracing::info!(resource = %call.request.resource.arn, "task invoked");
                    start_invocation(&engine, call)
                }
                (None, None) => return,
            };
            let began = std::time::Instant::now();
            let answer = invocation.await;
            let took = began.elapsed();
            engine.metrics().task_done(&resource_type, took);
            let millis = took.as_millis() as u64;
            match &answer {
                Ok(_) => tracing::info!(duration_ms = millis, "task succeeded"),
                Err(f) => tracing::warn!(
                    duration_ms = millis,
                    error = f.error.as_deref().unwrap_or_default(),
                    "task failed"
                ),
            }
            let command = match answer {
                // The request was accepted; the answer comes by callback.
                Ok(output) if callback => Command::TaskSubmitted { task, output },
                Ok(output) => Command::TaskSucceeded {
                    task,
                    output,
                    cached: None,
                },
                Err(Failure { error, cause }) => Command::TaskFailed { task, error, cause },
            };
            let _ = inbox.send(Message::Command(command));
        }
        .instrument(span),
    )
}

/// Starts a task's invocation: nested executions and Map Runs by the
/// engine, everything else by the task runner.
fn start_invocation(engine: &Engine, call: TaskCall) -> crate::TaskFuture {
    match call.request.resource.kind {
        ResourceKind::StartExecution => nested::run(Arc::new(engine.clone()), call),
        ResourceKind::MapRun => crate::maprun::runner::run(
            Arc::new(engine.clone()),
            engine.config().buckets.clone(),
            call,
        ),
        _ => engine.runner().run(call),
    }
}

/// Waits for a slot of the task's pool, as a waiter `GET /v1/pools`
/// shows.
async fn take_slot(
    engine: &Engine,
    arn: &str,
    request: &TaskRequest,
    turn: &mut PoolTurn,
) -> Option<crate::pools::Slot> {
    if turn.first {
        tracing::info!(pool = %turn.pool, "task takes again the slot it held before a restart");
    }
    if let Some(local) = turn.local.take() {
        return Some(local.wait(|| engine.now()).await);
    }
    let who = crate::pools::Waiting {
        execution_arn: arn.to_owned(),
        state_name: request.state_name.clone(),
        since: turn.since,
    };
    engine
        .take_pool_slot(
            &turn.pool,
            who,
            idempotency_key(arn, request.task),
            turn.first,
        )
        .await
}

/// Takes a pooled activity task's slot and holds it until dropped; once
/// it has the slot, the execution offers the task to the workers.
fn hold_slot(
    engine: &Engine,
    arn: &str,
    request: &TaskRequest,
    mut turn: PoolTurn,
    inbox: Inbox,
) -> SlotHolder {
    let engine = engine.clone();
    let arn = arn.to_owned();
    let request = request.clone();
    SlotHolder(tokio::spawn(async move {
        let Some(slot) = take_slot(&engine, &arn, &request, &mut turn).await else {
            return;
        };
        let _ = inbox.send(Message::SlotTaken {
            task: request.task,
            wait: Box::new(slot.wait.clone()),
        });
        // Held until the execution drops this task's entry.
        std::future::pending::<()>().await;
        drop(slot);
    }))
}

/// Answers a task from the cache (as if its invocation had returned at
/// once, with the result's origin for its TaskSucceeded event).
fn answer_cached(
    output: Value,
    hit: stepline_language::history::CacheHit,
    task: TaskId,
    inbox: Inbox,
) -> JoinHandle<()> {
    let command = Command::TaskSucceeded {
        task,
        output,
        cached: Some(Box::new(hit)),
    };
    tokio::spawn(async move {
        let _ = inbox.send(Message::Command(command));
    })
}

/// Answers a mocked task (as if its invocation had returned at once).
fn answer_with(answer: Result<Value, Failure>, task: TaskId, inbox: Inbox) -> JoinHandle<()> {
    let command = match answer {
        Ok(output) => Command::TaskSucceeded {
            task,
            output,
            cached: None,
        },
        Err(Failure { error, cause }) => Command::TaskFailed { task, error, cause },
    };
    tokio::spawn(async move {
        let _ = inbox.send(Message::Command(command));
    })
}

/// A storage failure stops the execution's loop; it stays open in the
/// store and resumes once the store answers again (`engine/paused.rs`).
/// A refused fence stops it too, for good here: another node took it over
/// (`engine/cluster.rs`), and runs it on from what was stored.
fn pause(engine: &Engine, arn: &str, e: EngineError) {
    if matches!(
        e,
        EngineError::Store(stepline_store::StoreError::Fenced { .. })
    ) {
        // Another node took it over, or this node's own row ran out (a
        // pause, an outage) with nobody taking it: then the lease is still
        // this node's once it renews, and the execution resumes here from
        // the store like any paused one (`paused.rs`; resuming checks the
        // lease).
        tracing::warn!(execution = %arn, error = %e, "execution left to the node that took it over, or resumed here if none did");
        engine.paused(arn);
        return;
    }
    tracing::error!(execution = %arn, error = %e, "execution paused on a storage error; it resumes when the store answers again");
    engine.paused(arn);
}

/// A flush's outcome, shared by every writer that waited for it.
pub(crate) type Flushed = Result<(), Arc<stepline_store::StoreError>>;

/// Serves flush requests: one store flush answers every request that
/// arrived before it started (group commit).
pub(crate) async fn flush_loop(
    store: Arc<dyn stepline_store::Store>,
    mut requests: mpsc::UnboundedReceiver<oneshot::Sender<Flushed>>,
    metrics: Arc<Metrics>,
) {
    while let Some(first) = requests.recv().await {
        // Let the tasks already runnable (other starts and steps) ask too:
        // under load a flush then carries many of them.
        tokio::task::yield_now().await;
        let mut waiting = vec![first];
        while let Ok(more) = requests.try_recv() {
            waiting.push(more);
        }
        let store = Arc::clone(&store);
        let began = std::time::Instant::now();
        let result: Flushed = match tokio::task::spawn_blocking(move || store.flush()).await {
            Ok(flushed) => flushed.map_err(Arc::new),
            Err(e) => Err(Arc::new(stepline_store::StoreError::Unavailable(format!(
                "the flush stopped: {e}"
            )))),
        };
        metrics.flushed(began.elapsed());
        for done in waiting {
            let _ = done.send(result.clone());
        }
    }
}

/// Sends a message to a live execution; `false` when it is not running here.
pub(crate) fn deliver(engine: &Engine, arn: &str, message: Message) -> bool {
    send(engine, arn, message).is_ok()
}

/// Sends a message to a live execution, or gives it back when the
/// execution is not running here.
pub(crate) fn send(engine: &Engine, arn: &str, message: Message) -> Result<(), Message> {
    let inbox = lock(engine.live()).get(arn).cloned();
    match inbox {
        Some(inbox) => inbox.send(message),
        None => Err(message),
    }
}

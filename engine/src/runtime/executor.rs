//! One execution's loop: carry out the effects of the last step (after its
//! flush), wait for the next message, apply it, flush, repeat.
//!
//! Tasks are dispatched here by kind: activity tasks are offered to
//! workers; nested executions are run by the engine itself; every other
//! resource goes to the [`TaskRunner`]. A `.waitForTaskToken` task records
//! TaskSubmitted when its request is accepted and then waits for a
//! callback; a task the interpreter cancels (timeout, stop, a failed
//! sibling branch) has its invocation dropped, which kills what it runs.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::durable::{DurableExecution, Outstanding, idempotency_key};
use super::engine::{Engine, EngineError, TaskCall, lock};
use super::metrics::Metrics;
use crate::asl::model::{IntegrationPattern, ResourceKind};
use crate::interp::{Command, Effect, Failure, TaskId, TaskRequest, TimerId};
use crate::tasks::activity::ActivityTask;
use crate::tasks::nested;

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
}

pub(crate) type Inbox = mpsc::UnboundedSender<Message>;

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

/// A task being carried out: its invocation (dropped to cancel it) or its
/// place in an activity's queue.
enum Running {
    Invocation(JoinHandle<()>),
    Activity { activity_arn: String },
}

/// Runs one execution until it ends (or its storage fails).
pub(crate) async fn run(
    engine: Engine,
    mut execution: DurableExecution,
    mut pending: Pending,
    inbox: Inbox,
    mut messages: mpsc::UnboundedReceiver<Message>,
) {
    let arn = execution.record().arn.clone();
    let mut timers: HashMap<TimerId, JoinHandle<()>> = HashMap::new();
    let mut running: HashMap<TaskId, Running> = HashMap::new();
    'life: loop {
        for task in pending.cancelled_tasks.drain(..) {
            cancel(&engine, &arn, &mut running, task);
        }
        for timer in pending.cancelled_timers.drain(..) {
            if let Some(handle) = timers.remove(&timer) {
                handle.abort();
            }
        }
        for (timer, due) in pending.timers.drain(..) {
            let wait = (due - engine.now()).to_std().unwrap_or_default();
            let inbox = inbox.clone();
            timers.insert(
                timer,
                tokio::spawn(async move {
                    tokio::time::sleep(wait).await;
                    let _ = inbox.send(Message::Command(Command::TimerFired { timer }));
                }),
            );
        }
        for request in std::mem::take(&mut pending.tasks) {
            let task = request.task;
            if pending.submitted.contains(&task) {
                continue;
            }
            let mocked = engine.mocked(execution.record(), &request);
            if mocked.is_none() && matches!(request.resource.kind, ResourceKind::Activity { .. }) {
                let activity_arn = request.resource.arn.clone();
                if !pending.taken.contains(&task) {
                    offer_activity(&engine, &arn, request);
                }
                running.insert(task, Running::Activity { activity_arn });
                continue;
            }
            // Usually recorded with the step that scheduled the task; a
            // task resumed after a restart (or a mocked activity) is
            // started here. No flush of its own: after a crash the task is
            // invoked again and starts again.
            if !execution.execution().is_task_started(task) {
                let started = Command::TaskStarted {
                    task,
                    worker_name: None,
                };
                if let Err(e) = execution.apply(engine.store(), engine.now(), started) {
                    pause(&arn, &e);
                    break 'life;
                }
            }
            let handle = match mocked {
                Some(answer) => answer_with(answer, task, inbox.clone()),
                None => invoke(&engine, &arn, request, inbox.clone()),
            };
            running.insert(task, Running::Invocation(handle));
        }
        pending.taken.clear();
        pending.submitted.clear();
        if execution.execution().is_finished() {
            break;
        }
        let Some(message) = messages.recv().await else {
            break;
        };
        let (command, reply) = match message {
            Message::Command(command) => (command, None),
            Message::Answer {
                task,
                command,
                reply,
            } => {
                if !execution.execution().is_task_open(task) {
                    let _ = reply.send(Err(EngineError::TaskTimedOut));
                    continue;
                }
                (command, Some(reply))
            }
        };
        match &command {
            Command::TimerFired { timer } => {
                timers.remove(timer);
            }
            Command::TaskSucceeded { task, .. } | Command::TaskFailed { task, .. } => {
                running.remove(task);
            }
            _ => {}
        }
        let before = execution.execution().history().len();
        let effects = match execution.apply(engine.store(), engine.now(), command) {
            Ok(effects) => effects,
            Err(e) => {
                pause(&arn, &e);
                break;
            }
        };
        count_transitions(&engine, &execution, before);
        if !execution.is_volatile() {
            if let Err(e) = engine.flush().await {
                pause(&arn, &e);
                break;
            }
        }
        if let Some(reply) = reply {
            let _ = reply.send(Ok(()));
        }
        pending = Pending::from_effects(effects);
    }
    for (_, handle) in timers {
        handle.abort();
    }
    let tasks: Vec<TaskId> = running.keys().copied().collect();
    for task in tasks {
        cancel(&engine, &arn, &mut running, task);
    }
    let record = execution.record();
    if record.status != crate::store::ExecutionStatus::Running {
        let machine = record
            .state_machine_arn
            .rsplit(':')
            .next()
            .unwrap_or_default();
        engine
            .metrics()
            .execution_finished(machine, record.status.as_str());
    }
    engine.execution_ended(&arn);
}

/// Counts the states entered by the last step.
pub(crate) fn count_transitions(engine: &Engine, execution: &DurableExecution, before: usize) {
    let entered = execution.execution().history()
        [before.min(execution.execution().history().len())..]
        .iter()
        .filter(|e| matches!(e.event, crate::history::Event::StateEntered { .. }))
        .count();
    engine.metrics().transitions(entered as u64);
}

/// Stops carrying out a task: its invocation is dropped (a process is
/// killed, an HTTP request abandoned, a nested `.sync` execution stopped)
/// or its activity task withdrawn.
fn cancel(engine: &Engine, arn: &str, running: &mut HashMap<TaskId, Running>, task: TaskId) {
    match running.remove(&task) {
        Some(Running::Invocation(handle)) => handle.abort(),
        Some(Running::Activity { activity_arn }) => {
            engine.activities().withdraw(&activity_arn, arn, task);
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
    engine.activities().offer(
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
fn invoke(engine: &Engine, arn: &str, request: TaskRequest, inbox: Inbox) -> JoinHandle<()> {
    let task = request.task;
    let callback = request.resource.pattern == IntegrationPattern::WaitForTaskToken;
    let call = TaskCall {
        idempotency_key: idempotency_key(arn, task),
        execution_arn: arn.to_owned(),
        request,
    };
    let resource_type = crate::interp::resource_type(&call.request.resource);
    let invocation = match call.request.resource.kind {
        ResourceKind::StartExecution => nested::run(engine.clone(), call),
        ResourceKind::MapRun => crate::maprun::runner::run(engine.clone(), call),
        _ => engine.runner().run(call),
    };
    let engine = engine.clone();
    tokio::spawn(async move {
        let began = std::time::Instant::now();
        let answer = invocation.await;
        engine.metrics().task_done(&resource_type, began.elapsed());
        let command = match answer {
            // The request was accepted; the answer comes by callback.
            Ok(output) if callback => Command::TaskSubmitted { task, output },
            Ok(output) => Command::TaskSucceeded { task, output },
            Err(Failure { error, cause }) => Command::TaskFailed { task, error, cause },
        };
        let _ = inbox.send(Message::Command(command));
    })
}

/// Answers a mocked task (as if its invocation had returned at once).
fn answer_with(answer: Result<Value, Failure>, task: TaskId, inbox: Inbox) -> JoinHandle<()> {
    let command = match answer {
        Ok(output) => Command::TaskSucceeded { task, output },
        Err(Failure { error, cause }) => Command::TaskFailed { task, error, cause },
    };
    tokio::spawn(async move {
        let _ = inbox.send(Message::Command(command));
    })
}

/// A storage failure stops the execution's loop; it stays open in the
/// store and resumes at the next start.
fn pause(arn: &str, e: &dyn std::fmt::Display) {
    eprintln!("stepline: execution {arn} paused: {e}");
}

/// Serves flush requests: one store flush answers every request that
/// arrived before it started (group commit).
pub(crate) async fn flush_loop(
    store: Arc<dyn crate::store::Store>,
    mut requests: mpsc::UnboundedReceiver<oneshot::Sender<Result<(), String>>>,
    metrics: Arc<Metrics>,
) {
    while let Some(first) = requests.recv().await {
        let mut waiting = vec![first];
        while let Ok(more) = requests.try_recv() {
            waiting.push(more);
        }
        let store = Arc::clone(&store);
        let began = std::time::Instant::now();
        let result = tokio::task::spawn_blocking(move || store.flush())
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
        metrics.flushed(began.elapsed());
        for done in waiting {
            let _ = done.send(result.clone());
        }
    }
}

/// Sends a message to a live execution; `false` when it is not running here.
pub(crate) fn deliver(engine: &Engine, arn: &str, message: Message) -> bool {
    match lock(engine.live()).get(arn) {
        Some(inbox) => inbox.send(message).is_ok(),
        None => false,
    }
}

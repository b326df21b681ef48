//! Running one execution to its end, in process.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::asl::StateMachine;
use crate::cause;
use crate::clock::{Clock, block_until};
use crate::history::HistoryEvent;
use crate::interp::{
    Command, Effect, Execution, ExecutionInfo, Failure, Status, TaskRequest, TimerId,
};

/// Performs a task and returns its result or its ASL error.
pub trait Invoker {
    fn invoke(&mut self, request: &TaskRequest) -> Result<Value, Failure>;
}

/// The invoker used where no task runner is configured: every task fails
/// with a clear message instead of pretending.
#[derive(Debug, Default, Clone, Copy)]
pub struct UnavailableInvoker;

impl Invoker for UnavailableInvoker {
    fn invoke(&mut self, request: &TaskRequest) -> Result<Value, Failure> {
        Err(cause::NO_TASK_RUNNER.failure(&[
            ("resource", &request.resource.arn),
            ("state", &request.state_name),
        ]))
    }
}

/// How an execution ended, with its whole history.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: Status,
    pub history: Vec<HistoryEvent>,
}

/// Runs `machine` on `input` until it ends. Tasks run one at a time,
/// in the order they were scheduled; timers fire in due order.
pub fn run_to_completion(
    machine: Arc<StateMachine>,
    info: ExecutionInfo,
    input: Value,
    seed: u64,
    clock: &dyn Clock,
    invoker: &mut dyn Invoker,
) -> Outcome {
    // No child executions here: a distributed Map runs its items inline.
    let mut execution = Execution::new(machine, info, seed).with_inline_distributed_maps();
    let mut tasks: Vec<TaskRequest> = Vec::new();
    let mut timers: BTreeMap<(DateTime<Utc>, TimerId), ()> = BTreeMap::new();
    let mut effects = execution.apply(clock.now(), Command::Start { input });
    loop {
        for effect in effects.drain(..) {
            match effect {
                Effect::InvokeTask(request) => tasks.push(*request),
                Effect::StartTimer { timer, due } => {
                    timers.insert((due, timer), ());
                }
                Effect::CancelTask { task } => tasks.retain(|t| t.task != task),
                Effect::CancelTimer { timer } => timers.retain(|(_, t), _| *t != timer),
            }
        }
        if execution.is_finished() {
            break;
        }
        if !tasks.is_empty() {
            let request = tasks.remove(0);
            let mut next = execution.apply(
                clock.now(),
                Command::TaskStarted {
                    task: request.task,
                    worker_name: None,
                    pool: None,
                },
            );
            let answer = invoker.invoke(&request);
            // Timers that came due while the task ran (its TimeoutSeconds,
            // say) fire first: a late answer must not win over them.
            while let Some(&(due, timer)) = timers.keys().next() {
                if due > clock.now() {
                    break;
                }
                timers.remove(&(due, timer));
                next.extend(execution.apply(due, Command::TimerFired { timer }));
            }
            let command = match answer {
                Ok(output) => Command::TaskSucceeded {
                    task: request.task,
                    output,
                    cached: None,
                },
                Err(failure) => Command::TaskFailed {
                    task: request.task,
                    error: failure.error,
                    cause: failure.cause,
                },
            };
            next.extend(execution.apply(clock.now(), command));
            effects = next;
            continue;
        }
        let Some(((due, timer), ())) = timers.pop_first() else {
            // Nothing left to wait for, yet not finished: cannot happen in a
            // consistent interpreter; stop rather than spin.
            break;
        };
        block_until(clock, due);
        effects = execution.apply(clock.now(), Command::TimerFired { timer });
    }
    let (status, history) = execution.into_outcome();
    Outcome { status, history }
}

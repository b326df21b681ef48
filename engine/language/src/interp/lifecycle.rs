//! How an execution begins and how it ends: Start, success, failure, the
//! execution's own timeout and a stop, each recorded as AWS records it.
//! An execution that ends cancels every task and timer still outstanding.

use std::sync::Arc;

use chrono::Duration;
use serde_json::Value;

use super::context::VarScope;
use super::failure::Failure;
use super::limits::check_size;
use super::protocol::{Effect, Status, TaskId, TimerId};
use super::scheduler::{At, EXECUTION_TIMER, Thread, ThreadId};
use super::{Core, Data};
use crate::asl::model::{ScopeId, StateMachine};
use crate::cause;
use crate::history::Event;

impl Core {
    pub(super) fn start(&mut self, m: &StateMachine, input: Value) {
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
            self.timers.insert(timer, EXECUTION_TIMER);
            let due = self.now + Duration::seconds(seconds as i64);
            self.effects.push(Effect::StartTimer { timer, due });
        }
    }

    /// The top-level thread finished.
    pub(super) fn finish_execution(&mut self, tid: ThreadId, result: Result<Data, Failure>) {
        let previous = self.threads[tid].last_event;
        match result {
            Ok(output) => {
                if let Err(f) = check_size(&output, &self.ctx.info.state_machine_name) {
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

    pub(super) fn fail_execution(&mut self, previous: u64, failure: Failure) {
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

    /// The state machine's TimeoutSeconds ran out.
    pub(super) fn time_out_execution(&mut self) {
        self.note_redrive_point();
        let previous = self.last_id();
        let failure = cause::EXECUTION_TIMED_OUT.failure(&[]);
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

    /// StopExecution.
    pub(super) fn stop(&mut self, m: &StateMachine, error: Option<String>, cause: Option<String>) {
        if self.last_id() == 0 {
            return;
        }
        self.note_redrive_point();
        // A distributed Map's Map Run stops with its execution.
        self.abort_map_runs(m);
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

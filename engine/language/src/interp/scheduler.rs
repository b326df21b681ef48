//! Threads and how they take turns. Each branch of an execution (the top
//! level, each Parallel branch, each Map iteration) is a thread; threads
//! run one at a time, depth first, in index order, each until it finishes
//! or waits for a task or a timer. A timer wakes the thread it belongs to.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::context::VarScope;
use super::failure::Failure;
use super::frame::Frame;
use super::limits::MAX_HISTORY_EVENTS;
use super::protocol::{Effect, TaskId, TimerId};
use super::state::Run;
use super::{Core, Data};
use crate::asl::model::{StateId, StateMachine};
use crate::cause;

pub(super) type ThreadId = usize;

/// The thread the execution's own timer (TimeoutSeconds) belongs to.
pub(super) const EXECUTION_TIMER: ThreadId = usize::MAX;

/// A branch of the execution: the top level, a Parallel branch or a Map
/// iteration.
#[derive(Debug)]
pub(super) struct Thread {
    /// The thread waiting for this one, and this one's index among its children.
    pub parent: Option<(ThreadId, usize)>,
    pub vars: Arc<VarScope>,
    /// The event the next event of this thread follows (previousEventId).
    pub last_event: u64,
    pub at: At,
}

/// What a thread is doing.
#[derive(Debug)]
pub(super) enum At {
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
pub(super) enum AfterTimer {
    /// A Wait state's time has come.
    WaitOver,
    /// A retrier's interval is over: run the state again.
    Retry,
}

impl Core {
    /// Runs the threads that have work to do, the last made ready first.
    pub(super) fn run_ready(&mut self, m: &StateMachine) {
        while let Some(tid) = self.ready.pop() {
            if self.is_finished() {
                self.ready.clear();
                return;
            }
            if self.last_id() as usize >= MAX_HISTORY_EVENTS - 1 {
                self.ready.clear();
                let previous = self.last_id();
                let failure = cause::HISTORY_LIMIT.failure(&[("limit", &MAX_HISTORY_EVENTS)]);
                return self.fail_execution(previous, failure);
            }
            let at = std::mem::replace(&mut self.threads[tid].at, At::Done);
            match at {
                At::Enter { state, input } => self.enter(m, tid, state, input),
                other => self.threads[tid].at = other,
            }
        }
    }

    /// A thread finished: the execution ends, or its parent hears of it.
    pub(super) fn thread_done(
        &mut self,
        m: &StateMachine,
        tid: ThreadId,
        result: Result<Data, Failure>,
    ) {
        self.threads[tid].at = At::Done;
        match self.threads[tid].parent {
            None => self.finish_execution(tid, result),
            Some((parent, index)) => self.child_done(m, parent, index, tid, result),
        }
    }

    /// Stops a thread and everything under it, cancelling its effects.
    pub(super) fn abort_thread(&mut self, tid: ThreadId) {
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
                for child in frame.into_children().threads.into_iter().flatten() {
                    self.abort_thread(child);
                }
            }
            At::Enter { .. } | At::Done => {}
        }
    }

    pub(super) fn new_timer(&mut self, tid: ThreadId, due: DateTime<Utc>) -> TimerId {
        self.next_timer += 1;
        let timer = TimerId(self.next_timer);
        self.timers.insert(timer, tid);
        self.effects.push(Effect::StartTimer { timer, due });
        timer
    }

    pub(super) fn cancel_timer(&mut self, timer: TimerId) {
        if self.timers.remove(&timer).is_some() {
            self.effects.push(Effect::CancelTimer { timer });
        }
    }

    /// Wakes the thread `timer` belongs to.
    pub(super) fn timer_fired(&mut self, m: &StateMachine, timer: TimerId) {
        let Some(tid) = self.timers.remove(&timer) else {
            return;
        };
        if tid == EXECUTION_TIMER {
            return self.time_out_execution();
        }
        match std::mem::replace(&mut self.threads[tid].at, At::Done) {
            At::Timer {
                run,
                then: AfterTimer::WaitOver,
                ..
            } => self.wait_over(m, tid, run),
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
                self.task_timed_out(m, tid, run, heartbeat == Some(timer));
            }
            other => self.threads[tid].at = other,
        }
    }
}

//! The children of a Parallel state (one thread per branch) or an inline
//! Map state (one thread per item): starting them within the concurrency
//! limit, hearing of each one's end, a Map's tolerance of failed
//! iterations, and the state's result once every child is done.

use std::sync::Arc;

use serde_json::Value;

use super::context::VarScope;
use super::failure::Failure;
use super::scheduler::{At, Thread, ThreadId};
use super::state::Run;
use super::{Core, Data};
use crate::asl::model::{Map as MapState, Parallel, StateKind, StateMachine};
use crate::cause;
use crate::history::Event;

/// The children of a Parallel or Map state.
#[derive(Debug)]
pub(super) enum Frame {
    Parallel(Children),
    Map { children: Children, map: MapFrame },
}

/// What a Parallel and a Map keep alike of their children.
#[derive(Debug)]
pub(super) struct Children {
    /// Each child's input, taken when it starts: a Map's items (before
    /// ItemSelector), a Parallel's effective input once per branch.
    pub items: Vec<Data>,
    pub next_to_start: usize,
    /// How many children may run at once (a Map's MaxConcurrency).
    pub limit: usize,
    /// The thread of each child that runs now.
    pub threads: Vec<Option<ThreadId>>,
    pub results: Vec<Data>,
    /// Children that succeeded (this run, or before a redrive).
    pub succeeded: Vec<bool>,
    pub running: usize,
    pub finished: usize,
    /// previousEventId for the next child start: the last event of the
    /// child that finished (or MapStateStarted / ParallelStateStarted).
    pub last_event: u64,
    /// previousEventId for the closing MapStateSucceeded and the Exited
    /// event: AWS links them to the last MapIterationSucceeded.
    pub closing_event: u64,
}

/// What only a Map has.
#[derive(Debug)]
pub(super) struct MapFrame {
    /// The state's effective input: the ItemSelector reads it.
    effective: Data,
    tolerated_count: Option<u64>,
    tolerated_percentage: Option<f64>,
    /// Iterations that failed so far.
    failures: u64,
}

/// What a Map's tolerance says of one more failed iteration.
enum Verdict {
    /// No ToleratedFailure field: the iteration's failure is the Map's.
    NoTolerance,
    Tolerated,
    Exceeded,
}

impl Children {
    fn new(items: Vec<Data>, limit: usize, started: u64) -> Self {
        let count = items.len();
        Self {
            items,
            next_to_start: 0,
            limit,
            threads: vec![None; count],
            results: vec![Data::default(); count],
            succeeded: vec![false; count],
            running: 0,
            finished: 0,
            last_event: started,
            closing_event: started,
        }
    }
}

impl Frame {
    pub(super) fn children(&self) -> &Children {
        match self {
            Frame::Parallel(children) | Frame::Map { children, .. } => children,
        }
    }

    fn children_mut(&mut self) -> &mut Children {
        match self {
            Frame::Parallel(children) | Frame::Map { children, .. } => children,
        }
    }

    pub(super) fn into_children(self) -> Children {
        match self {
            Frame::Parallel(children) | Frame::Map { children, .. } => children,
        }
    }

    fn is_map(&self) -> bool {
        matches!(self, Frame::Map { .. })
    }
}

impl MapFrame {
    /// Counts one more failed iteration. Either threshold breached fails
    /// the Map (ASL); none set tolerates nothing.
    fn count_failure(&mut self, total: usize) -> Verdict {
        self.failures += 1;
        if self.tolerated_count.is_none() && self.tolerated_percentage.is_none() {
            return Verdict::NoTolerance;
        }
        let within_count = self.tolerated_count.is_none_or(|c| self.failures <= c);
        let within_percentage = self
            .tolerated_percentage
            .is_none_or(|p| (self.failures as f64) * 100.0 / total as f64 <= p);
        if within_count && within_percentage {
            Verdict::Tolerated
        } else {
            Verdict::Exceeded
        }
    }
}

impl Core {
    /// A Parallel state: one child per branch, all at once.
    pub(super) fn start_parallel(
        &mut self,
        m: &StateMachine,
        tid: ThreadId,
        run: Run,
        parallel: &Parallel,
    ) {
        let effective = self.evaluator(m, tid, &run).effective_input();
        let effective = match effective {
            Ok(v) => v,
            Err(f) => return self.fail_state(m, tid, run, f),
        };
        let started = self.emit_on(tid, Event::ParallelStateStarted);
        let count = parallel.branches.len();
        let mut children = Children::new(vec![effective; count], count, started);
        self.keep_redriven_children(tid, &run, &mut children);
        self.threads[tid].at = At::Children {
            run,
            frame: Box::new(Frame::Parallel(children)),
        };
        self.continue_children(m, tid);
    }

    /// An inline Map (or a distributed one run inline): one child per
    /// item, as many at once as MaxConcurrency allows.
    pub(super) fn start_map(&mut self, m: &StateMachine, tid: ThreadId, run: Run, map: &MapState) {
        let prepared = self.evaluator(m, tid, &run).map_setup(map);
        let setup = match prepared {
            Ok(s) => s,
            Err((f, started)) => return self.map_fields_failed(m, tid, run, f, started),
        };
        let count = setup.items.len();
        let started = self.emit_on(tid, Event::MapStateStarted { length: count });
        let limit = match setup.max_concurrency {
            0 => usize::MAX,
            n => n,
        };
        let items = setup.items.into_iter().map(Data::new).collect();
        let mut children = Children::new(items, limit, started);
        self.keep_redriven_children(tid, &run, &mut children);
        let map = MapFrame {
            effective: setup.effective,
            tolerated_count: setup.tolerated_count,
            tolerated_percentage: setup.tolerated_percentage,
            failures: 0,
        };
        self.threads[tid].at = At::Children {
            run,
            frame: Box::new(Frame::Map { children, map }),
        };
        self.continue_children(m, tid);
    }

    /// A Map's fields could not be evaluated; `started` is the item count
    /// when MapStateStarted was due before the failure (as AWS records it).
    pub(super) fn map_fields_failed(
        &mut self,
        m: &StateMachine,
        tid: ThreadId,
        run: Run,
        failure: Failure,
        started: Option<usize>,
    ) {
        if let Some(length) = started {
            self.emit_on(tid, Event::MapStateStarted { length });
        }
        self.fail_state(m, tid, run, failure);
    }

    /// Starts children, or finishes the state when none is left to run.
    fn continue_children(&mut self, m: &StateMachine, tid: ThreadId) {
        let all_done = match &self.threads[tid].at {
            At::Children { frame, .. } => {
                let children = frame.children();
                children.finished == children.items.len()
            }
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
        loop {
            let children = frame.children_mut();
            if children.running >= children.limit || children.next_to_start >= children.items.len()
            {
                break;
            }
            let index = children.next_to_start;
            children.next_to_start += 1;
            if children.succeeded[index] {
                continue;
            }
            children.running += 1;
            let item = std::mem::take(&mut children.items[index]);
            let (scope, input) = match (&state.kind, &mut *frame) {
                (
                    StateKind::Map(map),
                    Frame::Map {
                        children,
                        map: frame_map,
                    },
                ) => {
                    children.last_event = self.emit(
                        children.last_event,
                        Event::MapIterationStarted {
                            name: Arc::clone(&state.name),
                            index,
                        },
                    );
                    let selected = self
                        .item_evaluator(m, tid, &run, Some((index, &item)))
                        .map_item(
                            map.item_selector.as_ref(),
                            &frame_map.effective,
                            item.clone(),
                        );
                    match selected {
                        Ok(input) => (map.processor, input),
                        Err(failure) => {
                            self.threads[tid].at = At::Children { run, frame };
                            return self.children_failed(m, tid, self.next_id - 1, failure);
                        }
                    }
                }
                (StateKind::Parallel(p), Frame::Parallel(_)) => (p.branches[index], item),
                _ => continue,
            };
            let children = frame.children_mut();
            let child = self.threads.len();
            self.threads.push(Thread {
                parent: Some((tid, index)),
                vars: Arc::new(VarScope::child_of(Arc::clone(&vars))),
                last_event: children.last_event,
                at: At::Enter {
                    state: m.scope(scope).start_at,
                    input,
                },
            });
            children.threads[index] = Some(child);
            started.push(child);
        }
        self.threads[tid].at = At::Children { run, frame };
        // Depth first in index order: the lowest index is popped first.
        self.ready.extend(started.into_iter().rev());
    }

    /// A child thread finished: its result is kept (or its failure
    /// tolerated), then the next children start; or the state fails.
    pub(super) fn child_done(
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
        let is_map = frame.is_map();
        let children = frame.children_mut();
        children.running -= 1;
        children.finished += 1;
        children.threads[index] = None;
        match result {
            Ok(output) => {
                children.results[index] = output;
                children.succeeded[index] = true;
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
                    let children = frame.children_mut();
                    children.last_event = child_last;
                    children.closing_event = closing;
                }
            }
            Err(failure) => {
                if failure.is_terminal() {
                    return self.fail_execution(child_last, failure);
                }
                let verdict = match &mut **frame {
                    Frame::Parallel(_) => Verdict::NoTolerance,
                    Frame::Map { children, map } => map.count_failure(children.items.len()),
                };
                if is_map {
                    self.emit(
                        child_last,
                        Event::MapIterationFailed {
                            name: state_name,
                            index,
                        },
                    );
                }
                match verdict {
                    Verdict::Tolerated => {
                        if let At::Children { frame, .. } = &mut self.threads[parent].at {
                            let children = frame.children_mut();
                            children.results[index] = Data::new(failure.to_output());
                            children.last_event = child_last;
                        }
                    }
                    Verdict::Exceeded => {
                        let failure = cause::TOLERATED_FAILURE_EXCEEDED.failure(&[]);
                        return self.children_failed(m, parent, child_last, failure);
                    }
                    Verdict::NoTolerance => {
                        return self.children_failed(m, parent, child_last, failure);
                    }
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
        let is_map = frame.is_map();
        let children = frame.into_children();
        let previous = children.closing_event;
        // AWS records MapStateSucceeded, but no ParallelStateSucceeded.
        if is_map {
            self.emit(previous, Event::MapStateSucceeded);
        }
        // AWS links the Exited event to the last child event, not to the
        // Succeeded event.
        self.threads[tid].last_event = previous;
        let results = Data::new(Value::Array(
            children
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
            self.redrive.keep_children(&run, frame.children());
        }
        let name = Arc::clone(&m.state(run.state).name);
        let is_map = frame.is_map();
        for (index, child) in frame.children().threads.iter().enumerate() {
            if let Some(child) = *child {
                self.abort_thread(child);
                if is_map {
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
        let closing = if is_map {
            Event::MapStateFailed
        } else {
            Event::ParallelStateFailed
        };
        self.fail_state_closing(m, tid, run, failure, Some((child_last, closing)));
    }
}

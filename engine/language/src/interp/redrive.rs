//! RedriveExecution: a FAILED, TIMED_OUT or ABORTED execution runs again
//! from the top-level state that did not succeed, with the input that
//! state had. What it keeps of that state's last run: the children of an
//! inline Map or Parallel that succeeded (AWS reruns only the failed and
//! aborted ones), and a distributed Map's failed Map Run (run again, its
//! failed items only).

use std::collections::HashMap;
use std::sync::Arc;

use super::frame::Children;
use super::scheduler::{At, ThreadId};
use super::state::Run;
use super::{Core, Data, Status};
use crate::asl::model::StateId;
use crate::history::Event;

/// What the execution remembers for a redrive, and what a redrive hands
/// to the states that run again.
#[derive(Debug, Default)]
pub(super) struct Redrive {
    /// Where a redrive starts: the top-level state that was running when
    /// the execution ended unsuccessfully, and its input.
    from: Option<(StateId, Data)>,
    count: u32,
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
    fn of(run: &Run, children: &Children) -> Self {
        Self {
            state: run.state,
            results: children
                .succeeded
                .iter()
                .zip(&children.results)
                .map(|(&ok, result)| ok.then(|| Arc::clone(result)))
                .collect(),
        }
    }
}

impl Redrive {
    /// How many times the execution was redriven.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// A top-level state runs (again, for a retry). What a redrive keeps
    /// belongs to the run of the state that ended the execution; a new
    /// run (a retry, the next state) has its own.
    #[inline]
    pub fn state_runs(&mut self, state: StateId) {
        self.kept_children = None;
        if self
            .redriven_children
            .as_ref()
            .is_some_and(|k| k.state != state)
        {
            self.redriven_children = None;
        }
    }

    /// A top-level state failed: a redrive would start there.
    pub fn state_failed(&mut self, run: &Run) {
        self.from = Some((run.state, Arc::clone(&run.input)));
    }

    /// The top-level state's failure was caught: the execution goes on.
    pub fn caught(&mut self) {
        self.from = None;
    }

    /// The children of the top-level Map or Parallel failed: those that
    /// succeeded are kept.
    pub fn keep_children(&mut self, run: &Run, children: &Children) {
        self.kept_children = Some(KeptChildren::of(run, children));
    }

    /// `state`'s Map Run `arn` failed or was stopped.
    pub fn map_run_failed(&mut self, state: StateId, arn: String) {
        self.failed_map_runs.insert(state, arn);
    }

    /// The Map Run a redrive hands to `state` to run again, if any.
    pub fn take_map_run(&mut self, state: StateId) -> Option<String> {
        self.redriven_map_runs.remove(&state)
    }

    /// `state`'s Map Run started: it has not failed (yet).
    pub fn map_run_started(&mut self, state: StateId) {
        self.failed_map_runs.remove(&state);
    }
}

impl Core {
    /// Remembers the top-level state in progress (a stop or a timeout ends
    /// the execution while it runs).
    pub(super) fn note_redrive_point(&mut self) {
        let run = match self.threads.first().map(|t| &t.at) {
            Some(At::Children { run, frame }) => {
                self.redrive.keep_children(run, frame.children());
                run
            }
            Some(At::Task { run, .. } | At::Timer { run, .. }) => run,
            Some(At::Enter { state, input }) => {
                self.redrive.from = Some((*state, Arc::clone(input)));
                return;
            }
            _ => return,
        };
        self.redrive.from = Some((run.state, Arc::clone(&run.input)));
    }

    /// Whether RedriveExecution can restart this execution.
    pub(super) fn can_redrive(&self) -> bool {
        matches!(
            self.status,
            Status::Failed(_) | Status::Aborted(_) | Status::TimedOut(_)
        ) && self.redrive.from.is_some()
    }

    /// Runs the execution again from its redrive point.
    pub(super) fn redrive_execution(&mut self) {
        if !self.can_redrive() {
            return;
        }
        let Some((state, input)) = self.redrive.from.take() else {
            return;
        };
        let r = &mut self.redrive;
        r.count += 1;
        self.ctx.info.redrive_count = r.count;
        r.redriven_map_runs = std::mem::take(&mut r.failed_map_runs);
        r.redriven_children = r.kept_children.take().filter(|k| k.state == state);
        self.ctx.set_input(Arc::clone(&self.input));
        let previous = self.last_id();
        let id = self.emit(
            previous,
            Event::ExecutionRedriven {
                redrive_count: self.redrive.count,
            },
        );
        self.status = Status::Running;
        let root = &mut self.threads[0];
        root.last_event = id;
        root.at = At::Enter { state, input };
        self.ready.push(0);
    }

    /// After a redrive, the children of this state that succeeded before
    /// are done already: their results stand and they do not run again.
    pub(super) fn keep_redriven_children(
        &mut self,
        tid: ThreadId,
        run: &Run,
        children: &mut Children,
    ) {
        if tid != 0 {
            return;
        }
        let Some(kept) = self
            .redrive
            .redriven_children
            .take_if(|k| k.state == run.state && k.results.len() == children.items.len())
        else {
            return;
        };
        for (index, result) in kept.results.into_iter().enumerate() {
            if let Some(result) = result {
                children.results[index] = result;
                children.succeeded[index] = true;
                children.finished += 1;
            }
        }
    }
}

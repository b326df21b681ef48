//! One state's run on a thread: entering it, doing its work (Pass,
//! Succeed, Fail, Choice and Wait here; a Task, a Parallel or a Map hands
//! over to `task.rs`, `frame.rs` or `map_run.rs`), then leaving it: the
//! output, the Exited event and the transition, or a failure met by Retry
//! and Catch.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value};

use super::Core;
use super::Data;
use super::failure::{self, Failure};
use super::flow::Evaluator;
use super::limits::check_size;
use super::scheduler::{AfterTimer, At, ThreadId};
use crate::asl::model::{Payload, ProcessorMode, StateId, StateKind, StateMachine, Transition};
use crate::cause;
use crate::history::{EvaluationFailed, Event, StateType};

/// A state in progress.
#[derive(Debug, Clone)]
pub(super) struct Run {
    pub state: StateId,
    /// The raw state input (before InputPath).
    pub input: Data,
    pub entered_event: u64,
    /// The event the state was entered after (the entry's previousEventId).
    pub entered_after: u64,
    pub entered_time: DateTime<Utc>,
    /// Attempts used per retrier.
    pub retries: Vec<u32>,
    /// Retries done so far in this state ($$.State.RetryCount).
    pub retry_count: u32,
}

impl Core {
    pub(super) fn evaluator<'s>(
        &'s mut self,
        m: &'s StateMachine,
        tid: ThreadId,
        run: &'s Run,
    ) -> Evaluator<'s> {
        self.item_evaluator(m, tid, run, None)
    }

    /// An evaluator for `run`'s state; `map_item` sets `$$.Map.Item` (a Map
    /// state selecting an iteration's input).
    pub(super) fn item_evaluator<'s>(
        &'s mut self,
        m: &'s StateMachine,
        tid: ThreadId,
        run: &'s Run,
        map_item: Option<(usize, &Value)>,
    ) -> Evaluator<'s> {
        let thread = &self.threads[tid];
        let state = m.state(run.state);
        if state.uses_context || map_item.is_some() {
            let retries = matches!(
                state.kind,
                StateKind::Task(_) | StateKind::Parallel(_) | StateKind::Map(_)
            );
            let retry_count = retries.then_some(run.retry_count);
            self.ctx
                .enter_state(&state.name, run.entered_time, retry_count, map_item);
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

    pub(super) fn enter(
        &mut self,
        m: &StateMachine,
        tid: ThreadId,
        state_id: StateId,
        input: Data,
    ) {
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
    pub(super) fn execute(&mut self, m: &StateMachine, tid: ThreadId, run: Run) {
        if tid == 0 {
            self.redrive.state_runs(run.state);
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
                        None => self.fail_state(m, tid, run, cause::NO_CHOICE_MATCHED.failure(&[])),
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
            StateKind::Task(task) => self.start_task(m, tid, run, task),
            StateKind::Parallel(parallel) => self.start_parallel(m, tid, run, parallel),
            StateKind::Map(map) => {
                if let ProcessorMode::Distributed { execution_type } = map.mode {
                    if !self.inline_distributed {
                        return self.start_map_run(m, tid, run, map, execution_type);
                    }
                    if map.item_reader.is_some() {
                        let f = cause::ITEM_READER_NEEDS_SERVE.failure(&[]);
                        return self.fail_state(m, tid, run, f);
                    }
                }
                self.start_map(m, tid, run, map)
            }
        }
    }

    /// A Wait state's time has come.
    pub(super) fn wait_over(&mut self, m: &StateMachine, tid: ThreadId, run: Run) {
        let effective = self.evaluator(m, tid, &run).input_only();
        match effective {
            Ok(v) => self.complete(m, tid, run, v, None),
            Err(f) => self.fail_state(m, tid, run, f),
        }
    }

    /// The state's work is done with `result`: ResultSelector, Assign,
    /// ResultPath, OutputPath, the Exited event, then the transition.
    /// `choice` carries a Choice state's decision and the index of the rule
    /// that matched (its Assign applies too).
    pub(super) fn complete(
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
        let rule = match (&state.kind, choice) {
            (StateKind::Choice(_), Some((_, Some(rule)))) => Some(rule),
            _ => None,
        };
        let rule_output = match (&state.kind, rule) {
            (StateKind::Choice(c), Some(rule)) => c.choices[rule].output.as_ref(),
            _ => None,
        };
        let finished = self
            .evaluator(m, tid, &run)
            .finish_with(result, assign, rule, rule_output);
        let (output, assigned) = match finished {
            Ok(v) => v,
            Err(f) => return self.fail_state(m, tid, run, f),
        };
        // An output that is the input itself was measured on the way in.
        if !Arc::ptr_eq(&output, &run.input) {
            if let Err(f) = check_size(&output, &state.name) {
                return self.fail_state(m, tid, run, f);
            }
        }
        if let Some(assigned) = &assigned {
            self.set_variables(tid, assigned);
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

    /// Gives the thread's scope the variables a state assigned.
    fn set_variables(&mut self, tid: ThreadId, assigned: &Map<String, Value>) {
        let vars = Arc::make_mut(&mut self.threads[tid].vars);
        for (name, value) in assigned {
            vars.set(name.clone(), value.clone());
        }
    }

    /// The state failed: retry, catch, or fail its thread.
    pub(super) fn fail_state(
        &mut self,
        m: &StateMachine,
        tid: ThreadId,
        run: Run,
        failure: Failure,
    ) {
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
    pub(super) fn fail_state_closing(
        &mut self,
        m: &StateMachine,
        tid: ThreadId,
        mut run: Run,
        failure: Failure,
        closing: Option<(u64, Event)>,
    ) {
        let state = m.state(run.state);
        if tid == 0 {
            self.redrive.state_failed(&run);
        }
        if closing.is_none() && failure.error.as_deref() == Some("States.QueryEvaluationError") {
            self.evaluation_failed(m, tid, &run, &failure);
        }
        if failure.is_terminal() {
            if let Some((previous, event)) = closing {
                let id = self.emit(previous, event);
                self.threads[tid].last_event = id;
            }
            // AWS prefixes a runtime failure's cause with the state; a
            // data limit's names the state in its own words.
            let failure = if failure.name() == "States.Runtime" {
                cause::in_state(failure, &state.name, run.entered_event)
            } else {
                failure
            };
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
        if let Some((index, catcher)) = catchers
            .iter()
            .enumerate()
            .find(|(_, c)| failure::matches(&c.error_equals, &failure))
        {
            if tid == 0 {
                self.redrive.caught();
            }
            let caught = self
                .evaluator(m, tid, &run)
                .catch_output(catcher, index, &failure);
            let (output, assigned) = match caught {
                Ok(v) => v,
                Err(f) => return self.fail_execution(self.threads[tid].last_event, f),
            };
            if let Some(assigned) = &assigned {
                self.set_variables(tid, assigned);
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
}

/// AWS records assigned variables as JSON text.
fn render_assigned(assigned: Map<String, Value>) -> Map<String, Value> {
    assigned
        .into_iter()
        .map(|(k, v)| (k, Value::String(v.to_string())))
        .collect()
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

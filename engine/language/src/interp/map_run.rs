//! A distributed Map's Map Run. Its fields are evaluated here, then the
//! Map Run (reading items, child executions, results) is a task the
//! runtime carries out; its answer is the Map's result. A Map Run that
//! failed or was stopped is remembered, so that a redrive runs it again.

use serde_json::Value;

use super::failure::Failure;
use super::limits::check_size;
use super::protocol::{Effect, TaskId, TaskRequest};
use super::scheduler::{At, ThreadId};
use super::state::Run;
use super::{Core, Data};
use crate::asl::model::{
    ExecutionType, IntegrationPattern, Map as MapState, Resource, ResourceKind, StateKind,
    StateMachine,
};
use crate::cause;
use crate::history::Event;

impl Core {
    /// Evaluates a distributed Map's fields, records MapStateStarted and
    /// MapRunStarted (or MapRunRedriven) and hands the Map Run to the
    /// runtime as a task.
    pub(super) fn start_map_run(
        &mut self,
        m: &StateMachine,
        tid: ThreadId,
        run: Run,
        map: &MapState,
        execution_type: ExecutionType,
    ) {
        let state = m.state(run.state);
        let prepared = {
            let mut ev = self.item_evaluator(m, tid, &run, None);
            ev.distributed_setup(map).map(|spec| (spec, ev.new_uuid()))
        };
        let (mut spec, id) = match prepared {
            Ok(p) => p,
            Err((f, started)) => return self.map_fields_failed(m, tid, run, f, started),
        };
        let info = &self.ctx.info;
        // AWS: the label is the Label field, else the state's name.
        let label = map.label.clone().unwrap_or_else(|| state.name.to_string());
        let account = info.execution_arn.split(':').nth(4).unwrap_or_default();
        let redriven = self.redrive.take_map_run(run.state);
        spec.redrive = redriven.is_some();
        spec.map_run_arn = redriven.unwrap_or_else(|| {
            format!(
                "arn:aws:states:{}:{account}:mapRun:{}/{label}:{id}",
                info.region, info.state_machine_name
            )
        });
        spec.label = label;
        spec.state = run.state.0;
        spec.express = execution_type == ExecutionType::Express;
        self.ctx
            .enter_state(&state.name, run.entered_time, Some(run.retry_count), None);
        spec.context = self.ctx.value().clone();
        // AWS records MapStateStarted (with the inline item count; an
        // ItemReader's count is not known yet) before MapRunStarted.
        let length = spec.items.as_ref().map_or(0, Vec::len);
        self.emit_on(tid, Event::MapStateStarted { length });
        let input = match serde_json::to_value(&spec) {
            Ok(v) => v,
            Err(e) => {
                let f = cause::MAP_RUN_MALFORMED.failure(&[("reason", &e)]);
                return self.fail_state(m, tid, run, f);
            }
        };
        let event = if spec.redrive {
            Event::MapRunRedriven {
                map_run_arn: spec.map_run_arn.clone(),
                redrive_count: self.redrive.count(),
            }
        } else {
            Event::MapRunStarted {
                map_run_arn: spec.map_run_arn.clone(),
            }
        };
        self.emit_on(tid, event);
        self.redrive.map_run_started(run.state);
        self.next_task += 1;
        let task_id = TaskId(self.next_task);
        self.tasks.insert(task_id, tid);
        self.map_run_tasks.insert(task_id, spec.map_run_arn.clone());
        self.effects.push(Effect::InvokeTask(Box::new(TaskRequest {
            task: task_id,
            state_name: state.name.to_string(),
            resource: Resource {
                arn: spec.map_run_arn,
                kind: ResourceKind::MapRun,
                pattern: IntegrationPattern::RequestResponse,
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

    /// A Map Run answered: its result (the children's outputs, or the
    /// ResultWriter's details) goes through ResultSelector and ResultPath
    /// as a Map's result does; a failure meets Retry and Catch.
    pub(super) fn map_run_finished(
        &mut self,
        m: &StateMachine,
        tid: ThreadId,
        run: Run,
        task: TaskId,
        result: Result<Value, Failure>,
    ) {
        let arn = self.map_run_tasks.remove(&task);
        if let (Err(_), Some(arn)) = (&result, arn) {
            self.redrive.map_run_failed(run.state, arn);
        }
        match result {
            Ok(output) => {
                // As AWS links them: MapStateSucceeded and MapStateExited
                // both follow MapRunSucceeded.
                let succeeded = self.emit_on(tid, Event::MapRunSucceeded);
                self.emit_on(tid, Event::MapStateSucceeded);
                self.threads[tid].last_event = succeeded;
                let output = Data::new(output);
                match check_size(&output, &m.state(run.state).name) {
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

    /// The execution stops: every Map Run in flight stops with it
    /// (MapRunAborted), and is remembered for a redrive.
    pub(super) fn abort_map_runs(&mut self, m: &StateMachine) {
        let map_runs: Vec<ThreadId> = (0..self.threads.len())
            .filter(|&tid| match &self.threads[tid].at {
                At::Task { run, .. } => matches!(m.state(run.state).kind, StateKind::Map(_)),
                _ => false,
            })
            .collect();
        for tid in map_runs {
            if let At::Task { run, task, .. } = &self.threads[tid].at {
                if let Some(arn) = self.map_run_tasks.remove(task) {
                    self.redrive.map_run_failed(run.state, arn);
                }
            }
            self.emit_on(tid, Event::MapRunAborted);
        }
    }
}

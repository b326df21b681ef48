//! A Task state's task, from invocation to answer: the request handed to
//! the runtime (with its token, timeout and heartbeat timers), then its
//! start, heartbeats, result, failure or timeout, each recorded as AWS
//! records it (Task* events, or Activity* events for an activity).

use std::sync::Arc;

use chrono::Duration;
use serde_json::Value;

use super::failure::Failure;
use super::limits::check_size;
use super::protocol::{Effect, TaskId, TaskRequest, TimerId};
use super::scheduler::{At, ThreadId};
use super::state::Run;
use super::{Core, Data};
use crate::asl::model::{Resource, StateKind, StateMachine, Task};
use crate::cause;
use crate::history::Event;

impl Core {
    /// Evaluates the Task's fields, records it as scheduled and asks the
    /// runtime to invoke it.
    pub(super) fn start_task(&mut self, m: &StateMachine, tid: ThreadId, run: Run, task: &Task) {
        let state = m.state(run.state);
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
        if let Err(f) = check_size(&input, &state.name) {
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

    /// The token of a task that is answered by a callback or a worker.
    fn task_token(&self, resource: &Resource, task: TaskId) -> Option<String> {
        use crate::asl::model::IntegrationPattern;
        let secret = self.token_secret.as_deref()?;
        let wants =
            is_activity(resource) || resource.pattern == IntegrationPattern::WaitForTaskToken;
        wants.then(|| crate::interp::token::mint(secret, task))
    }

    pub(super) fn task_started(
        &mut self,
        m: &StateMachine,
        task: TaskId,
        worker_name: Option<String>,
        pool: Option<Box<crate::history::PoolWait>>,
    ) {
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
            Event::ActivityStarted { worker_name, pool }
        } else {
            Event::TaskStarted(Box::new(crate::history::TaskStarted {
                resource_type: resource_type(t),
                resource: resource_name(t),
                pool,
            }))
        };
        self.emit_on(tid, event);
    }

    pub(super) fn task_submitted(&mut self, m: &StateMachine, task: TaskId, output: Value) {
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
            cache: None,
            resource_type: resource_type(t),
            resource: resource_name(t),
            output: Data::new(output),
        }));
        self.emit_on(tid, event);
    }

    pub(super) fn task_heartbeat(&mut self, task: TaskId) {
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

    pub(super) fn task_finished(
        &mut self,
        m: &StateMachine,
        task: TaskId,
        result: Result<Value, Failure>,
        cached: Option<Box<crate::history::CacheHit>>,
    ) {
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
            StateKind::Map(_) => return self.map_run_finished(m, tid, run, task, result),
            _ => return,
        };
        match result {
            Ok(output) => {
                let output = Data::new(output);
                let event = if is_activity(&resource) {
                    Event::ActivitySucceeded {
                        output: Arc::clone(&output),
                        cache: cached,
                    }
                } else {
                    Event::TaskSucceeded(Box::new(crate::history::TaskSucceeded {
                        resource_type: resource_type(&resource),
                        resource: resource_name(&resource),
                        output: Arc::clone(&output),
                        cache: cached,
                    }))
                };
                self.emit_on(tid, event);
                match check_size(&output, &task_label(&resource)) {
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

    /// The task's TimeoutSeconds, or its HeartbeatSeconds when
    /// `heartbeat`, ran out; its timers and the task are cancelled.
    pub(super) fn task_timed_out(
        &mut self,
        m: &StateMachine,
        tid: ThreadId,
        run: Run,
        heartbeat: bool,
    ) {
        let resource = match &m.state(run.state).kind {
            StateKind::Task(t) => t.resource.clone(),
            _ => return,
        };
        let template = if heartbeat {
            &cause::HEARTBEAT_TIMED_OUT
        } else {
            &cause::TASK_TIMED_OUT
        };
        // AWS records a task's timeout with no cause.
        let failure = Failure {
            cause: None,
            ..template.failure(&[])
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

    /// Forgets a task still running, asks the runtime to cancel it, and
    /// cancels its timeout and heartbeat timers (those still pending).
    pub(super) fn cancel_task(
        &mut self,
        task: TaskId,
        timeout: Option<TimerId>,
        heartbeat: Option<TimerId>,
    ) {
        self.tasks.remove(&task);
        self.effects.push(Effect::CancelTask { task });
        for timer in timeout.into_iter().chain(heartbeat) {
            self.cancel_timer(timer);
        }
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

/// What AWS names in the cause of a task result too large: the ARN of a
/// Lambda function or an activity, the service of an integration
/// (`lambda`, `aws-sdk:s3`).
fn task_label(resource: &Resource) -> String {
    use crate::asl::model::ResourceKind as K;
    match &resource.kind {
        K::Activity { .. } | K::LambdaFunction { .. } => resource.arn.clone(),
        _ => resource_type(resource),
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

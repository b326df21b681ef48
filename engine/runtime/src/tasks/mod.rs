//! Task invokers: HTTP, registered processes, Lambda mappings, activities,
//! callbacks (task tokens) and nested executions, each reaching only what
//! the operator's configuration allows.
//!
//! [`Invokers`] is the [`TaskRunner`] for everything that leaves the
//! engine; activities (`activity`) and nested executions (`nested`) are
//! run by the engine itself, and `token` mints task tokens.

pub mod activity;
pub mod config;
pub mod http;
pub mod lambda;
pub mod mock;
pub mod nested;
pub mod process;

use std::sync::Arc;

use crate::{TaskCall, TaskFuture, TaskRunner};
use config::TaskConfig;
use http::HttpInvoker;
use stepline_language::asl::model::{IntegrationPattern, ResourceKind};
use stepline_language::cause;

/// Runs HTTP, process and Lambda tasks as the configuration allows.
#[derive(Debug, Clone)]
pub struct Invokers {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: TaskConfig,
    http: HttpInvoker,
}

impl Invokers {
    pub fn new(config: TaskConfig) -> Result<Self, http::HttpClientError> {
        let http = HttpInvoker::new(&config)?;
        Ok(Self {
            inner: Arc::new(Inner { config, http }),
        })
    }
}

impl TaskRunner for Invokers {
    fn run(&self, call: TaskCall) -> TaskFuture {
        let inner = Arc::clone(&self.inner);
        Box::pin(async move {
            let resource = &call.request.resource;
            if matches!(
                resource.pattern,
                IntegrationPattern::Sync | IntegrationPattern::Sync2
            ) {
                return Err(cause::SYNC_NOT_SUPPORTED.failure(&[("resource", &resource.arn)]));
            }
            match &resource.kind {
                ResourceKind::Process { name } => {
                    let registered =
                        inner.config.processes.get(name).ok_or_else(|| {
                            cause::PROCESS_NOT_REGISTERED.failure(&[("name", name)])
                        })?;
                    process::run(name, registered, &call).await
                }
                ResourceKind::HttpInvoke => inner.http.invoke(&inner.config, &call).await,
                ResourceKind::LambdaFunction { .. } | ResourceKind::LambdaInvoke => {
                    lambda::invoke(&inner.config, &inner.http, &call).await
                }
                ResourceKind::Service { service, action } => Err(cause::NO_INTEGRATION.failure(&[
                    ("service", service),
                    ("action", action),
                    ("resource", &resource.arn),
                ])),
                // The engine runs these itself; never sent here.
                ResourceKind::Activity { .. }
                | ResourceKind::StartExecution
                | ResourceKind::MapRun => {
                    Err(cause::RESOURCE_NOT_INVOCABLE.failure(&[("resource", &resource.arn)]))
                }
            }
        })
    }
}

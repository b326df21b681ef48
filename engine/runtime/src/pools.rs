//! Named pools of slots (`[pools.NAME]`): the task resources a pool names
//! (registered processes, HTTP destinations, Lambda functions) run at most
//! `slots` at once; a task beyond waits for a slot, first come first
//! served. [`PooledRunner`] wraps the engine's task runner, so a pool
//! holds a slot only while a task is really called (a cached result takes
//! none). Never a slot for activities or nested executions: the engine
//! runs those without the runner.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use stepline_language::asl::model::ResourceKind;
use tokio::sync::Semaphore;

use crate::{TaskCall, TaskFuture, TaskRunner};

/// One `[pools.NAME]` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    /// How many of its tasks run at once.
    pub slots: u32,
    /// Registered processes (`stepline:process:NAME`) that draw from it.
    #[serde(default)]
    pub processes: Vec<String>,
    /// URL prefixes: HTTP tasks whose `ApiEndpoint` starts with one.
    #[serde(default)]
    pub http: Vec<String>,
    /// Lambda function names (as `[tasks.lambda]` maps them).
    #[serde(default)]
    pub lambda: Vec<String>,
}

/// Why a pool configuration is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("pools.{pool}.slots: 0 is not at least 1")]
    NoSlots { pool: String },
    #[error(
        "pools.{pool}: the {what} '{name}' is in pool '{other}' too; a resource draws from one pool"
    )]
    TwoPools {
        pool: String,
        other: String,
        what: &'static str,
        name: String,
    },
}

/// A task waiting for a slot, as `GET /v1/pools` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub execution_arn: String,
    pub state_name: String,
    pub since: DateTime<Utc>,
}

/// One pool's figures now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolUsage {
    pub name: String,
    pub slots: u32,
    pub in_use: u32,
    /// Oldest first: the order they get their slots.
    pub waiting: Vec<Waiting>,
}

#[derive(Debug)]
struct Pool {
    slots: u32,
    semaphore: Arc<Semaphore>,
    /// Tasks waiting, by a number given in arrival order.
    waiting: Mutex<BTreeMap<u64, Waiting>>,
}

/// The pools and which resources draw from which.
#[derive(Debug, Default)]
pub struct Pools {
    pools: BTreeMap<String, Pool>,
    processes: HashMap<String, String>,
    http: Vec<(String, String)>,
    lambda: HashMap<String, String>,
    next: AtomicU64,
}

impl Pools {
    pub fn new(config: &BTreeMap<String, PoolConfig>) -> Result<Self, PoolError> {
        let mut this = Self::default();
        for (name, pool) in config {
            if pool.slots == 0 {
                return Err(PoolError::NoSlots { pool: name.clone() });
            }
            this.pools.insert(
                name.clone(),
                Pool {
                    slots: pool.slots,
                    semaphore: Arc::new(Semaphore::new(pool.slots as usize)),
                    waiting: Mutex::new(BTreeMap::new()),
                },
            );
            for (what, names, map) in [
                ("process", &pool.processes, &mut this.processes),
                ("lambda function", &pool.lambda, &mut this.lambda),
            ] {
                for resource in names {
                    if let Some(other) = map.insert(resource.clone(), name.clone()) {
                        return Err(PoolError::TwoPools {
                            pool: name.clone(),
                            other,
                            what,
                            name: resource.clone(),
                        });
                    }
                }
            }
            for prefix in &pool.http {
                if let Some((_, other)) = this.http.iter().find(|(p, _)| p == prefix) {
                    return Err(PoolError::TwoPools {
                        pool: name.clone(),
                        other: other.clone(),
                        what: "URL prefix",
                        name: prefix.clone(),
                    });
                }
                this.http.push((prefix.clone(), name.clone()));
            }
        }
        // The longest prefix wins.
        this.http
            .sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        Ok(this)
    }

    pub fn is_empty(&self) -> bool {
        self.pools.is_empty()
    }

    /// The pool a task draws from, if any.
    fn pool_of(&self, call: &TaskCall) -> Option<&Pool> {
        let input = &call.request.input;
        let name = match &call.request.resource.kind {
            ResourceKind::Process { name } => self.processes.get(name),
            ResourceKind::HttpInvoke => {
                let endpoint = input.get("ApiEndpoint")?.as_str()?;
                self.http
                    .iter()
                    .find(|(prefix, _)| endpoint.starts_with(prefix.as_str()))
                    .map(|(_, pool)| pool)
            }
            ResourceKind::LambdaFunction { name } => self.lambda.get(name),
            ResourceKind::LambdaInvoke => {
                let given = input.get("FunctionName")?.as_str()?;
                // A name, or an ARN ending in `function:NAME[:QUALIFIER]`.
                let name = given
                    .split_once(":function:")
                    .map_or(given, |(_, rest)| rest.split(':').next().unwrap_or(rest));
                self.lambda.get(name)
            }
            _ => None,
        }?;
        self.pools.get(name)
    }

    /// Every pool's figures, by name.
    pub fn usage(&self) -> Vec<PoolUsage> {
        self.pools
            .iter()
            .map(|(name, pool)| PoolUsage {
                name: name.clone(),
                slots: pool.slots,
                in_use: pool.slots - pool.semaphore.available_permits() as u32,
                waiting: pool
                    .waiting
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .values()
                    .cloned()
                    .collect(),
            })
            .collect()
    }

    /// `/metrics` lines: slots, slots in use and tasks waiting per pool.
    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write as _;
        if self.is_empty() {
            return;
        }
        let usage = self.usage();
        for (metric, help) in [
            ("stepline_pool_slots", "Each pool's slots."),
            ("stepline_pool_slots_in_use", "Slots held by running tasks."),
            ("stepline_pool_waiting", "Tasks waiting for a slot."),
        ] {
            let _ = writeln!(out, "# HELP {metric} {help}\n# TYPE {metric} gauge");
            for pool in &usage {
                let value = match metric {
                    "stepline_pool_slots" => pool.slots as usize,
                    "stepline_pool_slots_in_use" => pool.in_use as usize,
                    _ => pool.waiting.len(),
                };
                let _ = writeln!(
                    out,
                    "{metric}{{pool=\"{}\"}} {value}",
                    crate::metrics::label(&pool.name)
                );
            }
        }
    }
}

/// The engine's runner, with each call of a pooled resource holding one
/// of its pool's slots.
pub(crate) struct PooledRunner {
    pub(crate) inner: Arc<dyn TaskRunner>,
    pub(crate) pools: Arc<Pools>,
    pub(crate) clock: Arc<dyn crate::Clock>,
}

/// Takes a waiting task off its pool's list when its wait ends, however
/// it ends (a slot, or the task cancelled).
struct WaitEntry<'a> {
    pool: &'a Pool,
    id: u64,
}

impl Drop for WaitEntry<'_> {
    fn drop(&mut self) {
        self.pool
            .waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.id);
    }
}

impl TaskRunner for PooledRunner {
    fn run(&self, call: TaskCall) -> TaskFuture {
        if self.pools.pool_of(&call).is_none() {
            return self.inner.run(call);
        }
        let inner = Arc::clone(&self.inner);
        let pools = Arc::clone(&self.pools);
        let now = self.clock.now();
        Box::pin(async move {
            let Some(pool) = pools.pool_of(&call) else {
                return inner.run(call).await;
            };
            let permit = match Arc::clone(&pool.semaphore).try_acquire_owned() {
                Ok(permit) => permit,
                Err(_) => {
                    let id = pools.next.fetch_add(1, Ordering::Relaxed);
                    pool.waiting
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .insert(
                            id,
                            Waiting {
                                execution_arn: call.execution_arn.clone(),
                                state_name: call.request.state_name.clone(),
                                since: now,
                            },
                        );
                    let _entry = WaitEntry { pool, id };
                    Arc::clone(&pool.semaphore)
                        .acquire_owned()
                        .await
                        .expect("a pool's semaphore is never closed")
                }
            };
            let result = inner.run(call).await;
            drop(permit);
            result
        })
    }
}

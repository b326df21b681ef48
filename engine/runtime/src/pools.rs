//! Named pools of slots (`[pools.NAME]`): the task resources a pool names
//! (registered processes, HTTP destinations, Lambda functions, activities,
//! nested executions of named state machines) run at most `slots` at once;
//! a task beyond waits for a slot, first come first served. The executor
//! takes a slot before it calls a pooled task (a cached or mocked result
//! takes none) and records the wait on the task's TaskStarted (or
//! ActivityStarted) event.
//!
//! On one node the slots live here, in memory: a task that held a slot
//! when the node stopped (its start is in the journal) takes one again
//! ahead of every task that was only waiting. When several nodes share a
//! store, the engine takes slots in the store instead
//! (`engine/pool_slots.rs`) and this module keeps the node's waiters and
//! the wake-up of local releases.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use stepline_language::asl::model::ResourceKind;
use stepline_language::interp::TaskRequest;
use tokio::sync::oneshot;

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
    /// Activity names (`arn:…:activity:NAME`): a task holds its slot from
    /// when it is handed to the workers until it ends.
    #[serde(default)]
    pub activities: Vec<String>,
    /// State machine names: `states:startExecution` tasks that start one.
    #[serde(default)]
    pub state_machines: Vec<String>,
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

/// A task waiting for a slot, or holding one, as `GET /v1/pools` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub execution_arn: String,
    pub state_name: String,
    /// Since when it waits (or holds its slot).
    pub since: DateTime<Utc>,
}

/// One pool's figures now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolUsage {
    pub name: String,
    pub slots: u32,
    pub in_use: u32,
    /// The tasks holding its slots, oldest first.
    pub holders: Vec<Waiting>,
    /// Oldest first: the order they get their slots (tasks retaking the
    /// slot they held before a restart first).
    pub waiting: Vec<Waiting>,
}

/// Where a task waits: rank 0 for a task retaking the slot it held before
/// a restart, 1 for the others; then arrival.
type WaitKey = (u8, u64);

#[derive(Debug)]
struct Waiter {
    who: Waiting,
    /// Told when the slot is given; dropped unanswered never.
    given: oneshot::Sender<()>,
}

#[derive(Debug, Default)]
struct PoolState {
    /// Slot holders by id.
    holders: BTreeMap<u64, Waiting>,
    waiting: BTreeMap<WaitKey, Waiter>,
}

/// A pool's slots: a semaphore of its own rather than tokio's, for the
/// two ranks of waiters and for the lists of holders and waiters that
/// `GET /v1/pools` shows.
#[derive(Debug)]
struct Pool {
    slots: u32,
    state: Mutex<PoolState>,
    /// Shut while the node resumes its executions after a start: only
    /// the tasks retaking their slots get one (see [`Pools::close_gate`]).
    gate: Arc<AtomicBool>,
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Gives free slots to the first waiters (while the gate is shut,
    /// only to those retaking theirs).
    fn give(&self, state: &mut PoolState) {
        while state.holders.len() < self.slots as usize {
            let shut = self.gate.load(Ordering::Acquire);
            match state.waiting.first_key_value() {
                Some(((rank, _), _)) if *rank == 0 || !shut => {}
                _ => return,
            }
            let Some(((_, id), waiter)) = state.waiting.pop_first() else {
                return;
            };
            state.holders.insert(id, waiter.who);
            if waiter.given.send(()).is_err() {
                // Its wait ended meanwhile (the task was cancelled).
                state.holders.remove(&id);
            }
        }
    }

    fn release(&self, id: u64) {
        let mut state = self.lock();
        if state.holders.remove(&id).is_some() {
            self.give(&mut state);
        }
    }
}

/// One slot of a pool, held until dropped.
pub struct Slot {
    hold: Hold,
    /// The pool's name and how long the task waited for the slot.
    pub wait: PoolWait,
}

/// What gives a slot back.
enum Hold {
    /// This node's pool, and the holder's id in it.
    Local { pool: Arc<Pool>, id: u64 },
    /// A slot in the store several nodes share: given back by this.
    Shared(Option<Box<dyn FnOnce() + Send>>),
}

impl Slot {
    /// A slot held in the shared store, given back by `release`.
    pub(crate) fn shared(wait: PoolWait, release: Box<dyn FnOnce() + Send>) -> Self {
        Self {
            hold: Hold::Shared(Some(release)),
            wait,
        }
    }
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot").field("wait", &self.wait).finish()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        match &mut self.hold {
            Hold::Local { pool, id } => pool.release(*id),
            Hold::Shared(release) => {
                if let Some(release) = release.take() {
                    release();
                }
            }
        }
    }
}

/// Which pool a task drew from and how long it waited, in milliseconds:
/// what its TaskStarted (or ActivityStarted) event records.
pub type PoolWait = stepline_language::history::PoolWait;

/// A task's turn for a slot of a pool, taken at once (see
/// [`Pools::turn`]): a slot already given, or a place among the waiters.
/// Dropped before its slot came, it leaves the waiters (or gives back a
/// slot given meanwhile).
#[derive(Debug)]
pub struct Turn {
    pool: Arc<Pool>,
    name: String,
    key: WaitKey,
    since: DateTime<Utc>,
    given: Option<oneshot::Receiver<()>>,
    done: bool,
}

impl Turn {
    /// Waits for the slot; `now` reads the clock once it is given, for
    /// the wait's length.
    pub async fn wait(mut self, now: impl FnOnce() -> DateTime<Utc>) -> Slot {
        let at = match self.given.take() {
            Some(given) => {
                // The sender is only dropped after it sent.
                let _ = given.await;
                let at = now();
                // A holder is listed since it has its slot.
                if let Some(holder) = self.pool.lock().holders.get_mut(&self.key.1) {
                    holder.since = at;
                }
                at
            }
            None => now(),
        };
        self.done = true;
        Slot {
            hold: Hold::Local {
                pool: Arc::clone(&self.pool),
                id: self.key.1,
            },
            wait: PoolWait {
                name: std::mem::take(&mut self.name),
                waited_ms: (at - self.since).num_milliseconds().max(0) as u64,
            },
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut state = self.pool.lock();
        if state.waiting.remove(&self.key).is_none() && state.holders.remove(&self.key.1).is_some()
        {
            self.pool.give(&mut state);
        }
    }
}

/// The executions a starting node resumes, until each has asked for the
/// slots of its tasks: until then the pools' gate stays shut.
#[derive(Debug, Default)]
struct Gate {
    recovering: bool,
    expected: HashSet<String>,
}

/// The pools and which resources draw from which.
#[derive(Debug, Default)]
pub struct Pools {
    pools: BTreeMap<String, Arc<Pool>>,
    processes: HashMap<String, String>,
    http: Vec<(String, String)>,
    lambda: HashMap<String, String>,
    activities: HashMap<String, String>,
    state_machines: HashMap<String, String>,
    next: AtomicU64,
    /// Woken when a slot is given back (here, or on another node when
    /// several share the store): the waiters of shared slots look again.
    pub(crate) freed: tokio::sync::Notify,
    /// Whether the watch for slots given back on other nodes runs.
    pub(crate) watching: AtomicBool,
    /// Shut while a starting node resumes its executions (every pool
    /// shares it).
    gate: Arc<AtomicBool>,
    resuming: Mutex<Gate>,
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
                Arc::new(Pool {
                    slots: pool.slots,
                    state: Mutex::default(),
                    gate: Arc::clone(&this.gate),
                }),
            );
            for (what, names, map) in [
                ("process", &pool.processes, &mut this.processes),
                ("lambda function", &pool.lambda, &mut this.lambda),
                ("activity", &pool.activities, &mut this.activities),
                (
                    "state machine",
                    &pool.state_machines,
                    &mut this.state_machines,
                ),
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

    /// The name of the pool a task draws from, if any.
    pub fn pool_of(&self, request: &TaskRequest) -> Option<&str> {
        if self.is_empty() {
            return None;
        }
        let input = &request.input;
        let name = match &request.resource.kind {
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
            ResourceKind::Activity { name } => self.activities.get(name),
            ResourceKind::StartExecution => {
                let arn = input.get("StateMachineArn")?.as_str()?;
                // `…:stateMachine:NAME[:VERSION_OR_ALIAS]`.
                let (_, rest) = arn.split_once(":stateMachine:")?;
                self.state_machines
                    .get(rest.split(':').next().unwrap_or(rest))
            }
            _ => None,
        }?;
        Some(name.as_str())
    }

    /// Takes a turn for a slot of `pool` for `who` (whose `since` is when
    /// its wait began), at once: the slot itself when one is free and no
    /// one waits ahead, else a place among the waiters. `first` for a task
    /// that held a slot before a restart, which goes ahead of every other
    /// waiter. `None` for a pool that is not configured.
    pub fn turn(&self, pool: &str, who: Waiting, first: bool) -> Option<Turn> {
        let (name, pool) = self.pools.get_key_value(pool)?;
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let since = who.since;
        let key = (u8::from(!first), id);
        let shut = !first && self.gate.load(Ordering::Acquire);
        let given = {
            let mut state = pool.lock();
            let ahead = state.waiting.keys().next().is_some_and(|k| *k < key);
            if !ahead && !shut && state.holders.len() < pool.slots as usize {
                state.holders.insert(id, who);
                None
            } else {
                let (tell, given) = oneshot::channel();
                state.waiting.insert(key, Waiter { who, given: tell });
                Some(given)
            }
        };
        Some(Turn {
            pool: Arc::clone(pool),
            name: name.clone(),
            key,
            since,
            given,
            done: false,
        })
    }

    /// [`Pools::turn`], then its wait.
    pub async fn acquire(
        &self,
        pool: &str,
        who: Waiting,
        first: bool,
        now: impl FnOnce() -> DateTime<Utc>,
    ) -> Option<Slot> {
        Some(self.turn(pool, who, first)?.wait(now).await)
    }

    /// Shuts the gate while a starting node resumes its executions: the
    /// tasks that held a slot when the node stopped take theirs back
    /// before any other task gets one. Each execution resumed meanwhile
    /// is expected ([`Pools::expect`]) until it has asked for the slots
    /// of its tasks ([`Pools::asked`]).
    pub(crate) fn close_gate(&self) {
        if self.is_empty() {
            return;
        }
        self.lock_gate().recovering = true;
        self.gate.store(true, Ordering::Release);
    }

    /// An execution resumed while the gate is shut.
    pub(crate) fn expect(&self, arn: &str) {
        if self.gate.load(Ordering::Acquire) {
            let mut gate = self.lock_gate();
            if gate.recovering {
                gate.expected.insert(arn.to_owned());
            }
        }
    }

    /// Every open execution is resumed; `true` once the gate is open.
    pub(crate) fn resumed(&self) -> bool {
        if self.gate.load(Ordering::Acquire) {
            let mut gate = self.lock_gate();
            gate.recovering = false;
            self.open_if_done(gate);
        }
        !self.gate.load(Ordering::Acquire)
    }

    /// Opens the gate whatever it still waits for.
    pub(crate) fn open_gate(&self) {
        if self.gate.load(Ordering::Acquire) {
            let mut gate = self.lock_gate();
            if !gate.expected.is_empty() {
                tracing::warn!(
                    executions = gate.expected.len(),
                    "pools: resumed executions did not take their turns for slots; the waiting tasks go on"
                );
            }
            gate.recovering = false;
            gate.expected.clear();
            self.open_if_done(gate);
        }
    }

    /// An execution has asked for the slots of the tasks it resumed (or
    /// ended).
    pub(crate) fn asked(&self, arn: &str) {
        if self.gate.load(Ordering::Acquire) {
            let mut gate = self.lock_gate();
            gate.expected.remove(arn);
            self.open_if_done(gate);
        }
    }

    fn lock_gate(&self) -> MutexGuard<'_, Gate> {
        self.resuming
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn open_if_done(&self, gate: MutexGuard<'_, Gate>) {
        if gate.recovering || !gate.expected.is_empty() {
            return;
        }
        self.gate.store(false, Ordering::Release);
        drop(gate);
        for pool in self.pools.values() {
            let mut state = pool.lock();
            pool.give(&mut state);
        }
    }

    /// How many slots `pool` has, if it is configured.
    pub fn slots(&self, pool: &str) -> Option<u32> {
        Some(self.pools.get(pool)?.slots)
    }

    /// Lists `who` among `pool`'s waiters (a task waiting for a slot in
    /// the shared store) until the returned guard is dropped.
    pub(crate) fn wait_here(&self, pool: &str, who: Waiting) -> Option<impl Drop + Send> {
        let pool = self.pools.get(pool)?;
        let key = (1, self.next.fetch_add(1, Ordering::Relaxed));
        // A sender nobody gives a slot to: the shared store does.
        let (given, _) = oneshot::channel();
        pool.lock().waiting.insert(key, Waiter { who, given });
        struct Listed(Arc<Pool>, WaitKey);
        impl Drop for Listed {
            fn drop(&mut self) {
                self.0.lock().waiting.remove(&self.1);
            }
        }
        Some(Listed(Arc::clone(pool), key))
    }

    /// Every pool's figures, by name.
    pub fn usage(&self) -> Vec<PoolUsage> {
        self.pools
            .iter()
            .map(|(name, pool)| {
                let state = pool.lock();
                PoolUsage {
                    name: name.clone(),
                    slots: pool.slots,
                    in_use: state.holders.len() as u32,
                    holders: state.holders.values().cloned().collect(),
                    waiting: state.waiting.values().map(|w| w.who.clone()).collect(),
                }
            })
            .collect()
    }

    /// `/metrics` lines: slots, slots in use and tasks waiting per pool.
    pub fn render_metrics(usage: &[PoolUsage], out: &mut String) {
        use std::fmt::Write as _;
        if usage.is_empty() {
            return;
        }
        for (metric, help) in [
            ("stepline_pool_slots", "Each pool's slots."),
            ("stepline_pool_slots_in_use", "Slots held by running tasks."),
            ("stepline_pool_waiting", "Tasks waiting for a slot."),
        ] {
            let _ = writeln!(out, "# HELP {metric} {help}\n# TYPE {metric} gauge");
            for pool in usage {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pools(slots: u32) -> Pools {
        let config = PoolConfig {
            slots,
            processes: vec!["load".into()],
            http: vec![],
            lambda: vec![],
            activities: vec![],
            state_machines: vec![],
        };
        Pools::new(&BTreeMap::from([("w".to_owned(), config)])).expect("pools")
    }

    fn who(state: &str) -> Waiting {
        Waiting {
            execution_arn: "arn:e".into(),
            state_name: state.into(),
            since: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::milliseconds(1500)
    }

    /// A task that held a slot before a restart goes ahead of the tasks
    /// that were waiting, whatever their arrival; the others keep theirs.
    #[tokio::test]
    async fn a_task_retaking_its_slot_goes_first() {
        let pools = Arc::new(pools(1));
        let held = pools
            .acquire("w", who("A"), false, now)
            .await
            .expect("slot");
        assert_eq!(held.wait.waited_ms, 1500);
        let (order, mut done) = tokio::sync::mpsc::unbounded_channel();
        for (state, first) in [("B", false), ("C", false), ("D", true)] {
            let pools = Arc::clone(&pools);
            let order = order.clone();
            tokio::spawn(async move {
                let slot = pools.acquire("w", who(state), first, now).await;
                let _ = order.send(state);
                drop(slot);
            });
            tokio::task::yield_now().await;
        }
        let usage = pools.usage();
        let waiting: Vec<&str> = usage[0]
            .waiting
            .iter()
            .map(|w| w.state_name.as_str())
            .collect();
        assert_eq!(waiting, ["D", "B", "C"]);
        assert_eq!(usage[0].in_use, 1);
        drop(held);
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(done.recv().await.expect("a slot"));
        }
        assert_eq!(got, ["D", "B", "C"]);
        assert_eq!(pools.usage()[0].in_use, 0);
    }

    /// A waiter cancelled leaves the list; a slot given as its wait was
    /// dropped goes to the next.
    #[tokio::test]
    async fn a_cancelled_wait_gives_its_turn_away() {
        let pools = Arc::new(pools(1));
        let held = pools
            .acquire("w", who("A"), false, now)
            .await
            .expect("slot");
        let waiting = {
            let pools = Arc::clone(&pools);
            tokio::spawn(async move { pools.acquire("w", who("B"), false, now).await.map(drop) })
        };
        tokio::task::yield_now().await;
        assert_eq!(pools.usage()[0].waiting.len(), 1);
        waiting.abort();
        let _ = waiting.await;
        assert!(pools.usage()[0].waiting.is_empty());
        drop(held);
        let again = pools.acquire("w", who("C"), false, now).await;
        assert!(again.is_some());
        assert_eq!(pools.usage()[0].in_use, 1);
    }

    #[test]
    fn a_resource_is_in_one_pool() {
        let config = |names: &[&str]| PoolConfig {
            slots: 1,
            processes: vec![],
            http: vec![],
            lambda: vec![],
            activities: vec![],
            state_machines: names.iter().map(|n| (*n).to_owned()).collect(),
        };
        let refused = Pools::new(&BTreeMap::from([
            ("a".to_owned(), config(&["child"])),
            ("b".to_owned(), config(&["child"])),
        ]))
        .expect_err("two pools");
        assert_eq!(
            refused.to_string(),
            "pools.b: the state machine 'child' is in pool 'a' too; a resource draws from one pool"
        );
    }
}

//! The engine: state machines and durable executions on tokio, over a
//! [`Store`]. The faces (HTTP in both dialects, the CLI) call only this.
//!
//! Each running execution is one tokio task that owns its
//! [`DurableExecution`] and receives commands (task answers, timers, stop)
//! on a channel. A step is written to the store, then the execution waits
//! for a flush before it carries out the step's effects; one flusher task
//! serves every execution, so concurrent executions share flushes (group
//! commit). At start, every open execution is recovered from its journal
//! and resumed: outstanding tasks are invoked again, timers re-armed.

mod activities;
mod cache;
mod callbacks;
mod children;
mod cluster;
mod durability;
mod ended;
mod executions;
mod limits;
mod lineage;
mod machines;
mod map_runs;
mod paused;
mod pool_slots;
mod recovery;
mod retention;
mod settings;
mod shared_slots;
mod tags;
mod triggers;
mod versions;
mod windows;

pub use crate::error::EngineError;
use crate::task_runner::TaskRunner;
pub use cache::CachePurge;
pub use cluster::ClusterConfig;
pub use ended::Ended;
pub use limits::QueuePosition;
pub use versions::Resolved;
pub use windows::{StartOptions, TriggerWindows};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::Clock;
use super::durable::{DurableExecution, Keeping};
use super::entropy;
use super::executor::{self, Inbox, Pending};
use super::metrics::Metrics;
use super::task_logs::{self, TaskLogSink, TaskOutput};
use super::timers::TimerService;
use crate::tasks::activity::ActivityQueues;
use crate::tasks::mock::MockConfig;
use stepline_language::asl::{self, StateMachine};
use stepline_language::interp::{ExecutionInfo, Failure, TaskRequest};
use stepline_language::query::eval::{RandomSource, SplitMix64, uuid_v4};
use stepline_store::{
    ExecutionRecord, ExecutionStatus, StateMachineRecord, Store, StoreError, TaskLogRecord,
    WriteBatch, WriteOp,
};

/// Where ARNs point and who executions run as.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub region: String,
    pub account: String,
    /// Role ARN given to state machines created without one.
    pub default_role_arn: String,
    /// Mocked task responses for executions started as
    /// `stateMachineArn#TestCase`.
    pub mocks: Option<Arc<MockConfig>>,
    /// How long closed executions are kept (AWS keeps them 90 days);
    /// `None` keeps them forever.
    pub retention: Option<chrono::Duration>,
    /// An execution that waits only on timers due at least this far away
    /// sleeps: it leaves memory and is resumed from the store when its
    /// timer is due or a message (a stop) arrives. `None`: never.
    pub sleep_after: Option<std::time::Duration>,
    /// Told the record of every execution that ends in this process
    /// (SUCCEEDED, FAILED, TIMED_OUT or ABORTED) once its end is durable,
    /// executions resumed at open included: given here, before `open`
    /// recovers anything, so no end is missed. A send never waits.
    pub ended: Vec<mpsc::UnboundedSender<Ended>>,
    /// Buckets of distributed Maps' ItemReader and ResultWriter, mapped to
    /// local directories by the operator.
    pub buckets: crate::maprun::Buckets,
    /// This node, when several share the store (see `cluster`); `None`:
    /// the only node.
    pub cluster: Option<ClusterConfig>,
    /// Which task results are kept and reused (`[tasks.cache]`); the
    /// default keeps none.
    pub cache: Arc<crate::cache::TaskCache>,
    /// The files an execution's input names (a file trigger's), recorded
    /// as read with the start (lineage); `None`: none are.
    pub input_files: Option<crate::lineage::InputFiles>,
    /// `max_running` by state machine name (`[[limits]]`): at most that
    /// many of its executions run at once, the others queue. Empty: no
    /// limit, and the start path skips it all.
    pub max_running: HashMap<String, u32>,
    /// Named pools of slots task resources draw from (`[pools.NAME]`);
    /// empty: tasks are called without one.
    pub pools: Arc<crate::pools::Pools>,
    /// Execution windows by state machine name (`[[windows]]`): when its
    /// executions may start, what a start outside does, and whether its
    /// tasks wait for the next window (`drain`). Empty: none, and the
    /// start path skips it all.
    pub windows: HashMap<String, Arc<crate::windows::WindowRule>>,
    /// Told of every execution started outside its windows under
    /// `outside = "alert"` (the server's alerts). A send never waits.
    pub window_alerts: Vec<mpsc::UnboundedSender<crate::windows::OutsideWindow>>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            region: "us-east-1".into(),
            account: "111111111111".into(),
            default_role_arn: "arn:aws:iam::111111111111:role/stepline".into(),
            mocks: None,
            retention: Some(chrono::Duration::days(90)),
            sleep_after: Some(std::time::Duration::from_secs(10)),
            ended: Vec::new(),
            buckets: crate::maprun::Buckets::default(),
            cluster: None,
            cache: Arc::default(),
            input_files: None,
            max_running: HashMap::new(),
            pools: Arc::default(),
            windows: HashMap::new(),
            window_alerts: Vec::new(),
        }
    }
}

struct Inner {
    store: Arc<dyn Store>,
    runner: Arc<dyn TaskRunner>,
    clock: Arc<dyn Clock>,
    config: EngineConfig,
    /// State machine records read by starts, and when (`machines.rs`).
    recent_machines: Mutex<HashMap<String, (std::time::Instant, StateMachineRecord)>>,
    /// Compiled definitions by state machine ARN and revision.
    compiled: Mutex<HashMap<(String, u64), Arc<StateMachine>>>,
    /// Running executions by ARN.
    live: Mutex<HashMap<String, Inbox>>,
    /// Executions a storage failure stopped, to resume once it passes.
    paused: Mutex<std::collections::BTreeSet<String>>,
    flusher: mpsc::UnboundedSender<oneshot::Sender<executor::Flushed>>,
    /// Execution names and seeds when none is given.
    random: Mutex<SplitMix64>,
    /// Who waits for which execution to end.
    waiters: Mutex<HashMap<String, Vec<oneshot::Sender<()>>>>,
    activities: ActivityQueues,
    /// Serialises read-modify-write of state machine records.
    machines: Mutex<()>,
    metrics: Arc<Metrics>,
    timers: TimerService,
    /// Wakes sleeping executions: their ARNs go to `wake_loop`.
    waker: mpsc::UnboundedSender<String>,
    asleep: std::sync::atomic::AtomicUsize,
    /// Who is told of every execution that ends here (`EngineConfig::ended`,
    /// the server's alerts); observers that went away are forgotten.
    ended: Mutex<Vec<mpsc::UnboundedSender<Ended>>>,
    /// Whether a durable end also writes a notice, so that the observers
    /// hear of it after a crash ([`Engine::want_end_notices`]).
    end_notices_wanted: std::sync::atomic::AtomicBool,
    cluster: Option<cluster::ClusterState>,
    /// Executions this node claimed while an older loop of theirs still
    /// ran here: resumed from the store once that loop has ended.
    reclaimed: Mutex<std::collections::HashSet<String>>,
    /// Cache entries written since the last purge counted them, plus the
    /// count it found: past `max_entries`, the purge runs at once.
    cache_entries: std::sync::atomic::AtomicU64,
    /// Wakes the cache's purge before its period (too many entries).
    cache_purge: Arc<tokio::sync::Notify>,
    /// Running counts and queues of the state machines with a
    /// `max_running` (`limits.rs`).
    slots: Mutex<HashMap<String, limits::MachineSlots>>,
    /// Executions held until their window opens (`windows.rs`), and what
    /// wakes the loop that releases them when one is added.
    held: Mutex<windows::Held>,
    held_wake: Arc<tokio::sync::Notify>,
    /// Tasks of draining state machines waiting for a window.
    drain_waits: Arc<crate::windows::DrainWaits>,
    /// Serialises the read-modify-write of the window alerts' record.
    window_alerts: Mutex<()>,
    /// `max_running` and windows set over the API (`settings.rs`); the
    /// configuration's own come first.
    api_settings: std::sync::RwLock<settings::ApiSettings>,
    /// The draining rules the task runner reads (the configuration's and
    /// the API's).
    draining: Arc<std::sync::RwLock<HashMap<String, Arc<crate::windows::WindowRule>>>>,
}

/// The engine. Cheap to clone: clones share everything.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// The longest state machine or execution name AWS accepts.
const MAX_NAME_LEN: usize = 80;

/// AWS's rule for state machine, execution and activity names: none of
/// white space, brackets `< > { } [ ]`, wildcards `? *`, the specials
/// `" # % \ ^ | ~ ` $ & , ; : /`, control characters (U+0000-001F,
/// U+007F-009F, U+FFFE-FFFF), surrogates (never in a Rust string) and
/// U+10FFFF. Beyond AWS's list: characters that change how a name reads
/// without being seen ([`is_invisible_format`]), so two names that look
/// the same in a table, a log or a page are the same name.
fn check_name(name: &str, what: &str) -> Result<(), EngineError> {
    let refused = |c: char| {
        c.is_whitespace()
            || c.is_control()
            || matches!(c, '\u{FFFE}' | '\u{FFFF}' | '\u{10FFFF}')
            || "<>{}[]?*\"#%\\^|~`$&,;:/".contains(c)
            || is_invisible_format(c)
    };
    let bad = name.is_empty() || name.chars().count() > MAX_NAME_LEN || name.chars().any(refused);
    if bad {
        return Err(EngineError::InvalidName(format!(
            "Invalid Name: '{}' is not a valid {what} name: 1 to {MAX_NAME_LEN} characters, no spaces, brackets, wildcards, control or invisible characters, or any of \" # % \\ ^ | ~ ` $ & , ; : /",
            name.escape_debug()
        )));
    }
    Ok(())
}

/// Unicode format characters that are invisible or reorder text: the soft
/// hyphen, the bidirectional marks, embeddings, overrides and isolates, the
/// zero-width characters, the invisible operators and the byte order mark.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
    )
}

impl Engine {
    /// Opens the engine on `store` and resumes every open execution. Must
    /// be called inside a tokio runtime.
    pub fn open(
        store: Arc<dyn Store>,
        runner: Arc<dyn TaskRunner>,
        clock: Arc<dyn Clock>,
        config: EngineConfig,
    ) -> Result<Self, EngineError> {
        // Tasks of draining state machines wait for a window before they
        // are called (a pooled one with its pool's slot taken).
        let drain_waits = Arc::new(crate::windows::DrainWaits::default());
        let draining: HashMap<String, Arc<crate::windows::WindowRule>> = config
            .windows
            .iter()
            .filter(|(_, rule)| rule.drain)
            .map(|(name, rule)| (name.clone(), Arc::clone(rule)))
            .collect();
        // Always in place: settings set over the API may drain later.
        let draining = Arc::new(std::sync::RwLock::new(draining));
        let runner: Arc<dyn TaskRunner> = Arc::new(crate::windows::DrainingRunner {
            inner: runner,
            rules: Arc::clone(&draining),
            clock: Arc::clone(&clock),
            waits: Arc::clone(&drain_waits),
        });
        let (flusher, requests) = mpsc::unbounded_channel();
        let (waker, wakes) = mpsc::unbounded_channel();
        let metrics = Arc::new(Metrics::default());
        tokio::spawn(executor::flush_loop(
            Arc::clone(&store),
            requests,
            Arc::clone(&metrics),
        ));
        let seed = clock.now().timestamp_nanos_opt().unwrap_or(0) as u64;
        let observers = config.ended.clone();
        let timers = TimerService::start(Arc::clone(&clock), Arc::clone(&metrics));
        let cluster = config.cluster.clone().map(cluster::ClusterState::new);
        let engine = Self {
            inner: Arc::new(Inner {
                store,
                runner,
                clock,
                config,
                recent_machines: Mutex::new(HashMap::new()),
                compiled: Mutex::new(HashMap::new()),
                live: Mutex::new(HashMap::new()),
                paused: Mutex::new(Default::default()),
                flusher,
                random: Mutex::new(SplitMix64(seed)),
                waiters: Mutex::new(HashMap::new()),
                activities: ActivityQueues::default(),
                machines: Mutex::new(()),
                timers,
                metrics,
                waker,
                asleep: std::sync::atomic::AtomicUsize::new(0),
                ended: Mutex::new(observers),
                end_notices_wanted: std::sync::atomic::AtomicBool::new(true),
                cluster,
                reclaimed: Mutex::new(Default::default()),
                cache_entries: std::sync::atomic::AtomicU64::new(0),
                cache_purge: Arc::new(tokio::sync::Notify::new()),
                slots: Mutex::new(HashMap::new()),
                held: Mutex::new(windows::Held::default()),
                held_wake: Arc::new(tokio::sync::Notify::new()),
                drain_waits,
                window_alerts: Mutex::new(()),
                api_settings: std::sync::RwLock::new(settings::ApiSettings::default()),
                draining,
            }),
        };
        if engine.is_clustered() {
            engine.join_cluster()?;
        }
        tokio::spawn(wake_loop(Arc::downgrade(&engine.inner), wakes));
        tokio::spawn(paused::retry_loop(Arc::downgrade(&engine.inner)));
        tokio::spawn(windows::hold_loop(Arc::downgrade(&engine.inner)));
        engine.announce_pending()?;
        engine.recover()?;
        cluster::start(&engine);
        if engine.inner.config.retention.is_some() {
            tokio::spawn(purge_loop(Arc::downgrade(&engine.inner)));
        }
        if !engine.inner.config.cache.is_empty() {
            tokio::spawn(cache::purge_loop(
                Arc::downgrade(&engine.inner),
                Arc::clone(&engine.inner.cache_purge),
                engine.inner.config.cache.purge_interval,
            ));
        }
        Ok(engine)
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    fn machine_arn(&self, name: &str) -> String {
        let c = &self.inner.config;
        format!(
            "arn:aws:states:{}:{}:stateMachine:{name}",
            c.region, c.account
        )
    }

    fn execution_arn(&self, machine_name: &str, name: &str) -> String {
        let c = &self.inner.config;
        format!(
            "arn:aws:states:{}:{}:execution:{machine_name}:{name}",
            c.region, c.account
        )
    }

    /// The record of an execution that starts now: running, with a seed
    /// from the engine's generator and a fresh task-token secret.
    fn new_execution(
        &self,
        arn: String,
        state_machine_arn: String,
        revision: u64,
        name: String,
        input: String,
    ) -> Result<ExecutionRecord, EngineError> {
        Ok(ExecutionRecord {
            arn,
            state_machine_arn,
            revision,
            name,
            input,
            status: ExecutionStatus::Running,
            start: self.inner.clock.now(),
            stop: None,
            output: None,
            error: None,
            cause: None,
            seed: lock(&self.inner.random).next_u64(),
            redrive_count: 0,
            token_secret: entropy::token_secret()?,
            test_case: None,
            map_run: None,
            queued: None,
        })
    }

    /// An EXPRESS execution's ARN, as AWS writes it: its name need not be
    /// unique, so an id of its own follows (random from the system, not
    /// from the engine's generator, whose seed a restart may repeat).
    fn express_arn(&self, machine_name: &str, name: &str) -> Result<String, EngineError> {
        let c = &self.inner.config;
        let [high, low] = entropy::random_words()?;
        Ok(format!(
            "arn:aws:states:{}:{}:express:{machine_name}:{name}:{}",
            c.region,
            c.account,
            uuid_v4(high, low)
        ))
    }

    fn info(&self, machine: &StateMachineRecord, record: &ExecutionRecord) -> ExecutionInfo {
        ExecutionInfo {
            execution_arn: record.arn.clone(),
            name: record.name.clone(),
            role_arn: machine.role_arn.clone(),
            state_machine_arn: machine.arn.clone(),
            state_machine_name: machine.name.clone(),
            start_time: record.start,
            region: self.inner.config.region.clone(),
            // Counted by the interpreter as it replays Redrive commands.
            redrive_count: 0,
        }
    }

    fn random_name(&self) -> String {
        let mut random = lock(&self.inner.random);
        let (a, b) = (random.next_u64(), random.next_u64());
        uuid_v4(a, b)
    }

    pub(crate) fn store(&self) -> &dyn Store {
        &*self.inner.store
    }

    /// The engine's clock: triggers read the same (injected) time as
    /// executions.
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    pub(crate) fn runner(&self) -> &dyn TaskRunner {
        &*self.inner.runner
    }

    /// The mocked answer for `request` when `record` runs a test case that
    /// mocks its state.
    pub(crate) fn mocked(
        &self,
        record: &ExecutionRecord,
        request: &TaskRequest,
    ) -> Option<Result<Value, Failure>> {
        let case = record.test_case.as_deref()?;
        let machine = record.state_machine_arn.rsplit(':').next()?;
        self.inner.config.mocks.as_ref()?.answer(
            machine,
            case,
            &request.state_name,
            request.invocation,
        )
    }

    /// The sink a task's runner leaves its attempt's output in: stored as
    /// a task log of the execution (bounded; see `task_logs`).
    pub(crate) fn task_log_sink(&self, arn: &str, request: &TaskRequest) -> TaskLogSink {
        let engine = self.clone();
        let execution = arn.to_owned();
        let state_name = request.state_name.clone();
        let (task, attempt) = (request.task.0, request.attempt + 1);
        TaskLogSink::new(move |output: TaskOutput| {
            let (stderr, cut_err) = task_logs::tail_text(&output.stderr);
            let stdout = output.stdout.as_deref().map(task_logs::tail_text);
            let cut_out = stdout.as_ref().is_some_and(|(_, cut)| *cut);
            let record = TaskLogRecord {
                execution: execution.clone(),
                seq: 0,
                state_name: state_name.clone(),
                task,
                attempt,
                time: engine.now(),
                error: output.error,
                stderr,
                stdout: stdout.map(|(text, _)| text),
                truncated: output.truncated || cut_err || cut_out,
            };
            let mut batch = WriteBatch::new();
            batch.push(WriteOp::PutTaskLog {
                record,
                keep: task_logs::TASK_LOG_ATTEMPTS,
            });
            // Losing a log is not worth failing the task over.
            if let Err(e) = engine.inner.store.apply(&batch) {
                tracing::warn!(execution = %execution, error = %e, "cannot keep a task log");
            }
        })
    }

    /// The engine's counters (the server's triggers count theirs here).
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Executions open in this process: running, waiting, or asleep (right
    /// after `open`, those it resumed).
    pub fn open_executions(&self) -> usize {
        lock(&self.inner.live).len()
    }

    /// `/metrics`: the engine's counters in Prometheus's text format.
    /// Each pool's slots, slots in use and waiting tasks.
    /// The pools of slots task resources draw from.
    pub(crate) fn pools(&self) -> std::sync::Arc<crate::pools::Pools> {
        std::sync::Arc::clone(&self.inner.config.pools)
    }

    pub fn metrics_text(&self) -> String {
        let mut text = self.inner.metrics.render(self.open_executions());
        text.push_str(
            "# HELP stepline_executions_asleep Open executions waiting on a distant timer, held in the store only.\n\
             # TYPE stepline_executions_asleep gauge\n",
        );
        text.push_str(&format!(
            "stepline_executions_asleep {}\n",
            self.inner.asleep.load(std::sync::atomic::Ordering::Relaxed)
        ));
        self.limits_metrics(&mut text);
        self.windows_metrics(&mut text);
        if !self.inner.config.pools.is_empty() {
            crate::pools::Pools::render_metrics(&self.pool_usage(), &mut text);
        }
        if let Some(node) = self.node_id() {
            text.push_str(
                "# HELP stepline_node The node of a cluster these figures are of (they count this node's work only).\n\
                 # TYPE stepline_node gauge\n",
            );
            text.push_str(&format!("stepline_node{{node=\"{node}\"}} 1\n"));
        }
        text
    }

    fn machines_lock(&self) -> &Mutex<()> {
        &self.inner.machines
    }

    /// A random number below `n` from the engine's generator.
    fn random_below(&self, n: u64) -> u64 {
        lock(&self.inner.random).next_u64() % n.max(1)
    }

    pub(crate) fn timers(&self) -> &TimerService {
        &self.inner.timers
    }

    pub(crate) fn waker(&self) -> mpsc::UnboundedSender<String> {
        self.inner.waker.clone()
    }

    fn keeping(&self, express: bool) -> Keeping {
        if express {
            Keeping::Volatile
        } else {
            Keeping::Durable {
                end_notice: self.end_notices(),
            }
        }
    }

    /// Runs an execution as its own task.
    fn spawn(&self, execution: DurableExecution, pending: Pending) {
        self.spawn_with(execution, pending, None);
    }

    /// Makes a started (or redriven) execution's first step durable
    /// (`durable`), then runs it, `before` just before; a Map Run's child
    /// may go to another node instead (`hand_child_over`). In a task of its
    /// own: a caller dropped while the flush is awaited (a client that
    /// hangs up, a failing Map Run dropping its children's starts) must not
    /// leave a RUNNING record that nothing runs.
    async fn launch(
        &self,
        execution: DurableExecution,
        effects: Vec<stepline_language::interp::Effect>,
        durable: bool,
        before: impl FnOnce(&Engine, &DurableExecution) + Send + 'static,
    ) -> Result<(), EngineError> {
        let engine = self.clone();
        let launched = tokio::spawn(async move {
            if durable && let Err(e) = engine.flush().await {
                // Its first step may be stored all the same: it is resumed
                // from the store with the executions a storage failure
                // paused, once the store answers (none if it is not there).
                engine.paused(&execution.record().arn);
                return Err(e);
            }
            before(&engine, &execution);
            if engine.hand_child_over(&execution) {
                return Ok(());
            }
            engine.spawn(execution, Pending::from_effects(effects));
            Ok::<(), EngineError>(())
        });
        launched
            .await
            .map_err(|e| StoreError::Unavailable(format!("starting an execution failed: {e}")))?
    }

    fn spawn_with(&self, execution: DurableExecution, pending: Pending, inbox: Option<Inbox>) {
        let (inbox, messages) = match inbox {
            Some(inbox) => {
                let messages = inbox.reopen();
                (inbox, messages)
            }
            None => {
                let (inbox, messages) = Inbox::channel();
                let arn = execution.record().arn.clone();
                let mut live = lock(&self.inner.live);
                if live.contains_key(&arn) {
                    // Resumed twice at once (a takeover and the retry of a
                    // storage failure): one loop runs it.
                    tracing::debug!(execution = %arn, "already running here");
                    return;
                }
                live.insert(arn, inbox.clone());
                (inbox, messages)
            }
        };
        // While a starting node resumes its executions, the pools wait
        // for this one to take its turns for slots.
        self.inner.config.pools.expect(&execution.record().arn);
        tokio::spawn(executor::run(
            self.clone(),
            execution,
            pending,
            inbox,
            messages,
        ));
    }
}

/// Wakes sleeping executions as their wake-ups arrive, while the engine
/// lives.
async fn wake_loop(inner: std::sync::Weak<Inner>, mut wakes: mpsc::UnboundedReceiver<String>) {
    while let Some(arn) = wakes.recv().await {
        let Some(inner) = inner.upgrade() else {
            return;
        };
        Engine { inner }.wake(&arn);
    }
}

/// Purges expired executions every hour while the engine lives.
async fn purge_loop(inner: std::sync::Weak<Inner>) {
    let period = std::time::Duration::from_secs(3600);
    loop {
        tokio::time::sleep(period).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let engine = Engine { inner };
        // One node of a cluster purges for all.
        if !engine.leads("retention") {
            continue;
        }
        if let Err(e) = engine.purge_expired().await {
            tracing::error!(error = %e, "purging expired executions failed");
        }
    }
}

/// The message of a caught panic.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

/// Runs a store read that may take long (a listing, a history, a large
/// record) without holding up the async worker it was called on: on a
/// multi-threaded runtime the worker's other tasks move to another thread
/// meanwhile (`block_in_place`); elsewhere (a current-thread runtime, no
/// runtime) it runs as it is. See docs/ARCHITECTURE.md, "Store reads and
/// the async workers".
pub(crate) fn off_worker<T>(read: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(read)
        }
        _ => read(),
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn compile(definition: &str) -> Result<StateMachine, EngineError> {
    let validation = asl::validate(definition.as_bytes());
    validation
        .machine
        .ok_or(EngineError::InvalidDefinition(validation.diagnostics))
}

#[cfg(test)]
mod lifecycle_tests;
#[cfg(test)]
mod tests;

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

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::Clock;
use super::durable::{DurableExecution, Keeping};
use super::entropy::{self, NoEntropy};
use super::executor::{self, Inbox, Message, Pending};
use super::metrics::Metrics;
use super::task_logs::{self, TaskLogSink, TaskOutput};
use super::timers::TimerService;
use crate::tasks::activity::{ActivityQueues, ActivityTask};
use crate::tasks::mock::MockConfig;
use stepline_language::asl::{self, Diagnostic, StateMachine};
use stepline_language::interp::token;
use stepline_language::interp::{Command, ExecutionInfo, Failure, TaskId, TaskRequest};
use stepline_language::payload::MAX_PAYLOAD_DEPTH;
use stepline_language::query::eval::{RandomSource, SplitMix64, uuid_v4};
use stepline_store::{
    ActivityRecord, ExecutionPage, ExecutionQuery, ExecutionRecord, ExecutionStatus, ExecutionsOf,
    ListCursor, MapRunChild, MapRunRecord, StateMachineRecord, Store, StoreError, TaskLogRecord,
    TriggerRecord, TriggerStateRecord, WorkflowType, WriteBatch, WriteOp,
};

/// A task invocation handed to a [`TaskRunner`].
#[derive(Debug, Clone)]
pub struct TaskCall {
    pub request: TaskRequest,
    pub execution_arn: String,
    /// Stable across retries of the same attempt and across crashes: an
    /// invocation repeated after a restart carries the same key.
    pub idempotency_key: String,
    /// Where the runner leaves what the attempt wrote (process tasks).
    pub logs: super::TaskLogSink,
}

/// The future of a task's result or its ASL error.
pub type TaskFuture = Pin<Box<dyn Future<Output = Result<Value, Failure>> + Send>>;

/// Runs the tasks that leave the engine (HTTP, processes, Lambda
/// mappings...). Activities and nested executions are the engine's own.
/// Dropping the future cancels the task: whatever it started must stop.
pub trait TaskRunner: Send + Sync + 'static {
    fn run(&self, call: TaskCall) -> TaskFuture;
}

/// How long a redrive waits for a just-closed execution's executor to
/// finish closing.
const CLOSING_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

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
    pub ended: Vec<mpsc::UnboundedSender<ExecutionRecord>>,
    /// Buckets of distributed Maps' ItemReader and ResultWriter, mapped to
    /// local directories by the operator.
    pub buckets: crate::maprun::Buckets,
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
        }
    }
}

/// What can go wrong when the faces call the engine, named as AWS names it.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("the definition has {} error(s)", .0.iter().filter(|d| d.severity == asl::Severity::Error).count())]
    InvalidDefinition(Vec<Diagnostic>),
    #[error("{0}")]
    InvalidName(String),
    #[error("{0}")]
    InvalidExecutionInput(String),
    #[error("State Machine Already Exists: '{0}'")]
    StateMachineAlreadyExists(String),
    #[error("State Machine Does Not Exist: '{0}'")]
    StateMachineDoesNotExist(String),
    #[error("Execution Does Not Exist: '{0}'")]
    ExecutionDoesNotExist(String),
    #[error("Execution Already Exists: '{0}'")]
    ExecutionAlreadyExists(String),
    #[error("{0}")]
    ExecutionNotRedrivable(String),
    #[error("Resource not found: '{0}'")]
    ResourceNotFound(String),
    #[error("{0}")]
    TooManyTags(String),
    /// AWS's ConflictException (a version in use, an alias that differs).
    #[error("{0}")]
    Conflict(String),
    #[error("Activity Does Not Exist: '{0}'")]
    ActivityDoesNotExist(String),
    #[error("Invalid Token: '{0}'")]
    InvalidToken(String),
    #[error("Task Timed Out: 'Provided task does not exist anymore'")]
    TaskTimedOut,
    #[error("{0}")]
    InvalidOutput(String),
    /// A request AWS would refuse with ValidationException.
    #[error("{0}")]
    Validation(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    NoEntropy(#[from] NoEntropy),
}

struct Inner {
    store: Arc<dyn Store>,
    runner: Arc<dyn TaskRunner>,
    clock: Arc<dyn Clock>,
    config: EngineConfig,
    /// Compiled definitions by state machine ARN and revision.
    compiled: Mutex<HashMap<(String, u64), Arc<StateMachine>>>,
    /// Running executions by ARN.
    live: Mutex<HashMap<String, Inbox>>,
    flusher: mpsc::UnboundedSender<oneshot::Sender<Result<(), String>>>,
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
    ended: Mutex<Vec<mpsc::UnboundedSender<ExecutionRecord>>>,
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
        let engine = Self {
            inner: Arc::new(Inner {
                store,
                runner,
                clock,
                config,
                compiled: Mutex::new(HashMap::new()),
                live: Mutex::new(HashMap::new()),
                flusher,
                random: Mutex::new(SplitMix64(seed)),
                waiters: Mutex::new(HashMap::new()),
                activities: ActivityQueues::default(),
                machines: Mutex::new(()),
                timers: TimerService::start(Arc::clone(&metrics)),
                metrics,
                waker,
                asleep: std::sync::atomic::AtomicUsize::new(0),
                ended: Mutex::new(observers),
            }),
        };
        tokio::spawn(wake_loop(Arc::downgrade(&engine.inner), wakes));
        engine.announce_pending()?;
        engine.recover()?;
        if engine.inner.config.retention.is_some() {
            tokio::spawn(purge_loop(Arc::downgrade(&engine.inner)));
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

    /// Validates and stores a new state machine.
    pub fn create_state_machine(
        &self,
        name: &str,
        definition: &str,
        role_arn: Option<&str>,
        workflow_type: WorkflowType,
    ) -> Result<StateMachineRecord, EngineError> {
        check_name(name, "state machine")?;
        let machine = compile(definition)?;
        let arn = self.machine_arn(name);
        if self.inner.store.state_machine(&arn)?.is_some() {
            return Err(EngineError::StateMachineAlreadyExists(arn));
        }
        let record = StateMachineRecord {
            arn: arn.clone(),
            name: name.to_owned(),
            definition: definition.to_owned(),
            role_arn: role_arn
                .unwrap_or(&self.inner.config.default_role_arn)
                .to_owned(),
            workflow_type,
            created: self.inner.clock.now(),
            revision: 1,
            tags: BTreeMap::new(),
            versions: BTreeMap::new(),
            last_version: 0,
            aliases: BTreeMap::new(),
        };
        let mut batch = WriteBatch::new();
        batch.push(WriteOp::PutStateMachine(record.clone()));
        self.inner.store.apply(&batch)?;
        self.inner.store.flush()?;
        lock(&self.inner.compiled).insert((arn, 1), Arc::new(machine));
        Ok(record)
    }

    /// Replaces a state machine's definition; running executions keep the
    /// revision they started with.
    pub fn update_state_machine(
        &self,
        arn: &str,
        definition: Option<&str>,
        role_arn: Option<&str>,
    ) -> Result<StateMachineRecord, EngineError> {
        let mut record = self.describe_state_machine(arn)?;
        if let Some(definition) = definition {
            let machine = compile(definition)?;
            record.definition = definition.to_owned();
            record.revision += 1;
            lock(&self.inner.compiled).insert((arn.to_owned(), record.revision), Arc::new(machine));
        }
        if let Some(role) = role_arn {
            record.role_arn = role.to_owned();
        }
        let mut batch = WriteBatch::new();
        batch.push(WriteOp::PutStateMachine(record.clone()));
        self.inner.store.apply(&batch)?;
        self.inner.store.flush()?;
        Ok(record)
    }

    pub fn describe_state_machine(&self, arn: &str) -> Result<StateMachineRecord, EngineError> {
        self.inner
            .store
            .state_machine(arn)?
            .ok_or_else(|| EngineError::StateMachineDoesNotExist(arn.to_owned()))
    }

    pub fn list_state_machines(&self) -> Result<Vec<StateMachineRecord>, EngineError> {
        Ok(self.inner.store.state_machines()?)
    }

    /// Deletes a state machine (AWS lets running executions finish).
    pub fn delete_state_machine(&self, arn: &str) -> Result<(), EngineError> {
        let mut batch = WriteBatch::new();
        batch.push(WriteOp::DeleteStateMachine(arn.to_owned()));
        self.inner.store.apply(&batch)?;
        self.inner.store.flush()?;
        Ok(())
    }

    /// The state machine an execution runs, as it was when it started.
    pub fn describe_state_machine_revision(
        &self,
        arn: &str,
        revision: u64,
    ) -> Result<StateMachineRecord, EngineError> {
        self.machine_revision(arn, revision)
    }

    /// A state machine as it was at `revision` (what its executions run).
    fn machine_revision(
        &self,
        arn: &str,
        revision: u64,
    ) -> Result<StateMachineRecord, EngineError> {
        if let Some(record) = self.inner.store.state_machine_revision(arn, revision)? {
            return Ok(record);
        }
        // Stored before revisions were kept: only the current one exists.
        match self.inner.store.state_machine(arn)? {
            Some(record) if record.revision == revision => Ok(record),
            _ => Err(EngineError::StateMachineDoesNotExist(format!(
                "{arn} (revision {revision})"
            ))),
        }
    }

    /// The compiled definition of a state machine revision.
    pub(crate) fn compiled(
        &self,
        arn: &str,
        revision: u64,
    ) -> Result<Arc<StateMachine>, EngineError> {
        if let Some(machine) = lock(&self.inner.compiled).get(&(arn.to_owned(), revision)) {
            return Ok(Arc::clone(machine));
        }
        let record = self.machine_revision(arn, revision)?;
        let machine = Arc::new(compile(&record.definition)?);
        lock(&self.inner.compiled).insert((arn.to_owned(), revision), Arc::clone(&machine));
        Ok(machine)
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

    /// Starts an execution. With a name already used, AWS's rule: the same
    /// input while the first is open returns it; anything else is
    /// ExecutionAlreadyExists.
    pub async fn start_execution(
        &self,
        machine_arn: &str,
        name: Option<&str>,
        input: Option<&str>,
    ) -> Result<ExecutionRecord, EngineError> {
        let (machine_arn, test_case) = match machine_arn.split_once('#') {
            Some((arn, case)) => (arn, Some(case)),
            None => (machine_arn, None),
        };
        // A version or an alias runs its own revision.
        let resolved = self.resolve_machine(machine_arn)?;
        let machine_record = resolved.machine;
        let machine_arn = machine_record.arn.as_str();
        if let Some(case) = test_case {
            let known = self
                .inner
                .config
                .mocks
                .as_ref()
                .is_some_and(|m| m.has_test_case(&machine_record.name, case));
            if !known {
                return Err(EngineError::Validation(format!(
                    "The test case '{case}' of the state machine '{}' is not in the mock configuration",
                    machine_record.name
                )));
            }
        }
        let input_text = input.unwrap_or("{}");
        let input: Value = serde_json::from_str(input_text).map_err(|e| {
            EngineError::InvalidExecutionInput(format!(
                "Invalid State Machine Execution Input: '{e}'"
            ))
        })?;
        if stepline_language::payload::nests_deeper_than(&input, MAX_PAYLOAD_DEPTH) {
            return Err(EngineError::InvalidExecutionInput(format!(
                "Invalid State Machine Execution Input: 'arrays and objects nested more than {MAX_PAYLOAD_DEPTH} levels deep'"
            )));
        }
        let name = match name {
            Some(n) => {
                check_name(n, "execution")?;
                n.to_owned()
            }
            None => self.random_name(),
        };
        let express = machine_record.workflow_type == WorkflowType::Express;
        let arn = if express {
            self.express_arn(&machine_record.name, &name)?
        } else {
            self.execution_arn(&machine_record.name, &name)
        };
        let record = ExecutionRecord {
            arn,
            state_machine_arn: machine_arn.to_owned(),
            revision: resolved.revision,
            name,
            input: input_text.to_owned(),
            status: ExecutionStatus::Running,
            start: self.inner.clock.now(),
            stop: None,
            output: None,
            error: None,
            cause: None,
            seed: lock(&self.inner.random).next_u64(),
            redrive_count: 0,
            token_secret: entropy::token_secret()?,
            test_case: test_case.map(str::to_owned),
            map_run: None,
        };
        let machine = self.compiled(machine_arn, resolved.revision)?;
        let info = self.info(&machine_record, &record);
        let keeping = self.keeping(express);
        // The first step's lines (states entered) belong to the execution.
        let first_step = executor::span(&record.arn).in_scope(|| {
            DurableExecution::start(
                &*self.inner.store,
                machine,
                info,
                record.clone(),
                input,
                keeping,
            )
        });
        let (execution, effects) = match first_step {
            Ok(started) => started,
            // The name is taken (found by the store's check, under its
            // writer lock: one read instead of two for every start). AWS
            // answers a start repeated with the same input while the first
            // runs with the first one.
            Err(StoreError::ExecutionExists { .. }) => {
                return match self
                    .inner
                    .store
                    .execution_by_name(machine_arn, &record.name)?
                {
                    Some(existing)
                        if existing.status == ExecutionStatus::Running
                            && existing.input == input_text =>
                    {
                        Ok(existing)
                    }
                    Some(existing) => Err(EngineError::ExecutionAlreadyExists(existing.arn)),
                    None => Err(EngineError::ExecutionAlreadyExists(record.arn)),
                };
            }
            Err(e) => return Err(e.into()),
        };
        // An EXPRESS execution promises nothing across a crash: no flush.
        let name = machine_record.name;
        self.launch(execution, effects, !express, move |engine, execution| {
            engine.inner.metrics.execution_started(&name);
            executor::span(&execution.record().arn).in_scope(|| {
                tracing::info!(state_machine = %name, "execution started");
                executor::count_transitions(engine, execution);
            });
        })
        .await?;
        Ok(record)
    }

    pub fn describe_execution(&self, arn: &str) -> Result<ExecutionRecord, EngineError> {
        off_worker(|| self.inner.store.execution(arn))?
            .ok_or_else(|| EngineError::ExecutionDoesNotExist(arn.to_owned()))
    }

    /// One page of executions (ListExecutions, the REST list): summaries
    /// from the store's listing index, newest first. A Map Run must exist.
    pub fn list_executions(&self, query: &ExecutionQuery) -> Result<ExecutionPage, EngineError> {
        if let ExecutionsOf::MapRun(arn) = &query.of {
            self.describe_map_run(arn)?;
        }
        Ok(off_worker(|| self.inner.store.list_executions(query))?)
    }

    /// Events `from..=to` of an execution's history.
    pub fn history(
        &self,
        arn: &str,
        from: u64,
        to: u64,
    ) -> Result<Vec<stepline_language::history::HistoryEvent>, EngineError> {
        self.describe_execution(arn)?;
        Ok(off_worker(|| self.inner.store.history(arn, from, to))?)
    }

    pub fn history_len(&self, arn: &str) -> Result<u64, EngineError> {
        Ok(self.inner.store.history_len(arn)?)
    }

    /// Stops a running execution (ABORTED); a closed one is left as it is.
    pub fn stop_execution(
        &self,
        arn: &str,
        error: Option<String>,
        cause: Option<String>,
    ) -> Result<(), EngineError> {
        self.describe_execution(arn)?;
        executor::deliver(self, arn, Message::Command(Command::Stop { error, cause }));
        Ok(())
    }

    /// RedriveExecution: restarts a FAILED, TIMED_OUT or ABORTED execution
    /// from the top-level state that did not succeed. Returns the record,
    /// RUNNING again with its redrive count raised, once that is durable.
    pub async fn redrive_execution(&self, arn: &str) -> Result<ExecutionRecord, EngineError> {
        let mut record = self.describe_execution(arn)?;
        let not_redrivable = |why: &str| {
            EngineError::ExecutionNotRedrivable(format!(
                "Execution '{arn}' cannot be redriven: {why}"
            ))
        };
        match record.status {
            ExecutionStatus::Failed | ExecutionStatus::TimedOut | ExecutionStatus::Aborted => {}
            ExecutionStatus::Running => return Err(not_redrivable("it is still running")),
            ExecutionStatus::Succeeded => return Err(not_redrivable("it succeeded")),
        }
        // The record reads closed a moment before its executor lets go of
        // the execution; a client that saw ABORTED and redrives at once
        // is right to, so wait that moment out (bounded) rather than
        // refuse.
        let deadline = tokio::time::Instant::now() + CLOSING_WAIT;
        while lock(&self.inner.live).contains_key(arn) {
            if tokio::time::Instant::now() >= deadline {
                return Err(not_redrivable("it is still closing"));
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let (machine_record, machine, info) = self.definition_of(&record)?;
        let express_child = record.map_run.as_ref().is_some_and(|c| c.express);
        if machine_record.workflow_type == WorkflowType::Express || express_child {
            return Err(not_redrivable("EXPRESS executions are not redriven"));
        }
        let (mut execution, _) = DurableExecution::recover(
            &*self.inner.store,
            machine,
            info,
            record.clone(),
            self.end_notices(),
        )?;
        if !execution.execution().can_redrive() {
            return Err(not_redrivable("it failed before running any state"));
        }
        record.status = ExecutionStatus::Running;
        record.stop = None;
        record.output = None;
        record.error = None;
        record.cause = None;
        record.redrive_count += 1;
        let effects =
            execution.redrive(&*self.inner.store, self.inner.clock.now(), record.clone())?;
        self.launch(execution, effects, true, |_, _| {}).await?;
        Ok(record)
    }

    /// Deletes the executions that closed before the retention period;
    /// returns how many. Runs hourly by itself.
    pub async fn purge_expired(&self) -> Result<usize, EngineError> {
        let Some(retention) = self.inner.config.retention else {
            return Ok(0);
        };
        let cutoff = self.inner.clock.now() - retention;
        // An execution stops after it starts: only those started before
        // the cutoff can have stopped before it, and the listing index
        // goes from there, a page of summaries at a time (bounded batches:
        // one huge batch would hold the writer too long).
        let mut query = ExecutionQuery::new(ExecutionsOf::All, 256);
        query.after = Some(ListCursor {
            start: cutoff,
            arn: String::new(),
        });
        let mut purged = 0;
        loop {
            let page = off_worker(|| self.inner.store.list_executions(&query))?;
            let mut batch = WriteBatch::new();
            for e in &page.executions {
                if e.status != ExecutionStatus::Running && e.stop.is_some_and(|t| t < cutoff) {
                    batch.push(WriteOp::DeleteExecution(e.arn.clone()));
                }
            }
            purged += batch.ops.len();
            if !batch.is_empty() {
                self.inner.store.apply(&batch)?;
            }
            match page.next {
                Some(next) => query.after = Some(next),
                None => break,
            }
        }
        if purged > 0 {
            self.flush().await?;
        }
        Ok(purged)
    }

    /// Waits until an execution has ended (tests, StartSyncExecution).
    pub async fn wait_for(&self, arn: &str) -> Result<ExecutionRecord, EngineError> {
        loop {
            // Registered before the check, so an end in between is not missed.
            let (done, ended) = oneshot::channel();
            lock(&self.inner.waiters)
                .entry(arn.to_owned())
                .or_default()
                .push(done);
            let record = self.describe_execution(arn)?;
            if record.status != ExecutionStatus::Running {
                // Other waiters of an ended execution see the error and
                // look again; nothing is left registered.
                lock(&self.inner.waiters).remove(arn);
                return Ok(record);
            }
            // An execution that is not live (it paused on a storage error)
            // would never signal; poll it slowly instead.
            if !lock(&self.inner.live).contains_key(arn) {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
            let _ = ended.await;
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

    // --- Triggers: stored here, driven by the server ---

    /// Every trigger, ordered by name.
    pub fn triggers(&self) -> Result<Vec<TriggerRecord>, EngineError> {
        Ok(self.inner.store.triggers()?)
    }

    pub fn trigger(&self, name: &str) -> Result<Option<TriggerRecord>, EngineError> {
        Ok(self.inner.store.trigger(name)?)
    }

    pub fn trigger_state(&self, name: &str) -> Result<Option<TriggerStateRecord>, EngineError> {
        Ok(self.inner.store.trigger_state(name)?)
    }

    /// Stores a trigger definition (creating or replacing it), durably.
    pub async fn put_trigger(&self, record: TriggerRecord) -> Result<(), EngineError> {
        self.write(WriteOp::PutTrigger(record)).await
    }

    /// Deletes a trigger and its state, durably.
    pub async fn delete_trigger(&self, name: &str) -> Result<(), EngineError> {
        self.write(WriteOp::DeleteTrigger(name.to_owned())).await
    }

    /// Records what a trigger has done. Not flushed by itself (the next
    /// flush of anything covers it): losing it in a crash only means a
    /// schedule resumes from an older slot, whose executions then exist
    /// already and are not started twice.
    pub fn put_trigger_state(&self, state: TriggerStateRecord) -> Result<(), EngineError> {
        let mut batch = WriteBatch::new();
        batch.push(WriteOp::PutTriggerState(state));
        Ok(self.inner.store.apply(&batch)?)
    }

    /// One operation, applied and flushed (sharing the flush with others).
    async fn write(&self, op: WriteOp) -> Result<(), EngineError> {
        let mut batch = WriteBatch::new();
        batch.push(op);
        self.inner.store.apply(&batch)?;
        self.flush().await
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

    /// The task logs an execution keeps, oldest first.
    pub fn task_logs(&self, arn: &str) -> Result<Vec<TaskLogRecord>, EngineError> {
        self.describe_execution(arn)?;
        Ok(self.inner.store.task_logs(arn)?)
    }

    /// The engine's counters (the server's triggers count theirs here).
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// `/metrics`: the engine's counters in Prometheus's text format.
    pub fn metrics_text(&self) -> String {
        let open = lock(&self.inner.live).len();
        let mut text = self.inner.metrics.render(open);
        text.push_str(
            "# HELP stepline_executions_asleep Open executions waiting on a distant timer, held in the store only.\n\
             # TYPE stepline_executions_asleep gauge\n",
        );
        text.push_str(&format!(
            "stepline_executions_asleep {}\n",
            self.inner.asleep.load(std::sync::atomic::Ordering::Relaxed)
        ));
        text
    }

    pub(crate) fn machines_lock(&self) -> &Mutex<()> {
        &self.inner.machines
    }

    /// A random number below `n` from the engine's generator.
    pub(crate) fn random_below(&self, n: u64) -> u64 {
        lock(&self.inner.random).next_u64() % n.max(1)
    }

    pub(crate) fn activities(&self) -> &ActivityQueues {
        &self.inner.activities
    }

    pub(crate) fn timers(&self) -> &TimerService {
        &self.inner.timers
    }

    pub(crate) fn waker(&self) -> mpsc::UnboundedSender<String> {
        self.inner.waker.clone()
    }

    /// Counts executions going to sleep (1) or waking (-1).
    pub(crate) fn asleep_count(&self, change: isize) {
        let asleep = &self.inner.asleep;
        if change > 0 {
            asleep.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        } else {
            asleep.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Resumes a sleeping execution from the store, with the inbox its
    /// messages wait in.
    fn wake(&self, arn: &str) {
        let Some(inbox) = lock(&self.inner.live).get(arn).cloned() else {
            return;
        };
        self.asleep_count(-1);
        let resumed = self
            .inner
            .store
            .execution(arn)
            .map_err(EngineError::from)
            .and_then(|record| {
                let record =
                    record.ok_or_else(|| EngineError::ExecutionDoesNotExist(arn.to_owned()))?;
                self.resume_with(record, Some(inbox))
            });
        if let Err(e) = resumed {
            tracing::error!(execution = %arn, error = %e, "execution cannot wake; it resumes at the next start");
        }
    }

    pub(crate) fn live(&self) -> &Mutex<HashMap<String, Inbox>> {
        &self.inner.live
    }

    /// Whether a durable execution's end writes a notice: only when some
    /// observer is there to announce it (observers are given at open and
    /// only ever leave).
    fn end_notices(&self) -> bool {
        !lock(&self.inner.ended).is_empty()
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

    /// Hands an ended execution to the observers; with none, its notice
    /// (`noticed`: a durable execution's end writes one) has nobody to
    /// wait for and goes at once.
    pub(crate) fn notify_ended(&self, record: &ExecutionRecord, noticed: bool) {
        let mut observers = lock(&self.inner.ended);
        observers.retain(|observer| observer.send(record.clone()).is_ok());
        if observers.is_empty() && noticed {
            drop(observers);
            self.ended_handled(&record.arn);
        }
    }

    /// The observers are done with an ended execution (its alerts were
    /// delivered or given up): its notice goes. Not flushed by itself: if a
    /// crash loses the removal, the end is announced again (at least once).
    pub fn ended_handled(&self, arn: &str) {
        let mut batch = WriteBatch::new();
        batch.push(WriteOp::RemoveEndedNotice(arn.to_owned()));
        if let Err(e) = self.inner.store.apply(&batch) {
            tracing::warn!(execution = %arn, error = %e, "cannot remove an ended notice");
        }
    }

    /// At open: executions that ended without their end being handled (the
    /// process stopped first) are handed to the observers again.
    fn announce_pending(&self) -> Result<(), EngineError> {
        for arn in self.inner.store.ended_notices()? {
            match self.inner.store.execution(&arn)? {
                Some(record) if record.status != ExecutionStatus::Running => {
                    self.notify_ended(&record, true);
                }
                _ => self.ended_handled(&arn),
            }
        }
        Ok(())
    }

    /// An execution's loop has ended: wake whoever waits for it.
    pub(crate) fn execution_ended(&self, arn: &str) {
        lock(&self.inner.live).remove(arn);
        for done in lock(&self.inner.waiters).remove(arn).unwrap_or_default() {
            let _ = done.send(());
        }
    }

    /// Makes every write so far durable (a graceful shutdown's last step).
    pub async fn flush_now(&self) -> Result<(), EngineError> {
        self.flush().await
    }

    /// The damage the store found since it was opened, if any.
    pub fn store_damage(&self) -> Option<String> {
        self.inner.store.damage()
    }

    /// Writes a consistent backup of the whole store to `out`; writers
    /// wait meanwhile. Blocking: call it off the async workers.
    pub fn backup(
        &self,
        out: &mut dyn std::io::Write,
    ) -> Result<stepline_store::backup::BackupSummary, EngineError> {
        Ok(self.inner.store.backup(out)?)
    }

    /// Waits for a flush that covers every write made before the call.
    pub(crate) async fn flush(&self) -> Result<(), EngineError> {
        let (done, wait) = oneshot::channel();
        if self.inner.flusher.send(done).is_err() {
            return Err(StoreError::Unavailable("the store's flusher has stopped".into()).into());
        }
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StoreError::Unavailable(e).into()),
            Err(_) => Err(StoreError::Unavailable("the store's flusher has stopped".into()).into()),
        }
    }

    /// Resumes every execution the store says is open. One that cannot be
    /// replayed (its journal is damaged, its definition is gone, the replay
    /// fails or panics) must not keep the others, or the server, from
    /// starting: it is marked FAILED with the reason and reported. Only a
    /// store that cannot be read leaves it open, for the next start.
    fn recover(&self) -> Result<(), EngineError> {
        for record in self.inner.store.open_executions()? {
            let arn = record.arn.clone();
            let kept = record.clone();
            let resumed =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.resume(record)));
            let why = match resumed {
                Ok(Ok(())) => continue,
                Ok(Err(e)) if matches!(&e, EngineError::Store(s) if s.is_io()) => {
                    tracing::error!(execution = %arn, error = %e, "execution cannot resume now; it stays open");
                    continue;
                }
                Ok(Err(e)) => e.to_string(),
                Err(panic) => format!("resuming it panicked: {}", panic_text(panic.as_ref())),
            };
            tracing::error!(execution = %arn, error = %why, "execution cannot be resumed; it is marked FAILED");
            if let Err(e) = self.fail_unresumable(kept, &why) {
                tracing::error!(execution = %arn, error = %e, "execution cannot be resumed, nor marked FAILED; it stays open");
            }
        }
        Ok(())
    }

    /// Ends an execution that recovery cannot replay: FAILED with
    /// `States.Runtime` and the reason, and an ExecutionFailed event after
    /// its stored history when that history takes one.
    fn fail_unresumable(&self, mut record: ExecutionRecord, why: &str) -> Result<(), EngineError> {
        let now = self.inner.clock.now();
        let arn = record.arn.clone();
        let error = "States.Runtime".to_owned();
        let cause = format!(
            "stepline could not resume this execution after a restart, so it failed: {why}"
        );
        record.status = ExecutionStatus::Failed;
        record.stop = Some(now);
        record.error = Some(error.clone());
        record.cause = Some(cause.clone());
        let mut closed = WriteBatch::new();
        closed.push(WriteOp::UpdateExecution(record.clone()));
        if let Ok(last) = self.inner.store.history_len(&record.arn) {
            let mut with_event = WriteBatch::new();
            with_event.push(WriteOp::AppendHistory {
                execution: record.arn.clone(),
                events: vec![stepline_language::history::HistoryEvent {
                    id: last + 1,
                    previous_event_id: last,
                    timestamp: now,
                    event: stepline_language::history::Event::ExecutionFailed {
                        error: Some(error),
                        cause: Some(cause),
                    },
                }],
            });
            with_event.push(WriteOp::UpdateExecution(record));
            match self.inner.store.apply(&with_event) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    tracing::warn!(execution = %arn, error = %e, "the history of an execution that cannot be resumed takes no ExecutionFailed event");
                }
            }
        }
        self.inner.store.apply(&closed)?;
        Ok(())
    }

    fn resume(&self, record: ExecutionRecord) -> Result<(), EngineError> {
        self.resume_with(record, None)
    }

    /// Resumes an open execution from the store; `inbox` is the one of an
    /// execution that slept (its queued messages are kept).
    fn resume_with(
        &self,
        mut record: ExecutionRecord,
        inbox: Option<Inbox>,
    ) -> Result<(), EngineError> {
        if record.status != ExecutionStatus::Running {
            // An EXPRESS execution's relaxed end was cut short by a crash
            // after its closed record was written: only the mark goes.
            let mut batch = WriteBatch::new();
            batch.push(WriteOp::UpdateExecution(record));
            self.inner.store.apply(&batch)?;
            return Ok(());
        }
        if let Some(child) = record.map_run.clone() {
            return self.resume_map_child(record, &child, inbox);
        }
        let machine_record = self.machine_revision(&record.state_machine_arn, record.revision)?;
        if machine_record.workflow_type == WorkflowType::Express {
            // Nothing of it was kept to resume from: it ends here, as an
            // EXPRESS execution on AWS runs at most once.
            record.status = ExecutionStatus::Failed;
            record.stop = Some(self.inner.clock.now());
            record.error = Some("States.Runtime".into());
            record.cause = Some(
                "stepline stopped while this EXPRESS execution ran; EXPRESS executions are not resumed".into(),
            );
            let mut batch = WriteBatch::new();
            batch.push(WriteOp::UpdateExecution(record));
            self.inner.store.apply(&batch)?;
            return Ok(());
        }
        let machine = self.compiled(&record.state_machine_arn, record.revision)?;
        let info = self.info(&machine_record, &record);
        self.run_recovered(machine, info, record, inbox)
    }

    /// Rebuilds an open execution from its journal and runs it on. A
    /// replay that panics is an error of this execution alone (a panic
    /// fails one execution, never the node).
    fn run_recovered(
        &self,
        machine: Arc<StateMachine>,
        info: ExecutionInfo,
        record: ExecutionRecord,
        inbox: Option<Inbox>,
    ) -> Result<(), EngineError> {
        let arn = record.arn.clone();
        let replayed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            DurableExecution::recover(
                &*self.inner.store,
                machine,
                info,
                record,
                self.end_notices(),
            )
        }));
        let (execution, outstanding) = match replayed {
            Ok(replayed) => replayed?,
            Err(panic) => {
                return Err(StoreError::Corrupt(format!(
                    "replaying the journal of {arn} panicked: {}",
                    panic_text(panic.as_ref())
                ))
                .into());
            }
        };
        self.spawn_with(execution, Pending::from_outstanding(outstanding), inbox);
        Ok(())
    }

    // --- Distributed Map children ---

    /// The compiled definition of a Map Run's children: the parent's
    /// revision with the ItemProcessor scope as its top level (the states
    /// are shared by id, so nothing is parsed again).
    pub(crate) fn compiled_processor(
        &self,
        arn: &str,
        revision: u64,
        scope: u32,
    ) -> Result<Arc<StateMachine>, EngineError> {
        let key = (format!("{arn}#{scope}"), revision);
        if let Some(machine) = lock(&self.inner.compiled).get(&key) {
            return Ok(Arc::clone(machine));
        }
        let parent = self.compiled(arn, revision)?;
        let mut machine = StateMachine::clone(&parent);
        let index = scope as usize;
        let Some(processor) = machine.scopes.get(index).cloned() else {
            return Err(EngineError::StateMachineDoesNotExist(format!(
                "{arn} (revision {revision}) has no scope {scope}"
            )));
        };
        machine.scopes[0] = stepline_language::asl::model::Scope {
            owner: None,
            ..processor
        };
        // The parent's TimeoutSeconds is the parent's, not each child's.
        machine.timeout_seconds = None;
        let machine = Arc::new(machine);
        lock(&self.inner.compiled).insert(key, Arc::clone(&machine));
        Ok(machine)
    }

    /// Starts a Map Run's child execution named `name`, or returns the one
    /// of that name (started before a restart): a name is never run twice.
    pub(crate) async fn start_map_child(
        &self,
        child: &MapRunChild,
        label: &str,
        name: &str,
        input: &Value,
    ) -> Result<ExecutionRecord, EngineError> {
        let parent = self.machine_revision(&child.machine_arn, child.revision)?;
        let child_machine_arn = format!("{}/{label}", parent.arn);
        if let Some(existing) = self
            .inner
            .store
            .execution_by_name(&child_machine_arn, name)?
        {
            return Ok(existing);
        }
        let c = &self.inner.config;
        let kind = if child.express {
            "express"
        } else {
            "execution"
        };
        let record = ExecutionRecord {
            arn: format!(
                "arn:aws:states:{}:{}:{kind}:{}/{label}:{name}",
                c.region, c.account, parent.name
            ),
            state_machine_arn: child_machine_arn,
            revision: child.revision,
            name: name.to_owned(),
            input: input.to_string(),
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
            map_run: Some(child.clone()),
        };
        let machine = self.compiled_processor(&child.machine_arn, child.revision, child.scope)?;
        let info = self.child_info(&parent, &record);
        let (execution, effects) = match DurableExecution::start(
            &*self.inner.store,
            machine,
            info,
            record.clone(),
            input.clone(),
            self.keeping(child.express),
        ) {
            Ok(started) => started,
            Err(StoreError::ExecutionExists { .. }) => {
                return Err(EngineError::ExecutionAlreadyExists(record.arn));
            }
            Err(e) => return Err(e.into()),
        };
        self.launch(execution, effects, !child.express, |engine, execution| {
            executor::count_transitions(engine, execution);
        })
        .await?;
        Ok(record)
    }

    /// What an execution runs: its state machine revision, or for a Map
    /// Run's child the ItemProcessor of its parent's revision.
    fn definition_of(
        &self,
        record: &ExecutionRecord,
    ) -> Result<(StateMachineRecord, Arc<StateMachine>, ExecutionInfo), EngineError> {
        match &record.map_run {
            Some(child) => {
                let parent = self.machine_revision(&child.machine_arn, child.revision)?;
                let machine =
                    self.compiled_processor(&child.machine_arn, child.revision, child.scope)?;
                let info = self.child_info(&parent, record);
                Ok((parent, machine, info))
            }
            None => {
                let machine_record =
                    self.machine_revision(&record.state_machine_arn, record.revision)?;
                let machine = self.compiled(&record.state_machine_arn, record.revision)?;
                let info = self.info(&machine_record, record);
                Ok((machine_record, machine, info))
            }
        }
    }

    fn child_info(&self, parent: &StateMachineRecord, record: &ExecutionRecord) -> ExecutionInfo {
        let mut info = self.info(parent, record);
        info.state_machine_arn = record.state_machine_arn.clone();
        info.state_machine_name = record
            .state_machine_arn
            .rsplit(':')
            .next()
            .unwrap_or_default()
            .to_owned();
        info
    }

    fn resume_map_child(
        &self,
        mut record: ExecutionRecord,
        child: &MapRunChild,
        inbox: Option<Inbox>,
    ) -> Result<(), EngineError> {
        if child.express {
            record.status = ExecutionStatus::Failed;
            record.stop = Some(self.inner.clock.now());
            record.error = Some("States.Runtime".into());
            record.cause = Some(
                "stepline stopped while this EXPRESS execution ran; EXPRESS executions are not resumed".into(),
            );
            let mut batch = WriteBatch::new();
            batch.push(WriteOp::UpdateExecution(record));
            self.inner.store.apply(&batch)?;
            return Ok(());
        }
        let (_, machine, info) = self.definition_of(&record)?;
        self.run_recovered(machine, info, record, inbox)
    }

    /// DescribeMapRun.
    pub fn describe_map_run(&self, arn: &str) -> Result<MapRunRecord, EngineError> {
        self.inner
            .store
            .map_run(arn)?
            .ok_or_else(|| EngineError::ResourceNotFound(arn.to_owned()))
    }

    /// ListMapRuns: the Map Runs an execution started.
    pub fn list_map_runs(&self, execution_arn: &str) -> Result<Vec<MapRunRecord>, EngineError> {
        self.describe_execution(execution_arn)?;
        Ok(self.inner.store.map_runs(execution_arn)?)
    }

    /// UpdateMapRun: changes a running Map Run's concurrency and tolerated
    /// failures; the runner reads them as it goes.
    pub async fn update_map_run(
        &self,
        arn: &str,
        max_concurrency: Option<u64>,
        tolerated_failure_percentage: Option<f64>,
        tolerated_failure_count: Option<u64>,
    ) -> Result<(), EngineError> {
        let mut record = self.describe_map_run(arn)?;
        if let Some(n) = max_concurrency {
            record.max_concurrency = n;
        }
        if let Some(p) = tolerated_failure_percentage {
            record.tolerated_failure_percentage = Some(p);
        }
        if let Some(n) = tolerated_failure_count {
            record.tolerated_failure_count = Some(n);
        }
        let mut batch = WriteBatch::new();
        batch.push(WriteOp::PutMapRun(record.clone()));
        self.inner.store.apply(&batch)?;
        // The runner reads the settings back as it goes.
        self.flush().await?;
        Ok(())
    }

    pub(crate) fn put_map_run(&self, record: &MapRunRecord) -> Result<(), EngineError> {
        let mut batch = WriteBatch::new();
        batch.push(WriteOp::PutMapRun(record.clone()));
        Ok(self.inner.store.apply(&batch)?)
    }

    /// Runs an execution as its own task.
    fn spawn(&self, execution: DurableExecution, pending: Pending) {
        self.spawn_with(execution, pending, None);
    }

    /// Makes a started (or redriven) execution's first step durable
    /// (`durable`), then runs it, `before` just before. In a task of its
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
            if durable {
                engine.flush().await?;
            }
            before(&engine, &execution);
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
                lock(&self.inner.live).insert(arn, inbox.clone());
                (inbox, messages)
            }
        };
        tokio::spawn(executor::run(
            self.clone(),
            execution,
            pending,
            inbox,
            messages,
        ));
    }

    // --- Callbacks: SendTaskSuccess, SendTaskFailure, SendTaskHeartbeat ---

    /// Answers a task with its output (JSON text), once the answer is
    /// durable. AWS's errors: InvalidToken (not a token), TaskTimedOut (the
    /// task is closed or unknown), InvalidOutput (not JSON).
    pub async fn send_task_success(&self, token: &str, output: &str) -> Result<(), EngineError> {
        let output: Value = serde_json::from_str(output)
            .map_err(|e| EngineError::InvalidOutput(format!("Invalid Output: '{e}'")))?;
        self.answer(token, |task| Command::TaskSucceeded { task, output })
            .await
    }

    /// Fails a task with an error and a cause.
    pub async fn send_task_failure(
        &self,
        token: &str,
        error: Option<String>,
        cause: Option<String>,
    ) -> Result<(), EngineError> {
        self.answer(token, |task| Command::TaskFailed { task, error, cause })
            .await
    }

    /// Says a task is alive: its HeartbeatSeconds start again.
    pub async fn send_task_heartbeat(&self, token: &str) -> Result<(), EngineError> {
        self.answer(token, |task| Command::TaskHeartbeat { task })
            .await
    }

    async fn answer(
        &self,
        token: &str,
        command: impl FnOnce(TaskId) -> Command,
    ) -> Result<(), EngineError> {
        if !token::is_well_formed(token) {
            return Err(EngineError::InvalidToken(token.chars().take(64).collect()));
        }
        let record = self
            .inner
            .store
            .task_token(token)?
            .ok_or(EngineError::TaskTimedOut)?;
        let task = TaskId(record.task);
        let (reply, answered) = oneshot::channel();
        let message = Message::Answer {
            task,
            command: command(task),
            reply,
        };
        if !executor::deliver(self, &record.execution, message) {
            return Err(EngineError::TaskTimedOut);
        }
        answered.await.unwrap_or(Err(EngineError::TaskTimedOut))
    }

    // --- Activities ---

    fn activity_arn(&self, name: &str) -> String {
        let c = &self.inner.config;
        format!("arn:aws:states:{}:{}:activity:{name}", c.region, c.account)
    }

    /// Creates an activity; creating one that exists returns it (AWS's
    /// CreateActivity is idempotent).
    pub fn create_activity(&self, name: &str) -> Result<ActivityRecord, EngineError> {
        check_name(name, "activity")?;
        let arn = self.activity_arn(name);
        if let Some(existing) = self.inner.store.activity(&arn)? {
            return Ok(existing);
        }
        let record = ActivityRecord {
            arn,
            name: name.to_owned(),
            created: self.inner.clock.now(),
            tags: BTreeMap::new(),
        };
        let mut batch = WriteBatch::new();
        batch.push(WriteOp::PutActivity(record.clone()));
        self.inner.store.apply(&batch)?;
        self.inner.store.flush()?;
        Ok(record)
    }

    pub fn describe_activity(&self, arn: &str) -> Result<ActivityRecord, EngineError> {
        self.inner
            .store
            .activity(arn)?
            .ok_or_else(|| EngineError::ActivityDoesNotExist(arn.to_owned()))
    }

    pub fn list_activities(&self) -> Result<Vec<ActivityRecord>, EngineError> {
        Ok(self.inner.store.activities()?)
    }

    pub fn delete_activity(&self, arn: &str) -> Result<(), EngineError> {
        let mut batch = WriteBatch::new();
        batch.push(WriteOp::DeleteActivity(arn.to_owned()));
        self.inner.store.apply(&batch)?;
        self.inner.store.flush()?;
        Ok(())
    }

    // --- Tags ---

    /// The most tags a resource carries, as AWS.
    pub const MAX_TAGS: usize = 50;

    /// Adds (or replaces) tags on a state machine or an activity.
    pub fn tag_resource(
        &self,
        arn: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), EngineError> {
        self.retag(arn, |current| {
            current.extend(tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        })
    }

    /// Removes tags by key.
    pub fn untag_resource(&self, arn: &str, keys: &[String]) -> Result<(), EngineError> {
        self.retag(arn, |current| {
            for key in keys {
                current.remove(key);
            }
        })
    }

    /// A resource's tags.
    pub fn tags(&self, arn: &str) -> Result<BTreeMap<String, String>, EngineError> {
        if let Some(machine) = self.inner.store.state_machine(arn)? {
            return Ok(machine.tags);
        }
        if let Some(activity) = self.inner.store.activity(arn)? {
            return Ok(activity.tags);
        }
        Err(EngineError::ResourceNotFound(arn.to_owned()))
    }

    fn retag(
        &self,
        arn: &str,
        change: impl FnOnce(&mut BTreeMap<String, String>),
    ) -> Result<(), EngineError> {
        let too_many = |n: usize| {
            EngineError::TooManyTags(format!(
                "Too many tags: {n}; a resource carries at most {}",
                Self::MAX_TAGS
            ))
        };
        let mut batch = WriteBatch::new();
        if let Some(mut machine) = self.inner.store.state_machine(arn)? {
            change(&mut machine.tags);
            if machine.tags.len() > Self::MAX_TAGS {
                return Err(too_many(machine.tags.len()));
            }
            batch.push(WriteOp::PutStateMachine(machine));
        } else if let Some(mut activity) = self.inner.store.activity(arn)? {
            change(&mut activity.tags);
            if activity.tags.len() > Self::MAX_TAGS {
                return Err(too_many(activity.tags.len()));
            }
            batch.push(WriteOp::PutActivity(activity));
        } else {
            return Err(EngineError::ResourceNotFound(arn.to_owned()));
        }
        self.inner.store.apply(&batch)?;
        self.inner.store.flush()?;
        Ok(())
    }

    /// A worker asks for a task of an activity, waiting up to `wait`.
    /// `None` when none came (AWS answers with an empty token). The task's
    /// ActivityStarted records the worker's name.
    pub async fn get_activity_task(
        &self,
        activity_arn: &str,
        worker_name: Option<&str>,
        wait: std::time::Duration,
    ) -> Result<Option<ActivityTask>, EngineError> {
        self.describe_activity(activity_arn)?;
        loop {
            let Some(task) = self.inner.activities.take(activity_arn, wait).await else {
                return Ok(None);
            };
            let started = Command::TaskStarted {
                task: task.task,
                worker_name: worker_name.map(str::to_owned),
            };
            // A task whose execution has gone (stopped meanwhile) is skipped.
            if executor::deliver(self, &task.execution_arn, Message::Command(started)) {
                return Ok(Some(task));
            }
        }
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
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::{Arc, Mutex};

    use chrono::{DateTime, TimeZone, Utc};
    use serde_json::{Value, json};

    use super::{Engine, EngineConfig, EngineError, TaskCall, TaskFuture, TaskRunner};
    use crate::Clock;
    use stepline_store::{ExecutionStatus, MemoryStore, SledStore, Store, WorkflowType};

    /// Time from tokio's clock, so that paused tests move both together.
    struct TokioClock {
        base: DateTime<Utc>,
        start: tokio::time::Instant,
    }

    impl TokioClock {
        fn new() -> Arc<Self> {
            Arc::new(Self {
                base: Utc
                    .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
                    .single()
                    .expect("date"),
                start: tokio::time::Instant::now(),
            })
        }
    }

    impl Clock for TokioClock {
        fn now(&self) -> DateTime<Utc> {
            self.base + (tokio::time::Instant::now() - self.start)
        }

        fn sleep_until(&self, _due: DateTime<Utc>) {}
    }

    /// Answers every task with its input under "echo", after `delay_ms`,
    /// and counts calls per idempotency key.
    #[derive(Default)]
    struct Echo {
        delay_ms: u64,
        calls: Mutex<Vec<String>>,
        total: AtomicU32,
    }

    impl TaskRunner for Echo {
        fn run(&self, call: TaskCall) -> TaskFuture {
            let request = call.request;
            self.calls.lock().expect("lock").push(call.idempotency_key);
            self.total.fetch_add(1, Ordering::SeqCst);
            let delay = self.delay_ms;
            Box::pin(async move {
                tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
                Ok(json!({"echo": request.input}))
            })
        }
    }

    const FLOW: &str = r#"{
      "StartAt": "Prepare",
      "States": {
        "Prepare": {"Type": "Pass", "Parameters": {"n.$": "$.n"}, "Next": "Work"},
        "Work": {"Type": "Task", "Resource": "stepline:process:echo", "ResultPath": "$.work", "Next": "Rest"},
        "Rest": {"Type": "Wait", "Seconds": 3600, "Next": "Done"},
        "Done": {"Type": "Succeed"}
      }
    }"#;

    fn engine(store: Arc<dyn Store>, runner: Arc<Echo>, clock: Arc<TokioClock>) -> Engine {
        Engine::open(store, runner, clock, EngineConfig::default()).expect("open")
    }

    /// An engine on a memory store and the paused clock, with FLOW created.
    fn with_flow(runner: &Arc<Echo>) -> (Engine, stepline_store::StateMachineRecord) {
        let engine = engine(
            Arc::new(MemoryStore::new()),
            Arc::clone(runner),
            TokioClock::new(),
        );
        let machine = engine
            .create_state_machine("flow", FLOW, None, WorkflowType::Standard)
            .expect("create");
        (engine, machine)
    }

    #[tokio::test(start_paused = true)]
    async fn an_execution_runs_to_its_end() {
        let runner = Arc::new(Echo {
            delay_ms: 50,
            ..Echo::default()
        });
        let engine = engine(
            Arc::new(MemoryStore::new()),
            Arc::clone(&runner),
            TokioClock::new(),
        );
        let machine = engine
            .create_state_machine("flow", FLOW, None, WorkflowType::Standard)
            .expect("create");
        assert_eq!(
            machine.arn,
            "arn:aws:states:us-east-1:111111111111:stateMachine:flow"
        );
        let started = engine
            .start_execution(&machine.arn, Some("first"), Some(r#"{"n": 7}"#))
            .await
            .expect("start");
        assert_eq!(
            started.arn,
            "arn:aws:states:us-east-1:111111111111:execution:flow:first"
        );
        let done = engine.wait_for(&started.arn).await.expect("wait");
        assert_eq!(done.status, ExecutionStatus::Succeeded);
        let output: Value =
            serde_json::from_str(done.output.as_deref().expect("output")).expect("json");
        assert_eq!(output, json!({"n": 7, "work": {"echo": {"n": 7}}}));
        // The Wait took an hour of (paused) time.
        let took = done.stop.expect("stop") - done.start;
        assert!(took >= chrono::Duration::seconds(3600), "{took}");
        let len = engine.history_len(&started.arn).expect("len");
        let types: Vec<&str> = engine
            .history(&started.arn, 1, len)
            .expect("history")
            .iter()
            .map(|e| e.event.type_name())
            .collect();
        assert_eq!(types.first(), Some(&"ExecutionStarted"));
        assert_eq!(types.last(), Some(&"ExecutionSucceeded"));
        assert!(types.contains(&"TaskSucceeded"));
        assert_eq!(runner.total.load(Ordering::SeqCst), 1);
    }

    /// A durable end leaves a notice until its observers announced it; with
    /// no observer (nobody to announce it) none is left behind.
    #[tokio::test(start_paused = true)]
    async fn an_end_leaves_a_notice_only_for_an_observer() {
        const ONE_PASS: &str =
            r#"{"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}"#;
        let (observer, mut ended) = tokio::sync::mpsc::unbounded_channel();
        for observers in [vec![], vec![observer]] {
            let store = Arc::new(MemoryStore::new());
            let config = EngineConfig {
                ended: observers.clone(),
                ..EngineConfig::default()
            };
            let engine = Engine::open(
                Arc::clone(&store) as Arc<dyn Store>,
                Arc::new(Echo::default()),
                TokioClock::new(),
                config,
            )
            .expect("open");
            let machine = engine
                .create_state_machine("one", ONE_PASS, None, WorkflowType::Standard)
                .expect("create");
            let run = engine
                .start_execution(&machine.arn, Some("run"), None)
                .await
                .expect("start");
            engine.wait_for(&run.arn).await.expect("wait");
            let notices = stepline_store::EndedNotices::ended_notices(&*store).expect("notices");
            if observers.is_empty() {
                assert!(notices.is_empty(), "{notices:?}");
            } else {
                assert_eq!(notices, vec![run.arn.clone()]);
                assert_eq!(ended.recv().await.expect("told").arn, run.arn);
            }
        }
    }

    /// A caller that goes away while its start is being flushed (a client
    /// hanging up) leaves an execution that runs, not a RUNNING record
    /// that nothing runs.
    #[tokio::test(start_paused = true)]
    async fn a_start_dropped_during_its_flush_still_runs() {
        let runner = Arc::new(Echo::default());
        let (engine, machine) = with_flow(&runner);
        // Polled once (the first step is written, the flush awaited),
        // then dropped.
        let start = engine.start_execution(&machine.arn, Some("dropped"), Some(r#"{"n": 1}"#));
        tokio::select! {
            biased;
            _ = start => panic!("the start did not wait for its flush"),
            _ = std::future::ready(()) => {}
        }
        let arn = "arn:aws:states:us-east-1:111111111111:execution:flow:dropped";
        let done = tokio::time::timeout(std::time::Duration::from_secs(7200), engine.wait_for(arn))
            .await
            .expect("the execution never ended")
            .expect("wait");
        assert_eq!(done.status, ExecutionStatus::Succeeded);
        assert_eq!(runner.total.load(Ordering::SeqCst), 1);
    }

    fn asleep(engine: &Engine) -> String {
        engine
            .metrics_text()
            .lines()
            .find(|l| l.starts_with("stepline_executions_asleep "))
            .expect("gauge")
            .to_owned()
    }

    /// An execution waiting on a distant timer leaves memory (its loop
    /// ends) and comes back from the store when the timer is due, or at
    /// once for a message: its history reads as if it had never slept.
    #[tokio::test(start_paused = true)]
    async fn a_distant_wait_sleeps_and_wakes_for_its_timer_or_a_stop() {
        let runner = Arc::new(Echo::default());
        let (engine, machine) = with_flow(&runner);
        let sleeper = engine
            .start_execution(&machine.arn, Some("sleeper"), Some(r#"{"n": 1}"#))
            .await
            .expect("start");
        let stopped = engine
            .start_execution(&machine.arn, Some("stopped"), Some(r#"{"n": 2}"#))
            .await
            .expect("start");
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        assert_eq!(asleep(&engine), "stepline_executions_asleep 2");
        assert!(engine.metrics_text().contains("stepline_open_executions 2"));

        engine
            .stop_execution(&stopped.arn, Some("Enough".into()), None)
            .expect("stop");
        let aborted = engine.wait_for(&stopped.arn).await.expect("wait");
        assert_eq!(aborted.status, ExecutionStatus::Aborted);
        assert_eq!(asleep(&engine), "stepline_executions_asleep 1");

        let done = engine.wait_for(&sleeper.arn).await.expect("wait");
        assert_eq!(done.status, ExecutionStatus::Succeeded);
        let took = done.stop.expect("stop") - done.start;
        assert!(took >= chrono::Duration::seconds(3600), "{took}");
        assert_eq!(asleep(&engine), "stepline_executions_asleep 0");
        for arn in [&sleeper.arn, &stopped.arn] {
            let len = engine.history_len(arn).expect("len");
            let events = engine.history(arn, 1, len).expect("history");
            let ids: Vec<u64> = events.iter().map(|e| e.id).collect();
            assert_eq!(ids, (1..=len).collect::<Vec<_>>(), "{arn}");
            let count = |t: &str| events.iter().filter(|e| e.event.type_name() == t).count();
            assert_eq!(count("WaitStateEntered"), 1, "{arn}");
            assert_eq!(count("TaskSucceeded"), 1, "{arn}");
        }
        // The task ran once per execution: waking replays, it does not
        // invoke again.
        assert_eq!(runner.total.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn names_follow_the_aws_rules() {
        let engine = engine(
            Arc::new(MemoryStore::new()),
            Arc::default(),
            TokioClock::new(),
        );
        let bad = engine.create_state_machine("has space", FLOW, None, WorkflowType::Standard);
        assert!(matches!(bad, Err(EngineError::InvalidName(_))));
        let invalid = engine.create_state_machine(
            "broken",
            r#"{"StartAt": "X", "States": {}}"#,
            None,
            WorkflowType::Standard,
        );
        assert!(matches!(invalid, Err(EngineError::InvalidDefinition(d)) if !d.is_empty()));
        let machine = engine
            .create_state_machine("flow", FLOW, None, WorkflowType::Standard)
            .expect("create");
        let again = engine.create_state_machine("flow", FLOW, None, WorkflowType::Standard);
        assert!(matches!(
            again,
            Err(EngineError::StateMachineAlreadyExists(_))
        ));
        let first = engine
            .start_execution(&machine.arn, Some("n1"), Some(r#"{"n": 1}"#))
            .await
            .expect("start");
        // Same name and input while running: the same execution.
        let same = engine
            .start_execution(&machine.arn, Some("n1"), Some(r#"{"n": 1}"#))
            .await
            .expect("idempotent start");
        assert_eq!(same.arn, first.arn);
        // Another input: refused.
        let other = engine
            .start_execution(&machine.arn, Some("n1"), Some(r#"{"n": 2}"#))
            .await;
        assert!(matches!(other, Err(EngineError::ExecutionAlreadyExists(_))));
        let bad_input = engine
            .start_execution(&machine.arn, None, Some("{nope"))
            .await;
        assert!(matches!(
            bad_input,
            Err(EngineError::InvalidExecutionInput(_))
        ));
        let missing = engine
            .start_execution(
                "arn:aws:states:us-east-1:111111111111:stateMachine:nope",
                None,
                None,
            )
            .await;
        assert!(matches!(
            missing,
            Err(EngineError::StateMachineDoesNotExist(_))
        ));
        // A generated name is a UUID.
        let unnamed = engine
            .start_execution(&machine.arn, None, None)
            .await
            .expect("start");
        assert_eq!(unnamed.name.len(), 36, "{}", unnamed.name);
    }

    #[tokio::test(start_paused = true)]
    async fn stop_aborts_a_running_execution() {
        let engine = engine(
            Arc::new(MemoryStore::new()),
            Arc::default(),
            TokioClock::new(),
        );
        let machine = engine
            .create_state_machine("flow", FLOW, None, WorkflowType::Standard)
            .expect("create");
        let run = engine
            .start_execution(&machine.arn, Some("s"), Some(r#"{"n": 1}"#))
            .await
            .expect("start");
        tokio::time::sleep(std::time::Duration::from_secs(10)).await;
        engine
            .stop_execution(&run.arn, Some("Cancelled".into()), Some("by a test".into()))
            .expect("stop");
        let done = engine.wait_for(&run.arn).await.expect("wait");
        assert_eq!(done.status, ExecutionStatus::Aborted);
        assert_eq!(done.error.as_deref(), Some("Cancelled"));
    }

    /// A paused current-thread runtime: dropping it ends every task, as a
    /// crash ends the process.
    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("runtime")
    }

    /// Starts 5 executions, "crashes" after `crash_after_secs` (the first
    /// runtime is dropped with every task in it), restarts on the same
    /// sled directory, and checks every execution ends as it should.
    fn crash_and_restart(task_delay_ms: u64, crash_after_secs: u64) -> u32 {
        let dir = std::env::temp_dir().join(format!(
            "stepline-engine-restart-{}-{task_delay_ms}-{crash_after_secs}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let runner = Arc::new(Echo {
            delay_ms: task_delay_ms,
            ..Echo::default()
        });
        let arns = runtime().block_on(async {
            let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir).expect("open"));
            let engine = engine(store, Arc::clone(&runner), TokioClock::new());
            let machine = engine
                .create_state_machine("flow", FLOW, None, WorkflowType::Standard)
                .expect("create");
            let mut arns = Vec::new();
            for i in 0..5 {
                let input = format!(r#"{{"n": {i}}}"#);
                let run = engine
                    .start_execution(&machine.arn, Some(&format!("r{i}")), Some(&input))
                    .await
                    .expect("start");
                arns.push(run.arn);
            }
            tokio::time::sleep(std::time::Duration::from_secs(crash_after_secs)).await;
            for arn in &arns {
                let status = engine.describe_execution(arn).expect("describe").status;
                assert_eq!(status, ExecutionStatus::Running, "open at the crash");
            }
            arns
        });
        // The first runtime is gone with its tasks; the store is closed.
        runtime().block_on(async {
            let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir).expect("reopen"));
            let engine = engine(store, Arc::clone(&runner), TokioClock::new());
            for (i, arn) in arns.iter().enumerate() {
                let done = engine.wait_for(arn).await.expect("wait");
                assert_eq!(done.status, ExecutionStatus::Succeeded, "{arn}");
                let output: Value =
                    serde_json::from_str(done.output.as_deref().expect("output")).expect("json");
                assert_eq!(output["work"]["echo"]["n"], json!(i));
                let len = engine.history_len(arn).expect("len");
                let ids: Vec<u64> = engine
                    .history(arn, 1, len)
                    .expect("history")
                    .iter()
                    .map(|e| e.id)
                    .collect();
                assert_eq!(ids, (1..=len).collect::<Vec<_>>(), "contiguous ids");
            }
        });
        let _ = std::fs::remove_dir_all(&dir);
        runner.total.load(Ordering::SeqCst)
    }

    #[test]
    fn a_restart_resumes_executions_waiting_on_a_timer() {
        // Tasks answered before the crash are not run again.
        assert_eq!(crash_and_restart(0, 60), 5);
    }

    #[test]
    fn a_restart_runs_again_the_tasks_that_were_in_flight() {
        // The crash comes while every task is running: each runs once more.
        assert_eq!(crash_and_restart(120_000, 60), 10);
    }
}

#[cfg(test)]
mod lifecycle_tests {
    use std::sync::Arc;

    use chrono::{DateTime, TimeZone, Utc};

    use super::{Engine, EngineConfig, EngineError, TaskCall, TaskFuture, TaskRunner};
    use crate::Clock;
    use stepline_language::interp::Failure;
    use stepline_store::{MemoryStore, WorkflowType};

    struct NoTasks;

    impl TaskRunner for NoTasks {
        fn run(&self, _: TaskCall) -> TaskFuture {
            Box::pin(async { Err(Failure::new("States.TaskFailed", "none")) })
        }
    }

    struct PausedClock(DateTime<Utc>, tokio::time::Instant);

    impl Clock for PausedClock {
        fn now(&self) -> DateTime<Utc> {
            self.0 + (tokio::time::Instant::now() - self.1)
        }

        fn sleep_until(&self, _due: DateTime<Utc>) {}
    }

    #[tokio::test(start_paused = true)]
    async fn closed_executions_are_purged_after_the_retention_period() {
        let clock = Arc::new(PausedClock(
            Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
                .single()
                .expect("date"),
            tokio::time::Instant::now(),
        ));
        let config = EngineConfig {
            retention: Some(chrono::Duration::days(2)),
            ..EngineConfig::default()
        };
        let engine = Engine::open(
            Arc::new(MemoryStore::new()),
            Arc::new(NoTasks),
            clock,
            config,
        )
        .expect("open");
        let machine = engine
            .create_state_machine(
                "m",
                r#"{"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 172800, "End": true}}}"#,
                None,
                WorkflowType::Standard,
            )
            .expect("create");
        let quick = engine
            .start_execution(&machine.arn, Some("quick"), None)
            .await
            .expect("start");
        engine.stop_execution(&quick.arn, None, None).expect("stop");
        engine.wait_for(&quick.arn).await.expect("stopped");
        let slow = engine
            .start_execution(&machine.arn, Some("slow"), None)
            .await
            .expect("start");
        // Day 2 and a bit: `quick` closed more than 2 days ago is not yet
        // true; `slow` is still running. Nothing goes.
        tokio::time::sleep(std::time::Duration::from_secs(36 * 3600)).await;
        assert_eq!(engine.purge_expired().await.expect("purge"), 0);
        // Past day 3: `quick` is gone (by the hourly purge), `slow` closed at
        // day 2 and stays.
        tokio::time::sleep(std::time::Duration::from_secs(26 * 3600)).await;
        assert!(matches!(
            engine.describe_execution(&quick.arn),
            Err(EngineError::ExecutionDoesNotExist(_))
        ));
        let slow = engine.describe_execution(&slow.arn).expect("kept");
        assert_eq!(slow.status, stepline_store::ExecutionStatus::Succeeded);
        assert_eq!(engine.history_len(&slow.arn).expect("len"), 4);
    }

    /// A restart resumes executions of an older revision with that
    /// revision, and executions of a deleted state machine at all; an
    /// EXPRESS execution (never journaled) ends FAILED instead.
    #[tokio::test(start_paused = true)]
    async fn restarts_resume_old_revisions_and_deleted_machines() {
        let clock = Arc::new(PausedClock(
            Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
                .single()
                .expect("date"),
            tokio::time::Instant::now(),
        ));
        let store: Arc<MemoryStore> = Arc::new(MemoryStore::new());
        let wait_then = |result: &str| -> String {
            format!(
                r#"{{"StartAt": "W", "States": {{"W": {{"Type": "Wait", "Seconds": 60, "Next": "R"}},
                    "R": {{"Type": "Pass", "Result": "{result}", "End": true}}}}}}"#
            )
        };
        let open = || {
            Engine::open(
                Arc::clone(&store) as Arc<dyn stepline_store::Store>,
                Arc::new(NoTasks),
                Arc::clone(&clock) as Arc<dyn Clock>,
                EngineConfig::default(),
            )
            .expect("open")
        };
        // The first life runs on a runtime of its own, dropped at the end
        // with every task on it: what a crash leaves is the store alone.
        let (kept_arn, old_arn, orphan_arn, express_arn) = {
            let store = Arc::clone(&store);
            let base = clock.0;
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .start_paused(true)
                    .build()
                    .expect("runtime");
                runtime.block_on(async move {
                    let engine = Engine::open(
                        store,
                        Arc::new(NoTasks),
                        Arc::new(PausedClock(base, tokio::time::Instant::now())),
                        EngineConfig::default(),
                    )
                    .expect("open");
                    let kept = engine
                        .create_state_machine(
                            "kept",
                            &wait_then("first"),
                            None,
                            WorkflowType::Standard,
                        )
                        .expect("create");
                    let gone = engine
                        .create_state_machine(
                            "gone",
                            &wait_then("orphan"),
                            None,
                            WorkflowType::Standard,
                        )
                        .expect("create");
                    let old = engine
                        .start_execution(&kept.arn, Some("old"), None)
                        .await
                        .expect("start");
                    let orphan = engine
                        .start_execution(&gone.arn, Some("orphan"), None)
                        .await
                        .expect("start");
                    engine
                        .update_state_machine(&kept.arn, Some(&wait_then("second")), None)
                        .expect("update");
                    engine.delete_state_machine(&gone.arn).expect("delete");
                    let fast = engine
                        .create_state_machine(
                            "fast",
                            &wait_then("never"),
                            None,
                            WorkflowType::Express,
                        )
                        .expect("create");
                    let express = engine
                        .start_execution(&fast.arn, Some("express"), None)
                        .await
                        .expect("start");
                    assert_eq!(
                        engine.history_len(&express.arn).expect("len"),
                        0,
                        "EXPRESS keeps no history"
                    );
                    (kept.arn, old.arn, orphan.arn, express.arn)
                })
            })
            .join()
            .expect("the first life")
        };
        // A fresh engine on the same store: what a restart sees.
        let engine = open();
        let old = engine.wait_for(&old_arn).await.expect("old ends");
        assert_eq!(old.output.as_deref(), Some("\"first\""));
        let orphan = engine.wait_for(&orphan_arn).await.expect("orphan ends");
        let express = engine.describe_execution(&express_arn).expect("express");
        assert_eq!(express.status, stepline_store::ExecutionStatus::Failed);
        assert_eq!(express.error.as_deref(), Some("States.Runtime"));
        assert_eq!(orphan.output.as_deref(), Some("\"orphan\""));
        let new = engine
            .start_execution(&kept_arn, Some("new"), None)
            .await
            .expect("start");
        let new = engine.wait_for(&new.arn).await.expect("new ends");
        assert_eq!(new.output.as_deref(), Some("\"second\""));
    }
}

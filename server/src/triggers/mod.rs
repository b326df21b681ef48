//! Triggers: executions that start by themselves, when a schedule's slot
//! comes (`schedule`), when a webhook is called (`rest::hooks`), when a
//! file arrives in a watched directory (`files`), when an execution of
//! another state machine ends (`execution_ended`, pipelines), or when
//! every file of a period's set is there (`dataset`). Deadlines (a slot's
//! `finished_by`, a dataset's timeout, `[[deadlines]]` of state machines)
//! are checked by the same driver (`deadlines`).
//!
//! Exactly once: every event has a deterministic id (the slot's time, the
//! idempotency key, the file's path, size and modification time) and the
//! execution is named `TRIGGER-ID`. The engine refuses a second execution
//! of a name, so a duplicated event, a retry, or a crash between noticing
//! an event and starting its execution never starts a second one; "already
//! exists" is counted as started. What must not be skipped is found again
//! after a restart: a schedule resumes from its stored cursor (the last
//! slot handled, written after the start), files are still in the
//! directory until they are moved.
//!
//! Definitions are stored by the engine (config-file triggers are written
//! again at every start); this module reads them, runs them, and records
//! what each did (last fired, next fire, last error). It never reads the
//! system clock: time is the engine's, so tests drive schedules with a
//! manual clock and [`Triggers::tick`].

pub mod dataset;
pub mod deadlines;
pub mod files;
pub mod glob;
pub mod hmac;
pub mod schedule;
pub mod spec;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{Value, json};
use stepline_language::query::eval::{Env, SplitMix64};
use stepline_runtime::{Engine, EngineError};
use stepline_store::{TriggerRecord, TriggerStateRecord};

pub use deadlines::MachineDeadlines;
pub use schedule::Zone;
pub use spec::{CatchUp, Compiled, Kind, Trigger, TriggerSpec};

/// Where a trigger was defined.
pub const ORIGIN_CONFIG: &str = "config";
pub const ORIGIN_API: &str = "api";

/// A slot is "missed" (and `catch_up = "none"` skips it) once it is this
/// late.
pub const ON_TIME: Duration = Duration::seconds(60);
/// At most this many slots fire in one tick; more are caught up next tick.
pub const MAX_SLOTS_PER_TICK: usize = 1000;
/// The most slots one backfill request starts.
pub const MAX_BACKFILL_SLOTS: usize = 10_000;
/// After a failed start, a schedule waits this long before trying again.
pub const RETRY_AFTER: Duration = Duration::seconds(10);
/// The longest the driver sleeps: definitions changed elsewhere are also
/// woken for, this is a backstop.
const MAX_SLEEP: Duration = Duration::seconds(1);
/// The largest execution input, as AWS.
pub const MAX_INPUT_BYTES: usize = 256 * 1024;

/// Why a webhook without a secret is refused on a server with credentials.
pub const UNSIGNED_WEBHOOK_REFUSED: &str = "secret: this server requires credentials, and a webhook without a secret would let anyone who reaches it start executions; give the webhook a secret, or set allow_unsigned_webhooks = true in [server] of stepline.toml";

/// Why a trigger operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    #[error("Trigger Does Not Exist: '{0}'")]
    NotFound(String),
    #[error("Trigger Already Exists: '{0}'")]
    AlreadyExists(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// A started (or already started) execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired {
    pub execution_arn: String,
    pub name: String,
    /// False when the event had started it before.
    pub new: bool,
    /// Why nothing started: the fire came outside the trigger's windows
    /// and its `outside` is `refuse` (logged and counted, not retried).
    pub skipped: Option<String>,
}

/// The triggers of one server. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Triggers {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    engine: Engine,
    /// Canonical directories file triggers may watch.
    roots: Vec<PathBuf>,
    /// Wakes the driver when a definition changes.
    changed: tokio::sync::Notify,
    /// Schedules whose last start failed, and when to try again.
    retry_at: Mutex<HashMap<String, DateTime<Utc>>>,
    /// Serialises read-modify-write of trigger state records.
    state_lock: tokio::sync::Mutex<()>,
    /// Each file trigger's watcher.
    watchers: Mutex<HashMap<String, Arc<files::Watcher>>>,
    /// Whether `create` refuses webhooks without a secret: on a server
    /// with credentials, such a hook would be the one door anyone can use.
    refuse_unsigned_webhooks: std::sync::atomic::AtomicBool,
    /// Where missed deadlines are sent; none: they are only logged and
    /// kept pending.
    alerter: Mutex<Option<crate::alerts::Alerter>>,
    /// State machines' settings, the file's and the API's
    /// (`crate::settings`).
    settings: crate::settings::Registry,
    /// The state machines' expected durations: `[[deadlines]]` of
    /// stepline.toml and those set over the API.
    machine_deadlines: Mutex<Arc<Vec<MachineDeadlines>>>,
    /// How far each followed execution's history was read (state
    /// deadlines).
    scans: Mutex<deadlines::Scans>,
    /// Alert ids being delivered now, so a check does not send one twice.
    delivering: Mutex<std::collections::HashSet<String>>,
    /// Each dataset trigger's next poll (pacing: the monotonic clock).
    dataset_polls: Mutex<HashMap<String, std::time::Instant>>,
    /// The enabled `execution` triggers, read from the store at most once
    /// a second (every ended execution looks at them), dropped when a
    /// definition changes here.
    pipelines: Mutex<Option<(std::time::Instant, Arc<Vec<Trigger>>)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// RFC 3339 in UTC with milliseconds only when there are some.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

impl Triggers {
    /// `roots` are the directories file triggers may watch; they are
    /// canonicalised here (a missing root is an error).
    pub fn new(engine: Engine, roots: &[PathBuf]) -> Result<Self, String> {
        let roots = roots
            .iter()
            .map(|r| {
                r.canonicalize()
                    .map_err(|e| format!("triggers.file_roots: '{}': {e}", r.display()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                roots,
                changed: tokio::sync::Notify::new(),
                retry_at: Mutex::new(HashMap::new()),
                state_lock: tokio::sync::Mutex::new(()),
                watchers: Mutex::new(HashMap::new()),
                refuse_unsigned_webhooks: std::sync::atomic::AtomicBool::new(false),
                alerter: Mutex::new(None),
                settings: crate::settings::Registry::default(),
                machine_deadlines: Mutex::new(Arc::new(Vec::new())),
                scans: Mutex::new(HashMap::new()),
                delivering: Mutex::new(std::collections::HashSet::new()),
                dataset_polls: Mutex::new(HashMap::new()),
                pipelines: Mutex::new(None),
            }),
        })
    }

    /// A definition changed: the driver looks again, the pipelines are
    /// read again.
    fn changed(&self) {
        *lock(&self.inner.pipelines) = None;
        self.inner.changed.notify_one();
    }

    /// The enabled `execution` triggers (cached for a second).
    fn pipelines(&self) -> Arc<Vec<Trigger>> {
        if let Some((at, cached)) = lock(&self.inner.pipelines).as_ref() {
            if at.elapsed() < std::time::Duration::from_secs(1) {
                return Arc::clone(cached);
            }
        }
        let mut found = Vec::new();
        for stored in self.engine().triggers().unwrap_or_default() {
            if !stored.enabled
                || stored.spec.get("kind").and_then(Value::as_str) != Some("execution")
            {
                continue;
            }
            if let Ok(trigger) = self.compile_record(&stored) {
                found.push(trigger);
            }
        }
        let found = Arc::new(found);
        *lock(&self.inner.pipelines) = Some((std::time::Instant::now(), Arc::clone(&found)));
        // Ends store a notice only when something must hear of them after
        // a crash: each costs two writes per execution.
        let alerts = lock(&self.inner.alerter)
            .as_ref()
            .is_some_and(crate::alerts::Alerter::has_sinks);
        self.engine().want_end_notices(alerts || !found.is_empty());
        found
    }

    /// Sends missed deadlines to `alerter`'s sinks.
    pub fn set_alerter(&self, alerter: crate::alerts::Alerter) {
        *lock(&self.inner.alerter) = Some(alerter);
        *lock(&self.inner.pipelines) = None;
        self.pipelines();
    }

    /// The state machines' expected durations (`[[deadlines]]`).
    pub fn set_machine_deadlines(&self, deadlines: Vec<MachineDeadlines>) {
        *lock(&self.inner.machine_deadlines) = Arc::new(deadlines);
        self.changed();
    }

    /// The state machines' settings (`crate::settings`).
    pub(crate) fn settings(&self) -> &crate::settings::Registry {
        &self.inner.settings
    }

    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Checks a definition as `create` would, without storing it.
    pub fn compile(&self, spec: &TriggerSpec) -> Result<Trigger, String> {
        spec.compile(&self.inner.roots)
    }

    /// Stores the config file's triggers (replacing those of an earlier
    /// start) and deletes config triggers no longer in the file. Every
    /// definition is checked first: one bad trigger refuses them all.
    ///
    /// A trigger enabled or disabled over REST stays so across restarts:
    /// the stored `enabled` is kept while the file's `enabled` is the one
    /// the previous start installed. When the operator changes `enabled`
    /// in the file, the file's word wins.
    pub async fn install_config(&self, specs: &[TriggerSpec]) -> Result<(), String> {
        let mut names = std::collections::HashSet::new();
        for spec in specs {
            self.compile(spec)
                .map_err(|e| format!("triggers '{}': {e}", spec.name))?;
            if !names.insert(spec.name.as_str()) {
                return Err(format!("triggers '{}': defined twice", spec.name));
            }
        }
        let engine = self.engine();
        for old in engine.triggers().map_err(|e| e.to_string())? {
            if old.origin == ORIGIN_CONFIG && !names.contains(old.name.as_str()) {
                engine
                    .delete_trigger(&old.name)
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        for spec in specs {
            let old = engine.trigger(&spec.name).map_err(|e| e.to_string())?;
            let created = old.as_ref().map_or_else(|| engine.now(), |t| t.created);
            let mut record = record(spec, ORIGIN_CONFIG, created)?;
            if let Some(old) = old.filter(|old| old.origin == ORIGIN_CONFIG) {
                if spec_enabled(&old.spec) == spec.enabled {
                    record.enabled = old.enabled;
                }
            }
            engine
                .put_trigger(record)
                .await
                .map_err(|e| e.to_string())?;
        }
        self.changed();
        Ok(())
    }

    /// Makes `create` refuse webhooks without a secret (a server with
    /// credentials, unless `[server] allow_unsigned_webhooks`).
    pub fn refuse_unsigned_webhooks(&self, refuse: bool) {
        self.inner
            .refuse_unsigned_webhooks
            .store(refuse, std::sync::atomic::Ordering::Relaxed);
    }

    /// The names of the stored webhook triggers that have no secret.
    pub fn unsigned_webhooks(&self) -> Result<Vec<String>, TriggerError> {
        let mut names = Vec::new();
        for record in self.engine().triggers()? {
            let spec: TriggerSpec = serde_json::from_value(record.spec.clone())
                .map_err(|e| TriggerError::Invalid(format!("the stored definition: {e}")))?;
            if spec.kind == Kind::Webhook && spec.secret.is_none() {
                names.push(record.name);
            }
        }
        Ok(names)
    }

    /// Creates a trigger (REST). Refused when the name is taken.
    pub async fn create(&self, spec: TriggerSpec) -> Result<TriggerRecord, TriggerError> {
        self.compile(&spec).map_err(TriggerError::Invalid)?;
        let refuse_unsigned = self
            .inner
            .refuse_unsigned_webhooks
            .load(std::sync::atomic::Ordering::Relaxed);
        if refuse_unsigned && spec.kind == Kind::Webhook && spec.secret.is_none() {
            return Err(TriggerError::Invalid(UNSIGNED_WEBHOOK_REFUSED.into()));
        }
        let engine = self.engine();
        if engine.trigger(&spec.name)?.is_some() {
            return Err(TriggerError::AlreadyExists(spec.name));
        }
        let record = record(&spec, ORIGIN_API, engine.now()).map_err(TriggerError::Invalid)?;
        engine.put_trigger(record.clone()).await?;
        self.changed();
        Ok(record)
    }

    /// A trigger and what it has done.
    pub fn get(&self, name: &str) -> Result<(TriggerRecord, TriggerStateRecord), TriggerError> {
        let record = self
            .engine()
            .trigger(name)?
            .ok_or_else(|| TriggerError::NotFound(name.to_owned()))?;
        let state = self.shown_state(&record)?;
        Ok((record, state))
    }

    /// Every trigger with what it has done, by name.
    pub fn list(&self) -> Result<Vec<(TriggerRecord, TriggerStateRecord)>, TriggerError> {
        let mut out = Vec::new();
        for record in self.engine().triggers()? {
            let state = self.shown_state(&record)?;
            out.push((record, state));
        }
        Ok(out)
    }

    /// What a trigger has done, as shown: a disabled trigger has no next
    /// fire, whatever its state recorded while it was enabled.
    fn shown_state(&self, record: &TriggerRecord) -> Result<TriggerStateRecord, TriggerError> {
        let mut state = self
            .engine()
            .trigger_state(&record.name)?
            .unwrap_or_else(|| TriggerStateRecord {
                name: record.name.clone(),
                ..TriggerStateRecord::default()
            });
        if !record.enabled {
            state.next_fire = None;
        }
        Ok(state)
    }

    /// Enables or disables a trigger. A schedule enabled again starts from
    /// now: slots while it was disabled are not caught up.
    pub async fn set_enabled(
        &self,
        name: &str,
        enabled: bool,
    ) -> Result<TriggerRecord, TriggerError> {
        let (mut record, _) = self.get(name)?;
        let compiled = self.compile_record(&record).ok();
        if record.enabled != enabled {
            // The definition keeps the `enabled` it was written with: for
            // a config trigger, that is how the next start tells the file's
            // word from this one (`install_config`).
            record.enabled = enabled;
            {
                let _guard = self.inner.state_lock.lock().await;
                let engine = self.engine();
                let mut state = engine
                    .trigger_state(name)?
                    .unwrap_or_else(|| TriggerStateRecord {
                        name: name.to_owned(),
                        ..TriggerStateRecord::default()
                    });
                // Disabled: nothing is due. Enabled again: from now
                // (deadlines too: slots not run while disabled are not
                // late, whenever their deadline comes).
                state.next_fire = None;
                if enabled {
                    let now = engine.now();
                    state.last_slot = Some(now);
                    state.deadlines_checked = Some(now);
                    match compiled.as_ref().map(|t| &t.kind) {
                        Some(Compiled::Dataset(dataset)) => {
                            state.last_slot = Some(dataset.period_start(now));
                        }
                        Some(Compiled::Schedule {
                            schedule,
                            zone,
                            finished_by: Some(finished_by),
                            ..
                        }) => {
                            let last = schedule
                                .slots(now - Duration::hours(26), now, *zone, 10_000)
                                .last()
                                .map(|slot| zone.next_wall_time(*slot, *finished_by));
                            state.deadlines_checked = last.map(|due| due.max(now)).or(Some(now));
                        }
                        _ => {}
                    }
                }
                engine.put_trigger_state(state)?;
            }
            self.engine().put_trigger(record.clone()).await?;
            self.changed();
        }
        Ok(record)
    }

    pub async fn delete(&self, name: &str) -> Result<(), TriggerError> {
        self.get(name)?;
        self.engine().delete_trigger(name).await?;
        lock(&self.inner.watchers).remove(name);
        self.changed();
        Ok(())
    }

    /// The compiled, enabled trigger `name` of `kind` (webhooks, backfill).
    pub fn compiled(&self, name: &str, kind: Kind) -> Result<Trigger, TriggerError> {
        let record = self
            .engine()
            .trigger(name)?
            .ok_or_else(|| TriggerError::NotFound(name.to_owned()))?;
        let trigger = self.compile_record(&record)?;
        if trigger.kind_name() != kind {
            return Err(TriggerError::Invalid(format!(
                "the trigger '{name}' is a {} trigger, not a {} trigger",
                trigger.kind_name().as_str(),
                kind.as_str()
            )));
        }
        Ok(trigger)
    }

    fn compile_record(&self, record: &TriggerRecord) -> Result<Trigger, TriggerError> {
        let spec: TriggerSpec = serde_json::from_value(record.spec.clone())
            .map_err(|e| TriggerError::Invalid(format!("the stored definition: {e}")))?;
        let mut trigger = self.compile(&spec).map_err(TriggerError::Invalid)?;
        trigger.enabled = record.enabled;
        Ok(trigger)
    }

    /// Starts the execution of event `id` (exactly once: the name is
    /// `TRIGGER-ID`; an execution of that name already there counts as this
    /// one) and records the outcome in the trigger's state.
    pub async fn fire(&self, trigger: &Trigger, id: &str, event: Value) -> Result<Fired, String> {
        let result = self.start(trigger, id, &event).await;
        let _guard = self.inner.state_lock.lock().await;
        let engine = self.engine();
        let mut state = engine
            .trigger_state(&trigger.name)
            .ok()
            .flatten()
            .unwrap_or_else(|| TriggerStateRecord {
                name: trigger.name.clone(),
                ..TriggerStateRecord::default()
            });
        match &result {
            Ok(fired) if fired.new => engine.metrics().trigger_fired(&trigger.name),
            Ok(_) => {}
            Err(_) => engine.metrics().trigger_failed(&trigger.name),
        }
        match &result {
            // Outside the trigger's windows, which refuse: nothing started.
            Ok(Fired {
                skipped: Some(why), ..
            }) => state.last_error = Some(why.clone()),
            Ok(fired) => {
                state.fired += 1;
                state.last_fired = Some(engine.now());
                state.last_execution = Some(fired.execution_arn.clone());
                state.last_error = None;
            }
            Err(e) => state.last_error = Some(e.clone()),
        }
        if let Err(e) = engine.put_trigger_state(state) {
            return Err(format!("cannot record the trigger's state: {e}"));
        }
        result
    }

    async fn start(&self, trigger: &Trigger, id: &str, event: &Value) -> Result<Fired, String> {
        let name = format!("{}-{id}", trigger.name);
        let input = trigger.input(event)?;
        let engine = self.engine();
        let machine = machine_arn(engine, &trigger.state_machine);
        let existed = engine
            .describe_execution(&format!(
                "{}:{name}",
                machine.replacen(":stateMachine:", ":execution:", 1)
            ))
            .is_ok();
        let options = stepline_runtime::StartOptions {
            priority: 0,
            trigger_windows: trigger.windows.as_ref().map(|rule| {
                stepline_runtime::TriggerWindows {
                    trigger: trigger.name.clone(),
                    rule: Arc::clone(rule),
                }
            }),
        };
        match engine
            .start_execution_with(&machine, Some(&name), Some(&input), &options)
            .await
        {
            Ok(record) => Ok(Fired {
                new: !existed,
                execution_arn: record.arn,
                name,
                skipped: None,
            }),
            Err(EngineError::ExecutionAlreadyExists(arn)) => Ok(Fired {
                execution_arn: arn,
                name,
                new: false,
                skipped: None,
            }),
            Err(EngineError::OutsideWindow(why)) => {
                engine.metrics().trigger_window_skipped(&trigger.name);
                tracing::warn!(trigger = %trigger.name, execution = %name, reason = %why, "trigger fire skipped: outside its windows");
                Ok(Fired {
                    execution_arn: String::new(),
                    name,
                    new: false,
                    skipped: Some(why),
                })
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// One pass of the driver: fires every schedule slot due, polls every
    /// file trigger due, and says when to come back.
    pub async fn tick(&self) -> DateTime<Utc> {
        // On every node: whether ends store notices follows the pipelines,
        // which any node may have created.
        self.pipelines();
        let now = self.engine().now();
        let mut next = now + MAX_SLEEP;
        // In a cluster one node fires schedules and watches files; the
        // others ask again soon, to take over when it dies. (Webhooks are
        // served by whichever node receives them.)
        if !self.engine().leads("triggers") {
            return now + FOLLOWER_SLEEP;
        }
        let records = match self.engine().triggers() {
            Ok(records) => records,
            Err(_) => return next,
        };
        let mut file_triggers = Vec::new();
        let mut datasets = std::collections::HashSet::new();
        for record in records {
            if !record.enabled {
                continue;
            }
            let trigger = match self.compile_record(&record) {
                Ok(t) => t,
                Err(e) => {
                    self.record_error(&record.name, &e.to_string()).await;
                    continue;
                }
            };
            match &trigger.kind {
                Compiled::Schedule { .. } => {
                    if let Some(at) = self.run_schedule(&trigger, now).await {
                        next = next.min(at);
                    }
                    self.check_slots(&trigger, record.created, now).await;
                }
                Compiled::File(_) => file_triggers.push(trigger),
                Compiled::Dataset(_) => {
                    datasets.insert(trigger.name.clone());
                    let at = self.poll_dataset(&trigger, now).await;
                    next = next.min(at);
                }
                Compiled::Webhook { .. } | Compiled::Execution { .. } => {}
            }
        }
        self.check_machines(now).await;
        // Watchers (and dataset polls) of triggers gone or disabled are
        // dropped.
        {
            let names: std::collections::HashSet<&str> =
                file_triggers.iter().map(|t| t.name.as_str()).collect();
            lock(&self.inner.watchers).retain(|name, _| names.contains(name.as_str()));
            lock(&self.inner.dataset_polls).retain(|name, _| datasets.contains(name));
        }
        for trigger in file_triggers {
            let at = files::poll(self, trigger, now).await;
            next = next.min(at);
        }
        next
    }

    /// Fires the due slots of one schedule; the next slot, if any.
    async fn run_schedule(&self, trigger: &Trigger, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let Compiled::Schedule {
            schedule,
            zone,
            catch_up,
            ..
        } = &trigger.kind
        else {
            return None;
        };
        if let Some(at) = lock(&self.inner.retry_at).get(&trigger.name) {
            if *at > now {
                return Some(*at);
            }
        }
        let engine = self.engine();
        let state = engine.trigger_state(&trigger.name).ok().flatten();
        // A new schedule starts from now: nothing before it was missed.
        let cursor = state.as_ref().and_then(|s| s.last_slot).unwrap_or(now);
        let due = schedule.slots(cursor, now, *zone, MAX_SLOTS_PER_TICK);
        let picked: Vec<DateTime<Utc>> = match catch_up {
            CatchUp::All => due.clone(),
            CatchUp::Latest => due.last().copied().into_iter().collect(),
            CatchUp::None => due
                .iter()
                .copied()
                .filter(|s| now - *s <= ON_TIME)
                .collect(),
        };
        // The cursor moves past every due slot, except from the first one
        // whose start failed: it stays just before it, to try again.
        let mut handled = due.last().copied().unwrap_or(cursor);
        for slot in picked {
            let event = json!({
                "trigger": trigger.name,
                "kind": "schedule",
                "scheduledTime": rfc3339(slot),
            });
            if let Err(e) = self.fire(trigger, &slot_id(slot), event).await {
                let _ = e;
                handled = slot - Duration::seconds(1);
                lock(&self.inner.retry_at).insert(trigger.name.clone(), now + RETRY_AFTER);
                break;
            }
            lock(&self.inner.retry_at).remove(&trigger.name);
        }
        let next = schedule.next_after(handled.max(cursor), *zone);
        let _guard = self.inner.state_lock.lock().await;
        let mut state = engine
            .trigger_state(&trigger.name)
            .ok()
            .flatten()
            .unwrap_or_else(|| TriggerStateRecord {
                name: trigger.name.clone(),
                ..TriggerStateRecord::default()
            });
        state.last_slot = Some(handled.max(cursor));
        state.next_fire = next;
        let _ = engine.put_trigger_state(state);
        next
    }

    pub(crate) async fn record_error(&self, name: &str, error: &str) {
        let _guard = self.inner.state_lock.lock().await;
        let engine = self.engine();
        engine.metrics().trigger_failed(name);
        let mut state = engine
            .trigger_state(name)
            .ok()
            .flatten()
            .unwrap_or_else(|| TriggerStateRecord {
                name: name.to_owned(),
                ..TriggerStateRecord::default()
            });
        if state.last_error.as_deref() != Some(error) {
            state.last_error = Some(error.to_owned());
            let _ = engine.put_trigger_state(state);
        }
    }

    /// The schedule or dataset trigger `name` and the slots (periods) a
    /// backfill of `[from, to]` starts (at most `MAX_BACKFILL_SLOTS`):
    /// what `backfill` runs and a dry run shows.
    pub fn backfill_slots(
        &self,
        name: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<(Trigger, Vec<DateTime<Utc>>), TriggerError> {
        let record = self
            .engine()
            .trigger(name)?
            .ok_or_else(|| TriggerError::NotFound(name.to_owned()))?;
        let kind = self.compile_record(&record)?.kind_name();
        let trigger = match kind {
            Kind::Dataset => self.compiled(name, Kind::Dataset)?,
            _ => self.compiled(name, Kind::Schedule)?,
        };
        if from > to {
            return Err(TriggerError::Invalid(
                "from is after to: nothing to backfill".into(),
            ));
        }
        let slots = match &trigger.kind {
            Compiled::Schedule { schedule, zone, .. } => schedule.slots(
                from - Duration::milliseconds(1),
                to,
                *zone,
                MAX_BACKFILL_SLOTS + 1,
            ),
            Compiled::Dataset(dataset) => {
                Self::dataset_periods(dataset, from, to, MAX_BACKFILL_SLOTS + 1)
            }
            _ => return Err(TriggerError::Invalid(format!("'{name}' is not a schedule"))),
        };
        if slots.len() > MAX_BACKFILL_SLOTS {
            return Err(TriggerError::Invalid(format!(
                "more than {MAX_BACKFILL_SLOTS} slots between {} and {}: backfill a shorter range at a time",
                rfc3339(from),
                rfc3339(to)
            )));
        }
        Ok((trigger, slots))
    }

    /// Starts one execution per slot of schedule `name` in `[from, to]`
    /// (per period of a dataset whose files are all there), with the names
    /// live firings use (so a slot already fired is counted as existing,
    /// not started again). Slots are started with bounded concurrency.
    pub async fn backfill(
        &self,
        name: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Backfill, TriggerError> {
        let (trigger, slots) = self.backfill_slots(name, from, to)?;
        let trigger = Arc::new(trigger);
        let semaphore = Arc::new(tokio::sync::Semaphore::new(16));
        let mut tasks = tokio::task::JoinSet::new();
        for slot in slots.iter().copied() {
            let (this, trigger, semaphore) =
                (self.clone(), Arc::clone(&trigger), Arc::clone(&semaphore));
            tasks.spawn(async move {
                let _permit = semaphore.acquire_owned().await;
                let event = match &trigger.kind {
                    Compiled::Dataset(dataset) => {
                        let files = dataset.files(slot);
                        if let Some(missing) = dataset.missing(&files) {
                            return (slot, Err(format!("{missing} is missing")));
                        }
                        let mut event = dataset::event(&trigger, dataset, slot, &files);
                        event["backfill"] = Value::Bool(true);
                        event
                    }
                    _ => json!({
                        "trigger": trigger.name,
                        "kind": "schedule",
                        "scheduledTime": rfc3339(slot),
                        "backfill": true,
                    }),
                };
                (
                    slot,
                    this.fire(&trigger, &trigger.event_id(slot), event).await,
                )
            });
        }
        let mut report = Backfill::default();
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok((
                    slot,
                    Ok(Fired {
                        skipped: Some(why), ..
                    }),
                )) => report.errors.push(format!("{}: {why}", rfc3339(slot))),
                Ok((_, Ok(fired))) if fired.new => report.started += 1,
                Ok((_, Ok(_))) => report.existing += 1,
                Ok((slot, Err(e))) => report.errors.push(format!("{}: {e}", rfc3339(slot))),
                Err(e) => report.errors.push(e.to_string()),
            }
        }
        report.slots = slots.len();
        report.errors.sort();
        report.errors.truncate(20);
        Ok(report)
    }

    /// An execution ended: starts the `execution` triggers whose source is
    /// its state machine and whose statuses hold its status, each once (the
    /// event id is a hash of its ARN and redrive count, so a restart that
    /// hands the same end over again starts nothing new). A start that
    /// fails is tried a few times; the end's notice waits for this.
    pub async fn execution_ended(&self, record: &stepline_store::ExecutionRecord) {
        if record.map_run.is_some() {
            return;
        }
        for trigger in self.pipelines().iter() {
            let Compiled::Execution { source, statuses } = &trigger.kind else {
                continue;
            };
            if machine_arn(self.engine(), source) != record.state_machine_arn
                || !statuses.contains(&record.status)
            {
                continue;
            }
            let id = {
                use sha2::Digest;
                let mut h = sha2::Sha256::new();
                h.update(record.arn.as_bytes());
                h.update(format!("#{}", record.redrive_count).as_bytes());
                hmac::hex(&h.finalize())[..24].to_owned()
            };
            let parse = |text: &Option<String>| {
                text.as_deref()
                    .map(|t| {
                        serde_json::from_str(t).unwrap_or_else(|_| Value::String(t.to_owned()))
                    })
                    .unwrap_or(Value::Null)
            };
            let event = json!({
                "trigger": trigger.name,
                "kind": "execution",
                "executionArn": record.arn,
                "name": record.name,
                "stateMachineArn": record.state_machine_arn,
                "status": record.status.as_str(),
                "input": parse(&Some(record.input.clone())),
                "output": parse(&record.output),
                "error": record.error,
                "cause": record.cause,
                "startDate": rfc3339(record.start),
                "stopDate": record.stop.map(rfc3339),
            });
            let mut wait = std::time::Duration::from_millis(500);
            for attempt in 1..=PIPELINE_ATTEMPTS {
                match self.fire(trigger, &id, event.clone()).await {
                    Ok(fired) => {
                        if fired.new {
                            tracing::info!(trigger = %trigger.name, source = %record.arn, execution = %fired.execution_arn, "execution trigger started an execution");
                        }
                        break;
                    }
                    Err(e) if attempt == PIPELINE_ATTEMPTS => {
                        tracing::warn!(trigger = %trigger.name, source = %record.arn, error = %e, "execution trigger could not start its execution");
                    }
                    Err(_) => {
                        tokio::time::sleep(wait).await;
                        wait *= 2;
                    }
                }
            }
        }
    }

    /// Runs the driver until `stop` turns true (or its sender is gone).
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            let next = self.tick().await;
            let wait = (next - self.engine().now())
                .clamp(Duration::zero(), MAX_SLEEP)
                .to_std()
                .unwrap_or_default();
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.inner.changed.notified() => {}
                changed = stop.changed() => if changed.is_err() { return },
            }
        }
    }

    pub(crate) fn watcher(&self, name: &str, watch: &spec::FileWatch) -> Arc<files::Watcher> {
        let mut watchers = lock(&self.inner.watchers);
        match watchers.get(name) {
            Some(w) if w.watch() == watch => Arc::clone(w),
            _ => {
                let w = Arc::new(files::Watcher::new(watch.clone()));
                watchers.insert(name.to_owned(), Arc::clone(&w));
                w
            }
        }
    }
}

/// Attempts to start an `execution` trigger's execution after its
/// source ended.
const PIPELINE_ATTEMPTS: u32 = 5;

/// How often a node that does not lead the triggers asks again.
const FOLLOWER_SLEEP: Duration = Duration::seconds(1);

/// What a backfill did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Backfill {
    pub slots: usize,
    pub started: usize,
    pub existing: usize,
    /// The first errors (at most 20), each with its slot.
    pub errors: Vec<String>,
}

/// A schedule slot's part of an execution name: `20260101T020000Z`.
pub fn slot_id(slot: DateTime<Utc>) -> String {
    slot.format("%Y%m%dT%H%M%SZ").to_string()
}

/// The ARN of state machine `name` (an ARN is taken as it is).
pub fn machine_arn(engine: &Engine, name: &str) -> String {
    if name.starts_with("arn:") {
        return name.to_owned();
    }
    let c = engine.config();
    format!(
        "arn:aws:states:{}:{}:stateMachine:{name}",
        c.region, c.account
    )
}

/// The `enabled` a stored definition was written with (true when absent).
fn spec_enabled(spec: &Value) -> bool {
    spec.get("enabled").and_then(Value::as_bool).unwrap_or(true)
}

/// A stored record of `spec`.
fn record(
    spec: &TriggerSpec,
    origin: &str,
    created: DateTime<Utc>,
) -> Result<TriggerRecord, String> {
    Ok(TriggerRecord {
        name: spec.name.clone(),
        spec: serde_json::to_value(spec).map_err(|e| e.to_string())?,
        enabled: spec.enabled,
        origin: origin.to_owned(),
        created,
    })
}

impl Trigger {
    pub fn kind_name(&self) -> Kind {
        match self.kind {
            Compiled::Schedule { .. } => Kind::Schedule,
            Compiled::Webhook { .. } => Kind::Webhook,
            Compiled::File(_) => Kind::File,
            Compiled::Execution { .. } => Kind::Execution,
            Compiled::Dataset(_) => Kind::Dataset,
        }
    }

    /// The event id (the execution name's part after `TRIGGER-`) of a
    /// schedule's slot or a dataset's period starting at `at`.
    pub fn event_id(&self, at: DateTime<Utc>) -> String {
        match &self.kind {
            Compiled::Dataset(dataset) => dataset.period_id(at),
            _ => slot_id(at),
        }
    }

    /// The execution input for `event`: the event itself, or the trigger's
    /// template applied to it.
    pub fn input(&self, event: &Value) -> Result<String, String> {
        let value = match &self.template {
            // A pipeline passes the ended execution's output on.
            None if matches!(self.kind, Compiled::Execution { .. }) => event
                .get("output")
                .filter(|o| !o.is_null())
                .unwrap_or(event)
                .clone(),
            None => event.clone(),
            Some(template) => {
                let variables = serde_json::Map::new();
                let mut random = SplitMix64(0);
                let mut env = Env {
                    input: event,
                    context: &Value::Null,
                    variables: &variables,
                    random: &mut random,
                };
                template
                    .evaluate(&mut env)
                    .map_err(|e| format!("the input template failed: {e}"))?
            }
        };
        let text = value.to_string();
        if text.len() > MAX_INPUT_BYTES {
            return Err(format!(
                "the input is {} bytes; the limit is {MAX_INPUT_BYTES} bytes (256 KiB)",
                text.len()
            ));
        }
        Ok(text)
    }
}

#[cfg(test)]
mod tests;

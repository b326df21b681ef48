//! A state machine's orchestration settings: `max_running`, its expected
//! durations (deadlines) and its execution windows, from stepline.toml
//! (`[[limits]]`, `[[deadlines]]`, `[[windows]]`) or set over the REST API
//! (`/v1/state-machines/NAME/settings`, the CLI's `machines settings`).
//!
//! One source of truth per setting: a setting the file gives for a state
//! machine cannot be set over the API (the caller is told it is set in
//! stepline.toml). The API's settings are checked by the very checks the
//! file's are (`config::check_limits`, `deadlines::check`,
//! `windows::check`), and kept in the store as one small record per state
//! machine among the trigger states (`settings:NAME`, a name no trigger
//! can have), flushed before the answer. They apply at once: the engine
//! takes `max_running` and windows (`Engine::set_api_settings`), the
//! triggers' driver the deadlines. With several nodes, each node reads the
//! records again every [`REFRESH`], so a setting made through one node
//! applies on all within that time.
//!
//! This module never knows HTTP: `rest/settings.rs` is its face.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use stepline_runtime::Engine;
use stepline_store::TriggerStateRecord;

use crate::config::{Config, MachineLimit};
use crate::triggers::{MachineDeadlines, Triggers};
use crate::windows::MachineWindows;

/// How often every node reads the API's settings again when several
/// nodes share the store.
pub const REFRESH: std::time::Duration = std::time::Duration::from_secs(1);

/// A state machine's windows as the API and the file give them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WindowsSetting {
    pub windows: Vec<String>,
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub outside: Option<String>,
    #[serde(default)]
    pub drain: bool,
}

/// What the API sets for one state machine (also its stored form).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_running: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub state_expected_seconds: BTreeMap<String, u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows: Option<WindowsSetting>,
}

impl ApiSettings {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The fields, as the API names them.
pub const FIELDS: [&str; 4] = [
    "maxRunning",
    "expectedSeconds",
    "stateExpectedSeconds",
    "windows",
];

/// What stepline.toml sets, by state machine name.
#[derive(Debug, Clone, Default)]
pub struct FileSettings {
    limits: HashMap<String, u32>,
    deadlines: HashMap<String, MachineDeadlines>,
    windows: HashMap<String, MachineWindows>,
    /// Whether the store is PostgreSQL (several nodes): windows are
    /// refused, and the API's settings are read again every [`REFRESH`].
    shared: bool,
}

impl FileSettings {
    pub fn new(config: &Config, shared: bool) -> Self {
        Self {
            limits: config.max_running(),
            deadlines: config
                .deadlines
                .iter()
                .map(|d| (d.state_machine.clone(), d.clone()))
                .collect(),
            windows: config
                .windows
                .iter()
                .map(|w| (w.state_machine.clone(), w.clone()))
                .collect(),
            shared,
        }
    }

    /// The fields the file sets for `machine`.
    fn sets(&self, machine: &str) -> Vec<&'static str> {
        let mut fields = Vec::new();
        if self.limits.contains_key(machine) {
            fields.push("maxRunning");
        }
        if let Some(d) = self.deadlines.get(machine) {
            if d.expected_seconds.is_some() {
                fields.push("expectedSeconds");
            }
            if !d.states.is_empty() {
                fields.push("stateExpectedSeconds");
            }
        }
        if self.windows.contains_key(machine) {
            fields.push("windows");
        }
        fields
    }
}

/// The file's settings and the API's, as this node applies them.
#[derive(Debug, Default)]
pub struct Registry {
    file: std::sync::Mutex<Arc<FileSettings>>,
    api: std::sync::Mutex<BTreeMap<String, ApiSettings>>,
    /// Serialises the read-modify-write of a settings record here.
    writing: tokio::sync::Mutex<()>,
}

/// Why settings were not changed.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A value the checks refuse, or a body that is not settings.
    #[error("{0}")]
    Invalid(String),
    /// A field stepline.toml sets for this state machine.
    #[error("{0}")]
    SetInFile(String),
    /// The store failed while the settings were written or applied
    /// (what was written applies at the next start, or the next refresh
    /// in a cluster).
    #[error("{0}")]
    Store(String),
    #[error(transparent)]
    Engine(#[from] stepline_runtime::EngineError),
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The record that keeps `machine`'s settings.
pub fn record_name(machine: &str) -> String {
    format!("settings:{machine}")
}

/// A check's message (which names the file's entry and field) in the
/// API's words: `limits[0].max_running: ...` becomes `maxRunning: ...`.
fn api_words(message: String) -> String {
    let Some((entry, rest)) = message.split_once("].") else {
        return message;
    };
    if entry.starts_with("windows[") {
        return format!("windows.{rest}");
    }
    for (file, api) in [
        ("max_running", "maxRunning"),
        ("expected_seconds", "expectedSeconds"),
        ("states", "stateExpectedSeconds"),
    ] {
        if let Some(tail) = rest.strip_prefix(file) {
            return format!("{api}{tail}");
        }
    }
    rest.to_owned()
}

/// The message for windows with a store several nodes share (the file's).
pub fn windows_not_shared() -> String {
    crate::config::WINDOWS_NOT_WITH_POSTGRES.to_owned()
}

/// A field's value from the body: `None` when absent, `Some(None)` for
/// `null` (remove the API's value).
fn field<T: serde::de::DeserializeOwned>(
    body: &Map<String, Value>,
    name: &str,
    expected: &str,
) -> Result<Option<Option<T>>, SettingsError> {
    match body.get(name) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(value) => serde_json::from_value(value.clone())
            .map(|v| Some(Some(v)))
            .map_err(|e| SettingsError::Invalid(format!("{name}: {e}; expected {expected}"))),
    }
}

/// Applies a PUT body to `current`: each field given replaces the API's
/// value (`null` removes it); the others stay.
fn patch(current: &ApiSettings, body: &Map<String, Value>) -> Result<ApiSettings, SettingsError> {
    if let Some(unknown) = body.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(SettingsError::Invalid(format!(
            "'{unknown}' is not a setting; the settings are {}",
            FIELDS.join(", ")
        )));
    }
    if body.is_empty() {
        return Err(SettingsError::Invalid(format!(
            "nothing to set: give any of {}",
            FIELDS.join(", ")
        )));
    }
    let mut next = current.clone();
    if let Some(v) = field(body, "maxRunning", "a whole number")? {
        next.max_running = v;
    }
    if let Some(v) = field(body, "expectedSeconds", "a whole number of seconds")? {
        next.expected_seconds = v;
    }
    if let Some(v) = field::<BTreeMap<String, u64>>(
        body,
        "stateExpectedSeconds",
        "an object of state names to whole numbers of seconds",
    )? {
        next.state_expected_seconds = v.unwrap_or_default();
    }
    if let Some(v) = field(
        body,
        "windows",
        "{\"windows\": [...], \"timezone\", \"outside\", \"drain\"}",
    )? {
        next.windows = v;
    }
    Ok(next)
}

/// The file's entries `settings` would make for `machine`.
fn as_file(
    machine: &str,
    settings: &ApiSettings,
) -> (
    Option<MachineLimit>,
    Option<MachineDeadlines>,
    Option<MachineWindows>,
) {
    let limit = settings.max_running.map(|max_running| MachineLimit {
        state_machine: machine.to_owned(),
        max_running,
    });
    let deadlines = (settings.expected_seconds.is_some()
        || !settings.state_expected_seconds.is_empty())
    .then(|| MachineDeadlines {
        state_machine: machine.to_owned(),
        expected_seconds: settings.expected_seconds,
        states: settings.state_expected_seconds.clone(),
    });
    let windows = settings.windows.as_ref().map(|w| MachineWindows {
        state_machine: machine.to_owned(),
        windows: w.windows.clone(),
        timezone: w.timezone.clone(),
        outside: w.outside.clone(),
        drain: w.drain,
    });
    (limit, deadlines, windows)
}

/// The file's checks, on the settings of one state machine.
fn check(machine: &str, settings: &ApiSettings, shared: bool) -> Result<(), SettingsError> {
    let (limit, deadlines, windows) = as_file(machine, settings);
    let invalid = |e: String| SettingsError::Invalid(api_words(e));
    if let Some(limit) = limit {
        crate::config::check_limits(std::slice::from_ref(&limit)).map_err(invalid)?;
    }
    if let Some(deadlines) = deadlines {
        crate::triggers::deadlines::check(std::slice::from_ref(&deadlines)).map_err(invalid)?;
    }
    if let Some(windows) = windows {
        if shared {
            return Err(SettingsError::Invalid(windows_not_shared()));
        }
        crate::windows::check(std::slice::from_ref(&windows)).map_err(invalid)?;
    }
    Ok(())
}

impl Triggers {
    /// Takes stepline.toml's settings and the API's from the store, and
    /// applies them (at start).
    pub fn install_settings(&self, file: FileSettings) -> Result<(), String> {
        *lock(&self.settings().file) = Arc::new(file);
        let stored = self.stored_settings().map_err(|e| e.to_string())?;
        *lock(&self.settings().api) = stored;
        self.apply_settings()
    }

    /// Reads the API's settings again and applies them if they changed
    /// (another node set them).
    pub fn refresh_settings(&self) -> Result<(), String> {
        let stored = self.stored_settings().map_err(|e| e.to_string())?;
        {
            let mut api = lock(&self.settings().api);
            if *api == stored {
                return Ok(());
            }
            *api = stored;
        }
        self.apply_settings()
    }

    /// Every state machine's settings record.
    fn stored_settings(
        &self,
    ) -> Result<BTreeMap<String, ApiSettings>, stepline_runtime::EngineError> {
        let engine = self.engine();
        let mut all = BTreeMap::new();
        for machine in engine.list_state_machines()? {
            if let Some(settings) = read(engine, &machine.name)? {
                all.insert(machine.name, settings);
            }
        }
        Ok(all)
    }

    /// Gives the engine and the deadlines' driver the file's settings and
    /// the API's together.
    fn apply_settings(&self) -> Result<(), String> {
        let file = Arc::clone(&lock(&self.settings().file));
        let api = lock(&self.settings().api).clone();
        let mut max_running = HashMap::new();
        let mut windows = HashMap::new();
        let mut deadlines: BTreeMap<String, MachineDeadlines> = file
            .deadlines
            .iter()
            .map(|(n, d)| (n.clone(), d.clone()))
            .collect();
        for (machine, settings) in &api {
            let (limit, api_deadlines, api_windows) = as_file(machine, settings);
            if let Some(limit) = limit {
                if !file.limits.contains_key(machine) {
                    max_running.insert(machine.clone(), limit.max_running);
                }
            }
            if let Some(w) = api_windows {
                if !file.windows.contains_key(machine) && !file.shared {
                    match w.rule() {
                        Ok(rule) => {
                            windows.insert(machine.clone(), Arc::new(rule));
                        }
                        Err(e) => {
                            tracing::warn!(state_machine = %machine, error = %e, "stored windows no longer read; ignored");
                        }
                    }
                }
            }
            if let Some(d) = api_deadlines {
                let merged = deadlines
                    .entry(machine.clone())
                    .or_insert_with(|| MachineDeadlines {
                        state_machine: machine.clone(),
                        expected_seconds: None,
                        states: BTreeMap::new(),
                    });
                if merged.expected_seconds.is_none() {
                    merged.expected_seconds = d.expected_seconds;
                }
                if merged.states.is_empty() {
                    merged.states = d.states;
                }
            }
        }
        self.engine()
            .set_api_settings(max_running, windows)
            .map_err(|e| e.to_string())?;
        self.set_machine_deadlines(deadlines.into_values().collect());
        Ok(())
    }

    /// `machine`'s effective settings and where each comes from.
    pub fn machine_settings(&self, machine: &str) -> Result<Value, SettingsError> {
        let engine = self.engine();
        engine.describe_state_machine(&crate::triggers::machine_arn(engine, machine))?;
        let file = Arc::clone(&lock(&self.settings().file));
        let api = read(engine, machine)?.unwrap_or_default();
        Ok(describe(machine, &file, &api))
    }

    /// Applies a PUT body to `machine`'s API settings: checked, stored
    /// durably, applied; answers the effective settings.
    pub async fn put_machine_settings(
        &self,
        machine: &str,
        body: &Map<String, Value>,
    ) -> Result<Value, SettingsError> {
        let engine = self.engine();
        engine.describe_state_machine(&crate::triggers::machine_arn(engine, machine))?;
        let file = Arc::clone(&lock(&self.settings().file));
        let in_file = file.sets(machine);
        if let Some(field) = body.keys().find(|k| in_file.contains(&k.as_str())) {
            return Err(SettingsError::SetInFile(format!(
                "{field}: the state machine '{machine}' has it set in stepline.toml; change it there (a setting has one source)"
            )));
        }
        let _writing = self.settings().writing.lock().await;
        let current = read(engine, machine)?.unwrap_or_default();
        let next = patch(&current, body)?;
        check(machine, &next, file.shared)?;
        let watched =
            |s: &ApiSettings| s.expected_seconds.is_some() || !s.state_expected_seconds.is_empty();
        if watched(&next) && !watched(&current) && !file.deadlines.contains_key(machine) {
            self.watch_machine_afresh(machine)
                .await
                .map_err(SettingsError::Store)?;
        }
        self.store_settings(machine, &next).await?;
        Ok(describe(machine, &file, &next))
    }

    /// Removes every setting the API made for `machine`.
    pub async fn clear_machine_settings(&self, machine: &str) -> Result<Value, SettingsError> {
        let engine = self.engine();
        engine.describe_state_machine(&crate::triggers::machine_arn(engine, machine))?;
        let file = Arc::clone(&lock(&self.settings().file));
        let _writing = self.settings().writing.lock().await;
        self.store_settings(machine, &ApiSettings::default())
            .await?;
        Ok(describe(machine, &file, &ApiSettings::default()))
    }

    async fn store_settings(
        &self,
        machine: &str,
        settings: &ApiSettings,
    ) -> Result<(), SettingsError> {
        let engine = self.engine();
        let name = record_name(machine);
        let mut record = engine
            .trigger_state(&name)?
            .unwrap_or_else(|| TriggerStateRecord {
                name: name.clone(),
                ..TriggerStateRecord::default()
            });
        record.settings = (!settings.is_empty())
            .then(|| serde_json::to_value(settings))
            .transpose()
            .map_err(|e| SettingsError::Store(e.to_string()))?;
        engine.put_trigger_state_durably(record).await?;
        {
            let mut api = lock(&self.settings().api);
            if settings.is_empty() {
                api.remove(machine);
            } else {
                api.insert(machine.to_owned(), settings.clone());
            }
        }
        self.apply_settings().map_err(SettingsError::Store)
    }
}

/// `machine`'s API settings from the store.
fn read(
    engine: &Engine,
    machine: &str,
) -> Result<Option<ApiSettings>, stepline_runtime::EngineError> {
    let Some(record) = engine.trigger_state(&record_name(machine))? else {
        return Ok(None);
    };
    Ok(record
        .settings
        .and_then(|v| serde_json::from_value::<ApiSettings>(v).ok())
        .filter(|s| !s.is_empty()))
}

/// The effective settings: each field's value (the file's, else the
/// API's, else null) and, in `source`, where each set one comes from.
fn describe(machine: &str, file: &FileSettings, api: &ApiSettings) -> Value {
    let mut source = Map::new();
    let mut pick = |name: &str, from_file: Option<Value>, from_api: Option<Value>| {
        if let Some(v) = from_file {
            source.insert(name.into(), json!("config"));
            v
        } else if let Some(v) = from_api {
            source.insert(name.into(), json!("api"));
            v
        } else {
            Value::Null
        }
    };
    let max_running = pick(
        "maxRunning",
        file.limits.get(machine).map(|m| json!(m)),
        api.max_running.map(|m| json!(m)),
    );
    let deadlines = file.deadlines.get(machine);
    let expected = pick(
        "expectedSeconds",
        deadlines.and_then(|d| d.expected_seconds).map(|s| json!(s)),
        api.expected_seconds.map(|s| json!(s)),
    );
    let states = pick(
        "stateExpectedSeconds",
        deadlines
            .filter(|d| !d.states.is_empty())
            .map(|d| json!(d.states)),
        (!api.state_expected_seconds.is_empty()).then(|| json!(api.state_expected_seconds)),
    );
    let windows = pick(
        "windows",
        file.windows.get(machine).map(|w| {
            json!(WindowsSetting {
                windows: w.windows.clone(),
                timezone: w.timezone.clone(),
                outside: w.outside.clone(),
                drain: w.drain,
            })
        }),
        api.windows.as_ref().map(|w| json!(w)),
    );
    json!({
        "stateMachine": machine,
        "maxRunning": max_running,
        "expectedSeconds": expected,
        "stateExpectedSeconds": if states.is_null() { json!({}) } else { states },
        "windows": windows,
        "source": source,
    })
}

/// Reads the API's settings again every [`REFRESH`] while several nodes
/// share the store, until `stop` turns true.
pub async fn refresh_loop(triggers: Triggers, mut stop: tokio::sync::watch::Receiver<bool>) {
    if !lock(&triggers.settings().file).shared {
        return;
    }
    loop {
        tokio::select! {
            () = tokio::time::sleep(REFRESH) => {}
            changed = stop.changed() => if changed.is_err() || *stop.borrow() { return },
        }
        if let Err(e) = triggers.refresh_settings() {
            tracing::warn!(error = %e, "cannot read the state machines' settings again");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checks_words_become_the_apis() {
        assert_eq!(
            api_words("limits[0].max_running: 0 is not at least 1".into()),
            "maxRunning: 0 is not at least 1"
        );
        assert_eq!(
            api_words("deadlines[0].states.Load: 0 is not between 1 and 2 seconds".into()),
            "stateExpectedSeconds.Load: 0 is not between 1 and 2 seconds"
        );
        assert_eq!(
            api_words("windows[0].timezone: 'X' is not a time zone".into()),
            "windows.timezone: 'X' is not a time zone"
        );
    }

    #[test]
    fn null_removes_and_absent_keeps() {
        let current = ApiSettings {
            max_running: Some(2),
            expected_seconds: Some(60),
            ..ApiSettings::default()
        };
        let body = json!({"maxRunning": null, "stateExpectedSeconds": {"A": 5}});
        let next = patch(&current, body.as_object().unwrap()).unwrap();
        assert_eq!(next.max_running, None);
        assert_eq!(next.expected_seconds, Some(60));
        assert_eq!(next.state_expected_seconds["A"], 5);
        let unknown = json!({"max_running": 1});
        assert!(patch(&current, unknown.as_object().unwrap()).is_err());
    }
}

//! A state machine's `max_running` and execution windows set over the
//! API, at run time, beside the configuration's (`EngineConfig`).
//!
//! The server owns where they are stored and checks them; the engine only
//! applies what it is given, at once: a raised (or removed) limit starts
//! the queued executions that now fit, windows apply to the next start,
//! and a draining rule to the next task call. A name the configuration
//! limits (or windows) keeps the configuration's value: the server refuses
//! to set it over the API, and the engine reads the configuration first.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use stepline_store::ExecutionStatus;

use super::{Engine, EngineError, limits, lock};
use crate::windows::WindowRule;

/// What the API sets, by state machine name.
#[derive(Debug, Default, Clone)]
pub(super) struct ApiSettings {
    pub(super) max_running: HashMap<String, u32>,
    pub(super) windows: HashMap<String, Arc<WindowRule>>,
}

impl Engine {
    fn api_settings(&self) -> std::sync::RwLockReadGuard<'_, ApiSettings> {
        self.inner
            .api_settings
            .read()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The `max_running` of a state machine, by name: the configuration's,
    /// else the API's.
    pub(super) fn limit_of(&self, name: &str) -> Option<u32> {
        if let Some(max) = self.inner.config.max_running.get(name) {
            return Some(*max);
        }
        let api = self.api_settings();
        if api.max_running.is_empty() {
            return None;
        }
        api.max_running.get(name).copied()
    }

    /// Every limited state machine's `max_running`, by name.
    pub(super) fn all_limits(&self) -> HashMap<String, u32> {
        let mut all = self.api_settings().max_running.clone();
        all.extend(
            self.inner
                .config
                .max_running
                .iter()
                .map(|(n, m)| (n.clone(), *m)),
        );
        all
    }

    /// The windows of a state machine, by name: the configuration's, else
    /// the API's.
    pub(super) fn window_rule_of(&self, name: &str) -> Option<Arc<WindowRule>> {
        if let Some(rule) = self.inner.config.windows.get(name) {
            return Some(Arc::clone(rule));
        }
        let api = self.api_settings();
        if api.windows.is_empty() {
            return None;
        }
        api.windows.get(name).cloned()
    }

    /// Every state machine's windows (the configuration's and the API's),
    /// by name.
    pub fn window_rules(&self) -> HashMap<String, Arc<WindowRule>> {
        let mut all = self.api_settings().windows.clone();
        all.extend(
            self.inner
                .config
                .windows
                .iter()
                .map(|(n, r)| (n.clone(), Arc::clone(r))),
        );
        all
    }

    /// Replaces the settings set over the API (all of them, by state
    /// machine name) and applies them at once. Names the configuration
    /// sets are ignored here: the configuration wins.
    pub fn set_api_settings(
        &self,
        max_running: HashMap<String, u32>,
        windows: HashMap<String, Arc<WindowRule>>,
    ) -> Result<(), EngineError> {
        let before = self.all_limits();
        {
            let mut api = self
                .inner
                .api_settings
                .write()
                .unwrap_or_else(|e| e.into_inner());
            api.max_running = max_running;
            api.windows = windows;
        }
        let rules = self.window_rules();
        *self
            .inner
            .draining
            .write()
            .unwrap_or_else(|e| e.into_inner()) =
            rules.into_iter().filter(|(_, rule)| rule.drain).collect();
        let after = self.all_limits();
        let changed: BTreeSet<String> = before
            .keys()
            .chain(after.keys())
            .filter(|name| before.get(*name) != after.get(*name))
            .cloned()
            .collect();
        if changed.is_empty() {
            return Ok(());
        }
        if self.shares_slots() {
            // The store counts the slots: a look at each queue is enough
            // (a queue whose limit went starts without one).
            for name in &changed {
                let max = after.get(name).copied().unwrap_or(u32::MAX);
                self.start_shared_queue(&self.machine_arn(name), max);
            }
            return Ok(());
        }
        // A state machine limited anew: its slots are counted from the
        // store, as at open (nothing counted them while it had no limit).
        let new: Vec<&String> = changed
            .iter()
            .filter(|n| !before.contains_key(*n) && after.contains_key(*n))
            .collect();
        if !new.is_empty() {
            let open = self.inner.store.open_executions()?;
            let mut slots = lock(&self.inner.slots);
            for name in &new {
                slots.insert((*name).clone(), limits::MachineSlots::default());
            }
            for record in &open {
                if record.map_run.is_some() || record.status != ExecutionStatus::Running {
                    continue;
                }
                let name = limits::machine_name(&record.state_machine_arn);
                if !new.iter().any(|n| n.as_str() == name) {
                    continue;
                }
                if let Some(machine) = slots.get_mut(name) {
                    machine.count(record);
                }
            }
        }
        for name in changed {
            self.start_queued(name);
        }
        Ok(())
    }
}

//! State machines: create, update, describe, list, delete, and the
//! compiled definition of each revision (versions and aliases are in
//! versions.rs).

use std::collections::BTreeMap;
use std::sync::Arc;

use stepline_language::asl::StateMachine;
use stepline_store::{StateMachineRecord, WorkflowType, WriteBatch, WriteOp};

use super::{Engine, EngineError, check_name, compile, lock};

/// How long a start trusts a state machine record it read: another node's
/// update reaches this node's starts within it.
pub(super) const RECENT: std::time::Duration = std::time::Duration::from_secs(1);

/// At most this many records kept for starts.
const RECENT_MACHINES: usize = 1024;

impl Engine {
    /// Validates and stores a new state machine.
    pub async fn create_state_machine(
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
        self.machines_changed();
        self.flush().await?;
        lock(&self.inner.compiled).insert((arn, 1), Arc::new(machine));
        Ok(record)
    }

    /// Replaces a state machine's definition; running executions keep the
    /// revision they started with.
    pub async fn update_state_machine(
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
        self.machines_changed();
        self.flush().await?;
        Ok(record)
    }

    pub fn describe_state_machine(&self, arn: &str) -> Result<StateMachineRecord, EngineError> {
        self.inner
            .store
            .state_machine(arn)?
            .ok_or_else(|| EngineError::StateMachineDoesNotExist(arn.to_owned()))
    }

    /// A state machine as a start reads it: a record this node read (or
    /// wrote) less than [`RECENT`] ago, else from the store. Every start
    /// would otherwise read the whole record, definition included, from a
    /// store that may be a network away; AWS too says that executions
    /// started just after an update may run the previous definition.
    pub(super) fn recent_state_machine(
        &self,
        arn: &str,
    ) -> Result<StateMachineRecord, EngineError> {
        if let Some((read, record)) = lock(&self.inner.recent_machines).get(arn)
            && read.elapsed() < RECENT
        {
            return Ok(record.clone());
        }
        let record = self.describe_state_machine(arn)?;
        let mut recent = lock(&self.inner.recent_machines);
        if recent.len() >= RECENT_MACHINES {
            recent.clear();
        }
        recent.insert(arn.to_owned(), (std::time::Instant::now(), record.clone()));
        Ok(record)
    }

    /// Forgets the records starts read recently: this node changed one.
    pub(super) fn machines_changed(&self) {
        lock(&self.inner.recent_machines).clear();
    }

    pub fn list_state_machines(&self) -> Result<Vec<StateMachineRecord>, EngineError> {
        Ok(self.inner.store.state_machines()?)
    }

    /// Deletes a state machine (AWS lets running executions finish).
    pub async fn delete_state_machine(&self, arn: &str) -> Result<(), EngineError> {
        let mut batch = WriteBatch::new();
        batch.push(WriteOp::DeleteStateMachine(arn.to_owned()));
        self.inner.store.apply(&batch)?;
        self.machines_changed();
        self.flush().await?;
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
    pub(super) fn machine_revision(
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
    pub(super) fn compiled(
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
}

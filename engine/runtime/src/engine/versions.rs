//! State machine versions and aliases, as AWS: a version is a published
//! revision that never changes (`...:stateMachine:NAME:3`); an alias is a
//! name (`...:stateMachine:NAME:prod`) routing new executions to one or two
//! versions by weight. Both are kept in the state machine's record;
//! revisions themselves are kept by the store, so a version's definition is
//! always there.

use chrono::{DateTime, Utc};

use super::{Engine, EngineError, lock};
use stepline_store::{AliasRecord, StateMachineRecord, VersionRecord, WriteBatch, WriteOp};

/// A state machine ARN with its version number or alias name, if any.
pub(crate) fn split_qualifier(arn: &str) -> (&str, Option<&str>) {
    let parts = arn.splitn(8, ':').count();
    if parts == 8 {
        if let Some(i) = arn.rfind(':') {
            return (&arn[..i], Some(&arn[i + 1..]));
        }
    }
    (arn, None)
}

/// What a (possibly qualified) state machine ARN runs.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub machine: StateMachineRecord,
    pub revision: u64,
    pub version: Option<u64>,
}

impl Engine {
    /// A state machine, a version of it, or an alias resolved to one of its
    /// versions (by weight).
    pub fn resolve_machine(&self, arn: &str) -> Result<Resolved, EngineError> {
        self.resolve_machine_from(arn, false)
    }

    /// [`Engine::resolve_machine`], for a start: from a record read at
    /// most [`super::machines::RECENT`] ago when `recent` (see
    /// `Engine::recent_state_machine`).
    pub(super) fn resolve_machine_from(
        &self,
        arn: &str,
        recent: bool,
    ) -> Result<Resolved, EngineError> {
        let (base, qualifier) = split_qualifier(arn);
        let machine = if recent {
            self.recent_state_machine(base)?
        } else {
            self.describe_state_machine(base)?
        };
        let Some(qualifier) = qualifier else {
            let revision = machine.revision;
            return Ok(Resolved {
                machine,
                revision,
                version: None,
            });
        };
        let version = match qualifier.parse::<u64>() {
            Ok(number) => number,
            Err(_) => {
                let alias = machine
                    .aliases
                    .get(qualifier)
                    .ok_or_else(|| EngineError::ResourceNotFound(arn.to_owned()))?;
                self.pick(&alias.routing)
            }
        };
        let record = machine
            .versions
            .get(&version)
            .ok_or_else(|| EngineError::ResourceNotFound(arn.to_owned()))?;
        Ok(Resolved {
            revision: record.revision,
            machine,
            version: Some(version),
        })
    }

    /// A version chosen by the routing weights.
    fn pick(&self, routing: &[(u64, u32)]) -> u64 {
        let roll = self.random_below(100) as u32;
        let mut acc = 0;
        for (version, weight) in routing {
            acc += weight;
            if roll < acc {
                return *version;
            }
        }
        routing.last().map_or(0, |(v, _)| *v)
    }

    /// PublishStateMachineVersion: the current revision as a version
    /// (again the same version if that revision is already published).
    pub async fn publish_version(
        &self,
        arn: &str,
        description: Option<&str>,
        expected_revision: Option<u64>,
    ) -> Result<(u64, DateTime<Utc>), EngineError> {
        let mut machine = self.describe_state_machine(arn)?;
        if expected_revision.is_some_and(|r| r != machine.revision) {
            return Err(EngineError::Conflict(format!(
                "The revision of '{arn}' is {}, not the revisionId given",
                machine.revision
            )));
        }
        if let Some((number, v)) = machine
            .versions
            .iter()
            .find(|(_, v)| v.revision == machine.revision)
        {
            return Ok((*number, v.created));
        }
        machine.last_version += 1;
        let number = machine.last_version;
        let created = self.now();
        machine.versions.insert(
            number,
            VersionRecord {
                revision: machine.revision,
                created,
                description: description.map(str::to_owned),
            },
        );
        self.put_machine(machine).await?;
        Ok((number, created))
    }

    /// A version's definition and facts.
    pub fn describe_version(
        &self,
        version_arn: &str,
    ) -> Result<(StateMachineRecord, VersionRecord), EngineError> {
        let (base, qualifier) = split_qualifier(version_arn);
        let machine = self.describe_state_machine(base)?;
        let version = qualifier
            .and_then(|q| q.parse::<u64>().ok())
            .and_then(|n| machine.versions.get(&n).cloned())
            .ok_or_else(|| EngineError::ResourceNotFound(version_arn.to_owned()))?;
        let at_revision = self.describe_state_machine_revision(base, version.revision)?;
        Ok((at_revision, version))
    }

    /// DeleteStateMachineVersion: refused while an alias routes to it.
    pub async fn delete_version(&self, version_arn: &str) -> Result<(), EngineError> {
        let (base, qualifier) = split_qualifier(version_arn);
        let mut machine = self.describe_state_machine(base)?;
        let Some(number) = qualifier.and_then(|q| q.parse::<u64>().ok()) else {
            return Err(EngineError::Validation(format!(
                "'{version_arn}' is not a state machine version ARN"
            )));
        };
        if let Some((alias, _)) = machine
            .aliases
            .iter()
            .find(|(_, a)| a.routing.iter().any(|(v, _)| *v == number))
        {
            return Err(EngineError::Conflict(format!(
                "Version {number} is referenced by the alias '{alias}'"
            )));
        }
        // Deleting a version that is not there is not an error, as AWS.
        if machine.versions.remove(&number).is_some() {
            self.put_machine(machine).await?;
        }
        Ok(())
    }

    /// Creates (`create`) or updates an alias. Routing: one or two
    /// versions of this state machine, weights adding up to 100.
    pub async fn put_alias(
        &self,
        machine_arn: &str,
        name: &str,
        routing: Vec<(u64, u32)>,
        description: Option<&str>,
        create: bool,
    ) -> Result<(String, DateTime<Utc>), EngineError> {
        let mut machine = self.describe_state_machine(machine_arn)?;
        let valid_name = !name.is_empty()
            && name.len() <= 80
            && name.parse::<u64>().is_err()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid_name {
            return Err(EngineError::Validation(format!(
                "'{name}' is not a valid alias name: 1 to 80 letters, digits, '-' or '_', not a number"
            )));
        }
        if routing.is_empty() || routing.len() > 2 {
            return Err(EngineError::Validation(
                "An alias routes to one or two versions".into(),
            ));
        }
        if routing.iter().map(|(_, w)| w).sum::<u32>() != 100 {
            return Err(EngineError::Validation(
                "The weights of an alias's routing configuration must add up to 100".into(),
            ));
        }
        if let Some((missing, _)) = routing
            .iter()
            .find(|(v, _)| !machine.versions.contains_key(v))
        {
            return Err(EngineError::ResourceNotFound(format!(
                "{machine_arn}:{missing}"
            )));
        }
        let now = self.now();
        let arn = format!("{machine_arn}:{name}");
        match (machine.aliases.get_mut(name), create) {
            (Some(existing), true) => {
                // Creating the same alias again is idempotent; anything
                // else is a conflict.
                if existing.routing == routing && existing.description.as_deref() == description {
                    return Ok((arn, existing.created));
                }
                return Err(EngineError::Conflict(format!(
                    "The alias '{name}' already exists with another configuration"
                )));
            }
            (Some(existing), false) => {
                existing.routing = routing;
                if description.is_some() {
                    existing.description = description.map(str::to_owned);
                }
                existing.updated = now;
            }
            (None, true) => {
                machine.aliases.insert(
                    name.to_owned(),
                    AliasRecord {
                        description: description.map(str::to_owned),
                        routing,
                        created: now,
                        updated: now,
                    },
                );
            }
            (None, false) => return Err(EngineError::ResourceNotFound(arn)),
        }
        self.put_machine(machine).await?;
        Ok((arn, now))
    }

    pub fn describe_alias(&self, alias_arn: &str) -> Result<(String, AliasRecord), EngineError> {
        let (base, qualifier) = split_qualifier(alias_arn);
        let machine = self.describe_state_machine(base)?;
        let name = qualifier.unwrap_or_default();
        machine
            .aliases
            .get(name)
            .map(|a| (name.to_owned(), a.clone()))
            .ok_or_else(|| EngineError::ResourceNotFound(alias_arn.to_owned()))
    }

    pub async fn delete_alias(&self, alias_arn: &str) -> Result<(), EngineError> {
        let (base, qualifier) = split_qualifier(alias_arn);
        let mut machine = self.describe_state_machine(base)?;
        if machine
            .aliases
            .remove(qualifier.unwrap_or_default())
            .is_some()
        {
            self.put_machine(machine).await?;
        }
        Ok(())
    }

    async fn put_machine(&self, machine: StateMachineRecord) -> Result<(), EngineError> {
        let mut batch = WriteBatch::new();
        batch.push(WriteOp::PutStateMachine(machine));
        {
            let _one_writer = lock(self.machines_lock());
            self.store().apply(&batch)?;
        }
        self.machines_changed();
        self.flush().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::split_qualifier;

    #[test]
    fn qualifiers_are_the_eighth_part() {
        let m = "arn:aws:states:us-east-1:111111111111:stateMachine:orders";
        assert_eq!(split_qualifier(m), (m, None));
        assert_eq!(split_qualifier(&format!("{m}:3")), (m, Some("3")));
        assert_eq!(split_qualifier(&format!("{m}:prod")), (m, Some("prod")));
    }
}

//! Tags on state machines and activities, as AWS: at most 50 per
//! resource.

use std::collections::BTreeMap;

use stepline_store::{WriteBatch, WriteOp};

use super::{Engine, EngineError};

impl Engine {
    /// The most tags a resource carries, as AWS.
    pub const MAX_TAGS: usize = 50;

    /// Adds (or replaces) tags on a state machine or an activity.
    pub async fn tag_resource(
        &self,
        arn: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), EngineError> {
        self.retag(arn, |current| {
            current.extend(tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        })
        .await
    }

    /// Removes tags by key.
    pub async fn untag_resource(&self, arn: &str, keys: &[String]) -> Result<(), EngineError> {
        self.retag(arn, |current| {
            for key in keys {
                current.remove(key);
            }
        })
        .await
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

    pub(super) async fn retag(
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
        self.machines_changed();
        self.flush().await?;
        Ok(())
    }
}

//! Tags on state machines and activities: Tag, Untag, ListTagsForResource,
//! and the tag lists Create* actions take.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use stepline_runtime::Engine;

use super::error::AwsError;
use super::wire::{Empty, Member};

/// AWS's tag, `{"key": ..., "value": ...}`.
#[derive(Debug, Serialize)]
pub struct Tag {
    key: String,
    value: String,
}

/// AWS's tag list, `[{"key": ..., "value": ...}]`, as a map. Read from the
/// JSON by hand, as one refusal covers every malformed tag, and a value
/// that is not a string counts as empty.
pub fn tag_list(member: &Member<Value>, field: &str) -> Result<BTreeMap<String, String>, AwsError> {
    let mut tags = BTreeMap::new();
    let items = match member.json() {
        None | Some(Value::Null) => return Ok(tags),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(AwsError::new(
                "ValidationException",
                format!("{field} must be a list of {{\"key\", \"value\"}} objects"),
            ));
        }
    };
    for item in items {
        let key = item.get("key").and_then(Value::as_str);
        let value = item.get("value").and_then(Value::as_str).unwrap_or("");
        match key {
            Some(key) if !key.is_empty() && key.len() <= 128 && value.len() <= 256 => {
                tags.insert(key.to_owned(), value.to_owned());
            }
            _ => {
                return Err(AwsError::new(
                    "ValidationException",
                    format!(
                        "every tag in {field} needs a key of 1 to 128 characters and a value of at most 256"
                    ),
                ));
            }
        }
    }
    Ok(tags)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TagResourceInput {
    resource_arn: Member<String>,
    tags: Member<Value>,
}

pub async fn tag(engine: &Engine, input: TagResourceInput) -> Result<Empty, AwsError> {
    let resource = input.resource_arn.required("resourceArn")?;
    let tags = tag_list(&input.tags, "tags")?;
    engine.tag_resource(resource, &tags).await?;
    Ok(Empty {})
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct UntagResourceInput {
    resource_arn: Member<String>,
    tag_keys: Member<Vec<String>>,
}

pub async fn untag(engine: &Engine, input: UntagResourceInput) -> Result<Empty, AwsError> {
    let resource = input.resource_arn.required("resourceArn")?;
    let keys: Vec<String> = match input.tag_keys.json() {
        Some(Value::Array(keys)) => keys
            .iter()
            .map(|k| k.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(|| {
                AwsError::new("ValidationException", "tagKeys must be a list of strings")
            })?,
        // Anything but a list, as AWS answers a missing list.
        _ => {
            return Err(AwsError::new(
                "ValidationException",
                "1 validation error detected: Value null at 'tagKeys' failed to satisfy constraint: Member must not be null",
            ));
        }
    };
    engine.untag_resource(resource, &keys).await?;
    Ok(Empty {})
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ListTagsForResourceInput {
    resource_arn: Member<String>,
}

#[derive(Debug, Serialize)]
pub struct ListTagsForResourceOutput {
    tags: Vec<Tag>,
}

pub fn list(
    engine: &Engine,
    input: ListTagsForResourceInput,
) -> Result<ListTagsForResourceOutput, AwsError> {
    let resource = input.resource_arn.required("resourceArn")?;
    let tags = engine
        .tags(resource)?
        .into_iter()
        .map(|(key, value)| Tag { key, value })
        .collect();
    Ok(ListTagsForResourceOutput { tags })
}

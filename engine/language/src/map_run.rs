//! What the interpreter hands the runtime when a distributed Map starts:
//! every field of the Map state already evaluated against the state's
//! input, so the Map Run runner never evaluates a definition field except
//! the per-item ItemSelector (through [`crate::interp::ItemSelection`]).
//!
//! Pure data: it travels as the input of the Map Run's task request.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The most child executions a Map Run runs at once (AWS's limit).
pub const MAX_CONCURRENCY: u64 = 10_000;

/// One Map Run, ready to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MapRunSpec {
    pub map_run_arn: String,
    /// The Map state (its id in the parent's compiled definition): the
    /// children run its ItemProcessor.
    pub state: u32,
    /// The ItemProcessor's scope in the parent's compiled definition.
    pub processor: u32,
    /// The label in the Map Run's and the children's ARNs.
    pub label: String,
    pub express: bool,
    /// The Map state's raw input ($states.input of ItemSelector).
    pub raw_input: Value,
    /// The Map state's effective input (after InputPath).
    pub effective: Value,
    /// The context object as the Map state saw it; `Map.Item` is set per item.
    pub context: Value,
    /// Items from ItemsPath / Items, when there is no ItemReader.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reader: Option<ReaderSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batcher: Option<BatcherSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writer: Option<WriterSpec>,
    /// 0: AWS's default for a distributed Map, 10,000.
    pub max_concurrency: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerated_count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerated_percentage: Option<f64>,
    /// A redrive of a failed Map Run (same ARN): children that succeeded
    /// are kept, the others are redriven.
    #[serde(default)]
    pub redrive: bool,
}

/// ItemReader, its Parameters evaluated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReaderSpec {
    pub resource: String,
    pub parameters: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv_header_location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv_headers: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv_delimiter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_items: Option<u64>,
}

/// ItemBatcher, evaluated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatcherSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_items_per_batch: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_input_bytes_per_batch: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_input: Option<Value>,
}

/// ResultWriter, evaluated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WriterSpec {
    /// `None`: WriterConfig alone, which formats the state's result
    /// without writing files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    pub parameters: Value,
    /// WriterConfig.OutputType: JSON (default) or JSONL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_type: Option<String>,
    /// WriterConfig.Transformation: NONE, COMPACT or FLATTEN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transformation: Option<String>,
}

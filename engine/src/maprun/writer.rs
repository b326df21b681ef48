//! ResultWriter: `arn:aws:states:::s3:putObject` to a mapped bucket, laid
//! out as AWS lays it out: `PREFIX/MAP_RUN_ID/manifest.json` and
//! `SUCCEEDED_0.json`, `FAILED_0.json`, `PENDING_0.json` (each written
//! only when it has entries), every entry a child execution as
//! DescribeExecution shows it (Input and Output as JSON text).
//!
//! The children are read back one at a time from the store and each file
//! is written as a stream, so the results of a large Map Run are never
//! held in memory.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use serde_json::{Map, Value, json};

use super::spec::WriterSpec;
use crate::runtime::Engine;
use crate::store::{ExecutionRecord, ExecutionStatus, MapRunRecord};

/// Writes the results and answers the Map state's result:
/// `{"MapRunArn", "ResultWriterDetails": {"Bucket", "Key"}}`.
pub(crate) fn write(
    engine: &Engine,
    spec: &WriterSpec,
    record: &MapRunRecord,
    child_machine_arn: &str,
    names: impl Iterator<Item = String>,
) -> Result<Value, String> {
    let resource = spec.resource.as_deref().unwrap_or_default();
    if resource != "arn:aws:states:::s3:putObject" {
        return Err(format!(
            "The ResultWriter resource '{resource}' is not supported (arn:aws:states:::s3:putObject is)"
        ));
    }
    let transformation = Transformation::of(spec)?;
    let lines = output_lines(spec)?;
    let param = |name: &str| spec.parameters.get(name).and_then(Value::as_str);
    let bucket = param("Bucket").ok_or("The ResultWriter's parameters need a Bucket string")?;
    let prefix = param("Prefix").unwrap_or("").trim_end_matches('/');
    let id = record
        .map_run_arn
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_owned();
    let base = if prefix.is_empty() {
        id
    } else {
        format!("{prefix}/{id}")
    };
    let buckets = &engine.config().buckets;
    let manifest_key = format!("{base}/manifest.json");
    let manifest_path = buckets
        .resolve(bucket, &manifest_key, false)
        .map_err(|e| e.0)?;
    let dir = manifest_path.parent().ok_or("no directory")?.to_owned();
    std::fs::create_dir_all(&dir).map_err(|e| format!("Cannot create {base}: {e}"))?;
    // Created, every path is checked again: a symbolic link planted on the
    // way (or in place of a file) must not lead out of the bucket.
    buckets
        .resolve(bucket, &manifest_key, false)
        .map_err(|e| e.0)?;
    for status in ["SUCCEEDED", "FAILED", "PENDING"] {
        buckets
            .resolve(bucket, &format!("{base}/{status}_0.json"), false)
            .map_err(|e| e.0)?;
    }

    let mut files = [
        ResultFile::new("SUCCEEDED", lines),
        ResultFile::new("FAILED", lines),
        ResultFile::new("PENDING", lines),
    ];
    for name in names {
        let child = engine
            .store()
            .execution_by_name(child_machine_arn, &name)
            .map_err(|e| e.to_string())?;
        let Some(c) = child else { continue };
        let slot = match c.status {
            ExecutionStatus::Succeeded => 0,
            ExecutionStatus::Running => 2,
            _ => 1,
        };
        for entry in transformation.entries(&c) {
            files[slot].push(&dir, &entry)?;
        }
    }
    let mut listed = Map::new();
    for file in &mut files {
        let entries = file.finish()?;
        let list: Vec<Value> = entries
            .map(|size| {
                vec![json!({"Key": format!("{base}/{}_0.json", file.status), "Size": size})]
            })
            .unwrap_or_default();
        listed.insert(file.status.to_owned(), Value::Array(list));
    }
    let manifest = json!({
        "DestinationBucket": bucket,
        "MapRunArn": record.map_run_arn,
        "ResultFiles": listed,
    });
    std::fs::write(&manifest_path, manifest.to_string())
        .map_err(|e| format!("Cannot write {manifest_key}: {e}"))?;
    Ok(json!({
        "MapRunArn": record.map_run_arn,
        "ResultWriterDetails": {"Bucket": bucket, "Key": manifest_key},
    }))
}

/// WriterConfig only: the entries the state's result is made of (no
/// file), in order; `None` when they pass the payload limit.
pub(crate) fn preview(
    engine: &Engine,
    spec: &WriterSpec,
    child_machine_arn: &str,
    names: impl Iterator<Item = String>,
) -> Result<Option<Vec<Value>>, String> {
    let transformation = Transformation::of(spec)?;
    let mut out = Vec::new();
    let mut bytes = 0;
    for name in names {
        let child = engine
            .store()
            .execution_by_name(child_machine_arn, &name)
            .map_err(|e| e.to_string())?;
        for entry in child.iter().flat_map(|c| transformation.entries(c)) {
            bytes += entry.to_string().len() + 1;
            if bytes > crate::interp::MAX_PAYLOAD_BYTES {
                return Ok(None);
            }
            out.push(entry);
        }
    }
    Ok(Some(out))
}

/// WriterConfig.Transformation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transformation {
    /// Each child as DescribeExecution shows it (the default with files).
    None,
    /// Each child's output (the default without files).
    Compact,
    /// Each child's output, an array output spread into its elements.
    Flatten,
}

impl Transformation {
    fn of(spec: &WriterSpec) -> Result<Self, String> {
        match spec.transformation.as_deref() {
            None if spec.resource.is_some() => Ok(Self::None),
            None | Some("COMPACT") => Ok(Self::Compact),
            Some("NONE") => Ok(Self::None),
            Some("FLATTEN") => Ok(Self::Flatten),
            Some(other) => Err(format!(
                "The WriterConfig Transformation '{other}' is not one of NONE, COMPACT, FLATTEN"
            )),
        }
    }

    /// A child's entries. A child that did not succeed is always described
    /// whole (AWS: its result stays as with NONE).
    fn entries(self, c: &ExecutionRecord) -> Vec<Value> {
        if self == Self::None || c.status != ExecutionStatus::Succeeded {
            return vec![describe(c)];
        }
        let output = c
            .output
            .as_deref()
            .and_then(|o| serde_json::from_str(o).ok())
            .unwrap_or(Value::Null);
        match (self, output) {
            (Self::Flatten, Value::Array(items)) => items,
            (_, output) => vec![output],
        }
    }
}

/// WriterConfig.OutputType: JSONL writes one entry per line.
fn output_lines(spec: &WriterSpec) -> Result<bool, String> {
    match spec.output_type.as_deref() {
        None | Some("JSON") => Ok(false),
        Some("JSONL") => Ok(true),
        Some(other) => Err(format!(
            "The WriterConfig OutputType '{other}' is not one of JSON, JSONL"
        )),
    }
}

/// One `STATUS_0.json`: a JSON array (or JSON Lines) written entry by entry.
struct ResultFile {
    status: &'static str,
    lines: bool,
    out: Option<BufWriter<File>>,
    size: u64,
}

impl ResultFile {
    fn new(status: &'static str, lines: bool) -> Self {
        Self {
            status,
            lines,
            out: None,
            size: 0,
        }
    }

    fn push(&mut self, dir: &Path, entry: &Value) -> Result<(), String> {
        let text = entry.to_string();
        let first = self.out.is_none();
        if first {
            let path = dir.join(format!("{}_0.json", self.status));
            let file = File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            self.out = Some(BufWriter::new(file));
        }
        let sep = match (self.lines, first) {
            (true, true) => "",
            (true, false) => "\n",
            (false, true) => "[",
            (false, false) => ",",
        };
        let out = self.out.as_mut().ok_or("closed")?;
        out.write_all(sep.as_bytes())
            .and_then(|_| out.write_all(text.as_bytes()))
            .map_err(|e| e.to_string())?;
        self.size += (sep.len() + text.len()) as u64;
        Ok(())
    }

    /// Closes the array; the file's size, or `None` when it was not written.
    fn finish(&mut self) -> Result<Option<u64>, String> {
        let Some(mut out) = self.out.take() else {
            return Ok(None);
        };
        let end: &[u8] = if self.lines { b"\n" } else { b"]" };
        out.write_all(end)
            .and_then(|_| out.flush())
            .map_err(|e| e.to_string())?;
        out.get_ref().sync_all().map_err(|e| e.to_string())?;
        self.size += 1;
        Ok(Some(self.size))
    }
}

/// A child as the result files record it (DescribeExecution's fields).
fn describe(c: &ExecutionRecord) -> Value {
    let millis =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut out = Map::new();
    out.insert("ExecutionArn".into(), json!(c.arn));
    out.insert("Input".into(), json!(c.input));
    out.insert("InputDetails".into(), json!({"Included": true}));
    out.insert("Name".into(), json!(c.name));
    if let Some(output) = &c.output {
        out.insert("Output".into(), json!(output));
        out.insert("OutputDetails".into(), json!({"Included": true}));
    }
    out.insert("RedriveCount".into(), json!(c.redrive_count));
    out.insert("RedriveStatus".into(), json!("NOT_REDRIVABLE"));
    out.insert(
        "RedriveStatusReason".into(),
        json!("Execution is SUCCEEDED and cannot be redriven"),
    );
    if c.status != ExecutionStatus::Succeeded {
        out.insert("RedriveStatus".into(), json!("REDRIVABLE"));
        out.remove("RedriveStatusReason");
    }
    out.insert("StartDate".into(), json!(millis(c.start)));
    out.insert("StateMachineArn".into(), json!(c.state_machine_arn));
    out.insert("Status".into(), json!(c.status.as_str()));
    if let Some(stop) = c.stop {
        out.insert("StopDate".into(), json!(millis(stop)));
    }
    if let Some(error) = &c.error {
        out.insert("Error".into(), json!(error));
    }
    if let Some(cause) = &c.cause {
        out.insert("Cause".into(), json!(cause));
    }
    Value::Object(out)
}

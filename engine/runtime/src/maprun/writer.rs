//! ResultWriter: `arn:aws:states:::s3:putObject` to a mapped bucket, laid
//! out as AWS lays it out: `PREFIX/MAP_RUN_ID/manifest.json` and
//! `SUCCEEDED_0.json`, `FAILED_0.json`, `PENDING_0.json` (each written
//! only when it has entries), every entry a child execution as
//! DescribeExecution shows it (Input and Output as JSON text).
//!
//! Files are written only through [`crate::confined`]: a symbolic link
//! anywhere below the bucket's directory fails the write (and the Map Run,
//! with `States.ResultWriterFailed`) instead of being followed.
//!
//! The children are read back one at a time from the store and each file
//! is written as a stream, so the results of a large Map Run are never
//! held in memory.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use super::Buckets;
use crate::children::Children;
use crate::confined::{ConfinedError, Root};
use stepline_language::map_run::WriterSpec;
use stepline_store::{ExecutionRecord, ExecutionStatus, MapRunRecord};

/// Writes the results and answers the Map state's result:
/// `{"MapRunArn", "ResultWriterDetails": {"Bucket", "Key"}}`.
pub(crate) fn write(
    engine: &dyn Children,
    buckets: &Buckets,
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
    // Every file goes through `confined`: no symbolic link below the
    // bucket's directory is followed, and files are created new.
    let root = buckets
        .root(bucket)
        .map_err(|e| e.0)
        .and_then(|dir| Root::new(&dir).map_err(|e| e.to_string()))?;
    let cannot_write =
        |key: &str, e: ConfinedError| format!("Cannot write '{key}' in bucket '{bucket}': {e}");
    let manifest_key = format!("{base}/manifest.json");
    root.create_dirs(Path::new(&base))
        .map_err(|e| cannot_write(&base, e))?;

    let mut files = ["SUCCEEDED", "FAILED", "PENDING"]
        .map(|status| ResultFile::new(status, format!("{base}/{status}_0.json"), lines));
    for name in names {
        let child = engine
            .execution_by_name(child_machine_arn, &name)
            .map_err(|e| e.to_string())?;
        let Some(c) = child else { continue };
        let slot = match c.status {
            ExecutionStatus::Succeeded => 0,
            ExecutionStatus::Running => 2,
            _ => 1,
        };
        for entry in transformation.entries(&c) {
            files[slot]
                .push(&root, &entry)
                .map_err(|e| cannot_write(&files[slot].key, e))?;
        }
    }
    let mut listed = Map::new();
    let mut written = Vec::new();
    for file in &mut files {
        let entries = file.finish(&root).map_err(|e| cannot_write(&file.key, e))?;
        if entries.is_some() {
            written.push(root.path().join(&file.key));
        }
        let list: Vec<Value> = entries
            .map(|size| vec![json!({"Key": file.key, "Size": size})])
            .unwrap_or_default();
        listed.insert(file.status.to_owned(), Value::Array(list));
    }
    let manifest = json!({
        "DestinationBucket": bucket,
        "MapRunArn": record.map_run_arn,
        "ResultFiles": listed,
    });
    root.write(Path::new(&manifest_key), manifest.to_string().as_bytes())
        .map_err(|e| cannot_write(&manifest_key, e))?;
    written.push(root.path().join(&manifest_key));
    let now = engine.now();
    let records = written
        .iter()
        .filter_map(|path| {
            crate::lineage::record(
                &path.to_string_lossy(),
                &record.execution_arn,
                stepline_store::LineageKind::Wrote,
                "resultWriter",
                None,
                now,
            )
        })
        .collect();
    if let Err(e) = engine.record_lineage(records) {
        tracing::warn!(error = %e, "the ResultWriter's files could not be recorded");
    }
    Ok(json!({
        "MapRunArn": record.map_run_arn,
        "ResultWriterDetails": {"Bucket": bucket, "Key": manifest_key},
    }))
}

/// WriterConfig only: the entries the state's result is made of (no
/// file), in order; `None` when they pass the payload limit.
pub(crate) fn preview(
    engine: &dyn Children,
    spec: &WriterSpec,
    child_machine_arn: &str,
    names: impl Iterator<Item = String>,
) -> Result<Option<Vec<Value>>, String> {
    let transformation = Transformation::of(spec)?;
    let mut out = Vec::new();
    let mut bytes = 0;
    for name in names {
        let child = engine
            .execution_by_name(child_machine_arn, &name)
            .map_err(|e| e.to_string())?;
        for entry in child.iter().flat_map(|c| transformation.entries(c)) {
            bytes += entry.to_string().len() + 1;
            if bytes > stepline_language::payload::MAX_PAYLOAD_BYTES {
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

/// One `STATUS_0.json`: a JSON array (or JSON Lines) written entry by
/// entry to a new temporary file, renamed to its key when complete (a
/// redriven Map Run replaces the files of its first run).
struct ResultFile {
    status: &'static str,
    /// The key in the bucket, relative to its directory.
    key: String,
    lines: bool,
    out: Option<(BufWriter<File>, PathBuf)>,
    size: u64,
}

impl ResultFile {
    fn new(status: &'static str, key: String, lines: bool) -> Self {
        Self {
            status,
            key,
            lines,
            out: None,
            size: 0,
        }
    }

    fn push(&mut self, root: &Root, entry: &Value) -> Result<(), ConfinedError> {
        let text = entry.to_string();
        let first = self.out.is_none();
        let (out, temporary) = match &mut self.out {
            Some(open) => open,
            None => {
                let (file, temporary) = root.create_temporary(Path::new(&self.key))?;
                self.out.insert((BufWriter::new(file), temporary))
            }
        };
        let sep = match (self.lines, first) {
            (true, true) => "",
            (true, false) => "\n",
            (false, true) => "[",
            (false, false) => ",",
        };
        out.write_all(sep.as_bytes())
            .and_then(|_| out.write_all(text.as_bytes()))
            .map_err(|source| ConfinedError::Io {
                action: "write",
                path: temporary.clone(),
                source,
            })?;
        self.size += (sep.len() + text.len()) as u64;
        Ok(())
    }

    /// Closes the array and puts the file at its key; its size, or `None`
    /// when it was not written.
    fn finish(&mut self, root: &Root) -> Result<Option<u64>, ConfinedError> {
        let Some((mut out, temporary)) = self.out.take() else {
            return Ok(None);
        };
        let end: &[u8] = if self.lines { b"\n" } else { b"]" };
        let written = out
            .write_all(end)
            .and_then(|_| out.flush())
            .and_then(|_| out.get_ref().sync_all())
            .map_err(|source| ConfinedError::Io {
                action: "write",
                path: temporary.clone(),
                source,
            })
            .and_then(|()| root.replace_with(&temporary, Path::new(&self.key)));
        if written.is_err() {
            let _ = std::fs::remove_file(&temporary);
        }
        written?;
        self.size += 1;
        Ok(Some(self.size))
    }
}

impl Drop for ResultFile {
    /// A Map Run whose writing failed half way leaves no temporary file.
    fn drop(&mut self) {
        if let Some((_, temporary)) = self.out.take() {
            let _ = std::fs::remove_file(temporary);
        }
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

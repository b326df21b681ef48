//! Lineage: the files an execution read and wrote, recorded in the store
//! beside it (`LineageRecord`) so that a path leads to the execution that
//! wrote it and to those that read it.
//!
//! What is recorded, and where:
//! - files an execution's input names, through [`InputFiles`], the
//!   server's knowledge of what its triggers put in an input (a file
//!   trigger's file), with the start;
//! - the files a distributed Map's ItemReader reads and its ResultWriter
//!   writes, by the Map Run runner (`maprun/`);
//! - the files a task reports in its result: `"stepline:outputs"` (wrote)
//!   and `"stepline:inputs"` (read), arrays of absolute paths, with the
//!   TaskSucceeded they came with (`executor.rs`). A result served from
//!   the cache records nothing: the execution that stored it did.
//!
//! Paths are absolute and normalised lexically (`.` and `..` resolved
//! without reading the file system), so one file has one name here.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use stepline_store::{LineageKind, LineageRecord};

/// The field of a task's result that lists the files it wrote.
pub const OUTPUTS_FIELD: &str = "stepline:outputs";
/// The field of a task's result that lists the files it read.
pub const INPUTS_FIELD: &str = "stepline:inputs";
/// At most this many paths are taken from one result or one input.
pub const MAX_PATHS: usize = 1000;
/// A longer path is not recorded.
pub const MAX_PATH_BYTES: usize = 4096;

/// A file an execution's input says it reads, and how it came to be there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFile {
    pub path: String,
    /// `trigger`, `dataset`...
    pub via: String,
}

/// What [`InputFiles`] calls: the files an input names.
pub type FindInputFiles = dyn Fn(&Value) -> Vec<InputFile> + Send + Sync;

/// Finds the files an execution's input names: given by the server, which
/// knows what its triggers put in an input; the engine records them with
/// the start.
#[derive(Clone)]
pub struct InputFiles(pub Arc<FindInputFiles>);

impl std::fmt::Debug for InputFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InputFiles")
    }
}

/// `path` made absolute-and-clean, or `None` when it is not an absolute
/// path, is too long, or holds a NUL.
pub fn normalise(path: &str) -> Option<String> {
    if path.len() > MAX_PATH_BYTES || path.contains('\0') || !path.starts_with('/') {
        return None;
    }
    let mut clean = PathBuf::from("/");
    for component in Path::new(path).components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::ParentDir => {
                clean.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    clean.to_str().map(str::to_owned)
}

/// A record of `path`, normalised; `None` for a path that cannot be one.
pub fn record(
    path: &str,
    execution_arn: &str,
    kind: LineageKind,
    via: &str,
    state_name: Option<&str>,
    time: DateTime<Utc>,
) -> Option<LineageRecord> {
    Some(LineageRecord {
        path: normalise(path)?,
        execution_arn: execution_arn.to_owned(),
        kind,
        via: via.to_owned(),
        state_name: state_name.map(str::to_owned),
        time,
    })
}

/// The files a task's result reports (`stepline:outputs`,
/// `stepline:inputs`): each an absolute path, as a string or as an object
/// with a `path` string. Anything else in those fields is ignored.
pub fn reported(
    execution_arn: &str,
    state_name: &str,
    output: &Value,
    time: DateTime<Utc>,
) -> Vec<LineageRecord> {
    let mut out = Vec::new();
    for (field, kind) in [
        (OUTPUTS_FIELD, LineageKind::Wrote),
        (INPUTS_FIELD, LineageKind::Read),
    ] {
        let Some(Value::Array(items)) = output.get(field) else {
            continue;
        };
        for item in items.iter().take(MAX_PATHS) {
            let path = match item {
                Value::String(p) => p.as_str(),
                Value::Object(o) => match o.get("path") {
                    Some(Value::String(p)) => p.as_str(),
                    _ => continue,
                },
                _ => continue,
            };
            out.extend(record(
                path,
                execution_arn,
                kind,
                "task",
                Some(state_name),
                time,
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_are_absolute_and_clean() {
        assert_eq!(normalise("/a/./b/../c//d").as_deref(), Some("/a/c/d"));
        assert_eq!(normalise("/../x").as_deref(), Some("/x"));
        assert_eq!(normalise("relative/x"), None);
        assert_eq!(normalise("s3://bucket/key"), None);
        assert_eq!(normalise(&format!("/{}", "a".repeat(MAX_PATH_BYTES))), None);
    }

    #[test]
    fn a_result_reports_what_it_wrote_and_read() {
        let t = DateTime::<Utc>::from_timestamp(0, 0).unwrap();
        let output = json!({
            "rows": 3,
            "stepline:outputs": ["/data/out/a.csv", {"path": "/data/out/b.csv"}, 7, "rel"],
            "stepline:inputs": ["/data/in/raw.csv"],
        });
        let records = reported("arn:e", "Load", &output, t);
        let seen: Vec<(&str, LineageKind)> =
            records.iter().map(|r| (r.path.as_str(), r.kind)).collect();
        assert_eq!(
            seen,
            [
                ("/data/out/a.csv", LineageKind::Wrote),
                ("/data/out/b.csv", LineageKind::Wrote),
                ("/data/in/raw.csv", LineageKind::Read),
            ]
        );
        assert_eq!(records[0].state_name.as_deref(), Some("Load"));
        assert_eq!(records[0].via, "task");
        assert!(reported("arn:e", "Load", &json!([1]), t).is_empty());
    }
}

//! What the server knows of lineage that the engine does not: which files
//! an execution's input names because a trigger put them there. A file
//! trigger's event (`{"trigger", "kind": "file", "path", ...}`, see
//! docs/triggers.md) names the file that started the execution, a dataset
//! trigger's (`{"trigger", "kind": "dataset", "files": [...], ...}`) the
//! period's files; given as the execution's input (no input template, or
//! one that keeps these fields), they are recorded as read by the
//! execution.

use std::sync::Arc;

use serde_json::Value;
use stepline_runtime::lineage::{InputFile, InputFiles};

/// The engine's [`InputFiles`] for this server's triggers.
pub fn input_files() -> InputFiles {
    InputFiles(Arc::new(files_in_input))
}

fn files_in_input(input: &Value) -> Vec<InputFile> {
    if !matches!(input.get("trigger"), Some(Value::String(_))) {
        return Vec::new();
    }
    match input.get("kind").and_then(Value::as_str) {
        Some("file") => input
            .get("path")
            .and_then(Value::as_str)
            .map(|path| InputFile {
                path: path.to_owned(),
                via: "trigger".into(),
            })
            .into_iter()
            .collect(),
        Some("dataset") => input
            .get("files")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .filter_map(Value::as_str)
            .map(|path| InputFile {
                path: path.to_owned(),
                via: "dataset".into(),
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_file_trigger_event_names_its_file() {
        let event = json!({"trigger": "inbox", "kind": "file", "path": "/data/in/a.csv",
                           "name": "a.csv", "size": 3, "modified": "2026-01-01T00:00:00Z"});
        assert_eq!(
            files_in_input(&event),
            vec![InputFile {
                path: "/data/in/a.csv".into(),
                via: "trigger".into()
            }]
        );
        let period = json!({"trigger": "daily", "kind": "dataset", "period": "20261207",
                            "periodStart": "2026-12-07T00:00:00Z",
                            "files": ["/data/2026-12-07/a.csv", "/data/2026-12-07/b.csv"]});
        assert_eq!(
            files_in_input(&period),
            vec![
                InputFile {
                    path: "/data/2026-12-07/a.csv".into(),
                    via: "dataset".into()
                },
                InputFile {
                    path: "/data/2026-12-07/b.csv".into(),
                    via: "dataset".into()
                }
            ]
        );
        for other in [
            json!({"trigger": "nightly", "kind": "schedule", "scheduledTime": "x"}),
            json!({"kind": "file", "path": "/x"}),
            json!([1]),
        ] {
            assert!(files_in_input(&other).is_empty(), "{other}");
        }
    }
}

//! `--input`: the one way every command takes an execution input
//! (`run`, `start`, `executions start`): JSON text, `@FILE` to read a file,
//! or `-` to read standard input. Bounded to the payload limit (256 KiB,
//! as AWS) and checked to be JSON here, so that a typo is told with its
//! position before anything runs or any request is sent.
//!
//! The three cannot be confused: JSON text never starts with `@`, and `-`
//! alone is not JSON.

use std::io::Read;
use std::path::Path;

use stepline_language::payload::MAX_PAYLOAD_BYTES;

use super::client::{ClientError, read_bounded};

/// What `--input` says in `--help`.
pub const HELP: &str = "The execution input: JSON text, @FILE to read a file, or - to read standard input [default: {}]";

/// The input text `arg` gives, checked to be JSON.
pub fn read(arg: &str) -> Result<String, ClientError> {
    read_from(arg, &mut std::io::stdin().lock())
}

/// [`read`], with standard input given (tests).
pub fn read_from(arg: &str, stdin: &mut dyn Read) -> Result<String, ClientError> {
    let limit = MAX_PAYLOAD_BYTES as u64;
    let (text, origin) = if arg == "-" {
        let mut text = String::new();
        stdin
            .take(limit + 1)
            .read_to_string(&mut text)
            .map_err(|e| ClientError::usage(format!("cannot read the input from stdin: {e}")))?;
        if text.len() as u64 > limit {
            return Err(ClientError::usage(format!(
                "the input on stdin is larger than {limit} bytes (256 KiB), the limit for an input"
            )));
        }
        (text, "stdin".to_owned())
    } else if let Some(file) = arg.strip_prefix('@') {
        (
            read_bounded(Path::new(file), limit, "an input (256 KiB)")?,
            file.to_owned(),
        )
    } else {
        if arg.len() as u64 > limit {
            return Err(ClientError::usage(format!(
                "the input is larger than {limit} bytes (256 KiB), the limit for an input"
            )));
        }
        (arg.to_owned(), "--input".to_owned())
    };
    if let Err(e) = serde_json::from_str::<serde_json::Value>(&text) {
        return Err(ClientError::usage(format!(
            "the input ({origin}) is not JSON: {e}"
        )));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_with(arg: &str, stdin: &str) -> Result<String, String> {
        read_from(arg, &mut stdin.as_bytes()).map_err(|e| e.to_string())
    }

    #[test]
    fn text_files_and_stdin_are_one_parser() {
        assert_eq!(read_with(r#"{"a": 1}"#, "").as_deref(), Ok(r#"{"a": 1}"#));
        assert_eq!(read_with("-", "[1, 2]\n").as_deref(), Ok("[1, 2]\n"));
        let dir = std::env::temp_dir().join(format!("stepline-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("input.json");
        std::fs::write(&file, "\"text\"").expect("write");
        assert_eq!(
            read_with(&format!("@{}", file.display()), "").as_deref(),
            Ok("\"text\"")
        );
        std::fs::remove_dir_all(&dir).expect("clean");

        let bad = read_with("{\"a\": ", "").expect_err("not JSON");
        assert!(bad.starts_with("the input (--input) is not JSON"), "{bad}");
        let bad = read_with("-", "nope").expect_err("not JSON");
        assert!(bad.starts_with("the input (stdin) is not JSON"), "{bad}");
        let bad = read_with("@/nonexistent.json", "").expect_err("no file");
        assert!(bad.contains("cannot read /nonexistent.json"), "{bad}");
        let huge = format!("\"{}\"", "x".repeat(MAX_PAYLOAD_BYTES));
        assert!(read_with("-", &huge).is_err());
        assert!(read_with(&huge, "").is_err());
    }
}

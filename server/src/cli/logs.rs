//! `stepline logs EXEC`: what an execution's process tasks wrote, per
//! attempt, from a running server (`GET /v1/executions/{machine}/{name}/logs`).
//!
//! EXEC is `MACHINE/NAME` (the REST id) or an execution ARN. Human output
//! is one block per attempt; `--output json` prints the server's answer.

use std::io::Write;

use serde_json::Value;

use super::EXIT_USAGE;

/// The server when neither `--endpoint` nor STEPLINE_ENDPOINT says.
const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:8083";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The execution: MACHINE/NAME or its ARN.
    execution: String,
    /// The server's address [default: $STEPLINE_ENDPOINT, else http://127.0.0.1:8083].
    #[arg(long)]
    endpoint: Option<String>,
    /// `human` (a block per attempt) or `json` (the API's answer).
    #[arg(long, value_enum, default_value_t = Output::Human)]
    output: Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Output {
    Human,
    Json,
}

/// `MACHINE/NAME` from either spelling of an execution.
fn execution_id(text: &str) -> Result<(String, String), String> {
    let parts: Vec<&str> = match text.strip_prefix("arn:") {
        // arn:aws:states:REGION:ACCOUNT:execution:MACHINE:NAME
        Some(_) => {
            let fields: Vec<&str> = text.split(':').collect();
            if fields.len() != 8 || fields[5] != "execution" {
                return Err(format!("'{text}' is not an execution ARN"));
            }
            vec![fields[6], fields[7]]
        }
        None => text.split('/').collect(),
    };
    match parts.as_slice() {
        [machine, name] if !machine.is_empty() && !name.is_empty() => {
            Ok(((*machine).to_owned(), (*name).to_owned()))
        }
        _ => Err(format!(
            "'{text}' is not an execution: give MACHINE/NAME or its ARN"
        )),
    }
}

/// A path segment with everything but unreserved characters escaped.
fn segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn run(args: &Args, stdout: &mut dyn Write, stderr: &mut dyn Write) -> u8 {
    let (machine, name) = match execution_id(&args.execution) {
        Ok(id) => id,
        Err(e) => {
            let _ = writeln!(stderr, "stepline logs: {e}");
            return EXIT_USAGE;
        }
    };
    let endpoint = args
        .endpoint
        .clone()
        .or_else(|| std::env::var("STEPLINE_ENDPOINT").ok())
        .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned());
    let url = format!(
        "{}/v1/executions/{}/{}/logs",
        endpoint.trim_end_matches('/'),
        segment(&machine),
        segment(&name)
    );
    let answer = match fetch(&url, &endpoint) {
        Ok(answer) => answer,
        Err(e) => {
            let _ = writeln!(stderr, "stepline logs: {e}");
            return 1;
        }
    };
    match args.output {
        Output::Json => {
            let _ = writeln!(stdout, "{answer:#}");
        }
        Output::Human => human(&answer, stdout),
    }
    0
}

fn fetch(url: &str, endpoint: &str) -> Result<Value, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async {
        let response = reqwest::Client::new()
            .get(url)
            .timeout(std::time::Duration::from_secs(60))
            .send()
            .await
            .map_err(|e| format!("cannot reach {endpoint}: {e}"))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| format!("cannot read the server's answer: {e}"))?;
        let body: Value = serde_json::from_str(&text)
            .map_err(|_| format!("the server answered {status}: {}", text.trim()))?;
        if !status.is_success() {
            let message = body["message"].as_str().unwrap_or(text.trim());
            return Err(format!("{message} ({status})"));
        }
        Ok(body)
    })
}

/// One block per attempt: a header line, then stderr (and stdout).
fn human(answer: &Value, out: &mut dyn Write) {
    let attempts = answer["attempts"].as_array().map_or(&[][..], Vec::as_slice);
    if attempts.is_empty() {
        let _ = writeln!(out, "no task output kept for this execution");
        return;
    }
    for a in attempts {
        let mut header = format!(
            "== {} attempt {} (task {}) {}",
            a["stateName"].as_str().unwrap_or_default(),
            a["attempt"],
            a["taskId"],
            a["outcome"].as_str().unwrap_or_default()
        );
        if let Some(error) = a["error"].as_str() {
            header.push_str(&format!(" {error}"));
        }
        header.push_str(&format!(" at {}", a["time"].as_str().unwrap_or_default()));
        if a["truncated"] == Value::Bool(true) {
            header.push_str(" (truncated: the last 64 KiB kept)");
        }
        let _ = writeln!(out, "{header}");
        for stream in ["stderr", "stdout"] {
            if let Some(text) = a[stream].as_str() {
                if text.is_empty() {
                    continue;
                }
                let _ = writeln!(out, "-- {stream}");
                let _ = write!(out, "{text}");
                if !text.ends_with('\n') {
                    let _ = writeln!(out);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executions_are_named_either_way() {
        assert_eq!(
            execution_id("flow/run-1").unwrap(),
            ("flow".into(), "run-1".into())
        );
        assert_eq!(
            execution_id("arn:aws:states:us-east-1:111111111111:execution:flow:run-1").unwrap(),
            ("flow".into(), "run-1".into())
        );
        assert!(execution_id("flow").is_err());
        assert!(execution_id("arn:aws:states:us-east-1:1:stateMachine:flow").is_err());
        assert_eq!(segment("a b/c"), "a%20b%2Fc");
    }
}

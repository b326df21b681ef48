//! `stepline logs EXEC`: what an execution's process tasks wrote, per
//! attempt, from a running server (`GET /v1/executions/{machine}/{name}/logs`).
//!
//! EXEC is `MACHINE/NAME` (the REST id) or an execution ARN. Human output
//! is one block per attempt; `--output json` prints the server's answer.

use std::io::Write;

use serde_json::Value;

use super::EXIT_USAGE;
use super::client::{DEFAULT_ENDPOINT, ExecutionId};

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

pub fn run(args: &Args, stdout: &mut dyn Write, stderr: &mut dyn Write) -> u8 {
    let id = match ExecutionId::parse(&args.execution) {
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
    let url = format!("{}{}/logs", endpoint.trim_end_matches('/'), id.path());
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

//! `stepline logs EXEC`: what an execution's process tasks wrote, per
//! attempt, from a running server (`GET /v1/executions/{machine}/{name}/logs`),
//! through the shared client (so it sends `$STEPLINE_TOKEN` and fails as
//! every client command fails).
//!
//! EXEC is `MACHINE/NAME` (the REST id) or an execution ARN. Text output
//! is one block per attempt; `-o json` prints the server's answer.

use std::io::Write;

use serde_json::Value;

use super::client::{Api, ClientError, ExecutionId, Remote, finish, print_json};
use super::render::Zone;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The execution: MACHINE/NAME or its ARN.
    execution: String,
    #[command(flatten)]
    remote: Remote,
}

pub fn run(args: &Args, stdout: &mut dyn Write, stderr: &mut dyn Write) -> u8 {
    let result = execute(args, stdout).map(|()| 0);
    finish("logs", result, stderr)
}

fn execute(args: &Args, out: &mut dyn Write) -> Result<(), ClientError> {
    let id = ExecutionId::parse(&args.execution)?;
    let api = Api::new(&args.remote)?;
    let answer = api.get(&format!("{}/logs", id.path()))?;
    if args.remote.present.json() {
        print_json(out, &answer);
    } else {
        text(&answer, args.remote.present.zone(), out);
    }
    Ok(())
}

/// One block per attempt: a header line, then stderr (and stdout).
fn text(answer: &Value, zone: Zone, out: &mut dyn Write) {
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
        header.push_str(&format!(" at {}", zone.date_time_of(&a["time"])));
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

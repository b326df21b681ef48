//! `stepline backfill TRIGGER --from T1 --to T2`: starts one execution per
//! slot of a schedule trigger in `[T1, T2]`, like Airflow's backfill.
//!
//! It goes through a running server's REST API
//! (`POST /v1/triggers/{name}/backfill`) rather than the data directory:
//! the server holds the directory's lock while it runs, and its engine is
//! what runs the executions. Slots already started (by the schedule or an
//! earlier backfill) have the same execution names and are counted as
//! existing, never started twice.

use std::io::Write;
use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use super::client::{Api, Body, ClientError, Output, Remote, finish, print_json};
use crate::rest::encode_segment;

/// A backfill of many slots starts every execution before it answers.
const BACKFILL_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The schedule trigger's name.
    trigger: String,
    /// The first time (RFC 3339, like 2026-01-01T00:00:00Z); a slot at it is included.
    #[arg(long)]
    from: String,
    /// The last time (RFC 3339); a slot at it is included.
    #[arg(long)]
    to: String,
    #[command(flatten)]
    remote: Remote,
}

fn time(text: &str, what: &str) -> Result<String, ClientError> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        })
        .map_err(|e| {
            ClientError::usage(format!(
                "--{what} '{text}' is not an RFC 3339 time (like 2026-01-01T00:00:00Z): {e}"
            ))
        })
}

pub fn run(args: &Args, stdout: &mut dyn Write, stderr: &mut dyn Write) -> u8 {
    let result = execute(args, stdout, stderr);
    finish("backfill", result, stderr)
}

fn execute(args: &Args, out: &mut dyn Write, err: &mut dyn Write) -> Result<u8, ClientError> {
    let from = time(&args.from, "from")?;
    let to = time(&args.to, "to")?;
    let api = Api::new(&args.remote)?;
    let path = format!("/v1/triggers/{}/backfill", encode_segment(&args.trigger));
    let request = json!({"from": from, "to": to}).to_string();
    let body = api.send_waiting(Method::POST, &path, Body::Json(&request), BACKFILL_TIMEOUT)?;
    if args.remote.output == Output::Json {
        print_json(out, &body);
    } else {
        let _ = writeln!(
            out,
            "{}: {} slot(s) from {} to {}: {} started, {} already started",
            args.trigger, body["slots"], from, to, body["started"], body["existing"]
        );
    }
    // Slots that could not start: each told, and the exit status says so.
    let errors = body["errors"].as_array().cloned().unwrap_or_default();
    for e in &errors {
        let _ = writeln!(err, "stepline backfill: {}", e.as_str().unwrap_or_default());
    }
    Ok(if errors.is_empty() { 0 } else { 1 })
}

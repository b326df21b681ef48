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

use serde_json::{Value, json};

use super::EXIT_USAGE;

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
    /// The server's address [default: http://127.0.0.1:8083].
    #[arg(long, default_value = "http://127.0.0.1:8083")]
    endpoint: String,
}

fn time(text: &str, what: &str) -> Result<String, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        })
        .map_err(|e| {
            format!("--{what} '{text}' is not an RFC 3339 time (like 2026-01-01T00:00:00Z): {e}")
        })
}

pub fn run(args: &Args, stdout: &mut dyn Write, stderr: &mut dyn Write) -> u8 {
    let (from, to) = match (time(&args.from, "from"), time(&args.to, "to")) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(e), _) | (_, Err(e)) => {
            let _ = writeln!(stderr, "stepline backfill: {e}");
            return EXIT_USAGE;
        }
    };
    let url = format!(
        "{}/v1/triggers/{}/backfill",
        args.endpoint.trim_end_matches('/'),
        args.trigger
    );
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(stderr, "stepline backfill: cannot start the runtime: {e}");
            return 1;
        }
    };
    let answer = runtime.block_on(async {
        let client = reqwest::Client::new();
        let response = client
            .post(&url)
            .header("content-type", "application/json")
            .body(json!({"from": from, "to": to}).to_string())
            .timeout(std::time::Duration::from_secs(600))
            .send()
            .await
            .map_err(|e| format!("cannot reach {}: {e}", args.endpoint))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| format!("cannot read the server's answer: {e}"))?;
        let body: Value = serde_json::from_str(&text)
            .map_err(|e| format!("the server's answer is not JSON: {e}"))?;
        Ok::<_, String>((status, body))
    });
    match answer {
        Ok((status, body)) if status.is_success() => {
            let _ = writeln!(
                stdout,
                "{}: {} slot(s) from {} to {}: {} started, {} already started",
                args.trigger, body["slots"], from, to, body["started"], body["existing"]
            );
            let errors = body["errors"].as_array().cloned().unwrap_or_default();
            for e in &errors {
                let _ = writeln!(
                    stderr,
                    "stepline backfill: {}",
                    e.as_str().unwrap_or_default()
                );
            }
            if errors.is_empty() { 0 } else { 1 }
        }
        Ok((_, body)) => {
            let _ = writeln!(
                stderr,
                "stepline backfill: {}: {}",
                body["code"].as_str().unwrap_or("error"),
                body["message"].as_str().unwrap_or_default()
            );
            1
        }
        Err(e) => {
            let _ = writeln!(stderr, "stepline backfill: {e}");
            1
        }
    }
}

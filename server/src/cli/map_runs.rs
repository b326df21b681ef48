//! `stepline map-runs list EXEC` and `stepline map-runs show MAPRUN`: the
//! Map Runs of distributed Map states (`/v1/executions/.../map-runs`,
//! `/v1/map-runs/...`). A Map Run is named as `map-runs list` shows it,
//! `MACHINE/LABEL:ID`, or by its ARN.

use std::io::Write;

use serde_json::{Value, json};

use super::client::{Api, ClientError, ExecutionId, Remote, finish, print_json};
use super::render::{self, Cell, Style, Zone};
use crate::rest::encode_segment;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    remote: Remote,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// An execution's Map Runs, oldest first.
    List {
        /// MACHINE/NAME, or the execution's ARN.
        execution: String,
    },
    /// One Map Run: status, limits, items and child executions by status.
    Show {
        /// MACHINE/LABEL:ID (as `map-runs list` shows it), or the Map Run's ARN.
        map_run: String,
    },
}

pub fn run(args: &Args, stdout: &mut dyn Write, stderr: &mut dyn Write) -> u8 {
    let result = execute(args, stdout).map(|()| 0);
    finish("map-runs", result, stderr)
}

/// `/v1/map-runs/MACHINE/LABEL:ID` from an id or an ARN
/// (`arn:aws:states:REGION:ACCOUNT:mapRun:MACHINE/LABEL:ID`).
fn map_run_path(text: &str) -> Result<String, ClientError> {
    let id = match text.split_once(":mapRun:") {
        Some((head, id)) if head.starts_with("arn:") => id,
        _ => text,
    };
    match id.split_once('/') {
        Some((machine, run)) if !machine.is_empty() && run.contains(':') && !run.contains('/') => {
            Ok(format!(
                "/v1/map-runs/{}/{}",
                encode_segment(machine),
                encode_segment(run)
            ))
        }
        _ => Err(ClientError::usage(format!(
            "'{text}' is not a Map Run: write MACHINE/LABEL:ID (as `stepline map-runs list` shows it) or the Map Run's ARN"
        ))),
    }
}

fn execute(args: &Args, out: &mut dyn Write) -> Result<(), ClientError> {
    let json = args.remote.present.json();
    let zone = args.remote.present.zone();
    let style = Style::for_stdout();
    match &args.command {
        Command::List { execution } => {
            let id = ExecutionId::parse(execution)?;
            let api = Api::new(&args.remote)?;
            let answer = api.get(&format!("{}/map-runs", id.path()))?;
            let runs = answer["mapRuns"].as_array().cloned().unwrap_or_default();
            if json {
                print_json(out, &json!({"mapRuns": runs}));
            } else if runs.is_empty() {
                let _ = writeln!(out, "no Map Runs in {id}");
            } else {
                let now = chrono::Utc::now();
                let rows: Vec<Vec<Cell>> = runs
                    .iter()
                    .map(|r| {
                        let status = r["status"].as_str().unwrap_or("");
                        vec![
                            Cell::plain(r["id"].as_str().unwrap_or("")),
                            Cell::toned(status, render::status_tone(status)),
                            Cell::plain(zone.date_time_of(&r["startDate"])),
                            Cell::plain(render::execution_duration(r, now)),
                            Cell::plain(items(&r["itemCounts"])),
                        ]
                    })
                    .collect();
                render::table(
                    out,
                    style,
                    &["MAP RUN", "STATUS", "STARTED", "DURATION", "ITEMS"],
                    &rows,
                );
            }
        }
        Command::Show { map_run } => {
            let path = map_run_path(map_run)?;
            let api = Api::new(&args.remote)?;
            let run = api.get(&path)?;
            if json {
                print_json(out, &run);
            } else {
                show(out, style, zone, &run);
            }
        }
    }
    Ok(())
}

/// `12/40 succeeded, 1 failed`: how far the items are.
fn items(counts: &Value) -> String {
    let n = |key: &str| counts[key].as_u64().unwrap_or(0);
    let mut text = format!("{}/{} succeeded", n("succeeded"), n("total"));
    for (key, word) in [
        ("failed", "failed"),
        ("timedOut", "timed out"),
        ("aborted", "aborted"),
        ("running", "running"),
    ] {
        if n(key) > 0 {
            text.push_str(&format!(", {} {word}", n(key)));
        }
    }
    text
}

fn show(out: &mut dyn Write, style: Style, zone: Zone, r: &Value) {
    let text = |key: &str| r[key].as_str().unwrap_or("").to_owned();
    let status = text("status");
    let mut rows = vec![
        ("map run", text("id")),
        ("arn", text("arn")),
        ("execution", text("execution")),
        ("status", style.paint(render::status_tone(&status), &status)),
        ("started", zone.date_time_of(&r["startDate"])),
    ];
    if r.get("stopDate").is_some() {
        rows.push(("stopped", zone.date_time_of(&r["stopDate"])));
    }
    rows.push((
        "duration",
        render::execution_duration(r, chrono::Utc::now()),
    ));
    rows.push(("concurrency", r["maxConcurrency"].to_string()));
    if let Some(p) = r.get("toleratedFailurePercentage") {
        rows.push(("tolerated %", p.to_string()));
    }
    if let Some(n) = r.get("toleratedFailureCount") {
        rows.push(("tolerated", n.to_string()));
    }
    rows.push(("items", items(&r["itemCounts"])));
    rows.push(("executions", items(&r["executionCounts"])));
    render::fields(out, style, &rows);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_runs_are_named_by_id_or_arn() {
        assert_eq!(
            map_run_path("orders/Each:0b6a").expect("id"),
            "/v1/map-runs/orders/Each%3A0b6a"
        );
        assert_eq!(
            map_run_path("arn:aws:states:us-east-1:1:mapRun:orders/Each Item:0b6a").expect("arn"),
            "/v1/map-runs/orders/Each%20Item%3A0b6a"
        );
        for bad in ["orders", "orders/Each", "a/b/c:1", "/x:1"] {
            assert!(map_run_path(bad).is_err(), "{bad}");
        }
    }
}

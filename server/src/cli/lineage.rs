//! `stepline lineage PATH`: which execution wrote a file and which read
//! it; `stepline lineage --execution EXEC`: what one execution read and
//! wrote. Clients of `GET /v1/lineage?path=` and
//! `GET /v1/executions/{machine}/{name}/lineage` through the shared
//! client. A relative PATH is taken from the current directory (the
//! server records absolute paths). Text output is a table, newest
//! questions first; `-o json` prints the server's answer.

use std::io::Write;

use serde_json::Value;

use super::client::{Api, ClientError, ExecutionId, Remote, finish, print_json};
use super::render::{self, Cell, Style, Zone};
use crate::rest::encode_segment;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The file (absolute, or relative to the current directory).
    #[arg(required_unless_present = "execution", conflicts_with = "execution")]
    path: Option<std::path::PathBuf>,
    /// An execution (MACHINE/NAME or its ARN): the files it read and wrote.
    #[arg(long, value_name = "EXEC")]
    execution: Option<String>,
    #[command(flatten)]
    remote: Remote,
}

pub fn run(args: &Args, stdout: &mut dyn Write, stderr: &mut dyn Write) -> u8 {
    let result = execute(args, stdout).map(|()| 0);
    finish("lineage", result, stderr)
}

fn execute(args: &Args, out: &mut dyn Write) -> Result<(), ClientError> {
    let json = args.remote.present.json();
    let zone = args.remote.present.zone();
    let style = Style::for_stdout();
    if let Some(execution) = &args.execution {
        let id = ExecutionId::parse(execution)?;
        let api = Api::new(&args.remote)?;
        let answer = api.get(&format!("{}/lineage", id.path()))?;
        if json {
            print_json(out, &answer);
            return Ok(());
        }
        let rows = rows(
            &answer,
            &[("read", "READ"), ("wrote", "WROTE")],
            "path",
            zone,
        );
        if rows.is_empty() {
            let _ = writeln!(out, "no files recorded for {id}");
        } else {
            render::table(out, style, &["", "PATH", "VIA", "STATE", "TIME"], &rows);
        }
        return Ok(());
    }
    let Some(path) = &args.path else {
        return Ok(());
    };
    let absolute = if path.is_absolute() {
        path.clone()
    } else {
        std::env::current_dir()
            .map(|dir| dir.join(path))
            .unwrap_or_else(|_| path.clone())
    };
    let text = absolute.to_string_lossy();
    let api = Api::new(&args.remote)?;
    let answer = api.get(&format!("/v1/lineage?path={}", encode_segment(&text)))?;
    if json {
        print_json(out, &answer);
        return Ok(());
    }
    let rows = rows(
        &answer,
        &[("writtenBy", "WROTE"), ("readBy", "READ")],
        "executionArn",
        zone,
    );
    if rows.is_empty() {
        let _ = writeln!(
            out,
            "no execution recorded reading or writing {}",
            answer["path"].as_str().unwrap_or(&text)
        );
    } else {
        render::table(
            out,
            style,
            &["", "EXECUTION", "VIA", "STATE", "TIME"],
            &rows,
        );
    }
    Ok(())
}

/// One row per record: what it did, whom (an execution as MACHINE/NAME,
/// or a path), how, in which state, when.
fn rows(answer: &Value, lists: &[(&str, &str)], what: &str, zone: Zone) -> Vec<Vec<Cell>> {
    let mut rows = Vec::new();
    for (list, label) in lists {
        for r in answer[*list].as_array().map_or(&[][..], Vec::as_slice) {
            let subject = r[what].as_str().unwrap_or_default();
            let subject = if what == "executionArn" {
                execution_id(subject)
            } else {
                subject.to_owned()
            };
            rows.push(vec![
                Cell::plain(*label),
                Cell::plain(subject),
                Cell::plain(r["via"].as_str().unwrap_or_default()),
                Cell::plain(r["stateName"].as_str().unwrap_or("-")),
                Cell::plain(zone.date_time_of(&r["time"])),
            ]);
        }
    }
    rows
}

/// `MACHINE/NAME` of an execution ARN (the ARN itself when it is not one).
fn execution_id(arn: &str) -> String {
    match arn.split_once(":execution:") {
        Some((_, rest)) => match rest.split_once(':') {
            Some((machine, name)) => format!("{machine}/{name}"),
            None => arn.to_owned(),
        },
        None => arn.to_owned(),
    }
}

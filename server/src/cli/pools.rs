//! `stepline pools`: the pools of slots of a running server
//! (`GET /v1/pools`): each pool's slots and slots in use, then the tasks
//! holding a slot and those waiting for one, oldest first.

use std::io::Write;

use serde_json::{Value, json};

use super::client::{Api, ClientError, Remote, finish, print_json};
use super::render::{self, Cell, Style, Tone};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    remote: Remote,
}

pub fn run(args: &Args, stdout: &mut dyn Write, stderr: &mut dyn Write) -> u8 {
    let result = execute(args, stdout).map(|()| 0);
    finish("pools", result, stderr)
}

fn execute(args: &Args, out: &mut dyn Write) -> Result<(), ClientError> {
    let api = Api::new(&args.remote)?;
    let answer = api.get("/v1/pools")?;
    let pools = answer["pools"].as_array().cloned().unwrap_or_default();
    if args.remote.present.json() {
        print_json(out, &json!({"pools": pools}));
        return Ok(());
    }
    if pools.is_empty() {
        let _ = writeln!(out, "no pools");
        return Ok(());
    }
    let style = Style::for_stdout();
    let rows: Vec<Vec<Cell>> = pools
        .iter()
        .map(|p| {
            let waiting = p["waiting"].as_array().map_or(0, Vec::len);
            vec![
                Cell::plain(p["name"].as_str().unwrap_or("")),
                Cell::plain(p["slots"].to_string()),
                Cell::plain(p["inUse"].to_string()),
                if waiting > 0 {
                    Cell::toned(waiting.to_string(), Tone::Warn)
                } else {
                    Cell::plain("0")
                },
            ]
        })
        .collect();
    render::table(out, style, &["POOL", "SLOTS", "IN USE", "WAITING"], &rows);
    // The tasks behind the figures: which state of which execution holds
    // or waits for which pool's slot.
    let zone = args.remote.present.zone();
    let tasks: Vec<Vec<Cell>> = pools
        .iter()
        .flat_map(|p| {
            let name = p["name"].as_str().unwrap_or("").to_owned();
            let listed = |key: &str, what: &'static str| -> Vec<(String, &'static str, Value)> {
                p[key]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|t| (name.clone(), what, t.clone()))
                    .collect()
            };
            let mut all = listed("holders", "holds");
            all.extend(listed("waiting", "waits"));
            all
        })
        .map(|(pool, what, t)| {
            vec![
                Cell::plain(pool),
                if what == "waits" {
                    Cell::toned(what, Tone::Warn)
                } else {
                    Cell::plain(what)
                },
                Cell::plain(zone.date_time_of(&t["since"])),
                Cell::plain(t["stateName"].as_str().unwrap_or("")),
                Cell::plain(t["executionArn"].as_str().unwrap_or("")),
            ]
        })
        .collect();
    if !tasks.is_empty() {
        let _ = writeln!(out);
        render::table(
            out,
            style,
            &["POOL", "TASK", "SINCE", "STATE", "EXECUTION"],
            &tasks,
        );
    }
    Ok(())
}

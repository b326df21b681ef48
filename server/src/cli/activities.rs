//! `stepline activities list`: the activities of a running server
//! (`GET /v1/activities`), which remote workers poll through the AWS
//! dialect's GetActivityTask.

use std::io::Write;

use serde_json::json;

use super::client::{Api, ClientError, Remote, finish, print_json};
use super::render::{self, Cell, Style};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    remote: Remote,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Every activity, by name.
    List,
}

pub fn run(args: &Args, stdout: &mut dyn Write, stderr: &mut dyn Write) -> u8 {
    let result = execute(args, stdout).map(|()| 0);
    finish("activities", result, stderr)
}

fn execute(args: &Args, out: &mut dyn Write) -> Result<(), ClientError> {
    let Command::List = args.command;
    let api = Api::new(&args.remote)?;
    let answer = api.get("/v1/activities")?;
    let activities = answer["activities"].as_array().cloned().unwrap_or_default();
    if args.remote.present.json() {
        print_json(out, &json!({"activities": activities}));
    } else if activities.is_empty() {
        let _ = writeln!(out, "no activities");
    } else {
        let zone = args.remote.present.zone();
        let rows: Vec<Vec<Cell>> = activities
            .iter()
            .map(|a| {
                vec![
                    Cell::plain(a["name"].as_str().unwrap_or("")),
                    Cell::plain(zone.date_time_of(&a["creationDate"])),
                    Cell::plain(a["arn"].as_str().unwrap_or("")),
                ]
            })
            .collect();
        render::table(out, Style::for_stdout(), &["NAME", "CREATED", "ARN"], &rows);
    }
    Ok(())
}

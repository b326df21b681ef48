//! Command-line parsing and dispatch. Each subcommand lives in its own
//! module with its own arguments struct and `run`.
//!
//! Two kinds of command: those that work on files and the data directory
//! (`validate`, `run`, `serve`, `store check` and `store restore`), and
//! clients of a running server's REST API (`machines`, `executions`
//! (and its short forms `start` and `stop`), `history`, `logs`, `lineage`,
//! `triggers`, `map-runs`, `activities`, `pools`, `store backup` and `graph NAME`),
//! which share `client` (endpoint, `-o`, `--utc`/`--local`, errors),
//! `input` (`--input JSON|@FILE|-`) and `render` (tables, colours, times
//! and the one duration format). `completions` writes shell completions
//! from these definitions.
//!
//! Every command that prints results takes `-o/--output text|json`; every
//! usage error (clap's, or found by a command before any request) exits
//! with [`EXIT_USAGE`].

mod activities;
mod client;
mod executions;
mod graph;
mod history;
mod input;
mod lineage;
mod log_lines;
mod logs;
mod machines;
mod map_runs;
mod pools;
mod render;
pub mod run;
mod serve;
mod store;
mod triggers;
mod validate;

use std::ffi::OsString;
use std::io::Write;

use clap::{CommandFactory, Parser, Subcommand};

/// Exit status for usage errors and unreadable inputs.
pub const EXIT_USAGE: u8 = 2;

/// `stepline --version`: the version and the commit it was built from
/// (`build.rs`; `unknown` outside a git checkout).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("STEPLINE_COMMIT"),
    ")"
);

#[derive(Debug, Parser)]
#[command(
    name = "stepline",
    version = VERSION,
    about = "A self-hosted, durable engine for Amazon States Language state machines"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check state machine definitions and report every problem with its line and column.
    Validate(validate::Args),
    /// Run a state machine in process and print its output.
    Run(run::Args),
    /// Start the HTTP server (AWS Step Functions API and REST API) on the embedded store.
    Serve(serve::Args),
    /// State machines on a running server: list, show, create, update, delete.
    Machines(machines::Args),
    /// Start an execution on a running server; --wait follows it to its end (`executions start`).
    Start(executions::StartArgs),
    /// Executions on a running server: list (by status, by machine), describe, start, stop, redrive.
    Executions(executions::Args),
    /// An execution's events as a timeline; --follow tails a running one.
    History(history::Args),
    /// Stop a running execution: it ends ABORTED (`executions stop`).
    Stop(executions::StopArgs),
    /// Draw a state machine (a file, offline, or one on the server) as Mermaid, Graphviz or JSON.
    Graph(graph::Args),
    /// Show what an execution's process tasks wrote (stderr, stdout of failed attempts), per attempt.
    Logs(logs::Args),
    /// Which execution wrote a file and which read it, or what an execution read and wrote.
    Lineage(lineage::Args),
    /// Triggers on a running server: list, show, enable, disable, backfill.
    Triggers(triggers::Args),
    /// The old spelling of `triggers backfill`.
    #[command(hide = true)]
    Backfill(triggers::BackfillArgs),
    /// Map Runs (the child executions of distributed Map states): list an execution's, show one.
    MapRuns(map_runs::Args),
    /// Activities on a running server: list.
    Activities(activities::Args),
    /// Pools of slots on a running server: slots, slots in use, tasks holding and waiting.
    Pools(pools::Args),
    /// The data directory: check it, back it up from a running server, restore a backup.
    Store(store::Args),
    /// Write a completion script for a shell to stdout (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Runs the command line `args` (program name first), writing to the given
/// streams; returns the process exit status.
pub fn run(
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> u8 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let rendered = e.render().to_string();
            let is_error = e.use_stderr();
            let _ = if is_error {
                write!(stderr, "{rendered}")
            } else {
                write!(stdout, "{rendered}")
            };
            return if is_error { EXIT_USAGE } else { 0 };
        }
    };
    match cli.command {
        Command::Validate(args) => validate::run(&args, stdout, stderr),
        Command::Run(args) => run::run(&args, stdout, stderr),
        Command::Serve(args) => serve::run(&args, stdout, stderr),
        Command::Backfill(args) => triggers::backfill_alias(&args, stdout, stderr),
        Command::Triggers(args) => triggers::run(&args, stdout, stderr),
        Command::MapRuns(args) => map_runs::run(&args, stdout, stderr),
        Command::Activities(args) => activities::run(&args, stdout, stderr),
        Command::Pools(args) => pools::run(&args, stdout, stderr),
        Command::Completions { shell } => {
            // Into a buffer first: clap_complete panics when its writer
            // fails (a closed pipe, as `| head`).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "stepline", &mut script);
            let _ = stdout.write_all(&script);
            0
        }
        Command::Machines(args) => machines::run(&args, stdout, stderr),
        Command::Start(args) => executions::start(&args, stdout, stderr),
        Command::Executions(args) => executions::run(&args, stdout, stderr),
        Command::History(args) => history::run(&args, stdout, stderr),
        Command::Stop(args) => executions::stop(&args, stdout, stderr),
        Command::Graph(args) => graph::run(&args, stdout, stderr),
        Command::Logs(args) => logs::run(&args, stdout, stderr),
        Command::Lineage(args) => lineage::run(&args, stdout, stderr),
        Command::Store(args) => store::run(&args, stdout, stderr),
    }
}

/// An error and every error under it, as one line: "outer: inner: root".
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(next) = source {
        line.push_str(": ");
        line.push_str(&next.to_string());
        source = next.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command and subcommand (`machines list`...) with its visible
    /// long options, hidden ones (old spellings) left out.
    fn reference() -> Vec<(String, Vec<String>)> {
        fn walk(prefix: &str, command: &clap::Command, out: &mut Vec<(String, Vec<String>)>) {
            for sub in command.get_subcommands().filter(|c| !c.is_hide_set()) {
                let path = format!("{prefix} {}", sub.get_name()).trim().to_owned();
                let options = sub
                    .get_arguments()
                    .filter(|a| !a.is_hide_set())
                    .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
                    .collect();
                out.push((path.clone(), options));
                walk(&path, sub, out);
            }
        }
        let mut out = Vec::new();
        walk("", &Cli::command(), &mut out);
        out
    }

    /// docs/cli.md names every command as `stepline COMMAND...` and every
    /// option of it, so the reference cannot fall behind the code.
    #[test]
    fn the_cli_reference_covers_every_command_and_option() {
        let docs = include_str!("../../../docs/cli.md");
        let mut missing = Vec::new();
        for (path, options) in reference() {
            if path == "help" || path.ends_with(" help") {
                continue;
            }
            if !docs.contains(&format!("stepline {path}")) {
                missing.push(format!("stepline {path}"));
            }
            for option in options {
                if option == "--help" || option == "--version" {
                    continue;
                }
                if !docs.contains(option.as_str()) {
                    missing.push(format!("stepline {path} {option}"));
                }
            }
        }
        assert!(missing.is_empty(), "not in docs/cli.md: {missing:#?}");
    }

    #[test]
    fn the_definitions_hold_together() {
        Cli::command().debug_assert();
    }
}

//! Command-line parsing and dispatch. Each subcommand lives in its own
//! module with its own arguments struct and `run`.
//!
//! Two kinds of command: those that work on files and the data directory
//! (`validate`, `run`, `serve`, `store check` and `store restore`), and clients of a running server's REST
//! API (`machines`, `start`, `executions`, `history`, `stop`, `backfill`,
//! and `graph NAME`), which share `client` (endpoint, output format,
//! errors) and `render` (tables, colours).

mod backfill;
mod client;
mod executions;
mod graph;
mod history;
mod log_lines;
mod logs;
mod machines;
mod render;
pub mod run;
mod serve;
mod store;
mod validate;

use std::ffi::OsString;
use std::io::Write;

use clap::{Parser, Subcommand};

/// Exit status for usage errors and unreadable inputs.
pub const EXIT_USAGE: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "stepline",
    version,
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
    /// Start one execution per slot of a schedule trigger between two times, through a running server.
    Backfill(backfill::Args),
    /// State machines on a running server: list, show, create, update, delete.
    Machines(machines::Args),
    /// Start an execution on a running server; --wait follows it to its end.
    Start(executions::StartArgs),
    /// Executions on a running server: list (by status, by machine), describe.
    Executions(executions::Args),
    /// An execution's events as a timeline; --follow tails a running one.
    History(history::Args),
    /// Stop a running execution (it ends ABORTED).
    Stop(executions::StopArgs),
    /// Draw a state machine (a file, offline, or one on the server) as Mermaid, Graphviz or JSON.
    Graph(graph::Args),
    /// Show what an execution's process tasks wrote (stderr, stdout of failed attempts), per attempt.
    Logs(logs::Args),
    /// The data directory: check it, back it up from a running server, restore a backup.
    Store(store::Args),
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
        Command::Backfill(args) => backfill::run(&args, stdout, stderr),
        Command::Machines(args) => machines::run(&args, stdout, stderr),
        Command::Start(args) => executions::start(&args, stdout, stderr),
        Command::Executions(args) => executions::run(&args, stdout, stderr),
        Command::History(args) => history::run(&args, stdout, stderr),
        Command::Stop(args) => executions::stop(&args, stdout, stderr),
        Command::Graph(args) => graph::run(&args, stdout, stderr),
        Command::Logs(args) => logs::run(&args, stdout, stderr),
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

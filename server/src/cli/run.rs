//! `stepline run FILE`: run a definition in process and print its output.
//!
//! Exit status: 0 when the execution succeeded (its output on stdout), 1
//! when it failed, timed out or was aborted (error and cause on stderr; with
//! `-o json`, `{"status", "error", "cause"}` on stdout), 2 for usage errors,
//! unreadable files and invalid definitions.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};
use stepline_language::asl;
use stepline_language::interp::{ExecutionInfo, Failure, Status, TaskRequest};
use stepline_runtime::tasks::Invokers;
use stepline_runtime::{
    Clock, Invoker, TaskCall, TaskLogSink, TaskRunner, UnavailableInvoker, WallClock,
    idempotency_key, run_to_completion,
};

use super::EXIT_USAGE;
use super::client::{OutputArg, print_json};
use super::input;
use crate::aws::history::event_json;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The state machine definition (JSON).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    #[arg(long, short = 'i', value_name = "JSON|@FILE|-", help = input::HELP)]
    input: Option<String>,
    /// The old spelling of --input @FILE.
    #[arg(long, value_name = "FILE", hide = true, conflicts_with = "input")]
    input_file: Option<PathBuf>,
    /// Write the history as JSON lines, in AWS's GetExecutionHistory shape, to this file (`-` for stderr).
    #[arg(long, value_name = "FILE")]
    history: Option<PathBuf>,
    /// The execution's name (default: a random one).
    #[arg(long)]
    name: Option<String>,
    /// Seed for every random choice (retry jitter, States.UUID, States.MathRandom), to reproduce a run.
    #[arg(long)]
    seed: Option<u64>,
    /// A stepline.toml whose [tasks] the Tasks run through (registered processes, HTTP, Lambda mappings), as under `stepline serve`. Without it, every Task fails.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    // text: the output alone (a failure on stderr); json: {"name",
    // "status", "output"} or {"name", "status", "error", "cause"}.
    #[command(flatten)]
    output: OutputArg,
}

pub fn run(args: &Args, stdout: &mut dyn Write, stderr: &mut dyn Write) -> u8 {
    match run_inner(args, stdout, stderr) {
        Ok(code) => code,
        Err(message) => {
            let _ = writeln!(stderr, "stepline run: {message}");
            EXIT_USAGE
        }
    }
}

fn run_inner(args: &Args, stdout: &mut dyn Write, stderr: &mut dyn Write) -> Result<u8, String> {
    let definition = read_bounded(&args.file, asl::MAX_DEFINITION_BYTES as u64)?;
    let validation = asl::validate(&definition);
    let Some(machine) = validation.machine else {
        let name = args.file.display();
        for d in validation.errors() {
            let _ = writeln!(stderr, "{name}:{d}");
        }
        return Err(format!(
            "{name} is not a valid state machine; fix the errors above"
        ));
    };
    let input_arg = match (&args.input, &args.input_file) {
        (Some(text), _) => Some(text.clone()),
        (None, Some(path)) => Some(format!("@{}", path.display())),
        (None, None) => None,
    };
    let input: Value = match input_arg {
        Some(arg) => {
            let text = input::read(&arg).map_err(|e| e.to_string())?;
            serde_json::from_str(&text).map_err(|e| format!("the input is not JSON: {e}"))?
        }
        None => json!({}),
    };
    let clock = WallClock;
    let seed = args
        .seed
        .unwrap_or_else(|| clock.now().timestamp_nanos_opt().unwrap_or(0) as u64);
    let machine_name = args
        .file
        .file_stem()
        .map(|s| s.to_string_lossy().trim_end_matches(".asl").to_owned())
        .unwrap_or_else(|| "machine".into());
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("run-{seed:016x}"));
    let info = local_execution(&machine_name, &name, clock.now());
    let mut invoker: Box<dyn Invoker> = match &args.config {
        Some(path) => {
            let config = crate::config::load(path)?;
            let invokers = Invokers::new(config.tasks).map_err(|e| super::error_chain(&e))?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the task runtime: {e}"))?;
            Box::new(Runners {
                runtime,
                invokers,
                execution_arn: info.execution_arn.clone(),
            })
        }
        None => Box::new(UnavailableInvoker),
    };
    let outcome = run_to_completion(Arc::new(machine), info, input, seed, &clock, &mut *invoker);
    if let Some(path) = &args.history {
        write_history(path, &outcome.history, stderr)?;
    }
    if args.output.json() {
        return Ok(json_result(&name, &outcome.status, stdout));
    }
    Ok(match outcome.status {
        Status::Succeeded { output } => {
            let _ = writeln!(stdout, "{output}");
            0
        }
        Status::Failed(f) | Status::Aborted(f) | Status::TimedOut(f) => {
            let _ = writeln!(
                stderr,
                "execution failed: {}: {}",
                f.error.as_deref().unwrap_or("(no error)"),
                f.cause.as_deref().unwrap_or("(no cause)")
            );
            1
        }
        Status::Running => {
            let _ = writeln!(stderr, "execution stopped before it ended");
            1
        }
    })
}

/// `-o json`: the end of the execution as one document on stdout; the
/// exit status as in text.
fn json_result(name: &str, status: &Status, stdout: &mut dyn Write) -> u8 {
    let (document, code) = match status {
        Status::Succeeded { output } => (
            json!({"name": name, "status": "SUCCEEDED", "output": output}),
            0,
        ),
        Status::Failed(f) | Status::Aborted(f) | Status::TimedOut(f) => {
            let word = match status {
                Status::Failed(_) => "FAILED",
                Status::Aborted(_) => "ABORTED",
                _ => "TIMED_OUT",
            };
            (
                json!({"name": name, "status": word, "error": f.error, "cause": f.cause}),
                1,
            )
        }
        Status::Running => (json!({"name": name, "status": "RUNNING"}), 1),
    };
    print_json(stdout, &document);
    code
}

/// The Tasks of `stepline run --config`, one at a time, through the task
/// runners `stepline serve` uses (activities, callbacks and nested
/// executions need a server, and fail here with their runner's message).
struct Runners {
    runtime: tokio::runtime::Runtime,
    invokers: Invokers,
    execution_arn: String,
}

impl Invoker for Runners {
    fn invoke(&mut self, request: &TaskRequest) -> Result<Value, Failure> {
        let call = TaskCall {
            handed_over: Default::default(),
            request: request.clone(),
            execution_arn: self.execution_arn.clone(),
            idempotency_key: idempotency_key(&self.execution_arn, request.task),
            logs: TaskLogSink::default(),
        };
        self.runtime.block_on(self.invokers.run(call))
    }
}

/// Facts of a local execution, with AWS-shaped ARNs.
pub fn local_execution(
    machine: &str,
    name: &str,
    start: chrono::DateTime<chrono::Utc>,
) -> ExecutionInfo {
    let (region, account) = ("us-east-1", "111111111111");
    ExecutionInfo {
        execution_arn: format!("arn:aws:states:{region}:{account}:execution:{machine}:{name}"),
        name: name.to_owned(),
        role_arn: format!("arn:aws:iam::{account}:role/stepline"),
        state_machine_arn: format!("arn:aws:states:{region}:{account}:stateMachine:{machine}"),
        state_machine_name: machine.to_owned(),
        start_time: start,
        region: region.to_owned(),
        redrive_count: 0,
    }
}

fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    let file = File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.len() as u64 > limit {
        return Err(format!("{} is larger than {limit} bytes", path.display()));
    }
    Ok(bytes)
}

fn write_history(
    path: &Path,
    history: &[stepline_language::history::HistoryEvent],
    stderr: &mut dyn Write,
) -> Result<(), String> {
    let mut lines = String::new();
    for event in history {
        lines.push_str(&event_json(event).to_string());
        lines.push('\n');
    }
    if path.as_os_str() == "-" {
        let _ = stderr.write_all(lines.as_bytes());
        return Ok(());
    }
    std::fs::write(path, lines).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

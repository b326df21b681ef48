//! Registered processes: `stepline:process:NAME`.
//!
//! The operator registers a program under NAME (tasks.processes in
//! stepline.toml). A run gets the task's effective input as JSON on stdin
//! and, in an environment that starts empty, only the configured variables
//! plus:
//!
//! | variable | value |
//! |---|---|
//! | `STEPLINE_EXECUTION_ARN` | the execution |
//! | `STEPLINE_STATE_NAME` | the Task state |
//! | `STEPLINE_ATTEMPT` | 1 for the first attempt, 2 for the first retry... |
//! | `STEPLINE_IDEMPOTENCY_KEY` | the same for a run repeated after a crash |
//! | `STEPLINE_TASK_TOKEN` | the token, for `.waitForTaskToken` |
//!
//! JSON on stdout is the result (empty stdout is `null`). A non-zero exit
//! fails the task; when the last line of stderr is a JSON object with
//! `error` (and `cause`), those name the failure, so Catch can match it.
//! Otherwise the error is `States.TaskFailed` with the exit status and the
//! end of stderr as the cause. No shell ever sees the input: the program
//! and its arguments are fixed by the operator.
//!
//! Each attempt's stderr, and its stdout when it failed, go to the call's
//! log sink (the last `TASK_LOG_BYTES` of each), kept with the execution.
//!
//! The process leads its own process group; cancelling the task (its
//! TimeoutSeconds, a stopped execution) kills the whole group.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use super::config::ProcessConfig;
use crate::TaskCall;
use crate::task_logs::{TASK_LOG_BYTES, TaskOutput};
use stepline_language::cause;
use stepline_language::interp::Failure;

/// Runs `config`'s program for `call`, and leaves what it wrote with the
/// call's log sink.
pub async fn run(name: &str, config: &ProcessConfig, call: &TaskCall) -> Result<Value, Failure> {
    let (result, output) = run_capturing(name, config, call).await;
    let failed = result.as_ref().err();
    call.logs.keep(TaskOutput {
        stderr: output.stderr.bytes,
        stdout: failed.and(output.stdout),
        error: failed.map(|f| f.error.clone().unwrap_or_default()),
        truncated: output.stderr.dropped,
    });
    result
}

/// What a run wrote, as far as it got.
#[derive(Default)]
struct Written {
    stderr: Tail,
    stdout: Option<Vec<u8>>,
}

async fn run_capturing(
    name: &str,
    config: &ProcessConfig,
    call: &TaskCall,
) -> (Result<Value, Failure>, Written) {
    let mut written = Written::default();
    let result = run_inner(name, config, call, &mut written).await;
    (result, written)
}

async fn run_inner(
    name: &str,
    config: &ProcessConfig,
    call: &TaskCall,
    written: &mut Written,
) -> Result<Value, Failure> {
    let mut command = Command::new(&config.command);
    command
        .args(&config.args)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    #[cfg(unix)]
    command.process_group(0);
    if let Some(dir) = &config.working_dir {
        command.current_dir(dir);
    }
    for key in &config.env_allow {
        if let Some(value) = std::env::var_os(key) {
            command.env(key, value);
        }
    }
    command.envs(&config.env);
    let request = &call.request;
    command
        .env("STEPLINE_EXECUTION_ARN", &call.execution_arn)
        .env("STEPLINE_STATE_NAME", &request.state_name)
        .env("STEPLINE_ATTEMPT", (request.attempt + 1).to_string())
        .env("STEPLINE_IDEMPOTENCY_KEY", &call.idempotency_key);
    if let Some(token) = &request.token {
        command.env("STEPLINE_TASK_TOKEN", token);
    }
    let mut child = command.spawn().map_err(|e| {
        cause::PROCESS_NOT_STARTED.failure(&[
            ("name", &name),
            ("command", &config.command.display()),
            ("reason", &e),
        ])
    })?;
    // Whatever happens next (including this future being dropped), the
    // whole group goes when the guard does.
    let mut group = GroupGuard(child.id());
    let input = request.input.to_string();
    let mut stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let feed = async move {
        if let Some(stdin) = stdin.as_mut() {
            // A program that does not read its input closes the pipe early:
            // not an error.
            let _ = stdin.write_all(input.as_bytes()).await;
            let _ = stdin.shutdown().await;
        }
        drop(stdin);
    };
    let limit = config.max_stdout_bytes;
    let pid = child.id();
    let read_stdout = async move {
        let out = read_bounded(stdout, limit).await;
        if out.is_none() {
            // Too much: the whole group goes now, not when it notices the
            // closed pipe (it may never).
            kill_group(pid);
        }
        out
    };
    // The log keeps more of stderr than a failure's cause quotes.
    let read_stderr = read_tail(stderr, config.stderr_tail_bytes.max(TASK_LOG_BYTES));
    let work = async {
        let ((), out, err) = tokio::join!(feed, read_stdout, read_stderr);
        let status = child.wait().await;
        (out, err, status)
    };
    let (out, err, status) = match config.timeout_seconds {
        Some(seconds) => match tokio::time::timeout(Duration::from_secs(seconds), work).await {
            Ok(done) => done,
            Err(_) => {
                drop(group);
                return Err(
                    cause::PROCESS_TIMED_OUT.failure(&[("name", &name), ("seconds", &seconds)])
                );
            }
        },
        None => work.await,
    };
    // Reaped: the id may belong to someone else from now on.
    group.0 = None;
    let cause_tail = err.last(config.stderr_tail_bytes).to_vec();
    // Bounded by max_stdout_bytes; the engine keeps its end.
    written.stdout.clone_from(&out);
    written.stderr = err;
    let err = cause_tail;
    let status = status
        .map_err(|e| cause::PROCESS_WAIT_FAILED.failure(&[("name", &name), ("reason", &e)]))?;
    let Some(out) = out else {
        return Err(cause::PROCESS_OUTPUT_TOO_LARGE.failure(&[("name", &name), ("limit", &limit)]));
    };
    if !status.success() {
        return Err(failure_from_stderr(name, &status, &err));
    }
    parse_result(name, &out, &err)
}

fn parse_result(name: &str, out: &[u8], err: &[u8]) -> Result<Value, Failure> {
    let text = String::from_utf8_lossy(out);
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&text).map_err(|e| {
        let shown: String = text.chars().take(200).collect();
        cause::PROCESS_OUTPUT_NOT_JSON.failure(&[
            ("name", &name),
            ("reason", &e),
            ("shown", &shown),
            ("stderr", &stderr_suffix(err)),
        ])
    })
}

/// The failure of a process that exited non-zero.
fn failure_from_stderr(name: &str, status: &std::process::ExitStatus, err: &[u8]) -> Failure {
    let text = String::from_utf8_lossy(err);
    if let Some(last) = text.lines().rev().find(|l| !l.trim().is_empty()) {
        if let Ok(Value::Object(named)) = serde_json::from_str::<Value>(last.trim()) {
            if let Some(error) = named.get("error").and_then(Value::as_str) {
                let cause = match named.get("cause") {
                    Some(Value::String(c)) => Some(c.clone()),
                    Some(Value::Null) | None => None,
                    Some(other) => Some(other.to_string()),
                };
                return Failure {
                    error: Some(error.to_owned()),
                    cause,
                };
            }
        }
    }
    let how = match status.code() {
        Some(code) => format!("exited with status {code}"),
        None => signal_text(status),
    };
    cause::PROCESS_FAILED.failure(&[
        ("name", &name),
        ("how", &how),
        ("stderr", &stderr_suffix(err)),
    ])
}

#[cfg(unix)]
fn signal_text(status: &std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status.signal() {
        Some(signal) => format!("was killed by signal {signal}"),
        None => "ended abnormally".to_owned(),
    }
}

#[cfg(not(unix))]
fn signal_text(_: &std::process::ExitStatus) -> String {
    "ended abnormally".to_owned()
}

fn stderr_suffix(err: &[u8]) -> String {
    let text = String::from_utf8_lossy(err);
    let text = text.trim();
    if text.is_empty() {
        String::new()
    } else {
        format!("; stderr ends with:\n{text}")
    }
}

/// Reads all of `stream` up to `limit` bytes; `None` if there was more (the
/// reader stops, and the process is killed with its group).
async fn read_bounded(stream: Option<impl AsyncRead + Unpin>, limit: usize) -> Option<Vec<u8>> {
    let Some(stream) = stream else {
        return Some(Vec::new());
    };
    let mut out = Vec::new();
    let mut limited = stream.take(limit as u64 + 1);
    if limited.read_to_end(&mut out).await.is_err() {
        return Some(out);
    }
    (out.len() <= limit).then_some(out)
}

/// The end of a stream, and whether bytes before it were dropped.
#[derive(Debug, Default)]
struct Tail {
    bytes: Vec<u8>,
    dropped: bool,
}

impl Tail {
    /// The last `n` bytes.
    fn last(&self, n: usize) -> &[u8] {
        &self.bytes[self.bytes.len().saturating_sub(n)..]
    }
}

/// Reads all of `stream`, keeping only its last `keep` bytes.
async fn read_tail(stream: Option<impl AsyncRead + Unpin>, keep: usize) -> Tail {
    let Some(mut stream) = stream else {
        return Tail::default();
    };
    let mut dropped = false;
    let mut tail = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                tail.extend_from_slice(&buf[..n]);
                if tail.len() > 2 * keep.max(1) {
                    tail.drain(..tail.len() - keep);
                    dropped = true;
                }
            }
        }
    }
    if tail.len() > keep {
        tail.drain(..tail.len() - keep);
        dropped = true;
    }
    Tail {
        bytes: tail,
        dropped,
    }
}

/// Kills a process group when dropped (the leader's pid is the group id).
struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        kill_group(self.0);
    }
}

/// SIGKILL to the group led by `pid` (while the leader is not reaped, so
/// the id is still its own).
fn kill_group(pid: Option<u32>) {
    #[cfg(unix)]
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        use nix::sys::signal::{Signal, killpg};
        use nix::unistd::Pid;
        // The group may be gone already: nothing to report.
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
    #[cfg(not(unix))]
    let _ = pid;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_error_on_the_last_stderr_line_wins() {
        let status = exit_status(3);
        let f = failure_from_stderr(
            "p",
            &status,
            b"working...\n{\"error\": \"Custom.Bad\", \"cause\": \"no\"}\n",
        );
        assert_eq!(f.error.as_deref(), Some("Custom.Bad"));
        assert_eq!(f.cause.as_deref(), Some("no"));
        let f = failure_from_stderr("p", &status, b"plain failure\n");
        assert_eq!(f.error.as_deref(), Some("States.TaskFailed"));
        let cause = f.cause.unwrap();
        assert!(cause.contains("exited with status 3"), "{cause}");
        assert!(cause.contains("plain failure"), "{cause}");
    }

    #[test]
    fn results_must_be_json() {
        assert_eq!(parse_result("p", b" \n", b"").unwrap(), Value::Null);
        assert_eq!(
            parse_result("p", b"{\"a\":1}\n", b"").unwrap(),
            serde_json::json!({"a": 1})
        );
        let f = parse_result("p", b"hello", b"").unwrap_err();
        assert!(f.cause.unwrap().contains("not JSON"));
    }

    #[tokio::test]
    async fn tails_and_bounds() {
        let data = vec![b'x'; 100_000];
        let tail = read_tail(Some(&data[..]), 10).await;
        assert_eq!(tail.bytes.len(), 10);
        assert!(tail.dropped);
        assert_eq!(tail.last(4).len(), 4);
        assert!(!read_tail(Some(&b"short"[..]), 10).await.dropped);
        assert!(read_bounded(Some(&data[..]), 1000).await.is_none());
        assert_eq!(
            read_bounded(Some(&data[..]), 100_000).await.unwrap().len(),
            100_000
        );
    }

    #[cfg(unix)]
    fn exit_status(code: i32) -> std::process::ExitStatus {
        use std::os::unix::process::ExitStatusExt;
        std::process::ExitStatus::from_raw(code << 8)
    }
}

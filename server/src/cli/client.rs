//! What every client command shares: the `--endpoint`, `-o/--output`,
//! `--utc` and `--local` options, the blocking REST client over a running server's `/v1` API,
//! execution ids, and the one way a failure is told (a single line on
//! stderr, and an exit status).
//!
//! The client commands hold no logic of their own beyond presentation:
//! each is a REST call (or a few) and a rendering of the answer.

use std::io::Write;
use std::time::Duration;

use serde_json::Value;

use super::EXIT_USAGE;
use super::render::Zone;
use crate::rest::encode_segment;

/// Where a client command goes when neither `--endpoint` nor
/// `STEPLINE_ENDPOINT` says.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:8083";

/// Exit status when the command reached the server and the server said no
/// (unknown name, invalid definition), or the server could not be reached.
pub const EXIT_FAILED: u8 = 1;
/// Exit status of `start --wait` when the execution ended other than
/// SUCCEEDED (FAILED, TIMED_OUT, ABORTED).
pub const EXIT_EXECUTION_FAILED: u8 = 3;

/// How long an ordinary request may take. Long polls add their own wait.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// `-o/--output`: how a command prints its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Tables and timelines for people (colours on a terminal, unless NO_COLOR).
    // `human` is the old spelling of `logs --output text`, kept for scripts.
    #[value(alias = "human")]
    Text,
    /// JSON documents with stable shapes, for scripts (docs/cli.md).
    Json,
}

/// `-o/--output text|json`: every command that prints results takes it.
#[derive(Debug, Clone, clap::Args)]
pub struct OutputArg {
    /// text for people, json for scripts.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

impl OutputArg {
    pub fn json(&self) -> bool {
        self.output == Output::Json
    }
}

/// `-o` and the zone of the times shown: the options of every command
/// whose results hold times.
#[derive(Debug, Clone, clap::Args)]
pub struct Present {
    #[command(flatten)]
    pub output: OutputArg,
    /// Show times in UTC, labelled `UTC` (the default).
    #[arg(long, global = true, overrides_with = "local")]
    utc: bool,
    /// Show times in this machine's time zone, labelled with its offset (`+01:00`).
    #[arg(long, global = true, overrides_with = "utc")]
    local: bool,
}

impl Present {
    pub fn json(&self) -> bool {
        self.output.json()
    }

    pub fn zone(&self) -> Zone {
        if self.local && !self.utc {
            Zone::Local
        } else {
            Zone::Utc
        }
    }
}

/// The options of every command that talks to a server.
#[derive(Debug, Clone, clap::Args)]
pub struct Remote {
    /// The server's address [default: $STEPLINE_ENDPOINT, else http://127.0.0.1:8083].
    #[arg(long, global = true, value_name = "URL")]
    endpoint: Option<String>,
    /// Also trust the CA certificates of this PEM file, for a server whose
    /// certificate a private CA signed [default: $STEPLINE_CA_FILE].
    #[arg(long, global = true, value_name = "FILE")]
    ca_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub present: Present,
}

impl Remote {
    /// The endpoint without a trailing slash: the option, the environment,
    /// or the default.
    pub fn endpoint(&self) -> String {
        let chosen = self
            .endpoint
            .clone()
            .or_else(|| {
                std::env::var("STEPLINE_ENDPOINT")
                    .ok()
                    .filter(|v| !v.is_empty())
            })
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned());
        chosen.trim_end_matches('/').to_owned()
    }

    /// The CA file to trust besides the usual roots: the option, or the
    /// environment.
    fn ca_file(&self) -> Option<std::path::PathBuf> {
        self.ca_file.clone().or_else(|| {
            std::env::var_os("STEPLINE_CA_FILE")
                .filter(|v| !v.is_empty())
                .map(Into::into)
        })
    }
}

/// Why a client command did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Something on this side: an unreadable file, input that is not JSON,
    /// an execution id that is not one.
    #[error("{0}")]
    Usage(String),
    /// A definition checked here (by `graph`) that is not valid: like
    /// `stepline validate`, exit status 1.
    #[error("{0}")]
    Invalid(String),
    #[error(
        "cannot reach the server at {endpoint}: {reason} (is `stepline serve` running? Set --endpoint or STEPLINE_ENDPOINT)"
    )]
    Unreachable { endpoint: String, reason: String },
    /// The server answered with an error; `diagnostics` come with an
    /// invalid definition.
    #[error("{code}: {message}")]
    Api {
        status: u16,
        code: String,
        message: String,
        diagnostics: Vec<Value>,
    },
    #[error("the server's answer to {what} is not what stepline expects: {reason}")]
    BadAnswer { what: String, reason: String },
}

impl ClientError {
    pub fn usage(message: impl Into<String>) -> Self {
        ClientError::Usage(message.into())
    }

    pub fn exit_status(&self) -> u8 {
        match self {
            ClientError::Usage(_) => EXIT_USAGE,
            _ => EXIT_FAILED,
        }
    }

    /// Writes the error as `stepline COMMAND: ...` (plus one line per
    /// diagnostic of an invalid definition) and returns the exit status.
    pub fn report(&self, command: &str, stderr: &mut dyn Write) -> u8 {
        let _ = writeln!(stderr, "stepline {command}: {self}");
        if let ClientError::Api { diagnostics, .. } = self {
            for d in diagnostics {
                let _ = writeln!(stderr, "  {}", diagnostic_line(d));
            }
        }
        self.exit_status()
    }
}

/// A diagnostic the server sent (`{"severity", "code", "message",
/// "pointer", "line", "column"}`) in the text form `stepline validate`
/// prints.
pub fn diagnostic_line(d: &Value) -> String {
    let number = |key: &str| d[key].as_u64().unwrap_or(0) as u32;
    let text = |key: &str| d[key].as_str().unwrap_or("");
    stepline_language::asl::diagnostic::text_line(
        number("line"),
        number("column"),
        if text("severity").is_empty() {
            "error"
        } else {
            text("severity")
        },
        text("code"),
        text("message"),
        text("pointer"),
    )
}

/// The exit status of a client command: its own on success, else the
/// error's, told on stderr.
pub fn finish(command: &str, result: Result<u8, ClientError>, stderr: &mut dyn Write) -> u8 {
    result.unwrap_or_else(|e| e.report(command, stderr))
}

/// The innermost cause of an error ("Connection refused (os error 111)"),
/// which says more than reqwest's outer "error sending request".
fn root_cause(error: &dyn std::error::Error) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// A blocking client of one server's REST API. Each command makes a few
/// calls, so a current-thread runtime is all it needs.
pub struct Api {
    endpoint: String,
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
    /// `$STEPLINE_TOKEN`: the bearer token a server with `[[server.tokens]]`
    /// asks for. Read from the environment only, so that it stays out of
    /// command lines (process lists, shell history).
    token: Option<String>,
}

/// What a request sends.
pub enum Body<'a> {
    None,
    Json(&'a str),
}

impl Api {
    pub fn new(remote: &Remote) -> Result<Self, ClientError> {
        let endpoint = remote.endpoint();
        let parsed = reqwest::Url::parse(&endpoint).map_err(|e| {
            ClientError::usage(format!(
                "the endpoint '{endpoint}' is not a URL like http://127.0.0.1:8083: {e}"
            ))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ClientError::usage(format!(
                "the endpoint '{endpoint}' must start with http:// or https://"
            )));
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ClientError::usage(format!("cannot start the runtime: {e}")))?;
        let mut client = reqwest::Client::builder();
        if let Some(path) = remote.ca_file() {
            let certificates =
                stepline_runtime::tasks::http::ca_certificates(&path).map_err(|e| {
                    ClientError::usage(format!("--ca-file: {}", super::error_chain(&e)))
                })?;
            for certificate in certificates {
                client = client.add_root_certificate(certificate);
            }
        }
        let client = client
            .build()
            .map_err(|e| ClientError::usage(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            endpoint,
            runtime,
            client,
            token: std::env::var("STEPLINE_TOKEN")
                .ok()
                .filter(|t| !t.is_empty()),
        })
    }

    pub fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.call(reqwest::Method::GET, path, Body::None, REQUEST_TIMEOUT)
    }

    /// A GET that may be held open by the server for up to `wait`.
    pub fn long_poll(&self, path: &str, wait: Duration) -> Result<Value, ClientError> {
        self.call(
            reqwest::Method::GET,
            path,
            Body::None,
            REQUEST_TIMEOUT + wait,
        )
    }

    pub fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Body<'_>,
    ) -> Result<Value, ClientError> {
        self.call(method, path, body, REQUEST_TIMEOUT)
    }

    /// A request whose answer may take up to `timeout` (a backfill).
    pub fn send_waiting(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Body<'_>,
        timeout: Duration,
    ) -> Result<Value, ClientError> {
        self.call(method, path, body, timeout)
    }

    fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Body<'_>,
        timeout: Duration,
    ) -> reqwest::RequestBuilder {
        let url = format!("{}{path}", self.endpoint);
        let mut request = self.client.request(method, &url).timeout(timeout);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Body::Json(text) = body {
            request = request
                .header("content-type", "application/json")
                .body(text.to_owned());
        }
        request
    }

    /// A POST whose successful answer is bytes, written to `out` as they
    /// arrive (a backup); returns how many. An error answer is read as the
    /// other calls read it.
    pub fn download(
        &self,
        path: &str,
        out: &mut dyn Write,
        timeout: Duration,
    ) -> Result<u64, ClientError> {
        let what = format!("POST {path}");
        let request = self.request(reqwest::Method::POST, path, Body::Json("{}"), timeout);
        let bad = |e: &dyn std::error::Error| ClientError::BadAnswer {
            what: what.clone(),
            reason: root_cause(e),
        };
        let mut response = self.runtime.block_on(async {
            request.send().await.map_err(|e| ClientError::Unreachable {
                endpoint: self.endpoint.clone(),
                reason: root_cause(&e),
            })
        })?;
        let status = response.status();
        if !status.is_success() {
            let text = self
                .runtime
                .block_on(response.text())
                .map_err(|e| bad(&e))?;
            return answer(what.clone(), status, &text).map(|_| 0);
        }
        let mut written = 0u64;
        while let Some(chunk) = self
            .runtime
            .block_on(response.chunk())
            .map_err(|e| bad(&e))?
        {
            out.write_all(&chunk).map_err(|e| {
                ClientError::usage(format!("cannot write what the server sent: {e}"))
            })?;
            written += chunk.len() as u64;
        }
        Ok(written)
    }

    /// One request; the answer's JSON (`null` for an empty answer, as a
    /// DELETE's 204), or the error the server sent.
    fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Body<'_>,
        timeout: Duration,
    ) -> Result<Value, ClientError> {
        let what = format!("{method} {path}");
        let request = self.request(method, path, body, timeout);
        self.runtime.block_on(async {
            let response = request.send().await.map_err(|e| ClientError::Unreachable {
                endpoint: self.endpoint.clone(),
                reason: root_cause(&e),
            })?;
            let status = response.status();
            let text = response.text().await.map_err(|e| ClientError::BadAnswer {
                what: what.clone(),
                reason: root_cause(&e),
            })?;
            answer(what, status, &text)
        })
    }
}

/// An answer's JSON (`null` when empty), or the `{code, message}` error
/// the server sent.
fn answer(what: String, status: reqwest::StatusCode, text: &str) -> Result<Value, ClientError> {
    let value = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(text).map_err(|e| ClientError::BadAnswer {
            what: what.clone(),
            reason: format!("HTTP {status}, not JSON ({e})"),
        })?
    };
    if status.is_success() {
        return Ok(value);
    }
    let text_of = |key: &str| value[key].as_str().map(str::to_owned);
    match (text_of("code"), text_of("message")) {
        (Some(code), Some(message)) => Err(ClientError::Api {
            status: status.as_u16(),
            code,
            message,
            diagnostics: value["diagnostics"].as_array().cloned().unwrap_or_default(),
        }),
        _ => Err(ClientError::BadAnswer {
            what,
            reason: format!("HTTP {status} without a {{code, message}} error"),
        }),
    }
}

/// An execution as the commands name it: `MACHINE/NAME`, or its ARN
/// (`arn:aws:states:REGION:ACCOUNT:execution:MACHINE:NAME`); an EXPRESS
/// execution's NAME is `NAME:ID` (`...:express:MACHINE:NAME:ID`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionId {
    pub machine: String,
    pub name: String,
}

impl ExecutionId {
    pub fn parse(text: &str) -> Result<Self, ClientError> {
        let parts = if text.starts_with("arn:") {
            let fields: Vec<&str> = text.split(':').collect();
            match fields.as_slice() {
                [_, _, _, _, _, kind, machine, name]
                    if matches!(*kind, "execution" | "express") =>
                {
                    Some((*machine, *name))
                }
                // An EXPRESS execution: its key is NAME:ID.
                [_, _, _, _, _, "express", machine, name, id] => {
                    Some((*machine, &text[text.len() - name.len() - 1 - id.len()..]))
                }
                _ => None,
            }
        } else {
            text.split_once('/')
        };
        match parts {
            Some((machine, name))
                if !machine.is_empty() && !name.is_empty() && !name.contains('/') =>
            {
                Ok(Self {
                    machine: machine.to_owned(),
                    name: name.to_owned(),
                })
            }
            _ => Err(ClientError::usage(format!(
                "'{text}' is not an execution: write MACHINE/NAME (as `stepline executions list` shows) or the execution's ARN"
            ))),
        }
    }

    /// `/v1/executions/MACHINE/NAME`, each part percent-encoded.
    pub fn path(&self) -> String {
        format!(
            "/v1/executions/{}/{}",
            encode_segment(&self.machine),
            encode_segment(&self.name)
        )
    }
}

impl std::fmt::Display for ExecutionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.machine, self.name)
    }
}

/// `/v1/state-machines/NAME`, percent-encoded.
pub fn machine_path(name: &str) -> String {
    format!("/v1/state-machines/{}", encode_segment(name))
}

/// Reads a file a command was given, bounded by `limit` bytes, so a wrong
/// path to a huge file fails at once rather than filling memory.
pub fn read_bounded(path: &std::path::Path, limit: u64, what: &str) -> Result<String, ClientError> {
    use std::io::Read;
    let file = std::fs::File::open(path)
        .map_err(|e| ClientError::usage(format!("cannot read {}: {e}", path.display())))?;
    let mut text = String::new();
    file.take(limit + 1)
        .read_to_string(&mut text)
        .map_err(|e| ClientError::usage(format!("cannot read {}: {e}", path.display())))?;
    if text.len() as u64 > limit {
        return Err(ClientError::usage(format!(
            "{} is larger than {limit} bytes, the limit for {what}",
            path.display()
        )));
    }
    Ok(text)
}

/// Writes a JSON document for scripts: pretty, one trailing newline.
pub fn print_json(stdout: &mut dyn Write, value: &Value) {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    let _ = writeln!(stdout, "{text}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_ids_come_as_paths_or_arns() {
        let id = ExecutionId::parse("flow/run-1").expect("id");
        assert_eq!((id.machine.as_str(), id.name.as_str()), ("flow", "run-1"));
        let id = ExecutionId::parse("arn:aws:states:us-east-1:123456789012:execution:flow:run 2")
            .expect("arn");
        assert_eq!(id.path(), "/v1/executions/flow/run%202");
        let id = ExecutionId::parse(
            "arn:aws:states:us-east-1:123456789012:express:quick:run:0b6a34e2-5c1d-4b0e-9f57-3f2a1c7d9e10",
        )
        .expect("express arn");
        assert_eq!(
            id.to_string(),
            "quick/run:0b6a34e2-5c1d-4b0e-9f57-3f2a1c7d9e10"
        );
        let bad = [
            "flow",
            "/x",
            "flow/",
            "a/b/c",
            "arn:aws:states:x",
            "arn:aws:states:us-east-1:1:stateMachine:flow",
        ];
        for bad in bad {
            assert!(ExecutionId::parse(bad).is_err(), "{bad}");
        }
    }
}

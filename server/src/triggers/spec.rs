//! A trigger definition: the raw form (as written in stepline.toml, posted
//! to `/v1/triggers`, and stored), and the checked form the driver runs,
//! with its schedule parsed, directory resolved and template compiled.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use stepline_language::query::Template;

use stepline_store::ExecutionStatus;

use super::glob;
use super::schedule::{Schedule, Zone};

/// The longest trigger name: execution names are the trigger's name, `-`,
/// and an event id of up to 24 characters, within AWS's 80.
pub const MAX_NAME_LEN: usize = 48;

/// What starts executions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Schedule,
    Webhook,
    File,
    /// An execution of another state machine ended (pipelines).
    Execution,
    /// Every file of a set exists for a period (data availability).
    Dataset,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Schedule => "schedule",
            Kind::Webhook => "webhook",
            Kind::File => "file",
            Kind::Execution => "execution",
            Kind::Dataset => "dataset",
        }
    }
}

/// A dataset trigger's period: which files make one set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    #[default]
    Day,
    Hour,
}

/// What a schedule does about slots missed while the server was down.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CatchUp {
    /// Missed slots are skipped; only slots due now fire.
    None,
    /// Only the most recent missed slot fires.
    #[default]
    Latest,
    /// Every missed slot fires, oldest first.
    All,
}

/// The raw definition. Field names are the config file's (snake_case);
/// the REST API writes them in camelCase and converts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerSpec {
    pub name: String,
    pub kind: Kind,
    /// The state machine's name (or ARN) whose executions it starts.
    pub state_machine: String,
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enabled: bool,
    /// A payload template (`"key.$": "$.path"`) that shapes the event into
    /// the execution input; without one, the event is the input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,

    // schedule
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// `UTC` (the default), a fixed offset like `+02:00`, or an IANA zone
    /// like `Europe/Paris` (with its daylight saving time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catch_up: Option<CatchUp>,
    /// `HH:MM` in the trigger's time zone: each slot's execution must have
    /// succeeded by the first such time after the slot, or an alert goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_by: Option<String>,

    // webhook
    /// HMAC-SHA256 key; requests must carry the signature of their body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_header: Option<String>,

    // file
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glob: Option<String>,
    /// How long size and modification time must stay unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_ms: Option<u64>,
    /// Executions of this trigger running at once; more files wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<usize>,
    /// Move a file to `processed/` or `failed/` (beside it) when its
    /// execution ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub move_when_done: Option<bool>,

    // execution
    /// The state machine (name or ARN) whose ended executions start this
    /// trigger's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The end statuses that start it (default SUCCEEDED).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statuses: Option<Vec<ExecutionStatus>>,

    // dataset
    /// Paths with `{date}` (YYYY-MM-DD), `{year}`, `{month}`, `{day}` and
    /// `{hour}` placeholders, filled in for each period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
    /// Minutes after a period's start; a period whose files are not all
    /// there by then raises an alert and is no longer waited for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_minutes: Option<u64>,

    // any kind
    /// Execution windows (`"Mon-Fri 01:00-05:00"`), read in `timezone`:
    /// a fire outside them does what `outside` says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows: Option<Vec<String>>,
    /// `hold` (the default), `refuse` or `alert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outside: Option<String>,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// The default signature header (GitHub's).
pub const DEFAULT_SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// A checked trigger.
#[derive(Debug, Clone)]
pub struct Trigger {
    pub name: String,
    pub state_machine: String,
    pub enabled: bool,
    pub template: Option<Template>,
    pub kind: Compiled,
    /// Its execution windows, if it has some.
    pub windows: Option<std::sync::Arc<stepline_runtime::windows::WindowRule>>,
}

/// What each kind needs to run, checked.
#[derive(Debug, Clone)]
pub enum Compiled {
    Schedule {
        schedule: Schedule,
        zone: Zone,
        catch_up: CatchUp,
        /// Each slot's deadline, as a wall time in `zone`.
        finished_by: Option<chrono::NaiveTime>,
    },
    Execution {
        /// The source state machine's ARN.
        source: String,
        statuses: Vec<ExecutionStatus>,
    },
    Dataset(Dataset),
    Webhook {
        secret: Option<Vec<u8>>,
        signature_header: String,
    },
    File(FileWatch),
}

/// A file trigger's directory and rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileWatch {
    /// Canonical, and inside one of the operator's roots.
    pub directory: PathBuf,
    pub glob: String,
    pub stable: Duration,
    pub poll: Duration,
    pub max_in_flight: usize,
    pub move_when_done: bool,
}

/// A dataset trigger's files and rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    /// Absolute path templates, without `..`, each under one of the
    /// operator's roots (its fixed part checked at compile time, each
    /// filled-in path's directory again, canonical, when it is looked at).
    pub inputs: Vec<String>,
    pub period: Period,
    pub zone: Zone,
    pub timeout: Option<chrono::Duration>,
    pub poll: Duration,
    /// The canonical roots the files must be under.
    pub roots: Vec<PathBuf>,
}

/// The placeholders a dataset input may use.
pub const PLACEHOLDERS: [&str; 5] = ["{date}", "{year}", "{month}", "{day}", "{hour}"];
/// The most inputs one dataset trigger may list.
pub const MAX_INPUTS: usize = 64;
/// A dataset trigger looks at its files this often unless told otherwise.
pub const DEFAULT_DATASET_POLL_MS: u64 = 5000;

/// Bounds on file triggers.
pub const DEFAULT_STABLE_MS: u64 = 1000;
pub const DEFAULT_POLL_MS: u64 = 500;
pub const MIN_POLL_MS: u64 = 10;
pub const DEFAULT_MAX_IN_FLIGHT: usize = 64;
pub const MAX_IN_FLIGHT: usize = 1024;

/// Trigger names: letters, digits, `-` and `_`, 1 to 48 characters.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{name}' is not a trigger name: 1 to {MAX_NAME_LEN} letters, digits, '-' or '_'"
        ))
    }
}

impl TriggerSpec {
    /// Checks the definition; `roots` are the directories file triggers may
    /// watch (canonical). Every error names the field.
    pub fn compile(&self, roots: &[PathBuf]) -> Result<Trigger, String> {
        check_name(&self.name)?;
        if self.state_machine.is_empty() {
            return Err("state_machine: a state machine name is required".into());
        }
        let template = match &self.input {
            None => None,
            Some(value) => Some(Template::compile(value).map_err(|errors| {
                let first = errors.first().map(|e| e.to_string()).unwrap_or_default();
                format!("input: the template is invalid: {first}")
            })?),
        };
        let misplaced = |field: &str, set: bool, kinds: &str| {
            if set {
                Err(format!(
                    "{field}: only {kinds} triggers take it, not {} triggers",
                    self.kind.as_str()
                ))
            } else {
                Ok(())
            }
        };
        if self.kind != Kind::Schedule {
            misplaced("schedule", self.schedule.is_some(), "schedule")?;
            misplaced("catch_up", self.catch_up.is_some(), "schedule")?;
            misplaced("finished_by", self.finished_by.is_some(), "schedule")?;
        }
        if !matches!(self.kind, Kind::Schedule | Kind::Dataset) && self.windows.is_none() {
            misplaced(
                "timezone",
                self.timezone.is_some(),
                "schedule and dataset (and windowed)",
            )?;
        }
        if self.windows.is_none() && self.outside.is_some() {
            return Err(
                "outside: it says what a start outside the windows does; give windows too".into(),
            );
        }
        let windows = match &self.windows {
            None => None,
            Some(list) => Some(std::sync::Arc::new(crate::windows::rule(
                list,
                self.timezone.as_deref(),
                self.outside.as_deref(),
                false,
            )?)),
        };
        if self.kind != Kind::Execution {
            misplaced("source", self.source.is_some(), "execution")?;
            misplaced("statuses", self.statuses.is_some(), "execution")?;
        }
        if self.kind != Kind::Dataset {
            misplaced("inputs", self.inputs.is_some(), "dataset")?;
            misplaced("period", self.period.is_some(), "dataset")?;
            misplaced("timeout_minutes", self.timeout_minutes.is_some(), "dataset")?;
        }
        if self.kind != Kind::Webhook {
            misplaced("secret", self.secret.is_some(), "webhook")?;
            misplaced(
                "signature_header",
                self.signature_header.is_some(),
                "webhook",
            )?;
        }
        if self.kind != Kind::File {
            misplaced("directory", self.directory.is_some(), "file")?;
            misplaced("glob", self.glob.is_some(), "file")?;
            misplaced("stable_ms", self.stable_ms.is_some(), "file")?;
            if self.kind != Kind::Dataset {
                misplaced("poll_ms", self.poll_ms.is_some(), "file and dataset")?;
            }
            misplaced("max_in_flight", self.max_in_flight.is_some(), "file")?;
            misplaced("move_when_done", self.move_when_done.is_some(), "file")?;
        }
        let kind = match self.kind {
            Kind::Schedule => {
                let text = self
                    .schedule
                    .as_deref()
                    .ok_or("schedule: a schedule trigger needs rate(...) or cron(...)")?;
                Compiled::Schedule {
                    schedule: Schedule::parse(text).map_err(|e| format!("schedule: {e}"))?,
                    zone: Zone::parse(self.timezone.as_deref().unwrap_or("UTC"))
                        .map_err(|e| format!("timezone: {e}"))?,
                    catch_up: self.catch_up.unwrap_or_default(),
                    finished_by: self
                        .finished_by
                        .as_deref()
                        .map(parse_hh_mm)
                        .transpose()
                        .map_err(|e| format!("finished_by: {e}"))?,
                }
            }
            Kind::Execution => {
                let source = self
                    .source
                    .clone()
                    .filter(|s| !s.is_empty())
                    .ok_or("source: an execution trigger needs the state machine whose executions start it")?;
                let statuses = self
                    .statuses
                    .clone()
                    .unwrap_or_else(|| vec![ExecutionStatus::Succeeded]);
                if statuses.is_empty() || statuses.contains(&ExecutionStatus::Running) {
                    return Err("statuses: name at least one of SUCCEEDED, FAILED, TIMED_OUT, ABORTED, and only those".into());
                }
                Compiled::Execution { source, statuses }
            }
            Kind::Dataset => {
                let inputs = self
                    .inputs
                    .clone()
                    .filter(|i| !i.is_empty())
                    .ok_or("inputs: a dataset trigger needs the paths of its files")?;
                if inputs.len() > MAX_INPUTS {
                    return Err(format!("inputs: at most {MAX_INPUTS} paths"));
                }
                for input in &inputs {
                    check_input(input, roots).map_err(|e| format!("inputs: '{input}': {e}"))?;
                }
                let poll = self.poll_ms.unwrap_or(DEFAULT_DATASET_POLL_MS);
                if poll < MIN_POLL_MS {
                    return Err(format!("poll_ms: at least {MIN_POLL_MS}"));
                }
                let timeout = match self.timeout_minutes {
                    None => None,
                    Some(0) => return Err("timeout_minutes: at least 1".into()),
                    Some(m) => Some(
                        i64::try_from(m)
                            .ok()
                            .filter(|m| *m <= 366 * 24 * 60)
                            .map(chrono::Duration::minutes)
                            .ok_or("timeout_minutes: at most a year")?,
                    ),
                };
                Compiled::Dataset(Dataset {
                    inputs,
                    period: self.period.unwrap_or_default(),
                    zone: Zone::parse(self.timezone.as_deref().unwrap_or("UTC"))
                        .map_err(|e| format!("timezone: {e}"))?,
                    timeout,
                    poll: Duration::from_millis(poll),
                    roots: roots.to_vec(),
                })
            }
            Kind::Webhook => {
                if self.secret.as_deref().is_some_and(str::is_empty) {
                    return Err("secret: an empty secret signs nothing; omit it instead".into());
                }
                let header = self
                    .signature_header
                    .clone()
                    .unwrap_or_else(|| DEFAULT_SIGNATURE_HEADER.to_owned())
                    .to_ascii_lowercase();
                if axum::http::HeaderName::from_bytes(header.as_bytes()).is_err() {
                    return Err(format!("signature_header: '{header}' is not a header name"));
                }
                Compiled::Webhook {
                    secret: self.secret.as_ref().map(|s| s.as_bytes().to_vec()),
                    signature_header: header,
                }
            }
            Kind::File => {
                let directory = self
                    .directory
                    .as_deref()
                    .ok_or("directory: a file trigger needs a directory")?;
                let directory = inside_roots(directory, roots)?;
                let glob = self.glob.clone().unwrap_or_else(|| "*".to_owned());
                glob::check(&glob).map_err(|e| format!("glob: {e}"))?;
                let poll = self.poll_ms.unwrap_or(DEFAULT_POLL_MS);
                if poll < MIN_POLL_MS {
                    return Err(format!("poll_ms: at least {MIN_POLL_MS}"));
                }
                let max_in_flight = self.max_in_flight.unwrap_or(DEFAULT_MAX_IN_FLIGHT);
                if !(1..=MAX_IN_FLIGHT).contains(&max_in_flight) {
                    return Err(format!("max_in_flight: from 1 to {MAX_IN_FLIGHT}"));
                }
                Compiled::File(FileWatch {
                    directory,
                    glob,
                    stable: Duration::from_millis(self.stable_ms.unwrap_or(DEFAULT_STABLE_MS)),
                    poll: Duration::from_millis(poll),
                    max_in_flight,
                    move_when_done: self.move_when_done.unwrap_or(false),
                })
            }
        };
        Ok(Trigger {
            name: self.name.clone(),
            state_machine: self.state_machine.clone(),
            enabled: self.enabled,
            template,
            kind,
            windows,
        })
    }
}

/// `HH:MM` (24-hour) as a wall time.
pub fn parse_hh_mm(text: &str) -> Result<chrono::NaiveTime, String> {
    let ok = text.len() == 5 && text.as_bytes()[2] == b':';
    ok.then(|| chrono::NaiveTime::parse_from_str(text, "%H:%M").ok())
        .flatten()
        .ok_or_else(|| format!("'{text}' is not a time of day like 06:30"))
}

/// A dataset input: absolute, no `..`, known placeholders only, in the
/// directory part only or the file name, and its fixed leading part inside
/// one of `roots` (the nearest existing directory, canonical).
fn check_input(input: &str, roots: &[PathBuf]) -> Result<(), String> {
    if roots.is_empty() {
        return Err(
            "no file roots are configured ([triggers] file_roots in stepline.toml), so no file may be watched"
                .into(),
        );
    }
    let path = Path::new(input);
    if !path.is_absolute() {
        return Err("not an absolute path".into());
    }
    if path
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err("'..' is not allowed".into());
    }
    let mut rest = input;
    while let Some(at) = rest.find('{') {
        let tail = &rest[at..];
        let Some(known) = PLACEHOLDERS.iter().find(|p| tail.starts_with(**p)) else {
            return Err(format!(
                "unknown placeholder at '{tail}': use {}",
                PLACEHOLDERS.join(", ")
            ));
        };
        rest = &tail[known.len()..];
    }
    if input.contains('}') && !PLACEHOLDERS.iter().any(|p| input.contains(p)) {
        return Err("a '}' without its placeholder".into());
    }
    // The part before the first placeholder, up to its last '/': the
    // directory every filled-in path is under.
    let fixed = &input[..input.find('{').unwrap_or(input.len())];
    let fixed = Path::new(&fixed[..fixed.rfind('/').unwrap_or(0).max(1)]);
    let mut existing = fixed;
    while !existing.exists() {
        existing = existing.parent().ok_or("no part of the path exists")?;
    }
    let canonical = existing
        .canonicalize()
        .map_err(|e| format!("'{}' cannot be opened: {e}", existing.display()))?;
    if roots.iter().any(|root| canonical.starts_with(root)) {
        Ok(())
    } else {
        Err(format!(
            "'{}' (really '{}') is outside the configured file roots",
            existing.display(),
            canonical.display()
        ))
    }
}

/// `directory` canonicalised, when it is inside one of `roots`; symbolic
/// links are resolved first, so a link cannot lead outside.
pub fn inside_roots(directory: &Path, roots: &[PathBuf]) -> Result<PathBuf, String> {
    if roots.is_empty() {
        return Err(
            "directory: no file roots are configured ([triggers] file_roots in stepline.toml), so no directory may be watched"
                .into(),
        );
    }
    let canonical = directory
        .canonicalize()
        .map_err(|e| format!("directory: '{}' cannot be opened: {e}", directory.display()))?;
    if !canonical.is_dir() {
        return Err(format!(
            "directory: '{}' is not a directory",
            directory.display()
        ));
    }
    if roots.iter().any(|root| canonical.starts_with(root)) {
        Ok(canonical)
    } else {
        Err(format!(
            "directory: '{}' (really '{}') is outside the configured file roots",
            directory.display(),
            canonical.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: Value) -> Result<Trigger, String> {
        let spec: TriggerSpec = serde_json::from_value(json).map_err(|e| e.to_string())?;
        spec.compile(&[])
    }

    #[test]
    fn kinds_take_their_own_fields_only() {
        let ok = spec(serde_json::json!({
            "name": "nightly", "kind": "schedule", "state_machine": "etl",
            "schedule": "cron(0 2 * * ? *)", "timezone": "+01:00", "catch_up": "all"
        }));
        assert!(ok.is_ok(), "{ok:?}");
        let named = spec(serde_json::json!({
            "name": "paris", "kind": "schedule", "state_machine": "etl",
            "schedule": "cron(0 2 * * ? *)", "timezone": "Europe/Paris"
        }))
        .expect("a named zone");
        assert!(
            matches!(
                named.kind,
                Compiled::Schedule {
                    zone: Zone::Named(chrono_tz::Tz::Europe__Paris),
                    ..
                }
            ),
            "{named:?}"
        );
        for (json, words) in [
            (
                serde_json::json!({"name": "a b", "kind": "webhook", "state_machine": "m"}),
                "not a trigger name",
            ),
            (
                serde_json::json!({"name": "h", "kind": "webhook", "state_machine": "m", "schedule": "rate(1 day)"}),
                "schedule: only schedule triggers",
            ),
            (
                serde_json::json!({"name": "s", "kind": "schedule", "state_machine": "m"}),
                "needs rate(...)",
            ),
            (
                serde_json::json!({"name": "s", "kind": "schedule", "state_machine": "m", "schedule": "rate(2 hour)"}),
                "schedule: 'rate(2 hour)'",
            ),
            (
                serde_json::json!({"name": "s", "kind": "schedule", "state_machine": "m", "schedule": "rate(1 hour)", "timezone": "Europe/Lutetia"}),
                "timezone: 'Europe/Lutetia' is not a time zone",
            ),
            (
                serde_json::json!({"name": "f", "kind": "file", "state_machine": "m", "directory": "/tmp"}),
                "no file roots",
            ),
            (
                serde_json::json!({"name": "h", "kind": "webhook", "state_machine": "m", "input": {"a.$": "not a path"}}),
                "input: the template is invalid",
            ),
            (
                serde_json::json!({"name": "h", "kind": "webhook", "state_machine": "m", "secret": ""}),
                "empty secret",
            ),
            (
                serde_json::json!({"name": "h", "kind": "webhook", "state_machine": "m", "colour": "red"}),
                "unknown field `colour`",
            ),
        ] {
            let e = spec(json.clone()).expect_err(&json.to_string());
            assert!(e.contains(words), "{json}: {e}");
        }
    }
}

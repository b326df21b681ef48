//! Alerts: when an execution ends FAILED, TIMED_OUT or ABORTED (or
//! SUCCEEDED, when asked), POST a notification to the webhooks the
//! operator configured under `[[alerts.webhooks]]` in stepline.toml.
//!
//! The JSON payload is the EventBridge event AWS Step Functions emits for
//! the same change ("Step Functions Execution Status Change", source
//! `aws.states`), so a receiver written for AWS reads it unchanged; the
//! `slack` format posts `{"text": ...}` instead, which Slack's incoming
//! webhooks (and Mattermost, Rocket.Chat, Teams' Slack-compatible ones)
//! accept.
//!
//! Delivery never blocks an execution: the engine hands the ended record
//! to a channel (registered before the engine opens, so executions that
//! resume and end at start are announced too), a task here sends each notification with retries and
//! exponential backoff, and at most `MAX_PENDING` notifications wait at
//! once (more are dropped and counted).
//!
//! At least once: the engine writes an "ended notice" in the same batch as
//! a STANDARD execution's end and hands notices left by a previous run to
//! the observers at open; a notice is removed only when every matching
//! webhook's notification was delivered or gave up, so a crash or a
//! restart in between sends them again (a receiver may see a duplicate:
//! the event `id` is stable, so it can tell).
//!
//! Destinations are the operator's, checked when the file is loaded: a URL
//! must be one HTTP tasks may call (`[tasks.http]`: loopback, `allow`
//! prefixes), or match a prefix of `[alerts] allow`, a list for alerts
//! only, so that allowing Slack for alerts does not let every definition
//! post to it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use stepline_runtime::tasks::config::TaskConfig;
use stepline_runtime::{Engine, EngineConfig};
use stepline_store::{ExecutionRecord, ExecutionStatus};
use tokio::sync::{Semaphore, mpsc};

use crate::triggers::hmac;

/// The most notifications in flight or waiting for a retry at once.
pub const MAX_PENDING: usize = 1024;
/// The most attempts one notification may be given.
pub const MAX_ATTEMPTS: u32 = 20;
/// The first retry waits this long; each next one twice as long.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// No wait between attempts is longer.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// One request's limit.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The header that carries `sha256=HMAC` of the body when a secret is set
/// (the same form webhook triggers verify).
pub const SIGNATURE_HEADER: &str = "X-Stepline-Signature";

/// `[alerts]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// URL prefixes alerts may reach beyond what HTTP tasks may.
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default)]
    pub webhooks: Vec<WebhookConfig>,
}

/// One `[[alerts.webhooks]]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    /// The end statuses that notify (default FAILED, TIMED_OUT, ABORTED).
    #[serde(default = "default_statuses")]
    pub statuses: Vec<ExecutionStatus>,
    /// State machine names this webhook is for; every one when absent.
    pub state_machines: Option<Vec<String>>,
    /// Extra request headers (an Authorization, a routing key...).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Signs each body: `X-Stepline-Signature: sha256=HEX`.
    pub secret: Option<String>,
    #[serde(default)]
    pub format: AlertFormat,
    /// Attempts per notification, the first included (default 5).
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertFormat {
    #[default]
    Json,
    Slack,
}

fn default_statuses() -> Vec<ExecutionStatus> {
    vec![
        ExecutionStatus::Failed,
        ExecutionStatus::TimedOut,
        ExecutionStatus::Aborted,
    ]
}

fn default_attempts() -> u32 {
    5
}

/// The rules serde cannot say; `tasks` gives the HTTP tasks' allowlist.
pub fn check(alerts: &AlertsConfig, tasks: &TaskConfig) -> Result<(), String> {
    for prefix in &alerts.allow {
        let ok = prefix == "*"
            || reqwest::Url::parse(prefix)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
        if !ok {
            return Err(format!(
                "alerts.allow: '{prefix}' is not a URL prefix like https://hooks.example.com/ (or * for anywhere)"
            ));
        }
    }
    for (i, hook) in alerts.webhooks.iter().enumerate() {
        let at = format!("alerts.webhooks[{i}]");
        let url = reqwest::Url::parse(&hook.url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| format!("{at}.url: '{}' is not an http(s) URL", hook.url))?;
        if !allowed(alerts, tasks, &url) {
            return Err(format!(
                "{at}.url: '{}' is not an allowed destination: list it (or a prefix of it) under [alerts] allow, or under [tasks.http] allow",
                hook.url
            ));
        }
        if hook.statuses.is_empty() || hook.statuses.contains(&ExecutionStatus::Running) {
            return Err(format!(
                "{at}.statuses: name at least one of SUCCEEDED, FAILED, TIMED_OUT, ABORTED, and only those"
            ));
        }
        if !(1..=MAX_ATTEMPTS).contains(&hook.max_attempts) {
            return Err(format!(
                "{at}.max_attempts: {} is not between 1 and {MAX_ATTEMPTS}",
                hook.max_attempts
            ));
        }
        if hook.secret.as_deref() == Some("") {
            return Err(format!("{at}.secret: an empty secret signs nothing"));
        }
        for (name, value) in &hook.headers {
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err()
                || reqwest::header::HeaderValue::from_str(value).is_err()
            {
                return Err(format!("{at}.headers: '{name}' is not a valid HTTP header"));
            }
        }
    }
    Ok(())
}

/// Whether alerts may reach `url`: as an HTTP task could, or by
/// `[alerts] allow`.
fn allowed(alerts: &AlertsConfig, tasks: &TaskConfig, url: &reqwest::Url) -> bool {
    if stepline_runtime::tasks::http::check_allowed(tasks, url).is_ok() {
        return true;
    }
    let mut own = TaskConfig::default();
    own.http.allow.clone_from(&alerts.allow);
    own.http.allow_loopback = tasks.http.allow_loopback;
    stepline_runtime::tasks::http::check_allowed(&own, url).is_ok()
}

/// The notification of `record`'s end as AWS's EventBridge event.
pub fn event(record: &ExecutionRecord, region: &str, account: &str) -> Value {
    let millis = |t: chrono::DateTime<chrono::Utc>| t.timestamp_millis();
    let stop = record.stop.unwrap_or(record.start);
    json!({
        "version": "0",
        "id": format!("{}/{}", record.arn, record.status.as_str()),
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": account,
        "time": stop.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "region": region,
        "resources": [record.arn],
        "detail": {
            "executionArn": record.arn,
            "stateMachineArn": record.state_machine_arn,
            "name": record.name,
            "status": record.status.as_str(),
            "startDate": millis(record.start),
            "stopDate": millis(stop),
            "input": record.input,
            "output": record.output,
            "error": record.error,
            "cause": record.cause,
        }
    })
}

/// The Slack-compatible text of `record`'s end.
pub fn slack(record: &ExecutionRecord) -> Value {
    let machine = record
        .state_machine_arn
        .rsplit(':')
        .next()
        .unwrap_or_default();
    let mut text = format!(
        "stepline: execution {} of {machine} {}",
        record.name,
        record.status.as_str()
    );
    if let Some(error) = &record.error {
        text.push_str(&format!(": {error}"));
    }
    if let Some(cause) = &record.cause {
        let short: String = cause.chars().take(500).collect();
        text.push_str(&format!(" ({short})"));
    }
    text.push_str(&format!("\n{}", record.arn));
    json!({ "text": text })
}

/// Registers alerts as an observer of ended executions, before the engine
/// opens (so executions resumed at open are observed too); `None` when no
/// webhook is configured.
pub fn observe(
    alerts: &AlertsConfig,
    engine: &mut EngineConfig,
) -> Option<mpsc::UnboundedReceiver<ExecutionRecord>> {
    if alerts.webhooks.is_empty() {
        return None;
    }
    let (send, ended) = mpsc::unbounded_channel();
    engine.ended.push(send);
    Some(ended)
}

/// Sends the notifications of the executions `ended` reports, until the
/// engine goes.
pub fn start(
    engine: Engine,
    alerts: &AlertsConfig,
    mut ended: mpsc::UnboundedReceiver<ExecutionRecord>,
) {
    let hooks: Arc<[WebhookConfig]> = alerts.webhooks.clone().into();
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default();
    let pending = Arc::new(Semaphore::new(MAX_PENDING));
    tokio::spawn(async move {
        while let Some(record) = ended.recv().await {
            let machine = record
                .state_machine_arn
                .rsplit(':')
                .next()
                .unwrap_or_default()
                .to_owned();
            let wanted: Vec<&WebhookConfig> = hooks
                .iter()
                .filter(|hook| {
                    hook.statuses.contains(&record.status)
                        && hook
                            .state_machines
                            .as_ref()
                            .is_none_or(|names| names.contains(&machine))
                })
                .collect();
            // The execution's end notice goes when its last notification
            // is delivered or given up; never on shutdown, so an alert
            // still being retried is sent again at the next start.
            let remaining = Arc::new(std::sync::atomic::AtomicUsize::new(wanted.len()));
            let done = {
                let (engine, arn) = (engine.clone(), record.arn.clone());
                move |remaining: &std::sync::atomic::AtomicUsize| {
                    if remaining.fetch_sub(1, std::sync::atomic::Ordering::AcqRel) == 1 {
                        engine.ended_handled(&arn);
                    }
                }
            };
            if wanted.is_empty() {
                engine.ended_handled(&record.arn);
            }
            for hook in wanted {
                let Ok(permit) = Arc::clone(&pending).try_acquire_owned() else {
                    engine.metrics().alert("dropped");
                    tracing::warn!(execution = %record.arn, "alert dropped: {MAX_PENDING} are already pending");
                    done(&remaining);
                    continue;
                };
                let config = engine.config();
                let body = match hook.format {
                    AlertFormat::Json => event(&record, &config.region, &config.account),
                    AlertFormat::Slack => slack(&record),
                };
                let (engine, client, hook) = (engine.clone(), client.clone(), hook.clone());
                let arn = record.arn.clone();
                let (done, remaining) = (done.clone(), Arc::clone(&remaining));
                tokio::spawn(async move {
                    let delivered = deliver(&client, &hook, body.to_string()).await;
                    match &delivered {
                        Ok(()) => engine.metrics().alert("delivered"),
                        Err(e) => {
                            engine.metrics().alert("failed");
                            tracing::warn!(execution = %arn, url = %hook.url, error = %e, "alert not delivered");
                        }
                    }
                    drop(permit);
                    done(&remaining);
                });
            }
        }
    });
}

/// POSTs `body` until a 2xx answer or `max_attempts`, waiting twice as
/// long after each failure.
async fn deliver(
    client: &reqwest::Client,
    hook: &WebhookConfig,
    body: String,
) -> Result<(), String> {
    let mut wait = FIRST_BACKOFF;
    let mut last = String::new();
    for attempt in 1..=hook.max_attempts {
        let mut request = client
            .post(&hook.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(
                "User-Agent",
                concat!("stepline/", env!("CARGO_PKG_VERSION")),
            );
        for (name, value) in &hook.headers {
            request = request.header(name, value);
        }
        if let Some(secret) = &hook.secret {
            let signature = hmac::hex(&hmac::hmac_sha256(secret.as_bytes(), body.as_bytes()));
            request = request.header(SIGNATURE_HEADER, format!("sha256={signature}"));
        }
        match request.body(body.clone()).send().await {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) => last = format!("answered {}", response.status()),
            Err(e) => last = e.to_string(),
        }
        if attempt < hook.max_attempts {
            tracing::debug!(url = %hook.url, attempt, error = %last, "alert attempt failed; retrying");
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(MAX_BACKOFF);
        }
    }
    Err(format!("{} attempts: {last}", hook.max_attempts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: ExecutionStatus) -> ExecutionRecord {
        let start = chrono::DateTime::parse_from_rfc3339("2026-11-22T03:00:00Z")
            .unwrap()
            .to_utc();
        ExecutionRecord {
            arn: "arn:aws:states:us-east-1:111111111111:execution:orders:n1".into(),
            state_machine_arn: "arn:aws:states:us-east-1:111111111111:stateMachine:orders".into(),
            revision: 1,
            name: "n1".into(),
            input: "{\"a\":1}".into(),
            status,
            start,
            stop: Some(start + chrono::Duration::seconds(2)),
            output: None,
            error: Some("States.TaskFailed".into()),
            cause: Some("boom".into()),
            seed: 0,
            redrive_count: 0,
            token_secret: String::new(),
            test_case: None,
            map_run: None,
        }
    }

    #[test]
    fn the_event_is_eventbridges_shape() {
        let e = event(
            &record(ExecutionStatus::Failed),
            "us-east-1",
            "111111111111",
        );
        assert_eq!(e["detail-type"], "Step Functions Execution Status Change");
        assert_eq!(e["source"], "aws.states");
        assert_eq!(e["detail"]["status"], "FAILED");
        assert_eq!(e["detail"]["error"], "States.TaskFailed");
        assert_eq!(e["detail"]["input"], "{\"a\":1}");
        assert_eq!(e["detail"]["output"], Value::Null);
        assert_eq!(
            e["detail"]["stopDate"].as_i64().unwrap() - e["detail"]["startDate"].as_i64().unwrap(),
            2000
        );
        let s = slack(&record(ExecutionStatus::TimedOut));
        let text = s["text"].as_str().unwrap();
        assert!(
            text.starts_with(
                "stepline: execution n1 of orders TIMED_OUT: States.TaskFailed (boom)"
            ),
            "{text}"
        );
    }

    fn hook(url: &str) -> AlertsConfig {
        AlertsConfig {
            allow: Vec::new(),
            webhooks: vec![WebhookConfig {
                url: url.into(),
                statuses: default_statuses(),
                state_machines: None,
                headers: BTreeMap::new(),
                secret: None,
                format: AlertFormat::Json,
                max_attempts: 5,
            }],
        }
    }

    #[test]
    fn destinations_follow_the_allowlists() {
        let tasks = TaskConfig::default();
        assert!(check(&hook("http://127.0.0.1:9/hook"), &tasks).is_ok());
        let outside = check(&hook("https://hooks.example.com/x"), &tasks).unwrap_err();
        assert!(outside.contains("not an allowed destination"), "{outside}");
        let mut own = hook("https://hooks.example.com/x");
        own.allow = vec!["https://hooks.example.com/".into()];
        assert!(check(&own, &tasks).is_ok());
        let mut by_tasks = TaskConfig::default();
        by_tasks.http.allow = vec!["https://hooks.example.com".into()];
        assert!(check(&hook("https://hooks.example.com/x"), &by_tasks).is_ok());
        assert!(check(&hook("ftp://127.0.0.1/"), &tasks).is_err());
        let mut bad = hook("http://127.0.0.1/");
        bad.webhooks[0].max_attempts = 0;
        assert!(check(&bad, &tasks).unwrap_err().contains("max_attempts"));
        let mut bad = hook("http://127.0.0.1/");
        bad.webhooks[0].statuses.clear();
        assert!(check(&bad, &tasks).is_err());
        // RUNNING is no end: an alert on it would never be sent.
        let mut bad = hook("http://127.0.0.1/");
        bad.webhooks[0].statuses = vec![ExecutionStatus::Running];
        assert!(check(&bad, &tasks).unwrap_err().contains("statuses"));
    }
}

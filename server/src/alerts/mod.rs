//! Alerts: when an execution ends FAILED, TIMED_OUT or ABORTED (or
//! SUCCEEDED, when asked), or misses a deadline (`triggers::deadlines`),
//! POST a notification to the webhooks the operator configured under
//! `[[alerts.webhooks]]` in stepline.toml, and mail it to the addresses of
//! `[[alerts.emails]]` (`email.rs`).
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
//! resume and end at start are announced too), a task here sends each
//! notification with retries and exponential backoff, and at most
//! `MAX_PENDING` notifications wait at once (more are dropped and
//! counted). The same channel starts the `execution` triggers of the
//! ended execution's state machine, and the end's notice stays until both
//! are done.
//!
//! A deadline's alert is kept in its trigger's state record until it is
//! delivered (`triggers::deadlines`), so it too is sent at least once.
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

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use stepline_runtime::tasks::config::TaskConfig;
use stepline_runtime::windows::OutsideWindow;
use stepline_runtime::{Ended, Engine, EngineConfig};
use stepline_store::{ExecutionRecord, ExecutionStatus};
use tokio::sync::{Semaphore, mpsc};

use crate::triggers::{Triggers, hmac};

pub mod email;

pub use email::{EmailConfig, EmailTls};

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
    /// `[[alerts.emails]]`: the same alerts by e-mail over SMTP.
    #[serde(default)]
    pub emails: Vec<EmailConfig>,
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
    /// Whether missed deadlines are sent here too (default true).
    #[serde(default = "yes")]
    pub deadlines: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertFormat {
    #[default]
    Json,
    Slack,
}

pub(crate) fn default_statuses() -> Vec<ExecutionStatus> {
    vec![
        ExecutionStatus::Failed,
        ExecutionStatus::TimedOut,
        ExecutionStatus::Aborted,
    ]
}

pub(crate) fn default_attempts() -> u32 {
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
    for (i, mail) in alerts.emails.iter().enumerate() {
        email::check(mail).map_err(|e| format!("alerts.emails[{i}].{e}"))?;
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

/// `text` with the three characters Slack and Mattermost read as control
/// sequences (`<!channel>`, `<URL|label>`) escaped, as Slack asks: a
/// cause or a name comes from definitions and tasks, and must not ping a
/// channel or forge a link.
pub fn chat_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The Slack-compatible text of `record`'s end (unescaped: `chat_escape`
/// is applied when it is posted).
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

/// A missed deadline (`triggers::deadlines`): what is alerted, and what a
/// trigger's state keeps until it is delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deadline {
    /// The same miss always has the same id, so a receiver can tell a
    /// duplicate (at least once).
    pub id: String,
    /// What missed it: `execution`, `state`, `slot` or `dataset`.
    pub kind: String,
    /// The state machine's name.
    pub state_machine: String,
    /// When it was due.
    pub deadline: DateTime<Utc>,
    /// One line for people (the chat text and the mail's subject).
    pub text: String,
    /// The rest, for programs: ARNs, the trigger, the slot, the state...
    pub detail: Value,
}

/// What an alert is about.
#[derive(Debug, Clone)]
pub enum Message {
    Ended(ExecutionRecord),
    Deadline(Deadline),
    /// An execution started outside its windows (`outside = "alert"`).
    Window(OutsideWindow),
}

/// The one-line text of a start outside its windows.
fn window_text(w: &OutsideWindow) -> String {
    let whose = match &w.trigger {
        Some(t) => format!(" (trigger {t})"),
        None => String::new(),
    };
    let next = match w.next_open {
        Some(t) => format!("; the next opens at {}", rfc3339(t)),
        None => String::new(),
    };
    format!(
        "execution {} of {}{whose} started at {} outside its windows {}{next}",
        w.execution_name,
        w.state_machine,
        rfc3339(w.started),
        w.windows
    )
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Message {
    fn machine(&self) -> String {
        match self {
            Message::Ended(record) => record
                .state_machine_arn
                .rsplit(':')
                .next()
                .unwrap_or_default()
                .to_owned(),
            Message::Deadline(d) => d.state_machine.clone(),
            Message::Window(w) => w.state_machine.clone(),
        }
    }

    fn id(&self) -> String {
        match self {
            Message::Ended(record) => format!("{}/{}", record.arn, record.status.as_str()),
            Message::Deadline(d) => d.id.clone(),
            Message::Window(w) => format!("window/{}", w.execution_arn),
        }
    }

    /// Whether a sink with these filters wants it.
    fn wanted(
        &self,
        statuses: &[ExecutionStatus],
        machines: Option<&Vec<String>>,
        deadlines: bool,
    ) -> bool {
        let kind = match self {
            Message::Ended(record) => statuses.contains(&record.status),
            // Like deadlines: the operator's alerts, not executions' ends.
            Message::Deadline(_) | Message::Window(_) => deadlines,
        };
        kind && machines.is_none_or(|names| names.contains(&self.machine()))
    }

    /// The one-line text (chat, mail subject).
    pub fn text(&self) -> String {
        match self {
            Message::Ended(record) => slack(record)["text"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            Message::Deadline(d) => format!("stepline: {}", d.text),
            Message::Window(w) => format!("stepline: {}", window_text(w)),
        }
    }

    /// The JSON body: AWS's EventBridge event for an end; for a deadline,
    /// an event of the same envelope from source `stepline`.
    pub fn event(&self, region: &str, account: &str) -> Value {
        match self {
            Message::Ended(record) => event(record, region, account),
            Message::Deadline(d) => json!({
                "version": "0",
                "id": d.id,
                "detail-type": "Stepline Deadline Missed",
                "source": "stepline",
                "account": account,
                "time": d.deadline.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "region": region,
                "resources": d.detail.get("resources").cloned().unwrap_or_else(|| json!([])),
                "detail": {
                    "kind": d.kind,
                    "stateMachine": d.state_machine,
                    "deadline": d.deadline.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    "text": d.text,
                    "details": d.detail,
                },
            }),
            Message::Window(w) => json!({
                "version": "0",
                "id": format!("window/{}", w.execution_arn),
                "detail-type": "Stepline Started Outside Window",
                "source": "stepline",
                "account": account,
                "time": rfc3339(w.started),
                "region": region,
                "resources": [w.execution_arn],
                "detail": {
                    "kind": "window",
                    "stateMachine": w.state_machine,
                    "executionArn": w.execution_arn,
                    "name": w.execution_name,
                    "trigger": w.trigger,
                    "windows": w.windows,
                    "started": rfc3339(w.started),
                    "nextOpen": w.next_open.map(rfc3339),
                    "text": window_text(w),
                },
            }),
        }
    }
}

/// Registers the server as an observer of ended executions, before the
/// engine opens (so executions resumed at open are observed too). Always:
/// `execution` triggers may be created over REST at any time. Whether ends
/// also store a notice (for alerts and pipelines across a crash) follows
/// what is configured ([`crate::triggers::Triggers`] keeps it current).
pub fn observe(engine: &mut EngineConfig) -> mpsc::UnboundedReceiver<Ended> {
    let (send, ended) = mpsc::unbounded_channel();
    engine.ended.push(send);
    ended
}

/// Registers the server as the observer of executions started outside
/// their windows under `outside = "alert"`, before the engine opens.
pub fn observe_windows(engine: &mut EngineConfig) -> mpsc::UnboundedReceiver<OutsideWindow> {
    let (send, outside) = mpsc::unbounded_channel();
    engine.window_alerts.push(send);
    outside
}

/// Sends an alert for each execution started outside its windows, until
/// the engine goes: first those the store kept undelivered (a crash came
/// before their delivery), then each the engine reports. Each leaves the
/// store once delivered or given up (at least once, as every alert).
pub fn send_window_alerts(alerter: Alerter, mut outside: mpsc::UnboundedReceiver<OutsideWindow>) {
    let deliver = |alerter: Alerter, started: OutsideWindow| {
        tokio::spawn(async move {
            let arn = started.execution_arn.clone();
            alerter.send(&Message::Window(started)).await;
            alerter.inner.engine.window_alert_delivered(&arn);
        });
    };
    for started in alerter.inner.engine.pending_window_alerts() {
        deliver(alerter.clone(), started);
    }
    tokio::spawn(async move {
        while let Some(started) = outside.recv().await {
            deliver(alerter.clone(), started);
        }
    });
}

/// The alert sinks of one server: the webhooks and the mail relays. Cheap
/// to clone.
#[derive(Clone)]
pub struct Alerter {
    inner: Arc<Sinks>,
}

impl std::fmt::Debug for Alerter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerter")
            .field("webhooks", &self.inner.hooks.len())
            .field("emails", &self.inner.mailers.len())
            .finish()
    }
}

struct Sinks {
    engine: Engine,
    hooks: Vec<WebhookConfig>,
    mailers: Vec<email::Mailer>,
    client: reqwest::Client,
    /// Bounds the notifications in flight or waiting for a retry.
    pending: Arc<Semaphore>,
}

impl Alerter {
    /// Whether any sink is configured.
    pub fn has_sinks(&self) -> bool {
        !self.inner.hooks.is_empty() || !self.inner.mailers.is_empty()
    }

    /// The sinks of `alerts`; mail passwords named by environment
    /// variables or files are read here, once.
    pub fn new(engine: Engine, alerts: &AlertsConfig) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        let mailers = alerts
            .emails
            .iter()
            .enumerate()
            .map(|(i, config)| {
                email::Mailer::new(config).map_err(|e| format!("alerts.emails[{i}].{e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            inner: Arc::new(Sinks {
                engine,
                hooks: alerts.webhooks.clone(),
                mailers,
                client,
                pending: Arc::new(Semaphore::new(MAX_PENDING)),
            }),
        })
    }

    /// Sends `message` to every sink that wants it, each with its retries;
    /// returns when each has delivered it or given up (or it was dropped:
    /// `MAX_PENDING` are already waiting).
    pub async fn send(&self, message: &Message) {
        let sinks = &self.inner;
        let config = sinks.engine.config();
        let mut deliveries = tokio::task::JoinSet::new();
        for hook in &sinks.hooks {
            if !message.wanted(&hook.statuses, hook.state_machines.as_ref(), hook.deadlines) {
                continue;
            }
            let Ok(permit) = Arc::clone(&sinks.pending).try_acquire_owned() else {
                self.dropped(message);
                continue;
            };
            let body = match hook.format {
                AlertFormat::Json => message.event(&config.region, &config.account),
                AlertFormat::Slack => json!({ "text": chat_escape(&message.text()) }),
            };
            let (client, hook) = (sinks.client.clone(), hook.clone());
            deliveries.spawn(async move {
                let delivered = deliver(&client, &hook, body.to_string()).await;
                drop(permit);
                (hook.url.clone(), delivered)
            });
        }
        for mailer in &sinks.mailers {
            let c = mailer.config();
            if !message.wanted(&c.statuses, c.state_machines.as_ref(), c.deadlines) {
                continue;
            }
            let Ok(permit) = Arc::clone(&sinks.pending).try_acquire_owned() else {
                self.dropped(message);
                continue;
            };
            let mail = email::Mail {
                subject: email::subject(&message.text()),
                body: format!(
                    "{}\n\n{}\n",
                    message.text(),
                    serde_json::to_string_pretty(&message.event(&config.region, &config.account))
                        .unwrap_or_default()
                ),
                id: message.id(),
            };
            let mailer = mailer.clone();
            deliveries.spawn(async move {
                let delivered = mailer.send(&mail).await;
                drop(permit);
                (format!("smtp://{}", mailer.config().host), delivered)
            });
        }
        while let Some(done) = deliveries.join_next().await {
            match done {
                Ok((_, Ok(()))) => sinks.engine.metrics().alert("delivered"),
                Ok((to, Err(e))) => {
                    sinks.engine.metrics().alert("failed");
                    tracing::warn!(alert = %message.id(), to = %to, error = %e, "alert not delivered");
                }
                Err(e) => {
                    sinks.engine.metrics().alert("failed");
                    tracing::warn!(alert = %message.id(), error = %e, "alert delivery stopped");
                }
            }
        }
    }

    fn dropped(&self, message: &Message) {
        self.inner.engine.metrics().alert("dropped");
        tracing::warn!(alert = %message.id(), "alert dropped: {MAX_PENDING} are already pending");
    }
}

/// Handles the executions `ended` reports, until the engine goes: starts
/// the `execution` triggers of each one's state machine and sends its
/// alerts; its end notice goes when both are done (never on shutdown, so
/// what was still being retried is done again at the next start).
pub fn start(
    alerter: Alerter,
    triggers: Triggers,
    mut ended: mpsc::UnboundedReceiver<Ended>,
) -> Handling {
    let (handling, _) = tokio::sync::watch::channel(0usize);
    let handling = Handling(Arc::new(handling));
    let counted = handling.clone();
    tokio::spawn(async move {
        while let Some(Ended { record, noticed }) = ended.recv().await {
            let (alerter, triggers) = (alerter.clone(), triggers.clone());
            let busy = counted.busy();
            tokio::spawn(async move {
                let message = Message::Ended(record.clone());
                tokio::join!(triggers.execution_ended(&record), alerter.send(&message));
                if noticed {
                    triggers.engine().ended_handled(&record.arn);
                }
                drop(busy);
            });
        }
    });
    handling
}

/// The ended executions still being handled (alerts being sent,
/// pipelines being started).
#[derive(Debug, Clone)]
pub struct Handling(Arc<tokio::sync::watch::Sender<usize>>);

/// One ended execution being handled, until dropped.
struct Busy(Arc<tokio::sync::watch::Sender<usize>>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl Handling {
    fn busy(&self) -> Busy {
        self.0.send_modify(|n| *n += 1);
        Busy(Arc::clone(&self.0))
    }

    /// Waits up to `within` for every end being handled to be done, so
    /// that a clean stop keeps what was just delivered from being sent
    /// again at the next start (what is still being retried then is).
    pub async fn settle(&self, within: Duration) {
        let mut count = self.0.subscribe();
        let _ = tokio::time::timeout(within, count.wait_for(|n| *n == 0)).await;
    }
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
            queued: None,
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
        assert_eq!(
            chat_escape("<!channel> a & b <https://x|y>"),
            "&lt;!channel&gt; a &amp; b &lt;https://x|y&gt;"
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
                deadlines: true,
            }],
            emails: Vec::new(),
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

//! Data orchestration end to end (docs/orchestration.md): deadlines and
//! their alerts (a late schedule slot, a run and a state over their
//! expected durations) received by a small SMTP server and a webhook
//! receiver in this test, once, across a restart; mail over STARTTLS with
//! a private CA and a login; pipelines (machine B
//! started once per execution of A, across a `kill -9` of the real
//! binary); dataset triggers (once per period when the last file arrives,
//! a timeout's alert, a backfill).
//!
//! Where time matters the server runs in this process on a manual clock
//! (the engine's and the triggers' time), wired as `stepline serve` wires
//! it (`stepline::config::parse`, the alert sinks, the deadlines), and the
//! test moves the clock: nothing waits for a real hour.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use stepline::triggers::Triggers;
use stepline_runtime::{Engine, EngineConfig, ManualClock, TaskCall, TaskFuture, TaskRunner};
use stepline_store::{SledStore, Store};

use crate::ops::Receiver;
use crate::rest::{Reply, http};
use crate::support::TempDir;
use crate::support::eventually;

struct NoTasks;

impl TaskRunner for NoTasks {
    fn run(&self, _call: TaskCall) -> TaskFuture {
        Box::pin(async { Ok(json!({})) })
    }
}

fn t(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).expect("time").to_utc()
}

/// A mail relay that speaks just enough SMTP (no TLS: the config says
/// `tls = "none"`, allowed to a loopback relay) and keeps each message.
struct Smtp {
    addr: SocketAddr,
    mails: Arc<Mutex<Vec<String>>>,
}

impl Smtp {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mails = Arc::new(Mutex::new(Vec::new()));
        let keep = Arc::clone(&mails);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let keep = Arc::clone(&keep);
                std::thread::spawn(move || {
                    let _ = smtp_session(stream, &keep);
                });
            }
        });
        Self { addr, mails }
    }

    fn mails(&self) -> Vec<String> {
        self.mails.lock().unwrap().clone()
    }
}

fn smtp_session(stream: TcpStream, mails: &Mutex<Vec<String>>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut out = stream.try_clone()?;
    let mut lines = BufReader::new(stream);
    out.write_all(b"220 test relay ready\r\n")?;
    loop {
        let mut line = String::new();
        if lines.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let verb = line.trim_end().to_ascii_uppercase();
        if verb.starts_with("EHLO") || verb.starts_with("HELO") {
            out.write_all(b"250-test relay\r\n250 8BITMIME\r\n")?;
        } else if verb.starts_with("MAIL") || verb.starts_with("RCPT") || verb.starts_with("RSET") {
            out.write_all(b"250 OK\r\n")?;
        } else if verb.starts_with("DATA") {
            out.write_all(b"354 go ahead\r\n")?;
            let mut data = String::new();
            loop {
                let mut l = String::new();
                if lines.read_line(&mut l)? == 0 {
                    return Ok(());
                }
                if l == ".\r\n" {
                    break;
                }
                data.push_str(&l);
            }
            mails.lock().unwrap().push(data);
            out.write_all(b"250 queued\r\n")?;
        } else if verb.starts_with("QUIT") {
            out.write_all(b"221 bye\r\n")?;
            return Ok(());
        } else {
            out.write_all(b"502 not here\r\n")?;
        }
    }
}

/// A relay that offers STARTTLS (with `NAME.pem` of `dir`, signed by
/// the test CA), requires it before anything else, then takes AUTH PLAIN;
/// keeps each message and each login.
struct StartTlsRelay {
    addr: SocketAddr,
    mails: Arc<Mutex<Vec<String>>>,
    logins: Arc<Mutex<Vec<String>>>,
}

impl StartTlsRelay {
    fn start(dir: &Path, name: &str) -> Self {
        use rustls_pki_types::pem::PemObject;
        let certs: Vec<rustls_pki_types::CertificateDer<'static>> =
            rustls_pki_types::CertificateDer::pem_file_iter(dir.join(format!("{name}.pem")))
                .expect("cert")
                .collect::<Result<_, _>>()
                .expect("certs");
        let key = rustls_pki_types::PrivateKeyDer::from_pem_file(dir.join(format!("{name}.key")))
            .expect("key");
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("server config"),
        );
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (mails, logins) = (
            Arc::new(Mutex::new(Vec::new())),
            Arc::new(Mutex::new(Vec::new())),
        );
        let (keep, login) = (Arc::clone(&mails), Arc::clone(&logins));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (config, keep, login) =
                    (Arc::clone(&config), Arc::clone(&keep), Arc::clone(&login));
                std::thread::spawn(move || {
                    let _ = starttls_session(stream, config, &keep, &login);
                });
            }
        });
        Self {
            addr,
            mails,
            logins,
        }
    }
}

/// One line, CRLF included, read a byte at a time (nothing is buffered
/// past it, so the TLS handshake finds the bytes that follow STARTTLS).
fn line_of(stream: &mut impl std::io::Read) -> std::io::Result<String> {
    let mut line = Vec::new();
    let mut byte = [0u8];
    while !line.ends_with(b"\n") {
        if stream.read(&mut byte)? == 0 {
            break;
        }
        line.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

fn starttls_session(
    mut plain: TcpStream,
    config: Arc<rustls::ServerConfig>,
    mails: &Mutex<Vec<String>>,
    logins: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    plain.set_read_timeout(Some(Duration::from_secs(30)))?;
    plain.write_all(b"220 test relay ready\r\n")?;
    loop {
        let verb = line_of(&mut plain)?.trim_end().to_ascii_uppercase();
        if verb.is_empty() {
            return Ok(());
        } else if verb.starts_with("EHLO") {
            plain.write_all(b"250-test relay\r\n250 STARTTLS\r\n")?;
        } else if verb == "STARTTLS" {
            plain.write_all(b"220 go ahead\r\n")?;
            break;
        } else {
            // Nothing but STARTTLS before TLS.
            plain.write_all(b"530 must issue STARTTLS first\r\n")?;
        }
    }
    let connection = rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(connection, plain);
    loop {
        let line = line_of(&mut tls)?;
        let verb = line.trim_end().to_ascii_uppercase();
        if verb.is_empty() {
            return Ok(());
        } else if verb.starts_with("EHLO") {
            tls.write_all(b"250-test relay\r\n250 AUTH PLAIN LOGIN\r\n")?;
        } else if verb.starts_with("AUTH PLAIN ") {
            logins
                .lock()
                .unwrap()
                .push(line.trim_end()[11..].to_owned());
            tls.write_all(b"235 welcome\r\n")?;
        } else if verb.starts_with("MAIL") || verb.starts_with("RCPT") || verb.starts_with("RSET") {
            tls.write_all(b"250 OK\r\n")?;
        } else if verb.starts_with("DATA") {
            tls.write_all(b"354 go ahead\r\n")?;
            let mut data = String::new();
            loop {
                let l = line_of(&mut tls)?;
                if l.is_empty() || l == ".\r\n" {
                    break;
                }
                data.push_str(&l);
            }
            mails.lock().unwrap().push(data);
            tls.write_all(b"250 queued\r\n")?;
        } else if verb.starts_with("QUIT") {
            tls.write_all(b"221 bye\r\n")?;
            let _ = tls.flush();
            return Ok(());
        } else {
            tls.write_all(b"502 not here\r\n")?;
        }
    }
}

/// A failed execution's alert mailed through a relay with STARTTLS and a
/// private CA, after a login; a relay entry without the CA cannot deliver
/// (the certificate is refused, nothing is sent in clear text instead).
#[test]
fn mail_goes_over_starttls_after_a_login() {
    let dir = TempDir::new("orchestration-starttls");
    crate::tls::make_ca(dir.path());
    crate::tls::make_server_cert(dir.path(), "relay");
    let relay = StartTlsRelay::start(dir.path(), "relay");
    let password = dir.write("smtp-password", "s3cret\n");
    let config = format!(
        r#"
[[alerts.emails]]
host = "127.0.0.1"
port = {port}
ca_file = {ca:?}
username = "stepline"
password_file = {password:?}
from = "stepline@example.com"
to = ["oncall@example.com"]

[[alerts.emails]]
host = "127.0.0.1"
port = {port}
from = "untrusted@example.com"
to = ["oncall@example.com"]
max_attempts = 1
"#,
        port = relay.addr.port(),
        ca = dir.path().join("ca.pem").display().to_string(),
        password = password.display().to_string(),
    );
    let clock = Arc::new(ManualClock::new(t("2026-12-07T10:00:00Z")));
    let server = Server::start(&config, clock, &dir.path().join("data"));
    server.machine(
        "boom",
        r#"{"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Bad", "Cause": "it broke"}}}"#,
    );
    let started = server.post("/v1/state-machines/boom/executions?name=b-1", "{}");
    assert!(started.status < 300, "{}", started.body);
    eventually("the mail", 20, || !relay.mails.lock().unwrap().is_empty());
    a_few_ticks();
    let mails = relay.mails.lock().unwrap().clone();
    assert_eq!(mails.len(), 1, "{mails:#?}");
    let mail = mails[0].replace("\r\n ", " ");
    assert!(
        mail.contains("Subject: stepline: execution b-1 of boom FAILED: Bad (it broke)"),
        "{mail}"
    );
    assert!(mail.contains("From: stepline@example.com"), "{mail}");
    // AUTH PLAIN: base64 of NUL, the user, NUL, the password.
    assert_eq!(
        relay.logins.lock().unwrap().clone(),
        ["AHN0ZXBsaW5lAHMzY3JldA=="]
    );
}

/// A server in this process on `clock`, over sled in `data`, configured
/// by the text of a stepline.toml; stopped when dropped.
struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(config: &str, clock: Arc<ManualClock>, data: &Path) -> Self {
        let config = stepline::config::parse(config).expect("the config");
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let data = data.to_path_buf();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let store: Arc<dyn Store> = Arc::new(SledStore::open(&data).expect("sled"));
                let mut engine_config = EngineConfig::default();
                let ended = stepline::alerts::observe(&mut engine_config);
                let engine =
                    Engine::open(store, Arc::new(NoTasks), clock, engine_config).expect("engine");
                let triggers =
                    Triggers::new(engine.clone(), &config.triggers.file_roots).expect("triggers");
                triggers
                    .install_config(&config.triggers.define)
                    .await
                    .expect("config triggers");
                let alerter = stepline::alerts::Alerter::new(engine.clone(), &config.alerts)
                    .expect("alerter");
                triggers.set_alerter(alerter.clone());
                triggers
                    .install_settings(stepline::settings::FileSettings::new(&config, false))
                    .expect("settings");
                let _handling = stepline::alerts::start(alerter, triggers.clone(), ended);
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                tx.send(listener.local_addr().expect("addr")).expect("send");
                stepline::http::serve_with_triggers(listener, engine, triggers, async {
                    let _ = stopped.await;
                })
                .await
                .expect("serve");
            });
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the server starts");
        Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn get(&self, path: &str) -> Reply {
        http(self.addr, "GET", path, &[], b"")
    }

    fn post(&self, path: &str, body: &str) -> Reply {
        http(self.addr, "POST", path, &[], body.as_bytes())
    }

    fn put(&self, path: &str, body: &str) -> Reply {
        http(self.addr, "PUT", path, &[], body.as_bytes())
    }

    fn machine(&self, name: &str, definition: &str) {
        let reply = self.post(&format!("/v1/state-machines?name={name}"), definition);
        assert!(reply.status == 201 || reply.status == 409, "{}", reply.body);
    }

    /// The executions of `machine`, by name.
    fn executions(&self, machine: &str) -> Vec<Value> {
        let reply = self.get(&format!("/v1/executions?machine={machine}&limit=1000"));
        assert_eq!(reply.status, 200, "{}", reply.body);
        let mut all = reply.json()["executions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        all.sort_by_key(|e| e["name"].as_str().unwrap_or_default().to_owned());
        all
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Moves `clock` to `time` (forward only).
fn at(clock: &ManualClock, time: &str) {
    clock.advance_to(t(time));
}

/// Lets the trigger driver run a few ticks (it wakes at least every
/// second), so that an alert raised twice would have been.
fn a_few_ticks() {
    std::thread::sleep(Duration::from_millis(2500));
}

const LONG: &str =
    r#"{"StartAt": "Work", "States": {"Work": {"Type": "Wait", "Seconds": 7200, "End": true}}}"#;

/// A slot of a schedule with `finished_by` whose run is still running at
/// the deadline, and one whose run never started (its state machine does
/// not exist): one alert each, by mail and by both webhooks (EventBridge
/// JSON and Slack text), and no second one, not even after a restart.
#[test]
fn a_late_schedule_slot_alerts_once_by_mail_and_webhook() {
    let dir = TempDir::new("orchestration-slots");
    let smtp = Smtp::start();
    let hooks = Receiver::start(0);
    let config = format!(
        r#"
[[alerts.webhooks]]
url = "http://{hooks}/json"

[[alerts.webhooks]]
url = "http://{hooks}/chat"
format = "slack"

[[alerts.emails]]
host = "127.0.0.1"
port = {smtp}
tls = "none"
from = "stepline <stepline@example.com>"
to = ["oncall@example.com"]

[[triggers.define]]
name = "nightly"
kind = "schedule"
state_machine = "etl"
schedule = "cron(0 6 * * ? *)"
finished_by = "07:00"

[[triggers.define]]
name = "ghost"
kind = "schedule"
state_machine = "missing"
schedule = "cron(0 6 * * ? *)"
finished_by = "07:00"
"#,
        hooks = hooks.addr,
        smtp = smtp.addr.port(),
    );
    let clock = Arc::new(ManualClock::new(t("2026-12-07T05:59:00Z")));
    let data = dir.path().join("data");
    let server = Server::start(&config, Arc::clone(&clock), &data);
    server.machine("etl", LONG);
    a_few_ticks();
    at(&clock, "2026-12-07T06:00:01Z");
    eventually("the 06:00 run", 10, || server.executions("etl").len() == 1);
    assert_eq!(
        server.executions("etl")[0]["name"],
        "nightly-20261207T060000Z"
    );
    // Before the deadline, nothing.
    at(&clock, "2026-12-07T06:59:00Z");
    a_few_ticks();
    assert!(smtp.mails().is_empty(), "{:?}", smtp.mails());
    assert!(hooks.on("/json").is_empty());

    at(&clock, "2026-12-07T07:00:30Z");
    eventually("two mails", 20, || smtp.mails().len() >= 2);
    eventually("two chat messages", 20, || hooks.on("/chat").len() >= 2);
    eventually("two events", 20, || hooks.on("/json").len() >= 2);
    a_few_ticks();
    // Headers folded over lines are read unfolded.
    let mails: Vec<String> = smtp
        .mails()
        .iter()
        .map(|m| m.replace("\r\n ", " "))
        .collect();
    assert_eq!(mails.len(), 2, "{mails:#?}");
    let running = mails
        .iter()
        .find(|m| m.contains("trigger nightly"))
        .expect("nightly's mail");
    assert!(running.contains("Subject: stepline: the 2026-12-07T06:00:00Z run of trigger nightly was to finish by 2026-12-07T07:00:00Z; it is still running"), "{running}");
    assert!(running.contains("To: oncall@example.com"), "{running}");
    let never = mails
        .iter()
        .find(|m| m.contains("trigger ghost"))
        .expect("ghost's mail");
    assert!(never.contains("it has not started"), "{never}");
    let chats: Vec<Value> = hooks
        .on("/chat")
        .iter()
        .map(|r| serde_json::from_str(&r.body).expect("json"))
        .collect();
    assert_eq!(chats.len(), 2);
    assert!(chats.iter().all(|c| {
        c.as_object().unwrap().len() == 1
            && c["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("stepline: the 2026-12-07T06:00:00Z run of trigger"))
    }));
    let events: Vec<Value> = hooks
        .on("/json")
        .iter()
        .map(|r| serde_json::from_str(&r.body).expect("json"))
        .collect();
    let nightly = events
        .iter()
        .find(|e| e["detail"]["details"]["trigger"] == "nightly")
        .expect("nightly's event");
    assert_eq!(nightly["detail-type"], "Stepline Deadline Missed");
    assert_eq!(nightly["source"], "stepline");
    assert_eq!(nightly["id"], "slot/nightly/20261207T060000Z");
    assert_eq!(nightly["detail"]["kind"], "slot");
    assert_eq!(nightly["detail"]["details"]["status"], "RUNNING");
    let listed = server.get("/v1/triggers/nightly").json();
    assert_eq!(listed["finishedBy"], "07:00", "{listed}");
    eventually("nothing pending", 10, || {
        server.get("/v1/triggers/nightly").json()["pendingAlerts"] == 0
    });

    // Once, even across a restart.
    drop(server);
    let server = Server::start(&config, Arc::clone(&clock), &data);
    at(&clock, "2026-12-07T07:05:00Z");
    a_few_ticks();
    assert_eq!(smtp.mails().len(), 2);
    assert_eq!(hooks.on("/json").len(), 2);
    assert_eq!(hooks.on("/chat").len(), 2);
    drop(server);
}

/// `[[deadlines]]`: a state over its expected duration, then the run over
/// its own: one alert each, and no second one after a restart.
#[test]
fn a_run_over_its_expected_duration_alerts_once() {
    let dir = TempDir::new("orchestration-durations");
    let hooks = Receiver::start(0);
    let config = format!(
        r#"
[[alerts.webhooks]]
url = "http://{hooks}/json"

[[deadlines]]
state_machine = "slow"
expected_seconds = 600
states = {{ Work = 120 }}
"#,
        hooks = hooks.addr,
    );
    let clock = Arc::new(ManualClock::new(t("2026-12-07T10:00:00Z")));
    let data = dir.path().join("data");
    let server = Server::start(&config, Arc::clone(&clock), &data);
    server.machine(
        "slow",
        r#"{"StartAt": "Prepare", "States": {
            "Prepare": {"Type": "Pass", "Next": "Work"},
            "Work": {"Type": "Wait", "Seconds": 3600, "End": true}}}"#,
    );
    a_few_ticks();
    let started = server.post("/v1/state-machines/slow/executions?name=run-1", "{}");
    assert!(
        started.status == 200 || started.status == 201,
        "{}",
        started.body
    );
    let kinds = || -> Vec<String> {
        hooks
            .on("/json")
            .iter()
            .map(|r| {
                let e: Value = serde_json::from_str(&r.body).expect("json");
                e["detail"]["kind"].as_str().unwrap_or_default().to_owned()
            })
            .collect()
    };
    at(&clock, "2026-12-07T10:01:00Z");
    a_few_ticks();
    assert!(kinds().is_empty(), "{:?}", kinds());
    at(&clock, "2026-12-07T10:02:30Z");
    eventually("the state's alert", 20, || kinds() == ["state"]);
    let state: Value = serde_json::from_str(&hooks.on("/json")[0].body).expect("json");
    assert_eq!(state["detail"]["details"]["state"], "Work", "{state}");
    assert!(
        state["detail"]["text"].as_str().is_some_and(|t| t.contains(
            "state Work of execution run-1 (slow) has run longer than its expected 2 min"
        )),
        "{state}"
    );
    at(&clock, "2026-12-07T10:10:30Z");
    eventually("the run's alert", 20, || kinds().len() == 2);
    a_few_ticks();
    assert_eq!(kinds(), ["state", "execution"]);
    let run: Value = serde_json::from_str(&hooks.on("/json")[1].body).expect("json");
    assert!(
        run["detail"]["text"]
            .as_str()
            .is_some_and(|t| t == "execution run-1 of slow has run longer than its expected 10 min"),
        "{run}"
    );
    drop(server);
    let _server = Server::start(&config, Arc::clone(&clock), &data);
    at(&clock, "2026-12-07T10:20:00Z");
    a_few_ticks();
    assert_eq!(kinds(), ["state", "execution"]);
}

/// Expected durations set over REST (no `[[deadlines]]`): checked from
/// the answer on, one alert each, kept across a restart; removed, they
/// raise no more.
#[test]
fn expected_durations_set_over_rest_alert() {
    let dir = TempDir::new("orchestration-settings-durations");
    let hooks = Receiver::start(0);
    let config = format!(
        r#"
[[alerts.webhooks]]
url = "http://{hooks}/json"
"#,
        hooks = hooks.addr,
    );
    let clock = Arc::new(ManualClock::new(t("2026-12-07T10:00:00Z")));
    let data = dir.path().join("data");
    let server = Server::start(&config, Arc::clone(&clock), &data);
    server.machine(
        "slow",
        r#"{"StartAt": "Prepare", "States": {
            "Prepare": {"Type": "Pass", "Next": "Work"},
            "Work": {"Type": "Wait", "Seconds": 3600, "End": true}}}"#,
    );
    let reply = server.put(
        "/v1/state-machines/slow/settings",
        r#"{"expectedSeconds": 600, "stateExpectedSeconds": {"Work": 120}}"#,
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    a_few_ticks();
    let started = server.post("/v1/state-machines/slow/executions?name=run-1", "{}");
    assert_eq!(started.status, 201, "{}", started.body);
    let kinds = || -> Vec<String> {
        hooks
            .on("/json")
            .iter()
            .map(|r| {
                let e: Value = serde_json::from_str(&r.body).expect("json");
                e["detail"]["kind"].as_str().unwrap_or_default().to_owned()
            })
            .collect()
    };
    at(&clock, "2026-12-07T10:01:00Z");
    a_few_ticks();
    assert!(kinds().is_empty(), "{:?}", kinds());
    at(&clock, "2026-12-07T10:02:30Z");
    eventually("the state's alert", 20, || kinds() == ["state"]);
    let state: Value = serde_json::from_str(&hooks.on("/json")[0].body).expect("json");
    assert!(
        state["detail"]["text"].as_str().is_some_and(|t| t.contains(
            "state Work of execution run-1 (slow) has run longer than its expected 2 min"
        )),
        "{state}"
    );
    // A restart keeps them: the run's own deadline still comes.
    drop(server);
    let server = Server::start(&config, Arc::clone(&clock), &data);
    let kept = server.get("/v1/state-machines/slow/settings").json();
    assert_eq!(kept["expectedSeconds"], 600, "{kept}");
    at(&clock, "2026-12-07T10:10:30Z");
    eventually("the run's alert", 20, || kinds().len() == 2);
    assert_eq!(kinds(), ["state", "execution"]);
    // Removed: a second run past its time raises nothing.
    let reply = http(
        server.addr,
        "DELETE",
        "/v1/state-machines/slow/settings",
        &[],
        b"",
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["expectedSeconds"], Value::Null);
    let started = server.post("/v1/state-machines/slow/executions?name=run-2", "{}");
    assert_eq!(started.status, 201, "{}", started.body);
    at(&clock, "2026-12-07T10:30:00Z");
    a_few_ticks();
    assert_eq!(kinds(), ["state", "execution"]);
}

/// The files of a period, under `root`.
fn write_period(root: &Path, date: &str, names: &[&str]) {
    let dir = root.join(date);
    std::fs::create_dir_all(&dir).expect("dir");
    for name in names {
        // Written aside, then renamed: a file counts once it exists.
        let aside = dir.join(format!(".{name}.part"));
        std::fs::write(&aside, "id\n1\n").expect("write");
        std::fs::rename(&aside, dir.join(name)).expect("rename");
    }
}

/// A dataset trigger starts one execution per day once its last file is
/// there; a day whose files do not come by the timeout raises one alert;
/// a backfill starts the past days whose files are there and names the
/// missing file of the others.
#[test]
fn a_dataset_trigger_fires_once_per_period_when_its_last_file_arrives() {
    let dir = TempDir::new("orchestration-dataset");
    let root = dir.path().join("landing");
    std::fs::create_dir_all(&root).expect("root");
    let hooks = Receiver::start(0);
    let config = format!(
        r#"
[triggers]
file_roots = [{root:?}]

[[triggers.define]]
name = "daily"
kind = "dataset"
state_machine = "load"
inputs = ["{root}/{{date}}/orders.csv", "{root}/{{date}}/customers.csv"]
poll_ms = 50
timeout_minutes = 600

[[alerts.webhooks]]
url = "http://{hooks}/json"
"#,
        root = root.display().to_string(),
        hooks = hooks.addr,
    );
    let clock = Arc::new(ManualClock::new(t("2026-12-07T05:00:00Z")));
    let server = Server::start(&config, Arc::clone(&clock), &dir.path().join("data"));
    server.machine(
        "load",
        r#"{"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}"#,
    );
    write_period(&root, "2026-12-07", &["orders.csv"]);
    a_few_ticks();
    assert!(server.executions("load").is_empty());
    write_period(&root, "2026-12-07", &["customers.csv"]);
    eventually("the day's run", 10, || server.executions("load").len() == 1);
    a_few_ticks();
    let runs = server.executions("load");
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["name"], "daily-20261207");
    let run = server
        .get(&format!("/v1/executions/load/{}", "daily-20261207"))
        .json();
    assert_eq!(run["input"]["period"], "20261207", "{run}");
    assert_eq!(
        run["input"]["files"][1],
        format!("{}/2026-12-07/customers.csv", root.display())
    );

    // The next day: once more when its last file comes.
    at(&clock, "2026-12-08T01:00:00Z");
    write_period(&root, "2026-12-08", &["customers.csv", "orders.csv"]);
    eventually("the next day's run", 10, || {
        server.executions("load").len() == 2
    });

    // The 9th: one file only, past the timeout (10:00): one alert, and
    // the day is no longer waited for.
    at(&clock, "2026-12-09T09:00:00Z");
    write_period(&root, "2026-12-09", &["orders.csv"]);
    a_few_ticks();
    assert!(hooks.on("/json").is_empty());
    at(&clock, "2026-12-09T10:00:05Z");
    eventually("the timeout's alert", 20, || hooks.on("/json").len() == 1);
    a_few_ticks();
    assert_eq!(hooks.on("/json").len(), 1);
    let alert: Value = serde_json::from_str(&hooks.on("/json")[0].body).expect("json");
    assert_eq!(alert["id"], "dataset/daily/20261209", "{alert}");
    assert_eq!(
        alert["detail"]["details"]["missing"],
        format!("{}/2026-12-09/customers.csv", root.display())
    );
    write_period(&root, "2026-12-09", &["customers.csv"]);
    a_few_ticks();
    assert_eq!(server.executions("load").len(), 2);

    // Backfill: the 5th has its files, the 6th does not; the 7th was run.
    write_period(&root, "2026-12-05", &["customers.csv", "orders.csv"]);
    let report = server
        .post(
            "/v1/triggers/daily/backfill",
            r#"{"from": "2026-12-05T00:00:00Z", "to": "2026-12-07T00:00:00Z"}"#,
        )
        .json();
    assert_eq!(
        (&report["slots"], &report["started"], &report["existing"]),
        (&json!(3), &json!(1), &json!(1)),
        "{report}"
    );
    assert!(
        report["errors"][0]
            .as_str()
            .is_some_and(|e| e.contains("2026-12-06/orders.csv is missing")),
        "{report}"
    );
    let names: Vec<String> = server
        .executions("load")
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        ["daily-20261205", "daily-20261207", "daily-20261208"]
    );
}

/// A path outside the roots, or with `..`, is refused when the trigger is
/// created.
#[test]
fn dataset_inputs_stay_inside_the_roots() {
    let dir = TempDir::new("orchestration-roots");
    let root = dir.path().join("landing");
    std::fs::create_dir_all(&root).expect("root");
    let config = format!(
        "[triggers]\nfile_roots = [{root:?}]\n",
        root = root.display().to_string()
    );
    let clock = Arc::new(ManualClock::new(t("2026-12-07T05:00:00Z")));
    let server = Server::start(&config, clock, &dir.path().join("data"));
    for (inputs, words) in [
        (
            json!(["/etc/{date}/passwd"]),
            "outside the configured file roots",
        ),
        (
            json!([format!("{}/../{{date}}/x.csv", root.display())]),
            "'..' is not allowed",
        ),
        (
            json!([format!("{}/{{week}}/x.csv", root.display())]),
            "unknown placeholder",
        ),
    ] {
        let reply = server.post(
            "/v1/triggers",
            &json!({"name": "d", "kind": "dataset", "stateMachine": "m", "inputs": inputs})
                .to_string(),
        );
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert!(reply.body.contains(words), "{words}: {}", reply.body);
    }
}

/// An `execution` trigger of the real binary's stepline.toml starts B
/// once per execution of A, with A's output as its input, across a
/// `kill -9` while A's executions end.
#[test]
fn b_starts_once_per_execution_of_a_across_kill_9() {
    use std::process::{Command, Stdio};

    let dir = TempDir::new("orchestration-pipeline");
    let data = dir.path().join("data");
    let config = dir.write(
        "stepline.toml",
        r#"
[[triggers.define]]
name = "after-a"
kind = "execution"
state_machine = "b"
source = "a"

[[triggers.define]]
name = "after-c"
kind = "execution"
state_machine = "d"
source = "c"
"#,
    );
    let serve = || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_stepline-under-test"))
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(&data)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("serve starts");
        let addr = crate::support::listening_address(&mut child, "http")
            .unwrap_or_else(|line| panic!("no address in {line:?}"));
        (child, addr)
    };
    let (mut child, addr) = serve();
    let a = r#"{"StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "SecondsPath": "$.wait", "Next": "Out"},
        "Out": {"Type": "Pass", "Parameters": {"from.$": "$$.Execution.Name"}, "End": true}}}"#;
    let b = r#"{"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}"#;
    for (name, definition) in [("a", a), ("b", b), ("c", b)] {
        let reply = http(
            addr,
            "POST",
            &format!("/v1/state-machines?name={name}"),
            &[],
            definition.as_bytes(),
        );
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
    // The first half ends at once (and starts B), the second half waits
    // 5 s: the kill comes with some of A ended, some running.
    let count = 30;
    for i in 0..count {
        let input = if i < count / 2 {
            r#"{"wait": 0}"#
        } else {
            r#"{"wait": 5}"#
        };
        let reply = http(
            addr,
            "POST",
            &format!("/v1/state-machines/a/executions?name=a-{i:03}"),
            &[],
            input.as_bytes(),
        );
        assert!(reply.status < 300, "{}", reply.body);
    }
    // c ends at once, and d does not exist: its start is being retried
    // when the kill comes; only the end's notice can start it then.
    let reply = http(
        addr,
        "POST",
        "/v1/state-machines/c/executions?name=c-1",
        &[],
        br#"{"rows": 3}"#,
    );
    assert!(reply.status < 300, "{}", reply.body);
    std::thread::sleep(Duration::from_millis(1000));
    let before =
        http(addr, "GET", "/v1/executions?machine=b&limit=1000", &[], b"").json()["executions"]
            .as_array()
            .map_or(0, Vec::len);
    let _ = child.kill();
    let _ = child.wait();

    assert!(before < count, "the kill came too late to test anything");
    let (mut child, addr) = serve();
    let reply = http(addr, "POST", "/v1/state-machines?name=d", &[], b.as_bytes());
    assert_eq!(reply.status, 201, "{}", reply.body);
    let list = |machine: &str| -> Vec<Value> {
        let reply = http(
            addr,
            "GET",
            &format!("/v1/executions?machine={machine}&limit=1000"),
            &[],
            b"",
        );
        reply.json()["executions"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    eventually("one B per A", 60, || {
        list("b").len() == count && list("b").iter().all(|e| e["status"] == "SUCCEEDED")
    });
    std::thread::sleep(Duration::from_millis(500));
    let bs = list("b");
    assert_eq!(bs.len(), count);
    let mut names: Vec<&str> = bs.iter().map(|e| e["name"].as_str().unwrap()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), count);
    assert!(names.iter().all(|n| n.starts_with("after-a-")), "{names:?}");
    // Each B's input is the output of its own A.
    let mut sources = Vec::new();
    for name in names {
        let b = http(addr, "GET", &format!("/v1/executions/b/{name}"), &[], b"").json();
        sources.push(b["input"]["from"].as_str().expect("from").to_owned());
    }
    sources.sort();
    let expected: Vec<String> = (0..count).map(|i| format!("a-{i:03}")).collect();
    assert_eq!(sources, expected);
    // c's end, handed over again after the restart, started d once.
    eventually("d started from c's notice", 20, || list("d").len() == 1);
    std::thread::sleep(Duration::from_millis(500));
    let ds = list("d");
    assert_eq!(ds.len(), 1, "{ds:?}");
    let d = http(
        addr,
        "GET",
        &format!("/v1/executions/d/{}", ds[0]["name"].as_str().unwrap()),
        &[],
        b"",
    )
    .json();
    assert_eq!(d["input"], json!({"rows": 3}), "{d}");
    let trigger = http(addr, "GET", "/v1/triggers/after-a", &[], b"").json();
    assert_eq!(trigger["kind"], "execution", "{trigger}");
    assert_eq!(trigger["source"], "a", "{trigger}");
    let _ = child.kill();
    let _ = child.wait();
}

/// Waits until the execution listed first for `machine` has ended; its
/// listing entry.
fn ended_execution(serve: &crate::ops::Serve, machine: &str, seconds: u64) -> Value {
    let mut last = Value::Null;
    eventually(&format!("an ended execution of {machine}"), seconds, || {
        let (status, body) = serve.get(&format!("/v1/executions?machine={machine}"));
        assert_eq!(status, 200, "{body}");
        let listed: Value = serde_json::from_str(&body).expect("json");
        last = listed["executions"][0].clone();
        last.is_object() && last["status"] != "RUNNING"
    });
    last
}

/// An execution's output, read over REST.
fn output_of(serve: &crate::ops::Serve, entry: &Value) -> Value {
    let id = entry["id"].as_str().expect("id");
    let (status, body) = serve.get(&format!("/v1/executions/{id}"));
    assert_eq!(status, 200, "{body}");
    let described: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(described["status"], "SUCCEEDED", "{described}");
    described["output"].clone()
}

/// The stepline.toml lines that register docs/examples/warehouse_jobs.py's
/// job `job` as the process `name`, with its folder arguments.
fn warehouse_job(name: &str, job: &str, folders: &[&Path]) -> String {
    let script = crate::support::repo_root().join("docs/examples/warehouse_jobs.py");
    let mut args = vec![script.display().to_string(), job.to_owned()];
    args.extend(folders.iter().map(|f| f.display().to_string()));
    format!(
        "[tasks.processes.{name}]\ncommand = \"/usr/bin/python3\"\nargs = {args:?}\ntimeout_seconds = 60\n\n"
    )
}

/// docs/orchestration.md's Glue Workflows chain, as an operator runs it:
/// the real binary, its stepline.toml, state-machines/glue-chain.asl.json;
/// a CSV file landing starts the crawl, the ETL job and the second crawl,
/// and lineage says which execution wrote the curated file from which
/// landed one.
#[test]
fn the_glue_workflow_chain_runs_when_a_file_lands() {
    let dir = TempDir::new("orchestration-glue");
    let landing = dir.path().join("lake/landing");
    let curated = dir.path().join("lake/curated");
    std::fs::create_dir_all(&landing).expect("landing");
    let mut toml = format!(
        "[triggers]\nfile_roots = [{:?}]\n\n[[triggers.define]]\nname = \"landed\"\nkind = \"file\"\nstate_machine = \"glue-chain\"\ndirectory = {:?}\nglob = \"*.csv\"\nstable_ms = 200\npoll_ms = 100\n\n",
        dir.path().join("lake").display().to_string(),
        landing.display().to_string(),
    );
    toml += &warehouse_job("crawl", "crawl", &[]);
    toml += &warehouse_job("etl", "etl", &[&curated]);
    let config = dir.write("stepline.toml", &toml);
    let serve = crate::ops::Serve::start(
        &dir.path().join("data"),
        &config,
        dir.path().join("serve.log"),
    );
    let definition = std::fs::read_to_string(
        crate::support::repo_root().join("state-machines/glue-chain.asl.json"),
    )
    .expect("the example");
    let (status, body) = serve.post(
        "/v1/state-machines",
        &json!({"name": "glue-chain", "definition": serde_json::from_str::<Value>(&definition).expect("json")}),
    );
    assert_eq!(status, 201, "{body}");

    // The file lands whole: written aside, renamed in.
    std::fs::write(landing.join("orders.part"), "id,amount\n1,12.5\n2,7\n").expect("write");
    std::fs::rename(landing.join("orders.part"), landing.join("orders.csv")).expect("rename");
    let run = ended_execution(&serve, "glue-chain", 60);
    let output = output_of(&serve, &run);
    let written = curated.join("orders.json");
    assert_eq!(
        output,
        json!({
            "file": "orders.csv",
            "landed": [{"table": "orders", "columns": ["id", "amount"], "rows": 2}],
            "curated": {"path": written.display().to_string(), "rows": 2},
            "catalog": [{"table": "orders", "columns": ["amount", "id"], "rows": 2}],
        })
    );
    let rows: Value =
        serde_json::from_str(&std::fs::read_to_string(&written).expect("curated")).expect("json");
    assert_eq!(rows["rows"][0], json!({"id": "1", "amount": 12.5}));

    // Lineage: this execution wrote the curated file, from the landed one.
    let (status, body) = serve.get(&format!("/v1/lineage?path={}", written.display()));
    assert_eq!(status, 200, "{body}");
    let lineage: Value = serde_json::from_str(&body).expect("json");
    let arn = run["arn"].as_str().expect("arn");
    assert_eq!(lineage["writtenBy"][0]["executionArn"], arn, "{lineage}");
    let (_, body) = serve.get(&format!(
        "/v1/lineage?path={}",
        landing.join("orders.csv").display()
    ));
    let lineage: Value = serde_json::from_str(&body).expect("json");
    assert!(
        lineage["readBy"]
            .as_array()
            .expect("readBy")
            .iter()
            .any(|r| r["executionArn"] == arn),
        "{lineage}"
    );
}

/// A night's exports (2026-03-01) and a server running the nightly DAG
/// from its stepline.toml (plus `extra` lines); the server, the warehouse
/// folder.
fn nightly_server(dir: &TempDir, extra: &str) -> (crate::ops::Serve, std::path::PathBuf) {
    let data = dir.path().join("exports");
    let warehouse = dir.path().join("warehouse");
    std::fs::create_dir_all(data.join("2026-03-01")).expect("exports");
    std::fs::write(
        data.join("2026-03-01/orders.csv"),
        "id,customer,amount\n1,ada,12.5\n2,bob,7\n3,ada,0.5\n",
    )
    .expect("orders");
    std::fs::write(
        data.join("2026-03-01/customers.csv"),
        "id,name\nada,Ada\nbob,Bob\n",
    )
    .expect("customers");
    let mut toml = String::from(
        "[[triggers.define]]\nname = \"nightly\"\nkind = \"schedule\"\nstate_machine = \"nightly-dag\"\nschedule = \"cron(0 2 * * ? *)\"\ntimezone = \"UTC\"\ncatch_up = \"none\"\nfinished_by = \"06:30\"\n\n",
    );
    toml += &warehouse_job("extract", "extract", &[&data]);
    toml += &warehouse_job("load", "load", &[&warehouse]);
    toml += extra;
    let config = dir.write("stepline.toml", &toml);
    let serve = crate::ops::Serve::start(
        &dir.path().join("state"),
        &config,
        dir.path().join("serve.log"),
    );
    let definition = std::fs::read_to_string(
        crate::support::repo_root().join("state-machines/nightly-dag.asl.json"),
    )
    .expect("the example");
    let (status, body) = serve.post(
        "/v1/state-machines",
        &json!({"name": "nightly-dag", "definition": serde_json::from_str::<Value>(&definition).expect("json")}),
    );
    assert_eq!(status, 201, "{body}");
    (serve, warehouse)
}

/// Runs the night of 2026-03-01 now, through a backfill of its slot.
fn backfill_one_night(serve: &crate::ops::Serve) {
    let (status, body) = serve.post(
        "/v1/triggers/nightly/backfill",
        &json!({"from": "2026-03-01T00:00:00Z", "to": "2026-03-01T23:59:59Z"}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["started"], 1, "{body}");
}

/// What a night of 2026-03-01 answers, its summary loaded at `loaded`.
fn one_night(loaded: &Path) -> Value {
    json!({
        "date": "2026-03-01",
        "summary": {"orders": 3, "revenue": 20, "customers": 2},
        "loaded": {"path": loaded.display().to_string()},
    })
}

/// docs/orchestration.md's Airflow-style nightly DAG, as an operator runs
/// it: the real binary, a schedule trigger with `finished_by`, and
/// state-machines/nightly-dag.asl.json; one night run by a backfill of its
/// slot extracts both tables side by side, transforms and loads the day's
/// summary.
#[test]
fn the_nightly_dag_runs_a_night_from_a_backfill() {
    let dir = TempDir::new("orchestration-nightly");
    let (serve, warehouse) = nightly_server(&dir, "");
    backfill_one_night(&serve);
    let run = ended_execution(&serve, "nightly-dag", 60);
    assert_eq!(run["name"], "nightly-20260301T020000Z", "{run}");
    let loaded = warehouse.join("2026-03-01.json");
    assert_eq!(output_of(&serve, &run), one_night(&loaded));
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(&loaded).expect("loaded")).expect("json");
    assert_eq!(summary, json!({"orders": 3, "revenue": 20, "customers": 2}));
}

/// boto3 and the AWS CLI work unchanged against a server using every
/// orchestration feature at once: a schedule with its deadline, a
/// machine's expected durations, an alert webhook, a pipeline, result
/// caching and lineage.
#[test]
fn aws_clients_work_against_a_server_using_every_orchestration_feature() {
    if !crate::support::boto3_available() || !crate::aws::aws_cli_available() {
        return;
    }
    let dir = TempDir::new("orchestration-aws");
    let receiver = Receiver::start(0);
    let extra = format!(
        "[[deadlines]]\nstate_machine = \"nightly-dag\"\nexpected_seconds = 3600\nstates = {{ Load = 600 }}\n\n\
         [[alerts.webhooks]]\nurl = \"http://{}/hook\"\n\n\
         [[triggers.define]]\nname = \"after-nightly\"\nkind = \"execution\"\nstate_machine = \"report\"\nsource = \"nightly-dag\"\n\n\
         [tasks.cache]\n\n[[tasks.cache.rules]]\nprocess = \"extract\"\nttl_seconds = 3600\n",
        receiver.addr
    );
    let (serve, warehouse) = nightly_server(&dir, &extra);
    let (status, body) = serve.post(
        "/v1/state-machines",
        &json!({"name": "report", "definition": {"StartAt": "Report", "States": {"Report": {"Type": "Pass", "End": true}}}}),
    );
    assert_eq!(status, 201, "{body}");
    // A first night through the schedule's backfill: it fills the cache.
    backfill_one_night(&serve);
    ended_execution(&serve, "nightly-dag", 60);

    // boto3: the same night again, started as any AWS client starts it,
    // its extracts answered from the cache; the pipeline's runs listed.
    let endpoint = format!("http://{}", serve.addr);
    let script = r#"
import json, sys, time, boto3
from botocore.config import Config
sfn = boto3.client("stepfunctions", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="test", aws_secret_access_key="test",
                   config=Config(retries={"max_attempts": 1}))
machines = {m["name"]: m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]}
started = sfn.start_execution(stateMachineArn=machines["nightly-dag"], name="again",
                              input=json.dumps({"scheduledTime": "2026-03-01T02:00:00Z"}))
for _ in range(1000):
    described = sfn.describe_execution(executionArn=started["executionArn"])
    if described["status"] != "RUNNING":
        break
    time.sleep(0.02)
events = sfn.get_execution_history(executionArn=started["executionArn"])["events"]
for _ in range(500):
    reports = sfn.list_executions(stateMachineArn=machines["report"])["executions"]
    if len(reports) == 2 and all(r["status"] == "SUCCEEDED" for r in reports):
        break
    time.sleep(0.02)
print(json.dumps({
    "machines": sorted(machines),
    "status": described["status"],
    "output": json.loads(described["output"]),
    "types": [e["type"] for e in events],
    "nights": len(sfn.list_executions(stateMachineArn=machines["nightly-dag"])["executions"]),
    "reports": [r["status"] for r in reports],
    "arn": started["executionArn"],
}))
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script, &endpoint])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "boto3 script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: Value = serde_json::from_slice(&out.stdout).expect("the script prints JSON");
    assert_eq!(result["machines"], json!(["nightly-dag", "report"]));
    assert_eq!(result["status"], "SUCCEEDED", "{result}");
    assert_eq!(
        result["output"],
        one_night(&warehouse.join("2026-03-01.json"))
    );
    assert_eq!(result["nights"], 2);
    assert_eq!(result["reports"], json!(["SUCCEEDED", "SUCCEEDED"]));
    let types = result["types"].as_array().expect("types");
    assert!(types.iter().any(|t| t == "TaskSucceeded"), "{result}");
    assert_eq!(types.last(), Some(&json!("ExecutionSucceeded")), "{result}");

    // The extracts of the boto3 run came from the cache (REST says so).
    let arn = result["arn"].as_str().expect("arn");
    let (status, body) = serve.get("/v1/executions/nightly-dag/again/history");
    assert_eq!(status, 200, "{body}");
    let history: Value = serde_json::from_str(&body).expect("json");
    let cached = history["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["details"]["cache"].is_object())
        .count();
    assert_eq!(cached, 2, "{history}");

    // The AWS CLI reads the same history and lists the executions.
    let cli = crate::aws::aws_cli(
        &endpoint,
        &[],
        &["get-execution-history", "--execution-arn", arn],
    )
    .expect("the AWS CLI reads the history");
    assert_eq!(
        cli["events"].as_array().map(Vec::len),
        Some(types.len()),
        "{cli}"
    );
    let listed = crate::aws::aws_cli(
        &endpoint,
        &[],
        &[
            "list-executions",
            "--state-machine-arn",
            "arn:aws:states:us-east-1:111111111111:stateMachine:report",
        ],
    )
    .expect("the AWS CLI lists executions");
    assert_eq!(
        listed["executions"].as_array().map(Vec::len),
        Some(2),
        "{listed}"
    );
    // No alert: nothing failed and no deadline passed.
    assert!(receiver.on("/hook").is_empty());
}

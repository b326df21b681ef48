//! Alerts by e-mail: `[[alerts.emails]]`, one SMTP relay and its
//! recipients each, sent with lettre (docs/decisions/smtp-alerts.md).
//!
//! The connection is upgraded with STARTTLS (the default, port 587) or is
//! TLS from the first byte (`tls = "tls"`, port 465), with rustls and
//! Mozilla's roots; a relay without TLS (`tls = "none"`) is accepted only
//! on a loopback address, where nothing crosses a network. The password is
//! given in the file, named by an environment variable, or read from a
//! file, once at start.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Mailboxes};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Deserialize;
use stepline_store::ExecutionStatus;

use super::{MAX_ATTEMPTS, default_attempts, default_statuses, yes};

/// One exchange with the relay (connect, hello, TLS, login, send).
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);
/// The first retry waits this long; each next one twice as long.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// How the connection to the relay is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailTls {
    /// Plain connection upgraded with STARTTLS, which must be offered.
    #[default]
    Starttls,
    /// TLS from the start (SMTPS).
    Tls,
    /// No TLS: loopback relays only.
    None,
}

/// One `[[alerts.emails]]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// The relay's host name (checked against its certificate).
    pub host: String,
    /// Default 587 (STARTTLS), 465 (TLS) or 25 (none).
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: EmailTls,
    /// PEM certificates of CAs the relay's certificate may chain to,
    /// besides Mozilla's roots (a relay with a private CA).
    pub ca_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
    /// The sender, `alerts@example.com` or `Stepline <alerts@example.com>`.
    pub from: String,
    pub to: Vec<String>,
    /// The end statuses that notify (default FAILED, TIMED_OUT, ABORTED).
    #[serde(default = "default_statuses")]
    pub statuses: Vec<ExecutionStatus>,
    /// State machine names this is for; every one when absent.
    pub state_machines: Option<Vec<String>>,
    /// Whether missed deadlines are mailed too (default true).
    #[serde(default = "yes")]
    pub deadlines: bool,
    /// Attempts per mail, the first included (default 5).
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
}

impl EmailConfig {
    fn port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            EmailTls::Starttls => 587,
            EmailTls::Tls => 465,
            EmailTls::None => 25,
        })
    }
}

/// The rules serde cannot say; the error starts with the field's name.
pub fn check(c: &EmailConfig) -> Result<(), String> {
    let ipv6 = c
        .host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::Ipv6Addr>()
        .is_ok();
    if c.host.is_empty() || (c.host.contains(['/', ' ', ':', '@']) && !ipv6) {
        return Err(format!("host: '{}' is not a host name", c.host));
    }
    if c.port == Some(0) {
        return Err("port: 0 is not a port".into());
    }
    if c.tls == EmailTls::None && c.ca_file.is_some() {
        return Err("ca_file: a relay without TLS has no certificate to check".into());
    }
    if c.tls == EmailTls::None && !loopback(&c.host) {
        return Err(format!(
            "tls: \"none\" sends alerts (and a password) in clear text; it is allowed only to a loopback relay, not to '{}'",
            c.host
        ));
    }
    c.from
        .parse::<Mailbox>()
        .map_err(|e| format!("from: '{}' is not an address: {e}", c.from))?;
    if c.to.is_empty() {
        return Err("to: name at least one recipient".into());
    }
    for to in &c.to {
        to.parse::<Mailbox>()
            .map_err(|e| format!("to: '{to}' is not an address: {e}"))?;
    }
    let passwords = [
        c.password.is_some(),
        c.password_env.is_some(),
        c.password_file.is_some(),
    ]
    .iter()
    .filter(|set| **set)
    .count();
    if passwords > 1 {
        return Err("password: give one of password, password_env and password_file".into());
    }
    if passwords == 1 && c.username.is_none() {
        return Err("username: a password needs a username".into());
    }
    if c.statuses.is_empty() || c.statuses.contains(&ExecutionStatus::Running) {
        return Err(
            "statuses: name at least one of SUCCEEDED, FAILED, TIMED_OUT, ABORTED, and only those"
                .into(),
        );
    }
    if !(1..=MAX_ATTEMPTS).contains(&c.max_attempts) {
        return Err(format!(
            "max_attempts: {} is not between 1 and {MAX_ATTEMPTS}",
            c.max_attempts
        ));
    }
    Ok(())
}

fn loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The longest subject, in characters; the body has the whole text.
const MAX_SUBJECT_CHARS: usize = 200;

/// A one-line subject from an alert's text: control characters (a cause's
/// line breaks, from definitions and tasks) become spaces, so nothing can
/// end the header or add one.
pub fn subject(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_SUBJECT_CHARS)
        .collect();
    if text.chars().count() > MAX_SUBJECT_CHARS {
        out.push('…');
    }
    out.trim_end().to_owned()
}

/// One mail to send.
#[derive(Debug, Clone)]
pub struct Mail {
    pub subject: String,
    pub body: String,
    /// The alert's id, in a header, so a duplicate can be told.
    pub id: String,
}

/// A relay ready to send to.
#[derive(Clone)]
pub struct Mailer {
    config: EmailConfig,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Mailboxes,
}

impl std::fmt::Debug for Mailer {
    // The config holds the password: only where the mail goes is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("host", &self.config.host)
            .field("to", &self.config.to)
            .finish()
    }
}

impl Mailer {
    /// Resolves the password and builds the transport; errors start with
    /// the field's name.
    pub fn new(config: &EmailConfig) -> Result<Self, String> {
        check(config)?;
        let password = match (
            &config.password,
            &config.password_env,
            &config.password_file,
        ) {
            (Some(p), _, _) => Some(p.clone()),
            (_, Some(name), _) => Some(std::env::var(name).map_err(|_| {
                format!("password_env: the environment variable {name} is not set")
            })?),
            (_, _, Some(path)) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| format!("password_file: cannot read {}: {e}", path.display()))?
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            ),
            _ => None,
        };
        let host = config.host.trim_start_matches('[').trim_end_matches(']');
        let tls = match config.tls {
            EmailTls::None => Tls::None,
            EmailTls::Starttls | EmailTls::Tls => {
                let mut builder = TlsParameters::builder(host.to_owned());
                if let Some(path) = &config.ca_file {
                    let pem = std::fs::read(path)
                        .map_err(|e| format!("ca_file: cannot read {}: {e}", path.display()))?;
                    let ca = Certificate::from_pem(&pem).map_err(|e| {
                        format!("ca_file: {} is not a PEM certificate: {e}", path.display())
                    })?;
                    builder = builder.add_root_certificate(ca);
                }
                let parameters = builder
                    .build_rustls()
                    .map_err(|e| format!("host: TLS for '{host}': {e}"))?;
                if config.tls == EmailTls::Tls {
                    Tls::Wrapper(parameters)
                } else {
                    Tls::Required(parameters)
                }
            }
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(config.port())
            .tls(tls)
            .timeout(Some(SMTP_TIMEOUT));
        if let (Some(user), Some(password)) = (&config.username, password) {
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        let from = config
            .from
            .parse::<Mailbox>()
            .map_err(|e| format!("from: {e}"))?;
        let mut to = Mailboxes::new();
        for address in &config.to {
            to.push(address.parse::<Mailbox>().map_err(|e| format!("to: {e}"))?);
        }
        Ok(Self {
            config: config.clone(),
            transport: builder.build(),
            from,
            to,
        })
    }

    pub fn config(&self) -> &EmailConfig {
        &self.config
    }

    /// Sends `mail` until the relay accepts it or `max_attempts`, waiting
    /// twice as long after each failure.
    pub async fn send(&self, mail: &Mail) -> Result<(), String> {
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(mail.subject.clone())
            .header(ContentType::TEXT_PLAIN);
        for to in self.to.iter() {
            builder = builder.to(to.clone());
        }
        // The alert id as the message's own id: a mail client threads or
        // collapses duplicates by it.
        let domain = self.from.email.domain().to_owned();
        let id: String = mail
            .id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '.'
                }
            })
            .collect();
        builder = builder.message_id(Some(format!("<{id}@{domain}>")));
        let message = builder
            .body(mail.body.clone())
            .map_err(|e| format!("cannot build the mail: {e}"))?;
        let mut wait = FIRST_BACKOFF;
        let mut last = String::new();
        for attempt in 1..=self.config.max_attempts {
            match self.transport.send(message.clone()).await {
                Ok(_) => return Ok(()),
                Err(e) => last = e.to_string(),
            }
            if attempt < self.config.max_attempts {
                tracing::debug!(host = %self.config.host, attempt, error = %last, "alert mail attempt failed; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(MAX_BACKOFF);
            }
        }
        Err(format!("{} attempts: {last}", self.config.max_attempts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Result<EmailConfig, String> {
        let text = format!(
            "host = \"smtp.example.com\"\nfrom = \"a@example.com\"\nto = [\"b@example.com\"]\n{extra}"
        );
        let c: EmailConfig = toml::from_str(&text).map_err(|e| e.to_string())?;
        check(&c).map(|()| c)
    }

    #[test]
    fn a_subject_is_one_line() {
        assert_eq!(
            subject("stepline: run FAILED: X (a\r\nBcc: evil@example.com)\narn"),
            "stepline: run FAILED: X (a  Bcc: evil@example.com) arn"
        );
        assert_eq!(subject(&"x".repeat(300)).chars().count(), 201);
    }

    #[test]
    fn relays_are_checked() {
        let c = config("").expect("starttls by default");
        assert_eq!((c.tls, c.port()), (EmailTls::Starttls, 587));
        assert_eq!(config("tls = \"tls\"").expect("smtps").port(), 465);
        let clear = config("tls = \"none\"").unwrap_err();
        assert!(clear.contains("loopback"), "{clear}");
        let c = config("tls = \"none\"\nhost = \"127.0.0.1\"");
        assert!(c.is_err(), "host given twice is a toml error");
        let local: EmailConfig = toml::from_str(
            "host = \"127.0.0.1\"\ntls = \"none\"\nfrom = \"a@example.com\"\nto = [\"b@example.com\"]",
        )
        .expect("toml");
        assert!(check(&local).is_ok());
        assert!(config("username = \"u\"\npassword = \"p\"").is_ok());
        let both = config("username = \"u\"\npassword = \"p\"\npassword_env = \"X\"").unwrap_err();
        assert!(both.starts_with("password:"), "{both}");
        let nobody = config("password = \"p\"").unwrap_err();
        assert!(nobody.starts_with("username:"), "{nobody}");
        let bad: EmailConfig = toml::from_str(
            "host = \"smtp.example.com\"\nfrom = \"not an address\"\nto = [\"b@example.com\"]",
        )
        .expect("toml");
        assert!(check(&bad).unwrap_err().starts_with("from:"));
    }
}

//! What the operator allows tasks to reach: the `[tasks]` part of
//! stepline.toml. A definition can run only the processes registered here
//! and call only the HTTP destinations allowed here.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{Map, Value};

/// Everything tasks may use.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskConfig {
    /// Commands a `stepline:process:NAME` task may run, by NAME.
    #[serde(default)]
    pub processes: BTreeMap<String, ProcessConfig>,
    #[serde(default)]
    pub http: HttpConfig,
    /// Credentials for HTTP tasks, by the connection name in
    /// `Authentication.ConnectionArn` (`arn:aws:events:...:connection/NAME/...`).
    #[serde(default)]
    pub connections: BTreeMap<String, ConnectionConfig>,
    /// What a Lambda function name runs here, by function name.
    #[serde(default)]
    pub lambda: BTreeMap<String, LambdaConfig>,
    /// Which task results are kept and reused (`[tasks.cache]`).
    #[serde(default)]
    pub cache: CacheConfig,
    /// A mock configuration file in Step Functions Local's format
    /// (see `tasks::mock`); `SFN_MOCK_CONFIG` in the environment is used
    /// when this is not set.
    pub mock_config: Option<PathBuf>,
    /// The addresses stepline's own server listens on, set by `stepline
    /// serve` once it is bound (never read from the file): HTTP tasks may
    /// not call them unless `[tasks.http] allow_own_address` says so, or a
    /// definition could drive the API with the server's own reach.
    #[serde(skip)]
    pub listen: Vec<SocketAddr>,
}

/// A registered command. Run without a shell: `command` is the program,
/// `args` its fixed arguments; the task's input arrives on stdin.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessConfig {
    pub command: PathBuf,
    #[serde(default)]
    pub args: Vec<String>,
    pub working_dir: Option<PathBuf>,
    /// Variables set for the process.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Variables of stepline's own environment passed through (nothing
    /// else is: the process starts from an empty environment).
    #[serde(default)]
    pub env_allow: Vec<String>,
    /// A hard limit on one run, whatever the state's TimeoutSeconds.
    pub timeout_seconds: Option<u64>,
    /// The most stdout a run may write (its result).
    #[serde(default = "default_max_stdout")]
    pub max_stdout_bytes: usize,
    /// How much of the end of stderr is kept with a failed attempt.
    #[serde(default = "default_stderr_tail")]
    pub stderr_tail_bytes: usize,
}

fn default_max_stdout() -> usize {
    // A task's result is a state's payload: AWS's 256 KiB, plus room for
    // whitespace in pretty-printed output.
    1024 * 1024
}

fn default_stderr_tail() -> usize {
    16 * 1024
}

/// Where HTTP tasks may go and how long they may take.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Destinations besides loopback, as URL prefixes
    /// (`https://api.example.com/`, `http://10.0.0.5:8080/v1/`) or
    /// `*` for anywhere.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Whether 127.0.0.0/8, ::1 and localhost are allowed without being
    /// listed (default true: a local service is the common case).
    #[serde(default = "yes")]
    pub allow_loopback: bool,
    /// Whether tasks may call stepline's own listen address (default
    /// false, whatever `allow_loopback` and `allow` say).
    #[serde(default)]
    pub allow_own_address: bool,
    #[serde(default = "default_http_timeout")]
    pub timeout_seconds: u64,
    #[serde(default = "default_max_response")]
    pub max_response_bytes: usize,
    /// A PEM file of CA certificates HTTPS destinations may be signed by,
    /// besides the built-in roots (a private CA).
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
    /// Whether the system's root store (or the file `SSL_CERT_FILE` names)
    /// is trusted too, besides Mozilla's roots built into stepline.
    #[serde(default)]
    pub system_roots: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            allow: Vec::new(),
            allow_loopback: true,
            allow_own_address: false,
            timeout_seconds: default_http_timeout(),
            max_response_bytes: default_max_response(),
            ca_file: None,
            system_roots: false,
        }
    }
}

fn yes() -> bool {
    true
}

fn default_http_timeout() -> u64 {
    60
}

fn default_max_response() -> usize {
    1024 * 1024
}

/// A connection: credentials for HTTP tasks and the URLs they may be
/// sent to. In stepline.toml, one of `api_key`, `basic`, `bearer`,
/// `oauth` beside `allow`:
/// `{ allow = ["https://api.example.com/v1/"], bearer = { token = "..." } }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "Map<String, Value>")]
pub struct ConnectionConfig {
    /// URL prefixes (matched as `[tasks.http] allow` is) the credentials
    /// may be sent to. Empty, they go nowhere: a definition chooses the
    /// URL, so without this binding it could send them anywhere allowed.
    pub allow: Vec<String>,
    pub auth: ConnectionAuth,
}

impl TryFrom<Map<String, Value>> for ConnectionConfig {
    type Error = String;

    fn try_from(mut raw: Map<String, Value>) -> Result<Self, String> {
        const FIELDS: [&str; 5] = ["allow", "api_key", "basic", "bearer", "oauth"];
        if let Some(unknown) = raw.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(format!(
                "unknown field `{unknown}`, expected one of `allow`, `api_key`, `basic`, `bearer`, `oauth`"
            ));
        }
        let allow = match raw.remove("allow") {
            None => Vec::new(),
            Some(value) => serde_json::from_value(value).map_err(|e| {
                format!("allow: the URL prefixes the connection may be sent to, as strings: {e}")
            })?,
        };
        let auth = serde_json::from_value(Value::Object(raw)).map_err(|e| {
            format!("a connection is `allow` and exactly one of api_key, basic, bearer, oauth: {e}")
        })?;
        Ok(Self { allow, auth })
    }
}

/// How an HTTP task authenticates, as an EventBridge connection does.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum ConnectionAuth {
    /// A header with a key: `{ api_key = { name = "x-api-key", value = "..." } }`.
    ApiKey {
        name: String,
        value: String,
    },
    Basic {
        username: String,
        password: String,
    },
    /// A fixed bearer token.
    Bearer {
        token: String,
    },
    /// OAuth client credentials: a token is fetched from `token_url` and
    /// kept until it expires.
    Oauth {
        token_url: String,
        client_id: String,
        client_secret: String,
        #[serde(default)]
        scope: Option<String>,
    },
}

/// A Lambda function run here: POSTed to a URL, or a registered process.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum LambdaConfig {
    Url(String),
    Process(String),
}

/// Result caching: the rules that opt task resources in, and the bounds
/// of what is kept (docs/tasks.md, "Caching results").
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// At most this many entries are kept (the ones expiring soonest go
    /// first when there are more).
    #[serde(default = "default_cache_entries")]
    pub max_entries: u64,
    /// A result larger than this (as compact JSON) is not kept.
    #[serde(default = "default_cache_entry_bytes")]
    pub max_entry_bytes: usize,
    /// How often expired entries are purged.
    #[serde(default = "default_cache_purge_seconds")]
    pub purge_interval_seconds: u64,
    /// The first rule that matches a task decides; no rule, no caching.
    #[serde(default)]
    pub rules: Vec<CacheRule>,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            max_entries: default_cache_entries(),
            max_entry_bytes: default_cache_entry_bytes(),
            purge_interval_seconds: default_cache_purge_seconds(),
            rules: Vec::new(),
        }
    }
}

fn default_cache_entries() -> u64 {
    10_000
}

fn default_cache_entry_bytes() -> usize {
    // A state's payload.
    256 * 1024
}

fn default_cache_purge_seconds() -> u64 {
    60
}

/// One rule: which tasks (exactly one of `process`, `http`, `lambda`,
/// `activity`, `resource`), for how long, and what the key is made of.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheRule {
    /// A registered process, by name (`stepline:process:NAME`).
    #[serde(default)]
    pub process: Option<String>,
    /// HTTP tasks whose `ApiEndpoint` starts with this prefix.
    #[serde(default)]
    pub http: Option<String>,
    /// A Lambda function by name, called either way (its ARN as the
    /// Resource, or `lambda:invoke` with its name or ARN as FunctionName).
    #[serde(default)]
    pub lambda: Option<String>,
    /// An activity by name.
    #[serde(default)]
    pub activity: Option<String>,
    /// Any task resource, exactly as the definition writes it.
    #[serde(default)]
    pub resource: Option<String>,
    /// How long a result is reused.
    pub ttl_seconds: u64,
    /// A payload template (`"field.$": "$.path"`, intrinsic functions)
    /// over the task's effective input: the key is the hash of what it
    /// makes instead of the whole input.
    #[serde(default)]
    pub key: Option<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_safe() {
        let c = TaskConfig::default();
        assert!(c.processes.is_empty());
        assert!(c.http.allow.is_empty());
        assert!(c.http.allow_loopback);
        assert!(!c.http.allow_own_address);
    }

    #[test]
    fn a_connection_is_its_binding_and_one_kind_of_credentials() {
        let parse = |v: Value| serde_json::from_value::<ConnectionConfig>(v);
        let c = parse(
            serde_json::json!({"allow": ["https://a.example/v1/"], "bearer": {"token": "t"}}),
        )
        .unwrap();
        assert_eq!(c.allow, ["https://a.example/v1/"]);
        assert_eq!(c.auth, ConnectionAuth::Bearer { token: "t".into() });
        // Without a binding the connection goes nowhere.
        let c = parse(serde_json::json!({"bearer": {"token": "t"}})).unwrap();
        assert!(c.allow.is_empty());
        for bad in [
            serde_json::json!({}),
            serde_json::json!({"allow": []}),
            serde_json::json!({"allow": "https://a/", "bearer": {"token": "t"}}),
            serde_json::json!({"bearer": {"token": "t"}, "basic": {"username": "u", "password": "p"}}),
            serde_json::json!({"alow": [], "bearer": {"token": "t"}}),
        ] {
            assert!(parse(bad.clone()).is_err(), "{bad}");
        }
    }
}

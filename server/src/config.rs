//! The operator's configuration file, stepline.toml: where the server
//! listens and keeps its data, the region and account in its ARNs, and what
//! tasks may reach (`[tasks]`, see `stepline_runtime::tasks::config`).
//!
//! Unknown keys and wrong types are errors with the file's line and column;
//! command-line flags override the file. The same shape is described for
//! editors by schemas/stepline.config.schema.json.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use stepline_runtime::tasks::config::TaskConfig;

/// sled's page cache when the config sets none: sled's own default (1 GiB)
/// is more than a small server should hold, and since values are kept in
/// pieces the bound is real (docs/performance.md, distributed Map).
pub const DEFAULT_STORE_CACHE_MIB: u32 = 256;
const MIN_STORE_CACHE_MIB: u32 = 8;

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub tasks: TaskConfig,
    #[serde(default)]
    pub triggers: TriggersConfig,
    #[serde(default)]
    pub alerts: crate::alerts::AlertsConfig,
    /// `[[deadlines]]`: state machines' expected durations.
    #[serde(default)]
    pub deadlines: Vec<crate::triggers::MachineDeadlines>,
    /// `[[limits]]`: at most `max_running` executions of a state machine
    /// run at once; the others queue (docs/orchestration.md).
    #[serde(default)]
    pub limits: Vec<MachineLimit>,
    /// `[[windows]]`: when a state machine's executions may start, and
    /// what a start outside does (docs/orchestration.md).
    #[serde(default)]
    pub windows: Vec<crate::windows::MachineWindows>,
    /// `[pools.NAME]`: slots task resources draw from.
    #[serde(default)]
    pub pools: std::collections::BTreeMap<String, stepline_runtime::pools::PoolConfig>,
    /// `[buckets]`: bucket names (as a definition's ItemReader and
    /// ResultWriter give them) mapped to local directories.
    #[serde(default)]
    pub buckets: std::collections::BTreeMap<String, PathBuf>,
    /// `[tls]`: HTTPS for the server.
    #[serde(default)]
    pub tls: TlsConfig,
}

/// One `[[limits]]` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineLimit {
    /// The state machine's name.
    pub state_machine: String,
    /// How many of its executions may run at once.
    pub max_running: u32,
}

impl Config {
    /// `max_running` by state machine name, as the engine takes it.
    pub fn max_running(&self) -> std::collections::HashMap<String, u32> {
        self.limits
            .iter()
            .map(|l| (l.state_machine.clone(), l.max_running))
            .collect()
    }
}

/// Each state machine limited once, to at least one running execution;
/// not with a cluster, whose nodes would each count their own.
pub(crate) fn check_limits(limits: &[MachineLimit]) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for (i, limit) in limits.iter().enumerate() {
        if limit.state_machine.is_empty() {
            return Err(format!(
                "limits[{i}].state_machine: give a state machine's name"
            ));
        }
        if limit.max_running == 0 {
            return Err(format!("limits[{i}].max_running: 0 is not at least 1"));
        }
        if !seen.insert(&limit.state_machine) {
            return Err(format!(
                "limits[{i}]: the state machine '{}' is limited twice",
                limit.state_machine
            ));
        }
    }
    Ok(())
}

/// Why windows are refused with the postgres store.
pub(crate) const WINDOWS_NOT_WITH_POSTGRES: &str = "windows: held starts are kept by one node; execution windows cannot be used with the postgres store (several nodes)";

/// `[[windows]]` and triggers' windows: their syntax, and not with a
/// cluster, whose nodes would each hold their own starts.
fn check_windows(config: &Config) -> Result<(), String> {
    crate::windows::check(&config.windows)?;
    if config.store.url.is_some() {
        if !config.windows.is_empty() {
            return Err(WINDOWS_NOT_WITH_POSTGRES.into());
        }
        if let Some(spec) = config.triggers.define.iter().find(|s| s.windows.is_some()) {
            return Err(format!(
                "triggers.define '{}': windows: held starts are kept by one node; execution windows cannot be used with the postgres store (several nodes)",
                spec.name
            ));
        }
    }
    Ok(())
}

/// `[tls]`: the server's certificate chain and private key, PEM files read
/// at start and again on SIGHUP (see `crate::tls`). Neither: plain HTTP.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

impl TlsConfig {
    /// Both files, or neither; one without the other is an error.
    pub fn files(&self) -> Result<Option<crate::tls::TlsFiles>, String> {
        match (&self.cert_file, &self.key_file) {
            (Some(cert_file), Some(key_file)) => Ok(Some(crate::tls::TlsFiles {
                cert_file: cert_file.clone(),
                key_file: key_file.clone(),
            })),
            (None, None) => Ok(None),
            (Some(_), None) => Err("tls: cert_file is set without key_file; give both".into()),
            (None, Some(_)) => Err("tls: key_file is set without cert_file; give both".into()),
        }
    }
}

/// `[triggers]`: the directories file triggers may watch, and the
/// triggers defined here (`[[triggers.define]]`, see docs/triggers.md).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggersConfig {
    #[serde(default)]
    pub file_roots: Vec<PathBuf>,
    #[serde(default)]
    pub define: Vec<crate::triggers::TriggerSpec>,
}

/// `[server]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub region: Option<String>,
    pub account: Option<String>,
    /// Days closed executions are kept (default 90, as AWS); 0 keeps them
    /// forever.
    pub retention_days: Option<u32>,
    /// MiB of sled's page cache (default [`DEFAULT_STORE_CACHE_MIB`]).
    pub store_cache_mib: Option<u32>,
    /// AWS access keys (`[[server.access_keys]]`): when any credential is
    /// configured, AWS-dialect requests must be signed (SigV4) with one.
    #[serde(default)]
    pub access_keys: Vec<AccessKeyConfig>,
    /// Bearer tokens (`[[server.tokens]]`) for the REST API.
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: Option<u32>,
    /// The most bytes a request's head (request line and headers) may take.
    pub max_header_bytes: Option<u32>,
    /// Seconds a connection may take to send a request's headers, and may
    /// stay idle between requests (against slowloris).
    pub header_timeout_seconds: Option<u32>,
    /// Seconds a request may take to send its body.
    pub body_timeout_seconds: Option<u32>,
    /// Connections one client (one IP address) may hold at once; past it,
    /// its oldest connection that is between requests is closed.
    pub max_connections_per_client: Option<u32>,
    /// Names the server answers to besides the loopback names and the
    /// address a client connected to (`name` or `name:port`, or `*` for
    /// any): a request with another `Host` is refused (DNS rebinding).
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Origins whose pages may send requests that change something, besides
    /// the server's own (`scheme://host[:port]`).
    #[serde(default)]
    pub origins: Vec<String>,
    /// Lets webhook triggers without a secret run on a server that has
    /// credentials (otherwise refused: anyone could start them).
    #[serde(default)]
    pub allow_unsigned_webhooks: bool,
}

/// `[store]`: the database several nodes share. Without a `url`, the
/// embedded store in `server.data_dir`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// A PostgreSQL URL (`postgres://user@host:5432/db`).
    pub url: Option<String>,
    /// A file whose first line is the password.
    pub password_file: Option<PathBuf>,
    /// An environment variable holding the password.
    pub password_env: Option<String>,
    /// The schema the tables live in (default `stepline`).
    pub schema: Option<String>,
    /// At most this many connections from this node (default 8).
    pub connections: Option<u32>,
    /// How long this node's leases outlive its last renewal (default 5).
    pub lease_seconds: Option<u32>,
    /// The start of this node's id (default the host's name).
    pub node_name: Option<String>,
}

/// One AWS access key: its id and its secret, given in the file or named
/// by an environment variable read at start.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKeyConfig {
    pub id: String,
    pub secret: Option<String>,
    pub secret_env: Option<String>,
}

/// One REST bearer token, given in the file or named by an environment
/// variable read at start.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub token: Option<String>,
    pub token_env: Option<String>,
}

/// Reads and checks `path`. The error is ready to print: file, line,
/// column and what is wrong.
pub fn load(path: &Path) -> Result<Config, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}:{e}", path.display()))
}

/// Parses and checks the text of a configuration file.
pub fn parse(text: &str) -> Result<Config, String> {
    let config: Config = toml::from_str(text).map_err(|e| {
        let (line, column) = e
            .span()
            .map_or((1, 1), |span| line_column(text, span.start));
        format!("{line}:{column}: {}", e.message().trim())
    })?;
    check(&config)?;
    Ok(config)
}

/// Rules serde cannot say.
fn check(config: &Config) -> Result<(), String> {
    if let Some(account) = &config.server.account {
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "server.account: '{account}' is not an AWS account id (12 digits)"
            ));
        }
    }
    if let Some(region) = &config.server.region {
        let ok = !region.is_empty()
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            return Err(format!(
                "server.region: '{region}' is not a region name (like us-east-1)"
            ));
        }
    }
    crate::store::check_config(&config.store)?;
    crate::access::check_config(&config.server)?;
    crate::limits::check_config(&config.server)?;
    crate::origin::check_config(&config.server)?;
    if let Some(mib) = config.server.store_cache_mib {
        if mib < MIN_STORE_CACHE_MIB {
            return Err(format!(
                "server.store_cache_mib: {mib} is below the minimum, {MIN_STORE_CACHE_MIB}"
            ));
        }
    }
    for (name, process) in &config.tasks.processes {
        if !process.command.is_absolute() {
            return Err(format!(
                "tasks.processes.{name}.command: '{}' must be an absolute path (no PATH lookup, no shell)",
                process.command.display()
            ));
        }
    }
    for prefix in &config.tasks.http.allow {
        if prefix != "*" && reqwest_like_url(prefix).is_none() {
            return Err(format!(
                "tasks.http.allow: '{prefix}' is not a URL prefix like https://api.example.com/ (or * for anywhere)"
            ));
        }
    }
    for (name, dir) in &config.buckets {
        let valid = (3..=63).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        if !valid {
            return Err(format!(
                "buckets.{name}: not an S3 bucket name (3 to 63 lowercase letters, digits, dots and hyphens)"
            ));
        }
        if !dir.is_absolute() {
            return Err(format!(
                "buckets.{name}: '{}' must be an absolute directory",
                dir.display()
            ));
        }
    }
    let mut names = std::collections::HashSet::new();
    for spec in &config.triggers.define {
        if !names.insert(spec.name.as_str()) {
            return Err(format!("triggers.define: '{}' is defined twice", spec.name));
        }
        // Everything but the directory, which is checked at start against
        // the roots as they are then.
        let mut check = spec.clone();
        check.directory = None;
        // A dataset's paths are checked here for their form only (any
        // root will do); inside the real roots at start.
        let roots = if spec.kind == crate::triggers::Kind::Dataset {
            vec![PathBuf::from("/")]
        } else {
            Vec::new()
        };
        if let Err(e) = check.compile(&roots) {
            if !(spec.directory.is_some() && e.starts_with("directory:")) {
                return Err(format!("triggers.define '{}': {e}", spec.name));
            }
        }
    }
    config.tls.files()?;
    stepline_runtime::cache::TaskCache::new(&config.tasks.cache).map_err(|e| e.to_string())?;
    crate::alerts::check(&config.alerts, &config.tasks)?;
    crate::triggers::deadlines::check(&config.deadlines)?;
    check_limits(&config.limits)?;
    check_windows(config)?;
    stepline_runtime::pools::Pools::new(&config.pools).map_err(|e| e.to_string())?;
    for (name, pool) in &config.pools {
        for process in &pool.processes {
            if !config.tasks.processes.contains_key(process) {
                return Err(format!(
                    "pools.{name}.processes: the process '{process}' is not registered under [tasks.processes]"
                ));
            }
        }
    }
    for (function, mapping) in &config.tasks.lambda {
        if let stepline_runtime::tasks::config::LambdaConfig::Process(name) = mapping {
            if !config.tasks.processes.contains_key(name) {
                return Err(format!(
                    "tasks.lambda.{function}: the process '{name}' is not registered under [tasks.processes]"
                ));
            }
        }
    }
    Ok(())
}

/// `scheme://host...` with an http(s) scheme and a host.
fn reqwest_like_url(text: &str) -> Option<()> {
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))?;
    (!rest.is_empty() && !rest.starts_with('/')).then_some(())
}

/// 1-based line and column of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_configuration_is_valid() {
        let text = include_str!("../../docs/stepline.example.toml");
        let config = parse(text).expect("the example parses");
        assert!(config.tasks.processes.contains_key("word-count"));
        assert_eq!(config.server.region.as_deref(), Some("us-east-1"));
        assert_eq!(config.triggers.define.len(), 4);
        assert_eq!(config.alerts.emails.len(), 1);
        assert_eq!(config.deadlines[0].states["Load"], 900);
        assert_eq!(config.max_running()["etl"], 2);
        assert_eq!(config.pools["warehouse"].slots, 4);
        assert_eq!(config.pools["warehouse"].activities, ["load-report"]);
        assert_eq!(config.pools["warehouse"].state_machines, ["nightly-load"]);
    }

    #[test]
    fn triggers_are_checked() {
        for (text, words) in [
            (
                "[[triggers.define]]\nname = \"a\"\nkind = \"schedule\"\nstate_machine = \"m\"\nschedule = \"rate(2 hour)\"\n",
                "triggers.define 'a': schedule:",
            ),
            (
                "[[triggers.define]]\nname = \"a\"\nkind = \"webhook\"\nstate_machine = \"m\"\n[[triggers.define]]\nname = \"a\"\nkind = \"webhook\"\nstate_machine = \"m\"\n",
                "defined twice",
            ),
            ("[triggers]\nroots = []\n", "unknown field `roots`"),
            (
                "[[triggers.define]]\nname = \"d\"\nkind = \"dataset\"\nstate_machine = \"m\"\ninputs = [\"relative/{date}.csv\"]\n",
                "triggers.define 'd': inputs: 'relative/{date}.csv': not an absolute path",
            ),
            (
                "[[triggers.define]]\nname = \"s\"\nkind = \"schedule\"\nstate_machine = \"m\"\nschedule = \"rate(1 day)\"\nfinished_by = \"25:00\"\n",
                "finished_by: '25:00' is not a time of day",
            ),
            (
                "[[triggers.define]]\nname = \"e\"\nkind = \"execution\"\nstate_machine = \"m\"\n",
                "source: an execution trigger needs",
            ),
            (
                "[[deadlines]]\nstate_machine = \"m\"\n",
                "deadlines[0]: give expected_seconds, states, or both",
            ),
            (
                "[[deadlines]]\nstate_machine = \"m\"\nexpected_seconds = 0\n",
                "deadlines[0].expected_seconds: 0 is not between 1",
            ),
            (
                "[[windows]]\nstate_machine = \"m\"\nwindows = [\"Mon-Fri 02:00-02:00\"]\n",
                "windows[0].windows: \"Mon-Fri 02:00-02:00\": '02:00-02:00' is empty",
            ),
            (
                "[[windows]]\nstate_machine = \"m\"\nwindows = [\"Mon-Fry 01:00-02:00\"]\n",
                "windows[0].windows: \"Mon-Fry 01:00-02:00\": 'Fry' is not a day",
            ),
            (
                "[[windows]]\nstate_machine = \"m\"\nwindows = [\"01:00-02:00\"]\ntimezone = \"Europe/Pariss\"\n",
                "windows[0].timezone: 'Europe/Pariss' is not a time zone",
            ),
            (
                "[[windows]]\nstate_machine = \"m\"\nwindows = [\"01:00-02:00\"]\n[[windows]]\nstate_machine = \"m\"\nwindows = [\"03:00-04:00\"]\n",
                "windows[1].state_machine: 'm' is listed twice",
            ),
            (
                "[store]\nurl = \"postgres://db/stepline\"\n[[windows]]\nstate_machine = \"m\"\nwindows = [\"01:00-02:00\"]\n",
                "execution windows cannot be used with the postgres store",
            ),
            (
                "[[triggers.define]]\nname = \"h\"\nkind = \"webhook\"\nstate_machine = \"m\"\noutside = \"refuse\"\n",
                "triggers.define 'h': outside: it says what a start outside the windows does; give windows too",
            ),
            (
                "[[triggers.define]]\nname = \"h\"\nkind = \"webhook\"\nstate_machine = \"m\"\nwindows = [\"25:00-26:00\"]\n",
                "triggers.define 'h': windows: \"25:00-26:00\": '25:00' is not a time of day",
            ),
            (
                "[[alerts.emails]]\nhost = \"smtp.example.com\"\ntls = \"none\"\nfrom = \"a@example.com\"\nto = [\"b@example.com\"]\n",
                "alerts.emails[0].tls: \"none\" sends alerts",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(words), "{text:?} gave {e}");
        }
        // A file trigger's directory is checked at start, against the roots.
        let text = "[[triggers.define]]\nname = \"f\"\nkind = \"file\"\nstate_machine = \"m\"\ndirectory = \"/nowhere\"\nglob = \"*.csv\"\n";
        assert!(parse(text).is_ok());
    }

    #[test]
    fn mistakes_are_reported_with_line_and_column() {
        let cases = [
            ("[server]\nlisten = 5\n", "2:10:"),
            ("[server]\nport = 8083\n", "2:1:"),
            (
                "[tasks.processes.x]\ncommand = \"/bin/true\"\nargz = []\n",
                "3:1:",
            ),
            ("[tasks.http]\nallow = \"*\"\n", "2:9:"),
            ("[tasks.processes.x]\nargs = []\n", "1:1:"),
            ("x = \n", "1:5:"),
        ];
        for (text, at) in cases {
            let e = parse(text).unwrap_err();
            assert!(e.starts_with(at), "{text:?} gave {e}");
        }
    }

    #[test]
    fn rules_beyond_types() {
        for (text, words) in [
            ("[server]\naccount = \"123\"\n", "12 digits"),
            ("[server]\nregion = \"US East\"\n", "region name"),
            ("[tasks.processes.x]\ncommand = \"sh\"\n", "absolute path"),
            ("[tasks.http]\nallow = [\"example.com\"]\n", "URL prefix"),
            (
                "[tasks.lambda]\nf = { process = \"nope\" }\n",
                "not registered",
            ),
            (
                "[pools.w]\nslots = 1\nprocesses = [\"nope\"]\n",
                "not registered",
            ),
            (
                "[tasks.processes.a]\ncommand = \"/bin/true\"\n[pools.w]\nslots = 1\nprocesses = [\"a\"]\n[pools.x]\nslots = 1\nprocesses = [\"a\"]\n",
                "a resource draws from one pool",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(words), "{text:?} gave {e}");
        }
    }

    /// schemas/stepline.config.schema.json, for editors, held against
    /// `parse`: what one accepts the other accepts, what one refuses the
    /// other refuses, and both know the same fields.
    mod schema {
        use super::parse;
        use serde_json::Value;

        const SCHEMA: &str = include_str!("../../schemas/stepline.config.schema.json");

        fn validator() -> jsonschema::Validator {
            let schema: Value = serde_json::from_str(SCHEMA).expect("the schema is JSON");
            // Building it checks the schema against the 2020-12 meta-schema.
            jsonschema::draft202012::new(&schema).expect("the schema compiles")
        }

        /// The file as editors see it: TOML read as JSON.
        fn as_json(text: &str) -> Value {
            toml::from_str(text).expect("the case is TOML")
        }

        fn schema_errors(validator: &jsonschema::Validator, text: &str) -> Vec<String> {
            validator
                .iter_errors(&as_json(text))
                .map(|e| format!("{} at {}", e, e.instance_path()))
                .collect()
        }

        #[test]
        fn good_configurations_pass_both() {
            let validator = validator();
            let cases = [
                include_str!("../../docs/stepline.example.toml"),
                "",
                "[server]\nlisten = \"[::1]:8083\"\n",
                "[tasks.processes.x]\ncommand = \"/bin/true\"\n",
                "[tasks.http]\nallow = [\"*\"]\nallow_loopback = false\n",
                "[tasks.http]\nallow = [\"http://10.0.0.5:8080/v1/\", \"https://api.example.com\"]\n",
                "[tasks.connections]\nk = { api_key = { name = \"x-api-key\", value = \"v\" } }\nb = { basic = { username = \"u\", password = \"p\" } }\nt = { bearer = { token = \"t\" } }\no = { oauth = { token_url = \"https://auth.example.com/token\", client_id = \"i\", client_secret = \"s\", scope = \"read\" } }\n",
                "[tasks.lambda]\nf = { url = \"http://127.0.0.1:9000/f\" }\n",
                "[tasks.cache]\nmax_entries = 100\n\n[[tasks.cache.rules]]\nprocess = \"crawl\"\nttl_seconds = 3600\nkey = { \"day.$\" = \"$.day\" }\n\n[[tasks.cache.rules]]\nhttp = \"https://api.example.com/prices/\"\nttl_seconds = 60\n",
                "[triggers]\n",
                "[alerts]\nallow = [\"https://hooks.slack.com/services/\"]\n\n[[alerts.webhooks]]\nurl = \"https://hooks.slack.com/services/T/B/x\"\nformat = \"slack\"\n\n[[alerts.webhooks]]\nurl = \"http://127.0.0.1:9000/alerts\"\nstatuses = [\"FAILED\", \"SUCCEEDED\"]\nstate_machines = [\"orders\"]\nheaders = { Authorization = \"Bearer t\" }\nsecret = \"s\"\nmax_attempts = 3\n",
                "[server]\nmax_connections = 10\nmax_header_bytes = 8192\nheader_timeout_seconds = 5\nbody_timeout_seconds = 5\n",
                "[server]\nmax_connections_per_client = 8\nhosts = [\"stepline.example.com\", \"other.example:8443\", \"10.0.0.5\", \"[fd00::1]:8083\"]\norigins = [\"https://tools.example.com\", \"http://[::1]:9000/\"]\nallow_unsigned_webhooks = true\n",
                "[server]\nhosts = [\"*\"]\n",
                "[store]\nurl = \"postgres://stepline@db.example.com:5432/stepline\"\npassword_file = \"/etc/stepline/db-password\"\nschema = \"pipelines\"\nconnections = 16\nlease_seconds = 3\nnode_name = \"worker-1\"\n",
                "[store]\nurl = \"postgresql://stepline@10.0.0.7/stepline\"\npassword_env = \"STEPLINE_DB_PASSWORD\"\n",
                "[[server.access_keys]]\nid = \"AKIAIOSFODNN7EXAMPLE\"\nsecret = \"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\"\n[[server.access_keys]]\nid = \"AKIAOTHERKEY00000000\"\nsecret_env = \"STEPLINE_SECRET\"\n[[server.tokens]]\ntoken = \"0123456789abcdef\"\n[[server.tokens]]\ntoken_env = \"STEPLINE_TOKEN\"\n",
                "[triggers]\nfile_roots = []\n\n[[triggers.define]]\nname = \"h\"\nkind = \"webhook\"\nstate_machine = \"m\"\nsecret = \"s\"\ninput = { \"body.$\" = \"$\" }\n",
                "[[windows]]\nstate_machine = \"etl\"\nwindows = [\"Mon-Fri 01:00-05:00\", \"Sat,Sun 00:00-24:00\", \"22:00-02:00\", \"12:00:30-12:01\"]\ntimezone = \"Europe/Paris\"\noutside = \"refuse\"\ndrain = true\n",
                "[[triggers.define]]\nname = \"h\"\nkind = \"webhook\"\nstate_machine = \"m\"\nsecret = \"s\"\nwindows = [\"Mon-Fri 01:00-05:00\"]\ntimezone = \"Europe/Paris\"\noutside = \"alert\"\n",
            ];
            for text in cases {
                assert_eq!(
                    schema_errors(&validator, text),
                    Vec::<String>::new(),
                    "the schema refuses {text:?}"
                );
                if let Err(e) = parse(text) {
                    panic!("parse refuses {text:?}: {e}");
                }
            }
        }

        #[test]
        fn bad_configurations_fail_both() {
            let validator = validator();
            #[rustfmt::skip]
            let cases = [
                "[server]\nlisten = 5\n",
                "[server]\nport = 8083\n",
                "[server]\nlisten = \"localhost:8083\"\n",
                "[server]\nlisten = \"127.0.0.1\"\n",
                "[server]\naccount = \"123\"\n",
                "[server]\naccount = 111111111111\n",
                "[server]\nregion = \"US East\"\n",
                "[server]\nregion = \"\"\n",
                "[server]\nmax_connections = 0\n",
                "[server]\nmax_header_bytes = 100\n",
                "[server]\nstore_cache_mib = 2\n",
                "[server]\nheader_timeout_seconds = 0\n",
                "[server]\nmax_connections_per_client = 0\n",
                "[server]\nhosts = \"stepline.example.com\"\n",
                "[server]\nhosts = [\"a b\"]\n",
                "[server]\nhosts = [\"example.com/x\"]\n",
                "[server]\norigins = [\"tools.example.com\"]\n",
                "[server]\norigins = [\"https://tools.example.com/path\"]\n",
                "[server]\norigins = [\"null\"]\n",
                "[server]\nallow_unsigned_webhooks = \"yes\"\n",
                "[server]\nbody_timeout_seconds = -1\n",
                "[server]\naccess_keys = { id = \"AKIAIOSFODNN7EXAMPLE\", secret = \"s\" }\n",
                "[[server.access_keys]]\nid = \"AKIAIOSFODNN7EXAMPLE\"\n",
                "[[server.access_keys]]\nid = \"AKIAIOSFODNN7EXAMPLE\"\nsecret = \"s\"\nsecret_env = \"S\"\n",
                "[[server.access_keys]]\nid = \"short\"\nsecret = \"s\"\n",
                "[[server.access_keys]]\nid = \"AKIAIOSFODNN7EXAMPLE\"\nsecret = \"\"\n",
                "[[server.access_keys]]\nid = \"AKIAIOSFODNN7EXAMPLE\"\nsecret = \"s\"\nkey = 1\n",
                "[[server.tokens]]\ntoken = \"short\"\n",
                "[[server.tokens]]\ntoken = \"has a space in it, long\"\n",
                "[[server.tokens]]\n",
                "[[server.tokens]]\ntoken = \"0123456789abcdef\"\ntoken_env = \"T\"\n",
                "[trigger]\n",
                "[store]\nurl = \"mysql://db/stepline\"\n",
                "[store]\nurl = \"postgres://db/stepline\"\npassword_file = \"/p\"\npassword_env = \"P\"\n",
                "[store]\nurl = \"postgres://db/stepline\"\nschema = \"Bad Name\"\n",
                "[store]\nurl = \"postgres://db/stepline\"\nconnections = 0\n",
                "[store]\nhost = \"db\"\n",
                "[triggers]\nroots = []\n",
                "[triggers]\nfile_roots = \"/srv\"\n",
                "[[triggers.define]]\nname = \"a\"\nkind = \"mail\"\nstate_machine = \"m\"\n",
                "[[triggers.define]]\nname = \"a b\"\nkind = \"webhook\"\nstate_machine = \"m\"\n",
                "[[triggers.define]]\nname = \"a\"\nkind = \"webhook\"\n",
                "[[triggers.define]]\nname = \"a\"\nkind = \"schedule\"\nstate_machine = \"m\"\nschedule = \"every day\"\n",
                "[[triggers.define]]\nname = \"a\"\nkind = \"webhook\"\nstate_machine = \"m\"\nmax_in_flight = 0\n",
                "[[triggers.define]]\nname = \"a\"\nkind = \"schedule\"\nstate_machine = \"m\"\nschedule = \"rate(1 day)\"\nfinished_by = \"25:00\"\n",
                "[[triggers.define]]\nname = \"a\"\nkind = \"dataset\"\nstate_machine = \"m\"\ninputs = [\"relative/{date}.csv\"]\n",
                "[[triggers.define]]\nname = \"a\"\nkind = \"dataset\"\nstate_machine = \"m\"\ninputs = [\"/d/{date}.csv\"]\nperiod = \"week\"\n",
                "[[triggers.define]]\nname = \"a\"\nkind = \"execution\"\nstate_machine = \"m\"\nsource = \"n\"\nstatuses = [\"RUNNING\"]\n",
                "[[deadlines]]\nstate_machine = \"m\"\nexpected_seconds = 0\n",
                "[[deadlines]]\nstate_machine = \"m\"\nstates = { Load = -1 }\n",
                "[[alerts.emails]]\nhost = \"smtp.example.com\"\nfrom = \"a@example.com\"\n",
                "[[alerts.emails]]\nhost = \"smtp.example.com\"\nfrom = \"a@example.com\"\nto = [\"b@example.com\"]\ntls = \"ssl\"\n",
                "[tasks]\nprocess = {}\n",
                "[tasks.processes.x]\nargs = []\n",
                "[tasks.processes.x]\ncommand = \"sh\"\n",
                "[tasks.processes.x]\ncommand = \"bin/sh\"\n",
                "[tasks.processes.x]\ncommand = \"/bin/true\"\nargz = []\n",
                "[tasks.processes.x]\ncommand = \"/bin/true\"\nargs = \"-c true\"\n",
                "[tasks.processes.x]\ncommand = \"/bin/true\"\nargs = [1]\n",
                "[tasks.processes.x]\ncommand = \"/bin/true\"\nenv = { A = 1 }\n",
                "[tasks.processes.x]\ncommand = \"/bin/true\"\nenv_allow = \"PATH\"\n",
                "[tasks.processes.x]\ncommand = \"/bin/true\"\ntimeout_seconds = -1\n",
                "[tasks.processes.x]\ncommand = \"/bin/true\"\nmax_stdout_bytes = \"1M\"\n",
                "[tasks.processes]\nx = \"/bin/true\"\n",
                "[tasks.http]\nallow = \"*\"\n",
                "[tasks.http]\nallow = [\"example.com\"]\n",
                "[tasks.http]\nallow = [\"ftp://example.com/\"]\n",
                "[tasks.http]\nallow = [\"https:///v1/\"]\n",
                "[tasks.http]\nallow = [\"*.example.com\"]\n",
                "[tasks.http]\nallow_loopback = \"yes\"\n",
                "[tasks.http]\ntimeout_seconds = -1\n",
                "[tasks.http]\nmax_response_bytes = 1.5\n",
                "[tasks.http]\ndeny = []\n",
                "[tasks.connections.c]\n",
                "[tasks.connections.c]\napi_key = { name = \"x-api-key\" }\n",
                "[tasks.connections.c]\nbearer = { token = \"t\" }\nbasic = { username = \"u\", password = \"p\" }\n",
                "[tasks.connections.c]\ndigest = { token = \"t\" }\n",
                "[tasks.connections.c]\nbearer = \"t\"\n",
                "[tasks.connections.c]\noauth = { token_url = \"u\", client_id = \"i\", client_secret = \"s\", audience = \"a\" }\n",
                "[tasks.connections.c]\noauth = { token_url = \"u\", client_id = \"i\" }\n",
                "[tasks.lambda]\nf = \"http://127.0.0.1/\"\n",
                "[tasks.lambda]\nf = {}\n",
                "[tasks.lambda]\nf = { url = \"http://127.0.0.1/\", process = \"p\" }\n",
                "[tasks.lambda]\nf = { arn = \"arn:aws:lambda:us-east-1:1:function:f\" }\n",
                "[tasks.lambda]\nf = { url = 8080 }\n",
                "[tasks.cache]\nmax_entries = -1\n",
                "[tasks.cache]\nrule = []\n",
                "[[tasks.cache.rules]]\nttl_seconds = 5\n",
                "[[tasks.cache.rules]]\nprocess = \"a\"\n",
                "[[tasks.cache.rules]]\nprocess = \"a\"\nttl_seconds = 0\n",
                "[[tasks.cache.rules]]\nprocess = \"a\"\nlambda = \"b\"\nttl_seconds = 5\n",
                "[[tasks.cache.rules]]\nprocess = \"a\"\nttl_seconds = 5\nttl = 5\n",
                "[alerts]\nwebhook = []\n",
                "[alerts]\nallow = \"*\"\n",
                "[[alerts.webhooks]]\nstatuses = [\"FAILED\"]\n",
                "[[alerts.webhooks]]\nurl = \"http://127.0.0.1/\"\nstatuses = [\"RUNNING\"]\n",
                "[[alerts.webhooks]]\nurl = \"http://127.0.0.1/\"\nstatuses = []\n",
                "[[alerts.webhooks]]\nurl = \"http://127.0.0.1/\"\nformat = \"xml\"\n",
                "[[alerts.webhooks]]\nurl = \"http://127.0.0.1/\"\nmax_attempts = 0\n",
                "[[alerts.webhooks]]\nurl = \"http://127.0.0.1/\"\nstate_machines = \"orders\"\n",
                "[[alerts.webhooks]]\nurl = \"ftp://127.0.0.1/\"\n",
                "[[limits]]\nstate_machine = \"m\"\n",
                "[[limits]]\nstate_machine = \"m\"\nmax_running = 0\n",
                "[[limits]]\nstate_machine = \"\"\nmax_running = 1\n",
                "[[limits]]\nmax_running = 1\n",
                "[[windows]]\nstate_machine = \"m\"\n",
                "[[windows]]\nstate_machine = \"m\"\nwindows = []\n",
                "[[windows]]\nstate_machine = \"m\"\nwindows = [\"1:00-05:00\"]\n",
                "[[windows]]\nstate_machine = \"m\"\nwindows = [\"01:00-05:00\"]\noutside = \"wait\"\n",
                "[[windows]]\nstate_machine = \"m\"\nwindows = [\"01:00-05:00\"]\ndrain = \"yes\"\n",
                "[pools.w]\nprocesses = [\"a\"]\n",
                "[pools.w]\nslots = 0\n",
                "[pools.w]\nslots = 2\nhttp = \"http://127.0.0.1/\"\n",
            ];
            for text in cases {
                let refused = schema_errors(&validator, text);
                assert!(!refused.is_empty(), "the schema accepts {text:?}");
                assert!(parse(text).is_err(), "parse accepts {text:?}");
            }
        }

        /// Rules a schema cannot say, checked only by `parse`.
        #[test]
        fn cross_references_are_left_to_parse() {
            let validator = validator();
            let text = "[tasks.lambda]\nf = { process = \"nope\" }\n";
            assert!(schema_errors(&validator, text).is_empty());
            assert!(parse(text).unwrap_err().contains("not registered"));
        }

        /// FIXME: a process name a resource cannot spell
        /// (`stepline:process:NAME` allows letters, digits, '-', '_' and
        /// '.') is refused by the schema but still accepted by `parse`; the
        /// entry is unreachable rather than wrong, but `check` should say so.
        #[test]
        fn unreachable_process_names() {
            let validator = validator();
            let text = "[tasks.processes.\"a b\"]\ncommand = \"/bin/true\"\n";
            assert!(!schema_errors(&validator, text).is_empty());
            assert!(parse(text).is_ok(), "FIXME: parse should refuse it too");
        }

        /// The fields serde expects at `text`'s unknown key `zzz`, sorted:
        /// serde's "expected one of `a`, `b`" list, or toml's "available
        /// keys: a, b" for inline tables.
        fn serde_fields(text: &str) -> Vec<String> {
            let e = parse(text).unwrap_err();
            let mut fields: Vec<String> = match e.split_once("available keys: ") {
                Some((_, list)) => list.split(',').map(|f| f.trim().to_owned()).collect(),
                None => e
                    .split_once("expected ")
                    .map_or("", |(_, rest)| rest)
                    .split('`')
                    .skip(1)
                    .step_by(2)
                    .map(str::to_owned)
                    .collect(),
            };
            assert!(!fields.is_empty(), "no field list in {e:?}");
            fields.sort();
            fields
        }

        fn schema_fields(schema: &Value, pointer: &str) -> Vec<String> {
            let mut fields: Vec<String> = schema
                .pointer(pointer)
                .and_then(Value::as_object)
                .unwrap_or_else(|| panic!("no properties at {pointer}"))
                .keys()
                .cloned()
                .collect();
            fields.sort();
            fields
        }

        /// A field added to a config struct without its schema entry (or
        /// the other way round) fails here.
        #[test]
        fn the_schema_knows_every_field() {
            let schema: Value = serde_json::from_str(SCHEMA).unwrap();
            #[rustfmt::skip]
            let sections = [
                ("zzz = 1\n", "/properties"),
                ("[server]\nzzz = 1\n", "/properties/server/properties"),
                ("[[server.access_keys]]\nid = \"AKIAIOSFODNN7EXAMPLE\"\nsecret = \"s\"\nzzz = 1\n", "/$defs/access_key/properties"),
                ("[[server.tokens]]\ntoken = \"0123456789abcdef\"\nzzz = 1\n", "/$defs/token/properties"),
                ("[store]\nzzz = 1\n", "/properties/store/properties"),
                ("[tasks]\nzzz = 1\n", "/properties/tasks/properties"),
                ("[tasks.processes.x]\ncommand = \"/bin/true\"\nzzz = 1\n", "/$defs/process/properties"),
                ("[tasks.http]\nzzz = 1\n", "/$defs/http/properties"),
                ("[tasks.connections.c]\nzzz = {}\n", "/$defs/connection/properties"),
                ("[tasks.connections.c]\napi_key = { name = \"n\", value = \"v\", zzz = 1 }\n", "/$defs/connection/properties/api_key/properties"),
                ("[tasks.connections.c]\nbasic = { username = \"u\", password = \"p\", zzz = 1 }\n", "/$defs/connection/properties/basic/properties"),
                ("[tasks.connections.c]\nbearer = { token = \"t\", zzz = 1 }\n", "/$defs/connection/properties/bearer/properties"),
                ("[tasks.connections.c]\noauth = { token_url = \"u\", client_id = \"i\", client_secret = \"s\", zzz = 1 }\n", "/$defs/connection/properties/oauth/properties"),
                ("[tasks.lambda]\nf = { zzz = \"x\" }\n", "/$defs/lambda/properties"),
                ("[tasks.cache]\nzzz = 1\n", "/properties/tasks/properties/cache/properties"),
                ("[[tasks.cache.rules]]\nprocess = \"a\"\nttl_seconds = 5\nzzz = 1\n", "/$defs/cache_rule/properties"),
                ("[triggers]\nzzz = 1\n", "/properties/triggers/properties"),
                ("[[triggers.define]]\nname = \"a\"\nkind = \"webhook\"\nstate_machine = \"m\"\nzzz = 1\n", "/$defs/trigger/properties"),
                ("[alerts]\nzzz = 1\n", "/properties/alerts/properties"),
                ("[[alerts.webhooks]]\nurl = \"http://127.0.0.1/\"\nzzz = 1\n", "/$defs/alert_webhook/properties"),
                ("[[limits]]\nstate_machine = \"m\"\nmax_running = 1\nzzz = 1\n", "/properties/limits/items/properties"),
                ("[pools.w]\nslots = 1\nzzz = 1\n", "/properties/pools/additionalProperties/properties"),
                ("[[windows]]\nstate_machine = \"m\"\nwindows = [\"01:00-02:00\"]\nzzz = 1\n", "/properties/windows/items/properties"),
            ];
            for (text, pointer) in sections {
                assert_eq!(
                    serde_fields(text),
                    schema_fields(&schema, pointer),
                    "{text:?} against {pointer}"
                );
            }
        }
    }
}

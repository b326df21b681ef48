//! `stepline serve`: the main job. Opens the embedded store, resumes every
//! open execution, and serves the AWS Step Functions API on one port until
//! SIGINT or SIGTERM.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use stepline_runtime::tasks::Invokers;
use stepline_runtime::tasks::mock::MockConfig;
use stepline_runtime::{Engine, EngineConfig, WallClock};

use super::EXIT_USAGE;
use super::log_lines::LogLines;
use crate::config::{self, Config};
use crate::store::StoreChoice;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address and port to listen on [default: 127.0.0.1:8083].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Directory of the embedded database [default: ./stepline-data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// A PostgreSQL database instead of the embedded one
    /// (postgres://user@host:5432/db), shared by every node that names it;
    /// the password comes from [store] in stepline.toml or PGPASSWORD.
    #[arg(long, value_name = "URL")]
    store: Option<String>,
    /// Operator configuration file (stepline.toml): processes, HTTP
    /// destinations, connections, Lambda mappings, region and account.
    #[arg(long)]
    config: Option<PathBuf>,
    /// A folder of definitions (NAME.asl.json, NAME.express.asl.json):
    /// each becomes a state machine, created or updated as the files change.
    #[arg(long)]
    load: Option<PathBuf>,
    /// Serve HTTPS with this certificate chain (PEM, the server's
    /// certificate first) [default: `[tls] cert_file`]; needs --tls-key.
    /// Both files are read again on SIGHUP.
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM) [default: `[tls] key_file`].
    #[arg(long, value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// Log lines on stderr: `human` (one readable line each) or `json`
    /// (one JSON object per line, with the execution ARN and state name
    /// of every line about an execution).
    #[arg(long, value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
    /// What to log: a level (error, warn, info, debug, trace) or a
    /// tracing filter like `info,stepline_runtime=debug`. Default: RUST_LOG
    /// when set, else info.
    #[arg(long)]
    log_level: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

/// The log lines' writer (see `log_lines`), flushed at shutdown.
static LOG_LINES: std::sync::OnceLock<LogLines> = std::sync::OnceLock::new();

/// Installs the process's log subscriber (once per process: a second
/// `serve` in the same process, as in tests, keeps the first).
fn init_logs(args: &Args) -> Result<(), String> {
    use tracing_subscriber::EnvFilter;
    let filter = match &args.log_level {
        Some(level) => EnvFilter::try_new(level)
            .map_err(|e| format!("--log-level '{level}' is not a level or a filter: {e}"))?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let lines = match LOG_LINES.get() {
        Some(lines) => lines.clone(),
        None => {
            let lines = LogLines::spawn(std::io::stderr())
                .map_err(|e| format!("cannot start the log writer: {e}"))?;
            LOG_LINES.get_or_init(|| lines).clone()
        }
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(lines);
    let _ = match args.log_format {
        LogFormat::Human => builder.with_ansi(false).try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
    };
    Ok(())
}

pub fn run(args: &Args, stdout: &mut dyn Write, stderr: &mut dyn Write) -> u8 {
    if let Err(e) = init_logs(args) {
        let _ = writeln!(stderr, "stepline serve: {e}");
        return EXIT_USAGE;
    }
    let config = match &args.config {
        Some(path) => match config::load(path) {
            Ok(config) => config,
            Err(e) => {
                let _ = writeln!(stderr, "stepline serve: {e}");
                return EXIT_USAGE;
            }
        },
        None => Config::default(),
    };
    let listen = args
        .listen
        .or(config.server.listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8083)));
    let data_dir = args
        .data_dir
        .clone()
        .or_else(|| config.server.data_dir.clone())
        .unwrap_or_else(|| PathBuf::from("./stepline-data"));
    let cache_mib = config
        .server
        .store_cache_mib
        .unwrap_or(crate::config::DEFAULT_STORE_CACHE_MIB);
    let store = match StoreChoice::from_config(
        &config.store,
        args.store.as_deref(),
        &data_dir,
        u64::from(cache_mib) * 1024 * 1024,
    ) {
        Ok(store) => store,
        Err(e) => {
            let _ = writeln!(stderr, "stepline serve: {e}");
            return EXIT_USAGE;
        }
    };
    // `--store` may name PostgreSQL where the file does not: execution
    // windows are kept by one node (config.rs checks the file's store).
    let shared_store = matches!(store, StoreChoice::Postgres(_));
    let windowed =
        !config.windows.is_empty() || config.triggers.define.iter().any(|t| t.windows.is_some());
    if windowed && matches!(store, StoreChoice::Postgres(_)) {
        let _ = writeln!(
            stderr,
            "stepline serve: windows: held starts are kept by one node; execution windows cannot be used with the postgres store (several nodes)"
        );
        return EXIT_USAGE;
    }
    let mut engine_config = EngineConfig::default();
    if let Some(region) = &config.server.region {
        engine_config.region = region.clone();
    }
    if let Some(account) = &config.server.account {
        engine_config.account = account.clone();
        engine_config.default_role_arn = format!("arn:aws:iam::{account}:role/stepline");
    }
    engine_config.buckets = stepline_runtime::maprun::Buckets::new(config.buckets.clone());
    // Checked with the configuration: it compiles.
    match stepline_runtime::cache::TaskCache::new(&config.tasks.cache) {
        Ok(cache) => engine_config.cache = Arc::new(cache),
        Err(e) => {
            let _ = writeln!(stderr, "stepline serve: {e}");
            return EXIT_USAGE;
        }
    }
    engine_config.input_files = Some(crate::lineage::input_files());
    engine_config.max_running = config.max_running();
    // Checked with the configuration: it builds.
    match crate::windows::rules(&config.windows) {
        Ok(rules) => engine_config.windows = rules,
        Err(e) => {
            let _ = writeln!(stderr, "stepline serve: {e}");
            return EXIT_USAGE;
        }
    }
    let outside_windows = crate::alerts::observe_windows(&mut engine_config);
    // Checked with the configuration: it builds.
    match stepline_runtime::pools::Pools::new(&config.pools) {
        Ok(pools) => engine_config.pools = Arc::new(pools),
        Err(e) => {
            let _ = writeln!(stderr, "stepline serve: {e}");
            return EXIT_USAGE;
        }
    }
    match config.server.retention_days {
        Some(0) => engine_config.retention = None,
        Some(days) => engine_config.retention = Some(chrono::Duration::days(i64::from(days))),
        None => {}
    }
    let ended = crate::alerts::observe(&mut engine_config);
    let mock_file = config
        .tasks
        .mock_config
        .clone()
        .or_else(|| std::env::var_os("SFN_MOCK_CONFIG").map(PathBuf::from));
    if let Some(path) = mock_file {
        let mocks = std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|text| MockConfig::parse(&text).map_err(|e| super::error_chain(&e)));
        match mocks {
            Ok(mocks) => engine_config.mocks = Some(Arc::new(mocks)),
            Err(e) => {
                let _ = writeln!(
                    stderr,
                    "stepline serve: the mock configuration {}: {e}",
                    path.display()
                );
                return EXIT_USAGE;
            }
        }
    }
    let credentials = match crate::access::Credentials::from_config(
        &config.server,
        &engine_config.region,
        |name| std::env::var(name).ok(),
    ) {
        Ok(credentials) => credentials,
        Err(e) => {
            let _ = writeln!(stderr, "stepline serve: {e}");
            return EXIT_USAGE;
        }
    };
    if !listen.ip().is_loopback() && !credentials.enabled() {
        let _ = writeln!(
            stderr,
            "stepline serve: warning: listening on {listen}, which is not loopback, without credentials: anyone who can reach it can run your state machines (configure [[server.access_keys]] and [[server.tokens]] in stepline.toml)"
        );
    }
    let tls = match tls_files(args, &config) {
        Ok(None) => None,
        Ok(Some(files)) => match crate::tls::ServerTls::load(files) {
            Ok(tls) => Some(tls),
            Err(e) => {
                let _ = writeln!(stderr, "stepline serve: tls: {}", super::error_chain(&e));
                return EXIT_USAGE;
            }
        },
        Err(e) => {
            let _ = writeln!(stderr, "stepline serve: {e}");
            return EXIT_USAGE;
        }
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let refuse_unsigned_webhooks = credentials.enabled() && !config.server.allow_unsigned_webhooks;
    let options = crate::http::ServeOptions {
        credentials,
        limits: crate::limits::Limits::from_config(&config.server),
        origins: crate::origin::OriginPolicy::from_config(&config.server),
        allow_unsigned_webhooks: config.server.allow_unsigned_webhooks,
        tls,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = writeln!(stderr, "stepline serve: cannot start the runtime: {e}");
            return 1;
        }
    };
    let result = runtime.block_on(async {
        // Bound first: tasks must know the address to refuse it (a
        // definition calling stepline's own API), and recovered executions
        // run tasks as soon as the engine opens.
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        let mut tasks = config.tasks.clone();
        tasks.listen = vec![address];
        let invokers = Invokers::new(tasks).map_err(|e| super::error_chain(&e))?;
        let mut engine_config = engine_config;
        engine_config.cluster = store.cluster(&config.store, &format!("{scheme}://{address}"));
        let engine = Engine::open(
            store.open_to_serve()?,
            Arc::new(invokers),
            Arc::new(WallClock),
            engine_config,
        )
        .map_err(|e| e.to_string())?;
        // Counted before anything else starts one.
        let resumed = engine.open_executions();
        if let Some(dir) = &args.load {
            crate::load::watch(engine.clone(), dir.clone()).await;
        }
        let triggers = crate::triggers::Triggers::new(engine.clone(), &config.triggers.file_roots)?;
        triggers.install_config(&config.triggers.define).await?;
        if refuse_unsigned_webhooks {
            // Those of the file and those created earlier through the API.
            let unsigned = triggers.unsigned_webhooks().map_err(|e| e.to_string())?;
            if !unsigned.is_empty() {
                return Err(format!(
                    "the webhook trigger(s) {} have no secret, and this server requires credentials: anyone who reaches it could start their executions. Give each a secret, or set allow_unsigned_webhooks = true in [server] of stepline.toml",
                    unsigned
                        .iter()
                        .map(|n| format!("'{n}'"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        let alerter = crate::alerts::Alerter::new(engine.clone(), &config.alerts)?;
        triggers.set_alerter(alerter.clone());
        triggers.install_settings(crate::settings::FileSettings::new(&config, shared_store))?;
        crate::alerts::send_window_alerts(alerter.clone(), outside_windows);
        let handling = crate::alerts::start(alerter, triggers.clone(), ended);
        crate::tls::reload_on_sighup(options.tls.clone())
            .map_err(|e| format!("cannot watch for SIGHUP: {e}"))?;
        let _ = writeln!(
            stdout,
            "stepline listening on {scheme}://{address} ({})",
            store.describe()
        );
        let _ = stdout.flush();
        log_start(
            &engine,
            &triggers,
            &config,
            &store,
            resumed,
            &format!("{scheme}://{address}"),
        );
        let served = crate::http::serve_with_options(
            listener,
            engine.clone(),
            triggers,
            options,
            shutdown_signal(),
        )
        .await
        .map_err(|e| e.to_string());
        // Alerts just delivered have their notices removed (five seconds
        // at most, so that a loaded machine still gets there; one still
        // being retried is sent again at the next start).
        handling.settle(std::time::Duration::from_secs(5)).await;
        // Everything applied so far reaches the disk before the process ends.
        engine.flush_now().await.map_err(|e| e.to_string())?;
        // The other nodes take this one's executions at once.
        if let Err(e) = engine.leave_cluster() {
            tracing::warn!(error = %e, "this node cannot hand its executions over; the others take them when its leases run out");
        }
        served
    });
    if let Some(lines) = LOG_LINES.get() {
        lines.flush();
    }
    match result {
        Ok(()) => 0,
        Err(message) => {
            let _ = writeln!(stderr, "stepline serve: {message}");
            EXIT_USAGE
        }
    }
}

/// The certificate and key: the flags, else `[tls]`; both or neither.
fn tls_files(args: &Args, config: &Config) -> Result<Option<crate::tls::TlsFiles>, String> {
    let tls = crate::config::TlsConfig {
        cert_file: args
            .tls_cert
            .clone()
            .or_else(|| config.tls.cert_file.clone()),
        key_file: args.tls_key.clone().or_else(|| config.tls.key_file.clone()),
    };
    tls.files().map_err(|e| {
        e.replace("cert_file", "cert_file (--tls-cert)")
            .replace("key_file", "key_file (--tls-key)")
    })
}

/// The one log line of a start: what the server runs with and where it
/// listens (the only log line that names the address).
fn log_start(
    engine: &Engine,
    triggers: &crate::triggers::Triggers,
    config: &Config,
    store: &StoreChoice,
    resumed: usize,
    url: &str,
) {
    let machines = engine.list_state_machines().map_or(0, |m| m.len());
    let (defined, enabled) = triggers.list().map_or((0, 0), |all| {
        (all.len(), all.iter().filter(|(t, _)| t.enabled).count())
    });
    let (kind, place) = match store {
        StoreChoice::Sled { dir, .. } => ("sled", dir.display().to_string()),
        StoreChoice::Postgres(options) => ("postgres", crate::store::redacted(&options.url)),
    };
    tracing::info!(
        store = kind,
        data = %place,
        state_machines = machines,
        processes = config.tasks.processes.len(),
        connections = config.tasks.connections.len(),
        lambda_mappings = config.tasks.lambda.len(),
        triggers = defined,
        triggers_enabled = enabled,
        alert_webhooks = config.alerts.webhooks.len(),
        executions_resumed = resumed,
        node = engine.node_id(),
        listen = %url,
        "stepline started"
    );
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

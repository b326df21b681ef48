//! `stepline store`: the data directory's health and its backups.
//!
//! - `check --data-dir DIR`: offline (the server stopped). Opens the store
//!   as the server would (the watermark, every page read), then decodes
//!   every record and checks that each open execution can resume.
//! - `backup FILE`: online, through a running server
//!   (`POST /v1/store/backup`): one consistent moment of the store, saved
//!   to FILE once it arrived whole and its checksum is right.
//! - `restore FILE --data-dir DIR`: offline, into a new directory; the
//!   backup is checked whole before anything is written.
//! - `migrate --store URL`: creates or upgrades a PostgreSQL schema (a
//!   server does it at start too; this is for doing it ahead of a rollout).
//! - `copy --from A --to B`: everything one store holds into another, empty
//!   one (a data directory or a PostgreSQL URL each), both out of service.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use stepline_postgres::{Migrated, PostgresOptions, PostgresStore};
use stepline_store::{CHECK_PROBLEMS_KEPT, SledStore, backup};

use crate::store::{StoreChoice, redacted};

use super::client::{Api, ClientError, Remote, finish};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Check a data directory (the server must be stopped): every page, record and open execution.
    Check {
        /// The data directory.
        #[arg(long, default_value = "./stepline-data")]
        data_dir: PathBuf,
    },
    /// Save a consistent backup of a running server's store to FILE.
    Backup {
        /// Where to write the backup (replaced only once the new one is whole).
        file: PathBuf,
        #[command(flatten)]
        remote: Remote,
    },
    /// Restore a backup into a new, empty data directory (the server stopped).
    Restore {
        /// The backup written by `stepline store backup`.
        file: PathBuf,
        /// The data directory to create.
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// Create or upgrade the tables of a PostgreSQL store (servers also do it at start).
    Migrate {
        #[command(flatten)]
        database: Database,
    },
    /// Copy everything a store holds into another, empty one (no server may use either).
    Copy {
        /// The store to read: a data directory or a postgres:// URL.
        #[arg(long)]
        from: String,
        /// The empty store to fill: a data directory or a postgres:// URL.
        #[arg(long)]
        to: String,
        /// A stepline.toml whose [store] gives the PostgreSQL password and schema.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

/// Which PostgreSQL database and schema: `--store URL`, or `[store]` of a
/// stepline.toml (with its password settings).
#[derive(Debug, clap::Args)]
struct Database {
    /// The database (postgres://user@host:5432/db); default: the url of [store] in --config.
    #[arg(long, value_name = "URL")]
    store: Option<String>,
    /// A stepline.toml whose [store] names the database, schema and password.
    #[arg(long)]
    config: Option<PathBuf>,
}

impl Database {
    fn options(&self) -> Result<PostgresOptions, String> {
        let config = match &self.config {
            Some(path) => crate::config::load(path)?,
            None => crate::config::Config::default(),
        };
        match StoreChoice::from_config(&config.store, self.store.as_deref(), Path::new(""), 0)? {
            StoreChoice::Postgres(options) => Ok(options),
            StoreChoice::Sled { .. } => Err(
                "no PostgreSQL database given: use --store postgres://... or --config with a [store] url (the embedded store upgrades itself when a server opens it)".to_owned(),
            ),
        }
    }
}

/// How long a backup may take to arrive.
const BACKUP_TIMEOUT: Duration = Duration::from_secs(3600);

pub fn run(args: &Args, stdout: &mut dyn Write, stderr: &mut dyn Write) -> u8 {
    match &args.command {
        Command::Check { data_dir } => check(data_dir, stdout, stderr),
        Command::Backup { file, remote } => {
            finish("store backup", save_backup(file, remote, stdout), stderr)
        }
        Command::Restore { file, data_dir } => restore(file, data_dir, stdout, stderr),
        Command::Migrate { database } => migrate(database, stdout, stderr),
        Command::Copy { from, to, config } => copy(from, to, config.as_deref(), stdout, stderr),
    }
}

/// Opens one side of a copy, as the only user of it: a data directory
/// (sled's lock) or a PostgreSQL schema no live node serves.
fn open_for_copy(
    place: &str,
    config: &crate::config::Config,
) -> Result<Box<dyn stepline_store::Store>, String> {
    if place.starts_with("postgres://") || place.starts_with("postgresql://") {
        let choice = StoreChoice::from_config(&config.store, Some(place), Path::new(""), 0)?;
        let StoreChoice::Postgres(options) = choice else {
            return Err(format!("{} is not a PostgreSQL URL", redacted(place)));
        };
        let failed = |e: stepline_store::StoreError| format!("{}: {e}", redacted(place));
        let store = PostgresStore::open(&options).map_err(failed)?;
        let nodes = stepline_store::Cluster::nodes(&store).map_err(failed)?;
        let live: Vec<&str> = nodes
            .iter()
            .filter(|n| n.alive)
            .map(|n| n.address.as_str())
            .collect();
        if !live.is_empty() {
            return Err(format!(
                "{}: stepline nodes serve this database ({}); stop them before a copy (a node killed rather than stopped counts until its leases run out)",
                redacted(place),
                live.join(", ")
            ));
        }
        Ok(Box::new(store))
    } else {
        SledStore::open(Path::new(place))
            .map(|s| Box::new(s) as Box<dyn stepline_store::Store>)
            .map_err(|e| e.to_string())
    }
}

fn copy(
    from: &str,
    to: &str,
    config: Option<&Path>,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> u8 {
    let config = match config.map(crate::config::load).transpose() {
        Ok(config) => config.unwrap_or_default(),
        Err(e) => {
            let _ = writeln!(stderr, "stepline store copy: {e}");
            return super::EXIT_USAGE;
        }
    };
    if !from.contains("://") && !Path::new(from).join("db").exists() {
        let _ = writeln!(stderr, "stepline store copy: {from} holds no store");
        return super::EXIT_USAGE;
    }
    let opened =
        open_for_copy(from, &config).and_then(|source| Ok((source, open_for_copy(to, &config)?)));
    let (source, target) = match opened {
        Ok(stores) => stores,
        Err(e) => {
            let _ = writeln!(stderr, "stepline store copy: {e}");
            return 1;
        }
    };
    let mut progress = |n: u64| {
        if n % 1000 == 0 {
            let _ = writeln!(stderr, "{n} executions copied");
        }
    };
    match stepline_store::copy::copy(source.as_ref(), target.as_ref(), &mut progress) {
        Ok(summary) => {
            let _ = writeln!(
                stdout,
                "copied {} state machines ({} revisions), {} executions ({} history events), {} task tokens, {} activities, {} triggers from {} to {}",
                summary.state_machines,
                summary.revisions,
                summary.executions,
                summary.history_events,
                summary.task_tokens,
                summary.activities,
                summary.triggers,
                redacted_place(from),
                redacted_place(to),
            );
            0
        }
        Err(e) => {
            let _ = writeln!(stderr, "stepline store copy: {e}");
            1
        }
    }
}

/// A place as given, a URL without its password.
fn redacted_place(place: &str) -> String {
    if place.contains("://") {
        redacted(place)
    } else {
        place.to_owned()
    }
}

fn migrate(database: &Database, stdout: &mut dyn Write, stderr: &mut dyn Write) -> u8 {
    let options = match database.options() {
        Ok(options) => options,
        Err(e) => {
            let _ = writeln!(stderr, "stepline store migrate: {e}");
            return super::EXIT_USAGE;
        }
    };
    match PostgresStore::migrate(&options) {
        Ok(Migrated { from, to }) if from == to => {
            let _ = writeln!(
                stdout,
                "schema {} is at version {to}: nothing to do",
                options.schema
            );
            0
        }
        Ok(Migrated { from, to }) => {
            let _ = writeln!(
                stdout,
                "schema {}: migrated from version {from} to {to}",
                options.schema
            );
            0
        }
        Err(e) => {
            let _ = writeln!(
                stderr,
                "stepline store migrate: {}: {e}",
                redacted(&options.url)
            );
            1
        }
    }
}

fn check(data_dir: &std::path::Path, stdout: &mut dyn Write, stderr: &mut dyn Write) -> u8 {
    if !data_dir.join("db").exists() {
        let _ = writeln!(
            stderr,
            "stepline store check: {} holds no store",
            data_dir.display()
        );
        return super::EXIT_USAGE;
    }
    let report = SledStore::open(data_dir).and_then(|store| store.check());
    match report {
        Ok(report) => {
            let entries: u64 = report.entries.values().sum();
            let _ = writeln!(stdout, "{}: {entries} entries read", data_dir.display());
            for problem in &report.problems {
                let _ = writeln!(stdout, "  problem: {problem}");
            }
            if report.problem_count as usize > CHECK_PROBLEMS_KEPT {
                let _ = writeln!(
                    stdout,
                    "  ... and {} more",
                    report.problem_count as usize - CHECK_PROBLEMS_KEPT
                );
            }
            if report.problem_count == 0 {
                let _ = writeln!(stdout, "no problems found");
                0
            } else {
                let _ = writeln!(stdout, "{} problems found", report.problem_count);
                1
            }
        }
        Err(e) => {
            let _ = writeln!(stderr, "stepline store check: {e}");
            1
        }
    }
}

fn save_backup(
    file: &std::path::Path,
    remote: &Remote,
    stdout: &mut dyn Write,
) -> Result<u8, ClientError> {
    let api = Api::new(remote)?;
    let partial = file.with_extension("partial");
    let cannot =
        |e: std::io::Error| ClientError::usage(format!("cannot write {}: {e}", partial.display()));
    let mut out = std::fs::File::create(&partial).map_err(cannot)?;
    let received = api.download("/v1/store/backup", &mut out, BACKUP_TIMEOUT);
    let checked = received.and_then(|_| {
        out.sync_all().map_err(cannot)?;
        let reread = std::fs::File::open(&partial).map_err(cannot)?;
        backup::verify(std::io::BufReader::new(reread)).map_err(|e| ClientError::BadAnswer {
            what: "POST /v1/store/backup".into(),
            reason: e.to_string(),
        })
    });
    let summary = match checked {
        Ok(summary) => summary,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    std::fs::rename(&partial, file).map_err(cannot)?;
    let _ = writeln!(
        stdout,
        "{}: {} entries, {} bytes, checksum verified",
        file.display(),
        summary.entries,
        summary.bytes
    );
    Ok(0)
}

fn restore(
    file: &std::path::Path,
    data_dir: &std::path::Path,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> u8 {
    let source = file.to_path_buf();
    let open = move || -> std::io::Result<Box<dyn std::io::Read>> {
        Ok(Box::new(std::io::BufReader::new(std::fs::File::open(
            &source,
        )?)))
    };
    match SledStore::restore(open, data_dir) {
        Ok(summary) => {
            let _ = writeln!(
                stdout,
                "restored {} entries into {}; start the server with --data-dir {}",
                summary.entries,
                data_dir.display(),
                data_dir.display()
            );
            0
        }
        Err(e) => {
            let _ = writeln!(stderr, "stepline store restore: {e}");
            1
        }
    }
}

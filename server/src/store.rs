//! Which store a server opens: the embedded sled directory by default, or
//! the PostgreSQL database of `--store` / `[store] url`, with its password
//! from a file or the environment (never from the command line alone).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use stepline_postgres::{PostgresOptions, PostgresStore};
use stepline_store::{SledStore, Store};

use crate::config::StoreConfig;

/// The store a command will open.
#[derive(Debug, Clone)]
pub enum StoreChoice {
    Sled { dir: PathBuf, cache_bytes: u64 },
    Postgres(PostgresOptions),
}

/// How long a node's leases outlive its last renewal unless configured.
pub const DEFAULT_LEASE_SECONDS: u32 = 5;

/// The host's name, in the characters a node id keeps.
fn host_name() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let kept: String = name
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(64)
        .collect();
    if kept.is_empty() {
        "stepline".to_owned()
    } else {
        kept
    }
}

/// The environment variable libpq reads for a password: honoured when the
/// configuration names no other source.
const PGPASSWORD: &str = "PGPASSWORD";

impl StoreChoice {
    /// PostgreSQL when `url` (the `--store` flag) or `[store] url` is
    /// given, else sled in `data_dir`.
    pub fn from_config(
        config: &StoreConfig,
        url: Option<&str>,
        data_dir: &Path,
        cache_bytes: u64,
    ) -> Result<Self, String> {
        let Some(url) = url.or(config.url.as_deref()) else {
            return Ok(StoreChoice::Sled {
                dir: data_dir.to_path_buf(),
                cache_bytes,
            });
        };
        check_url(url)?;
        let mut options = PostgresOptions::new(url);
        options.password = password(config)?;
        if let Some(schema) = &config.schema {
            options.schema.clone_from(schema);
        }
        if let Some(n) = config.connections {
            options.connections = n as usize;
        }
        Ok(StoreChoice::Postgres(options))
    }

    /// This node's part in a cluster: on PostgreSQL, every node is one of
    /// the cluster of its database and schema; sled serves one node.
    pub fn cluster(
        &self,
        config: &StoreConfig,
        address: &str,
    ) -> Option<stepline_runtime::ClusterConfig> {
        let StoreChoice::Postgres(_) = self else {
            return None;
        };
        let name = config.node_name.clone().unwrap_or_else(host_name);
        let salt = chrono::Utc::now().timestamp_subsec_nanos() & 0xffff;
        Some(stepline_runtime::ClusterConfig {
            node: format!("{name}-{}-{salt:04x}", std::process::id()),
            address: address.to_owned(),
            lease: std::time::Duration::from_secs(u64::from(
                config.lease_seconds.unwrap_or(DEFAULT_LEASE_SECONDS).max(1),
            )),
        })
    }

    /// Opens the store for a serving node.
    pub fn open_to_serve(&self) -> Result<Arc<dyn Store>, String> {
        match self {
            StoreChoice::Sled { dir, cache_bytes } => SledStore::open_with_cache(dir, *cache_bytes)
                .map(|s| Arc::new(s) as Arc<dyn Store>)
                .map_err(|e| e.to_string()),
            StoreChoice::Postgres(options) => {
                let failed = |e: stepline_store::StoreError| {
                    format!("cannot open the store at {}: {e}", redacted(&options.url))
                };
                let store = PostgresStore::open(options).map_err(failed)?;
                Ok(Arc::new(store))
            }
        }
    }

    /// Where the data is, for a person: the directory, or the database's
    /// URL without its password.
    pub fn describe(&self) -> String {
        match self {
            StoreChoice::Sled { dir, .. } => format!("data in {}", dir.display()),
            StoreChoice::Postgres(options) => format!(
                "store {} (schema {})",
                redacted(&options.url),
                options.schema
            ),
        }
    }
}

/// The password from `password_file`, `password_env`, or else PGPASSWORD.
fn password(config: &StoreConfig) -> Result<Option<String>, String> {
    if let Some(file) = &config.password_file {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("store.password_file: cannot read {}: {e}", file.display()))?;
        return Ok(Some(text.lines().next().unwrap_or_default().to_owned()));
    }
    if let Some(name) = &config.password_env {
        return std::env::var(name).map(Some).map_err(|_| {
            format!("store.password_env: the environment variable {name} is not set")
        });
    }
    Ok(std::env::var(PGPASSWORD).ok())
}

fn check_url(url: &str) -> Result<(), String> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(())
    } else {
        Err(format!(
            "the store '{}' is not a PostgreSQL URL (postgres://user@host:5432/database)",
            redacted(url)
        ))
    }
}

/// `url` with any password replaced by `***`, fit for logs and errors.
pub fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => url.to_owned(),
        Err(_) => "(an unreadable URL)".to_owned(),
    }
}

/// The rules of `[store]` serde cannot say.
pub fn check_config(config: &StoreConfig) -> Result<(), String> {
    if let Some(url) = &config.url {
        check_url(url).map_err(|e| format!("store.url: {e}"))?;
    }
    if config.password_file.is_some() && config.password_env.is_some() {
        return Err("store: give password_file or password_env, not both".to_owned());
    }
    if let Some(schema) = &config.schema {
        if !stepline_postgres::schema::is_plain_identifier(schema) {
            return Err(format!(
                "store.schema: '{schema}' is not a plain lowercase name (letters, digits and underscores)"
            ));
        }
    }
    if config.connections == Some(0) {
        return Err("store.connections: at least 1".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_never_reaches_a_message() {
        assert_eq!(
            redacted("postgres://stepline:hunter2@db:5432/x"),
            "postgres://stepline:***@db:5432/x"
        );
        assert_eq!(
            redacted("postgres://stepline@db/x"),
            "postgres://stepline@db/x"
        );
        let e = check_url("mysql://u:hunter2@db/x").unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
    }
}

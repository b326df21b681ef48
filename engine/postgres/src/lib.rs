//! The store traits on PostgreSQL: the backend several stepline nodes
//! share.
//!
//! The store traits are synchronous (sled answers in microseconds from
//! memory); this backend answers them on a small runtime of its own, where
//! its connections live, and the calling thread waits for the answer.
//! Calling from an async worker is allowed: the wait is a plain channel
//! receive, never a nested runtime.
//!
//! Durability follows the trait's contract with group commit: every
//! [`Store::apply`] is one transaction committed without waiting for the
//! disk (`synchronous_commit = off`), visible to every reader at once; one
//! [`Store::flush`] then commits a small transaction that does wait, and
//! PostgreSQL writes its log in order, so that wait covers every commit
//! before it.
//!
//! Tables live in one schema (`stepline` unless configured), created and
//! migrated at open ([`schema`]).

mod cluster;
mod counts;
mod pool;
mod reads;
pub mod schema;
mod writes;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use stepline_store::{Store, StoreError, WriteBatch, WriteOp};

use crate::pool::Pool;
pub use crate::schema::{Migrated, SCHEMA_VERSION};

/// The schema the tables live in unless the operator names another.
pub const DEFAULT_SCHEMA: &str = "stepline";

/// Why the PostgreSQL backend failed; reaches the store's callers as
/// [`StoreError::Backend`] (or a more precise store error).
#[derive(Debug, thiserror::Error)]
pub enum PostgresError {
    #[error("PostgreSQL: {0}")]
    Database(#[from] tokio_postgres::Error),
    #[error("the store URL is not a PostgreSQL connection string: {0}")]
    Url(#[source] tokio_postgres::Error),
    #[error(
        "the schema name '{0}' is not a plain lowercase identifier (letters, digits and underscores)"
    )]
    SchemaName(String),
    #[error(
        "the database was migrated by a newer stepline (schema version {found}; this build knows up to {supported}); upgrade stepline or use another schema"
    )]
    NewerSchema { found: i64, supported: i64 },
    #[error("the PostgreSQL store's runtime cannot start: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("the PostgreSQL store is closed")]
    Closed,
    #[error("a stored value does not read as what its table holds: {0}")]
    Decode(#[source] serde_json::Error),
}

impl From<PostgresError> for StoreError {
    fn from(e: PostgresError) -> Self {
        match e {
            PostgresError::Decode(e) => StoreError::Decode(e),
            e => StoreError::Backend(Box::new(e)),
        }
    }
}

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// A libpq-style URL or key=value string (`postgres://user@host/db`).
    pub url: String,
    /// The password, when it is not in the URL (from a file or the
    /// environment: the command line is no place for it).
    pub password: Option<String>,
    /// The schema the tables live in.
    pub schema: String,
    /// At most this many connections.
    pub connections: usize,
}

impl PostgresOptions {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            password: None,
            schema: DEFAULT_SCHEMA.to_owned(),
            connections: 8,
        }
    }
}

/// The store on PostgreSQL.
#[derive(Debug)]
pub struct PostgresStore {
    /// Taken only when dropped (a runtime cannot be dropped inside another).
    runtime: Option<tokio::runtime::Runtime>,
    pool: Arc<Pool>,
    schema: String,
    /// This process's row of the flush table.
    node: String,
    /// Wake-ups for the messages of this process's node.
    listener: Arc<cluster::Listener>,
    /// The dashboard's counts of committed batches, not yet in the table.
    counts: Arc<counts::Counts>,
}

impl PostgresStore {
    /// Connects, creates or migrates the schema, and checks that this
    /// build can read it.
    pub fn open(options: &PostgresOptions) -> Result<Self, StoreError> {
        Ok(Self::open_inner(options)?.0)
    }

    /// Connects and brings the schema to this build's version: what
    /// `stepline store migrate` does, and what [`PostgresStore::open`]
    /// does first.
    pub fn migrate(options: &PostgresOptions) -> Result<Migrated, StoreError> {
        Ok(Self::open_inner(options)?.1)
    }

    fn open_inner(options: &PostgresOptions) -> Result<(Self, Migrated), PostgresError> {
        if !schema::is_plain_identifier(&options.schema) {
            return Err(PostgresError::SchemaName(options.schema.clone()));
        }
        let mut config: tokio_postgres::Config = options.url.parse().map_err(PostgresError::Url)?;
        if let Some(password) = &options.password {
            config.password(password);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        config.application_name("stepline");
        config.keepalives_idle(Duration::from_secs(10));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("stepline-postgres")
            .enable_all()
            .build()
            .map_err(PostgresError::Runtime)?;
        let pool = Arc::new(Pool::new(
            config,
            options.schema.clone(),
            options.connections,
        ));
        let node = format!(
            "{}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
        );
        let store = Self {
            runtime: Some(runtime),
            pool,
            schema: options.schema.clone(),
            node,
            listener: Arc::default(),
            counts: Arc::default(),
        };
        let schema = options.schema.clone();
        let migrated = store.run(|pool| async move {
            let mut conn = pool.connect().await?;
            schema::migrate(&mut conn.client, &schema).await
        })?;
        if let Some(runtime) = store.runtime.as_ref() {
            runtime.spawn(counts::flush_loop(
                Arc::clone(&store.pool),
                Arc::clone(&store.counts),
            ));
        }
        Ok((store, migrated))
    }

    /// Runs `call` on the store's runtime and waits for its answer.
    fn run<T, F, Fut>(&self, call: F) -> Result<T, PostgresError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Pool>) -> Fut,
        Fut: Future<Output = Result<T, PostgresError>> + Send + 'static,
    {
        let runtime = self.runtime.as_ref().ok_or(PostgresError::Closed)?;
        let future = call(Arc::clone(&self.pool));
        let (answer, answered) = std::sync::mpsc::sync_channel(1);
        runtime.spawn(async move {
            let _ = answer.send(future.await);
        });
        // On an async worker of a multi-threaded runtime, the worker's
        // other tasks move to another thread while this one waits for the
        // database, as they do for the engine's long reads.
        let wait = || answered.recv().map_err(|_| PostgresError::Closed);
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(wait)?
            }
            _ => wait()?,
        }
    }
}

impl PostgresStore {
    /// Adds the pending dashboard counts to the table now (a clean stop).
    pub(crate) fn flush_counts(&self) -> Result<(), PostgresError> {
        let counts = Arc::clone(&self.counts);
        self.run(|pool| async move { counts.flush(&pool).await })
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        if let Err(e) = self.flush_counts() {
            tracing::warn!(error = %e, "the dashboard's last counts were not added");
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Store for PostgresStore {
    fn apply(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let statements = writes::Statements::of(batch)?;
        let counted = batch.ops.iter().filter_map(|op| match op {
            WriteOp::AddStats(delta) => Some(delta.clone()),
            _ => None,
        });
        if !statements.is_empty() {
            self.run(|pool| async move { Ok(writes::apply(&pool, statements).await) })??;
        }
        // Counted once committed, never for a batch that was not.
        self.counts.add(counted);
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        // One round trip: the process's row id is digits and a dash (made
        // at open), so it is written into the text as it is.
        debug_assert!(self.node.chars().all(|c| c.is_ascii_digit() || c == '-'));
        let sql = format!(
            "BEGIN; SET LOCAL synchronous_commit TO on;
             INSERT INTO flushes (node, count) VALUES ('{}', 1)
             ON CONFLICT (node) DO UPDATE SET count = flushes.count + 1, at = now();
             COMMIT",
            self.node
        );
        Ok(self.run(|pool| async move {
            let conn = pool.get().await?;
            // This one commit waits for the disk, and with it every commit
            // before it.
            if let Err(e) = conn.client.batch_execute(&sql).await {
                conn.discard();
                return Err(e.into());
            }
            Ok(())
        })?)
    }

    fn cluster(&self) -> Option<&dyn stepline_store::Cluster> {
        Some(self)
    }
}

#[cfg(test)]
mod tests;

//! A small pool of connections, each with its prepared statements.
//!
//! A connection is taken for one whole store call (a read, or a batch's
//! transaction) and given back after; one that broke is dropped, and the
//! next call opens a new one, so the pool heals after the database
//! restarts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::{Client, NoTls, Statement};

use crate::PostgresError;

#[derive(Debug)]
pub(crate) struct Pool {
    config: tokio_postgres::Config,
    schema: String,
    idle: Mutex<Vec<Conn>>,
    slots: Arc<Semaphore>,
}

/// One open connection, its statements prepared on it by SQL text.
pub(crate) struct Conn {
    pub(crate) client: Client,
    statements: HashMap<String, Statement>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("statements", &self.statements.len())
            .finish()
    }
}

impl Conn {
    /// The statement for `sql`, prepared on this connection the first time.
    pub(crate) async fn statement(&mut self, sql: &str) -> Result<Statement, PostgresError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql).await?;
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }
}

impl Pool {
    pub(crate) fn new(config: tokio_postgres::Config, schema: String, size: usize) -> Self {
        Self {
            config,
            schema,
            idle: Mutex::new(Vec::new()),
            slots: Arc::new(Semaphore::new(size.max(1))),
        }
    }

    /// How connections are made (the cluster's listening connection is
    /// made the same way, outside the pool).
    pub(crate) fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// A connection for one call: an idle one, or a new one while the pool
    /// is below its size; otherwise waits for one to come back.
    pub(crate) async fn get(self: &Arc<Self>) -> Result<Pooled, PostgresError> {
        let permit = Arc::clone(&self.slots)
            .acquire_owned()
            .await
            .map_err(|_| PostgresError::Closed)?;
        let idle = self.lock_idle().pop();
        let conn = match idle {
            Some(conn) if !conn.client.is_closed() => conn,
            _ => self.connect().await?,
        };
        Ok(Pooled {
            conn: Some(conn),
            pool: Arc::clone(self),
            _permit: permit,
        })
    }

    /// A new connection, its driver running on the current runtime, with
    /// the session settings every call relies on.
    pub(crate) async fn connect(&self) -> Result<Conn, PostgresError> {
        let (client, connection) = self.config.connect(NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "a PostgreSQL connection closed");
            }
        });
        // Commits do not wait for the disk: `flush` waits once for all of
        // them (see `PostgresStore::flush`).
        client
            .batch_execute(&format!(
                "SET search_path TO {}; SET synchronous_commit TO off",
                self.schema
            ))
            .await?;
        Ok(Conn {
            client,
            statements: HashMap::new(),
        })
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<Conn>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A connection taken from the pool, given back when dropped (unless it
/// broke).
#[derive(Debug)]
pub(crate) struct Pooled {
    conn: Option<Conn>,
    pool: Arc<Pool>,
    _permit: OwnedSemaphorePermit,
}

impl Pooled {
    /// Drops the connection instead of giving it back: after a failure
    /// that may have left it inside a transaction.
    pub(crate) fn discard(mut self) {
        self.conn = None;
    }
}

impl std::ops::Deref for Pooled {
    type Target = Conn;

    fn deref(&self) -> &Conn {
        self.conn
            .as_ref()
            .expect("a pooled connection is present until dropped")
    }
}

impl std::ops::DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut Conn {
        self.conn
            .as_mut()
            .expect("a pooled connection is present until dropped")
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && !conn.client.is_closed()
        {
            self.pool.lock_idle().push(conn);
        }
    }
}

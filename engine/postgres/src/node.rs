//! One node per database: until executions are owned through leases, two
//! nodes resuming the same open executions would run their steps twice. A
//! serving node holds a session advisory lock for as long as it runs, and a
//! second node is refused at start.

use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::Client;

use crate::pool::Pool;
use crate::{PostgresError, PostgresStore};

/// How often the holder checks that its session (and so its lock) lives.
const CHECK_EVERY: Duration = Duration::from_secs(2);

impl PostgresStore {
    /// Takes the database's node lock for this process's lifetime, or
    /// says that another node holds it.
    pub fn hold_sole_node(&self) -> Result<(), stepline_store::StoreError> {
        let schema = self.schema.clone();
        Ok(self.run(|pool| async move {
            let client = take(&pool, &schema).await?;
            tokio::spawn(keep(pool, schema, client));
            Ok(())
        })?)
    }
}

async fn take(pool: &Arc<Pool>, schema: &str) -> Result<Client, PostgresError> {
    let conn = pool.connect().await?;
    let row = conn
        .client
        .query_one(
            "SELECT pg_try_advisory_lock(hashtext('stepline node ' || $1))",
            &[&schema],
        )
        .await?;
    if row.get::<_, bool>(0) {
        Ok(conn.client)
    } else {
        Err(PostgresError::AnotherNode(schema.to_owned()))
    }
}

/// Holds the lock's session open; after the database restarts, takes the
/// lock again.
async fn keep(pool: Arc<Pool>, schema: String, mut client: Client) {
    loop {
        tokio::time::sleep(CHECK_EVERY).await;
        if !client.is_closed() {
            continue;
        }
        match take(&pool, &schema).await {
            Ok(again) => client = again,
            Err(e) => {
                tracing::error!(error = %e, "the node lock is lost and cannot be taken again")
            }
        }
    }
}

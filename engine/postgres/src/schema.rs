//! The tables, as numbered migrations applied in order at open.
//!
//! A migration is never edited once released: a change of tables is a new
//! migration at the end. `stepline_schema` records which have run; a
//! database with a number this build does not know was written by a newer
//! stepline, and is refused rather than misread.
//!
//! How the records are kept: each record as its serde JSON text (the
//! format sled keeps too, so `store copy` moves records unchanged), beside
//! the columns a query selects or orders by. Times that order rows are
//! nanoseconds since the epoch (`bigint`): the listing cursor is in
//! nanoseconds, and `timestamptz` keeps microseconds only. Keys that
//! order a listing are `COLLATE "C"`: byte order, as sled's, whatever the
//! database's locale.

use tokio_postgres::Client;

use crate::PostgresError;

/// The migrations, in order; the first is number 1.
const MIGRATIONS: &[&str] = &[
    // 1: every table of the store traits.
    r#"
    -- One row per process: its flush writes here (see PostgresStore::flush).
    CREATE TABLE flushes (
        node text PRIMARY KEY,
        count bigint NOT NULL,
        at timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE state_machines (arn text COLLATE "C" PRIMARY KEY, record text NOT NULL);
    CREATE TABLE state_machine_revisions (
        arn text NOT NULL,
        revision bigint NOT NULL,
        record text NOT NULL,
        PRIMARY KEY (arn, revision)
    );

    CREATE TABLE executions (
        arn text COLLATE "C" PRIMARY KEY,
        state_machine_arn text NOT NULL,
        name text NOT NULL,
        unique_name boolean NOT NULL,
        status text NOT NULL,
        start_ns bigint NOT NULL,
        redriven boolean NOT NULL,
        map_run_arn text,
        summary text NOT NULL,
        record text NOT NULL
    );
    CREATE UNIQUE INDEX executions_by_name
        ON executions (state_machine_arn, name) WHERE unique_name;
    CREATE INDEX executions_listing ON executions (start_ns DESC, arn);
    CREATE INDEX executions_listing_by_machine
        ON executions (state_machine_arn, start_ns DESC, arn);
    CREATE INDEX executions_listing_by_map_run
        ON executions (map_run_arn, start_ns DESC, arn) WHERE map_run_arn IS NOT NULL;
    CREATE INDEX executions_open ON executions (arn) WHERE status = 'RUNNING';

    CREATE TABLE journal (
        execution text NOT NULL,
        seq bigint NOT NULL,
        entry text NOT NULL,
        PRIMARY KEY (execution, seq)
    );
    CREATE TABLE history (
        execution text NOT NULL,
        id bigint NOT NULL,
        event text NOT NULL,
        PRIMARY KEY (execution, id)
    );
    CREATE TABLE timers (
        execution text NOT NULL,
        timer bigint NOT NULL,
        record text NOT NULL,
        PRIMARY KEY (execution, timer)
    );
    CREATE TABLE task_tokens (
        token text COLLATE "C" PRIMARY KEY,
        execution text NOT NULL,
        task bigint NOT NULL
    );
    CREATE INDEX task_tokens_by_execution ON task_tokens (execution);
    CREATE TABLE task_logs (
        execution text NOT NULL,
        seq bigint NOT NULL,
        record text NOT NULL,
        PRIMARY KEY (execution, seq)
    );
    CREATE TABLE task_log_counters (execution text PRIMARY KEY, last bigint NOT NULL);
    CREATE TABLE ended_notices (arn text COLLATE "C" PRIMARY KEY);
    CREATE TABLE map_runs (
        arn text COLLATE "C" PRIMARY KEY,
        execution text NOT NULL,
        record text NOT NULL
    );
    CREATE INDEX map_runs_by_execution ON map_runs (execution, arn);

    CREATE TABLE activities (arn text COLLATE "C" PRIMARY KEY, record text NOT NULL);
    CREATE TABLE triggers (name text COLLATE "C" PRIMARY KEY, record text NOT NULL);
    CREATE TABLE trigger_states (name text PRIMARY KEY, record text NOT NULL);
    "#,
    // 2: several nodes: who they are, which executions each owns, the
    // messages left for executions by nodes that do not own them, the
    // activity tasks waiting for a worker of any node, and which node leads
    // what only one node does (the schedules, the purge).
    r#"
    CREATE TABLE nodes (
        id text COLLATE "C" PRIMARY KEY,
        address text NOT NULL,
        started timestamptz NOT NULL DEFAULT clock_timestamp(),
        expires timestamptz NOT NULL
    );
    CREATE TABLE leases (
        execution text COLLATE "C" PRIMARY KEY,
        node text NOT NULL,
        epoch bigint NOT NULL
    );
    CREATE INDEX leases_by_node ON leases (node);
    CREATE TABLE messages (
        id bigserial PRIMARY KEY,
        execution text COLLATE "C" NOT NULL,
        body text NOT NULL,
        posted timestamptz NOT NULL DEFAULT clock_timestamp()
    );
    CREATE INDEX messages_by_execution ON messages (execution, id);
    CREATE TABLE activity_tasks (
        token text COLLATE "C" PRIMARY KEY,
        activity text NOT NULL,
        execution text NOT NULL,
        task bigint NOT NULL,
        input text NOT NULL,
        offered bigserial NOT NULL
    );
    CREATE INDEX activity_tasks_queue ON activity_tasks (activity, offered);
    CREATE INDEX activity_tasks_by_execution ON activity_tasks (execution);
    CREATE TABLE leaders (role text PRIMARY KEY, node text NOT NULL);
    "#,
    // 3: task results kept for reuse, and which executions read and wrote
    // which files (lineage).
    r#"
    CREATE TABLE task_cache (
        key text COLLATE "C" PRIMARY KEY,
        expires_ns bigint NOT NULL,
        record text NOT NULL
    );
    CREATE TABLE lineage (
        path text COLLATE "C" NOT NULL,
        execution text COLLATE "C" NOT NULL,
        kind text COLLATE "C" NOT NULL,
        record text NOT NULL,
        PRIMARY KEY (path, execution, kind)
    );
    CREATE INDEX lineage_by_execution ON lineage (execution, kind, path);
    "#,
    // 4: the dashboard's counts per state machine and hour (hour -1: the
    // total). Each is kept in a few rows (`shard`), summed when read, so
    // that executions of one machine ending together on several
    // connections do not all wait for one row's lock.
    r#"
    CREATE TABLE machine_stats (
        state_machine text COLLATE "C" NOT NULL,
        hour bigint NOT NULL,
        shard smallint NOT NULL,
        started bigint NOT NULL,
        redriven bigint NOT NULL,
        succeeded bigint NOT NULL,
        failed bigint NOT NULL,
        timed_out bigint NOT NULL,
        aborted bigint NOT NULL,
        durations bigint[] NOT NULL,
        PRIMARY KEY (state_machine, hour, shard)
    );
    "#,
    // 5: a refusal raised inside a write's transaction (a fence that does
    // not hold, an append that does not follow the history, no free slot),
    // so that the batch's pipelined COMMIT rolls it back and a write is one
    // round trip. Returns bigint to stand in any CASE branch of a count or
    // id. And the queued mark as a column, for max_running in a cluster.
    r#"
    CREATE FUNCTION stepline_refuse(code text, reason text) RETURNS bigint
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION USING ERRCODE = code, MESSAGE = reason;
    END
    $$;

    -- max_running counted by every node: a queued execution's priority
    -- (NULL once it runs), and the running executions by state machine.
    ALTER TABLE executions ADD COLUMN queued_priority integer;
    CREATE INDEX executions_running_by_machine
        ON executions (state_machine_arn) WHERE status = 'RUNNING';
    "#,
    // 6: the slots of the pools of slots (`[pools.NAME]`) every node
    // shares: one row per slot, held by a task (`holder`: its execution
    // and task) of a node, or free (`holder` NULL). A slot whose node's
    // row expired is free again.
    r#"
    CREATE TABLE pool_slots (
        pool text COLLATE "C" NOT NULL,
        slot integer NOT NULL,
        holder text COLLATE "C",
        node text,
        execution text,
        state text,
        since_us bigint,
        PRIMARY KEY (pool, slot)
    );
    CREATE INDEX pool_slots_by_holder ON pool_slots (pool, holder) WHERE holder IS NOT NULL;
    -- The tasks waiting for a slot, in order (`seq`), on every node; a
    -- waiter asks again at least every second (`seen`), so a row whose
    -- waiter went without a word is passed over after a few seconds.
    CREATE TABLE pool_waiters (
        pool text COLLATE "C" NOT NULL,
        holder text COLLATE "C" NOT NULL,
        node text NOT NULL,
        execution text NOT NULL,
        state text NOT NULL,
        since_us bigint NOT NULL,
        seq bigserial NOT NULL,
        seen timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (pool, holder)
    );
    CREATE INDEX pool_waiters_queue ON pool_waiters (pool, seq);
    "#,
];

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// What [`migrate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// The version found (0: a new schema).
    pub from: i64,
    /// The version now.
    pub to: i64,
}

/// Creates `schema` if needed and applies the migrations it lacks, in one
/// transaction under an advisory lock, so that nodes starting together
/// migrate once.
pub(crate) async fn migrate(client: &mut Client, schema: &str) -> Result<Migrated, PostgresError> {
    let tx = client.transaction().await?;
    // One lock per schema: two clusters in two schemas of one database do
    // not wait for each other.
    tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&schema])
        .await?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE TABLE IF NOT EXISTS {schema}.stepline_schema (
             version bigint PRIMARY KEY,
             applied timestamptz NOT NULL DEFAULT now()
         );"
    ))
    .await?;
    let row = tx
        .query_one(
            &format!("SELECT coalesce(max(version), 0) FROM {schema}.stepline_schema"),
            &[],
        )
        .await?;
    let from: i64 = row.get(0);
    if from > SCHEMA_VERSION {
        return Err(PostgresError::NewerSchema {
            found: from,
            supported: SCHEMA_VERSION,
        });
    }
    tx.batch_execute(&format!("SET LOCAL search_path TO {schema}"))
        .await?;
    for (number, sql) in (1i64..)
        .zip(MIGRATIONS)
        .skip(usize::try_from(from).unwrap_or(0))
    {
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO stepline_schema (version) VALUES ($1)",
            &[&number],
        )
        .await?;
    }
    // Rows of processes long gone.
    tx.execute(
        "DELETE FROM flushes WHERE at < now() - interval '1 day'",
        &[],
    )
    .await?;
    tx.execute(
        "DELETE FROM nodes WHERE expires < now() - interval '1 day'",
        &[],
    )
    .await?;
    tx.commit().await?;
    Ok(Migrated {
        from,
        to: SCHEMA_VERSION,
    })
}

/// Whether `name` can be a schema name as is: lowercase letters, digits
/// and underscores, not starting with a digit, at most 63 bytes. It is
/// written into SQL text (a schema cannot be a parameter), so nothing else
/// is accepted.
pub fn is_plain_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

//! Versioned schema migrations, run at start.
//!
//! Hand-rolled rather than `sqlx::migrate!` because the two databases need
//! different column types for the same schema, and because the server must
//! also recognise a database that is not ldguard's at all: a database with
//! tables but no `ldguard_schema` is refused, never written into, and so is
//! one whose schema is newer than this server knows (a downgrade).

use super::{now_us, Backend, Store};
use sqlx::{Acquire, Row};
use std::fmt;

/// The schema version this server writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Marks the database as ldguard's in `ldguard_schema.app`.
const APP: &str = "ldguard-server";

/// One schema version: statements for both databases, then those for one
/// of them. Statements end with `;` at the end of a line.
struct Migration {
    both: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

/// The free-text column the search matches (`q=`); the same expression in
/// the SQLite full-text trigger, the PostgreSQL trigram index and the query.
pub const SEARCH_TEXT: &str =
    "program || ' ' || COALESCE(target, '') || ' ' || COALESCE(rule, '') || ' ' || message";

/// Fills `event_rollup` from the stored events (migration 3).
macro_rules! rollup_backfill {
    () => {
        r#"INSERT INTO event_rollup (unit_us, start_us, dimension, action, value, n) SELECT 86400000000, (time_us / 86400000000) * 86400000000, 'action', action, action, COUNT(*) FROM events GROUP BY 2, 4, 5;
INSERT INTO event_rollup (unit_us, start_us, dimension, action, value, n) SELECT 86400000000, (time_us / 86400000000) * 86400000000, 'rule', action, COALESCE(rule, ''), COUNT(*) FROM events GROUP BY 2, 4, 5;
INSERT INTO event_rollup (unit_us, start_us, dimension, action, value, n) SELECT 86400000000, (time_us / 86400000000) * 86400000000, 'image', action, COALESCE(image, ''), COUNT(*) FROM events GROUP BY 2, 4, 5;
INSERT INTO event_rollup (unit_us, start_us, dimension, action, value, n) SELECT 86400000000, (time_us / 86400000000) * 86400000000, 'program', action, program, COUNT(*) FROM events GROUP BY 2, 4, 5;
INSERT INTO event_rollup (unit_us, start_us, dimension, action, value, n) SELECT 86400000000, (time_us / 86400000000) * 86400000000, 'kind', action, kind, COUNT(*) FROM events GROUP BY 2, 4, 5;
INSERT INTO event_rollup (unit_us, start_us, dimension, action, value, n) SELECT 86400000000, (time_us / 86400000000) * 86400000000, 'severity', action, severity, COUNT(*) FROM events GROUP BY 2, 4, 5;
INSERT INTO event_rollup (unit_us, start_us, dimension, action, value, n) SELECT 86400000000, (time_us / 86400000000) * 86400000000, 'call', action, call, COUNT(*) FROM events GROUP BY 2, 4, 5;
INSERT INTO event_rollup (unit_us, start_us, dimension, action, value, n) SELECT 3600000000, (time_us / 3600000000) * 3600000000, 'action', action, action, COUNT(*) FROM events GROUP BY 2, 4, 5;
INSERT INTO event_rollup (unit_us, start_us, dimension, action, value, n) SELECT 3600000000, (time_us / 3600000000) * 3600000000, 'rule', action, COALESCE(rule, ''), COUNT(*) FROM events GROUP BY 2, 4, 5;
INSERT INTO event_rollup (unit_us, start_us, dimension, action, value, n) SELECT 3600000000, (time_us / 3600000000) * 3600000000, 'image', action, COALESCE(image, ''), COUNT(*) FROM events GROUP BY 2, 4, 5;
INSERT INTO event_rollup (unit_us, start_us, dimension, action, value, n) SELECT 3600000000, (time_us / 3600000000) * 3600000000, 'program', action, program, COUNT(*) FROM events GROUP BY 2, 4, 5;
INSERT INTO event_rollup (unit_us, start_us, dimension, action, value, n) SELECT 3600000000, (time_us / 3600000000) * 3600000000, 'kind', action, kind, COUNT(*) FROM events GROUP BY 2, 4, 5;
INSERT INTO event_rollup (unit_us, start_us, dimension, action, value, n) SELECT 3600000000, (time_us / 3600000000) * 3600000000, 'severity', action, severity, COUNT(*) FROM events GROUP BY 2, 4, 5;
INSERT INTO event_rollup (unit_us, start_us, dimension, action, value, n) SELECT 3600000000, (time_us / 3600000000) * 3600000000, 'call', action, call, COUNT(*) FROM events GROUP BY 2, 4, 5;
INSERT INTO event_rollup (unit_us, start_us, dimension, action, value, n) SELECT 60000000, (time_us / 60000000) * 60000000, 'action', action, action, COUNT(*) FROM events GROUP BY 2, 4, 5;
DROP TABLE event_counts;
"#
    };
}

/// Each migration, in order; `{id}` and `{search_text}` are replaced.
const MIGRATIONS: &[Migration] = &[
    // 1: tokens, policies, assignments, events.
    Migration {
        both: r#"
CREATE TABLE tokens (
    id {id},
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    images TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    created_us BIGINT NOT NULL,
    revoked_us BIGINT
);
CREATE TABLE policy_versions (
    name TEXT NOT NULL,
    version BIGINT NOT NULL,
    body TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    draft BIGINT NOT NULL,
    note TEXT NOT NULL,
    created_us BIGINT NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE assignments (
    name TEXT PRIMARY KEY,
    policy TEXT NOT NULL,
    version BIGINT,
    images TEXT NOT NULL,
    digests TEXT NOT NULL,
    labels TEXT NOT NULL,
    mode TEXT,
    log TEXT,
    updated_us BIGINT NOT NULL
);
CREATE TABLE batches (
    batch_key TEXT PRIMARY KEY,
    received_us BIGINT NOT NULL,
    events BIGINT NOT NULL,
    token_id BIGINT NOT NULL
);
CREATE TABLE events (
    id {id},
    batch_key TEXT NOT NULL,
    time_us BIGINT NOT NULL,
    received_us BIGINT NOT NULL,
    container TEXT,
    image TEXT,
    pid BIGINT NOT NULL,
    program TEXT NOT NULL,
    call TEXT NOT NULL,
    kind TEXT NOT NULL,
    target TEXT,
    action TEXT NOT NULL,
    enforced BIGINT NOT NULL,
    rule TEXT,
    severity TEXT NOT NULL,
    policy TEXT,
    mode TEXT NOT NULL,
    message TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX events_time ON events (time_us);
CREATE INDEX events_image_time ON events (image, time_us);
CREATE INDEX events_process ON events (container, pid, time_us);
CREATE INDEX events_action_time ON events (action, time_us);
CREATE INDEX events_rule_time ON events (rule, time_us);
CREATE INDEX events_batch ON events (batch_key);
"#,
        sqlite: "",
        postgres: "",
    },
    // 2: what search and dashboards need at millions of events: per-minute
    // counts for aggregates, an index for program filters, a full-text
    // index for `q=`; the batch-key index no query used goes (it only cost
    // ingest time).
    Migration {
        both: r#"
CREATE TABLE event_counts (
    minute_us BIGINT NOT NULL,
    dimension TEXT NOT NULL,
    value TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (minute_us, dimension, value)
);
INSERT INTO event_counts (minute_us, dimension, value, n) SELECT (time_us / 60000000) * 60000000, 'action', action, COUNT(*) FROM events GROUP BY 1, 3;
INSERT INTO event_counts (minute_us, dimension, value, n) SELECT (time_us / 60000000) * 60000000, 'rule', COALESCE(rule, ''), COUNT(*) FROM events GROUP BY 1, 3;
INSERT INTO event_counts (minute_us, dimension, value, n) SELECT (time_us / 60000000) * 60000000, 'image', COALESCE(image, ''), COUNT(*) FROM events GROUP BY 1, 3;
INSERT INTO event_counts (minute_us, dimension, value, n) SELECT (time_us / 60000000) * 60000000, 'program', program, COUNT(*) FROM events GROUP BY 1, 3;
INSERT INTO event_counts (minute_us, dimension, value, n) SELECT (time_us / 60000000) * 60000000, 'kind', kind, COUNT(*) FROM events GROUP BY 1, 3;
INSERT INTO event_counts (minute_us, dimension, value, n) SELECT (time_us / 60000000) * 60000000, 'severity', severity, COUNT(*) FROM events GROUP BY 1, 3;
INSERT INTO event_counts (minute_us, dimension, value, n) SELECT (time_us / 60000000) * 60000000, 'call', call, COUNT(*) FROM events GROUP BY 1, 3;
INSERT INTO event_counts (minute_us, dimension, value, n) SELECT (time_us / 60000000) * 60000000, 'container', COALESCE(container, ''), COUNT(*) FROM events GROUP BY 1, 3;
CREATE INDEX events_program_time ON events (program, time_us);
DROP INDEX events_batch;
"#,
        // Trigram tokens make any substring of three characters or more
        // an index lookup; contentless, so the text is not stored twice.
        sqlite: r#"
CREATE VIRTUAL TABLE events_fts USING fts5(text, content='', contentless_delete=1, tokenize='trigram');
INSERT INTO events_fts (rowid, text) SELECT id, {search_text} FROM events;
CREATE TRIGGER events_fts_insert AFTER INSERT ON events BEGIN INSERT INTO events_fts (rowid, text) VALUES (new.id, {new_search_text}); END;
CREATE TRIGGER events_fts_delete AFTER DELETE ON events BEGIN DELETE FROM events_fts WHERE rowid = old.id; END;
"#,
        postgres: r#"
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX events_text_trgm ON events USING gin ((LOWER({search_text})) gin_trgm_ops);
"#,
    },
    // 3: roll-ups per day and hour of each dimension but the container,
    // and per minute of the action, each split by action, replace the
    // per-minute counts:
    // top rules over 30 days read ~30 day rows per rule instead of one row
    // per minute, and "denials by rule / program / image" (the dashboard's
    // tables) no longer count events. Kept at ingest; filled here from the
    // stored events. The instrumentation jobs' table, created on first use
    // before, becomes part of the schema.
    Migration {
        both: r#"
CREATE TABLE IF NOT EXISTS instrument_jobs (
    id {id},
    image TEXT NOT NULL,
    policy TEXT NOT NULL,
    destination TEXT,
    state TEXT NOT NULL,
    worker TEXT,
    lease_until_us BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    progress TEXT NOT NULL,
    digest TEXT,
    error TEXT,
    created_us BIGINT NOT NULL,
    updated_us BIGINT NOT NULL
);
"#,
        // SQLite: the table is its primary key's B-tree (no rowid copy).
        sqlite: concat!(
            r#"
CREATE TABLE event_rollup (
    unit_us BIGINT NOT NULL,
    start_us BIGINT NOT NULL,
    dimension TEXT NOT NULL,
    action TEXT NOT NULL,
    value TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (unit_us, dimension, start_us, action, value)
) WITHOUT ROWID;
"#,
            rollup_backfill!()
        ),
        postgres: concat!(
            r#"
CREATE TABLE event_rollup (
    unit_us BIGINT NOT NULL,
    start_us BIGINT NOT NULL,
    dimension TEXT NOT NULL,
    action TEXT NOT NULL,
    value TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (unit_us, dimension, start_us, action, value)
);
"#,
            rollup_backfill!()
        ),
    },
    // 4: forwarding. One row per sink: the last event id it delivered and
    // a lease (holder, expiry), so one server process at a time forwards to
    // a sink and a restart resumes where delivery stopped.
    Migration {
        both: r#"
CREATE TABLE forward_cursors (
    sink TEXT PRIMARY KEY,
    last_id BIGINT NOT NULL,
    holder TEXT NOT NULL,
    lease_until_us BIGINT NOT NULL,
    updated_us BIGINT NOT NULL
);
"#,
        // SQLite hands out max(id) + 1 unless the key is AUTOINCREMENT:
        // after retention deleted the newest rows, new events would take
        // ids a sink's cursor has passed and never be forwarded. The table
        // is rebuilt with the same ids (the full-text rows keep theirs).
        sqlite: r#"
DROP TRIGGER events_fts_insert;
DROP TRIGGER events_fts_delete;
CREATE TABLE events_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_key TEXT NOT NULL,
    time_us BIGINT NOT NULL,
    received_us BIGINT NOT NULL,
    container TEXT,
    image TEXT,
    pid BIGINT NOT NULL,
    program TEXT NOT NULL,
    call TEXT NOT NULL,
    kind TEXT NOT NULL,
    target TEXT,
    action TEXT NOT NULL,
    enforced BIGINT NOT NULL,
    rule TEXT,
    severity TEXT NOT NULL,
    policy TEXT,
    mode TEXT NOT NULL,
    message TEXT NOT NULL,
    body TEXT NOT NULL
);
INSERT INTO events_new (id, batch_key, time_us, received_us, container, image, pid, program, call, kind, target, action, enforced, rule, severity, policy, mode, message, body) SELECT id, batch_key, time_us, received_us, container, image, pid, program, call, kind, target, action, enforced, rule, severity, policy, mode, message, body FROM events;
DROP TABLE events;
ALTER TABLE events_new RENAME TO events;
CREATE INDEX events_time ON events (time_us);
CREATE INDEX events_image_time ON events (image, time_us);
CREATE INDEX events_process ON events (container, pid, time_us);
CREATE INDEX events_action_time ON events (action, time_us);
CREATE INDEX events_rule_time ON events (rule, time_us);
CREATE INDEX events_program_time ON events (program, time_us);
CREATE TRIGGER events_fts_insert AFTER INSERT ON events BEGIN INSERT INTO events_fts (rowid, text) VALUES (new.id, {new_search_text}); END;
CREATE TRIGGER events_fts_delete AFTER DELETE ON events BEGIN DELETE FROM events_fts WHERE rowid = old.id; END;
"#,
        postgres: "",
    },
    // 5: SQLite's full-text index keeps which rows hold each trigram, not
    // where in the row (`detail=none`): the positions were most of what
    // every insert wrote into it, and a search needs only the rows that
    // hold all of the query's trigrams (the substring test then runs on
    // them). Rebuilt from the stored events.
    Migration {
        both: "",
        sqlite: r#"
DROP TRIGGER events_fts_insert;
DROP TRIGGER events_fts_delete;
DROP TABLE events_fts;
CREATE VIRTUAL TABLE events_fts USING fts5(text, content='', contentless_delete=1, tokenize='trigram', detail=none);
INSERT INTO events_fts (rowid, text) SELECT id, {search_text} FROM events;
CREATE TRIGGER events_fts_insert AFTER INSERT ON events BEGIN INSERT INTO events_fts (rowid, text) VALUES (new.id, {new_search_text}); END;
CREATE TRIGGER events_fts_delete AFTER DELETE ON events BEGIN DELETE FROM events_fts WHERE rowid = old.id; END;
"#,
        postgres: "",
    },
    // 6: PostgreSQL's free-text index moves from the events to blocks of
    // them: `event_text` holds, for up to 256 events written together,
    // their id range and their search texts one per line, and the
    // `pg_trgm` index covers the blocks. A search finds the blocks that
    // hold the text, then the events in their id ranges that hold it (the
    // substring test is the same). Indexing every event cost PostgreSQL
    // more than half of its CPU per stored event; a block is one index row
    // whose trigrams are shared by its events. The per-event index goes;
    // the blocks are filled from the stored events (about a minute per
    // million events on two cores).
    //
    // SQLite likewise: a row of the full-text index holds up to 256 events
    // whose ids follow one another, under the first one's id (its text is
    // theirs, one per line), written by the event writer instead of a
    // trigger per event; retention drops the rows with no event left.
    Migration {
        both: "",
        sqlite: r#"
DROP TRIGGER events_fts_insert;
DROP TRIGGER events_fts_delete;
DROP TABLE events_fts;
CREATE VIRTUAL TABLE events_fts USING fts5(text, content='', contentless_delete=1, tokenize='trigram', detail=none);
INSERT INTO events_fts (rowid, text) SELECT MIN(id), group_concat({search_text}, char(10)) FROM events GROUP BY id / 256;
"#,
        postgres: r#"
CREATE TABLE event_text (
    first_id BIGINT NOT NULL,
    last_id BIGINT NOT NULL,
    text TEXT NOT NULL
);
INSERT INTO event_text (first_id, last_id, text) SELECT MIN(id), MAX(id), string_agg({search_text}, E'\n' ORDER BY id) FROM events GROUP BY id / 256;
CREATE INDEX event_text_trgm ON event_text USING gin ((LOWER(text)) gin_trgm_ops);
DROP INDEX events_text_trgm;
"#,
    },
    // 7: PostgreSQL keeps no per-event index but the primary key (and a
    // BRIN over the time, a few pages for millions of events, for
    // retention). The six B-trees over time, image, process, action, rule
    // and program were two thirds of PostgreSQL's CPU per stored event.
    // Instead each block of events (`event_text`) records its time range
    // and the distinct values of the filtered fields (`keys`: `image=…`,
    // `action=…`; `container` for an event without one), with one GIN
    // entry per value per block instead of a B-tree entry per event and
    // field. A search takes the blocks that may hold its events, newest
    // first, and tests every event of their id ranges. Filled from the
    // stored events: about a minute per million events on two cores.
    // The blocks' texts are compressed with LZ4 where the server has it
    // (PostgreSQL 14 and later, built with it): pglz took about 3 µs of
    // CPU per event to compress them. SQLite keeps its indexes (its writer
    // is not the bound there).
    Migration {
        both: "",
        sqlite: "",
        postgres: r#"
ALTER TABLE event_text ADD COLUMN min_time BIGINT NOT NULL DEFAULT 0, ADD COLUMN max_time BIGINT NOT NULL DEFAULT -1, ADD COLUMN keys TEXT[] NOT NULL DEFAULT '{}';
UPDATE event_text SET (min_time, max_time, keys) = (SELECT COALESCE(MIN(time_us), 0), COALESCE(MAX(time_us), -1), COALESCE(ARRAY_AGG(DISTINCT k) FILTER (WHERE k IS NOT NULL), '{}') FROM events CROSS JOIN LATERAL UNNEST({block_keys}) AS k WHERE events.id BETWEEN event_text.first_id AND event_text.last_id);
CREATE INDEX event_text_keys ON event_text USING gin (keys);
CREATE INDEX event_text_max_time ON event_text (max_time, first_id);
CREATE INDEX event_text_min_time ON event_text (min_time, first_id);
CREATE INDEX events_time_brin ON events USING brin (time_us);
DO $$ BEGIN EXECUTE 'ALTER TABLE event_text ALTER COLUMN text SET COMPRESSION lz4'; EXCEPTION WHEN OTHERS THEN RAISE NOTICE 'event_text stays compressed with pglz: %', SQLERRM; END $$;
DROP INDEX events_time;
DROP INDEX events_image_time;
DROP INDEX events_process;
DROP INDEX events_action_time;
DROP INDEX events_rule_time;
DROP INDEX events_program_time;
"#,
    },
    // 8: PostgreSQL's blocks of events get two fixed-size Bloom filters,
    // stored inline (`PLAIN`: never compressed nor moved out of line),
    // built by the server once per block: one over the block keys and one
    // over the ASCII trigrams of the events' search texts (see
    // `store::bloom`). A read walks the blocks and tests the filters with
    // `get_bit` before reading events; the keys array was read from TOAST
    // for every block a walk passed (0.7 s for a value no block holds at
    // 5 M events), and the trigram GIN entries of every block were the
    // second cost of ingest. New blocks leave `text` and `keys` empty.
    // Blocks written before keep theirs and no filter (NULL), and reads
    // test them as before: nothing is rebuilt, the migration takes no
    // time whatever the number of stored events.
    // The BRIN index over the events' time summarises each range of pages
    // as soon as it is full (autovacuum's work item) instead of at the
    // next vacuum: a range not summarised is read whole by every time
    // range query (after 5 M events loaded at once, every chart read the
    // table: 250-500 ms).
    // From this version on, PostgreSQL's `body` holds only what the
    // columns do not (a JSON array, see `events::StoredRest`), and reads
    // rebuild the event; rows stored before hold the whole event (an
    // object) and are read as they are.
    Migration {
        both: "",
        sqlite: "",
        postgres: r#"
ALTER TABLE event_text ADD COLUMN key_bloom BYTEA, ADD COLUMN text_bloom BYTEA;
ALTER TABLE event_text ALTER COLUMN key_bloom SET STORAGE PLAIN, ALTER COLUMN text_bloom SET STORAGE PLAIN, ALTER COLUMN text SET DEFAULT '';
ALTER INDEX events_time_brin SET (autosummarize = on);
"#,
    },
];

/// The block keys (migration 7) of one event, as SQL over the events'
/// columns: the same strings `EventRow::block_keys` makes at ingest and
/// the searches ask for (a NULL value has no key, but a NULL container
/// has `container`).
pub const BLOCK_KEYS: &str = "ARRAY['image=' || image, COALESCE('container=' || container,      'container'), 'program=' || program, 'call=' || call, 'kind=' || kind,      'action=' || action, 'rule=' || rule, 'severity=' || severity]";

#[derive(Debug)]
pub enum MigrateError {
    /// Tables exist but none of them is ldguard's schema table.
    Foreign {
        tables: Vec<String>,
    },
    /// `ldguard_schema` says another application.
    OtherApp {
        app: String,
    },
    /// Written by a newer server.
    Newer {
        found: i64,
    },
    Database(sqlx::Error),
}

impl fmt::Display for MigrateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MigrateError::Foreign { tables } => write!(
                f,
                "this database is not an ldguard-server database: it has tables ({}) but no \
                 ldguard_schema table; give an empty database or one made by ldguard-server",
                tables.join(", ")
            ),
            MigrateError::OtherApp { app } => write!(
                f,
                "this database belongs to {app:?}, not {APP:?}; give an empty database"
            ),
            MigrateError::Newer { found } => write!(
                f,
                "the database schema is version {found}, newer than this server's \
                 ({SCHEMA_VERSION}): it was upgraded by a newer ldguard-server; run that \
                 version (downgrades are refused so no data is lost)"
            ),
            MigrateError::Database(e) => write!(f, "migrating the database: {e}"),
        }
    }
}

impl From<sqlx::Error> for MigrateError {
    fn from(e: sqlx::Error) -> Self {
        MigrateError::Database(e)
    }
}

fn dialect(m: &Migration, backend: Backend) -> String {
    let (id, own) = match backend {
        Backend::Sqlite => ("INTEGER PRIMARY KEY", m.sqlite),
        Backend::Postgres => (
            "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
            m.postgres,
        ),
    };
    let new_search_text = SEARCH_TEXT
        .replace("program", "new.program")
        .replace("target", "new.target")
        .replace("rule", "new.rule")
        .replace("message", "new.message");
    format!("{}{own}", m.both)
        .replace("{id}", id)
        .replace("{search_text}", SEARCH_TEXT)
        .replace("{new_search_text}", &new_search_text)
        .replace("{block_keys}", BLOCK_KEYS)
}

/// Brings the schema to [`SCHEMA_VERSION`].
pub async fn run(store: &Store) -> Result<(), MigrateError> {
    let mut conn = store.pool.acquire().await?;
    if store.backend == Backend::Postgres {
        // Several servers may start at once on one database.
        sqlx::query("SELECT pg_advisory_lock(7243001)")
            .execute(&mut *conn)
            .await?;
    }
    let result = migrate(store.backend, &mut conn, MIGRATIONS.len()).await;
    if store.backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_unlock(7243001)")
            .execute(&mut *conn)
            .await?;
    }
    result
}

/// Applies the migrations after the database's version, up to `target`
/// (all of them but in tests, which start from an older schema).
async fn migrate(
    backend: Backend,
    conn: &mut sqlx::AnyConnection,
    target: usize,
) -> Result<(), MigrateError> {
    let tables_sql = match backend {
        Backend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        }
        Backend::Postgres => {
            "SELECT CAST(table_name AS TEXT) AS name FROM information_schema.tables \
             WHERE table_schema = current_schema()"
        }
    };
    let tables: Vec<String> = sqlx::query(tables_sql)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| r.try_get::<String, _>("name"))
        .collect::<Result<_, _>>()?;
    let current = if tables.iter().any(|t| t == "ldguard_schema") {
        let rows = sqlx::query("SELECT app, version FROM ldguard_schema ORDER BY version")
            .fetch_all(&mut *conn)
            .await?;
        let mut version = 0;
        for row in rows {
            let app: String = row.try_get("app")?;
            if app != APP {
                return Err(MigrateError::OtherApp { app });
            }
            version = version.max(row.try_get::<i64, _>("version")?);
        }
        version
    } else if tables.is_empty() {
        sqlx::query(
            "CREATE TABLE ldguard_schema (app TEXT NOT NULL, version BIGINT NOT NULL, \
             applied_us BIGINT NOT NULL)",
        )
        .execute(&mut *conn)
        .await?;
        0
    } else {
        return Err(MigrateError::Foreign { tables });
    };
    if current > SCHEMA_VERSION {
        return Err(MigrateError::Newer { found: current });
    }
    for (i, migration) in MIGRATIONS[..target]
        .iter()
        .enumerate()
        .skip(current as usize)
    {
        let version = i as i64 + 1;
        let mut tx = conn.begin().await?;
        for statement in dialect(migration, backend).split(";\n") {
            if !statement.trim().is_empty() {
                sqlx::query(statement).execute(&mut *tx).await?;
            }
        }
        sqlx::query("INSERT INTO ldguard_schema (app, version, applied_us) VALUES ($1, $2, $3)")
            .bind(APP)
            .bind(version)
            .bind(now_us())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(version, "applied schema migration");
    }
    Ok(())
}

// The integration tests' private PostgreSQL cluster (Debian's binaries).
#[cfg(test)]
#[path = "../../tests/common/postgres.rs"]
#[allow(dead_code)]
mod private_postgres;

#[cfg(test)]
mod tests {
    use super::*;

    use private_postgres::Postgres;

    /// Migration 7 gives every PostgreSQL block of events the time range
    /// and the field values (keys) of the stored events in its id range;
    /// a block none of whose events is left gets no keys and an empty
    /// range, which no read's time range overlaps.
    #[tokio::test]
    async fn postgres_blocks_get_time_ranges_and_keys_from_the_events_in_migration_7() {
        let pg = Postgres::start("migrate7");
        let store = Store::connect(&pg.url()).await.unwrap();
        let mut conn = store.pool.acquire().await.unwrap();
        migrate(Backend::Postgres, &mut conn, 6).await.unwrap();
        for (id, message) in [(1, "one"), (2, "two"), (300, "three")] {
            insert_event(&mut conn, Some(id), message).await;
        }
        for sql in [
            "UPDATE events SET time_us = 50, image = 'shop/a:1', container = 'c1', rule = 'r9' \
             WHERE id = 2",
            "UPDATE events SET time_us = 7, action = 'allow' WHERE id = 300",
            "INSERT INTO event_text (first_id, last_id, text) VALUES (1, 2, 'a'), \
             (300, 300, 'b'), (400, 500, 'c')",
        ] {
            sqlx::query(sql).execute(&mut *conn).await.unwrap();
        }
        migrate(Backend::Postgres, &mut conn, MIGRATIONS.len())
            .await
            .unwrap();
        let rows = sqlx::query(
            "SELECT first_id, min_time, max_time, array_to_string(keys, '|') AS keys \
             FROM event_text ORDER BY first_id",
        )
        .fetch_all(&mut *conn)
        .await
        .unwrap();
        let got: Vec<(i64, i64, i64, String)> = rows
            .iter()
            .map(|r| {
                (
                    r.try_get("first_id").unwrap(),
                    r.try_get("min_time").unwrap(),
                    r.try_get("max_time").unwrap(),
                    r.try_get("keys").unwrap(),
                )
            })
            .collect();
        let set = |keys: &str| -> std::collections::BTreeSet<String> {
            keys.split('|')
                .filter(|k| !k.is_empty())
                .map(str::to_string)
                .collect()
        };
        let common = "call=open|kind=file|program=/usr/bin/cat|severity=high";
        let want = [
            (
                1,
                1,
                50,
                set(&format!(
                    "action=deny|container|container=c1|image=shop/a:1|rule=r9|{common}"
                )),
            ),
            (300, 7, 7, set(&format!("action=allow|container|{common}"))),
            (400, 0, -1, set("")),
        ];
        let got: Vec<_> = got
            .into_iter()
            .map(|(f, a, b, k)| (f, a, b, set(&k)))
            .collect();
        assert_eq!(got, want);
        // The same keys as ingest writes for the same events.
        let row = |image: Option<&str>, container: Option<&str>, rule: Option<&str>| {
            crate::store::EventRow {
                time_us: 1,
                container: container.map(str::to_string),
                image: image.map(str::to_string),
                pid: 7,
                program: "/usr/bin/cat".into(),
                call: "open".into(),
                kind: "file".into(),
                target: None,
                action: "deny".into(),
                enforced: true,
                rule: rule.map(str::to_string),
                severity: "high".into(),
                policy: None,
                mode: "enforce".into(),
                message: "one".into(),
                rest: crate::store::Rest::default(),
            }
        };
        let mut keys = std::collections::BTreeSet::new();
        row(None, None, None).block_keys(&mut keys);
        row(Some("shop/a:1"), Some("c1"), Some("r9")).block_keys(&mut keys);
        assert_eq!(keys, want[0].3);
    }

    /// Migration 8: the blocks' filters are stored inline (`PLAIN`), and
    /// the time BRIN summarises each range once full.
    #[tokio::test]
    async fn postgres_migration_8_stores_filters_inline_and_summarises_brin_ranges() {
        let pg = Postgres::start("migrate8");
        let store = Store::connect(&pg.url()).await.unwrap();
        let mut conn = store.pool.acquire().await.unwrap();
        migrate(Backend::Postgres, &mut conn, MIGRATIONS.len())
            .await
            .unwrap();
        let storage: Vec<String> = sqlx::query(
            "SELECT attname || '=' || CAST(attstorage AS TEXT) FROM pg_attribute \
             WHERE attrelid = 'event_text'::regclass AND attname LIKE '%bloom' ORDER BY attname",
        )
        .fetch_all(&mut *conn)
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get::<String, _>(0).unwrap())
        .collect();
        assert_eq!(storage, ["key_bloom=p", "text_bloom=p"]);
        let options: String = sqlx::query(
            "SELECT array_to_string(reloptions, ',') FROM pg_class WHERE relname = 'events_time_brin'",
        )
        .fetch_one(&mut *conn)
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
        assert_eq!(options, "autosummarize=on");
    }

    async fn insert_event(conn: &mut sqlx::AnyConnection, id: Option<i64>, message: &str) {
        let columns = "batch_key, time_us, received_us, pid, program, call, kind, action, \
                       enforced, severity, mode, message, body";
        let values = "'b', 1, 1, 7, '/usr/bin/cat', 'open', 'file', 'deny', 1, 'high', \
                      'enforce', $1, '{}'";
        let sql = match id {
            Some(id) => format!("INSERT INTO events (id, {columns}) VALUES ({id}, {values})"),
            None => format!("INSERT INTO events ({columns}) VALUES ({values})"),
        };
        sqlx::query(&sql)
            .bind(message)
            .execute(&mut *conn)
            .await
            .unwrap();
    }

    async fn ids(conn: &mut sqlx::AnyConnection, sql: &str) -> Vec<i64> {
        sqlx::query(sql)
            .fetch_all(&mut *conn)
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get::<i64, _>(0).unwrap())
            .collect()
    }

    /// Migration 4 rebuilds SQLite's events table (and 5 its full-text
    /// index): stored events keep their ids and stay searchable, and an id
    /// is never handed out twice, even after the newest events were deleted
    /// (forwarding cursors are ids).
    #[tokio::test]
    async fn sqlite_events_keep_their_ids_and_ids_are_not_reused_after_migration_4() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}/old.db", dir.path().display());
        let store = Store::connect(&url).await.unwrap();
        let mut conn = store.pool.acquire().await.unwrap();
        migrate(Backend::Sqlite, &mut conn, 3).await.unwrap();
        for (id, message) in [(5, "first secret"), (9, "second secret"), (12, "third")] {
            insert_event(&mut conn, Some(id), message).await;
        }
        // Before: deleting the newest row lets its id be handed out again.
        sqlx::query("DELETE FROM events WHERE id = 12")
            .execute(&mut *conn)
            .await
            .unwrap();
        insert_event(&mut conn, None, "reused").await;
        assert_eq!(
            ids(&mut conn, "SELECT id FROM events WHERE message = 'reused'").await,
            [10],
            "SQLite reuses ids without AUTOINCREMENT (the test's premise)"
        );
        sqlx::query("DELETE FROM events WHERE id = 10")
            .execute(&mut *conn)
            .await
            .unwrap();

        migrate(Backend::Sqlite, &mut conn, 5).await.unwrap();
        assert_eq!(
            ids(&mut conn, "SELECT id FROM events ORDER BY id").await,
            [5, 9]
        );
        let found = ids(
            &mut conn,
            // Every trigram of the word, as search asks the index since migration 5.
            "SELECT rowid FROM events_fts WHERE events_fts MATCH \
             '\"sec\" \"ecr\" \"cre\" \"ret\"' ORDER BY rowid",
        )
        .await;
        assert_eq!(found, [5, 9], "full-text rows keep the events' ids");
        sqlx::query("DELETE FROM events WHERE id = 9")
            .execute(&mut *conn)
            .await
            .unwrap();
        insert_event(&mut conn, None, "after the rebuild").await;
        let new = ids(
            &mut conn,
            "SELECT id FROM events WHERE message = 'after the rebuild'",
        )
        .await;
        assert_eq!(new.len(), 1);
        assert!(new[0] > 9, "id {} handed out again", new[0]);
        // The triggers were re-created: the new event is searchable, the
        // deleted one is not.
        let found = ids(
            &mut conn,
            "SELECT rowid FROM events_fts WHERE events_fts MATCH \
             '(\"reb\" \"ebu\" \"bui\" \"uil\" \"ild\") OR (\"sec\" \"eco\" \"con\" \"ond\")'",
        )
        .await;
        assert_eq!(found, new);

        // Migration 6: the index's rows become blocks of events under the
        // first one's id; every stored event is found through its block.
        migrate(Backend::Sqlite, &mut conn, MIGRATIONS.len())
            .await
            .unwrap();
        let search = |word: &str| {
            let trigrams: Vec<String> = word
                .as_bytes()
                .windows(3)
                .map(|t| format!("\"{}\"", String::from_utf8_lossy(t)))
                .collect();
            format!(
                "SELECT DISTINCT events.id FROM events_fts CROSS JOIN events ON events.id \
                 BETWEEN events_fts.rowid AND events_fts.rowid + 255 WHERE events_fts MATCH \
                 '{}' AND LOWER({SEARCH_TEXT}) LIKE '%{word}%' ORDER BY events.id",
                trigrams.join(" ")
            )
        };
        assert_eq!(ids(&mut conn, &search("secret")).await, [5]);
        assert_eq!(ids(&mut conn, &search("rebuild")).await, new);
        assert_eq!(ids(&mut conn, &search("/usr/bin/cat")).await.len(), 2);
        let blocks = ids(&mut conn, "SELECT rowid FROM events_fts ORDER BY rowid").await;
        assert_eq!(blocks, [5], "one block for ids 5 and {}", new[0]);
    }
}

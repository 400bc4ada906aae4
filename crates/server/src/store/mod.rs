//! Storage: one connection pool over SQLite or PostgreSQL, and the schema.
//!
//! Every query is written once, in the SQL both databases accept (`$N`
//! placeholders, `ON CONFLICT DO NOTHING`, integer times in microseconds);
//! only the schema's column types differ per database (see `migrate`).

pub mod bloom;
mod events;
mod migrate;
mod outbox;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::SqliteSynchronous;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{AnyPool, Executor};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use events::{
    block_key, stored_body, EventRow, Rest, DAY_US, HOUR_US, MINUTE_US, ROLLUP_DIMENSIONS,
    ROLLUP_UNITS, STORED_COLUMNS, TEXT_BLOCK_EVENTS,
};
pub use migrate::{MigrateError, BLOCK_KEYS, SCHEMA_VERSION, SEARCH_TEXT};
pub use outbox::StoredEvent;

/// Which database a URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The database every handler shares.
#[derive(Clone, Debug)]
pub struct Store {
    pub pool: AnyPool,
    pub backend: Backend,
    /// The event writer tasks' queue (see `events`). They write through
    /// the database's own driver: sqlx's `Any` layer converts every bound
    /// value and cannot bind arrays, which made it the ingest bottleneck
    /// (see BENCHMARKS.md).
    writer: tokio::sync::mpsc::Sender<events::Job>,
    /// SQLite: held by whoever writes through this process (the event
    /// writer for each group, [`Store::begin_write`] until its transaction
    /// ends). Tokio's mutex is fair, so a policy push waits for at most
    /// the group being written; SQLite's own busy handler only polls, and
    /// under an ingest flood the event writer took the lock again between
    /// its polls until the busy timeout ran out ("database is locked").
    write_lock: Arc<tokio::sync::Mutex<()>>,
}

/// A write transaction from [`Store::begin_write`]; on SQLite it holds the
/// process's write lock until it is committed or dropped.
pub struct WriteTx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl WriteTx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &sqlx::AnyConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.tx
    }
}

#[derive(Clone, Debug)]
enum Native {
    /// One connection: SQLite has one writer at a time, and a single
    /// connection queues writers instead of making them spin on the lock.
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The default database: `ldguard-data/ldguard.db` under the working directory.
pub const DEFAULT_DATABASE: &str = "sqlite:ldguard-data/ldguard.db";

impl Store {
    /// Connects, and brings the schema up to date (or refuses a database
    /// that is newer than this server or not ldguard's).
    pub async fn open(url: &str) -> Result<Store, String> {
        let store = Store::connect(url).await?;
        migrate::run(&store).await.map_err(|e| e.to_string())?;
        Ok(store)
    }

    /// Connects without touching the schema.
    pub async fn connect(url: &str) -> Result<Store, String> {
        sqlx::any::install_default_drivers();
        let (backend, url) = normalise(url)?;
        let sqlite = backend == Backend::Sqlite;
        let pool = AnyPoolOptions::new()
            // SQLite has one writer at a time: a handful of connections
            // serve concurrent readers; PostgreSQL gets more.
            .max_connections(if sqlite { 4 } else { 16 })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if sqlite {
                        // WAL: readers never wait for the writer; NORMAL is
                        // durable across a process crash in WAL mode.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        // Writes that do not take `write_lock` (retention,
                        // tokens) still wait for the event writer.
                        conn.execute("PRAGMA busy_timeout = 30000").await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .map_err(|e| format!("cannot open database {}: {e}", redact(&url)))?;
        let cannot = |e: sqlx::Error| format!("cannot open database {}: {e}", redact(&url));
        let native = if sqlite {
            let options = SqliteConnectOptions::from_str(&url)
                .map_err(cannot)?
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                // The writer walks seven index B-trees per event: SQLite's
                // default 2 MB page cache reads most of their pages again
                // from the file for each group.
                .pragma("cache_size", "-65536");
            Native::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_with(options)
                    .await
                    .map_err(cannot)?,
            )
        } else {
            Native::Postgres(
                PgPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect(&url)
                    .await
                    .map_err(cannot)?,
            )
        };
        let write_lock = Arc::new(tokio::sync::Mutex::new(()));
        let writer = events::spawn_writers(&native, &write_lock);
        Ok(Store {
            pool,
            backend,
            writer,
            write_lock,
        })
    }

    /// Whether the database answers (for `/readyz`).
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// A transaction that writes (and may read first). On SQLite it waits
    /// its turn on the process's write lock (see `write_lock`), then takes
    /// the database's write lock up front (`BEGIN IMMEDIATE`): a deferred
    /// transaction that read first cannot become the writer once another
    /// connection has committed since, and fails at once with "database
    /// is locked".
    pub async fn begin_write(&self) -> Result<WriteTx, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => {
                let turn = self.write_lock.clone().lock_owned().await;
                let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
                Ok(WriteTx {
                    tx,
                    _turn: Some(turn),
                })
            }
            Backend::Postgres => Ok(WriteTx {
                tx: self.pool.begin().await?,
                _turn: None,
            }),
        }
    }
}

/// Checks the URL's scheme; for SQLite, creates the parent directory and
/// asks for the file to be created.
fn normalise(url: &str) -> Result<(Backend, String), String> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok((Backend::Postgres, url.to_string()));
    }
    let Some(rest) = url.strip_prefix("sqlite:") else {
        return Err(format!(
            "database {url:?}: expected sqlite:PATH or postgres://USER@HOST/DB"
        ));
    };
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() {
        return Err(
            "database \"sqlite:\": give a file, e.g. sqlite:ldguard-data/ldguard.db".into(),
        );
    }
    if let Some(parent) = Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("database {url}: cannot create {}: {e}", parent.display()))?;
    }
    let query = if query.split('&').any(|kv| kv.starts_with("mode=")) {
        query.to_string()
    } else if query.is_empty() {
        "mode=rwc".to_string()
    } else {
        format!("{query}&mode=rwc")
    };
    Ok((Backend::Sqlite, format!("sqlite://{path}?{query}")))
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Microseconds since the Unix epoch, the unit of every stored time.
pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Reads a column, naming it in the error.
pub fn col<'r, T>(row: &'r AnyRow, name: &str) -> Result<T, sqlx::Error>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    use sqlx::Row;
    row.try_get(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_get_create_mode_and_postgres_passwords_are_hidden() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}/sub/x.db", dir.path().display());
        let (backend, url) = normalise(&url).unwrap();
        assert_eq!(backend, Backend::Sqlite);
        assert!(url.ends_with("/sub/x.db?mode=rwc"), "{url}");
        assert!(dir.path().join("sub").is_dir());
        assert!(normalise("mysql://x")
            .unwrap_err()
            .contains("expected sqlite:PATH"));
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
    }
}

#[cfg(test)]
mod write_lock_tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    /// Under an ingest flood that keeps SQLite's event writer busy back to
    /// back, every other write (a policy push takes `begin_write`) still
    /// gets its turn: none fails with "database is locked".
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_beside_an_ingest_flood_all_succeed_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite:{}/db", dir.path().display()))
            .await
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let mut flood = tokio::task::JoinSet::new();
        for task in 0..6u64 {
            let (store, stop) = (store.clone(), stop.clone());
            flood.spawn(async move {
                let now = now_us();
                let mut batch = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let rows: Vec<EventRow> = (0..2000)
                        .filter_map(|n| {
                            EventRow::from_event(crate::bench::event(
                                batch * 2000 + n,
                                now - n as i64 * 1000,
                            ))
                        })
                        .collect();
                    let key = format!("flood-{task}-{batch}");
                    store.insert_events(&key, 0, now, rows).await.unwrap();
                    batch += 1;
                }
                batch
            });
        }
        // Let the writer's queue fill before the pushes start.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut pushes = tokio::task::JoinSet::new();
        for i in 0..40 {
            let store = store.clone();
            pushes.spawn(async move {
                let mut tx = store.begin_write().await?;
                sqlx::query(
                    "INSERT INTO policy_versions (name, version, body, sha256, draft, note, \
                     created_us) VALUES ($1, 1, '{}', '', 0, '', 0)",
                )
                .bind(format!("p{i}"))
                .execute(&mut *tx)
                .await?;
                tx.commit().await
            });
        }
        let mut failures = Vec::new();
        while let Some(done) = pushes.join_next().await {
            if let Err(e) = done.unwrap() {
                failures.push(e.to_string());
            }
        }
        stop.store(true, Ordering::Relaxed);
        let mut batches = 0;
        while let Some(done) = flood.join_next().await {
            batches += done.unwrap();
        }
        assert!(failures.is_empty(), "failed pushes: {failures:?}");
        assert!(batches > 6, "the flood stored only {batches} batches");
        let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM policy_versions")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(stored, 40);
    }
}

//! Event writes: one batch per transaction, through the database's own
//! driver, with the per-minute counts dashboards read kept in the same
//! transaction (so a count never disagrees with the stored events).
//!
//! SQLite: prepared multi-row `INSERT`s on its single writer connection.
//! PostgreSQL: one `INSERT … SELECT FROM UNNEST(arrays)` per batch, so a
//! batch of any size is one statement and one round trip.

use super::{Native, Store};
use ldguard_events::Event;
use std::collections::BTreeMap;

/// The columns `/api/v1/events/aggregate` groups by, each counted per
/// minute in `event_counts` at ingest.
pub const ROLLUP_DIMENSIONS: [&str; 8] = [
    "action",
    "rule",
    "image",
    "program",
    "kind",
    "severity",
    "call",
    "container",
];

/// Microseconds per rollup bucket.
pub const MINUTE_US: i64 = 60_000_000;

/// One event as stored: the searched columns and the event's JSON.
#[derive(Clone, Debug)]
pub struct EventRow {
    pub time_us: i64,
    pub container: Option<String>,
    pub image: Option<String>,
    pub pid: i64,
    pub program: String,
    pub call: String,
    pub kind: String,
    pub target: Option<String>,
    pub action: String,
    pub enforced: bool,
    pub rule: Option<String>,
    pub severity: String,
    pub policy: Option<String>,
    pub mode: String,
    pub message: String,
    /// The event re-serialised (fields this server does not know are gone).
    pub body: String,
}

impl EventRow {
    /// `None` when the event's time is not RFC 3339 UTC.
    pub fn from_event(e: Event) -> Option<EventRow> {
        let (secs, nanos) = ldguard_events::parse_time(&e.time)?;
        let mut body = String::from_utf8(e.to_line()).unwrap_or_default();
        body.truncate(body.trim_end().len());
        Some(EventRow {
            time_us: secs * 1_000_000 + i64::from(nanos / 1000),
            container: e.container,
            image: e.image,
            pid: i64::from(e.pid),
            program: e.program,
            call: e.call,
            kind: e.kind,
            target: e.target,
            action: e.action,
            enforced: e.enforced,
            rule: e.rule,
            severity: e.severity,
            policy: e.policy,
            mode: e.mode,
            message: e.message,
            body,
        })
    }

    /// The value of one of [`ROLLUP_DIMENSIONS`] ("" for an absent one).
    fn dimension(&self, i: usize) -> &str {
        match i {
            0 => &self.action,
            1 => self.rule.as_deref().unwrap_or(""),
            2 => self.image.as_deref().unwrap_or(""),
            3 => &self.program,
            4 => &self.kind,
            5 => &self.severity,
            6 => &self.call,
            _ => self.container.as_deref().unwrap_or(""),
        }
    }
}

/// Per-minute counts of a batch, sorted (concurrent transactions that
/// update the same counters then lock them in one order: no deadlock).
fn rollup(rows: &[EventRow]) -> BTreeMap<(i64, usize, &str), i64> {
    let mut counts = BTreeMap::new();
    for r in rows {
        let minute = r.time_us.div_euclid(MINUTE_US) * MINUTE_US;
        for d in 0..ROLLUP_DIMENSIONS.len() {
            *counts.entry((minute, d, r.dimension(d))).or_insert(0) += 1;
        }
    }
    counts
}

const BATCH_SQL: &str = "INSERT INTO batches (batch_key, received_us, events, token_id) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (batch_key) DO NOTHING";

const EVENT_COLUMNS: &str = "batch_key, time_us, received_us, container, image, pid, program, \
     call, kind, target, action, enforced, rule, severity, policy, mode, message, body";

const COUNTS_CONFLICT: &str =
    " ON CONFLICT (minute_us, dimension, value) DO UPDATE SET n = event_counts.n + excluded.n";

/// Rows per SQLite `INSERT` (18 parameters each). Small on purpose: sqlx
/// binds each parameter after looking up its name, and SQLite finds a name
/// by a linear walk, so a statement of P parameters costs P² steps — at
/// 400 rows per statement that walk was 56 % of ingest time (perf).
const SQLITE_ROWS: usize = 8;
/// Counter rows per SQLite upsert (4 parameters each), small for the same reason.
const SQLITE_COUNTS: usize = 32;

/// `$a, $b, …` groups of `width` for `rows` rows.
fn placeholders(rows: usize, width: usize) -> String {
    let mut sql = String::with_capacity(rows * width * 5);
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for c in 0..width {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(row * width + c + 1).to_string());
        }
        sql.push(')');
    }
    sql
}

impl Store {
    /// Stores a batch of events under `key` in one transaction; `false`
    /// (and nothing written) when a batch with that key was stored before.
    pub async fn insert_events(
        &self,
        key: &str,
        token_id: i64,
        received_us: i64,
        rows: &[EventRow],
    ) -> Result<bool, sqlx::Error> {
        match &self.native {
            Native::Sqlite(pool) => sqlite_insert(pool, key, token_id, received_us, rows).await,
            Native::Postgres(pool) => postgres_insert(pool, key, token_id, received_us, rows).await,
        }
    }
}

async fn sqlite_insert(
    pool: &sqlx::SqlitePool,
    key: &str,
    token_id: i64,
    received: i64,
    rows: &[EventRow],
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let fresh = sqlx::query(BATCH_SQL)
        .bind(key)
        .bind(received)
        .bind(rows.len() as i64)
        .bind(token_id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
        == 1;
    if !fresh {
        tx.rollback().await?;
        return Ok(false);
    }
    for chunk in rows.chunks(SQLITE_ROWS) {
        let sql = format!(
            "INSERT INTO events ({EVENT_COLUMNS}) VALUES {}",
            placeholders(chunk.len(), 18)
        );
        let mut q = sqlx::query(&sql);
        for e in chunk {
            q = q
                .bind(key)
                .bind(e.time_us)
                .bind(received)
                .bind(e.container.as_deref())
                .bind(e.image.as_deref())
                .bind(e.pid)
                .bind(e.program.as_str())
                .bind(e.call.as_str())
                .bind(e.kind.as_str())
                .bind(e.target.as_deref())
                .bind(e.action.as_str())
                .bind(i64::from(e.enforced))
                .bind(e.rule.as_deref())
                .bind(e.severity.as_str())
                .bind(e.policy.as_deref())
                .bind(e.mode.as_str())
                .bind(e.message.as_str())
                .bind(e.body.as_str());
        }
        q.execute(&mut *tx).await?;
    }
    let counts: Vec<_> = rollup(rows).into_iter().collect();
    for chunk in counts.chunks(SQLITE_COUNTS) {
        let sql = format!(
            "INSERT INTO event_counts (minute_us, dimension, value, n) VALUES {}{COUNTS_CONFLICT}",
            placeholders(chunk.len(), 4)
        );
        let mut q = sqlx::query(&sql);
        for ((minute, d, value), n) in chunk {
            q = q
                .bind(*minute)
                .bind(ROLLUP_DIMENSIONS[*d])
                .bind(*value)
                .bind(*n);
        }
        q.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(true)
}

async fn postgres_insert(
    pool: &sqlx::PgPool,
    key: &str,
    token_id: i64,
    received: i64,
    rows: &[EventRow],
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let fresh = sqlx::query(BATCH_SQL)
        .bind(key)
        .bind(received)
        .bind(rows.len() as i64)
        .bind(token_id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
        == 1;
    if !fresh {
        tx.rollback().await?;
        return Ok(false);
    }
    fn column<'a, T>(rows: &'a [EventRow], f: impl Fn(&'a EventRow) -> T) -> Vec<T> {
        rows.iter().map(f).collect()
    }
    sqlx::query(&format!(
        "INSERT INTO events ({EVENT_COLUMNS}) SELECT $1, t.time_us, $2, t.container, t.image, \
         t.pid, t.program, t.call, t.kind, t.target, t.action, t.enforced, t.rule, t.severity, \
         t.policy, t.mode, t.message, t.body FROM UNNEST($3::bigint[], $4::text[], $5::text[], \
         $6::bigint[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], \
         $12::bigint[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], \
         $18::text[]) AS t(time_us, container, image, pid, program, call, kind, target, action, \
         enforced, rule, severity, policy, mode, message, body)"
    ))
    .bind(key)
    .bind(received)
    .bind(column(rows, |e| e.time_us))
    .bind(column(rows, |e| e.container.as_deref()))
    .bind(column(rows, |e| e.image.as_deref()))
    .bind(column(rows, |e| e.pid))
    .bind(column(rows, |e| e.program.as_str()))
    .bind(column(rows, |e| e.call.as_str()))
    .bind(column(rows, |e| e.kind.as_str()))
    .bind(column(rows, |e| e.target.as_deref()))
    .bind(column(rows, |e| e.action.as_str()))
    .bind(column(rows, |e| i64::from(e.enforced)))
    .bind(column(rows, |e| e.rule.as_deref()))
    .bind(column(rows, |e| e.severity.as_str()))
    .bind(column(rows, |e| e.policy.as_deref()))
    .bind(column(rows, |e| e.mode.as_str()))
    .bind(column(rows, |e| e.message.as_str()))
    .bind(column(rows, |e| e.body.as_str()))
    .execute(&mut *tx)
    .await?;
    let counts = rollup(rows);
    let minutes: Vec<i64> = counts.keys().map(|k| k.0).collect();
    let dims: Vec<&str> = counts.keys().map(|k| ROLLUP_DIMENSIONS[k.1]).collect();
    let values: Vec<&str> = counts.keys().map(|k| k.2).collect();
    let ns: Vec<i64> = counts.values().copied().collect();
    sqlx::query(&format!(
        "INSERT INTO event_counts (minute_us, dimension, value, n) \
         SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::bigint[]){COUNTS_CONFLICT}"
    ))
    .bind(minutes)
    .bind(dims)
    .bind(values)
    .bind(ns)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

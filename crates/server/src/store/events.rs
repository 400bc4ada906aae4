//! Event writes. Concurrent batches are grouped by a writer task into one
//! transaction (SQLite has a single writer anyway, and on PostgreSQL one
//! commit per group instead of per batch takes the roll-up rows' locks
//! once); each batch keeps its own idempotency key, so a group stores
//! every fresh batch whole and skips the ones stored before. If a group
//! fails, each batch is retried alone, so one batch cannot fail another.
//!
//! The roll-ups dashboards read (event counts per day, hour and minute) are
//! kept in the same transaction, so a count never disagrees with the
//! stored events.
//!
//! SQLite: one `INSERT … SELECT FROM json_each(?)` per batch (a single
//! bound parameter: SQLite parses the rows itself, where binding thousands
//! of parameters through sqlx costs more than the insert).
//! PostgreSQL: one `COPY … FROM STDIN` per group.

use super::bloom::BlockFilters;
use super::Native;
use ldguard_events::Event;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Mutex};

/// The columns `/api/v1/events/aggregate` groups by, each counted per
/// action in `event_rollup` at ingest.
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

/// Microseconds per minute.
pub const MINUTE_US: i64 = 60_000_000;
/// Microseconds per hour.
pub const HOUR_US: i64 = 3_600_000_000;
/// Microseconds per day.
pub const DAY_US: i64 = 86_400_000_000;

/// The roll-up units, coarsest first, and how many of
/// [`ROLLUP_DIMENSIONS`] each holds: days and hours all but `container`
/// (top rules, programs, images over any range), minutes only `action`
/// (the per-minute chart). Containers come and go by the thousand: counting
/// them per hour would cost nearly a row per event, so `by=container`
/// counts the events.
pub const ROLLUP_UNITS: [(i64, usize); 3] = [(DAY_US, 7), (HOUR_US, 7), (MINUTE_US, 1)];

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
    /// The event's other fields.
    pub rest: Rest,
}

/// What an event holds beside [`EventRow`]'s columns: with them, the whole
/// event (fields this server does not know are gone).
#[derive(Clone, Debug, Default)]
pub struct Rest {
    /// The time as sent (the column holds microseconds).
    pub time: String,
    pub ppid: u32,
    pub uid: u32,
    pub resolved: Option<String>,
    pub host: Option<String>,
    pub access: Option<String>,
    pub args: Vec<String>,
    pub errno: Option<i32>,
    pub dropped: Option<u64>,
    pub behavior: bool,
}

/// [`Rest`] as PostgreSQL's `body` column holds it since migration 8: a
/// JSON array (an event's JSON is an object, which rows stored before
/// hold), the time `null` when it is the column's time formatted.
type StoredRest = (
    Option<String>,
    u32,
    u32,
    Option<String>,
    Option<String>,
    Option<String>,
    Vec<String>,
    Option<i32>,
    Option<u64>,
    bool,
);

/// The columns [`stored_body`] reads (`id` apart).
pub const STORED_COLUMNS: &str = "time_us, body, container, image, pid, program, call, kind, \
     target, action, enforced, rule, severity, policy, mode, message";

/// The event's JSON of a row with [`STORED_COLUMNS`]: `body` itself when
/// it holds the whole event (SQLite; PostgreSQL rows stored before
/// migration 8), else the event rebuilt from the columns and the rest,
/// the same bytes as the whole event stored (`EventRow::body`).
pub fn stored_body(row: &sqlx::any::AnyRow) -> Result<String, sqlx::Error> {
    use super::col;
    let body: String = col(row, "body")?;
    if !body.starts_with('[') {
        return Ok(body);
    }
    let rest: StoredRest =
        serde_json::from_str(&body).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    let time_us: i64 = col(row, "time_us")?;
    let pid: i64 = col(row, "pid")?;
    let event = Event {
        time: rest.0.unwrap_or_else(|| canonical_time(time_us)),
        container: col(row, "container")?,
        image: col(row, "image")?,
        pid: u32::try_from(pid).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        ppid: rest.1,
        uid: rest.2,
        program: col(row, "program")?,
        call: col(row, "call")?,
        kind: col(row, "kind")?,
        target: col(row, "target")?,
        resolved: rest.3,
        host: rest.4,
        access: rest.5,
        args: rest.6,
        action: col(row, "action")?,
        enforced: col::<i64>(row, "enforced")? != 0,
        rule: col(row, "rule")?,
        severity: col(row, "severity")?,
        policy: col(row, "policy")?,
        mode: col(row, "mode")?,
        errno: rest.7,
        dropped: rest.8,
        behavior: rest.9,
        message: col(row, "message")?,
    };
    serde_json::to_string(&event).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// `time_us` as `ldguard_events::format_time` writes it.
fn canonical_time(time_us: i64) -> String {
    ldguard_events::format_time(
        time_us.div_euclid(1_000_000),
        (time_us.rem_euclid(1_000_000) * 1000) as u32,
    )
}

/// An [`EventRow`] serialised as [`Event`] is, field for field in its
/// order with the same omissions, without copying it into one.
#[derive(Serialize)]
struct EventRef<'a> {
    time: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    container: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: &'a Option<String>,
    pid: i64,
    ppid: u32,
    uid: u32,
    program: &'a str,
    call: &'a str,
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resolved: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    access: &'a Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    args: &'a Vec<String>,
    action: &'a str,
    enforced: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: &'a Option<String>,
    severity: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    policy: &'a Option<String>,
    mode: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    errno: &'a Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dropped: &'a Option<u64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    behavior: bool,
    message: &'a str,
}

/// An event row as the JSON array [`SQLITE_EVENTS`] reads by position.
/// With the event's JSON (`EventRow::body`), made before the job reaches
/// the writer: SQLite's single writer is its bound.
struct SqliteRow<'a>(&'a EventRow, &'a str);

impl Serialize for SqliteRow<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self.0;
        (
            e.time_us,
            &e.container,
            &e.image,
            e.pid,
            &e.program,
            &e.call,
            &e.kind,
            &e.target,
            &e.action,
            i64::from(e.enforced),
            &e.rule,
            &e.severity,
            &e.policy,
            &e.mode,
            &e.message,
            self.1,
        )
            .serialize(s)
    }
}

impl EventRow {
    /// `None` when the event's time is not RFC 3339 UTC.
    pub fn from_event(e: Event) -> Option<EventRow> {
        let (secs, nanos) = ldguard_events::parse_time(&e.time)?;
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
            rest: Rest {
                time: e.time,
                ppid: e.ppid,
                uid: e.uid,
                resolved: e.resolved,
                host: e.host,
                access: e.access,
                args: e.args,
                errno: e.errno,
                dropped: e.dropped,
                behavior: e.behavior,
            },
        })
    }

    /// The whole event's JSON (as `Event::to_line` writes it, without the
    /// line's end): what SQLite stores in `body`.
    pub fn body(&self) -> String {
        let r = &self.rest;
        let event = EventRef {
            time: &r.time,
            container: &self.container,
            image: &self.image,
            pid: self.pid,
            ppid: r.ppid,
            uid: r.uid,
            program: &self.program,
            call: &self.call,
            kind: &self.kind,
            target: &self.target,
            resolved: &r.resolved,
            host: &r.host,
            access: &r.access,
            args: &r.args,
            action: &self.action,
            enforced: self.enforced,
            rule: &self.rule,
            severity: &self.severity,
            policy: &self.policy,
            mode: &self.mode,
            errno: &r.errno,
            dropped: &r.dropped,
            behavior: r.behavior,
            message: &self.message,
        };
        // Strings, numbers and booleans only: serialising cannot fail.
        serde_json::to_string(&event).unwrap_or_default()
    }

    /// What PostgreSQL stores in `body` (see [`StoredRest`]): the columns
    /// hold the rest of the event.
    fn stored_rest(&self, out: &mut Vec<u8>) {
        let r = &self.rest;
        let time = (r.time != canonical_time(self.time_us)).then_some(&r.time);
        let rest = (
            time,
            r.ppid,
            r.uid,
            &r.resolved,
            &r.host,
            &r.access,
            &r.args,
            r.errno,
            r.dropped,
            r.behavior,
        );
        // As in `body`: cannot fail.
        let _ = serde_json::to_writer(out, &rest);
    }

    /// The text free-text search matches: [`super::SEARCH_TEXT`] of this
    /// row, as the database would compute it.
    pub fn search_text(&self, out: &mut String) {
        out.push_str(&self.program);
        out.push(' ');
        out.push_str(self.target.as_deref().unwrap_or(""));
        out.push(' ');
        out.push_str(self.rule.as_deref().unwrap_or(""));
        out.push(' ');
        out.push_str(&self.message);
    }

    /// This event's block keys (see migration 7 and `BLOCK_KEYS`): one per
    /// filtered field, `field=value`; none for an absent value, except
    /// `container` for an absent container.
    pub fn block_keys(&self, out: &mut std::collections::BTreeSet<String>) {
        self.each_block_key(|field, value| {
            out.insert(match value {
                Some(v) => block_key(field, v),
                None => field.to_string(),
            });
        });
    }

    /// Calls `f` with each block key's field and value (`None`: the key is
    /// the field alone), as [`Self::block_keys`] spells them.
    pub fn each_block_key(&self, mut f: impl FnMut(&str, Option<&str>)) {
        let fields: [(&str, Option<&str>); 8] = [
            ("image", self.image.as_deref()),
            ("container", self.container.as_deref()),
            ("program", Some(&self.program)),
            ("call", Some(&self.call)),
            ("kind", Some(&self.kind)),
            ("action", Some(&self.action)),
            ("rule", self.rule.as_deref()),
            ("severity", Some(&self.severity)),
        ];
        for (field, value) in fields {
            match value {
                Some(v) => f(field, Some(v)),
                None if field == "container" => f(field, None),
                None => {}
            }
        }
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

/// The block key a search for `field = value` asks for.
pub fn block_key(field: &str, value: &str) -> String {
    format!("{field}={value}")
}

/// A roll-up row's key: unit, start, dimension, action, value.
type RollupKey<'a> = (i64, i64, usize, &'a str, &'a str);

/// Counts of the given rows, sorted (concurrent transactions that update
/// the same counters then lock them in one order: no deadlock).
fn rollup<'a>(rows: impl Iterator<Item = &'a EventRow>) -> BTreeMap<RollupKey<'a>, i64> {
    let mut counts = BTreeMap::new();
    for r in rows {
        for (unit, dimensions) in ROLLUP_UNITS {
            let start = r.time_us.div_euclid(unit) * unit;
            for d in 0..dimensions {
                *counts
                    .entry((unit, start, d, r.action.as_str(), r.dimension(d)))
                    .or_insert(0) += 1;
            }
        }
    }
    counts
}

const BATCH_SQL: &str = "INSERT INTO batches (batch_key, received_us, events, token_id) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (batch_key) DO NOTHING";

const EVENT_COLUMNS: &str = "id, batch_key, time_us, received_us, container, image, pid, program, \
     call, kind, target, action, enforced, rule, severity, policy, mode, message, body";

const ROLLUP_CONFLICT: &str = " ON CONFLICT (unit_us, dimension, start_us, action, value) \
     DO UPDATE SET n = event_rollup.n + excluded.n";

/// Events one group may hold: large enough to amortise a commit, small
/// enough that a group's transaction stays short.
const GROUP_EVENTS: usize = 20_000;

/// One batch waiting for the writer.
pub(super) struct Job {
    key: String,
    token_id: i64,
    received_us: i64,
    rows: Vec<EventRow>,
    /// SQLite: each row's whole event (PostgreSQL stores the rest only).
    bodies: Vec<String>,
    done: oneshot::Sender<Result<bool, sqlx::Error>>,
}

/// Starts the writer tasks of a store; they end when every sender is gone.
pub(super) fn spawn_writers(native: &Native, write_lock: &Arc<Mutex<()>>) -> mpsc::Sender<Job> {
    let (send, receive) = mpsc::channel::<Job>(1024);
    let receive = Arc::new(Mutex::new(receive));
    // SQLite: one writer is all the database allows. PostgreSQL: two, so
    // one group is being sent while the other commits.
    let writers = match native {
        Native::Sqlite(_) => 1,
        Native::Postgres(_) => 2,
    };
    for _ in 0..writers {
        tokio::spawn(write_loop(
            native.clone(),
            receive.clone(),
            write_lock.clone(),
        ));
    }
    send
}

async fn write_loop(
    native: Native,
    receive: Arc<Mutex<mpsc::Receiver<Job>>>,
    write_lock: Arc<Mutex<()>>,
) {
    loop {
        let group = {
            let mut receive = receive.lock().await;
            let Some(first) = receive.recv().await else {
                return;
            };
            let mut events = first.rows.len();
            let mut group = vec![first];
            while events < GROUP_EVENTS {
                match receive.try_recv() {
                    Ok(job) => {
                        events += job.rows.len();
                        group.push(job);
                    }
                    Err(_) => break,
                }
            }
            group
        };
        // SQLite: one group at a time takes its turn beside the other
        // writers of this process (see `Store::write_lock`).
        let _turn = match native {
            Native::Sqlite(_) => Some(write_lock.lock().await),
            Native::Postgres(_) => None,
        };
        match write_group(&native, &group).await {
            Ok(fresh) => {
                for (job, fresh) in group.into_iter().zip(fresh) {
                    let _ = job.done.send(Ok(fresh));
                }
            }
            Err(e) if group.len() == 1 => {
                if let Some(job) = group.into_iter().next() {
                    let _ = job.done.send(Err(e));
                }
            }
            Err(_) => {
                for job in group {
                    let alone = write_group(&native, std::slice::from_ref(&job))
                        .await
                        .map(|fresh| fresh[0]);
                    let _ = job.done.send(alone);
                }
            }
        }
    }
}

impl super::Store {
    /// Stores a batch of events under `key` in one transaction (shared with
    /// concurrent batches); `false` (and nothing written) when a batch with
    /// that key was stored before. Returns once committed.
    pub async fn insert_events(
        &self,
        key: &str,
        token_id: i64,
        received_us: i64,
        rows: Vec<EventRow>,
    ) -> Result<bool, sqlx::Error> {
        let (done, result) = oneshot::channel();
        let bodies = match self.backend {
            super::Backend::Sqlite => rows.iter().map(EventRow::body).collect(),
            super::Backend::Postgres => Vec::new(),
        };
        let job = Job {
            key: key.to_string(),
            token_id,
            received_us,
            rows,
            bodies,
            done,
        };
        self.writer
            .send(job)
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        result.await.map_err(|_| sqlx::Error::PoolClosed)?
    }
}

/// Records the batch's key (on a transaction of either database);
/// `false` when it was stored before.
macro_rules! claim_batch {
    ($tx:expr, $job:expr) => {
        sqlx::query(BATCH_SQL)
            .bind($job.key.as_str())
            .bind($job.received_us)
            .bind($job.rows.len() as i64)
            .bind($job.token_id)
            .execute(&mut *$tx)
            .await?
            .rows_affected()
            == 1
    };
}

/// Writes a group in one transaction; which batches were fresh.
async fn write_group(native: &Native, group: &[Job]) -> Result<Vec<bool>, sqlx::Error> {
    // Batch keys in one order, so two writers never wait on each other's
    // keys crosswise.
    let mut order: Vec<usize> = (0..group.len()).collect();
    order.sort_by(|a, b| group[*a].key.cmp(&group[*b].key));
    let mut fresh = vec![false; group.len()];
    match native {
        Native::Sqlite(pool) => {
            let mut tx = pool.begin().await?;
            // Free-text blocks: (first id, search texts one per line).
            let mut blocks: Vec<(i64, String)> = Vec::new();
            for i in order {
                let job = &group[i];
                fresh[i] = claim_batch!(tx, job);
                if fresh[i] {
                    let rows: Vec<SqliteRow> = job
                        .rows
                        .iter()
                        .zip(&job.bodies)
                        .map(|(row, body)| SqliteRow(row, body))
                        .collect();
                    let rows = serde_json::to_string(&rows)
                        .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
                    let done = sqlx::query(SQLITE_EVENTS)
                        .bind(job.key.as_str())
                        .bind(job.received_us)
                        .bind(rows)
                        .execute(&mut *tx)
                        .await?;
                    // One statement by the only writer: the rows took the
                    // ids up to the last one, one after another.
                    if done.rows_affected() != job.rows.len() as u64 {
                        return Err(sqlx::Error::Protocol(format!(
                            "stored {} of a batch's {} events",
                            done.rows_affected(),
                            job.rows.len()
                        )));
                    }
                    let mut id = done.last_insert_rowid() - job.rows.len() as i64 + 1;
                    for rows in job.rows.chunks(TEXT_BLOCK_EVENTS) {
                        blocks.push((id, block_text(rows)));
                        id += rows.len() as i64;
                    }
                }
            }
            if !blocks.is_empty() {
                let blocks =
                    serde_json::to_string(&blocks).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
                sqlx::query(
                    "INSERT INTO events_fts (rowid, text) \
                     SELECT value ->> 0, value ->> 1 FROM json_each($1)",
                )
                .bind(blocks)
                .execute(&mut *tx)
                .await?;
            }
            let counts = rollup(fresh_rows(group, &fresh));
            if !counts.is_empty() {
                let rows: Vec<(i64, i64, &str, &str, &str, i64)> = counts
                    .iter()
                    .map(|(&(unit, start, d, action, value), &n)| {
                        (unit, start, ROLLUP_DIMENSIONS[d], action, value, n)
                    })
                    .collect();
                let rows =
                    serde_json::to_string(&rows).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
                sqlx::query(&format!(
                    "WITH r(v) AS MATERIALIZED (SELECT jsonb(value) FROM json_each($1)) \
                     INSERT INTO event_rollup (unit_us, start_us, dimension, action, value, n) \
                     SELECT v ->> 0, v ->> 1, v ->> 2, v ->> 3, v ->> 4, v ->> 5 FROM r \
                     WHERE true{ROLLUP_CONFLICT}"
                ))
                .bind(rows)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        }
        Native::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            for i in order {
                let job = &group[i];
                fresh[i] = claim_batch!(tx, job);
            }
            if fresh.iter().any(|f| *f) {
                postgres_events(&mut tx, group, &fresh).await?;
            }
            let counts = rollup(fresh_rows(group, &fresh));
            if !counts.is_empty() {
                let units: Vec<i64> = counts.keys().map(|k| k.0).collect();
                let starts: Vec<i64> = counts.keys().map(|k| k.1).collect();
                let dims: Vec<&str> = counts.keys().map(|k| ROLLUP_DIMENSIONS[k.2]).collect();
                let actions: Vec<&str> = counts.keys().map(|k| k.3).collect();
                let values: Vec<&str> = counts.keys().map(|k| k.4).collect();
                let ns: Vec<i64> = counts.values().copied().collect();
                sqlx::query(&format!(
                    "INSERT INTO event_rollup (unit_us, start_us, dimension, action, value, n) \
                     SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], \
                     $5::text[], $6::bigint[]){ROLLUP_CONFLICT}"
                ))
                .bind(units)
                .bind(starts)
                .bind(dims)
                .bind(actions)
                .bind(values)
                .bind(ns)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        }
    }
    Ok(fresh)
}

fn fresh_rows<'a>(group: &'a [Job], fresh: &'a [bool]) -> impl Iterator<Item = &'a EventRow> {
    group
        .iter()
        .zip(fresh)
        .filter(|(_, f)| **f)
        .flat_map(|(job, _)| job.rows.iter())
}

/// Reads each row of a batch (a JSON array, see [`SqliteRow`]) by
/// position. Each row is turned into JSONB once, in a materialised table:
/// `json_each` hands a row over as text, which each `->>` would parse again.
const SQLITE_EVENTS: &str = "WITH r(v) AS MATERIALIZED (SELECT jsonb(value) FROM json_each($3)) \
     INSERT INTO events (batch_key, time_us, received_us, container, \
     image, pid, program, call, kind, target, action, enforced, rule, severity, policy, mode, \
     message, body) SELECT $1, v ->> 0, $2, v ->> 1, v ->> 2, v ->> 3, v ->> 4, v ->> 5, \
     v ->> 6, v ->> 7, v ->> 8, v ->> 9, v ->> 10, v ->> 11, v ->> 12, v ->> 13, v ->> 14, \
     v ->> 15 FROM r";

/// Events per free-text block, the unit the full-text index of either
/// database records (SQLite: `events_fts`, a block's row id is its first
/// event's id and its events' ids follow one another; PostgreSQL:
/// `event_text`, with its id range). A search reads the id range of every
/// block that holds its text, so a block must stay small; one index row
/// per block instead of per event is what saves at ingest.
pub const TEXT_BLOCK_EVENTS: usize = 256;

/// The search texts of a block's events, one per line.
fn block_text(rows: &[EventRow]) -> String {
    let mut text = String::new();
    for e in rows {
        if !text.is_empty() {
            text.push('\n');
        }
        e.search_text(&mut text);
    }
    text
}

/// One block of events (PostgreSQL's `event_text`): the id range of up to
/// [`TEXT_BLOCK_EVENTS`] events, their time range and the Bloom filters of
/// their block keys and of their search texts' trigrams (migration 8; see
/// `bloom`). Ids of other writers' events may fall inside the range: a
/// read tests each event itself. The blocks written before migration 8
/// hold their texts and keys instead (`text`, `keys`); new ones leave them
/// empty, so their GIN indexes get one empty entry per block.
const EVENT_BLOCK: &str = "INSERT INTO event_text (first_id, last_id, min_time, max_time, \
     key_bloom, text_bloom) SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], \
     $4::bigint[], $5::bytea[], $6::bytea[])";

/// Writes the fresh batches' events with one `COPY … FROM STDIN` (binary
/// format: about 1.4 µs of PostgreSQL's CPU per event less than text,
/// see BENCHMARKS.md): PostgreSQL parses the rows as a stream, where an
/// `INSERT … SELECT FROM UNNEST(arrays)` per batch had it build sixteen
/// arrays, unnest them and plan a statement per batch. The ids are taken
/// from the table's sequence first, so that the free-text blocks
/// (`event_text`) can name the id range they cover.
async fn postgres_events(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    group: &[Job],
    fresh: &[bool],
) -> Result<(), sqlx::Error> {
    let count: usize = group
        .iter()
        .zip(fresh)
        .filter(|(_, f)| **f)
        .map(|(job, _)| job.rows.len())
        .sum();
    // The sequence's name, then its values with the name as a literal:
    // `nextval(pg_get_serial_sequence(…))` per row looked the sequence up
    // for each value, about 15 µs of the cluster's CPU per event (see
    // BENCHMARKS.md), where a literal name is resolved once.
    let sequence: String = sqlx::query_scalar("SELECT pg_get_serial_sequence('events', 'id')")
        .fetch_one(&mut **tx)
        .await?;
    let ids: Vec<i64> = sqlx::query_scalar(&format!(
        "SELECT nextval('{}') FROM generate_series(1, $1)",
        sequence.replace('\'', "''")
    ))
    .bind(count as i64)
    .fetch_all(&mut **tx)
    .await?;
    if ids.len() != count {
        return Err(sqlx::Error::Protocol(format!(
            "asked the events' sequence for {count} ids, got {}",
            ids.len()
        )));
    }
    let mut data = Vec::with_capacity(64 * 1024);
    let (mut firsts, mut lasts) = (Vec::new(), Vec::new());
    let (mut min_times, mut max_times) = (Vec::new(), Vec::new());
    let (mut key_blooms, mut text_blooms) = (Vec::new(), Vec::new());
    let mut text = String::new();
    let mut copy = tx
        .copy_in_raw(&format!(
            "COPY events ({EVENT_COLUMNS}) FROM STDIN (FORMAT binary)"
        ))
        .await?;
    data.extend_from_slice(COPY_BINARY_HEADER);
    let mut ids = ids.into_iter();
    for (job, _) in group.iter().zip(fresh).filter(|(_, f)| **f) {
        for rows in job.rows.chunks(TEXT_BLOCK_EVENTS) {
            let (mut first, mut last) = (i64::MAX, i64::MIN);
            let (mut min_time, mut max_time) = (i64::MAX, i64::MIN);
            let mut filters = BlockFilters::default();
            for e in rows {
                let id = ids.next().unwrap_or_default();
                (first, last) = (first.min(id), last.max(id));
                (min_time, max_time) = (min_time.min(e.time_us), max_time.max(e.time_us));
                e.each_block_key(|field, value| filters.add_key(field, value));
                text.clear();
                e.search_text(&mut text);
                filters.add_text(&text);
                copy_row(&mut data, id, job, e);
                if data.len() >= 256 * 1024 {
                    copy.send(std::mem::take(&mut data)).await?;
                }
            }
            firsts.push(first);
            lasts.push(last);
            min_times.push(min_time);
            max_times.push(max_time);
            key_blooms.push(filters.keys);
            text_blooms.push(filters.text);
        }
    }
    data.extend_from_slice(COPY_BINARY_TRAILER);
    copy.send(data).await?;
    copy.finish().await?;
    sqlx::query(EVENT_BLOCK)
        .bind(firsts)
        .bind(lasts)
        .bind(min_times)
        .bind(max_times)
        .bind(key_blooms)
        .bind(text_blooms)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The start of `COPY`'s binary format: its signature, no flags, no
/// header extension.
const COPY_BINARY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// The end of `COPY`'s binary format: a tuple of -1 fields.
const COPY_BINARY_TRAILER: &[u8] = &[0xff, 0xff];

/// One tuple of `COPY`'s binary format, in [`EVENT_COLUMNS`]' order: the
/// field count, then each field's length (-1: NULL) and bytes (`bigint`
/// big-endian, `text` as UTF-8). No escaping, and PostgreSQL reads the
/// integers without parsing them.
fn copy_row(out: &mut Vec<u8>, id: i64, job: &Job, e: &EventRow) {
    let int = |out: &mut Vec<u8>, v: i64| {
        out.extend_from_slice(&8i32.to_be_bytes());
        out.extend_from_slice(&v.to_be_bytes());
    };
    let text = |out: &mut Vec<u8>, v: Option<&str>| match v {
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        Some(v) => {
            out.extend_from_slice(&(v.len() as i32).to_be_bytes());
            out.extend_from_slice(v.as_bytes());
        }
    };
    out.extend_from_slice(&19i16.to_be_bytes());
    int(out, id);
    text(out, Some(&job.key));
    int(out, e.time_us);
    int(out, job.received_us);
    text(out, e.container.as_deref());
    text(out, e.image.as_deref());
    int(out, e.pid);
    text(out, Some(&e.program));
    text(out, Some(&e.call));
    text(out, Some(&e.kind));
    text(out, e.target.as_deref());
    text(out, Some(&e.action));
    int(out, i64::from(e.enforced));
    text(out, e.rule.as_deref());
    text(out, Some(&e.severity));
    text(out, e.policy.as_deref());
    text(out, Some(&e.mode));
    text(out, Some(&e.message));
    // The body's length is known once written: its 4 bytes are reserved.
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    e.stored_rest(out);
    let length = (out.len() - at - 4) as i32;
    out[at..at + 4].copy_from_slice(&length.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    /// Events with every optional field, none, and times the column's
    /// microseconds would not spell the same way.
    pub(crate) fn varied_events() -> Vec<Event> {
        let full = Event {
            time: "2026-11-23T06:30:00.123456Z".into(),
            container: Some("c\"1\\".into()),
            image: Some("shop/web:1".into()),
            pid: u32::MAX,
            ppid: 7,
            uid: 0,
            program: "/usr/bin/ünï".into(),
            call: "execve".into(),
            kind: "exec".into(),
            target: Some("/bin/sh\t-c".into()),
            resolved: Some("/usr/bin/dash".into()),
            host: Some("example.org:443".into()),
            access: Some("exec".into()),
            args: vec!["sh".into(), "-c".into(), "echo \"hi\"\n".into()],
            action: "deny".into(),
            enforced: true,
            rule: Some("r9".into()),
            severity: "critical".into(),
            policy: Some("web".into()),
            mode: "enforce".into(),
            errno: Some(-13),
            dropped: Some(u64::MAX),
            behavior: true,
            message: "denied ✓".into(),
        };
        let bare = Event {
            time: "2026-11-23T06:30:00Z".into(),
            program: "p".into(),
            ..Event::default()
        };
        let nanos = Event {
            time: "1969-12-31T23:59:59.999999999Z".into(),
            ..full.clone()
        };
        vec![full, bare, nanos]
    }

    /// SQLite's body is the event as `Event::to_line` writes it.
    #[test]
    fn a_rows_body_is_the_events_line() {
        for e in varied_events() {
            let line = String::from_utf8(e.to_line()).unwrap();
            let row = EventRow::from_event(e).unwrap();
            assert_eq!(row.body(), line.trim_end());
        }
    }

    /// Concurrent batches land in shared transactions: each fresh key is
    /// stored once, each repeated key (also inside one group) not at all,
    /// and the roll-ups count exactly the stored events.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn grouped_batches_are_stored_once_each_with_matching_rollups() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite:{}/db", dir.path().display()))
            .await
            .unwrap();
        let now = crate::store::now_us();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..40u64 {
            let store = store.clone();
            // Keys 0..20, each sent twice at once.
            let key = format!("k{}", i % 20);
            tasks.spawn(async move {
                let rows: Vec<EventRow> = (0..50)
                    .filter_map(|n| {
                        EventRow::from_event(crate::bench::event(
                            (i % 20) * 50 + n,
                            now - (n as i64) * HOUR_US,
                        ))
                    })
                    .collect();
                store.insert_events(&key, 0, now, rows).await.unwrap()
            });
        }
        let mut fresh = 0;
        while let Some(done) = tasks.join_next().await {
            fresh += u64::from(done.unwrap());
        }
        assert_eq!(fresh, 20, "each key stored by exactly one of its two sends");
        use sqlx::Row;
        let one = |sql: &str| {
            let pool = store.pool.clone();
            let sql = sql.to_string();
            async move {
                sqlx::query(&sql)
                    .fetch_one(&pool)
                    .await
                    .unwrap()
                    .try_get::<i64, _>(0)
                    .unwrap()
            }
        };
        assert_eq!(one("SELECT COUNT(*) FROM events").await, 1000);
        for unit in ["86400000000", "3600000000", "60000000"] {
            let sql = format!(
                "SELECT CAST(SUM(n) AS BIGINT) FROM event_rollup \
                 WHERE dimension = 'action' AND unit_us = {unit}"
            );
            assert_eq!(one(&sql).await, 1000, "unit {unit}");
        }
        assert_eq!(
            one("SELECT CAST(SUM(n) AS BIGINT) FROM event_rollup WHERE dimension = 'rule' AND unit_us = 3600000000 AND action = 'deny'").await,
            one("SELECT COUNT(*) FROM events WHERE action = 'deny'").await
        );
    }
}

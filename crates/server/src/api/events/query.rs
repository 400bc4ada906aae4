//! Reading stored events: search, one event with its neighbours, aggregates.

use super::parse_instant;
use crate::api::{ApiError, ApiResult, AppStateRef};
use crate::store::{
    block_key, bloom, col, now_us, stored_body, Backend, ROLLUP_DIMENSIONS, ROLLUP_UNITS,
    SEARCH_TEXT, STORED_COLUMNS, TEXT_BLOCK_EVENTS,
};
use crate::tokens::{Caller, Role};
use axum::extract::{Path, Query};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The filters every read takes; each given one must hold. Also the
/// parameters the OpenAPI document lists for every event read.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// Start of the time range (inclusive): RFC 3339 UTC, Unix seconds or an age (`15m`, `2h`, `7d`).
    pub from: Option<String>,
    /// End of the time range (exclusive), in the same forms.
    pub to: Option<String>,
    pub image: Option<String>,
    pub container: Option<String>,
    pub program: Option<String>,
    pub call: Option<String>,
    pub kind: Option<String>,
    pub action: Option<String>,
    pub rule: Option<String>,
    pub severity: Option<String>,
    /// Free text, case-insensitive, in the program, target, rule and message.
    pub q: Option<String>,
}

/// A WHERE clause with its `$N` parameters.
pub(super) struct Where {
    pub sql: String,
    pub params: Vec<Param>,
}

#[derive(Clone)]
pub(super) enum Param {
    Int(i64),
    Text(String),
}

impl Where {
    pub fn push(&mut self, clause: &str, param: Param) {
        self.push_all(clause, vec![param]);
    }

    /// Adds `clause`, its `?`s standing for `params` in order.
    pub fn push_all(&mut self, clause: &str, params: Vec<Param>) {
        self.sql.push_str(if self.sql.is_empty() {
            " WHERE "
        } else {
            " AND "
        });
        let mut pieces = clause.split('?');
        self.sql.push_str(pieces.next().unwrap_or_default());
        for (piece, param) in pieces.zip(params) {
            self.params.push(param);
            self.sql.push_str(&format!("${}", self.params.len()));
            self.sql.push_str(piece);
        }
    }

    pub fn bind<'q>(
        &'q self,
        mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
        for p in &self.params {
            q = match p {
                Param::Int(i) => q.bind(*i),
                Param::Text(t) => q.bind(t.as_str()),
            };
        }
        q
    }
}

impl Where {
    fn new() -> Where {
        Where {
            sql: String::new(),
            params: Vec::new(),
        }
    }
}

/// Rows the free-text search reads newest first before it asks the
/// full-text index: a common word is found there at once, where the index
/// would list millions of matches to sort; a rare one is not, and the index
/// finds it without reading the table.
const TEXT_SCAN_WINDOW: i64 = 20_000;

/// The full-text index's query for a substring of three characters or
/// more: every trigram of it (the index records which rows hold a trigram,
/// not where, so it cannot match the phrase; it folds case itself). The
/// rows found hold all of them; the substring condition ([`text_clause`])
/// keeps the ones that hold the text itself.
fn trigram_query(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut seen = std::collections::BTreeSet::new();
    let mut terms = Vec::new();
    for window in chars.windows(3) {
        let trigram: String = window.iter().collect();
        if seen.insert(trigram.clone()) {
            terms.push(format!("\"{}\"", trigram.replace('"', "\"\"")));
        }
    }
    terms.join(" AND ")
}

/// The free-text condition: a case-insensitive substring of [`SEARCH_TEXT`].
fn text_clause(q: &str) -> (String, Param) {
    let escaped = q
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    (
        format!("LOWER({SEARCH_TEXT}) LIKE ? ESCAPE '\\'"),
        Param::Text(format!("%{escaped}%")),
    )
}

impl Filter {
    pub(super) fn to_where(&self) -> ApiResult<Where> {
        let mut w = Where::new();
        self.push_into(&mut w, true)?;
        Ok(w)
    }

    /// Only the time range and the action are given: the roll-ups, which
    /// count per action, can answer.
    fn rollup_answers(&self) -> bool {
        [
            &self.image,
            &self.container,
            &self.program,
            &self.call,
            &self.kind,
            &self.rule,
            &self.severity,
            &self.q,
        ]
        .iter()
        .all(|v| v.is_none())
    }

    /// `[from, to)` in microseconds (unbounded ends as `None`).
    fn range(&self) -> ApiResult<(Option<i64>, Option<i64>)> {
        let now = now_us();
        let instant = |name: &str, text: &Option<String>| -> ApiResult<Option<i64>> {
            text.as_deref()
                .map(|t| {
                    parse_instant(t, now).ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "{name}={t:?}: expected RFC 3339 UTC (2026-11-23T06:30:00Z), Unix seconds, or an age like 15m, 2h, 7d"
                        ))
                    })
                })
                .transpose()
        };
        Ok((instant("from", &self.from)?, instant("to", &self.to)?))
    }

    /// Adds this filter's conditions to `w` (the free text too if `text`).
    fn push_into(&self, w: &mut Where, text: bool) -> ApiResult<()> {
        let (from, to) = self.range()?;
        push_time(w, from, to);
        self.push_fields(w, text);
        Ok(())
    }

    /// The filtered fields (column names) and their wanted values.
    fn fields(&self) -> [(&'static str, Option<&str>); 8] {
        [
            ("image", self.image.as_deref()),
            ("container", self.container.as_deref()),
            ("program", self.program.as_deref()),
            ("call", self.call.as_deref()),
            ("kind", self.kind.as_deref()),
            ("action", self.action.as_deref()),
            ("rule", self.rule.as_deref()),
            ("severity", self.severity.as_deref()),
        ]
    }

    /// Adds the conditions other than the time range.
    fn push_fields(&self, w: &mut Where, text: bool) {
        for (column, value) in self.fields() {
            if let Some(v) = value {
                w.push(&format!("{column} = ?"), Param::Text(v.to_string()));
            }
        }
        if let Some(q) = self.q.as_deref().filter(|q| text && !q.is_empty()) {
            let (clause, param) = text_clause(q);
            w.push(&clause, param);
        }
    }
}

/// Adds `from <= time_us < to` (each end if given).
fn push_time(w: &mut Where, from: Option<i64>, to: Option<i64>) {
    if let Some(from) = from {
        w.push("time_us >= ?", Param::Int(from));
    }
    if let Some(to) = to {
        w.push("time_us < ?", Param::Int(to));
    }
}

/// Which blocks of events (PostgreSQL's `event_text`, migration 7) may
/// hold the events a read wants: each block records its events' time
/// range and the distinct values of their filtered fields (block keys),
/// and PostgreSQL keeps no per-event index but the primary key.
///
/// Since migration 8 a block records both as Bloom filters instead (see
/// `store::bloom`), tested inline; blocks written before keep their keys
/// and texts, tested as before.
#[derive(Clone, Default)]
struct Blocks {
    /// Keys every wanted event has (`image=…`): the block must hold all.
    all: Vec<String>,
    /// The block must hold one of these (when not empty).
    any: Vec<String>,
    /// Free text of 3 characters or more: the block's text must hold it
    /// (the `LIKE` pattern over a block's text, and the query's trigrams).
    text: Option<(String, Vec<[u8; 3]>)>,
    /// The wanted events' time range `[from, to)`.
    from: Option<i64>,
    to: Option<i64>,
}

impl Blocks {
    /// The blocks a filter's events can be in.
    fn of(filter: &Filter, from: Option<i64>, to: Option<i64>) -> Blocks {
        let mut all = Vec::new();
        for (field, value) in filter.fields() {
            if let Some(v) = value {
                all.push(block_key(field, v));
            }
        }
        let text =
            filter
                .q
                .as_deref()
                .filter(|t| t.chars().count() >= 3)
                .map(|t| match text_clause(t).1 {
                    Param::Text(pattern) => (pattern, bloom::query_trigrams(t)),
                    Param::Int(_) => (String::new(), Vec::new()),
                });
        Blocks {
            all,
            any: Vec::new(),
            text,
            from,
            to,
        }
    }

    /// Adds the block conditions to `w` (over `event_text`'s columns). A
    /// block with filters (`key_bloom`, `text_bloom`) is tested by them, one
    /// without by its keys and text; `get_bit` of NULL is NULL, never true.
    fn push_into(&self, w: &mut Where) {
        let key_test = |key: &String| {
            bloom::sql_test(
                "key_bloom",
                [key.as_bytes()],
                bloom::KEY_BYTES,
                bloom::KEY_HASHES,
            )
            .unwrap_or_else(|| "true".to_string())
        };
        if !self.all.is_empty() {
            let marks = vec!["?"; self.all.len()].join(", ");
            let tests: Vec<String> = self.all.iter().map(key_test).collect();
            w.push_all(
                &format!(
                    "((key_bloom IS NULL AND keys @> ARRAY[{marks}]::text[]) OR ({}))",
                    tests.join(" AND ")
                ),
                self.all.iter().cloned().map(Param::Text).collect(),
            );
        }
        if !self.any.is_empty() {
            let marks = vec!["?"; self.any.len()].join(", ");
            let tests: Vec<String> = self.any.iter().map(key_test).collect();
            w.push_all(
                &format!(
                    "((key_bloom IS NULL AND keys && ARRAY[{marks}]::text[]) OR ({}))",
                    tests.join(" OR ")
                ),
                self.any.iter().cloned().map(Param::Text).collect(),
            );
        }
        if let Some((pattern, trigrams)) = &self.text {
            let test = bloom::sql_test(
                "text_bloom",
                trigrams.iter().map(|t| t.as_slice()),
                bloom::TEXT_BYTES,
                bloom::TEXT_HASHES,
            )
            .unwrap_or_else(|| "text_bloom IS NOT NULL".to_string());
            w.push(
                &format!("((text_bloom IS NULL AND LOWER(text) LIKE ? ESCAPE '\\') OR {test})"),
                Param::Text(pattern.clone()),
            );
        }
        if let Some(from) = self.from {
            w.push("max_time >= ?", Param::Int(from));
        }
        if let Some(to) = self.to {
            w.push("min_time < ?", Param::Int(to));
        }
    }
}

/// `(id BETWEEN a AND b OR …)` for the given ranges, merged where they
/// overlap (two blocks' ranges can: concurrent writers), so that each
/// event is read once. Constants, not a join: PostgreSQL then estimates
/// each range from the primary key and reads them through it, where a join
/// with a list of ranges was planned as a sort of the whole table.
fn id_ranges(mut ranges: Vec<(i64, i64)>) -> String {
    ranges.sort_unstable();
    let mut merged: Vec<(i64, i64)> = Vec::with_capacity(ranges.len());
    for (first, last) in ranges {
        match merged.last_mut() {
            Some(prev) if first <= prev.1.saturating_add(1) => prev.1 = prev.1.max(last),
            _ => merged.push((first, last)),
        }
    }
    let terms: Vec<String> = merged
        .iter()
        .map(|(f, l)| format!("events.id BETWEEN {f} AND {l}"))
        .collect();
    format!("({})", terms.join(" OR "))
}

/// The same block keys, over any time.
fn blocks_like(b: &Blocks) -> Blocks {
    Blocks {
        from: None,
        to: None,
        ..b.clone()
    }
}

/// Blocks asked for at first, then twice as many each time up to this.
const BLOCK_PAGE: (i64, i64) = (8, 512);

/// PostgreSQL: the first `limit` events (`id` and [`STORED_COLUMNS`]) in
/// `(time_us, id)` order, newest first if `desc`, among those meeting
/// `events` (conditions over the events' columns), found in `blocks`.
/// Blocks are read in the order of their newest (oldest if ascending)
/// event's time, and their events tested; once `limit` events are found
/// that all come before every block not yet read, no unread block can hold
/// an earlier one. `Ok(None)` when more than `scan_at_most` events would
/// have to be read before that is known.
async fn pg_block_scan(
    pool: &sqlx::AnyPool,
    blocks: &Blocks,
    events: &Where,
    desc: bool,
    limit: i64,
    scan_at_most: Option<i64>,
) -> Result<Option<Vec<sqlx::any::AnyRow>>, sqlx::Error> {
    let (edge, dir, cmp) = if desc {
        ("max_time", "DESC", "<")
    } else {
        ("min_time", "ASC", ">")
    };
    let mut found: Vec<(i64, i64, sqlx::any::AnyRow)> = Vec::new();
    let mut after: Option<(i64, i64)> = None;
    let mut page = BLOCK_PAGE.0;
    let mut scanned = 0i64;
    loop {
        let mut w = Where::new();
        blocks.push_into(&mut w);
        if let Some((t, first)) = after {
            w.push_all(
                &format!("({edge}, first_id) {cmp} (?, ?)"),
                vec![Param::Int(t), Param::Int(first)],
            );
        }
        let sql = format!(
            "SELECT first_id, last_id, {edge} AS edge FROM event_text{}              ORDER BY {edge} {dir}, first_id {dir} LIMIT {page}",
            w.sql
        );
        let rows = pg_blocks_no_seqscan(pool, &w, &sql, true).await?;
        let mut ranges = Vec::with_capacity(rows.len());
        for r in &rows {
            let (first, last): (i64, i64) = (col(r, "first_id")?, col(r, "last_id")?);
            ranges.push((first, last));
            scanned += last - first + 1;
            after = Some((col(r, "edge")?, first));
        }
        if !ranges.is_empty() {
            let sql = format!(
                "SELECT id, {STORED_COLUMNS} FROM events{} AND {} ORDER BY time_us {dir}, id {dir} \
                 LIMIT {limit}",
                if events.sql.is_empty() {
                    " WHERE true"
                } else {
                    &events.sql
                },
                id_ranges(ranges)
            );
            for r in events.bind(sqlx::query(&sql)).fetch_all(pool).await? {
                let (id, time) = (col(&r, "id")?, col(&r, "time_us")?);
                if !found.iter().any(|(i, _, _)| *i == id) {
                    found.push((id, time, r));
                }
            }
            found.sort_by(|a, b| {
                let order = (a.1, a.0).cmp(&(b.1, b.0));
                if desc {
                    order.reverse()
                } else {
                    order
                }
            });
            found.truncate(limit as usize);
        }
        if (rows.len() as i64) < page {
            break;
        }
        // Every unread block's events are at or past `edge`.
        let edge = after.map(|a| a.0).unwrap_or_default();
        if found.len() as i64 == limit {
            let kth = found[found.len() - 1].1;
            if (desc && kth > edge) || (!desc && kth < edge) {
                break;
            }
        }
        if scan_at_most.is_some_and(|most| scanned >= most) {
            return Ok(None);
        }
        page = (page * 2).min(BLOCK_PAGE.1);
    }
    Ok(Some(found.into_iter().map(|(_, _, r)| r).collect()))
}

/// Runs a query over `event_text` without sequential scans or JIT: the
/// blocks' texts live out of line (TOAST), so the table looks small to
/// the planner, which would read and test every block instead of asking
/// the index; and its estimate of the events in the blocks' ranges is
/// high enough to compile the query (JIT): a second, where the query
/// itself takes under 100 ms at 5 M events.
///
/// `in_order`: the query reads blocks in the order of an index and stops
/// at its `LIMIT` (the block walk): bitmap scans go too. The planner takes
/// a Bloom filter's `get_bit` tests for rare (a row or so of thousands),
/// and would read every block in the time range through a bitmap and sort
/// them, where walking the index stops after the first few (3.4 ms against
/// 0.14 ms for 16 of 1,200 blocks; ten times that at 5 M events).
async fn pg_blocks_no_seqscan(
    pool: &sqlx::AnyPool,
    w: &Where,
    sql: &str,
    in_order: bool,
) -> Result<Vec<sqlx::any::AnyRow>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let mut settings = vec!["SET LOCAL enable_seqscan = off", "SET LOCAL jit = off"];
    if in_order {
        settings.push("SET LOCAL enable_bitmapscan = off");
    }
    for setting in settings {
        sqlx::query(setting).execute(&mut *tx).await?;
    }
    let rows = w.bind(sqlx::query(sql)).fetch_all(&mut *tx).await?;
    tx.commit().await?;
    Ok(rows)
}

#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    #[serde(flatten)]
    filter: Filter,
    /// At most this many events (default 100, at most 1000).
    limit: Option<i64>,
    /// Only events after this position in the order (newest first): the
    /// `next` cursor of the previous page.
    before: Option<String>,
}

/// One stored event: its id and the event as the library sent it.
fn stored(row: &sqlx::any::AnyRow) -> Result<Value, sqlx::Error> {
    let body = stored_body(row)?;
    let mut event: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    event["id"] = json!(col::<i64>(row, "id")?);
    Ok(event)
}

/// `GET /api/v1/events?…`: newest first.
pub async fn search(
    state: AppStateRef,
    caller: Caller,
    Query(q): Query<SearchQuery>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Viewer)?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let mut w = Where::new();
    q.filter.push_into(&mut w, false)?;
    let before = match &q.before {
        Some(before) => Some(
            before
                .split_once(':')
                .and_then(|(t, i)| Some((t.parse::<i64>().ok()?, i.parse::<i64>().ok()?)))
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "before={before:?}: pass the `next` value of the previous page"
                    ))
                })?,
        ),
        None => None,
    };
    let page = |w: &mut Where| {
        if let Some((time, id)) = before {
            w.push_all(
                "(time_us < ? OR (time_us = ? AND id < ?))",
                vec![Param::Int(time), Param::Int(time), Param::Int(id)],
            );
        }
    };
    page(&mut w);
    let order = format!("ORDER BY time_us DESC, id DESC LIMIT {limit}");
    let pool = &state.store.pool;
    let started = std::time::Instant::now();
    let text = q.filter.q.as_deref().filter(|t| !t.is_empty());
    let rows = match text {
        _ if state.store.backend == Backend::Postgres => {
            let (from, mut to) = q.filter.range()?;
            if let Some((time, _)) = before {
                to = Some(to.map_or(time + 1, |to| to.min(time + 1)));
            }
            let blocks = Blocks::of(&q.filter, from, to);
            let mut events = Where::new();
            q.filter.push_into(&mut events, true)?;
            page(&mut events);
            // Free text: the blocks whose text filter has the query's
            // trigrams (or, written before migration 8, whose text holds
            // it), newest first, like any other block condition.
            pg_block_scan(pool, &blocks, &events, true, limit, None)
                .await?
                .unwrap_or_default()
        }
        None => {
            let sql = format!("SELECT id, {STORED_COLUMNS} FROM events{} {order}", w.sql);
            w.bind(sqlx::query(&sql)).fetch_all(pool).await?
        }
        Some(text) => {
            let (clause, param) = text_clause(text);
            let recent = format!(
                "SELECT id, {STORED_COLUMNS} FROM (SELECT id, {STORED_COLUMNS} FROM events{} \
                 ORDER BY time_us DESC, id DESC LIMIT {TEXT_SCAN_WINDOW}) AS recent WHERE {} {order}",
                w.sql,
                clause.replace('?', &format!("${}", w.params.len() + 1))
            );
            let mut rows = w
                .bind(sqlx::query(&recent))
                .bind(match &param {
                    Param::Text(t) => t.clone(),
                    Param::Int(_) => String::new(),
                })
                .fetch_all(pool)
                .await?;
            if (rows.len() as i64) < limit {
                // Not enough in the newest rows: ask the index.
                let mut indexed = Where::new();
                let sql = if state.store.backend == Backend::Sqlite && text.chars().count() >= 3 {
                    // The index's rows are blocks of events (see
                    // `TEXT_BLOCK_EVENTS`): the events of the blocks that
                    // may hold the text, tested each; ranges of short
                    // blocks overlap the next one (DISTINCT).
                    indexed.push("events_fts MATCH ?", Param::Text(trigram_query(text)));
                    q.filter.push_into(&mut indexed, true)?;
                    page(&mut indexed);
                    // CROSS JOIN: SQLite walks the index's matches, not
                    // the table. The matches are found first (a planner
                    // left to choose may walk the events newest first and
                    // look each up in them: the whole table for a rare word).
                    format!(
                        "WITH hits AS MATERIALIZED (SELECT events.id, {} FROM events_fts \
                         CROSS JOIN events ON events.id BETWEEN \
                         events_fts.rowid AND events_fts.rowid + {}{}) \
                         SELECT DISTINCT id, {STORED_COLUMNS} FROM hits {order}",
                        STORED_COLUMNS
                            .split(", ")
                            .map(|c| format!("events.{}", c.trim()))
                            .collect::<Vec<_>>()
                            .join(", "),
                        TEXT_BLOCK_EVENTS - 1,
                        indexed.sql
                    )
                } else {
                    q.filter.push_into(&mut indexed, true)?;
                    page(&mut indexed);
                    format!(
                        "SELECT id, {STORED_COLUMNS} FROM events{} {order}",
                        indexed.sql
                    )
                };
                rows = indexed.bind(sqlx::query(&sql)).fetch_all(pool).await?;
            }
            rows
        }
    };
    state
        .metrics
        .db_seconds
        .observe(started.elapsed().as_secs_f64());
    let events = rows.iter().map(stored).collect::<Result<Vec<_>, _>>()?;
    let next = match rows.last() {
        Some(last) if rows.len() as i64 == limit => Some(format!(
            "{}:{}",
            col::<i64>(last, "time_us")?,
            col::<i64>(last, "id")?
        )),
        _ => None,
    };
    Ok(Json(json!({"events": events, "next": next})))
}

#[derive(Debug, Deserialize)]
pub struct DetailQuery {
    /// Neighbours on each side (default 5, at most 100).
    around: Option<i64>,
}

/// `GET /api/v1/events/{id}`: the event, and the events just before and
/// after it from the same process (container and pid).
pub async fn detail(
    state: AppStateRef,
    caller: Caller,
    Path(id): Path<i64>,
    Query(q): Query<DetailQuery>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Viewer)?;
    let around = q.around.unwrap_or(5).clamp(0, 100);
    let pool = &state.store.pool;
    let row = sqlx::query(&format!(
        "SELECT id, {STORED_COLUMNS} FROM events WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| ApiError::not_found(format!("no event {id}")))?;
    let event = stored(&row)?;
    let container: Option<String> = col(&row, "container")?;
    let container_for_sqlite = container.clone();
    let pid: i64 = col(&row, "pid")?;
    let time: i64 = col(&row, "time_us")?;
    let same = "COALESCE(container, '') = $1 AND pid = $2 AND id <> $3";
    let neighbours = |order: &'static str, cmp: &'static str| {
        let sql = format!(
            "SELECT id, {STORED_COLUMNS} FROM events WHERE {same} AND (time_us {cmp} $4 OR (time_us = $4 AND id {cmp} $3)) \
             ORDER BY time_us {order}, id {order} LIMIT {around}"
        );
        let container = container_for_sqlite.clone().unwrap_or_default();
        async move {
            sqlx::query(&sql)
                .bind(container)
                .bind(pid)
                .bind(id)
                .bind(time)
                .fetch_all(pool)
                .await
        }
    };
    let (before, after) = if state.store.backend == Backend::Postgres {
        // The blocks that hold an event of the container (none given: of
        // no container or an empty one), nearest in time first.
        let container = container.unwrap_or_default();
        let mut blocks = Blocks::default();
        if container.is_empty() {
            blocks.any = vec!["container".to_string(), block_key("container", "")];
        } else {
            blocks.all = vec![block_key("container", &container)];
        }
        let mut sides = Vec::new();
        for (desc, cmp) in [(true, "<"), (false, ">")] {
            let mut events = Where::new();
            events.push(
                "COALESCE(container, '') = ?",
                Param::Text(container.clone()),
            );
            events.push("pid = ?", Param::Int(pid));
            events.push("id <> ?", Param::Int(id));
            events.push_all(
                &format!("(time_us {cmp} ? OR (time_us = ? AND id {cmp} ?))"),
                vec![Param::Int(time), Param::Int(time), Param::Int(id)],
            );
            // Only the blocks on this side of the event's time.
            let side = if desc {
                Blocks {
                    to: Some(time + 1),
                    ..blocks_like(&blocks)
                }
            } else {
                Blocks {
                    from: Some(time),
                    ..blocks_like(&blocks)
                }
            };
            sides.push(
                pg_block_scan(pool, &side, &events, desc, around, None)
                    .await?
                    .unwrap_or_default(),
            );
        }
        let after = sides.pop().unwrap_or_default();
        let before = sides.pop().unwrap_or_default();
        (before, after)
    } else {
        (
            neighbours("DESC", "<").await?,
            neighbours("ASC", ">").await?,
        )
    };
    let mut before = before.iter().map(stored).collect::<Result<Vec<_>, _>>()?;
    before.reverse();
    let after = after.iter().map(stored).collect::<Result<Vec<_>, _>>()?;
    Ok(Json(
        json!({"event": event, "before": before, "after": after}),
    ))
}

#[derive(Debug, Deserialize)]
pub struct AggregateQuery {
    #[serde(flatten)]
    filter: Filter,
    /// action, rule, image, program, kind, severity, call or container.
    by: String,
    /// Bucket width in seconds (default 3600).
    bucket: Option<i64>,
}

/// `GET /api/v1/events/aggregate?by=action&bucket=60&from=1h`: counts per
/// value of `by` per time bucket, for dashboards.
pub async fn aggregate(
    state: AppStateRef,
    caller: Caller,
    Query(q): Query<AggregateQuery>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Viewer)?;
    const GROUPS: [&str; 8] = [
        "action",
        "rule",
        "image",
        "program",
        "kind",
        "severity",
        "call",
        "container",
    ];
    let Some(column) = GROUPS.iter().find(|g| **g == q.by) else {
        return Err(ApiError::bad_request(format!(
            "by={:?}: expected one of {}",
            q.by,
            GROUPS.join(", ")
        )));
    };
    let bucket = q.bucket.unwrap_or(3600).max(1) * 1_000_000;
    let pool = &state.store.pool;
    let started = std::time::Instant::now();
    // Counts per (bucket start, value); an absent value is "" in the
    // roll-ups and NULL in the events: both become null.
    let mut counts: BTreeMap<(i64, Option<String>), i64> = BTreeMap::new();
    let mut add = |rows: Vec<sqlx::any::AnyRow>| -> Result<(), sqlx::Error> {
        for r in &rows {
            let value = col::<Option<String>>(r, "value")?.filter(|v| !v.is_empty());
            *counts.entry((col(r, "bucket")?, value)).or_insert(0) += col::<i64>(r, "n")?;
        }
        Ok(())
    };
    let (from, to) = q.filter.range()?;
    let pieces = if q.filter.rollup_answers() {
        let dimension = ROLLUP_DIMENSIONS
            .iter()
            .position(|d| d == column)
            .unwrap_or(usize::MAX);
        pieces(from, to, bucket, dimension, now_us())
    } else {
        vec![Piece::Events { from, to }]
    };
    for piece in pieces {
        if let (Piece::Events { from, to }, Backend::Postgres) = (piece, state.store.backend) {
            // PostgreSQL keeps no per-event index but the primary key and
            // a BRIN over the time (which serves a time range alone): with
            // a field or text filter, the events are those of the blocks
            // that may hold them (see `Blocks`), counted through their id
            // ranges merged where they overlap, so no event counts twice.
            let blocks = Blocks::of(&q.filter, from, to);
            if !blocks.all.is_empty() || blocks.text.is_some() {
                let mut bw = Where::new();
                blocks.push_into(&mut bw);
                let sql = format!(
                    "SELECT first_id, last_id FROM event_text{} ORDER BY first_id",
                    bw.sql
                );
                let mut ranges: Vec<(i64, i64)> = Vec::new();
                for r in &pg_blocks_no_seqscan(pool, &bw, &sql, false).await? {
                    let (first, last): (i64, i64) = (col(r, "first_id")?, col(r, "last_id")?);
                    match ranges.last_mut() {
                        Some(prev) if first <= prev.1 + 1 => prev.1 = prev.1.max(last),
                        _ => ranges.push((first, last)),
                    }
                }
                // Disjoint now: each chunk's counts add up.
                for chunk in ranges.chunks(256) {
                    let mut w = Where::new();
                    push_time(&mut w, from, to);
                    q.filter.push_fields(&mut w, true);
                    w.push_all(&id_ranges(chunk.to_vec()), Vec::new());
                    let sql = format!(
                        "SELECT (time_us / {bucket}) * {bucket} AS bucket, {column} AS value, \
                         COUNT(*) AS n FROM events{} GROUP BY bucket, value",
                        w.sql
                    );
                    add(w.bind(sqlx::query(&sql)).fetch_all(pool).await?)?;
                }
                continue;
            }
        }
        let mut w = Where::new();
        let sql = match piece {
            Piece::Rollup { unit, from, to } => {
                w.push("unit_us = ?", Param::Int(unit));
                w.push("dimension = ?", Param::Text(column.to_string()));
                if let Some(from) = from {
                    w.push("start_us >= ?", Param::Int(from));
                }
                if let Some(to) = to {
                    w.push("start_us < ?", Param::Int(to));
                }
                if let Some(action) = &q.filter.action {
                    w.push("action = ?", Param::Text(action.clone()));
                }
                format!(
                    "SELECT (start_us / {bucket}) * {bucket} AS bucket, value, \
                     CAST(SUM(n) AS BIGINT) AS n FROM event_rollup{} GROUP BY bucket, value",
                    w.sql
                )
            }
            Piece::Events { from, to } => {
                push_time(&mut w, from, to);
                q.filter.push_fields(&mut w, true);
                format!(
                    "SELECT (time_us / {bucket}) * {bucket} AS bucket, {column} AS value, \
                     COUNT(*) AS n FROM events{} GROUP BY bucket, value",
                    w.sql
                )
            }
        };
        add(w.bind(sqlx::query(&sql)).fetch_all(pool).await?)?;
    }
    state
        .metrics
        .db_seconds
        .observe(started.elapsed().as_secs_f64());
    let out: Vec<Value> = counts
        .into_iter()
        .map(|((start, value), n)| {
            json!({
                "bucket": ldguard_events::format_time(start / 1_000_000, 0),
                "value": value,
                "count": n,
            })
        })
        .collect();
    Ok(Json(
        json!({"by": column, "bucket_seconds": bucket / 1_000_000, "counts": out}),
    ))
}

/// A part of an aggregate's time range, read from one roll-up unit or
/// from the events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Piece {
    /// The `unit` rows starting in `[from, to)`.
    Rollup {
        unit: i64,
        from: Option<i64>,
        to: Option<i64>,
    },
    /// The events in `[from, to)`.
    Events { from: Option<i64>, to: Option<i64> },
}

/// At most this many bucket boundaries inside a range are worth splitting
/// it at, so that units which do not divide the bucket still serve it.
const MAX_SPLITS: i64 = 4;

/// How to count `[from, to)` in buckets of `bucket` µs by the
/// dimension numbered `dimension`: the coarsest roll-up units that fit
/// whole inside the range and inside one bucket, finer ones at the ends,
/// the events for what no unit covers.
fn pieces(
    from: Option<i64>,
    to: Option<i64>,
    bucket: i64,
    dimension: usize,
    now: i64,
) -> Vec<Piece> {
    let held: Vec<i64> = ROLLUP_UNITS
        .iter()
        .filter(|(_, dimensions)| dimension < *dimensions)
        .map(|(unit, _)| *unit)
        .collect();
    let mut out = Vec::new();
    // A unit always lies inside one bucket when it divides the bucket;
    // otherwise only if the range is cut at the bucket boundaries, which
    // is worth it when there are few (e.g. "totals" in one huge bucket).
    let dividing: Vec<i64> = held.iter().copied().filter(|u| bucket % u == 0).collect();
    if dividing.len() < held.len() {
        if let Some(start) = from {
            let end = to.unwrap_or(now).max(start);
            let first = (start.div_euclid(bucket) + 1) * bucket;
            let splits = if first >= end {
                0
            } else {
                (end - first) / bucket + 1
            };
            if splits <= MAX_SPLITS {
                let mut cut = from;
                for i in 0..splits {
                    let at = Some(first + i * bucket);
                    cover(cut, at, &held, &mut out);
                    cut = at;
                }
                // Past `now` a unit could straddle the next boundary: only
                // events dated in the future, counted in their unit's bucket.
                cover(cut, to, &held, &mut out);
                return out;
            }
        }
    }
    cover(from, to, &dividing, &mut out);
    out
}

/// Adds the pieces of `[from, to)` from `units` (coarsest first), then events.
fn cover(from: Option<i64>, to: Option<i64>, units: &[i64], out: &mut Vec<Piece>) {
    if let (Some(a), Some(b)) = (from, to) {
        if a >= b {
            return;
        }
    }
    let Some((&unit, finer)) = units.split_first() else {
        out.push(Piece::Events { from, to });
        return;
    };
    let first = from.map(|f| (f + unit - 1).div_euclid(unit) * unit);
    let end = to.map(|t| t.div_euclid(unit) * unit);
    if let (Some(a), Some(b)) = (first, end) {
        if a >= b {
            cover(from, to, finer, out);
            return;
        }
    }
    out.push(Piece::Rollup {
        unit,
        from: first,
        to: end,
    });
    if let (Some(f), Some(a)) = (from, first) {
        cover(Some(f), Some(a), finer, out);
    }
    if let (Some(b), Some(t)) = (end, to) {
        cover(Some(b), Some(t), finer, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{DAY_US, HOUR_US, MINUTE_US};

    #[test]
    fn ranges_are_cut_into_days_hours_minutes_and_events() {
        let day = 20_000 * DAY_US;
        // 30 days back from 10:30:15 of a day, by rule in one 30-day bucket.
        let now = day + 10 * HOUR_US + 30 * MINUTE_US + 15_000_000;
        let from = now - 30 * DAY_US;
        let got = pieces(Some(from), None, 30 * DAY_US, 1, now);
        assert_eq!(
            got,
            vec![
                Piece::Rollup {
                    unit: DAY_US,
                    from: Some(day - 29 * DAY_US),
                    to: None
                },
                Piece::Rollup {
                    unit: HOUR_US,
                    from: Some(day - 30 * DAY_US + 11 * HOUR_US),
                    to: Some(day - 29 * DAY_US)
                },
                Piece::Events {
                    from: Some(from),
                    to: Some(day - 30 * DAY_US + 11 * HOUR_US)
                },
            ]
        );
        // By action per 30 minutes: minutes (hours and days do not divide
        // the bucket and there are many boundaries), events for the seconds.
        let got = pieces(Some(now - DAY_US), None, 1_800_000_000, 0, now);
        assert_eq!(
            got,
            vec![
                Piece::Rollup {
                    unit: MINUTE_US,
                    from: Some(now - DAY_US + 45_000_000),
                    to: None
                },
                Piece::Events {
                    from: Some(now - DAY_US),
                    to: Some(now - DAY_US + 45_000_000)
                },
            ]
        );
        // By rule per 30 minutes: no unit serves it, the events do.
        let got = pieces(Some(now - DAY_US), None, 1_800_000_000, 1, now);
        assert_eq!(
            got,
            vec![Piece::Events {
                from: Some(now - DAY_US),
                to: None
            }]
        );
        // A bucket no unit divides but with one boundary inside the range:
        // cut there, each side served by the units.
        let bucket = 7 * DAY_US + 1;
        let boundary = (now.div_euclid(bucket)) * bucket;
        let got = pieces(
            Some(boundary - 2 * DAY_US),
            Some(boundary + 2 * DAY_US),
            bucket,
            1,
            now,
        );
        let rows = |p: &Piece| match *p {
            Piece::Rollup {
                from: Some(a),
                to: Some(b),
                ..
            }
            | Piece::Events {
                from: Some(a),
                to: Some(b),
            } => (a, b),
            _ => panic!("unbounded piece {p:?}"),
        };
        let mut spans: Vec<(i64, i64)> = got.iter().map(rows).collect();
        spans.sort();
        assert_eq!(spans.first().unwrap().0, boundary - 2 * DAY_US);
        assert_eq!(spans.last().unwrap().1, boundary + 2 * DAY_US);
        for pair in spans.windows(2) {
            assert_eq!(pair[0].1, pair[1].0, "pieces tile the range: {got:?}");
        }
        for p in &got {
            let (a, b) = rows(p);
            assert!(
                b <= boundary || a >= boundary,
                "{p:?} straddles the bucket boundary"
            );
        }
        assert!(got
            .iter()
            .any(|p| matches!(p, Piece::Rollup { unit, .. } if *unit == DAY_US)));
    }
}

//! Forwarding: every stored event goes to each configured receiver (an
//! OTLP/HTTP logs endpoint, Loki, a webhook), at least once.
//!
//! Each sink has a cursor row in `forward_cursors`: the last event id the
//! receiver acknowledged. A forwarder reads the events after it in id
//! order, sends them in batches, and moves the cursor only after a 2xx, so
//! a receiver that is down, a restart or a crash loses nothing: the batch
//! in flight is sent again (receivers drop the duplicate by the event id).
//! The same row is a lease: among several server processes on one
//! database, the one holding it forwards and the others wait to take over.

pub mod config;
pub mod loki;
pub mod otlp;
pub mod webhook;

pub use config::{ForwardArgs, SinkConfig, SinkKind};

use crate::metrics::Counter;
use crate::store::{now_us, Store, StoredEvent};
use ldguard_events::Event;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// One event ready to be encoded for a receiver.
#[derive(Clone, Debug)]
pub struct Forwardable {
    pub id: i64,
    pub received_us: i64,
    /// The event's time, nanoseconds since the epoch.
    pub time_ns: u64,
    pub event: Event,
    /// The event's JSON with `"id"` first.
    line: serde_json::Value,
}

impl Forwardable {
    pub fn from_stored(s: &StoredEvent) -> Forwardable {
        let event: Event = serde_json::from_str(&s.body).unwrap_or_else(|_| Event {
            // Stored bodies are written by this server from parsed events;
            // were one unreadable, it still goes out, as its text.
            message: s.body.clone(),
            ..Event::default()
        });
        let time_ns = ldguard_events::parse_time(&event.time)
            .map(|(secs, nanos)| (secs.max(0) as u64) * 1_000_000_000 + u64::from(nanos))
            .unwrap_or((s.received_us.max(0) as u64) * 1000);
        let mut line = serde_json::Map::new();
        line.insert("id".into(), s.id.into());
        if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(&event) {
            line.extend(fields);
        }
        Forwardable {
            id: s.id,
            received_us: s.received_us,
            time_ns,
            event,
            line: serde_json::Value::Object(line),
        }
    }

    /// The id receivers deduplicate on.
    pub fn uid(&self) -> String {
        self.id.to_string()
    }

    pub fn line(&self) -> &serde_json::Value {
        &self.line
    }
}

/// `shop/web:1.4@sha256:…` as (`shop/web`, tag `1.4`, digest `sha256:…`).
pub fn image_parts(image: &str) -> (&str, Option<&str>, Option<&str>) {
    let (rest, digest) = match image.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (image, None),
    };
    // A colon after the last slash starts the tag; one before it is a
    // registry's port.
    let slash = rest.rfind('/').map_or(0, |i| i + 1);
    match rest[slash..].rfind(':') {
        Some(i) => (&rest[..slash + i], Some(&rest[slash + i + 1..]), digest),
        None => (rest, None, digest),
    }
}

/// What `/metrics` shows for one sink.
#[derive(Default)]
pub struct SinkMetrics {
    pub delivered: Counter,
    /// Events a receiver refused as malformed (400/413/422 for that event
    /// alone): skipped, since sending them again cannot succeed.
    pub rejected: Counter,
    /// Failed delivery attempts (each retried).
    pub failures: Counter,
    /// Stored event ids after the cursor.
    pub lag_events: AtomicI64,
    /// Age of the oldest event not yet delivered, by its receipt, in ms.
    pub lag_ms: AtomicI64,
    /// 1 while this process holds the sink's lease.
    pub active: AtomicI64,
}

/// Every sink's metrics, for `/metrics`.
#[derive(Default)]
pub struct ForwardMetrics {
    sinks: Mutex<Vec<(&'static str, Arc<SinkMetrics>)>>,
}

impl ForwardMetrics {
    pub fn sink(&self, name: &'static str) -> Arc<SinkMetrics> {
        let mut sinks = self.sinks.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, m)) = sinks.iter().find(|(n, _)| *n == name) {
            return m.clone();
        }
        let m = Arc::new(SinkMetrics::default());
        sinks.push((name, m.clone()));
        m
    }

    pub fn render(&self, out: &mut String) {
        let sinks = self.sinks.lock().unwrap_or_else(|e| e.into_inner());
        if sinks.is_empty() {
            return;
        }
        let mut family =
            |name: &str,
             kind: &str,
             help: &str,
             value: &dyn Fn(&SinkMetrics) -> Vec<(&'static str, String)>| {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
                for (sink, m) in sinks.iter() {
                    for (extra, v) in value(m) {
                        let _ = writeln!(out, "{name}{{sink=\"{sink}\"{extra}}} {v}");
                    }
                }
            };
        family(
            "ldguard_forward_events_total",
            "counter",
            "Events forwarded: delivered (acknowledged by the receiver) or rejected (refused as malformed, not retried).",
            &|m| {
                vec![
                    (",outcome=\"delivered\"", m.delivered.get().to_string()),
                    (",outcome=\"rejected\"", m.rejected.get().to_string()),
                ]
            },
        );
        family(
            "ldguard_forward_failures_total",
            "counter",
            "Failed delivery attempts (the receiver was down or answered an error); each is retried.",
            &|m| vec![("", m.failures.get().to_string())],
        );
        family(
            "ldguard_forward_lag_events",
            "gauge",
            "Stored event ids after the sink's cursor: events not yet delivered (at most).",
            &|m| vec![("", m.lag_events.load(Ordering::Relaxed).to_string())],
        );
        family(
            "ldguard_forward_lag_seconds",
            "gauge",
            "Age of the oldest event not yet delivered, by the time it was stored.",
            &|m| {
                vec![(
                    "",
                    (m.lag_ms.load(Ordering::Relaxed) as f64 / 1000.0).to_string(),
                )]
            },
        );
        family(
            "ldguard_forward_active",
            "gauge",
            "1 when this process holds the sink's lease and forwards to it.",
            &|m| vec![("", m.active.load(Ordering::Relaxed).to_string())],
        );
    }
}

/// The events of `rows` that may be sent now: the run of consecutive ids
/// right after `cursor`.
///
/// A hole after the cursor is an insert still in flight (PostgreSQL hands
/// out ids before commit, so concurrent batches commit out of order), or
/// ids that will never be stored (a rolled-back batch, retention). Moving
/// past the first kind would lose events, so a hole is waited for, up to
/// `grace` from when it was first seen, then taken as the second kind.
pub fn deliverable(
    cursor: i64,
    mut rows: Vec<StoredEvent>,
    hole: &mut Option<(i64, Instant)>,
    grace: Duration,
    now: Instant,
) -> Vec<StoredEvent> {
    let run = |rows: &[StoredEvent], first: i64| {
        rows.iter()
            .enumerate()
            .take_while(|(i, r)| r.id == first + *i as i64)
            .count()
    };
    let n = run(&rows, cursor + 1);
    if n > 0 || rows.is_empty() {
        *hole = None;
        rows.truncate(n);
        return rows;
    }
    match hole {
        Some((at, since)) if *at == cursor => {
            if now.duration_since(*since) < grace {
                return Vec::new();
            }
            tracing::warn!(
                after = cursor,
                next = rows[0].id,
                "forwarding: event ids {}..{} never appeared; moving on",
                cursor + 1,
                rows[0].id - 1
            );
            *hole = None;
            let n = run(&rows, rows[0].id);
            rows.truncate(n);
            rows
        }
        _ => {
            *hole = Some((cursor, now));
            Vec::new()
        }
    }
}

/// Event JSON per request at most (one event always goes, whatever its
/// size): with `SinkConfig::batch`, what bounds a forwarder's memory.
pub const MAX_BATCH_BYTES: usize = 4 << 20;

/// How many of `rows`, from the first, fit in `limit` bytes of event JSON
/// (at least one).
fn within_bytes(rows: &[StoredEvent], limit: usize) -> usize {
    let mut total = 0;
    rows.iter()
        .position(|r| {
            total += r.body.len();
            total > limit
        })
        .unwrap_or(rows.len())
        .max(1)
}

/// A receiver's answer to one request.
#[derive(Debug)]
enum Outcome {
    /// Acknowledged; an OTLP collector may still report some records
    /// rejected (a partial success), with its reason.
    Delivered { rejected: u64, why: String },
    /// The receiver refused the content (400, 413, 422): another try of
    /// the same bytes would be refused again.
    Refused(String),
    /// Down, overloaded, misconfigured credentials…: try again later.
    Failed(String),
}

struct Sender {
    sink: SinkConfig,
    agent: ldguard_source::ureq::Agent,
}

impl Sender {
    fn new(sink: SinkConfig) -> Result<Sender, String> {
        let agent = ldguard_source::agent(
            sink.ca_file.as_deref(),
            Duration::from_secs(5),
            Duration::from_secs(30),
        )
        .map_err(|e| format!("forwarding to {}: {e}", sink.url))?;
        Ok(Sender { sink, agent })
    }

    /// Encodes and posts `events` (on a blocking thread: ureq is blocking).
    async fn send(&self, events: &[Forwardable]) -> Outcome {
        let (body, content_type) = match self.sink.kind {
            SinkKind::Otlp => (otlp::encode(events), "application/x-protobuf"),
            SinkKind::Loki => (loki::encode(events), "application/json"),
            SinkKind::Webhook => (webhook::encode(events), "application/json"),
        };
        let mut request = self
            .agent
            .post(&self.sink.url)
            .set("Content-Type", content_type);
        if let Some(a) = &self.sink.authorization {
            request = request.set("Authorization", a);
        }
        if let Some(t) = &self.sink.tenant {
            request = request.set("X-Scope-OrgID", t);
        }
        if self.sink.kind == SinkKind::Webhook {
            let first = events.first().map_or(0, |e| e.id);
            let last = events.last().map_or(0, |e| e.id);
            request = request.set(webhook::DELIVERY_HEADER, &format!("{first}-{last}"));
            if let Some(key) = &self.sink.secret {
                request = request.set(webhook::SIGNATURE_HEADER, &webhook::signature(key, &body));
            }
        }
        let otlp = self.sink.kind == SinkKind::Otlp;
        let call = tokio::task::spawn_blocking(move || match request.send_bytes(&body) {
            Ok(response) => {
                let mut answer = Vec::new();
                if otlp {
                    use std::io::Read;
                    let _ = response
                        .into_reader()
                        .take(64 << 10)
                        .read_to_end(&mut answer);
                }
                let (rejected, why) = otlp::rejected(&answer);
                Outcome::Delivered { rejected, why }
            }
            Err(ldguard_source::ureq::Error::Status(code, response)) => {
                let text: String = response
                    .into_string()
                    .unwrap_or_default()
                    .chars()
                    .take(300)
                    .collect();
                let why = format!("HTTP {code}: {}", text.trim());
                if matches!(code, 400 | 413 | 422) {
                    Outcome::Refused(why)
                } else {
                    Outcome::Failed(why)
                }
            }
            Err(e) => Outcome::Failed(e.to_string()),
        });
        call.await
            .unwrap_or_else(|e| Outcome::Failed(format!("the sending thread failed: {e}")))
    }
}

/// Forwarders for `sinks`, stopped through [`Forwarding::stop`].
pub struct Forwarding {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Forwarding {
    /// Starts one forwarder per sink (an https sink whose CA file cannot
    /// be read is an error here, at start, not a silent gap later).
    pub fn start(
        store: &Store,
        sinks: Vec<SinkConfig>,
        metrics: &ForwardMetrics,
    ) -> Result<Forwarding, String> {
        let (stop, stopped) = watch::channel(false);
        let holder = holder_id();
        let mut tasks = Vec::new();
        for sink in sinks {
            let m = metrics.sink(sink.kind.name());
            let sender = Sender::new(sink)?;
            tracing::info!(sink = sender.sink.kind.name(), url = %sender.sink.url, "forwarding every stored event");
            let forwarder = Forwarder {
                store: store.clone(),
                sender,
                metrics: m,
                holder: holder.clone(),
                stopped: stopped.clone(),
                held: None,
            };
            tasks.push(tokio::spawn(forwarder.run()));
        }
        Ok(Forwarding { stop, tasks })
    }

    /// Asks every forwarder to stop after its request in flight, waits
    /// for them (at most `patience`) and gives up their leases.
    pub async fn stop(self, patience: Duration) {
        let _ = self.stop.send(true);
        let all = async {
            for task in self.tasks {
                let _ = task.await;
            }
        };
        if tokio::time::timeout(patience, all).await.is_err() {
            tracing::warn!("forwarding: a request was still in flight at shutdown; it is sent again at the next start");
        }
    }
}

/// This process's name in the lease rows: host, pid and a random part.
fn holder_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let mut random = [0u8; 4];
    let _ = getrandom::getrandom(&mut random);
    format!(
        "{}-{}-{}",
        host.trim(),
        std::process::id(),
        hex::encode(random)
    )
}

struct Forwarder {
    store: Store,
    sender: Sender,
    metrics: Arc<SinkMetrics>,
    holder: String,
    stopped: watch::Receiver<bool>,
    /// The cursor while this process holds the lease, and when the lease
    /// was last renewed.
    held: Option<(i64, Instant)>,
}

impl Forwarder {
    fn name(&self) -> &'static str {
        self.sender.sink.kind.name()
    }

    /// Sleeps `d`, or less if asked to stop; true when asked to stop.
    async fn pause(&mut self, d: Duration) -> bool {
        if *self.stopped.borrow() {
            return true;
        }
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = self.stopped.changed() => {}
        }
        *self.stopped.borrow()
    }

    /// Claims (or renews) the sink's lease; the cursor when this process
    /// holds it. A lease renewed less than a third of its time ago is not
    /// renewed again, so an idle forwarder writes to the database a few
    /// times per lease, not at every look for new events.
    async fn claim(&mut self) -> Result<Option<i64>, sqlx::Error> {
        if let Some((cursor, renewed)) = self.held {
            if renewed.elapsed() < self.sender.sink.lease / 3 {
                return Ok(Some(cursor));
            }
        }
        self.held = None;
        let mut claimed = self.take_lease().await?;
        if !claimed {
            sqlx::query(
                "INSERT INTO forward_cursors (sink, last_id, holder, lease_until_us, updated_us) \
                 VALUES ($1, 0, '', 0, $2) ON CONFLICT (sink) DO NOTHING",
            )
            .bind(self.name())
            .bind(now_us())
            .execute(&self.store.pool)
            .await?;
            claimed = self.take_lease().await?;
        }
        if !claimed {
            return Ok(None);
        }
        let cursor = self.cursor().await?;
        self.held = Some((cursor, Instant::now()));
        Ok(Some(cursor))
    }

    /// One statement, so two processes that both see an expired lease
    /// cannot both take it: the second finds the row changed.
    async fn take_lease(&self) -> Result<bool, sqlx::Error> {
        let now = now_us();
        Ok(sqlx::query(
            "UPDATE forward_cursors SET holder = $2, lease_until_us = $3 \
             WHERE sink = $1 AND (holder = $2 OR lease_until_us < $4)",
        )
        .bind(self.name())
        .bind(&self.holder)
        .bind(now + self.sender.sink.lease.as_micros() as i64)
        .bind(now)
        .execute(&self.store.pool)
        .await?
        .rows_affected()
            == 1)
    }

    async fn cursor(&self) -> Result<i64, sqlx::Error> {
        let row = sqlx::query("SELECT last_id FROM forward_cursors WHERE sink = $1")
            .bind(self.name())
            .fetch_one(&self.store.pool)
            .await?;
        crate::store::col(&row, "last_id")
    }

    /// Moves the cursor to `last` (and renews the lease); false if another
    /// process took the lease.
    async fn advance(&mut self, last: i64) -> Result<bool, sqlx::Error> {
        let now = now_us();
        self.held = None;
        let moved = sqlx::query(
            "UPDATE forward_cursors SET last_id = $3, updated_us = $4, lease_until_us = $5 \
             WHERE sink = $1 AND holder = $2",
        )
        .bind(self.name())
        .bind(&self.holder)
        .bind(last)
        .bind(now)
        .bind(now + self.sender.sink.lease.as_micros() as i64)
        .execute(&self.store.pool)
        .await?
        .rows_affected()
            == 1;
        if moved {
            self.held = Some((last, Instant::now()));
        }
        Ok(moved)
    }

    async fn release(&self) {
        let _ = sqlx::query(
            "UPDATE forward_cursors SET lease_until_us = 0 WHERE sink = $1 AND holder = $2",
        )
        .bind(self.name())
        .bind(&self.holder)
        .execute(&self.store.pool)
        .await;
    }

    /// Updates the lag gauges for a sink whose cursor is `cursor`.
    async fn measure_lag(&self, cursor: i64) {
        if let Ok(last) = self.store.last_event_id().await {
            self.metrics
                .lag_events
                .store((last - cursor).max(0), Ordering::Relaxed);
        }
        if let Ok(next) = self.store.events_after(cursor, 1).await {
            let age = next
                .first()
                .map_or(0, |e| (now_us() - e.received_us) / 1000);
            self.metrics.lag_ms.store(age.max(0), Ordering::Relaxed);
        }
    }

    async fn run(mut self) {
        let sink = self.sender.sink.clone();
        let mut limit = sink.batch;
        let mut backoff = Duration::ZERO;
        let mut hole = None;
        loop {
            if *self.stopped.borrow() {
                break;
            }
            let cursor = match self.claim().await {
                Ok(Some(c)) => {
                    self.metrics.active.store(1, Ordering::Relaxed);
                    c
                }
                Ok(None) => {
                    // Another process forwards; watch its progress and wait.
                    self.metrics.active.store(0, Ordering::Relaxed);
                    if let Ok(c) = self.cursor().await {
                        self.measure_lag(c).await;
                    }
                    if self.pause(sink.lease / 3).await {
                        break;
                    }
                    continue;
                }
                Err(e) => {
                    tracing::warn!(sink = self.name(), error = %e, "forwarding: the database failed; retrying");
                    if self.pause(sink.poll * 4).await {
                        break;
                    }
                    continue;
                }
            };
            let rows = match self.store.events_after(cursor, limit as i64).await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!(sink = self.name(), error = %e, "forwarding: reading events failed; retrying");
                    if self.pause(sink.poll * 4).await {
                        break;
                    }
                    continue;
                }
            };
            let mut rows = deliverable(cursor, rows, &mut hole, sink.gap_grace, Instant::now());
            rows.truncate(within_bytes(&rows, MAX_BATCH_BYTES));
            self.measure_lag(cursor).await;
            if rows.is_empty() {
                if self.pause(sink.poll).await {
                    break;
                }
                continue;
            }
            let batch: Vec<Forwardable> = rows.iter().map(Forwardable::from_stored).collect();
            let last = batch[batch.len() - 1].id;
            match self.sender.send(&batch).await {
                Outcome::Delivered { rejected, why } => {
                    backoff = Duration::ZERO;
                    limit = (limit * 2).min(sink.batch);
                    let rejected = rejected.min(batch.len() as u64);
                    if rejected > 0 {
                        // Which records is not said: sending the batch
                        // again would duplicate the accepted ones.
                        tracing::error!(sink = self.name(), rejected, %why, "forwarding: the collector rejected some records of a batch");
                    }
                    match self.advance(last).await {
                        Ok(true) => {
                            self.metrics.delivered.add(batch.len() as u64 - rejected);
                            self.metrics.rejected.add(rejected);
                        }
                        // Delivered, but the cursor did not move: the
                        // next holder sends this batch again (at least once).
                        Ok(false) => {
                            tracing::warn!(
                                sink = self.name(),
                                "forwarding: another process took over this sink"
                            );
                        }
                        Err(e) => {
                            tracing::warn!(sink = self.name(), error = %e, "forwarding: cannot save the cursor; the batch will be sent again");
                        }
                    }
                }
                Outcome::Refused(why) if batch.len() > 1 => {
                    // Halve until the refused event is alone, so one bad
                    // event does not take its batch down with it.
                    limit = (batch.len() / 2).max(1);
                    tracing::warn!(sink = self.name(), events = batch.len(), %why, "forwarding: the receiver refused a batch; splitting it");
                }
                Outcome::Refused(why) => {
                    tracing::error!(sink = self.name(), id = last, %why, "forwarding: the receiver refused this event; skipping it");
                    if let Ok(true) = self.advance(last).await {
                        self.metrics.rejected.inc();
                    }
                }
                Outcome::Failed(why) => {
                    self.metrics.failures.inc();
                    backoff = (backoff * 2)
                        .max(Duration::from_millis(500))
                        .min(sink.max_backoff);
                    tracing::warn!(sink = self.name(), events = batch.len(), %why, retry_in = ?backoff, "forwarding: delivery failed; will retry");
                    if self.pause(backoff).await {
                        break;
                    }
                }
            }
        }
        self.release().await;
        self.metrics.active.store(0, Ordering::Relaxed);
        tracing::info!(sink = self.name(), "forwarding stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(ids: &[i64]) -> Vec<StoredEvent> {
        ids.iter()
            .map(|&id| StoredEvent {
                id,
                received_us: 0,
                body: String::new(),
            })
            .collect()
    }

    fn ids(rows: &[StoredEvent]) -> Vec<i64> {
        rows.iter().map(|r| r.id).collect()
    }

    #[test]
    fn a_hole_after_the_cursor_is_waited_for_then_passed() {
        let grace = Duration::from_secs(30);
        let t0 = Instant::now();
        let mut hole = None;
        // Consecutive ids go; the run stops at a hole.
        assert_eq!(
            ids(&deliverable(4, rows(&[5, 6, 8]), &mut hole, grace, t0)),
            [5, 6]
        );
        assert!(hole.is_none());
        // 7 may still be committing: nothing goes, for `grace`.
        assert!(deliverable(6, rows(&[8, 9]), &mut hole, grace, t0).is_empty());
        let later = t0 + Duration::from_secs(29);
        assert!(deliverable(6, rows(&[8, 9]), &mut hole, grace, later).is_empty());
        // It committed: it goes first.
        assert_eq!(
            ids(&deliverable(6, rows(&[7, 8, 9]), &mut hole, grace, later)),
            [7, 8, 9]
        );
        assert!(hole.is_none());
        // A hole that lasts past the grace is taken as never stored.
        assert!(deliverable(9, rows(&[12, 13, 15]), &mut hole, grace, t0).is_empty());
        let after = t0 + grace;
        assert_eq!(
            ids(&deliverable(
                9,
                rows(&[12, 13, 15]),
                &mut hole,
                grace,
                after
            )),
            [12, 13]
        );
    }

    #[test]
    fn a_batch_holds_at_most_its_bytes_but_always_one_event() {
        let sized = |sizes: &[usize]| -> Vec<StoredEvent> {
            sizes
                .iter()
                .enumerate()
                .map(|(i, &n)| StoredEvent {
                    id: i as i64 + 1,
                    received_us: 0,
                    body: "x".repeat(n),
                })
                .collect()
        };
        assert_eq!(within_bytes(&sized(&[4, 4, 4]), 10), 2);
        assert_eq!(within_bytes(&sized(&[4, 4]), 8), 2);
        assert_eq!(within_bytes(&sized(&[50, 1]), 10), 1);
    }

    #[test]
    fn image_names_split_into_name_tag_and_digest() {
        assert_eq!(image_parts("shop/web:1.4"), ("shop/web", Some("1.4"), None));
        assert_eq!(
            image_parts("reg:5000/shop/web"),
            ("reg:5000/shop/web", None, None)
        );
        assert_eq!(
            image_parts("reg:5000/web:2@sha256:ab"),
            ("reg:5000/web", Some("2"), Some("sha256:ab"))
        );
    }
}

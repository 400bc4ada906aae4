//! The HTTP sink: events POSTed as JSON arrays, in batches bounded by size
//! and time, with retries from a bounded buffer.
//!
//! [`Sink::write_batch`] only appends to the buffer and [`Sink::flush`] only
//! asks for an early send, so the pipeline's writer thread never waits on
//! the network; waiting for delivery (at exit, before exec) is
//! [`HttpSink::drain`], or [`drain_current`] from outside the writer thread. A sender thread owned
//! by the sink takes batches from the front of the buffer, posts them, and
//! removes them only once the collector answered 2xx, so events leave in
//! order. While the collector is down, new events fill the buffer up to its
//! bound; what does not fit is counted as dropped, and the count is reported
//! in a status event (`"dropped": N`) at the head of the next batch that gets
//! through.

use crate::{format_time, Event, Sink};
use ldguard_source::transport::{Exchange, TransportError};
use ldguard_source::{SourceError, Token};
use std::collections::VecDeque;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How the HTTP sink batches, retries and authenticates.
#[derive(Debug, Clone)]
pub struct HttpSinkConfig {
    pub url: String,
    /// Sent as `Authorization: Bearer …` (the policy server's token).
    pub token: Token,
    /// Extra PEM CA certificates for the collector.
    pub ca_file: Option<PathBuf>,
    /// At most this many events per POST.
    pub max_batch: usize,
    /// An event waits at most this long before its batch is sent.
    pub max_delay: Duration,
    /// Events held while the collector is unreachable; beyond it they are dropped.
    pub buffer: usize,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// Retry delays double from `retry_base` up to `retry_cap`.
    pub retry_base: Duration,
    pub retry_cap: Duration,
}

impl HttpSinkConfig {
    pub fn new(url: impl Into<String>) -> HttpSinkConfig {
        HttpSinkConfig {
            url: url.into(),
            token: Token::None,
            ca_file: None,
            max_batch: 200,
            max_delay: Duration::from_secs(1),
            buffer: 10_000,
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(10),
            retry_base: Duration::from_millis(250),
            retry_cap: Duration::from_secs(10),
        }
    }
}

/// Counters of one sink, for tests and the library's own status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HttpSinkStats {
    /// Events the collector acknowledged (status events included).
    pub delivered: u64,
    /// Events lost: buffer full, refused by the collector, or left at exit.
    pub dropped: u64,
    /// POSTs that failed and were retried.
    pub retries: u64,
}

struct Buffer {
    events: VecDeque<Event>,
    /// When the oldest buffered event arrived.
    oldest: Option<Instant>,
    /// Drops not yet reported to the collector.
    unreported: u64,
    /// A drain is waiting: send everything now, retry without delay.
    flushing: bool,
    /// Send what there is without waiting for `max_delay`.
    send_now: bool,
    stop: bool,
}

struct Shared {
    config: HttpSinkConfig,
    /// The process whose sender thread serves this buffer.
    pid: u32,
    buffer: Mutex<Buffer>,
    /// Signals the sender (new events, flush, stop) and flushers (progress).
    wake: Condvar,
    delivered: AtomicU64,
    dropped: AtomicU64,
    retries: AtomicU64,
}

/// See the module documentation.
pub struct HttpSink {
    shared: Arc<Shared>,
    /// The process that started the sender thread: a forked child has none.
    pid: u32,
    spawn: Spawner,
}

/// Starts the sender thread: named `name`, running the body to its end.
pub type Spawner = fn(name: &'static str, body: Box<dyn FnOnce() + Send>) -> io::Result<()>;

/// [`Spawner`] with `std::thread`.
pub fn std_spawner(name: &'static str, body: Box<dyn FnOnce() + Send>) -> io::Result<()> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(body)
        .map(drop)
}

impl HttpSink {
    pub fn new(config: HttpSinkConfig) -> io::Result<HttpSink> {
        HttpSink::with_spawner(config, std_spawner)
    }

    /// A sink whose sender thread (also a forked child's) `spawn` starts:
    /// the LD_PRELOAD library starts its threads without `std::thread`,
    /// whose start-up code would cost every process loader work.
    pub fn with_spawner(config: HttpSinkConfig, spawn: Spawner) -> io::Result<HttpSink> {
        let shared = Arc::new(Shared::new(config));
        spawn_sender(spawn, shared.clone())?;
        register(&shared);
        Ok(HttpSink {
            shared,
            pid: std::process::id(),
            spawn,
        })
    }

    pub fn stats(&self) -> HttpSinkStats {
        HttpSinkStats {
            delivered: self.shared.delivered.load(Ordering::Relaxed),
            dropped: self.shared.dropped.load(Ordering::Relaxed),
            retries: self.shared.retries.load(Ordering::Relaxed),
        }
    }

    /// After `fork` only the calling thread survives: the child gets its own
    /// buffer and sender. The parent's state is left alone (its mutex may be
    /// held by the sender that did not survive) and its buffered events are
    /// the parent's to send.
    fn ensure_sender(&mut self) -> io::Result<()> {
        if self.pid == std::process::id() {
            return Ok(());
        }
        let fresh = Arc::new(Shared::new(self.shared.config.clone()));
        let old = std::mem::replace(&mut self.shared, fresh);
        std::mem::forget(old);
        self.pid = std::process::id();
        spawn_sender(self.spawn, self.shared.clone())?;
        register(&self.shared);
        Ok(())
    }
}

impl Sink for HttpSink {
    fn write_batch(&mut self, events: &[Event]) -> io::Result<()> {
        self.ensure_sender()?;
        let shared = &self.shared;
        let mut buf = shared.lock();
        let room = shared.config.buffer.saturating_sub(buf.events.len());
        let taken = events.len().min(room);
        buf.events.extend(events[..taken].iter().cloned());
        // A status event that itself reports drops stands for those drops.
        let lost: u64 = events[taken..].iter().map(|e| e.dropped.unwrap_or(1)).sum();
        if lost > 0 {
            buf.unreported += lost;
            shared.dropped.fetch_add(lost, Ordering::Relaxed);
        }
        if taken > 0 && buf.oldest.is_none() {
            buf.oldest = Some(Instant::now());
        }
        drop(buf);
        shared.wake.notify_all();
        Ok(())
    }

    /// Asks the sender to post what is buffered now; does not wait.
    fn flush(&mut self) -> io::Result<()> {
        self.ensure_sender()?;
        self.shared.lock().send_now = true;
        self.shared.wake.notify_all();
        Ok(())
    }
}

impl HttpSink {
    /// Waits until everything buffered is delivered, for at most `timeout`.
    /// What is still undelivered then stays buffered and is reported as an error.
    pub fn drain(&mut self, timeout: Duration) -> io::Result<()> {
        self.ensure_sender()?;
        self.shared.drain(timeout)
    }
}

/// The sink of this process most recently opened, for [`drain_current`].
static CURRENT: AtomicPtr<Shared> = AtomicPtr::new(std::ptr::null_mut());

fn register(shared: &Arc<Shared>) {
    // One reference is leaked on purpose: `drain_current` may run at exit,
    // after the sink itself is gone.
    let raw = Arc::into_raw(shared.clone()) as *mut Shared;
    CURRENT.store(raw, Ordering::Release);
}

/// Drains the HTTP sink of this process, if it has one, for at most
/// `timeout`: for the library's exit and exec paths, which run outside the
/// writer thread that owns the sink.
pub fn drain_current(timeout: Duration) -> io::Result<()> {
    // SAFETY: CURRENT holds null or a pointer from `Arc::into_raw` whose
    // reference is never released.
    let Some(shared) = (unsafe { CURRENT.load(Ordering::Acquire).as_ref() }) else {
        return Ok(());
    };
    if shared.pid != std::process::id() {
        // Inherited across fork: the parent's buffer, with no sender here.
        return Ok(());
    }
    shared.drain(timeout)
}

impl Drop for HttpSink {
    fn drop(&mut self) {
        if self.pid == std::process::id() {
            self.shared.lock().stop = true;
            self.shared.wake.notify_all();
        }
    }
}

impl Shared {
    fn new(config: HttpSinkConfig) -> Shared {
        Shared {
            config,
            pid: std::process::id(),
            buffer: Mutex::new(Buffer {
                events: VecDeque::new(),
                oldest: None,
                unreported: 0,
                flushing: false,
                send_now: false,
                stop: false,
            }),
            wake: Condvar::new(),
            delivered: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            retries: AtomicU64::new(0),
        }
    }

    fn drain(&self, timeout: Duration) -> io::Result<()> {
        let deadline = Instant::now() + timeout;
        let mut buf = self.lock();
        buf.flushing = true;
        self.wake.notify_all();
        while !(buf.stop || buf.events.is_empty() && buf.unreported == 0) {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            buf = self
                .wake
                .wait_timeout(buf, deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        buf.flushing = false;
        let left = buf.events.len();
        if left == 0 {
            return Ok(());
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "event collector {}: {left} events undelivered after {timeout:?}",
                self.config.url
            ),
        ))
    }

    fn lock(&self) -> MutexGuard<'_, Buffer> {
        self.buffer.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn spawn_sender(spawn: Spawner, shared: Arc<Shared>) -> io::Result<()> {
    spawn("ldguard-http-events", Box::new(move || sender(&shared)))
}

/// The sender thread: wait for a full batch, the oldest event's deadline, a
/// flush or stop; post; on failure wait and retry the same batch.
fn sender(shared: &Shared) {
    let config = &shared.config;
    let mut failures = 0u32;
    loop {
        let (batch, reported) = {
            let mut buf = shared.lock();
            loop {
                if buf.stop && (buf.events.is_empty() || !buf.flushing) {
                    return;
                }
                let ready = !buf.events.is_empty() || buf.unreported > 0;
                let due = buf.events.len() >= config.max_batch
                    || buf.flushing
                    || buf.send_now
                    || buf.oldest.is_some_and(|t| t.elapsed() >= config.max_delay);
                if ready && due {
                    break;
                }
                let wait = match buf.oldest {
                    Some(t) => config.max_delay.saturating_sub(t.elapsed()),
                    None => config.max_delay,
                };
                buf = shared
                    .wake
                    .wait_timeout(buf, wait.max(Duration::from_millis(1)))
                    .map(|(g, _)| g)
                    .unwrap_or_else(|p| p.into_inner().0);
            }
            let reported = buf.unreported;
            let mut batch = Vec::with_capacity(config.max_batch + 1);
            if reported > 0 {
                batch.push(drop_report(reported));
            }
            let take = buf.events.len().min(config.max_batch);
            batch.extend(buf.events.iter().take(take).cloned());
            (batch, reported)
        };
        let sent = batch.len() - usize::from(reported > 0);
        match post(shared, &batch) {
            Ok(()) => {
                failures = 0;
                shared
                    .delivered
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                finish(shared, sent, reported);
            }
            Err(Failure::Refused) => {
                // The collector will never take this batch: retrying would
                // block everything behind it.
                failures = 0;
                shared.dropped.fetch_add(sent as u64, Ordering::Relaxed);
                finish(shared, sent, 0);
                shared.lock().unreported += sent as u64;
            }
            Err(Failure::Retry) => {
                failures = failures.saturating_add(1);
                shared.retries.fetch_add(1, Ordering::Relaxed);
                let delay = retry_delay(config.retry_base, config.retry_cap, failures);
                let buf = shared.lock();
                if buf.stop && !buf.flushing {
                    return;
                }
                let _ = shared.wake.wait_timeout(buf, delay);
            }
        }
    }
}

/// Removes what was sent from the front of the buffer.
fn finish(shared: &Shared, sent: usize, reported: u64) {
    let mut buf = shared.lock();
    let sent = sent.min(buf.events.len());
    buf.events.drain(..sent);
    buf.unreported -= reported.min(buf.unreported);
    buf.oldest = if buf.events.is_empty() {
        buf.send_now = false;
        None
    } else {
        Some(Instant::now())
    };
    drop(buf);
    shared.wake.notify_all();
}

enum Failure {
    /// Worth trying again: network, 5xx, 408, 429, 401/403 (tokens rotate).
    Retry,
    /// Any other 4xx: this batch is refused for good.
    Refused,
}

fn post(shared: &Shared, batch: &[Event]) -> Result<(), Failure> {
    let config = &shared.config;
    let body = serde_json::to_vec(batch).map_err(|_| Failure::Refused)?;
    let mut request = Exchange::new("POST", &config.url);
    request.content_type = Some("application/json".to_string());
    request.body = body;
    request.ca_file = config.ca_file.clone();
    request.connect_timeout = config.connect_timeout;
    request.total_timeout = config.request_timeout;
    // The collector's answer is not used.
    request.body_limit = 0;
    match config.token.current() {
        Ok(token) => request.bearer = token,
        Err(SourceError::Token { .. }) | Err(_) => return Err(Failure::Retry),
    }
    match ldguard_source::transport::exchange(&request) {
        Ok(answer) if (200..300).contains(&answer.status) => Ok(()),
        Ok(answer)
            if (400..500).contains(&answer.status)
                && ![401, 403, 408, 429].contains(&answer.status) =>
        {
            Err(Failure::Refused)
        }
        Ok(_) | Err(TransportError::Transport(_)) => Err(Failure::Retry),
        // Without a client (no HTTPS library, unusable CA file) nothing can ever be sent.
        Err(TransportError::Config { .. } | TransportError::Unavailable(_)) => {
            Err(Failure::Refused)
        }
    }
}

fn retry_delay(base: Duration, cap: Duration, failures: u32) -> Duration {
    let nominal = base
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(cap);
    // Equal jitter from the clock's low bits: spread, not secrecy.
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    nominal / 2 + nominal / 2 * (nanos % 1000) / 1000
}

/// The status event that tells the collector how many events it will never see.
fn drop_report(count: u64) -> Event {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    // SAFETY: getppid and getuid have no preconditions and cannot fail.
    let (ppid, uid) = unsafe { (libc::getppid(), libc::getuid()) };
    Event {
        time: format_time(now.as_secs() as i64, now.subsec_nanos()),
        pid: std::process::id(),
        ppid: ppid as u32,
        uid,
        program: std::fs::read_link("/proc/self/exe")
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        call: "ldguard".into(),
        kind: "status".into(),
        action: "allow".into(),
        severity: "low".into(),
        dropped: Some(count),
        message: format!(
            "{count} events were lost while the event collector was unreachable or the buffer full"
        ),
        ..Event::default()
    }
}

//! The refresh state machine shared by all processes of a container.

use crate::backoff;
use crate::cache::{sha256_hex, CacheDir, Envelope, FetchLock, Rejected};
use crate::error::{CacheError, SourceError};
use crate::http::{Fetched, HttpClient};
use crate::location::{Location, Token};
use std::fmt;
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How to reach a policy and how often to look again.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    pub location: Location,
    /// Shared cache directory; `None` keeps everything in this process.
    pub cache_dir: Option<PathBuf>,
    /// Extra PEM CA certificates trusted for the policy server.
    pub ca_file: Option<PathBuf>,
    pub token: Token,
    /// A cached answer younger than this is used without asking the server.
    pub refresh: Duration,
    pub connect_timeout: Duration,
    /// Bound on one whole request: DNS, connect, TLS, headers and body.
    pub total_timeout: Duration,
    /// First delay after a failure; doubles per failure up to `backoff_cap`.
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Larger answers are refused.
    pub max_policy_bytes: usize,
}

impl SourceConfig {
    /// Defaults for everything but the location: 30 s refresh, 5 s connect,
    /// 15 s total, backoff from the refresh interval up to 5 minutes.
    pub fn new(location: Location) -> SourceConfig {
        let mut config = SourceConfig {
            location,
            cache_dir: Some(PathBuf::from(crate::cache::DEFAULT_CACHE_DIR)),
            ca_file: None,
            token: Token::None,
            refresh: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(15),
            backoff_base: Duration::ZERO,
            backoff_cap: Duration::ZERO,
            max_policy_bytes: 4 << 20,
        };
        config.set_refresh(Duration::from_secs(30));
        config
    }

    /// Sets the interval and derives the backoff from it: a failed fetch is
    /// retried after about one interval, then 2, 4, ... up to ten intervals
    /// (at most 5 minutes, never less than one interval).
    pub fn set_refresh(&mut self, refresh: Duration) {
        let refresh = refresh.max(Duration::from_millis(100));
        self.refresh = refresh;
        self.backoff_base = refresh;
        self.backoff_cap = refresh
            .saturating_mul(10)
            .min(Duration::from_secs(300))
            .max(refresh);
    }
}

/// Where an accepted policy text came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    File(PathBuf),
    Cache(PathBuf),
    Server(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(p) => write!(f, "file {}", p.display()),
            Origin::Cache(p) => write!(f, "cache {}", p.display()),
            Origin::Server(u) => write!(f, "server {u}"),
        }
    }
}

/// A policy that passed the caller's validation.
#[derive(Debug)]
pub struct Update<T> {
    /// What the validation callback made of the text.
    pub value: T,
    pub origin: Origin,
    pub etag: Option<String>,
    pub sha256: String,
    /// False for a cached answer older than the refresh interval.
    pub fresh: bool,
}

/// The result of one [`Source::refresh`].
#[derive(Debug)]
pub enum RefreshOutcome<T> {
    /// Nothing new for this process; no fetch was due or another process fetches.
    Unchanged,
    /// The server confirmed what this process already has (304, or the same bytes).
    NotModified,
    /// A different policy passed validation: swap it in.
    Updated(Update<T>),
    /// Nothing usable came back; keep the last good policy. Reported once per
    /// attempt by the fetching process only; a rejected answer is not reported
    /// again while the server keeps sending it.
    Failed(SourceError),
}

/// Counters of this process's `Source`, for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests sent to the server.
    pub requests: u64,
    /// 304 answers (and 200 answers with unchanged bytes).
    pub not_modified: u64,
    /// Calls of the validation callback, i.e. policy parses.
    pub parses: u64,
    /// Answers the validation callback refused.
    pub rejected: u64,
    /// Attempts that ended without an answer or with an error status.
    pub failures: u64,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    not_modified: AtomicU64,
    parses: AtomicU64,
    rejected: AtomicU64,
    failures: AtomicU64,
}

#[derive(Default)]
struct ProcessState {
    /// SHA-256 of the text last handed to the caller.
    delivered: Option<String>,
    /// A text the caller read itself at start-up; hashed into `delivered` on
    /// the first look at the state, so a process that never refreshes never
    /// pays for the hash.
    start_up_text: Option<String>,
    /// SHA-256 of a text this process refused, so it is not re-parsed.
    refused: Option<String>,
    /// Stand-in for the shared envelope when there is no usable cache directory.
    memory: Option<Envelope>,
}

/// A policy source. Cheap to create: nothing touches the network until a
/// fetch is due, and the TLS set-up happens then (see `transport`).
pub struct Source {
    config: SourceConfig,
    cache: Result<CacheDir, Option<CacheError>>,
    state: Mutex<ProcessState>,
    counters: Counters,
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Source")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Source {
    /// A cache directory that cannot be used is not fatal: the source then
    /// keeps its state in memory, and [`Source::cache_error`] says why.
    pub fn new(config: SourceConfig) -> Source {
        let cache = match (&config.location, &config.cache_dir) {
            (Location::Http(_), Some(dir)) => CacheDir::open(dir).map_err(Some),
            _ => Err(None),
        };
        Source {
            config,
            cache,
            state: Mutex::new(ProcessState::default()),
            counters: Counters::default(),
        }
    }

    /// A new `Source` for a forked child: the same configuration and the
    /// knowledge of what the parent had delivered, none of its locks or
    /// connections (which may have been held by a thread that did not survive).
    pub fn for_child(&self) -> Source {
        let child = Source::new(self.config.clone());
        if let Ok(state) = self.state.try_lock() {
            let mut mine = child.lock_state();
            mine.delivered = state.delivered.clone();
            mine.start_up_text = state.start_up_text.clone();
            mine.refused = state.refused.clone();
        }
        child
    }

    pub fn config(&self) -> &SourceConfig {
        &self.config
    }

    /// The shared cache, when there is one and it is usable.
    pub fn shared_cache(&self) -> Option<&CacheDir> {
        self.cache.as_ref().ok()
    }

    /// Why a configured cache directory is not used.
    pub fn cache_error(&self) -> Option<&CacheError> {
        self.cache.as_ref().err().and_then(Option::as_ref)
    }

    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        Stats {
            requests: c.requests.load(Ordering::Relaxed),
            not_modified: c.not_modified.load(Ordering::Relaxed),
            parses: c.parses.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
            failures: c.failures.load(Ordering::Relaxed),
        }
    }

    /// The cached policy for this source, fresh or not, validated. No network,
    /// no lock: this is what a process uses at start-up. `Ok(None)` when there
    /// is no cache entry for this source.
    pub fn read_cache<T>(
        &self,
        validate: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<Update<T>>, SourceError> {
        let Ok(cache) = &self.cache else {
            return Ok(None);
        };
        let Some(envelope) = self.matching(cache.read()?) else {
            return Ok(None);
        };
        let fresh = self.is_fresh(&envelope, now_ms());
        let mut state = self.lock_state();
        match self.accept_cached(&mut state, cache, &envelope, validate, fresh) {
            RefreshOutcome::Updated(update) => Ok(Some(update)),
            RefreshOutcome::Failed(e) => Err(e),
            _ => Ok(None),
        }
    }

    /// Records that the caller already holds `text` (it read the source itself
    /// at start-up), so the next [`Source::refresh`] reports it as unchanged
    /// instead of delivering the same policy a second time.
    pub fn already_delivered(&self, text: String) {
        self.raw_state().start_up_text = Some(text);
    }

    /// As [`Source::already_delivered`], given the text's SHA-256 (hex)
    /// instead of the text.
    pub fn already_delivered_sha256(&self, sha256_hex: String) {
        let mut state = self.raw_state();
        state.start_up_text = None;
        state.delivered = Some(sha256_hex);
    }

    /// Looks for a newer policy: re-reads a file source; for HTTP, fetches if
    /// the shared cache is older than the refresh interval (and no backoff
    /// holds), else takes what another process cached. Never waits for another
    /// process: when the fetch lock is taken, the cache is read as it is.
    pub fn refresh<T>(
        &self,
        validate: impl FnOnce(&str) -> Result<T, String>,
    ) -> RefreshOutcome<T> {
        let mut state = self.lock_state();
        match &self.config.location {
            Location::File(path) => self.refresh_file(&mut state, path, validate),
            Location::Http(url) => match &self.cache {
                Ok(cache) => self.refresh_shared(&mut state, cache, url, validate),
                Err(_) => self.refresh_memory(&mut state, url, validate),
            },
        }
    }

    fn lock_state(&self) -> MutexGuard<'_, ProcessState> {
        let mut state = self.raw_state();
        if let Some(text) = state.start_up_text.take() {
            state.delivered = Some(sha256_hex(text.as_bytes()));
        }
        state
    }

    fn raw_state(&self) -> MutexGuard<'_, ProcessState> {
        // A panic while holding the lock leaves plain data behind: keep going.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn refresh_file<T>(
        &self,
        state: &mut ProcessState,
        path: &std::path::Path,
        validate: impl FnOnce(&str) -> Result<T, String>,
    ) -> RefreshOutcome<T> {
        let read = std::fs::File::open(path).and_then(|f| {
            let mut text = String::new();
            f.take(self.config.max_policy_bytes as u64 + 1)
                .read_to_string(&mut text)
                .map(|_| text)
        });
        let text = match read {
            Ok(t) if t.len() > self.config.max_policy_bytes => {
                return RefreshOutcome::Failed(SourceError::TooLarge {
                    url: path.display().to_string(),
                    limit: self.config.max_policy_bytes,
                })
            }
            Ok(t) => t,
            Err(err) => {
                return RefreshOutcome::Failed(SourceError::Read {
                    path: path.to_path_buf(),
                    err,
                })
            }
        };
        let sha = sha256_hex(text.as_bytes());
        if state.delivered.as_ref() == Some(&sha) || state.refused.as_ref() == Some(&sha) {
            return RefreshOutcome::Unchanged;
        }
        let origin = Origin::File(path.to_path_buf());
        self.validate_new(state, &text, sha, None, origin, true, validate)
    }

    fn refresh_shared<T>(
        &self,
        state: &mut ProcessState,
        cache: &CacheDir,
        url: &str,
        validate: impl FnOnce(&str) -> Result<T, String>,
    ) -> RefreshOutcome<T> {
        let now = now_ms();
        let envelope = match self.read_shared(cache) {
            Ok(e) => e,
            Err(e) => return RefreshOutcome::Failed(e.into()),
        };
        if !self.due(envelope.as_ref(), now) {
            return self.offer_envelope(state, envelope.as_ref(), false, validate);
        }
        let lock: FetchLock = match cache.try_lock() {
            Ok(Some(lock)) => lock,
            Ok(None) => return self.offer_envelope(state, envelope.as_ref(), false, validate),
            Err(e) => return RefreshOutcome::Failed(e.into()),
        };
        // Another process may have finished a fetch between our read and the lock.
        let envelope = match self.read_shared(cache) {
            Ok(e) => e,
            Err(e) => return RefreshOutcome::Failed(e.into()),
        };
        if !self.due(envelope.as_ref(), now) {
            drop(lock);
            return self.offer_envelope(state, envelope.as_ref(), false, validate);
        }
        let mut envelope = envelope.unwrap_or_else(|| Envelope::empty(url));
        // Count the attempt before making it: if this process dies mid-fetch
        // (a short program exiting), the others still wait for the backoff.
        self.claim(&mut envelope, now);
        if let Err(e) = cache.write(&envelope) {
            return RefreshOutcome::Failed(e.into());
        }
        let outcome = self.fetch_into(state, &mut envelope, url, validate);
        let written = cache.write(&envelope);
        drop(lock);
        match (outcome, written) {
            (o @ (RefreshOutcome::Updated(_) | RefreshOutcome::Failed(_)), _) => o,
            (o, Ok(())) => o,
            (_, Err(e)) => RefreshOutcome::Failed(e.into()),
        }
    }

    fn refresh_memory<T>(
        &self,
        state: &mut ProcessState,
        url: &str,
        validate: impl FnOnce(&str) -> Result<T, String>,
    ) -> RefreshOutcome<T> {
        let now = now_ms();
        if !self.due(state.memory.as_ref(), now) {
            return RefreshOutcome::Unchanged;
        }
        let mut envelope = state.memory.take().unwrap_or_else(|| Envelope::empty(url));
        self.claim(&mut envelope, now);
        let outcome = self.fetch_into(state, &mut envelope, url, validate);
        state.memory = Some(envelope);
        outcome
    }

    /// The shared envelope for this source. A corrupt one counts as absent:
    /// the next fetch replaces it.
    fn read_shared(&self, cache: &CacheDir) -> Result<Option<Envelope>, CacheError> {
        match cache.read() {
            Ok(e) => Ok(self.matching(e)),
            Err(CacheError::Corrupt { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn matching(&self, envelope: Option<Envelope>) -> Option<Envelope> {
        let Location::Http(url) = &self.config.location else {
            return None;
        };
        envelope.filter(|e| &e.meta.source == url)
    }

    fn refresh_ms(&self) -> u64 {
        self.config.refresh.as_millis() as u64
    }

    fn due(&self, envelope: Option<&Envelope>, now: u64) -> bool {
        let Some(meta) = envelope.map(|e| &e.meta) else {
            return true;
        };
        if now < meta.retry_at_ms {
            return false;
        }
        let refresh = self.refresh_ms();
        // A fetch time in the future means the clock went back: refetch.
        meta.fetched_at_ms == 0
            || now.saturating_sub(meta.fetched_at_ms) >= refresh
            || meta.fetched_at_ms > now.saturating_add(refresh)
    }

    /// Confirmed by the server less than one interval ago.
    fn is_fresh(&self, envelope: &Envelope, now: u64) -> bool {
        let at = envelope.meta.fetched_at_ms;
        at != 0 && at <= now.saturating_add(1000) && now.saturating_sub(at) < self.refresh_ms()
    }

    fn claim(&self, envelope: &mut Envelope, now: u64) {
        let meta = &mut envelope.meta;
        meta.failures = meta.failures.saturating_add(1);
        let delay = backoff::delay(
            self.config.backoff_base,
            self.config.backoff_cap,
            meta.failures,
        );
        meta.retry_at_ms = now.saturating_add(delay.as_millis() as u64);
    }

    fn client(&self) -> HttpClient {
        HttpClient {
            ca_file: self.config.ca_file.clone(),
            connect_timeout: self.config.connect_timeout,
            total_timeout: self.config.total_timeout,
        }
    }

    /// One request; updates `envelope` with what was learnt.
    fn fetch_into<T>(
        &self,
        state: &mut ProcessState,
        envelope: &mut Envelope,
        url: &str,
        validate: impl FnOnce(&str) -> Result<T, String>,
    ) -> RefreshOutcome<T> {
        // Ask about the rejected answer when there is one: a 304 then means
        // "still that bad policy", which needs neither a parse nor a report.
        let conditional = match (&envelope.meta.rejected, &envelope.policy) {
            (Some(rejected), _) => rejected.etag.clone(),
            (None, Some(_)) => envelope.meta.etag.clone(),
            (None, None) => None,
        };
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let fetched = self.client().get(
            url,
            conditional.as_deref(),
            &self.config.token,
            self.config.max_policy_bytes,
        );
        let now = now_ms();
        let (bytes, etag) = match fetched {
            Err(e) => {
                self.counters.failures.fetch_add(1, Ordering::Relaxed);
                envelope.meta.last_error = Some(e.to_string());
                return RefreshOutcome::Failed(e);
            }
            Ok(Fetched::NotModified) => {
                mark_success(envelope, now);
                self.counters.not_modified.fetch_add(1, Ordering::Relaxed);
                return self.offer_envelope(state, Some(envelope), true, validate);
            }
            Ok(Fetched::Body { text, etag }) => (text, etag),
        };
        mark_success(envelope, now);
        let sha = sha256_hex(&bytes);
        if envelope.policy.is_some() && envelope.meta.sha256.as_ref() == Some(&sha) {
            // The server ignores If-None-Match but the bytes are the same.
            envelope.meta.etag = etag;
            self.counters.not_modified.fetch_add(1, Ordering::Relaxed);
            return self.offer_envelope(state, Some(envelope), true, validate);
        }
        if let Some(rejected) = envelope.meta.rejected.as_mut().filter(|r| r.sha256 == sha) {
            rejected.etag = etag;
            self.counters.not_modified.fetch_add(1, Ordering::Relaxed);
            return self.offer_envelope(state, Some(envelope), true, validate);
        }
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(_) => {
                self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                let reason = "the answer is not UTF-8 text".to_string();
                envelope.meta.rejected = Some(Rejected {
                    etag,
                    sha256: sha,
                    at_ms: now,
                    reason: reason.clone(),
                });
                return RefreshOutcome::Failed(SourceError::Invalid {
                    origin: url.to_string(),
                    message: reason,
                });
            }
        };
        self.counters.parses.fetch_add(1, Ordering::Relaxed);
        match validate(&text) {
            Ok(value) => {
                envelope.policy = Some(text);
                envelope.meta.sha256 = Some(sha.clone());
                envelope.meta.etag = etag.clone();
                envelope.meta.rejected = None;
                state.delivered = Some(sha.clone());
                RefreshOutcome::Updated(Update {
                    value,
                    origin: Origin::Server(url.to_string()),
                    etag,
                    sha256: sha,
                    fresh: true,
                })
            }
            Err(message) => {
                self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                envelope.meta.rejected = Some(Rejected {
                    etag,
                    sha256: sha,
                    at_ms: now,
                    reason: message.clone(),
                });
                RefreshOutcome::Failed(SourceError::Invalid {
                    origin: url.to_string(),
                    message,
                })
            }
        }
    }

    /// Hands the envelope's policy to the caller unless it already has it.
    /// `confirmed`: the server vouched for it just now (so "same" is `NotModified`).
    fn offer_envelope<T>(
        &self,
        state: &mut ProcessState,
        envelope: Option<&Envelope>,
        confirmed: bool,
        validate: impl FnOnce(&str) -> Result<T, String>,
    ) -> RefreshOutcome<T> {
        let same = if confirmed {
            RefreshOutcome::NotModified
        } else {
            RefreshOutcome::Unchanged
        };
        let Some(envelope) = envelope else {
            return same;
        };
        let fresh = self.is_fresh(envelope, now_ms());
        let Some(cache) = self.shared_cache() else {
            // In memory the envelope's policy was delivered when it was fetched.
            return same;
        };
        match self.accept_cached(state, cache, envelope, validate, fresh) {
            RefreshOutcome::Unchanged => same,
            other => other,
        }
    }

    fn accept_cached<T>(
        &self,
        state: &mut ProcessState,
        cache: &CacheDir,
        envelope: &Envelope,
        validate: impl FnOnce(&str) -> Result<T, String>,
        fresh: bool,
    ) -> RefreshOutcome<T> {
        let Some(text) = &envelope.policy else {
            return RefreshOutcome::Unchanged;
        };
        let sha = envelope
            .meta
            .sha256
            .clone()
            .unwrap_or_else(|| sha256_hex(text.as_bytes()));
        if state.delivered.as_ref() == Some(&sha) || state.refused.as_ref() == Some(&sha) {
            return RefreshOutcome::Unchanged;
        }
        let origin = Origin::Cache(cache.path().to_path_buf());
        self.validate_new(
            state,
            text,
            sha,
            envelope.meta.etag.clone(),
            origin,
            fresh,
            validate,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn validate_new<T>(
        &self,
        state: &mut ProcessState,
        text: &str,
        sha: String,
        etag: Option<String>,
        origin: Origin,
        fresh: bool,
        validate: impl FnOnce(&str) -> Result<T, String>,
    ) -> RefreshOutcome<T> {
        self.counters.parses.fetch_add(1, Ordering::Relaxed);
        match validate(text) {
            Ok(value) => {
                state.delivered = Some(sha.clone());
                RefreshOutcome::Updated(Update {
                    value,
                    origin,
                    etag,
                    sha256: sha,
                    fresh,
                })
            }
            Err(message) => {
                self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                state.refused = Some(sha);
                RefreshOutcome::Failed(SourceError::Invalid {
                    origin: origin.to_string(),
                    message,
                })
            }
        }
    }
}

fn mark_success(envelope: &mut Envelope, now: u64) {
    let meta = &mut envelope.meta;
    meta.fetched_at_ms = now;
    meta.failures = 0;
    meta.retry_at_ms = 0;
    meta.last_error = None;
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

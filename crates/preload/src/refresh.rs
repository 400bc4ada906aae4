//! Policy distribution inside the library (docs/distribution.md): the start-up read of the
//! shared cache and the background refresher that swaps whole rule tables.
//!
//! - Start-up ([`cached_policy`]): an HTTP policy is never fetched on a hooked
//!   path. The shared cache entry for the configured URL is used when there is
//!   one, fresh or stale: it is the server's latest word, newer than anything
//!   baked into the image. Without one, `state` falls back to the baked policy.
//! - Refresher ([`start`]): one thread per process, internal for life (see
//!   `guard`: its own file and network calls are not checked, and it runs
//!   with every signal blocked). Every
//!   `refreshSeconds` it asks [`Source::refresh`], which fetches only when the
//!   shared cache is due (one process per container does, under `flock`) and
//!   otherwise reads what another process cached. A new policy is compiled on
//!   this thread and published with [`active::install`]: the hooks see the new
//!   table and mode from their next call.
//! - A policy file: the thread starts only after the process has made
//!   `FILE_CALLS_BEFORE_START` hooked calls (the countdown below), so
//!   short-lived processes never become multi-threaded; it reports a policy
//!   only when the file changed from what start-up read.
//! - Fork: the thread does not survive. An atfork handler arms a countdown;
//!   the child's [`poll`] (one relaxed load on every hooked call) starts a new
//!   refresher after a few hooked calls, so a child that only execs never
//!   pays for a thread.
//! - Exit: a process that is mid-fetch (the one short process per interval
//!   that won the lock) waits for the fetch, bounded, so the cache is written
//!   and the next processes do not have to fetch again.

use crate::active;
use crate::config::{self, Settings};
use crate::emit;
use crate::guard::{self, Internal};
use ldguard_policy::{compile_str, compile_str_for_program, RuleTable};
use ldguard_source::{Location, RefreshOutcome, Source, SourceConfig};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Hooked calls a forked child makes before it starts its own refresher.
const CHILD_CALLS_BEFORE_START: u32 = 16;
/// Hooked calls a process with a policy *file* makes before it starts its
/// refresher. Re-reading a file is only worth a thread in a process that
/// lives and works a while; `/bin/true` or one stage of a shell pipeline
/// exits long before, and stays single-threaded.
const FILE_CALLS_BEFORE_START: u32 = 64;
/// Longest wait at exit for a fetch in progress.
const EXIT_WAIT: Duration = Duration::from_secs(3);

/// The process's source; leaked, replaced (never freed) in a forked child.
static SOURCE: AtomicPtr<Source> = AtomicPtr::new(std::ptr::null_mut());
/// Countdown armed in a forked child; 0 when nothing is to be started.
static RESTART: AtomicU32 = AtomicU32::new(0);
/// The process the countdown belongs to (a vfork child shares our memory).
static RESTART_PID: AtomicI32 = AtomicI32::new(0);
static REGISTERED: AtomicBool = AtomicBool::new(false);
/// Set while the refresher is inside `Source::refresh`, and from start-up
/// until its first refresh when that is likely to fetch (no fresh cache).
static IN_FLIGHT: AtomicBool = AtomicBool::new(false);
/// The start-up read found no fresh cache entry: this process may fetch.
static FETCH_LIKELY: AtomicBool = AtomicBool::new(false);

/// The policy to use at start-up from the shared cache, for an HTTP policy
/// location: `None` when there is no usable cache entry, with the reason.
pub fn cached_policy(
    settings: &Settings,
    url: &str,
    program: &[u8],
) -> Result<(RuleTable, String), String> {
    let source = source_for(settings)?;
    let found = source
        .read_cache(|text| compile_str_for_program(text, url, program).map_err(|d| d.to_string()));
    let fresh = matches!(&found, Ok(Some(update)) if update.fresh);
    FETCH_LIKELY.store(!fresh && source.shared_cache().is_some(), Ordering::Relaxed);
    match found {
        Ok(Some(update)) => {
            let age = if update.fresh {
                "fresh"
            } else {
                "stale, refreshing"
            };
            Ok((update.value, format!("{url} (cached, {age})")))
        }
        Ok(None) => Err(format!(
            "{url}: no cached copy yet; fetching it in the background"
        )),
        Err(e) => Err(format!("{e}; fetching it again in the background")),
    }
}

/// Starts the refresher when the configuration names a policy location.
/// Called once the start-up policy (or fallback) is in force.
pub fn start() {
    let Some(process) = active::process() else {
        return;
    };
    if process.settings.policy.is_none() {
        return;
    }
    let Ok(source) = source_for(&process.settings) else {
        return;
    };
    if !REGISTERED.swap(true, Ordering::AcqRel) {
        // SAFETY: registration of `extern "C"` handlers that touch only
        // atomics (child after fork) or wait, bounded, on an atomic (exit).
        unsafe {
            libc::pthread_atfork(None, None, Some(after_fork_in_child));
            libc::atexit(at_exit);
        }
    }
    if matches!(source.config().location, Location::File(_)) {
        RESTART_PID.store(crate::sys::getpid(), Ordering::Relaxed);
        RESTART.store(FILE_CALLS_BEFORE_START, Ordering::Release);
        return;
    }
    // A short process that may be the container's fetcher this interval
    // waits at exit for its first refresh, even if the thread has not been
    // scheduled yet; otherwise its claim would hold the others off for nothing.
    if FETCH_LIKELY.load(Ordering::Relaxed) {
        IN_FLIGHT.store(true, Ordering::Release);
    }
    spawn();
}

/// The start-up read of a policy file found `text`: the refresher reports
/// only a change from it.
pub fn started_with(settings: &Settings, text: String) {
    if let Ok(source) = source_for(settings) {
        source.already_delivered(text);
    }
}

/// As [`started_with`], for a start-up that took a compiled table of the
/// policy instead of its text: the table records the text's SHA-256.
pub fn started_with_sha256(settings: &Settings, sha256_hex: String) {
    if let Ok(source) = source_for(settings) {
        source.already_delivered_sha256(sha256_hex);
    }
}

/// Called at the top of every hook: starts the refresher after a few hooked
/// calls in a forked child, or in a process with a policy file. One relaxed load when there is nothing to do.
#[inline]
pub fn poll() {
    if RESTART.load(Ordering::Relaxed) != 0 {
        start_after_countdown();
    }
}

#[cold]
fn start_after_countdown() {
    let previous = RESTART.fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| n.checked_sub(1));
    if previous != Ok(1) {
        return;
    }
    if RESTART_PID.load(Ordering::Relaxed) != crate::sys::getpid() {
        // A vfork child running on its parent's memory: never start a thread here.
        RESTART.store(1, Ordering::Relaxed);
        return;
    }
    // Only from the program's own call, never from a check a signal
    // handler interrupted: starting a thread allocates.
    if guard::check_depth() != 0 {
        RESTART.store(1, Ordering::Relaxed);
        return;
    }
    let Some(_section) = Internal::enter() else {
        RESTART.store(1, Ordering::Relaxed);
        return;
    };
    // The parent's source may have been locked by its refresher, which did
    // not survive the fork: carry over what it knew into a fresh one.
    // SAFETY: SOURCE holds null or a leaked, never-freed Source.
    if let Some(old) = unsafe { SOURCE.load(Ordering::Acquire).as_ref() } {
        SOURCE.store(Box::into_raw(Box::new(old.for_child())), Ordering::Release);
    }
    spawn();
}

extern "C" fn after_fork_in_child() {
    IN_FLIGHT.store(false, Ordering::Relaxed);
    RESTART_PID.store(crate::sys::getpid(), Ordering::Relaxed);
    RESTART.store(CHILD_CALLS_BEFORE_START, Ordering::Release);
}

extern "C" fn at_exit() {
    let deadline = Instant::now() + EXIT_WAIT;
    while IN_FLIGHT.load(Ordering::Acquire) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn spawn() {
    let spawned = guard::spawn_library_thread("ldguard-refresh", 512 * 1024, || {
        let _ = std::panic::catch_unwind(refresher);
        IN_FLIGHT.store(false, Ordering::Release);
    });
    if spawned.is_err() {
        // No thread (RLIMIT_NPROC): the start-up policy stays; never wait at exit.
        IN_FLIGHT.store(false, Ordering::Release);
    }
}

fn refresher() {
    // SAFETY: as in `start_after_countdown`.
    let Some(source) = (unsafe { SOURCE.load(Ordering::Acquire).as_ref() }) else {
        return;
    };
    let interval = source.config().refresh;
    if source.shared_cache().is_none() && matches!(source.config().location, Location::Http(_)) {
        // No shared cache: every process would fetch for itself, so short
        // processes must not. Only one that lives a while asks the server.
        std::thread::sleep(interval.min(Duration::from_secs(2)));
        if let Some(e) = source.cache_error() {
            emit::status(&format!(
                "{e}; without a shared cache this process fetches for itself"
            ));
        }
    }
    let origin = source.config().location.describe();
    loop {
        IN_FLIGHT.store(true, Ordering::Release);
        let outcome = source.refresh(|text| compile(text, &origin));
        match outcome {
            RefreshOutcome::Updated(update) => {
                let what = format!(
                    "policy {:?} (mode {}) from {} now in force",
                    update.value.name(),
                    update.value.mode().as_str(),
                    update.origin
                );
                active::install(update.value, update.origin.to_string());
                emit::status(&what);
            }
            RefreshOutcome::Failed(e) => emit::status(&format!("{e}; keeping the policy in force")),
            RefreshOutcome::Unchanged | RefreshOutcome::NotModified => {}
        }
        // Only now: the report above must be queued before an exit may proceed.
        IN_FLIGHT.store(false, Ordering::Release);
        std::thread::sleep(interval);
    }
}

fn compile(text: &str, origin: &str) -> Result<RuleTable, String> {
    compile_str(text, origin).map_err(|d| d.to_string())
}

/// The process's [`Source`], made on first use from the settings.
fn source_for(settings: &Settings) -> Result<&'static Source, String> {
    // SAFETY: as in `start_after_countdown`.
    if let Some(s) = unsafe { SOURCE.load(Ordering::Acquire).as_ref() } {
        return Ok(s);
    }
    let location = settings
        .policy
        .as_deref()
        .ok_or("no policy location configured")?;
    let location = Location::parse(location).map_err(|e| e.to_string())?;
    let mut config = SourceConfig::new(location);
    config.set_refresh(Duration::from_secs(
        settings.refresh_seconds.unwrap_or(30).max(1),
    ));
    config.cache_dir = Some(PathBuf::from(
        settings
            .cache_dir
            .as_deref()
            .unwrap_or(ldguard_source::DEFAULT_CACHE_DIR),
    ));
    config.ca_file = settings.ca_file.as_deref().map(PathBuf::from);
    let (token, note) = config::token(settings);
    if let Some(note) = note {
        emit::status(&note);
    }
    config.token = token;
    let fresh = Box::into_raw(Box::new(Source::new(config)));
    match SOURCE.compare_exchange(
        std::ptr::null_mut(),
        fresh,
        Ordering::AcqRel,
        Ordering::Acquire,
    ) {
        // SAFETY: just published; never freed.
        Ok(_) => Ok(unsafe { &*fresh }),
        Err(existing) => {
            // SAFETY: `fresh` was never shared; `existing` is leaked like ours.
            unsafe {
                drop(Box::from_raw(fresh));
                Ok(&*existing)
            }
        }
    }
}

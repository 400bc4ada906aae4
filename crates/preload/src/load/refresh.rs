//! Policy distribution inside the library (docs/distribution.md): the
//! background refresher that swaps whole rule tables. `emit` and `record`
//! never call into it, and start-up (`state`) only starts it at its end:
//! what start-up reads and records (the shared cache, the text it
//! delivered) is in `policy_source`, below both.
//!
//! - Refresher ([`start`]): one thread per process, internal for life (see
//!   `guard`: its own file and network calls are not checked, and it runs
//!   with every signal blocked). Every
//!   `refreshSeconds` it asks `Source::refresh`, which fetches only when the
//!   shared cache is due (one process per container does, under `flock`) and
//!   otherwise reads what another process cached. A new policy is compiled on
//!   this thread and published with [`active::install`]: the hooks see the new
//!   table and mode from their next call.
//! - A policy file: the thread starts only once `refreshSeconds` have
//!   passed since start-up, at a hooked call (the clock is read once per
//!   `FILE_CALLS_BEFORE_START` calls, the countdown below), so a process that
//!   lives less than one interval never becomes multi-threaded (glibc makes
//!   every cancellable call of a multi-threaded process dearer); it reports a
//!   policy only when the file changed from what start-up read.
//! - Fork: the thread does not survive. An atfork handler arms a countdown;
//!   the child's [`poll`] (one relaxed load on every hooked call) starts a new
//!   refresher after a few hooked calls, so a child that only execs never
//!   pays for a thread.
//! - Exit: a process that is mid-fetch (the one short process per interval
//!   that won the lock) waits for the fetch, bounded, so the cache is written
//!   and the next processes do not have to fetch again.

use crate::events::direct::CHILD_WRITES;
use crate::events::emit;
use crate::load::policy_source;
use crate::os::guard::{self, Internal};
use crate::process::active;
use ldguard_policy::{compile_str, RuleTable};
use ldguard_source::{Location, RefreshOutcome};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Hooked calls a forked child makes before it starts its own refresher.
const CHILD_CALLS_BEFORE_START: u32 = 16;
/// Hooked calls between two looks at the clock, in a process with a policy
/// *file*, until its first re-read is due. Re-reading a file is only worth
/// a thread in a process that lives and works a while; `/bin/true` or one
/// stage of a shell pipeline exits long before, and stays single-threaded.
const FILE_CALLS_BEFORE_START: u32 = 64;
/// Longest wait at exit for a fetch in progress.
const EXIT_WAIT: Duration = Duration::from_secs(3);

/// When a process with a policy file first re-reads it (start-up plus
/// `refreshSeconds`); its refresher is not started before.
static FILE_DUE: OnceLock<Instant> = OnceLock::new();
static REGISTERED: AtomicBool = AtomicBool::new(false);
/// Set while the refresher is inside `Source::refresh`, and from start-up
/// until its first refresh when that is likely to fetch (no fresh cache).
static IN_FLIGHT: AtomicBool = AtomicBool::new(false);
/// Set when the refresher returned for a call that needs a single thread.
static STOPPED: AtomicBool = AtomicBool::new(false);

/// Starts the refresher when the configuration names a policy location.
/// Called once the start-up policy (or fallback) is in force, with the pid
/// start-up asked for.
pub fn start(pid: i32) {
    let Some(process) = active::process() else {
        return;
    };
    if process.settings.policy.is_none() {
        return;
    }
    let Ok(source) = policy_source::for_settings(&process.settings) else {
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
        let _ = FILE_DUE.set(Instant::now() + source.config().refresh);
        arm_restart(FILE_CALLS_BEFORE_START, pid);
        return;
    }
    // A short process that may be the container's fetcher this interval
    // waits at exit for its first refresh, even if the thread has not been
    // scheduled yet; otherwise its claim would hold the others off for nothing.
    if policy_source::fetch_likely() {
        IN_FLIGHT.store(true, Ordering::Release);
    }
    spawn();
}

/// Called at the top of every hook: starts the refresher after a few hooked
/// calls in a forked child, or in a process with a policy file once its
/// first re-read is due. One relaxed load when there is nothing to do; a
/// countdown step made here (a compare-and-swap, about six instructions)
/// while a start is pending: a step lost to another thread's only delays
/// the start, and a stale count never overwrites a newer one. The last
/// step (1 to 0) is [`start_after_countdown`]'s.
#[inline]
pub fn poll() {
    let n = CHILD_WRITES.restart.load(Ordering::Relaxed);
    if n > 1 {
        let _ =
            CHILD_WRITES
                .restart
                .compare_exchange(n, n - 1, Ordering::Relaxed, Ordering::Relaxed);
    } else if n == 1 {
        start_after_countdown();
    }
}

#[cold]
fn start_after_countdown() {
    let previous = CHILD_WRITES
        .restart
        .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| n.checked_sub(1));
    if previous != Ok(1) {
        return;
    }
    // A clock read (the vDSO: no lock, no allocation) once per countdown.
    if FILE_DUE.get().is_some_and(|due| Instant::now() < *due) {
        CHILD_WRITES
            .restart
            .store(FILE_CALLS_BEFORE_START, Ordering::Relaxed);
        return;
    }
    if CHILD_WRITES.restart_pid.load(Ordering::Relaxed) != crate::os::sys::getpid() {
        // A vfork child running on its parent's memory: never start a thread here.
        CHILD_WRITES.restart.store(1, Ordering::Relaxed);
        return;
    }
    // Only from the program's own call, never from a check a signal
    // handler interrupted: starting a thread allocates.
    if guard::check_depth() != 0 {
        CHILD_WRITES.restart.store(1, Ordering::Relaxed);
        return;
    }
    let Some(_section) = Internal::enter() else {
        CHILD_WRITES.restart.store(1, Ordering::Relaxed);
        return;
    };
    // The parent's source may have been locked by its refresher, which did
    // not survive the fork: carry over what it knew into a fresh one.
    if let Some(old) = policy_source::current() {
        policy_source::replace(old.for_child());
    }
    spawn();
}

extern "C" fn after_fork_in_child() {
    // Written only when set: each page a child writes is a copy-on-write fault.
    if IN_FLIGHT.load(Ordering::Relaxed) {
        IN_FLIGHT.store(false, Ordering::Relaxed);
    }
    arm_restart(CHILD_CALLS_BEFORE_START, crate::os::sys::getpid());
}

/// Starts this process's refresher after `calls` more hooked calls
/// ([`poll`]); `pid` is this process's.
fn arm_restart(calls: u32, pid: i32) {
    CHILD_WRITES.restart_pid.store(pid, Ordering::Relaxed);
    CHILD_WRITES.restart.store(calls, Ordering::Release);
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
    let Some(source) = policy_source::current() else {
        return;
    };
    let interval = source.config().refresh;
    if source.shared_cache().is_none() && matches!(source.config().location, Location::Http(_)) {
        // No shared cache: every process would fetch for itself, so short
        // processes must not. Only one that lives a while asks the server.
        crate::os::quiesce::sleep(interval.min(Duration::from_secs(2)));
        if crate::os::quiesce::stopping() {
            STOPPED.store(true, Ordering::Release);
            return;
        }
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
        crate::os::quiesce::sleep(interval);
        if crate::os::quiesce::stopping() {
            STOPPED.store(true, Ordering::Release);
            return;
        }
    }
}

/// After a call that stopped the library's threads (`quiesce`): a
/// refresher that stopped starts again after a few hooked calls, as in a
/// forked child.
pub fn restart_after_stop() {
    if STOPPED.swap(false, Ordering::AcqRel) {
        arm_restart(CHILD_CALLS_BEFORE_START, crate::os::sys::getpid());
    }
}

fn compile(text: &str, origin: &str) -> Result<RuleTable, String> {
    compile_str(text, origin).map_err(|d| d.to_string())
}

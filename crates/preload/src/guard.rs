//! Who is running on this thread: the program, a hook deciding a call, or
//! the library doing its own work.
//!
//! - A hook deciding a call holds a [`Guard`] (check level 1). The decision
//!   itself calls no hooked function, so a hook entered while a guard is
//!   held can only come from a signal handler that interrupted the
//!   decision: it is checked too, one level deeper ([`MAX_CHECK_DEPTH`]
//!   levels, each with its own scratch buffers in `resolve`).
//! - The library's own work (reading the configuration and policy, opening
//!   the event sink, starting threads) runs in an [`Internal`] section:
//!   hooks pass its calls straight through, and every signal is blocked
//!   for its duration, so no program signal handler runs unchecked inside it.
//! - The library's threads (`ldguard-events`, `ldguard-refresh`) are
//!   internal for life and are created with every signal blocked
//!   ([`spawn_library_thread`]): a signal sent to them with `tgkill` stays
//!   pending and never runs a handler there.
//!
//! `const` initialiser and a `Copy` type: no destructor is registered and the
//! first access allocates nothing, so this is safe from any hook, signal
//! handlers and `calloc`-triggered re-entry included.

use std::cell::Cell;
use std::mem::MaybeUninit;

/// Nested checks a thread can be in at once: a hook, and a hook in a signal
/// handler that interrupted it. A third level (a signal inside the
/// handler's own check) passes through; see docs/preload.md.
pub const MAX_CHECK_DEPTH: u8 = 2;
/// The library's own work: every hook passes through.
const INTERNAL: u8 = u8::MAX;

thread_local! {
    static DEPTH: Cell<u8> = const { Cell::new(0) };
}

/// Proof that this thread is deciding a call; restores the previous level
/// when dropped.
pub struct Guard {
    previous: u8,
}

impl Guard {
    /// Enters one check level, or returns `None` when the library is doing
    /// its own work on this thread or the nesting limit is reached.
    #[inline]
    pub fn enter() -> Option<Guard> {
        DEPTH.with(|depth| {
            let previous = depth.get();
            if previous >= MAX_CHECK_DEPTH {
                return None;
            }
            depth.set(previous + 1);
            Some(Guard { previous })
        })
    }
}

impl Drop for Guard {
    #[inline]
    fn drop(&mut self) {
        DEPTH.with(|depth| depth.set(self.previous));
    }
}

/// The check level this thread is at: 0 outside any hook, 1 in a hook's
/// decision, 2 in a signal handler's hook that interrupted one.
#[inline]
pub fn check_depth() -> u8 {
    DEPTH.with(Cell::get)
}

/// A section of the library's own work: hooked calls pass through and
/// signals wait until it ends.
pub struct Internal {
    previous: u8,
    mask: MaybeUninit<libc::sigset_t>,
}

impl Internal {
    /// Enters an internal section. `None` when this thread is already
    /// internal (nothing to do) — callers then run their work as is.
    pub fn enter() -> Option<Internal> {
        let previous = DEPTH.with(Cell::get);
        if previous == INTERNAL {
            return None;
        }
        let mask = block_all_signals();
        DEPTH.with(|depth| depth.set(INTERNAL));
        Some(Internal { previous, mask })
    }
}

impl Drop for Internal {
    fn drop(&mut self) {
        DEPTH.with(|depth| depth.set(self.previous));
        // SAFETY: `mask` was filled by pthread_sigmask in `block_all_signals`.
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, self.mask.as_ptr(), std::ptr::null_mut())
        };
    }
}

/// Blocks every signal on this thread; returns the previous mask. glibc
/// keeps its own two internal signals (thread cancellation, set*id) open.
fn block_all_signals() -> MaybeUninit<libc::sigset_t> {
    let mut all = MaybeUninit::<libc::sigset_t>::uninit();
    let mut old = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigfillset initialises `all`; pthread_sigmask writes `old`.
    unsafe {
        libc::sigfillset(all.as_mut_ptr());
        libc::pthread_sigmask(libc::SIG_BLOCK, all.as_ptr(), old.as_mut_ptr());
    }
    old
}

/// Starts one of the library's threads: internal for its whole life, and
/// created with every signal blocked (a new thread inherits its creator's
/// mask, so no handler can run on it even before its first instruction).
pub fn spawn_library_thread(
    name: &str,
    stack_size: usize,
    body: impl FnOnce() + Send + 'static,
) -> std::io::Result<()> {
    let section = Internal::enter();
    let spawned = std::thread::Builder::new()
        .name(name.into())
        .stack_size(stack_size)
        .spawn(move || {
            DEPTH.with(|depth| depth.set(INTERNAL));
            // Also when created from an already internal thread.
            let _ = block_all_signals();
            body();
        });
    drop(section);
    spawned.map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_nest_to_the_limit_then_pass_through() {
        let g1 = Guard::enter().expect("first level");
        assert_eq!(check_depth(), 1);
        let g2 = Guard::enter().expect("a signal handler's check");
        assert_eq!(check_depth(), 2);
        assert!(Guard::enter().is_none());
        drop(g2);
        drop(g1);
        assert_eq!(check_depth(), 0);
    }

    #[test]
    fn internal_work_passes_through_and_restores() {
        let section = Internal::enter().expect("not internal yet");
        assert!(Guard::enter().is_none());
        assert!(Internal::enter().is_none());
        drop(section);
        assert!(Guard::enter().is_some());
    }

    #[test]
    fn library_threads_block_signals_and_pass_through() {
        let (tx, rx) = std::sync::mpsc::channel();
        spawn_library_thread("ldguard-test", 64 * 1024, move || {
            let mut mask = MaybeUninit::<libc::sigset_t>::uninit();
            // SAFETY: reads this thread's mask into `mask`.
            let blocked = unsafe {
                libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), mask.as_mut_ptr());
                libc::sigismember(mask.as_ptr(), libc::SIGUSR1) == 1
                    && libc::sigismember(mask.as_ptr(), libc::SIGTERM) == 1
            };
            tx.send((blocked, Guard::enter().is_none())).unwrap();
        })
        .unwrap();
        assert_eq!(rx.recv().unwrap(), (true, true));
        // The creating thread's mask is restored.
        let mut mask = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: as above.
        let blocked = unsafe {
            libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), mask.as_mut_ptr());
            libc::sigismember(mask.as_ptr(), libc::SIGUSR1) == 1
        };
        assert!(!blocked);
    }
}

//! The kernel refuses some calls to a process with more than one thread:
//! making a user namespace (`unshare(CLONE_NEWUSER)`, as `unshare -r`,
//! podman and bwrap do) and joining a mount or user namespace (`setns`, as
//! `nsenter`). The library's own threads (the refresher, and for an HTTP
//! event sink its writer and sender; `file:` and `stderr` events are
//! written by the threads that make them and need none) must not make a
//! single-threaded program fail them. Those calls ask the threads to stop ([`request_stop`]); each
//! finishes its work first (events written and delivered, a fetch in
//! progress completed), then returns; they start again when next needed,
//! as in a forked child.
//!
//! Only flags and a count live here: the threads (`emit`, `refresh`,
//! `sys::spawn_thread`) read them, and the hooks that need a single thread
//! drive them, so no module below the hooks calls back up.

use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Library threads that have been created and not yet returned, in the
/// process [`OWNER`].
static LIVE: AtomicU32 = AtomicU32::new(0);
/// The process whose threads [`LIVE`] counts: a forked child inherits the
/// count but not the threads, and a vfork child has none of its own.
static OWNER: AtomicI32 = AtomicI32::new(0);
/// Non-zero while a call waits for the threads to stop; the futex word
/// their idle waits ([`sleep`]) sleep on.
static STOPPING: AtomicU32 = AtomicU32::new(0);

/// One library thread in the count, from before its creation until its
/// body returns (or panics, or the thread is never made): move it into the
/// thread's body.
pub struct Counted(());

impl Counted {
    pub fn new() -> Counted {
        thread_starting();
        Counted(())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        thread_ended();
    }
}

/// A library thread is about to be created.
fn thread_starting() {
    let pid = crate::os::sys::getpid();
    if OWNER.load(Ordering::Acquire) != pid {
        // This process's first thread: what the count says is a parent's.
        LIVE.store(0, Ordering::Release);
        OWNER.store(pid, Ordering::Release);
    }
    LIVE.fetch_add(1, Ordering::AcqRel);
}

/// A library thread has returned (or was never created).
fn thread_ended() {
    LIVE.fetch_sub(1, Ordering::AcqRel);
}

/// Whether a library thread exists in this process.
pub fn any_live() -> bool {
    LIVE.load(Ordering::Acquire) != 0 && OWNER.load(Ordering::Acquire) == crate::os::sys::getpid()
}

/// Whether the library's threads are asked to finish and return.
#[inline]
pub fn stopping() -> bool {
    STOPPING.load(Ordering::Acquire) != 0
}

/// Asks every library thread to finish its work and return, and wakes
/// those idle in [`sleep`] (the HTTP sink's event writer is woken by its
/// queue).
pub fn request_stop() {
    STOPPING.store(1, Ordering::Release);
    futex(libc::FUTEX_WAKE, i32::MAX as u32, None);
}

/// Lets threads run again (they are started anew when next needed).
pub fn release() {
    STOPPING.store(0, Ordering::Release);
}

/// Waits until every library thread has returned, for at most `timeout`;
/// whether they all did.
pub fn wait_stopped(timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while any_live() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_micros(100));
    }
    true
}

/// A library thread's idle wait: `duration`, or less when asked to stop.
pub fn sleep(duration: Duration) {
    let deadline = Instant::now() + duration;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stopping() {
            return;
        }
        futex(libc::FUTEX_WAIT, 0, Some(left));
    }
}

fn futex(op: libc::c_int, value: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs() as _,
        tv_nsec: t.subsec_nanos() as libc::c_long,
    });
    crate::os::sys::raw_syscall(
        libc::SYS_futex,
        [
            STOPPING.as_ptr() as libc::c_long,
            (op | libc::FUTEX_PRIVATE_FLAG) as libc::c_long,
            value as libc::c_long,
            ts.as_ref()
                .map_or(std::ptr::null(), |t| t as *const libc::timespec)
                as libc::c_long,
            0,
            0,
        ],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_request_cuts_an_idle_wait_short() {
        let sleeper = std::thread::spawn(|| {
            let start = Instant::now();
            sleep(Duration::from_secs(30));
            start.elapsed()
        });
        std::thread::sleep(Duration::from_millis(50));
        request_stop();
        let slept = sleeper.join().unwrap();
        release();
        assert!(slept < Duration::from_secs(5), "slept {slept:?}");
    }

    #[test]
    fn a_forked_child_has_none_of_its_parents_threads() {
        thread_starting();
        assert!(any_live());
        // SAFETY: the child only reads atomics, calls getpid and exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let code = if any_live() { 1 } else { 0 };
            // SAFETY: leaves the child at once, running no parent's handler.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waits for the child just forked.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        thread_ended();
        assert_eq!(
            libc::WEXITSTATUS(status),
            0,
            "the child counted its parent's thread"
        );
    }

    #[test]
    fn waiting_for_threads_ends_when_the_last_returns() {
        thread_starting();
        let worker = std::thread::spawn(|| {
            std::thread::sleep(Duration::from_millis(50));
            thread_ended();
        });
        assert!(wait_stopped(Duration::from_secs(10)));
        worker.join().unwrap();
        thread_starting();
        assert!(!wait_stopped(Duration::from_millis(20)));
        thread_ended();
    }
}

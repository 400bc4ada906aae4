//! The part every hook shares: take the fast exits, hold the re-entrancy
//! guard while deciding, keep errno, catch panics, report, and say whether
//! the real function may run.

use crate::emit;
use crate::guard::Guard;
use crate::record::{Inline, Record, What};
use crate::state::{self, Active};
use crate::sys;
use ldguard_policy::{Action, Kind, Mode, Request};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Whether the real function may run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Fail the call with this errno.
    Deny(i32),
}

/// Runs `check` under the guard. The guard is released before this
/// returns, so the caller invokes the real function without it: after a
/// `vfork`, an `exec` in the child must not leave the parent's flag set.
#[inline]
pub fn run(check: impl FnOnce(&'static Active) -> Verdict) -> Verdict {
    run_or(Verdict::Allow, check)
}

/// [`run`] for checks that return more than a verdict: `pass` is the
/// answer when checks are off, this thread is already inside the library,
/// or `check` panicked.
#[inline]
pub fn run_or<R>(pass: R, check: impl FnOnce(&'static Active) -> R) -> R {
    // Before the `disabled` exit: a disabled process must still learn of a new mode.
    crate::refresh::poll();
    if state::is_off() {
        return pass;
    }
    let Some(active) = state::current() else {
        return pass;
    };
    let Some(guard) = Guard::enter() else {
        return pass;
    };
    let saved = sys::errno();
    let outcome = catch_unwind(AssertUnwindSafe(|| check(active)));
    drop(guard);
    sys::set_errno(saved);
    outcome.unwrap_or(pass)
}

/// A decision that produces no event when it allows: the common case
/// costs one `decide` and nothing else. Returns the verdict and whether
/// the policy blocks the request (reported, enforced or not), so a caller
/// that goes on to look further does not report the same call twice.
///
/// File requests on a path alone go through this thread's cache of recent
/// silent allows first ([`recent`]).
#[inline]
pub fn settle(active: &'static Active, req: &Request<'_>) -> (Verdict, bool) {
    let cacheable = req.kind == Kind::File && req.resolved_path.is_none();
    let path = req.path.unwrap_or(b"");
    if cacheable && recent::allowed(active, req.access, path) {
        return (Verdict::Allow, false);
    }
    let d = active.table.decide(req);
    let classes = active.table.log_classes();
    if !d.log && !d.action.blocks() && !classes.behavior() {
        // Silent whatever the call (allows are not logged): worth keeping.
        if cacheable && d.action == Action::Allow && !classes.logs(Action::Allow) {
            recent::remember(active, req.access, path);
        }
        return (Verdict::Allow, false);
    }
    (report(active, req, d, |_| {}), d.action.blocks())
}

/// A per-thread cache of file paths recently decided as silent allows, so
/// a program that opens the same files again and again (nginx per
/// request, python's imports) pays a hash and a compare instead of a rule
/// table lookup. Keyed by the table (tables are never freed, so its
/// address is a generation that a refresh changes), the access and the
/// exact path bytes: a hit is only ever the same question.
///
/// `const` thread-local without destructor: no allocation, no lock. Only
/// read and written under the re-entrancy guard ([`run`]), so a signal
/// handler that interrupts an update finds the guard set and never looks
/// at the half-written slot.
mod recent {
    use crate::state::Active;
    use ldguard_policy::Access;
    use std::cell::UnsafeCell;

    const SLOTS: usize = 16;
    /// Longer paths are not cached.
    const KEY: usize = 112;

    #[derive(Clone, Copy)]
    struct Slot {
        table: usize,
        access: u8,
        len: u8,
        path: [u8; KEY],
    }

    const EMPTY: Slot = Slot {
        table: 0,
        access: 0,
        len: 0,
        path: [0; KEY],
    };

    thread_local! {
        static CACHE: UnsafeCell<[Slot; SLOTS]> = const { UnsafeCell::new([EMPTY; SLOTS]) };
    }

    /// The slot for `path`: its length and last eight bytes, mixed. Paths
    /// of one directory share their start, not their end.
    #[inline]
    fn slot_of(path: &[u8]) -> usize {
        let n = path.len();
        let mut tail = [0u8; 8];
        let take = n.min(8);
        tail[..take].copy_from_slice(&path[n - take..]);
        let h = (u64::from_le_bytes(tail) ^ n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (h >> 60) as usize % SLOTS
    }

    #[inline]
    fn key(active: &'static Active) -> usize {
        active as *const Active as usize
    }

    #[inline]
    pub fn allowed(active: &'static Active, access: Access, path: &[u8]) -> bool {
        if path.len() > KEY {
            return false;
        }
        let i = slot_of(path);
        // SAFETY: this thread's own cache, used only under the guard (see
        // the module comment), so no other reference to it is live.
        CACHE.with(|c| {
            let s = unsafe { &(*c.get())[i] };
            s.table == key(active)
                && s.access == access as u8
                && s.len as usize == path.len()
                && &s.path[..path.len()] == path
        })
    }

    #[inline]
    pub fn remember(active: &'static Active, access: Access, path: &[u8]) {
        if path.len() > KEY {
            return;
        }
        let i = slot_of(path);
        // SAFETY: as in `allowed`.
        CACHE.with(|c| {
            let s = unsafe { &mut (*c.get())[i] };
            s.path[..path.len()].copy_from_slice(path);
            s.len = path.len() as u8;
            s.access = access as u8;
            s.table = key(active);
        })
    }
}

/// Fails closed: `req` names no object the library could establish (see
/// docs/security.md for when), and a rule that denies could apply. Denied
/// with `EACCES` and reported without a rule.
pub fn unresolvable(active: &'static Active, req: &Request<'_>) -> Verdict {
    let d = ldguard_policy::Decision {
        action: Action::Deny,
        rule: None,
        severity: ldguard_policy::Severity::High,
        errno: libc::EACCES,
        log: active.table.log_classes().logs(Action::Deny) && !active.table.is_ignored(req.call),
    };
    report(active, req, d, |_| {})
}

/// Reports `req` as decided by rule `rule` (which did not match the path
/// itself: a rename of a directory above what the rule protects).
pub fn by_rule(active: &'static Active, req: &Request<'_>, rule: u32) -> Verdict {
    report(
        active,
        req,
        active.table.decision_of_rule(rule, req.call),
        |_| {},
    )
}

/// Decides `req`, reports the outcome when the policy logs it, carries out
/// `kill`, and returns the verdict. `fill` adds call-specific detail (exec
/// arguments) to the event record, only when one is built.
pub fn judge(
    active: &'static Active,
    req: &Request<'_>,
    fill: impl FnOnce(&mut Record),
) -> Verdict {
    report(active, req, active.table.decide(req), fill)
}

/// Reports decision `d` on `req` when the policy logs it, carries out
/// `kill`, and returns the verdict.
fn report(
    active: &'static Active,
    req: &Request<'_>,
    d: ldguard_policy::Decision,
    fill: impl FnOnce(&mut Record),
) -> Verdict {
    let enforced = d.action.blocks() && active.mode == Mode::Enforce;
    let kill = enforced && d.action == Action::Kill;
    let first = crate::behavior::first_time(active, req);
    if d.log || kill || first {
        let mut r = Record::new(What::Decision {
            call: req.call,
            kind: req.kind,
            action: d.action,
            rule: d.rule,
            severity: d.severity,
        });
        r.enforced = enforced;
        r.behavior = first;
        r.errno = if enforced && !kill { d.errno } else { 0 };
        r.active = Some(active);
        describe_request(&mut r, req);
        fill(&mut r);
        if kill {
            emit::flush(std::time::Duration::from_secs(1));
            emit::write_direct(&r);
            // SAFETY: kill(2) on our own process.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        }
        if first {
            emit::send_patiently(r);
        } else {
            emit::send(r);
        }
    }
    if enforced {
        Verdict::Deny(d.errno)
    } else {
        Verdict::Allow
    }
}

fn describe_request(r: &mut Record, req: &Request<'_>) {
    match req.kind {
        Kind::File => r.access = Some(req.access.as_str()),
        Kind::Network => r.access = Some(req.direction.as_str()),
        Kind::Exec | Kind::Syscall => {}
    }
    if let Some(p) = req.path.or(req.unix) {
        r.target = Inline::from_bytes(p);
    } else if req.kind == Kind::Syscall {
        r.target = Inline::from_bytes(req.call.name().as_bytes());
    }
    if let Some(p) = req.resolved_path {
        r.resolved = Inline::from_bytes(p);
    }
    if let Some(ip) = req.address {
        r.address = Some((ip, req.port.unwrap_or(0)));
    }
    if let Some(h) = req.host {
        r.host = Inline::from_bytes(h.as_bytes());
        if req.address.is_none() && r.target.is_empty() {
            r.target = Inline::from_bytes(h.as_bytes());
        }
    }
}

/// Applies the policy's `drift` action `action` to a file that drifted
/// (`reason`): reports it as an event of kind `drift` when `log` has the
/// action's class and `call` is not ignored, carries out `kill` in
/// enforce mode, and returns the verdict (`EACCES` when enforced).
pub fn drifted(
    active: &'static Active,
    call: &'static str,
    ignored: bool,
    action: Action,
    reason: &'static str,
    fill: impl FnOnce(&mut Record),
) -> Verdict {
    let enforced = action.blocks() && active.mode == Mode::Enforce;
    let kill = enforced && action == Action::Kill;
    if (active.table.log_classes().logs(action) && !ignored) || kill {
        let mut r = Record::new(What::Drift {
            call,
            action,
            reason,
        });
        r.enforced = enforced;
        r.errno = if enforced && !kill { libc::EACCES } else { 0 };
        r.active = Some(active);
        fill(&mut r);
        if kill {
            emit::flush(std::time::Duration::from_secs(1));
            emit::write_direct(&r);
            // SAFETY: kill(2) on our own process.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        }
        emit::send(r);
    }
    if enforced {
        Verdict::Deny(libc::EACCES)
    } else {
        Verdict::Allow
    }
}

/// Says once per process why the policy's `drift` setting has no effect
/// here (no usable manifest). Keyed by pid, so a forked child that runs
/// a program says it again, in its own events.
pub fn drift_inert(reason: &'static str) {
    static SAID: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);
    let pid = sys::getpid();
    if SAID.swap(pid, std::sync::atomic::Ordering::Relaxed) == pid {
        return;
    }
    let mut r = Record::new(What::Status);
    r.target
        .push(b"the policy's drift setting has no effect in this image: ");
    r.target.push(reason.as_bytes());
    emit::send(r);
}

/// Fails a call the C way: set errno, return the error value.
#[inline]
pub fn fail<T>(errno: i32, value: T) -> T {
    sys::set_errno(errno);
    value
}

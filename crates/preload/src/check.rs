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
    // Before the `disabled` exit: a disabled process must still learn of a new mode.
    crate::refresh::poll();
    if state::is_off() {
        return Verdict::Allow;
    }
    let Some(active) = state::current() else {
        return Verdict::Allow;
    };
    let Some(guard) = Guard::enter() else {
        return Verdict::Allow;
    };
    let saved = sys::errno();
    let verdict = catch_unwind(AssertUnwindSafe(|| check(active))).unwrap_or(Verdict::Allow);
    drop(guard);
    sys::set_errno(saved);
    verdict
}

/// Decides `req`, reports the outcome when the policy logs it, carries out
/// `kill`, and returns the verdict. `fill` adds call-specific detail (exec
/// arguments) to the event record, only when one is built.
pub fn judge(
    active: &'static Active,
    req: &Request<'_>,
    fill: impl FnOnce(&mut Record),
) -> Verdict {
    let d = active.table.decide(req);
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

/// Fails a call the C way: set errno, return the error value.
#[inline]
pub fn fail<T>(errno: i32, value: T) -> T {
    sys::set_errno(errno);
    value
}

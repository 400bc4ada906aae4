//! The part every hook shares: take the fast exits, hold the re-entrancy
//! guard while deciding, keep errno, catch panics, report, and say whether
//! the real function may run.

use crate::events::emit;
use crate::events::record::{Inline, Record, What};
use crate::load::state::{self, Active};
use crate::os::guard::{recent, Guard};
use crate::os::sys;
use ldguard_policy::{Access, Action, Kind, Mode, Request};
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Whether the real function may run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Fail the call with this errno.
    Deny(i32),
}

impl Fallback for Verdict {
    fn denied(errno: i32) -> Verdict {
        Verdict::Deny(errno)
    }
}

/// What a check answers when it could not finish (it panicked): see
/// [`caught`].
pub trait Fallback {
    /// The call denied with `errno`.
    fn denied(errno: i32) -> Self;
}

/// Runs `check` under the guard. The guard is released before this
/// returns, so the caller invokes the real function without it: after a
/// `vfork`, an `exec` in the child must not leave the parent's flag set.
#[inline]
pub fn run(check: impl FnOnce(&'static Active) -> Verdict) -> Verdict {
    run_or(Verdict::Allow, check)
}

/// [`run`] for checks that return more than a verdict: `pass` is the
/// answer when checks are off or this thread is already inside the
/// library; a check that panics is answered by [`caught`].
#[inline]
pub fn run_or<R: Fallback>(pass: R, check: impl FnOnce(&'static Active) -> R) -> R {
    // Before the `disabled` exit: a disabled process must still learn of a new mode.
    crate::load::refresh::poll();
    // `None` also when checks are off (`disabled`).
    let Some(active) = state::current() else {
        return pass;
    };
    let Some(guard) = Guard::enter() else {
        return pass;
    };
    // This thread's errno slot, valid for the thread's life (one lookup
    // for the save and the restore).
    let errno = crate::os::guard::errno_slot();
    // SAFETY: `errno_slot` is this thread's errno, valid and written only
    // by this thread for its whole life.
    let saved = unsafe { *errno };
    let outcome = caught(active, pass, check);
    drop(guard);
    // Only when the check changed it: errno's page is one more that a
    // forked child's exec check would write.
    // SAFETY: the same slot of this thread, still valid (read above).
    unsafe {
        if *errno != saved {
            *errno = saved;
        }
    }
    outcome
}

/// Runs `check`, catching a panic (none may cross into the host program).
/// A check that panicked has not decided, and a rule that denies could
/// have applied: in enforce mode the call is denied with `EACCES` (never
/// fail open), in the other modes it proceeds; either way it is reported.
#[inline(always)]
fn caught<R: Fallback>(
    active: &'static Active,
    pass: R,
    check: impl FnOnce(&'static Active) -> R,
) -> R {
    match catch_unwind(AssertUnwindSafe(|| check(active))) {
        Ok(r) => r,
        Err(payload) => {
            drop_payload(payload);
            match check_failed(active) {
                Verdict::Deny(e) => R::denied(e),
                Verdict::Allow => pass,
            }
        }
    }
}

#[cold]
#[inline(never)]
fn drop_payload(payload: Box<dyn std::any::Any + Send>) {
    // A panic inside dropping the payload would escape; leak it instead
    // (a panic has already allocated it, so this is the failure path).
    std::mem::forget(payload);
}

/// A check panicked: the verdict of [`caught`], reported as a status
/// note (an inline record, no allocation).
#[cold]
#[inline(never)]
fn check_failed(active: &'static Active) -> Verdict {
    refuse_unruled(
        active,
        libc::EACCES,
        b"a check failed inside the library (a bug); the call was denied (enforce mode)",
        b"a check failed inside the library (a bug); the call proceeded (not enforcing)",
    )
}

/// A call refused for a reason no rule names (the library cannot decide
/// it), reported as a status note that says which way it went: denied
/// with `errno` in enforce mode, let through otherwise. No allocation.
pub fn refuse_unruled(
    active: &'static Active,
    errno: i32,
    denied: &[u8],
    let_through: &[u8],
) -> Verdict {
    let enforced = active.mode == Mode::Enforce;
    let mut r = Record::new(What::Status);
    r.target.push(if enforced { denied } else { let_through });
    r.enforced = enforced;
    r.errno = if enforced { errno } else { 0 };
    r.active = Some(active);
    emit::send(r);
    if enforced {
        Verdict::Deny(errno)
    } else {
        Verdict::Allow
    }
}

/// A decision that produces no event when it allows: the common case
/// costs one `decide` and nothing else. Returns the verdict and whether
/// the policy blocks the request (reported, enforced or not), so a caller
/// that goes on to look further does not report the same call twice.
///
/// File requests on a path alone go through this thread's cache of recent
/// silent allows first ([`recent`]), and silent allows are remembered there.
#[inline]
pub fn settle(active: &'static Active, req: &Request<'_>) -> (Verdict, bool) {
    let cacheable = req.kind == Kind::File && req.resolved_path.is_none();
    let path = req.path.unwrap_or(b"");
    let access = access_bit(req.access);
    if cacheable && recent::allowed(generation(active), access, path) {
        return (Verdict::Allow, false);
    }
    let (v, blocked, silent) = settle_uncached(active, req);
    if cacheable && silent {
        let needs = active.table.needs_resolution(Kind::File, req.access);
        recent::remember(generation(active), access, path, needs);
    }
    (v, blocked)
}

/// [`settle`] without the cache; the third value says whether the outcome
/// was a silent allow (no event, no behaviour record) that may be cached.
#[inline(always)]
pub fn settle_uncached(active: &'static Active, req: &Request<'_>) -> (Verdict, bool, bool) {
    let d = active.table.decide(req);
    let classes = active.table.log_classes();
    if !d.log && !d.action.blocks() && !classes.behavior() {
        // Silent whatever the call (allows are not logged): worth keeping.
        let silent = d.action == Action::Allow && !classes.logs(Action::Allow);
        return (Verdict::Allow, false, silent);
    }
    settle_reported(active, req, d)
}

/// [`settle_uncached`] when the decision is reported or blocks.
#[inline(never)]
fn settle_reported(
    active: &'static Active,
    req: &Request<'_>,
    d: ldguard_policy::Decision,
) -> (Verdict, bool, bool) {
    (report(active, req, d, |_| {}), d.action.blocks(), false)
}

/// The cache key of a published table: tables are never freed, so the
/// address names one table for the life of the process.
#[inline]
pub fn generation(active: &'static Active) -> usize {
    active as *const Active as usize
}

/// The cache's bit for `access`.
#[inline]
pub fn access_bit(access: Access) -> u8 {
    match access {
        Access::Read => recent::READ,
        Access::Write => recent::WRITE,
    }
}

/// What `ptrace` decides for this program, when it matters: a rule that
/// blocks it or an event it produces. Opening a process's memory file is
/// the same capability ([`process_memory`]).
pub fn ptrace_guard(active: &'static Active) -> Option<ldguard_policy::Decision> {
    let d = active.table.decide(&Request::new(
        Kind::Syscall,
        ldguard_policy::Call::Ptrace,
        active.program,
    ));
    (d.action.blocks() || d.log).then_some(d)
}

/// Whether [`ptrace_guard`] has a decision for this table, asked once per
/// table: the full route of every open asks.
#[inline]
pub fn ptrace_matters(active: &'static Active) -> bool {
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    // The last table asked about, bit 0 set when `ptrace` matters there
    // (tables are aligned, so bit 0 of the address is free).
    static LAST: AtomicUsize = AtomicUsize::new(0);
    let table = generation(active);
    let last = LAST.load(Relaxed);
    if last & !1 == table {
        return last & 1 != 0;
    }
    let matters = ptrace_guard(active).is_some();
    LAST.store(table | usize::from(matters), Relaxed);
    matters
}

/// Whether `path`'s last segment is `mem`: the name of a process's memory
/// file in procfs (`/proc/PID/mem`, `/proc/PID/task/TID/mem`).
#[inline]
pub fn names_memory(path: &[u8]) -> bool {
    path == b"mem" || path.ends_with(b"/mem")
}

/// Opening `object` (the kernel's path of what the call reaches; `spelled`
/// is the request's own path) reads or patches another process's memory
/// when it is a `mem` file of procfs: decided as `ptrace` is, and reported
/// as the open call with the `ptrace` rule (docs/security.md).
pub fn process_memory(
    active: &'static Active,
    call: ldguard_policy::Call,
    spelled: &[u8],
    object: &[u8],
) -> Verdict {
    if !names_memory(object) {
        return Verdict::Allow;
    }
    let Some(d) = ptrace_guard(active) else {
        return Verdict::Allow;
    };
    if !on_procfs(object) {
        return Verdict::Allow;
    }
    let req = Request {
        path: Some(spelled),
        resolved_path: (spelled != object).then_some(object),
        ..Request::new(Kind::Syscall, call, active.program)
    };
    report(active, &req, d, |_| {})
}

/// Whether `path` lies on a procfs mount (`statfs`; no hook sees it).
fn on_procfs(path: &[u8]) -> bool {
    const PROC_SUPER_MAGIC: i64 = 0x9fa0;
    let mut c = [0u8; libc::PATH_MAX as usize];
    if path.len() >= c.len() {
        // Longer than any path the kernel names: treat as procfs (deny).
        return true;
    }
    c[..path.len()].copy_from_slice(path);
    let mut st = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: `c` is NUL-terminated; statfs fills `st` on success.
    if unsafe { libc::statfs(c.as_ptr().cast(), st.as_mut_ptr()) } != 0 {
        // The object was just reached by that path: fail closed.
        return true;
    }
    // SAFETY: initialised by the successful call.
    let kind = unsafe { st.assume_init() }.f_type;
    #[allow(clippy::unnecessary_cast)] // `f_type`'s type differs between targets
    let kind = kind as i64;
    kind == PROC_SUPER_MAGIC
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

thread_local! {
    /// Blocking decisions this thread has made (enforced or not), for a
    /// check made of several decisions ([`blocks_made`]). A `const`
    /// initialiser and no destructor: no allocation, no registration.
    static BLOCKS_MADE: Cell<u32> = const { Cell::new(0) };
}

/// How many blocking decisions this thread has made: a check made of
/// several decisions stops after the first that blocks, so that permissive
/// mode reports what enforce would deny, once (enforce stops at its
/// `Deny`).
pub fn blocks_made() -> u32 {
    BLOCKS_MADE.with(Cell::get)
}

/// The decisions of one call, made in turn: the call ends at the first
/// that denies, or that blocked without enforcing (permissive mode then
/// reports one event for the call, as enforce does).
#[derive(Clone, Copy)]
pub struct Turns(u32);

impl Turns {
    pub fn start() -> Turns {
        Turns(blocks_made())
    }

    /// Whether the call ends with `v`, the verdict of the decision just made.
    pub fn end_at(self, v: Verdict) -> bool {
        v != Verdict::Allow || blocks_made() != self.0
    }
}

/// Reports decision `d` on `req` when the policy logs it, carries out
/// `kill`, and returns the verdict.
fn report(
    active: &'static Active,
    req: &Request<'_>,
    d: ldguard_policy::Decision,
    fill: impl FnOnce(&mut Record),
) -> Verdict {
    if d.action.blocks() {
        BLOCKS_MADE.with(|n| n.set(n.get().wrapping_add(1)));
    }
    let enforced = d.action.blocks() && active.mode == Mode::Enforce;
    let kill = enforced && d.action == Action::Kill;
    let first = crate::decide::behavior::first_time(active, req);
    if d.log || kill || first {
        record_decision(active, req, d, (enforced, kill, first), fill);
    }
    if enforced {
        Verdict::Deny(d.errno)
    } else {
        Verdict::Allow
    }
}

/// [`report`]'s event, apart and never inlined: its record (4.6 KB) in
/// the frame of every decision made every stack page below it a write (a
/// stack probe), and in a forked child each such page a fault.
#[inline(never)]
fn record_decision(
    active: &'static Active,
    req: &Request<'_>,
    d: ldguard_policy::Decision,
    (enforced, kill, first): (bool, bool, bool),
    fill: impl FnOnce(&mut Record),
) {
    {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn active(mode: &str) -> &'static Active {
        let text = format!(
            r#"{{"apiVersion":"ldguard.policy/v1","name":"t","mode":"{mode}",
            "defaults":{{"file":"allow","exec":"allow","network":"allow","syscall":"allow"}}}}"#
        );
        let table = ldguard_policy::compile_str(&text, "test").unwrap();
        Box::leak(Box::new(Active {
            mode: table.mode(),
            table,
            program: b"/test/program",
            origin: String::new(),
        }))
    }

    /// A bug that panics inside a check must not let the call through
    /// when the process enforces: a deny rule could have applied.
    #[test]
    fn a_check_that_panics_denies_when_enforcing() {
        let enforcing = active("enforce");
        let v = caught(enforcing, Verdict::Allow, |_| -> Verdict {
            panic!("a bug")
        });
        assert_eq!(v, Verdict::Deny(libc::EACCES));
        // A check that finishes keeps its own answer.
        assert_eq!(
            caught(enforcing, Verdict::Deny(1), |_| Verdict::Allow),
            Verdict::Allow
        );
    }

    #[test]
    fn a_check_that_panics_proceeds_when_not_enforcing() {
        let permissive = active("permissive");
        let v = caught(permissive, Verdict::Allow, |_| -> Verdict {
            panic!("a bug")
        });
        assert_eq!(v, Verdict::Allow);
    }
}

//! The process-wide state the hooks read: whether checks are on, and the
//! current rule table.
//!
//! Hot path: one `Acquire` load of [`STATUS`] (all a `disabled` process
//! pays), then one load of [`ACTIVE`]. Tables are immutable and are never
//! freed once published, so a reader needs no reference count, no lock and
//! no hazard pointer, and a forked child can keep using the pointer it
//! inherited. A refresh that installs a new table leaks the old one (a few
//! KiB per policy change, which is rare); that is the price of a hot path
//! that is safe in signal handlers and across fork.

use crate::config::{self, OnNoPolicy, Settings};
use crate::guard::Guard;
use ldguard_policy::{compile_str, compile_str_for_program, Mode, RuleTable};
use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicU8, Ordering};
use std::sync::OnceLock;

const UNINIT: u8 = 0;
const INITIALIZING: u8 = 1;
/// No checks: `disabled` mode, or no policy with `onNoPolicy: allow`.
pub const OFF: u8 = 2;
pub const ON: u8 = 3;

static STATUS: AtomicU8 = AtomicU8::new(UNINIT);
static ACTIVE: AtomicPtr<Active> = AtomicPtr::new(std::ptr::null_mut());
/// Pid of the thread group doing the initialisation, so a child forked in
/// the middle of it does not wait forever for a thread it does not have.
static INIT_PID: AtomicI32 = AtomicI32::new(0);
static PROCESS: OnceLock<Process> = OnceLock::new();

/// What stays the same for the life of the process image.
pub struct Process {
    /// Resolved `/proc/self/exe`.
    pub program: Box<[u8]>,
    pub settings: Settings,
}

/// One published policy, specialised for this program.
pub struct Active {
    pub table: RuleTable,
    /// The mode in force: `LDGUARD_MODE` when given, else the policy's.
    pub mode: Mode,
    pub program: &'static [u8],
    /// Where the policy came from (file path, URL, or a built-in name).
    pub origin: String,
}

/// The table to check against, initialising on first use; `None` when
/// checks are off or this thread is already inside the library.
#[inline]
pub fn current() -> Option<&'static Active> {
    match STATUS.load(Ordering::Acquire) {
        ON => {}
        OFF => return None,
        _ => {
            if !initialise() {
                return None;
            }
        }
    }
    let p = ACTIVE.load(Ordering::Acquire);
    // SAFETY: ACTIVE only ever holds null or a leaked, never-freed Box.
    unsafe { p.as_ref() }
}

/// Whether checks are off, without initialising (for the `disabled` fast
/// path the hooks take before anything else).
#[inline]
pub fn is_off() -> bool {
    STATUS.load(Ordering::Relaxed) == OFF
}

/// The table in force, without initialising (for status events, which
/// report the policy and mode of the moment).
pub fn published() -> Option<&'static Active> {
    // SAFETY: as in `current`.
    unsafe { ACTIVE.load(Ordering::Acquire).as_ref() }
}

pub fn process() -> Option<&'static Process> {
    PROCESS.get()
}

/// Runs the one-time initialisation, or waits for another thread doing it.
/// Returns whether checks are on. Safe to call from our own constructor and
/// from any hook, including hooks called by other libraries' constructors
/// before ours ran.
pub fn initialise() -> bool {
    loop {
        match STATUS.compare_exchange(UNINIT, INITIALIZING, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => {
                INIT_PID.store(crate::sys::getpid(), Ordering::Relaxed);
                let on = match Guard::enter() {
                    Some(guard) => {
                        let on = std::panic::catch_unwind(load_initial).unwrap_or(false);
                        drop(guard);
                        on
                    }
                    // Called from inside the library: cannot happen before
                    // initialisation, but never risk recursion.
                    None => false,
                };
                if !on {
                    STATUS.store(OFF, Ordering::Release);
                }
                // After the start-up table is published, so a refresh can only
                // replace it. A forced `disabled` would ignore whatever a
                // refresh brings, and a thread makes every libc call of the
                // process take its multi-threaded (slower) path.
                if !forced_disabled() {
                    crate::refresh::start();
                }
                return on;
            }
            Err(ON) => return true,
            Err(OFF) => return false,
            Err(_) => {
                // Another thread is initialising. Our own re-entrant calls
                // (made while loading) hold the guard and skip checks.
                if Guard::enter().is_none() {
                    return false;
                }
                if INIT_PID.load(Ordering::Relaxed) != crate::sys::getpid() {
                    // Forked while another thread was initialising: that
                    // thread does not exist here, so start over.
                    let _ = STATUS.compare_exchange(
                        INITIALIZING,
                        UNINIT,
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    );
                    continue;
                }
                // SAFETY: sched_yield has no preconditions.
                unsafe { libc::sched_yield() };
            }
        }
    }
}

/// Publishes `table` as the policy in force (used at start-up, and by a
/// background refresher to swap policies without a restart). Returns false
/// when the process is not initialised yet.
pub fn install(table: RuleTable, origin: String) -> bool {
    let Some(process) = PROCESS.get() else {
        return false;
    };
    publish(process, table, origin);
    true
}

fn publish(process: &'static Process, table: RuleTable, origin: String) {
    let table = if table.program() == Some(&process.program[..]) {
        table
    } else {
        table.for_program(&process.program)
    };
    let mode = process.settings.mode.unwrap_or(table.mode());
    let active = Box::new(Active {
        table,
        mode,
        program: &process.program,
        origin,
    });
    ACTIVE.store(Box::into_raw(active), Ordering::Release);
    STATUS.store(
        if mode == Mode::Disabled { OFF } else { ON },
        Ordering::Release,
    );
}

fn load_initial() -> bool {
    let settings = config::load();
    let program = crate::sys::self_exe();
    let process = PROCESS.get_or_init(|| Process { program, settings });
    crate::emit::register_process_hooks();
    for note in &process.settings.notes {
        crate::emit::status(note);
    }
    if forced_disabled() {
        // `LDGUARD_MODE=disabled` overrides every policy's mode: reading and
        // compiling one would only delay every program's start.
        return false;
    }
    match load_policy(&process.settings, &process.program) {
        Ok((table, origin)) => {
            publish(process, table, origin);
            crate::backstop::install_at_start(process); // issue 13: kernel backstop (enforce mode, once per process tree)
            STATUS.load(Ordering::Relaxed) == ON
        }
        Err(why) => match process.settings.on_no_policy {
            // Nothing configured at all: stay silent (a developer's shell
            // that inherited LD_PRELOAD, a test binary).
            OnNoPolicy::Allow if why == NOTHING_CONFIGURED => false,
            OnNoPolicy::Allow => {
                crate::emit::status(&format!("{why}; running unchecked (onNoPolicy: allow)"));
                false
            }
            OnNoPolicy::Deny => {
                let table = compile_str(DENY_ALL, "built-in deny-all policy")
                    .expect("the built-in policy is valid");
                publish(process, table, "built-in deny-all policy".into());
                crate::emit::status(&format!("{why}; denying everything (onNoPolicy: deny)"));
                true
            }
        },
    }
}

/// Whether the settings force `disabled`, so no policy can ever apply.
fn forced_disabled() -> bool {
    PROCESS
        .get()
        .is_some_and(|p| p.settings.mode == Some(Mode::Disabled))
}

const NOTHING_CONFIGURED: &str =
    "no policy configured (set LDGUARD_POLICY or \"policy\" in the config)";

/// Where the layer builder bakes a policy into an image (`bakedPolicy`'s default).
const DEFAULT_BAKED_POLICY: &str = "/etc/ldguard/policy.json";

/// The fallback for `onNoPolicy: deny`.
const DENY_ALL: &str = r#"{"apiVersion":"ldguard.policy/v1","name":"ldguard-no-policy","mode":"enforce",
 "log":["deny"],"defaults":{"file":"deny","exec":"deny","network":"deny","syscall":"deny"}}"#;

/// Loads the configured policy, then the baked one. HTTP locations are
/// fetched out of band by the refresher, never here: at start-up they come
/// from the shared cache when it has them, else the baked policy is used.
fn load_policy(settings: &Settings, program: &[u8]) -> Result<(RuleTable, String), String> {
    let mut problems = Vec::new();
    let default_baked = std::path::Path::new(DEFAULT_BAKED_POLICY)
        .exists()
        .then_some(DEFAULT_BAKED_POLICY);
    for location in [
        settings.policy.as_deref(),
        settings.baked_policy.as_deref().or(default_baked),
    ]
    .into_iter()
    .flatten()
    {
        if location.starts_with("http://") || location.starts_with("https://") {
            match crate::refresh::cached_policy(settings, location) {
                Ok(found) => return Ok(found),
                Err(why) => problems.push(why),
            }
            continue;
        }
        match std::fs::read_to_string(location) {
            Err(e) => problems.push(format!("policy {location}: {e}")),
            // Straight to this program's table: the generic index would be
            // built only to be replaced (a fifth of the start-up cost).
            Ok(text) => match compile_str_for_program(&text, location, program) {
                Ok(table) => {
                    if settings.policy.as_deref() == Some(location) {
                        crate::refresh::started_with(settings, text);
                    }
                    return Ok((table, location.to_owned()));
                }
                Err(diags) => problems.push(format!("policy {location} is invalid: {diags}")),
            },
        }
    }
    if problems.is_empty() {
        problems
            .push("no policy configured (set LDGUARD_POLICY or \"policy\" in the config)".into());
    }
    Err(problems.join("; "))
}

#[cfg(test)]
mod tests {
    #[test]
    fn deny_all_fallback_compiles_and_denies() {
        let t = ldguard_policy::compile_str(super::DENY_ALL, "x").unwrap();
        assert_eq!(t.mode(), ldguard_policy::Mode::Enforce);
        assert_eq!(
            t.policy().default_action(ldguard_policy::Kind::File),
            ldguard_policy::Action::Deny
        );
    }
}

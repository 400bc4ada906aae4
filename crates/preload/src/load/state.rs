//! Start-up: the one-time initialisation that reads the configuration and
//! the policy and publishes the first table (see `active`), run from our
//! constructor or from the first hook that fires before it.

use crate::os::guard::Internal;
use crate::process::active::{self, forced_disabled, INITIALIZING, OFF, ON, STATUS, UNINIT};
use crate::process::config::{self, OnNoPolicy, Settings};
use ldguard_policy::{compile_str, compile_str_for_program, RuleTable};
use std::sync::atomic::{AtomicI32, Ordering};

pub use crate::process::active::{is_off, Active};

/// Pid of the thread group doing the initialisation, so a child forked in
/// the middle of it does not wait forever for a thread it does not have.
static INIT_PID: AtomicI32 = AtomicI32::new(0);

/// The table to check against, initialising on first use; `None` when
/// checks are off.
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
    active::published()
}

/// Runs the one-time initialisation, or waits for another thread doing it.
/// Returns whether checks are on. Safe to call from our own constructor and
/// from any hook, including hooks called by other libraries' constructors
/// before ours ran.
pub fn initialise() -> bool {
    loop {
        match STATUS.compare_exchange(UNINIT, INITIALIZING, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => {
                // The one `getpid` of start-up (there is no pid to be had
                // without one: glibc keeps no pid cache since 2.25, and its
                // thread descriptor's layout is private): a waiter compares
                // it with its own to see a fork made mid-initialisation, and
                // the event writer's and the refresher's fork detectors
                // start from it.
                let pid = crate::os::sys::getpid();
                INIT_PID.store(pid, Ordering::Relaxed);
                // Every signal is blocked for the whole start-up (two
                // `rt_sigprocmask`): the library's own calls pass through
                // the hooks here, so a program's handler that ran now
                // would run unchecked. That no handler is installed cannot
                // be known without asking the kernel: other libraries'
                // constructors, the program's preinit array, IFUNC
                // resolvers and LD_AUDIT modules all run before ours and
                // may install one (an exec resets caught signals only).
                let on = match Internal::enter() {
                    Some(section) => {
                        let on = std::panic::catch_unwind(|| load_initial(pid)).unwrap_or(false);
                        if !on {
                            STATUS.store(OFF, Ordering::Release);
                        }
                        // After the start-up table is published, so a refresh
                        // can only replace it. A forced `disabled` would
                        // ignore whatever a refresh brings, and a thread
                        // makes every libc call of the process take its
                        // multi-threaded (slower) path.
                        if !forced_disabled() {
                            let _ = std::panic::catch_unwind(|| crate::load::refresh::start(pid));
                        }
                        drop(section);
                        on
                    }
                    // Called from inside the library: cannot happen before
                    // initialisation, but never risk recursion.
                    None => {
                        STATUS.store(OFF, Ordering::Release);
                        false
                    }
                };
                return on;
            }
            Err(ON) => return true,
            Err(OFF) => return false,
            Err(_) => {
                // Another thread is initialising. Our own re-entrant calls
                // (made while loading) are internal and skip checks.
                if crate::os::guard::check_depth() != 0 {
                    return false;
                }
                if INIT_PID.load(Ordering::Relaxed) != crate::os::sys::getpid() {
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

/// `pid`: this process's, asked once by [`initialise`].
fn load_initial(pid: i32) -> bool {
    let settings = config::load();
    let process = active::set_process(|| active::Process {
        program: active::Program::unread(),
        settings,
    });
    crate::events::emit::register_process_hooks(pid);
    for note in &process.settings.notes {
        crate::events::emit::status(note);
    }
    if forced_disabled() {
        // `LDGUARD_MODE=disabled` overrides every policy's mode: reading and
        // compiling one would only delay every program's start.
        return false;
    }
    // The thread-exit hook of the hooks' mapped path buffers, made here
    // and not on a thread's first check (musl's key creation takes a lock).
    crate::os::guard::scratch::prepare();
    match load_policy(&process.settings, &process.program) {
        Ok((table, origin)) => {
            active::publish(process, table, origin);
            // Kernel backstop: enforce mode, once per process tree.
            crate::load::backstop::install_at_start(process);
            !active::is_off()
        }
        Err(why) => match process.settings.on_no_policy {
            // Nothing configured at all: stay silent (a developer's shell
            // that inherited LD_PRELOAD, a test binary).
            OnNoPolicy::Allow if why == NOTHING_CONFIGURED => false,
            OnNoPolicy::Allow => {
                crate::events::emit::status(&format!(
                    "{why}; running unchecked (onNoPolicy: allow)"
                ));
                false
            }
            OnNoPolicy::Deny => {
                let table = compile_str(DENY_ALL, "built-in deny-all policy")
                    .expect("the built-in policy is valid");
                active::publish(process, table, "built-in deny-all policy".into());
                crate::events::emit::status(&format!(
                    "{why}; denying everything (onNoPolicy: deny)"
                ));
                true
            }
        },
    }
}

const NOTHING_CONFIGURED: &str =
    "no policy configured (set LDGUARD_POLICY or \"policy\" in the config)";

/// Where the layer builder bakes a policy into an image (`bakedPolicy`'s default).
const DEFAULT_BAKED_POLICY_C: &std::ffi::CStr = c"/etc/ldguard/policy.json";
const DEFAULT_BAKED_POLICY: &str = match DEFAULT_BAKED_POLICY_C.to_str() {
    Ok(path) => path,
    Err(_) => panic!("the baked policy's path is UTF-8"),
};

/// The fallback for `onNoPolicy: deny`.
const DENY_ALL: &str = r#"{"apiVersion":"ldguard.policy/v1","name":"ldguard-no-policy","mode":"enforce",
 "log":["deny"],"defaults":{"file":"deny","exec":"deny","network":"deny","syscall":"deny"}}"#;

/// Loads the configured policy, then the baked one. HTTP locations are
/// fetched out of band by the refresher, never here: at start-up they come
/// from the shared cache when it has them, else the baked policy is used.
fn load_policy(settings: &Settings, program: &[u8]) -> Result<(RuleTable, String), String> {
    let mut problems = Vec::new();
    // Looked for only when the configured policy cannot be used: a process
    // whose policy loads makes no system call for it.
    let baked = || {
        settings.baked_policy.or_else(|| {
            crate::os::sys::fstatat(libc::AT_FDCWD, DEFAULT_BAKED_POLICY_C.as_ptr(), 0)
                .is_ok()
                .then_some(DEFAULT_BAKED_POLICY)
        })
    };
    let configured = settings.policy;
    for location in configured
        .into_iter()
        .chain(std::iter::once_with(baked).flatten())
    {
        if location.starts_with("http://") || location.starts_with("https://") {
            match crate::load::policy_source::cached_policy(settings, location, program) {
                Ok(found) => return Ok(found),
                Err(why) => problems.push(why),
            }
            continue;
        }
        // Opened only when a table's recorded identity does not stand for
        // its bytes, or when it must be parsed (`table_file`).
        let file = crate::load::table_file::PolicyFile::new(location);
        let is_configured = settings.policy == Some(location);
        let cache_dir = std::path::Path::new(
            settings
                .cache_dir
                .unwrap_or(ldguard_source::DEFAULT_CACHE_DIR),
        );
        // A compiled table of exactly this file's bytes: nothing to parse,
        // check, index or hash, and the policy is only compared, never
        // copied. Anything wrong with it means parsing, below.
        if let Ok(found) = crate::load::table_file::load(cache_dir, location, &file, program) {
            if is_configured {
                crate::load::policy_source::started_with_sha256(settings, found.sha256_hex);
            }
            return Ok((found.table, location.to_owned()));
        }
        let bytes = match file.read_all() {
            Ok(bytes) => bytes,
            Err(e) => {
                problems.push(format!("policy {location}: {e}"));
                continue;
            }
        };
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(_) => {
                problems.push(format!(
                    "policy {location}: stream did not contain valid UTF-8"
                ));
                continue;
            }
        };
        // Straight to this program's table: the generic index would be
        // built only to be replaced (a fifth of the start-up cost).
        match compile_str_for_program(&text, location, program) {
            Ok(table) => {
                // For the next process; best effort (a read-only or
                // foreign cache directory only costs them the parse).
                let _ = crate::load::table_file::store(
                    cache_dir,
                    location,
                    &text,
                    file.identity().as_ref(),
                    &table,
                    program,
                );
                if is_configured {
                    crate::load::policy_source::started_with(settings, text);
                }
                return Ok((table, location.to_owned()));
            }
            Err(diags) => problems.push(format!("policy {location} is invalid: {diags}")),
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

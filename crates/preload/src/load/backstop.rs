//! Installs the kernel backstop (crate `ldguard-backstop`) at start-up: in
//! `enforce` mode, when the policy asks for one, in the first instrumented
//! process of a process tree, before the program has threads of its own.
//! Every later process inherits it, instrumented or not (static binaries,
//! raw system calls, io_uring), and nothing can loosen it: a later switch
//! to `permissive` or `disabled` applies to the hooks only.

use std::path::PathBuf;

use ldguard_backstop::{Needs, Plan};
use ldguard_events::SinkSpec;
use ldguard_policy::{LandlockLevel, Mode};

use crate::process::active::Process;

/// Marks a process tree that already has the backstop. Trusted only
/// together with `no_new_privs`, which both mechanisms set and nothing can
/// clear: a forged marker without it is ignored.
const MARKER: &str = "LDGUARD_BACKSTOP";

/// Exit status of a process refused because `landlock: "required"` could
/// not be met (as a shell reports a command it cannot execute).
const REFUSED: i32 = 126;

/// Called once per process, right after the start-up policy is published.
pub fn install_at_start(process: &Process) {
    let Some(active) = crate::process::active::published() else {
        return;
    };
    if active.mode != Mode::Enforce {
        return;
    }
    // Without a backstop there is nothing to plan: do not make a table
    // read from a compiled file parse its policy for nothing.
    if active.table.backstop().is_none() {
        return;
    }
    let policy = active.table.policy();
    let Some(plan) = Plan::of(policy) else {
        return;
    };
    if std::env::var_os(MARKER).is_some() && no_new_privs() {
        return;
    }
    let foreign = foreign_threads();
    if foreign > 0 {
        crate::events::emit::status(&format!(
            "kernel backstop of policy `{}` not installed: the program already runs {foreign} other thread(s), which Landlock would not cover",
            policy.name
        ));
        return;
    }
    match ldguard_backstop::install(&plan, &needs(process)) {
        Ok(done) => {
            // Single-threaded (checked above): nothing reads the
            // environment concurrently.
            std::env::set_var(MARKER, "1");
            crate::events::emit::status(&format!(
                "kernel backstop of policy `{}` installed for this process tree: {done}; it only ever tightens: switching the policy to permissive or disabled later does not loosen it in these processes",
                policy.name
            ));
        }
        Err(why) if plan.backstop.landlock == LandlockLevel::Required => {
            crate::events::emit::status(&format!(
                "kernel backstop of policy `{}` required but not installed ({why}); refusing to run",
                policy.name
            ));
            crate::events::emit::flush(std::time::Duration::from_millis(500));
            // SAFETY: _exit has no preconditions; nothing of the program
            // has run yet.
            unsafe { libc::_exit(REFUSED) };
        }
        Err(why) => crate::events::emit::status(&format!(
            "kernel backstop of policy `{}` not installed: {why}",
            policy.name
        )),
    }
}

fn no_new_privs() -> bool {
    // SAFETY: PR_GET_NO_NEW_PRIVS takes no pointer and only returns a flag.
    unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1 }
}

/// Threads of the process other than the calling one and ldguard's own
/// (the event writer and policy refresher run only library code).
fn foreign_threads() -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    // SAFETY: gettid has no preconditions.
    let me = unsafe { libc::syscall(libc::SYS_gettid) }.to_string();
    tasks
        .flatten()
        .filter(|t| t.file_name().to_str() != Some(me.as_str()))
        .filter(|t| {
            let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            !comm.trim_end().starts_with("ldguard-")
        })
        .count()
}

/// What the library itself reads and writes after start-up (policy,
/// configuration, TLS material, event file, shared cache), on top of the
/// loader's library directories.
fn needs(process: &Process) -> Needs {
    let s = &process.settings;
    let mut needs = Needs::loader();
    let files = [&s.policy, &s.baked_policy, &s.token_file, &s.ca_file];
    needs.read.extend(
        files
            .into_iter()
            .flatten()
            .filter(|p| p.starts_with('/'))
            .map(PathBuf::from),
    );
    if let SinkSpec::File(path) = &s.events {
        if let Some(dir) = path.parent() {
            // Appending needs no read right: a secret beside the event
            // file stays denied.
            needs.write.push(dir.to_path_buf());
        }
    }
    let cache = s.cache_dir.unwrap_or(ldguard_source::DEFAULT_CACHE_DIR);
    needs.write.push(PathBuf::from(cache));
    needs.read.push(PathBuf::from(cache));
    needs
}

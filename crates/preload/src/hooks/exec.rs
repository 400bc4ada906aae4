//! Exec hooks. The target is checked as given (made absolute; for the `p`
//! variants, found along `PATH` as libc will) and as resolved (`/bin/sh` and
//! `/usr/bin/dash`). Queued events are flushed before the image is
//! replaced.

use crate::check::{fail, judge, run, unresolvable, Verdict};
use crate::emit;
use crate::real::next;
use crate::record::Record;
use crate::resolve::{self, Found, PathBuf};
use crate::sys::{self, cstr, raw_syscall};
use ldguard_policy::{Access, Call, Kind, Request};
use libc::{c_char, c_int, c_long, pid_t, posix_spawn_file_actions_t, posix_spawnattr_t, FILE};
use std::ptr::null_mut;

type Argv = *const *const c_char;

/// Finds `file` along `PATH` the way execvp does: the first executable
/// candidate, spelled as execvp will spell it, into `out`. Names with a
/// slash are not searched.
fn search_path(file: &[u8], out: &mut PathBuf) -> bool {
    // SAFETY: getenv reads the environment without allocating.
    let path_var = unsafe { cstr(libc::getenv(c"PATH".as_ptr())) }.unwrap_or(b"/bin:/usr/bin");
    for dir in path_var.split(|&b| b == b':') {
        let dir: &[u8] = if dir.is_empty() { b"." } else { dir };
        if out.set(&[dir, b"/", file]).is_none() {
            continue;
        }
        // SAFETY: NUL-terminated candidate; access is not hooked.
        if unsafe { libc::access(out.as_bytes().as_ptr().cast(), libc::X_OK) } == 0 {
            return true;
        }
    }
    false
}

/// Checks an exec of `path` (relative to `dirfd`) with arguments `argv`.
/// `search`: the `p` variants look bare names up along PATH.
///
/// Decided on the lexical absolute path and on the object the kernel
/// reaches from `(dirfd, path)` as spelled (so `lnk/../bin/id` is
/// `/usr/bin/id` when `lnk` leads into `/usr/lib`), never on the collapsed
/// spelling alone. No descriptor free: a `readlink` walk. No way to tell
/// while a rule could deny: denied.
pub fn check_exec(call: Call, dirfd: c_int, path: &[u8], argv: Argv, search: bool) -> Verdict {
    run(|active| {
        resolve::with_scratch(|s| {
            let (scratch, abs, res) = (&mut s.a, &mut s.b, &mut s.c);
            let mut found = PathBuf::new();
            let given: &[u8] = if search && !path.contains(&b'/') {
                if !search_path(path, &mut found) {
                    // Nothing to run: the real call fails with ENOENT itself.
                    return Verdict::Allow;
                }
                found.as_bytes()
            } else {
                path
            };
            let needs = active.table.needs_resolution(Kind::Exec, Access::Read);
            let base = Request::new(Kind::Exec, call, active.program);
            let fill = |r: &mut Record| record_args(r, argv);
            let Some(abs) = resolve::lexical(dirfd, given, scratch, abs) else {
                let req = Request {
                    path: Some(given),
                    ..base
                };
                if !needs {
                    return judge(active, &req, fill);
                }
                return match resolve::kernel_path(dirfd, given, true, scratch, res) {
                    Found::Path => {
                        let req = Request {
                            path: Some(res.as_bytes()),
                            ..base
                        };
                        judge(active, &req, fill)
                    }
                    // Nothing to run: the exec fails by itself.
                    Found::Unreachable => Verdict::Allow,
                    Found::Unknown => unresolvable(active, &req),
                };
            };
            let req = Request {
                path: Some(abs),
                ..base
            };
            if !needs || resolve::without_links(dirfd, given, true, scratch) {
                return judge(active, &req, fill);
            }
            let found = resolve::kernel_path(dirfd, given, true, scratch, res);
            if found == Found::Unknown {
                return unresolvable(active, &req);
            }
            let req = Request {
                resolved_path: (found == Found::Path && res.as_bytes() != abs)
                    .then(|| res.as_bytes()),
                ..req
            };
            judge(active, &req, fill)
        })
    })
}

fn record_args(r: &mut Record, argv: Argv) {
    if argv.is_null() {
        return;
    }
    for i in 0..256 {
        // SAFETY: argv is a NULL-terminated array of C strings.
        let arg = unsafe { *argv.add(i) };
        // SAFETY: each entry is NUL-terminated.
        let Some(bytes) = (unsafe { cstr(arg) }) else {
            break;
        };
        if i > 0 && !r.args.push(b"\0") || !r.args.push(bytes) {
            break;
        }
    }
}

/// The shell `system` and `popen` run: `/bin/sh -c CMD`.
fn check_shell(call: Call, cmd: *const c_char) -> Verdict {
    let argv: [*const c_char; 4] = [c"sh".as_ptr(), c"-c".as_ptr(), cmd, std::ptr::null()];
    check_exec(call, libc::AT_FDCWD, b"/bin/sh", argv.as_ptr(), false)
}

fn bytes<'a>(p: *const c_char) -> &'a [u8] {
    // SAFETY: exec paths are NUL-terminated (null is treated as empty,
    // and the real call reports EFAULT).
    unsafe { cstr(p) }.unwrap_or(b"")
}

/// After an allowed check: flush queued events, then run the real exec.
fn proceed<T>(f: impl FnOnce() -> T) -> T {
    if !crate::state::is_off() {
        emit::flush_before_exec();
    }
    f()
}

type ExecveFn = unsafe extern "C" fn(*const c_char, Argv, Argv) -> c_int;

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn execve(path: *const c_char, argv: Argv, envp: Argv) -> c_int {
    if let Verdict::Deny(e) = check_exec(Call::Execve, libc::AT_FDCWD, bytes(path), argv, false) {
        return fail(e, -1);
    }
    // SAFETY: forwarding.
    proceed(|| match next!(execve: ExecveFn) {
        Some(f) => unsafe { f(path, argv, envp) },
        None => fail(libc::ENOSYS, -1),
    })
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn execv(path: *const c_char, argv: Argv) -> c_int {
    if let Verdict::Deny(e) = check_exec(Call::Execv, libc::AT_FDCWD, bytes(path), argv, false) {
        return fail(e, -1);
    }
    // SAFETY: forwarding.
    proceed(
        || match next!(execv: unsafe extern "C" fn(*const c_char, Argv) -> c_int) {
            Some(f) => unsafe { f(path, argv) },
            None => fail(libc::ENOSYS, -1),
        },
    )
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn execvp(file: *const c_char, argv: Argv) -> c_int {
    if let Verdict::Deny(e) = check_exec(Call::Execvp, libc::AT_FDCWD, bytes(file), argv, true) {
        return fail(e, -1);
    }
    // SAFETY: forwarding.
    proceed(
        || match next!(execvp: unsafe extern "C" fn(*const c_char, Argv) -> c_int) {
            Some(f) => unsafe { f(file, argv) },
            None => fail(libc::ENOSYS, -1),
        },
    )
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn execvpe(file: *const c_char, argv: Argv, envp: Argv) -> c_int {
    if let Verdict::Deny(e) = check_exec(Call::Execvpe, libc::AT_FDCWD, bytes(file), argv, true) {
        return fail(e, -1);
    }
    // SAFETY: forwarding.
    proceed(
        || match next!(execvpe: unsafe extern "C" fn(*const c_char, Argv, Argv) -> c_int) {
            Some(f) => unsafe { f(file, argv, envp) },
            None => fail(libc::ENOSYS, -1),
        },
    )
}

/// Target of the C shim's execl/execlp/execle, which collected the
/// argument list into `argv`.
///
/// # Safety
/// Called by the shim with a NULL-terminated argv.
#[no_mangle]
pub unsafe extern "C" fn ldguard_execl(
    which: c_int,
    path: *const c_char,
    argv: Argv,
    envp: Argv,
) -> c_int {
    let (call, search) = match which {
        0 => (Call::Execl, false),
        1 => (Call::Execlp, true),
        _ => (Call::Execle, false),
    };
    if let Verdict::Deny(e) = check_exec(call, libc::AT_FDCWD, bytes(path), argv, search) {
        return fail(e, -1);
    }
    // SAFETY: forwarding to the array forms, as glibc's execl* do.
    proceed(|| unsafe {
        if search {
            match next!(execvpe: unsafe extern "C" fn(*const c_char, Argv, Argv) -> c_int) {
                Some(f) => f(path, argv, envp),
                None => fail(libc::ENOSYS, -1),
            }
        } else {
            match next!(execve: ExecveFn) {
                Some(f) => f(path, argv, envp),
                None => fail(libc::ENOSYS, -1),
            }
        }
    })
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn fexecve(fd: c_int, argv: Argv, envp: Argv) -> c_int {
    let mut target = [0u8; resolve::PATH_CAP];
    if let Some(n) = sys::fd_path(fd, &mut target) {
        if let Verdict::Deny(e) =
            check_exec(Call::Fexecve, libc::AT_FDCWD, &target[..n], argv, false)
        {
            return fail(e, -1);
        }
    }
    // SAFETY: forwarding.
    proceed(
        || match next!(fexecve: unsafe extern "C" fn(c_int, Argv, Argv) -> c_int) {
            Some(f) => unsafe { f(fd, argv, envp) },
            None => fail(libc::ENOSYS, -1),
        },
    )
}

/// execveat is a glibc function only since 2.34.
///
/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn execveat(
    dirfd: c_int,
    path: *const c_char,
    argv: Argv,
    envp: Argv,
    flags: c_int,
) -> c_int {
    let given = bytes(path);
    let verdict = if given.is_empty() && flags & libc::AT_EMPTY_PATH != 0 {
        let mut target = [0u8; resolve::PATH_CAP];
        match sys::fd_path(dirfd, &mut target) {
            Some(n) => check_exec(Call::Execveat, libc::AT_FDCWD, &target[..n], argv, false),
            None => Verdict::Allow,
        }
    } else {
        check_exec(Call::Execveat, dirfd, given, argv, false)
    };
    if let Verdict::Deny(e) = verdict {
        return fail(e, -1);
    }
    type F = unsafe extern "C" fn(c_int, *const c_char, Argv, Argv, c_int) -> c_int;
    proceed(|| match next!(execveat: F) {
        // SAFETY: forwarding.
        Some(f) => unsafe { f(dirfd, path, argv, envp, flags) },
        None => raw_syscall(
            libc::SYS_execveat,
            [
                dirfd as c_long,
                path as c_long,
                argv as c_long,
                envp as c_long,
                flags as c_long,
                0,
            ],
        ) as c_int,
    })
}

type SpawnFn = unsafe extern "C" fn(
    *mut pid_t,
    *const c_char,
    *const posix_spawn_file_actions_t,
    *const posix_spawnattr_t,
    Argv,
    Argv,
) -> c_int;

/// posix_spawn returns the error number instead of setting errno.
///
/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn posix_spawn(
    pid: *mut pid_t,
    path: *const c_char,
    actions: *const posix_spawn_file_actions_t,
    attr: *const posix_spawnattr_t,
    argv: Argv,
    envp: Argv,
) -> c_int {
    if let Verdict::Deny(e) = check_exec(Call::PosixSpawn, libc::AT_FDCWD, bytes(path), argv, false)
    {
        return e;
    }
    match next!(posix_spawn: SpawnFn) {
        // SAFETY: forwarding.
        Some(f) => unsafe { f(pid, path, actions, attr, argv, envp) },
        None => libc::ENOSYS,
    }
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn posix_spawnp(
    pid: *mut pid_t,
    file: *const c_char,
    actions: *const posix_spawn_file_actions_t,
    attr: *const posix_spawnattr_t,
    argv: Argv,
    envp: Argv,
) -> c_int {
    if let Verdict::Deny(e) = check_exec(Call::PosixSpawnp, libc::AT_FDCWD, bytes(file), argv, true)
    {
        return e;
    }
    match next!(posix_spawnp: SpawnFn) {
        // SAFETY: forwarding.
        Some(f) => unsafe { f(pid, file, actions, attr, argv, envp) },
        None => libc::ENOSYS,
    }
}

/// `system(NULL)` only asks whether a shell exists and is not checked.
///
/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn system(cmd: *const c_char) -> c_int {
    if !cmd.is_null() {
        if let Verdict::Deny(e) = check_shell(Call::System, cmd) {
            return fail(e, -1);
        }
    }
    match next!(system: unsafe extern "C" fn(*const c_char) -> c_int) {
        // SAFETY: forwarding.
        Some(f) => unsafe { f(cmd) },
        None => fail(libc::ENOSYS, -1),
    }
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn popen(cmd: *const c_char, mode: *const c_char) -> *mut FILE {
    if let Verdict::Deny(e) = check_shell(Call::Popen, cmd) {
        return fail(e, null_mut());
    }
    match next!(popen: unsafe extern "C" fn(*const c_char, *const c_char) -> *mut FILE) {
        // SAFETY: forwarding.
        Some(f) => unsafe { f(cmd, mode) },
        None => fail(libc::ENOSYS, null_mut()),
    }
}

/// `_exit` skips `atexit` handlers, and some programs always leave through
/// it (dash does): flush queued events first. Costs nothing when no event
/// is pending.
///
/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn _exit(status: c_int) -> ! {
    emit::flush(std::time::Duration::from_secs(1));
    if let Some(f) = next!(_exit: unsafe extern "C" fn(c_int) -> !) {
        // SAFETY: forwarding.
        unsafe { f(status) }
    }
    raw_syscall(libc::SYS_exit_group, [status as c_long, 0, 0, 0, 0, 0]);
    // SAFETY: exit_group does not return.
    unsafe { std::hint::unreachable_unchecked() }
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn _Exit(status: c_int) -> ! {
    // SAFETY: same contract.
    unsafe { _exit(status) }
}

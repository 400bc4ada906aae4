//! Exec hooks. The target is checked as given (made absolute; for the `p`
//! variants, found along `PATH` as libc will) and as resolved (`/bin/sh` and
//! `/usr/bin/dash`). Queued events are flushed before the image is
//! replaced.
//!
//! Here the hooks of the exec family, `system`, `popen` and `dlopen`'s
//! check; in `chain` what an exec runs, decided (a `#!` chain, the
//! loader's program, drift); in `plan` the objects decided, held, and
//! running them; in `spawn` the `posix_spawn` hooks and their file
//! actions.

use crate::decide::check::{self, fail, judge, run, unresolvable, Verdict};
use crate::decide::drift::{self, Drift, Use};
use crate::decide::resolve::{self, CPath, Found, PathBuf};
use crate::events::emit;
use crate::events::record::{Inline, Record};
use crate::load::state::Active;
use crate::os::real::next;
use crate::os::sys::{self, cstr, raw_syscall};
use crate::process::script_comm::{self, Who};
use ldguard_policy::{Access, Action, Call, Kind, Request};
use libc::{c_char, c_int, c_long, pid_t, posix_spawn_file_actions_t, posix_spawnattr_t, FILE};
use std::ptr::null_mut;

type Argv = *const *const c_char;

mod chain;
mod plan;
mod spawn;

use chain::*;
pub use chain::{check_exec, check_exec_fd};
use plan::*;
use spawn::*;

/// Where an exec's path starts and how its last name is taken: what
/// `execveat` adds to `execve`.
#[derive(Clone, Copy)]
struct At {
    dirfd: c_int,
    /// `AT_SYMLINK_NOFOLLOW`: a last name that is a link is not run
    /// (`ELOOP`); links on the way are followed.
    nofollow: bool,
    /// The script's name the kernel would hand an interpreter (the path
    /// as given, or `/dev/fd/N/path` relative to a descriptor).
    filename: *const c_char,
}

impl At {
    /// `execve`'s: from the current directory, a last link followed.
    fn cwd(path: *const c_char) -> At {
        At {
            dirfd: libc::AT_FDCWD,
            nofollow: false,
            filename: path,
        }
    }
}

/// An exec of `path` checked and run on the object decided ([`Plan`]);
/// returns only when it did not run: `Err(errno)` when the policy denied
/// it, else `Ok(errno)` of the failed exec.
fn exec_decided(
    call: Call,
    at: At,
    path: CPath<'_>,
    argv: Argv,
    envp: Argv,
) -> Result<c_int, c_int> {
    if at.nofollow && names_link(at.dirfd, path) {
        // The kernel's answer, before anything is looked at or decided.
        return Ok(libc::ELOOP);
    }
    let mut plan = Plan::new();
    // Decisions made again because the file changed under the exec.
    let mut changes = 0;
    loop {
        let verdict =
            run(|active| check_chain(active, call, at.dirfd, path, argv, Some(&mut plan)));
        if let Verdict::Deny(e) = verdict {
            return Err(e);
        }
        let ran = plan.run(at.filename, argv, envp);
        let resolve = plan.resolve;
        // (Only the file's own name: an interpreter's is followed.)
        let file_is_link = || matches!(&plan.file, Hold::Held(h) if h.lexical && h.is_link());
        if matches!(ran, Ran::Again) && at.nofollow && file_is_link() {
            // The last name held is a link now: not followed.
            return Ok(libc::ELOOP);
        }
        plan = Plan::new();
        match ran {
            Ran::Failed(e) => return Ok(e),
            // Renamed over since it was read: decided again on what is
            // there now, the file itself held (`Hold::pin`), so what is
            // read then is what runs.
            Ran::Changed if changes < MAX_CHANGES => {
                changes += 1;
                plan.resolve = resolve;
                plan.pin = true;
            }
            Ran::Changed => return Ok(libc::ENOENT),
            Ran::Again if !resolve => plan.resolve = true,
            // A link again where the kernel's path had none: swapped
            // during this exec.
            Ran::Again => return Ok(libc::ELOOP),
            Ran::ByPath => {
                proceed(|| real_exec_at(at, path.ptr(), argv, envp));
                return Ok(sys::errno());
            }
        }
    }
}

/// How often an exec is decided again when the file it read was renamed
/// over before the kernel ran it.
const MAX_CHANGES: u32 = 3;

/// Whether the last name of `(dirfd, path)` is a link (errno untouched).
fn names_link(dirfd: c_int, path: CPath<'_>) -> bool {
    sys::fstatat(dirfd, path.ptr(), libc::AT_SYMLINK_NOFOLLOW)
        .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFLNK)
}

/// [`exec_hook_at`] of a path from the current directory (`execve`).
fn exec_hook(call: Call, path: *const c_char, argv: Argv, envp: Argv) -> c_int {
    exec_hook_at(call, At::cwd(path), path, argv, envp)
}

/// [`exec_decided`] as a hook's answer: `-1` with errno. Checks off, or
/// no exec rule that looks at paths (every object gets the same
/// decision): checked and run by path, nothing held (a forked child
/// touches no page of the holding code).
fn exec_hook_at(call: Call, at: At, path: *const c_char, argv: Argv, envp: Argv) -> c_int {
    if !holds_execs() {
        let spelled = c_path(path);
        if let Verdict::Deny(e) = check_exec(call, at.dirfd, spelled, argv) {
            return fail(e, -1);
        }
        return proceed(|| real_exec_at(at, path, argv, envp));
    }
    exec_decided_cold(call, at, c_path(path), argv, envp)
}

/// Whether execs are held ([`Plan`]): checks on, and an exec rule that
/// looks at paths or drift decided on the file's contents.
fn holds_execs() -> bool {
    crate::load::state::current().is_some_and(holds_objects)
}

/// Whether `active`'s exec decisions depend on which object a path names:
/// an exec rule that looks at paths, or drift (which reads the file).
fn holds_objects(active: &Active) -> bool {
    active.table.needs_resolution(Kind::Exec, Access::Read)
        || active.table.drift().is_some_and(|a| a != Action::Allow)
}

#[inline(never)]
fn exec_decided_cold(call: Call, at: At, path: CPath<'_>, argv: Argv, envp: Argv) -> c_int {
    match exec_decided(call, at, path, argv, envp) {
        Ok(e) | Err(e) => fail(e, -1),
    }
}

/// The shell `system` and `popen` run: `/bin/sh -c CMD`.
fn check_shell(call: Call, cmd: *const c_char) -> Verdict {
    let argv: [*const c_char; 4] = [c"sh".as_ptr(), c"-c".as_ptr(), cmd, std::ptr::null()];
    check_exec(call, libc::AT_FDCWD, SHELL, argv.as_ptr())
}

const SHELL: CPath<'static> = match CPath::new(b"/bin/sh\0") {
    Some(c) => c,
    None => CPath::EMPTY,
};

/// A path argument as given (null is treated as empty, and the real call
/// reports `EFAULT`).
fn c_path<'a>(p: *const c_char) -> CPath<'a> {
    // SAFETY: exec paths are NUL-terminated C strings (or null).
    unsafe { CPath::from_ptr(p) }
}

fn bytes<'a>(p: *const c_char) -> &'a [u8] {
    // SAFETY: exec paths are NUL-terminated (null is treated as empty,
    // and the real call reports EFAULT).
    unsafe { cstr(p) }.unwrap_or(b"")
}

/// After an allowed check: flush queued events, then run the real exec.
fn proceed<T>(f: impl FnOnce() -> T) -> T {
    before_exec();
    f()
}

/// Before an allowed exec replaces the image: write out queued events.
pub fn before_exec() {
    if !crate::load::state::is_off() {
        emit::flush_before_exec();
    }
}

type ExecveFn = unsafe extern "C" fn(*const c_char, Argv, Argv) -> c_int;

/// libc's `execve`: one cached lookup for every exec hook, made before
/// the first fork (see `real::EXECVE`).
fn next_execve() -> Option<ExecveFn> {
    crate::os::real::EXECVE.get().map(|p| {
        // SAFETY: the symbol is libc's `execve`, whose C signature
        // `ExecveFn` transcribes.
        unsafe { std::mem::transmute::<*mut std::ffi::c_void, ExecveFn>(p) }
    })
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn execve(path: *const c_char, argv: Argv, envp: Argv) -> c_int {
    execve_hook(path, argv, envp)
}

/// `execve` as its hook makes it, also for `syscall(SYS_execve, …)`.
pub fn execve_hook(path: *const c_char, argv: Argv, envp: Argv) -> c_int {
    exec_hook(Call::Execve, path, argv, envp)
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn execv(path: *const c_char, argv: Argv) -> c_int {
    exec_hook(Call::Execv, path, argv, environ())
}

/// `execvp`, `execvpe`, `execlp`: the `PATH` search is performed here, the
/// way glibc performs it, and each candidate goes through the checked
/// `execve`, so the file checked is the file the kernel runs (a directory
/// or a non-executable file of the same name earlier in `PATH` is skipped
/// by the kernel, not by the check). glibc's rules: a name with a slash is
/// not searched; an empty element is the current directory; `EACCES` is
/// remembered and reported when nothing ran; `ENOENT`, `ESTALE`,
/// `ENOTDIR`, `ENODEV`, `ETIMEDOUT` go on to the next element; any other
/// error stops; `ENOEXEC` runs the file with `/bin/sh`.
unsafe fn exec_search(call: Call, file: *const c_char, argv: Argv, envp: Argv) -> c_int {
    let name = bytes(file);
    if name.is_empty() {
        return fail(libc::ENOENT, -1);
    }
    if name.contains(&b'/') {
        return match try_exec(call, name, argv, envp, false) {
            Err(e) => fail(e, -1),
            Ok(()) => -1,
        };
    }
    if name.len() > 255 {
        return fail(libc::ENAMETOOLONG, -1);
    }
    // SAFETY: getenv reads the environment without allocating.
    let path_var = unsafe { cstr(libc::getenv(c"PATH".as_ptr())) }.unwrap_or(b"/bin:/usr/bin");
    let mut eacces = false;
    let mut candidate = PathBuf::new();
    for dir in path_var.split(|&b| b == b':') {
        let parts: [&[u8]; 3] = if dir.is_empty() {
            [name, b"", b""]
        } else {
            [dir, b"/", name]
        };
        if candidate.set(&parts).is_none() {
            continue;
        }
        if let Err(e) = try_exec(call, candidate.as_bytes(), argv, envp, true) {
            return fail(e, -1);
        }
        match sys::errno() {
            libc::EACCES => eacces = true,
            libc::ENOENT | libc::ESTALE | libc::ENOTDIR | libc::ENODEV | libc::ETIMEDOUT => {}
            _ => return -1,
        }
    }
    if eacces {
        sys::set_errno(libc::EACCES);
    }
    -1
}

/// One candidate of [`exec_search`]: checked, then run. Returns only when
/// it did not run: `Err(errno)` when the policy denied it (the search
/// stops), `Ok` with errno set by the failed exec. `probe`: a candidate
/// the kernel cannot reach is skipped without a check (a deny rule on a
/// directory earlier in `PATH` must not stop a search that passes it).
fn try_exec(call: Call, path: &[u8], argv: Argv, envp: Argv, probe: bool) -> Result<(), c_int> {
    let mut z = PathBuf::new();
    if z.set(&[path, b"\0"]).is_none() {
        sys::set_errno(libc::ENAMETOOLONG);
        return Ok(());
    }
    let spelled = CPath::new(z.as_bytes()).unwrap_or(CPath::EMPTY);
    let c_path = spelled.ptr();
    if probe {
        let fd = sys::open_path(libc::AT_FDCWD, c_path, 0);
        if fd < 0 {
            let e = sys::errno();
            if matches!(
                e,
                libc::ENOENT | libc::ENOTDIR | libc::EACCES | libc::ELOOP | libc::ENAMETOOLONG
            ) {
                return Ok(()); // errno is what the exec would have failed with
            }
        } else {
            sys::close(fd);
        }
    }
    let failed = exec_decided(call, At::cwd(c_path), spelled, argv, envp)?;
    sys::set_errno(failed);
    if failed != libc::ENOEXEC {
        return Ok(());
    }
    // glibc runs a file without `#!` or ELF header with the shell.
    let mut shell_argv: [*const c_char; 256] = [std::ptr::null(); 256];
    shell_argv[0] = c"/bin/sh".as_ptr();
    shell_argv[1] = c_path;
    let mut i = 1;
    while !argv.is_null() && i + 1 < shell_argv.len() - 1 {
        // SAFETY: argv is a NULL-terminated array.
        let a = unsafe { *argv.add(i) };
        if a.is_null() {
            break;
        }
        shell_argv[i + 1] = a;
        i += 1;
    }
    let failed = exec_decided(call, At::cwd(SHELL.ptr()), SHELL, shell_argv.as_ptr(), envp)?;
    sys::set_errno(failed);
    Ok(())
}

fn real_execve(path: *const c_char, argv: Argv, envp: Argv) -> c_int {
    match next_execve() {
        // SAFETY: forwarding the caller's arguments.
        Some(f) => unsafe { f(path, argv, envp) },
        None => fail(libc::ENOSYS, -1),
    }
}

/// The exec as given, by path: `execve`, or `execveat` from a descriptor
/// or with `AT_SYMLINK_NOFOLLOW`.
fn real_exec_at(at: At, path: *const c_char, argv: Argv, envp: Argv) -> c_int {
    if at.dirfd == libc::AT_FDCWD && !at.nofollow {
        return real_execve(path, argv, envp);
    }
    let flags = if at.nofollow {
        libc::AT_SYMLINK_NOFOLLOW
    } else {
        0
    };
    real_execveat(at.dirfd, path, argv, envp, flags)
}

fn real_execveat(dirfd: c_int, path: *const c_char, argv: Argv, envp: Argv, flags: c_int) -> c_int {
    type F = unsafe extern "C" fn(c_int, *const c_char, Argv, Argv, c_int) -> c_int;
    match next!(execveat: F) {
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
    }
}

fn environ() -> Argv {
    extern "C" {
        static environ: *const *const c_char;
    }
    // SAFETY: reading libc's current environment pointer.
    unsafe { environ }
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn execvp(file: *const c_char, argv: Argv) -> c_int {
    // SAFETY: same contract.
    unsafe { exec_search(Call::Execvp, file, argv, environ()) }
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn execvpe(file: *const c_char, argv: Argv, envp: Argv) -> c_int {
    // SAFETY: same contract.
    unsafe { exec_search(Call::Execvpe, file, argv, envp) }
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
    let call = match which {
        0 => Call::Execl,
        // SAFETY: same contract.
        1 => return unsafe { exec_search(Call::Execlp, path, argv, envp) },
        _ => Call::Execle,
    };
    exec_hook(call, path, argv, envp)
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn fexecve(fd: c_int, argv: Argv, envp: Argv) -> c_int {
    if let Verdict::Deny(e) = check_exec_fd(Call::Fexecve, fd, argv) {
        return fail(e, -1);
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
    execveat_hook(dirfd, path, argv, envp, flags)
}

/// `execveat` as its hook makes it, also for `syscall(SYS_execveat, …)`:
/// a path (from the current directory, the root or a descriptor, a last
/// link followed or not) runs as `execve` runs one, on the object decided;
/// a descriptor's own object (`AT_EMPTY_PATH`, as `fexecve`) is checked
/// and run as given, and so are flags the kernel refuses (`EINVAL`).
pub fn execveat_hook(
    dirfd: c_int,
    path: *const c_char,
    argv: Argv,
    envp: Argv,
    flags: c_int,
) -> c_int {
    let given = c_path(path);
    let known = libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH;
    if flags & !known == 0 && !given.bytes().is_empty() {
        let nofollow = flags & libc::AT_SYMLINK_NOFOLLOW != 0;
        let from_cwd_or_root = dirfd == libc::AT_FDCWD || given.bytes().first() == Some(&b'/');
        if from_cwd_or_root {
            let at = At {
                dirfd: libc::AT_FDCWD,
                nofollow,
                filename: path,
            };
            return exec_hook_at(Call::Execveat, at, path, argv, envp);
        }
        return execveat_relative(dirfd, given, argv, envp, nofollow);
    }
    let verdict = if given.bytes().is_empty() && flags & libc::AT_EMPTY_PATH != 0 {
        check_exec_fd(Call::Execveat, dirfd, argv)
    } else {
        check_exec(Call::Execveat, dirfd, given, argv)
    };
    if let Verdict::Deny(e) = verdict {
        return fail(e, -1);
    }
    proceed(|| real_execveat(dirfd, path, argv, envp, flags))
}

/// A path relative to a descriptor: the name a script's interpreter gets
/// is the kernel's `/dev/fd/N/path` (which fails, as the kernel's own
/// does, when the descriptor is closed on exec).
#[inline(never)]
fn execveat_relative(
    dirfd: c_int,
    given: CPath<'_>,
    argv: Argv,
    envp: Argv,
    nofollow: bool,
) -> c_int {
    let mut filename = PathBuf::new();
    let mut number = [0u8; 32];
    let n = sys::proc_fd_path(dirfd, &mut number);
    let digits = number.get(b"/proc/self/fd/".len()..n).unwrap_or_default();
    if filename
        .set(&[b"/dev/fd/", digits, b"/", given.bytes()])
        .is_none()
    {
        return fail(libc::ENAMETOOLONG, -1);
    }
    let at = At {
        dirfd,
        nofollow,
        filename: filename.c_path().ptr(),
    };
    exec_hook_at(Call::Execveat, at, given.ptr(), argv, envp)
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

/// What the shim's `dlopen` passes on when drift denies a load: a name that
/// cannot exist, so the real `dlopen` fails with its usual `dlerror()`.
const DENIED_LIBRARY: &std::ffi::CStr =
    c"/proc/ldguard-blocked/loading this file is denied by the ldguard policy (drift)";

/// The shim's `dlopen` (in assembly, so the real one keeps the program's
/// return address) asks this first: the file name to load, the caller's
/// or [`DENIED_LIBRARY`].
///
/// # Safety
/// `file` is null or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn ldguard_dlopen_check(file: *const c_char, mode: c_int) -> *const c_char {
    // SAFETY: null or NUL-terminated, per the contract.
    let Some(name) = (unsafe { cstr(file) }) else {
        return file; // dlopen(NULL): the program itself
    };
    if mode & libc::RTLD_NOLOAD != 0 || name.is_empty() {
        return file;
    }
    match run(|active| check_load(active, name)) {
        Verdict::Allow => file,
        Verdict::Deny(_) => DENIED_LIBRARY.as_ptr(),
    }
}

/// The next `dlopen` (libc's), or null.
#[no_mangle]
pub extern "C" fn ldguard_dlopen_next() -> *mut std::ffi::c_void {
    next!(dlopen: unsafe extern "C" fn(*const c_char, c_int) -> *mut std::ffi::c_void)
        .map_or(null_mut(), |f| f as *mut std::ffi::c_void)
}

/// Drift for a library about to be loaded as `name`. A name with a slash is
/// the file itself (relative to the cwd); a bare name that is already
/// loaded maps nothing new; otherwise the loader's search is followed
/// through `LD_LIBRARY_PATH` and the system library directories (a
/// library found only through the caller's `RUNPATH` or `ld.so.conf`
/// directories outside those is not checked: docs/security.md).
fn check_load(active: &'static Active, name: &[u8]) -> Verdict {
    let Some(action) = active.table.drift() else {
        return Verdict::Allow;
    };
    if action == Action::Allow {
        return Verdict::Allow;
    }
    let mut found = PathBuf::new();
    let path: &[u8] = if name.contains(&b'/') {
        name
    } else {
        type DlopenFn = unsafe extern "C" fn(*const c_char, c_int) -> *mut std::ffi::c_void;
        let mut z = PathBuf::new();
        if z.set(&[name, b"\0"]).is_none() {
            return Verdict::Allow;
        }
        if let Some(real) = next!(dlopen: DlopenFn) {
            // SAFETY: a NUL-terminated name; RTLD_NOLOAD maps nothing.
            let h = unsafe {
                real(
                    z.as_bytes().as_ptr().cast(),
                    libc::RTLD_LAZY | libc::RTLD_NOLOAD,
                )
            };
            if !h.is_null() {
                // SAFETY: `h` came from dlopen just now (a reference we drop).
                unsafe { libc::dlclose(h) };
                return Verdict::Allow;
            }
        }
        if !search_library(name, &mut found) {
            return Verdict::Allow; // not found: dlopen fails by itself
        }
        found.as_bytes()
    };
    match drift::verdict_at(libc::AT_FDCWD, path, Use::Load) {
        Some(Drift::Drifted(reason)) => {
            let ignored = false;
            check::drifted(active, "dlopen", ignored, action, reason, |r| {
                r.target = Inline::from_bytes(path);
            })
        }
        Some(Drift::NoManifest) => {
            if let Some(why) = drift::inert_reason() {
                check::drift_inert(why);
            }
            Verdict::Allow
        }
        None | Some(Drift::Known | Drift::NotRunnable) => Verdict::Allow,
    }
}

/// The first `DIR/name` that exists along `LD_LIBRARY_PATH`, then the
/// system library directories, as the loader would find it.
fn search_library(name: &[u8], out: &mut PathBuf) -> bool {
    // SAFETY: getenv reads the environment without allocating.
    let env = unsafe { cstr(libc::getenv(c"LD_LIBRARY_PATH".as_ptr())) }.unwrap_or(b"");
    let system: &[&[u8]] = &[
        b"/lib/x86_64-linux-gnu",
        b"/usr/lib/x86_64-linux-gnu",
        b"/lib/aarch64-linux-gnu",
        b"/usr/lib/aarch64-linux-gnu",
        b"/lib64",
        b"/usr/lib64",
        b"/lib",
        b"/usr/lib",
    ];
    let dirs = env
        .split(|&b| b == b':' || b == b';')
        .filter(|d| !d.is_empty())
        .chain(system.iter().copied());
    for dir in dirs {
        if out.set(&[dir, b"/", name, b"\0"]).is_none() {
            continue;
        }
        let fd = sys::open_path(libc::AT_FDCWD, out.as_bytes().as_ptr().cast(), 0);
        if fd >= 0 {
            sys::close(fd);
            return out.set(&[dir, b"/", name]).is_some();
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &[u8]) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
        let mut head = [0u8; HEAD];
        let n = text.len().min(HEAD);
        head[..n].copy_from_slice(&text[..n]);
        shebang(&head).map(|(name, arg)| (name.to_vec(), arg.map(<[u8]>::to_vec)))
    }

    fn parsed(name: &str, arg: Option<&str>) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
        Some((name.into(), arg.map(Into::into)))
    }

    /// As fs/binfmt_script.c's `load_script` splits a line.
    #[test]
    fn a_line_is_split_as_the_kernel_splits_it() {
        assert_eq!(line(b"#!/bin/sh\necho"), parsed("/bin/sh", None));
        assert_eq!(line(b"#! \t/bin/sh \t\n"), parsed("/bin/sh", None));
        assert_eq!(line(b"#!/bin/sh -e\n"), parsed("/bin/sh", Some("-e")));
        // One argument: the rest of the line, inner blanks kept.
        assert_eq!(
            line(b"#!/usr/bin/env  python3 -u \n"),
            parsed("/usr/bin/env", Some("python3 -u"))
        );
        // Only spaces and tabs are blanks: a carriage return stays.
        assert_eq!(line(b"#!/bin/sh\r\n"), parsed("/bin/sh\r", None));
        // A NUL ends the name, and the argument.
        assert_eq!(line(b"#!/bin/sh\0 -x\n"), parsed("/bin/sh", None));
        assert_eq!(line(b"#!/bin/sh -x\0y\n"), parsed("/bin/sh", Some("-x")));
        // Not scripts, or lines the kernel refuses with ENOEXEC.
        assert_eq!(line(b"\x7fELF"), None);
        assert_eq!(line(b"#"), None);
        assert_eq!(line(b"#!\n"), None);
        assert_eq!(line(b"#!  \t \n/bin/sh\n"), None);
        assert_eq!(line(b""), None);
    }

    #[test]
    fn a_line_without_a_newline_must_end_its_name_in_the_buffer() {
        // A short file: zeros follow, which end the name.
        assert_eq!(line(b"#!/bin/sh"), parsed("/bin/sh", None));
        let mut long = b"#!/bin/sh ".to_vec();
        long.resize(HEAD, b'a');
        // The buffer's last byte is dropped from the argument.
        let arg = "a".repeat(HEAD - 11);
        assert_eq!(line(&long), parsed("/bin/sh", Some(&arg)));
        // A name that may go on past the buffer.
        let mut cut = b"#!/".to_vec();
        cut.resize(HEAD, b'b');
        assert_eq!(line(&cut), None);
        // Only blanks.
        let mut blank = b"#!".to_vec();
        blank.resize(HEAD, b' ');
        assert_eq!(line(&blank), None);
        // The name ends at the buffer's last byte, a blank.
        let mut edge = b"#!/".to_vec();
        edge.resize(HEAD - 1, b'c');
        edge.push(b' ');
        assert_eq!(
            line(&edge),
            parsed(std::str::from_utf8(&edge[2..HEAD - 1]).unwrap(), None)
        );
    }
}

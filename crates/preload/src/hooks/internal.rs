//! glibc functions that open, create or run something internally, without
//! passing through the hooked entry points (their calls skip the PLT): the
//! NSS `files` lookups, temporary files, FIFOs, mount tables, directory
//! walkers and `wordexp`. Each hook checks what the function will touch,
//! then calls it.

use super::borrowed::{check_file, check_open_flags, check_shell, Follow};
use crate::decide::check::{fail, Verdict};
use crate::os::real::next;
use crate::os::sys::cstr;
use ldguard_policy::{Access, Call};
use libc::{c_char, c_int, c_void, gid_t, uid_t, FILE};
use std::ptr::null_mut;

const AT: c_int = libc::AT_FDCWD;

fn read(call: Call, path: &'static std::ffi::CStr) -> Verdict {
    check_file(call, AT, path.as_ptr(), Access::Read, Follow::Yes)
}

fn write_new(call: Call, dirfd: c_int, path: *const c_char) -> Verdict {
    check_file(call, dirfd, path, Access::Write, Follow::No)
}

/// Defines a hook whose arguments are forwarded unchanged; `$check` is an
/// expression yielding a [`Verdict`], `$deny` the value returned (with
/// errno set) when it denies; `$missing` when libc lacks the function.
macro_rules! hook {
    ($name:ident($($arg:ident: $ty:ty),*) -> $ret:ty, deny = $deny:expr, $check:expr) => {
        /// # Safety
        /// libc ABI.
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            let deny: fn(c_int) -> $ret = $deny;
            if let Verdict::Deny(e) = $check {
                return deny(e);
            }
            type F = unsafe extern "C" fn($($ty),*) -> $ret;
            match next!($name: F) {
                // SAFETY: forwarding the caller's arguments.
                Some(f) => unsafe { f($($arg),*) },
                None => deny(libc::ENOSYS),
            }
        }
    };
}

/// errno and -1.
fn minus_one(e: c_int) -> c_int {
    fail(e, -1)
}

/// errno and NULL.
fn null<T>(e: c_int) -> *mut T {
    fail(e, null_mut())
}

/// The error number as the return value (the `_r` functions).
fn errno_value(e: c_int) -> c_int {
    fail(e, e)
}

// NSS `files` databases. The lookups read these files inside libc, so a
// rule denying the file denies the lookup; each family is reported under
// the name of its best-known function.
const SHADOW: &std::ffi::CStr = c"/etc/shadow";
const PASSWD: &std::ffi::CStr = c"/etc/passwd";
const GROUP: &std::ffi::CStr = c"/etc/group";
const GSHADOW: &std::ffi::CStr = c"/etc/gshadow";

type Spwd = c_void;
type Passwd = libc::passwd;
type Group = libc::group;

hook!(getspnam(name: *const c_char) -> *mut Spwd, deny = null, read(Call::Getspnam, SHADOW));
hook!(getspnam_r(name: *const c_char, sp: *mut Spwd, buf: *mut c_char, n: usize, out: *mut *mut Spwd) -> c_int,
    deny = errno_value, read(Call::Getspnam, SHADOW));
hook!(getspent() -> *mut Spwd, deny = null, read(Call::Getspnam, SHADOW));
hook!(getspent_r(sp: *mut Spwd, buf: *mut c_char, n: usize, out: *mut *mut Spwd) -> c_int,
    deny = errno_value, read(Call::Getspnam, SHADOW));
hook!(getsgnam(name: *const c_char) -> *mut c_void, deny = null, read(Call::Getsgnam, GSHADOW));
hook!(getsgnam_r(name: *const c_char, sg: *mut c_void, buf: *mut c_char, n: usize, out: *mut *mut c_void) -> c_int,
    deny = errno_value, read(Call::Getsgnam, GSHADOW));
hook!(getsgent() -> *mut c_void, deny = null, read(Call::Getsgnam, GSHADOW));
hook!(getsgent_r(sg: *mut c_void, buf: *mut c_char, n: usize, out: *mut *mut c_void) -> c_int,
    deny = errno_value, read(Call::Getsgnam, GSHADOW));
hook!(getpwnam(name: *const c_char) -> *mut Passwd, deny = null, read(Call::Getpwnam, PASSWD));
hook!(getpwnam_r(name: *const c_char, pw: *mut Passwd, buf: *mut c_char, n: usize, out: *mut *mut Passwd) -> c_int,
    deny = errno_value, read(Call::Getpwnam, PASSWD));
hook!(getpwuid(uid: uid_t) -> *mut Passwd, deny = null, read(Call::Getpwnam, PASSWD));
hook!(getpwuid_r(uid: uid_t, pw: *mut Passwd, buf: *mut c_char, n: usize, out: *mut *mut Passwd) -> c_int,
    deny = errno_value, read(Call::Getpwnam, PASSWD));
hook!(getpwent() -> *mut Passwd, deny = null, read(Call::Getpwnam, PASSWD));
hook!(getpwent_r(pw: *mut Passwd, buf: *mut c_char, n: usize, out: *mut *mut Passwd) -> c_int,
    deny = errno_value, read(Call::Getpwnam, PASSWD));
hook!(getgrnam(name: *const c_char) -> *mut Group, deny = null, read(Call::Getgrnam, GROUP));
hook!(getgrnam_r(name: *const c_char, gr: *mut Group, buf: *mut c_char, n: usize, out: *mut *mut Group) -> c_int,
    deny = errno_value, read(Call::Getgrnam, GROUP));
hook!(getgrgid(gid: gid_t) -> *mut Group, deny = null, read(Call::Getgrnam, GROUP));
hook!(getgrgid_r(gid: gid_t, gr: *mut Group, buf: *mut c_char, n: usize, out: *mut *mut Group) -> c_int,
    deny = errno_value, read(Call::Getgrnam, GROUP));
hook!(getgrent() -> *mut Group, deny = null, read(Call::Getgrnam, GROUP));
hook!(getgrent_r(gr: *mut Group, buf: *mut c_char, n: usize, out: *mut *mut Group) -> c_int,
    deny = errno_value, read(Call::Getgrnam, GROUP));
hook!(getgrouplist(user: *const c_char, group: gid_t, groups: *mut gid_t, n: *mut c_int) -> c_int,
    deny = minus_one, read(Call::Getgrnam, GROUP));
hook!(initgroups(user: *const c_char, group: gid_t) -> c_int,
    deny = minus_one, read(Call::Getgrnam, GROUP));

// Temporary files and FIFOs: each creates a file at the template's path.
hook!(mkstemp(t: *mut c_char) -> c_int, deny = minus_one, write_new(Call::Mkstemp, AT, t));
hook!(mkstemp64(t: *mut c_char) -> c_int, deny = minus_one, write_new(Call::Mkstemp, AT, t));
hook!(mkostemp(t: *mut c_char, flags: c_int) -> c_int, deny = minus_one, write_new(Call::Mkstemp, AT, t));
hook!(mkostemp64(t: *mut c_char, flags: c_int) -> c_int, deny = minus_one, write_new(Call::Mkstemp, AT, t));
hook!(mkstemps(t: *mut c_char, suffix: c_int) -> c_int, deny = minus_one, write_new(Call::Mkstemp, AT, t));
hook!(mkstemps64(t: *mut c_char, suffix: c_int) -> c_int, deny = minus_one, write_new(Call::Mkstemp, AT, t));
hook!(mkostemps(t: *mut c_char, suffix: c_int, flags: c_int) -> c_int, deny = minus_one,
    write_new(Call::Mkstemp, AT, t));
hook!(mkostemps64(t: *mut c_char, suffix: c_int, flags: c_int) -> c_int, deny = minus_one,
    write_new(Call::Mkstemp, AT, t));
hook!(mkdtemp(t: *mut c_char) -> *mut c_char, deny = null, write_new(Call::Mkdtemp, AT, t));
hook!(mkfifo(path: *const c_char, mode: libc::mode_t) -> c_int, deny = minus_one,
    write_new(Call::Mkfifo, AT, path));
hook!(mkfifoat(dirfd: c_int, path: *const c_char, mode: libc::mode_t) -> c_int, deny = minus_one,
    write_new(Call::Mkfifoat, dirfd, path));

/// `fopen`-style mode string to `open` flags.
fn mode_flags(mode: *const c_char) -> c_int {
    // SAFETY: a NUL-terminated mode string (or null).
    let m = unsafe { cstr(mode) }.unwrap_or(b"r");
    let plus = m.contains(&b'+');
    match m.first() {
        Some(b'w') | Some(b'a') if plus => libc::O_RDWR | libc::O_CREAT,
        Some(b'w') | Some(b'a') => libc::O_WRONLY | libc::O_CREAT,
        _ if plus => libc::O_RDWR,
        _ => libc::O_RDONLY,
    }
}

hook!(setmntent(file: *const c_char, mode: *const c_char) -> *mut FILE, deny = null,
    check_open_flags(Call::Setmntent, AT, file, mode_flags(mode)));
hook!(__setmntent(file: *const c_char, mode: *const c_char) -> *mut FILE, deny = null,
    check_open_flags(Call::Setmntent, AT, file, mode_flags(mode)));

/// `freopen(NULL, mode, stream)` reopens the stream's own file with a new
/// mode (glibc reopens `/proc/self/fd/N`): checked as opening the file the
/// descriptor refers to.
/// Called by the `freopen` hooks (`file.rs`) for a null path.
pub fn check_reopen(call: Call, mode: *const c_char, stream: *mut FILE) -> Verdict {
    if stream.is_null() {
        return Verdict::Allow;
    }
    // SAFETY: a valid stream, as freopen requires.
    let fd = unsafe { libc::fileno(stream) };
    if fd < 0 {
        return Verdict::Allow;
    }
    let mut path = [0u8; libc::PATH_MAX as usize + 1];
    if crate::os::sys::fd_path(fd, &mut path[..libc::PATH_MAX as usize]).is_none() {
        return Verdict::Allow; // a pipe, a socket, a deleted file: no path
    }
    check_open_flags(call, AT, path.as_ptr().cast(), mode_flags(mode))
}

// Directory readers: the directory is read inside libc.
type Filter = *const c_void;
type Compar = *const c_void;
fn read_dir(call: Call, dirfd: c_int, path: *const c_char) -> Verdict {
    check_file(call, dirfd, path, Access::Read, Follow::Yes)
}
hook!(scandir(dir: *const c_char, list: *mut c_void, filter: Filter, compar: Compar) -> c_int,
    deny = minus_one, read_dir(Call::Scandir, AT, dir));
hook!(scandir64(dir: *const c_char, list: *mut c_void, filter: Filter, compar: Compar) -> c_int,
    deny = minus_one, read_dir(Call::Scandir, AT, dir));
hook!(scandirat(dirfd: c_int, dir: *const c_char, list: *mut c_void, filter: Filter, compar: Compar) -> c_int,
    deny = minus_one, read_dir(Call::Scandir, dirfd, dir));
hook!(scandirat64(dirfd: c_int, dir: *const c_char, list: *mut c_void, filter: Filter, compar: Compar) -> c_int,
    deny = minus_one, read_dir(Call::Scandir, dirfd, dir));

/// `wordexp` runs `/bin/sh` for command substitution unless `WRDE_NOCMD`
/// forbids it; a denied shell fails the call with `WRDE_CMDSUB`, the
/// answer `WRDE_NOCMD` gives.
fn check_wordexp(words: *const c_char, flags: c_int) -> Verdict {
    const WRDE_NOCMD: c_int = 4;
    // SAFETY: a NUL-terminated string (or null).
    let w = unsafe { cstr(words) }.unwrap_or(b"");
    let substitutes = w.contains(&b'`') || w.windows(2).any(|p| p == b"$(");
    if flags & WRDE_NOCMD != 0 || !substitutes {
        return Verdict::Allow;
    }
    check_shell(Call::Wordexp, words)
}
hook!(wordexp(words: *const c_char, we: *mut c_void, flags: c_int) -> c_int,
    deny = |e| fail(e, 4 /* WRDE_CMDSUB */), check_wordexp(words, flags));

/// glibc's `glob_t`, with the `GLOB_ALTDIRFUNC` members.
#[repr(C)]
pub struct GlobT {
    pathc: usize,
    pathv: *mut *mut c_char,
    offs: usize,
    flags: c_int,
    closedir: Option<unsafe extern "C" fn(*mut c_void)>,
    readdir: Option<unsafe extern "C" fn(*mut c_void) -> *mut c_void>,
    opendir: Option<unsafe extern "C" fn(*const c_char) -> *mut c_void>,
    lstat: Option<unsafe extern "C" fn(*const c_char, *mut c_void) -> c_int>,
    stat: Option<unsafe extern "C" fn(*const c_char, *mut c_void) -> c_int>,
}

const GLOB_ALTDIRFUNC: c_int = 1 << 9;

/// The directory opener glob uses: every directory it reads is checked.
unsafe extern "C" fn glob_opendir(path: *const c_char) -> *mut c_void {
    if let Verdict::Deny(e) = read_dir(Call::Glob, AT, path) {
        return null(e);
    }
    // SAFETY: a NUL-terminated path from glob.
    next!(opendir: unsafe extern "C" fn(*const c_char) -> *mut c_void)
        .map_or(null_mut(), |f| unsafe { f(path) })
}

unsafe extern "C" fn glob_readdir(dir: *mut c_void) -> *mut c_void {
    // SAFETY: a DIR* from glob_opendir.
    next!(readdir: unsafe extern "C" fn(*mut c_void) -> *mut c_void)
        .map_or(null_mut(), |f| unsafe { f(dir) })
}

unsafe extern "C" fn glob_closedir(dir: *mut c_void) {
    if let Some(f) = next!(closedir: unsafe extern "C" fn(*mut c_void) -> c_int) {
        // SAFETY: a DIR* from glob_opendir.
        unsafe { f(dir) };
    }
}

fn fstatat(path: *const c_char, st: *mut c_void, flags: c_int) -> c_int {
    let r = crate::os::sys::raw_syscall(
        libc::SYS_newfstatat,
        [AT as _, path as _, st as _, flags as _, 0, 0],
    );
    r as c_int
}

unsafe extern "C" fn glob_stat(path: *const c_char, st: *mut c_void) -> c_int {
    fstatat(path, st, 0)
}

unsafe extern "C" fn glob_lstat(path: *const c_char, st: *mut c_void) -> c_int {
    fstatat(path, st, libc::AT_SYMLINK_NOFOLLOW)
}

type GlobFn = unsafe extern "C" fn(*const c_char, c_int, *const c_void, *mut GlobT) -> c_int;

/// Makes glob read directories through [`glob_opendir`] (glibc's
/// `GLOB_ALTDIRFUNC`), unless the caller brought its own functions. musl
/// has no `GLOB_ALTDIRFUNC`: there the pattern's fixed leading directory
/// is checked instead.
///
/// # Safety
/// libc ABI of glob/glob64.
unsafe fn checked_glob(
    real: Option<GlobFn>,
    pattern: *const c_char,
    flags: c_int,
    errfunc: *const c_void,
    g: *mut GlobT,
) -> c_int {
    const GLOB_ABORTED: c_int = 2;
    let Some(real) = real else {
        return fail(libc::ENOSYS, GLOB_ABORTED);
    };
    let mut flags = flags;
    if cfg!(target_env = "musl") {
        if let Verdict::Deny(e) = check_glob_prefix(pattern) {
            return fail(e, GLOB_ABORTED);
        }
    } else if flags & GLOB_ALTDIRFUNC == 0 && !g.is_null() && !crate::load::state::is_off() {
        // SAFETY: the caller's glob_t.
        let g = unsafe { &mut *g };
        g.opendir = Some(glob_opendir);
        g.readdir = Some(glob_readdir);
        g.closedir = Some(glob_closedir);
        g.stat = Some(glob_stat);
        g.lstat = Some(glob_lstat);
        flags |= GLOB_ALTDIRFUNC;
    }
    // SAFETY: forwarding.
    unsafe { real(pattern, flags, errfunc, g) }
}

/// The directory part of a pattern before its first wildcard.
fn check_glob_prefix(pattern: *const c_char) -> Verdict {
    // SAFETY: a NUL-terminated pattern.
    let p = unsafe { cstr(pattern) }.unwrap_or(b"");
    let wild = p
        .iter()
        .position(|b| b"*?[\\".contains(b))
        .unwrap_or(p.len());
    let Some(slash) = p[..wild].iter().rposition(|&b| b == b'/') else {
        return read_dir(Call::Glob, AT, c".".as_ptr());
    };
    let mut dir = [0u8; libc::PATH_MAX as usize];
    let n = slash.max(1).min(dir.len() - 1);
    dir[..n].copy_from_slice(&p[..n]);
    read_dir(Call::Glob, AT, dir.as_ptr().cast())
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn glob(
    pattern: *const c_char,
    flags: c_int,
    errfunc: *const c_void,
    g: *mut GlobT,
) -> c_int {
    // SAFETY: forwarding.
    unsafe { checked_glob(next!(glob: GlobFn), pattern, flags, errfunc, g) }
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn glob64(
    pattern: *const c_char,
    flags: c_int,
    errfunc: *const c_void,
    g: *mut GlobT,
) -> c_int {
    // SAFETY: forwarding.
    unsafe { checked_glob(next!(glob64: GlobFn), pattern, flags, errfunc, g) }
}

// Files other glibc functions create or open at a path of their own.
hook!(remove(path: *const c_char) -> c_int, deny = minus_one, write_new(Call::Unlink, AT, path));
hook!(getpw(uid: uid_t, buf: *mut c_char) -> c_int, deny = minus_one, read(Call::Getpwnam, PASSWD));
hook!(lckpwdf() -> c_int, deny = minus_one, write_new(Call::Creat, AT, c"/etc/.pwd.lock".as_ptr()));
hook!(updwtmp(file: *const c_char, ut: *const c_void) -> (), deny = |e| fail(e, ()),
    write_new(Call::Fopen, AT, file));
hook!(updwtmpx(file: *const c_char, ut: *const c_void) -> (), deny = |e| fail(e, ()),
    write_new(Call::Fopen, AT, file));
hook!(logwtmp(line: *const c_char, name: *const c_char, host: *const c_char) -> (), deny = |e| fail(e, ()),
    write_new(Call::Fopen, AT, c"/var/log/wtmp".as_ptr()));
// tmpfile makes its file in /tmp (P_tmpdir, whatever TMPDIR says).
hook!(tmpfile() -> *mut FILE, deny = null, write_new(Call::Mkstemp, AT, c"/tmp/tmpfXXXXXX".as_ptr()));
hook!(tmpfile64() -> *mut FILE, deny = null, write_new(Call::Mkstemp, AT, c"/tmp/tmpfXXXXXX".as_ptr()));

// Pseudo-terminals: the multiplexer is opened inside libc.
fn ptmx() -> Verdict {
    check_open_flags(Call::Open, AT, c"/dev/ptmx".as_ptr(), libc::O_RDWR)
}
hook!(posix_openpt(flags: c_int) -> c_int, deny = minus_one, ptmx());
hook!(getpt() -> c_int, deny = minus_one, ptmx());
hook!(openpty(m: *mut c_int, s: *mut c_int, name: *mut c_char, t: *const c_void, w: *const c_void) -> c_int,
    deny = minus_one, ptmx());
hook!(forkpty(m: *mut c_int, name: *mut c_char, t: *const c_void, w: *const c_void) -> libc::pid_t,
    deny = minus_one, ptmx());

/// POSIX shared memory objects are files in `/dev/shm`.
fn shm_path(name: *const c_char, f: impl FnOnce(*const c_char) -> Verdict) -> Verdict {
    // SAFETY: a NUL-terminated name (or null: the real call fails).
    let Some(n) = (unsafe { cstr(name) }) else {
        return Verdict::Allow;
    };
    let n = n.strip_prefix(b"/").unwrap_or(n);
    let mut path = [0u8; libc::PATH_MAX as usize];
    const DIR: &[u8] = b"/dev/shm/";
    if DIR.len() + n.len() >= path.len() {
        return Verdict::Allow; // ENAMETOOLONG from libc
    }
    path[..DIR.len()].copy_from_slice(DIR);
    path[DIR.len()..DIR.len() + n.len()].copy_from_slice(n);
    f(path.as_ptr().cast())
}
hook!(shm_open(name: *const c_char, flags: c_int, mode: libc::mode_t) -> c_int, deny = minus_one,
    shm_path(name, |p| check_open_flags(Call::Open, AT, p, flags)));
hook!(shm_unlink(name: *const c_char) -> c_int, deny = minus_one,
    shm_path(name, |p| write_new(Call::Unlink, AT, p)));

/// glibc's private alias of `system`.
///
/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn __libc_system(cmd: *const c_char) -> c_int {
    // SAFETY: same contract.
    unsafe { super::borrowed::system(cmd) }
}

/// `_IO_file_fopen(fp, path, mode, is32)`: fopen's worker on a stream the
/// caller allocated; checked as `fopen`.
///
/// # Safety
/// glibc ABI.
#[no_mangle]
pub unsafe extern "C" fn _IO_file_fopen(
    fp: *mut FILE,
    path: *const c_char,
    mode: *const c_char,
    is32: c_int,
) -> *mut FILE {
    if let Verdict::Deny(e) = check_open_flags(Call::Fopen, AT, path, mode_flags(mode)) {
        return null(e);
    }
    type F = unsafe extern "C" fn(*mut FILE, *const c_char, *const c_char, c_int) -> *mut FILE;
    // SAFETY: forwarding.
    next!(_IO_file_fopen: F).map_or_else(
        || null(libc::ENOSYS),
        |f| unsafe { f(fp, path, mode, is32) },
    )
}

/// `_IO_file_open(fp, path, flags, prot, read_write, is32)`: the open
/// beneath it, with `open` flags; checked as `fopen`.
///
/// # Safety
/// glibc ABI.
#[no_mangle]
pub unsafe extern "C" fn _IO_file_open(
    fp: *mut FILE,
    path: *const c_char,
    flags: c_int,
    prot: c_int,
    read_write: c_int,
    is32: c_int,
) -> *mut FILE {
    if let Verdict::Deny(e) = check_open_flags(Call::Fopen, AT, path, flags) {
        return null(e);
    }
    type F =
        unsafe extern "C" fn(*mut FILE, *const c_char, c_int, c_int, c_int, c_int) -> *mut FILE;
    // SAFETY: forwarding.
    next!(_IO_file_open: F).map_or_else(
        || null(libc::ENOSYS),
        |f| unsafe { f(fp, path, flags, prot, read_write, is32) },
    )
}

//! File hooks: every path is checked as given (absolute, normalised) and as
//! the kernel resolves it (symlinks, `..`, `/proc/self/fd/N`).

use crate::check::{fail, judge, run, Verdict};
use crate::real::next;
use crate::resolve;
use crate::sys::{cstr, raw_syscall};
use ldguard_policy::{Access, Call, Kind, Request};
use libc::{c_char, c_int, c_long, c_uint, dev_t, gid_t, mode_t, off_t, uid_t, DIR, FILE};
use std::ptr::null_mut;

/// Whether the final path segment is followed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    Yes,
    No,
}

/// Checks one path of a file call.
pub fn check_path(
    call: Call,
    dirfd: c_int,
    path: *const c_char,
    access: Access,
    follow: Follow,
) -> Verdict {
    run(|active| {
        // SAFETY: libc callers pass NUL-terminated paths (or null).
        let Some(given) = (unsafe { cstr(path) }) else {
            return Verdict::Allow;
        };
        resolve::with_scratch(|s| {
            let (scratch, abs, res) = (&mut s.a, &mut s.b, &mut s.c);
            // Paths longer than PATH_MAX after joining with the cwd cannot be
            // expressed; the real call meets the same limit (see docs).
            if resolve::absolute(dirfd, given, scratch, abs).is_none() {
                return Verdict::Allow;
            }
            let resolved = active.table.needs_resolution(Kind::File, access)
                && !resolve::without_links(dirfd, given, follow == Follow::Yes, scratch)
                && resolve::resolved(dirfd, given, follow == Follow::Yes, scratch, res).is_some()
                && res.as_bytes() != abs.as_bytes();
            let req = Request {
                path: Some(abs.as_bytes()),
                resolved_path: resolved.then(|| res.as_bytes()),
                access,
                ..Request::new(Kind::File, call, active.program)
            };
            judge(active, &req, |_| {})
        })
    })
}

fn check_write(call: Call, dirfd: c_int, path: *const c_char, follow: Follow) -> Verdict {
    check_path(call, dirfd, path, Access::Write, follow)
}

/// Both paths of rename/link: a deny on either fails the call.
fn check_two(
    call: Call,
    d1: c_int,
    p1: *const c_char,
    f1: Follow,
    d2: c_int,
    p2: *const c_char,
) -> Verdict {
    match check_write(call, d1, p1, f1) {
        Verdict::Allow => check_write(call, d2, p2, Follow::No),
        deny => deny,
    }
}

/// What `open` flags do to a file: a write check for anything that can
/// modify, a read check for anything that can read (O_RDWR gets both).
fn check_open(call: Call, dirfd: c_int, path: *const c_char, flags: c_int) -> Verdict {
    // An O_PATH descriptor reaches no data: reading through it means
    // reopening /proc/self/fd/N (checked as that file) or execveat (checked
    // as an exec). Like stat, it only reveals that the file exists.
    if flags & libc::O_PATH != 0 {
        return Verdict::Allow;
    }
    let follow = if flags & libc::O_NOFOLLOW != 0 {
        Follow::No
    } else {
        Follow::Yes
    };
    let acc = flags & libc::O_ACCMODE;
    let writes =
        acc != libc::O_RDONLY || flags & (libc::O_CREAT | libc::O_TRUNC | libc::O_APPEND) != 0;
    let reads = acc != libc::O_WRONLY;
    if writes {
        if let v @ Verdict::Deny(_) = check_path(call, dirfd, path, Access::Write, follow) {
            return v;
        }
    }
    if reads {
        return check_path(call, dirfd, path, Access::Read, follow);
    }
    Verdict::Allow
}

fn fopen_flags(mode: *const c_char) -> c_int {
    // SAFETY: fopen's mode is a NUL-terminated string.
    let m = unsafe { cstr(mode) }.unwrap_or(b"r");
    let plus = m.contains(&b'+');
    match m.first() {
        Some(b'w') | Some(b'a') if plus => libc::O_RDWR | libc::O_CREAT,
        Some(b'w') | Some(b'a') => libc::O_WRONLY | libc::O_CREAT,
        _ if plus => libc::O_RDWR,
        _ => libc::O_RDONLY,
    }
}

const OPEN_CALLS: [Call; 4] = [Call::Open, Call::Open64, Call::Openat, Call::Openat64];

/// Target of the C shim's open/open64/openat/openat64.
///
/// # Safety
/// Called by the shim with the caller's arguments.
#[no_mangle]
pub unsafe extern "C" fn ldguard_open(
    which: c_int,
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    mode: c_uint,
) -> c_int {
    let call = OPEN_CALLS[(which as usize).min(3)];
    if let Verdict::Deny(e) = check_open(call, dirfd, path, flags) {
        return fail(e, -1);
    }
    type OpenFn = unsafe extern "C" fn(*const c_char, c_int, ...) -> c_int;
    type OpenatFn = unsafe extern "C" fn(c_int, *const c_char, c_int, ...) -> c_int;
    // SAFETY: forwarding the caller's arguments to the real function.
    let r = unsafe {
        match which {
            0 => next!(open: OpenFn).map(|f| f(path, flags, mode)),
            1 => next!(open64: OpenFn).map(|f| f(path, flags, mode)),
            2 => next!(openat: OpenatFn).map(|f| f(dirfd, path, flags, mode)),
            _ => next!(openat64: OpenatFn).map(|f| f(dirfd, path, flags, mode)),
        }
    };
    r.unwrap_or_else(|| {
        raw_syscall(
            libc::SYS_openat,
            [
                dirfd as c_long,
                path as c_long,
                flags as c_long,
                mode as c_long,
                0,
                0,
            ],
        ) as c_int
    })
}

macro_rules! or_enosys {
    ($e:expr, $err:expr) => {
        match $e {
            Some(v) => v,
            None => fail(libc::ENOSYS, $err),
        }
    };
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn __open_2(path: *const c_char, flags: c_int) -> c_int {
    if let Verdict::Deny(e) = check_open(Call::Open2, libc::AT_FDCWD, path, flags) {
        return fail(e, -1);
    }
    // SAFETY: forwarding.
    or_enosys!(
        next!(__open_2: unsafe extern "C" fn(*const c_char, c_int) -> c_int)
            .map(|f| unsafe { f(path, flags) }),
        -1
    )
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn __open64_2(path: *const c_char, flags: c_int) -> c_int {
    if let Verdict::Deny(e) = check_open(Call::Open64_2, libc::AT_FDCWD, path, flags) {
        return fail(e, -1);
    }
    // SAFETY: forwarding.
    or_enosys!(
        next!(__open64_2: unsafe extern "C" fn(*const c_char, c_int) -> c_int)
            .map(|f| unsafe { f(path, flags) }),
        -1
    )
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn __openat_2(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int {
    if let Verdict::Deny(e) = check_open(Call::Openat2, dirfd, path, flags) {
        return fail(e, -1);
    }
    // SAFETY: forwarding.
    or_enosys!(
        next!(__openat_2: unsafe extern "C" fn(c_int, *const c_char, c_int) -> c_int)
            .map(|f| unsafe { f(dirfd, path, flags) }),
        -1
    )
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn __openat64_2(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int {
    if let Verdict::Deny(e) = check_open(Call::Openat64_2, dirfd, path, flags) {
        return fail(e, -1);
    }
    // SAFETY: forwarding.
    or_enosys!(
        next!(__openat64_2: unsafe extern "C" fn(c_int, *const c_char, c_int) -> c_int)
            .map(|f| unsafe { f(dirfd, path, flags) }),
        -1
    )
}

/// Defines a hook whose arguments are forwarded unchanged; `$check` is an
/// expression over the argument names that yields a [`Verdict`].
macro_rules! hook {
    ($name:ident($($arg:ident: $ty:ty),*) -> $ret:ty, err = $err:expr, $check:expr) => {
        /// # Safety
        /// libc ABI.
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            if let Verdict::Deny(e) = $check {
                return fail(e, $err);
            }
            type F = unsafe extern "C" fn($($ty),*) -> $ret;
            // SAFETY: forwarding the caller's arguments to the real function.
            or_enosys!(next!($name: F).map(|f| unsafe { f($($arg),*) }), $err)
        }
    };
}

const AT: c_int = libc::AT_FDCWD;

hook!(creat(path: *const c_char, mode: mode_t) -> c_int, err = -1,
    check_open(Call::Creat, AT, path, libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC));
hook!(creat64(path: *const c_char, mode: mode_t) -> c_int, err = -1,
    check_open(Call::Creat64, AT, path, libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC));
hook!(fopen(path: *const c_char, mode: *const c_char) -> *mut FILE, err = null_mut(),
    check_open(Call::Fopen, AT, path, fopen_flags(mode)));
hook!(fopen64(path: *const c_char, mode: *const c_char) -> *mut FILE, err = null_mut(),
    check_open(Call::Fopen64, AT, path, fopen_flags(mode)));
hook!(freopen(path: *const c_char, mode: *const c_char, stream: *mut FILE) -> *mut FILE, err = null_mut(),
    if path.is_null() { super::internal::check_reopen(Call::Freopen, mode, stream) } else { check_open(Call::Freopen, AT, path, fopen_flags(mode)) });
hook!(freopen64(path: *const c_char, mode: *const c_char, stream: *mut FILE) -> *mut FILE, err = null_mut(),
    if path.is_null() { super::internal::check_reopen(Call::Freopen64, mode, stream) } else { check_open(Call::Freopen64, AT, path, fopen_flags(mode)) });
hook!(opendir(path: *const c_char) -> *mut DIR, err = null_mut(),
    check_path(Call::Opendir, AT, path, Access::Read, Follow::Yes));
hook!(truncate(path: *const c_char, len: off_t) -> c_int, err = -1,
    check_write(Call::Truncate, AT, path, Follow::Yes));
hook!(truncate64(path: *const c_char, len: libc::off64_t) -> c_int, err = -1,
    check_write(Call::Truncate64, AT, path, Follow::Yes));
hook!(unlink(path: *const c_char) -> c_int, err = -1,
    check_write(Call::Unlink, AT, path, Follow::No));
hook!(unlinkat(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int, err = -1,
    check_write(Call::Unlinkat, dirfd, path, Follow::No));
hook!(rename(old: *const c_char, new: *const c_char) -> c_int, err = -1,
    check_two(Call::Rename, AT, old, Follow::No, AT, new));
hook!(renameat(od: c_int, old: *const c_char, nd: c_int, new: *const c_char) -> c_int, err = -1,
    check_two(Call::Renameat, od, old, Follow::No, nd, new));
hook!(mkdir(path: *const c_char, mode: mode_t) -> c_int, err = -1,
    check_write(Call::Mkdir, AT, path, Follow::No));
hook!(mkdirat(dirfd: c_int, path: *const c_char, mode: mode_t) -> c_int, err = -1,
    check_write(Call::Mkdirat, dirfd, path, Follow::No));
hook!(rmdir(path: *const c_char) -> c_int, err = -1,
    check_write(Call::Rmdir, AT, path, Follow::No));
hook!(link(old: *const c_char, new: *const c_char) -> c_int, err = -1,
    check_two(Call::Link, AT, old, Follow::No, AT, new));
hook!(linkat(od: c_int, old: *const c_char, nd: c_int, new: *const c_char, flags: c_int) -> c_int, err = -1,
    check_two(Call::Linkat, od, old, if flags & libc::AT_SYMLINK_FOLLOW != 0 { Follow::Yes } else { Follow::No }, nd, new));
hook!(symlink(target: *const c_char, linkpath: *const c_char) -> c_int, err = -1,
    check_write(Call::Symlink, AT, linkpath, Follow::No));
hook!(symlinkat(target: *const c_char, dirfd: c_int, linkpath: *const c_char) -> c_int, err = -1,
    check_write(Call::Symlinkat, dirfd, linkpath, Follow::No));
hook!(chmod(path: *const c_char, mode: mode_t) -> c_int, err = -1,
    check_write(Call::Chmod, AT, path, Follow::Yes));
hook!(fchmodat(dirfd: c_int, path: *const c_char, mode: mode_t, flags: c_int) -> c_int, err = -1,
    check_write(Call::Fchmodat, dirfd, path, follow_unless_nofollow(flags)));
hook!(chown(path: *const c_char, uid: uid_t, gid: gid_t) -> c_int, err = -1,
    check_write(Call::Chown, AT, path, Follow::Yes));
hook!(lchown(path: *const c_char, uid: uid_t, gid: gid_t) -> c_int, err = -1,
    check_write(Call::Lchown, AT, path, Follow::No));
hook!(fchownat(dirfd: c_int, path: *const c_char, uid: uid_t, gid: gid_t, flags: c_int) -> c_int, err = -1,
    check_write(Call::Fchownat, dirfd, path, follow_unless_nofollow(flags)));

fn follow_unless_nofollow(flags: c_int) -> Follow {
    if flags & libc::AT_SYMLINK_NOFOLLOW != 0 {
        Follow::No
    } else {
        Follow::Yes
    }
}

/// renameat2 appeared in glibc 2.28: fall back to the system call.
///
/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn renameat2(
    od: c_int,
    old: *const c_char,
    nd: c_int,
    new: *const c_char,
    flags: c_uint,
) -> c_int {
    if let Verdict::Deny(e) = check_two(Call::Renameat2, od, old, Follow::No, nd, new) {
        return fail(e, -1);
    }
    type F = unsafe extern "C" fn(c_int, *const c_char, c_int, *const c_char, c_uint) -> c_int;
    match next!(renameat2: F) {
        // SAFETY: forwarding.
        Some(f) => unsafe { f(od, old, nd, new, flags) },
        None => raw_syscall(
            libc::SYS_renameat2,
            [
                od as c_long,
                old as c_long,
                nd as c_long,
                new as c_long,
                flags as c_long,
                0,
            ],
        ) as c_int,
    }
}

/// mknod/mknodat are functions since glibc 2.33; before that they were
/// inlines calling `__xmknod`/`__xmknodat`, which are hooked below.
///
/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn mknod(path: *const c_char, mode: mode_t, dev: dev_t) -> c_int {
    // SAFETY: same contract.
    unsafe { mknod_common(Call::Mknod, AT, path, mode, dev) }
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn mknodat(
    dirfd: c_int,
    path: *const c_char,
    mode: mode_t,
    dev: dev_t,
) -> c_int {
    // SAFETY: same contract.
    unsafe { mknod_common(Call::Mknodat, dirfd, path, mode, dev) }
}

unsafe fn mknod_common(
    call: Call,
    dirfd: c_int,
    path: *const c_char,
    mode: mode_t,
    dev: dev_t,
) -> c_int {
    if let Verdict::Deny(e) = check_write(call, dirfd, path, Follow::No) {
        return fail(e, -1);
    }
    type F = unsafe extern "C" fn(c_int, *const c_char, mode_t, dev_t) -> c_int;
    match next!(mknodat: F) {
        // SAFETY: forwarding.
        Some(f) => unsafe { f(dirfd, path, mode, dev) },
        None => raw_syscall(
            libc::SYS_mknodat,
            [
                dirfd as c_long,
                path as c_long,
                mode as c_long,
                dev as c_long,
                0,
                0,
            ],
        ) as c_int,
    }
}

/// # Safety
/// glibc < 2.33 ABI.
#[no_mangle]
pub unsafe extern "C" fn __xmknod(
    ver: c_int,
    path: *const c_char,
    mode: mode_t,
    dev: *mut dev_t,
) -> c_int {
    if let Verdict::Deny(e) = check_write(Call::Mknod, AT, path, Follow::No) {
        return fail(e, -1);
    }
    type F = unsafe extern "C" fn(c_int, *const c_char, mode_t, *mut dev_t) -> c_int;
    // SAFETY: forwarding.
    or_enosys!(
        next!(__xmknod: F).map(|f| unsafe { f(ver, path, mode, dev) }),
        -1
    )
}

/// # Safety
/// glibc < 2.33 ABI.
#[no_mangle]
pub unsafe extern "C" fn __xmknodat(
    ver: c_int,
    dirfd: c_int,
    path: *const c_char,
    mode: mode_t,
    dev: *mut dev_t,
) -> c_int {
    if let Verdict::Deny(e) = check_write(Call::Mknodat, dirfd, path, Follow::No) {
        return fail(e, -1);
    }
    type F = unsafe extern "C" fn(c_int, c_int, *const c_char, mode_t, *mut dev_t) -> c_int;
    // SAFETY: forwarding.
    or_enosys!(
        next!(__xmknodat: F).map(|f| unsafe { f(ver, dirfd, path, mode, dev) }),
        -1
    )
}

//! Metadata writes: mode, owner, times and extended attributes, by path
//! and by descriptor. Each is a `write` on the file (a descriptor opened
//! read-only still lets its owner change these, so the descriptor's file is
//! checked, not how it was opened).

use super::borrowed::{check_fd_write, check_file, Follow};
use crate::check::Verdict;
use crate::sys::cstr;
use ldguard_policy::{Access, Call};
use libc::{c_char, c_int, c_void, gid_t, mode_t, timespec, timeval, uid_t};

/// A metadata write on a path. These calls never create a file: on a path
/// that does not exist the kernel fails them (`ENOENT`), so there is
/// nothing to decide (and `touch` of a new file in a denied directory
/// reports the denied `open` once, not twice).
fn write(call: Call, dirfd: c_int, path: *const c_char, follow: Follow) -> Verdict {
    if path.is_null() || !exists(dirfd, path, follow) {
        return Verdict::Allow;
    }
    check_file(call, dirfd, path, Access::Write, follow)
}

/// Whether `path` names something (any error but `ENOENT` counts as yes).
fn exists(dirfd: c_int, path: *const c_char, follow: Follow) -> bool {
    !matches!(
        crate::sys::fstatat(dirfd, path, follow.stat_flags()),
        Err(libc::ENOENT)
    )
}

/// `utimensat(dirfd, NULL, ...)` (the kernel's form of `futimens`) changes
/// the descriptor's file; `AT_EMPTY_PATH` with `""` does the same.
fn check_at(call: Call, dirfd: c_int, path: *const c_char, flags: c_int) -> Verdict {
    // SAFETY: a NUL-terminated path or null.
    match unsafe { cstr(path) } {
        None => check_fd_write(call, dirfd),
        Some(b"") if flags & libc::AT_EMPTY_PATH != 0 => check_fd_write(call, dirfd),
        Some(_) if flags & libc::AT_SYMLINK_NOFOLLOW != 0 => write(call, dirfd, path, Follow::No),
        Some(_) => write(call, dirfd, path, Follow::Yes),
    }
}

const AT: c_int = libc::AT_FDCWD;

// The raw-syscall fallbacks (used only when libc lacks the function) of
// calls that AArch64's kernel does not have: libc emulates them there.
#[cfg(target_arch = "x86_64")]
const NR_FUTIMESAT: libc::c_long = libc::SYS_futimesat;
#[cfg(target_arch = "x86_64")]
const NR_UTIMES: libc::c_long = libc::SYS_utimes;
#[cfg(target_arch = "x86_64")]
const NR_UTIME: libc::c_long = libc::SYS_utime;
#[cfg(not(target_arch = "x86_64"))]
const NR_FUTIMESAT: libc::c_long = -1;
#[cfg(not(target_arch = "x86_64"))]
const NR_UTIMES: libc::c_long = -1;
#[cfg(not(target_arch = "x86_64"))]
const NR_UTIME: libc::c_long = -1;

checked_hook!(fchmod(fd: c_int, mode: mode_t) -> c_int, libc::SYS_fchmod,
    check_fd_write(Call::Fchmod, fd));
checked_hook!(fchown(fd: c_int, uid: uid_t, gid: gid_t) -> c_int, libc::SYS_fchown,
    check_fd_write(Call::Fchown, fd));
checked_hook!(futimens(fd: c_int, times: *const timespec) -> c_int, -1,
    check_fd_write(Call::Futimens, fd));
checked_hook!(futimes(fd: c_int, times: *const timeval) -> c_int, -1,
    check_fd_write(Call::Futimens, fd));
checked_hook!(utimensat(dirfd: c_int, path: *const c_char, times: *const timespec, flags: c_int) -> c_int,
    libc::SYS_utimensat, check_at(Call::Utimensat, dirfd, path, flags));
checked_hook!(futimesat(dirfd: c_int, path: *const c_char, times: *const timeval) -> c_int,
    NR_FUTIMESAT, check_at(Call::Utimes, dirfd, path, 0));
checked_hook!(utimes(path: *const c_char, times: *const timeval) -> c_int, NR_UTIMES,
    write(Call::Utimes, AT, path, Follow::Yes));
checked_hook!(lutimes(path: *const c_char, times: *const timeval) -> c_int, -1,
    write(Call::Utimes, AT, path, Follow::No));
checked_hook!(utime(path: *const c_char, times: *const libc::utimbuf) -> c_int, NR_UTIME,
    write(Call::Utimes, AT, path, Follow::Yes));
checked_hook!(setxattr(path: *const c_char, name: *const c_char, value: *const c_void, size: usize, flags: c_int) -> c_int,
    libc::SYS_setxattr, write(Call::Setxattr, AT, path, Follow::Yes));
checked_hook!(lsetxattr(path: *const c_char, name: *const c_char, value: *const c_void, size: usize, flags: c_int) -> c_int,
    libc::SYS_lsetxattr, write(Call::Setxattr, AT, path, Follow::No));
checked_hook!(fsetxattr(fd: c_int, name: *const c_char, value: *const c_void, size: usize, flags: c_int) -> c_int,
    libc::SYS_fsetxattr, check_fd_write(Call::Setxattr, fd));
checked_hook!(removexattr(path: *const c_char, name: *const c_char) -> c_int,
    libc::SYS_removexattr, write(Call::Removexattr, AT, path, Follow::Yes));
checked_hook!(lremovexattr(path: *const c_char, name: *const c_char) -> c_int,
    libc::SYS_lremovexattr, write(Call::Removexattr, AT, path, Follow::No));
checked_hook!(fremovexattr(fd: c_int, name: *const c_char) -> c_int,
    libc::SYS_fremovexattr, check_fd_write(Call::Removexattr, fd));
checked_hook!(lchmod(path: *const c_char, mode: mode_t) -> c_int, -1,
    write(Call::Chmod, AT, path, Follow::No));
// acct creates nothing either: it appends to an existing file.
checked_hook!(acct(path: *const c_char) -> c_int, libc::SYS_acct,
    write(Call::Acct, AT, path, Follow::Yes));

//! Metadata writes: mode, owner, times and extended attributes, by path
//! and by descriptor. Each is a `write` on the file (a descriptor opened
//! read-only still lets its owner change these, so the descriptor's file is
//! checked, not how it was opened).

use super::borrowed::{
    act_on, check_fd_write, chmod_held, syscall, unless_refused, via_proc, Acted, Follow, PathArg,
};
use crate::os::sys::cstr;
use ldguard_policy::Call;
use libc::{c_char, c_int, c_long, c_void, gid_t, mode_t, timespec, timeval, uid_t};

/// A metadata write on a path, decided on the object it reaches and made
/// on it by `act` (the held descriptor). These calls never create a file:
/// on a path that does not exist the kernel fails them (`ENOENT`), and
/// there is nothing to decide.
fn write(
    call: Call,
    dirfd: c_int,
    path: *const c_char,
    follow: Follow,
    act: impl FnOnce(c_int) -> c_long,
) -> Acted {
    act_on(PathArg::existing(dirfd, path, follow), call, |fd, _| {
        act(fd)
    })
}

/// `utimensat(dirfd, NULL, ...)` (the kernel's form of `futimens`) changes
/// the descriptor's file; `AT_EMPTY_PATH` with `""` does the same. A path
/// is decided and changed on its object ([`utimens_held`]).
pub(super) fn times_at(
    call: Call,
    dirfd: c_int,
    path: *const c_char,
    times: *const timespec,
    flags: c_int,
) -> Acted {
    // SAFETY: a NUL-terminated path or null.
    match unsafe { cstr(path) } {
        None => Acted::of(check_fd_write(call, dirfd)),
        Some(b"") if flags & libc::AT_EMPTY_PATH != 0 => Acted::of(check_fd_write(call, dirfd)),
        Some(_) if flags & !(libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH) != 0 => {
            // Flags the kernel refuses (EINVAL): nothing is changed.
            Acted::Next
        }
        Some(_) => {
            let follow = if flags & libc::AT_SYMLINK_NOFOLLOW != 0 {
                Follow::No
            } else {
                Follow::Yes
            };
            write(call, dirfd, path, follow, |fd| utimens_held(fd, times))
        }
    }
}

/// `utimensat(fd, "", AT_EMPTY_PATH)` on the held descriptor (Linux 5.8
/// and later take an `O_PATH` one), else through its `/proc` link.
fn utimens_held(fd: c_int, times: *const timespec) -> c_long {
    let r = syscall(
        libc::SYS_utimensat,
        [
            fd as c_long,
            c"".as_ptr() as c_long,
            times as c_long,
            libc::AT_EMPTY_PATH as c_long,
            0,
            0,
        ],
    );
    if r != -(libc::EINVAL as c_long) && r != -(libc::EBADF as c_long) {
        return r;
    }
    via_proc(fd, |p| {
        syscall(
            libc::SYS_utimensat,
            [
                libc::AT_FDCWD as c_long,
                p as c_long,
                times as c_long,
                0,
                0,
                0,
            ],
        )
    })
}

/// `timeval` times (or none: now) as the `timespec` pair `utimensat` takes.
fn from_timevals(tv: *const timeval, out: &mut [timespec; 2]) -> *const timespec {
    // SAFETY: the caller's pointer to two `timeval` (or null).
    match unsafe { tv.cast::<[timeval; 2]>().as_ref() } {
        None => std::ptr::null(),
        Some(pair) => {
            for (o, t) in out.iter_mut().zip(pair) {
                o.tv_sec = t.tv_sec;
                o.tv_nsec = t.tv_usec * 1000;
            }
            out.as_ptr()
        }
    }
}

fn utimes_path(
    call: Call,
    dirfd: c_int,
    path: *const c_char,
    tv: *const timeval,
    follow: Follow,
) -> Acted {
    if dirfd != AT && path.is_null() {
        return Acted::of(check_fd_write(call, dirfd));
    }
    write(call, dirfd, path, follow, |fd| {
        let mut ts = [timespec {
            tv_sec: 0,
            tv_nsec: 0,
        }; 2];
        utimens_held(fd, from_timevals(tv, &mut ts))
    })
}

fn utime_path(path: *const c_char, times: *const libc::utimbuf) -> Acted {
    write(Call::Utimes, AT, path, Follow::Yes, |fd| {
        // SAFETY: the caller's pointer to a `utimbuf` (or null: now).
        let ts = unsafe { times.as_ref() }.map(|t| {
            [
                timespec {
                    tv_sec: t.actime,
                    tv_nsec: 0,
                },
                timespec {
                    tv_sec: t.modtime,
                    tv_nsec: 0,
                },
            ]
        });
        utimens_held(fd, ts.as_ref().map_or(std::ptr::null(), |t| t.as_ptr()))
    })
}

/// An extended attribute set or removed on the held object through its
/// `/proc` link (the `*xattrat` calls that take one are Linux 6.13).
pub(super) fn xattr_path(
    call: Call,
    path: *const c_char,
    follow: Follow,
    nr: c_long,
    a: [c_long; 4],
) -> Acted {
    // What the kernel refuses before the lookup: flags, the name's length,
    // the value's size.
    const XATTR_NAME_MAX: usize = 255;
    const XATTR_SIZE_MAX: c_long = 65536;
    let flags = if nr == libc::SYS_setxattr {
        a[3] as c_int
    } else {
        0
    };
    // SAFETY: the caller's NUL-terminated attribute name (or null).
    let name_len = unsafe { crate::os::sys::cstr(a[0] as *const c_char) }.map_or(0, |n| n.len());
    let refused = flags & !(libc::XATTR_CREATE | libc::XATTR_REPLACE) != 0
        || name_len == 0
        || name_len > XATTR_NAME_MAX
        || (nr == libc::SYS_setxattr && a[2] > XATTR_SIZE_MAX);
    unless_refused(refused, || {
        write(call, AT, path, follow, |fd| {
            via_proc(fd, |p| {
                syscall(nr, [p as c_long, a[0], a[1], a[2], a[3], 0])
            })
        })
    })
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
acted_hook!(utimensat(dirfd: c_int, path: *const c_char, times: *const timespec, flags: c_int),
    libc::SYS_utimensat, times_at(Call::Utimensat, dirfd, path, times, flags));
acted_hook!(futimesat(dirfd: c_int, path: *const c_char, times: *const timeval),
    NR_FUTIMESAT, utimes_path(Call::Utimes, dirfd, path, times, Follow::Yes));
acted_hook!(utimes(path: *const c_char, times: *const timeval), NR_UTIMES,
    utimes_path(Call::Utimes, AT, path, times, Follow::Yes));
acted_hook!(lutimes(path: *const c_char, times: *const timeval), -1,
    utimes_path(Call::Utimes, AT, path, times, Follow::No));
acted_hook!(utime(path: *const c_char, times: *const libc::utimbuf), NR_UTIME,
    utime_path(path, times));
acted_hook!(setxattr(path: *const c_char, name: *const c_char, value: *const c_void, size: usize, flags: c_int),
    libc::SYS_setxattr, xattr_path(Call::Setxattr, path, Follow::Yes, libc::SYS_setxattr,
        [name as c_long, value as c_long, size as c_long, flags as c_long]));
acted_hook!(lsetxattr(path: *const c_char, name: *const c_char, value: *const c_void, size: usize, flags: c_int),
    libc::SYS_lsetxattr, xattr_path(Call::Setxattr, path, Follow::No, libc::SYS_setxattr,
        [name as c_long, value as c_long, size as c_long, flags as c_long]));
checked_hook!(fsetxattr(fd: c_int, name: *const c_char, value: *const c_void, size: usize, flags: c_int) -> c_int,
    libc::SYS_fsetxattr, check_fd_write(Call::Setxattr, fd));
acted_hook!(removexattr(path: *const c_char, name: *const c_char),
    libc::SYS_removexattr, xattr_path(Call::Removexattr, path, Follow::Yes, libc::SYS_removexattr,
        [name as c_long, 0, 0, 0]));
acted_hook!(lremovexattr(path: *const c_char, name: *const c_char),
    libc::SYS_lremovexattr, xattr_path(Call::Removexattr, path, Follow::No, libc::SYS_removexattr,
        [name as c_long, 0, 0, 0]));
checked_hook!(fremovexattr(fd: c_int, name: *const c_char) -> c_int,
    libc::SYS_fremovexattr, check_fd_write(Call::Removexattr, fd));
acted_hook!(lchmod(path: *const c_char, mode: mode_t), -1,
    write(Call::Chmod, AT, path, Follow::No, |fd| chmod_held(fd, mode)));
acted_hook!(acct(path: *const c_char), libc::SYS_acct, acct_held(path));

/// `acct`: the kernel opens the file itself, by name, for appending: it is
/// given the held object's `/proc` link (null turns accounting off).
pub(super) fn acct_held(path: *const c_char) -> Acted {
    if path.is_null() {
        return Acted::Next;
    }
    write(Call::Acct, AT, path, Follow::Yes, |fd| {
        via_proc(fd, |p| {
            syscall(libc::SYS_acct, [p as c_long, 0, 0, 0, 0, 0])
        })
    })
}

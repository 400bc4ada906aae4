//! `syscall(NR, ...)` for the system calls behind the file, exec and
//! network hooks: each number gets the check its libc wrapper's hook
//! makes, on the arguments as the kernel reads them, and then the system
//! call itself is made unchanged.

use super::borrowed::{
    check_exec, check_fd_write, check_file, check_open_flags, check_unnamed, Follow,
};
use super::borrowed::{
    chmod_at, chown_at, link_held, mkdir_at, mknod_at, rename_held, symlink_at, truncate_path,
    unlink_at, Acted,
};
use super::net;
use crate::decide::check::Verdict;
use ldguard_policy::{Access, Call};
use libc::{c_char, c_int, c_long, sockaddr, socklen_t};

const AT: c_int = libc::AT_FDCWD;

fn follow_unless(flags: c_long, nofollow: c_int) -> Follow {
    if flags as c_int & nofollow != 0 {
        Follow::No
    } else {
        Follow::Yes
    }
}

/// The path calls the library makes itself on the object it decided
/// (docs/preload.md, *Other path calls are made on the object decided*):
/// for those numbers, the outcome, as the libc function's hook gives it;
/// `None` for every other number (checked by [`check`], then made).
pub fn held(nr: c_long, a: &[c_long; 6]) -> Option<Acted> {
    let fd = |i: usize| a[i] as c_int;
    let path = |i: usize| a[i] as *const c_char;
    let uid = |i: usize| a[i] as libc::uid_t;
    let gid = |i: usize| a[i] as libc::gid_t;
    let xattr = |call, follow, nr| {
        super::meta::xattr_path(call, path(0), follow, nr, [a[1], a[2], a[3], a[4]])
    };
    Some(match nr {
        libc::SYS_truncate => truncate_path(Call::Truncate, path(0), a[1]),
        #[cfg(target_arch = "x86_64")]
        libc::SYS_unlink => unlink_at(Call::Unlink, AT, path(0), 0),
        libc::SYS_unlinkat => unlink_at(Call::Unlinkat, fd(0), path(1), a[2] as c_int),
        #[cfg(target_arch = "x86_64")]
        libc::SYS_rmdir => unlink_at(Call::Rmdir, AT, path(0), libc::AT_REMOVEDIR),
        #[cfg(target_arch = "x86_64")]
        libc::SYS_mkdir => mkdir_at(Call::Mkdir, AT, path(0), a[1] as libc::mode_t),
        libc::SYS_mkdirat => mkdir_at(Call::Mkdirat, fd(0), path(1), a[2] as libc::mode_t),
        #[cfg(target_arch = "x86_64")]
        libc::SYS_symlink => symlink_at(Call::Symlink, path(0), AT, path(1)),
        libc::SYS_symlinkat => symlink_at(Call::Symlinkat, path(0), fd(1), path(2)),
        #[cfg(target_arch = "x86_64")]
        libc::SYS_rename => rename_held(Call::Rename, AT, path(0), AT, path(1), 0),
        libc::SYS_renameat => rename_held(Call::Renameat, fd(0), path(1), fd(2), path(3), 0),
        libc::SYS_renameat2 => rename_held(
            Call::Renameat2,
            fd(0),
            path(1),
            fd(2),
            path(3),
            a[4] as libc::c_uint,
        ),
        #[cfg(target_arch = "x86_64")]
        libc::SYS_link => link_held(Call::Link, AT, path(0), AT, path(1), 0),
        libc::SYS_linkat => link_held(Call::Linkat, fd(0), path(1), fd(2), path(3), a[4] as c_int),
        #[cfg(target_arch = "x86_64")]
        libc::SYS_chmod => chmod_at(Call::Chmod, AT, path(0), a[1] as libc::mode_t, 0),
        // fchmodat(2) has no flags; fchmodat2 (452, Linux 6.6) does.
        libc::SYS_fchmodat => chmod_at(Call::Fchmodat, fd(0), path(1), a[2] as libc::mode_t, 0),
        #[cfg(target_arch = "x86_64")]
        libc::SYS_chown => chown_at(Call::Chown, AT, path(0), uid(1), gid(2), 0),
        #[cfg(target_arch = "x86_64")]
        libc::SYS_lchown => chown_at(
            Call::Lchown,
            AT,
            path(0),
            uid(1),
            gid(2),
            libc::AT_SYMLINK_NOFOLLOW,
        ),
        libc::SYS_fchownat => chown_at(
            Call::Fchownat,
            fd(0),
            path(1),
            uid(2),
            gid(3),
            a[4] as c_int,
        ),
        libc::SYS_utimensat if a[1] != 0 => super::meta::times_at(
            Call::Utimensat,
            fd(0),
            path(1),
            a[2] as *const libc::timespec,
            a[3] as c_int,
        ),
        libc::SYS_setxattr => xattr(Call::Setxattr, Follow::Yes, libc::SYS_setxattr),
        libc::SYS_lsetxattr => xattr(Call::Setxattr, Follow::No, libc::SYS_setxattr),
        libc::SYS_removexattr => xattr(Call::Removexattr, Follow::Yes, libc::SYS_removexattr),
        libc::SYS_lremovexattr => xattr(Call::Removexattr, Follow::No, libc::SYS_removexattr),
        #[cfg(target_arch = "x86_64")]
        libc::SYS_mknod => mknod_at(Call::Mknod, AT, path(0), a[1] as _, a[2] as _),
        libc::SYS_mknodat => mknod_at(Call::Mknodat, fd(0), path(1), a[2] as _, a[3] as _),
        // fchmodat2 (452, Linux 6.6); with AT_EMPTY_PATH it acts on the
        // descriptor's own object: checked, then made ([`check`]).
        452 if a[3] as c_int & libc::AT_EMPTY_PATH == 0 => chmod_at(
            Call::Fchmodat,
            fd(0),
            path(1),
            a[2] as libc::mode_t,
            a[3] as c_int,
        ),
        // The old time calls follow links; their times are passed to the
        // kernel untouched, on the held object's `/proc` link.
        #[cfg(target_arch = "x86_64")]
        libc::SYS_utime | libc::SYS_utimes => times_held(Call::Utimes, nr, AT, path(0), [a[1], 0]),
        #[cfg(target_arch = "x86_64")]
        libc::SYS_futimesat if a[1] != 0 => {
            times_held(Call::Utimes, nr, fd(0), path(1), [AT as c_long, a[2]])
        }
        libc::SYS_chroot => super::sys::chroot_acted(path(0)),
        libc::SYS_acct => super::meta::acct_held(path(0)),
        libc::SYS_connect | libc::SYS_sendto | libc::SYS_sendmsg | libc::SYS_sendmmsg => {
            return net::made(nr, a)
        }
        _ => return None,
    })
}

/// The check for system call `nr` with arguments `a` (the numbers
/// [`held`] does not take); `Allow` for numbers no hook governs.
pub fn check(nr: c_long, a: &[c_long; 6]) -> Verdict {
    let fd = |i: usize| a[i] as c_int;
    let path = |i: usize| a[i] as *const c_char;
    let sock = |i: usize| (a[i] as *const sockaddr, a[i + 1] as socklen_t);
    match nr {
        // open family
        #[cfg(target_arch = "x86_64")]
        libc::SYS_open => check_open_flags(Call::Open, AT, path(0), a[1] as c_int),
        libc::SYS_openat => check_open_flags(Call::Openat, fd(0), path(1), a[2] as c_int),
        #[cfg(target_arch = "x86_64")]
        libc::SYS_creat => check_open_flags(
            Call::Creat,
            AT,
            path(0),
            libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC,
        ),
        libc::SYS_openat2 => openat2(fd(0), path(1), a[2], a[3]),
        // Path writes the held route ([`held`]) does not make: checked here.
        // fchmodat2 with AT_EMPTY_PATH (the descriptor's own object).
        452 => at_path_write(Call::Fchmodat, fd(0), path(1), a[3]),
        libc::SYS_fchmod => check_fd_write(Call::Fchmod, fd(0)),
        libc::SYS_fchown => check_fd_write(Call::Fchown, fd(0)),
        #[cfg(target_arch = "x86_64")]
        libc::SYS_futimesat => check_fd_write(Call::Utimes, fd(0)),
        libc::SYS_utimensat if a[1] == 0 => check_fd_write(Call::Utimensat, fd(0)),
        libc::SYS_fsetxattr => check_fd_write(Call::Setxattr, fd(0)),
        libc::SYS_fremovexattr => check_fd_write(Call::Removexattr, fd(0)),
        // exec
        libc::SYS_execve => check_exec(Call::Execve, AT, path(0), a[1] as _),
        libc::SYS_execveat => execveat(fd(0), path(1), a[2] as _, a[4]),
        // network
        libc::SYS_bind => {
            let (addr, len) = sock(1);
            net::check_bind(fd(0), addr, len)
        }
        libc::SYS_listen => net::check_listen(fd(0)),
        libc::SYS_sendmmsg => net::check_mmsg(fd(0), a[1] as *mut libc::mmsghdr, a[2] as u32),
        _ => Verdict::Allow,
    }
}

/// `utime`, `utimes` (`[times, 0]`) or `futimesat` (`[AT_FDCWD, times]`)
/// of the object `(dirfd, path)` reaches, made on its `/proc` link.
#[cfg(target_arch = "x86_64")]
fn times_held(
    call: Call,
    nr: c_long,
    dirfd: c_int,
    path: *const c_char,
    args: [c_long; 2],
) -> Acted {
    use super::borrowed::{act_on, syscall, via_proc, PathArg};
    act_on(
        PathArg::existing(dirfd, path, Follow::Yes),
        call,
        |fd, _| {
            via_proc(fd, |p| {
                let a = if nr == libc::SYS_futimesat {
                    [args[0], p as c_long, args[1], 0, 0, 0]
                } else {
                    [p as c_long, args[0], 0, 0, 0, 0]
                };
                syscall(nr, a)
            })
        },
    )
}

/// `*at` calls with `AT_SYMLINK_NOFOLLOW` and `AT_EMPTY_PATH` flags.
fn at_path_write(call: Call, dirfd: c_int, path: *const c_char, flags: c_long) -> Verdict {
    // SAFETY: a NUL-terminated path or null, as the kernel reads it.
    let empty = unsafe { crate::os::sys::cstr(path) }.is_none_or(|p| p.is_empty());
    if empty && flags as c_int & libc::AT_EMPTY_PATH != 0 {
        return check_fd_write(call, dirfd);
    }
    check_file(
        call,
        dirfd,
        path,
        Access::Write,
        follow_unless(flags, libc::AT_SYMLINK_NOFOLLOW),
    )
}

/// `openat2(dirfd, path, how, size)`: `struct open_how` is the u64 flags,
/// mode and (from 24 bytes on) resolve flags.
fn openat2(dirfd: c_int, path: *const c_char, how: c_long, size: c_long) -> Verdict {
    if how == 0 || (size as usize) < std::mem::size_of::<u64>() {
        return Verdict::Allow; // EFAULT / EINVAL from the kernel
    }
    let how = how as *const u64;
    // SAFETY: the caller passes a readable open_how of `size` bytes, at
    // least the 8 of its first field (checked above).
    let flags = unsafe { std::ptr::read_unaligned(how) } as c_int;
    let resolve = if size >= 24 {
        // SAFETY: as above; `size` covers the third field.
        unsafe { std::ptr::read_unaligned(how.add(2)) }
    } else {
        0
    };
    if resolve & RESOLVE_IN_ROOT != 0 {
        return in_root(dirfd, path, flags, resolve);
    }
    check_open_flags(Call::OpenatSys2, dirfd, path, flags)
}

const RESOLVE_IN_ROOT: u64 = 0x10;

/// `RESOLVE_IN_ROOT` makes `dirfd` the root: `/f`, `..` and absolute
/// symlinks all resolve inside it, so the spelling names the wrong file.
/// Decided on the kernel's path of what the same resolution reaches (an
/// `O_PATH` descriptor opened with the caller's resolve flags; for a file
/// still to be created, its directory's path and the name). When that
/// path cannot be had, [`check_unnamed`] decides.
fn in_root(dirfd: c_int, path: *const c_char, flags: c_int, resolve: u64) -> Verdict {
    let nofollow = flags & libc::O_NOFOLLOW;
    let pin = |p: *const c_char, extra: c_int| {
        let pin_flags = libc::O_PATH | libc::O_CLOEXEC | extra;
        crate::decide::resolve::openat2_raw(dirfd, p, pin_flags, 0, resolve)
    };
    let mut kernel = [0u8; crate::decide::resolve::PATH_CAP + 1];
    match pin(path, nofollow) {
        Ok(fd) => {
            let found =
                crate::os::sys::fd_path(fd, &mut kernel[..crate::decide::resolve::PATH_CAP]);
            crate::os::sys::close(fd);
            if found.is_some() {
                return check_open_flags(Call::OpenatSys2, AT, kernel.as_ptr().cast(), flags);
            }
        }
        Err(libc::ENOENT) if flags & libc::O_CREAT != 0 => {
            if let Some(v) = in_root_new_file(path, flags, &mut kernel, |p| pin(p, 0)) {
                return v;
            }
        }
        // The call fails the same way.
        Err(_) => return Verdict::Allow,
    }
    let writes = flags & libc::O_ACCMODE != libc::O_RDONLY
        || flags & (libc::O_CREAT | libc::O_TRUNC | libc::O_APPEND) != 0;
    let access = if writes { Access::Write } else { Access::Read };
    check_unnamed(Call::OpenatSys2, path, access)
}

/// A file `O_CREAT` will make under `RESOLVE_IN_ROOT`: its directory pinned
/// as the call will resolve it, plus the name. `None` when the directory's
/// path cannot be had.
fn in_root_new_file(
    path: *const c_char,
    flags: c_int,
    kernel: &mut [u8; crate::decide::resolve::PATH_CAP + 1],
    pin: impl Fn(*const c_char) -> Result<c_int, c_int>,
) -> Option<Verdict> {
    // SAFETY: the caller's path is NUL-terminated (the pin above read it).
    let given = unsafe { crate::os::sys::cstr(path) }?;
    let (dir, name) = match given.iter().rposition(|&b| b == b'/') {
        Some(i) => (&given[..i.max(1)], &given[i + 1..]),
        None => (&b"."[..], given),
    };
    let mut dir_c = [0u8; crate::decide::resolve::PATH_CAP + 1];
    if dir.len() >= dir_c.len() {
        return None;
    }
    dir_c[..dir.len()].copy_from_slice(dir);
    let fd = pin(dir_c.as_ptr().cast()).ok()?;
    let found = crate::os::sys::fd_path(fd, &mut kernel[..crate::decide::resolve::PATH_CAP]);
    crate::os::sys::close(fd);
    let len = found?;
    let total = len + 1 + name.len();
    if total >= kernel.len() {
        return None;
    }
    kernel[len] = b'/';
    kernel[len + 1..total].copy_from_slice(name);
    kernel[total] = 0;
    Some(check_open_flags(
        Call::OpenatSys2,
        AT,
        kernel.as_ptr().cast(),
        flags,
    ))
}

fn execveat(
    dirfd: c_int,
    path: *const c_char,
    argv: *const *const c_char,
    flags: c_long,
) -> Verdict {
    // SAFETY: as in `at_path_write`.
    let empty = unsafe { crate::os::sys::cstr(path) }.is_none_or(|p| p.is_empty());
    if empty && flags as c_int & libc::AT_EMPTY_PATH != 0 {
        let mut link = [0u8; 32];
        crate::os::sys::proc_fd_path(dirfd, &mut link);
        return check_exec(Call::Execveat, AT, link.as_ptr().cast(), argv);
    }
    check_exec(Call::Execveat, dirfd, path, argv)
}

//! `syscall(NR, ...)` for the system calls behind the file, exec and
//! network hooks: each number gets the check its libc wrapper's hook
//! makes, on the arguments as the kernel reads them, and then the system
//! call itself is made unchanged.

use super::borrowed::{
    check_exec, check_fd_write, check_file, check_mknod, check_move, check_open_flags,
    check_unnamed, link_follow, Follow, Move,
};
use super::net;
use crate::check::Verdict;
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

/// The check for system call `nr` with arguments `a`; `Allow` for numbers
/// no hook governs.
pub fn check(nr: c_long, a: &[c_long; 6]) -> Verdict {
    let fd = |i: usize| a[i] as c_int;
    let path = |i: usize| a[i] as *const c_char;
    let write = |call, dirfd, p, follow| check_file(call, dirfd, p, Access::Write, follow);
    let rename = |exchange| Move::Rename { exchange };
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
        // path writes
        libc::SYS_truncate => write(Call::Truncate, AT, path(0), Follow::Yes),
        #[cfg(target_arch = "x86_64")]
        libc::SYS_unlink => write(Call::Unlink, AT, path(0), Follow::No),
        libc::SYS_unlinkat => write(Call::Unlinkat, fd(0), path(1), Follow::No),
        #[cfg(target_arch = "x86_64")]
        libc::SYS_rmdir => write(Call::Rmdir, AT, path(0), Follow::No),
        #[cfg(target_arch = "x86_64")]
        libc::SYS_mkdir => write(Call::Mkdir, AT, path(0), Follow::No),
        libc::SYS_mkdirat => write(Call::Mkdirat, fd(0), path(1), Follow::No),
        #[cfg(target_arch = "x86_64")]
        libc::SYS_mknod => check_mknod(Call::Mknod, AT, path(0), a[1] as _, a[2] as _),
        libc::SYS_mknodat => check_mknod(Call::Mknodat, fd(0), path(1), a[2] as _, a[3] as _),
        #[cfg(target_arch = "x86_64")]
        libc::SYS_symlink => write(Call::Symlink, AT, path(1), Follow::No),
        libc::SYS_symlinkat => write(Call::Symlinkat, fd(1), path(2), Follow::No),
        #[cfg(target_arch = "x86_64")]
        libc::SYS_rename => check_move(Call::Rename, AT, path(0), AT, path(1), rename(false)),
        libc::SYS_renameat => check_move(
            Call::Renameat,
            fd(0),
            path(1),
            fd(2),
            path(3),
            rename(false),
        ),
        libc::SYS_renameat2 => {
            let exchange = a[4] as libc::c_uint & libc::RENAME_EXCHANGE != 0;
            check_move(
                Call::Renameat2,
                fd(0),
                path(1),
                fd(2),
                path(3),
                rename(exchange),
            )
        }
        #[cfg(target_arch = "x86_64")]
        libc::SYS_link => check_move(Call::Link, AT, path(0), AT, path(1), Move::Link(Follow::No)),
        libc::SYS_linkat => {
            let follow = link_follow(a[4] as c_int);
            check_move(
                Call::Linkat,
                fd(0),
                path(1),
                fd(2),
                path(3),
                Move::Link(follow),
            )
        }
        #[cfg(target_arch = "x86_64")]
        libc::SYS_chmod => write(Call::Chmod, AT, path(0), Follow::Yes),
        // fchmodat(2) has no flags; fchmodat2 (452, Linux 6.6) does.
        libc::SYS_fchmodat => write(Call::Fchmodat, fd(0), path(1), Follow::Yes),
        452 => at_path_write(Call::Fchmodat, fd(0), path(1), a[3]),
        #[cfg(target_arch = "x86_64")]
        libc::SYS_chown => write(Call::Chown, AT, path(0), Follow::Yes),
        #[cfg(target_arch = "x86_64")]
        libc::SYS_lchown => write(Call::Lchown, AT, path(0), Follow::No),
        libc::SYS_fchownat => at_path_write(Call::Fchownat, fd(0), path(1), a[4]),
        libc::SYS_fchmod => check_fd_write(Call::Fchmod, fd(0)),
        libc::SYS_fchown => check_fd_write(Call::Fchown, fd(0)),
        #[cfg(target_arch = "x86_64")]
        libc::SYS_utime | libc::SYS_utimes => write(Call::Utimes, AT, path(0), Follow::Yes),
        #[cfg(target_arch = "x86_64")]
        libc::SYS_futimesat => write(Call::Utimes, fd(0), path(1), Follow::Yes),
        libc::SYS_utimensat if a[1] == 0 => check_fd_write(Call::Utimensat, fd(0)),
        libc::SYS_utimensat => at_path_write(Call::Utimensat, fd(0), path(1), a[3]),
        libc::SYS_setxattr => write(Call::Setxattr, AT, path(0), Follow::Yes),
        libc::SYS_lsetxattr => write(Call::Setxattr, AT, path(0), Follow::No),
        libc::SYS_fsetxattr => check_fd_write(Call::Setxattr, fd(0)),
        libc::SYS_removexattr => write(Call::Removexattr, AT, path(0), Follow::Yes),
        libc::SYS_lremovexattr => write(Call::Removexattr, AT, path(0), Follow::No),
        libc::SYS_fremovexattr => check_fd_write(Call::Removexattr, fd(0)),
        // exec
        libc::SYS_execve => check_exec(Call::Execve, AT, path(0), a[1] as _),
        libc::SYS_execveat => execveat(fd(0), path(1), a[2] as _, a[4]),
        // network
        libc::SYS_connect => {
            let (addr, len) = sock(1);
            net::check_connect(Call::Connect, fd(0), addr, len)
        }
        libc::SYS_bind => {
            let (addr, len) = sock(1);
            net::check_bind(fd(0), addr, len)
        }
        libc::SYS_listen => net::check_listen(fd(0)),
        libc::SYS_sendto if a[4] != 0 => {
            let (addr, len) = sock(4);
            net::check_send(Call::Sendto, fd(0), addr, len)
        }
        libc::SYS_sendmsg => net::check_msg(Call::Sendmsg, fd(0), a[1] as *const libc::msghdr),
        libc::SYS_sendmmsg => net::check_mmsg(fd(0), a[1] as *mut libc::mmsghdr, a[2] as u32),
        _ => Verdict::Allow,
    }
}

/// `*at` calls with `AT_SYMLINK_NOFOLLOW` and `AT_EMPTY_PATH` flags.
fn at_path_write(call: Call, dirfd: c_int, path: *const c_char, flags: c_long) -> Verdict {
    // SAFETY: a NUL-terminated path or null, as the kernel reads it.
    let empty = unsafe { crate::sys::cstr(path) }.is_none_or(|p| p.is_empty());
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
        crate::resolve::openat2_raw(dirfd, p, pin_flags, 0, resolve)
    };
    let mut kernel = [0u8; crate::resolve::PATH_CAP + 1];
    match pin(path, nofollow) {
        Ok(fd) => {
            let found = crate::sys::fd_path(fd, &mut kernel[..crate::resolve::PATH_CAP]);
            crate::sys::close(fd);
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
    kernel: &mut [u8; crate::resolve::PATH_CAP + 1],
    pin: impl Fn(*const c_char) -> Result<c_int, c_int>,
) -> Option<Verdict> {
    // SAFETY: the caller's path is NUL-terminated (the pin above read it).
    let given = unsafe { crate::sys::cstr(path) }?;
    let (dir, name) = match given.iter().rposition(|&b| b == b'/') {
        Some(i) => (&given[..i.max(1)], &given[i + 1..]),
        None => (&b"."[..], given),
    };
    let mut dir_c = [0u8; crate::resolve::PATH_CAP + 1];
    if dir.len() >= dir_c.len() {
        return None;
    }
    dir_c[..dir.len()].copy_from_slice(dir);
    let fd = pin(dir_c.as_ptr().cast()).ok()?;
    let found = crate::sys::fd_path(fd, &mut kernel[..crate::resolve::PATH_CAP]);
    crate::sys::close(fd);
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
    let empty = unsafe { crate::sys::cstr(path) }.is_none_or(|p| p.is_empty());
    if empty && flags as c_int & libc::AT_EMPTY_PATH != 0 {
        let mut link = [0u8; 32];
        crate::sys::proc_fd_path(dirfd, &mut link);
        return check_exec(Call::Execveat, AT, link.as_ptr().cast(), argv);
    }
    check_exec(Call::Execveat, dirfd, path, argv)
}

//! Every use, by the hooks of this folder, of the file and exec hooks and
//! of the path resolver (`file.rs`, `exec/`, `resolve.rs`). They are kept
//! here, in one place, so that changes to those modules meet these hooks
//! at one seam. (The C shim's `__open*` aliases forward to `ldguard_open`
//! directly; see `shim/ldguard_shim.c`.)

use crate::decide::check::Verdict;
use crate::decide::resolve;
use crate::hooks::{exec, file};
use crate::os::sys;
use ldguard_policy::{Access, Call};
use libc::{c_char, c_int, FILE};

pub use file::{
    act_on, chmod_held, chroot_held, syscall, unless_refused, via_proc, Acted, PathArg,
};
pub use file::{
    check_every_file, check_new_root, check_tree_as, check_tree_mount, check_unnamed, Follow,
};
pub use file::{
    chmod_at, chown_at, link_held, mkdir_at, mknod_at, rename_held, symlink_at, truncate_path,
    unlink_at,
};

/// Checks one path of a file operation (made absolute against `dirfd`,
/// normalised, and resolved as the kernel will).
pub fn check_file(
    call: Call,
    dirfd: c_int,
    path: *const c_char,
    access: Access,
    follow: Follow,
) -> Verdict {
    file::check_path(call, dirfd, path, access, follow)
}

/// A write check on the file a descriptor refers to (`fchmod`, `futimens`,
/// `fsetxattr`...). A descriptor open for writing had its write checked
/// when it was opened; descriptors that name no path (pipes, sockets,
/// deleted files) have nothing a path rule could match.
pub fn check_fd_write(call: Call, fd: c_int) -> Verdict {
    // No system call when no check would run: checks off (after what
    // every hooked call does, `check::run_or`: a disabled process still
    // learns of a new mode) or this thread inside the library.
    if crate::load::state::is_off() {
        crate::load::refresh::poll();
        if crate::load::state::is_off() {
            return Verdict::Allow;
        }
    }
    if crate::os::guard::check_depth() >= crate::os::guard::MAX_CHECK_DEPTH {
        return Verdict::Allow;
    }
    // The one system call, inline (errno untouched). Refused: the path
    // decides, as for a descriptor not open for writing.
    if let Some(flags) = resolve::fd_flags(fd) {
        if flags & libc::O_PATH == 0 && flags & libc::O_ACCMODE != libc::O_RDONLY {
            return Verdict::Allow;
        }
    }
    let mut path = [0u8; resolve::PATH_CAP + 1];
    match sys::fd_path(fd, &mut path[..resolve::PATH_CAP]) {
        Some(_) => check_file(
            call,
            libc::AT_FDCWD,
            path.as_ptr().cast(),
            Access::Write,
            Follow::No,
        ),
        None => Verdict::Allow,
    }
}

/// What `open` flags do to a file: a write check for anything that can
/// modify, a read check for anything that can read. The same mapping as
/// the `open` hooks' (`file.rs`), for opens that do not go through them
/// (`openat2` and `syscall(SYS_open...)`).
pub fn check_open_flags(call: Call, dirfd: c_int, path: *const c_char, flags: c_int) -> Verdict {
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
    if writes {
        if let v @ Verdict::Deny(_) = check_file(call, dirfd, path, Access::Write, follow) {
            return v;
        }
    }
    if acc != libc::O_WRONLY {
        return check_file(call, dirfd, path, Access::Read, follow);
    }
    Verdict::Allow
}

/// Checks an exec of `path` (relative to `dirfd`) with `argv`.
pub fn check_exec(
    call: Call,
    dirfd: c_int,
    path: *const c_char,
    argv: *const *const c_char,
) -> Verdict {
    // SAFETY: exec paths are NUL-terminated C strings (or null).
    let path = unsafe { crate::decide::resolve::CPath::from_ptr(path) };
    exec::check_exec(call, dirfd, path, argv)
}

pub use exec::{before_exec, execve_hook, execveat_hook};

/// Checks running `/bin/sh -c CMD`, as `system` and `popen` do.
pub fn check_shell(call: Call, cmd: *const c_char) -> Verdict {
    let argv: [*const c_char; 4] = [c"sh".as_ptr(), c"-c".as_ptr(), cmd, std::ptr::null()];
    check_exec(call, libc::AT_FDCWD, c"/bin/sh".as_ptr(), argv.as_ptr())
}

/// Calls `f` with the absolute, normalised form of a socket path and, when
/// it differs, the path the kernel reaches (symlinks followed). `None`
/// when the path cannot be made absolute (longer than `PATH_MAX`).
pub fn socket_path_forms<R>(
    path: &[u8],
    resolve_links: bool,
    f: impl FnOnce(&[u8], Option<&[u8]>) -> R,
) -> Option<R> {
    resolve::with_scratch(|s| {
        let (scratch, abs, res) = (&mut s.a, &mut s.b, &mut s.c);
        resolve::absolute(libc::AT_FDCWD, path, scratch, abs)?;
        let resolved = resolve_links
            && !resolve::without_links(libc::AT_FDCWD, abs.as_bytes(), true, scratch)
            && resolve::resolved(libc::AT_FDCWD, abs.as_bytes(), true, scratch, res).is_some()
            && res.as_bytes() != abs.as_bytes();
        Some(f(abs.as_bytes(), resolved.then(|| res.as_bytes())))
    })
}

/// A unix socket path made absolute and normalised against the cwd
/// (`None` when it cannot be: a deleted or too deep cwd), and the kernel's
/// path of the socket file `held` names (`None` without one, or when the
/// file has no path `/proc` can give); `f` decides on them.
pub fn socket_file_forms<R>(
    path: &[u8],
    held: Option<c_int>,
    f: impl FnOnce(Option<&[u8]>, Option<&[u8]>) -> R,
) -> R {
    let mut kernel = [0u8; resolve::PATH_CAP + 1];
    let named = held.and_then(|fd| sys::fd_path(fd, &mut kernel[..resolve::PATH_CAP]));
    resolve::with_scratch(|s| {
        let (scratch, abs) = (&mut s.a, &mut s.b);
        let made = resolve::absolute(libc::AT_FDCWD, path, scratch, abs).is_some();
        f(made.then(|| abs.as_bytes()), named.map(|n| &kernel[..n]))
    })
}

/// `fopen` through its hook (for glibc's `_IO_fopen` alias).
///
/// # Safety
/// libc ABI.
pub unsafe fn fopen(path: *const c_char, mode: *const c_char) -> *mut FILE {
    // SAFETY: the caller's arguments.
    unsafe { file::fopen(path, mode) }
}

/// `popen` through its hook (for glibc's `_IO_popen` alias).
///
/// # Safety
/// libc ABI.
pub unsafe fn popen(cmd: *const c_char, mode: *const c_char) -> *mut FILE {
    // SAFETY: the caller's arguments.
    unsafe { exec::popen(cmd, mode) }
}

/// `system` through its hook (for glibc's `__libc_system` alias).
///
/// # Safety
/// libc ABI.
pub unsafe fn system(cmd: *const c_char) -> c_int {
    // SAFETY: the caller's argument.
    unsafe { exec::system(cmd) }
}

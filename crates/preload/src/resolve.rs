//! Turning the path arguments of a call into what the policy matches: the
//! path as given, made absolute against the cwd or dirfd and normalised, and
//! the object the kernel will actually reach, with symlinks, `..` through
//! symlinks and `/proc/self/fd/N` magic links resolved.
//!
//! Resolution asks the kernel itself (`openat(O_PATH)` + `readlink` of the
//! descriptor), so it agrees with what the real call will do. All buffers
//! are on the caller's stack; nothing allocates.

use crate::sys;
use std::cell::UnsafeCell;
use std::ffi::{c_char, c_int, c_long};
use std::sync::atomic::{AtomicBool, Ordering};

pub const PATH_CAP: usize = libc::PATH_MAX as usize;

/// A path in a fixed buffer.
pub struct PathBuf {
    buf: [u8; PATH_CAP],
    len: usize,
}

impl PathBuf {
    pub const fn new() -> PathBuf {
        PathBuf {
            buf: [0; PATH_CAP],
            len: 0,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn set(&mut self, parts: &[&[u8]]) -> Option<()> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if total >= PATH_CAP {
            return None;
        }
        let mut at = 0;
        for p in parts {
            self.buf[at..at + p.len()].copy_from_slice(p);
            at += p.len();
        }
        self.buf[at] = 0;
        self.len = at;
        Some(())
    }

    fn c_ptr(&self) -> *const c_char {
        self.buf.as_ptr() as *const c_char
    }
}

/// Per-thread path buffers for the hooks. Zeroing three 4 KiB stack arrays
/// on every call cost more than the whole check (measured with callgrind:
/// 93% of the instructions of a checked `open` were `memset`); in TLS they
/// are zero pages the loader provides once.
pub struct Scratch {
    pub a: PathBuf,
    pub b: PathBuf,
    pub c: PathBuf,
}

#[allow(clippy::declare_interior_mutable_const)] // only used to build SCRATCH
const EMPTY_SCRATCH: UnsafeCell<Scratch> = UnsafeCell::new(Scratch {
    a: PathBuf::new(),
    b: PathBuf::new(),
    c: PathBuf::new(),
});

thread_local! {
    /// One set per check level (see `guard`): a signal handler's hook that
    /// interrupts a check must not write over the buffers it is using.
    static SCRATCH: [UnsafeCell<Scratch>; crate::guard::MAX_CHECK_DEPTH as usize] =
        const { [EMPTY_SCRATCH; crate::guard::MAX_CHECK_DEPTH as usize] };
}

/// Runs `f` with this thread's buffers for the current check level.
///
/// Callers hold a check guard ([`crate::guard::Guard`]) for the whole
/// call: a signal handler that interrupts `f` and calls a hook is one level
/// deeper and gets the next set, so the `&mut` is unique.
pub fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    let level =
        usize::from(crate::guard::check_depth().clamp(1, crate::guard::MAX_CHECK_DEPTH) - 1);
    // SAFETY: exclusive per the level argument above; the cells are this
    // thread's own and have no destructor.
    SCRATCH.with(|cells| f(unsafe { &mut *cells[level].get() }))
}

/// `path` made absolute against `dirfd` (`AT_FDCWD` for the cwd) and
/// lexically normalised into `out`, using `scratch` for the base directory.
pub fn absolute(dirfd: c_int, path: &[u8], scratch: &mut PathBuf, out: &mut PathBuf) -> Option<()> {
    let base_len = if path.first() == Some(&b'/') {
        0
    } else if dirfd == libc::AT_FDCWD {
        sys::getcwd(&mut scratch.buf)?
    } else {
        sys::fd_path(dirfd, &mut scratch.buf)?
    };
    let n = ldguard_policy::path::normalize_into(
        &scratch.buf[..base_len],
        path,
        &mut out.buf[..PATH_CAP - 1],
    )?;
    out.len = n;
    Some(())
}

/// Whether the kernel reaches `(dirfd, path)` without following any
/// symlink or magic link (`/proc/self/fd/N`), in which case the lexical
/// absolute path already is the resolved one. One `openat2` with
/// `RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS` and a `close`: this spares
/// the `readlink` of `/proc/self/fd/N` that full resolution needs (the
/// dearest part, several µs). `false` when it cannot tell (a link on the
/// way, a missing file, a kernel before 5.6).
pub fn without_links(dirfd: c_int, path: &[u8], follow: bool, scratch: &mut PathBuf) -> bool {
    static NO_OPENAT2: AtomicBool = AtomicBool::new(false);
    if NO_OPENAT2.load(Ordering::Relaxed) || scratch.set(&[path]).is_none() {
        return false;
    }
    // struct open_how { u64 flags; u64 mode; u64 resolve; }
    let nofollow = if follow { 0 } else { libc::O_NOFOLLOW };
    let how: [u64; 3] = [
        (libc::O_PATH | libc::O_CLOEXEC | nofollow) as u64,
        0,
        RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    ];
    let fd = sys::raw_syscall(
        libc::SYS_openat2,
        [
            dirfd as c_long,
            scratch.c_ptr() as c_long,
            how.as_ptr() as c_long,
            std::mem::size_of_val(&how) as c_long,
            0,
            0,
        ],
    );
    if fd >= 0 {
        sys::close(fd as c_int);
        return true;
    }
    if sys::errno() == libc::ENOSYS {
        NO_OPENAT2.store(true, Ordering::Relaxed);
    }
    false
}

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_NO_SYMLINKS: u64 = 0x04;

/// The path the kernel reaches for `(dirfd, path)`, following a final
/// symlink when `follow`. For a path that does not exist yet (a file being
/// created) the parent directory is resolved and the last segment appended;
/// a dangling final symlink is followed to where the file would be created.
pub fn resolved(
    dirfd: c_int,
    path: &[u8],
    follow: bool,
    scratch: &mut PathBuf,
    out: &mut PathBuf,
) -> Option<()> {
    let mut dirfd = dirfd;
    scratch.set(&[path])?;
    // A bounded number of dangling-symlink hops, as the kernel's 40.
    for _ in 0..40 {
        let extra = if follow { 0 } else { libc::O_NOFOLLOW };
        let fd = sys::open_path(dirfd, scratch.c_ptr(), extra);
        if fd >= 0 {
            let n = sys::fd_path(fd, &mut out.buf[..PATH_CAP - 1]);
            sys::close(fd);
            out.len = n?;
            return Some(());
        }
        if sys::errno() != libc::ENOENT {
            return None;
        }
        // Missing: resolve the parent, then look at the last segment.
        let whole = &scratch.buf[..scratch.len];
        let trimmed = trim_trailing_slashes(whole);
        let (parent, last): (&[u8], &[u8]) = match trimmed.iter().rposition(|&b| b == b'/') {
            Some(0) => (b"/", &trimmed[1..]),
            Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
            None => (b".", trimmed),
        };
        let mut parent_buf = PathBuf::new();
        parent_buf.set(&[parent])?;
        let pfd = sys::open_path(dirfd, parent_buf.c_ptr(), 0);
        if pfd < 0 {
            return None;
        }
        let mut dir = PathBuf::new();
        let dir_len = sys::fd_path(pfd, &mut dir.buf[..PATH_CAP - 1]);
        let mut link = PathBuf::new();
        let mut last_c = PathBuf::new();
        let link_len = if follow && last_c.set(&[last]).is_some() {
            // SAFETY: pfd is open, last_c is NUL-terminated, link is writable.
            let n = unsafe {
                libc::readlinkat(
                    pfd,
                    last_c.c_ptr(),
                    link.buf.as_mut_ptr().cast(),
                    PATH_CAP - 1,
                )
            };
            (n > 0).then_some(n as usize)
        } else {
            None
        };
        sys::close(pfd);
        dir.len = dir_len?;
        match link_len {
            // A dangling symlink being followed (e.g. O_CREAT through it):
            // continue from its target, relative to its directory.
            Some(n) => {
                let target = &link.buf[..n];
                if target.first() == Some(&b'/') {
                    scratch.set(&[target])?;
                } else {
                    scratch.set(&[dir.as_bytes(), b"/", target])?;
                }
                dirfd = libc::AT_FDCWD;
            }
            None => {
                let sep: &[u8] = if dir.as_bytes() == b"/" { b"" } else { b"/" };
                let n = ldguard_policy::path::normalize_into(
                    b"/",
                    [dir.as_bytes(), sep, last].concat_into(&mut link.buf)?,
                    &mut out.buf[..PATH_CAP - 1],
                )?;
                out.len = n;
                return Some(());
            }
        }
    }
    None
}

fn trim_trailing_slashes(p: &[u8]) -> &[u8] {
    let mut end = p.len();
    while end > 1 && p[end - 1] == b'/' {
        end -= 1;
    }
    &p[..end]
}

/// Concatenation into a caller's buffer (no allocation).
trait ConcatInto {
    fn concat_into<'b>(&self, buf: &'b mut [u8]) -> Option<&'b [u8]>;
}

impl ConcatInto for [&[u8]; 3] {
    fn concat_into<'b>(&self, buf: &'b mut [u8]) -> Option<&'b [u8]> {
        let mut at = 0;
        for part in self {
            buf.get_mut(at..at + part.len())?.copy_from_slice(part);
            at += part.len();
        }
        Some(&buf[..at])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn tmp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("ldguard-resolve-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::canonicalize(d).unwrap()
    }

    fn res(dirfd: c_int, path: &str, follow: bool) -> Option<String> {
        let (mut s, mut o) = (PathBuf::new(), PathBuf::new());
        resolved(dirfd, path.as_bytes(), follow, &mut s, &mut o)?;
        Some(String::from_utf8(o.as_bytes().to_vec()).unwrap())
    }

    #[test]
    fn absolute_against_dirfd_and_dotdot() {
        let d = tmp("abs");
        let dir = std::fs::File::open(&d).unwrap();
        let (mut s, mut o) = (PathBuf::new(), PathBuf::new());
        absolute(dir.as_raw_fd(), b"a/../b/./c", &mut s, &mut o).unwrap();
        assert_eq!(o.as_bytes(), format!("{}/b/c", d.display()).as_bytes());
        absolute(libc::AT_FDCWD, b"/x//y/../z", &mut s, &mut o).unwrap();
        assert_eq!(o.as_bytes(), b"/x/z");
    }

    #[test]
    fn resolves_symlinks_missing_files_and_dangling_links() {
        let d = tmp("links");
        std::fs::create_dir(d.join("real")).unwrap();
        std::fs::write(d.join("real/f"), "x").unwrap();
        std::os::unix::fs::symlink(d.join("real"), d.join("l")).unwrap();
        std::os::unix::fs::symlink("real/new", d.join("dangling")).unwrap();
        let p = |s: &str| format!("{}/{s}", d.display());
        assert_eq!(res(libc::AT_FDCWD, &p("l/f"), true), Some(p("real/f")));
        assert_eq!(
            res(libc::AT_FDCWD, &p("l/missing"), true),
            Some(p("real/missing"))
        );
        assert_eq!(
            res(libc::AT_FDCWD, &p("dangling"), true),
            Some(p("real/new"))
        );
        assert_eq!(
            res(libc::AT_FDCWD, &p("dangling"), false),
            Some(p("dangling"))
        );
        // /proc/self/fd/N reaches the file behind the descriptor.
        let f = std::fs::File::open(p("real/f")).unwrap();
        assert_eq!(
            res(
                libc::AT_FDCWD,
                &format!("/proc/self/fd/{}", f.as_raw_fd()),
                true
            ),
            Some(p("real/f"))
        );
        assert_eq!(res(libc::AT_FDCWD, "/nonexistent-dir/x", true), None);
    }
}

//! Drift: whether a file about to be executed (or `dlopen`ed) is one the
//! image shipped, unchanged. The layer builder writes the image's manifest
//! (crate `ldguard-drift`) to [`ldguard_drift::MANIFEST_PATH`]; this module
//! answers [`verdict_for_fd`] / [`verdict_for_path`] against it. The exec
//! and dlopen hooks turn a [`Drift::Drifted`] into an event of kind `drift`
//! with the policy's `drift` action.
//!
//! Cost: a known, untouched file costs one `fstat` and a binary search.
//! A file whose size or mtime differs from the manifest, or whose inode
//! changed after the manifest was unpacked (its ctime, which user space
//! cannot set, is newer), is hashed; only a matching SHA-256 clears it.

use std::sync::atomic::{AtomicI64, AtomicPtr, AtomicU8, AtomicUsize, Ordering};

use ldguard_drift::{Manifest, MANIFEST_PATH};

/// The answer for one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drift {
    /// In the manifest and unchanged.
    Known,
    /// Not what the image shipped; the reason is for the event's message.
    Drifted(&'static str),
    /// The kernel will refuse to run it anyway (not a regular file, no
    /// execute bit): no drift verdict, the call fails by itself.
    NotRunnable,
    /// No usable manifest in this image: `drift` is inert (see [`inert_reason`]).
    NoManifest,
}

/// Why the manifest is not usable, by index (0: loaded).
const REASONS: [&str; 5] = [
    "",
    "the image has no drift manifest (instrumented without one, or by an older ldguard-layer)",
    "the drift manifest cannot be read",
    "the drift manifest is damaged or of an unknown version",
    "the drift manifest path is too long",
];
const UNKNOWN: u8 = u8::MAX;

/// The manifest, mapped read-only once per process image and never
/// unmapped (lookups borrow it). Published through atomics, not a lock:
/// the exec hooks may run in a signal handler or a vfork child, so loading
/// takes no lock and allocates nothing (raw system calls and `mmap`).
static STATE: AtomicU8 = AtomicU8::new(UNKNOWN);
static BYTES: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static LEN: AtomicUsize = AtomicUsize::new(0);
/// Change time of the manifest file (nanoseconds since the epoch): files
/// of the image last changed before this were unpacked with it (the
/// ldguard layer, which holds the manifest, is unpacked last).
static CTIME: AtomicI64 = AtomicI64::new(0);

/// The manifest's path: `LDGUARD_DRIFT_MANIFEST` where the configuration
/// allows environment overrides (a developer's machine, tests), else the
/// image's.
fn manifest_path(buf: &mut [u8; 4096]) -> Option<()> {
    let allowed = crate::process::active::process().is_some_and(|p| p.settings.env_allowed);
    let over = allowed
        .then(|| {
            // SAFETY: getenv reads the environment without allocating.
            unsafe { crate::os::sys::cstr(libc::getenv(c"LDGUARD_DRIFT_MANIFEST".as_ptr())) }
        })
        .flatten()
        .filter(|p| !p.is_empty());
    let path = over.unwrap_or(MANIFEST_PATH.as_bytes());
    if path.len() >= buf.len() {
        return None;
    }
    buf[..path.len()].copy_from_slice(path);
    buf[path.len()] = 0;
    Some(())
}

/// Maps the manifest; the index of the reason it cannot be used otherwise.
fn load() -> Result<(&'static [u8], i64), u8> {
    let mut path = [0u8; 4096];
    manifest_path(&mut path).ok_or(4)?;
    let fd = crate::os::sys::raw_syscall(
        libc::SYS_openat,
        [
            libc::AT_FDCWD as libc::c_long,
            path.as_ptr() as libc::c_long,
            (libc::O_RDONLY | libc::O_CLOEXEC) as libc::c_long,
            0,
            0,
            0,
        ],
    ) as libc::c_int;
    if fd < 0 {
        return Err(if crate::os::sys::errno() == libc::ENOENT {
            1
        } else {
            2
        });
    }
    let mapped = map(fd);
    crate::os::sys::close(fd);
    let (bytes, ctime) = mapped.ok_or(2)?;
    if Manifest::new(bytes).is_err() {
        return Err(3);
    }
    Ok((bytes, ctime))
}

fn map(fd: libc::c_int) -> Option<(&'static [u8], i64)> {
    // SAFETY: an all-zero `stat` is a valid value to be overwritten.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid, writable stat buffer.
    if unsafe { libc::fstat(fd, &mut st) } != 0 || st.st_size <= 0 {
        return None;
    }
    let len = st.st_size as usize;
    // SAFETY: a fresh private read-only mapping of an open file.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            fd,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return None;
    }
    // SAFETY: the mapping is `len` readable bytes and is never unmapped
    // once published (a losing racer's copy is simply kept too).
    let bytes: &'static [u8] = unsafe { std::slice::from_raw_parts(p as *const u8, len) };
    Some((bytes, ns(st.st_ctime, st.st_ctime_nsec)))
}

fn loaded() -> Result<(Manifest<'static>, i64), &'static str> {
    let mut state = STATE.load(Ordering::Acquire);
    if state == UNKNOWN {
        state = match load() {
            Ok((bytes, ctime)) => {
                BYTES.store(bytes.as_ptr() as *mut u8, Ordering::Relaxed);
                LEN.store(bytes.len(), Ordering::Relaxed);
                CTIME.store(ctime, Ordering::Relaxed);
                0
            }
            Err(reason) => reason,
        };
        // The first to finish publishes; a racer that loaded too keeps
        // using what it stored (the same file), which is harmless.
        let _ = STATE.compare_exchange(UNKNOWN, state, Ordering::Release, Ordering::Acquire);
        state = STATE.load(Ordering::Acquire);
    }
    if state != 0 {
        return Err(REASONS[state as usize]);
    }
    let len = LEN.load(Ordering::Relaxed);
    // SAFETY: published before STATE became 0 (Release/Acquire above);
    // the mapping lives for the process.
    let bytes = unsafe { std::slice::from_raw_parts(BYTES.load(Ordering::Relaxed), len) };
    let m = Manifest::new(bytes).map_err(|_| REASONS[3])?;
    Ok((m, CTIME.load(Ordering::Relaxed)))
}

/// Why `drift` has no effect in this image, if it has none.
pub fn inert_reason() -> Option<&'static str> {
    loaded().err()
}

/// What is checked: a program to run (the kernel needs an execute bit)
/// or a library to load (mapped: it needs none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Use {
    Exec,
    Load,
}

/// The verdict for the file open on `fd` (any descriptor, `O_PATH`
/// included), looked up under the kernel's own path of it.
pub fn verdict_for_fd(fd: libc::c_int, usage: Use) -> Drift {
    let (manifest, unpacked) = match loaded() {
        Ok(l) => l,
        Err(_) => return Drift::NoManifest,
    };
    let mut link = [0u8; crate::decide::resolve::PATH_CAP];
    let path = match crate::os::sys::fd_path(fd, &mut link) {
        Some(n) => &link[..n],
        // Anonymous inodes have no path ("anon_inode:…"); deleted files
        // keep theirs with " (deleted)" and are told apart by nlink below.
        None => b"",
    };
    verdict(&manifest, unpacked, fd, path, usage)
}

/// [`verdict_for_fd`] for what `(dirfd, path)` names, following symlinks as
/// exec and the loader do (an `O_PATH` descriptor: no read permission
/// needed, nothing opened for I/O). `None`: the path reaches nothing, and
/// the call fails by itself.
pub fn verdict_at(dirfd: libc::c_int, path: &[u8], usage: Use) -> Option<Drift> {
    if inert_reason().is_some() {
        return Some(Drift::NoManifest);
    }
    let mut z = crate::decide::resolve::PathBuf::new();
    z.set(&[path, b"\0"])?;
    let fd = crate::os::sys::open_path(dirfd, z.as_bytes().as_ptr().cast(), 0);
    if fd < 0 {
        return None;
    }
    let v = verdict_for_fd(fd, usage);
    crate::os::sys::close(fd);
    Some(v)
}

/// The check itself, against an explicit manifest (tests pass their own);
/// `unpacked` is the manifest's change time in nanoseconds.
pub fn verdict(
    manifest: &Manifest<'_>,
    unpacked: i64,
    fd: libc::c_int,
    path: &[u8],
    usage: Use,
) -> Drift {
    // SAFETY: an all-zero `stat` is a valid value to be overwritten.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid, writable stat buffer.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Drift::Drifted("cannot be examined");
    }
    if st.st_mode & libc::S_IFMT != libc::S_IFREG || (usage == Use::Exec && st.st_mode & 0o111 == 0)
    {
        return Drift::NotRunnable;
    }
    // Long enough for any memfd name ("/memfd:" + 249 bytes + " (deleted)").
    let mut link = [0u8; 512];
    if crate::os::sys::fd_path(fd, &mut link).is_some_and(|len| link[..len].starts_with(b"/memfd:"))
    {
        return Drift::Drifted("runs from memory (memfd)");
    }
    if st.st_nlink == 0 {
        return Drift::Drifted("has no name in the filesystem (deleted or anonymous)");
    }
    let Some(entry) = manifest.lookup(path) else {
        return Drift::Drifted("is not part of the image");
    };
    let untouched = entry.size == st.st_size as u64
        && entry.mtime == st.st_mtime
        && ns(st.st_ctime, st.st_ctime_nsec) < unpacked;
    if untouched {
        return Drift::Known;
    }
    match sha256_of_fd(fd) {
        Some(sha256) if ldguard_drift::digest_of(&sha256) == entry.digest => Drift::Known,
        Some(_) => Drift::Drifted("differs from the file the image shipped"),
        None => Drift::Drifted("cannot be read to compare it with the image"),
    }
}

/// A timestamp in nanoseconds. File systems stamp times from a coarse
/// clock (a few ms), so a change in the same tick as the unpacking is not
/// told apart from it: only strictly older files skip the digest.
fn ns(secs: i64, nsecs: i64) -> i64 {
    secs.saturating_mul(1_000_000_000).saturating_add(nsecs)
}

fn sha256_of_fd(fd: libc::c_int) -> Option<[u8; 32]> {
    let first = hash_fd(fd);
    if first.is_some() || crate::os::sys::errno() != libc::EBADF {
        return first;
    }
    // An `O_PATH` descriptor cannot be read: reopen the same inode.
    let mut link = [0u8; 32];
    crate::os::sys::proc_fd_path(fd, &mut link);
    let readable = crate::os::sys::raw_syscall(
        libc::SYS_openat,
        [
            libc::AT_FDCWD as libc::c_long,
            link.as_ptr() as libc::c_long,
            (libc::O_RDONLY | libc::O_CLOEXEC) as libc::c_long,
            0,
            0,
            0,
        ],
    ) as libc::c_int;
    if readable < 0 {
        return None;
    }
    let digest = hash_fd(readable);
    crate::os::sys::close(readable);
    digest
}

/// SHA-256 of what `fd` holds; a stack buffer (no allocation: this may
/// run in a vfork child or a signal handler).
fn hash_fd(fd: libc::c_int) -> Option<[u8; 32]> {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    let mut buf = [0u8; 16 * 1024];
    let mut offset: libc::off_t = 0;
    loop {
        // SAFETY: `buf` is writable for its length; pread does not move
        // the fd's offset, so the caller's use of the fd is undisturbed.
        let n = unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), buf.len(), offset) };
        match n {
            0 => return Some(hasher.finalize().into()),
            n if n > 0 => {
                hasher.update(&buf[..n as usize]);
                offset += n as libc::off_t;
            }
            _ if crate::os::sys::errno() == libc::EINTR => {}
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ldguard_drift::Entry;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    use std::path::Path;

    fn entry_of(path: &Path) -> Entry {
        use sha2::Digest as _;
        let meta = std::fs::metadata(path).unwrap();
        Entry {
            size: meta.len(),
            mtime: meta.mtime(),
            mode: meta.mode(),
            digest: ldguard_drift::digest_of(
                &sha2::Sha256::digest(std::fs::read(path).unwrap()).into(),
            ),
        }
    }

    fn check(manifest: &[u8], unpacked: i64, path: &Path) -> Drift {
        use std::os::unix::ffi::OsStrExt;
        let m = Manifest::new(manifest).unwrap();
        let f = std::fs::File::open(path).unwrap();
        verdict(
            &m,
            unpacked,
            f.as_raw_fd(),
            path.as_os_str().as_bytes(),
            Use::Exec,
        )
    }

    fn scene() -> (tempfile::TempDir, std::path::PathBuf, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let prog = dir.path().join("prog");
        std::fs::copy("/usr/bin/true", &prog).unwrap();
        let key = prog.to_str().unwrap().as_bytes().to_vec();
        let manifest = ldguard_drift::encode([(key.as_slice(), entry_of(&prog))]);
        (dir, prog, manifest)
    }

    #[test]
    fn an_untouched_image_file_is_known_cheaply_and_by_digest() {
        let (_d, prog, manifest) = scene();
        assert_eq!(check(&manifest, i64::MAX, &prog), Drift::Known);
        // Changed after unpacking (ctime newer): hashed, and still the same.
        assert_eq!(check(&manifest, 0, &prog), Drift::Known);
    }

    #[test]
    fn a_copy_under_another_name_is_drift() {
        let (d, _prog, manifest) = scene();
        let copy = d.path().join("x");
        std::fs::copy("/usr/bin/true", &copy).unwrap();
        assert_eq!(
            check(&manifest, i64::MAX, &copy),
            Drift::Drifted("is not part of the image")
        );
    }

    #[test]
    fn a_modified_file_with_its_size_and_mtime_restored_is_drift() {
        let (_d, prog, manifest) = scene();
        let before = std::fs::metadata(&prog).unwrap();
        let mut data = std::fs::read(&prog).unwrap();
        let last = data.len() - 1;
        data[last] ^= 0xff;
        std::fs::write(&prog, &data).unwrap();
        let f = std::fs::File::options().write(true).open(&prog).unwrap();
        f.set_modified(before.modified().unwrap()).unwrap();
        drop(f);
        let after = std::fs::metadata(&prog).unwrap();
        assert_eq!((after.len(), after.mtime()), (before.len(), before.mtime()));
        // The ctime moved past the unpacking time, so the digest decides.
        assert_eq!(
            check(&manifest, ns(after.ctime(), after.ctime_nsec()) - 1, &prog),
            Drift::Drifted("differs from the file the image shipped")
        );
    }

    #[test]
    fn memfd_and_deleted_files_are_drift_and_directories_not_runnable() {
        let (d, prog, manifest) = scene();
        let m = Manifest::new(&manifest).unwrap();
        let key = prog.to_str().unwrap().as_bytes();
        // SAFETY: a valid NUL-terminated name, no flags.
        let memfd = unsafe { libc::memfd_create(c"x".as_ptr(), 0) };
        assert!(memfd >= 0);
        assert_eq!(
            verdict(&m, i64::MAX, memfd, key, Use::Exec),
            Drift::Drifted("runs from memory (memfd)")
        );
        // SAFETY: closing the fd we created.
        unsafe { libc::close(memfd) };

        let f = std::fs::File::open(&prog).unwrap();
        std::fs::remove_file(&prog).unwrap();
        assert_eq!(
            verdict(&m, i64::MAX, f.as_raw_fd(), key, Use::Exec),
            Drift::Drifted("has no name in the filesystem (deleted or anonymous)")
        );

        let dir = std::fs::File::open(d.path()).unwrap();
        assert_eq!(
            verdict(&m, i64::MAX, dir.as_raw_fd(), key, Use::Exec),
            Drift::NotRunnable
        );
    }
}

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

use std::os::unix::fs::MetadataExt;
use std::sync::OnceLock;

use ldguard_drift::{Manifest, MANIFEST_PATH};

/// The answer for one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drift {
    /// In the manifest and unchanged.
    Known,
    /// Not what the image shipped; the reason is for the event's message.
    Drifted(&'static str),
    /// No usable manifest in this image: `drift` is inert (see [`inert_reason`]).
    NoManifest,
}

/// The image's manifest, read once (never freed: lookups borrow it).
struct Loaded {
    bytes: &'static [u8],
    /// Change time of the manifest file: files of the image last changed
    /// no later than this were unpacked with it.
    ctime: i64,
}

fn loaded() -> Result<&'static Loaded, &'static str> {
    static LOADED: OnceLock<Result<Loaded, &'static str>> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            let meta = std::fs::metadata(MANIFEST_PATH).map_err(|_| "the image has no drift manifest (instrumented without one, or by an older ldguard-layer)")?;
            let bytes = std::fs::read(MANIFEST_PATH).map_err(|_| "the drift manifest cannot be read")?;
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            Manifest::new(bytes)?;
            Ok(Loaded {
                bytes,
                ctime: meta.ctime(),
            })
        })
        .as_ref()
        .map_err(|e| *e)
}

/// Why `drift` has no effect in this image, if it has none.
pub fn inert_reason() -> Option<&'static str> {
    loaded().err()
}

/// The verdict for the file open on `fd`, whose resolved absolute path is
/// `path` (for exec: the target after symlinks; for fexecve: the fd's).
pub fn verdict_for_fd(fd: libc::c_int, path: &[u8]) -> Drift {
    match loaded() {
        Ok(l) => verdict(
            &Manifest::new(l.bytes).expect("checked when loaded"),
            l.ctime,
            fd,
            path,
        ),
        Err(_) => Drift::NoManifest,
    }
}

/// [`verdict_for_fd`] for a path (opened read-only for the check).
pub fn verdict_for_path(path: &[u8]) -> Drift {
    if inert_reason().is_some() {
        return Drift::NoManifest;
    }
    use std::os::unix::ffi::OsStrExt;
    let Ok(file) = std::fs::File::open(std::ffi::OsStr::from_bytes(path)) else {
        return Drift::Drifted("cannot be opened to check it against the image's manifest");
    };
    use std::os::fd::AsRawFd;
    verdict_for_fd(file.as_raw_fd(), path)
}

/// The check itself, against an explicit manifest (tests pass their own).
pub fn verdict(manifest: &Manifest<'_>, unpacked: i64, fd: libc::c_int, path: &[u8]) -> Drift {
    // SAFETY: an all-zero `stat` is a valid value to be overwritten.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid, writable stat buffer.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Drift::Drifted("cannot be examined");
    }
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Drift::Drifted("is not a regular file");
    }
    // Long enough for any memfd name ("/memfd:" + 249 bytes + " (deleted)").
    let mut link = [0u8; 512];
    if crate::sys::fd_path(fd, &mut link).is_some_and(|len| link[..len].starts_with(b"/memfd:")) {
        return Drift::Drifted("runs from memory (memfd)");
    }
    if st.st_nlink == 0 {
        return Drift::Drifted("has no name in the filesystem (deleted or anonymous)");
    }
    let Some(entry) = manifest.lookup(path) else {
        return Drift::Drifted("is not part of the image");
    };
    let untouched =
        entry.size == st.st_size as u64 && entry.mtime == st.st_mtime && st.st_ctime <= unpacked;
    if untouched {
        return Drift::Known;
    }
    match sha256_of_fd(fd) {
        Some(digest) if digest == entry.sha256 => Drift::Known,
        Some(_) => Drift::Drifted("differs from the file the image shipped"),
        None => Drift::Drifted("cannot be read to compare it with the image"),
    }
}

fn sha256_of_fd(fd: libc::c_int) -> Option<[u8; 32]> {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
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
            _ if crate::sys::errno() == libc::EINTR => {}
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ldguard_drift::Entry;
    use std::os::fd::AsRawFd;
    use std::path::Path;

    fn entry_of(path: &Path) -> Entry {
        use sha2::Digest as _;
        let meta = std::fs::metadata(path).unwrap();
        Entry {
            size: meta.len(),
            mtime: meta.mtime(),
            mode: meta.mode(),
            sha256: sha2::Sha256::digest(std::fs::read(path).unwrap()).into(),
        }
    }

    fn check(manifest: &[u8], unpacked: i64, path: &Path) -> Drift {
        use std::os::unix::ffi::OsStrExt;
        let m = Manifest::new(manifest).unwrap();
        let f = std::fs::File::open(path).unwrap();
        verdict(&m, unpacked, f.as_raw_fd(), path.as_os_str().as_bytes())
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
            check(&manifest, after.ctime() - 1, &prog),
            Drift::Drifted("differs from the file the image shipped")
        );
    }

    #[test]
    fn memfd_deleted_and_non_regular_files_are_drift() {
        let (d, prog, manifest) = scene();
        let m = Manifest::new(&manifest).unwrap();
        let key = prog.to_str().unwrap().as_bytes();
        // SAFETY: a valid NUL-terminated name, no flags.
        let memfd = unsafe { libc::memfd_create(c"x".as_ptr(), 0) };
        assert!(memfd >= 0);
        assert_eq!(
            verdict(&m, i64::MAX, memfd, key),
            Drift::Drifted("runs from memory (memfd)")
        );
        // SAFETY: closing the fd we created.
        unsafe { libc::close(memfd) };

        let f = std::fs::File::open(&prog).unwrap();
        std::fs::remove_file(&prog).unwrap();
        assert_eq!(
            verdict(&m, i64::MAX, f.as_raw_fd(), key),
            Drift::Drifted("has no name in the filesystem (deleted or anonymous)")
        );

        let dir = std::fs::File::open(d.path()).unwrap();
        assert_eq!(
            verdict(&m, i64::MAX, dir.as_raw_fd(), key),
            Drift::Drifted("is not a regular file")
        );
    }
}

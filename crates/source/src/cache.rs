//! The shared per-container cache: one directory, one envelope file, one lock.
//!
//! The envelope (`cache.json`) holds the policy text and its metadata together,
//! so a reader can never pair one version's text with another's ETag. It is
//! replaced by temp file + fsync + rename; only the holder of `fetch.lock`
//! writes it. Readers take no lock.

use crate::error::CacheError;
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

pub const DEFAULT_CACHE_DIR: &str = "/run/ldguard";
const ENVELOPE: &str = "cache.json";
const LOCK: &str = "fetch.lock";
const ENVELOPE_VERSION: u32 = 1;
/// Generous bound on the envelope: policies are a few KiB, the fetch limit is enforced upstream.
const MAX_ENVELOPE_BYTES: u64 = 64 << 20;

pub(crate) fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// What the cache knows about the last contact with the server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CacheMeta {
    /// The source URL this entry belongs to; another URL's entry is ignored.
    pub source: String,
    /// ETag of `policy`, as sent by the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// Hex SHA-256 of `policy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Last time (ms since the epoch) the server confirmed `policy` (200 or 304).
    #[serde(default)]
    pub fetched_at_ms: u64,
    /// Attempts since the last success, counted when an attempt starts, so
    /// that a fetcher that dies mid-way still holds the others off.
    #[serde(default)]
    pub failures: u32,
    /// No attempt before this time (ms since the epoch).
    #[serde(default)]
    pub retry_at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The last answer that failed validation, so it is reported once only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected: Option<Rejected>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rejected {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    pub sha256: String,
    pub at_ms: u64,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Envelope {
    pub version: u32,
    pub meta: CacheMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

impl Envelope {
    pub(crate) fn empty(source: &str) -> Envelope {
        Envelope {
            version: ENVELOPE_VERSION,
            meta: CacheMeta {
                source: source.to_string(),
                ..CacheMeta::default()
            },
            policy: None,
        }
    }
}

/// A validated cache directory.
#[derive(Debug, Clone)]
pub struct CacheDir {
    dir: PathBuf,
}

/// Held while fetching; dropping it releases the `flock`.
pub(crate) struct FetchLock {
    _file: File,
}

impl CacheDir {
    /// Creates `dir` (mode 0700) or checks that the existing one is a real
    /// directory owned by our effective uid that nobody else can write to.
    /// A directory someone else controls could feed us a policy, so it is refused.
    pub fn open(dir: &Path) -> Result<CacheDir, CacheError> {
        match fs::symlink_metadata(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(|err| CacheError::Io {
                        path: dir.to_path_buf(),
                        op: "create directory",
                        err,
                    })?;
            }
            Err(err) => {
                return Err(CacheError::Io {
                    path: dir.to_path_buf(),
                    op: "stat",
                    err,
                })
            }
            Ok(_) => {}
        }
        let meta = fs::symlink_metadata(dir).map_err(|err| CacheError::Io {
            path: dir.to_path_buf(),
            op: "stat",
            err,
        })?;
        let unsafe_dir = |reason: String| CacheError::UnsafeDir {
            path: dir.to_path_buf(),
            reason,
        };
        if meta.file_type().is_symlink() {
            return Err(unsafe_dir("it is a symbolic link".into()));
        }
        if !meta.is_dir() {
            return Err(unsafe_dir("it is not a directory".into()));
        }
        if meta.uid() != euid() {
            return Err(unsafe_dir(format!("owned by uid {}", meta.uid())));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(unsafe_dir(format!(
                "mode {:o} lets others write",
                meta.mode() & 0o7777
            )));
        }
        Ok(CacheDir {
            dir: dir.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn envelope_path(&self) -> PathBuf {
        self.dir.join(ENVELOPE)
    }

    /// The envelope, or `None` when there is none yet.
    pub(crate) fn read(&self) -> Result<Option<Envelope>, CacheError> {
        let path = self.envelope_path();
        let file = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => {
                // ELOOP: a symlink was planted where the envelope belongs.
                return Err(CacheError::Corrupt {
                    path,
                    reason: format!("cannot open it: {err}"),
                });
            }
        };
        let corrupt = |reason: String| CacheError::Corrupt {
            path: path.clone(),
            reason,
        };
        let meta = file
            .metadata()
            .map_err(|e| corrupt(format!("fstat: {e}")))?;
        if !meta.is_file() || meta.uid() != euid() || meta.mode() & 0o022 != 0 {
            return Err(corrupt(format!(
                "not a private regular file of uid {} (uid {}, mode {:o})",
                euid(),
                meta.uid(),
                meta.mode() & 0o7777
            )));
        }
        let mut text = Vec::new();
        file.take(MAX_ENVELOPE_BYTES)
            .read_to_end(&mut text)
            .map_err(|e| corrupt(format!("read: {e}")))?;
        let envelope: Envelope = serde_json::from_slice(&text)
            .map_err(|e| corrupt(format!("not a cache envelope: {e}")))?;
        if envelope.version != ENVELOPE_VERSION {
            return Err(corrupt(format!(
                "envelope version {} unknown",
                envelope.version
            )));
        }
        if let (Some(policy), Some(sha)) = (&envelope.policy, &envelope.meta.sha256) {
            if &sha256_hex(policy.as_bytes()) != sha {
                return Err(corrupt("policy does not match its checksum".into()));
            }
        }
        Ok(Some(envelope))
    }

    /// Replaces the envelope atomically. Call only while holding the [`FetchLock`].
    pub(crate) fn write(&self, envelope: &Envelope) -> Result<(), CacheError> {
        let bytes = serde_json::to_vec(envelope).map_err(|e| CacheError::Corrupt {
            path: self.envelope_path(),
            reason: format!("cannot serialise: {e}"),
        })?;
        let tmp = self
            .dir
            .join(format!(".{ENVELOPE}.{}.tmp", std::process::id()));
        let io = |op: &'static str, err| CacheError::Io {
            path: tmp.clone(),
            op,
            err,
        };
        // A leftover from a process that died mid-write under the same pid.
        let _ = fs::remove_file(&tmp);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
            .map_err(|e| io("create temp file", e))?;
        let written = file.write_all(&bytes).and_then(|_| file.sync_all());
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(io("write temp file", e));
        }
        if let Err(e) = fs::rename(&tmp, self.envelope_path()) {
            let _ = fs::remove_file(&tmp);
            return Err(io("rename", e));
        }
        // Make the rename itself durable; best effort, tmpfs ignores it anyway.
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Takes the fetch lock without waiting; `None` when another process holds it.
    pub(crate) fn try_lock(&self) -> Result<Option<FetchLock>, CacheError> {
        let path = self.dir.join(LOCK);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|err| CacheError::Io {
                path: path.clone(),
                op: "open lock file",
                err,
            })?;
        // SAFETY: the fd is valid for the lifetime of `file`; flock does not touch memory.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(Some(FetchLock { _file: file }));
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            Ok(None)
        } else {
            Err(CacheError::Io {
                path,
                op: "flock",
                err,
            })
        }
    }
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        use std::fmt::Write as _;
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn creates_private_directory() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b");
        let cache = CacheDir::open(&dir).unwrap();
        assert_eq!(fs::metadata(cache.path()).unwrap().mode() & 0o777, 0o700);
    }

    #[test]
    fn refuses_writable_or_linked_directories() {
        let root = tempfile::tempdir().unwrap();
        let open = root.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        let err = CacheDir::open(&open).unwrap_err();
        assert!(matches!(err, CacheError::UnsafeDir { .. }), "{err}");
        assert!(
            err.to_string().contains("mode 777 lets others write"),
            "{err}"
        );

        let link = root.path().join("link");
        std::os::unix::fs::symlink(root.path(), &link).unwrap();
        let err = CacheDir::open(&link).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
    }

    #[test]
    fn refuses_foreign_owner() {
        if euid() != 0 {
            return; // only root can create a directory owned by someone else
        }
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("theirs");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::chown(&dir, Some(4242), None).unwrap();
        let err = CacheDir::open(&dir).unwrap_err().to_string();
        assert!(err.contains("owned by uid 4242"), "{err}");
    }

    #[test]
    fn round_trips_and_detects_tampering() {
        let root = tempfile::tempdir().unwrap();
        let cache = CacheDir::open(root.path()).unwrap();
        assert!(cache.read().unwrap().is_none());
        let mut env = Envelope::empty("https://x/p");
        env.policy = Some("{\"a\":1}".into());
        env.meta.sha256 = Some(sha256_hex(b"{\"a\":1}"));
        env.meta.etag = Some("\"e1\"".into());
        cache.write(&env).unwrap();
        assert_eq!(cache.read().unwrap().unwrap(), env);
        let file = cache.path().join(ENVELOPE);
        assert_eq!(fs::metadata(&file).unwrap().mode() & 0o777, 0o600);

        let text = fs::read_to_string(&file)
            .unwrap()
            .replace("{\\\"a\\\":1}", "{\\\"a\\\":2}");
        fs::write(&file, text).unwrap();
        let err = cache.read().unwrap_err().to_string();
        assert!(err.contains("does not match its checksum"), "{err}");

        fs::set_permissions(&file, fs::Permissions::from_mode(0o666)).unwrap();
        let err = cache.read().unwrap_err().to_string();
        assert!(err.contains("not a private regular file"), "{err}");
    }

    #[test]
    fn lock_is_exclusive_across_descriptors() {
        let root = tempfile::tempdir().unwrap();
        let cache = CacheDir::open(root.path()).unwrap();
        let held = cache.try_lock().unwrap();
        assert!(held.is_some());
        assert!(cache.try_lock().unwrap().is_none());
        drop(held);
        assert!(cache.try_lock().unwrap().is_some());
    }
}

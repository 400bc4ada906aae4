//! Where serialised events go. A sink is driven by one writer thread, so it
//! needs `Send` but no internal locking.

use crate::Event;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// A destination for batches of events.
pub trait Sink: Send {
    /// Ships `events` in order. A failed batch may be retried by the caller
    /// or counted as lost; sinks must not block for long.
    fn write_batch(&mut self, events: &[Event]) -> io::Result<()>;

    /// Pushes out anything buffered (called at exit and before exec).
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Discards everything (`none`).
pub struct NullSink;

impl Sink for NullSink {
    fn write_batch(&mut self, _: &[Event]) -> io::Result<()> {
        Ok(())
    }
}

/// Appends JSON lines to a file shared by every process of a container.
///
/// The file is opened `O_APPEND` and each batch goes out in one `write`, so
/// lines of concurrent processes never interleave mid-line. Past
/// [`Rotation::max_bytes`] the file is rotated as logrotate would name it
/// (`events.jsonl` → `events.jsonl.1` → ... → `.keep`, the oldest dropped).
pub struct FileSink {
    file: File,
    path: PathBuf,
    rotation: Rotation,
    /// Device and inode of `file`: when `path` names another file, a process
    /// sharing it rotated, and this sink follows to the new one.
    identity: (u64, u64),
    buf: Vec<u8>,
}

/// When a [`FileSink`] rotates its file, and how many old files it keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rotation {
    pub max_bytes: u64,
    /// Rotated files kept (`.1` is the newest); at least 1.
    pub keep: u32,
}

impl Default for Rotation {
    /// 64 MiB and 3 old files: a container's disk cannot fill with events.
    fn default() -> Self {
        Rotation {
            max_bytes: 64 << 20,
            keep: 3,
        }
    }
}

impl FileSink {
    /// Opens `path` with the default [`Rotation`].
    pub fn open(path: &Path) -> io::Result<FileSink> {
        FileSink::open_with(path, Rotation::default())
    }

    pub fn open_with(path: &Path, rotation: Rotation) -> io::Result<FileSink> {
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o640)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| io::Error::new(e.kind(), format!("event file {}: {e}", path.display())))?;
        let file = out_of_the_way(file);
        let meta = file.metadata()?;
        Ok(FileSink {
            file,
            path: path.to_owned(),
            rotation,
            identity: (meta.dev(), meta.ino()),
            buf: Vec::new(),
        })
    }

    fn reopen(&mut self) -> io::Result<()> {
        *self = FileSink::open_with(&self.path.clone(), self.rotation)?;
        Ok(())
    }

    /// Whether `path` still names the file this sink writes to.
    fn path_is_ours(&self) -> bool {
        std::fs::metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.identity)
    }

    fn rotated_name(&self, n: u32) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    /// Shifts the rotated files up and moves the full file to `.1`, under
    /// an exclusive lock on it: of the processes that see it full, the first
    /// rotates and the others find `path` already replaced.
    fn rotate(&mut self) -> io::Result<()> {
        // SAFETY: flock on a descriptor this sink owns; released when the
        // old descriptor is closed by `reopen`.
        if unsafe { libc::flock(self.file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(io::Error::last_os_error());
        }
        if self.path_is_ours() {
            let keep = self.rotation.keep.max(1);
            for n in (1..keep).rev() {
                match std::fs::rename(self.rotated_name(n), self.rotated_name(n + 1)) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            std::fs::rename(&self.path, self.rotated_name(1))?;
        }
        self.reopen()
    }

    fn write_lines(&mut self, events: &[Event]) -> io::Result<()> {
        self.buf.clear();
        for event in events {
            self.buf.extend_from_slice(&event.to_line());
        }
        self.file.write_all(&self.buf)
    }
}

/// Moves a descriptor the library keeps open to a high number. A program
/// may have closed fd 0 (or 1, 2) and rely on it staying closed, or on its
/// next `open` getting it; and it may `dup2` onto low numbers it thinks free.
pub(crate) fn out_of_the_way(file: File) -> File {
    // SAFETY: F_DUPFD_CLOEXEC on an open descriptor we own.
    let high = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_DUPFD_CLOEXEC, HIGH_FD) };
    if high < 0 {
        return file;
    }
    // SAFETY: `high` is a fresh descriptor that nothing else owns; `file`
    // (the low one) is closed when dropped here.
    unsafe { File::from_raw_fd(high) }
}

/// Where the library's long-lived descriptors go: above what programs use
/// by hand, below the usual 1024 soft limit.
const HIGH_FD: i32 = 700;

impl Sink for FileSink {
    fn write_batch(&mut self, events: &[Event]) -> io::Result<()> {
        if !self.path_is_ours() {
            // Rotated (or removed) by another process or by logrotate. When
            // the path cannot be opened any more (its directory renamed, or
            // out of reach after the process's `chroot`), the file this
            // sink has is where the events go: never nowhere.
            let _ = self.reopen();
        }
        match self.write_lines(events) {
            // The program closed our descriptor (closefrom, close_range):
            // reopen once and retry.
            Err(e) if e.raw_os_error() == Some(libc::EBADF) => {
                self.reopen()?;
                self.write_lines(events)?;
            }
            other => other?,
        }
        if self.file.metadata()?.len() >= self.rotation.max_bytes {
            self.rotate()?;
        }
        Ok(())
    }
}

/// Writes JSON lines to the process's standard error, unbuffered and
/// without Rust's stderr lock (the program owns its stderr; we only append
/// whole lines).
///
/// The descriptor is duplicated when the sink is created: programs such as
/// coreutils close fd 2 in an `atexit` handler that runs before the final
/// event flush, and the duplicate keeps the stream reachable until then.
pub struct StderrSink {
    fd: i32,
    buf: Vec<u8>,
}

impl StderrSink {
    pub fn new() -> StderrSink {
        // SAFETY: F_DUPFD_CLOEXEC on fd 2 has no memory-safety preconditions.
        let dup = unsafe { libc::fcntl(2, libc::F_DUPFD_CLOEXEC, HIGH_FD) };
        StderrSink {
            fd: if dup >= 0 { dup } else { 2 },
            buf: Vec::new(),
        }
    }
}

impl Default for StderrSink {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for StderrSink {
    fn drop(&mut self) {
        if self.fd != 2 {
            // SAFETY: closing the duplicate this sink owns.
            unsafe { libc::close(self.fd) };
        }
    }
}

impl Sink for StderrSink {
    fn write_batch(&mut self, events: &[Event]) -> io::Result<()> {
        self.buf.clear();
        for event in events {
            self.buf.extend_from_slice(&event.to_line());
        }
        write_all_fd(self.fd, &self.buf)
    }
}

/// `write(2)` until done, retrying on EINTR.
pub(crate) fn write_all_fd(fd: i32, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        // SAFETY: `data` is a valid, initialised slice for the whole call.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        data = &data[n as usize..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: u32) -> Event {
        Event {
            pid: n,
            call: "open".into(),
            message: format!("m{n}"),
            ..Event::default()
        }
    }

    #[test]
    fn file_sink_appends_one_line_per_event() {
        let dir = std::env::temp_dir().join(format!("ldguard-events-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("e.jsonl");
        let _ = std::fs::remove_file(&path);
        let mut a = FileSink::open(&path).unwrap();
        let mut b = FileSink::open(&path).unwrap();
        a.write_batch(&[event(1), event(2)]).unwrap();
        b.write_batch(&[event(3)]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let pids: Vec<u32> = text
            .lines()
            .map(|l| serde_json::from_str::<Event>(l).unwrap().pid)
            .collect();
        assert_eq!(pids, [1, 2, 3]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn file_sink_keeps_its_file_when_the_path_cannot_be_opened_again() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let mut sink = FileSink::open(&dir.path().join("sub/e.jsonl")).unwrap();
        sink.write_batch(&[event(1)]).unwrap();
        // As a `chroot` would: the path names nothing the process can open.
        std::fs::rename(dir.path().join("sub"), dir.path().join("moved")).unwrap();
        sink.write_batch(&[event(2)]).unwrap();
        let text = std::fs::read_to_string(dir.path().join("moved/e.jsonl")).unwrap();
        let pids: Vec<u32> = text
            .lines()
            .map(|l| serde_json::from_str::<Event>(l).unwrap().pid)
            .collect();
        assert_eq!(pids, [1, 2]);
    }

    #[test]
    fn file_sink_rotates_by_size_and_loses_no_line_across_processes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.jsonl");
        let rotation = Rotation {
            max_bytes: 1000,
            keep: 50,
        };
        // Two sinks on one file, as two processes of a container.
        let mut a = FileSink::open_with(&path, rotation).unwrap();
        let mut b = FileSink::open_with(&path, rotation).unwrap();
        for n in 0..200 {
            let sink = if n % 3 == 0 { &mut b } else { &mut a };
            sink.write_batch(&[event(n)]).unwrap();
        }
        let mut pids = Vec::new();
        let mut files = 0;
        for p in std::iter::once(path.clone()).chain((1..=50).map(|n| a.rotated_name(n))) {
            let Ok(text) = std::fs::read_to_string(&p) else {
                continue;
            };
            files += 1;
            let len = text.len() as u64;
            assert!(
                len < rotation.max_bytes + 200,
                "{} has {len} bytes",
                p.display()
            );
            pids.extend(
                text.lines()
                    .map(|l| serde_json::from_str::<Event>(l).unwrap().pid),
            );
        }
        assert!(files > 5, "only {files} files: no rotation happened");
        pids.sort_unstable();
        assert_eq!(pids, (0..200).collect::<Vec<_>>(), "every line once");
    }

    #[test]
    fn file_sink_keeps_only_the_newest_rotated_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.jsonl");
        let rotation = Rotation {
            max_bytes: 300,
            keep: 2,
        };
        let mut sink = FileSink::open_with(&path, rotation).unwrap();
        for n in 0..100 {
            sink.write_batch(&[event(n)]).unwrap();
        }
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        let mut names = names;
        names.sort();
        assert_eq!(names, ["e.jsonl", "e.jsonl.1", "e.jsonl.2"]);
        let newest_rotated = std::fs::read_to_string(sink.rotated_name(1)).unwrap();
        let last = newest_rotated.lines().last().unwrap();
        assert_eq!(
            serde_json::from_str::<Event>(last).unwrap().pid,
            99 - {
                let current = std::fs::read_to_string(&path).unwrap();
                current.lines().count() as u32
            }
        );
    }

    #[test]
    fn file_sink_error_names_the_file() {
        let Err(err) = FileSink::open(Path::new("/nonexistent-dir/e.jsonl")) else {
            panic!("opening under a missing directory must fail");
        };
        assert!(
            err.to_string().contains("/nonexistent-dir/e.jsonl"),
            "{err}"
        );
    }
}

//! Where serialised events go. A sink is driven by one writer thread, so it
//! needs `Send` but no internal locking.

use crate::Event;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

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
/// lines of concurrent processes never interleave mid-line.
pub struct FileSink {
    file: File,
    path: std::path::PathBuf,
    buf: Vec<u8>,
}

impl FileSink {
    pub fn open(path: &Path) -> io::Result<FileSink> {
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o640)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| io::Error::new(e.kind(), format!("event file {}: {e}", path.display())))?;
        Ok(FileSink {
            file: out_of_the_way(file),
            path: path.to_owned(),
            buf: Vec::new(),
        })
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
        self.buf.clear();
        for event in events {
            self.buf.extend_from_slice(&event.to_line());
        }
        match self.file.write_all(&self.buf) {
            // The program closed our descriptor (closefrom, close_range):
            // reopen once and retry.
            Err(e) if e.raw_os_error() == Some(libc::EBADF) => {
                *self = FileSink::open(&self.path.clone())?;
                self.buf.clear();
                for event in events {
                    self.buf.extend_from_slice(&event.to_line());
                }
                self.file.write_all(&self.buf)
            }
            other => other,
        }
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

//! Events written by the thread that made them, for the `file:` and
//! `stderr` sinks: the record is formatted as its JSON line
//! ([`Record::write_line`]) into bounded memory and handed to the kernel
//! with one `write(2)` (on an `O_APPEND` descriptor for a file, so lines of
//! concurrent writers, threads or processes, never interleave). No thread,
//! no queue, no allocation, no lock: raw system calls only, so this is
//! safe in a signal handler, in a forked child and in a `vfork` child.
//!
//! The event file is opened by its path for every line and closed after
//! it. The library keeps no descriptor of its own, so a program that closes
//! every descriptor (`closefrom`, `close_range`, a `for fd in 3..max`
//! loop), `dup2`s onto any number or reuses one can neither lose the events
//! nor receive them in a file of its own; a `vfork` child (its own
//! descriptor table, its parent's memory) needs nothing special; and a line
//! always goes to the file the path names now, so rotation by another
//! process or by logrotate is followed without a check. The price is an
//! `openat` and a `close` per event (see BENCHMARKS.md section 19).
//!
//! `stderr` is the process's descriptor 2 at the time of the event.

use crate::events::record::{Context, Record};
use crate::os::mapped::{Lazy, Zeroed};
use crate::os::sys::syscall6;
use ldguard_events::line::Line;
use ldguard_events::SinkSpec;
use std::cell::UnsafeCell;
use std::ffi::{c_int, c_long};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};

/// Bytes of one line's buffer: a record with every inline buffer full of
/// bytes that need escaping can need more (then a mapping of the exact size
/// is made for it); an ordinary line is a few hundred bytes.
const LINE: usize = 16 * 1024;
/// The event file's path and one rotated name (`path.N`), NUL-terminated.
const NAME: usize = libc::PATH_MAX as usize + 16;
/// Buffers that threads (and signal handlers) format in at the same time;
/// a writer that finds them all taken maps one of its own.
const SLOTS: usize = 4;

/// When the event file is rotated, and how many old files are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rotation {
    pub max_bytes: u64,
    /// Rotated files kept (`.1` is the newest); at least 1.
    pub keep: u32,
}

/// 64 MiB and 3 old files: a container's disk cannot fill with events.
pub const ROTATION: Rotation = Rotation {
    max_bytes: 64 << 20,
    keep: 3,
};

#[repr(C)]
struct Scratch {
    line: [u8; LINE],
    name: [u8; NAME],
    other: [u8; NAME],
}

struct Pool {
    scratch: [UnsafeCell<Scratch>; SLOTS],
}

// SAFETY: a slot's scratch is used only by the thread that moved its
// `taken` flag from false to true, until it stores false again.
unsafe impl Sync for Pool {}

// SAFETY: byte arrays only.
unsafe impl Zeroed for Pool {}

/// What the fork child handlers read and write in every forked child
/// (`emit`'s, `refresh`'s and this module's), kept in one aligned block:
/// each page a child touches is a fault (a copy-on-write one, several
/// microseconds, when it writes), and as separate statics they lay on
/// several pages. Here because this is the lowest of the three modules.
#[repr(C, align(64))]
pub struct ChildWrites {
    /// The process that owns `emit`'s pipeline (updated in a forked child);
    /// another pid here means a vfork child running on its parent's memory.
    pub owner: AtomicI32,
    /// `refresh`'s countdown armed in a forked child; 0 when nothing is to
    /// be started.
    pub restart: AtomicU32,
    /// The process the countdown belongs to (a vfork child shares our memory).
    pub restart_pid: AtomicI32,
    /// Which of [`POOL`]'s slots are in use.
    taken: [AtomicBool; SLOTS],
}

pub static CHILD_WRITES: ChildWrites = ChildWrites {
    owner: AtomicI32::new(0),
    restart: AtomicU32::new(0),
    restart_pid: AtomicI32::new(0),
    taken: [const { AtomicBool::new(false) }; SLOTS],
};

/// Mapped by the first event written (98 KiB that most processes never
/// use); without it each writer maps a buffer of its own.
static POOL: Lazy<Pool> = Lazy::new();

/// A forked child has none of the threads that held slots at the fork.
/// Each flag is written only when set: a page a child writes is a fault.
pub fn after_fork_in_child() {
    for taken in &CHILD_WRITES.taken {
        if taken.load(Ordering::Relaxed) {
            taken.store(false, Ordering::Relaxed);
        }
    }
}

/// Writes `record` to the sink now: a file's line to the file (to stderr
/// when the file cannot be opened), anything else to stderr.
pub fn write(record: &Record, spec: &SinkSpec) {
    let context = Context::current();
    with_scratch(|scratch| {
        let mut line = Line::new(&mut scratch.line);
        record.write_line(&context, &mut line);
        if let Some(bytes) = line.finish() {
            deliver(bytes, spec, &mut scratch.name, &mut scratch.other);
            return;
        }
        let needed = line.needed();
        with_mapping(needed, |buf| {
            let mut line = Line::new(buf);
            record.write_line(&context, &mut line);
            if let Some(bytes) = line.finish() {
                deliver(bytes, spec, &mut scratch.name, &mut scratch.other);
            }
        });
    });
}

fn deliver(line: &[u8], spec: &SinkSpec, name: &mut [u8; NAME], other: &mut [u8; NAME]) {
    if let SinkSpec::File(path) = spec {
        match append(path, line, ROTATION, name, other) {
            Ok(()) => return,
            Err(errno) => file_unusable(path, errno, other),
        }
    }
    write_stderr(line);
}

/// One line to descriptor 2 (`EINTR` retried; a pipe that takes part of a
/// long line gets the rest in a second write).
pub fn write_stderr(line: &[u8]) {
    let _ = write_all(2, line);
}

/// Says once per process, on stderr, that the event file could not be
/// opened and that events go to stderr instead.
#[cold]
fn file_unusable(path: &Path, errno: c_int, scratch: &mut [u8; NAME]) {
    static SAID: AtomicI32 = AtomicI32::new(0);
    let pid = crate::os::sys::getpid();
    if SAID.swap(pid, Ordering::Relaxed) == pid {
        return;
    }
    let mut note = Record::new(crate::events::record::What::Status);
    note.target.push(b"event file ");
    note.target.push(path.as_os_str().as_bytes());
    note.target.push(b" cannot be opened (");
    note.target.push(errno_name(errno).as_bytes());
    note.target.push(b"); writing events to stderr instead");
    let context = Context::current();
    // In the caller's scratch (free again: the file was not opened), not
    // on the stack, which may be a signal handler's small one.
    let mut line = Line::new(scratch);
    note.write_line(&context, &mut line);
    if let Some(bytes) = line.finish() {
        write_stderr(bytes);
        return;
    }
    with_mapping(line.needed(), |buf| {
        let mut line = Line::new(buf);
        note.write_line(&context, &mut line);
        if let Some(bytes) = line.finish() {
            write_stderr(bytes);
        }
    });
}

fn errno_name(errno: c_int) -> &'static str {
    match errno {
        libc::EACCES => "permission denied",
        libc::ENOENT => "no such file or directory",
        libc::EROFS => "read-only file system",
        libc::ENOSPC => "no space left on device",
        libc::EISDIR => "is a directory",
        libc::ENOTDIR => "a component of the path is not a directory",
        libc::EMFILE | libc::ENFILE => "too many open files",
        libc::ENAMETOOLONG => "path too long",
        _ => "error",
    }
}

/// Runs `body` with a scratch slot: one of the pool's, or a private
/// mapping when all are taken (a mapping is a system call and a few page
/// faults, but never a wait: the holder may be the very code this signal
/// handler interrupted).
fn with_scratch(body: impl FnOnce(&mut Scratch)) {
    with_scratch_from(POOL.get(), body)
}

/// [`with_scratch`] with `pool`'s buffers, or a mapping of its own when
/// there is no pool or all its buffers are taken.
fn with_scratch_from(pool: Option<&Pool>, body: impl FnOnce(&mut Scratch)) {
    if let Some(pool) = pool {
        for (i, taken) in CHILD_WRITES.taken.iter().enumerate() {
            if !taken.load(Ordering::Relaxed)
                && taken
                    .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                // SAFETY: the false -> true exchange gave this thread slot i
                // until the Release store below.
                body(unsafe { &mut *pool.scratch[i].get() });
                taken.store(false, Ordering::Release);
                return;
            }
        }
    }
    with_mapping(std::mem::size_of::<Scratch>(), |bytes| {
        // SAFETY: the mapping is at least a Scratch long, page-aligned,
        // zeroed (a valid Scratch: arrays of bytes), and ours alone.
        body(unsafe { &mut *(bytes.as_mut_ptr() as *mut Scratch) })
    });
}

/// Runs `body` with `len` bytes of fresh anonymous memory; does nothing
/// when none can be mapped.
fn with_mapping(len: usize, body: impl FnOnce(&mut [u8])) {
    let Some(addr) = crate::os::sys::map_anonymous(len) else {
        return;
    };
    // SAFETY: the kernel mapped `len` readable, writable bytes at `addr`,
    // which nothing else refers to until the unmap below.
    body(unsafe { std::slice::from_raw_parts_mut(addr, len) });
    crate::os::sys::unmap(addr, len);
}

/// Appends `line` to the file at `path` (created `0640`), opened for this
/// line only, and rotates the file once it has reached
/// `rotation.max_bytes`. `name` and `other` are scratch for the
/// NUL-terminated names. The kernel's errno when the file cannot be opened.
pub fn append(
    path: &Path,
    line: &[u8],
    rotation: Rotation,
    name: &mut [u8; NAME],
    other: &mut [u8; NAME],
) -> Result<(), c_int> {
    let path = path.as_os_str().as_bytes();
    if !c_name(name, path, None) {
        return Err(libc::ENAMETOOLONG);
    }
    let fd = syscall6(
        libc::SYS_openat,
        [
            libc::AT_FDCWD as c_long,
            name.as_ptr() as c_long,
            (libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT | libc::O_CLOEXEC | libc::O_NOCTTY)
                as c_long,
            0o640,
            0,
            0,
        ],
    );
    if fd < 0 {
        return Err(-fd as c_int);
    }
    let fd = fd as c_int;
    let _ = write_all(fd, line);
    if size_check_due(&UNCHECKED, line.len(), rotation)
        && fstat(fd).is_ok_and(|st| st.st_size as u64 >= rotation.max_bytes)
    {
        rotate(fd, path, rotation, name, other);
    }
    crate::os::sys::close(fd);
    Ok(())
}

/// Bytes this process has appended since it last asked the file's size.
static UNCHECKED: AtomicU64 = AtomicU64::new(u64::MAX / 2);

/// Whether this line's writer asks the file's size (an `fstat`, a fourth
/// of a line's system calls): on a process's first line, then once it has
/// written 1/1024 of the rotation size (64 KiB of 64 MiB) since it last
/// asked. The file can then pass its size by that much per process
/// writing to it at the time, which rotation does not need to be exact
/// about.
fn size_check_due(unchecked: &AtomicU64, len: usize, rotation: Rotation) -> bool {
    let bytes = unchecked.fetch_add(len as u64, Ordering::Relaxed) + len as u64;
    if bytes < rotation.max_bytes / 1024 {
        return false;
    }
    unchecked.store(0, Ordering::Relaxed);
    true
}

/// Shifts the rotated files up and moves the full file to `.1`, under an
/// exclusive lock on it: of the processes that see it full, the first
/// rotates and the others find that the path names another file.
///
/// The lock is waited for only a bounded while (another writer's rotation
/// takes a few renames): a lock belongs to the open file, which a child
/// forked during a rotation shares, so a rotator that dies holding it
/// (threads end anywhere at exit) leaves it held for as long as the child
/// lives, and a signal handler that rotates while its own thread holds it
/// would wait for itself. Then this line's writer leaves the rotation to a
/// later line.
fn rotate(
    fd: c_int,
    path: &[u8],
    rotation: Rotation,
    name: &mut [u8; NAME],
    other: &mut [u8; NAME],
) {
    let flock = |how: c_int| syscall6(libc::SYS_flock, [fd as c_long, how as c_long, 0, 0, 0, 0]);
    let mut tries = 0;
    while flock(libc::LOCK_EX | libc::LOCK_NB) != 0 {
        tries += 1;
        if tries == ROTATION_LOCK_TRIES {
            return;
        }
        syscall6(libc::SYS_sched_yield, [0; 6]);
    }
    rotate_locked(fd, path, rotation, name, other);
    // Explicitly: a child forked meanwhile shares the open file (and so the
    // lock) until it closes its copy of the descriptor.
    flock(libc::LOCK_UN);
}

/// Tries for the rotation lock, a yield apart (a millisecond or so).
const ROTATION_LOCK_TRIES: u32 = 1000;

fn rotate_locked(
    fd: c_int,
    path: &[u8],
    rotation: Rotation,
    name: &mut [u8; NAME],
    other: &mut [u8; NAME],
) {
    let (Ok(ours), Ok(named)) = (
        fstat(fd),
        crate::os::sys::fstatat(libc::AT_FDCWD, name.as_ptr().cast(), 0),
    ) else {
        return;
    };
    if (ours.st_dev, ours.st_ino) != (named.st_dev, named.st_ino) {
        return;
    }
    let keep = rotation.keep.max(1);
    for n in (1..keep).rev() {
        if c_name(name, path, Some(n)) && c_name(other, path, Some(n + 1)) {
            rename(name, other);
        }
    }
    if c_name(name, path, None) && c_name(other, path, Some(1)) {
        rename(name, other);
    }
}

fn rename(from: &[u8; NAME], to: &[u8; NAME]) {
    syscall6(
        libc::SYS_renameat,
        [
            libc::AT_FDCWD as c_long,
            from.as_ptr() as c_long,
            libc::AT_FDCWD as c_long,
            to.as_ptr() as c_long,
            0,
            0,
        ],
    );
}

/// `path` (and `.n`) with a NUL into `out`; false when it does not fit.
fn c_name(out: &mut [u8; NAME], path: &[u8], n: Option<u32>) -> bool {
    let mut suffix = [0u8; 12];
    let mut len = 0;
    if let Some(mut n) = n {
        let mut digits = [0u8; 10];
        let mut d = digits.len();
        loop {
            d -= 1;
            digits[d] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        suffix[0] = b'.';
        len = 1 + digits.len() - d;
        suffix[1..len].copy_from_slice(&digits[d..]);
    }
    let total = path.len() + len;
    if total >= NAME || path.contains(&0) {
        return false;
    }
    out[..path.len()].copy_from_slice(path);
    out[path.len()..total].copy_from_slice(&suffix[..len]);
    out[total] = 0;
    true
}

fn fstat(fd: c_int) -> Result<libc::stat, c_int> {
    // SAFETY: an all-zero `stat` is a valid value; the kernel only writes it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let r = syscall6(
        libc::SYS_fstat,
        [
            fd as c_long,
            (&mut st as *mut libc::stat) as c_long,
            0,
            0,
            0,
            0,
        ],
    );
    if r < 0 {
        Err(-r as c_int)
    } else {
        Ok(st)
    }
}

/// `write(2)` until all is written (one call unless the descriptor takes
/// part of it, as a pipe may for a long line), `EINTR` retried.
fn write_all(fd: c_int, mut data: &[u8]) -> Result<(), c_int> {
    while !data.is_empty() {
        let n = syscall6(
            libc::SYS_write,
            [
                fd as c_long,
                data.as_ptr() as c_long,
                data.len() as c_long,
                0,
                0,
                0,
            ],
        );
        if n == -(libc::EINTR as c_long) {
            continue;
        }
        if n <= 0 {
            return Err(-n as c_int);
        }
        data = &data[n as usize..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ldguard_events::Event;

    #[test]
    fn without_a_pool_a_writer_formats_in_a_zeroed_mapping_of_its_own() {
        let mut ran = false;
        with_scratch_from(None, |scratch| {
            assert!(scratch.line.iter().all(|&b| b == 0));
            scratch.line[LINE - 1] = 1;
            ran = true;
        });
        assert!(ran);
    }

    fn line(n: u32) -> Vec<u8> {
        Event {
            pid: n,
            call: "open".into(),
            message: format!("m{n}"),
            ..Event::default()
        }
        .to_line()
    }

    fn names() -> (Box<[u8; NAME]>, Box<[u8; NAME]>) {
        (Box::new([0; NAME]), Box::new([0; NAME]))
    }

    fn pids(text: &str) -> Vec<u32> {
        text.lines()
            .map(|l| serde_json::from_str::<Event>(l).unwrap().pid)
            .collect()
    }

    #[test]
    fn lines_are_appended_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.jsonl");
        let (mut a, mut b) = names();
        for n in 0..3 {
            append(&path, &line(n), ROTATION, &mut a, &mut b).unwrap();
        }
        assert_eq!(pids(&std::fs::read_to_string(&path).unwrap()), [0, 1, 2]);
    }

    #[test]
    fn a_file_that_cannot_be_opened_is_an_error_naming_the_errno() {
        let (mut a, mut b) = names();
        let missing = Path::new("/nonexistent-dir/e.jsonl");
        assert_eq!(
            append(missing, b"x\n", ROTATION, &mut a, &mut b),
            Err(libc::ENOENT)
        );
    }

    #[test]
    fn writers_rotate_by_size_and_lose_no_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.jsonl");
        let rotation = Rotation {
            max_bytes: 1000,
            keep: 50,
        };
        // Four threads appending at once, as processes of a container.
        std::thread::scope(|s| {
            for t in 0..4u32 {
                let path = &path;
                s.spawn(move || {
                    let (mut a, mut b) = names();
                    for n in 0..50 {
                        append(path, &line(t * 50 + n), rotation, &mut a, &mut b).unwrap();
                    }
                });
            }
        });
        let mut all = Vec::new();
        let mut files = 0;
        for n in 0..=50 {
            let p = if n == 0 {
                path.clone()
            } else {
                dir.path().join(format!("e.jsonl.{n}"))
            };
            let Ok(text) = std::fs::read_to_string(&p) else {
                continue;
            };
            files += 1;
            assert!(
                text.len() < 1000 + 4 * 200,
                "{} has {} bytes",
                p.display(),
                text.len()
            );
            all.extend(pids(&text));
        }
        assert!(files > 5, "only {files} files: no rotation happened");
        all.sort_unstable();
        assert_eq!(all, (0..200).collect::<Vec<_>>(), "every line once");
    }

    #[test]
    fn only_the_newest_rotated_files_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.jsonl");
        let rotation = Rotation {
            max_bytes: 300,
            keep: 2,
        };
        let (mut a, mut b) = names();
        for n in 0..100 {
            append(&path, &line(n), rotation, &mut a, &mut b).unwrap();
        }
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n != "e.jsonl")
            .collect();
        names.sort();
        assert_eq!(names, ["e.jsonl.1", "e.jsonl.2"]);
        // The newest rotated file and the current one (absent until the
        // next line after a rotation) end with the last line, unbroken.
        let mut tail = pids(&std::fs::read_to_string(dir.path().join("e.jsonl.1")).unwrap());
        tail.extend(pids(&std::fs::read_to_string(&path).unwrap_or_default()));
        let first = tail[0];
        assert_eq!(tail, (first..100).collect::<Vec<_>>());
    }

    #[test]
    fn the_size_is_asked_on_the_first_line_then_every_1024th_of_the_limit() {
        let unchecked = AtomicU64::new(u64::MAX / 2);
        let rotation = Rotation {
            max_bytes: 1024 * 1000,
            keep: 1,
        };
        let asked: Vec<bool> = (0..25)
            .map(|_| size_check_due(&unchecked, 100, rotation))
            .collect();
        let at: Vec<usize> = (0..25).filter(|&i| asked[i]).collect();
        assert_eq!(at, [0, 10, 20]);
    }

    #[test]
    fn rotated_names_are_built_or_refused() {
        let mut out = [0u8; NAME];
        assert!(c_name(&mut out, b"/a/e.jsonl", Some(12)));
        assert_eq!(&out[..14], b"/a/e.jsonl.12\0");
        assert!(!c_name(&mut out, &[b'a'; NAME], None));
        assert!(!c_name(&mut out, b"a\0b", None));
    }
}

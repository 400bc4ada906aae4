//! Small libc helpers for hook code: no allocation, no lock, and no call
//! that lands in one of our own hooks.

use crate::os::real::next;
use std::ffi::{c_char, c_int, c_long, c_void};

#[inline]
pub fn errno() -> c_int {
    // SAFETY: __errno_location returns this thread's errno slot.
    unsafe { *libc::__errno_location() }
}

#[inline]
pub fn set_errno(value: c_int) {
    // SAFETY: as in `errno`.
    unsafe { *libc::__errno_location() = value }
}

/// Copies `bytes` and a NUL into `buf` at `at`; the index past the NUL,
/// `None` (nothing written) when they do not fit. One place for the
/// copies into fixed buffers, so one panic location (each is a relocated
/// pointer on a page every process writes) where indexing left several.
pub fn put_cstr(buf: &mut [u8], at: usize, bytes: &[u8]) -> Option<usize> {
    let end = at.checked_add(bytes.len())?;
    let (nul, dst) = buf.get_mut(at..=end)?.split_last_mut()?;
    dst.copy_from_slice(bytes);
    *nul = 0;
    Some(end + 1)
}

/// What follows the last `/` of `path` (all of it without one).
pub fn last_name(path: &[u8]) -> &[u8] {
    path.rsplit(|&b| b == b'/').next().unwrap_or(path)
}

/// The system call made here, not libc's `getpid`: the fork child
/// handlers ask it, and in a forked child libc's page was one more fault.
#[inline]
pub fn getpid() -> i32 {
    syscall6(libc::SYS_getpid, [0; 6]) as i32
}

/// A system call made right here, `-1` with errno set on failure (as
/// libc's `syscall`). The library's own calls go through it rather than
/// libc: in a forked child every libc page executed for the first time is
/// a page fault, and libc's `syscall` had to be looked up with `dlsym`
/// first in a child whose parent never made one (section 13 of
/// BENCHMARKS.md). The program's own `syscall(2)` calls are forwarded to
/// libc's ([`libc_syscall`]).
#[inline]
pub fn raw_syscall(nr: c_long, a: [c_long; 6]) -> c_long {
    let r = syscall6(nr, a);
    if r < 0 && r > -4096 {
        set_errno(-r as c_int);
        return -1;
    }
    r
}

/// [`raw_syscall`] without touching errno: the kernel's return value
/// (`-errno` on failure).
#[inline(always)]
pub fn syscall6(nr: c_long, a: [c_long; 6]) -> c_long {
    #[cfg(target_arch = "x86_64")]
    {
        let ret: c_long;
        // SAFETY: the x86-64 Linux system call convention (number and
        // result in rax, arguments in rdi, rsi, rdx, r10, r8, r9; rcx and
        // r11 clobbered); the caller passes arguments valid for `nr`, and
        // no call made through here creates a process or changes stacks.
        unsafe {
            std::arch::asm!(
                "syscall",
                inlateout("rax") nr => ret,
                in("rdi") a[0],
                in("rsi") a[1],
                in("rdx") a[2],
                in("r10") a[3],
                in("r8") a[4],
                in("r9") a[5],
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        }
        ret
    }
    #[cfg(target_arch = "aarch64")]
    {
        let ret: c_long;
        // SAFETY: the AArch64 Linux system call convention (number in x8,
        // arguments in x0-x5, result in x0); the caller passes arguments
        // valid for `nr`, as above.
        unsafe {
            std::arch::asm!(
                "svc 0",
                in("x8") nr,
                inlateout("x0") a[0] => ret,
                in("x1") a[1],
                in("x2") a[2],
                in("x3") a[3],
                in("x4") a[4],
                in("x5") a[5],
                options(nostack),
            );
        }
        ret
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let saved = errno();
        let r = libc_syscall(nr, a);
        let r = if r < 0 { -(errno() as c_long) } else { r };
        set_errno(saved);
        r
    }
}

/// `fstatat(dirfd, path, flags)` as the system call, errno untouched: the
/// file's `stat`, or the kernel's errno. `path` is NUL-terminated.
pub fn fstatat(dirfd: c_int, path: *const c_char, flags: c_int) -> Result<libc::stat, c_int> {
    // SAFETY: an all-zero `stat` is a valid value; the kernel only writes it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let r = syscall6(
        libc::SYS_newfstatat,
        [
            dirfd as c_long,
            path as c_long,
            (&mut st as *mut libc::stat) as c_long,
            flags as c_long,
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

/// libc's `syscall`, bypassing our own `syscall` hook: for the program's
/// own system calls, whatever they are (`clone`, `vfork`...).
pub fn libc_syscall(nr: c_long, a: [c_long; 6]) -> c_long {
    match next!(syscall: unsafe extern "C" fn(c_long, ...) -> c_long) {
        // SAFETY: the caller passes arguments valid for `nr`.
        Some(f) => unsafe { f(nr, a[0], a[1], a[2], a[3], a[4], a[5]) },
        None => {
            set_errno(libc::ENOSYS);
            -1
        }
    }
}

/// `/proc/self/fd/N` for `fd`, NUL-terminated, in `buf`; returns the length
/// without the NUL.
pub fn proc_fd_path(fd: c_int, buf: &mut [u8; 32]) -> usize {
    const PREFIX: &[u8] = b"/proc/self/fd/";
    buf[..PREFIX.len()].copy_from_slice(PREFIX);
    let mut n = fd.unsigned_abs();
    // Most descriptors are below 100: no division loop.
    if n < 100 {
        let at = PREFIX.len();
        let len = if n < 10 {
            buf[at] = b'0' + n as u8;
            at + 1
        } else {
            buf[at] = b'0' + (n / 10) as u8;
            buf[at + 1] = b'0' + (n % 10) as u8;
            at + 2
        };
        buf[len] = 0;
        return len;
    }
    let mut digits = [0u8; 12];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let len = PREFIX.len() + digits.len() - i;
    buf[PREFIX.len()..len].copy_from_slice(&digits[i..]);
    buf[len] = 0;
    len
}

/// `/proc/PID/fd/FD`, NUL-terminated, into `buf`; its length (`None`: a
/// negative number).
pub fn proc_pid_fd_path(pid: c_int, fd: c_int, buf: &mut [u8; 32]) -> Option<usize> {
    let at = put_cstr(buf, 0, b"/proc/")? - 1;
    let at = put_decimal(buf, at, pid)?;
    let at = put_cstr(buf, at, b"/fd/")? - 1;
    let at = put_decimal(buf, at, fd)?;
    *buf.get_mut(at)? = 0;
    Some(at)
}

/// Writes `n` (not negative) in decimal at `buf[at..]`; the index after it.
fn put_decimal(buf: &mut [u8], at: usize, n: c_int) -> Option<usize> {
    let n = u32::try_from(n).ok()?;
    let len = n.checked_ilog10().unwrap_or(0) as usize + 1;
    let mut rest = n;
    for slot in buf.get_mut(at..at + len)?.iter_mut().rev() {
        *slot = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    Some(at + len)
}

/// `readlink` into `out`; the target length, or `None` on error or when it
/// does not fit. `path` must be NUL-terminated.
pub fn readlink(path: &[u8], out: &mut [u8]) -> Option<usize> {
    debug_assert_eq!(path.last(), Some(&0));
    let n = raw_syscall(
        libc::SYS_readlinkat,
        [
            libc::AT_FDCWD as c_long,
            path.as_ptr() as c_long,
            out.as_mut_ptr() as c_long,
            out.len() as c_long,
            0,
            0,
        ],
    );
    (n >= 0 && (n as usize) < out.len()).then_some(n as usize)
}

/// `readlink` of `fd`'s `/proc/self/fd/N` into `out`, as the system call
/// returns it (`-errno` on failure; errno untouched: in a forked child its
/// page would be one more fault).
pub fn fd_link_raw(fd: c_int, out: &mut [u8]) -> c_long {
    let mut link = [0u8; 32];
    let len = proc_fd_path(fd, &mut link);
    readlinkat_quiet(libc::AT_FDCWD, link[..=len].as_ptr().cast(), out)
}

/// What a file descriptor refers to, as `/proc/self/fd` names it.
pub enum FdObject {
    /// A file by its path, `out[..n]` ([`link_name`]).
    Path(usize),
    /// An object with no name a path rule can use: a pipe, a socket, an
    /// anonymous inode, a namespace (`pipe:[…]`, `mnt:[…]`).
    Nameless,
    /// No answer (no `/proc`, a name longer than `out`).
    Unknown,
}

/// What `fd` refers to, its path (if any) in `out`.
pub fn fd_object(fd: c_int, out: &mut [u8]) -> FdObject {
    let mut link = [0u8; 32];
    let len = proc_fd_path(fd, &mut link);
    match readlink(&link[..=len], out) {
        Some(n) => link_name(out, n).map_or(FdObject::Nameless, FdObject::Path),
        None => FdObject::Unknown,
    }
}

/// The path a file descriptor refers to, via `/proc/self/fd`.
pub fn fd_path(fd: c_int, out: &mut [u8]) -> Option<usize> {
    match fd_object(fd, out) {
        FdObject::Path(n) => Some(n),
        FdObject::Nameless | FdObject::Unknown => None,
    }
}

/// The path in `buf[..n]`, the target of an object's `/proc` link: as it
/// is, or, for a deleted file, the name it had (without the kernel's
/// ` (deleted)`, NUL-terminated in place): a rule on that name still
/// applies to the file a descriptor keeps reachable. `None` when the
/// object has no path (a pipe, a socket, a namespace).
pub fn link_name(buf: &mut [u8], n: usize) -> Option<usize> {
    const DELETED: &[u8] = b" (deleted)";
    if n == 0 || buf[0] != b'/' {
        return None;
    }
    if buf[..n].ends_with(DELETED) {
        let kept = n - DELETED.len();
        buf[kept] = 0;
        return Some(kept);
    }
    Some(n)
}

/// The current directory, without the trailing NUL.
pub fn getcwd(out: &mut [u8]) -> Option<usize> {
    // SAFETY: `out` is writable for its length; getcwd is not hooked.
    let p = unsafe { libc::getcwd(out.as_mut_ptr().cast(), out.len()) };
    if p.is_null() {
        return None;
    }
    out.iter().position(|&b| b == 0)
}

/// `openat(dirfd, path, O_PATH | extra)` through the raw system call, for
/// asking the kernel what a path resolves to without opening the file.
pub fn open_path(dirfd: c_int, path: *const c_char, extra: c_int) -> c_int {
    let flags = libc::O_PATH | libc::O_CLOEXEC | extra;
    raw_syscall(
        libc::SYS_openat,
        [dirfd as c_long, path as c_long, flags as c_long, 0, 0, 0],
    ) as c_int
}

/// `openat(dirfd, path, flags | O_CLOEXEC)` with errno untouched: the
/// descriptor, or the kernel's errno.
pub fn openat_quiet(dirfd: c_int, path: *const c_char, flags: c_int) -> Result<c_int, c_int> {
    let flags = flags | libc::O_CLOEXEC;
    let r = syscall6(
        libc::SYS_openat,
        [dirfd as c_long, path as c_long, flags as c_long, 0, 0, 0],
    );
    if r < 0 {
        Err(-r as c_int)
    } else {
        Ok(r as c_int)
    }
}

/// `readlinkat(dirfd, path)` into `out` with errno untouched: the length
/// read, or `-errno`.
pub fn readlinkat_quiet(dirfd: c_int, path: *const c_char, out: &mut [u8]) -> c_long {
    syscall6(
        libc::SYS_readlinkat,
        [
            dirfd as c_long,
            path as c_long,
            out.as_mut_ptr() as c_long,
            out.len() as c_long,
            0,
            0,
        ],
    )
}

/// `len` bytes of fresh zeroed memory (a private anonymous mapping, made
/// with the system call: no allocator, no errno, safe in a signal handler
/// or a `vfork` child); `None` when the kernel gives none. Give it back
/// with [`unmap`].
pub fn map_anonymous(len: usize) -> Option<*mut u8> {
    let addr = syscall6(
        libc::SYS_mmap,
        [
            0,
            len as c_long,
            (libc::PROT_READ | libc::PROT_WRITE) as c_long,
            (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as c_long,
            -1,
            0,
        ],
    );
    (!(-4095..0).contains(&addr)).then_some(addr as *mut u8)
}

/// Gives back a mapping of [`map_anonymous`].
pub fn unmap(addr: *mut u8, len: usize) {
    syscall6(
        libc::SYS_munmap,
        [addr as c_long, len as c_long, 0, 0, 0, 0],
    );
}

/// The effective user id, as the system call (libc's `geteuid` would be one
/// more lazy binding at start-up).
pub fn geteuid() -> u32 {
    syscall6(libc::SYS_geteuid, [0; 6]) as u32
}

/// `openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC | extra)` and the opened
/// file's `fstat`, as system calls: std's `File::open` calls `open64`,
/// which is our own hook (whose first call looks libc's up with `dlsym`),
/// and std's `metadata` probes `statx` with a system call of its own
/// first: ~7k instructions and a system call more at every start.
pub fn open_read(path: &[u8], extra: c_int) -> std::io::Result<(std::fs::File, libc::stat)> {
    use std::os::fd::FromRawFd;
    let path = std::ffi::CString::new(path)?;
    let flags = libc::O_RDONLY | libc::O_CLOEXEC | extra;
    let open = [
        libc::AT_FDCWD as c_long,
        path.as_ptr() as c_long,
        flags as c_long,
        0,
        0,
        0,
    ];
    let fd = loop {
        let fd = syscall6(libc::SYS_openat, open);
        // Opened again when interrupted, as std's `File::open` does (a
        // FIFO, a network file system).
        if fd != -(libc::EINTR as c_long) {
            break fd;
        }
    };
    if fd < 0 {
        return Err(std::io::Error::from_raw_os_error(-fd as c_int));
    }
    // SAFETY: `fd` was just opened here and is owned by nothing else.
    let file = unsafe { std::fs::File::from_raw_fd(fd as c_int) };
    let st = fstatat(fd as c_int, c"".as_ptr(), libc::AT_EMPTY_PATH)
        .map_err(std::io::Error::from_raw_os_error)?;
    Ok((file, st))
}

pub fn close(fd: c_int) {
    raw_syscall(libc::SYS_close, [fd as c_long, 0, 0, 0, 0, 0]);
}

/// Resolved `/proc/self/exe`, or `argv[0]`-less `"?"` when `/proc` is not
/// mounted (rules with `program` then cannot match, which is reported).
///
/// When the process is the dynamic loader run as a program
/// (`/lib64/ld-linux-x86-64.so.2 ./prog`), the program is the file the
/// loader mapped as the main executable (its link map's name, made
/// absolute), so that `program`-scoped rules apply to it and not to ld.so.
pub fn self_exe() -> Box<[u8]> {
    // Not zeroed: readlink writes what it returns (zeroing PATH_MAX bytes
    // was two thirds of this function's cost at every process start).
    let mut buf: Vec<u8> = Vec::with_capacity(libc::PATH_MAX as usize);
    // The system call, not libc's `readlink`: nothing else calls that at
    // start-up, so its GOT slot is bound lazily (shim/lazy_libc.c). The
    // kernel writes at most the buffer's capacity; only the bytes it
    // reports written are used below.
    let n = raw_syscall(
        libc::SYS_readlinkat,
        [
            libc::AT_FDCWD as c_long,
            c"/proc/self/exe".as_ptr() as c_long,
            buf.as_mut_ptr() as c_long,
            buf.capacity() as c_long,
            0,
            0,
        ],
    );
    if n < 0 || n as usize >= buf.capacity() {
        return (*b"?").into();
    }
    // SAFETY: readlink initialised the first `n` bytes (checked above).
    unsafe { buf.set_len(n as usize) };
    if is_loader_path(&buf) {
        return main_map_name().unwrap_or_else(|| buf.into());
    }
    buf.into()
}

/// Whether `path` names a dynamic loader (glibc's or musl's) by its name.
pub fn is_loader_path(path: &[u8]) -> bool {
    let name = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
    name.starts_with(b"ld-linux")
        || name.starts_with(b"ld64.so")
        || name.starts_with(b"ld.so")
        || name.starts_with(b"ld-musl-")
        || (name.starts_with(b"ld-") && name.windows(3).any(|w| w == b".so"))
}

/// The file the loader mapped as the main program: the mapping (in
/// `/proc/self/maps`) that holds the main link map's program headers. The
/// link map itself has no name under a direct loader invocation.
fn main_map_name() -> Option<Box<[u8]>> {
    unsafe extern "C" fn first(
        info: *mut libc::dl_phdr_info,
        _size: usize,
        out: *mut libc::c_void,
    ) -> c_int {
        // SAFETY: the loader passes a valid entry; `out` is our usize.
        unsafe { *(out as *mut usize) = (*info).dlpi_phdr as usize };
        1 // the first entry is the main program: stop
    }
    let mut phdr: usize = 0;
    // SAFETY: the callback writes one usize through `out`.
    unsafe { libc::dl_iterate_phdr(Some(first), &mut phdr as *mut usize as *mut libc::c_void) };
    if phdr == 0 {
        return None;
    }
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines().find_map(|line| {
        let (range, rest) = line.split_once(' ')?;
        let (lo, hi) = range.split_once('-')?;
        let (lo, hi) = (
            usize::from_str_radix(lo, 16).ok()?,
            usize::from_str_radix(hi, 16).ok()?,
        );
        if !(lo..hi).contains(&phdr) {
            return None;
        }
        // address perms offset dev inode path
        let path = rest.split_whitespace().nth(4)?;
        path.starts_with('/')
            .then(|| path.as_bytes().to_vec().into_boxed_slice())
    })
}

/// `CLOCK_REALTIME` as (seconds, nanoseconds).
pub fn now() -> (i64, u32) {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-parameter.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    (ts.tv_sec, ts.tv_nsec as u32)
}

/// Length of a NUL-terminated C string, or `None` for a null pointer.
///
/// # Safety
/// `s` must be null or point to a NUL-terminated string.
pub unsafe fn cstr<'a>(s: *const c_char) -> Option<&'a [u8]> {
    if s.is_null() {
        None
    } else {
        // SAFETY: non-null and NUL-terminated per the contract.
        Some(unsafe { std::ffi::CStr::from_ptr(s) }.to_bytes())
    }
}

/// Whether the NUL-terminated string `s` starts with `prefix`, read only
/// up to the first byte that differs (for most environment variables
/// scanned for ours: the first).
///
/// # Safety
/// `s` points to a NUL-terminated string.
pub unsafe fn c_starts_with(s: *const c_char, prefix: &[u8]) -> bool {
    prefix.iter().enumerate().all(|(i, &b)| {
        // SAFETY: bytes 0..i matched the prefix, so none was the NUL and
        // byte i is still within the string.
        (unsafe { *s.cast::<u8>().add(i) }) == b
    })
}

/// A thread body handed to [`spawn_thread`]'s start routine.
struct ThreadStart {
    /// NUL-terminated, at most 15 bytes before the NUL (the kernel's limit).
    name: [u8; 16],
    body: Box<dyn FnOnce() + Send>,
}

/// Starts a detached thread named `name` (the first 15 bytes, as
/// `/proc/self/task/*/comm` shows it) running `body` on a stack of
/// `stack_size` bytes, with libc's `pthread_create` directly rather than
/// `std::thread`: std's thread start-up (stack-guard discovery, an
/// alternate signal stack) calls a dozen libc functions through the GOT,
/// each bound by the loader at every process start whether or not a thread
/// is ever made. The thread inherits its creator's signal mask. A panic in
/// `body` ends the thread, never the process.
pub fn spawn_thread(
    name: &str,
    stack_size: usize,
    body: Box<dyn FnOnce() + Send>,
) -> std::io::Result<()> {
    type Create = unsafe extern "C" fn(
        *mut libc::pthread_t,
        *const libc::pthread_attr_t,
        extern "C" fn(*mut c_void) -> *mut c_void,
        *mut c_void,
    ) -> c_int;
    let mut start = ThreadStart {
        name: [0; 16],
        body,
    };
    let shown = name.len().min(15);
    start.name[..shown].copy_from_slice(&name.as_bytes()[..shown]);
    // Ours, not the program's `pthread_create` hook: the library's threads
    // are not the program's.
    let Some(create) = next!(pthread_create: Create) else {
        return Err(std::io::Error::from_raw_os_error(libc::EAGAIN));
    };
    let arg = Box::into_raw(Box::new(start)) as *mut c_void;
    let mut attr = std::mem::MaybeUninit::<libc::pthread_attr_t>::uninit();
    let mut thread = std::mem::MaybeUninit::<libc::pthread_t>::uninit();
    // SAFETY: `attr` is initialised by pthread_attr_init before any other
    // use and destroyed once; `create` is libc's pthread_create, which owns
    // `arg` (a leaked `ThreadStart`) when it returns 0.
    let rc = unsafe {
        libc::pthread_attr_init(attr.as_mut_ptr());
        libc::pthread_attr_setdetachstate(attr.as_mut_ptr(), libc::PTHREAD_CREATE_DETACHED);
        let sized = libc::pthread_attr_setstacksize(
            attr.as_mut_ptr(),
            stack_size.max(libc::PTHREAD_STACK_MIN),
        );
        let mut rc = create(thread.as_mut_ptr(), attr.as_ptr(), thread_start, arg);
        // A program with a large static TLS block (glibc places it on each
        // thread's stack) may need more than `stack_size`: libc's default.
        if rc == libc::EINVAL && sized == 0 {
            libc::pthread_attr_destroy(attr.as_mut_ptr());
            libc::pthread_attr_init(attr.as_mut_ptr());
            libc::pthread_attr_setdetachstate(attr.as_mut_ptr(), libc::PTHREAD_CREATE_DETACHED);
            rc = create(thread.as_mut_ptr(), attr.as_ptr(), thread_start, arg);
        }
        libc::pthread_attr_destroy(attr.as_mut_ptr());
        rc
    };
    if rc != 0 {
        // SAFETY: no thread was created, so `arg` is still ours.
        drop(unsafe { Box::from_raw(arg as *mut ThreadStart) });
        return Err(std::io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

extern "C" fn thread_start(arg: *mut c_void) -> *mut c_void {
    // SAFETY: `arg` is the `ThreadStart` leaked by `spawn_thread` for this
    // thread alone.
    let start = unsafe { Box::from_raw(arg as *mut ThreadStart) };
    // SAFETY: the name is NUL-terminated and at most 15 bytes long.
    unsafe { libc::pthread_setname_np(libc::pthread_self(), start.name.as_ptr() as *const c_char) };
    let body = start.body;
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
    std::ptr::null_mut()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_names_of_deleted_and_nameless_objects() {
        let mut buf = *b"/x/f (deleted)\0";
        assert_eq!(link_name(&mut buf, 14), Some(4));
        assert_eq!(&buf[..5], b"/x/f\0");
        let mut pipe = *b"pipe:[42]";
        assert_eq!(link_name(&mut pipe, 9), None);
        let mut plain = *b"/x/f";
        assert_eq!(link_name(&mut plain, 4), Some(4));
    }

    /// The thread runs its body on the asked stack size, shows its name
    /// (cut to the kernel's 15 bytes) in `/proc/self/task/*/comm`, and a
    /// panic in a body ends only that thread.
    #[test]
    fn spawned_threads_run_named_and_survive_a_panic() {
        use std::sync::mpsc::channel;
        let (tx, rx) = channel();
        let (release, wait) = channel::<()>();
        spawn_thread(
            "ldguard-test-thread-name",
            64 * 1024,
            Box::new(move || {
                let mut attr = std::mem::MaybeUninit::<libc::pthread_attr_t>::uninit();
                let mut size = 0usize;
                // SAFETY: pthread_getattr_np fills `attr` for this thread;
                // it is read once and destroyed.
                unsafe {
                    libc::pthread_getattr_np(libc::pthread_self(), attr.as_mut_ptr());
                    libc::pthread_attr_getstacksize(attr.as_ptr(), &mut size);
                    libc::pthread_attr_destroy(attr.as_mut_ptr());
                }
                // SAFETY: gettid has no preconditions.
                tx.send((unsafe { libc::gettid() }, size)).unwrap();
                let _ = wait.recv();
            }),
        )
        .unwrap();
        let (tid, stack) = rx.recv().unwrap();
        assert!((64 * 1024..512 * 1024).contains(&stack), "stack {stack}");
        let comm = std::fs::read_to_string(format!("/proc/self/task/{tid}/comm")).unwrap();
        assert_eq!(comm, "ldguard-test-th\n");
        release.send(()).unwrap();

        let (tx, rx) = channel();
        spawn_thread(
            "ldguard-panics",
            64 * 1024,
            Box::new(move || {
                tx.send(()).unwrap();
                panic!("inside a library thread");
            }),
        )
        .unwrap();
        rx.recv().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        // Still here: the panic was caught in the thread.
    }

    #[test]
    fn proc_pid_fd_path_formats_numbers() {
        let mut b = [0u8; 32];
        let n = proc_pid_fd_path(4194304, 1234567, &mut b).unwrap();
        assert_eq!(&b[..=n], b"/proc/4194304/fd/1234567\0");
        let n = proc_pid_fd_path(1, 0, &mut b).unwrap();
        assert_eq!(&b[..=n], b"/proc/1/fd/0\0");
        assert_eq!(proc_pid_fd_path(-1, 3, &mut b), None);
    }

    #[test]
    fn proc_fd_path_formats_numbers() {
        let mut b = [0u8; 32];
        let n = proc_fd_path(0, &mut b);
        assert_eq!(&b[..=n], b"/proc/self/fd/0\0");
        let n = proc_fd_path(7, &mut b);
        assert_eq!(&b[..=n], b"/proc/self/fd/7\0");
        let n = proc_fd_path(42, &mut b);
        assert_eq!(&b[..=n], b"/proc/self/fd/42\0");
        let n = proc_fd_path(100, &mut b);
        assert_eq!(&b[..=n], b"/proc/self/fd/100\0");
        let n = proc_fd_path(1234567, &mut b);
        assert_eq!(&b[..n], b"/proc/self/fd/1234567");
    }

    #[test]
    fn fd_path_and_cwd() {
        let f = std::fs::File::open("/etc/hostname").unwrap();
        use std::os::fd::AsRawFd;
        let mut out = [0u8; 256];
        let n = fd_path(f.as_raw_fd(), &mut out).unwrap();
        assert_eq!(&out[..n], b"/etc/hostname");
        let n = getcwd(&mut out).unwrap();
        assert_eq!(
            &out[..n],
            std::env::current_dir()
                .unwrap()
                .as_os_str()
                .as_encoded_bytes()
        );
    }
}

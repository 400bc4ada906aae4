//! Turning the path arguments of a call into what the policy matches: the
//! path as given, made absolute against the cwd or dirfd and normalised, and
//! the object the kernel will actually reach, with symlinks, `..` through
//! symlinks and `/proc/self/fd/N` magic links resolved.
//!
//! Resolution asks the kernel itself (`openat(O_PATH)` + `readlink` of the
//! descriptor), so it agrees with what the real call will do. All buffers
//! are on the caller's stack; nothing allocates.

use crate::os::sys;
use std::ffi::{c_char, c_int, c_long};
use std::sync::atomic::{AtomicBool, Ordering};

pub const PATH_CAP: usize = libc::PATH_MAX as usize;

/// A path in a fixed buffer. The length comes first: a short path then
/// lies on the buffer's first page with its length (after the buffer, a
/// short path touched two pages; in a forked child each page a check
/// writes is a page fault).
#[repr(C)]
pub struct PathBuf {
    len: usize,
    buf: [u8; PATH_CAP],
}

/// A path with a NUL byte right after it, passed to the kernel where it
/// lies instead of copied into a buffer (exec paths come as C strings).
/// Its bytes are the path as given, NUL bytes inside included, as a copy
/// of them would hold (the kernel reads up to the first).
#[derive(Clone, Copy)]
pub struct CPath<'a>(&'a [u8]);

impl<'a> CPath<'a> {
    /// The empty path.
    pub const EMPTY: CPath<'static> = CPath(b"\0");

    /// `with_nul`'s last byte is its terminating NUL (`None` otherwise).
    pub const fn new(with_nul: &'a [u8]) -> Option<CPath<'a>> {
        match with_nul {
            [.., 0] => Some(CPath(with_nul)),
            _ => None,
        }
    }

    /// The C string at `p` (empty for a null pointer: the real call then
    /// reports `EFAULT`).
    ///
    /// # Safety
    /// `p` is null or points to a NUL-terminated string that outlives `'a`.
    pub unsafe fn from_ptr(p: *const c_char) -> CPath<'a> {
        if p.is_null() {
            return CPath(b"\0");
        }
        // Measured here, not by libc's `strlen` (through the PLT): in a
        // forked child about to exec, those were two or three pages of
        // code faulted in for one short path.
        let mut n = 0;
        loop {
            // SAFETY: every byte up to and including the NUL is readable
            // (the contract); the loop stops at the NUL.
            let b = unsafe { std::ptr::read_volatile(p.add(n)) };
            if b == 0 {
                break;
            }
            n += 1;
        }
        // SAFETY: `n + 1` readable bytes ending with the NUL (found above),
        // living as long as the contract says.
        CPath(unsafe { std::slice::from_raw_parts(p.cast::<u8>(), n + 1) })
    }

    /// The path, without the NUL.
    pub fn bytes(self) -> &'a [u8] {
        &self.0[..self.0.len() - 1]
    }

    pub fn ptr(self) -> *const c_char {
        self.0.as_ptr().cast()
    }
}

/// The length of the C string at `p`, measured inline: sixteen bytes at a
/// time from the 16-byte block that holds `p` (an aligned block never
/// crosses a page, so no byte outside the string's pages is read).
///
/// Why not libc's `strlen`: on the repeated open, its call through the
/// PLT and its code were four instruction-cache lines of their own per
/// open, in a program (nginx) whose own code per request already misses
/// the instruction cache hundreds of times (BENCHMARKS.md, section 16).
///
/// # Safety
/// `p` is non-null and points to a NUL-terminated string.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub unsafe fn c_len(p: *const c_char) -> usize {
    let len: usize;
    // SAFETY: the loads are 16-byte aligned blocks from the one holding
    // `p` up to the one holding its NUL: each lies within a page that holds
    // at least one byte of the string (the contract), so each is readable;
    // the loop stops at the first block with the NUL. The bytes read before
    // `p` are shifted out of the mask; those after the NUL are never used.
    // Only the named registers and the flags are written; no stack.
    unsafe {
        std::arch::asm!(
            "mov {blk}, {p}",
            "and {blk}, -16",
            "pxor {zero}, {zero}",
            "movdqa {x}, xmmword ptr [{blk}]",
            "pcmpeqb {x}, {zero}",
            "pmovmskb {m:e}, {x}",
            "shr {m:e}, cl",
            "test {m:e}, {m:e}",
            "jnz 3f",
            "2:",
            "add {blk}, 16",
            "movdqa {x}, xmmword ptr [{blk}]",
            "pcmpeqb {x}, {zero}",
            "pmovmskb {m:e}, {x}",
            "test {m:e}, {m:e}",
            "jz 2b",
            "bsf {m:e}, {m:e}",
            "add {m}, {blk}",
            "sub {m}, {p}",
            "jmp 4f",
            "3:",
            "bsf {m:e}, {m:e}",
            "4:",
            p = in(reg) p,
            blk = out(reg) _,
            m = out(reg) len,
            x = out(xmm_reg) _,
            zero = out(xmm_reg) _,
            in("ecx") (p as usize & 15) as u32,
            options(nostack, readonly, pure),
        );
    }
    len
}

/// The length of the C string at `p` (libc's `strlen` where no inline
/// scan is written).
///
/// # Safety
/// `p` is non-null and points to a NUL-terminated string.
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
pub unsafe fn c_len(p: *const c_char) -> usize {
    // SAFETY: the contract.
    unsafe { libc::strlen(p) }
}

impl PathBuf {
    pub const fn new() -> PathBuf {
        PathBuf {
            len: 0,
            buf: [0; PATH_CAP],
        }
    }

    /// The path as a [`CPath`] (its NUL written here: not every writer of
    /// the buffer ends it with one).
    pub fn c_path(&mut self) -> CPath<'_> {
        // `len < PATH_CAP`: every writer leaves room for the NUL.
        let len = self.len.min(PATH_CAP - 1);
        self.buf[len] = 0;
        CPath(&self.buf[..=len])
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// The concatenation of `parts`, NUL-terminated; `None` when too long.
    pub fn set(&mut self, parts: &[&[u8]]) -> Option<()> {
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
/// 93% of the instructions of a checked `open` were `memset`); the
/// thread's mapped scratch area (`guard::scratch`) is zero pages the
/// kernel provides once, and only the pages a check writes are faulted in.
pub struct Scratch {
    pub a: PathBuf,
    pub b: PathBuf,
    pub c: PathBuf,
}

// The per-thread area in `guard` keeps one `Scratch` per level as bytes,
// zero when mapped (three empty buffers): every bit pattern left there is
// a valid `Scratch` (byte arrays and lengths, which only `PathBuf`'s own
// methods write), and it must fit there.
const _: () = assert!(std::mem::size_of::<Scratch>() <= crate::os::guard::SCRATCH_BYTES);
const _: () = assert!(std::mem::align_of::<Scratch>() <= 8);

/// Runs `f` with this thread's buffers for the current check level.
///
/// Callers hold a check guard ([`crate::os::guard::Guard`]) for the whole
/// call: a signal handler that interrupts `f` and calls a hook is one level
/// deeper and gets the next set, so the `&mut` is unique.
pub fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    let level = crate::os::guard::scratch_level();
    match crate::os::guard::scratch_bytes(level) {
        // SAFETY: exclusive per the level argument above; the bytes are
        // this thread's own, large and aligned enough (checked above), and
        // any bytes left there are a valid `Scratch`.
        Some(bytes) => f(unsafe { &mut *bytes.cast::<Scratch>() }),
        None => with_stack_scratch(f),
    }
}

/// This thread's buffers for the current check level, for a caller that
/// inlines its work on them (with [`with_stack_scratch`] when `None`).
/// The same contract as [`with_scratch`]: the caller holds a check guard
/// for as long as it uses them, and takes one `&mut` from the pointer.
#[inline(always)]
pub fn thread_scratch() -> Option<*mut Scratch> {
    crate::os::guard::scratch_bytes(crate::os::guard::scratch_level()).map(|b| b.cast::<Scratch>())
}

/// No area could be mapped (out of memory or address space): buffers on
/// the stack, zeroed, for this call only.
#[cold]
#[inline(never)]
pub fn with_stack_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    let mut s = Scratch {
        a: PathBuf::new(),
        b: PathBuf::new(),
        c: PathBuf::new(),
    };
    f(&mut s)
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
    if base_len > 0 {
        // The common relative spellings (`name`, `./dir/name`, as tar and
        // find pass them) joined in one copy: the kernel's path of a
        // directory is absolute and normal (the kernel never names an
        // empty, `.` or `..` segment, nor ends one with `/` but the root),
        // and so is the rest once its leading `./` are gone.
        let base = &scratch.buf[..base_len];
        if let (Some(rest), Some(b'/')) = (plain_relative(path), base.first()) {
            debug_assert!(is_plain(base), "{base:?}");
            let base: &[u8] = if base_len == 1 { b"" } else { base };
            return out.set(&[base, b"/", rest]);
        }
    }
    let n = ldguard_policy::path::normalize_into(
        &scratch.buf[..base_len],
        path,
        &mut out.buf[..PATH_CAP - 1],
    )?;
    out.len = n;
    Some(())
}

/// `path` without its leading `./` segments, when the rest is a relative
/// path in normal form (no empty, `.` or `..` segment, no leading or
/// trailing `/`): joined to a normal base with one `/`, it is the
/// normalised absolute path. `None` for anything else (normalised then).
fn plain_relative(mut path: &[u8]) -> Option<&[u8]> {
    while let [b'.', b'/', rest @ ..] = path {
        path = rest;
    }
    let (&first, &last) = (path.first()?, path.last()?);
    if first == b'/' || last == b'/' {
        return None;
    }
    let plain = (first != b'.' && !slash_then_slash_or_dot(path))
        || path
            .split(|&b| b == b'/')
            .all(|seg| !matches!(seg, b"" | b"." | b".."));
    plain.then_some(path)
}

/// `path` when it is already absolute and in normal form (no `//`, `/./`,
/// `/../`, no trailing `/`, `/.` or `/..`): most paths programs open are,
/// and then there is nothing to copy or normalise. One pass over the bytes.
pub fn is_plain(path: &[u8]) -> bool {
    plain(path).is_some()
}

/// [`is_plain`], and when it is, whether the scan found no `/` followed
/// by `/` or `.` at all (`Some(true)`: no segment starts with a dot, which
/// the rule index uses, `Request::path_without_slash_dot`).
#[inline]
fn plain(path: &[u8]) -> Option<bool> {
    let n = path.len();
    if n == 0 || path[0] != b'/' {
        return None;
    }
    if n == 1 {
        return Some(true);
    }
    if path[n - 1] == b'/' {
        return None;
    }
    if !slash_then_slash_or_dot(path) {
        return Some(true);
    }
    ldguard_policy::path::is_normal(path).then_some(false)
}

/// Whether a `/` is followed by `/` or `.` anywhere in `path`: the only
/// way a path that starts with `/` can be other than normal. Eight bytes at
/// a time (SWAR), without a branch per word: each word marks its `/` bytes
/// and its `/`-or-`.` bytes, and a pair is a `/` mark one byte below a
/// `/`-or-`.` mark (the word's top `/` carries into the next word). The
/// marks may have false positives (a byte after a marked one), never false
/// negatives; a false positive only sends the path to the exact test.
fn slash_then_slash_or_dot(path: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const SLASHES: u64 = b'/' as u64 * ONES;
    const DOTS: u64 = b'.' as u64 * ONES;
    let n = path.len();
    if n < 8 {
        return path
            .windows(2)
            .any(|w| w[0] == b'/' && (w[1] == b'/' || w[1] == b'.'));
    }
    #[cfg(target_arch = "x86_64")]
    if n >= 17 {
        return slash_then_slash_or_dot_sse2(path);
    }
    let zero_bytes = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let word = |at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&path[at..at + 8]);
        u64::from_le_bytes(w)
    };
    let marks = |w: u64| {
        let slash = zero_bytes(w ^ SLASHES);
        (slash, slash | zero_bytes(w ^ DOTS))
    };
    let mut hits = 0;
    let mut carry = 0;
    let mut i = 0;
    while i + 8 <= n {
        let (slash, either) = marks(word(i));
        hits |= ((slash << 8) | carry) & either;
        carry = slash >> 56;
        i += 8;
    }
    if i < n {
        // The last word overlaps the one before: its pairs are all inside
        // it, and the pair that straddles its start lies in the one before.
        let (slash, either) = marks(word(n - 8));
        hits |= (slash << 8) & either;
    }
    hits != 0
}

/// [`slash_then_slash_or_dot`] sixteen pairs at a time (SSE2, which every
/// x86_64 has), for paths of 17 bytes or more: each block compares the
/// bytes at `i` with `/` and those at `i + 1` (a second, unaligned load)
/// with `/` and `.`, so a pair is one AND, with nothing carried between
/// blocks; the blocks are ORed and their mask taken once. The last block
/// ends at the path's end and may overlap the one before. Exact (a byte
/// compare marks nothing else).
#[cfg(target_arch = "x86_64")]
fn slash_then_slash_or_dot_sse2(path: &[u8]) -> bool {
    use std::arch::x86_64::{
        __m128i, _mm_and_si128, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8, _mm_setzero_si128,
    };
    let n = path.len();
    debug_assert!(n >= 17);
    // SAFETY: SSE2 is part of the x86_64 baseline (every x86_64 CPU has
    // it); `pairs` is called with `at + 17 <= n`, so both unaligned loads
    // read bytes of `path`.
    unsafe {
        let slash = _mm_set1_epi8(b'/' as i8);
        let dot = _mm_set1_epi8(b'.' as i8);
        let pairs = |at: usize| -> __m128i {
            debug_assert!(at + 17 <= n);
            let here = _mm_loadu_si128(path.as_ptr().add(at).cast());
            let next = _mm_loadu_si128(path.as_ptr().add(at + 1).cast());
            _mm_and_si128(
                _mm_cmpeq_epi8(here, slash),
                _mm_or_si128(_mm_cmpeq_epi8(next, slash), _mm_cmpeq_epi8(next, dot)),
            )
        };
        let mut hits = _mm_setzero_si128();
        let mut at = 0;
        while at + 17 < n {
            hits = _mm_or_si128(hits, pairs(at));
            at += 16;
        }
        hits = _mm_or_si128(hits, pairs(n - 17));
        _mm_movemask_epi8(hits) != 0
    }
}

/// The lexical absolute form of `(dirfd, path)`: `path` itself when it is
/// already plain ([`is_plain`]), else made absolute and normalised into
/// `out` ([`absolute`]). `None` when there is no such form (the cwd was
/// deleted or is deeper than `PATH_MAX`, the dirfd has no path, or the
/// result is too long).
pub fn lexical<'a>(
    dirfd: c_int,
    path: &'a [u8],
    scratch: &mut PathBuf,
    out: &'a mut PathBuf,
) -> Option<&'a [u8]> {
    lexical_hinted(dirfd, path, scratch, out).map(|(p, _)| p)
}

/// [`lexical`], with whether the path is known to have no `/` followed
/// by `.` (`Request::path_without_slash_dot`; `false`: not known).
#[inline]
pub fn lexical_hinted<'a>(
    dirfd: c_int,
    path: &'a [u8],
    scratch: &mut PathBuf,
    out: &'a mut PathBuf,
) -> Option<(&'a [u8], bool)> {
    if let Some(no_slash_dot) = plain(path) {
        return Some((path, no_slash_dot));
    }
    absolute(dirfd, path, scratch, out)?;
    Some((out.as_bytes(), false))
}

pub const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
pub const RESOLVE_NO_SYMLINKS: u64 = 0x04;
/// What the no-links open asks of the kernel: fail with `ELOOP` rather
/// than follow any symlink or `/proc` magic link.
pub const NO_LINKS: u64 = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;

/// Whether `openat2` failed for good in this process (`ENOSYS` on kernels
/// before 5.6, `EPERM`/`ENOSYS` from a seccomp profile that does not know
/// it): then every checked open takes the pinned path.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

pub fn openat2_usable() -> bool {
    !NO_OPENAT2.load(Ordering::Relaxed)
}

/// `openat2(dirfd, path, {flags, mode, resolve})` through the raw system
/// call; the descriptor, or `-1` with errno set. `ENOSYS` and `EPERM` are
/// remembered (see [`openat2_usable`]). `mode` is passed only when `flags`
/// create a file, as `openat2` insists.
pub fn openat2(dirfd: c_int, path: *const c_char, flags: c_int, mode: u32, resolve: u64) -> c_int {
    match openat2_raw(dirfd, path, flags, mode, resolve) {
        Ok(fd) => fd,
        Err(e) => {
            sys::set_errno(e);
            -1
        }
    }
}

/// [`openat2`] without touching errno: the descriptor or the error number.
/// The system call is made right here (no libc wrapper on the way).
#[inline(always)]
pub fn openat2_raw(
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    mode: u32,
    resolve: u64,
) -> Result<c_int, c_int> {
    let creates = flags & libc::O_CREAT != 0 || flags & libc::O_TMPFILE == libc::O_TMPFILE;
    // struct open_how { u64 flags; u64 mode; u64 resolve; }
    let how: [u64; 3] = [
        flags as u32 as u64,
        if creates { mode as u64 & 0o7777 } else { 0 },
        resolve,
    ];
    let r = syscall4(
        libc::SYS_openat2,
        dirfd as c_long,
        path as c_long,
        how.as_ptr() as c_long,
        std::mem::size_of_val(&how) as c_long,
    );
    if r >= 0 {
        return Ok(r as c_int);
    }
    let e = -r as c_int;
    // EPERM may be the file's own answer (O_NOATIME, an immutable
    // file): only a refused probe of `/` means openat2 is unusable.
    if e == libc::ENOSYS || (e == libc::EPERM && refused_probe()) {
        NO_OPENAT2.store(true, Ordering::Relaxed);
    }
    Err(e)
}

/// A four-argument system call; the kernel's return value (`-errno` on
/// failure), made right here ([`sys::syscall6`]).
#[inline(always)]
fn syscall4(nr: c_long, a: c_long, b: c_long, c: c_long, d: c_long) -> c_long {
    sys::syscall6(nr, [a, b, c, d, 0, 0])
}

/// `fcntl(fd, F_GETFL)` made right here (no libc wrapper, errno left
/// alone): the descriptor's status flags, or `None` when the kernel
/// refuses (not a descriptor; a seccomp profile).
#[inline]
pub fn fd_flags(fd: c_int) -> Option<c_int> {
    let r = syscall4(libc::SYS_fcntl, fd as c_long, libc::F_GETFL as c_long, 0, 0);
    (r >= 0).then_some(r as c_int)
}

fn refused_probe() -> bool {
    let how: [u64; 3] = [(libc::O_PATH | libc::O_CLOEXEC) as u64, 0, 0];
    let fd = syscall4(
        libc::SYS_openat2,
        libc::AT_FDCWD as c_long,
        c"/".as_ptr() as c_long,
        how.as_ptr() as c_long,
        std::mem::size_of_val(&how) as c_long,
    );
    if fd >= 0 {
        sys::close(fd as c_int);
        return false;
    }
    true
}

/// `(dirfd, path)` as one absolute spelling, not normalised (the base
/// directory, `/`, the path), for [`walk_links`].
pub fn spelled_out(dirfd: c_int, path: &[u8], out: &mut PathBuf) -> Option<()> {
    if path.first() == Some(&b'/') {
        return out.set(&[path]);
    }
    let mut base = [0u8; PATH_CAP];
    let n = if dirfd == libc::AT_FDCWD {
        sys::getcwd(&mut base)?
    } else {
        sys::fd_path(dirfd, &mut base)?
    };
    out.set(&[&base[..n], b"/", path])
}

/// Whether the kernel reaches `(dirfd, path)` without following any
/// symlink or magic link (`/proc/self/fd/N`), in which case the lexical
/// absolute path already is the resolved one (`..` without links on the
/// way is lexical). One `openat2` of an `O_PATH` descriptor and a `close`:
/// cheaper than [`resolved`]'s `readlink`. `false` when it cannot tell.
pub fn without_links(dirfd: c_int, path: &[u8], follow: bool, scratch: &mut PathBuf) -> bool {
    if !openat2_usable() || scratch.set(&[path]).is_none() {
        return false;
    }
    reached_without_links(dirfd, scratch.c_ptr(), follow)
}

/// [`without_links`] for a path already NUL-terminated: nothing copied.
pub fn without_links_c(dirfd: c_int, path: CPath<'_>, follow: bool) -> bool {
    openat2_usable() && reached_without_links(dirfd, path.ptr(), follow)
}

/// errno is left alone: its page is one more a forked child would write.
fn reached_without_links(dirfd: c_int, path: *const c_char, follow: bool) -> bool {
    let nofollow = if follow { 0 } else { libc::O_NOFOLLOW };
    match openat2_raw(
        dirfd,
        path,
        libc::O_PATH | libc::O_CLOEXEC | nofollow,
        0,
        NO_LINKS,
    ) {
        Ok(fd) => {
            sys::close(fd);
            true
        }
        Err(_) => false,
    }
}

/// Whether a failed no-links `openat2` hands over to a descriptor that
/// follows links: a link on the way (`ELOOP`), or `openat2` itself
/// refused (`EXDEV`, `ENOSYS`, `EPERM`, `EINVAL` for flags it is stricter
/// about, `EAGAIN`).
#[inline]
pub fn pins(e: c_int) -> bool {
    matches!(
        e,
        libc::ELOOP | libc::EXDEV | libc::ENOSYS | libc::EPERM | libc::EINVAL | libc::EAGAIN
    )
}

/// Whether `e` says no descriptor (or no memory for one) could be had:
/// the object was not looked at, so nothing is known about it.
#[inline]
pub fn no_descriptor(e: c_int) -> bool {
    matches!(e, libc::EMFILE | libc::ENFILE | libc::ENOMEM)
}

/// `path` split before its last segment: the spelling of the directory it
/// lies in and the offset of the last segment (trailing slashes stay with
/// it: they change what the kernel accepts there). The directory is empty
/// when `path` has no `/` before its last segment (the directory is the
/// `dirfd`'s, or the cwd) or is `/` alone.
pub fn split_last(path: &[u8]) -> (&[u8], usize) {
    let trimmed = trim_trailing_slashes(path);
    match trimmed.iter().rposition(|&b| b == b'/') {
        Some(0) if trimmed.len() == 1 => (b"", 0),
        Some(0) => (b"/", 1),
        Some(i) => (&path[..i], i + 1),
        None => (b"", 0),
    }
}

/// An `O_PATH` descriptor that holds an object for a call made on it
/// (closed on drop).
pub struct Held {
    pub fd: c_int,
    /// Reached without following any link: the object is the one the
    /// lexical path names.
    pub without_links: bool,
}

impl Drop for Held {
    fn drop(&mut self) {
        sys::syscall6(libc::SYS_close, [self.fd as c_long, 0, 0, 0, 0, 0]);
    }
}

/// Holds `(dirfd, path)` (NUL-terminated) with `O_PATH | extra`: `openat2`
/// refusing every link first (success proves the lexical path names the
/// object), else, on a link on the way or `openat2` refused, an `openat`
/// that follows them (the kernel's path of the descriptor then names it).
/// The error is the kernel's: the object cannot be reached (the call
/// itself would fail so), or no descriptor is free ([`no_descriptor`]).
/// errno is left alone.
pub fn hold(dirfd: c_int, path: *const c_char, extra: c_int) -> Result<Held, c_int> {
    let flags = libc::O_PATH | libc::O_CLOEXEC | extra;
    if openat2_usable() {
        match openat2_raw(dirfd, path, flags, 0, NO_LINKS) {
            Ok(fd) => {
                return Ok(Held {
                    fd,
                    without_links: true,
                })
            }
            Err(e) if !pins(e) => return Err(e),
            Err(_) => {}
        }
    }
    let fd = sys::syscall6(
        libc::SYS_openat,
        [dirfd as c_long, path as c_long, flags as c_long, 0, 0, 0],
    );
    if fd < 0 {
        return Err(-fd as c_int);
    }
    Ok(Held {
        fd: fd as c_int,
        without_links: false,
    })
}

/// The kernel's path of what `dir` (a held directory) holds under `last`
/// (one segment, perhaps `.`, `..` or with trailing slashes), normalised
/// into `out`; `tmp` takes the directory's path.
pub fn path_in(dir: c_int, last: &[u8], tmp: &mut PathBuf, out: &mut PathBuf) -> Found {
    let n = match sys::fd_object(dir, &mut tmp.buf[..PATH_CAP - 1]) {
        sys::FdObject::Path(n) => n,
        sys::FdObject::Nameless => return Found::Nameless,
        sys::FdObject::Unknown => return Found::Unknown,
    };
    tmp.len = n;
    match ldguard_policy::path::normalize_into(&tmp.buf[..n], last, &mut out.buf[..PATH_CAP - 1]) {
        Some(n) => {
            out.len = n;
            Found::Path
        }
        None => Found::Unknown,
    }
}

/// The kernel's path of the object `fd` holds, into `out`.
pub fn path_of(fd: c_int, out: &mut PathBuf) -> Found {
    match sys::fd_object(fd, &mut out.buf[..PATH_CAP - 1]) {
        sys::FdObject::Path(n) => {
            out.len = n;
            Found::Path
        }
        sys::FdObject::Nameless => Found::Nameless,
        sys::FdObject::Unknown => Found::Unknown,
    }
}

/// What [`kernel_path`] found.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// `out` holds the kernel's path of the object.
    Path,
    /// The object cannot be reached (`ENOENT`, `ENOTDIR`, `EACCES`,
    /// `ELOOP`): the call itself fails the same way.
    Unreachable,
    /// No answer: no descriptor or memory and the `readlink` walk failed
    /// too, no `/proc`, a path longer than `PATH_MAX`.
    Unknown,
    /// An object with no name a path rule can use (a pipe behind
    /// `/dev/stdin`, a namespace behind `/proc/self/ns/mnt`): the spelling
    /// decides.
    Nameless,
}

/// [`resolved_from`]'s error for an object with no path (not an errno).
const NAMELESS: c_int = -1;

/// The path the kernel reaches from `(dirfd, path)` as spelled: an `O_PATH`
/// descriptor's own path ([`resolved`]), else, when that fails for another
/// reason than the object being unreachable (`EMFILE`, `ENFILE`, `ENOMEM`,
/// ...), a `readlink` walk of the spelled-out path ([`walk_links`]).
pub fn kernel_path(
    dirfd: c_int,
    path: &[u8],
    follow: bool,
    scratch: &mut PathBuf,
    out: &mut PathBuf,
) -> Found {
    kernel_path_of(dirfd, path, None, follow, scratch, out)
}

/// [`kernel_path`] for a path already NUL-terminated: the first look at
/// it copies nothing (`scratch` is written only past a missing object).
pub fn kernel_path_c(
    dirfd: c_int,
    path: CPath<'_>,
    follow: bool,
    scratch: &mut PathBuf,
    out: &mut PathBuf,
) -> Found {
    kernel_path_of(dirfd, path.bytes(), Some(path), follow, scratch, out)
}

/// [`kernel_path_c`] for an object that exists and whose kernel path is
/// short: that path read into `out` (the caller's stack), its length
/// returned; `None` when the object cannot be opened or its path does not
/// fit in `out`, and the caller then asks [`kernel_path_c`] (which also
/// walks to a missing object and takes paths up to `PATH_MAX`).
///
/// Why: in a forked child about to exec, the scratch buffer `kernel_path_c`
/// writes is a page the child has not written yet (a page fault, several
/// microseconds, BENCHMARKS.md section 13), while a short buffer in the
/// caller's frame lies in stack the child's hook has written already.
pub fn kernel_path_short(
    dirfd: c_int,
    path: CPath<'_>,
    follow: bool,
    out: &mut [u8],
) -> Option<usize> {
    let extra = if follow { 0 } else { libc::O_NOFOLLOW };
    let flags = libc::O_PATH | libc::O_CLOEXEC | extra;
    let fd = sys::syscall6(
        libc::SYS_openat,
        [
            dirfd as c_long,
            path.ptr() as c_long,
            flags as c_long,
            0,
            0,
            0,
        ],
    );
    if fd < 0 {
        return None;
    }
    let fd = fd as c_int;
    let n = sys::fd_link_raw(fd, out);
    sys::close(fd);
    // A full buffer may be a cut path; a deleted file is named as it was
    // and an object with no path is left to `kernel_path_c` (as in
    // `resolved_from`).
    if n <= 0 || n as usize >= out.len() {
        return None;
    }
    sys::link_name(out, n as usize)
}

#[inline(always)]
fn kernel_path_of(
    dirfd: c_int,
    path: &[u8],
    given: Option<CPath<'_>>,
    follow: bool,
    scratch: &mut PathBuf,
    out: &mut PathBuf,
) -> Found {
    let found = match given {
        Some(c) => resolved_from(dirfd, Some(c), follow, scratch, out),
        None => match scratch.set(&[path]) {
            Some(()) => resolved_from(dirfd, None, follow, scratch, out),
            None => Err(0),
        },
    };
    match found {
        Ok(()) => Found::Path,
        Err(NAMELESS) => Found::Nameless,
        Err(libc::ENOENT | libc::ENOTDIR | libc::EACCES | libc::ELOOP) => Found::Unreachable,
        Err(_) => walked(dirfd, path, follow, scratch, out),
    }
}

/// [`kernel_path`]'s fallback, apart and never inlined: the walk's path
/// buffers (8 KiB of stack) would otherwise be touched by every call, and
/// in a forked child each stack page written is a copy-on-write fault.
#[cold]
#[inline(never)]
fn walked(
    dirfd: c_int,
    path: &[u8],
    follow: bool,
    scratch: &mut PathBuf,
    out: &mut PathBuf,
) -> Found {
    if spelled_out(dirfd, path, scratch).is_some()
        && walk_links(scratch.as_bytes(), follow, out).is_some()
    {
        return Found::Path;
    }
    Found::Unknown
}

/// Why [`open_pinned`] did not open.
pub enum Pinned {
    /// The open failed with this errno, as the plain call would have.
    Failed(c_int),
    /// The decision said no (its errno).
    Denied(c_int),
    /// The kernel's path of the object could not be read (no `/proc`, a
    /// path longer than `PATH_MAX`): nothing was decided.
    Unknown,
}

/// Opens `(dirfd, path)` with the caller's `flags` and `mode` so that the
/// object decided on is the object opened: an `O_PATH` descriptor first
/// (following a final link unless `O_NOFOLLOW` or `O_CREAT|O_EXCL`), then
/// `decide(kernel's path of it)`, then a reopen through `/proc/self/fd/N`.
/// A file to be created is pinned through its parent directory and made
/// with `openat(parent, name)` without following a final link (a dangling
/// link being followed is read and walked, as the kernel would). Returns
/// the new descriptor.
pub fn open_pinned(
    dirfd: c_int,
    path: &[u8],
    flags: c_int,
    mode: u32,
    name: &mut PathBuf,
    kpath: &mut PathBuf,
    decide: impl FnMut(&[u8]) -> Result<(), c_int>,
) -> Result<c_int, Pinned> {
    let fd = pin_and_open(dirfd, path, flags, mode, name, kpath, decide)?;
    Ok(lowest(fd, flags))
}

/// `fd` moved to the lowest free number, as `open` would have returned:
/// the pinned path's own descriptors held lower numbers while it opened
/// (and `close(0); open(...)` must still give 0).
fn lowest(fd: c_int, flags: c_int) -> c_int {
    let cmd = if flags & libc::O_CLOEXEC != 0 {
        libc::F_DUPFD_CLOEXEC
    } else {
        libc::F_DUPFD
    };
    // SAFETY: fcntl on our own new descriptor; not hooked.
    let low = unsafe { libc::fcntl(fd, cmd, 0) };
    if low < 0 || low > fd {
        if low > fd {
            sys::close(low);
        }
        return fd;
    }
    sys::close(fd);
    low
}

#[allow(clippy::too_many_arguments)]
fn pin_and_open(
    dirfd: c_int,
    path: &[u8],
    flags: c_int,
    mode: u32,
    name: &mut PathBuf,
    kpath: &mut PathBuf,
    mut decide: impl FnMut(&[u8]) -> Result<(), c_int>,
) -> Result<c_int, Pinned> {
    let create = flags & libc::O_CREAT != 0;
    let excl = create && flags & libc::O_EXCL != 0;
    let follow = flags & libc::O_NOFOLLOW == 0 && !excl;
    name.set(&[path])
        .ok_or(Pinned::Failed(libc::ENAMETOOLONG))?;
    let mut dir = Fd::borrowed(dirfd);
    for _ in 0..40 {
        let extra = if follow { 0 } else { libc::O_NOFOLLOW };
        let o = Fd::own(sys::open_path(dir.0, name.c_ptr(), extra));
        if o.0 >= 0 {
            match sys::fd_object(o.0, &mut kpath.buf[..PATH_CAP - 1]) {
                sys::FdObject::Path(n) => decide(&kpath.buf[..n]).map_err(Pinned::Denied)?,
                // No name a rule can use: the spelling, decided before, stands.
                sys::FdObject::Nameless => {}
                sys::FdObject::Unknown => return Err(Pinned::Unknown),
            }
            if excl {
                return Err(Pinned::Failed(libc::EEXIST));
            }
            if !follow && is_symlink(o.0) {
                return Err(Pinned::Failed(libc::ELOOP));
            }
            let mut proc = [0u8; 32];
            sys::proc_fd_path(o.0, &mut proc);
            let keep = !(libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW);
            let r = openat_raw(libc::AT_FDCWD, proc.as_ptr().cast(), flags & keep, mode);
            return if r >= 0 {
                Ok(r)
            } else {
                Err(Pinned::Failed(sys::errno()))
            };
        }
        let e = sys::errno();
        if e != libc::ENOENT || !create {
            return Err(Pinned::Failed(e));
        }
        // To be created: pin the parent, decide on where the file will be.
        let whole = name.as_bytes();
        if whole.last() == Some(&b'/') {
            return Err(Pinned::Failed(libc::EISDIR));
        }
        let (parent, last): (&[u8], &[u8]) = match whole.iter().rposition(|&b| b == b'/') {
            Some(0) => (b"/", &whole[1..]),
            Some(i) => (&whole[..i], &whole[i + 1..]),
            None => (b".", whole),
        };
        let mut parent_c = [0u8; PATH_CAP];
        let mut last_c = [0u8; 256];
        if last.len() >= last_c.len() {
            return Err(Pinned::Failed(libc::ENAMETOOLONG));
        }
        parent_c[..parent.len()].copy_from_slice(parent);
        last_c[..last.len()].copy_from_slice(last);
        let p = Fd::own(sys::open_path(
            dir.0,
            parent_c.as_ptr().cast(),
            libc::O_DIRECTORY,
        ));
        if p.0 < 0 {
            return Err(Pinned::Failed(sys::errno()));
        }
        let n = sys::fd_path(p.0, &mut kpath.buf[..PATH_CAP - 1]).ok_or(Pinned::Unknown)?;
        let sep: &[u8] = if n == 1 { b"" } else { b"/" };
        let mut target = PathBuf::new();
        target
            .set(&[&kpath.buf[..n], sep, last])
            .ok_or(Pinned::Failed(libc::ENAMETOOLONG))?;
        decide(target.as_bytes()).map_err(Pinned::Denied)?;
        let r = if openat2_usable() {
            openat2(p.0, last_c.as_ptr().cast(), flags, mode, NO_LINKS)
        } else {
            openat_raw(p.0, last_c.as_ptr().cast(), flags | libc::O_NOFOLLOW, mode)
        };
        if r >= 0 {
            return Ok(r);
        }
        let e = sys::errno();
        if e != libc::ELOOP || !follow {
            return Err(Pinned::Failed(e));
        }
        // A (dangling) symlink as the last segment: continue from its
        // target, relative to the pinned parent.
        let n = readlinkat(p.0, last_c.as_ptr().cast(), &mut kpath.buf[..PATH_CAP - 1])
            .ok_or(Pinned::Failed(libc::ELOOP))?;
        name.set(&[&kpath.buf[..n]])
            .ok_or(Pinned::Failed(libc::ENAMETOOLONG))?;
        dir = p;
    }
    Err(Pinned::Failed(libc::ELOOP))
}

/// `openat` through the raw system call (the library's own `openat` hook
/// must not see it).
fn openat_raw(dirfd: c_int, path: *const c_char, flags: c_int, mode: u32) -> c_int {
    sys::raw_syscall(
        libc::SYS_openat,
        [
            dirfd as c_long,
            path as c_long,
            flags as c_long,
            mode as c_long,
            0,
            0,
        ],
    ) as c_int
}

/// Through the system call: before glibc 2.33 `fstat` is no exported
/// function, and the shipped library must load there.
fn is_symlink(fd: c_int) -> bool {
    // SAFETY: an all-zero stat is valid; the kernel only writes it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let st_ptr = &mut st as *mut libc::stat;
    sys::raw_syscall(
        libc::SYS_fstat,
        [fd as c_long, st_ptr as c_long, 0, 0, 0, 0],
    ) == 0
        && st.st_mode & libc::S_IFMT == libc::S_IFLNK
}

/// `readlinkat(dirfd, name)` into `out`; the target length.
fn readlinkat(dirfd: c_int, name: *const c_char, out: &mut [u8]) -> Option<usize> {
    let n = sys::raw_syscall(
        libc::SYS_readlinkat,
        [
            dirfd as c_long,
            name as c_long,
            out.as_mut_ptr() as c_long,
            out.len() as c_long,
            0,
            0,
        ],
    );
    (n > 0 && (n as usize) < out.len()).then_some(n as usize)
}

/// A descriptor closed on drop when this module opened it.
struct Fd(c_int, bool);

impl Fd {
    fn own(fd: c_int) -> Fd {
        Fd(fd, true)
    }
    fn borrowed(fd: c_int) -> Fd {
        Fd(fd, false)
    }
}

impl Drop for Fd {
    fn drop(&mut self) {
        if self.1 && self.0 >= 0 {
            let saved = sys::errno();
            sys::close(self.0);
            sys::set_errno(saved);
        }
    }
}

/// The path the kernel reaches for an absolute `path`, worked out with
/// `readlink` segment by segment: no descriptor is needed, so this answers
/// when the descriptor table is full. It is a fallback only: between this
/// walk and the call a link could change (a full descriptor table is then
/// part of the attack, and the walk still sees whatever is there now).
pub fn walk_links(path: &[u8], follow: bool, out: &mut PathBuf) -> Option<()> {
    if path.first() != Some(&b'/') {
        return None;
    }
    let mut rest = PathBuf::new();
    rest.set(&[path])?;
    let mut link = PathBuf::new();
    out.set(&[])?;
    let mut hops = 0;
    // `rest` holds what is left to walk; segments are consumed from its front.
    let mut at = 0;
    loop {
        let r = &rest.buf[at..rest.len];
        let start = r.iter().position(|&b| b != b'/').map(|i| at + i);
        let Some(start) = start else { break };
        let end = rest.buf[start..rest.len]
            .iter()
            .position(|&b| b == b'/')
            .map_or(rest.len, |i| start + i);
        let seg_is_last = rest.buf[end..rest.len].iter().all(|&b| b == b'/');
        at = end;
        let seg = &rest.buf[start..end];
        match seg {
            b"." => continue,
            b".." => {
                let keep = out.as_bytes().iter().rposition(|&b| b == b'/').unwrap_or(0);
                out.len = keep;
                out.buf[keep] = 0;
                continue;
            }
            _ => {}
        }
        let before = out.len;
        if before + 1 + seg.len() >= PATH_CAP {
            return None;
        }
        out.buf[before] = b'/';
        out.buf[before + 1..before + 1 + seg.len()].copy_from_slice(seg);
        out.len = before + 1 + seg.len();
        out.buf[out.len] = 0;
        if seg_is_last && !follow {
            break;
        }
        let n = match sys::readlink(&out.buf[..=out.len], &mut link.buf[..PATH_CAP - 1]) {
            Some(n) => n,
            None => continue, // not a link (or missing): the segment stays
        };
        hops += 1;
        if hops > 40 {
            return None;
        }
        // Splice: link target, then whatever was left.
        let mut next = PathBuf::new();
        next.set(&[&link.buf[..n], b"/", &rest.buf[at..rest.len]])?;
        rest.set(&[next.as_bytes()])?;
        at = 0;
        if link.buf[0] == b'/' {
            out.len = 0;
        } else {
            out.len = before;
        }
        out.buf[out.len] = 0;
    }
    if out.len == 0 {
        out.set(&[&b"/"[..]])?;
    }
    Some(())
}

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
    scratch.set(&[path])?;
    resolved_from(dirfd, None, follow, scratch, out).ok()
}

/// [`resolved`] of `given` when there is one (NUL-terminated where it
/// lies, copied into `scratch` only if it names nothing yet), else of the
/// path `scratch` holds. The error: the errno of the step that failed (0
/// when none applies: too long for a buffer, no path for the descriptor).
/// errno itself is not written on the common path (in a forked child its
/// page would be one more fault).
fn resolved_from(
    dirfd: c_int,
    mut given: Option<CPath<'_>>,
    follow: bool,
    scratch: &mut PathBuf,
    out: &mut PathBuf,
) -> Result<(), c_int> {
    let mut dirfd = dirfd;
    // A bounded number of dangling-symlink hops, as the kernel's 40.
    for _ in 0..40 {
        let extra = if follow { 0 } else { libc::O_NOFOLLOW };
        let path = match given {
            Some(c) => c.ptr(),
            None => scratch.c_ptr(),
        };
        let flags = libc::O_PATH | libc::O_CLOEXEC | extra;
        let fd = sys::syscall6(
            libc::SYS_openat,
            [dirfd as c_long, path as c_long, flags as c_long, 0, 0, 0],
        );
        if fd >= 0 {
            let fd = fd as c_int;
            let out_buf = &mut out.buf[..PATH_CAP - 1];
            let n = sys::fd_link_raw(fd, out_buf);
            sys::close(fd);
            if n < 0 {
                return Err(-n as c_int);
            }
            if n as usize >= out_buf.len() {
                return Err(0);
            }
            out.len = sys::link_name(out_buf, n as usize).ok_or(NAMELESS)?;
            return Ok(());
        }
        if fd != -(libc::ENOENT as c_long) {
            return Err(-fd as c_int);
        }
        if let Some(c) = given.take() {
            scratch.set(&[c.bytes()]).ok_or(0)?;
        }
        // Missing: resolve the parent, then look at the last segment. Its
        // failures are told by errno, which says `ENOENT` (this open's)
        // when no step of it failed with another.
        sys::set_errno(libc::ENOENT);
        match past_missing(dirfd, follow, scratch, out).ok_or_else(sys::errno)? {
            Missing::Done => return Ok(()),
            Missing::Continue => dirfd = libc::AT_FDCWD,
        }
    }
    Err(0)
}

/// Where [`resolved`] goes on from a missing object.
enum Missing {
    /// `out` holds the path the object would have.
    Done,
    /// `scratch` now holds a dangling symlink's target (absolute or
    /// relative to the cwd): look again.
    Continue,
}

/// [`resolved`]'s path for a missing object: resolve the parent, then look
/// at the last segment. Apart and never inlined: its four path buffers
/// (16 KiB of stack) would otherwise be touched by every call, and in a
/// forked child each stack page written is a copy-on-write fault.
#[cold]
#[inline(never)]
fn past_missing(
    dirfd: c_int,
    follow: bool,
    scratch: &mut PathBuf,
    out: &mut PathBuf,
) -> Option<Missing> {
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
            Some(Missing::Continue)
        }
        None => {
            let sep: &[u8] = if dir.as_bytes() == b"/" { b"" } else { b"/" };
            let n = ldguard_policy::path::normalize_into(
                b"/",
                [dir.as_bytes(), sep, last].concat_into(&mut link.buf)?,
                &mut out.buf[..PATH_CAP - 1],
            )?;
            out.len = n;
            Some(Missing::Done)
        }
    }
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

    /// The directory and the name a call on a last name is made with: the
    /// name keeps its trailing slashes, and a path with no `/` before its
    /// last segment (or `/` alone) has no directory of its own.
    #[test]
    fn split_last_keeps_what_the_kernel_reads() {
        let cases: [(&[u8], &[u8], &[u8]); 10] = [
            (b"f", b"", b"f"),
            (b"d/", b"", b"d/"),
            (b"/", b"", b"/"),
            (b"", b"", b""),
            (b"/f", b"/", b"f"),
            (b"a/b", b"a", b"b"),
            (b"a/b//", b"a", b"b//"),
            (b"a//b", b"a/", b"b"),
            (b"/x/y/..", b"/x/y", b".."),
            (b"//f", b"/", b"f"),
        ];
        for (path, dir, name) in cases {
            let (d, at) = split_last(path);
            assert_eq!(
                (d, &path[at..]),
                (dir, name),
                "{:?}",
                String::from_utf8_lossy(path)
            );
        }
    }

    fn tmp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("ldguard-resolve-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::canonicalize(d).unwrap()
    }

    /// `kernel_path_short` answers what `kernel_path_c` answers when the
    /// path fits, and `None` (the caller's fallback) when it does not fit,
    /// when the object is missing, and for a dangling link.
    #[test]
    fn kernel_path_short_agrees_with_kernel_path_or_declines() {
        let d = tmp("kshort");
        std::fs::create_dir_all(d.join("real/sub")).unwrap();
        std::fs::write(d.join("real/sub/prog"), b"x").unwrap();
        std::os::unix::fs::symlink(d.join("real"), d.join("lnk")).unwrap();
        std::os::unix::fs::symlink(d.join("nowhere"), d.join("dangling")).unwrap();
        let given = format!("{}/lnk/sub/prog\0", d.display());
        let c = CPath::new(given.as_bytes()).unwrap();
        let (mut s, mut o) = (PathBuf::new(), PathBuf::new());
        assert!(matches!(
            kernel_path_c(libc::AT_FDCWD, c, true, &mut s, &mut o),
            Found::Path
        ));
        let want = format!("{}/real/sub/prog", d.display());
        assert_eq!(o.as_bytes(), want.as_bytes());
        let mut short = [0u8; 256];
        let n = kernel_path_short(libc::AT_FDCWD, c, true, &mut short).unwrap();
        assert_eq!(&short[..n], want.as_bytes());
        // Exactly as long as the buffer (a cut path) or longer: declined.
        let mut tight = vec![0u8; want.len()];
        assert_eq!(kernel_path_short(libc::AT_FDCWD, c, true, &mut tight), None);
        let mut roomy = vec![0u8; want.len() + 1];
        assert_eq!(
            kernel_path_short(libc::AT_FDCWD, c, true, &mut roomy),
            Some(want.len())
        );
        for missing in ["missing/prog", "dangling"] {
            let g = format!("{}/{missing}\0", d.display());
            let c = CPath::new(g.as_bytes()).unwrap();
            assert_eq!(
                kernel_path_short(libc::AT_FDCWD, c, true, &mut short),
                None,
                "{missing}"
            );
        }
        std::fs::remove_dir_all(&d).unwrap();
    }

    /// `c_len` against a byte count, for every start offset within a
    /// block and every length up to five blocks, with the non-NUL bytes
    /// and the bytes after the NUL both varied; and for strings that end
    /// at the last byte of a page followed by an unreadable page (a read
    /// past the block of the NUL would fault).
    #[test]
    fn c_len_counts_every_length_and_alignment_without_reading_past_the_page() {
        let mut buf = vec![0u8; 256];
        for fill_after in [0u8, b'a', 0xff] {
            for start in 0..32 {
                for len in 0..90 {
                    buf.iter_mut().for_each(|b| *b = fill_after);
                    for (i, b) in buf[start..start + len].iter_mut().enumerate() {
                        *b = 1 + (i % 255) as u8;
                    }
                    buf[start + len] = 0;
                    // SAFETY: a NUL at `start + len` inside `buf`.
                    let n = unsafe { c_len(buf.as_ptr().add(start).cast()) };
                    assert_eq!(n, len, "start {start}, len {len}, after {fill_after}");
                }
            }
        }
        // SAFETY: an anonymous mapping of two pages, the second made
        // unreadable; unmapped at the end.
        unsafe {
            let page = 4096;
            let m = libc::mmap(
                std::ptr::null_mut(),
                2 * page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            assert_ne!(m, libc::MAP_FAILED);
            assert_eq!(
                libc::mprotect(m.cast::<u8>().add(page).cast(), page, libc::PROT_NONE),
                0
            );
            let base = m.cast::<u8>();
            std::ptr::write_bytes(base, b'x', page);
            *base.add(page - 1) = 0;
            for len in 0..200 {
                let p = base.add(page - 1 - len);
                assert_eq!(c_len(p.cast()), len, "len {len} ending at the page's end");
            }
            libc::munmap(m, 2 * page);
        }
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

    /// Relative paths joined without normalisation (the plain ones) give
    /// exactly what normalisation gives, against a dirfd and against `/`.
    #[test]
    fn relative_paths_join_as_normalisation_would() {
        let d = tmp("join");
        let dir = std::fs::File::open(&d).unwrap();
        let root = std::fs::File::open("/").unwrap();
        let (mut s, mut o) = (PathBuf::new(), PathBuf::new());
        let cases = [
            "x",
            "./x",
            "././d000/f00005.txt",
            "a/b/c",
            ".hidden/x",
            "a/.b",
            "..x/y",
            "a.",
            ".",
            "./",
            "..",
            "./../x",
            "a//b",
            "a/./b",
            "a/../b",
            "a/",
            "./.",
            ".//x",
            "a/.",
            "a/..",
            "",
            "x/..hidden",
            "./a/b/./c",
        ];
        for (fd, base) in [
            (dir.as_raw_fd(), d.to_str().unwrap()),
            (root.as_raw_fd(), "/"),
        ] {
            for case in cases {
                let want = ldguard_policy::path::normalize(base.as_bytes(), case.as_bytes());
                absolute(fd, case.as_bytes(), &mut s, &mut o).unwrap();
                assert_eq!(
                    String::from_utf8_lossy(o.as_bytes()),
                    String::from_utf8_lossy(&want),
                    "{base} + {case}"
                );
            }
        }
        // The common spellings take the join; the others normalise.
        for case in [
            "x",
            "./x",
            "././d000/f00005.txt",
            ".hidden/x",
            "a/.b",
            "..x/y",
            "a.",
        ] {
            assert!(plain_relative(case.as_bytes()).is_some(), "{case}");
        }
        for case in [
            ".", "./", "..", "./../x", "a//b", "a/./b", "a/../b", "a/", ".//x", "",
        ] {
            assert!(plain_relative(case.as_bytes()).is_none(), "{case}");
        }
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

    #[test]
    fn plain_paths_are_exactly_the_normal_absolute_ones() {
        for p in [
            "/",
            "/etc",
            "/a/.b/..c/...",
            "/usr/lib/x.so",
            "/a/b.",
            "/usr/lib/x86_64-linux-gnu/.hidden/libc.so.6",
        ] {
            assert!(is_plain(p.as_bytes()), "{p}");
            assert_eq!(
                ldguard_policy::path::normalize(b"/", p.as_bytes()),
                p.as_bytes()
            );
        }
        for p in [
            "",
            "etc",
            "/etc/",
            "//etc",
            "/a//b",
            "/a/./b",
            "/a/../b",
            "/a/.",
            "/a/..",
            "/.",
            "/..",
            "./a",
            "/usr/lib/x86_64-linux-gnu//libc.so.6",
            "/usr/lib/x86_64-linux-gnu/./libc.so.6",
            "/usr/lib/x86_64-linux-gnu/libc.so.6/..",
            "/usr/lib/x86_64-linux-gnu/libc.so.6/.",
            "/usr/lib/x86_64-linux-gnu/libc.so.6/",
        ] {
            assert!(!is_plain(p.as_bytes()), "{p}");
        }
    }

    /// The word-at-a-time pair scan never misses a `//` or `/.`, at any
    /// offset or length (word boundaries, the overlapping last word), and
    /// so `is_plain` is exactly "absolute and normal".
    #[test]
    fn the_pair_scan_misses_no_pair() {
        let alphabet = [b'/', b'.', b'a', 0x01, 0x2f ^ 0x2e, 0xff, 0x00, b'0'];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..200_000 {
            let n = (next() % 70) as usize + 1;
            let mut p: Vec<u8> = (0..n).map(|_| alphabet[(next() % 8) as usize]).collect();
            if next() % 2 == 0 {
                p[0] = b'/';
            }
            let pair = p
                .windows(2)
                .any(|w| w[0] == b'/' && (w[1] == b'/' || w[1] == b'.'));
            assert!(
                !pair || slash_then_slash_or_dot(&p),
                "missed a pair in {p:?}"
            );
            let normal = p[0] == b'/'
                && (n == 1 || (p[n - 1] != b'/' && ldguard_policy::path::is_normal(&p)));
            assert_eq!(is_plain(&p), normal, "{p:?}");
            // The rule index trusts "no `/.`" (`plain`'s `Some(true)`).
            if plain(&p) == Some(true) {
                assert!(!p.windows(2).any(|w| w == b"/."), "{p:?}");
            }
        }
        // Every offset of each pair in an otherwise plain path.
        for n in 2..70 {
            for at in 0..n - 1 {
                for second in [b'/', b'.'] {
                    let mut p = vec![b'x'; n];
                    p[at] = b'/';
                    p[at + 1] = second;
                    assert!(slash_then_slash_or_dot(&p), "n {n} at {at}");
                }
            }
        }
    }

    #[test]
    fn the_readlink_walk_agrees_with_the_kernel() {
        let d = tmp("walk");
        std::fs::create_dir_all(d.join("real/sub")).unwrap();
        std::fs::write(d.join("real/f"), "x").unwrap();
        std::os::unix::fs::symlink(d.join("real"), d.join("abs")).unwrap();
        std::os::unix::fs::symlink("real/sub", d.join("rel")).unwrap();
        std::os::unix::fs::symlink("f", d.join("real/lf")).unwrap();
        std::os::unix::fs::symlink("/usr/lib", d.join("lib")).unwrap();
        let p = |s: &str| format!("{}/{s}", d.display());
        for (case, follow) in [
            ("abs/f", true),
            ("rel/../f", true),
            ("abs/lf", true),
            ("abs/lf", false),
            ("abs/./sub//..", true),
            ("lib/../bin", true),
        ] {
            let mut out = PathBuf::new();
            walk_links(p(case).as_bytes(), follow, &mut out).unwrap();
            let kernel = res(libc::AT_FDCWD, &p(case), follow).unwrap();
            assert_eq!(String::from_utf8_lossy(out.as_bytes()), kernel, "{case}");
        }
    }
}

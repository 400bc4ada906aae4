//! Who is running on this thread: the program, a hook deciding a call, or
//! the library doing its own work.
//!
//! - A hook deciding a call holds a [`Guard`] (check level 1). The decision
//!   itself calls no hooked function, so a hook entered while a guard is
//!   held can only come from a signal handler that interrupted the
//!   decision: it is checked too, one level deeper ([`MAX_CHECK_DEPTH`]
//!   levels, each with its own scratch buffers).
//! - The library's own work (reading the configuration and policy, opening
//!   the event sink, starting threads) runs in an [`Internal`] section:
//!   hooks pass its calls straight through, and every signal is blocked
//!   for its duration, so no program signal handler runs unchecked inside it.
//! - The library's threads (`ldguard-events`, `ldguard-refresh`) are
//!   internal for life and are created with every signal blocked
//!   ([`spawn_library_thread`]): a signal sent to them with `tgkill` stays
//!   pending and never runs a handler there.
//!
//! The thread's cache of recent silent allows ([`recent`]) lives in the
//! same per-thread mapping as its path buffers ([`scratch`]), which every
//! checking thread makes anyway: a repeated open pays one thread-local
//! access and one load for it, and a thread (or a process) that checks
//! nothing carries no cache at all.
//!
//! `const` initialiser and no destructor: no destructor is registered and
//! the first access allocates nothing, so this is safe from any hook,
//! signal handlers and `calloc`-triggered re-entry included.

use std::cell::Cell;
use std::sync::atomic::AtomicPtr;

/// Nested checks a thread can be in at once: a hook, and a hook in a signal
/// handler that interrupted it. A third level (a signal inside the
/// handler's own check) passes through; see docs/preload.md.
pub const MAX_CHECK_DEPTH: u8 = 2;
/// The library's own work: every hook passes through.
pub const INTERNAL: u8 = u8::MAX;

/// What the library keeps per thread: all zero bytes at thread start
/// (depth 0, empty cache, no scratch area yet).
///
/// The fields every check writes come last: the block lies just below the
/// thread descriptor (when the program itself has no thread-locals), and
/// a forked child has already written the descriptor's page (the kernel
/// stores the child's thread id there), so `depth` there costs the child
/// no page fault of its own; at the start of the block it cost one.
#[repr(C)]
pub struct PerThread {
    /// This thread's path buffers and cache ([`scratch::Area`]), mapped on first use.
    scratch: AtomicPtr<scratch::Area>,
    /// libc's errno slot of this thread ([`errno_slot`]), asked once.
    errno: Cell<*mut libc::c_int>,
    /// Repeated opens since the last refresh poll ([`poll_due`]).
    hits: Cell<u8>,
    depth: Cell<u8>,
}

/// Room for one level's path buffers (`resolve::Scratch`, which checks at
/// compile time that it fits and needs no stricter alignment).
pub const SCRATCH_BYTES: usize = 3 * (libc::PATH_MAX as usize + 8);
/// Room for one level's exec chain buffers (`hooks::exec`'s, checked there
/// the same way).
pub const CHAIN_BYTES: usize = 4 * (libc::PATH_MAX as usize + 8);

#[repr(C, align(8))]
pub struct ScratchBytes(pub [u8; SCRATCH_BYTES]);

#[repr(C, align(8))]
pub struct ChainBytes(pub [u8; CHAIN_BYTES]);

/// This thread's path buffers for check `level` (0 or 1): any bytes (only
/// zero bytes the first time). Callers make the access exclusive (one set
/// per level). `None` when no memory could be mapped for them: the caller
/// then uses buffers of its own.
#[inline(always)]
pub fn scratch_bytes(level: usize) -> Option<*mut ScratchBytes> {
    scratch::area().map(|a| {
        // SAFETY: `a` is this thread's live area; only a field address is
        // formed, nothing is read.
        unsafe { std::ptr::addr_of_mut!((*a).levels[level].0) }
    })
}

/// The set of per-thread buffers the current check uses (0 or 1): its check
/// level, so that a signal handler's hook that interrupts a check does not
/// write over the buffers that check is using. Callers hold a check guard.
#[inline(always)]
pub fn scratch_level() -> usize {
    usize::from(check_depth().clamp(1, MAX_CHECK_DEPTH) - 1)
}

/// This thread's exec chain buffers for check `level`, as [`scratch_bytes`].
#[inline(always)]
pub fn chain_bytes(level: usize) -> Option<*mut ChainBytes> {
    scratch::area().map(|a| {
        // SAFETY: as in `scratch_bytes`.
        unsafe { std::ptr::addr_of_mut!((*a).levels[level].1) }
    })
}

/// The path buffers live in a private anonymous mapping made the first time
/// a thread checks a call, not in the thread-local block: the loader
/// zero-fills the static TLS block of every thread (the start of every
/// process, each `pthread_create`), which for its 24.6 KB of buffers was 8 page
/// faults and a memset in every process, checking or not. A mapping's pages
/// are faulted in only where a check writes. A `pthread_key` destructor
/// unmaps it when the thread exits (std's thread-local destructors allocate
/// when registered; a key's value is set without allocating: glibc keeps
/// the first 32 keys in the thread descriptor, musl all of them).
///
/// Signal handlers: a hook in a handler that interrupts the first mapping
/// maps its own area; the pointer is installed with a compare-and-swap on
/// this thread's slot, so the loser unmaps its area and both use the
/// winner's. A forked child inherits the mapping (copy-on-write) with the
/// pointer and key value; a vfork or `posix_spawn` child shares both with
/// its parent's thread.
pub mod scratch {
    use super::{this_thread, ChainBytes, ScratchBytes, MAX_CHECK_DEPTH};
    use std::ffi::{c_int, c_void};
    use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

    /// The cache first: 4 KiB, one page of its own, and the path buffers
    /// after it start on a page as before.
    #[repr(C)]
    pub struct Area {
        pub recent: super::recent::Slots,
        pub levels: [(ScratchBytes, ChainBytes); MAX_CHECK_DEPTH as usize],
        /// A descriptor held across a call that is a cancellation point,
        /// plus one (0: none); see [`hold_across_call`].
        held: AtomicI32,
    }

    const SIZE: usize = std::mem::size_of::<Area>();
    /// The key whose destructor unmaps a thread's area, plus one (0: none).
    static KEY: AtomicU32 = AtomicU32::new(0);

    /// Creates the thread-exit hook. Called once, from the library's
    /// initialisation (never from a hook: musl's `pthread_key_create` takes
    /// a lock). Without it (creation failed, or glibc handed out a key that
    /// it stores in memory it allocates), checks use stack buffers.
    pub fn prepare() {
        if KEY.load(Ordering::Acquire) != 0 {
            return;
        }
        let mut key: libc::pthread_key_t = 0;
        // SAFETY: `key` is a valid out-pointer; `release` has the
        // destructor's signature and never unwinds.
        if unsafe { libc::pthread_key_create(&mut key, Some(release)) } != 0 {
            return;
        }
        // glibc's second-level key storage is `calloc`ed on first set.
        if cfg!(target_env = "gnu") && key >= 32 {
            // SAFETY: the key was just created and holds no value.
            unsafe { libc::pthread_key_delete(key) };
            return;
        }
        KEY.store(key + 1, Ordering::Release);
    }

    /// Before a fork, in the forking thread (checks on): its area mapped
    /// now, so that a child that checks its exec inherits it (the pointer
    /// and the key's value) instead of mapping its own: in the child,
    /// `mmap`, `pthread_setspecific` and their first binding were pages
    /// faulted in just for that. Once per thread that forks. Its errno
    /// slot is asked for the same reason ([`super::errno_slot`]).
    pub fn before_fork() {
        let _ = area();
        let _ = super::errno_slot();
    }

    /// This thread's area, mapped on first use; `None` without a
    /// thread-exit hook or when the mapping fails.
    #[inline(always)]
    pub fn area() -> Option<*mut Area> {
        let p = this_thread().scratch.load(Ordering::Relaxed);
        if !p.is_null() {
            return Some(p);
        }
        map()
    }

    #[cfg(test)]
    thread_local! {
        /// Tests: this thread's mappings fail.
        pub static REFUSE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    #[cold]
    #[inline(never)]
    fn map() -> Option<*mut Area> {
        #[cfg(test)]
        if REFUSE.with(|r| r.get()) {
            return None;
        }
        let key = KEY.load(Ordering::Acquire).checked_sub(1)?;
        let fresh = crate::os::sys::map_anonymous(SIZE)?.cast::<Area>();
        let slot = &this_thread().scratch;
        match slot.compare_exchange(
            std::ptr::null_mut(),
            fresh,
            Ordering::Relaxed,
            Ordering::Relaxed,
        ) {
            Ok(_) => {
                // SAFETY: `key` was created by `prepare`; below 32 on glibc
                // (stored in the thread descriptor, no allocation), any on
                // musl (stored in the per-thread array made with the thread).
                unsafe { libc::pthread_setspecific(key, fresh.cast::<c_void>()) };
                Some(fresh)
            }
            // A signal handler's hook mapped one meanwhile: use it.
            Err(theirs) => {
                // `fresh` is our own mapping, never published.
                crate::os::sys::unmap(fresh.cast(), SIZE);
                Some(theirs)
            }
        }
    }

    /// The key's destructor, run by the exiting thread itself. The slot is
    /// cleared first: a later destructor's hooked call maps a new area (and
    /// sets the key again, so it is released in the next round).
    extern "C" fn release(area: *mut c_void) {
        let slot = &this_thread().scratch;
        let _ = slot.compare_exchange(
            area.cast::<Area>(),
            std::ptr::null_mut(),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        // SAFETY: `area` is the mapping `map` made for this thread and set
        // as its key value; this thread is exiting and no check is running
        // on it (destructors run after its start routine returned).
        unsafe {
            // A held call the thread was cancelled in.
            let held = (*area.cast::<Area>()).held.load(Ordering::Relaxed);
            if held > 0 {
                crate::os::sys::close(held - 1);
            }
            libc::munmap(area, SIZE)
        };
    }

    /// Registers `fd`, which the library holds across a call that is a
    /// cancellation point (`connect` or a send to a unix socket file): a
    /// cancellation acting in the call unwinds past the holder's own
    /// `close`, and the thread-exit hook then closes it. Returns what to
    /// hand [`end_hold`] (a signal handler's held call nests inside).
    pub fn hold_across_call(fd: c_int) -> c_int {
        match area() {
            // SAFETY: this thread's own live mapping.
            Some(a) => unsafe { (*a).held.swap(fd + 1, Ordering::Relaxed) },
            None => 0,
        }
    }

    /// The held call returned: its descriptor is the holder's to close.
    pub fn end_hold(previous: c_int) {
        let p = this_thread().scratch.load(Ordering::Relaxed);
        // SAFETY: this thread's own live mapping, when it has one.
        if let Some(a) = unsafe { p.as_ref() } {
            a.held.store(previous, Ordering::Relaxed);
        }
    }

    /// Whether this thread has mapped its area (tests).
    #[cfg(test)]
    pub fn mapped() -> bool {
        !this_thread().scratch.load(Ordering::Relaxed).is_null()
    }

    #[cfg(test)]
    pub fn key() -> Option<u32> {
        KEY.load(Ordering::Acquire).checked_sub(1)
    }
}

/// On x86_64 the block is an initial-exec thread-local defined here in
/// assembly (Rust's `thread_local!` in a shared library is general-dynamic:
/// every access calls `__tls_get_addr`, 11 instructions of the loader's).
/// Its address is the thread pointer plus an offset the loader writes once
/// into the GOT: two instructions. A library loaded at start-up
/// (`LD_PRELOAD`, `/etc/ld.so.preload`) has its thread-locals in the static
/// TLS block either way, so this changes no thread's memory; a `dlopen` of
/// the library (never done: it only works preloaded) would be refused by
/// the loader instead of running unchecked.
#[cfg(target_arch = "x86_64")]
mod block {
    use super::PerThread;

    std::arch::global_asm!(
        ".pushsection .tbss,\"awT\",@nobits",
        ".p2align {align}",
        ".globl ldguard_per_thread",
        ".hidden ldguard_per_thread",
        ".type ldguard_per_thread,@object",
        ".size ldguard_per_thread,{size}",
        "ldguard_per_thread:",
        ".zero {size}",
        ".popsection",
        align = const std::mem::align_of::<PerThread>().trailing_zeros(),
        size = const std::mem::size_of::<PerThread>(),
    );

    /// This thread's block.
    #[inline(always)]
    pub fn get() -> *const PerThread {
        let p: *const PerThread;
        // SAFETY: reads the GOT entry of a thread-local of this object and
        // the thread pointer (`%fs:0` holds its own address on x86_64 with
        // glibc and musl); writes only `p`. `nomem`: both words it reads
        // are written once (the loader's relocation, the thread's start)
        // and never change while code of this thread runs, so the result
        // may be reused across calls and stores (it was recomputed after
        // each: about a dozen instructions per cold open).
        unsafe {
            std::arch::asm!(
                "mov {p}, qword ptr [rip + ldguard_per_thread@GOTTPOFF]",
                "add {p}, qword ptr fs:[0]",
                p = out(reg) p,
                options(pure, nomem, nostack),
            );
        }
        p
    }
}

/// Elsewhere: a `thread_local!` with a `const` initialiser and no
/// destructor (no allocation, no registration on first access).
#[cfg(not(target_arch = "x86_64"))]
mod block {
    use super::PerThread;
    use std::cell::Cell;
    use std::sync::atomic::AtomicPtr;

    thread_local! {
        static THREAD: PerThread = const {
            PerThread {
                scratch: AtomicPtr::new(std::ptr::null_mut()),
                errno: Cell::new(std::ptr::null_mut()),
                hits: Cell::new(0),
                depth: Cell::new(0),
            }
        };
    }

    #[inline(always)]
    pub fn get() -> *const PerThread {
        THREAD.with(|t| t as *const PerThread)
    }
}

/// This thread's block. `&'static` is sound here: the block lives as long
/// as the thread and has no destructor, and `PerThread` is neither `Send`
/// nor `Sync`, so the reference cannot leave the thread.
#[inline(always)]
pub(crate) fn this_thread() -> &'static PerThread {
    // SAFETY: see above; the pointer is this thread's own block, whose
    // all-zero initial bytes are a valid `PerThread`.
    unsafe { &*block::get() }
}

/// This thread's errno: libc's slot, whose address is asked of libc
/// (`__errno_location`) once per thread and kept in the thread's block.
/// It never changes for the life of a thread, and a forked child's thread
/// has it at the same address; a vfork child runs on its parent's thread
/// and uses that thread's slot, as libc does. In a forked child the
/// function's page was one more fault for every exec check.
#[inline(always)]
pub fn errno_slot() -> *mut libc::c_int {
    let t = this_thread();
    let p = t.errno.get();
    if !p.is_null() {
        return p;
    }
    first_errno_slot(t)
}

#[cold]
#[inline(never)]
fn first_errno_slot(t: &PerThread) -> *mut libc::c_int {
    // SAFETY: no preconditions; the slot is valid for the thread's life.
    let p = unsafe { libc::__errno_location() };
    t.errno.set(p);
    p
}

/// Whether a repeated open (the cache hit, which takes no other step of
/// a hooked call) makes the refresh poll this time: one in sixteen. The
/// poll's countdown (a forked child's refresher, a policy file's first
/// re-read) then counts sixteen such opens as one call; a lost count (a
/// signal handler's open between the load and the store) only delays it.
#[inline(always)]
pub fn poll_due() -> bool {
    let t = this_thread();
    let n = t.hits.get().wrapping_add(1);
    t.hits.set(n);
    n.is_multiple_of(16)
}

/// This thread's check level.
#[inline(always)]
fn with_depth<R>(f: impl FnOnce(&Cell<u8>) -> R) -> R {
    f(&this_thread().depth)
}

/// Proof that this thread is deciding a call; restores the previous level
/// when dropped.
pub struct Guard {
    previous: u8,
}

impl Guard {
    /// Enters one check level, or returns `None` when the library is doing
    /// its own work on this thread or the nesting limit is reached.
    #[inline]
    pub fn enter() -> Option<Guard> {
        with_depth(|depth| {
            let previous = depth.get();
            if previous >= MAX_CHECK_DEPTH {
                return None;
            }
            depth.set(previous + 1);
            Some(Guard { previous })
        })
    }
}

impl Drop for Guard {
    #[inline]
    fn drop(&mut self) {
        with_depth(|depth| depth.set(self.previous));
    }
}

/// The check level this thread is at: 0 outside any hook, 1 in a hook's
/// decision, 2 in a signal handler's hook that interrupted one.
#[inline]
pub fn check_depth() -> u8 {
    with_depth(Cell::get)
}

/// A section of the library's own work: hooked calls pass through and
/// signals wait until it ends.
pub struct Internal {
    previous: u8,
    mask: u64,
}

impl Internal {
    /// Enters an internal section. `None` when this thread is already
    /// internal (nothing to do) — callers then run their work as is.
    pub fn enter() -> Option<Internal> {
        let previous = with_depth(Cell::get);
        if previous == INTERNAL {
            return None;
        }
        let mask = block_all_signals();
        with_depth(|depth| depth.set(INTERNAL));
        Some(Internal { previous, mask })
    }
}

impl Drop for Internal {
    fn drop(&mut self) {
        with_depth(|depth| depth.set(self.previous));
        set_signal_mask(libc::SIG_SETMASK, self.mask);
    }
}

/// Every signal but the C library's own, as the kernel's mask (bit n - 1
/// for signal n): glibc's `pthread_sigmask` keeps its thread cancellation
/// and set*id signals (32, 33) open, musl's `sigfillset` its timer,
/// cancellation and synccall signals (32, 33, 34). Blocked on one thread,
/// a `setuid` or a cancellation in another would wait for it forever.
#[cfg(target_env = "musl")]
const ALL_SIGNALS: u64 = !(0b111 << 31);
#[cfg(not(target_env = "musl"))]
const ALL_SIGNALS: u64 = !(0b11 << 31);

/// Blocks every signal on this thread but the C library's own; returns
/// the previous mask.
fn block_all_signals() -> u64 {
    set_signal_mask(libc::SIG_BLOCK, ALL_SIGNALS)
}

/// `rt_sigprocmask(how, set)`, the system call as libc's `pthread_sigmask`
/// makes it: here, `sigfillset` and `pthread_sigmask` were two lazy
/// bindings (~1.6k instructions) in every process's start-up. Returns the
/// previous mask (all blocked if the call failed, which with these
/// arguments it cannot).
fn set_signal_mask(how: libc::c_int, set: u64) -> u64 {
    let mut old = u64::MAX;
    crate::os::sys::syscall6(
        libc::SYS_rt_sigprocmask,
        [
            how as libc::c_long,
            &set as *const u64 as libc::c_long,
            &mut old as *mut u64 as libc::c_long,
            std::mem::size_of::<u64>() as libc::c_long,
            0,
            0,
        ],
    );
    old
}

/// Starts one of the library's threads: internal for its whole life, and
/// created with every signal blocked (a new thread inherits its creator's
/// mask, so no handler can run on it even before its first instruction).
pub fn spawn_library_thread(
    name: &str,
    stack_size: usize,
    body: impl FnOnce() + Send + 'static,
) -> std::io::Result<()> {
    let section = Internal::enter();
    let counted = crate::os::quiesce::Counted::new();
    let spawned = crate::os::sys::spawn_thread(
        name,
        stack_size,
        Box::new(move || {
            let _counted = counted;
            with_depth(|depth| depth.set(INTERNAL));
            // Also when created from an already internal thread.
            let _ = block_all_signals();
            body();
        }),
    );
    drop(section);
    spawned
}

/// A per-thread cache of file paths recently decided as silent allows, so
/// a program that opens the same files again and again (nginx per
/// request, python's imports) pays a length, a hash and a compare instead
/// of the rule table. Keyed by the table (tables are never freed, so its
/// address is a generation that a refresh changes), the accesses asked
/// (read, write, both) and the exact path bytes: a hit is only ever the
/// same question. Only normal absolute paths are kept, so a hit also
/// proves the path needs no normalisation, and whether the table needs
/// the kernel's path for those accesses is kept with it.
///
/// No allocation, no lock. Signal handlers: slots are written only at
/// check level 1 and read only at levels 0 (the open fast path, which
/// raises the level to 1 while it reads) and 1, so a handler that
/// interrupts a read or a write runs at level 2 and touches no slot. A
/// forked child inherits the slots with the tables they name: still true.
///
/// The slots are in the thread's [`scratch::Area`](super::scratch::Area),
/// not in the static thread-local block: the loader zero-fills that block
/// in every process and for every thread (4 KiB of it were the slots, one
/// or two fresh pages per process: BENCHMARKS.md section 23). A thread
/// without an area yet has an empty cache: a miss, and nothing is
/// remembered until its first check maps the area.
pub mod recent {
    use super::{this_thread, PerThread};
    use std::sync::atomic::{compiler_fence, Ordering};

    const SLOTS: usize = 32;
    /// Longer paths are not cached.
    pub const KEY: usize = 112;

    #[derive(Clone, Copy)]
    pub struct Slot {
        table: usize,
        len: u8,
        access: u8,
        needs: bool,
        path: [u8; KEY],
    }

    pub type Slots = [Slot; SLOTS];

    /// Bit of `access` for a read; [`WRITE`] for a write.
    pub const READ: u8 = 1;
    pub const WRITE: u8 = 2;

    #[inline]
    fn word(p: &[u8], at: usize) -> u64 {
        let mut w = [0u8; 8];
        w.copy_from_slice(&p[at..at + 8]);
        u64::from_le_bytes(w)
    }

    /// The slot for `path` (`8 <= len <= KEY`): its length, middle and
    /// last eight bytes, mixed. Paths of one directory share their start;
    /// `__init__.py`s of one tree share their end.
    #[inline(always)]
    fn slot_of(path: &[u8]) -> usize {
        let n = path.len();
        let mix = word(path, n - 8) ^ word(path, n / 2 - 4).rotate_left(29) ^ n as u64;
        (mix.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 59) as usize % SLOTS
    }

    /// Whether `a` and `b` (same length, at least 8) are equal, eight bytes
    /// at a time (the last word overlaps the one before), differences
    /// gathered without a branch per word.
    #[inline(always)]
    fn same(a: &[u8], b: &[u8]) -> bool {
        let n = a.len();
        if n < 8 || b.len() != n {
            return a == b;
        }
        #[cfg(target_arch = "x86_64")]
        if n >= 16 {
            return same_sse2(a, b);
        }
        let at = |p: &[u8], i: usize| {
            // SAFETY: callers pass `i + 8 <= n`, the length of both slices.
            unsafe { p.as_ptr().add(i).cast::<u64>().read_unaligned() }
        };
        let mut diff = at(a, n - 8) ^ at(b, n - 8);
        let mut i = 0;
        while i + 8 < n {
            diff |= at(a, i) ^ at(b, i);
            i += 8;
        }
        diff == 0
    }

    /// [`same`] sixteen bytes at a time (SSE2, in every x86_64), for
    /// `n >= 16`: the last block overlaps the one before.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn same_sse2(a: &[u8], b: &[u8]) -> bool {
        use std::arch::x86_64::{_mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8};
        let n = a.len();
        debug_assert!(n >= 16 && b.len() == n);
        let equal = |i: usize| {
            debug_assert!(i + 16 <= n);
            // SAFETY: SSE2 is part of the x86_64 baseline; callers pass
            // `i + 16 <= n`, the length of both slices, and unaligned
            // loads need no alignment.
            unsafe {
                let x = _mm_loadu_si128(a.as_ptr().add(i).cast());
                let y = _mm_loadu_si128(b.as_ptr().add(i).cast());
                _mm_movemask_epi8(_mm_cmpeq_epi8(x, y)) as u32
            }
        };
        // A ladder, not a loop: the compiler unrolls a loop of at most
        // seven blocks into more set-up than the blocks themselves cost.
        const _: () = assert!(KEY <= 112);
        let mut all = equal(0) & equal(n - 16);
        for at in [16, 32, 48, 64, 80] {
            if at + 16 >= n {
                break;
            }
            all &= equal(at);
        }
        all == 0xffff
    }

    #[cfg(test)]
    pub fn same_for_tests(a: &[u8], b: &[u8]) -> bool {
        same(a, b)
    }

    /// `dst[..src.len()] = src` for a kept path (`8 <= len <= KEY`), in
    /// overlapping 16- or 8-byte moves: libc's `memcpy`, called through
    /// the PLT, was about a dozen more instructions on every cold open.
    #[inline(always)]
    fn copy_key(dst: &mut [u8; KEY], src: &[u8]) {
        let n = src.len();
        if !(8..=KEY).contains(&n) {
            dst[..n.min(KEY)].copy_from_slice(&src[..n.min(KEY)]);
            return;
        }
        let d = dst.as_mut_ptr();
        let s = src.as_ptr();
        if n < 16 {
            // SAFETY: `8 <= n <= KEY`: bytes `0..8` and `n - 8..n` lie
            // within both `src` (length `n`) and `dst` (length `KEY`).
            unsafe {
                let (a, b) = (
                    s.cast::<u64>().read_unaligned(),
                    s.add(n - 8).cast::<u64>().read_unaligned(),
                );
                d.cast::<u64>().write_unaligned(a);
                d.add(n - 8).cast::<u64>().write_unaligned(b);
            }
            return;
        }
        // SAFETY: `16 <= n <= KEY`: each block `at..at + 16` moved below
        // has `at + 16 <= n`, within both slices.
        let block = |at: usize| unsafe {
            let v = s.add(at).cast::<u128>().read_unaligned();
            d.add(at).cast::<u128>().write_unaligned(v);
        };
        block(0);
        block(n - 16);
        // A ladder, as in `same_sse2` (a loop may become a `memcpy` call).
        const _: () = assert!(KEY <= 112);
        for at in [16, 32, 48, 64, 80] {
            if at + 16 >= n {
                break;
            }
            block(at);
        }
    }

    #[cfg(test)]
    pub fn copy_key_for_tests(dst: &mut [u8; KEY], src: &[u8]) {
        copy_key(dst, src)
    }

    #[inline]
    fn cacheable(path: &[u8]) -> bool {
        (8..=KEY).contains(&path.len()) && path[0] == b'/'
    }

    /// Never kept: a process's memory file is also decided as `ptrace`
    /// (`check::process_memory`), on the object, every time.
    #[inline]
    fn kept(path: &[u8]) -> bool {
        cacheable(path) && !path.ends_with(b"/mem")
    }

    #[inline(always)]
    fn find(t: &PerThread, table: usize, access: u8, path: &[u8]) -> Option<bool> {
        if !cacheable(path) {
            return None;
        }
        let area = t.scratch.load(Ordering::Relaxed);
        if area.is_null() {
            return None;
        }
        // SAFETY: this thread's own live area (a zeroed slot is a valid,
        // empty one); its slots are read at a level no writer runs at (see
        // the module comment): no `&mut` to them is live.
        let s = unsafe { &*std::ptr::addr_of!((*area).recent[slot_of(path)]) };
        (s.table == table
            && s.access == access
            && usize::from(s.len) == path.len()
            && same(&s.path[..path.len()], path))
        .then_some(s.needs)
    }

    /// For a hook outside any check (level 0): whether `(table, access,
    /// path)` was a silent allow, and if so whether the table needs the
    /// kernel's path for it. `None` on a miss, or when this thread is not
    /// at level 0 (the library's own work, a check in progress).
    #[inline(always)]
    pub fn hit(table: usize, access: u8, path: &[u8]) -> Option<bool> {
        let t = this_thread();
        if t.depth.get() != 0 {
            return None;
        }
        // Level 1 while reading: a signal handler's hook cannot rewrite
        // the slot under us.
        t.depth.set(1);
        compiler_fence(Ordering::SeqCst);
        let found = find(t, table, access, path);
        compiler_fence(Ordering::SeqCst);
        t.depth.set(0);
        found
    }

    /// [`hit`] for a check in progress (level 1 only).
    #[inline]
    pub fn allowed(table: usize, access: u8, path: &[u8]) -> bool {
        let t = this_thread();
        t.depth.get() == 1 && find(t, table, access, path).is_some()
    }

    /// Records `(table, access, path)` as a silent allow (`needs`: the
    /// table needs the kernel's path for these accesses). Only at level 1.
    #[inline]
    pub fn remember(table: usize, access: u8, path: &[u8], needs: bool) {
        remember_here(table, access, path, needs)
    }

    /// [`remember`], inlined: for the cold open's route, where it was a
    /// call of its own (its prologue, epilogue and arguments).
    #[inline(always)]
    pub fn remember_here(table: usize, access: u8, path: &[u8], needs: bool) {
        if !kept(path) {
            return;
        }
        let t = this_thread();
        {
            if t.depth.get() != 1 {
                return;
            }
            let area = t.scratch.load(Ordering::Relaxed);
            if area.is_null() {
                return;
            }
            // SAFETY: this thread's own slots in its live area, at level 1,
            // the only level that writes; readers at level 0 or 1 are not
            // running (a level-0 reader raises the level first), and a
            // signal handler interrupting this write runs at level 2,
            // which neither reads nor writes (see the module comment).
            let s = unsafe { &mut *std::ptr::addr_of_mut!((*area).recent[slot_of(path)]) };
            copy_key(&mut s.path, path);
            s.len = path.len() as u8;
            s.access = access;
            s.needs = needs;
            s.table = table;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::MaybeUninit;

    /// x86_64's block starts as zero bytes (`.tbss`): that must be what
    /// the `const` initialisers of other targets build.
    #[test]
    fn initial_block_is_zero() {
        let fresh = std::thread::spawn(|| {
            let t = this_thread();
            (
                t.depth.get(),
                t.hits.get(),
                t.errno.get().is_null(),
                scratch::mapped(),
            )
        })
        .join()
        .unwrap();
        assert_eq!(fresh, (0, 0, true, false));
    }

    fn mapped_at(addr: usize) -> bool {
        std::fs::read_to_string("/proc/self/maps")
            .unwrap()
            .lines()
            .any(|l| {
                let range = l.split_whitespace().next().unwrap();
                let (lo, hi) = range.split_once('-').unwrap();
                let lo = usize::from_str_radix(lo, 16).unwrap();
                let hi = usize::from_str_radix(hi, 16).unwrap();
                (lo..hi).contains(&addr)
            })
    }

    /// A thread's path buffers are mapped when it first asks for them, are
    /// its own, keep what it wrote, and are unmapped when it exits.
    #[test]
    fn scratch_is_mapped_on_first_use_and_unmapped_at_thread_exit() {
        scratch::prepare();
        assert!(scratch::key().is_some(), "the thread-exit hook exists");
        let here = scratch_bytes(0).unwrap() as usize;
        let (addr, chain, again) = std::thread::spawn(|| {
            assert!(!scratch::mapped());
            let a = scratch_bytes(0).expect("mapped");
            let c = chain_bytes(1).expect("mapped");
            // SAFETY: this thread's own buffers, nothing else holds them.
            unsafe {
                (*a).0[0] = 7;
                (*c).0[CHAIN_BYTES - 1] = 9;
            }
            let b = scratch_bytes(0).unwrap();
            // SAFETY: as above.
            let kept =
                unsafe { (*b).0[0] == 7 && (*chain_bytes(1).unwrap()).0[CHAIN_BYTES - 1] == 9 };
            assert!(kept && std::ptr::eq(a, b));
            assert!(mapped_at(a as usize) && mapped_at(c as usize));
            (a as usize, c as usize, scratch_bytes(1).unwrap() as usize)
        })
        .join()
        .unwrap();
        assert_ne!(addr, again, "each level has its own buffers");
        assert_ne!(here, addr, "each thread has its own buffers");
        assert!(
            !mapped_at(addr) && !mapped_at(chain),
            "unmapped at thread exit"
        );
    }

    /// The cache's compare sees a difference at every position of every
    /// cacheable length (blocks, the overlapping last block, the ladder).
    #[test]
    fn the_cache_compare_misses_no_difference() {
        for n in 8..=recent::KEY {
            let a: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
            assert!(recent::same_for_tests(&a, &a.clone()), "n {n}");
            for at in 0..n {
                let mut b = a.clone();
                b[at] ^= 0x20;
                assert!(!recent::same_for_tests(&a, &b), "n {n} at {at}");
            }
        }
    }

    /// The cache's copy of a path writes exactly its bytes, at every
    /// cacheable length.
    #[test]
    fn the_cache_copy_writes_the_path_and_nothing_else() {
        for n in 8..=recent::KEY {
            let src: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
            let mut dst = [0xeeu8; recent::KEY];
            recent::copy_key_for_tests(&mut dst, &src);
            assert_eq!(&dst[..n], &src[..], "n {n}");
            assert!(
                dst[n..].iter().all(|&b| b == 0xee),
                "n {n}: wrote past the path"
            );
        }
    }

    /// With no area (the mapping failed), a check's buffers are on its
    /// stack and work the same.
    #[test]
    fn without_a_mapping_checks_use_stack_buffers() {
        scratch::prepare();
        let (path, mapped) = std::thread::spawn(|| {
            scratch::REFUSE.with(|r| r.set(true));
            assert!(scratch_bytes(0).is_none() && chain_bytes(0).is_none());
            let g = Guard::enter().unwrap();
            let path = crate::decide::resolve::with_scratch(|s| {
                s.a.set(&[b"/etc/", b"passwd"]).unwrap();
                s.a.as_bytes().to_vec()
            });
            drop(g);
            (path, scratch::mapped())
        })
        .join()
        .unwrap();
        assert_eq!((path.as_slice(), mapped), (&b"/etc/passwd"[..], false));
    }

    /// The kept errno slot is libc's own, per thread: what the library
    /// writes there is what the program reads as errno.
    #[test]
    fn errno_slot_is_libcs_for_each_thread() {
        let here = errno_slot() as usize;
        // SAFETY: no preconditions.
        assert_eq!(here, unsafe { libc::__errno_location() } as usize);
        let (there, seen) = std::thread::spawn(|| {
            // SAFETY: this thread's errno slot.
            unsafe { *errno_slot() = libc::ENOTDIR };
            let seen = std::io::Error::last_os_error().raw_os_error();
            (errno_slot() as usize, seen)
        })
        .join()
        .unwrap();
        assert_ne!(here, there);
        assert_eq!(seen, Some(libc::ENOTDIR));
        assert_eq!(here, errno_slot() as usize, "kept");
    }

    /// Each thread has its own block.
    #[test]
    fn blocks_are_per_thread() {
        let here = this_thread() as *const PerThread as usize;
        let there = std::thread::spawn(|| this_thread() as *const PerThread as usize)
            .join()
            .unwrap();
        assert_ne!(here, there);
        assert_eq!(here, this_thread() as *const PerThread as usize);
    }

    #[test]
    fn checks_nest_to_the_limit_then_pass_through() {
        let g1 = Guard::enter().expect("first level");
        assert_eq!(check_depth(), 1);
        let g2 = Guard::enter().expect("a signal handler's check");
        assert_eq!(check_depth(), 2);
        assert!(Guard::enter().is_none());
        drop(g2);
        drop(g1);
        assert_eq!(check_depth(), 0);
    }

    #[test]
    fn internal_work_passes_through_and_restores() {
        let section = Internal::enter().expect("not internal yet");
        assert!(Guard::enter().is_none());
        assert!(Internal::enter().is_none());
        drop(section);
        assert!(Guard::enter().is_some());
    }

    /// This thread's signal mask as libc reports it.
    fn blocked_signals() -> Vec<libc::c_int> {
        let mut mask = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: reads this thread's mask into `mask`, then only tests it.
        unsafe {
            libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), mask.as_mut_ptr());
            (1..=64)
                .filter(|&s| libc::sigismember(mask.as_ptr(), s) == 1)
                .collect()
        }
    }

    #[test]
    fn internal_sections_block_all_but_libc_signals_and_restore_the_mask() {
        // SAFETY: changes this test thread's own mask only.
        let set_usr2 = |how| unsafe {
            let mut set = MaybeUninit::<libc::sigset_t>::uninit();
            libc::sigemptyset(set.as_mut_ptr());
            libc::sigaddset(set.as_mut_ptr(), libc::SIGUSR2);
            libc::pthread_sigmask(how, set.as_ptr(), std::ptr::null_mut());
        };
        set_usr2(libc::SIG_BLOCK);
        let before = blocked_signals();
        assert!(before.contains(&libc::SIGUSR2) && !before.contains(&libc::SIGUSR1));
        let section = Internal::enter().expect("not internal yet");
        let inside = blocked_signals();
        // The C library's own signals stay open (glibc: 32, 33; musl also 34).
        let libc_own: &[libc::c_int] = if cfg!(target_env = "musl") {
            &[32, 33, 34]
        } else {
            &[32, 33]
        };
        for signal in 1..=64 {
            let expected =
                !libc_own.contains(&signal) && signal != libc::SIGKILL && signal != libc::SIGSTOP;
            assert_eq!(inside.contains(&signal), expected, "signal {signal}");
        }
        drop(section);
        assert_eq!(blocked_signals(), before, "the previous mask, exactly");
        set_usr2(libc::SIG_UNBLOCK);
    }

    #[test]
    fn library_threads_block_signals_and_pass_through() {
        let (tx, rx) = std::sync::mpsc::channel();
        spawn_library_thread("ldguard-test", 64 * 1024, move || {
            let mut mask = MaybeUninit::<libc::sigset_t>::uninit();
            // SAFETY: reads this thread's mask into `mask`.
            let blocked = unsafe {
                libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), mask.as_mut_ptr());
                libc::sigismember(mask.as_ptr(), libc::SIGUSR1) == 1
                    && libc::sigismember(mask.as_ptr(), libc::SIGTERM) == 1
            };
            tx.send((blocked, Guard::enter().is_none())).unwrap();
        })
        .unwrap();
        assert_eq!(rx.recv().unwrap(), (true, true));
        // The creating thread's mask is restored.
        let mut mask = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: as above.
        let blocked = unsafe {
            libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), mask.as_mut_ptr());
            libc::sigismember(mask.as_ptr(), libc::SIGUSR1) == 1
        };
        assert!(!blocked);
    }
}

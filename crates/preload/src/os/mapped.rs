//! The library's large process-wide buffers (the behaviour set, the event
//! line buffers, the host-name table, the vfork children's parked
//! records), mapped the first time a process needs them instead of living
//! in `.bss`.
//!
//! A `.bss` larger than what is left of the writable segment's last file
//! page makes the loader map an anonymous segment in every process (one
//! `mmap`, ~4 µs in a fresh process, BENCHMARKS.md section 23), although
//! most processes never write an event nor resolve a name. Here only a
//! process that uses a buffer pays for its mapping.
//!
//! Getting one is lock-free and allocation-free, so hooks may do it from a
//! signal handler, a forked child or a `vfork` child: one `mmap` system
//! call and a compare-and-swap on the buffer's pointer. Two threads (or a
//! signal handler and the thread it interrupted) that map at once both
//! use the first published mapping; the loser unmaps its own. A forked
//! child inherits the pointer and the mapping (copy-on-write); a `vfork`
//! child that maps one publishes it in the memory it shares with its
//! parent, where the parent finds it. When no memory can be mapped the
//! caller gets `None` and does without (each says how).

use crate::os::sys::{map_anonymous, unmap};
use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::Ordering;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicU64, AtomicU8};

/// Types for which all zero bytes (a fresh anonymous mapping) are a valid
/// value that means "empty".
///
/// # Safety
/// An implementor must be valid when every byte is zero, and must need no
/// alignment beyond a page.
pub unsafe trait Zeroed {}

// SAFETY: integers and atomics of integers are valid as zero.
unsafe impl Zeroed for u8 {}
// SAFETY: as above.
unsafe impl Zeroed for AtomicBool {}
// SAFETY: as above.
unsafe impl Zeroed for AtomicU8 {}
// SAFETY: as above.
unsafe impl Zeroed for AtomicI32 {}
// SAFETY: as above.
unsafe impl Zeroed for AtomicU32 {}
// SAFETY: as above.
unsafe impl Zeroed for AtomicU64 {}
// SAFETY: any bytes are a valid `MaybeUninit`.
unsafe impl<T> Zeroed for MaybeUninit<T> {}
// SAFETY: `UnsafeCell<T>` has `T`'s layout.
unsafe impl<T: Zeroed> Zeroed for UnsafeCell<T> {}
// SAFETY: an array of zero-valid elements is zero-valid.
unsafe impl<T: Zeroed, const N: usize> Zeroed for [T; N] {}

/// A `T` mapped on first use, zeroed.
pub struct Lazy<T: Zeroed + Sync> {
    at: AtomicPtr<T>,
}

// SAFETY: the pointer is published with release and read with acquire; the
// `T` behind it is `Sync` and never freed.
unsafe impl<T: Zeroed + Sync> Sync for Lazy<T> {}

const PAGE: usize = 4096;

impl<T: Zeroed + Sync> Lazy<T> {
    const FITS_A_PAGE_ALIGNMENT: () = assert!(std::mem::align_of::<T>() <= PAGE);

    pub const fn new() -> Self {
        let () = Self::FITS_A_PAGE_ALIGNMENT;
        Lazy {
            at: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    /// The buffer, mapped now if no thread has yet; `None` when the kernel
    /// gives no memory.
    #[inline]
    pub fn get(&self) -> Option<&T> {
        self.if_mapped().or_else(|| self.map())
    }

    /// The buffer if some thread has mapped it (a reader that finds none
    /// has nothing to read).
    #[inline]
    pub fn if_mapped(&self) -> Option<&T> {
        let at = self.at.load(Ordering::Acquire);
        // SAFETY: `at` is null or a published mapping of a `T` that is never
        // unmapped.
        unsafe { at.as_ref() }
    }

    #[cold]
    #[inline(never)]
    fn map(&self) -> Option<&T> {
        #[cfg(test)]
        if tests::REFUSE.with(|refuse| refuse.get()) {
            return None;
        }
        let len = std::mem::size_of::<T>().max(1);
        let fresh = map_anonymous(len)?.cast::<T>();
        let published = match self.at.compare_exchange(
            std::ptr::null_mut(),
            fresh,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => fresh,
            Err(theirs) => {
                unmap(fresh.cast(), len);
                theirs
            }
        };
        // SAFETY: `published` is a page-aligned, zeroed mapping at least a
        // `T` long (zero bytes are a valid `T`: `Zeroed`), never unmapped.
        Some(unsafe { &*published })
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    thread_local! {
        /// Tests: this thread's mappings fail.
        pub static REFUSE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    #[test]
    fn maps_once_zeroed_and_every_thread_sees_the_same_buffer() {
        static BUFFER: Lazy<[AtomicU64; 1024]> = Lazy::new();
        assert!(BUFFER.if_mapped().is_none(), "nothing mapped before use");
        let addresses: Vec<usize> = (0..8)
            .map(|_| {
                std::thread::spawn(|| {
                    let words = BUFFER.get().expect("mapped");
                    assert!(words.iter().all(|w| w.load(Ordering::Relaxed) == 0));
                    words.as_ptr() as usize
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        assert!(addresses.iter().all(|&a| a == addresses[0]));
        assert_eq!(addresses[0] % PAGE, 0);
        BUFFER.get().unwrap()[1023].store(7, Ordering::Relaxed);
        assert_eq!(BUFFER.if_mapped().unwrap()[1023].load(Ordering::Relaxed), 7);
    }

    #[test]
    fn a_refused_mapping_is_none_and_a_later_one_succeeds() {
        static BUFFER: Lazy<[u8; 10]> = Lazy::new();
        REFUSE.with(|r| r.set(true));
        assert!(BUFFER.get().is_none());
        REFUSE.with(|r| r.set(false));
        assert!(BUFFER.if_mapped().is_none());
        assert_eq!(BUFFER.get().unwrap(), &[0; 10]);
    }
}

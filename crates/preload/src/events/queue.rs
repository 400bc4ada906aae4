//! The bounded event queue between the hooks (many producers, any thread,
//! signal handlers included) and the event writer thread (one consumer)
//! of an HTTP sink (`file:` and `stderr` events are written at once: see
//! `direct`).
//!
//! Why not a channel crate: a hook may run in a signal handler that
//! interrupted another hook's send on the same thread. crossbeam's bounded
//! channel wakes its receiver under a mutex, which that nested send would
//! wait on forever. This queue takes no lock anywhere: slots are claimed
//! with compare-and-swap (Vyukov's bounded queue) and the writer is woken
//! with a futex, a plain system call.
//!
//! The last [`RESERVED`] slots are kept for important records (deny and
//! kill decisions): a flood of ordinary records can fill the queue, but
//! not take the room a deny needs.
//!
//! Memory comes zeroed from the allocator (untouched pages until used): a
//! slot's sequence number 0 means "free for the first lap".

use std::alloc::{alloc_zeroed, Layout};
use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

/// Slots reserved for important records.
pub const RESERVED: u64 = 256;

struct Slot<T> {
    /// `2 * lap` when free for that lap, `2 * lap + 1` once written in it.
    seq: AtomicU64,
    value: UnsafeCell<MaybeUninit<T>>,
}

pub struct Queue<T: Copy + 'static> {
    slots: &'static [Slot<T>],
    /// Next position to claim (producers).
    tail: AtomicU64,
    /// Next position to read (the consumer only).
    head: AtomicU64,
    /// Futex word: 1 while the consumer sleeps or is about to.
    sleeping: AtomicU32,
}

// SAFETY: a slot's value is written only by the producer that claimed it
// and read only by the consumer after the Release/Acquire pair on `seq`.
unsafe impl<T: Copy + Send + 'static> Sync for Queue<T> {}

/// A push found no room for its kind of record.
#[derive(Debug, PartialEq, Eq)]
pub struct Full;

impl<T: Copy + 'static> Queue<T> {
    /// A queue of `capacity` slots (more than [`RESERVED`]); the memory is
    /// leaked, like every structure a forked child may still point to.
    pub fn new(capacity: usize) -> Option<Queue<T>> {
        assert!(capacity as u64 > RESERVED);
        let layout = Layout::array::<Slot<T>>(capacity).ok()?;
        // SAFETY: the layout has a non-zero size; all-zero bytes are a valid
        // Slot (seq 0, uninitialised value).
        let ptr = unsafe { alloc_zeroed(layout) } as *mut Slot<T>;
        if ptr.is_null() {
            return None;
        }
        // SAFETY: `capacity` zeroed slots, never freed.
        let slots = unsafe { std::slice::from_raw_parts(ptr, capacity) };
        Some(Queue {
            slots,
            tail: AtomicU64::new(0),
            head: AtomicU64::new(0),
            sleeping: AtomicU32::new(0),
        })
    }

    fn capacity(&self) -> u64 {
        self.slots.len() as u64
    }

    /// Queues `value` and wakes the consumer. Ordinary records leave the
    /// reserved room free; important ones may use it.
    pub fn push(&self, value: T, important: bool) -> Result<(), Full> {
        let limit = if important {
            self.capacity()
        } else {
            self.capacity() - RESERVED
        };
        loop {
            let pos = self.tail.load(Ordering::Relaxed);
            if pos.saturating_sub(self.head.load(Ordering::Acquire)) >= limit {
                return Err(Full);
            }
            let slot = &self.slots[(pos % self.capacity()) as usize];
            let free = 2 * (pos / self.capacity());
            let seq = slot.seq.load(Ordering::Acquire);
            if seq == free {
                if self
                    .tail
                    .compare_exchange_weak(pos, pos + 1, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
                {
                    // SAFETY: this producer owns the slot until it bumps `seq`.
                    unsafe { (*slot.value.get()).write(value) };
                    slot.seq.store(free + 1, Ordering::Release);
                    self.wake();
                    return Ok(());
                }
            } else if seq < free {
                // The consumer has not finished with the previous lap.
                return Err(Full);
            }
            // Another producer took `pos`: try the next one.
        }
    }

    /// Positions claimed so far (records queued, written or not yet).
    pub fn claimed(&self) -> u64 {
        self.tail.load(Ordering::Acquire)
    }

    /// The next record, if one is ready (consumer only).
    pub fn pop(&self) -> Option<T> {
        let pos = self.head.load(Ordering::Relaxed);
        let slot = &self.slots[(pos % self.capacity()) as usize];
        let written = 2 * (pos / self.capacity()) + 1;
        if slot.seq.load(Ordering::Acquire) != written {
            return None;
        }
        // SAFETY: the producer's Release store of `seq` published the value.
        let value = unsafe { (*slot.value.get()).assume_init_read() };
        slot.seq.store(written + 1, Ordering::Release);
        self.head.store(pos + 1, Ordering::Release);
        Some(value)
    }

    /// Sleeps until a producer pushes or `timeout_ms` pass (consumer only).
    pub fn wait(&self, timeout_ms: u64) {
        self.sleeping.store(1, Ordering::SeqCst);
        // A push between the caller's last `pop` and the store above has
        // not seen the flag: look again before sleeping. The fences pair
        // with the one in `wake`: either this load sees the pushed record,
        // or that push sees the flag (store-load order needs a full fence).
        fence(Ordering::SeqCst);
        if self.ready() {
            self.sleeping.store(0, Ordering::SeqCst);
            return;
        }
        let ts = libc::timespec {
            tv_sec: (timeout_ms / 1000) as _,
            tv_nsec: ((timeout_ms % 1000) * 1_000_000) as _,
        };
        crate::os::sys::raw_syscall(
            libc::SYS_futex,
            [
                self.sleeping.as_ptr() as libc::c_long,
                (libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG) as libc::c_long,
                1,
                &ts as *const libc::timespec as libc::c_long,
                0,
                0,
            ],
        );
        self.sleeping.store(0, Ordering::SeqCst);
    }

    fn ready(&self) -> bool {
        let pos = self.head.load(Ordering::Relaxed);
        let slot = &self.slots[(pos % self.capacity()) as usize];
        slot.seq.load(Ordering::Acquire) == 2 * (pos / self.capacity()) + 1
    }

    /// Wakes the consumer if it sleeps in [`Queue::wait`].
    pub fn wake(&self) {
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::Relaxed) == 1
            && self.sleeping.swap(0, Ordering::SeqCst) == 1
        {
            crate::os::sys::raw_syscall(
                libc::SYS_futex,
                [
                    self.sleeping.as_ptr() as libc::c_long,
                    (libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG) as libc::c_long,
                    1,
                    0,
                    0,
                    0,
                ],
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_records_leave_the_reserved_room() {
        let q = Queue::<u32>::new(RESERVED as usize + 4).unwrap();
        for i in 0..4 {
            assert_eq!(q.push(i, false), Ok(()));
        }
        assert_eq!(q.push(99, false), Err(Full));
        for i in 0..RESERVED as u32 {
            assert_eq!(q.push(100 + i, true), Ok(()), "important {i}");
        }
        assert_eq!(q.push(7, true), Err(Full));
        assert_eq!(q.pop(), Some(0));
        assert_eq!(q.push(8, true), Ok(()));
        let mut all = Vec::new();
        while let Some(v) = q.pop() {
            all.push(v);
        }
        assert_eq!(all.len(), 3 + RESERVED as usize + 1);
        assert_eq!(all.last(), Some(&8));
    }

    #[test]
    fn many_producers_one_consumer_lose_nothing_over_many_laps() {
        let q: &'static Queue<u64> = Box::leak(Box::new(Queue::new(300).unwrap()));
        let producers: Vec<_> = (0..4u64)
            .map(|t| {
                std::thread::spawn(move || {
                    for i in 0..20_000u64 {
                        while q.push(t << 32 | i, true).is_err() {
                            std::thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        let mut next = [0u64; 4];
        let mut got = 0;
        while got < 80_000 {
            match q.pop() {
                Some(v) => {
                    let (t, i) = ((v >> 32) as usize, v & 0xffff_ffff);
                    assert_eq!(i, next[t], "per-producer order");
                    next[t] += 1;
                    got += 1;
                }
                None => q.wait(10),
            }
        }
        for p in producers {
            p.join().unwrap();
        }
        assert_eq!(q.pop(), None);
    }
}

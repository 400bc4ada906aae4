//! The per-thread re-entrancy flag. While it is set, hooks pass calls
//! straight through: the library's own file, thread and allocation work must
//! not be checked (or recurse).
//!
//! `const` initialiser and a `Copy` type: no destructor is registered and the
//! first access allocates nothing, so this is safe from any hook, signal
//! handlers and `calloc`-triggered re-entry included.

use std::cell::Cell;

thread_local! {
    static BUSY: Cell<bool> = const { Cell::new(false) };
}

/// Proof that this thread holds the flag; clears it when dropped.
pub struct Guard(());

impl Guard {
    /// Sets the flag, or returns `None` when this thread already holds it
    /// (a hook re-entered from inside the library or a signal handler that
    /// interrupted a hook).
    #[inline]
    pub fn enter() -> Option<Guard> {
        BUSY.with(|busy| {
            if busy.get() {
                None
            } else {
                busy.set(true);
                Some(Guard(()))
            }
        })
    }

    /// Keeps the flag set for the rest of this thread's life (the event
    /// writer thread never wants its own I/O checked).
    pub fn hold_forever(self) {
        std::mem::forget(self);
    }
}

impl Drop for Guard {
    #[inline]
    fn drop(&mut self) {
        BUSY.with(|busy| busy.set(false));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_enter_is_refused_until_dropped() {
        let g = Guard::enter().expect("first enter");
        assert!(Guard::enter().is_none());
        drop(g);
        assert!(Guard::enter().is_some());
    }

    #[test]
    fn flag_is_per_thread() {
        let _g = Guard::enter().unwrap();
        std::thread::spawn(|| assert!(Guard::enter().is_some()))
            .join()
            .unwrap();
    }
}

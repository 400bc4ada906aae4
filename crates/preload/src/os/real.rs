//! The next definition of an interposed symbol (normally libc's), found once
//! with `dlsym(RTLD_NEXT)` and cached: `dlsym` on every call costs ~90 ns.

use std::ffi::{c_char, c_void};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicPtr, Ordering};

/// A lazily resolved pointer to the next definition of one symbol.
pub struct Next {
    name: &'static [u8],
    ptr: AtomicPtr<c_void>,
}

/// Marks a symbol that `dlsym` could not find (e.g. `execveat` before glibc
/// 2.34), so we do not ask again on every call.
const MISSING: *mut c_void = std::ptr::dangling_mut::<c_void>();

impl Next {
    /// `name` must end with a NUL byte.
    pub const fn new(name: &'static [u8]) -> Next {
        Next {
            name,
            ptr: AtomicPtr::new(null_mut()),
        }
    }

    /// The address of the next definition, or `None` when there is none.
    /// Races are benign: every thread stores the same value.
    #[inline]
    pub fn get(&self) -> Option<*mut c_void> {
        let mut p = self.ptr.load(Ordering::Relaxed);
        if p.is_null() {
            // SAFETY: `name` is NUL-terminated (checked by the `next!` macro's
            // `concat!`); RTLD_NEXT asks for the definition after ours.
            p = unsafe { libc::dlsym(libc::RTLD_NEXT, self.name.as_ptr() as *const c_char) };
            if p.is_null() {
                p = MISSING;
            }
            self.ptr.store(p, Ordering::Relaxed);
        }
        (p != MISSING).then_some(p)
    }
}

/// libc's `execve`, shared by every exec hook. The fork prepare handler
/// (`emit`) looks it up before the first fork, so a forked child that execs
/// does not run `dlsym` first: in the child every page that lookup writes
/// is a copy-on-write fault and every page of the loader it reads a fresh
/// mapping.
pub static EXECVE: Next = Next::new(b"execve\0");

/// `next!(name: TYPE)` evaluates to `Option<TYPE>`, the next definition of
/// `name` cast to the function pointer type `TYPE`.
macro_rules! next {
    ($name:ident : $ty:ty) => {{
        static NEXT: $crate::os::real::Next =
            $crate::os::real::Next::new(concat!(stringify!($name), "\0").as_bytes());
        // SAFETY: the symbol is the libc function of that name, whose C
        // signature `$ty` transcribes.
        NEXT.get().map(|p| {
            #[allow(unused_unsafe)]
            let f = unsafe { std::mem::transmute::<*mut std::ffi::c_void, $ty>(p) };
            f
        })
    }};
}
pub(crate) use next;

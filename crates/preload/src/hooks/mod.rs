//! The interposed libc entry points, by rule kind. Every hook follows one
//! pattern: check (see [`crate::decide::check::run`]), then call the next definition
//! of the symbol, or fail with the policy's errno. When the next definition
//! is missing (a symbol newer than the process's libc) the hook makes the
//! system call itself.

/// Defines a hook that runs `$check`, then forwards to the next definition,
/// or makes the system call `$nr` when libc lacks the function.
macro_rules! checked_hook {
    ($name:ident($($arg:ident: $ty:ty),*) -> $ret:ty, $nr:expr, $check:expr) => {
        /// # Safety
        /// libc ABI.
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            if let $crate::decide::check::Verdict::Deny(e) = $check {
                return $crate::decide::check::fail(e, -1 as $ret);
            }
            type F = unsafe extern "C" fn($($ty),*) -> $ret;
            match $crate::os::real::next!($name: F) {
                // SAFETY: forwarding the caller's arguments.
                Some(f) => unsafe { f($($arg),*) },
                None => {
                    let mut a = [0 as libc::c_long; 6];
                    let args = [$($arg as libc::c_long),*];
                    a[..args.len()].copy_from_slice(&args);
                    $crate::os::sys::raw_syscall($nr, a) as $ret
                }
            }
        }
    };
}

/// Defines a hook whose call the library makes itself on the object it
/// decided on (`$acted`, a [`file::Acted`]); when it does not, the call
/// goes to the next definition, or to the system call `$nr` when libc
/// lacks the function.
macro_rules! acted_hook {
    ($name:ident($($arg:ident: $ty:ty),*), $nr:expr, $acted:expr) => {
        /// # Safety
        /// libc ABI.
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> libc::c_int {
            $acted.finish(|| {
                type F = unsafe extern "C" fn($($ty),*) -> libc::c_int;
                match $crate::os::real::next!($name: F) {
                    // SAFETY: forwarding the caller's arguments.
                    Some(f) => unsafe { f($($arg),*) },
                    None => {
                        let mut a = [0 as libc::c_long; 6];
                        let args = [$($arg as libc::c_long),*];
                        a[..args.len()].copy_from_slice(&args);
                        $crate::os::sys::raw_syscall($nr, a) as libc::c_int
                    }
                }
            })
        }
    };
}

pub mod alias;
mod borrowed;
pub mod exec;
pub mod file;
pub mod internal;
pub mod meta;
mod mount;
pub mod net;
mod routed;
pub mod sys;
pub mod walk;

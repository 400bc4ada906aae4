//! glibc's public aliases of hooked functions: ordinary dynamic symbols
//! that reach the same code (`_IO_fopen` is `fopen`). Each is routed
//! through the hook of the function it aliases. The `__open*` aliases are
//! variadic and live in the C shim; `__connect` and `__sendmmsg` live with
//! the network hooks.

use super::borrowed;
use crate::decide::check::{fail, Verdict};
use crate::os::real::next;
use ldguard_policy::Call;
use libc::{c_char, FILE};
use std::ptr::null_mut;

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn _IO_fopen(path: *const c_char, mode: *const c_char) -> *mut FILE {
    // SAFETY: same contract.
    unsafe { borrowed::fopen(path, mode) }
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn _IO_popen(cmd: *const c_char, mode: *const c_char) -> *mut FILE {
    // SAFETY: same contract.
    unsafe { borrowed::popen(cmd, mode) }
}

/// `_IO_proc_open(fp, cmd, mode)`: popen's worker, on a stream the caller
/// allocated. Checked as `popen`.
///
/// # Safety
/// glibc ABI.
#[no_mangle]
pub unsafe extern "C" fn _IO_proc_open(
    fp: *mut FILE,
    cmd: *const c_char,
    mode: *const c_char,
) -> *mut FILE {
    if let Verdict::Deny(e) = borrowed::check_shell(Call::Popen, cmd) {
        return fail(e, null_mut());
    }
    type F = unsafe extern "C" fn(*mut FILE, *const c_char, *const c_char) -> *mut FILE;
    match next!(_IO_proc_open: F) {
        // SAFETY: forwarding.
        Some(f) => unsafe { f(fp, cmd, mode) },
        None => fail(libc::ENOSYS, null_mut()),
    }
}

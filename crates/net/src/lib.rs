//! libldguard_net.so: the HTTPS client (ureq, rustls, ring, CA roots) of
//! libldguard.so, in a library of its own so that only a process that
//! sends a request maps it (docs/preload.md, "Footprint"). It exports one
//! function, [`ldguard_net_exchange_v1`], whose interface is
//! `ldguard_source::transport::abi`.
//!
//! Never break the host: a panic in the client is caught here and becomes
//! a transport error; this library's panic messages stay silent.

use ldguard_source::transport::abi::{self, Deliver, RawRequest};
use ldguard_source::transport::{native, TransportError};
use std::ffi::c_void;
use std::sync::Once;

/// Sends one request and lends the answer to `deliver`; returns 0 once
/// `deliver` was called, 1 when the arguments are null.
///
/// # Safety
/// `request` points at a valid [`RawRequest`] whose bytes stay valid for
/// the call, and `deliver` may be called with `context`.
#[no_mangle]
pub unsafe extern "C" fn ldguard_net_exchange_v1(
    request: *const RawRequest,
    context: *mut c_void,
    deliver: Option<Deliver>,
) -> u32 {
    let (Some(deliver), false) = (deliver, request.is_null()) else {
        return 1;
    };
    static QUIET: Once = Once::new();
    // The hook is this library's own std's: the program's is untouched.
    QUIET.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    // SAFETY: the caller lends a valid request for the duration of the call.
    let request = unsafe { abi::copy_request(&*request) };
    let result = std::panic::catch_unwind(|| native::exchange(&request)).unwrap_or_else(|_| {
        Err(TransportError::Transport(
            "the HTTPS client failed internally (a panic, caught)".to_string(),
        ))
    });
    // SAFETY: the caller vouches for `deliver` and `context`.
    unsafe { abi::deliver(&result, context, deliver) };
    0
}

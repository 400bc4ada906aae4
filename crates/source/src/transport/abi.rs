//! The C interface between a library holding this crate with feature
//! `dlopen` and `libldguard_net.so`. Two Rust libraries, each with its own
//! standard library and allocator state, so nothing owned crosses: the
//! caller lends the request's bytes for the call, the callee lends the
//! answer's bytes to a callback for its duration, and each side copies
//! what it keeps. The symbol's name carries the layout's version, so a
//! mismatched pair fails to load instead of misreading memory.

use super::{Answer, Exchange, TransportError};
use std::ffi::c_void;
use std::path::PathBuf;
use std::time::Duration;

/// The exported function of `libldguard_net.so`, NUL-terminated for `dlsym`.
pub const EXCHANGE_SYMBOL: &[u8] = b"ldguard_net_exchange_v1\0";

/// Borrowed bytes; a null `ptr` means "absent" (distinct from empty).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Bytes {
    pub ptr: *const u8,
    pub len: usize,
}

impl Bytes {
    const ABSENT: Bytes = Bytes {
        ptr: std::ptr::null(),
        len: 0,
    };

    fn of(bytes: &[u8]) -> Bytes {
        Bytes {
            ptr: bytes.as_ptr(),
            len: bytes.len(),
        }
    }

    fn of_opt(bytes: Option<&[u8]>) -> Bytes {
        bytes.map_or(Bytes::ABSENT, Bytes::of)
    }

    /// # Safety
    /// `ptr` is null or points at `len` readable bytes for the lifetime `'a`.
    unsafe fn get<'a>(self) -> Option<&'a [u8]> {
        if self.ptr.is_null() {
            None
        } else {
            // SAFETY: the caller guarantees `len` readable bytes at `ptr`.
            Some(unsafe { std::slice::from_raw_parts(self.ptr, self.len) })
        }
    }

    /// # Safety
    /// As [`Bytes::get`].
    unsafe fn string(self) -> Option<String> {
        // SAFETY: forwarded from the caller.
        unsafe { self.get() }.map(|b| String::from_utf8_lossy(b).into_owned())
    }
}

#[repr(C)]
pub struct RawRequest {
    pub method: Bytes,
    pub url: Bytes,
    pub accept: Bytes,
    pub content_type: Bytes,
    pub if_none_match: Bytes,
    pub bearer: Bytes,
    pub body: Bytes,
    /// The path's bytes (Unix paths are bytes).
    pub ca_file: Bytes,
    pub connect_timeout_ms: u64,
    pub total_timeout_ms: u64,
    pub body_limit: u64,
}

/// `kind` of a [`RawAnswer`].
pub const ANSWERED: u32 = 0;
pub const TRANSPORT: u32 = 1;
pub const CONFIG: u32 = 2;
pub const UNAVAILABLE: u32 = 3;

#[repr(C)]
pub struct RawAnswer {
    pub kind: u32,
    pub status: u32,
    pub etag: Bytes,
    pub body: Bytes,
    /// The error's text, or for `CONFIG` its "what".
    pub message: Bytes,
    /// For `CONFIG`: the fix.
    pub fix: Bytes,
}

/// Called once by the exchange function with the answer, which is valid
/// only during the call.
pub type Deliver = unsafe extern "C" fn(context: *mut c_void, answer: *const RawAnswer);

/// The signature of [`EXCHANGE_SYMBOL`]: returns 0 once `deliver` was called.
pub type ExchangeFn =
    unsafe extern "C" fn(request: *const RawRequest, context: *mut c_void, deliver: Deliver) -> u32;

/// `request`'s bytes, lent for as long as `request` lives.
pub fn lend(request: &Exchange) -> RawRequest {
    use std::os::unix::ffi::OsStrExt;
    RawRequest {
        method: Bytes::of(request.method.as_bytes()),
        url: Bytes::of(request.url.as_bytes()),
        accept: Bytes::of_opt(request.accept.as_deref().map(str::as_bytes)),
        content_type: Bytes::of_opt(request.content_type.as_deref().map(str::as_bytes)),
        if_none_match: Bytes::of_opt(request.if_none_match.as_deref().map(str::as_bytes)),
        bearer: Bytes::of_opt(request.bearer.as_deref().map(str::as_bytes)),
        body: Bytes::of(&request.body),
        ca_file: Bytes::of_opt(request.ca_file.as_deref().map(|p| p.as_os_str().as_bytes())),
        connect_timeout_ms: request.connect_timeout.as_millis() as u64,
        total_timeout_ms: request.total_timeout.as_millis() as u64,
        body_limit: request.body_limit,
    }
}

/// A copy of a lent request.
///
/// # Safety
/// Every [`Bytes`] of `raw` is null or valid for its length.
pub unsafe fn copy_request(raw: &RawRequest) -> Exchange {
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: every Bytes read below is valid, as the caller guarantees.
    unsafe {
        Exchange {
            method: raw.method.string().unwrap_or_default(),
            url: raw.url.string().unwrap_or_default(),
            accept: raw.accept.string(),
            content_type: raw.content_type.string(),
            if_none_match: raw.if_none_match.string(),
            bearer: raw.bearer.string(),
            body: raw.body.get().map(<[u8]>::to_vec).unwrap_or_default(),
            ca_file: raw
                .ca_file
                .get()
                .map(|b| PathBuf::from(std::ffi::OsStr::from_bytes(b))),
            connect_timeout: Duration::from_millis(raw.connect_timeout_ms),
            total_timeout: Duration::from_millis(raw.total_timeout_ms),
            body_limit: raw.body_limit,
        }
    }
}

/// Lends `result` to `deliver` as a [`RawAnswer`].
///
/// # Safety
/// `deliver` is a valid callback for `context`.
pub unsafe fn deliver(
    result: &Result<Answer, TransportError>,
    context: *mut c_void,
    deliver: Deliver,
) {
    let empty = Bytes::ABSENT;
    let raw = match result {
        Ok(answer) => RawAnswer {
            kind: ANSWERED,
            status: u32::from(answer.status),
            etag: Bytes::of_opt(answer.etag.as_deref().map(str::as_bytes)),
            body: Bytes::of(&answer.body),
            message: empty,
            fix: empty,
        },
        Err(e) => {
            let (kind, message, fix) = match e {
                TransportError::Transport(m) => (TRANSPORT, m.as_bytes(), None),
                TransportError::Config { what, fix } => {
                    (CONFIG, what.as_bytes(), Some(fix.as_bytes()))
                }
                TransportError::Unavailable(m) => (UNAVAILABLE, m.as_bytes(), None),
            };
            RawAnswer {
                kind,
                status: 0,
                etag: empty,
                body: empty,
                message: Bytes::of(message),
                fix: Bytes::of_opt(fix),
            }
        }
    };
    // SAFETY: `raw` and the bytes it lends live until the call returns.
    unsafe { deliver(context, &raw) }
}

/// A copy of a lent answer.
///
/// # Safety
/// Every [`Bytes`] of `raw` is null or valid for its length.
pub unsafe fn copy_answer(raw: &RawAnswer) -> Result<Answer, TransportError> {
    // SAFETY: every Bytes read below is valid, as the caller guarantees.
    unsafe {
        let message = raw.message.string().unwrap_or_default();
        match raw.kind {
            ANSWERED => Ok(Answer {
                status: u16::try_from(raw.status).unwrap_or(0),
                etag: raw.etag.string(),
                body: raw.body.get().map(<[u8]>::to_vec).unwrap_or_default(),
            }),
            CONFIG => Err(TransportError::Config {
                what: message,
                fix: raw.fix.string().unwrap_or_default(),
            }),
            UNAVAILABLE => Err(TransportError::Unavailable(message)),
            _ => Err(TransportError::Transport(message)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    unsafe extern "C" fn keep(context: *mut c_void, answer: *const RawAnswer) {
        // SAFETY: `context` is the test's `Option<Result<..>>`, `answer` is lent for this call.
        unsafe {
            *(context as *mut Option<Result<Answer, TransportError>>) = Some(copy_answer(&*answer));
        }
    }

    fn round_trip(result: Result<Answer, TransportError>) -> Result<Answer, TransportError> {
        let mut out: Option<Result<Answer, TransportError>> = None;
        // SAFETY: `keep` matches `out`'s type.
        unsafe { deliver(&result, &mut out as *mut _ as *mut c_void, keep) };
        out.expect("delivered")
    }

    #[test]
    fn requests_cross_unchanged() {
        let mut request = Exchange::new("POST", "https://h.example/x");
        request.accept = Some("application/json".into());
        request.if_none_match = Some("\"e1\"".into());
        request.bearer = Some(String::new());
        request.body = b"[1,2]".to_vec();
        request.ca_file = Some("/etc/ca.pem".into());
        request.connect_timeout = Duration::from_millis(1234);
        request.body_limit = 77;
        let raw = lend(&request);
        // SAFETY: `raw` borrows `request`, alive here.
        let copy = unsafe { copy_request(&raw) };
        assert_eq!(copy, request);
        // Absent and empty stay distinct.
        assert_eq!(copy.content_type, None);
        assert_eq!(copy.bearer.as_deref(), Some(""));
    }

    #[test]
    fn answers_and_errors_cross_unchanged() {
        let answer = Answer {
            status: 304,
            etag: Some("\"v2\"".into()),
            body: vec![0, 159, 146, 150],
        };
        assert_eq!(round_trip(Ok(answer.clone())), Ok(answer));
        for e in [
            TransportError::Transport("connection refused".into()),
            TransportError::Config {
                what: "caFile /x: no CERTIFICATE block".into(),
                fix: "point caFile at a PEM file".into(),
            },
            TransportError::Unavailable("no client".into()),
        ] {
            assert_eq!(round_trip(Err(e.clone())), Err(e));
        }
    }
}

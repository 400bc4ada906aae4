//! Requests through `libldguard_net.so`, loaded on the first request.
//!
//! Where: the directory of the object that holds this code (libldguard.so),
//! and only when that object was loaded by an absolute path, so that no
//! working directory or search path can choose the code that is loaded.
//! The file must be a regular file owned by root or by the owner of our own
//! object, writable by no one else.
//!
//! How: with the dynamic loader's own `dlopen` (looked up past our object),
//! not the program's hooked one: this load is the library's, not the
//! program's, and is neither checked against the drift manifest nor reported.
//! `RTLD_LOCAL`, so nothing it defines becomes visible to the program, and
//! never unloaded. Its calls into libc are interposed by libldguard.so like
//! any other library's; the threads that make requests are the library's own.

use super::abi::{self, ExchangeFn, RawAnswer};
use super::{Answer, Exchange, TransportError};
use std::ffi::{c_void, CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicPtr, Ordering};

/// The file name next to libldguard.so.
pub const NET_LIBRARY: &str = "libldguard_net.so";

/// The loaded exchange function; null until loaded. An atomic rather than a
/// `OnceLock`: a fork while another thread loads must not leave the child
/// waiting on an initialisation that will never finish. Two threads racing
/// both call `dlopen`, which returns the same handle.
static EXCHANGE: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());

pub(super) fn exchange(request: &Exchange) -> Result<Answer, TransportError> {
    let function = loaded()?;
    let raw = abi::lend(request);
    let mut answer: Option<Result<Answer, TransportError>> = None;
    // SAFETY: `function` has the `ExchangeFn` signature (checked by the
    // versioned symbol name); `raw` and `answer` outlive the call, and
    // `keep` writes only to the `Option` it is given.
    let status = unsafe { function(&raw, (&mut answer as *mut Option<_>).cast(), keep) };
    match answer {
        Some(result) if status == 0 => result,
        _ => Err(TransportError::Transport(format!(
            "{NET_LIBRARY} gave no answer (status {status})"
        ))),
    }
}

unsafe extern "C" fn keep(context: *mut c_void, answer: *const RawAnswer) {
    if context.is_null() || answer.is_null() {
        return;
    }
    // SAFETY: `context` is the `Option` passed by `exchange` above and
    // `answer` is lent, valid, for the duration of this call.
    unsafe {
        *context.cast::<Option<Result<Answer, TransportError>>>() =
            Some(abi::copy_answer(&*answer));
    }
}

fn loaded() -> Result<ExchangeFn, TransportError> {
    let mut function = EXCHANGE.load(Ordering::Acquire);
    if function.is_null() {
        function = load()?;
        EXCHANGE.store(function, Ordering::Release);
    }
    // SAFETY: only `load` stores here, and only a non-null pointer to the
    // symbol named `abi::EXCHANGE_SYMBOL`, which has this signature.
    Ok(unsafe { std::mem::transmute::<*mut c_void, ExchangeFn>(function) })
}

fn unavailable(why: String) -> TransportError {
    TransportError::Unavailable(format!(
        "{why}; HTTPS policy sources and event sinks need {NET_LIBRARY} next to libldguard.so \
         (the ldguard layer installs both; scripts/build-lib builds both)"
    ))
}

/// Our own object's path.
fn own_path() -> Result<PathBuf, TransportError> {
    // SAFETY: all-zero is a valid `Dl_info` (null pointers) for dladdr to fill.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr only reads the loader's tables and fills `info`; the
    // address is a function of this object.
    let found = unsafe { libc::dladdr(own_path as *const c_void, &mut info) };
    if found == 0 || info.dli_fname.is_null() {
        return Err(unavailable(
            "the loader does not know which file holds libldguard".to_string(),
        ));
    }
    // SAFETY: dladdr set `dli_fname` to the loader's NUL-terminated name of
    // the object, which lives as long as the object stays loaded (for good).
    let name = unsafe { CStr::from_ptr(info.dli_fname) };
    let path = PathBuf::from(std::ffi::OsStr::from_bytes(name.to_bytes()));
    if !path.is_absolute() {
        return Err(unavailable(format!(
            "libldguard was loaded as {:?}, not by an absolute path, so {NET_LIBRARY} is not looked for",
            path
        )));
    }
    Ok(path)
}

/// Refuses a helper library anyone but its owner (root, or the owner of
/// libldguard itself) could have replaced.
fn check_owner(own: &Path, net: &Path) -> Result<(), TransportError> {
    let net_meta = std::fs::metadata(net)
        .map_err(|e| unavailable(format!("{} cannot be used: {e}", net.display())))?;
    let own_uid = std::fs::metadata(own).map(|m| m.uid()).unwrap_or(0);
    if !net_meta.is_file() {
        return Err(unavailable(format!("{} is not a file", net.display())));
    }
    if net_meta.uid() != 0 && net_meta.uid() != own_uid {
        return Err(unavailable(format!(
            "{} is owned by uid {}, neither root nor the owner of libldguard",
            net.display(),
            net_meta.uid()
        )));
    }
    if net_meta.mode() & 0o022 != 0 {
        return Err(unavailable(format!(
            "{} is writable by group or others (mode {:o})",
            net.display(),
            net_meta.mode() & 0o7777
        )));
    }
    Ok(())
}

type DlopenFn = unsafe extern "C" fn(*const libc::c_char, libc::c_int) -> *mut c_void;

fn load() -> Result<*mut c_void, TransportError> {
    let own = own_path()?;
    let net = own
        .parent()
        .map(|d| d.join(NET_LIBRARY))
        .ok_or_else(|| unavailable(format!("{} has no directory", own.display())))?;
    check_owner(&own, &net)?;
    let c_path = CString::new(net.as_os_str().as_bytes())
        .map_err(|_| unavailable(format!("{} holds a NUL byte", net.display())))?;
    // SAFETY: RTLD_NEXT lookup of a libc function by its NUL-terminated name.
    let real = unsafe { libc::dlsym(libc::RTLD_NEXT, c"dlopen".as_ptr()) };
    let real_dlopen: DlopenFn = if real.is_null() {
        libc::dlopen
    } else {
        // SAFETY: the next definition of `dlopen` has dlopen's signature.
        unsafe { std::mem::transmute::<*mut c_void, DlopenFn>(real) }
    };
    // SAFETY: a valid NUL-terminated path and flags; the handle is never closed.
    let handle = unsafe { real_dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if handle.is_null() {
        return Err(unavailable(format!(
            "{} cannot be loaded: {}",
            net.display(),
            dlerror()
        )));
    }
    // SAFETY: a live handle and a NUL-terminated symbol name.
    let symbol = unsafe { libc::dlsym(handle, abi::EXCHANGE_SYMBOL.as_ptr().cast()) };
    if symbol.is_null() {
        return Err(unavailable(format!(
            "{} has no {} (a library of another ldguard version?)",
            net.display(),
            String::from_utf8_lossy(&abi::EXCHANGE_SYMBOL[..abi::EXCHANGE_SYMBOL.len() - 1])
        )));
    }
    Ok(symbol)
}

fn dlerror() -> String {
    // SAFETY: dlerror returns null or a NUL-terminated string valid until
    // the next dl* call on this thread; it is copied at once.
    unsafe {
        let e = libc::dlerror();
        if e.is_null() {
            "unknown error".to_string()
        } else {
            CStr::from_ptr(e).to_string_lossy().into_owned()
        }
    }
}

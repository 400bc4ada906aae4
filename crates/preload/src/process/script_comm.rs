//! The name (`comm`) of a `#!` script the library ran itself.
//!
//! The kernel names a process after the last name of the path it was
//! given, so a script run by path is called after the script (`ps -o
//! comm`, `pkill -x`, `killall` match on it). When the library runs a
//! script's interpreter itself (`hooks::exec`: the script's descriptor
//! cannot be handed to the kernel's script handler), the kernel names the
//! process after the interpreter. The exec therefore adds
//! `LDGUARD_SCRIPT_COMM=pid=PID:NAME` (an exec, which keeps the PID) or
//! `LDGUARD_SCRIPT_COMM=ppid=PID:NAME` (`posix_spawn`: the child's parent)
//! in front of the new environment, and the new process's library sets
//! `comm` to NAME before anything runs, and takes the variable out of the
//! environment so the script and its children never see it.
//!
//! Only the process the PID points at honours it: an interpreter without
//! the library (static) would pass it on, and its children must not take
//! the script's name.

use crate::os::sys::{last_name, put_cstr};
use std::ffi::c_char;

/// The variable's name and `=`.
pub const VAR: &[u8] = b"LDGUARD_SCRIPT_COMM=";

/// The kernel's `comm` holds 15 bytes and a NUL.
pub const COMM_LEN: usize = 15;

/// Room for [`marker`]'s string.
pub const MARKER_LEN: usize = VAR.len() + "ppid=".len() + 11 + 1 + COMM_LEN + 1;

/// Which process a marker names.
#[derive(Clone, Copy)]
pub enum Who {
    /// The process with this PID: the exec's own.
    This(i32),
    /// The child of the process with this PID: a spawn's.
    ChildOf(i32),
}

/// Sets `comm` from the variable if it names this process, and removes
/// every definition of it from `environ`. Runs in the library's
/// constructor, before the program or another thread can read `environ`.
pub fn restore() {
    extern "C" {
        static mut environ: *mut *mut c_char;
    }
    // SAFETY: libc's `environ` is NULL or a NULL-terminated array of
    // NUL-terminated strings; in the constructor no other thread runs.
    let mut entry = unsafe { environ };
    if entry.is_null() {
        return;
    }
    loop {
        // SAFETY: `entry` lies within the array, at or before its NULL.
        let var = unsafe { *entry };
        if var.is_null() {
            return;
        }
        // SAFETY: `var` is a NUL-terminated string.
        let Some(value) = (unsafe { value_of(var) }) else {
            // SAFETY: not the NULL, so the next entry is in the array.
            entry = unsafe { entry.add(1) };
            continue;
        };
        if let Some(name) = own_name(value) {
            set_comm(name);
        }
        // Removed as `unsetenv` removes: the later entries, with the NULL,
        // move down by one.
        let mut at = entry;
        // SAFETY: every `at` up to the NULL lies in the array.
        unsafe {
            loop {
                *at = *at.add(1);
                if (*at).is_null() {
                    break;
                }
                at = at.add(1);
            }
        }
    }
}

/// The value of `var` if it is [`VAR`].
///
/// # Safety
/// `var` is a NUL-terminated string.
unsafe fn value_of<'a>(var: *const c_char) -> Option<&'a [u8]> {
    // SAFETY: the caller's promise.
    if !unsafe { crate::os::sys::c_starts_with(var, VAR) } {
        return None;
    }
    // SAFETY: the string goes on past the prefix to its NUL.
    Some(unsafe { std::ffi::CStr::from_ptr(var.add(VAR.len())) }.to_bytes())
}

/// NAME from `pid=PID:NAME` when PID is this process, or from
/// `ppid=PID:NAME` when it is this process's parent.
fn own_name(value: &[u8]) -> Option<&[u8]> {
    let colon = value.iter().position(|&b| b == b':')?;
    let (who, name) = (&value[..colon], &value[colon + 1..]);
    let pid = |digits: &[u8]| std::str::from_utf8(digits).ok()?.parse::<i32>().ok();
    let ours = if let Some(p) = who.strip_prefix(b"pid=") {
        pid(p)? == crate::os::sys::getpid()
    } else if let Some(p) = who.strip_prefix(b"ppid=") {
        // SAFETY: getppid has no preconditions.
        pid(p)? == unsafe { libc::getppid() }
    } else {
        false
    };
    ours.then_some(name)
}

fn set_comm(name: &[u8]) {
    let mut comm = [0u8; COMM_LEN + 1];
    if put_cstr(&mut comm, 0, name.get(..COMM_LEN).unwrap_or(name)).is_some() {
        // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16
        // bytes.
        unsafe { libc::prctl(libc::PR_SET_NAME, comm.as_ptr()) };
    }
}

/// Writes the variable that names `who` after the script at `path` (its
/// last name, cut as the kernel cuts `comm`) into `out`, NUL-terminated;
/// returns its pointer.
pub fn marker(who: Who, path: &[u8], out: &mut [u8; MARKER_LEN]) -> *const c_char {
    let name = last_name(path);
    let name = name.get(..COMM_LEN).unwrap_or(name);
    let (tag, pid): (&[u8], i32) = match who {
        Who::This(pid) => (b"pid=", pid),
        Who::ChildOf(pid) => (b"ppid=", pid),
    };
    // The PID in decimal (at most 10 digits), written backwards.
    let mut digits = [0u8; 10];
    let mut len = 0;
    let mut v = pid.unsigned_abs();
    for d in digits.iter_mut() {
        *d = b'0' + (v % 10) as u8;
        len += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let digits = digits.get_mut(..len).unwrap_or_default();
    digits.reverse();
    // Each part overwrites the previous part's NUL; MARKER_LEN holds them.
    let mut at = 0;
    for part in [VAR, tag, &*digits, b":", name] {
        at = put_cstr(out, at, part).map_or(at, |end| end - 1);
    }
    out.as_ptr().cast()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_names_only_its_own_process() {
        let mut buf = [0u8; MARKER_LEN];
        let me = crate::os::sys::getpid();
        // SAFETY: as above.
        let parent = unsafe { libc::getppid() };
        let name_of = |who: Who, name: &[u8], buf: &mut [u8; MARKER_LEN]| {
            let p = marker(who, name, buf);
            // SAFETY: `marker` wrote a NUL-terminated string.
            let value = unsafe { value_of(p) }.unwrap();
            own_name(value).map(<[u8]>::to_vec)
        };
        let long = b"/x/a-rather-long-script-name.sh";
        assert_eq!(
            name_of(Who::This(me), long, &mut buf).as_deref(),
            Some(&long[3..18])
        );
        assert_eq!(
            name_of(Who::ChildOf(parent), b"./s.sh", &mut buf).as_deref(),
            Some(&b"s.sh"[..])
        );
        assert_eq!(name_of(Who::This(me + 1), b"x", &mut buf), None);
        assert_eq!(name_of(Who::ChildOf(me), b"x", &mut buf), None);
        assert_eq!(name_of(Who::This(i32::MAX), b"x", &mut buf), None);
        assert_eq!(own_name(b"12x:name"), None);
        assert_eq!(own_name(format!("{me}:name").as_bytes()), None);
        assert_eq!(own_name(b"noname"), None);
        // SAFETY: a NUL-terminated literal.
        assert!(unsafe { value_of(c"LDGUARD_SCRIPT_COM".as_ptr()) }.is_none());
    }
}

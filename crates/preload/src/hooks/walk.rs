//! Directory walkers that read directories inside libc: `nftw`/`ftw` and
//! the `fts_*` family. The starting directories are checked like
//! `opendir`; below them, a directory whose reading a rule denies is not
//! descended into (`fts`: skipped) or its entries are withheld from the
//! caller (`nftw`, which offers no way to skip without
//! `FTW_ACTIONRETVAL`), with one event per denied directory.

use super::borrowed::{check_file, Follow};
use crate::decide::check::{fail, Verdict};
use crate::os::real::next;
use crate::os::sys::cstr;
use ldguard_policy::{Access, Call};
use libc::{c_char, c_int, c_void};
use std::cell::RefCell;

fn read_dir(call: Call, path: *const c_char) -> Verdict {
    check_file(call, libc::AT_FDCWD, path, Access::Read, Follow::Yes)
}

/// `struct FTW`.
#[repr(C)]
pub struct Ftw {
    base: c_int,
    level: c_int,
}

type NftwFn = unsafe extern "C" fn(*const c_char, *const c_void, c_int, *mut Ftw) -> c_int;
type FtwFn = unsafe extern "C" fn(*const c_char, *const c_void, c_int) -> c_int;

#[derive(Clone, Copy)]
enum Callback {
    Nftw(NftwFn),
    Ftw(FtwFn),
}

/// The walk in progress on this thread: the caller's callback, the last
/// directory found readable and the last found denied (entries below it
/// are withheld without asking again).
#[derive(Default)]
struct Walk {
    callback: Option<Callback>,
    /// `FTW_CHDIR`: nftw calls back from inside the entry's directory, so
    /// that directory is `.` (a relative `fpath` no longer resolves).
    chdir: bool,
    readable: Vec<u8>,
    denied: Vec<u8>,
}

thread_local! {
    static WALK: RefCell<Walk> = RefCell::new(Walk::default());
}

fn under(path: &[u8], dir: &[u8]) -> bool {
    !dir.is_empty() && path.starts_with(dir) && (path.len() == dir.len() || path[dir.len()] == b'/')
}

/// Whether an entry in directory `dir` may be shown.
fn visible(dir: &[u8]) -> bool {
    let known = WALK.with(|w| {
        let w = w.borrow();
        if under(dir, &w.denied) {
            Some(false)
        } else {
            (dir == w.readable.as_slice()).then_some(true)
        }
    });
    if let Some(v) = known {
        return v;
    }
    let ok = if WALK.with(|w| w.borrow().chdir) {
        read_dir(Call::Nftw, c".".as_ptr()) == Verdict::Allow
    } else {
        let mut z = Vec::with_capacity(dir.len() + 1);
        z.extend_from_slice(dir);
        z.push(0);
        read_dir(Call::Nftw, z.as_ptr().cast()) == Verdict::Allow
    };
    WALK.with(|w| {
        let mut w = w.borrow_mut();
        let slot = if ok { &mut w.readable } else { &mut w.denied };
        slot.clear();
        slot.extend_from_slice(dir);
    });
    ok
}

unsafe extern "C" fn entry(
    path: *const c_char,
    st: *const c_void,
    flag: c_int,
    ftw: *mut Ftw,
) -> c_int {
    // SAFETY: nftw passes a NUL-terminated path.
    let Some(p) = (unsafe { cstr(path) }) else {
        return 0;
    };
    // SAFETY: nftw passes a valid FTW.
    let Some(f) = (unsafe { ftw.as_ref() }) else {
        return 0;
    };
    if f.level > 0 {
        let dir = &p[..(f.base as usize).saturating_sub(1).min(p.len())];
        if !visible(dir) {
            return 0; // FTW_CONTINUE
        }
    }
    match WALK.with(|w| w.borrow().callback) {
        // SAFETY: the caller's callback with nftw's own arguments.
        Some(Callback::Nftw(cb)) => unsafe { cb(path, st, flag, ftw) },
        // SAFETY: as above; ftw callbacks take three.
        Some(Callback::Ftw(cb)) => unsafe { cb(path, st, flag) },
        None => 0,
    }
}

/// Runs a walk of `dir` with `callback`, checking `dir` first; the state
/// of a walk the callback interrupted (a nested walk) is kept aside.
fn walk(
    dir: *const c_char,
    callback: Callback,
    flags: c_int,
    run: impl FnOnce(NftwFn) -> c_int,
) -> c_int {
    const FTW_CHDIR: c_int = 4;
    if let Verdict::Deny(e) = read_dir(Call::Nftw, dir) {
        return fail(e, -1);
    }
    if let (true, Callback::Nftw(cb)) = (crate::load::state::is_off(), callback) {
        return run(cb);
    }
    // The root was just checked: its entries need no second check.
    // SAFETY: a NUL-terminated path (checked non-null by read_dir's caller
    // contract: nftw requires one).
    let root = unsafe { cstr(dir) }.unwrap_or(b"");
    let root = match root {
        [rest @ .., b'/'] if !rest.is_empty() => rest,
        r => r,
    };
    let outer = WALK.with(|w| {
        std::mem::replace(
            &mut *w.borrow_mut(),
            Walk {
                callback: Some(callback),
                chdir: flags & FTW_CHDIR != 0,
                readable: root.to_vec(),
                denied: Vec::new(),
            },
        )
    });
    let r = run(entry);
    WALK.with(|w| *w.borrow_mut() = outer);
    r
}

type NftwImpl = unsafe extern "C" fn(*const c_char, NftwFn, c_int, c_int) -> c_int;

macro_rules! nftw_hook {
    ($name:ident) => {
        /// # Safety
        /// libc ABI.
        #[no_mangle]
        pub unsafe extern "C" fn $name(dir: *const c_char, cb: NftwFn, fds: c_int, flags: c_int) -> c_int {
            let Some(real) = next!($name: NftwImpl) else {
                return fail(libc::ENOSYS, -1);
            };
            // SAFETY: forwarding, with our callback in front of the caller's.
            walk(dir, Callback::Nftw(cb), flags, |f| unsafe { real(dir, f, fds, flags) })
        }
    };
}
nftw_hook!(nftw);
nftw_hook!(nftw64);

macro_rules! ftw_hook {
    ($name:ident, $nftw:ident) => {
        /// `ftw` is `nftw` with no flags, its callback given three arguments.
        ///
        /// # Safety
        /// libc ABI.
        #[no_mangle]
        pub unsafe extern "C" fn $name(dir: *const c_char, cb: FtwFn, fds: c_int) -> c_int {
            if crate::load::state::is_off() {
                type F = unsafe extern "C" fn(*const c_char, FtwFn, c_int) -> c_int;
                // SAFETY: forwarding.
                return next!($name: F).map_or_else(|| fail(libc::ENOSYS, -1), |f| unsafe { f(dir, cb, fds) });
            }
            let Some(real) = next!($nftw: NftwImpl) else {
                return fail(libc::ENOSYS, -1);
            };
            // SAFETY: nftw with flags 0 walks as ftw does.
            walk(dir, Callback::Ftw(cb), 0, |f| unsafe { real(dir, f, fds, 0) })
        }
    };
}
ftw_hook!(ftw, nftw);
ftw_hook!(ftw64, nftw64);

/// The start of glibc's `FTSENT` (and `FTSENT64`: the same on LP64).
#[repr(C)]
pub struct FtsEnt {
    cycle: *mut FtsEnt,
    parent: *mut FtsEnt,
    link: *mut FtsEnt,
    number: std::ffi::c_long,
    pointer: *mut c_void,
    accpath: *mut c_char,
    path: *mut c_char,
    errno: c_int,
    symfd: c_int,
    pathlen: u16,
    namelen: u16,
    ino: u64,
    dev: u64,
    nlink: u64,
    level: i16,
    info: u16,
}

/// The start of glibc's `FTS`.
#[repr(C)]
pub struct Fts {
    cur: *mut FtsEnt,
}

const FTS_D: u16 = 1;
const FTS_SKIP: c_int = 4;

type FtsOpenFn = unsafe extern "C" fn(*const *const c_char, c_int, *const c_void) -> *mut Fts;
type FtsReadFn = unsafe extern "C" fn(*mut Fts) -> *mut FtsEnt;
type FtsSetFn = unsafe extern "C" fn(*mut Fts, *mut FtsEnt, c_int) -> c_int;
type FtsChildrenFn = unsafe extern "C" fn(*mut Fts, c_int) -> *mut FtsEnt;

/// Every starting path of `fts_open`.
fn check_roots(roots: *const *const c_char) -> Verdict {
    if roots.is_null() {
        return Verdict::Allow;
    }
    for i in 0..4096 {
        // SAFETY: a NULL-terminated array of paths.
        let p = unsafe { *roots.add(i) };
        if p.is_null() {
            break;
        }
        if let v @ Verdict::Deny(_) = read_dir(Call::FtsOpen, p) {
            return v;
        }
    }
    Verdict::Allow
}

/// Whether fts may read the directory `e` (reached through its
/// `fts_accpath`, valid from fts's current directory); the roots were
/// checked by `fts_open`.
fn check_entry(e: &FtsEnt) -> Verdict {
    if cfg!(target_env = "musl") || e.info != FTS_D || e.level <= 0 {
        return Verdict::Allow;
    }
    read_dir(Call::FtsRead, e.accpath)
}

macro_rules! fts_hooks {
    ($open:ident, $read:ident, $set:ident, $children:ident) => {
        /// # Safety
        /// libc ABI.
        #[no_mangle]
        pub unsafe extern "C" fn $open(roots: *const *const c_char, options: c_int, compar: *const c_void) -> *mut Fts {
            if let Verdict::Deny(e) = check_roots(roots) {
                return fail(e, std::ptr::null_mut());
            }
            // SAFETY: forwarding.
            next!($open: FtsOpenFn).map_or_else(
                || fail(libc::ENOSYS, std::ptr::null_mut()),
                |f| unsafe { f(roots, options, compar) },
            )
        }

        /// A directory below the roots that may not be read is returned
        /// (its parent's listing shows it) but not descended into.
        ///
        /// # Safety
        /// libc ABI.
        #[no_mangle]
        pub unsafe extern "C" fn $read(fts: *mut Fts) -> *mut FtsEnt {
            let Some(read) = next!($read: FtsReadFn) else {
                return fail(libc::ENOSYS, std::ptr::null_mut());
            };
            // SAFETY: forwarding.
            let e = unsafe { read(fts) };
            // SAFETY: null or the entry fts just returned.
            if let Some(ent) = unsafe { e.as_ref() } {
                if check_entry(ent) != Verdict::Allow {
                    if let Some(set) = next!($set: FtsSetFn) {
                        // SAFETY: skipping the entry just returned, as fts_set allows.
                        unsafe { set(fts, e, FTS_SKIP) };
                    }
                }
            }
            e
        }

        /// # Safety
        /// libc ABI.
        #[no_mangle]
        pub unsafe extern "C" fn $children(fts: *mut Fts, options: c_int) -> *mut FtsEnt {
            // SAFETY: a valid FTS; fts_cur is null or the current entry.
            let cur = unsafe { fts.as_ref().and_then(|f| f.cur.as_ref()) };
            if let Some(Verdict::Deny(e)) = cur.map(check_entry) {
                return fail(e, std::ptr::null_mut());
            }
            // SAFETY: forwarding.
            next!($children: FtsChildrenFn).map_or_else(
                || fail(libc::ENOSYS, std::ptr::null_mut()),
                |f| unsafe { f(fts, options) },
            )
        }
    };
}
fts_hooks!(fts_open, fts_read, fts_set, fts_children);
fts_hooks!(fts64_open, fts64_read, fts64_set, fts64_children);

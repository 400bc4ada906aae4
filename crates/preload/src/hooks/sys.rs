//! Sensitive system calls: the named libc wrappers and `syscall()` with
//! their numbers. Wrappers glibc lacks (or gained late) fall back to the
//! raw system call.

use crate::check::{fail, judge, run, Verdict};
use crate::real::next;
use crate::sys::raw_syscall;
use ldguard_policy::{Call, Kind, Request};
use libc::{c_char, c_int, c_long, c_uint, c_ulong, c_void, gid_t, pid_t, uid_t};

/// Checks a call by name.
pub fn check_call(call: Call) -> Verdict {
    run(|active| {
        judge(
            active,
            &Request::new(Kind::Syscall, call, active.program),
            |_| {},
        )
    })
}

/// The interposed call a `syscall()` number stands for.
fn call_for_number(nr: c_long) -> Option<Call> {
    Some(match nr {
        libc::SYS_ptrace => Call::Ptrace,
        libc::SYS_mount => Call::Mount,
        libc::SYS_umount2 => Call::Umount2,
        libc::SYS_chroot => Call::Chroot,
        libc::SYS_pivot_root => Call::PivotRoot,
        libc::SYS_unshare => Call::Unshare,
        libc::SYS_setns => Call::Setns,
        libc::SYS_setuid => Call::Setuid,
        libc::SYS_setgid => Call::Setgid,
        libc::SYS_setreuid => Call::Setreuid,
        libc::SYS_setregid => Call::Setregid,
        libc::SYS_setresuid => Call::Setresuid,
        libc::SYS_setresgid => Call::Setresgid,
        libc::SYS_setfsuid => Call::Setfsuid,
        libc::SYS_setfsgid => Call::Setfsgid,
        libc::SYS_setgroups => Call::Setgroups,
        libc::SYS_capset => Call::Capset,
        libc::SYS_memfd_create => Call::MemfdCreate,
        libc::SYS_init_module => Call::InitModule,
        libc::SYS_finit_module => Call::FinitModule,
        libc::SYS_bpf => Call::Bpf,
        libc::SYS_keyctl => Call::Keyctl,
        libc::SYS_personality => Call::Personality,
        _ => return None,
    })
}

/// Target of the C shim's `syscall`.
///
/// # Safety
/// Called by the shim with the caller's arguments.
#[no_mangle]
pub unsafe extern "C" fn ldguard_syscall(
    nr: c_long,
    a1: c_long,
    a2: c_long,
    a3: c_long,
    a4: c_long,
    a5: c_long,
    a6: c_long,
) -> c_long {
    if let Some(call) = call_for_number(nr) {
        if let Verdict::Deny(e) = check_call(call) {
            return fail(e, -1);
        }
    }
    raw_syscall(nr, [a1, a2, a3, a4, a5, a6])
}

/// Target of the C shim's `ptrace`.
///
/// # Safety
/// Called by the shim with the caller's arguments.
#[no_mangle]
pub unsafe extern "C" fn ldguard_ptrace(
    request: c_int,
    pid: pid_t,
    addr: *mut c_void,
    data: *mut c_void,
) -> c_long {
    if let Verdict::Deny(e) = check_call(Call::Ptrace) {
        return fail(e, -1);
    }
    match next!(ptrace: unsafe extern "C" fn(c_int, ...) -> c_long) {
        // SAFETY: forwarding; glibc's ptrace reads exactly these three.
        Some(f) => unsafe { f(request, pid, addr, data) },
        None => raw_syscall(
            libc::SYS_ptrace,
            [
                request as c_long,
                pid as c_long,
                addr as c_long,
                data as c_long,
                0,
                0,
            ],
        ),
    }
}

/// Target of the C shim's `keyctl` (libkeyutils; the system call when the
/// program does not link it).
///
/// # Safety
/// Called by the shim with the caller's arguments.
#[no_mangle]
pub unsafe extern "C" fn ldguard_keyctl(
    op: c_int,
    a2: c_ulong,
    a3: c_ulong,
    a4: c_ulong,
    a5: c_ulong,
) -> c_long {
    if let Verdict::Deny(e) = check_call(Call::Keyctl) {
        return fail(e, -1);
    }
    match next!(keyctl: unsafe extern "C" fn(c_int, ...) -> c_long) {
        // SAFETY: forwarding.
        Some(f) => unsafe { f(op, a2, a3, a4, a5) },
        None => raw_syscall(
            libc::SYS_keyctl,
            [
                op as c_long,
                a2 as c_long,
                a3 as c_long,
                a4 as c_long,
                a5 as c_long,
                0,
            ],
        ),
    }
}

/// Defines a wrapper hook: check by name, forward to libc's wrapper, or
/// make the system call `$nr` when libc has none.
macro_rules! sys_hook {
    ($name:ident = $call:ident, $nr:expr, ($($arg:ident: $ty:ty),*) -> $ret:ty) => {
        /// # Safety
        /// libc ABI.
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            if let Verdict::Deny(e) = check_call(Call::$call) {
                return fail(e, -1 as $ret);
            }
            type F = unsafe extern "C" fn($($ty),*) -> $ret;
            match next!($name: F) {
                // SAFETY: forwarding the caller's arguments.
                Some(f) => unsafe { f($($arg),*) },
                None => {
                    let mut a = [0 as c_long; 6];
                    let args = [$($arg as c_long),*];
                    a[..args.len()].copy_from_slice(&args);
                    raw_syscall($nr, a) as $ret
                }
            }
        }
    };
}

sys_hook!(mount = Mount, libc::SYS_mount,
    (src: *const c_char, target: *const c_char, fstype: *const c_char, flags: c_ulong, data: *const c_void) -> c_int);
sys_hook!(umount2 = Umount2, libc::SYS_umount2, (target: *const c_char, flags: c_int) -> c_int);
sys_hook!(chroot = Chroot, libc::SYS_chroot, (path: *const c_char) -> c_int);
sys_hook!(pivot_root = PivotRoot, libc::SYS_pivot_root, (new_root: *const c_char, put_old: *const c_char) -> c_int);
sys_hook!(unshare = Unshare, libc::SYS_unshare, (flags: c_int) -> c_int);
sys_hook!(setns = Setns, libc::SYS_setns, (fd: c_int, nstype: c_int) -> c_int);
sys_hook!(setuid = Setuid, libc::SYS_setuid, (uid: uid_t) -> c_int);
sys_hook!(setgid = Setgid, libc::SYS_setgid, (gid: gid_t) -> c_int);
// seteuid/setegid have no system call of their own; every libc has them.
sys_hook!(seteuid = Seteuid, -1, (uid: uid_t) -> c_int);
sys_hook!(setegid = Setegid, -1, (gid: gid_t) -> c_int);
sys_hook!(setreuid = Setreuid, libc::SYS_setreuid, (r: uid_t, e: uid_t) -> c_int);
sys_hook!(setregid = Setregid, libc::SYS_setregid, (r: gid_t, e: gid_t) -> c_int);
sys_hook!(setresuid = Setresuid, libc::SYS_setresuid, (r: uid_t, e: uid_t, s: uid_t) -> c_int);
sys_hook!(setresgid = Setresgid, libc::SYS_setresgid, (r: gid_t, e: gid_t, s: gid_t) -> c_int);
sys_hook!(setfsuid = Setfsuid, libc::SYS_setfsuid, (uid: uid_t) -> c_int);
sys_hook!(setfsgid = Setfsgid, libc::SYS_setfsgid, (gid: gid_t) -> c_int);
sys_hook!(setgroups = Setgroups, libc::SYS_setgroups, (size: usize, list: *const gid_t) -> c_int);
sys_hook!(capset = Capset, libc::SYS_capset, (hdr: *mut c_void, data: *const c_void) -> c_int);
sys_hook!(memfd_create = MemfdCreate, libc::SYS_memfd_create, (name: *const c_char, flags: c_uint) -> c_int);
sys_hook!(init_module = InitModule, libc::SYS_init_module,
    (image: *mut c_void, len: c_ulong, params: *const c_char) -> c_int);
sys_hook!(finit_module = FinitModule, libc::SYS_finit_module, (fd: c_int, params: *const c_char, flags: c_int) -> c_int);
sys_hook!(bpf = Bpf, libc::SYS_bpf, (cmd: c_int, attr: *mut c_void, size: c_uint) -> c_int);
sys_hook!(personality = Personality, libc::SYS_personality, (persona: c_ulong) -> c_int);

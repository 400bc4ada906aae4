//! Sensitive system calls: the named libc wrappers and `syscall()` with
//! their numbers. Wrappers glibc lacks (or gained late) fall back to the
//! raw system call.

use crate::decide::check::{fail, judge, refuse_unruled, run, Verdict};
use crate::os::real::next;
use crate::os::sys::raw_syscall;
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

/// The syscall-kind call a `syscall()` number stands for: the named call,
/// or the call whose capability it reaches (see docs/policy.md, "Syscall
/// groups"). `a` are the system call's arguments.
fn call_for_number(nr: c_int, a: &[c_long; 6]) -> Option<Call> {
    Some(match nr as c_long {
        libc::SYS_ptrace
        | libc::SYS_process_vm_readv
        | libc::SYS_process_vm_writev
        | libc::SYS_pidfd_getfd => Call::Ptrace,
        libc::SYS_mount
        | libc::SYS_open_tree
        | libc::SYS_move_mount
        | libc::SYS_fsopen
        | libc::SYS_fsconfig
        | libc::SYS_fsmount
        | libc::SYS_fspick
        | libc::SYS_mount_setattr => Call::Mount,
        libc::SYS_umount2 => Call::Umount2,
        libc::SYS_chroot => Call::Chroot,
        libc::SYS_pivot_root => Call::PivotRoot,
        libc::SYS_unshare => Call::Unshare,
        libc::SYS_clone if clone_makes_namespaces(a[0] as u64) => Call::Unshare,
        // struct clone_args starts with the u64 flags.
        libc::SYS_clone3 if clone3_makes_namespaces(a[0], a[1]) => Call::Unshare,
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

/// The namespace flags of clone/clone3/unshare: each makes a namespace.
const CLONE_NEW: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | 0x80) as u64; // CLONE_NEWTIME

fn makes_namespaces(flags: u64) -> bool {
    flags & CLONE_NEW != 0
}

/// `clone()` (the system call and libc's) keeps the exit signal in the
/// low byte of its flags (`CSIGNAL`), where clone3 has `CLONE_NEWTIME`.
fn clone_makes_namespaces(flags: u64) -> bool {
    makes_namespaces(flags & !0xff)
}

/// Whether a `clone3(args, size)` asks for a namespace. An unreadable
/// argument block is counted as asking (the kernel then fails the call).
fn clone3_makes_namespaces(args: c_long, size: c_long) -> bool {
    if args == 0 || (size as usize) < std::mem::size_of::<u64>() {
        return true;
    }
    // SAFETY: the caller passes a clone_args block of `size` bytes, which
    // starts with the flags; a bad pointer would fault in the kernel too,
    // so the caller's contract already requires a readable one.
    let flags = unsafe { std::ptr::read_unaligned(args as *const u64) };
    makes_namespaces(flags)
}

/// x86_64 numbers with the x32 bit set reach the x32 table, whose numbers
/// below 512 are the same calls; the x32-only numbers from 512 on are
/// mapped to their x86_64 twins here.
#[cfg(target_arch = "x86_64")]
fn native_number(nr: c_int) -> c_int {
    const X32: c_int = 0x4000_0000;
    if nr & X32 == 0 {
        return nr;
    }
    match nr & !X32 {
        520 => libc::SYS_execve as c_int,
        545 => libc::SYS_execveat as c_int,
        518 => libc::SYS_sendmsg as c_int,
        521 => libc::SYS_ptrace as c_int,
        538 => libc::SYS_sendmmsg as c_int,
        539 => libc::SYS_process_vm_readv as c_int,
        540 => libc::SYS_process_vm_writev as c_int,
        n => n,
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn native_number(nr: c_int) -> c_int {
    nr
}

/// Checks a `syscall()` the way the kernel will read it: the number as a
/// 32-bit int, then routed to the check of the operation it performs.
fn check_number(nr: c_long, a: &[c_long; 6]) -> Verdict {
    let nr = native_number(nr as c_int);
    if nr as c_long == libc::SYS_io_uring_setup {
        return check_ring();
    }
    if let Some(call) = call_for_number(nr, a) {
        return match call {
            Call::PivotRoot => check_root(call, a[0] as *const c_char),
            Call::Mount if nr as c_long == libc::SYS_mount => {
                check_mount(a[0] as _, a[1] as _, a[2] as _, a[3] as c_ulong, a[4] as _)
            }
            Call::Mount if nr as c_long == libc::SYS_fsopen => rule_then(
                Call::Mount,
                Some(|| super::mount::check_fsopen(a[0] as *const c_char)),
            ),
            Call::Mount if nr as c_long == libc::SYS_fsconfig => {
                check_fsconfig(a[1] as c_uint, a[2] as _, a[3] as _, a[4] as c_int)
            }
            Call::Mount if nr as c_long == libc::SYS_open_tree => {
                check_open_tree(a[0] as c_int, a[1] as _, a[2] as c_uint)
            }
            Call::Mount if nr as c_long == libc::SYS_move_mount => {
                check_move_mount(a[0] as c_int, a[1] as _, a[4] as c_uint)
            }
            _ => check_call(call),
        };
    }
    super::routed::check(nr as c_long, a)
}

/// `io_uring_setup`: the operations a ring carries (open, connect, rename,
/// ...) reach the kernel through `io_uring_enter` without passing through
/// libc, so no hook would see them. libuv, for one, makes its rings through
/// `syscall()`. The ring is refused while any rule, or the file or network
/// default, could block something; the program falls back to plain calls
/// (libuv does), which are checked. No rule names the ring, so it is
/// reported as a status note.
fn check_ring() -> Verdict {
    run(|active| {
        let table = &active.table;
        let could_block = [Kind::File, Kind::Network]
            .into_iter()
            .any(|kind| table.default_action(kind).blocks())
            // The call given only selects logging; the action is the rule's.
            || (0..table.rule_count() as u32)
                .any(|rule| table.decision_of_rule(rule, Call::Mount).action.blocks());
        if !could_block {
            return Verdict::Allow;
        }
        refuse_unruled(
            active,
            libc::EPERM,
            b"io_uring_setup refused: operations submitted through a ring would pass no file or network check (enforce mode)",
            b"io_uring_setup allowed (not enforcing); operations submitted through the ring pass no file or network check",
        )
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
    let args = [a1, a2, a3, a4, a5, a6];
    let native = native_number(nr as c_int) as c_long;
    // An exec runs as its hook runs it: on the object decided. (x32's
    // execve and execveat, 520 and 545, pass 32-bit pointers: checked
    // below, then made.)
    if nr == libc::SYS_execve {
        return super::borrowed::execve_hook(a1 as *const c_char, a2 as _, a3 as _) as c_long;
    }
    if nr == libc::SYS_execveat {
        let (dirfd, flags) = (a1 as c_int, a5 as c_int);
        return super::borrowed::execveat_hook(dirfd, a2 as *const c_char, a3 as _, a4 as _, flags)
            as c_long;
    }
    // A path call the library makes itself on the object it decides on.
    if let Some(acted) = super::routed::held(native, &args) {
        return acted.finish(|| crate::os::sys::libc_syscall(nr, args) as c_int) as c_long;
    }
    if let Verdict::Deny(e) = check_number(nr, &args) {
        return fail(e, -1);
    }
    if native == libc::SYS_execve || native == libc::SYS_execveat {
        super::borrowed::before_exec();
    }
    let one_thread = match native {
        libc::SYS_unshare => unshare_needs_one_thread(a1),
        libc::SYS_setns => setns_needs_one_thread(a2),
        _ => false,
    };
    if one_thread {
        return alone(|| crate::os::sys::libc_syscall(nr, args));
    }
    crate::os::sys::libc_syscall(nr, args)
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

/// A wrapper hook checked by call name alone.
macro_rules! sys_hook {
    ($name:ident = $call:ident, $nr:expr, ($($arg:ident: $ty:ty),*) -> $ret:ty) => {
        checked_hook!($name($($arg: $ty),*) -> $ret, $nr, check_call(Call::$call));
    };
}

checked_hook!(mount(src: *const c_char, target: *const c_char, fstype: *const c_char, flags: c_ulong,
    data: *const c_void) -> c_int, libc::SYS_mount, check_mount(src, target, fstype, flags, data));
sys_hook!(umount2 = Umount2, libc::SYS_umount2, (target: *const c_char, flags: c_int) -> c_int);
acted_hook!(chroot(path: *const c_char), libc::SYS_chroot, chroot_acted(path));
checked_hook!(pivot_root(new_root: *const c_char, put_old: *const c_char) -> c_int,
    libc::SYS_pivot_root, check_root(Call::PivotRoot, new_root));

/// `unshare`: its rule; flags the kernel grants only a single-threaded
/// process run [`alone`].
///
/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn unshare(flags: c_int) -> c_int {
    if let Verdict::Deny(e) = check_call(Call::Unshare) {
        return fail(e, -1);
    }
    let call = || match next!(unshare: unsafe extern "C" fn(c_int) -> c_int) {
        // SAFETY: forwarding the caller's argument.
        Some(f) => c_long::from(unsafe { f(flags) }),
        None => raw_syscall(libc::SYS_unshare, [flags as c_long, 0, 0, 0, 0, 0]),
    };
    if unshare_needs_one_thread(flags as c_long) {
        alone(call) as c_int
    } else {
        call() as c_int
    }
}

/// `setns`: its rule; joining a user or mount namespace (or one of any
/// type, `nstype` 0) runs [`alone`].
///
/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn setns(fd: c_int, nstype: c_int) -> c_int {
    if let Verdict::Deny(e) = check_call(Call::Setns) {
        return fail(e, -1);
    }
    let call = || match next!(setns: unsafe extern "C" fn(c_int, c_int) -> c_int) {
        // SAFETY: forwarding the caller's arguments.
        Some(f) => c_long::from(unsafe { f(fd, nstype) }),
        None => raw_syscall(
            libc::SYS_setns,
            [fd as c_long, nstype as c_long, 0, 0, 0, 0],
        ),
    };
    if setns_needs_one_thread(nstype as c_long) {
        alone(call) as c_int
    } else {
        call() as c_int
    }
}

/// `unshare` flags the kernel refuses (`EINVAL`) to a process with more
/// than one thread: a new user namespace, and what it implies.
fn unshare_needs_one_thread(flags: c_long) -> bool {
    let flags = flags as c_int;
    flags & (libc::CLONE_NEWUSER | libc::CLONE_THREAD | libc::CLONE_SIGHAND | libc::CLONE_VM) != 0
}

/// `setns` types the kernel refuses to a process with more than one thread
/// (a user namespace) or whose threads share a root and working directory
/// (a mount namespace); 0 accepts any type, and a pidfd takes flags.
fn setns_needs_one_thread(nstype: c_long) -> bool {
    let nstype = nstype as c_int;
    nstype == 0 || nstype & (libc::CLONE_NEWUSER | libc::CLONE_NEWNS) != 0
}

/// Runs `call`, a system call the kernel refuses to a process with more
/// than one thread, with the library's own threads stopped first (each
/// finishes its work: see `quiesce`); they start again when next needed.
/// A program with threads of its own gets the kernel's `EINVAL` as
/// without the library.
fn alone(mut call: impl FnMut() -> c_long) -> c_long {
    if !crate::os::quiesce::any_live() {
        return call();
    }
    crate::os::quiesce::request_stop();
    crate::events::emit::wake_writer();
    crate::os::quiesce::wait_stopped(std::time::Duration::from_secs(3));
    // A thread that has returned may still be leaving the kernel's thread
    // group for a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(50);
    let mut r = call();
    while r < 0 && crate::os::sys::errno() == libc::EINVAL && std::time::Instant::now() < deadline {
        // SAFETY: no preconditions.
        unsafe { libc::sched_yield() };
        r = call();
    }
    crate::os::quiesce::release();
    crate::load::refresh::restart_after_stop();
    r
}
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

/// The call's own `syscall` rule, then, when `paths` is `Some`, what the
/// call does to the files it gives another name (a new root, a mounted
/// tree): one call's decisions in turn ([`crate::decide::check::Turns`]).
fn rule_then(call: Call, paths: Option<impl FnOnce() -> Verdict>) -> Verdict {
    let turns = crate::decide::check::Turns::start();
    let v = check_call(call);
    match paths {
        Some(paths) if !turns.end_at(v) => paths(),
        _ => v,
    }
}

/// `chroot`: the call's own `syscall` rule, then the new root decided and
/// entered on the object (`file::chroot_held`; `syscall(SYS_chroot)` too).
pub fn chroot_acted(path: *const c_char) -> super::borrowed::Acted {
    let turns = crate::decide::check::Turns::start();
    let v = check_call(Call::Chroot);
    if turns.end_at(v) {
        return super::borrowed::Acted::of(v);
    }
    super::borrowed::chroot_held(path)
}

/// `pivot_root`: what the new root does to every path
/// (`file::check_new_root`).
fn check_root(call: Call, new_root: *const c_char) -> Verdict {
    rule_then(
        call,
        Some(|| super::borrowed::check_new_root(call, new_root)),
    )
}

/// `mount`: for a bind or a move, what a second name for the source tree
/// does (`file::check_tree_mount`); for a new file system, what it shows
/// that already has a name (`mount::check_new_filesystem`); the target is
/// written either way.
fn check_mount(
    src: *const c_char,
    target: *const c_char,
    fstype: *const c_char,
    flags: c_ulong,
    data: *const c_void,
) -> Verdict {
    let names_a_tree = flags & (libc::MS_BIND | libc::MS_MOVE) != 0;
    rule_then(
        Call::Mount,
        Some(|| {
            let turns = crate::decide::check::Turns::start();
            let at = libc::AT_FDCWD;
            let v =
                super::borrowed::check_tree_mount(Call::Mount, at, src, Some(target), names_a_tree);
            if turns.end_at(v) {
                return v;
            }
            super::mount::check_new_filesystem(src, fstype, flags, data)
        }),
    )
}

/// `fsconfig`: a source or an overlay layer it names
/// (`mount::check_fsconfig`).
fn check_fsconfig(cmd: c_uint, key: *const c_char, value: *const c_void, aux: c_int) -> Verdict {
    rule_then(
        Call::Mount,
        Some(|| super::mount::check_fsconfig(cmd, key, value, aux)),
    )
}

/// `open_tree`: with `OPEN_TREE_CLONE` (a detached copy of the tree, which
/// `move_mount` can attach anywhere), what a second name for it does.
fn check_open_tree(dirfd: c_int, path: *const c_char, flags: c_uint) -> Verdict {
    const OPEN_TREE_CLONE: c_uint = 1;
    let clone = (flags & OPEN_TREE_CLONE != 0)
        .then_some(|| super::borrowed::check_tree_mount(Call::Mount, dirfd, path, None, true));
    rule_then(Call::Mount, clone)
}

/// `move_mount`: when it moves a mount named by a path (not a descriptor
/// from `open_tree`/`fsmount`, already decided), what moving that tree does.
fn check_move_mount(from_dirfd: c_int, from: *const c_char, flags: c_uint) -> Verdict {
    const MOVE_MOUNT_F_EMPTY_PATH: c_uint = 4;
    let by_path = (flags & MOVE_MOUNT_F_EMPTY_PATH == 0)
        .then_some(|| super::borrowed::check_tree_mount(Call::Mount, from_dirfd, from, None, true));
    rule_then(Call::Mount, by_path)
}

/// A `clone` that makes namespaces needs what `unshare` needs. Called by
/// the C shim's `clone` (variadic); returns the next `clone`, or null with
/// errno set when denied or missing.
#[no_mangle]
pub extern "C" fn ldguard_clone_gate(flags: c_int) -> *mut c_void {
    if clone_makes_namespaces(flags as u32 as u64) {
        if let Verdict::Deny(e) = check_call(Call::Unshare) {
            return fail(e, std::ptr::null_mut());
        }
    }
    match next!(clone: unsafe extern "C" fn()) {
        Some(f) => f as *mut c_void,
        None => fail(libc::ENOSYS, std::ptr::null_mut()),
    }
}

// The new mount API reaches what `mount` reaches; process_vm_* and
// pidfd_getfd reach what `ptrace` reaches (docs/policy.md, "Syscall
// groups"). glibc has wrappers for these since 2.36 (process_vm_* 2.15).
sys_hook!(umount = Umount2, libc::SYS_umount2, (target: *const c_char) -> c_int);
checked_hook!(open_tree(dirfd: c_int, path: *const c_char, flags: c_uint) -> c_int,
    libc::SYS_open_tree, check_open_tree(dirfd, path, flags));
checked_hook!(move_mount(from_dirfd: c_int, from: *const c_char, to_dirfd: c_int, to: *const c_char,
    flags: c_uint) -> c_int, libc::SYS_move_mount, check_move_mount(from_dirfd, from, flags));
checked_hook!(fsopen(fsname: *const c_char, flags: c_uint) -> c_int, libc::SYS_fsopen,
    rule_then(Call::Mount, Some(|| super::mount::check_fsopen(fsname))));
sys_hook!(fsmount = Mount, libc::SYS_fsmount, (fd: c_int, flags: c_uint, attr: c_uint) -> c_int);
checked_hook!(fsconfig(fd: c_int, cmd: c_uint, key: *const c_char, value: *const c_void, aux: c_int)
    -> c_int, libc::SYS_fsconfig, check_fsconfig(cmd, key, value, aux));
sys_hook!(fspick = Mount, libc::SYS_fspick, (dirfd: c_int, path: *const c_char, flags: c_uint) -> c_int);
sys_hook!(mount_setattr = Mount, libc::SYS_mount_setattr,
    (dirfd: c_int, path: *const c_char, flags: c_uint, attr: *mut c_void, size: usize) -> c_int);
sys_hook!(process_vm_readv = Ptrace, libc::SYS_process_vm_readv,
    (pid: pid_t, local: *const c_void, liovcnt: c_ulong, remote: *const c_void, riovcnt: c_ulong, flags: c_ulong) -> isize);
sys_hook!(process_vm_writev = Ptrace, libc::SYS_process_vm_writev,
    (pid: pid_t, local: *const c_void, liovcnt: c_ulong, remote: *const c_void, riovcnt: c_ulong, flags: c_ulong) -> isize);
sys_hook!(pidfd_getfd = Ptrace, libc::SYS_pidfd_getfd, (pidfd: c_int, fd: c_int, flags: c_uint) -> c_int);

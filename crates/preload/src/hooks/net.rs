//! Network hooks: outbound (connect, sendto/sendmsg with an address),
//! inbound (accepted peers), listen (bind, listen), and name resolution.

use super::borrowed::{self, Acted};
use crate::decide::check::{fail, judge, run, run_or, unresolvable, Verdict};
use crate::decide::hosts;
use crate::os::real::next;
use crate::os::sys::cstr;
use crate::process::active::Active;
use ldguard_policy::{Access, Call, Direction, Kind, Protocol, Request};
use libc::{addrinfo, c_char, c_int, c_long, c_uint, c_void, msghdr, sockaddr, socklen_t, ssize_t};
use std::mem::size_of;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What a socket address names.
enum Peer<'a> {
    Ip(IpAddr, u16),
    /// A unix socket path; abstract names start with `@`.
    Unix(&'a [u8]),
}

/// How the kernel reads the family of an address passed to a call.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// connect, bind, accepted peers: the family as given.
    AsGiven,
    /// sendto/sendmsg: IPv4 datagram and raw sockets take `AF_UNSPEC` as
    /// `AF_INET` (`udp_sendmsg`, `raw_sendmsg`), so it is read as one.
    UnspecIsInet,
}

/// Decodes a socket address the way the kernel does; `buf` holds an
/// abstract unix name as `@name`.
///
/// # Safety
/// `addr` must be null or valid for `len` bytes.
unsafe fn peer<'a>(
    addr: *const sockaddr,
    len: socklen_t,
    family: Family,
    buf: &'a mut [u8; 110],
) -> Option<Peer<'a>> {
    if addr.is_null() || (len as usize) < size_of::<libc::sa_family_t>() {
        return None;
    }
    let len = len as usize;
    // SAFETY: at least the family is readable; each arm checks the length
    // before reading the full structure (unaligned reads: callers may pass
    // any buffer).
    unsafe {
        let mut fam = c_int::from(std::ptr::read_unaligned(addr as *const libc::sa_family_t));
        if fam == libc::AF_UNSPEC && family == Family::UnspecIsInet {
            fam = libc::AF_INET;
        }
        match fam {
            libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
                let a = std::ptr::read_unaligned(addr as *const libc::sockaddr_in);
                Some(Peer::Ip(
                    IpAddr::V4(Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr))),
                    u16::from_be(a.sin_port),
                ))
            }
            // The kernel accepts the RFC 2133 size (24 bytes, no scope id).
            libc::AF_INET6 if len >= SIN6_LEN_RFC2133 => {
                let mut a: libc::sockaddr_in6 = unsafe_zeroed();
                std::ptr::copy_nonoverlapping(
                    addr as *const u8,
                    (&mut a as *mut libc::sockaddr_in6).cast::<u8>(),
                    len.min(size_of::<libc::sockaddr_in6>()),
                );
                let v6 = Ipv6Addr::from(a.sin6_addr.s6_addr);
                // IPv4-mapped addresses match v4 rules.
                let ip = v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4);
                Some(Peer::Ip(ip, u16::from_be(a.sin6_port)))
            }
            libc::AF_UNIX => {
                let off = size_of::<libc::sa_family_t>();
                let n = len.saturating_sub(off).min(108);
                let raw = std::slice::from_raw_parts((addr as *const u8).add(off), n);
                // A path up to its NUL (which sun_path may lack), or an
                // abstract name, shown as `@name`; written with a NUL after
                // it, ready for a path call.
                let (at, name) = match raw.split_first() {
                    None => return None, // unnamed
                    Some((0, abstract_name)) => {
                        *buf.first_mut()? = b'@';
                        (1, abstract_name)
                    }
                    Some(_) => (0, raw.split(|&b| b == 0).next().unwrap_or(raw)),
                };
                let end = crate::os::sys::put_cstr(buf, at, name)?;
                Some(Peer::Unix(buf.get(..end - 1)?))
            }
            _ => None,
        }
    }
}

const SIN6_LEN_RFC2133: usize = 24;

/// Where an outbound packet really goes: the kernel routes the unspecified
/// address (`0.0.0.0`, `::`, `::ffff:0.0.0.0`) to loopback.
fn destination(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    }
}

fn protocol(fd: c_int) -> Option<Protocol> {
    let mut ty: c_int = 0;
    let mut len = size_of::<c_int>() as socklen_t;
    // SAFETY: valid out-parameters; getsockopt is not hooked.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            (&mut ty as *mut c_int).cast(),
            &mut len,
        )
    };
    match (r, ty) {
        (0, libc::SOCK_STREAM) => Some(Protocol::Tcp),
        (0, libc::SOCK_DGRAM) => Some(Protocol::Udp),
        _ => None,
    }
}

/// Checks a network operation on `fd` towards (or from) `addr`.
fn check_addr(
    call: Call,
    direction: Direction,
    family: Family,
    fd: c_int,
    addr: *const sockaddr,
    len: socklen_t,
) -> Verdict {
    run(|active| {
        let mut buf = [0u8; 110];
        // SAFETY: the caller's (addr, len) pair, as passed to libc.
        let p = unsafe { peer(addr, len, family, &mut buf) };
        decide_peer(active, call, direction, fd, p)
    })
}

/// Decides a network operation on `fd` towards (or from) `peer`.
fn decide_peer(
    active: &'static Active,
    call: Call,
    direction: Direction,
    fd: c_int,
    peer: Option<Peer<'_>>,
) -> Verdict {
    let Some(p) = peer else {
        return Verdict::Allow;
    };
    let mut req = Request {
        direction,
        ..Request::new(Kind::Network, call, active.program)
    };
    let mut name = [0u8; 128];
    match p {
        Peer::Ip(ip, port) => {
            let ip = if direction == Direction::Outbound {
                destination(ip)
            } else {
                ip
            };
            req.address = Some(ip);
            req.port = Some(port);
            req.protocol = protocol(fd);
            req.host =
                hosts::lookup(ip, &mut name).and_then(|n| std::str::from_utf8(&name[..n]).ok());
            judge(active, &req, |_| {})
        }
        Peer::Unix(path) if path.first() == Some(&b'@') => {
            req.unix = Some(path);
            judge(active, &req, |_| {})
        }
        Peer::Unix(path) => {
            // A socket path is a file path: relative to the cwd, with
            // `..`, `//` and symlinks. Both the absolute spelling and
            // the file the kernel reaches are decided on; the first
            // that blocks is the one judged (and reported).
            let resolve = active.table.needs_resolution(Kind::Network, Access::Read);
            borrowed::socket_path_forms(path, resolve, |abs, resolved| {
                let mut r = Request {
                    unix: Some(abs),
                    ..req
                };
                if let Some(res) = resolved {
                    if !active.table.decide(&r).action.blocks() {
                        r.unix = Some(res);
                    }
                }
                judge(active, &r, |_| {})
            })
            .unwrap_or(Verdict::Allow)
        }
    }
}

/// Where an outbound call that names an address goes.
pub enum Route {
    /// To the caller's address: an IP address or an abstract name decided
    /// and allowed, or no rule looks at socket paths.
    Given,
    /// Nowhere: denied (and reported), or the socket path cannot be looked
    /// up (`ENOENT`, `ENOTDIR`, `ELOOP`, `EACCES`...), with this errno.
    Refused(c_int),
    /// To the socket file decided on, through the descriptor holding it.
    Held(HeldSocket),
}

impl crate::decide::check::Fallback for Route {
    fn denied(errno: c_int) -> Route {
        Route::Refused(errno)
    }
}

impl Route {
    /// The address to make the call with (the caller's, or the held
    /// socket file's), or the errno to fail with.
    pub fn target(
        &self,
        addr: *const sockaddr,
        len: socklen_t,
    ) -> Result<(*const sockaddr, socklen_t), c_int> {
        match self {
            Route::Given => Ok((addr, len)),
            Route::Refused(e) => Err(*e),
            Route::Held(h) => Ok((h.address(), h.len)),
        }
    }

    /// `msg` with the address [`Route::target`] gives.
    pub fn message(&self, msg: &msghdr) -> Result<msghdr, c_int> {
        let (name, len) = self.target(msg.msg_name as *const sockaddr, msg.msg_namelen)?;
        let mut m = *msg;
        m.msg_name = name as *mut c_void;
        m.msg_namelen = len;
        Ok(m)
    }
}

/// A unix socket file held by an `O_PATH` descriptor, and the address
/// `/proc/self/fd/N` that reaches it: the kernel follows that magic link
/// to the very inode decided on, whatever the path names by then. The
/// peer sees nothing of it (its own name is what `getpeername` gives).
pub struct HeldSocket {
    fd: c_int,
    addr: libc::sockaddr_un,
    len: socklen_t,
    /// What [`guard::scratch::end_hold`](crate::os::guard::scratch::end_hold) restores.
    outer: c_int,
}

impl HeldSocket {
    fn new(fd: c_int) -> HeldSocket {
        let mut addr: libc::sockaddr_un = unsafe_zeroed();
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let mut link = [0u8; 32];
        let n = crate::os::sys::proc_fd_path(fd, &mut link);
        for (d, s) in addr.sun_path.iter_mut().zip(&link[..n]) {
            *d = *s as c_char;
        }
        let len = (size_of::<libc::sa_family_t>() + n + 1) as socklen_t;
        // The call made through it is a cancellation point.
        let outer = crate::os::guard::scratch::hold_across_call(fd);
        HeldSocket {
            fd,
            addr,
            len,
            outer,
        }
    }

    fn address(&self) -> *const sockaddr {
        (&self.addr as *const libc::sockaddr_un).cast()
    }
}

impl Drop for HeldSocket {
    fn drop(&mut self) {
        crate::os::guard::scratch::end_hold(self.outer);
        // errno untouched: the call made through it has just set it.
        crate::os::sys::syscall6(libc::SYS_close, [self.fd as c_long, 0, 0, 0, 0, 0]);
    }
}

/// Decides an outbound call to `addr`; for a unix socket path, on the
/// socket file the kernel reaches, which is then held for the call
/// (docs/preload.md, *Unix socket paths*).
pub fn route(
    call: Call,
    family: Family,
    fd: c_int,
    addr: *const sockaddr,
    len: socklen_t,
) -> Route {
    run_or(Route::Given, |active| {
        let mut buf = [0u8; 110];
        // SAFETY: the caller's (addr, len) pair, as passed to libc.
        match unsafe { peer(addr, len, family, &mut buf) } {
            Some(Peer::Unix(path))
                if path.first() != Some(&b'@')
                    && active.table.needs_resolution(Kind::Network, Access::Read) =>
            {
                hold_socket(active, call, path)
            }
            p => Route::from(decide_peer(active, call, Direction::Outbound, fd, p)),
        }
    })
}

/// The socket file `path` names, opened `O_PATH` (following links, as the
/// kernel's lookup does), decided on its spelling and then on its kernel
/// path. Without a descriptor or a name for it, a rule on socket paths
/// could apply: denied (never waved through on the spelling).
fn hold_socket(active: &'static Active, call: Call, path: &[u8]) -> Route {
    let req = Request {
        direction: Direction::Outbound,
        ..Request::new(Kind::Network, call, active.program)
    };
    // (A path of sun_path's 108 bytes always fits; one that did not would
    // be held by nothing: decided as unresolvable below.)
    let mut c_path = [0u8; 110];
    let opened = match crate::os::sys::put_cstr(&mut c_path, 0, path) {
        Some(_) => {
            crate::os::sys::openat_quiet(libc::AT_FDCWD, c_path.as_ptr().cast(), libc::O_PATH)
        }
        None => Err(libc::ENAMETOOLONG),
    };
    let held = opened.map(HeldSocket::new);
    borrowed::socket_file_forms(path, held.as_ref().ok().map(|h| h.fd), |abs, kernel| {
        let Some(abs) = abs else {
            return Route::from(unresolvable(
                active,
                &Request {
                    unix: Some(path),
                    ..req
                },
            ));
        };
        let spelled = Request {
            unix: Some(abs),
            ..req
        };
        if active.table.decide(&spelled).action.blocks() {
            return Route::from(judge(active, &spelled, |_| {}));
        }
        let held = match held {
            Ok(held) => held,
            Err(e) => {
                return match e {
                    // What the kernel's own lookup answers: the call fails so
                    // (reported as allowed when the policy logs that).
                    libc::ENOENT
                    | libc::ENOTDIR
                    | libc::ELOOP
                    | libc::EACCES
                    | libc::ENAMETOOLONG => {
                        judge(active, &spelled, |_| {});
                        Route::Refused(e)
                    }
                    // No descriptor (EMFILE, ENFILE, ENOMEM): no object to decide.
                    _ => Route::from(unresolvable(active, &spelled)),
                };
            }
        };
        let Some(kernel) = kernel else {
            return Route::from(unresolvable(active, &spelled));
        };
        let reached = Request {
            unix: Some(kernel),
            ..req
        };
        match judge(active, &reached, |_| {}) {
            Verdict::Allow => Route::Held(held),
            denied => Route::from(denied),
        }
    })
}

/// A verdict as a route: a denial refuses the call; a verdict that lets
/// it proceed (`permissive`) sends it to the caller's address.
impl From<Verdict> for Route {
    fn from(v: Verdict) -> Route {
        match v {
            Verdict::Allow => Route::Given,
            Verdict::Deny(e) => Route::Refused(e),
        }
    }
}

/// Outbound with an explicit address: sendto, sendmsg, sendmmsg.
pub fn check_send(call: Call, fd: c_int, addr: *const sockaddr, len: socklen_t) -> Verdict {
    check_addr(
        call,
        Direction::Outbound,
        Family::UnspecIsInet,
        fd,
        addr,
        len,
    )
}

/// `bind`: the local side, and for a unix socket path the file it creates.
pub fn check_bind(fd: c_int, addr: *const sockaddr, len: socklen_t) -> Verdict {
    if let v @ Verdict::Deny(_) = check_addr(
        Call::Bind,
        Direction::Listen,
        Family::AsGiven,
        fd,
        addr,
        len,
    ) {
        return v;
    }
    let mut path = [0u8; 110];
    // SAFETY: the caller's (addr, len) pair.
    match unsafe { peer(addr, len, Family::AsGiven, &mut path) } {
        // `peer` wrote a NUL after the path.
        Some(Peer::Unix(p)) if p.first() != Some(&b'@') => borrowed::check_file(
            Call::Bind,
            libc::AT_FDCWD,
            path.as_ptr().cast(),
            Access::Write,
            borrowed::Follow::No,
        ),
        _ => Verdict::Allow,
    }
}

pub fn check_listen(fd: c_int) -> Verdict {
    check_local(Call::Listen, fd)
}

/// The address of one `msghdr`, when it has one.
pub fn check_msg(call: Call, fd: c_int, msg: *const msghdr) -> Verdict {
    // SAFETY: msg is the caller's msghdr (or null: the kernel reports
    // EFAULT).
    match unsafe { msg.as_ref() } {
        Some(m) if !m.msg_name.is_null() => {
            check_send(call, fd, m.msg_name as *const sockaddr, m.msg_namelen)
        }
        _ => Verdict::Allow,
    }
}

/// Every message of a `sendmmsg`: one denied address fails the call.
pub fn check_mmsg(fd: c_int, msgs: *mut libc::mmsghdr, n: u32) -> Verdict {
    if msgs.is_null() {
        return Verdict::Allow;
    }
    // The kernel sends at most UIO_MAXIOV messages per call.
    for i in 0..n.min(UIO_MAXIOV) as usize {
        // SAFETY: the caller's array of `n` messages.
        let hdr = unsafe { &(*msgs.add(i)).msg_hdr };
        if let v @ Verdict::Deny(_) = check_msg(Call::Sendmmsg, fd, hdr) {
            return v;
        }
    }
    Verdict::Allow
}

/// The route of a message's address (none: [`Route::Given`]).
pub fn msg_route(call: Call, fd: c_int, msg: &msghdr) -> Route {
    if msg.msg_name.is_null() {
        return Route::Given;
    }
    let name = msg.msg_name as *const sockaddr;
    route(call, Family::UnspecIsInet, fd, name, msg.msg_namelen)
}

/// Whether a message of a `sendmmsg` names a unix socket path (which
/// are then sent one by one, each to the socket file decided on).
pub fn names_socket_path(msgs: *const libc::mmsghdr, n: c_uint) -> bool {
    if msgs.is_null() {
        return false;
    }
    (0..n.min(UIO_MAXIOV) as usize).any(|i| {
        // SAFETY: the caller's array of `n` messages.
        let m = unsafe { &(*msgs.add(i)).msg_hdr };
        let mut buf = [0u8; 110];
        // SAFETY: the message's (name, length) pair, as the kernel reads it.
        let p = unsafe {
            peer(
                m.msg_name as *const sockaddr,
                m.msg_namelen,
                Family::UnspecIsInet,
                &mut buf,
            )
        };
        matches!(p, Some(Peer::Unix(path)) if path.first() != Some(&b'@'))
    })
}

/// `syscall(SYS_connect | SYS_sendto | SYS_sendmsg | SYS_sendmmsg, ...)`
/// made here, to the address each route gives; `None` when no address is
/// named (a `sendto` without one, a `sendmmsg` naming no socket path:
/// checked, then made as given).
pub fn made(nr: c_long, a: &[c_long; 6]) -> Option<Acted> {
    let fd = a[0] as c_int;
    let sys = |args: [c_long; 6]| crate::os::sys::syscall6(nr, args);
    let done = |r: Result<c_long, c_int>| match r {
        Ok(r) => Acted::Done(r),
        Err(e) => Acted::Deny(e),
    };
    Some(match nr {
        libc::SYS_connect => {
            let (addr, len) = (a[1] as *const sockaddr, a[2] as socklen_t);
            let route = route(Call::Connect, Family::AsGiven, fd, addr, len);
            done(
                route
                    .target(addr, len)
                    .map(|(p, l)| sys([a[0], p as c_long, l as c_long, 0, 0, 0])),
            )
        }
        libc::SYS_sendto if a[4] != 0 => {
            let (addr, len) = (a[4] as *const sockaddr, a[5] as socklen_t);
            let route = route(Call::Sendto, Family::UnspecIsInet, fd, addr, len);
            done(
                route
                    .target(addr, len)
                    .map(|(p, l)| sys([a[0], a[1], a[2], a[3], p as c_long, l as c_long])),
            )
        }
        libc::SYS_sendmsg => {
            // SAFETY: the caller's msghdr (or null: the kernel reports EFAULT).
            let msg = unsafe { (a[1] as *const msghdr).as_ref() }?;
            let route = msg_route(Call::Sendmsg, fd, msg);
            done(
                route
                    .message(msg)
                    .map(|m| sys([a[0], &m as *const msghdr as c_long, a[2], 0, 0, 0])),
            )
        }
        // The kernel's answer as libc's `sendmmsg` gives it (one by one
        // through libc's `sendmsg`, as the hook does).
        libc::SYS_sendmmsg if names_socket_path(a[1] as *const libc::mmsghdr, a[2] as c_uint) => {
            // SAFETY: the caller's arguments, as the kernel reads them.
            let r = unsafe {
                sendmmsg(
                    fd,
                    a[1] as *mut libc::mmsghdr,
                    a[2] as c_uint,
                    a[3] as c_int,
                )
            };
            done(Ok(if r < 0 {
                -(crate::os::sys::errno() as c_long)
            } else {
                r as c_long
            }))
        }
        _ => return None,
    })
}

/// The most messages the kernel sends per `sendmmsg`.
const UIO_MAXIOV: c_uint = 1024;

/// The local address of `fd`, for `listen`.
fn check_local(call: Call, fd: c_int) -> Verdict {
    let mut ss: libc::sockaddr_storage = unsafe_zeroed();
    let mut len = size_of::<libc::sockaddr_storage>() as socklen_t;
    // SAFETY: valid out-parameters; getsockname is not hooked.
    if unsafe {
        libc::getsockname(
            fd,
            (&mut ss as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    } != 0
    {
        return Verdict::Allow;
    }
    check_addr(
        call,
        Direction::Listen,
        Family::AsGiven,
        fd,
        (&ss as *const libc::sockaddr_storage).cast(),
        len,
    )
}

fn unsafe_zeroed<T: Copy>() -> T {
    // SAFETY: only used for plain C structs (sockaddr_storage), for which
    // all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    let Some(f) = next!(connect: unsafe extern "C" fn(c_int, *const sockaddr, socklen_t) -> c_int)
    else {
        return fail(libc::ENOSYS, -1);
    };
    // The call is made right here: a cancellation acting in it unwinds
    // through this frame only (`tests/cancellation.rs`).
    let route = route(Call::Connect, Family::AsGiven, fd, addr, len);
    let (addr, len) = match route.target(addr, len) {
        Ok(t) => t,
        Err(e) => return fail(e, -1),
    };
    // SAFETY: forwarding, with the caller's address or one naming the same
    // socket file through the descriptor `route` holds until it is dropped.
    unsafe { f(fd, addr, len) }
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn bind(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    if let Verdict::Deny(e) = check_bind(fd, addr, len) {
        return fail(e, -1);
    }
    match next!(bind: unsafe extern "C" fn(c_int, *const sockaddr, socklen_t) -> c_int) {
        // SAFETY: forwarding.
        Some(f) => unsafe { f(fd, addr, len) },
        None => fail(libc::ENOSYS, -1),
    }
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn listen(fd: c_int, backlog: c_int) -> c_int {
    if let Verdict::Deny(e) = check_local(Call::Listen, fd) {
        return fail(e, -1);
    }
    match next!(listen: unsafe extern "C" fn(c_int, c_int) -> c_int) {
        // SAFETY: forwarding.
        Some(f) => unsafe { f(fd, backlog) },
        None => fail(libc::ENOSYS, -1),
    }
}

/// After the real accept: check the peer; a denied peer's connection is
/// closed and the call fails as if the peer had aborted.
fn after_accept(call: Call, conn: c_int, addr: *mut sockaddr, addrlen: *mut socklen_t) -> c_int {
    if conn < 0 {
        return conn;
    }
    let mut ss: libc::sockaddr_storage = unsafe_zeroed();
    let mut len = size_of::<libc::sockaddr_storage>() as socklen_t;
    // SAFETY: valid out-parameters; getpeername is not hooked.
    if unsafe {
        libc::getpeername(
            conn,
            (&mut ss as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    } != 0
    {
        return conn;
    }
    let _ = (addr, addrlen); // already filled in by the real call
    match check_addr(
        call,
        Direction::Inbound,
        Family::AsGiven,
        conn,
        (&ss as *const libc::sockaddr_storage).cast(),
        len,
    ) {
        Verdict::Allow => conn,
        Verdict::Deny(e) => {
            // SAFETY: closing the descriptor we just received.
            unsafe { libc::close(conn) };
            fail(e, -1)
        }
    }
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    let conn = match next!(accept: unsafe extern "C" fn(c_int, *mut sockaddr, *mut socklen_t) -> c_int)
    {
        // SAFETY: forwarding.
        Some(f) => unsafe { f(fd, addr, len) },
        None => return fail(libc::ENOSYS, -1),
    };
    after_accept(Call::Accept, conn, addr, len)
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn accept4(
    fd: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
    flags: c_int,
) -> c_int {
    let conn = match next!(accept4: unsafe extern "C" fn(c_int, *mut sockaddr, *mut socklen_t, c_int) -> c_int)
    {
        // SAFETY: forwarding.
        Some(f) => unsafe { f(fd, addr, len, flags) },
        None => return fail(libc::ENOSYS, -1),
    };
    after_accept(Call::Accept4, conn, addr, len)
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn sendto(
    fd: c_int,
    buf: *const libc::c_void,
    n: usize,
    flags: c_int,
    addr: *const sockaddr,
    len: socklen_t,
) -> ssize_t {
    type F = unsafe extern "C" fn(
        c_int,
        *const libc::c_void,
        usize,
        c_int,
        *const sockaddr,
        socklen_t,
    ) -> ssize_t;
    let Some(f) = next!(sendto: F) else {
        return fail(libc::ENOSYS, -1);
    };
    if addr.is_null() {
        // SAFETY: forwarding.
        return unsafe { f(fd, buf, n, flags, addr, len) };
    }
    let route = route(Call::Sendto, Family::UnspecIsInet, fd, addr, len);
    let (addr, len) = match route.target(addr, len) {
        Ok(t) => t,
        Err(e) => return fail(e, -1),
    };
    // SAFETY: forwarding, with the caller's address or one naming the same
    // socket file through the descriptor `route` holds until it is dropped.
    unsafe { f(fd, buf, n, flags, addr, len) }
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    let Some(f) = next!(sendmsg: unsafe extern "C" fn(c_int, *const msghdr, c_int) -> ssize_t)
    else {
        return fail(libc::ENOSYS, -1);
    };
    // SAFETY: the caller's msghdr (or null: the kernel reports EFAULT).
    let Some(m) = (unsafe { msg.as_ref() }) else {
        // SAFETY: forwarding.
        return unsafe { f(fd, msg, flags) };
    };
    let route = msg_route(Call::Sendmsg, fd, m);
    let m = match route.message(m) {
        Ok(m) => m,
        Err(e) => return fail(e, -1),
    };
    // SAFETY: forwarding a copy of the caller's message, its address the
    // caller's or one naming the same socket file (held by `route`).
    unsafe { f(fd, &m, flags) }
}

/// Checks a name about to be resolved against `host` rules.
fn check_host(call: Call, node: *const c_char) -> Verdict {
    // SAFETY: node is null or NUL-terminated.
    let Some(name) = unsafe { cstr(node) }.and_then(|n| std::str::from_utf8(n).ok()) else {
        return Verdict::Allow;
    };
    run(|active| {
        let req = Request {
            host: Some(name),
            ..Request::new(Kind::Network, call, active.program)
        };
        judge(active, &req, |_| {})
    })
}

/// Checks the name (for `host` rules), resolves it, and remembers which
/// addresses it gave. A denied lookup fails with `EAI_SYSTEM` and errno.
///
/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn getaddrinfo(
    node: *const c_char,
    service: *const c_char,
    hints: *const addrinfo,
    res: *mut *mut addrinfo,
) -> c_int {
    if let Verdict::Deny(e) = check_host(Call::Getaddrinfo, node) {
        return fail(e, libc::EAI_SYSTEM);
    }
    // SAFETY: node is null or NUL-terminated.
    let name = unsafe { cstr(node) };
    type F = unsafe extern "C" fn(
        *const c_char,
        *const c_char,
        *const addrinfo,
        *mut *mut addrinfo,
    ) -> c_int;
    let Some(f) = next!(getaddrinfo: F) else {
        return libc::EAI_SYSTEM;
    };
    // SAFETY: forwarding.
    let r = unsafe { f(node, service, hints, res) };
    if r == 0 && !crate::load::state::is_off() {
        if let Some(name) = name {
            // SAFETY: on success *res is a valid list owned by the caller.
            let mut ai = unsafe { *res };
            let mut buf = [0u8; 110];
            // SAFETY: each node of the list is valid until freeaddrinfo.
            while let Some(a) = unsafe { ai.as_ref() } {
                // SAFETY: ai_addr is valid for ai_addrlen bytes.
                if let Some(Peer::Ip(ip, _)) =
                    unsafe { peer(a.ai_addr, a.ai_addrlen, Family::AsGiven, &mut buf) }
                {
                    hosts::remember(ip, name);
                }
                ai = a.ai_next;
            }
        }
    }
    r
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn sendmmsg(
    fd: c_int,
    msgs: *mut libc::mmsghdr,
    n: c_uint,
    flags: c_int,
) -> c_int {
    if names_socket_path(msgs, n) {
        let Some(f) = next!(sendmsg: unsafe extern "C" fn(c_int, *const msghdr, c_int) -> ssize_t)
        else {
            return fail(libc::ENOSYS, -1);
        };
        // Message by message, as the kernel's own loop does: the count
        // sent, or the first message's error when none was.
        let mut sent = 0;
        for i in 0..n.min(UIO_MAXIOV) as usize {
            // SAFETY: the caller's array of `n` messages.
            let mm = unsafe { &mut *msgs.add(i) };
            let route = msg_route(Call::Sendmmsg, fd, &mm.msg_hdr);
            let r = match route.message(&mm.msg_hdr) {
                // SAFETY: forwarding a copy of the caller's message, its
                // address one naming the same socket file (held by `route`).
                Ok(m) => unsafe { f(fd, &m, flags) },
                Err(e) => fail(e, -1),
            };
            if r < 0 {
                return if sent > 0 { sent } else { -1 };
            }
            mm.msg_len = r as c_uint;
            sent += 1;
        }
        return sent;
    }
    if let Verdict::Deny(e) = check_mmsg(fd, msgs, n) {
        return fail(e, -1);
    }
    type F = unsafe extern "C" fn(c_int, *mut libc::mmsghdr, c_uint, c_int) -> c_int;
    match next!(sendmmsg: F) {
        // SAFETY: forwarding.
        Some(f) => unsafe { f(fd, msgs, n, flags) },
        None => crate::os::sys::raw_syscall(
            libc::SYS_sendmmsg,
            [
                fd as c_long,
                msgs as c_long,
                n as c_long,
                flags as c_long,
                0,
                0,
            ],
        ) as c_int,
    }
}

/// glibc's public alias of `sendmmsg`.
///
/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn __sendmmsg(
    fd: c_int,
    msgs: *mut libc::mmsghdr,
    n: c_uint,
    flags: c_int,
) -> c_int {
    // SAFETY: same contract.
    unsafe { sendmmsg(fd, msgs, n, flags) }
}

/// glibc's public alias of `connect`.
///
/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn __connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    // SAFETY: same contract.
    unsafe { connect(fd, addr, len) }
}

extern "C" {
    fn __h_errno_location() -> *mut c_int;
}

/// `NETDB_INTERNAL`: "see errno".
const NETDB_INTERNAL: c_int = -1;

/// Remembers the addresses of a `hostent` answer for `name`.
fn remember_hostent(name: *const c_char, h: *const libc::hostent) {
    // SAFETY: the caller's name is NUL-terminated.
    let Some(name) = (unsafe { cstr(name) }) else {
        return;
    };
    // SAFETY: h is null or the answer glibc built.
    let Some(h) = (unsafe { h.as_ref() }) else {
        return;
    };
    if crate::load::state::is_off() || h.h_addr_list.is_null() {
        return;
    }
    for i in 0..64 {
        // SAFETY: h_addr_list is a NULL-terminated array of h_length-byte
        // addresses.
        let a = unsafe { *h.h_addr_list.add(i) };
        if a.is_null() {
            break;
        }
        let ip = match (h.h_addrtype, h.h_length) {
            // SAFETY: 4 readable bytes, per h_length.
            (libc::AF_INET, 4) => IpAddr::from(unsafe { *(a as *const [u8; 4]) }),
            // SAFETY: 16 readable bytes, per h_length.
            (libc::AF_INET6, 16) => IpAddr::from(unsafe { *(a as *const [u8; 16]) }),
            _ => continue,
        };
        hosts::remember(ip, name);
    }
}

/// A denied `gethostbyname*`: `NULL` with `h_errno = NETDB_INTERNAL` and
/// errno set.
fn deny_hostent(errno: c_int) -> *mut libc::hostent {
    // SAFETY: this thread's h_errno slot.
    unsafe { *__h_errno_location() = NETDB_INTERNAL };
    fail(errno, std::ptr::null_mut())
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn gethostbyname(name: *const c_char) -> *mut libc::hostent {
    if let Verdict::Deny(e) = check_host(Call::Gethostbyname, name) {
        return deny_hostent(e);
    }
    let Some(f) = next!(gethostbyname: unsafe extern "C" fn(*const c_char) -> *mut libc::hostent)
    else {
        return deny_hostent(libc::ENOSYS);
    };
    // SAFETY: forwarding.
    let h = unsafe { f(name) };
    remember_hostent(name, h);
    h
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn gethostbyname2(name: *const c_char, af: c_int) -> *mut libc::hostent {
    if let Verdict::Deny(e) = check_host(Call::Gethostbyname, name) {
        return deny_hostent(e);
    }
    type F = unsafe extern "C" fn(*const c_char, c_int) -> *mut libc::hostent;
    let Some(f) = next!(gethostbyname2: F) else {
        return deny_hostent(libc::ENOSYS);
    };
    // SAFETY: forwarding.
    let h = unsafe { f(name, af) };
    remember_hostent(name, h);
    h
}

/// A denied reentrant lookup: no result, `NETDB_INTERNAL`, the errno as
/// the return value (as for `ERANGE`).
///
/// # Safety
/// `result` and `h_errnop` as passed to `gethostbyname*_r`.
unsafe fn deny_hostent_r(e: c_int, result: *mut *mut libc::hostent, h_errnop: *mut c_int) -> c_int {
    // SAFETY: the caller's out-parameters (null-checked).
    unsafe {
        if !result.is_null() {
            *result = std::ptr::null_mut();
        }
        if !h_errnop.is_null() {
            *h_errnop = NETDB_INTERNAL;
        }
    }
    fail(e, e)
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn gethostbyname_r(
    name: *const c_char,
    ret: *mut libc::hostent,
    buf: *mut c_char,
    buflen: usize,
    result: *mut *mut libc::hostent,
    h_errnop: *mut c_int,
) -> c_int {
    if let Verdict::Deny(e) = check_host(Call::Gethostbyname, name) {
        // SAFETY: the caller's out-parameters.
        return unsafe { deny_hostent_r(e, result, h_errnop) };
    }
    type F = unsafe extern "C" fn(
        *const c_char,
        *mut libc::hostent,
        *mut c_char,
        usize,
        *mut *mut libc::hostent,
        *mut c_int,
    ) -> c_int;
    let Some(f) = next!(gethostbyname_r: F) else {
        return libc::ENOSYS;
    };
    // SAFETY: forwarding.
    let r = unsafe { f(name, ret, buf, buflen, result, h_errnop) };
    if r == 0 && !result.is_null() {
        // SAFETY: on success *result is null or `ret`.
        remember_hostent(name, unsafe { *result });
    }
    r
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn gethostbyname2_r(
    name: *const c_char,
    af: c_int,
    ret: *mut libc::hostent,
    buf: *mut c_char,
    buflen: usize,
    result: *mut *mut libc::hostent,
    h_errnop: *mut c_int,
) -> c_int {
    if let Verdict::Deny(e) = check_host(Call::Gethostbyname, name) {
        // SAFETY: the caller's out-parameters.
        return unsafe { deny_hostent_r(e, result, h_errnop) };
    }
    type F = unsafe extern "C" fn(
        *const c_char,
        c_int,
        *mut libc::hostent,
        *mut c_char,
        usize,
        *mut *mut libc::hostent,
        *mut c_int,
    ) -> c_int;
    let Some(f) = next!(gethostbyname2_r: F) else {
        return libc::ENOSYS;
    };
    // SAFETY: forwarding.
    let r = unsafe { f(name, af, ret, buf, buflen, result, h_errnop) };
    if r == 0 && !result.is_null() {
        // SAFETY: on success *result is null or `ret`.
        remember_hostent(name, unsafe { *result });
    }
    r
}

/// `struct gaicb`'s first member, the name to resolve.
#[repr(C)]
pub struct Gaicb {
    name: *const c_char,
}

/// Asynchronous `getaddrinfo`: every name of the batch is checked first.
/// A denied name fails the whole call with `EAI_SYSTEM` and errno.
///
/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn getaddrinfo_a(
    mode: c_int,
    list: *const *mut Gaicb,
    n: c_int,
    sevp: *mut c_void,
) -> c_int {
    for i in 0..n.max(0) as usize {
        // SAFETY: the caller's array of `n` requests (null entries are
        // skipped by glibc too).
        let req = unsafe { (*list.add(i)).as_ref() };
        if let Some(Verdict::Deny(e)) = req.map(|r| check_host(Call::Getaddrinfo, r.name)) {
            return fail(e, libc::EAI_SYSTEM);
        }
    }
    type F = unsafe extern "C" fn(c_int, *const *mut Gaicb, c_int, *mut c_void) -> c_int;
    match next!(getaddrinfo_a: F) {
        // SAFETY: forwarding.
        Some(f) => unsafe { f(mode, list, n, sevp) },
        None => fail(libc::ENOSYS, libc::EAI_SYSTEM),
    }
}

/// `bindresvport` picks the port inside libc: the address it bound is
/// checked afterwards, as `listen` checks it, and a denied one fails the
/// call (the socket stays bound; `listen` on it is denied too).
///
/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn bindresvport(fd: c_int, sin: *mut libc::sockaddr_in) -> c_int {
    type F = unsafe extern "C" fn(c_int, *mut libc::sockaddr_in) -> c_int;
    let Some(f) = next!(bindresvport: F) else {
        return fail(libc::ENOSYS, -1);
    };
    // SAFETY: forwarding.
    let r = unsafe { f(fd, sin) };
    if r != 0 {
        return r;
    }
    match check_local(Call::Bind, fd) {
        Verdict::Allow => 0,
        Verdict::Deny(e) => fail(e, -1),
    }
}

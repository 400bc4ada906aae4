//! Network hooks: outbound (connect, sendto/sendmsg with an address),
//! inbound (accepted peers), listen (bind, listen), and name resolution.

use crate::check::{fail, judge, run, Verdict};
use crate::hosts;
use crate::real::next;
use crate::sys::cstr;
use ldguard_policy::{Call, Direction, Kind, Protocol, Request};
use libc::{addrinfo, c_char, c_int, msghdr, sockaddr, socklen_t, ssize_t};
use std::mem::size_of;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What a socket address names.
enum Peer<'a> {
    Ip(IpAddr, u16),
    /// A unix socket path; abstract names start with `@`.
    Unix(&'a [u8]),
}

/// Decodes a socket address; `buf` holds an abstract unix name as `@name`.
///
/// # Safety
/// `addr` must be null or valid for `len` bytes.
unsafe fn peer<'a>(
    addr: *const sockaddr,
    len: socklen_t,
    buf: &'a mut [u8; 110],
) -> Option<Peer<'a>> {
    if addr.is_null() || (len as usize) < size_of::<libc::sa_family_t>() {
        return None;
    }
    // SAFETY: at least the family is readable; each arm checks the length
    // before reading the full structure (unaligned reads: callers may pass
    // any buffer).
    unsafe {
        match c_int::from((*addr).sa_family) {
            libc::AF_INET if len as usize >= size_of::<libc::sockaddr_in>() => {
                let a = std::ptr::read_unaligned(addr as *const libc::sockaddr_in);
                Some(Peer::Ip(
                    IpAddr::V4(Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr))),
                    u16::from_be(a.sin_port),
                ))
            }
            libc::AF_INET6 if len as usize >= size_of::<libc::sockaddr_in6>() => {
                let a = std::ptr::read_unaligned(addr as *const libc::sockaddr_in6);
                let v6 = Ipv6Addr::from(a.sin6_addr.s6_addr);
                // IPv4-mapped addresses match v4 rules.
                let ip = v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4);
                Some(Peer::Ip(ip, u16::from_be(a.sin6_port)))
            }
            libc::AF_UNIX => {
                let off = size_of::<libc::sa_family_t>();
                let n = (len as usize).saturating_sub(off).min(108);
                let raw = std::slice::from_raw_parts((addr as *const u8).add(off), n);
                if raw.is_empty() {
                    return None; // unnamed
                }
                if raw[0] == 0 {
                    buf[0] = b'@';
                    let name = &raw[1..];
                    buf[1..=name.len()].copy_from_slice(name);
                    Some(Peer::Unix(&buf[..=name.len()]))
                } else {
                    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
                    buf[..end].copy_from_slice(&raw[..end]);
                    Some(Peer::Unix(&buf[..end]))
                }
            }
            _ => None,
        }
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
    fd: c_int,
    addr: *const sockaddr,
    len: socklen_t,
) -> Verdict {
    run(|active| {
        let mut buf = [0u8; 110];
        // SAFETY: the caller's (addr, len) pair, as passed to libc.
        let Some(p) = (unsafe { peer(addr, len, &mut buf) }) else {
            return Verdict::Allow;
        };
        let mut req = Request {
            direction,
            ..Request::new(Kind::Network, call, active.program)
        };
        let mut name = [0u8; 128];
        let host;
        match p {
            Peer::Ip(ip, port) => {
                req.address = Some(ip);
                req.port = Some(port);
                req.protocol = protocol(fd);
                host =
                    hosts::lookup(ip, &mut name).and_then(|n| std::str::from_utf8(&name[..n]).ok());
                req.host = host;
            }
            Peer::Unix(path) => req.unix = Some(path),
        }
        judge(active, &req, |_| {})
    })
}

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
    if let Verdict::Deny(e) = check_addr(Call::Connect, Direction::Outbound, fd, addr, len) {
        return fail(e, -1);
    }
    match next!(connect: unsafe extern "C" fn(c_int, *const sockaddr, socklen_t) -> c_int) {
        // SAFETY: forwarding.
        Some(f) => unsafe { f(fd, addr, len) },
        None => fail(libc::ENOSYS, -1),
    }
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn bind(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    if let Verdict::Deny(e) = check_addr(Call::Bind, Direction::Listen, fd, addr, len) {
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
    if !addr.is_null() {
        if let Verdict::Deny(e) = check_addr(Call::Sendto, Direction::Outbound, fd, addr, len) {
            return fail(e, -1);
        }
    }
    type F = unsafe extern "C" fn(
        c_int,
        *const libc::c_void,
        usize,
        c_int,
        *const sockaddr,
        socklen_t,
    ) -> ssize_t;
    match next!(sendto: F) {
        // SAFETY: forwarding.
        Some(f) => unsafe { f(fd, buf, n, flags, addr, len) },
        None => fail(libc::ENOSYS, -1),
    }
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    // SAFETY: msg is the caller's valid msghdr (or null: the real call
    // reports EFAULT).
    if let Some(m) = unsafe { msg.as_ref() } {
        if !m.msg_name.is_null() {
            let addr = m.msg_name as *const sockaddr;
            if let Verdict::Deny(e) =
                check_addr(Call::Sendmsg, Direction::Outbound, fd, addr, m.msg_namelen)
            {
                return fail(e, -1);
            }
        }
    }
    match next!(sendmsg: unsafe extern "C" fn(c_int, *const msghdr, c_int) -> ssize_t) {
        // SAFETY: forwarding.
        Some(f) => unsafe { f(fd, msg, flags) },
        None => fail(libc::ENOSYS, -1),
    }
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
    // SAFETY: node is null or NUL-terminated.
    let name = unsafe { cstr(node) };
    if let Some(name) = name.and_then(|n| std::str::from_utf8(n).ok()) {
        let verdict = run(|active| {
            let req = Request {
                host: Some(name),
                ..Request::new(Kind::Network, Call::Getaddrinfo, active.program)
            };
            judge(active, &req, |_| {})
        });
        if let Verdict::Deny(e) = verdict {
            return fail(e, libc::EAI_SYSTEM);
        }
    }
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
    if r == 0 && !crate::state::is_off() {
        if let Some(name) = name {
            // SAFETY: on success *res is a valid list owned by the caller.
            let mut ai = unsafe { *res };
            let mut buf = [0u8; 110];
            // SAFETY: each node of the list is valid until freeaddrinfo.
            while let Some(a) = unsafe { ai.as_ref() } {
                // SAFETY: ai_addr is valid for ai_addrlen bytes.
                if let Some(Peer::Ip(ip, _)) = unsafe { peer(a.ai_addr, a.ai_addrlen, &mut buf) } {
                    hosts::remember(ip, name);
                }
                ai = a.ai_next;
            }
        }
    }
    r
}

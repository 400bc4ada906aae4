//! What one event says the workload did.

use ldguard_events::Event;
use ldguard_policy::{Access, Call, Direction, Kind};
use std::net::{IpAddr, SocketAddr};

/// One operation, as learned from an event (targets not yet generalised).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    File {
        access: Access,
        path: String,
    },
    Exec {
        path: String,
    },
    Net {
        direction: Direction,
        target: NetTarget,
    },
    Syscall {
        call: Call,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NetTarget {
    Ip(IpAddr, u16),
    /// A unix socket path, or `@name` for an abstract socket.
    Unix(String),
    /// A name looked up with `getaddrinfo`.
    Host(String),
}

impl Op {
    pub fn kind(&self) -> Kind {
        match self {
            Op::File { .. } => Kind::File,
            Op::Exec { .. } => Kind::Exec,
            Op::Net { .. } => Kind::Network,
            Op::Syscall { .. } => Kind::Syscall,
        }
    }
}

/// Why an event taught nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Skip {
    /// A note from the library itself, not an operation.
    Status,
    /// Blocked in `enforce` mode: the operation never happened.
    Enforced,
    /// The target was cut short when the event was built.
    Truncated,
    /// A field the operation needs is missing or malformed.
    Malformed,
}

impl Skip {
    pub fn describe(self) -> &'static str {
        match self {
            Skip::Status => "library status events",
            Skip::Enforced => {
                "operations blocked in enforce mode (they never happened; not learned)"
            }
            Skip::Truncated => "events whose target was truncated",
            Skip::Malformed => "events with a missing or malformed kind, call or target",
        }
    }
}

/// The operation `e` reports.
pub fn operation(e: &Event) -> Result<Op, Skip> {
    if e.kind == "status" {
        return Err(Skip::Status);
    }
    if e.enforced && matches!(e.action.as_str(), "deny" | "kill") {
        return Err(Skip::Enforced);
    }
    let target = e.target.as_deref();
    if target.is_some_and(|t| t.ends_with('…')) {
        return Err(Skip::Truncated);
    }
    let kind = Kind::parse(&e.kind).ok_or(Skip::Malformed)?;
    let call = Call::from_name(&e.call).ok_or(Skip::Malformed)?;
    let path = || match target {
        Some(t) if t.starts_with('/') => Ok(t.to_owned()),
        _ => Err(Skip::Malformed),
    };
    Ok(match kind {
        Kind::File => Op::File {
            access: e
                .access
                .as_deref()
                .and_then(Access::parse)
                .ok_or(Skip::Malformed)?,
            path: path()?,
        },
        Kind::Exec => Op::Exec { path: path()? },
        Kind::Network => {
            let direction = e
                .access
                .as_deref()
                .and_then(Direction::parse)
                .unwrap_or(Direction::Outbound);
            let target = target.ok_or(Skip::Malformed)?;
            let target = if call == Call::Getaddrinfo {
                NetTarget::Host(e.host.clone().unwrap_or_else(|| target.to_owned()))
            } else if target.starts_with('/') || target.starts_with('@') {
                NetTarget::Unix(target.to_owned())
            } else {
                let sa: SocketAddr = target.parse().map_err(|_| Skip::Malformed)?;
                NetTarget::Ip(unmap(sa.ip()), sa.port())
            };
            Op::Net { direction, target }
        }
        Kind::Syscall => Op::Syscall { call },
    })
}

/// IPv4-mapped IPv6 addresses are IPv4 (as the policy matches them).
fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &str, call: &str, target: &str, access: Option<&str>) -> Event {
        Event {
            kind: kind.into(),
            call: call.into(),
            target: Some(target.into()),
            access: access.map(Into::into),
            action: "allow".into(),
            ..Event::default()
        }
    }

    #[test]
    fn reads_every_kind_of_target() {
        assert_eq!(
            operation(&ev("file", "openat", "/etc/hosts", Some("read"))),
            Ok(Op::File {
                access: Access::Read,
                path: "/etc/hosts".into()
            })
        );
        assert_eq!(
            operation(&ev(
                "network",
                "connect",
                "[::ffff:10.0.0.1]:443",
                Some("outbound")
            )),
            Ok(Op::Net {
                direction: Direction::Outbound,
                target: NetTarget::Ip("10.0.0.1".parse().unwrap(), 443)
            })
        );
        assert_eq!(
            operation(&ev("network", "connect", "@abstract", Some("outbound"))),
            Ok(Op::Net {
                direction: Direction::Outbound,
                target: NetTarget::Unix("@abstract".into())
            })
        );
        assert_eq!(
            operation(&ev(
                "network",
                "getaddrinfo",
                "example.com",
                Some("outbound")
            )),
            Ok(Op::Net {
                direction: Direction::Outbound,
                target: NetTarget::Host("example.com".into())
            })
        );
        assert_eq!(
            operation(&ev("syscall", "setuid", "setuid", None)),
            Ok(Op::Syscall { call: Call::Setuid })
        );
    }

    #[test]
    fn skips_what_did_not_happen_or_cannot_be_read() {
        let mut denied = ev("exec", "execve", "/bin/sh", None);
        denied.action = "deny".into();
        denied.enforced = true;
        assert_eq!(operation(&denied), Err(Skip::Enforced));
        denied.enforced = false; // permissive: it did happen
        assert!(operation(&denied).is_ok());
        assert_eq!(
            operation(&ev("file", "openat", "/very/long…", Some("read"))),
            Err(Skip::Truncated)
        );
        assert_eq!(
            operation(&ev("file", "openat", "relative", Some("read"))),
            Err(Skip::Malformed)
        );
        assert_eq!(
            operation(&ev("file", "frobnicate", "/x", Some("read"))),
            Err(Skip::Malformed)
        );
        assert_eq!(
            operation(&ev("status", "ldguard", "", None)),
            Err(Skip::Status)
        );
    }
}

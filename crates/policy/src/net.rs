//! Address and port matchers for network rules.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An IPv4 or IPv6 network (`10.0.0.0/8`, `fd00:ec2::254/128`, or a bare
/// address meaning a single host).
///
/// IPv4-mapped IPv6 networks (`::ffff:10.0.0.0/104`) are stored as their
/// IPv4 equivalent, and [`Cidr::contains`] maps request addresses the same
/// way, so a v4 rule also catches a dual-stack socket's `::ffff:a.b.c.d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cidr {
    V4 { net: u32, prefix: u8 },
    V6 { net: u128, prefix: u8 },
}

/// Why an address or CIDR does not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetError {
    /// Byte offset into the text where the problem starts.
    pub offset: usize,
    pub message: String,
    pub hint: Option<String>,
}

fn v4_mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    }
}

fn v6_mask(prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - prefix)
    }
}

/// The IPv4 address inside an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`).
pub fn unmap(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => addr,
        },
        v4 => v4,
    }
}

impl Cidr {
    pub fn parse(text: &str) -> Result<Cidr, NetError> {
        let (addr_text, prefix_text) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr_text.parse().map_err(|_| NetError {
            offset: 0,
            message: format!("`{addr_text}` is not an IPv4 or IPv6 address"),
            hint: Some("write an address or a CIDR such as `10.0.0.0/8` or `fd00::/8`; host names go in `host`".into()),
        })?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix_text {
            None => max,
            Some(p) => {
                let offset = addr_text.len() + 1;
                let ok = !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p.len() <= 3;
                match p.parse::<u8>() {
                    Ok(n) if ok && n <= max => n,
                    _ => {
                        return Err(NetError {
                            offset,
                            message: format!("prefix length `/{p}` is not between 0 and {max}"),
                            hint: None,
                        })
                    }
                }
            }
        };
        let cidr = match addr {
            IpAddr::V4(v4) => Cidr::V4 {
                net: u32::from(v4),
                prefix,
            },
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) if prefix >= 96 => Cidr::V4 {
                    net: u32::from(v4),
                    prefix: prefix - 96,
                },
                _ => Cidr::V6 {
                    net: u128::from(v6),
                    prefix,
                },
            },
        };
        let masked = cidr.masked();
        if masked != cidr {
            return Err(NetError {
                offset: 0,
                message: format!("host bits are set after the /{prefix} prefix"),
                hint: Some(format!(
                    "did you mean `{}`?",
                    masked.display_as(addr.is_ipv6())
                )),
            });
        }
        Ok(cidr)
    }

    fn masked(self) -> Cidr {
        match self {
            Cidr::V4 { net, prefix } => Cidr::V4 {
                net: net & v4_mask(prefix),
                prefix,
            },
            Cidr::V6 { net, prefix } => Cidr::V6 {
                net: net & v6_mask(prefix),
                prefix,
            },
        }
    }

    fn display_as(self, v6: bool) -> String {
        match self {
            Cidr::V4 { net, prefix } if v6 => {
                format!("{}/{}", Ipv4Addr::from(net).to_ipv6_mapped(), prefix + 96)
            }
            Cidr::V4 { net, prefix } => format!("{}/{}", Ipv4Addr::from(net), prefix),
            Cidr::V6 { net, prefix } => format!("{}/{}", Ipv6Addr::from(net), prefix),
        }
    }

    /// `(network, mask)` for IPv4 networks, the form the rule table compares.
    pub fn v4_net_mask(self) -> Option<(u32, u32)> {
        match self {
            Cidr::V4 { net, prefix } => Some((net, v4_mask(prefix))),
            Cidr::V6 { .. } => None,
        }
    }

    /// `(network, mask)` for IPv6 networks.
    pub fn v6_net_mask(self) -> Option<(u128, u128)> {
        match self {
            Cidr::V6 { net, prefix } => Some((net, v6_mask(prefix))),
            Cidr::V4 { .. } => None,
        }
    }

    /// Whether `addr` (IPv4-mapped addresses counting as IPv4) is inside.
    pub fn contains(self, addr: IpAddr) -> bool {
        match (self, unmap(addr)) {
            (Cidr::V4 { net, prefix }, IpAddr::V4(a)) => u32::from(a) & v4_mask(prefix) == net,
            (Cidr::V6 { net, prefix }, IpAddr::V6(a)) => u128::from(a) & v6_mask(prefix) == net,
            _ => false,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display_as(false))
    }
}

/// An inclusive port range; a single port is `lo == hi`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    pub lo: u16,
    pub hi: u16,
}

impl PortRange {
    /// Parses `"443"` or `"1-8079"`.
    pub fn parse(text: &str) -> Result<PortRange, NetError> {
        let port = |s: &str, offset: usize| -> Result<u16, NetError> {
            let digits = !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit());
            match s.parse::<u32>() {
                Ok(n) if digits && n <= 65535 => Ok(n as u16),
                _ => Err(NetError {
                    offset,
                    message: format!("`{s}` is not a port number (0-65535)"),
                    hint: Some("write a port like `443` or a range like `8000-8999`".into()),
                }),
            }
        };
        let (lo, hi) = match text.split_once('-') {
            Some((a, b)) => (port(a, 0)?, port(b, a.len() + 1)?),
            None => {
                let p = port(text, 0)?;
                (p, p)
            }
        };
        if lo > hi {
            return Err(NetError {
                offset: 0,
                message: format!("the range is empty: {lo} is greater than {hi}"),
                hint: Some(format!("write `{hi}-{lo}`")),
            });
        }
        Ok(PortRange { lo, hi })
    }

    pub fn contains(self, port: u16) -> bool {
        self.lo <= port && port <= self.hi
    }
}

impl std::fmt::Display for PortRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn v4_cidrs() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains(ip("10.1.2.3")));
        assert!(!c.contains(ip("11.0.0.0")));
        let host = Cidr::parse("169.254.169.254").unwrap();
        assert_eq!(host, Cidr::parse("169.254.169.254/32").unwrap());
        assert!(host.contains(ip("169.254.169.254")));
        assert!(!host.contains(ip("169.254.169.253")));
        let all = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all.contains(ip("1.2.3.4")));
        assert!(!all.contains(ip("::1")));
    }

    #[test]
    fn v6_cidrs() {
        let c = Cidr::parse("fd00:ec2::254/128").unwrap();
        assert!(c.contains(ip("fd00:ec2::254")));
        assert!(!c.contains(ip("fd00:ec2::255")));
        let ula = Cidr::parse("fc00::/7").unwrap();
        assert!(ula.contains(ip("fd12::1")));
        assert!(!ula.contains(ip("fe80::1")));
        assert!(!ula.contains(ip("10.0.0.1")));
        assert!(Cidr::parse("::/0").unwrap().contains(ip("2001:db8::1")));
    }

    #[test]
    fn v4_mapped_v6_addresses_match_v4_rules() {
        let c = Cidr::parse("169.254.169.254/32").unwrap();
        assert!(c.contains(ip("::ffff:169.254.169.254")));
        assert!(!c.contains(ip("::ffff:169.254.169.253")));
        // A mapped network in a rule is the same v4 network.
        let m = Cidr::parse("::ffff:10.0.0.0/104").unwrap();
        assert_eq!(m, Cidr::parse("10.0.0.0/8").unwrap());
        assert!(m.contains(ip("10.9.9.9")));
        // `::/0` covers only real IPv6 traffic: mapped addresses are v4.
        assert!(!Cidr::parse("::/0").unwrap().contains(ip("::ffff:1.2.3.4")));
    }

    #[test]
    fn rejects_bad_cidrs() {
        let e = Cidr::parse("10.0.0.0/33").unwrap_err();
        assert_eq!(
            (e.offset, e.message.as_str()),
            (9, "prefix length `/33` is not between 0 and 32")
        );
        assert!(Cidr::parse("fd00::/129").is_err());
        assert!(Cidr::parse("10.0.0/8").is_err());
        assert!(Cidr::parse("example.com").is_err());
        assert!(Cidr::parse("10.0.0.0/").is_err());
        assert!(Cidr::parse("10.0.0.0/+8").is_err());
        let e = Cidr::parse("10.1.0.0/8").unwrap_err();
        assert_eq!(e.hint.as_deref(), Some("did you mean `10.0.0.0/8`?"));
    }

    #[test]
    fn port_ranges() {
        let r = PortRange::parse("1-8079").unwrap();
        assert!(r.contains(1) && r.contains(8079));
        assert!(!r.contains(0) && !r.contains(8080));
        assert_eq!(
            PortRange::parse("443").unwrap(),
            PortRange { lo: 443, hi: 443 }
        );
        assert_eq!(
            PortRange::parse("0-65535").unwrap(),
            PortRange { lo: 0, hi: 65535 }
        );
        assert!(PortRange::parse("65536").is_err());
        assert!(PortRange::parse("80-").is_err());
        assert!(PortRange::parse("-80").is_err());
        assert!(PortRange::parse("+80").is_err());
        assert!(PortRange::parse("http").is_err());
        let e = PortRange::parse("9000-8000").unwrap_err();
        assert_eq!(e.message, "the range is empty: 9000 is greater than 8000");
        let e = PortRange::parse("80-9x").unwrap_err();
        assert_eq!(e.offset, 3);
    }
}

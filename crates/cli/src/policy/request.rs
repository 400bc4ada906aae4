//! A request described by command-line flags or a test case, turned into a
//! [`Request`] for `decide`.

use std::net::IpAddr;

use ldguard_policy::path::normalize;
use ldguard_policy::{Access, Call, Direction, Kind, Protocol, Request};
use serde::Deserialize;

/// The textual form of a request, shared by `explain` flags and the lines of
/// a cases file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RequestSpec {
    pub kind: String,
    /// The interposed call; defaults by kind (`openat`, `execve`, `connect`,
    /// `accept` or `bind` by direction). Required for syscall requests.
    pub call: Option<String>,
    /// The calling executable.
    pub program: String,
    pub path: Option<String>,
    pub resolved_path: Option<String>,
    /// Directory relative paths are resolved against (default `/`).
    pub cwd: Option<String>,
    pub access: Option<String>,
    pub direction: Option<String>,
    pub address: Option<String>,
    pub port: Option<u16>,
    pub protocol: Option<String>,
    pub unix: Option<String>,
    pub host: Option<String>,
}

/// The owned data a [`Request`] borrows from.
pub struct OwnedRequest {
    kind: Kind,
    call: Call,
    program: Vec<u8>,
    path: Option<Vec<u8>>,
    resolved_path: Option<Vec<u8>>,
    access: Access,
    direction: Direction,
    address: Option<IpAddr>,
    port: Option<u16>,
    protocol: Option<Protocol>,
    unix: Option<Vec<u8>>,
    host: Option<String>,
}

fn parse_enum<T>(
    field: &str,
    text: &str,
    parse: fn(&str) -> Option<T>,
    all: &[T],
    show: fn(&T) -> &'static str,
) -> Result<T, String> {
    parse(text).ok_or_else(|| {
        let names: Vec<&str> = all.iter().map(show).collect();
        format!(
            "unknown {field} `{text}` (expected one of {})",
            names.join(", ")
        )
    })
}

impl RequestSpec {
    pub fn build(&self) -> Result<OwnedRequest, String> {
        let kind = parse_enum("kind", &self.kind, Kind::parse, Kind::ALL, |k| k.as_str())?;
        let access = match &self.access {
            None => Access::Read,
            Some(a) => parse_enum("access", a, Access::parse, Access::ALL, |x| x.as_str())?,
        };
        let direction = match &self.direction {
            None => Direction::Outbound,
            Some(d) => parse_enum("direction", d, Direction::parse, Direction::ALL, |x| {
                x.as_str()
            })?,
        };
        let protocol = match &self.protocol {
            None => None,
            Some(p) => Some(parse_enum(
                "protocol",
                p,
                Protocol::parse,
                Protocol::ALL,
                |x| x.as_str(),
            )?),
        };
        let call = match &self.call {
            Some(name) => Call::from_name(name).ok_or_else(|| format!("unknown call `{name}`"))?,
            None => match (kind, direction) {
                (Kind::File, _) => Call::Openat,
                (Kind::Exec, _) => Call::Execve,
                (Kind::Network, Direction::Outbound) => Call::Connect,
                (Kind::Network, Direction::Inbound) => Call::Accept,
                (Kind::Network, Direction::Listen) => Call::Bind,
                (Kind::Syscall, _) => {
                    return Err("a syscall request needs a call (such as `ptrace`)".into())
                }
            },
        };
        if call.kind() != kind {
            return Err(format!(
                "call `{}` is a {} call, not {kind}",
                call.name(),
                call.kind()
            ));
        }
        let cwd = self.cwd.as_deref().unwrap_or("/");
        if !cwd.starts_with('/') {
            return Err(format!("cwd `{cwd}` must be absolute"));
        }
        let abs = |p: &str| normalize(cwd.as_bytes(), p.as_bytes());
        let address = match &self.address {
            None => None,
            Some(a) => Some(
                a.parse::<IpAddr>()
                    .map_err(|_| format!("`{a}` is not an IP address"))?,
            ),
        };
        if !self.program.starts_with('/') {
            return Err(format!(
                "program `{}` must be an absolute path",
                self.program
            ));
        }
        Ok(OwnedRequest {
            kind,
            call,
            program: normalize(b"/", self.program.as_bytes()),
            path: self.path.as_deref().map(abs),
            resolved_path: self.resolved_path.as_deref().map(abs),
            access,
            direction,
            address,
            port: self.port,
            protocol,
            // Abstract socket names (`@name`) are not paths.
            unix: self.unix.as_deref().map(|u| {
                if u.starts_with('@') {
                    u.as_bytes().to_vec()
                } else {
                    abs(u)
                }
            }),
            host: self.host.clone(),
        })
    }

    /// A one-line human description, for `test` output.
    pub fn describe(&self) -> String {
        let mut parts = vec![self.kind.clone()];
        if let Some(c) = &self.call {
            parts.push(format!("call={c}"));
        }
        parts.push(format!("program={}", self.program));
        let opt = |name: &str, v: &Option<String>| v.as_ref().map(|v| format!("{name}={v}"));
        parts.extend(
            [
                opt("path", &self.path),
                opt("resolvedPath", &self.resolved_path),
                opt("access", &self.access),
                opt("direction", &self.direction),
                opt("address", &self.address),
                self.port.map(|p| format!("port={p}")),
                opt("protocol", &self.protocol),
                opt("unix", &self.unix),
                opt("host", &self.host),
            ]
            .into_iter()
            .flatten(),
        );
        parts.join(" ")
    }
}

impl OwnedRequest {
    pub fn request(&self) -> Request<'_> {
        Request {
            path: self.path.as_deref(),
            resolved_path: self.resolved_path.as_deref(),
            access: self.access,
            direction: self.direction,
            address: self.address,
            port: self.port,
            protocol: self.protocol,
            unix: self.unix.as_deref(),
            host: self.host.as_deref(),
            ..Request::new(self.kind, self.call, &self.program)
        }
    }
}

//! The ldguard policy engine.
//!
//! Parses and validates `ldguard.policy/v1` documents with precise,
//! span-carrying errors, compiles them into an immutable [`RuleTable`], and
//! answers [`RuleTable::decide`] for a [`Request`].
//!
//! This crate is pure safe Rust and performs no I/O. `decide` allocates
//! nothing and takes no lock: the preload library calls it on the hot path of
//! every intercepted libc call, from any thread, signal handlers included.
//!
//! PUBLIC API CONTRACT (other crates code against exactly these names):
//!
//! ```ignore
//! let table: RuleTable = ldguard_policy::compile_str(text, "web.json")?; // Result<RuleTable, Diagnostics>
//! let table = table.for_program(b"/usr/sbin/nginx"); // drops rules whose `program` can't match
//! let req = Request { path: Some(b"/bin/sh"), resolved_path: Some(b"/usr/bin/dash"),
//!                     ..Request::new(Kind::Exec, Call::Execve, b"/usr/sbin/nginx") };
//! let d: Decision = table.decide(&req);
//! if d.action.blocks() && table.mode() == Mode::Enforce { /* fail with d.errno */ }
//! if d.log { /* emit an event naming d.rule(), d.severity */ }
//! ```

#![forbid(unsafe_code)]

pub mod call;
mod check;
pub mod compile;
pub mod diag;
pub mod errno;
pub mod explain;
pub mod flat;
pub mod format;
pub mod glob;
mod index;
pub mod json;
pub mod lint;
pub mod model;
pub mod net;
pub mod path;
#[cfg(feature = "yaml")]
pub mod yaml;

pub use call::Call;
pub use check::{check_source, check_str, matchers, API_VERSION};
pub use compile::{compile_document, compile_str, compile_str_for_program, RuleTable};
pub use diag::{Diagnostic, Diagnostics};
pub use format::PolicyFormat;
pub use model::{
    Access, Action, Backstop, Direction, Kind, LandlockLevel, LogClass, LogSet, Mode, Policy,
    Protocol, Rule, Severity,
};

use std::net::IpAddr;

/// One intercepted operation, as the hooks see it. Borrowed, so building one
/// allocates nothing.
///
/// Paths must already be absolute and normalised (see [`path::normalize`]).
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub kind: Kind,
    /// The interposed libc entry point (`openat`, `execve`, `connect`, ...).
    pub call: Call,
    /// Resolved `/proc/self/exe` of the calling process. Paths are bytes:
    /// Linux paths need not be UTF-8, and a deny must hold for those too.
    pub program: &'a [u8],
    /// File or exec target as given (made absolute and normalised).
    pub path: Option<&'a [u8]>,
    /// The same target with symlinks resolved, when it differs from `path`.
    /// A rule's `path` globs match if they match either.
    pub resolved_path: Option<&'a [u8]>,
    /// File access; ignored for other kinds.
    pub access: Access,
    /// Network direction; ignored for other kinds.
    pub direction: Direction,
    pub address: Option<IpAddr>,
    pub port: Option<u16>,
    pub protocol: Option<Protocol>,
    /// Path of a unix-domain socket (network kind).
    pub unix: Option<&'a [u8]>,
    /// DNS name the process resolved to `address`, when known.
    pub host: Option<&'a str>,
    /// Set by a caller that has scanned `path` and found no `/` directly
    /// followed by `.` (no segment starting with a dot): the globs every
    /// match of which has one (`**/.ssh/**`) are then not searched for.
    /// `false` says nothing. Says nothing of `resolved_path`.
    pub path_without_slash_dot: bool,
}

impl<'a> Request<'a> {
    /// A blank request of `kind` for `call` from `program`; fill the rest with
    /// struct update syntax or the helpers below.
    pub fn new(kind: Kind, call: Call, program: &'a [u8]) -> Self {
        Request {
            kind,
            call,
            program,
            path: None,
            resolved_path: None,
            access: Access::Read,
            direction: Direction::Outbound,
            address: None,
            port: None,
            protocol: None,
            unix: None,
            host: None,
            path_without_slash_dot: false,
        }
    }
}

/// The outcome of [`RuleTable::decide`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// What the policy says to do (before the mode is applied).
    pub action: Action,
    /// Index of the deciding rule in the table, `None` when a default decided.
    pub rule: Option<u32>,
    pub severity: Severity,
    /// errno to fail the call with when `action` is `Deny`.
    pub errno: i32,
    /// Whether this outcome produces an event under `log` and `ignore`.
    pub log: bool,
}

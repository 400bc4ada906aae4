//! One HTTP(S) request and its answer, for the policy fetch and the HTTP
//! event sink alike.
//!
//! The TLS stack (rustls, ring, the CA roots, ureq) is about half of a
//! library that every process of an instrumented image maps, while only the
//! one process per container that fetches, or one that ships events over
//! HTTP, ever uses it. So it can live in a second library:
//! - feature `https`: the client is compiled into this process ([`native`]);
//! - feature `dlopen`: requests go to `libldguard_net.so` (crate
//!   `ldguard-net`, which is this module with `https`), loaded on the first
//!   request from the directory of the object holding this code ([`bridge`]).
//!
//! With both, the loaded library is preferred and the built-in client is the
//! fallback (a test binary has no library next to it); with neither, every
//! request fails with [`TransportError::Unavailable`].

pub mod abi;
#[cfg(feature = "dlopen")]
mod bridge;
#[cfg(feature = "https")]
pub mod native;
#[cfg(feature = "https")]
pub(crate) mod tls;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// One request. Headers beyond these are not needed by ldguard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// `GET` or `POST`.
    pub method: String,
    pub url: String,
    /// Sent as `Accept` when set.
    pub accept: Option<String>,
    /// Sent as `Content-Type` when set.
    pub content_type: Option<String>,
    /// Sent as `If-None-Match` when set.
    pub if_none_match: Option<String>,
    /// Sent as `Authorization: Bearer …` when set.
    pub bearer: Option<String>,
    /// Request body (empty for a GET).
    pub body: Vec<u8>,
    /// Extra PEM CA certificates trusted on top of the system roots.
    pub ca_file: Option<PathBuf>,
    pub connect_timeout: Duration,
    /// Bound on the whole request: DNS, connect, TLS, headers and body.
    pub total_timeout: Duration,
    /// At most this many body bytes plus one are read, so that the caller
    /// can tell "exactly the limit" from "larger".
    pub body_limit: u64,
}

impl Exchange {
    pub fn new(method: &str, url: &str) -> Exchange {
        Exchange {
            method: method.to_string(),
            url: url.to_string(),
            accept: None,
            content_type: None,
            if_none_match: None,
            bearer: None,
            body: Vec::new(),
            ca_file: None,
            connect_timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(15),
            body_limit: 4 << 20,
        }
    }
}

/// The server's answer, whatever its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub etag: Option<String>,
    /// At most `body_limit + 1` bytes.
    pub body: Vec<u8>,
}

/// No answer from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportError {
    /// The request cannot be made as configured (an unusable CA file).
    Config { what: String, fix: String },
    /// DNS, connect, TLS handshake, timeout, a broken body.
    Transport(String),
    /// No HTTPS client in this process and none could be loaded.
    Unavailable(String),
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportError::Config { what, fix } => write!(f, "{what}; {fix}"),
            TransportError::Transport(reason) => f.write_str(reason),
            TransportError::Unavailable(reason) => f.write_str(reason),
        }
    }
}

impl std::error::Error for TransportError {}

/// Sends `request` with the client this build has (see the module docs).
pub fn exchange(request: &Exchange) -> Result<Answer, TransportError> {
    #[cfg(feature = "dlopen")]
    {
        match bridge::exchange(request) {
            Err(TransportError::Unavailable(_reason)) if cfg!(feature = "https") => {}
            other => return other,
        }
    }
    #[cfg(feature = "https")]
    {
        native::exchange(request)
    }
    #[cfg(not(feature = "https"))]
    {
        let _ = request;
        Err(TransportError::Unavailable(
            "this build has no HTTPS client (built without the `https` and `dlopen` features)"
                .to_string(),
        ))
    }
}

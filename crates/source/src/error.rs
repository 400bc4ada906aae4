//! Typed errors. Every message names the place (URL, path) and, where there is
//! one, the fix, because these end up verbatim in events an operator reads.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why the shared cache directory or one of its files cannot be used.
#[derive(Debug)]
pub enum CacheError {
    /// The directory exists but could be written by someone else, or is not ours.
    UnsafeDir { path: PathBuf, reason: String },
    /// A system call on the cache failed.
    Io {
        path: PathBuf,
        op: &'static str,
        err: io::Error,
    },
    /// The cache file exists but cannot be trusted or parsed.
    Corrupt { path: PathBuf, reason: String },
}

impl fmt::Display for CacheError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CacheError::UnsafeDir { path, reason } => write!(
                f,
                "policy cache directory {} is unsafe ({reason}); make it a directory owned by uid {} \
                 with mode 0700, or point cacheDir elsewhere",
                path.display(),
                crate::cache::euid()
            ),
            CacheError::Io { path, op, err } => {
                write!(f, "policy cache {}: {op} failed: {err}", path.display())
            }
            CacheError::Corrupt { path, reason } => write!(
                f,
                "policy cache file {} ignored: {reason}; it is rewritten at the next fetch",
                path.display()
            ),
        }
    }
}

impl std::error::Error for CacheError {}

/// Why a refresh produced no new policy. The last good policy stays in force.
#[derive(Debug)]
pub enum SourceError {
    /// The configuration cannot work (bad URL scheme, unreadable CA file, ...).
    Config { what: String, fix: String },
    /// The token file named in the configuration cannot be read.
    Token { path: PathBuf, err: io::Error },
    /// No HTTP answer at all: DNS, connect, TLS handshake, timeout.
    Transport { url: String, reason: String },
    /// The server answered with an error status.
    Status {
        url: String,
        code: u16,
        hint: &'static str,
    },
    /// The body is larger than the configured limit.
    TooLarge { url: String, limit: usize },
    /// A local policy file cannot be read.
    Read { path: PathBuf, err: io::Error },
    /// The text was fetched but the validation callback rejected it.
    Invalid { origin: String, message: String },
    /// The shared cache cannot be used.
    Cache(CacheError),
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceError::Config { what, fix } => write!(f, "{what}; {fix}"),
            SourceError::Token { path, err } => write!(
                f,
                "cannot read the policy server token from {}: {err}; mount the secret there or fix tokenFile",
                path.display()
            ),
            SourceError::Transport { url, reason } => {
                write!(f, "cannot reach policy server {url}: {reason}")
            }
            SourceError::Status { url, code, hint } => {
                write!(f, "policy server {url} answered HTTP {code}: {hint}")
            }
            SourceError::TooLarge { url, limit } => {
                write!(f, "policy from {url} is larger than {limit} bytes; refusing it")
            }
            SourceError::Read { path, err } => {
                write!(f, "cannot read policy file {}: {err}", path.display())
            }
            SourceError::Invalid { origin, message } => {
                write!(f, "policy from {origin} rejected, keeping the last good one: {message}")
            }
            SourceError::Cache(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for SourceError {}

impl From<CacheError> for SourceError {
    fn from(e: CacheError) -> Self {
        SourceError::Cache(e)
    }
}

/// What an operator should do about an HTTP status from the policy server.
pub(crate) fn status_hint(code: u16) -> &'static str {
    match code {
        401 => "the bearer token was refused; check tokenFile / LDGUARD_TOKEN(_FILE)",
        403 => "the token is not allowed to read this policy; check the token's permissions",
        404 => "no policy at this URL; check the policy URL",
        408 | 429 => "the server is busy; retrying with backoff",
        500..=599 => "server-side error; retrying with backoff",
        _ => "unexpected status; expected 200 or 304",
    }
}

//! Where ldguard policies come from (docs/distribution.md).
//!
//! A policy source is a local file or an `http(s)://` URL. HTTP sources are
//! fetched with verified TLS, a bearer token, `ETag`/`If-None-Match`, bounded
//! timeouts and exponential backoff with jitter. One process per container
//! fetches per refresh interval: the result lands in a shared cache directory
//! (atomic rename, validated before use) guarded by a non-blocking `flock`, so
//! every other process reads the cache and never waits on the network.
//!
//! The HTTPS client itself is behind features (module `transport`): compiled
//! in (`https`), or in a second library loaded only by a process that sends
//! a request (`dlopen`).
//!
//! This crate does no hooking and knows nothing about the policy language:
//! callers pass a validation callback that turns the text into whatever they
//! keep (a compiled rule table), so a policy is parsed once per change.

mod backoff;
mod cache;
mod error;
mod http;
mod location;
mod source;
pub mod transport;

#[cfg(feature = "test-server")]
pub mod testing;

pub use cache::{CacheDir, CacheMeta, DEFAULT_CACHE_DIR};
pub use error::{CacheError, SourceError};
pub use location::{Location, Token};
pub use source::{Origin, RefreshOutcome, Source, SourceConfig, Stats, Update};
#[cfg(feature = "https")]
pub use transport::native::agent;
/// The HTTP client in use, so dependants build requests with the same version.
#[cfg(feature = "https")]
pub use ureq;

//! The ldguard event schema (docs/distribution.md) and the sinks that ship events.
//!
//! An [`Event`] is one JSON object per line on the `file:` and `stderr`
//! sinks. The preload library builds events on its background writer thread
//! (never on a hooked call path) and hands them to a [`Sink`] in batches.
//!
//! New sinks implement [`Sink`] in their own module and get a [`SinkSpec`]
//! variant plus an arm in [`open`].

mod event;
pub mod http;
mod read;
mod sink;
mod spec;

pub use event::{format_time, Event};
pub use read::{parse_time, EventReader, LineError};
pub use sink::{FileSink, NullSink, Rotation, Sink, StderrSink};
pub use spec::{SinkSpec, SpecError};

use std::io;

/// Opens the sink that `spec` names.
///
/// An `http(s)://` sink opened here sends no token and trusts the system
/// roots only; the library builds [`http::HttpSink`] itself to add its token
/// and CA file.
pub fn open(spec: &SinkSpec) -> io::Result<Box<dyn Sink>> {
    open_with_spawner(spec, http::std_spawner)
}

/// [`open`], an `http(s)://` sink's sender thread started by `spawn`.
pub fn open_with_spawner(spec: &SinkSpec, spawn: http::Spawner) -> io::Result<Box<dyn Sink>> {
    match spec {
        SinkSpec::None => Ok(Box::new(NullSink)),
        SinkSpec::Stderr => Ok(Box::new(StderrSink::new())),
        SinkSpec::File(path) => Ok(Box::new(FileSink::open(path)?)),
        SinkSpec::Http(url) => Ok(Box::new(http::HttpSink::with_spawner(
            http::HttpSinkConfig::new(url.clone()),
            spawn,
        )?)),
    }
}

//! The ldguard event schema (docs/distribution.md) and the sinks that ship events.
//!
//! An [`Event`] is one JSON object per line on the `file:` and `stderr`
//! sinks. The preload library writes those lines itself, on the thread
//! that made the event, with [`line`] (no allocation: the same bytes as
//! [`Event::to_line`]); for an `http(s)://` sink its background writer
//! thread builds [`Event`]s and hands them to [`http::HttpSink`] in batches.
//!
//! Sinks driven by a writer thread implement [`Sink`] in their own module
//! and get a [`SinkSpec`] variant.

mod event;
pub mod http;
pub mod line;
mod read;
mod sink;
mod spec;

pub use event::{format_time, time_text, Event};
pub use read::{parse_time, EventReader, LineError};
pub use sink::{NullSink, Sink};
pub use spec::{SinkSpec, SpecError};

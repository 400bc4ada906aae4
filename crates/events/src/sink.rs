//! Where batches of events go from a writer thread. A sink is driven by
//! one thread, so it needs `Send` but no internal locking. (The library
//! writes `file:` and `stderr` events itself, line by line, on the thread
//! that made them: see [`line`](crate::line).)

use crate::Event;
use std::io;

/// A destination for batches of events.
pub trait Sink: Send {
    /// Ships `events` in order. A failed batch may be retried by the caller
    /// or counted as lost; sinks must not block for long.
    fn write_batch(&mut self, events: &[Event]) -> io::Result<()>;

    /// Pushes out anything buffered (called at exit and before exec).
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Discards everything (`none`).
pub struct NullSink;

impl Sink for NullSink {
    fn write_batch(&mut self, _: &[Event]) -> io::Result<()> {
        Ok(())
    }
}

//! Reporting decisions: the fixed-size record a hook fills (`record`),
//! written by the hook's own thread for file and stderr sinks (`direct`),
//! or queued (`queue`) for the HTTP sink's writer thread (`emit`, which
//! routes every record).

pub mod direct;
pub mod emit;
pub mod queue;
pub mod record;

//! The library's footing in the process, below every decision: system
//! calls without libc's wrappers (`sys`), the next definitions of the
//! hooked functions (`real`), the per-thread re-entrancy guard and the
//! library's own threads (`guard`), stopping those threads for the calls
//! that need a single-threaded process (`quiesce`), and the large buffers
//! mapped on first use (`mapped`).

pub mod guard;
pub mod mapped;
pub mod quiesce;
pub mod real;
pub mod sys;

//! The interposed libc entry points, by rule kind. Every hook follows one
//! pattern: check (see [`crate::check::run`]), then call the next definition
//! of the symbol, or fail with the policy's errno. When the next definition
//! is missing (a symbol newer than the process's libc) the hook makes the
//! system call itself.

pub mod alias;
mod borrowed;
pub mod exec;
pub mod file;
pub mod internal;
pub mod meta;
pub mod net;
mod routed;
pub mod sys;
pub mod walk;

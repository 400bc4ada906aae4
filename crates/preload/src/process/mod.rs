//! What the library knows about the process it runs in: the configuration
//! it was given (`config`) and the table and mode in force, published for
//! the hooks (`active`).

pub(crate) mod active;
pub mod config;

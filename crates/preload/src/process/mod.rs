//! What the library knows about the process it runs in: the configuration
//! it was given (`config`), the table and mode in force, published for
//! the hooks (`active`), and the name of a script the library started
//! (`script_comm`).

pub(crate) mod active;
pub mod config;
pub mod script_comm;

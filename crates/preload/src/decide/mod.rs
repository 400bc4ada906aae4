//! Deciding a call: running a check under the guard and reporting its
//! verdict (`check`), the kernel's path of what a call names (`resolve`),
//! drift against the image's manifest (`drift`), first sightings for
//! learning (`behavior`) and the host names a process resolved (`hosts`).

pub(crate) mod behavior;
pub(crate) mod check;
pub mod drift;
pub(crate) mod hosts;
pub(crate) mod resolve;

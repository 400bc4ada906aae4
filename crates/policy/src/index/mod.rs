//! The lookup structures behind [`crate::RuleTable::decide`]: built once
//! per policy (and again per program by `for_program`), read without locks
//! or allocation.

pub mod net;
pub mod path;

/// A rule that may match, in document order.
#[derive(Clone, Copy, Debug)]
pub struct Cand {
    pub rule: u32,
    /// The rule has `program` globs that the table is not specialised for.
    pub check_program: bool,
}

/// "No rule": larger than every real rule index.
pub const NONE: u32 = u32::MAX;

//! The lookup structures behind [`crate::RuleTable::decide`]: built once
//! per policy (and again per program by `for_program`), read without locks
//! or allocation.

use std::borrow::Cow;

use crate::flat::{Read, Reader, Writer};
use crate::glob::le_u32;

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

impl Cand {
    /// The stored form: `rule | check_program << 31`.
    #[inline]
    pub(crate) fn word(self) -> u32 {
        self.rule | (self.check_program as u32) << 31
    }

    #[inline]
    pub(crate) fn from_word(x: u32) -> Cand {
        Cand {
            rule: x & !(1 << 31),
            check_program: x >> 31 != 0,
        }
    }
}

/// Candidates in document order as the compiled table stores them (one
/// little-endian [`Cand::word`] each), borrowed from the mapped table file
/// when read from one. A rule index is not checked when read: whoever
/// uses one checks it (`RuleTable`'s per-rule lookups answer for a rule
/// the table does not have).
#[derive(Clone, Debug, Default)]
pub struct Cands(Cow<'static, [u8]>);

impl Cands {
    pub fn build(cands: impl IntoIterator<Item = Cand>) -> Cands {
        Cands(
            cands
                .into_iter()
                .flat_map(|c| c.word().to_le_bytes())
                .collect::<Vec<u8>>()
                .into(),
        )
    }

    #[inline]
    pub fn iter(&self) -> impl Iterator<Item = Cand> + '_ {
        cands_of(&self.0)
    }

    /// The stored words.
    #[inline]
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        w.records(4, &self.0);
    }

    pub(crate) fn decode(r: &mut Reader<'static>) -> Read<Cands> {
        Ok(Cands(Cow::Borrowed(r.records(4)?)))
    }
}

/// The candidates stored in `bytes`.
#[inline]
pub(crate) fn cands_of(bytes: &[u8]) -> impl Iterator<Item = Cand> + '_ {
    bytes
        .chunks_exact(4)
        .map(|c| Cand::from_word(le_u32(c, 0).unwrap_or(u32::MAX)))
}

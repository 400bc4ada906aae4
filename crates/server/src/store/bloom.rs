//! Fixed-size Bloom filters of PostgreSQL's blocks of events (migration 8):
//! each block stores one over its block keys (`image=…`, see
//! `EventRow::block_keys`) and one over the ASCII trigrams of its events'
//! search texts, both inline in the block's row. A read walks the blocks
//! and tests a filter with `get_bit` before it reads any event: a block
//! whose filter lacks a bit cannot hold the value; one that has them all
//! probably does (its events are tested anyway, so a false positive costs
//! a block's read, never a wrong answer).
//!
//! Built by the server at ingest, once per block, instead of a GIN entry
//! per key and per trigram. The bit positions are part of the stored data:
//! changing the hash, the sizes or the folding needs a new migration.

/// Bytes of a block's key filter: up to ~600 distinct keys per block of 256
/// events (one container each, and their rules) keep a false positive
/// rate under 2 % with [`KEY_HASHES`].
pub const KEY_BYTES: usize = 1024;
/// Bit positions per key.
pub const KEY_HASHES: u64 = 3;
/// Bytes of a block's text filter: about 3,000 distinct trigrams per block
/// set a third of its bits; a word of 6 letters (4 trigrams, 8 bits) then
/// passes a block that lacks it about once in 10,000.
pub const TEXT_BYTES: usize = 2048;
/// Bit positions per trigram.
pub const TEXT_HASHES: u64 = 2;

/// FNV-1a, 64 bits, of the concatenated parts: fixed by its definition
/// (the positions are stored).
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// The `hashes` bit positions of `item` in a filter of `bytes` bytes
/// (double hashing: `h1 + i * h2`).
pub fn positions(item: &[u8], bytes: usize, hashes: u64) -> impl Iterator<Item = u64> {
    positions_of_parts(&[item], bytes, hashes)
}

/// [`positions`] of the parts' concatenation.
fn positions_of_parts(parts: &[&[u8]], bytes: usize, hashes: u64) -> impl Iterator<Item = u64> {
    let h = fnv1a(parts);
    let (h1, h2) = (h & 0xffff_ffff, (h >> 32) | 1);
    let bits = (bytes * 8) as u64;
    (0..hashes).map(move |i| h1.wrapping_add(i.wrapping_mul(h2)) % bits)
}

/// Sets the bits of the parts' concatenation. Bit `n` is bit `n % 8`
/// (from the least significant) of byte `n / 8`, as PostgreSQL's
/// `get_bit(bytea, n)` reads it.
pub fn insert(filter: &mut [u8], parts: &[&[u8]], hashes: u64) {
    for p in positions_of_parts(parts, filter.len(), hashes) {
        filter[(p / 8) as usize] |= 1 << (p % 8);
    }
}

/// Whether an item's bits are all set (the Rust side of [`sql_test`]).
pub fn may_hold(filter: &[u8], item: &[u8], hashes: u64) -> bool {
    positions(item, filter.len(), hashes).all(|p| filter[(p / 8) as usize] & (1 << (p % 8)) != 0)
}

/// How a character of a search text is folded before its trigrams are
/// taken: ASCII letters to lower case; another character whose lower case
/// starts with an ASCII letter (the Kelvin sign, `İ`) to that letter, as
/// a database's `LOWER` may fold it; the rest kept (their trigrams are not
/// recorded: see [`text_trigrams`]).
fn fold(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    match c.to_lowercase().next() {
        Some(l) if l.is_ascii() => l,
        _ => c,
    }
}

/// Calls `f` with each trigram of `text` (folded, see [`fold`]) made of
/// ASCII characters only. A query's trigrams come from the same function
/// over its lower-cased text: an event whose lower-cased search text holds
/// the query holds each of these trigrams (the database lower-cases one
/// character at a time, and only ASCII characters and the ones [`fold`]
/// maps fold to ASCII).
pub fn text_trigrams(text: &str, mut f: impl FnMut(&[u8; 3])) {
    let mut window = [0u8; 3];
    let mut run = 0usize;
    for c in text.chars().map(fold) {
        if c.is_ascii() {
            window = [window[1], window[2], c as u8];
            run += 1;
            if run >= 3 {
                f(&window);
            }
        } else {
            run = 0;
        }
    }
}

/// A block's two filters, filled event by event.
pub struct BlockFilters {
    pub keys: Vec<u8>,
    pub text: Vec<u8>,
}

impl Default for BlockFilters {
    fn default() -> Self {
        BlockFilters {
            keys: vec![0; KEY_BYTES],
            text: vec![0; TEXT_BYTES],
        }
    }
}

impl BlockFilters {
    /// Adds the block key `field=value` (`field` alone for `None`: see
    /// `EventRow::block_keys`) without building its string.
    pub fn add_key(&mut self, field: &str, value: Option<&str>) {
        match value {
            Some(v) => insert(
                &mut self.keys,
                &[field.as_bytes(), b"=", v.as_bytes()],
                KEY_HASHES,
            ),
            None => insert(&mut self.keys, &[field.as_bytes()], KEY_HASHES),
        }
    }

    /// Adds one event's search text.
    pub fn add_text(&mut self, text: &str) {
        let filter = &mut self.text;
        text_trigrams(text, |t| insert(filter, &[t], TEXT_HASHES));
    }
}

/// SQL that is true when `column`'s filter (of `bytes` bytes) has every bit
/// of every item: `get_bit` tests on constants (the positions are numbers,
/// nothing from the request reaches the SQL text). `None` for no items.
pub fn sql_test<'a>(
    column: &str,
    items: impl IntoIterator<Item = &'a [u8]>,
    bytes: usize,
    hashes: u64,
) -> Option<String> {
    let mut bits: Vec<u64> = items
        .into_iter()
        .flat_map(|i| positions(i, bytes, hashes))
        .collect();
    bits.sort_unstable();
    bits.dedup();
    if bits.is_empty() {
        return None;
    }
    let tests: Vec<String> = bits
        .iter()
        .map(|b| format!("get_bit({column}, {b}) = 1"))
        .collect();
    Some(format!("({})", tests.join(" AND ")))
}

/// The distinct trigrams of a free-text query (lower-cased as the
/// substring test lower-cases it).
pub fn query_trigrams(q: &str) -> Vec<[u8; 3]> {
    let mut out = Vec::new();
    text_trigrams(&q.to_lowercase(), |t| {
        if !out.contains(t) {
            out.push(*t);
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_added_key_is_found_and_most_absent_ones_are_not() {
        let mut f = BlockFilters::default();
        for n in 0..600 {
            f.add_key("container", Some(&format!("c{n}")));
        }
        f.add_key("container", None);
        assert!(may_hold(&f.keys, b"container", KEY_HASHES));
        for n in 0..600 {
            assert!(may_hold(
                &f.keys,
                format!("container=c{n}").as_bytes(),
                KEY_HASHES
            ));
        }
        let false_positives = (0..10_000)
            .filter(|n| may_hold(&f.keys, format!("container=x{n}").as_bytes(), KEY_HASHES))
            .count();
        assert!(false_positives < 300, "{false_positives} of 10,000");
    }

    #[test]
    fn every_substring_of_an_added_text_passes_its_trigram_test() {
        let mut f = BlockFilters::default();
        let text = "/usr/bin/Cat /ETC/Shadow r9 denied: \u{212a}ey İstanbul ünïcode";
        f.add_text(text);
        let lower = text.to_lowercase();
        let chars: Vec<char> = lower.chars().collect();
        for start in 0..chars.len() {
            for end in start + 1..=chars.len() {
                let q: String = chars[start..end].iter().collect();
                for t in query_trigrams(&q) {
                    assert!(may_hold(&f.text, &t, TEXT_HASHES), "{q:?}: {t:?}");
                }
            }
        }
        // The Kelvin sign folds to `k` as LOWER may fold it.
        assert!(query_trigrams("key")
            .iter()
            .all(|t| may_hold(&f.text, t, TEXT_HASHES)));
        let absent = query_trigrams("needle");
        assert_eq!(absent.len(), 4);
        assert!(!absent.iter().all(|t| may_hold(&f.text, t, TEXT_HASHES)));
    }
}

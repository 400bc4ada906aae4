//! The drift manifest: every executable file and shared library of an
//! image (path, size, mtime, mode, the first 128 bits of the content's
//! SHA-256), written by
//! `ldguard-layer` into the ldguard layer and looked up by the preload
//! library at exec and `dlopen`.
//!
//! The format is a table a process uses in place, with no parsing step
//! (like the compiled rule table): a fixed header, fixed-size records
//! sorted by path, then the path bytes in the same order. A lookup is a
//! binary search comparing path bytes; nothing is allocated or decoded.
//!
//! ```text
//! header  "LDGDRIFT" | version u32 | count u32 | strings offset u32 | 0 u32
//! record  path offset u32 | path len u32 | size u64 | mtime i64 | mode u32
//!         | 0 u32 | digest [16]                   (48 bytes, little-endian)
//! strings the absolute paths, back to back, in record order
//! ```
//!
//! Size: the ldguard layer is compressed, and the digests do not compress,
//! so everything else is laid out to: sorted paths share their prefixes
//! with their neighbours (no per-record hash, which would scatter them).
//! The digest is SHA-256 cut to 128 bits: what it must resist is a second
//! preimage (a file made to match one the image already holds), which
//! takes ~2^128 hashes at that length; the full 256 bits were a third of
//! the manifest gzipped. Measured on a bookworm image in BENCHMARKS.md.

#![forbid(unsafe_code)]

use std::cmp::Ordering;

pub const MAGIC: &[u8; 8] = b"LDGDRIFT";
/// 3: 128-bit digests (2: the full SHA-256; 1: sorted by an FNV-1a hash
/// of the path).
pub const VERSION: u32 = 3;
/// Where the layer builder puts the manifest in an image.
pub const MANIFEST_PATH: &str = "/etc/ldguard/drift.manifest";

const HEADER: usize = 24;
const RECORD: usize = 48;

/// What the image says about one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub size: u64,
    pub mtime: i64,
    pub mode: u32,
    pub digest: Digest,
}

/// A file's content as the manifest records it: the first 16 bytes of
/// its SHA-256.
pub type Digest = [u8; 16];

/// The manifest's digest of a content whose SHA-256 is `sha256`.
pub fn digest_of(sha256: &[u8; 32]) -> Digest {
    let mut d = [0; 16];
    for (to, from) in d.iter_mut().zip(sha256) {
        *to = *from;
    }
    d
}

/// Writes a manifest of `entries` (absolute paths; a repeated path keeps
/// its first entry).
pub fn encode<'a>(entries: impl IntoIterator<Item = (&'a [u8], Entry)>) -> Vec<u8> {
    let mut rows: Vec<(&[u8], Entry)> = entries.into_iter().collect();
    rows.sort_by(|a, b| a.0.cmp(b.0));
    rows.dedup_by(|a, b| a.0 == b.0);
    let strings_at = HEADER + rows.len() * RECORD;
    let mut out = Vec::with_capacity(strings_at + rows.iter().map(|r| r.0.len()).sum::<usize>());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(rows.len() as u32).to_le_bytes());
    out.extend_from_slice(&(strings_at as u32).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    let mut offset = 0u32;
    for (path, e) in &rows {
        out.extend_from_slice(&offset.to_le_bytes());
        out.extend_from_slice(&(path.len() as u32).to_le_bytes());
        out.extend_from_slice(&e.size.to_le_bytes());
        out.extend_from_slice(&e.mtime.to_le_bytes());
        out.extend_from_slice(&e.mode.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&e.digest);
        offset += path.len() as u32;
    }
    for (path, _) in &rows {
        out.extend_from_slice(path);
    }
    out
}

/// A manifest, borrowed from its bytes.
#[derive(Clone, Copy, Debug)]
pub struct Manifest<'a> {
    bytes: &'a [u8],
    count: usize,
    strings: usize,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

impl<'a> Manifest<'a> {
    /// Checks the header and that the table fits (constant time); every
    /// path is bounds-checked again when it is read.
    pub fn new(bytes: &'a [u8]) -> Result<Manifest<'a>, &'static str> {
        if bytes.len() < HEADER || &bytes[..8] != MAGIC {
            return Err("not a drift manifest (bad magic)");
        }
        if u32_at(bytes, 8) != VERSION {
            return Err("unsupported drift manifest version (written by another ldguard-layer: instrument the image again)");
        }
        let count = u32_at(bytes, 12) as usize;
        let strings = u32_at(bytes, 16) as usize;
        if count
            .checked_mul(RECORD)
            .and_then(|r| r.checked_add(HEADER))
            != Some(strings)
            || strings > bytes.len()
        {
            return Err("truncated drift manifest");
        }
        Ok(Manifest {
            bytes,
            count,
            strings,
        })
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn path_of(&self, i: usize) -> Option<&'a [u8]> {
        let r = HEADER + i * RECORD;
        let off = self.strings.checked_add(u32_at(self.bytes, r) as usize)?;
        let len = u32_at(self.bytes, r + 4) as usize;
        self.bytes.get(off..off.checked_add(len)?)
    }

    fn entry_of(&self, i: usize) -> Entry {
        let r = HEADER + i * RECORD;
        Entry {
            size: u64_at(self.bytes, r + 8),
            mtime: u64_at(self.bytes, r + 16) as i64,
            mode: u32_at(self.bytes, r + 24),
            digest: self.bytes[r + 32..r + 48].try_into().expect("16 bytes"),
        }
    }

    /// The entry for `path` (absolute, symlinks resolved). No allocation.
    /// A damaged table finds less, never more: a record whose path is out
    /// of bounds ends the search with no entry.
    pub fn lookup(&self, path: &[u8]) -> Option<Entry> {
        let (mut lo, mut hi) = (0, self.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.path_of(mid)?.cmp(path) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return Some(self.entry_of(mid)),
            }
        }
        None
    }

    /// Every path and entry, in table order (for tools and tests).
    pub fn iter(&self) -> impl Iterator<Item = (&'a [u8], Entry)> + '_ {
        (0..self.count).filter_map(move |i| Some((self.path_of(i)?, self.entry_of(i))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u8) -> Entry {
        Entry {
            size: n as u64 * 1000,
            mtime: 1_700_000_000 + n as i64,
            mode: 0o100755,
            digest: [n; 16],
        }
    }

    #[test]
    fn every_written_path_is_found_and_others_are_not() {
        let paths: Vec<String> = (0..500).map(|i| format!("/usr/bin/tool{i}")).collect();
        let bytes = encode(
            paths
                .iter()
                .enumerate()
                .map(|(i, p)| (p.as_bytes(), entry(i as u8))),
        );
        let m = Manifest::new(&bytes).unwrap();
        assert_eq!(m.len(), 500);
        for (i, p) in paths.iter().enumerate() {
            assert_eq!(m.lookup(p.as_bytes()), Some(entry(i as u8)), "{p}");
        }
        assert_eq!(m.lookup(b"/usr/bin/tool500"), None);
        assert_eq!(m.lookup(b"/tmp/x"), None);
        assert_eq!(m.lookup(b""), None);
        assert_eq!(m.iter().count(), 500);
    }

    #[test]
    fn empty_manifest_finds_nothing() {
        let bytes = encode(std::iter::empty());
        let m = Manifest::new(&bytes).unwrap();
        assert!(m.is_empty());
        assert_eq!(m.lookup(b"/bin/sh"), None);
    }

    #[test]
    fn corrupt_manifests_are_refused_or_find_nothing() {
        assert!(Manifest::new(b"short").is_err());
        assert!(Manifest::new(b"NOTDRIFT\x02\0\0\0\0\0\0\0\x18\0\0\0\0\0\0\0").is_err());
        let bytes = encode([(b"/bin/ls".as_slice(), entry(1))]);
        assert!(
            Manifest::new(&bytes[..bytes.len() - 3]).is_ok_and(|m| m.lookup(b"/bin/ls").is_none())
        );
        assert!(Manifest::new(&bytes[..40]).is_err());
        for old in [1, 2] {
            let mut v = bytes.clone();
            v[8] = old;
            assert!(
                Manifest::new(&v).is_err(),
                "version {old} (hash-sorted; full digests) is refused"
            );
        }
        // A count whose table would overflow is refused, not wrapped.
        let mut huge = bytes.clone();
        huge[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Manifest::new(&huge).is_err());
    }

    #[test]
    fn paths_that_prefix_each_other_or_are_not_utf8_are_told_apart() {
        let paths: [&[u8]; 6] = [
            b"/usr/bin/a",
            b"/usr/bin/ab",
            b"/usr/bin/a/b",
            b"/usr/bin/\xff\xfe",
            b"/usr/bin/",
            b"/",
        ];
        // Given in reverse and with a repeat: the encoder sorts and dedups.
        let mut input: Vec<(&[u8], Entry)> = paths
            .iter()
            .enumerate()
            .map(|(i, p)| (*p, entry(i as u8)))
            .rev()
            .collect();
        input.push((b"/usr/bin/a", entry(9)));
        let bytes = encode(input);
        let m = Manifest::new(&bytes).unwrap();
        assert_eq!(m.len(), paths.len());
        for (i, p) in paths.iter().enumerate() {
            assert_eq!(m.lookup(p), Some(entry(i as u8)), "{p:?}");
        }
        for miss in [
            &b"/usr/bin/aa"[..],
            b"/usr/bin/a/",
            b"/usr/bin",
            b"/usr/bin/\xff",
        ] {
            assert_eq!(m.lookup(miss), None, "{miss:?}");
        }
        let listed: Vec<&[u8]> = m.iter().map(|(p, _)| p).collect();
        let mut sorted = listed.clone();
        sorted.sort();
        assert_eq!(listed, sorted, "records are in path order");
    }

    #[test]
    fn any_damage_to_the_table_never_panics_and_never_invents_an_entry() {
        let paths: Vec<String> = (0..64).map(|i| format!("/usr/lib/lib{i}.so")).collect();
        let bytes = encode(paths.iter().map(|p| (p.as_bytes(), entry(7))));
        // Every single byte of the header and records, set to every
        // interesting value.
        for at in 0..HEADER + 64 * RECORD {
            for v in [0u8, 1, 0x7f, 0x80, 0xff] {
                let mut d = bytes.clone();
                d[at] = v;
                let Ok(m) = Manifest::new(&d) else { continue };
                for p in paths.iter().take(8) {
                    if let Some(e) = m.lookup(p.as_bytes()) {
                        // A hit on a damaged table can only be a record
                        // whose path bytes really are `p`.
                        assert!(m.iter().any(|(q, f)| q == p.as_bytes() && f == e));
                    }
                }
                assert_eq!(m.lookup(b"/tmp/x"), None);
            }
        }
    }
}

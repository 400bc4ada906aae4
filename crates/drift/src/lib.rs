//! The drift manifest: every executable file and shared library of an
//! image (path, size, mtime, mode, SHA-256 of the content), written by
//! `ldguard-layer` into the ldguard layer and looked up by the preload
//! library at exec and `dlopen`.
//!
//! The format is a table a process uses in place, with no parsing step
//! (like the compiled rule table): a fixed header, fixed-size records sorted
//! by a 64-bit FNV-1a hash of the absolute path, then the path bytes.
//! A lookup is one hash and a binary search; the path bytes confirm a hit.
//!
//! ```text
//! header  "LDGDRIFT" | version u32 | count u32 | strings offset u32 | 0 u32
//! record  hash u64 | path offset u32 | path len u32 | size u64 | mtime i64
//!         | mode u32 | 0 u32 | sha256 [32]            (72 bytes, little-endian)
//! strings the absolute paths, back to back
//! ```

#![forbid(unsafe_code)]

pub const MAGIC: &[u8; 8] = b"LDGDRIFT";
pub const VERSION: u32 = 1;
/// Where the layer builder puts the manifest in an image.
pub const MANIFEST_PATH: &str = "/etc/ldguard/drift.manifest";

const HEADER: usize = 24;
const RECORD: usize = 72;

/// What the image says about one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub size: u64,
    pub mtime: i64,
    pub mode: u32,
    pub sha256: [u8; 32],
}

/// FNV-1a, 64 bits: tiny, allocation-free, and stable across builds (the
/// builder and the library must agree on it).
pub fn path_hash(path: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in path {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Writes a manifest of `entries` (absolute paths).
pub fn encode<'a>(entries: impl IntoIterator<Item = (&'a [u8], Entry)>) -> Vec<u8> {
    let mut rows: Vec<(u64, &[u8], Entry)> = entries
        .into_iter()
        .map(|(p, e)| (path_hash(p), p, e))
        .collect();
    rows.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    rows.dedup_by(|a, b| a.1 == b.1);
    let strings_at = HEADER + rows.len() * RECORD;
    let mut out = Vec::with_capacity(strings_at + rows.iter().map(|r| r.1.len()).sum::<usize>());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(rows.len() as u32).to_le_bytes());
    out.extend_from_slice(&(strings_at as u32).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    let mut offset = 0u32;
    for (hash, path, e) in &rows {
        out.extend_from_slice(&hash.to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
        out.extend_from_slice(&(path.len() as u32).to_le_bytes());
        out.extend_from_slice(&e.size.to_le_bytes());
        out.extend_from_slice(&e.mtime.to_le_bytes());
        out.extend_from_slice(&e.mode.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&e.sha256);
        offset += path.len() as u32;
    }
    for (_, path, _) in &rows {
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
    /// record is bounds-checked again when it is read.
    pub fn new(bytes: &'a [u8]) -> Result<Manifest<'a>, &'static str> {
        if bytes.len() < HEADER || &bytes[..8] != MAGIC {
            return Err("not a drift manifest (bad magic)");
        }
        if u32_at(bytes, 8) != VERSION {
            return Err("unsupported drift manifest version");
        }
        let count = u32_at(bytes, 12) as usize;
        let strings = u32_at(bytes, 16) as usize;
        if strings != HEADER + count * RECORD || strings > bytes.len() {
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

    fn hash_of(&self, i: usize) -> u64 {
        u64_at(self.bytes, HEADER + i * RECORD)
    }

    fn path_of(&self, i: usize) -> Option<&'a [u8]> {
        let r = HEADER + i * RECORD;
        let off = self.strings + u32_at(self.bytes, r + 8) as usize;
        let len = u32_at(self.bytes, r + 12) as usize;
        self.bytes.get(off..off.checked_add(len)?)
    }

    fn entry_of(&self, i: usize) -> Entry {
        let r = HEADER + i * RECORD;
        Entry {
            size: u64_at(self.bytes, r + 16),
            mtime: u64_at(self.bytes, r + 24) as i64,
            mode: u32_at(self.bytes, r + 32),
            sha256: self.bytes[r + 40..r + 72].try_into().expect("32 bytes"),
        }
    }

    /// The entry for `path` (absolute, symlinks resolved). No allocation.
    pub fn lookup(&self, path: &[u8]) -> Option<Entry> {
        let h = path_hash(path);
        let (mut lo, mut hi) = (0, self.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.hash_of(mid) < h {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        (lo..self.count)
            .take_while(|&i| self.hash_of(i) == h)
            .find(|&i| self.path_of(i) == Some(path))
            .map(|i| self.entry_of(i))
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
            sha256: [n; 32],
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
        assert!(Manifest::new(b"NOTDRIFT\x01\0\0\0\0\0\0\0\x18\0\0\0\0\0\0\0").is_err());
        let bytes = encode([(b"/bin/ls".as_slice(), entry(1))]);
        assert!(
            Manifest::new(&bytes[..bytes.len() - 3]).is_ok_and(|m| m.lookup(b"/bin/ls").is_none())
        );
        assert!(Manifest::new(&bytes[..40]).is_err());
        let mut v2 = bytes.clone();
        v2[8] = 2;
        assert!(Manifest::new(&v2).is_err());
    }
}

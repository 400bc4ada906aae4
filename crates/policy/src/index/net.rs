//! Network rules of one direction as bitsets over the rules (in document
//! order), one bitset per dimension value:
//!
//! - a combined bitset for which optional fields the request has and its
//!   protocol (rules whose matchers need a field the request lacks are out),
//! - interval tables for IPv4, IPv6 and ports: the boundaries of every
//!   rule's ranges split the domain into intervals, each with the set of
//!   rules that match anywhere in it (rules without that matcher are in all).
//!
//! `decide` ANDs a few words and takes the lowest set bit; only rules with
//! globs (`unix`, `host`) or an unspecialised `program` are checked one by
//! one, in order, among the surviving bits.

use std::borrow::Cow;
use std::marker::PhantomData;
use std::net::IpAddr;

use super::{Cand, NONE};
use crate::flat::{damaged, Read, Reader, Writer};
use crate::glob::{le_u32, GlobTable};
use crate::net::{unmap, Cidr};
use crate::{Protocol, Rule};

/// Bytes of a rule's one-by-one checks in [`NetIndex::lazy`]: flags
/// ([`CHECK_PROGRAM`], [`HAS_UNIX`], [`HAS_HOST`]), then the first glob and
/// the glob count of its `unix` and of its `host` globs in
/// [`NetIndex::globs`], little-endian `u32`s.
const LAZY_SIZE: usize = 20;
const CHECK_PROGRAM: u32 = 1;
const HAS_UNIX: u32 = 2;
const HAS_HOST: u32 = 4;

/// Buckets with at most this many starts are counted in one fixed window.
const WINDOW: usize = 8;

/// A key of an interval table: ports, IPv4 and IPv6 addresses.
trait Key: Copy + Ord + TryFrom<u128> {
    const BITS: u32;
    const MAX: Self;
    fn wide(self) -> u128;
    /// From `BITS / 8` little-endian bytes (the flat form stores each
    /// table's starts in their own width).
    fn from_le(bytes: &[u8]) -> Self;
    /// The top 8 bits, which select a bucket.
    fn top(self) -> usize {
        (self.wide() >> (Self::BITS - 8)) as usize
    }
}

impl Key for u16 {
    const BITS: u32 = 16;
    const MAX: u16 = u16::MAX;
    fn from_le(bytes: &[u8]) -> Self {
        u16::from_le_bytes(bytes.try_into().expect("2 bytes"))
    }
    fn wide(self) -> u128 {
        self.into()
    }
}

impl Key for u32 {
    const BITS: u32 = 32;
    const MAX: u32 = u32::MAX;
    fn from_le(bytes: &[u8]) -> Self {
        u32::from_le_bytes(bytes.try_into().expect("4 bytes"))
    }
    fn wide(self) -> u128 {
        self.into()
    }
}

impl Key for u128 {
    const BITS: u32 = 128;
    const MAX: u128 = u128::MAX;
    fn from_le(bytes: &[u8]) -> Self {
        u128::from_le_bytes(bytes.try_into().expect("16 bytes"))
    }
    fn wide(self) -> u128 {
        self
    }
}

/// Interval starts are stored in the narrowest type of their domain, and
/// bucketed by their top byte: a lookup reads the bucket's first interval
/// and scans the few starts inside the bucket, instead of a chain of
/// dependent binary-search loads over the whole table.
///
/// All three arrays are kept as little-endian bytes, exactly as the flat
/// form stores them, so a process that takes its table from a file uses
/// them in place (no copy, no allocation) and reads each value on access
/// (one load on little-endian machines).
#[derive(Clone, Debug, Default)]
struct Intervals<T> {
    /// Sorted interval starts, `T::BITS / 8` bytes each; the first is 0,
    /// and `WINDOW` starts of `T::MAX` pad the end.
    starts: Cow<'static, [u8]>,
    /// 257 `u32`: per top byte `b` (and one past the last), the index of
    /// the interval holding the smallest key with top byte `b`.
    buckets: Cow<'static, [u8]>,
    /// `words` `u64` per interval.
    bits: Cow<'static, [u8]>,
    /// Index of the last interval (before the padding).
    last: usize,
    key: PhantomData<T>,
}

fn u32_at(bytes: &[u8], i: usize) -> usize {
    u32::from_le_bytes(bytes[i * 4..i * 4 + 4].try_into().expect("4 bytes")) as usize
}

/// Word `w` of a bitset row of little-endian `u64`s.
#[inline]
fn word_at(row: &[u8], w: usize) -> u64 {
    u64::from_le_bytes(row[w * 8..w * 8 + 8].try_into().expect("8 bytes"))
}

impl<T: Key> Intervals<T> {
    const WIDTH: usize = T::BITS as usize / 8;

    /// `ranges`: inclusive `(lo, hi, local rule)`; `always`: rules in every
    /// interval (they have no matcher of this dimension).
    fn build(
        ranges: &[(u128, u128, usize)],
        always: &[u64],
        words: usize,
        max: u128,
    ) -> Intervals<T> {
        let mut starts: Vec<u128> = vec![0];
        for &(lo, hi, _) in ranges {
            starts.push(lo);
            if hi < max {
                starts.push(hi + 1);
            }
        }
        starts.sort_unstable();
        starts.dedup();
        // Sweep: +1 when a range opens, -1 after it closes.
        let mut events: Vec<(u128, usize, i32)> = Vec::with_capacity(ranges.len() * 2);
        for &(lo, hi, r) in ranges {
            events.push((lo, r, 1));
            if hi < max {
                events.push((hi + 1, r, -1));
            }
        }
        events.sort_unstable_by_key(|e| e.0);
        // Keep the open-range bitset up to date as counts cross zero, so
        // each interval costs `words` pushes (process start-up builds
        // these tables for every policy load).
        let mut count = vec![0i32; words * 64];
        let mut open = always.to_vec();
        let mut bits = Vec::with_capacity(starts.len() * words * 8);
        let mut ev = 0;
        for &s in &starts {
            while ev < events.len() && events[ev].0 <= s {
                let (_, r, delta) = events[ev];
                count[r] += delta;
                if count[r] > 0 {
                    open[r / 64] |= 1 << (r % 64);
                } else {
                    open[r / 64] &= !(1 << (r % 64));
                }
                ev += 1;
            }
            for w in &open {
                bits.extend_from_slice(&w.to_le_bytes());
            }
        }
        // buckets[b]: the interval holding the smallest key whose top byte
        // is b. A key with top byte b lies in buckets[b]..=buckets[b + 1].
        // One merge pass: process start-up compiles these tables.
        let mut buckets: Vec<u8> = Vec::with_capacity(257 * 4);
        let mut at_or_below = 0usize;
        for b in 0..256u128 {
            let floor = b << (T::BITS - 8);
            while at_or_below < starts.len() && starts[at_or_below] <= floor {
                at_or_below += 1;
            }
            buckets.extend_from_slice(&(at_or_below as u32 - 1).to_le_bytes());
        }
        buckets.extend_from_slice(&(starts.len() as u32 - 1).to_le_bytes());
        let last = starts.len() - 1;
        let mut packed = Vec::with_capacity((starts.len() + WINDOW) * Self::WIDTH);
        // Padding so that a fixed window of WINDOW starts after any bucket
        // floor is always in bounds (see `lookup`).
        for s in starts.into_iter().chain(std::iter::repeat_n(max, WINDOW)) {
            debug_assert!(T::try_from(s).is_ok(), "interval start inside its domain");
            packed.extend_from_slice(&s.to_le_bytes()[..Self::WIDTH]);
        }
        Intervals {
            starts: packed.into(),
            buckets: buckets.into(),
            bits: bits.into(),
            last,
            key: PhantomData,
        }
    }

    /// What `lookup` answers correctly with: sorted starts with `WINDOW`
    /// `MAX` padding, 257 non-decreasing buckets inside the table, `words`
    /// bitset words per interval and no bit for a rule that is not there
    /// (`n` rules). Checked once, when the table is written (`encode`):
    /// a file that passes its checksum is what was written, and `decode`
    /// checks only the sizes that keep every access in bounds.
    fn well_formed(&self, words: usize, n: usize) -> bool {
        let count = self.starts.len() / Self::WIDTH;
        let start = |i: usize| T::from_le(&self.starts[i * Self::WIDTH..][..Self::WIDTH]);
        let buckets: Vec<usize> = (0..self.buckets.len() / 4)
            .map(|i| u32_at(&self.buckets, i))
            .collect();
        count == self.last + 1 + WINDOW
            && start(0).wide() == 0
            && (1..=self.last).all(|i| start(i - 1) < start(i))
            && (self.last + 1..count).all(|i| start(i) == T::MAX)
            && buckets.len() == 257
            && buckets.windows(2).all(|b| b[0] <= b[1])
            && buckets[256] == self.last
            && self.bits.len() == count.saturating_sub(WINDOW) * words * 8
            && unused_bits_clear(
                &(0..self.bits.len() / 8)
                    .map(|w| word_at(&self.bits, w))
                    .collect::<Vec<_>>(),
                words,
                n,
            )
    }

    fn encode(&self, w: &mut Writer, words: usize, n: usize) {
        w.len(self.starts.len() / Self::WIDTH);
        w.raw(&self.starts);
        if self.well_formed(words, n) {
            w.len(self.buckets.len() / 4);
            w.raw(&self.buckets);
        } else {
            // Never written by `build`; should it happen, a reader refuses
            // the file (no 257 buckets) and compiles the policy instead.
            w.len(0);
        }
        w.len(self.bits.len() / 8);
        w.raw(&self.bits);
    }

    /// The inverse of `encode`, borrowing the arrays from the file. Only
    /// sizes are checked (constant time): they keep every access of
    /// `lookup` in bounds whatever the values, and the values themselves
    /// were checked when the file was written (`well_formed`) and are
    /// covered by the file's checksum.
    fn decode(r: &mut Reader<'static>, words: usize) -> Read<Intervals<T>> {
        let count = r.len(Self::WIDTH)?;
        let starts = r.take(count * Self::WIDTH)?;
        let nb = r.len(4)?;
        let buckets = r.take(nb * 4)?;
        let nbits = r.len(8)?;
        let bits = r.take(nbits * 8)?;
        if count <= WINDOW || nb != 257 || nbits != (count - WINDOW) * words {
            return damaged("bad interval table");
        }
        Ok(Intervals {
            starts: Cow::Borrowed(starts),
            buckets: Cow::Borrowed(buckets),
            bits: Cow::Borrowed(bits),
            last: count - WINDOW - 1,
            key: PhantomData,
        })
    }

    /// The bitset row (`words` little-endian `u64`) of the interval holding `x`.
    #[inline]
    fn lookup(&self, x: T, words: usize) -> &[u8] {
        // The index of the last start <= x. It lies between the bucket's
        // first interval and the next bucket's. Clamped, so that even a
        // table damaged in a way its checksum misses (a buggy writer)
        // cannot index out of bounds.
        let b = x.top();
        let hi = u32_at(&self.buckets, b + 1).min(self.last);
        let lo = u32_at(&self.buckets, b).min(hi);
        let width = Self::WIDTH;
        let starts = &self.starts[..];
        let mut base = lo;
        if hi - lo <= WINDOW {
            // A fixed window the compiler unrolls. Starts past `hi` are
            // above x (they are in later buckets) except the MAX padding
            // when x is MAX itself, which the `min` discards.
            let window = &starts[(lo + 1) * width..][..WINDOW * width];
            base = (lo
                + window
                    .chunks_exact(width)
                    .filter(|&s| T::from_le(s) <= x)
                    .count())
            .min(hi);
        } else {
            let mut len = hi - lo + 1;
            while len > 1 {
                let half = len / 2;
                let at = (base + half) * width;
                base = if T::from_le(&starts[at..at + width]) <= x {
                    base + half
                } else {
                    base
                };
                len -= half;
            }
        }
        &self.bits[base * words * 8..][..words * 8]
    }
}

/// Index for one direction. Every array is little-endian bytes, borrowed
/// from the mapped table file when read from one.
#[derive(Clone, Debug, Default)]
pub struct NetIndex {
    /// Local bit → document rule index (`u32`), with [`LAZY`] set when
    /// `lazy[local]` must be checked.
    rules: Cow<'static, [u8]>,
    /// Per local rule, its one-by-one checks ([`LAZY_SIZE`] bytes).
    lazy: Cow<'static, [u8]>,
    /// The `unix` and `host` globs `lazy` points into.
    globs: GlobTable,
    words: usize,
    /// 3 protocols (tcp, udp, none) × 16 presence combinations × words
    /// (`u64`).
    shape: Cow<'static, [u8]>,
    v4: Intervals<u32>,
    v6: Intervals<u128>,
    ports: Intervals<u16>,
}

/// Flag in `NetIndex::rules`: the rule has globs or an unresolved
/// `program` to check one by one (kept in the same word as the rule index
/// so that the common hit costs one load). Rule indices stay below 2^31.
const LAZY: u32 = 1 << 31;

const ADDR: usize = 1;
const PORT: usize = 2;
const UNIX: usize = 4;
const HOST: usize = 8;

impl NetIndex {
    /// `rules`: the candidates of this direction, in document order.
    pub fn build<'a>(rules: impl IntoIterator<Item = (Cand, &'a Rule)>) -> NetIndex {
        let rules: Vec<(Cand, &Rule)> = rules.into_iter().collect();
        let n = rules.len();
        let words = n.div_ceil(64).max(1);
        let mut idx = NetIndex {
            rules: rules
                .iter()
                .flat_map(|(c, r)| {
                    let lazy = c.check_program || r.unix.is_some() || r.host.is_some();
                    (c.rule | if lazy { LAZY } else { 0 }).to_le_bytes()
                })
                .collect::<Vec<u8>>()
                .into(),
            words,
            ..NetIndex::default()
        };
        let set = |v: &mut [u64], i: usize| v[i / 64] |= 1 << (i % 64);
        let mut shape = vec![0u64; 3 * 16 * words];
        let mut always_addr = vec![0u64; words];
        let mut always_port = vec![0u64; words];
        let (mut r4, mut r6, mut rp) = (Vec::new(), Vec::new(), Vec::new());
        let mut lazy = Vec::with_capacity(n * LAZY_SIZE);
        let mut globs = Vec::new();
        for (i, (cand, rule)) in rules.iter().enumerate() {
            for proto in 0..3 {
                let p = match proto {
                    0 => Some(Protocol::Tcp),
                    1 => Some(Protocol::Udp),
                    _ => None,
                };
                let proto_ok = match (&rule.protocol, p) {
                    (None, _) => true,
                    (Some(ps), Some(p)) => ps.contains(&p),
                    (Some(_), None) => false,
                };
                for present in 0..16 {
                    let ok = proto_ok
                        && (rule.address.is_none() || present & ADDR != 0)
                        && (rule.port.is_none() || present & PORT != 0)
                        && (rule.unix.is_none() || present & UNIX != 0)
                        && (rule.host.is_none() || present & HOST != 0);
                    if ok {
                        set(&mut shape[(proto * 16 + present) * words..][..words], i);
                    }
                }
            }
            match &rule.address {
                None => set(&mut always_addr, i),
                Some(cidrs) => {
                    for c in cidrs {
                        match *c {
                            Cidr::V4 { .. } => {
                                let (net, mask) = c.v4_net_mask().expect("v4");
                                r4.push((net as u128, (net | !mask) as u128, i));
                            }
                            Cidr::V6 { .. } => {
                                let (net, mask) = c.v6_net_mask().expect("v6");
                                r6.push((net, net | !mask, i));
                            }
                        }
                    }
                }
            }
            match &rule.port {
                None => set(&mut always_port, i),
                Some(ports) => rp.extend(ports.iter().map(|p| (p.lo as u128, p.hi as u128, i))),
            }
            let mut flags = if cand.check_program { CHECK_PROGRAM } else { 0 };
            let mut ranges = [0u32; 4];
            for (k, (has, list)) in [(HAS_UNIX, &rule.unix), (HAS_HOST, &rule.host)]
                .into_iter()
                .enumerate()
            {
                if let Some(list) = list {
                    flags |= has;
                    ranges[k * 2] = globs.len() as u32;
                    ranges[k * 2 + 1] = list.len() as u32;
                    globs.extend(list.iter());
                }
            }
            for x in std::iter::once(flags).chain(ranges) {
                lazy.extend_from_slice(&x.to_le_bytes());
            }
        }
        idx.globs = GlobTable::build(globs.into_iter().map(|g| (g, 0)));
        idx.shape = shape
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect::<Vec<u8>>()
            .into();
        idx.v4 = Intervals::build(&r4, &always_addr, words, u32::MAX as u128);
        idx.v6 = Intervals::build(&r6, &always_addr, words, u128::MAX);
        idx.ports = Intervals::build(&rp, &always_port, words, u16::MAX as u128);
        idx.lazy = lazy.into();
        idx
    }

    /// Number of rules (local bits).
    fn len(&self) -> usize {
        self.rules.len() / 4
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        w.records(4, &self.rules);
        w.records(LAZY_SIZE, &self.lazy);
        w.glob_table(&self.globs);
        w.len(self.words);
        w.records(8, &self.shape);
        let n = self.len();
        self.v4.encode(w, self.words, n);
        self.v6.encode(w, self.words, n);
        self.ports.encode(w, self.words, n);
    }

    /// The inverse of [`NetIndex::encode`], in place. Sizes are checked
    /// here; rule indexes and glob ranges where they are used (a rule the
    /// table does not have is answered for by `RuleTable`, a glob range is
    /// clipped to the globs there are).
    pub(crate) fn decode(r: &mut Reader<'static>) -> Read<NetIndex> {
        let rules = r.records(4)?;
        let lazy = r.records(LAZY_SIZE)?;
        let globs = r.glob_table()?;
        let n = rules.len() / 4;
        let words = r.u32()? as usize;
        let shape = r.records(8)?;
        // A stray bit past the last rule (which encoding never writes and
        // the checksum would catch) is ignored by `lookup`.
        if lazy.len() != n * LAZY_SIZE
            || words != n.div_ceil(64).max(1)
            || shape.len() != 3 * 16 * words * 8
        {
            return damaged("bad network shape");
        }
        Ok(NetIndex {
            rules: Cow::Borrowed(rules),
            lazy: Cow::Borrowed(lazy),
            globs,
            words,
            shape: Cow::Borrowed(shape),
            v4: Intervals::decode(r, words)?,
            v6: Intervals::decode(r, words)?,
            ports: Intervals::decode(r, words)?,
        })
    }

    /// Whether one of `count` globs from `first` matches `text`.
    fn any_glob(&self, first: u32, count: u32, text: &[u8]) -> bool {
        let first = first as usize;
        let end = first.saturating_add(count as usize).min(self.globs.len());
        (first..end).any(|i| self.globs.is_match(i, text))
    }

    /// Whether rule `local`'s one-by-one checks pass (`rule` is its
    /// document index).
    fn lazy_ok(
        &self,
        local: usize,
        rule: u32,
        unix: Option<&[u8]>,
        host: Option<&str>,
        program_ok: &impl Fn(u32) -> bool,
    ) -> bool {
        let Some(rec) = self.lazy.get(local * LAZY_SIZE..(local + 1) * LAZY_SIZE) else {
            return false;
        };
        let f = |k: usize| le_u32(rec, k * 4).unwrap_or(0);
        let flags = f(0);
        (flags & CHECK_PROGRAM == 0 || program_ok(rule))
            && (flags & HAS_UNIX == 0 || unix.is_some_and(|u| self.any_glob(f(1), f(2), u)))
            && (flags & HAS_HOST == 0
                || host.is_some_and(|h| self.any_glob(f(3), f(4), h.as_bytes())))
    }

    /// Lowest matching rule index, or [`NONE`].
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub fn lookup(
        &self,
        address: Option<IpAddr>,
        port: Option<u16>,
        protocol: Option<Protocol>,
        unix: Option<&[u8]>,
        host: Option<&str>,
        program_ok: &impl Fn(u32) -> bool,
    ) -> u32 {
        if self.rules.is_empty() {
            return NONE;
        }

        let words = self.words;
        let proto = match protocol {
            Some(Protocol::Tcp) => 0,
            Some(Protocol::Udp) => 1,
            None => 2,
        };
        let present = (usize::from(address.is_some()) * ADDR)
            | (usize::from(port.is_some()) * PORT)
            | (usize::from(unix.is_some()) * UNIX)
            | (usize::from(host.is_some()) * HOST);
        let at = (proto * 16 + present) * words * 8;
        let Some(shape) = self.shape.get(at..at + words * 8) else {
            return NONE;
        };
        let addr_bits = address.map(|a| match unmap(a) {
            IpAddr::V4(v4) => self.v4.lookup(u32::from(v4), words),
            IpAddr::V6(v6) => self.v6.lookup(u128::from(v6), words),
        });
        let port_bits = port.map(|p| self.ports.lookup(p, words));
        for w in 0..words {
            let mut bits = word_at(shape, w);
            if let Some(a) = addr_bits {
                bits &= word_at(a, w);
            }
            if let Some(p) = port_bits {
                bits &= word_at(p, w);
            }
            while bits != 0 {
                let local = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                // `get`: no bit past the last rule is ever written, but a
                // damaged table must not panic inside a hook.
                let Some(rule) = le_u32(&self.rules, local * 4) else {
                    return NONE;
                };
                if rule & LAZY == 0 {
                    return rule;
                }
                let rule = rule & !LAZY;
                if self.lazy_ok(local, rule, unix, host, program_ok) {
                    return rule;
                }
            }
        }
        NONE
    }
}

/// Whether no bitset row (of `words` words) has a bit at or above `n`.
fn unused_bits_clear(bits: &[u64], words: usize, n: usize) -> bool {
    let last = words - 1;
    let keep = n - last * 64; // 0..=64 bits used in the last word
    let mask = if keep >= 64 { 0 } else { !0u64 << keep };
    bits.chunks_exact(words).all(|row| row[last] & mask == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Kind;

    fn bench_index() -> NetIndex {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../policies/bench-100.json"
        ))
        .expect("bench policy");
        let policy = crate::check_str(&text, "bench-100.json").0.expect("valid");
        NetIndex::build(
            policy
                .rules
                .iter()
                .enumerate()
                .filter(|(_, r)| r.kind == Kind::Network)
                .map(|(i, r)| {
                    let cand = Cand {
                        rule: i as u32,
                        check_program: false,
                    };
                    (cand, r)
                }),
        )
    }

    /// What reading no longer checks is checked when writing: every table
    /// `build` makes passes, and one that does not is written so that no
    /// reader takes it.
    #[test]
    fn interval_tables_are_checked_when_written() {
        let idx = bench_index();
        let n = idx.len();
        assert!(n > 8, "a real network table ({n} rules)");
        assert!(idx.v4.well_formed(idx.words, n));
        assert!(idx.v6.well_formed(idx.words, n));
        assert!(idx.ports.well_formed(idx.words, n));

        let mut broken = idx.v4.clone();
        let mut buckets = broken.buckets.to_vec();
        buckets[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        broken.buckets = buckets.into();
        assert!(!broken.well_formed(idx.words, n));
        let mut w = Writer::default();
        broken.encode(&mut w, idx.words, n);
        let bytes = w.into_bytes();
        let mut r = Reader::new(Box::leak(bytes.into_boxed_slice()));
        assert!(Intervals::<u32>::decode(&mut r, idx.words).is_err());

        let mut stray = idx.ports.clone();
        let mut bits = stray.bits.to_vec();
        let last_word = idx.words * 8 - 1;
        bits[last_word] |= 0x80; // bit 63 of the last word: rule 127 or above
        stray.bits = bits.into();
        assert!(n < idx.words * 64, "a spare bit exists");
        assert!(!stray.well_formed(idx.words, n));
    }

    fn lookups(idx: &NetIndex) -> Vec<u32> {
        let mut out = Vec::new();
        for a in ["169.254.169.254", "10.1.2.3", "::1", "255.255.255.255"] {
            for port in [None, Some(22), Some(443)] {
                for proto in [None, Some(Protocol::Tcp), Some(Protocol::Udp)] {
                    out.push(
                        idx.lookup(Some(a.parse().unwrap()), port, proto, None, None, &|r| {
                            r % 2 == 0
                        }),
                    );
                }
            }
        }
        for unix in ["/run/docker.sock", "/var/run/docker.sock", "@x"] {
            out.push(idx.lookup(None, None, None, Some(unix.as_bytes()), None, &|_| true));
        }
        for host in ["metadata.google.internal", "example.com", "API.Example.COM"] {
            out.push(idx.lookup(
                None,
                Some(443),
                Some(Protocol::Tcp),
                None,
                Some(host),
                &|_| true,
            ));
        }
        out
    }

    /// A decoded index borrows every array from the table bytes and
    /// answers as the built one; any byte of it as the table stores it
    /// (rules, one-by-one checks, glob records and patterns, shape,
    /// interval tables) changed: refused, or every lookup answers without
    /// panicking.
    #[test]
    fn indexes_are_read_in_place_and_damage_never_panics() {
        let idx = bench_index();
        let mut w = Writer::default();
        idx.encode(&mut w);
        let (buf, strings) = w.into_parts();
        let decode = |buf: Vec<u8>, strings: Vec<u8>| {
            let buf: &'static [u8] = Box::leak(buf.into_boxed_slice());
            let strings: &'static [u8] = Box::leak(strings.into_boxed_slice());
            let mut r = Reader::with_strings(buf, strings);
            NetIndex::decode(&mut r).and_then(|d| match r.is_empty() {
                true => Ok(d),
                false => damaged("bytes after the index"),
            })
        };
        let read = decode(buf.clone(), strings.clone()).unwrap();
        for array in [&read.rules, &read.lazy, &read.shape] {
            assert!(matches!(array, Cow::Borrowed(_)));
        }
        assert!(read.globs.is_borrowed() && read.globs.len() > 0);
        assert_eq!(lookups(&read), lookups(&idx));
        assert!(lookups(&idx).iter().any(|&r| r != NONE));
        let mut accepted = 0;
        for (in_strings, len) in [(false, buf.len()), (true, strings.len())] {
            for at in 0..len {
                for value in [0x00u8, 0x01, 0x07, 0x7f, 0xff] {
                    let (mut b, mut s) = (buf.clone(), strings.clone());
                    if in_strings {
                        s[at] = value;
                    } else {
                        b[at] = value;
                    }
                    if let Ok(d) = decode(b, s) {
                        accepted += 1;
                        let _ = lookups(&d);
                    }
                }
            }
        }
        assert!(
            accepted > 1000,
            "most damage decodes and is looked up ({accepted})"
        );
    }

    /// A damaged table that passes the size checks answers without
    /// panicking: lookups clamp bucket bounds and ignore stray bits.
    #[test]
    fn damaged_values_never_index_out_of_bounds() {
        let mut idx = bench_index();
        let mut buckets = idx.v4.buckets.to_vec();
        for (i, b) in buckets.chunks_exact_mut(4).enumerate() {
            b.copy_from_slice(&(if i % 2 == 0 { u32::MAX } else { 0 }).to_le_bytes());
        }
        idx.v4.buckets = buckets.into();
        idx.ports.bits = vec![0xff; idx.ports.bits.len()].into();
        for a in ["0.0.0.0", "10.1.2.3", "255.255.255.255", "200.1.1.1"] {
            for port in [0, 80, 443, 65535] {
                let _ = idx.lookup(
                    Some(a.parse().unwrap()),
                    Some(port),
                    Some(Protocol::Tcp),
                    None,
                    None,
                    &|_| true,
                );
            }
        }
    }
}

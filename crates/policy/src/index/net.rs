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

use std::net::IpAddr;

use super::{Cand, NONE};
use crate::flat::{damaged, Read, Reader, Writer};
use crate::glob::Glob;
use crate::net::{unmap, Cidr};
use crate::{Protocol, Rule};

#[derive(Clone, Debug)]
struct Lazy {
    check_program: bool,
    unix: Option<Box<[Glob]>>,
    host: Option<Box<[Glob]>>,
}

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
#[derive(Clone, Debug, Default)]
struct Intervals<T> {
    /// Sorted interval starts; the first is 0.
    starts: Box<[T]>,
    /// Per top byte `b` (and one past the last): the index of the interval
    /// holding the smallest key with top byte `b`.
    buckets: Box<[u32]>,
    /// `starts.len() * words` bits.
    bits: Box<[u64]>,
}

impl<T: Key> Intervals<T> {
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
        let mut bits = Vec::with_capacity(starts.len() * words);
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
            bits.extend_from_slice(&open);
        }
        let starts: Vec<T> = starts
            .into_iter()
            .map(|s| {
                T::try_from(s)
                    .ok()
                    .expect("interval start inside its domain")
            })
            .collect();
        // buckets[b]: the interval holding the smallest key whose top byte
        // is b. A key with top byte b lies in buckets[b]..=buckets[b + 1].
        // One merge pass: process start-up compiles these tables.
        let mut buckets: Vec<u32> = Vec::with_capacity(257);
        let mut at_or_below = 0usize;
        for b in 0..256u128 {
            let floor = b << (T::BITS - 8);
            while at_or_below < starts.len() && starts[at_or_below].wide() <= floor {
                at_or_below += 1;
            }
            buckets.push(at_or_below as u32 - 1);
        }
        buckets.push(starts.len() as u32 - 1);
        // Padding so that a fixed window of WINDOW starts after any bucket
        // floor is always in bounds (see `lookup`).
        let mut starts = starts;
        starts.extend(std::iter::repeat_n(T::MAX, WINDOW));
        Intervals {
            starts: starts.into(),
            buckets: buckets.into(),
            bits: bits.into(),
        }
    }

    fn encode(&self, w: &mut Writer) {
        w.len(self.starts.len());
        for s in self.starts.iter() {
            w.raw(&s.wide().to_le_bytes()[..T::BITS as usize / 8]);
        }
        w.u32s(&self.buckets);
        w.u64s(&self.bits);
    }

    /// The inverse of `encode`, checking what `lookup` relies on: 257
    /// non-decreasing buckets inside the table, `WINDOW` padding starts,
    /// `words` bitset words per interval and no bit for a rule that is not
    /// there (`n` rules).
    fn decode(r: &mut Reader<'_>, words: usize, n: usize) -> Read<Intervals<T>> {
        let width = T::BITS as usize / 8;
        let count = r.len(width)?;
        let starts: Box<[T]> = r
            .take(count * width)?
            .chunks_exact(width)
            .map(T::from_le)
            .collect();
        let buckets = r.u32s()?;
        let bits = r.u64s()?;
        let real = bits.len() / words;
        if count != real + WINDOW
            || real == 0
            || bits.len() % words != 0
            || buckets.len() != 257
            || buckets.windows(2).any(|b| b[0] > b[1])
            || buckets[256] as usize >= real
            || !unused_bits_clear(&bits, words, n)
        {
            return damaged("bad interval table");
        }
        Ok(Intervals {
            starts,
            buckets,
            bits,
        })
    }

    #[inline]
    fn lookup(&self, x: T, words: usize) -> &[u64] {
        // The index of the last start <= x. It lies between the bucket's
        // first interval and the next bucket's.
        let b = x.top();
        let lo = self.buckets[b] as usize;
        let hi = self.buckets[b + 1] as usize;
        let starts = &self.starts[..];
        let mut base = lo;
        if hi - lo <= WINDOW {
            // A fixed window the compiler unrolls and vectorises. Starts
            // past `hi` are above x (they are in later buckets) except the
            // MAX padding when x is MAX itself, which the `min` discards.
            let window: &[T; WINDOW] = starts[lo + 1..lo + 1 + WINDOW].try_into().expect("padded");
            base = (lo + window.iter().filter(|&&s| s <= x).count()).min(hi);
        } else {
            let mut len = hi - lo + 1;
            while len > 1 {
                let half = len / 2;
                base = if starts[base + half] <= x {
                    base + half
                } else {
                    base
                };
                len -= half;
            }
        }
        &self.bits[base * words..][..words]
    }
}

/// Index for one direction.
#[derive(Clone, Debug, Default)]
pub struct NetIndex {
    /// Local bit → document rule index, with [`LAZY`] set when
    /// `lazy[local]` must be checked.
    rules: Box<[u32]>,
    lazy: Box<[Option<Box<Lazy>>]>,
    words: usize,
    /// 3 protocols (tcp, udp, none) × 16 presence combinations × words.
    shape: Box<[u64]>,
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
                .map(|(c, r)| {
                    let lazy = c.check_program || r.unix.is_some() || r.host.is_some();
                    c.rule | if lazy { LAZY } else { 0 }
                })
                .collect(),
            words,
            ..NetIndex::default()
        };
        let set = |v: &mut [u64], i: usize| v[i / 64] |= 1 << (i % 64);
        let mut shape = vec![0u64; 3 * 16 * words];
        let mut always_addr = vec![0u64; words];
        let mut always_port = vec![0u64; words];
        let (mut r4, mut r6, mut rp) = (Vec::new(), Vec::new(), Vec::new());
        let mut lazy = Vec::with_capacity(n);
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
            let needs = cand.check_program || rule.unix.is_some() || rule.host.is_some();
            lazy.push(needs.then(|| {
                Box::new(Lazy {
                    check_program: cand.check_program,
                    unix: rule.unix.clone().map(Into::into),
                    host: rule.host.clone().map(Into::into),
                })
            }));
        }
        idx.shape = shape.into();
        idx.v4 = Intervals::build(&r4, &always_addr, words, u32::MAX as u128);
        idx.v6 = Intervals::build(&r6, &always_addr, words, u128::MAX);
        idx.ports = Intervals::build(&rp, &always_port, words, u16::MAX as u128);
        idx.lazy = lazy.into();
        idx
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u32s(&self.rules);
        for l in self.lazy.iter() {
            match l {
                None => w.u8(0),
                Some(l) => {
                    w.u8(1);
                    w.bool(l.check_program);
                    w.opt_globs(l.unix.as_deref());
                    w.opt_globs(l.host.as_deref());
                }
            }
        }
        w.len(self.words);
        w.u64s(&self.shape);
        self.v4.encode(w);
        self.v6.encode(w);
        self.ports.encode(w);
    }

    /// The inverse of [`NetIndex::encode`], with every index checked.
    pub(crate) fn decode(r: &mut Reader<'static>, n_rules: u32) -> Read<NetIndex> {
        let rules = r.u32s()?;
        if rules.iter().any(|&x| x & !LAZY >= n_rules) {
            return damaged("bad rule index");
        }
        let mut lazy = Vec::with_capacity(rules.len());
        for _ in 0..rules.len() {
            lazy.push(match r.u8()? {
                0 => None,
                1 => Some(Box::new(Lazy {
                    check_program: r.bool()?,
                    unix: r.opt_globs()?,
                    host: r.opt_globs()?,
                })),
                _ => return damaged("bad network entry"),
            });
        }
        let n = rules.len();
        let words = r.u32()? as usize;
        let shape = r.u64s()?;
        if words != n.div_ceil(64).max(1)
            || shape.len() != 3 * 16 * words
            || !unused_bits_clear(&shape, words, n)
        {
            return damaged("bad network shape");
        }
        Ok(NetIndex {
            rules,
            lazy: lazy.into(),
            words,
            shape,
            v4: Intervals::decode(r, words, n)?,
            v6: Intervals::decode(r, words, n)?,
            ports: Intervals::decode(r, words, n)?,
        })
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
        let shape = &self.shape[(proto * 16 + present) * words..][..words];
        let addr_bits = address.map(|a| match unmap(a) {
            IpAddr::V4(v4) => self.v4.lookup(u32::from(v4), words),
            IpAddr::V6(v6) => self.v6.lookup(u128::from(v6), words),
        });
        let port_bits = port.map(|p| self.ports.lookup(p, words));
        for w in 0..words {
            let mut bits = shape[w];
            if let Some(a) = addr_bits {
                bits &= a[w];
            }
            if let Some(p) = port_bits {
                bits &= p[w];
            }
            while bits != 0 {
                let local = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let rule = self.rules[local];
                if rule & LAZY == 0 {
                    return rule;
                }
                let rule = rule & !LAZY;
                match &self.lazy[local] {
                    None => return rule,
                    Some(l) => {
                        let ok = (!l.check_program || program_ok(rule))
                            && l.unix.as_ref().is_none_or(|g| {
                                unix.is_some_and(|u| g.iter().any(|g| g.is_match(u)))
                            })
                            && l.host.as_ref().is_none_or(|g| {
                                host.is_some_and(|h| g.iter().any(|g| g.is_match(h.as_bytes())))
                            });
                        if ok {
                            return rule;
                        }
                    }
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

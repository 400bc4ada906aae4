//! Path rules indexed by the literal parts of their globs.
//!
//! Most path globs start with a literal prefix (`/etc/`, `/usr/bin/`): those
//! sit in a radix tree over the prefixes, walked once along the request path.
//! Globs without a prefix usually end with a literal suffix
//! (`**/.aws/credentials`): those sit in a second radix tree over the
//! reversed suffixes, walked from the end of the path. The few globs with
//! neither (`**/cpuminer*`) are tried one by one. Each tree node holds the
//! globs whose literal part ends there, sorted by rule index, and most of
//! them are then decided in constant time through their [`GlobShape`].
//! Every walk keeps the lowest matching rule index so far and prunes
//! subtrees that cannot beat it.

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};

use super::{Cand, Cands, NONE};
use crate::flat::{damaged, Read, Reader, Writer};
use crate::glob::{le_u32, Glob, GlobRef, GlobShape, GlobTable};

/// How a candidate is tested once its literal part is known to match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Test {
    /// Literal glob: the prefix is the whole text.
    Exact,
    /// `PREFIX/**`.
    Subtree,
    /// `DIR/*`.
    Children,
    /// `PREFIX` + a wildcard tail inside the last segment.
    LastSegment,
    /// `**/SEGMENT-GLOB`.
    Basename,
    /// `**/LITERAL/**`.
    Contains,
    /// `**/.LITERAL/**`: every match has a `/` followed by `.`.
    ContainsDot,
    /// `**/LITERAL...` with the literal suffix already matched: a match.
    SuffixHit,
    /// Run the matcher.
    General,
}

impl Test {
    const ALL: [Test; 9] = [
        Test::Exact,
        Test::Subtree,
        Test::Children,
        Test::LastSegment,
        Test::Basename,
        Test::Contains,
        Test::ContainsDot,
        Test::SuffixHit,
        Test::General,
    ];

    /// The test stored as `b` (see [`PathIndex::globs`]); an unknown value
    /// runs the matcher, which is right for every glob.
    #[inline]
    fn from_byte(b: u8) -> Test {
        Test::ALL.get(b as usize).copied().unwrap_or(Test::General)
    }
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    rule: u32,
    check_program: bool,
    test: Test,
    /// Index into `PathIndex::globs`.
    glob: u32,
}

#[derive(Clone, Copy, Debug)]
struct Node {
    /// Edge label leading into this node, in `labels` (reversed keys are
    /// stored reversed).
    label: u32,
    label_len: u32,
    /// Children, contiguous in `child_bytes`/`child_ids`.
    children: u32,
    n_children: u32,
    /// Entries ending here, contiguous in `entries`, sorted by rule.
    entries: u32,
    n_entries: u32,
    /// Lowest rule index anywhere in this subtree.
    min_rule: u32,
    /// For nodes with many children: index into `Radix::dense`, a table
    /// from the next byte straight to the child (`NO_DENSE` otherwise).
    dense: u32,
}

const NO_DENSE: u32 = u32::MAX;
/// Above this many children a node gets a 256-entry table instead of a
/// scan of its child bytes.
const DENSE_FROM: u32 = 6;
/// Bytes of a node in [`Radix::nodes`]: its eight fields as little-endian
/// `u32`s, in declaration order.
const NODE_SIZE: usize = 32;
/// Bytes of an entry in [`Radix::entries`]: `rule | check_program << 31`
/// and `glob`, little-endian `u32`s.
const ENTRY_SIZE: usize = 8;
/// Bytes of a dense table: 256 little-endian `u32`s, child id plus one.
const DENSE_SIZE: usize = 1024;

/// A radix tree over byte keys with entries at key ends, in the form the
/// compiled table stores it: each array is little-endian bytes, borrowed
/// from the mapped table file when decoded from one (nothing is copied at
/// start-up) and owned when built from a policy.
///
/// Lookups read every index through a bounds-checked `get`, so a damaged
/// array can only end a walk early, never read out of bounds or loop (every
/// edge below the root consumes at least one byte of the path). Entries are
/// checked when the table is decoded (their rule and glob indexes are used
/// elsewhere without checks).
#[derive(Clone, Debug, Default)]
struct Radix {
    nodes: Cow<'static, [u8]>,
    labels: Cow<'static, [u8]>,
    child_bytes: Cow<'static, [u8]>,
    /// One little-endian `u32` node id per child byte.
    child_ids: Cow<'static, [u8]>,
    entries: Cow<'static, [u8]>,
    dense: Cow<'static, [u8]>,
}

/// The radix tree as [`Radix::build`] makes it, before it is laid out as
/// bytes.
#[derive(Default)]
struct RadixParts {
    nodes: Vec<Node>,
    labels: Vec<u8>,
    child_bytes: Vec<u8>,
    child_ids: Vec<u32>,
    entries: Vec<Entry>,
    /// Byte to child node id plus one (0: no child).
    dense: Vec<[u32; 256]>,
}

#[derive(Default)]
struct TrieNode {
    children: BTreeMap<u8, usize>,
    entries: Vec<Entry>,
}

/// The entry stored at `raw` (`ENTRY_SIZE` bytes), its test read from
/// its glob's record (`None`: no such glob, from a damaged table).
#[inline(always)]
fn entry_at(raw: &[u8], globs: &GlobTable) -> Option<Entry> {
    let c = Cand::from_word(le_u32(raw, 0)?);
    let glob = le_u32(raw, 4)?;
    Some(Entry {
        rule: c.rule,
        check_program: c.check_program,
        test: Test::from_byte(globs.extra(glob as usize)?),
        glob,
    })
}

impl RadixParts {
    /// Turns the byte trie into the radix tree, breadth first so that each
    /// node's children are contiguous. Iterative: keys come from the policy,
    /// and a hostile one must not exhaust the stack.
    fn compress(&mut self, trie: &mut [TrieNode]) {
        let blank = Node {
            label: 0,
            label_len: 0,
            children: 0,
            n_children: 0,
            entries: 0,
            n_entries: 0,
            min_rule: NONE,
            dense: NO_DENSE,
        };
        let mut parents: Vec<u32> = vec![0];
        self.nodes.push(blank);
        let mut queue = VecDeque::from([(0usize, 0u32)]);
        while let Some((t, id)) = queue.pop_front() {
            let mut entries = std::mem::take(&mut trie[t].entries);
            entries.sort_by_key(|e| e.rule);
            let node = &mut self.nodes[id as usize];
            node.entries = self.entries.len() as u32;
            node.n_entries = entries.len() as u32;
            node.min_rule = entries.first().map_or(NONE, |e| e.rule);
            self.entries.extend(entries);
            let kids: Vec<(u8, usize)> = trie[t].children.iter().map(|(&b, &c)| (b, c)).collect();
            let node = &mut self.nodes[id as usize];
            node.children = self.child_ids.len() as u32;
            node.n_children = kids.len() as u32;
            for (b, mut c) in kids {
                // Follow single-child chains without entries into one label.
                let label = self.labels.len() as u32;
                self.labels.push(b);
                while trie[c].entries.is_empty() && trie[c].children.len() == 1 {
                    let (&nb, &nc) = trie[c].children.iter().next().expect("one child");
                    self.labels.push(nb);
                    c = nc;
                }
                let child = self.nodes.len() as u32;
                self.nodes.push(Node {
                    label,
                    label_len: self.labels.len() as u32 - label,
                    ..blank
                });
                parents.push(id);
                self.child_bytes.push(b);
                self.child_ids.push(child);
                queue.push_back((c, child));
            }
            let node = self.nodes[id as usize];
            if node.n_children >= DENSE_FROM {
                let mut table = [0u32; 256];
                for k in 0..node.n_children as usize {
                    let i = node.children as usize + k;
                    table[self.child_bytes[i] as usize] = self.child_ids[i] + 1;
                }
                self.nodes[id as usize].dense = self.dense.len() as u32;
                self.dense.push(table);
            }
        }
        // Children come after their parents: one reverse pass propagates
        // subtree minima.
        for id in (1..self.nodes.len()).rev() {
            let p = parents[id] as usize;
            self.nodes[p].min_rule = self.nodes[p].min_rule.min(self.nodes[id].min_rule);
        }
    }

    /// Lays the tree out as the table stores it.
    fn into_radix(self) -> Radix {
        let mut nodes = Vec::with_capacity(self.nodes.len() * NODE_SIZE);
        for n in &self.nodes {
            for x in [
                n.label,
                n.label_len,
                n.children,
                n.n_children,
                n.entries,
                n.n_entries,
                n.min_rule,
                n.dense,
            ] {
                nodes.extend_from_slice(&x.to_le_bytes());
            }
        }
        let child_ids: Vec<u8> = self
            .child_ids
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let mut entries = Vec::with_capacity(self.entries.len() * ENTRY_SIZE);
        for e in &self.entries {
            entries.extend_from_slice(&(e.rule | (e.check_program as u32) << 31).to_le_bytes());
            entries.extend_from_slice(&e.glob.to_le_bytes());
        }
        let dense: Vec<u8> = self
            .dense
            .iter()
            .flatten()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        Radix {
            nodes: nodes.into(),
            labels: self.labels.into(),
            child_bytes: self.child_bytes.into(),
            child_ids: child_ids.into(),
            entries: entries.into(),
            dense: dense.into(),
        }
    }
}

impl Radix {
    fn build(keys: Vec<(Vec<u8>, Entry)>) -> Radix {
        let mut trie = vec![TrieNode::default()];
        for (key, entry) in keys {
            let mut t = 0usize;
            for b in key {
                let next = trie.len();
                t = *trie[t].children.entry(b).or_insert(next);
                if t == next {
                    trie.push(TrieNode::default());
                }
            }
            trie[t].entries.push(entry);
        }
        let mut parts = RadixParts::default();
        parts.compress(&mut trie);
        parts.into_radix()
    }

    /// The same bytes as before this tree was decoded: counts, then the
    /// arrays as stored.
    fn encode(&self, w: &mut Writer) {
        w.len(self.nodes.len() / NODE_SIZE);
        w.raw(&self.nodes);
        w.bytes(&self.labels);
        w.bytes(&self.child_bytes);
        w.len(self.child_ids.len() / 4);
        w.raw(&self.child_ids);
        w.len(self.entries.len() / ENTRY_SIZE);
        w.raw(&self.entries);
        w.len(self.dense.len() / DENSE_SIZE);
        w.raw(&self.dense);
    }

    /// Borrows the arrays from the table and checks one size; lookups
    /// check every index they read (node, child, label, entry, glob).
    fn decode(r: &mut Reader<'static>) -> Read<Radix> {
        let nodes = r.records(NODE_SIZE)?;
        let labels = r.bytes()?;
        let child_bytes = r.bytes()?;
        let child_ids = r.records(4)?;
        let entries = r.records(ENTRY_SIZE)?;
        let dense = r.records(DENSE_SIZE)?;
        if child_bytes.len() * 4 != child_ids.len() {
            return damaged("bad child");
        }
        Ok(Radix {
            nodes: Cow::Borrowed(nodes),
            labels: Cow::Borrowed(labels),
            child_bytes: Cow::Borrowed(child_bytes),
            child_ids: Cow::Borrowed(child_ids),
            entries: Cow::Borrowed(entries),
            dense: Cow::Borrowed(dense),
        })
    }

    /// Node `id`, if the array has it.
    #[inline(always)]
    fn node(&self, id: u32) -> Option<Node> {
        let at = (id as usize).checked_mul(NODE_SIZE)?;
        let raw = self.nodes.get(at..at.checked_add(NODE_SIZE)?)?;
        let f = |i: usize| le_u32(raw, i * 4).unwrap_or(0);
        Some(Node {
            label: f(0),
            label_len: f(1),
            children: f(2),
            n_children: f(3),
            entries: f(4),
            n_entries: f(5),
            min_rule: f(6),
            dense: f(7),
        })
    }

    /// The child of `node` along byte `b`: its id, if it has one.
    #[inline(always)]
    fn child(&self, node: &Node, b: u8) -> Option<u32> {
        if node.dense != NO_DENSE {
            let at = (node.dense as usize)
                .checked_mul(DENSE_SIZE)?
                .checked_add(b as usize * 4)?;
            return le_u32(&self.dense, at)?.checked_sub(1);
        }
        let first = node.children as usize;
        let kids = self
            .child_bytes
            .get(first..first.checked_add(node.n_children as usize)?)?;
        let k = kids.iter().position(|&c| c == b)?;
        le_u32(&self.child_ids, (first + k).checked_mul(4)?)
    }

    /// Walks `path` (from its end when `REV`), calling `test(entry, pos)`
    /// for candidates below `best`, where `pos` is how many bytes of the
    /// path the key covered. `globs` gives each glob's test. Returns the
    /// lowest rule that passed, or `best`.
    ///
    /// A node, child, entry or glob index out of bounds, or an empty label
    /// below the root, can only come from a damaged table and ends the
    /// walk (returning `best`) instead of panicking or looping. The path is walked as a slice of
    /// what is left (from its end when `REV`), so no per-byte position
    /// arithmetic is needed.
    #[inline]
    fn walk<const REV: bool>(
        &self,
        path: &[u8],
        mut best: u32,
        globs: &GlobTable,
        test: impl Fn(&Entry, usize) -> bool,
    ) -> u32 {
        let Some(mut node) = self.node(0) else {
            return best;
        };
        let mut rest = path;
        loop {
            if node.min_rule >= best {
                return best;
            }
            if node.n_entries != 0 {
                let first = node.entries as usize * ENTRY_SIZE;
                let Some(entries) = self
                    .entries
                    .get(first..first + node.n_entries as usize * ENTRY_SIZE)
                else {
                    return best;
                };
                for raw in entries.chunks_exact(ENTRY_SIZE) {
                    let Some(e) = entry_at(raw, globs) else {
                        return best;
                    };
                    if e.rule >= best {
                        break;
                    }
                    if test(&e, path.len() - rest.len()) {
                        best = e.rule;
                        break;
                    }
                }
            }
            let next = if REV { rest.last() } else { rest.first() };
            let Some(&b) = next else {
                return best;
            };
            let Some(child) = self.child(&node, b).and_then(|id| self.node(id)) else {
                return best;
            };
            let at = child.label as usize;
            let Some(label) = self.labels.get(at..at + child.label_len as usize) else {
                return best;
            };
            if label.is_empty() || rest.len() < label.len() {
                return best;
            }
            // Labels are short: a byte loop beats a memcmp call.
            if REV {
                let (head, tail) = rest.split_at(rest.len() - label.len());
                if !tail.iter().rev().eq(label.iter()) {
                    return best;
                }
                rest = head;
            } else {
                let (head, tail) = rest.split_at(label.len());
                if !head.iter().eq(label.iter()) {
                    return best;
                }
                rest = tail;
            }
            node = child;
        }
    }
}

/// Which part of the index holds a glob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    /// Under its literal prefix.
    Prefix,
    /// Under its reversed literal suffix.
    Suffix,
    /// Tried one by one.
    Floating,
}

/// Where `g` goes and how it is tested there.
fn placement(g: &Glob) -> (Place, Test) {
    let shape = g.shape();
    let suffix = g.literal_suffix();
    if !g.literal_prefix().is_empty() {
        let test = match shape {
            GlobShape::Literal => Test::Exact,
            GlobShape::Subtree => Test::Subtree,
            GlobShape::Children => Test::Children,
            GlobShape::LastSegment => Test::LastSegment,
            _ => Test::General,
        };
        (Place::Prefix, test)
    } else if !suffix.is_empty() && shape != GlobShape::Contains {
        // `**/LITERAL`: once the suffix matches, `**` takes the rest of an
        // absolute path.
        let whole = g.as_str().as_bytes();
        let test =
            if whole.len() == suffix.len() + 2 && whole.starts_with(b"**") && suffix[0] == b'/' {
                Test::SuffixHit
            } else {
                Test::General
            };
        (Place::Suffix, test)
    } else {
        let test = match shape {
            GlobShape::Basename => Test::Basename,
            // The needle is `/LITERAL` (see `contains_finder`).
            GlobShape::Contains if g.as_str().as_bytes().get(3) == Some(&b'.') => Test::ContainsDot,
            GlobShape::Contains => Test::Contains,
            _ => Test::General,
        };
        (Place::Floating, test)
    }
}

/// Entries laid out as the table stores them (see [`ENTRY_SIZE`]).
fn entry_bytes(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * ENTRY_SIZE);
    for e in entries {
        let c = Cand {
            rule: e.rule,
            check_program: e.check_program,
        };
        out.extend_from_slice(&c.word().to_le_bytes());
        out.extend_from_slice(&e.glob.to_le_bytes());
    }
    out
}

/// What the literal parts of a bucket's globs say about any path they can
/// match, checked before the walks: a glob's match starts with its literal
/// prefix and ends with its literal suffix, so a path whose second byte
/// starts no prefix (after the `/`) and whose last byte ends no suffix can
/// only be matched by the floating globs. Derived from the globs when the
/// index is built and stored with it (a wrong gate from a damaged table
/// hides matches, nothing worse).
#[derive(Clone, Debug, Default)]
struct Gate {
    /// Second bytes of the literal prefixes (all of which start with `/`).
    prefix: [u64; 4],
    /// A prefix shorter than two bytes, or not starting with `/`: no gate.
    prefix_any: bool,
    /// Last bytes of the literal suffixes.
    suffix: [u64; 4],
    /// An empty suffix: no gate.
    suffix_any: bool,
}

/// Bytes of a stored [`Gate`] and the floating-globs flag: eight
/// little-endian `u64`s, then a byte of flags.
const GATE_SIZE: usize = 65;

impl Gate {
    fn build<'a>(placed: impl IntoIterator<Item = (&'a Glob, Place)>) -> Gate {
        let mut gate = Gate::default();
        let set = |bits: &mut [u64; 4], b: u8| bits[usize::from(b >> 6)] |= 1 << (b & 63);
        for (g, place) in placed {
            match place {
                Place::Prefix => match g.literal_prefix() {
                    [b'/', second, ..] => set(&mut gate.prefix, *second),
                    _ => gate.prefix_any = true,
                },
                Place::Suffix => match g.literal_suffix().last() {
                    Some(&last) => set(&mut gate.suffix, last),
                    None => gate.suffix_any = true,
                },
                Place::Floating => {}
            }
        }
        gate
    }

    #[inline]
    fn has(bits: &[u64; 4], b: u8) -> bool {
        bits[usize::from(b >> 6)] & 1 << (b & 63) != 0
    }

    /// Whether a prefix glob may match `path`.
    #[inline]
    fn prefix_may_match(&self, path: &[u8]) -> bool {
        self.prefix_any || matches!(path, [b'/', second, ..] if Gate::has(&self.prefix, *second))
    }

    /// Whether a suffix glob may match `path`.
    #[inline]
    fn suffix_may_match(&self, path: &[u8]) -> bool {
        self.suffix_any || path.last().is_some_and(|&b| Gate::has(&self.suffix, b))
    }

    /// Whether a prefix or a suffix glob may match `path`.
    #[inline]
    fn may_match(&self, path: &[u8]) -> bool {
        self.prefix_may_match(path) || self.suffix_may_match(path)
    }
}

/// Index over the rules of one bucket (file read, file write, exec).
#[derive(Clone, Debug, Default)]
pub struct PathIndex {
    /// Rules without `path`: they match any path.
    any_path: Cands,
    prefixes: Radix,
    suffixes: Radix,
    /// Globs with neither a literal prefix nor a literal suffix, as
    /// [`ENTRY_SIZE`] records sorted by rule.
    floating: Cow<'static, [u8]>,
    /// Every glob, by glob index, with its [`Test`] as its extra byte (the
    /// trees' entries store only the glob).
    globs: GlobTable,
    gate: Gate,
    /// Every floating glob is [`Test::ContainsDot`]: a path without a `/`
    /// followed by `.` needs no floating search at all.
    floating_need_slash_dot: bool,
}

impl PathIndex {
    /// `rules` yields, in document order, each candidate with its path
    /// globs (`None`: the rule has no `path` matcher).
    pub fn build<'a>(rules: impl IntoIterator<Item = (Cand, Option<&'a [Glob]>)>) -> PathIndex {
        let mut any = Vec::new();
        let mut globs: Vec<(&Glob, Place, Test)> = Vec::new();
        let (mut prefixes, mut suffixes, mut floating) = (Vec::new(), Vec::new(), Vec::new());
        for (cand, rule_globs) in rules {
            let Some(rule_globs) = rule_globs else {
                any.push(cand);
                continue;
            };
            for g in rule_globs {
                let (place, test) = placement(g);
                let entry = Entry {
                    rule: cand.rule,
                    check_program: cand.check_program,
                    test,
                    glob: globs.len() as u32,
                };
                match place {
                    Place::Prefix => prefixes.push((g.literal_prefix().to_vec(), entry)),
                    Place::Suffix => {
                        suffixes.push((g.literal_suffix().iter().rev().copied().collect(), entry))
                    }
                    Place::Floating => floating.push(entry),
                }
                globs.push((g, place, test));
            }
        }
        floating.sort_by_key(|e| e.rule);
        PathIndex {
            any_path: Cands::build(any),
            prefixes: Radix::build(prefixes),
            suffixes: Radix::build(suffixes),
            floating_need_slash_dot: !floating.is_empty()
                && floating.iter().all(|e| e.test == Test::ContainsDot),
            floating: entry_bytes(&floating).into(),
            gate: Gate::build(globs.iter().map(|&(g, place, _)| (g, place))),
            globs: GlobTable::build(globs.iter().map(|&(g, _, test)| (g, test as u8))),
        }
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        self.any_path.encode(w);
        w.glob_table(&self.globs);
        self.prefixes.encode(w);
        self.suffixes.encode(w);
        w.records(ENTRY_SIZE, &self.floating);
        let g = &self.gate;
        for x in g.prefix.iter().chain(&g.suffix) {
            w.u64(*x);
        }
        w.u8(g.prefix_any as u8
            | (g.suffix_any as u8) << 1
            | (self.floating_need_slash_dot as u8) << 2);
    }

    /// The inverse of [`PathIndex::encode`], in place: every array is
    /// borrowed from the table (see [`Radix`] and [`GlobTable`]) and
    /// checked as lookups read it; nothing is recomputed.
    pub(crate) fn decode(r: &mut Reader<'static>) -> Read<PathIndex> {
        let any_path = Cands::decode(r)?;
        let globs = r.glob_table()?;
        let prefixes = Radix::decode(r)?;
        let suffixes = Radix::decode(r)?;
        let floating = Cow::Borrowed(r.records(ENTRY_SIZE)?);
        let raw = r.take(GATE_SIZE)?;
        let word =
            |i: usize| u64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        let flags = raw[64];
        if flags > 7 {
            return damaged("bad path gate");
        }
        Ok(PathIndex {
            any_path,
            prefixes,
            suffixes,
            floating,
            globs,
            gate: Gate {
                prefix: [word(0), word(1), word(2), word(3)],
                suffix: [word(4), word(5), word(6), word(7)],
                prefix_any: flags & 1 != 0,
                suffix_any: flags & 2 != 0,
            },
            floating_need_slash_dot: flags & 4 != 0,
        })
    }

    /// Lowest rule index (below `best`) matching `path` or `resolved`;
    /// `program_ok(rule)` is asked only for candidates that need it.
    /// `path_without_slash_dot`: the caller found no `/` followed by `.`
    /// in `path` (`Request::path_without_slash_dot`).
    #[inline(always)]
    pub fn lookup(
        &self,
        path: Option<&[u8]>,
        resolved: Option<&[u8]>,
        path_without_slash_dot: bool,
        mut best: u32,
        program_ok: &impl Fn(u32) -> bool,
    ) -> u32 {
        for c in self.any_path.iter() {
            if c.rule >= best {
                break;
            }
            if !c.check_program || program_ok(c.rule) {
                best = c.rule;
                break;
            }
        }
        if let Some(p) = path {
            best = self.search(p, path_without_slash_dot, best, program_ok);
        }
        if let Some(r) = resolved {
            best = self.search(r, false, best, program_ok);
        }
        best
    }

    /// The rule of the first floating glob, if any.
    #[inline(always)]
    fn first_floating_rule(&self) -> Option<u32> {
        le_u32(&self.floating, 0).map(|x| Cand::from_word(x).rule)
    }

    /// Every glob that may match `path`: each radix walk only when the
    /// [`Gate`] says a glob of its kind can match (most paths then cost two
    /// bit tests instead of the walks), then the floating globs.
    /// `no_slash_dot` (the caller's scan found no `/` followed by `.`)
    /// skips the floating globs that need one in an absolute path (in a
    /// relative one, `**/` may match nothing before a leading `.`).
    #[inline]
    fn search(
        &self,
        path: &[u8],
        no_slash_dot: bool,
        best: u32,
        program_ok: &impl Fn(u32) -> bool,
    ) -> u32 {
        if self.gate.may_match(path) {
            return self.search_gated(path, no_slash_dot, best, program_ok);
        }
        if self.first_floating_rule().is_some_and(|rule| rule < best)
            && !(no_slash_dot && self.floating_need_slash_dot && path.first() == Some(&b'/'))
        {
            return self.search_floating(path, no_slash_dot, best, program_ok);
        }
        best
    }

    /// Every glob, without the [`Gate`] (the reference the gated search
    /// must agree with).
    #[cfg(test)]
    fn search_all(
        &self,
        path: &[u8],
        no_slash_dot: bool,
        best: u32,
        program_ok: &impl Fn(u32) -> bool,
    ) -> u32 {
        self.search_walks(path, true, true, no_slash_dot, best, program_ok)
    }

    /// [`search_walks`](Self::search_walks) of the walks the [`Gate`]
    /// lets through (asked again here, off the common path).
    #[inline(never)]
    fn search_gated(
        &self,
        path: &[u8],
        no_slash_dot: bool,
        best: u32,
        program_ok: &impl Fn(u32) -> bool,
    ) -> u32 {
        let prefix = self.gate.prefix_may_match(path);
        let suffix = self.gate.suffix_may_match(path);
        self.search_walks(path, prefix, suffix, no_slash_dot, best, program_ok)
    }

    /// The prefix walk when `prefix`, the suffix walk when `suffix`, then
    /// the floating globs.
    #[inline(always)]
    fn search_walks(
        &self,
        path: &[u8],
        prefix: bool,
        suffix: bool,
        no_slash_dot: bool,
        mut best: u32,
        program_ok: &impl Fn(u32) -> bool,
    ) -> u32 {
        // The shortcuts below rely on normalised (absolute) paths; anything
        // else goes through the plain matcher.
        let absolute = path.first() == Some(&b'/');
        let check = |e: &Entry, hit: bool| hit && (!e.check_program || program_ok(e.rule));
        if prefix {
            best = self.prefix_walk(path, absolute, best, &check);
        }
        if suffix {
            best = self.suffix_walk(path, absolute, best, &check);
        }
        if self.first_floating_rule().is_some_and(|rule| rule < best) {
            best = self.search_floating(path, no_slash_dot, best, program_ok);
        }
        best
    }

    /// Glob `i` (`None` for a glob the table does not have).
    #[inline(always)]
    fn glob(&self, i: u32) -> Option<GlobRef<'_>> {
        self.globs.get(i as usize).map(|(g, _)| g)
    }

    #[inline(always)]
    fn prefix_walk(
        &self,
        path: &[u8],
        absolute: bool,
        best: u32,
        check: &impl Fn(&Entry, bool) -> bool,
    ) -> u32 {
        self.prefixes
            .walk::<false>(path, best, &self.globs, |e, pos| {
                let rest = &path[pos..];
                let hit = match e.test {
                    Test::Exact => rest.is_empty(),
                    Test::Subtree => rest.first().is_none_or(|&b| b == b'/'),
                    // The root "/" is one empty segment, which `DIR/*` cannot be.
                    Test::Children => !rest.contains(&b'/') && path.len() > 1,
                    Test::LastSegment => {
                        path.len() > 1 && self.glob(e.glob).is_some_and(|g| g.tail_matches(rest))
                    }
                    _ => self.general(e, path, absolute),
                };
                check(e, hit)
            })
    }

    #[inline(always)]
    fn suffix_walk(
        &self,
        path: &[u8],
        absolute: bool,
        best: u32,
        check: &impl Fn(&Entry, bool) -> bool,
    ) -> u32 {
        self.suffixes.walk::<true>(path, best, &self.globs, |e, _| {
            let hit = match e.test {
                Test::SuffixHit if absolute => true,
                _ => self.globs.is_match(e.glob as usize, path),
            };
            check(e, hit)
        })
    }

    /// The globs with neither a literal prefix nor a literal suffix, one
    /// by one.
    #[inline(never)]
    fn search_floating(
        &self,
        path: &[u8],
        no_slash_dot: bool,
        best: u32,
        program_ok: &impl Fn(u32) -> bool,
    ) -> u32 {
        let absolute = path.first() == Some(&b'/');
        for raw in self.floating.chunks_exact(ENTRY_SIZE) {
            let Some(e) = entry_at(raw, &self.globs) else {
                return best;
            };
            if e.rule >= best {
                break;
            }
            let hit = match e.test {
                Test::Basename => self.glob(e.glob).is_some_and(|g| g.basename_matches(path)),
                Test::Contains if absolute => self.contains(e.glob, path),
                Test::ContainsDot if absolute => !no_slash_dot && self.contains(e.glob, path),
                _ => self.general(&e, path, absolute),
            };
            if hit && (!e.check_program || program_ok(e.rule)) {
                return e.rule;
            }
        }
        best
    }

    /// `**/LITERAL/**` on an absolute path: `/LITERAL` occurs, followed by
    /// `/` or the end (see [`Glob::contains_matches`], which this mirrors).
    /// The needle's second byte (the literal's first) is searched for with
    /// `memchr`; no searcher is built, so nothing is prepared at start-up.
    fn contains(&self, glob: u32, path: &[u8]) -> bool {
        let Some(g) = self.glob(glob) else {
            return false;
        };
        let needle = g.contains_needle();
        let [b'/', first, rest @ ..] = needle else {
            return g.is_match(path);
        };
        // `i`: where the literal starts in `path` (after a `/`).
        memchr::memchr_iter(*first, path).any(|i| {
            i > 0
                && path[i - 1] == b'/'
                && path.get(i + 1..i + 1 + rest.len()) == Some(rest)
                && path.get(i + 1 + rest.len()).is_none_or(|&b| b == b'/')
        })
    }

    #[inline]
    fn general(&self, e: &Entry, path: &[u8], absolute: bool) -> bool {
        let Some(g) = self.glob(e.glob) else {
            return false;
        };
        // Every match of an absolute path ends with the literal suffix: a
        // cheap test that rules out most candidates.
        (!absolute || path.ends_with(g.literal_suffix())) && g.is_match(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// After `/`, seven different bytes: that node gets a dense table.
    const PATTERNS: [&str; 15] = [
        "/srv/**",
        "/var/*",
        "/opt/x",
        "/etc/**",
        "/etc/shadow",
        "/home/*/.ssh/**",
        "/*",
        "/",
        "**/.aws/credentials",
        "**/.bash_history",
        "**/.config/gcloud/**",
        "**/cpuminer*",
        "/usr/bin/*sh",
        "/proc/*/mem",
        "**/x",
    ];

    const PATHS: [&str; 19] = [
        "/srv/a",
        "/var/x",
        "/opt/x",
        "/",
        "/etc",
        "/etc/shadow",
        "/etc/x",
        "/home/u/.ssh/id",
        "/home/u/x",
        "/u/.aws/credentials",
        "/x/.bash_history",
        "/x/cpuminer-1",
        "/h/.config/gcloud/c",
        "/usr/bin/bash",
        "/usr/bin/dash",
        "/proc/1/mem",
        "/w/x",
        "x",
        "",
    ];

    /// Every pattern as its own rule, in order; some rules check the program.
    fn index_of_patterns() -> PathIndex {
        let globs: Vec<Glob> = PATTERNS
            .iter()
            .map(|p| Glob::new(p, crate::glob::GlobStyle::Path).unwrap())
            .collect();
        PathIndex::build(globs.iter().enumerate().map(|(i, g)| {
            (
                Cand {
                    rule: i as u32,
                    check_program: i % 3 == 0,
                },
                Some(std::slice::from_ref(g)),
            )
        }))
    }

    fn encoded(tree: &Radix) -> &'static [u8] {
        let mut w = Writer::default();
        tree.encode(&mut w);
        Box::leak(w.into_bytes().into_boxed_slice())
    }

    fn decoded(bytes: &'static [u8]) -> Read<Radix> {
        Radix::decode(&mut Reader::new(bytes))
    }

    /// The whole index as the table stores it: its values, and the glob
    /// patterns they point into.
    fn encoded_index(idx: &PathIndex) -> (Vec<u8>, Vec<u8>) {
        let mut w = Writer::default();
        idx.encode(&mut w);
        w.into_parts()
    }

    fn decoded_index(buf: Vec<u8>, strings: Vec<u8>) -> Read<PathIndex> {
        let buf: &'static [u8] = Box::leak(buf.into_boxed_slice());
        let strings: &'static [u8] = Box::leak(strings.into_boxed_slice());
        let mut r = Reader::with_strings(buf, strings);
        let idx = PathIndex::decode(&mut r)?;
        if !r.is_empty() {
            return damaged("bytes after the index");
        }
        Ok(idx)
    }

    fn answers(idx: &PathIndex) -> Vec<(u32, u32)> {
        PATHS
            .iter()
            .map(|p| {
                let p = p.as_bytes();
                (
                    idx.search_all(p, false, NONE, &|_| true),
                    idx.search_all(p, false, NONE, &|rule| rule % 2 == 0),
                )
            })
            .collect()
    }

    /// A decoded index borrows every array (trees, globs, floating
    /// entries) from the table bytes, nothing is copied or recomputed at
    /// start-up, and it answers exactly as the built one.
    #[test]
    fn indexes_are_read_in_place_and_answer_like_built_ones() {
        let built = index_of_patterns();
        let (buf, strings) = encoded_index(&built);
        let read = decoded_index(buf, strings).unwrap();
        for tree in [&read.prefixes, &read.suffixes] {
            for array in [
                &tree.nodes,
                &tree.labels,
                &tree.child_bytes,
                &tree.child_ids,
                &tree.entries,
                &tree.dense,
            ] {
                assert!(matches!(array, Cow::Borrowed(_)));
            }
        }
        assert!(matches!(read.floating, Cow::Borrowed(_)));
        assert!(!read.floating.is_empty(), "floating globs are covered");
        assert!(read.globs.is_borrowed());
        assert_eq!(read.globs.len(), PATTERNS.len());
        assert!(!read.prefixes.dense.is_empty(), "a dense node is covered");
        assert_eq!(answers(&read), answers(&built));
        assert!(answers(&built).iter().any(|&(best, _)| best != NONE));
        // The gate and the flags came through.
        for p in PATHS {
            assert_eq!(
                read.gate.may_match(p.as_bytes()),
                built.gate.may_match(p.as_bytes())
            );
        }
        assert_eq!(read.floating_need_slash_dot, built.floating_need_slash_dot);
    }

    /// An entry naming a rule the table does not have or a glob it does
    /// not have (damage that keeps the table's checksum right) is read
    /// without panicking: a missing glob ends the walk, a missing rule is
    /// answered for by the rule table (`RuleTable`'s tests).
    #[test]
    fn bad_entries_never_panic() {
        let idx = index_of_patterns();
        for (rule, glob) in [
            (PATTERNS.len() as u32, 0),
            (u32::MAX >> 1, 0),
            (0, PATTERNS.len() as u32),
            (0, u32::MAX),
        ] {
            for tree in [&idx.prefixes, &idx.suffixes] {
                let mut tree = tree.clone();
                let mut entries = tree.entries.to_vec();
                entries[..4].copy_from_slice(&rule.to_le_bytes());
                entries[4..8].copy_from_slice(&glob.to_le_bytes());
                tree.entries = entries.into();
                let mut d = idx.clone();
                d.prefixes = decoded(encoded(&tree)).unwrap();
                let _ = answers(&d);
            }
            let mut d = idx.clone();
            let mut floating = d.floating.to_vec();
            floating[..4].copy_from_slice(&rule.to_le_bytes());
            floating[4..8].copy_from_slice(&glob.to_le_bytes());
            d.floating = floating.into();
            let _ = answers(&d);
        }
        // A floating entry whose glob the table lacks matches nothing.
        let mut d = idx.clone();
        let mut floating = d.floating.to_vec();
        floating[4..8].copy_from_slice(&(PATTERNS.len() as u32).to_le_bytes());
        let hidden = u32::from_le_bytes(floating[..4].try_into().unwrap()) & !(1 << 31);
        d.floating = floating.into();
        let (got, want) = (answers(&d), answers(&idx));
        assert!(
            want.iter().any(|&(a, _)| a == hidden),
            "the entry matches when whole"
        );
        assert!(got.iter().all(|&(a, _)| a != hidden));
    }

    /// Any byte of an index as the table stores it (candidates, glob
    /// records and patterns, trees, floating entries, gate) changed:
    /// the index is refused or every lookup ends, without panicking or
    /// looping. Without the bounds checks of `GlobTable::get` and the
    /// walk, this panics.
    #[test]
    fn damaged_indexes_never_panic_or_loop() {
        let idx = index_of_patterns();
        let (buf, strings) = encoded_index(&idx);
        let mut accepted = 0;
        for (in_strings, len) in [(false, buf.len()), (true, strings.len())] {
            for at in 0..len {
                for value in [0x00u8, 0x01, 0x02, 0x07, 0x7f, 0xff] {
                    let (mut b, mut s) = (buf.clone(), strings.clone());
                    if in_strings {
                        s[at] = value;
                    } else {
                        b[at] = value;
                    }
                    let Ok(damaged) = decoded_index(b, s) else {
                        continue;
                    };
                    accepted += 1;
                    let _ = answers(&damaged);
                }
            }
        }
        assert!(
            accepted > 1000,
            "most damage decodes and is walked ({accepted})"
        );
    }

    /// The gate never hides a match: for globs of every placement and
    /// paths that share or miss their literal parts, the gated search
    /// finds what the full search finds.
    #[test]
    fn the_gate_hides_no_match() {
        // The patterns above but their first three.
        let patterns = &PATTERNS[3..];
        let globs: Vec<Glob> = patterns
            .iter()
            .map(|p| Glob::new(p, crate::glob::GlobStyle::Path).unwrap())
            .collect();
        // PATHS, and near misses of the gated literals.
        let near = [
            "/a",
            "/u/.aws/credentialsx",
            "/wx",
            "/work/wt/hooks/target/bench/data.txt.12",
            ".config/gcloud/x",
            "/h/.config/gcloud",
            "/h/config/gcloud/x",
        ];
        let paths: Vec<&str> = PATHS.iter().chain(&near).copied().collect();
        // Each glob alone (so no lower rule hides a later one) and all together.
        let mut sets: Vec<Vec<usize>> = (0..globs.len()).map(|i| vec![i]).collect();
        sets.push((0..globs.len()).collect());
        for set in sets {
            let idx = PathIndex::build(set.iter().map(|&i| {
                (
                    Cand {
                        rule: i as u32,
                        check_program: false,
                    },
                    Some(std::slice::from_ref(&globs[i])),
                )
            }));
            for &path in &paths {
                let p = path.as_bytes();
                let want = set
                    .iter()
                    .copied()
                    .filter(|&i| globs[i].is_match(p))
                    .min()
                    .map_or(NONE, |i| i as u32);
                let all = idx.search_all(p, false, NONE, &|_| true);
                assert_eq!(idx.search(p, false, NONE, &|_| true), all, "{set:?} {path}");
                // The caller's "no `/.`" hides nothing either, when true.
                let no_slash_dot = !p.windows(2).any(|w| w == b"/.");
                assert_eq!(
                    idx.search(p, no_slash_dot, NONE, &|_| true),
                    all,
                    "{set:?} {path}"
                );
                // The hooks pass absolute paths; there the index is the matcher.
                if path.starts_with('/') {
                    assert_eq!(all, want, "{set:?} {path}");
                }
            }
        }
    }

    /// `**/LITERAL/**` through the index agrees with the glob matcher,
    /// with and without the prefilter's pair.
    #[test]
    fn contains_agrees_with_the_matcher() {
        let glob = Glob::new("**/.config/gcloud/**", crate::glob::GlobStyle::Path).unwrap();
        let idx = PathIndex::build([(
            Cand {
                rule: 0,
                check_program: false,
            },
            Some(std::slice::from_ref(&glob)),
        )]);
        for path in [
            "/home/u/.config/gcloud",
            "/home/u/.config/gcloud/creds.json",
            "/.config/gcloud/x",
            "/home/u/.config/gcloudx/y",
            "/home/u/.config/gclou",
            "/home/u/.config/.config/gcloud/x",
            "/home/u/config/gcloud/x",
            "/home/u/x.config/gcloud/x",
            "/work/wt/hooks/target/bench/data.txt.12",
            "/a",
            "/",
        ] {
            let want = glob.is_match(path.as_bytes());
            let p = path.as_bytes();
            let got = idx.lookup(Some(p), None, false, NONE, &|_| true) == 0;
            assert_eq!(got, want, "{path}");
            let no_slash_dot = !p.windows(2).any(|w| w == b"/.");
            let got = idx.lookup(Some(p), None, no_slash_dot, NONE, &|_| true) == 0;
            assert_eq!(got, want, "{path} (hinted)");
        }
    }
}

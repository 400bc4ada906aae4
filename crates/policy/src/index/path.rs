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

use std::collections::{BTreeMap, VecDeque};

use super::{Cand, NONE};
use crate::compile::{decode_cands, encode_cands};
use crate::flat::{damaged, Read, Reader, Writer};
use crate::glob::{Glob, GlobShape};

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

/// A radix tree over byte keys with entries at key ends.
#[derive(Clone, Debug, Default)]
struct Radix {
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
        let mut radix = Radix::default();
        radix.compress(&mut trie);
        radix
    }

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

    fn encode(&self, w: &mut Writer) {
        w.len(self.nodes.len());
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
                w.u32(x);
            }
        }
        w.bytes(&self.labels);
        w.bytes(&self.child_bytes);
        w.u32s(&self.child_ids);
        encode_entries(w, &self.entries);
        w.len(self.dense.len());
        for table in &self.dense {
            for &x in table {
                w.u32(x);
            }
        }
    }

    fn decode(
        r: &mut Reader<'_>,
        n_rules: u32,
        places: &[(Place, Test)],
        place: Place,
    ) -> Read<Radix> {
        let n = r.len(32)?;
        let raw = r.take(n * 32)?;
        let nodes: Vec<Node> = raw
            .chunks_exact(32)
            .map(|c| {
                let f = |i: usize| u32::from_le_bytes(c[i * 4..i * 4 + 4].try_into().expect("4"));
                Node {
                    label: f(0),
                    label_len: f(1),
                    children: f(2),
                    n_children: f(3),
                    entries: f(4),
                    n_entries: f(5),
                    min_rule: f(6),
                    dense: f(7),
                }
            })
            .collect();
        let labels = r.bytes()?.to_vec();
        let child_bytes = r.bytes()?.to_vec();
        let child_ids = r.u32s()?.into_vec();
        let entries = decode_entries(r, n_rules, places, place)?;
        let d = r.len(1024)?;
        let mut dense = Vec::with_capacity(d);
        for _ in 0..d {
            let mut table = [0u32; 256];
            for (x, c) in table.iter_mut().zip(r.take(1024)?.chunks_exact(4)) {
                *x = u32::from_le_bytes(c.try_into().expect("4"));
            }
            if table.iter().any(|&x| x == 1 || x as usize > n) {
                return damaged("bad dense child");
            }
            dense.push(table);
        }
        let within =
            |start: u32, len: u32, total: usize| (start as u64 + len as u64) <= total as u64;
        // Every edge consumes at least one byte of the path (`walk` ends),
        // and the root is nobody's child.
        if child_bytes.len() != child_ids.len()
            || child_ids.iter().any(|&c| c == 0 || c as usize >= n)
            || nodes.iter().skip(1).any(|node| node.label_len == 0)
        {
            return damaged("bad child");
        }
        for node in &nodes {
            if !within(node.label, node.label_len, labels.len())
                || !within(node.children, node.n_children, child_ids.len())
                || !within(node.entries, node.n_entries, entries.len())
                || (node.dense != NO_DENSE && node.dense as usize >= dense.len())
            {
                return damaged("bad radix node");
            }
        }
        Ok(Radix {
            nodes,
            labels,
            child_bytes,
            child_ids,
            entries,
            dense,
        })
    }

    /// Walks `path` (from its end when `REV`), calling `test(entry, pos)`
    /// for candidates below `best`, where `pos` is how many bytes of the
    /// path the key covered. Returns the lowest rule that passed, or `best`.
    ///
    /// Every index was checked when the tree was built or decoded, so the
    /// lookups below cannot fail; they return `best` rather than panic if
    /// they ever did. The path is walked as a slice of what is left (from
    /// its end when `REV`), so no per-byte position arithmetic is needed.
    #[inline]
    fn walk<const REV: bool>(
        &self,
        path: &[u8],
        mut best: u32,
        test: impl Fn(&Entry, usize) -> bool,
    ) -> u32 {
        let Some(mut node) = self.nodes.first() else {
            return best;
        };
        let mut rest = path;
        loop {
            if node.min_rule >= best {
                return best;
            }
            if node.n_entries != 0 {
                let first = node.entries as usize;
                let Some(entries) = self.entries.get(first..first + node.n_entries as usize) else {
                    return best;
                };
                for e in entries {
                    if e.rule >= best {
                        break;
                    }
                    if test(e, path.len() - rest.len()) {
                        best = e.rule;
                        break;
                    }
                }
            }
            let next = if REV { rest.last() } else { rest.first() };
            let Some(&b) = next else {
                return best;
            };
            let child_id = if node.dense != NO_DENSE {
                match self
                    .dense
                    .get(node.dense as usize)
                    .map_or(0, |t| t[b as usize])
                {
                    0 => return best,
                    id => id - 1,
                }
            } else {
                let first = node.children as usize;
                let end = first + node.n_children as usize;
                let (Some(kids), Some(ids)) = (
                    self.child_bytes.get(first..end),
                    self.child_ids.get(first..end),
                ) else {
                    return best;
                };
                let Some(k) = kids.iter().position(|&c| c == b) else {
                    return best;
                };
                ids[k]
            };
            let Some(child) = self.nodes.get(child_id as usize) else {
                return best;
            };
            let at = child.label as usize;
            let Some(label) = self.labels.get(at..at + child.label_len as usize) else {
                return best;
            };
            if rest.len() < label.len() {
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

/// For [`Test::Contains`] and [`Test::ContainsDot`] globs: a SIMD
/// substring finder for `/LITERAL`.
fn finder(g: &Glob) -> Option<Box<memchr::memmem::Finder<'static>>> {
    (g.shape() == GlobShape::Contains).then(|| contains_finder(g))
}

fn contains_finder(g: &Glob) -> Box<memchr::memmem::Finder<'static>> {
    let b = g.as_str().as_bytes();
    Box::new(memchr::memmem::Finder::new(&b[2..b.len() - 3]).into_owned())
}

fn encode_entries(w: &mut Writer, entries: &[Entry]) {
    w.len(entries.len());
    for e in entries {
        w.u32(e.rule | (e.check_program as u32) << 31);
        w.u32(e.glob);
    }
}

fn decode_entries(
    r: &mut Reader<'_>,
    n_rules: u32,
    places: &[(Place, Test)],
    place: Place,
) -> Read<Vec<Entry>> {
    let n = r.len(8)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let x = r.u32()?;
        let glob = r.u32()?;
        let rule = x & !(1 << 31);
        let Some(&(at, test)) = places.get(glob as usize) else {
            return damaged("bad glob index");
        };
        if rule >= n_rules || at != place {
            return damaged("bad path entry");
        }
        out.push(Entry {
            rule,
            check_program: x >> 31 != 0,
            test,
            glob,
        });
    }
    Ok(out)
}

/// Whether every one of `floating` is a [`Test::ContainsDot`] (and there
/// is at least one).
fn need_slash_dot(floating: &[Entry]) -> bool {
    !floating.is_empty() && floating.iter().all(|e| e.test == Test::ContainsDot)
}

/// What the literal parts of a bucket's globs say about any path they can
/// match, checked before the walks: a glob's match starts with its literal
/// prefix and ends with its literal suffix, so a path whose second byte
/// starts no prefix (after the `/`) and whose last byte ends no suffix can
/// only be matched by the floating globs. Derived from the globs (at build
/// and at decode), so the compiled table's format is unchanged.
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
    any_path: Box<[Cand]>,
    prefixes: Radix,
    suffixes: Radix,
    /// Globs with neither a literal prefix nor a literal suffix.
    floating: Box<[Entry]>,
    globs: Vec<Glob>,
    /// For [`Test::Contains`] entries, by glob index: a SIMD substring
    /// finder for `/LITERAL`. Boxed: a finder is ~970 bytes and few globs
    /// have one, so a slot costs 8 bytes instead (every process decodes
    /// these at start-up, and each page of heap it touches is a page fault).
    finders: Vec<Option<Box<memchr::memmem::Finder<'static>>>>,
    gate: Gate,
    /// Every floating glob is [`Test::ContainsDot`]: a path without a `/`
    /// followed by `.` needs no floating search at all.
    floating_need_slash_dot: bool,
}

impl PathIndex {
    /// `rules` yields, in document order, each candidate with its path
    /// globs (`None`: the rule has no `path` matcher).
    pub fn build<'a>(rules: impl IntoIterator<Item = (Cand, Option<&'a [Glob]>)>) -> PathIndex {
        let mut idx = PathIndex::default();
        let mut any = Vec::new();
        let (mut prefixes, mut suffixes, mut floating) = (Vec::new(), Vec::new(), Vec::new());
        for (cand, globs) in rules {
            let Some(globs) = globs else {
                any.push(cand);
                continue;
            };
            for g in globs {
                let (place, test) = placement(g);
                let entry = Entry {
                    rule: cand.rule,
                    check_program: cand.check_program,
                    test,
                    glob: idx.globs.len() as u32,
                };
                match place {
                    Place::Prefix => prefixes.push((g.literal_prefix().to_vec(), entry)),
                    Place::Suffix => {
                        suffixes.push((g.literal_suffix().iter().rev().copied().collect(), entry))
                    }
                    Place::Floating => floating.push(entry),
                }
                idx.finders.push(finder(g));
                idx.globs.push(g.clone());
            }
        }
        floating.sort_by_key(|e| e.rule);
        idx.any_path = any.into();
        idx.prefixes = Radix::build(prefixes);
        idx.suffixes = Radix::build(suffixes);
        idx.floating = floating.into();
        idx.gate = Gate::build(idx.globs.iter().map(|g| (g, placement(g).0)));
        idx.floating_need_slash_dot = need_slash_dot(&idx.floating);
        idx
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        encode_cands(w, &self.any_path);
        w.globs(&self.globs);
        self.prefixes.encode(w);
        self.suffixes.encode(w);
        encode_entries(w, &self.floating);
    }

    /// The inverse of [`PathIndex::encode`], checking every index so that
    /// `lookup` cannot go out of bounds, and recomputing each entry's test
    /// from its glob as `build` does.
    pub(crate) fn decode(r: &mut Reader<'static>, n_rules: u32) -> Read<PathIndex> {
        let any_path = decode_cands(r, n_rules)?;
        let globs = r.globs()?;
        let places: Vec<(Place, Test)> = globs.iter().map(placement).collect();
        // A `Contains` test is exactly a `Contains` shape (see `placement`).
        let finders = globs
            .iter()
            .zip(&places)
            .map(|(g, &(_, test))| {
                matches!(test, Test::Contains | Test::ContainsDot).then(|| contains_finder(g))
            })
            .collect();
        let prefixes = Radix::decode(r, n_rules, &places, Place::Prefix)?;
        let suffixes = Radix::decode(r, n_rules, &places, Place::Suffix)?;
        let floating = decode_entries(r, n_rules, &places, Place::Floating)?;
        let gate = Gate::build(globs.iter().zip(&places).map(|(g, &(place, _))| (g, place)));
        Ok(PathIndex {
            any_path,
            prefixes,
            suffixes,
            floating_need_slash_dot: need_slash_dot(&floating),
            floating: floating.into(),
            finders,
            globs,
            gate,
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
        if self.floating.first().is_some_and(|e| e.rule < best)
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
        if self.floating.first().is_some_and(|e| e.rule < best) {
            best = self.search_floating(path, no_slash_dot, best, program_ok);
        }
        best
    }

    #[inline(always)]
    fn prefix_walk(
        &self,
        path: &[u8],
        absolute: bool,
        best: u32,
        check: &impl Fn(&Entry, bool) -> bool,
    ) -> u32 {
        self.prefixes.walk::<false>(path, best, |e, pos| {
            let rest = &path[pos..];
            let hit = match e.test {
                Test::Exact => rest.is_empty(),
                Test::Subtree => rest.first().is_none_or(|&b| b == b'/'),
                // The root "/" is one empty segment, which `DIR/*` cannot be.
                Test::Children => !rest.contains(&b'/') && path.len() > 1,
                Test::LastSegment => {
                    path.len() > 1 && self.globs[e.glob as usize].tail_matches(rest)
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
        self.suffixes.walk::<true>(path, best, |e, _| {
            let hit = match e.test {
                Test::SuffixHit if absolute => true,
                _ => self.globs[e.glob as usize].is_match(path),
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
        for e in self.floating.iter() {
            if e.rule >= best {
                break;
            }
            let hit = match e.test {
                Test::Basename => self.globs[e.glob as usize].basename_matches(path),
                Test::Contains if absolute => self.contains(e.glob, path),
                Test::ContainsDot if absolute => !no_slash_dot && self.contains(e.glob, path),
                _ => self.general(e, path, absolute),
            };
            if hit && (!e.check_program || program_ok(e.rule)) {
                return e.rule;
            }
        }
        best
    }

    /// `**/LITERAL/**` on an absolute path: `/LITERAL` occurs, followed by
    /// `/` or the end (see [`Glob::contains_matches`], which this mirrors).
    fn contains(&self, glob: u32, path: &[u8]) -> bool {
        let Some(finder) = &self.finders[glob as usize] else {
            return self.globs[glob as usize].is_match(path);
        };
        let n = finder.needle().len();
        // Occurrences may overlap (`/ab/a` in `/ab/ab/a`): resume one byte
        // after each candidate, not after its end.
        let mut start = 0;
        while let Some(i) = finder.find(&path[start..]) {
            let end = start + i + n;
            if path.get(end).is_none_or(|&b| b == b'/') {
                return true;
            }
            start += i + 1;
        }
        false
    }

    #[inline]
    fn general(&self, e: &Entry, path: &[u8], absolute: bool) -> bool {
        let g = &self.globs[e.glob as usize];
        // Every match of an absolute path ends with the literal suffix: a
        // cheap test that rules out most candidates.
        (!absolute || path.ends_with(g.literal_suffix())) && g.is_match(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gate never hides a match: for globs of every placement and
    /// paths that share or miss their literal parts, the gated search
    /// finds what the full search finds.
    #[test]
    fn the_gate_hides_no_match() {
        let patterns = [
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
        let globs: Vec<Glob> = patterns
            .iter()
            .map(|p| Glob::new(p, crate::glob::GlobStyle::Path).unwrap())
            .collect();
        let paths = [
            "/",
            "/etc",
            "/etc/shadow",
            "/etc/x",
            "/home/u/.ssh/id",
            "/home/u/x",
            "/a",
            "/u/.aws/credentials",
            "/u/.aws/credentialsx",
            "/x/.bash_history",
            "/x/cpuminer-1",
            "/h/.config/gcloud/c",
            "/usr/bin/bash",
            "/proc/1/mem",
            "/w/x",
            "/wx",
            "x",
            "",
            "/work/wt/hooks/target/bench/data.txt.12",
            ".config/gcloud/x",
            "/h/.config/gcloud",
            "/h/config/gcloud/x",
        ];
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
            for path in paths {
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

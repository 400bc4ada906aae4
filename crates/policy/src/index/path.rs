//! Path rules indexed by the literal prefixes of their globs.
//!
//! A radix tree over the prefixes is walked once along the request path;
//! each node holds the globs whose prefix ends there, sorted by rule index.
//! Only those candidates have their tails checked, most of them in constant
//! time through [`GlobShape`]. The walk keeps the lowest matching rule index
//! and prunes subtrees that cannot beat it.

use std::collections::BTreeMap;

use super::{Cand, NONE};
use crate::glob::{Glob, GlobShape};

#[derive(Clone, Debug)]
struct Entry {
    rule: u32,
    check_program: bool,
    shape: GlobShape,
    /// Index into `PathIndex::globs`.
    glob: u32,
}

#[derive(Clone, Copy, Debug)]
struct Node {
    /// Edge label leading into this node, in `labels`.
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
}

/// Index over the rules of one bucket (file read, file write, exec).
#[derive(Clone, Debug, Default)]
pub struct PathIndex {
    /// Rules without `path`: they match any path.
    any_path: Box<[Cand]>,
    nodes: Vec<Node>,
    labels: Vec<u8>,
    child_bytes: Vec<u8>,
    child_ids: Vec<u32>,
    entries: Vec<Entry>,
    globs: Vec<Glob>,
}

#[derive(Default)]
struct TrieNode {
    children: BTreeMap<u8, usize>,
    entries: Vec<Entry>,
}

impl PathIndex {
    /// `rules` yields, in document order, each candidate with its path
    /// globs (`None`: the rule has no `path` matcher).
    pub fn build<'a>(rules: impl IntoIterator<Item = (Cand, Option<&'a [Glob]>)>) -> PathIndex {
        let mut idx = PathIndex::default();
        let mut any = Vec::new();
        let mut trie = vec![TrieNode::default()];
        for (cand, globs) in rules {
            let Some(globs) = globs else {
                any.push(cand);
                continue;
            };
            for g in globs {
                let mut t = 0usize;
                for &b in g.literal_prefix() {
                    let next = trie.len();
                    t = *trie[t].children.entry(b).or_insert(next);
                    if t == next {
                        trie.push(TrieNode::default());
                    }
                }
                trie[t].entries.push(Entry {
                    rule: cand.rule,
                    check_program: cand.check_program,
                    shape: g.shape(),
                    glob: idx.globs.len() as u32,
                });
                idx.globs.push(g.clone());
            }
        }
        idx.any_path = any.into();
        idx.compress(&mut trie);
        idx
    }

    /// Turns the byte trie into the radix tree, breadth first so that each
    /// node's children are contiguous. Iterative: prefixes come from the
    /// policy, and a hostile one must not exhaust the stack.
    fn compress(&mut self, trie: &mut [TrieNode]) {
        let mut parents: Vec<u32> = Vec::new();
        // (trie node, label, radix id to fill)
        let mut queue = std::collections::VecDeque::new();
        self.nodes.push(Node {
            label: 0,
            label_len: 0,
            children: 0,
            n_children: 0,
            entries: 0,
            n_entries: 0,
            min_rule: NONE,
        });
        parents.push(0);
        queue.push_back((0usize, 0u32));
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
                    children: 0,
                    n_children: 0,
                    entries: 0,
                    n_entries: 0,
                    min_rule: NONE,
                });
                parents.push(id);
                self.child_bytes.push(b);
                self.child_ids.push(child);
                queue.push_back((c, child));
            }
        }
        // Children come after their parents: one reverse pass propagates
        // subtree minima.
        for id in (1..self.nodes.len()).rev() {
            let p = parents[id] as usize;
            self.nodes[p].min_rule = self.nodes[p].min_rule.min(self.nodes[id].min_rule);
        }
    }

    /// Lowest rule index (below `best`) matching `path` or `resolved`;
    /// `program_ok(rule)` is asked only for candidates that need it.
    #[inline]
    pub fn lookup(
        &self,
        path: Option<&[u8]>,
        resolved: Option<&[u8]>,
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
            best = self.walk(p, best, program_ok);
        }
        if let Some(r) = resolved {
            best = self.walk(r, best, program_ok);
        }
        best
    }

    #[inline]
    fn walk(&self, path: &[u8], mut best: u32, program_ok: &impl Fn(u32) -> bool) -> u32 {
        let Some(mut node) = self.nodes.first() else {
            return best;
        };
        let mut pos = 0usize;
        loop {
            if node.min_rule >= best {
                return best;
            }
            let entries = &self.entries[node.entries as usize..][..node.n_entries as usize];
            for e in entries {
                if e.rule >= best {
                    break;
                }
                let rest = &path[pos..];
                let hit = match e.shape {
                    GlobShape::Literal => rest.is_empty(),
                    GlobShape::Subtree => rest.first().is_none_or(|&b| b == b'/'),
                    // The root "/" is one empty segment, which `DIR/*` cannot be.
                    GlobShape::Children => !rest.contains(&b'/') && path.len() > 1,
                    GlobShape::Basename => self.globs[e.glob as usize].basename_matches(path),
                    GlobShape::General => {
                        let g = &self.globs[e.glob as usize];
                        // Normalised paths start with `/`, and then every
                        // match ends with the glob's literal suffix: a cheap
                        // test that rules out most candidates.
                        (path.first() != Some(&b'/') || path.ends_with(g.literal_suffix()))
                            && g.is_match(path)
                    }
                };
                if hit && (!e.check_program || program_ok(e.rule)) {
                    best = e.rule;
                    break;
                }
            }
            let Some(&b) = path.get(pos) else {
                return best;
            };
            let kids = &self.child_bytes[node.children as usize..][..node.n_children as usize];
            let Some(k) = kids.iter().position(|&c| c == b) else {
                return best;
            };
            let child = &self.nodes[self.child_ids[node.children as usize + k] as usize];
            let label = &self.labels[child.label as usize..][..child.label_len as usize];
            if !path[pos..].starts_with(label) {
                return best;
            }
            pos += label.len();
            node = child;
        }
    }
}

//! The library's modules form layers: a module only uses modules below it,
//! never one that uses it back. Start-up (`state`) sits above policy
//! distribution (`refresh`), which sits above the event pipeline (`emit`,
//! `queue`), the event record (`record`) and the published process facts
//! (`active`, `config`). A cycle among them is how a refresh ends up
//! re-entering start-up, or an event being built calls back into the code
//! that is emitting it; this test reads the sources and fails on one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// `module -> modules it names as crate::x`, from the non-test code of
/// src/*.rs and src/hooks/*.rs (hooks count as one module, `hooks`).
fn edges() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for dir in [src.clone(), src.join("hooks")] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in files {
        let module = if path.parent().unwrap().ends_with("hooks") {
            "hooks".to_owned()
        } else {
            path.file_stem().unwrap().to_str().unwrap().to_owned()
        };
        if module == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
        assert!(
            !code.contains("crate::{"),
            "{}: grouped `crate::{{…}}` imports hide edges from this test; name each module",
            path.display()
        );
        let out = graph.entry(module.clone()).or_default();
        for (i, _) in code.match_indices("crate::") {
            let name: String = code[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !name.is_empty() && name != module {
                out.insert(name);
            }
        }
    }
    graph
}

/// A cycle of `graph`, if there is one (depth-first search).
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        graph: &BTreeMap<String, BTreeSet<String>>,
        node: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut c = path[at..].to_vec();
            c.push(node.to_owned());
            return Some(c);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(graph, next, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(c) = visit(graph, node, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

#[test]
fn modules_form_layers_without_cycles() {
    let graph = edges();
    // The reader sees the modules it should (a renamed module must not
    // make this test vacuous).
    for m in ["state", "refresh", "emit", "record", "active", "config"] {
        assert!(graph.contains_key(m), "module {m} not found: {graph:?}");
    }
    assert!(
        graph["state"].contains("refresh") && graph["refresh"].contains("emit"),
        "the edges this test is about are seen: {graph:?}"
    );
    if let Some(c) = cycle(&graph) {
        panic!("module cycle: {}", c.join(" -> "));
    }
    // The lower layers never name the ones above them.
    let above = |m: &str, of: &[&str]| {
        for o in of {
            assert!(
                !graph[m].contains(*o),
                "{m} uses {o}, a layer above it: {:?}",
                graph[m]
            );
        }
    };
    above("record", &["emit", "refresh", "state", "queue"]);
    above("emit", &["refresh", "state"]);
    above("refresh", &["state"]);
    above("active", &["record", "emit", "refresh", "state"]);
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    fn add(g: &mut BTreeMap<String, BTreeSet<String>>, a: &str, b: &str) {
        g.entry(a.into()).or_default().insert(b.into());
    }
    add(&mut g, "state", "refresh");
    add(&mut g, "refresh", "emit");
    add(&mut g, "emit", "record");
    assert_eq!(cycle(&g), None);
    add(&mut g, "record", "state");
    let c = cycle(&g).expect("a cycle");
    assert_eq!(c.first(), c.last());
    assert_eq!(c.len(), 5, "{c:?}");
}

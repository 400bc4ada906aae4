//! The library's modules form layers: a module only uses modules below it,
//! never one that uses it back. Start-up (`state`) sits above policy
//! distribution (`refresh`), which sits above the event pipeline (`emit`,
//! `queue`), the event record (`record`) and the published process facts
//! (`active`, `config`). A cycle among them is how a refresh ends up
//! re-entering start-up, or an event being built calls back into the code
//! that is emitting it; this test reads the sources and fails on one. The
//! folders the modules live in (`os`, `process`, `events`, `load`,
//! `decide`, `hooks`) are layers too: no two of them use each other.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module and folder edges, from the non-test code of src/*.rs and
/// src/FOLDER/*.rs: a module is named `crate::folder::module` (hooks count
/// as one module, `hooks`).
struct Edges {
    modules: BTreeMap<String, BTreeSet<String>>,
    folders: BTreeMap<String, BTreeSet<String>>,
}

fn edges() -> Edges {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.is_dir() {
            // A module beside lib.rs would escape the folder layers.
            let name = dir.file_name().unwrap();
            assert!(
                name == "lib.rs",
                "{}: a module belongs in one of the folders",
                dir.display()
            );
            continue;
        }
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let mut edges = Edges {
        modules: BTreeMap::new(),
        folders: BTreeMap::new(),
    };
    let name_at = |code: &str, at: usize| -> String {
        code[at..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
            .collect()
    };
    for path in files {
        let folder = path
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let stem = path.file_stem().unwrap().to_str().unwrap();
        let module = if folder == "hooks" {
            "hooks".to_owned()
        } else if stem == "mod" {
            continue;
        } else {
            stem.to_owned()
        };
        let text = std::fs::read_to_string(&path).unwrap();
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
        let grouped = code.contains("crate::{")
            || ["os", "process", "events", "load", "decide"]
                .iter()
                .any(|f| code.contains(&format!("crate::{f}::{{")));
        assert!(
            !grouped,
            "{}: grouped `crate::{{…}}` imports hide edges from this test; name each module",
            path.display()
        );
        let uses = edges.modules.entry(module.clone()).or_default();
        let folder_uses = edges.folders.entry(folder.clone()).or_default();
        for (i, _) in code.match_indices("crate::") {
            let used_folder = name_at(code, i + 7);
            if used_folder.is_empty() || used_folder == folder {
                if used_folder == folder && folder != "hooks" {
                    let used = name_at(code, i + 7 + folder.len() + 2);
                    if !used.is_empty() && used != module {
                        uses.insert(used);
                    }
                }
                continue;
            }
            folder_uses.insert(used_folder.clone());
            let used = if used_folder == "hooks" {
                "hooks".to_owned()
            } else {
                name_at(code, i + 7 + used_folder.len() + 2)
            };
            if !used.is_empty() && used != module {
                uses.insert(used);
            }
        }
    }
    edges
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
    let Edges {
        modules: graph,
        folders,
    } = edges();
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
    for f in ["os", "process", "events", "load", "decide", "hooks"] {
        assert!(folders.contains_key(f), "folder {f} not found: {folders:?}");
    }
    assert!(
        folders["load"].contains("events") && folders["events"].contains("process"),
        "the folder edges this test is about are seen: {folders:?}"
    );
    if let Some(c) = cycle(&folders) {
        panic!("folder cycle: {}", c.join(" -> "));
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

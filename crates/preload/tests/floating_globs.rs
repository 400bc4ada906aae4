//! Globs with neither a literal prefix nor a literal suffix
//! (`**/.config/gcloud/**`) on the open route: the route tells the rule
//! index when its plain-path scan found no `/` followed by `.`, and the
//! index then skips the globs every match of which has one. A path that
//! has the pair is still searched, whatever its other segments.

mod common;

use common::{policy, probe, scratch, Run};
use serde_json::json;

#[test]
fn a_floating_dot_glob_denies_and_the_hint_hides_nothing() {
    let d = scratch("floating-globs");
    for dir in [
        "home/u/.config/gcloud",
        "home/u/.configx/gcloud",
        "pub",
        ".hidden",
    ] {
        std::fs::create_dir_all(d.join(dir)).unwrap();
    }
    for file in [
        "home/u/.config/gcloud/creds",
        "home/u/.configx/gcloud/creds",
        "pub/ok",
        ".hidden/ok",
    ] {
        std::fs::write(d.join(file), "x").unwrap();
    }
    let rules = json!([
        {"name": "gcloud", "kind": "file", "access": ["read"], "path": ["**/.config/gcloud/**"], "action": "deny"},
    ]);
    let open = |rel: &str| {
        let path = d.join(rel).display().to_string();
        Run::new(&d, Some(policy("enforce", &["deny"], rules.clone()))).cmd(&[
            probe().display().to_string(),
            "open".into(),
            path,
        ])
    };
    // The plain absolute path has the pair: searched, denied, reported.
    let out = open("home/u/.config/gcloud/creds");
    assert_eq!(out.stdout.trim(), "err 13", "stderr {}", out.stderr);
    assert_eq!(out.one_event().rule.as_deref(), Some("gcloud"));
    // A spelling the route normalises first is denied the same way.
    let out = open("pub/../home/u/./.config/gcloud/creds");
    assert_eq!(out.stdout.trim(), "err 13", "stderr {}", out.stderr);
    // Near misses (a `/.` elsewhere, a longer name) and a path without
    // any `/.` (the hinted case) are allowed, silently.
    for rel in ["home/u/.configx/gcloud/creds", ".hidden/ok", "pub/ok"] {
        let out = open(rel);
        assert_eq!(out.stdout.trim(), "ok", "{rel}: stderr {}", out.stderr);
        assert!(out.decisions().is_empty(), "{rel}");
    }
    let _ = std::fs::remove_dir_all(&d);
}

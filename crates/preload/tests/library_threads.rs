//! The library's own threads as an attacker sees them: a signal handler
//! made to run on them (or inside a hook) is still checked, and a flood of
//! cheap denials cannot push an important deny out of the audit trail.

mod common;

use common::{c_program, policy, scratch, Run};
use serde_json::json;
use std::collections::HashMap;

fn field(line: &str, name: &str) -> i64 {
    let fields: HashMap<&str, &str> = line
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .collect();
    fields
        .get(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name}= in {line:?}"))
}

#[test]
fn signal_handlers_on_library_threads_and_inside_hooks_are_checked() {
    let d = scratch("signal-threads");
    let denied = d.join("secret");
    let allowed = d.join("allowed");
    std::fs::write(&denied, "s3cret").unwrap();
    std::fs::write(&allowed, "ok").unwrap();
    let (denied, allowed) = (denied.display().to_string(), allowed.display().to_string());
    let prog = c_program("signal_threads", &["-pthread"]);
    let p = policy(
        "enforce",
        &["deny"],
        json!([{"name": "secret", "kind": "file", "path": [denied], "action": "deny"}]),
    );
    let rounds = 200;
    // The refresher of a process with a policy file starts at its first
    // re-read (refreshSeconds after start-up): make that one second.
    let config = d.join("config.json");
    std::fs::write(&config, json!({"refreshSeconds": 1}).to_string()).unwrap();
    let out = Run::new(&d, Some(p))
        .env("LDGUARD_CONFIG", config.to_str().unwrap())
        .cmd(&[
            prog.display().to_string(),
            denied,
            allowed,
            rounds.to_string(),
        ]);
    let line = out.stdout.trim();
    assert_eq!(out.code(), 0, "{line} {}", out.stderr);
    assert_eq!(
        field(line, "threads"),
        2,
        "both library threads (ldguard-events, ldguard-refresh) were found: {line}"
    );
    assert_eq!(
        field(line, "leaked"),
        0,
        "a handler opened the denied file: {line}"
    );
    assert_eq!(field(line, "other"), 0, "{line}");
    assert_eq!(field(line, "main_bad"), 0, "{line}");
    let handled = field(line, "handled");
    assert_eq!(field(line, "refused"), handled, "{line}");
    // The signals to the main thread and to the process all ran a handler
    // (the ones sent to the library's threads stay pending there).
    assert!(handled >= rounds, "{line}");
}

fn flood(mode: &str, count: u32) {
    let d = scratch(&format!("flood-{mode}"));
    let cheap = d.join("cheap");
    let important = d.join("important");
    std::fs::write(&cheap, "x").unwrap();
    std::fs::write(&important, "y").unwrap();
    let (cheap, important) = (cheap.display().to_string(), important.display().to_string());
    let p = policy(
        mode,
        &["deny"],
        json!([
            {"name": "cheap", "kind": "file", "access": ["read"], "path": [cheap], "action": "deny"},
            {"name": "important", "kind": "file", "access": ["write"], "path": [important],
             "action": "deny", "severity": "critical"},
        ]),
    );
    let prog = c_program("flood", &[]);
    let out = Run::new(&d, Some(p)).cmd(&[
        prog.display().to_string(),
        cheap,
        important,
        count.to_string(),
    ]);
    let enforced = mode == "enforce";
    let expected = if enforced {
        format!("refused={count} important=refused")
    } else {
        "refused=0 important=opened".into()
    };
    assert_eq!(out.stdout.trim(), expected, "{}", out.stderr);
    let rule = |name: &str| {
        out.decisions()
            .iter()
            .filter(|e| e.rule.as_deref() == Some(name) && e.enforced == enforced)
            .count()
    };
    assert_eq!(
        rule("cheap"),
        count as usize,
        "every cheap deny is in the file"
    );
    assert_eq!(rule("important"), 1, "the important deny is in the file");
    assert!(
        out.events.iter().all(|e| e.dropped.is_none()),
        "no deny record was dropped"
    );
}

#[test]
fn a_flood_of_denials_loses_no_deny_record_enforce() {
    flood("enforce", 20_000);
}

#[test]
fn a_flood_of_denials_loses_no_deny_record_permissive() {
    flood("permissive", 20_000);
}

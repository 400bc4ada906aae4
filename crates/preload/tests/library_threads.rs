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
            "1".into(),
        ]);
    let line = out.stdout.trim();
    assert_eq!(out.code(), 0, "{line} {}", out.stderr);
    assert_eq!(
        field(line, "threads"),
        1,
        "the refresher (ldguard-refresh) was found, and no event writer (the \
         file sink is written by the threads that make the events): {line}"
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

/// With a file sink, events are written by the threads that make them: a
/// single-threaded program stays single-threaded after its first events
/// (glibc keeps its single-threaded paths), and events from a signal
/// handler, concurrent threads, a forked child, a vfork child and a
/// program that closed every descriptor and put its own file on every
/// number are all in the event file, one well-formed line each, and none
/// in the program's file.
#[test]
fn file_events_need_no_thread_and_every_writer_gets_whole_lines() {
    let d = scratch("inline-events");
    let denied = d.join("denied");
    std::fs::write(&denied, "x").unwrap();
    let own = d.join("own-file");
    let p = policy(
        "enforce",
        &["deny"],
        json!([{"name": "denied", "kind": "file", "path": [denied.display().to_string()], "action": "deny"}]),
    );
    let prog = c_program("inline_events", &["-pthread"]);
    let (threads, each) = (8, 200);
    let out = Run::new(&d, Some(p)).cmd(&[
        prog.display().to_string(),
        denied.display().to_string(),
        own.display().to_string(),
        threads.to_string(),
        each.to_string(),
    ]);
    assert_eq!(out.code(), 0, "{} {}", out.stdout, out.stderr);
    let line = out.stdout.trim();
    assert_eq!(field(line, "tasks"), 1, "no library thread: {line}");
    assert_eq!(
        field(line, "single"),
        1,
        "glibc still single-threaded: {line}"
    );
    // Main thread, signal handler, main again, fork, vfork, after close,
    // threads. (The forked and vfork children count in their own memory
    // or the parent's: only the events are counted here.)
    let writers = 6 + threads;
    let decisions = out.decisions();
    assert_eq!(
        decisions.len(),
        writers * each,
        "every deny is in the file (stderr: {})",
        out.stderr
    );
    assert!(decisions.iter().all(|e| e.action == "deny"
        && e.enforced
        && e.target.as_deref() == Some(denied.to_str().unwrap())));
    let mut per_pid = HashMap::<u32, usize>::new();
    for e in &decisions {
        *per_pid.entry(e.pid).or_default() += 1;
    }
    let mut counts: Vec<usize> = per_pid.values().copied().collect();
    counts.sort_unstable();
    assert_eq!(
        counts,
        [each, each, (writers - 2) * each],
        "the forked and the vfork child's events carry their own pid"
    );
    assert!(out.events.iter().all(|e| e.dropped.is_none()));
    assert_eq!(
        std::fs::read(&own).unwrap().len(),
        0,
        "no event went into the program's own file"
    );
}

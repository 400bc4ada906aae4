//! Thread cancellation through the library's hooks: every hooked libc
//! function that is a cancellation point acts on a pending request as
//! libc's does, and the cancelled thread is unwound through the library's
//! own frames without harm. The shipped build once linked a private
//! unwinder that crashed the program at exactly this point (docs/preload.md,
//! *Paths*); run with `LDGUARD_TEST_LIB` naming the shipped build, as
//! scripts/test does.

mod common;

use common::{c_program, policy, scratch, Run};
use serde_json::json;

#[test]
fn a_pending_cancellation_acts_at_each_hooked_call_and_unwinds_cleanly() {
    let d = scratch("cancel-calls");
    let prog = c_program("cancel_calls", &["-lpthread"])
        .display()
        .to_string();
    // Rules of both kinds, so the file and the network hooks both decide.
    let rules = json!([
        {"name": "elsewhere", "kind": "file", "path": ["/nonexistent-ldguard/**"], "action": "deny"},
        {"name": "far-host", "kind": "network", "address": ["10.9.9.9/32"], "action": "deny"}
    ]);
    let mut outs = Vec::new();
    for (name, p) in [
        ("base", None),
        ("with", Some(policy("enforce", &["deny"], rules))),
    ] {
        let dir = d.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let out = Run::new(&d, p).cmd(&[prog.as_str(), dir.to_str().unwrap()]);
        assert_eq!(out.code(), 0, "{name}: {}", out.stderr);
        assert!(out.decisions().is_empty(), "{:#?}", out.events);
        outs.push(out.stdout);
    }
    let expected: String = ["open", "openat", "creat", "fopen", "connect", "sendto"]
        .iter()
        .map(|call| format!("{call}: cancelled\n{call}: joined, cancelled\n"))
        .collect();
    assert_eq!(outs[0], expected, "without the library");
    assert_eq!(outs[1], outs[0], "with the library vs without");
}

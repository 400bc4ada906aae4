//! Thread cancellation through the library's hooks: every hooked libc
//! function that is a cancellation point acts on a pending request as
//! libc's does, and the cancelled thread is unwound through the library's
//! own frames without harm and without a descriptor of the library's left
//! open. The shipped build once linked a private
//! unwinder that crashed the program at exactly this point (docs/preload.md,
//! *Paths*); run with `LDGUARD_TEST_LIB` naming the shipped build, as
//! scripts/test does.

mod common;

use common::{c_program, policy, scratch, stdout_without_and_with};
use serde_json::json;

#[test]
fn a_pending_cancellation_acts_at_each_hooked_call_and_unwinds_cleanly() {
    let d = scratch("cancel-calls");
    let prog = c_program("cancel_calls", &["-lpthread"]);
    // Rules of both kinds, so the file and the network hooks both decide.
    let rules = json!([
        {"name": "elsewhere", "kind": "file", "path": ["/nonexistent-ldguard/**"], "action": "deny"},
        {"name": "far-host", "kind": "network", "address": ["10.9.9.9/32"], "action": "deny"},
        {"name": "no-socket", "kind": "network", "direction": "outbound",
         "unix": ["/nonexistent-ldguard/s"], "action": "deny"}
    ]);
    let (base, with) = stdout_without_and_with(&d, &prog, policy("enforce", &["deny"], rules));
    let expected: String = [
        "open",
        "openat",
        "creat",
        "fopen",
        "connect",
        "sendto",
        "connect-unix",
        "sendto-unix",
        "sendmsg-unix",
    ]
    .iter()
    .map(|call| {
        // The program's own socket stays open: it is cancelled before its
        // close.
        let socket = if call.starts_with("connect") || call.starts_with("send") {
            1
        } else {
            0
        };
        format!("{call}: cancelled\n{call}: joined, cancelled, +{socket} descriptors\n")
    })
    .collect();
    assert_eq!(base, expected, "without the library");
    assert_eq!(with, base, "with the library vs without");
}

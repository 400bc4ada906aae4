//! What loading the library costs a process that is told to do nothing: a
//! forced `disabled` (`LDGUARD_MODE=disabled`) must read no policy and start
//! no thread, so the program's own libc calls keep their single-threaded
//! fast paths (benchmarked in BENCHMARKS.md).

mod common;

use common::{policy, scratch, Run};
use serde_json::json;

fn threads(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn forced_disabled_checks_nothing_and_starts_no_thread() {
    let dir = scratch("forced-disabled");
    let secret = dir.join("secret");
    std::fs::write(&secret, "s3cret\n").unwrap();
    let secret = secret.to_str().unwrap();
    let p = policy(
        "enforce",
        &["deny", "audit", "allow"],
        json!([{"name": "no-secret", "kind": "file", "access": ["read"],
                "path": [secret], "action": "deny"}]),
    );

    let enforced = Run::new(&dir, Some(p.clone())).cmd(&["/bin/cat", secret]);
    assert_ne!(
        enforced.code(),
        0,
        "the policy itself denies: {}",
        enforced.stderr
    );

    let out = Run::new(&dir, Some(p))
        .env("LDGUARD_MODE", "disabled")
        .cmd(&["/bin/cat", secret, "/proc/self/status"]);
    assert_eq!(out.code(), 0, "disabled must not deny: {}", out.stderr);
    assert!(out.stdout.starts_with("s3cret\n"));
    assert_eq!(
        threads(&out.stdout),
        Some(1),
        "a disabled process must stay single-threaded:\n{}",
        out.stdout
    );
    assert!(
        out.events.is_empty(),
        "disabled reports nothing: {:#?}",
        out.events
    );
}

//! The plan: which rules the kernel can restate, honouring first-match
//! order, and the Landlock grants computed on a real directory tree.

use ldguard_backstop::landlock::{grants, Class, LandlockPlan};
use ldguard_backstop::seccomp::{Origin, SeccompPlan, Verdict};
use ldguard_policy::{check_str, Call, Policy};
use std::path::PathBuf;

fn policy(rules: &str, extra: &str) -> Policy {
    let text = format!(
        r#"{{"apiVersion": "ldguard.policy/v1", "name": "t", {extra} "rules": [{rules}]}}"#
    );
    let (p, d) = check_str(&text, "t.json");
    p.unwrap_or_else(|| panic!("{d}"))
}

#[test]
fn syscall_rules_follow_first_match_and_scope() {
    let p = policy(
        r#"{"name": "gdb-may-trace", "kind": "syscall", "program": ["/usr/bin/gdb"], "call": ["ptrace"], "action": "allow"},
           {"name": "only-nginx", "kind": "syscall", "program": ["/usr/sbin/nginx"], "call": ["mount"], "action": "deny"},
           {"name": "no-tracing", "kind": "syscall", "call": ["ptrace", "bpf", "seteuid"], "action": "deny", "errno": "EACCES"},
           {"name": "kill-modules", "kind": "syscall", "call": ["init_module"], "action": "kill"}"#,
        "",
    );
    let plan = SeccompPlan::of(&p);
    let denied: Vec<&str> = plan.denials.iter().map(|d| d.syscall).collect();
    assert!(
        !denied.contains(&"ptrace"),
        "gdb may trace: the kernel must not deny it"
    );
    assert!(!denied.contains(&"mount"), "scoped to nginx only");
    assert!(plan
        .gaps
        .iter()
        .any(|g| g.call == Call::Ptrace && g.rule == Some(0)));
    assert!(plan
        .gaps
        .iter()
        .any(|g| g.call == Call::Seteuid && g.why.contains("setresuid")));
    let bpf = plan.denials.iter().find(|d| d.syscall == "bpf").unwrap();
    assert_eq!(
        (bpf.verdict, bpf.origin),
        (Verdict::Errno(13), Origin::Rule(2))
    );
    let init = plan
        .denials
        .iter()
        .find(|d| d.syscall == "init_module")
        .unwrap();
    assert_eq!(init.verdict, Verdict::Kill);
    // No file or network rule: io_uring stays available.
    assert!(!denied.contains(&"io_uring_setup"));
    // Two distinct results, two filters.
    assert_eq!(plan.compile().unwrap().len(), 2);
}

#[test]
fn a_blocking_syscall_default_denies_every_listed_call() {
    let p = policy(
        r#"{"name": "may-setuid", "kind": "syscall", "call": ["setuid"], "action": "allow"},
           {"name": "files", "kind": "file", "path": ["/etc/shadow"], "action": "deny"}"#,
        r#""defaults": {"syscall": "deny"},"#,
    );
    let plan = SeccompPlan::of(&p);
    let denied: Vec<&str> = plan.denials.iter().map(|d| d.syscall).collect();
    assert!(!denied.contains(&"setuid"));
    for s in [
        "ptrace",
        "unshare",
        "clone",
        "clone3",
        "fsopen",
        "io_uring_setup",
    ] {
        assert!(denied.contains(&s), "{s} missing from {denied:?}");
    }
    assert!(plan
        .denials
        .iter()
        .any(|d| d.syscall == "ptrace" && d.origin == Origin::Default));
}

fn tree() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(d.path()).unwrap();
    for p in ["a/secret", "a/public", "a/keep/inner", "b"] {
        std::fs::create_dir_all(root.join(p)).unwrap();
    }
    std::fs::write(root.join("a/file.txt"), "x").unwrap();
    (d, root)
}

#[test]
fn a_denied_prefix_is_everything_beside_it_and_earlier_allows_are_carved_out() {
    let (_d, root) = tree();
    let r = root.display();
    let p = policy(
        &format!(
            r#"{{"name": "keep", "kind": "file", "access": ["read"], "path": ["{r}/a/keep/inner/**"], "action": "allow"}},
               {{"name": "no-a-keep", "kind": "file", "access": ["read"], "path": ["{r}/a/keep/**"], "action": "deny"}},
               {{"name": "no-secret", "kind": "file", "access": ["read"], "path": ["{r}/a/secret/**"], "action": "deny"}},
               {{"name": "mid-glob", "kind": "file", "access": ["read"], "path": ["{r}/b/*.key"], "action": "deny"}}"#
        ),
        "",
    );
    let plan = LandlockPlan::of(&p);
    let read = plan
        .classes
        .iter()
        .find(|c| c.class == Class::Read)
        .unwrap();
    assert!(read.handled());
    assert!(!plan
        .classes
        .iter()
        .find(|c| c.class == Class::Write)
        .unwrap()
        .handled());
    assert!(plan
        .notes
        .iter()
        .any(|n| n.rule == 3 && !n.enforced && n.text.contains("not in the kernel")));
    let g = grants(read, &[]);
    let full: Vec<PathBuf> = g
        .iter()
        .filter(|g| !g.listing)
        .map(|g| g.path.clone())
        .collect();
    let listing: Vec<PathBuf> = g
        .iter()
        .filter(|g| g.listing)
        .map(|g| g.path.clone())
        .collect();
    assert!(full.contains(&root.join("a/public")));
    assert!(full.contains(&root.join("a/file.txt")));
    assert!(
        full.contains(&root.join("b")),
        "the mid-path glob is not restated"
    );
    assert!(
        full.contains(&root.join("a/keep/inner")),
        "the earlier allow wins"
    );
    assert!(!full.iter().any(|p| p.starts_with(root.join("a/secret"))));
    assert!(!full.contains(&root.join("a/keep")) && !full.contains(&root.join("a")));
    assert!(listing.contains(&root.join("a")) && listing.contains(&root.join("a/keep")));
}

#[test]
fn port_allow_lists_and_caps() {
    let p = policy(
        r#"{"name": "only-8080", "kind": "network", "direction": "listen", "port": ["1-8079", "8081-65535"], "action": "deny"},
           {"name": "no-smtp", "kind": "network", "direction": "outbound", "port": [25], "action": "deny"},
           {"name": "udp", "kind": "network", "direction": "outbound", "protocol": "udp", "port": [53], "action": "deny"}"#,
        "",
    );
    let plan = LandlockPlan::of(&p);
    let listen = &plan.ports[0];
    let allowed = listen.allowed.as_ref().unwrap();
    assert_eq!(
        allowed.iter().map(|r| (r.lo, r.hi)).collect::<Vec<_>>(),
        vec![(0, 0), (8080, 8080)]
    );
    assert!(
        plan.ports[1].allowed.is_none(),
        "65,535 grants: left to the hooks"
    );
    assert!(plan
        .notes
        .iter()
        .any(|n| n.rule == 1 && n.text.contains("more than 4096")));
    assert!(plan
        .notes
        .iter()
        .any(|n| n.rule == 2 && n.text.contains("UDP")));
}

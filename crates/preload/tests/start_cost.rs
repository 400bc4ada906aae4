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

/// An exec decides from the table alone. A table read from the compiled
/// file carries no parsed policy; an exec hook that asked for it parsed
/// the whole document in every forked child before its exec (2.4 M
/// instructions, ~1 ms, for the 100-rule benchmark policy) and allocated
/// where a vfork child or a signal handler may not.
#[test]
fn an_exec_from_a_compiled_table_allocates_nothing() {
    let dir = scratch("exec-heap");
    let cache = dir.join("cache");
    let policy_path = dir.join("policy.json");
    let p = policy(
        "enforce",
        &["deny"],
        json!([
            {"name": "no-apt", "kind": "exec", "path": ["/usr/bin/apt*"], "action": "deny"},
            {"name": "no-secret", "kind": "file", "access": ["read"],
             "path": ["/nonexistent/secret/**"], "action": "deny"}
        ]),
    );
    std::fs::write(&policy_path, serde_json::to_vec_pretty(&p).unwrap()).unwrap();
    let program = common::c_program("exec_heap", &[]);
    let run = || {
        let out = Run::new(&dir, Some(json!({})))
            .env("LDGUARD_POLICY", policy_path.to_str().unwrap())
            .env("LDGUARD_CACHE_DIR", cache.to_str().unwrap())
            .cmd(&[&program]);
        assert_eq!(out.code(), 0, "{}{}", out.stdout, out.stderr);
        let held: Vec<u64> = out
            .stdout
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect();
        assert_eq!(held.len(), 2, "{}", out.stdout);
        (held[0], held[1])
    };
    // The first process parses the policy and writes the table.
    let (before, after) = run();
    assert_eq!(before, after, "exec with a parsed policy");
    let tables = std::fs::read_dir(cache.join("tables")).unwrap().count();
    assert_eq!(tables, 1, "the first process wrote a compiled table");
    // The next one starts from it.
    let (before, after) = run();
    assert_eq!(
        before,
        after,
        "an exec from a compiled table allocated {} bytes",
        after as i64 - before as i64
    );
}

/// Every page of heap a process's start-up touches is a page fault (2–11 µs
/// on the benchmark VM), paid on every exec. Started from the compiled table
/// of the 100-rule benchmark policy, the library held 87,792 bytes at `main`
/// when each path glob had a ~970-byte slot for a substring finder that only
/// `**/x/**` globs use.
#[test]
fn start_up_from_a_compiled_table_holds_little_heap() {
    let dir = scratch("heap-at-main");
    let cache = dir.join("cache");
    let bench =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies/bench-100.json");
    let program = common::c_program("heap_at_main", &[]);
    let held = |mode: &str| -> u64 {
        let out = Run::new(&dir, Some(json!({})))
            .env("LDGUARD_POLICY", bench.to_str().unwrap())
            .env("LDGUARD_CACHE_DIR", cache.to_str().unwrap())
            .env("LDGUARD_MODE", mode)
            .cmd(&[&program]);
        assert_eq!(out.code(), 0, "{}{}", out.stdout, out.stderr);
        out.stdout.trim().parse().unwrap()
    };
    held("permissive"); // parses the policy and writes the table
    assert_eq!(std::fs::read_dir(cache.join("tables")).unwrap().count(), 1);
    let enforce = held("enforce");
    assert!(
        enforce <= 64 * 1024,
        "start-up from the compiled table left {enforce} bytes of heap"
    );
}

/// The system calls of one `/bin/true` started as `run` says (strace's
/// list, one call a line).
fn start_up_calls(run: Run, dir: &std::path::Path) -> (String, common::Outcome) {
    let trace = dir.join(format!("trace-{}", std::process::id()));
    let out = run.cmd(&["strace", "-qq", "-o", trace.to_str().unwrap(), "/bin/true"]);
    assert_eq!(out.code(), 0, "{}{}", out.stdout, out.stderr);
    (std::fs::read_to_string(&trace).unwrap(), out)
}

/// In a freshly exec'd process the `readlink` of `/proc/self/exe` is the
/// dearest system call of start-up (~10 µs: procfs makes the new pid's
/// entries; BENCHMARKS.md section 21): a process that loads no policy
/// does not read its program name, and its events still carry it.
#[test]
fn a_process_that_loads_no_policy_does_not_read_its_program_name() {
    let dir = scratch("no-program-name");
    let p = policy(
        "enforce",
        &["deny"],
        json!([{"name": "no-apt", "kind": "exec", "path": ["/usr/bin/apt*"], "action": "deny"}]),
    );
    let disabled = || Run::new(&dir, Some(p.clone())).env("LDGUARD_MODE", "disabled");
    let (calls, _) = start_up_calls(disabled(), &dir);
    assert!(!calls.contains("/proc/self/exe"), "{calls}");
    // A note to report: a status event, which names the program.
    let missing = dir.join("missing.json");
    let (_, out) = start_up_calls(
        disabled().env("LDGUARD_CONFIG", missing.to_str().unwrap()),
        &dir,
    );
    // (strace runs under the library too, and reports the same note.)
    assert!(
        out.events
            .iter()
            .any(|e| e.kind == "status" && e.program.ends_with("/true")),
        "a status note naming the program: {:#?}\n{}",
        out.events,
        out.stderr
    );
}

/// A process whose configured policy loads (here from its compiled table)
/// neither looks for the baked policy nor lets std probe for `statx`.
#[test]
fn a_loaded_policy_costs_no_search_for_another() {
    let dir = scratch("no-baked-search");
    let cache = dir.join("cache");
    let policy_path = dir.join("policy.json");
    let p = policy(
        "enforce",
        &["deny"],
        json!([{"name": "no-apt", "kind": "exec", "path": ["/usr/bin/apt*"], "action": "deny"}]),
    );
    std::fs::write(&policy_path, serde_json::to_vec_pretty(&p).unwrap()).unwrap();
    let run = || {
        Run::new(&dir, Some(json!({})))
            .env("LDGUARD_POLICY", policy_path.to_str().unwrap())
            .env("LDGUARD_CACHE_DIR", cache.to_str().unwrap())
    };
    start_up_calls(run(), &dir); // parses the policy and writes the table
    let (calls, _) = start_up_calls(run(), &dir);
    assert!(calls.contains(".table"), "started from the table: {calls}");
    assert!(calls.contains("/proc/self/exe"), "{calls}");
    assert!(!calls.contains("/etc/ldguard/policy.json"), "{calls}");
    assert!(!calls.contains("statx"), "{calls}");
}

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

/// A forked child that execs runs the library's exec hook, code its parent
/// may never have run: a call from it through a PLT slot the parent never
/// used is a lazy binding in the child, a symbol lookup whose pages (the
/// library's and libc's symbol tables, the loader's code) are all fresh
/// faults there, ~7 per exec (BENCHMARKS.md section 26: `memset`). The
/// parent binds those slots before it forks. Counted with the loader's
/// own report (`LD_DEBUG=bindings`): a child's lines go to its parent's
/// file until its exec.
#[test]
fn a_forked_child_binds_no_symbol_of_the_library_before_its_exec() {
    let dir = scratch("child-bindings");
    let p = policy(
        "enforce",
        &["deny"],
        json!([{"name": "no-apt", "kind": "exec", "path": ["/usr/bin/apt*"], "action": "deny"}]),
    );
    let policy_path = dir.join("policy.json");
    std::fs::write(&policy_path, serde_json::to_vec_pretty(&p).unwrap()).unwrap();
    let cache = dir.join("cache");
    let program = common::c_program("fork_exec", &[]);
    let debug = dir.join("ld-debug");
    let run = |env: &[(&str, &str)]| {
        let mut run = Run::new(&dir, Some(json!({})))
            .env("LDGUARD_POLICY", policy_path.to_str().unwrap())
            .env("LDGUARD_CACHE_DIR", cache.to_str().unwrap());
        for (k, v) in env {
            run = run.env(k, v);
        }
        let out = run.cmd(&[program.to_str().unwrap(), "3"]);
        assert_eq!(out.code(), 0, "{}{}", out.stdout, out.stderr);
    };
    // The first process compiles the policy (binding much on the way)
    // and writes the table; the next starts from the table, as every
    // process of a container after its first.
    run(&[]);
    run(&[
        ("LD_DEBUG", "bindings"),
        ("LD_DEBUG_OUTPUT", debug.to_str().unwrap()),
    ]);
    let lib = common::library();
    let lib_name = lib.file_name().unwrap().to_str().unwrap();
    let mut parents = 0;
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let name = entry.file_name().into_string().unwrap();
        let Some(pid) = name.strip_prefix("ld-debug.") else {
            continue;
        };
        let text = std::fs::read_to_string(entry.path()).unwrap();
        // The parent's file: its own lines, and its children's before exec.
        if !text.contains("fork_exec") {
            continue;
        }
        parents += 1;
        let from_children: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("binding file") && l.trim_start().split(':').next() != Some(pid))
            .collect();
        assert!(
            !from_children.is_empty(),
            "the children's own execve binding is reported: {text}"
        );
        let ours: Vec<&&str> = from_children
            .iter()
            .filter(|l| {
                l.split(" to ")
                    .next()
                    .is_some_and(|from| from.contains(lib_name))
            })
            .collect();
        assert!(ours.is_empty(), "bound in a forked child: {ours:#?}");
    }
    assert_eq!(parents, 1, "one parent's report");
}

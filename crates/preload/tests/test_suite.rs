//! A real program's own test suite passes under the library exactly as
//! without it: CPython's regression tests for the OS, file, path, process
//! and temp-file modules (Debian's libpython3.11-testsuite), with an
//! allow-all permissive policy that logs every decision to a file sink.

mod common;

use common::{policy, scratch, Run};
use serde_json::json;

const DEFAULT: &[&str] = &[
    "test_os",
    "test_shutil",
    "test_tempfile",
    "test_glob",
    "test_pathlib",
    "test_fileio",
    "test_posix",
];
const FULL: &[&str] = &[
    "test_subprocess",
    "test_socket",
    "test_io",
    "test_signal",
    "test_threading",
];

/// The lines of regrtest's report that must match: which tests ran and how
/// they ended (timings are dropped).
fn summary(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|l| {
            l.starts_with("== Tests result")
                || l.starts_with("Tests result")
                || l.contains("tests OK")
                || l.contains("test OK")
                || l.contains("failed")
                || l.contains("skipped")
        })
        .map(str::to_owned)
        .collect()
}

fn python_suite(name: &str, tests: &[&str]) {
    let d = scratch(name);
    let mut argv = vec!["/usr/bin/python3", "-m", "test", "-q"];
    argv.extend(tests);
    let run = |p: Option<serde_json::Value>| {
        Run::new(&d, p)
            .cwd(&d)
            .env("TMPDIR", &d.display().to_string())
            .cmd(&argv)
    };
    let base = run(None);
    assert!(
        base.stdout.contains("Tests result: SUCCESS"),
        "the suite must pass without the library first (is libpython3.11-testsuite installed? scripts/setup does it):\n{}\n{}",
        base.stdout,
        base.stderr
    );
    let allow_all = policy(
        "permissive",
        &["allow", "audit", "deny"],
        json!([{"name": "audit-etc", "kind": "file", "path": ["/etc/**"], "action": "audit"}]),
    );
    let with = run(Some(allow_all));
    assert_eq!(
        summary(&with.stdout),
        summary(&base.stdout),
        "with the library:\n{}\n{}",
        with.stdout,
        with.stderr
    );
    assert_eq!(with.code(), base.code());
    // Events really were on: every decision is logged under this policy.
    assert!(
        with.events.len() > 1000,
        "only {} events",
        with.events.len()
    );
    assert!(with
        .events
        .iter()
        .any(|e| e.rule.as_deref() == Some("audit-etc")));
}

#[test]
fn cpython_os_and_file_tests_pass_unchanged() {
    python_suite("pysuite", DEFAULT);
}

#[test]
#[ignore = "about 2 minutes; run by scripts/test --full"]
fn cpython_process_socket_io_tests_pass_unchanged() {
    python_suite("pysuite-full", FULL);
}

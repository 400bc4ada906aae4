//! `ldguard policy explain --backstop`: what the kernel backstop enforces of
//! each example policy, with the Landlock ABI fixed so the output does not
//! depend on the machine.

use std::path::PathBuf;
use std::process::Command;

fn explain(policy: &str, abi: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../policies")
        .join(policy);
    let out = Command::new(env!("CARGO_BIN_EXE_ldguard"))
        .args(["policy", "explain", "--backstop"])
        .arg(&path)
        .env("LDGUARD_LANDLOCK_ABI", abi)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Asserts that `text` contains every line of `expected`, in order.
fn has_lines(text: &str, expected: &[&str]) {
    let mut rest = text;
    for line in expected {
        match rest.find(line) {
            Some(i) => rest = &rest[i + line.len()..],
            None => panic!("missing (or out of order) `{line}` in:\n{text}"),
        }
    }
}

#[test]
fn kernel_backstop_example_rule_by_rule() {
    let text = explain("kernel-backstop.json", "4");
    has_lines(
        &text,
        &[
            "backstop of policy `kernel-backstop`: seccomp on, landlock best-effort",
            "it only ever tightens",
            "this kernel: Landlock ABI 4",
            "drift: `deny`",
            "#1 `no-secrets` (file deny)",
            "  Landlock: read: denied beneath /etc/shadow",
            "  Landlock: read: denied beneath /root",
            "#2 `system-read-only` (file deny)",
            "  Landlock: write: denied beneath /etc",
            "  Landlock: write: denied beneath /usr",
            "#3 `no-shells` (exec deny)",
            "  Landlock: exec: denied beneath /bin/sh",
            "#4 `no-netcat` (exec deny)",
            "  exec: `/usr/bin/*nc*` not in the kernel: Landlock needs a fixed path, not a glob",
            "#5 `listen-8080-only` (network deny)",
            "  Landlock: TCP bind: denied on port 1-8079, 8081-65535",
            "#6 `no-metadata` (network deny)",
            "  TCP connect: not in the kernel: address ranges (Landlock matches ports only)",
            "#7 `no-namespaces-no-debuggers` (syscall deny)",
            "  seccomp: ptrace fails with EPERM",
            "  seccomp: mount fails with EPERM",
            "  seccomp: fsopen fails with EPERM",
            "  seccomp: move_mount fails with EPERM",
            "  seccomp: unshare fails with EPERM",
            "  seccomp: clone with any of CLONE_NEWNS|",
            "CLONE_NEWUSER|",
            "  seccomp: clone3 fails with ENOSYS",
            "  seccomp: setns fails with EPERM",
            "defaults and implied rules",
            "  seccomp: io_uring_setup fails with EPERM (file or network rules are in force",
            "x32 numbers are matched too",
            "  Landlock: TCP bind: only port(s) 0, 8080",
        ],
    );
    assert!(!text.contains("drops"), "ABI 4 drops nothing:\n{text}");
}

#[test]
fn older_and_absent_landlock_say_what_is_dropped() {
    has_lines(
        &explain("kernel-backstop.json", "1"),
        &[
            "this kernel's Landlock ABI 1 drops",
            "write: linking or renaming across directories (ABI 2) is refused outright",
            "write: truncation (ABI 3) is not restricted",
            "TCP bind/connect (ABI 4) is not restricted",
        ],
    );
    has_lines(
        &explain("kernel-backstop.json", "0"),
        &[
            "this kernel: Landlock ABI 0 (absent)",
            "Landlock is not available: nothing of the above is enforced",
        ],
    );
}

#[test]
fn every_example_policy_is_explained() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if !name.ends_with(".json") {
            continue;
        }
        let text = explain(&name, "4");
        // Every rule gets its own paragraph with at least one verdict line.
        let rules = text.matches("\n#").count();
        assert!(rules > 0, "{name}: no rule explained:\n{text}");
        for para in text.split("\n#").skip(1) {
            assert!(
                para.lines().nth(1).is_some_and(|l| l.starts_with("  ")),
                "{name}: rule without a verdict:\n#{para}"
            );
        }
        seen += 1;
    }
    assert!(seen >= 7, "only {seen} example policies");
}

#[test]
fn examples_without_a_backstop_show_what_it_would_be() {
    has_lines(
        &explain("web-nginx.json", "4"),
        &[
            "policy `web-nginx` asks for no kernel backstop; with `\"backstop\"",
            "#1 `nginx-no-shell` (exec deny)",
            "  exec: not in the kernel: scoped to some programs",
            "#3 `nginx-writable` (file allow)",
            "  Landlock: write: granted beneath /var/log/nginx",
            "#4 `web-root-read-only` (file deny)",
            "  Landlock: write: denied beneath /var/www",
            "#6 `no-engine-socket` (network deny)",
            "  TCP connect: not in the kernel: unix sockets",
            "  Landlock: TCP bind: only port(s) 80, 443",
        ],
    );
    has_lines(
        &explain("cloud-metadata.json", "4"),
        &["TCP connect: not in the kernel: address ranges"],
    );
    has_lines(
        &explain("no-shells-pkg-compilers.json", "4"),
        &["exec: not in the kernel: scoped to some programs"],
    );
    has_lines(
        &explain("bench-100.json", "4"),
        &["  seccomp: ptrace fails with EPERM"],
    );
}

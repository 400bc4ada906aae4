//! `explain` (what `ldguard policy explain --backstop` prints) for the
//! example policies the CLI test does not check line by line, and for a
//! kernel newer than the pinned Landlock ABI.

use ldguard_backstop::explain;
use ldguard_policy::{check_str, Policy};
use std::path::PathBuf;

fn example(name: &str) -> Policy {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../policies")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let (p, d) = check_str(&text, name);
    p.unwrap_or_else(|| panic!("{d}"))
}

/// Asserts that `text` contains every line of `expected`, in order.
#[track_caller]
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
fn python_service_rule_by_rule() {
    let text = explain(&example("python-service.json"), 4);
    has_lines(
        &text,
        &[
            "policy `python-service` asks for no kernel backstop; with",
            "#1 `python-may-run-python` (exec allow)",
            // The only exec deny is program-scoped: exec is not handled,
            // so the allow rule claims no grant (nor a widened glob).
            "  Landlock: exec: nothing for the kernel to do (no rule or default denies exec, so the backstop leaves it unrestricted)",
            "#2 `python-runs-nothing-else` (exec deny)",
            "  exec: not in the kernel: scoped to some programs",
            "#3 `app-writable` (file allow)",
            "  Landlock: write: granted beneath /app/data",
            "  Landlock: write: granted beneath /tmp",
            "#4 `code-read-only` (file deny)",
            "  Landlock: write: denied beneath /app",
            "  write: `/usr/lib/python3*/**` not in the kernel: Landlock needs a fixed path, not a glob",
            "#5 `no-secrets-from-disk` (file deny)",
            "  Landlock: read: denied beneath /var/run/secrets",
            "  read: `**/.aws/credentials` not in the kernel: Landlock needs a fixed path, not a glob",
            "#6 `listen-8000` (network deny)",
            "  Landlock: TCP bind: denied on port 0-7999, 8001-65535",
            "#7 `database` (network allow)",
            "  Landlock: TCP connect: granted on port 5432, 6379 (to any address: Landlock matches ports only)",
            "#8 `no-lateral-movement` (network deny)",
            "  TCP connect: not in the kernel: address ranges",
            "defaults and implied rules",
            "  seccomp: io_uring_setup fails with EPERM",
            "  Landlock: TCP bind: only port(s) 8000",
        ],
    );
    assert!(
        !text.contains("exec: granted") && !text.contains("exec: `/usr/bin/python3*` widened"),
        "{text}"
    );
    assert!(
        !text.contains("Landlock: exec: everything beside"),
        "{text}"
    );
}

#[test]
fn readonly_system_rule_by_rule() {
    let text = explain(&example("readonly-system.json"), 4);
    has_lines(
        &text,
        &[
            "installed in `enforce` mode only (this policy: `permissive`)",
            "#1 `runtime-managed-etc` (file allow)",
            "  Landlock: write: granted beneath /etc/resolv.conf",
            "#2 `etc-read-only` (file deny)",
            "  Landlock: write: denied beneath /etc",
            "#3 `usr-read-only` (file deny)",
            "  Landlock: write: denied beneath /usr",
            "  Landlock: write: denied beneath /lib64",
            "#4 `shadow-reads` (file audit)",
            "  Landlock: read: nothing for the kernel to do (no rule or default denies read, so the backstop leaves it unrestricted)",
            "defaults and implied rules",
            "  Landlock: write: everything beside the denied prefixes is granted at start-up",
        ],
    );
    // Reads are not handled, so no read grant is claimed.
    assert!(!text.contains("read: granted"), "{text}");
    assert!(
        !text.contains("Landlock: read: everything beside"),
        "{text}"
    );
}

#[test]
fn a_newer_kernel_names_what_the_pinned_abi_leaves_unused_and_drops_nothing() {
    let p = example("kernel-backstop.json");
    let text = explain(&p, 7);
    assert!(
        text.contains("this kernel: Landlock ABI 7 (the backstop uses ABI 4's rights, all present here; not used: device ioctl (ABI 5), abstract unix socket and signal scoping (ABI 6), audit logging of denials (ABI 7))\n"),
        "{text}"
    );
    assert!(
        !text.contains("drops"),
        "a newer kernel drops nothing:\n{text}"
    );
    let at_pin = explain(&p, 4);
    assert!(at_pin.contains("this kernel: Landlock ABI 4\n"), "{at_pin}");
    assert!(explain(&p, 5).contains("not used: device ioctl (ABI 5))\n"));
}

#[test]
fn drift_says_where_it_is_checked_and_when_it_is_inert() {
    let text = explain(&example("kernel-backstop.json"), 4);
    assert!(
        text.contains("drift: `deny` for executing or loading a file the image's manifest does not know (checked by the hooks at exec and dlopen, not by the kernel: execs by static programs or raw system calls are not checked; inert in an image without /etc/ldguard/drift.manifest)\n"),
        "{text}"
    );
    assert!(!explain(&example("web-nginx.json"), 4).contains("drift:"));
}

#[test]
fn the_running_kernel_is_described() {
    let abi = ldguard_backstop::landlock_abi();
    let text = explain(&example("kernel-backstop.json"), abi);
    assert!(
        text.contains(&format!("this kernel: Landlock ABI {abi}")),
        "{text}"
    );
}

//! The shipped libraries (scripts/build-lib): the glibc build needs no
//! GLIBC version above 2.17 and no unusual dependency, and both the glibc
//! and the musl build load and enforce in a real process.
//!
//! scripts/test builds them (release) before the tests run; run directly,
//! this test builds them itself (debug, quicker) when they are missing or
//! older than the sources.

mod common;

use common::{policy, scratch};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn newest_source() -> SystemTime {
    let mut newest = SystemTime::UNIX_EPOCH;
    let mut stack = vec![
        root().join("crates/preload/src"),
        root().join("shim"),
        root().join("crates/policy/src"),
        root().join("crates/source/src"),
        root().join("crates/net/src"),
    ];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                newest = newest.max(meta.modified().unwrap());
            }
        }
    }
    newest
}

fn dist(name: &str) -> PathBuf {
    root().join("target/dist").join(name).join("libldguard.so")
}

fn ensure_built() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| build_if_stale(&["x86_64-linux-gnu", "x86_64-linux-musl"], &["--debug"]));
}

/// Runs `scripts/build-lib ARGS` unless every `variant` is newer than the
/// sources.
fn build_if_stale(variants: &[&str], args: &[&str]) {
    let newest = newest_source();
    let fresh = variants.iter().all(|n| {
        dist(n)
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t >= newest)
    });
    if !fresh {
        let status = Command::new(root().join("scripts/build-lib"))
            .args(args)
            .status()
            .unwrap();
        assert!(status.success(), "scripts/build-lib {args:?} failed");
    }
}

/// `tests/c/tiny.c` built by `compiler` (a cross or musl compiler).
fn tiny_with(compiler: &str, name: &str) -> PathBuf {
    let exe = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/tiny.c");
    let status = Command::new(compiler)
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .status()
        .unwrap_or_else(|e| panic!("{compiler}: {e} (scripts/setup installs it)"));
    assert!(status.success(), "{compiler} failed");
    exe
}

#[test]
fn the_https_client_is_a_library_of_its_own() {
    ensure_built();
    let has = |bytes: &[u8], what: &[u8]| bytes.windows(what.len()).any(|w| w == what);
    for variant in ["x86_64-linux-gnu", "x86_64-linux-musl"] {
        let lib = std::fs::read(dist(variant)).unwrap();
        let net_path = dist(variant).with_file_name("libldguard_net.so");
        let net = std::fs::read(&net_path).unwrap();
        // rustls's own source paths (panic locations) are in any build
        // that links it.
        assert!(
            !has(&lib, b"rustls"),
            "{variant}/libldguard.so holds TLS code"
        );
        assert!(
            has(&net, b"rustls"),
            "{variant}/libldguard_net.so lacks rustls"
        );
        let out = Command::new("objdump")
            .arg("-T")
            .arg(&net_path)
            .output()
            .unwrap();
        let exported = String::from_utf8_lossy(&out.stdout);
        assert!(
            exported
                .lines()
                .any(|l| l.contains(".text") && l.ends_with(" ldguard_net_exchange_v1")),
            "{exported}"
        );
    }
    glibc_at_most_2_17(&dist("x86_64-linux-gnu").with_file_name("libldguard_net.so"));
}

#[test]
fn glibc_build_needs_at_most_glibc_2_17() {
    ensure_built();
    let lib = dist("x86_64-linux-gnu");
    glibc_at_most_2_17(&lib);
}

fn glibc_at_most_2_17(lib: &Path) {
    let out = Command::new("objdump").arg("-T").arg(lib).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut versions: Vec<Vec<u32>> = text
        .split("GLIBC_")
        .skip(1)
        .filter_map(|s| {
            let v: String = s
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let parts: Vec<u32> = v.split('.').filter_map(|p| p.parse().ok()).collect();
            (!parts.is_empty()).then_some(parts)
        })
        .collect();
    versions.sort();
    let max = versions
        .last()
        .expect("the library references GLIBC symbols");
    assert!(
        *max <= vec![2, 17],
        "{} needs GLIBC_{:?}",
        lib.display(),
        max
    );

    for n in &needed(lib) {
        assert!(
            [
                "libc.so.6",
                "ld-linux-x86-64.so.2",
                "ld-linux-aarch64.so.1",
                "libpthread.so.0",
                "libdl.so.2",
                "libm.so.6",
                "librt.so.1"
            ]
            .contains(&n.as_str()),
            "unexpected dependency {n}: every image must have it or every program fails to start"
        );
    }
}

/// The libraries `lib` names as NEEDED (its dynamic section).
fn needed(lib: &Path) -> Vec<String> {
    let out = Command::new("objdump").arg("-p").arg(lib).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("NEEDED").map(|n| n.trim().to_owned()))
        .collect()
}

fn enforce_with(lib: &Path, program: &Path, name: &str) {
    enforce_running(lib, name, || Command::new(program));
}

/// Runs `command() FILE` under `lib` for an allowed and a denied file: the
/// allowed one opens, the denied one fails with EACCES and is reported once.
fn enforce_running(lib: &Path, name: &str, command: impl Fn() -> Command) {
    let d = scratch(name);
    std::fs::write(d.join("secret"), "x").unwrap();
    std::fs::write(d.join("ok"), "x").unwrap();
    let p = d.join("policy.json");
    let rules = json!([{"name": "secret", "kind": "file", "path": [d.join("secret").display().to_string()], "action": "deny"}]);
    std::fs::write(
        &p,
        serde_json::to_vec(&policy("enforce", &["deny"], rules)).unwrap(),
    )
    .unwrap();
    let events = d.join("events.jsonl");
    for (file, want) in [("ok", "ok\n"), ("secret", "err 13\n")] {
        let out = command()
            .arg(d.join(file))
            .env("LD_PRELOAD", lib)
            .env("LDGUARD_POLICY", &p)
            .env("LDGUARD_EVENTS", format!("file:{}", events.display()))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            want,
            "{}: {}",
            lib.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let events = common::read_events(&events);
    assert_eq!(
        events
            .iter()
            .filter(|e| e.rule.as_deref() == Some("secret"))
            .count(),
        1,
        "{events:#?}"
    );
}

#[test]
fn glibc_build_loads_and_enforces() {
    ensure_built();
    enforce_with(
        &dist("x86_64-linux-gnu"),
        &common::c_program("tiny", &[]),
        "dist-gnu",
    );
}

#[test]
fn glibc_2_34_build_needs_neither_libpthread_nor_libdl_and_enforces() {
    ensure_built();
    let lib = dist("x86_64-linux-gnu").with_file_name("glibc-2.34/libldguard.so");
    assert!(lib.is_file(), "scripts/build-lib builds {}", lib.display());
    let needed = needed(&lib);
    assert_eq!(
        needed,
        ["libc.so.6", "ld-linux-x86-64.so.2"],
        "{}",
        lib.display()
    );
    // This machine's glibc is newer than 2.34.
    enforce_with(&lib, &common::c_program("tiny", &[]), "dist-gnu-2.34");
}

#[test]
fn musl_build_loads_and_enforces_under_musl() {
    ensure_built();
    let lib = dist("x86_64-linux-musl");
    let needed = needed(&lib);
    assert_eq!(needed, ["libc.so"], "a musl process provides only libc.so");
    let exe = tiny_with("musl-gcc", "tiny-musl");
    enforce_with(&lib, &exe, "dist-musl");
}

/// The aarch64 build (`scripts/build-lib --all`) in a real aarch64 process:
/// a program built with Debian's cross compiler, run by `qemu-aarch64-static`
/// against Debian's aarch64 glibc (`libc6-arm64-cross`).
#[test]
fn aarch64_build_loads_and_enforces_under_qemu() {
    build_if_stale(&["aarch64-linux-gnu"], &["--debug", "--all"]);
    let lib = dist("aarch64-linux-gnu");
    glibc_at_most_2_17(&lib);
    let exe = tiny_with("aarch64-linux-gnu-gcc", "tiny-aarch64");
    let elf = std::fs::read(&exe).unwrap();
    // e_machine 183: EM_AARCH64, so the test cannot pass on a host build.
    assert_eq!(u16::from_le_bytes([elf[18], elf[19]]), 183);
    enforce_running(&lib, "dist-aarch64", || {
        let mut qemu = Command::new("qemu-aarch64-static");
        // Debian's aarch64 loader and libc live under this prefix.
        qemu.args(["-L", "/usr/aarch64-linux-gnu"]).arg(&exe);
        qemu
    });
}

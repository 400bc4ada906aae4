//! The kernel backstop with the real thing: a static busybox, `gcc -static`
//! programs, a raw `syscall` instruction, io_uring, clone(CLONE_NEWUSER), the
//! x32 ABI, a program's own LD_PRELOAD library shadowing the hooks and a
//! second libc loaded with `dlmopen`. Each
//! case runs twice, with and without `backstop`, under the same rules: what
//! the hooks cannot see gets through without it and is denied with it.

mod common;

use common::{library, scratch, Outcome, Run};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Compiles a test C file into `out` under the target directory (atomic
/// rename: parallel test processes may build it at the same time).
fn build(src: &str, out: &str, args: &[&str]) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/c")
        .join(src);
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(out);
    let tmp = out.with_extension(format!("tmp{}", std::process::id()));
    let ok = Command::new("cc")
        .args(["-Wall", "-Wextra", "-Werror", "-O1", "-o"])
        .arg(&tmp)
        .arg(&src)
        .args(args)
        .status()
        .unwrap()
        .success();
    assert!(ok, "compiling {} failed", src.display());
    std::fs::rename(&tmp, &out).unwrap();
    out
}

/// `gcc -static`: no preloaded library ever runs in it.
fn static_probe() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        build(
            "backstop_probe.c",
            "backstop-probe-static",
            &["-static", "-luring"],
        )
    })
    .clone()
}

/// The same probe, dynamically linked (the hooks run in it).
fn dynamic_probe() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| build("backstop_probe.c", "backstop-probe", &["-luring"]))
        .clone()
}

/// A program's own LD_PRELOAD library that shadows the hooks.
fn shadow_library() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| build("shadow.c", "libshadow.so", &["-shared", "-fPIC"]))
        .clone()
}

/// Reads a file through a second libc in a new link namespace.
fn fresh_libc_probe() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| build("fresh_libc.c", "fresh-libc", &["-ldl"]))
        .clone()
}

/// A scratch directory with a secret file and a program nobody may run.
struct Scene {
    dir: PathBuf,
    secret: PathBuf,
    denied: PathBuf,
}

fn scene(name: &str) -> Scene {
    let dir = scratch(name);
    let secret = dir.join("secret.txt");
    std::fs::write(&secret, "the secret\n").unwrap();
    let denied = dir.join("denied");
    std::fs::copy("/usr/bin/true", &denied).unwrap();
    Scene {
        dir,
        secret,
        denied,
    }
}

fn policy(s: &Scene, backstop: bool) -> Value {
    let mut p = json!({
        "apiVersion": "ldguard.policy/v1",
        "name": "backstop-test",
        "mode": "enforce",
        "rules": [
            {"name": "no-secret", "kind": "file", "access": ["read"],
             "path": [s.secret.to_str().unwrap()], "action": "deny"},
            {"name": "no-denied-program", "kind": "exec",
             "path": [s.denied.to_str().unwrap()], "action": "deny"},
            {"name": "no-namespaces", "kind": "syscall", "call": ["unshare", "setns"],
             "action": "deny"}
        ]
    });
    if backstop {
        p["backstop"] = json!({"seccomp": true, "landlock": "required"});
    }
    p
}

/// Runs `script` with `/bin/sh` as the instrumented first process of the
/// tree (the static programs it starts load no library of their own).
fn sh(s: &Scene, backstop: bool, script: &str) -> Outcome {
    Run::new(&s.dir, Some(policy(s, backstop))).cmd(&["/bin/sh", "-c", script])
}

fn status_messages(o: &Outcome) -> Vec<String> {
    o.events
        .iter()
        .filter(|e| e.kind == "status")
        .map(|e| e.message.clone())
        .collect()
}

#[track_caller]
fn assert_denied(o: &Outcome, what: &str) {
    assert!(
        o.stdout.contains("denied EACCES") || o.stderr.contains("Permission denied"),
        "{what}: not denied\nstdout: {}\nstderr: {}",
        o.stdout,
        o.stderr
    );
}

#[test]
fn static_busybox_meets_the_file_and_exec_rules() {
    let s = scene("busybox");
    let read = format!("busybox cat {}", s.secret.display());
    let exec = format!("busybox sh -c {}; echo status=$?", s.denied.display());

    let without = sh(&s, false, &read);
    assert_eq!(without.stdout, "the secret\n", "{}", without.stderr);
    let with = sh(&s, true, &read);
    assert_denied(&with, "busybox cat");
    assert!(!with.stdout.contains("the secret"));
    let status = status_messages(&with);
    assert!(
        status.iter().any(
            |m| m.contains("kernel backstop of policy `backstop-test` installed")
                && m.contains("Landlock")
                && m.contains("only ever tightens")
        ),
        "{status:#?}"
    );

    assert!(sh(&s, false, &exec).stdout.contains("status=0"));
    let with = sh(&s, true, &exec);
    assert!(
        with.stdout.contains("status=126"),
        "{}{}",
        with.stdout,
        with.stderr
    );
    assert!(with.stderr.contains("Permission denied"), "{}", with.stderr);
}

#[test]
fn gcc_static_program_meets_the_file_and_exec_rules() {
    let s = scene("gcc-static");
    let probe = static_probe();
    let read = format!("{} read {}", probe.display(), s.secret.display());
    let exec = format!("{} exec {}", probe.display(), s.denied.display());
    assert_eq!(sh(&s, false, &read).stdout, "ok\n");
    assert_eq!(sh(&s, true, &read).stdout, "denied EACCES\n");
    assert_eq!(sh(&s, false, &exec).stdout, "");
    assert_eq!(sh(&s, true, &exec).stdout, "denied EACCES\n");
    // Everything else still works under the backstop.
    let other = format!("{} read /etc/hostname", probe.display());
    assert_eq!(sh(&s, true, &other).stdout, "ok\n");
}

#[test]
fn raw_syscall_instruction_is_denied_by_the_kernel() {
    let s = scene("raw-syscall");
    let argv = |s: &Scene| {
        vec![
            dynamic_probe().into_os_string(),
            "raw-read".into(),
            s.secret.clone().into_os_string(),
        ]
    };
    // The probe is itself the first instrumented process of its tree.
    let without = Run::new(&s.dir, Some(policy(&s, false))).cmd(&argv(&s));
    assert_eq!(without.stdout, "ok\n", "the hooks cannot see a raw syscall");
    let with = Run::new(&s.dir, Some(policy(&s, true))).cmd(&argv(&s));
    assert_eq!(with.stdout, "denied EACCES\n", "{}", with.stderr);
}

#[test]
fn io_uring_is_refused_while_file_rules_are_in_force() {
    let s = scene("io-uring");
    let argv = |s: &Scene| {
        vec![
            dynamic_probe().into_os_string(),
            "uring".into(),
            s.secret.clone().into_os_string(),
        ]
    };
    let without = Run::new(&s.dir, Some(policy(&s, false))).cmd(&argv(&s));
    assert_eq!(
        without.stdout, "ok\n",
        "io_uring's openat bypasses the hooks"
    );
    let with = Run::new(&s.dir, Some(policy(&s, true))).cmd(&argv(&s));
    assert_eq!(with.stdout, "denied EPERM\n", "{}", with.stderr);
}

/// libuv (Node.js) makes its rings through libc's `syscall()`, which the
/// library interposes: without any backstop, the hooks refuse the ring
/// itself while a rule could block what its operations would do.
#[test]
fn a_ring_made_through_libc_syscall_is_refused_by_the_hooks() {
    let s = scene("io-uring-libc");
    let argv = [
        dynamic_probe().into_os_string(),
        "uring-libc".into(),
        s.secret.clone().into_os_string(),
    ];
    let with_mode = |mode: &str| {
        let mut p = policy(&s, false);
        p["mode"] = json!(mode);
        Run::new(&s.dir, Some(p)).cmd(&argv)
    };
    let refusals = |o: &Outcome| -> Vec<(String, bool)> {
        o.events
            .iter()
            .filter(|e| e.kind == "status" && e.message.contains("io_uring"))
            .map(|e| (e.action.clone(), e.enforced))
            .collect()
    };
    let enforced = with_mode("enforce");
    assert_eq!(enforced.stdout, "denied EPERM\n", "{}", enforced.stderr);
    assert_eq!(refusals(&enforced), [("deny".to_string(), true)]);
    let permissive = with_mode("permissive");
    assert_eq!(permissive.stdout, "ok\n", "{}", permissive.stderr);
    assert_eq!(refusals(&permissive), [("allow".to_string(), false)]);
    // Nothing a ring could get past: the program keeps its ring.
    let mut allow_all = policy(&s, false);
    allow_all["rules"] = json!([]);
    let free = Run::new(&s.dir, Some(allow_all)).cmd(&argv);
    assert_eq!(free.stdout, "ok\n", "{}", free.stderr);
    assert_eq!(refusals(&free), []);
}

#[test]
fn clone_newuser_and_x32_numbers_meet_the_unshare_rule() {
    let s = scene("clone");
    let run = |backstop: bool, mode: &str| {
        Run::new(&s.dir, Some(policy(&s, backstop)))
            .cmd(&[dynamic_probe().into_os_string(), mode.into()])
            .stdout
    };
    assert_eq!(run(false, "clone-newuser"), "ok\n");
    assert_eq!(run(true, "clone-newuser"), "denied EPERM\n");
    // Without the filter the kernel refuses x32 itself (ENOSYS here, or
    // runs it where x32 is enabled); with it, the filter matches the x32
    // number first and returns the rule's errno.
    assert_ne!(run(false, "x32-unshare"), "denied EPERM\n");
    assert_eq!(run(true, "x32-unshare"), "denied EPERM\n");
}

#[test]
fn a_shadowing_ld_preload_library_meets_the_kernel() {
    let s = scene("shadow");
    let preload = format!("{}:{}", shadow_library().display(), library().display());
    let cat = |backstop: bool| {
        Run::new(&s.dir, Some(policy(&s, backstop)))
            .env("LD_PRELOAD", &preload)
            .cmd(&["/usr/bin/cat".into(), s.secret.clone().into_os_string()])
    };
    assert_eq!(
        cat(false).stdout,
        "the secret\n",
        "the shadow library bypasses the hooks"
    );
    let with = cat(true);
    assert_eq!(with.stdout, "");
    assert!(with.stderr.contains("Permission denied"), "{}", with.stderr);
}

#[test]
fn a_second_libc_loaded_with_dlmopen_meets_the_kernel() {
    let s = scene("fresh-libc");
    let read = |backstop: bool| {
        Run::new(&s.dir, Some(policy(&s, backstop)))
            .cmd(&[
                fresh_libc_probe().into_os_string(),
                s.secret.clone().into_os_string(),
            ])
            .stdout
    };
    assert_eq!(
        read(false),
        "ok\n",
        "a libc in a new link namespace has no hooks"
    );
    assert_eq!(read(true), "denied EACCES\n");
}

#[test]
fn permissive_mode_installs_nothing_and_off_changes_nothing() {
    let s = scene("permissive");
    let mut p = policy(&s, true);
    p["mode"] = json!("permissive");
    let o = Run::new(&s.dir, Some(p)).cmd(&[
        "/bin/sh",
        "-c",
        &format!(
            "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; busybox cat {}",
            s.secret.display()
        ),
    ]);
    assert!(o.stdout.contains("Seccomp:\t0"), "{}", o.stdout);
    assert!(o.stdout.contains("NoNewPrivs:\t0"), "{}", o.stdout);
    assert!(o.stdout.contains("the secret"), "{}", o.stdout);
    assert!(status_messages(&o).iter().all(|m| !m.contains("backstop")));

    // Off: the hooks alone decide, exactly as before.
    let off = sh(
        &s,
        false,
        &format!(
            "grep -E '^Seccomp:' /proc/self/status; cat {}",
            s.secret.display()
        ),
    );
    assert!(off.stdout.contains("Seccomp:\t0"), "{}", off.stdout);
    assert!(
        off.stderr.contains("Permission denied"),
        "the hook denies cat: {}",
        off.stderr
    );
    assert_eq!(off.decisions().len(), 1);
}

#[test]
fn installed_once_per_process_tree() {
    let s = scene("once");
    let o = sh(
        &s,
        true,
        "grep Seccomp_filters /proc/self/status; sh -c 'grep Seccomp_filters /proc/self/status'",
    );
    let counts: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(counts.len(), 2, "{}", o.stdout);
    assert_eq!(
        counts[0], counts[1],
        "the child inherits, it does not stack another filter"
    );
    let installs = status_messages(&o)
        .iter()
        .filter(|m| m.contains("installed"))
        .count();
    assert_eq!(installs, 1, "{:#?}", status_messages(&o));
}

//! The library decides on the object the kernel uses, not on a spelling of
//! its path: each test is a way through that worked while it decided on
//! spellings (a deleted or too-deep cwd, a symlink swapped between the check
//! and the open, a full descriptor table, `..` after a symlink in an exec
//! path, renaming an ancestor of a denied path). Each is denied with
//! exactly one event naming the rule, the program and the target.

mod common;

use common::{c_program, policy, scratch, stdout_without_and_with, Outcome, Run};
use ldguard_events::Event;
use serde_json::json;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn escape() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| c_program("escape", &["-ldl", "-lpthread"]))
        .clone()
}

/// `secret/` is denied, `top/ro/` is read-only, `box/secret` is denied,
/// `/usr/bin/id` may not run; `pub/` is free.
struct Fx {
    d: PathBuf,
}

impl Fx {
    fn new(name: &str) -> Fx {
        let d = scratch(name);
        for sub in ["secret", "top/ro", "box", "pub"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        std::fs::write(d.join("secret/f"), "secret\n").unwrap();
        std::fs::write(d.join("top/ro/file"), "original\n").unwrap();
        std::fs::write(d.join("box/secret"), "secret\n").unwrap();
        std::fs::write(d.join("pub/ok"), "public\n").unwrap();
        symlink("/usr/bin/id", d.join("pub/myid")).unwrap();
        symlink(d.join("top/ro/file"), d.join("pub/rolink")).unwrap();
        symlink("/usr/lib", d.join("lnk")).unwrap();
        Fx { d }
    }

    fn p(&self, s: &str) -> String {
        self.d.join(s).display().to_string()
    }

    fn run(&self, argv: &[&str]) -> Outcome {
        let rules = json!([
            {"name": "secret", "kind": "file", "path": [self.p("secret/**")], "action": "deny"},
            {"name": "ro", "kind": "file", "access": ["write"], "path": [self.p("top/ro/**")], "action": "deny"},
            {"name": "box", "kind": "file", "path": [self.p("box/secret")], "action": "deny"},
            {"name": "no-id", "kind": "exec", "path": ["/usr/bin/id"], "action": "deny"},
        ]);
        Run::new(&self.d, Some(policy("enforce", &["deny"], rules)))
            .cwd(&self.d)
            .env("LC_ALL", "C")
            .env("PATH", "/usr/bin:/bin")
            .cmd(argv)
    }

    fn sh(&self, script: &str) -> Outcome {
        self.run(&["/bin/sh", "-c", script])
    }

    fn escape(&self, args: &[&str]) -> Outcome {
        let exe = escape().display().to_string();
        let mut argv = vec![exe.as_str()];
        argv.extend_from_slice(args);
        self.run(&argv)
    }
}

/// Exactly one enforced deny by `rule` from `program` whose target (as
/// given or resolved) ends with `target`.
fn one_deny(out: &Outcome, rule: &str, program: &str, target: &str) {
    check_deny(out.one_event(), rule, program, target);
}

fn check_deny(e: &Event, rule: &str, program: &str, target: &str) {
    assert_eq!(e.action, "deny", "{e:#?}");
    assert!(e.enforced, "{e:#?}");
    assert_eq!(e.rule.as_deref(), Some(rule), "{e:#?}");
    assert_eq!(e.program, program, "{e:#?}");
    let names = [e.target.as_deref(), e.resolved.as_deref()];
    assert!(
        names.iter().flatten().any(|t| t.ends_with(target)),
        "target {target} not in {e:#?}"
    );
}

#[test]
fn deleted_cwd_read() {
    let f = Fx::new("ko-deleted-read");
    let out = f.sh("mkdir -p x/y && cd x/y && rmdir ../y && cat ../../secret/f");
    assert!(!out.stdout.contains("secret"), "{}", out.stdout);
    assert!(out.stderr.contains("Permission denied"), "{}", out.stderr);
    one_deny(&out, "secret", "/usr/bin/cat", "/secret/f");
}

#[test]
fn deleted_cwd_write() {
    let f = Fx::new("ko-deleted-write");
    let out = f.sh("mkdir -p x/y && cd x/y && rmdir ../y && echo x > ../../top/ro/file");
    assert!(out.stderr.contains("Permission denied"), "{}", out.stderr);
    assert_eq!(
        std::fs::read_to_string(f.d.join("top/ro/file")).unwrap(),
        "original\n"
    );
    one_deny(&out, "ro", "/usr/bin/dash", "/top/ro/file");
}

/// Removes a scratch directory when dropped, even if the test failed:
/// a chain deeper than PATH_MAX left in target/ breaks tools that walk it
/// by path (`git worktree remove`: "File name too long").
struct RemovedOnDrop(PathBuf);

impl Drop for RemovedOnDrop {
    fn drop(&mut self) {
        // std's remove_dir_all descends by directory descriptor, so depth is no limit.
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            eprintln!("cannot remove {}: {e}", self.0.display());
        }
    }
}

#[test]
fn cwd_deeper_than_path_max() {
    let f = Fx::new("ko-deep");
    let scratch = RemovedOnDrop(f.d.clone());
    let out = f.escape(&["deep", &f.p("secret/f")]);
    assert_eq!(out.stdout.trim(), "err 13", "{}", out.stderr);
    one_deny(&out, "secret", &escape().display().to_string(), "/secret/f");
    drop(scratch);
    assert!(!f.d.exists(), "the deep tree is removed");
}

#[test]
fn symlink_swapped_while_opening() {
    let f = Fx::new("ko-race");
    let out = f.escape(&[
        "race",
        &f.p("pub"),
        &f.p("pub/ok"),
        &f.p("secret/f"),
        "100000",
    ]);
    let words: Vec<&str> = out.stdout.split_whitespace().collect();
    assert_eq!(words.len(), 4, "{} {}", out.stdout, out.stderr);
    assert_eq!(words[1], "0", "the secret was read: {}", out.stdout);
    let opened: u64 = words[3].parse().unwrap();
    assert!(opened > 0, "the public side must stay readable");
    // Every deny names the rule and the secret (the count varies with
    // scheduling; reporting each attempt is the point).
    let denies = out.decisions();
    assert!(!denies.is_empty(), "the swaps reached the secret side");
    for e in denies {
        assert_eq!(e.rule.as_deref(), Some("secret"), "{e:#?}");
        assert!(e
            .resolved
            .as_deref()
            .or(e.target.as_deref())
            .unwrap()
            .ends_with("/secret/f"));
    }
}

/// With no descriptor free the event file cannot be opened either: the
/// library says so and writes its events to stderr instead.
fn one_deny_on_stderr(out: &Outcome, rule: &str, program: &str, target: &str) {
    assert!(out.decisions().is_empty(), "{:#?}", out.events);
    let events = out.stderr_decisions();
    assert_eq!(events.len(), 1, "{}", out.stderr);
    check_deny(&events[0], rule, program, target);
}

#[test]
fn full_descriptor_table_exec_through_a_symlink() {
    let f = Fx::new("ko-emfile-exec");
    let out = f.escape(&["full-execv", &f.p("pub/myid")]);
    assert_eq!(out.stdout.trim(), "err 13", "{}", out.stderr);
    one_deny_on_stderr(
        &out,
        "no-id",
        &escape().display().to_string(),
        "/usr/bin/id",
    );
}

#[test]
fn full_descriptor_table_chmod_and_truncate_through_a_symlink() {
    let f = Fx::new("ko-emfile-write");
    for call in ["full-chmod", "full-truncate"] {
        let out = f.escape(&[call, &f.p("pub/rolink")]);
        assert_eq!(out.stdout.trim(), "err 13", "{call}: {}", out.stderr);
        one_deny_on_stderr(&out, "ro", &escape().display().to_string(), "/top/ro/file");
    }
    assert_eq!(
        std::fs::read_to_string(f.d.join("top/ro/file")).unwrap(),
        "original\n"
    );
}

#[test]
fn exec_dotdot_after_a_symlink() {
    // lnk -> /usr/lib, so lnk/../bin/id is /usr/bin/id to the kernel, and
    // d/bin/id to a lexical collapse.
    let f = Fx::new("ko-exec-dotdot");
    let out = f.sh(&f.p("lnk/../bin/id"));
    assert!(!out.stdout.contains("uid="), "{}", out.stdout);
    assert!(out.stderr.contains("Permission denied"), "{}", out.stderr);
    one_deny(&out, "no-id", "/usr/bin/dash", "/usr/bin/id");
}

#[test]
fn renaming_an_ancestor_of_a_denied_file() {
    let f = Fx::new("ko-rename-read");
    let out = f.sh("mv box box2 && cat box2/secret");
    assert!(!out.stdout.contains("secret"), "{}", out.stdout);
    assert!(f.d.join("box/secret").exists());
    one_deny(&out, "box", "/usr/bin/mv", "/box");
}

#[test]
fn renaming_an_ancestor_of_a_read_only_tree() {
    let f = Fx::new("ko-rename-write");
    let out = f.sh("mv top top2 && echo x > top2/ro/file && mv top2 top");
    assert_eq!(
        std::fs::read_to_string(f.d.join("top/ro/file")).unwrap(),
        "original\n"
    );
    one_deny(&out, "ro", "/usr/bin/mv", "/top");
}

#[test]
fn the_fixture_allows_the_free_side() {
    let f = Fx::new("ko-allowed");
    let out = f.sh("mkdir -p x/y && cd x/y && rmdir ../y && cat ../../pub/ok && mv ../../pub ../../pub2 && /usr/bin/true");
    assert_eq!(out.stdout, "public\n", "{}", out.stderr);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(out.decisions().is_empty(), "{:#?}", out.events);
    assert!(Path::new(&f.p("pub2/ok")).exists());
}

#[test]
fn open_semantics_match_libc() {
    // Every open goes through the checked route (a path rule makes links
    // matter), and each corner case must come out as without the library.
    let d = scratch("ko-opensem");
    let prog = c_program("opensem", &[]);
    let rules = json!([
        {"name": "elsewhere", "kind": "file", "path": ["/nonexistent-ldguard/**"], "action": "deny"}
    ]);
    let (base, with) = stdout_without_and_with(&d, &prog, policy("enforce", &["deny"], rules));
    assert!(base.lines().count() > 50, "{base}");
    for (b, w) in base.lines().zip(with.lines()) {
        assert_eq!(w, b, "with the library vs without");
    }
    assert_eq!(base.lines().count(), with.lines().count());
}

#[test]
fn path_call_semantics_match_libc() {
    // The path calls the library makes itself on a held directory or
    // object (every one takes that route: a path rule makes links matter),
    // in their corner cases: each result and what it changed must come out
    // as without the library (`tests/c/pathsem.c`).
    let d = scratch("ko-pathsem");
    let prog = c_program("pathsem", &[]);
    let rules = json!([
        {"name": "elsewhere", "kind": "file", "path": ["/nonexistent-ldguard/**"], "action": "deny"}
    ]);
    let (base, with) = stdout_without_and_with(&d, &prog, policy("enforce", &["deny"], rules));
    assert!(base.lines().count() > 100, "{base}");
    for (b, w) in base.lines().zip(with.lines()) {
        assert_eq!(w, b, "with the library vs without");
    }
    assert_eq!(base.lines().count(), with.lines().count());
}

#[test]
fn open_stays_a_cancellation_point() {
    // The library performs the checked open itself (openat2); cancellation
    // must act where libc's open acts: a request made by the process
    // itself before any thread, one pending when a thread opens, one made
    // while a thread is blocked in open (a FIFO without a writer).
    let d = scratch("ko-cancel");
    let prog = c_program("cancel", &["-lpthread"]);
    let rules = json!([
        {"name": "elsewhere", "kind": "file", "path": ["/nonexistent-ldguard/**"], "action": "deny"}
    ]);
    let (base, with) = stdout_without_and_with(&d, &prog, policy("enforce", &["deny"], rules));
    assert_eq!(
        base,
        "self: cancelled at open\npending: cancelled at open\npending: joined, cancelled\n\
         blocked: cancelled at open\nblocked: joined, cancelled\n"
    );
    assert_eq!(with, base, "with the library vs without");
}

#[test]
fn process_memory_by_dirfd_and_task() {
    // A process's memory file reached through a dirfd on /proc/self and as
    // /proc/PID/task/TID/mem is decided as `ptrace` (the scenario suite
    // has /proc/self/mem, /proc/thread-self/mem, a symlink, syscall()).
    let d = scratch("ko-procmem");
    let py = "import os, threading\n\
              d = os.open('/proc/self', os.O_RDONLY)\n\
              for what, call in (('dirfd', lambda: os.open('mem', os.O_RDONLY, dir_fd=d)),\n\
                                 ('task', lambda: os.open('/proc/%d/task/%d/mem' % (os.getpid(), threading.get_native_id()), os.O_RDWR)),\n\
                                 ('comm', lambda: os.open('comm', os.O_RDONLY, dir_fd=d))):\n\
              \x20   try:\n\
              \x20       call(); print(what, 'opened')\n\
              \x20   except OSError as e:\n\
              \x20       print(what, e.strerror)\n";
    let rules = json!([
        {"name": "no-ptrace", "kind": "syscall", "call": ["ptrace"], "action": "deny"}
    ]);
    let base = Run::new(&d, None).cmd(&["python3", "-c", py]);
    assert_eq!(
        base.stdout, "dirfd opened\ntask opened\ncomm opened\n",
        "{}",
        base.stderr
    );
    let out = Run::new(&d, Some(policy("enforce", &["deny"], rules))).cmd(&["python3", "-c", py]);
    assert_eq!(
        out.stdout, "dirfd Operation not permitted\ntask Operation not permitted\ncomm opened\n",
        "{}",
        out.stderr
    );
    let events = out.decisions();
    assert_eq!(events.len(), 2, "{events:#?}");
    for (e, call) in events.iter().zip(["openat64", "open64"]) {
        assert_eq!(e.rule.as_deref(), Some("no-ptrace"), "{e:#?}");
        assert_eq!(e.call, call, "{e:#?}");
        assert!(e.enforced, "{e:#?}");
        assert!(e.program.contains("python3"), "{e:#?}");
        let t = e.target.as_deref().unwrap_or("");
        assert!(t.starts_with("/proc/") && t.ends_with("/mem"), "{e:#?}");
    }
}

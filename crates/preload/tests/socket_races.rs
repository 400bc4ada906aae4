//! A unix socket reached through a symlink swapped while the call runs, or
//! when the library has no descriptor left to resolve the path with. A
//! policy that denies connecting to a socket (a container runtime's
//! `docker.sock` is the usual one) must hold however the path is spelled:
//! the library must connect to (or send to) the socket file it decided on.
//! (`path_races.rs` is the same for file calls.)

mod common;

use common::{c_program, policy, scratch, Outcome, Run};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn unix_escape() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| c_program("unix_escape", &["-ldl", "-lpthread"]))
        .clone()
}

/// Attempts per race: the library that resolves the path and then lets the
/// kernel resolve it again loses hundreds of these on this VM.
const TRIES: &str = "10000";

/// `pub/` and `denied/` each get a server at `s`; connecting or sending to
/// `denied/s` is denied.
fn run(dir: &Path, argv: &[&str]) -> Outcome {
    let denied = dir.join("denied/s").display().to_string();
    let rules = json!([
        {"name": "no-runtime-socket", "kind": "network", "direction": "outbound",
         "unix": [denied], "action": "deny"},
    ]);
    Run::new(dir, Some(policy("enforce", &["deny"], rules)))
        .cwd(dir)
        .cmd(argv)
}

fn fixture(name: &str) -> PathBuf {
    let d = scratch(name);
    for side in ["pub", "denied"] {
        std::fs::create_dir_all(d.join(side)).unwrap();
    }
    d
}

/// Every event is a deny by the socket rule of `unix_escape` on `denied/s`.
fn assert_denies(out: &Outcome, call: &str) {
    let denies = out.decisions();
    assert!(!denies.is_empty(), "{call}: no deny reported: {}", out.stderr);
    for e in denies {
        assert_eq!(e.action, "deny", "{e:#?}");
        assert!(e.enforced, "{e:#?}");
        assert_eq!(e.rule.as_deref(), Some("no-runtime-socket"), "{call}: {e:#?}");
        assert_eq!(e.program, unix_escape().display().to_string(), "{e:#?}");
        let names = [e.target.as_deref(), e.resolved.as_deref()];
        assert!(
            names.iter().flatten().any(|t| t.ends_with("/denied/s")),
            "{call}: the denied socket is not named in {e:#?}"
        );
    }
}

fn race(call: &str) {
    let d = fixture(&format!("unix-race-{call}"));
    let exe = unix_escape().display().to_string();
    let out = run(&d, &[&exe, "race", call, ".", "pub", "denied", TRIES]);
    let words: Vec<&str> = out.stdout.split_whitespace().collect();
    assert_eq!(words.len(), 4, "{call}: {} {}", out.stdout, out.stderr);
    assert_eq!(words[1], "0", "{call} reached the denied socket: {}", out.stdout);
    let ok: u64 = words[3].parse().unwrap();
    assert!(ok > 0, "{call}: the free socket must stay usable");
    assert_denies(&out, call);
}

#[test]
fn connect_through_a_swapped_directory() {
    race("connect");
}

#[test]
fn sendto_through_a_swapped_directory() {
    race("sendto");
}

#[test]
fn sendmsg_through_a_swapped_directory() {
    race("sendmsg");
}

/// With every descriptor taken, the link cannot be resolved by the library:
/// a deny rule on sockets could apply, so the call is denied (EACCES), not
/// waved through on its spelling.
fn full(call: &str) {
    let d = fixture(&format!("unix-full-{call}"));
    std::os::unix::fs::symlink("denied", d.join("lnk")).unwrap();
    let exe = unix_escape().display().to_string();
    let out = run(&d, &[&exe, "full", call, "denied", "lnk"]);
    assert_eq!(
        out.stdout.trim(),
        format!("err {}", libc::EACCES),
        "{call}: {}",
        out.stderr
    );
    assert_denies(&out, call);
}

#[test]
fn connect_with_no_descriptor_left() {
    full("connect");
}

#[test]
fn sendto_with_no_descriptor_left() {
    full("sendto");
}

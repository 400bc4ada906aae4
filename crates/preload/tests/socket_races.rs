//! A unix socket reached through a symlink swapped while the call runs, or
//! when the library has no descriptor left to resolve the path with. A
//! policy that denies connecting to a socket (a container runtime's
//! `docker.sock` is the usual one) must hold however the path is spelled:
//! the library must connect to (or send to) the socket file it decided on.
//! (`path_races.rs` is the same for file calls.)

mod common;

use common::{assert_all_denied, c_program, policy, race_counts, scratch, Outcome, Run};
use ldguard_events::Event;
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

/// Every event is a deny of `unix_escape`, by `rule`, naming a path that
/// ends with `target`.
fn assert_denies(events: &[&Event], call: &str, rule: Option<&str>, target: &str) {
    let program = unix_escape().display().to_string();
    assert_all_denied(events, call, rule, &program, |t| t.ends_with(target));
}

fn race(call: &str) {
    let d = fixture(&format!("unix-race-{call}"));
    let exe = unix_escape().display().to_string();
    let out = run(&d, &[&exe, "race", call, ".", "pub", "denied", TRIES]);
    let [wins, ok] = race_counts(&out, call, 2)[..] else {
        unreachable!()
    };
    assert_eq!(wins, 0, "{call} reached the denied socket: {}", out.stdout);
    assert!(ok > 0, "{call}: the free socket must stay usable");
    assert_denies(
        &out.decisions(),
        call,
        Some("no-runtime-socket"),
        "/denied/s",
    );
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

#[test]
fn sendmmsg_through_a_swapped_directory() {
    race("sendmmsg");
}

/// libc's `syscall()` is routed to the same decisions.
#[test]
fn syscall_connect_and_sendto_through_a_swapped_directory() {
    race("sys-connect");
    race("sys-sendto");
}

/// With every descriptor taken, the link cannot be resolved by the library:
/// a deny rule on sockets could apply, so the call is denied (EACCES), not
/// waved through on its spelling. The event file cannot be opened either:
/// the deny is written to stderr.
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
    assert!(out.decisions().is_empty(), "{:#?}", out.events);
    let on_stderr = out.stderr_decisions();
    assert_eq!(on_stderr.len(), 1, "{call}: {}", out.stderr);
    // No rule is named: which would apply is what could not be learnt.
    let events: Vec<&Event> = on_stderr.iter().collect();
    assert_denies(&events, call, None, "/lnk/s");
}

#[test]
fn connect_with_no_descriptor_left() {
    full("connect");
}

#[test]
fn sendto_with_no_descriptor_left() {
    full("sendto");
}

/// What a program sees of connects and sends to socket paths, allowed or
/// failing, is what it sees without the library (the call goes through
/// `/proc/self/fd/N` once a rule looks at socket paths): the errno of each
/// failure, the peer's name, relative paths, links and `..`.
#[test]
fn socket_path_calls_behave_as_without_the_library() {
    let d = scratch("unix-semantics");
    let script = r#"
import errno, os, socket
os.mkdir('d'); open('f', 'w').close()
os.symlink('loop', 'loop'); os.symlink('srv', 'ln'); os.symlink('missing', 'dangling')
srv = socket.socket(socket.AF_UNIX); srv.bind('srv'); srv.listen()
bound = socket.socket(socket.AF_UNIX); bound.bind('bound')
dg = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); dg.bind('dg')
long = 'd/' + 'x' * 100
for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_SEQPACKET):
    for path in ['srv', './srv', os.path.abspath('srv'), 'ln', 'd/../srv', 'dangling',
                 'missing', 'f', 'd', 'f/x', 'loop', 'dg', 'bound', '/nonexistent/x', long]:
        s = socket.socket(socket.AF_UNIX, kind)
        try:
            if kind == socket.SOCK_DGRAM:
                s.sendto(b'x', path)
                r = 'sent'
            else:
                s.connect(path)
                r = 'connected to ' + s.getpeername()
        except OSError as e:
            r = errno.errorcode.get(e.errno, str(e.errno))
        print(kind, path[:20], r)
        s.close()
"#;
    let rules = json!([
        {"name": "no-runtime-socket", "kind": "network", "direction": "outbound",
         "unix": ["/run/nothing-here.sock"], "action": "deny"},
    ]);
    let work = d.join("work");
    common::assert_same_as_baseline(
        &d.join("work"),
        policy("enforce", &["deny"], rules),
        &["python3", "-c", script],
        &|| {
            let _ = std::fs::remove_dir_all(&work);
            std::fs::create_dir_all(&work).unwrap();
        },
    );
}

//! A new root reached through a symlink swapped while `chroot` runs. A
//! `chroot` into a directory above what a rule protects gives those files
//! other names (`/secret/f` for `denied/secret/f`), so the library refuses
//! it; through a symlink that flips between a free directory and that one,
//! the library must refuse or allow the directory the kernel then enters,
//! not the one it looked at. (Needs `CAP_SYS_CHROOT`, as root in a
//! container has by default.)

mod common;

use common::{assert_all_denied, c_program, policy, race_counts, scratch, Run};
use serde_json::json;
use std::path::PathBuf;
use std::sync::OnceLock;

fn root_escape() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| c_program("root_escape", &["-ldl", "-lpthread"]))
        .clone()
}

/// Forked children, one per attempt: fewer than the other races, and still
/// hundreds of wins for a library that lets the kernel resolve the path
/// again.
const TRIES: &str = "3000";

fn race(call: &str) {
    let d = scratch(&format!("root-race-{call}"));
    std::fs::create_dir_all(d.join("pub")).unwrap();
    std::fs::create_dir_all(d.join("denied/secret")).unwrap();
    std::fs::write(d.join("denied/denied-marker"), "").unwrap();
    std::fs::write(d.join("denied/secret/f"), "secret\n").unwrap();
    let secret = d.join("denied/secret/**").display().to_string();
    let rules = json!([
        {"name": "secret", "kind": "file", "path": [secret], "action": "deny"},
    ]);
    let exe = root_escape().display().to_string();
    let dir = d.display().to_string();
    let out = Run::new(&d, Some(policy("enforce", &["deny"], rules)))
        .cmd(&[&exe, "race", call, &dir, "pub", "denied", TRIES]);
    let [entered_denied, entered_free, _refused, failed] = race_counts(&out, call, 4)[..] else {
        unreachable!()
    };
    assert_eq!(
        entered_denied, 0,
        "{call} entered the denied root: {}",
        out.stdout
    );
    assert!(entered_free > 0, "{call}: {}", out.stdout);
    assert_eq!(failed, 0, "{call}: other failures: {}", out.stdout);
    // (At least one: a chroot was refused.)
    assert_all_denied(&out.decisions(), call, Some("secret"), &exe, |t| {
        t.ends_with("/denied")
    });
}

#[test]
fn chroot_through_a_swapped_symlink() {
    race("chroot");
}

#[test]
fn syscall_chroot_through_a_swapped_symlink() {
    race("sys-chroot");
}

/// What `chroot` answers is what it answers without the library (each in
/// a forked child: a process cannot leave its new root).
#[test]
fn chroot_fails_and_succeeds_as_without_the_library() {
    let d = scratch("root-semantics");
    let script = r#"
import errno, os
os.makedirs('d', exist_ok=True); open('f', 'w').close()
if not os.path.lexists('loop'): os.symlink('loop', 'loop')
if not os.path.lexists('ln'): os.symlink('d', 'ln')
for p in ['missing', 'f', 'f/x', 'loop', '', 'd', 'ln', './d/../d', os.path.abspath('d')]:
    pid = os.fork()
    if pid == 0:
        try:
            os.chroot(p)
            os._exit(0 if os.path.exists('/') else 99)
        except OSError as e:
            os._exit(e.errno)
    _, st = os.waitpid(pid, 0)
    print(repr(p[-8:]), errno.errorcode.get(os.waitstatus_to_exitcode(st), 'ok'))
"#;
    let rules = json!([
        {"name": "secret", "kind": "file", "path": ["/nonexistent-ldguard/**"], "action": "deny"},
    ]);
    common::assert_same_as_baseline(
        &d,
        policy("enforce", &["deny"], rules),
        &["python3", "-c", script],
        &|| {},
    );
}

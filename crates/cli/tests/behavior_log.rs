//! `log: ["behavior"]` under the real library (`scripts/build-lib --debug`,
//! or `LDGUARD_TEST_LIB`): each distinct operation is reported once per
//! process, from any thread, in forked children too, and ignored calls
//! stay silent.

use ldguard_events::{Event, EventReader};
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn library() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        if let Ok(lib) = std::env::var("LDGUARD_TEST_LIB") {
            return PathBuf::from(lib);
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let status = Command::new(root.join("scripts/build-lib"))
            .arg("--debug")
            .status()
            .expect("run scripts/build-lib");
        assert!(status.success(), "scripts/build-lib --debug failed");
        root.join("target/dist/x86_64-linux-gnu/libldguard.so")
    })
}

/// Runs a python snippet under a permissive policy with `log` (extra
/// top-level JSON members in `extra`) and returns its events.
fn record(log: &str, extra: &str, script: &str) -> Vec<Event> {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("p.json");
    std::fs::write(
        &policy,
        format!(
            r#"{{"apiVersion":"ldguard.policy/v1","name":"b","mode":"permissive","log":{log}{extra}}}"#
        ),
    )
    .unwrap();
    let events = dir.path().join("e.jsonl");
    let out = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .env("LD_PRELOAD", library())
        .env("LDGUARD_POLICY", &policy)
        .env("LDGUARD_EVENTS", format!("file:{}", events.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The library opens its sink on the first event: no file, no events.
    match std::fs::File::open(&events) {
        Ok(file) => EventReader::new(BufReader::new(file))
            .map(Result::unwrap)
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("{}: {e}", events.display()),
    }
}

fn count(events: &[Event], target: &str, access: &str) -> Vec<u32> {
    events
        .iter()
        .filter(|e| e.target.as_deref() == Some(target) && e.access.as_deref() == Some(access))
        .map(|e| {
            assert!(e.behavior, "{e:?}");
            assert_eq!(e.action, "allow");
            e.pid
        })
        .collect()
}

const SCRIPT: &str = r#"
import os, threading
def reads():
    for _ in range(50):
        open('/etc/hostname').close()
threads = [threading.Thread(target=reads) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
open('/etc/hosts').close()
pid = os.fork()
if pid == 0:
    open('/etc/hostname').close()   # already reported by the parent
    open('/etc/passwd').close()     # new in the child
    os._exit(0)
os.waitpid(pid, 0)
"#;

#[test]
fn each_operation_is_reported_once_per_process() {
    let events = record(r#"["behavior"]"#, "", SCRIPT);
    let parent = count(&events, "/etc/hostname", "read");
    assert_eq!(parent.len(), 1, "200 opens from 4 threads, one report");
    assert_eq!(count(&events, "/etc/hosts", "read"), parent);
    let child = count(&events, "/etc/passwd", "read");
    assert_eq!(child.len(), 1);
    assert_ne!(
        child, parent,
        "the forked child reports its own new operation"
    );
    // Without `behavior` nothing of this is reported (allowed, not logged).
    let quiet = record(r#"["deny"]"#, "", SCRIPT);
    assert_eq!(count(&quiet, "/etc/hosts", "read"), Vec::<u32>::new());
}

#[test]
fn ignored_calls_stay_ignored() {
    let events = record(r#"["behavior"]"#, r#","ignore":["open64"]"#, SCRIPT);
    assert!(
        events.iter().all(|e| e.call != "open64"),
        "{:?}",
        events.iter().find(|e| e.call == "open64")
    );
}

//! The library must never break the program: threads, fork+exec, vfork,
//! signal handlers, constructors that run before ours, and a setuid
//! program loaded through /etc/ld.so.preload.

mod common;

use common::{c_program, library, policy, scratch, Run};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;

struct Files {
    d: PathBuf,
    denied: String,
    allowed: String,
}

fn files(name: &str) -> Files {
    let d = scratch(name);
    std::fs::write(d.join("denied"), "no").unwrap();
    std::fs::write(d.join("allowed"), "yes").unwrap();
    Files {
        denied: d.join("denied").display().to_string(),
        allowed: d.join("allowed").display().to_string(),
        d,
    }
}

fn rules(f: &Files) -> serde_json::Value {
    json!([
        {"name": "denied-file", "kind": "file", "path": [f.denied], "action": "deny"},
        {"name": "no-id", "kind": "exec", "path": ["/usr/bin/id"], "action": "deny"},
        // Audited: every open of the allowed file produces an event, so the
        // event pipeline (and its full-queue path) runs under the stress too.
        {"name": "watch-allowed", "kind": "file", "path": [f.allowed], "action": "audit"},
    ])
}

fn stress(seconds: u32) {
    let f = files(&format!("stress{seconds}"));
    let prog = c_program("stress", &["-pthread"]);
    let out = Run::new(&f.d, Some(policy("enforce", &["deny", "audit"], rules(&f)))).cmd(&[
        prog.display().to_string(),
        seconds.to_string(),
        f.denied.clone(),
        f.allowed.clone(),
    ]);
    assert!(
        out.stdout.starts_with("ok "),
        "stdout {:?} stderr {:?} status {:?}",
        out.stdout,
        out.stderr,
        out.status
    );
    let mut parts = out
        .stdout
        .split_whitespace()
        .skip(1)
        .map(|n| n.parse::<u64>().unwrap());
    let (opens, forks) = (parts.next().unwrap(), parts.next().unwrap());
    eprintln!("{seconds} s: {opens} open/close/stat rounds on 16 threads, {forks} fork+exec");
    assert!(
        opens > 1000 && forks > 0,
        "too little work done: {opens} {forks}"
    );
    // Denials were reported (the audit flood rotates the event file: the
    // harness reads the rotated files too).
    assert!(out
        .events
        .iter()
        .any(|e| e.rule.as_deref() == Some("denied-file")));
}

#[test]
fn sixteen_threads_with_fork_and_exec_10s() {
    stress(10);
}

/// The full 60-second run (`scripts/test --full`).
#[test]
#[ignore = "60 s; run by scripts/test --full"]
fn sixteen_threads_with_fork_and_exec_60s() {
    stress(60);
}

#[test]
fn vfork_child_exec_leaves_the_parent_checked() {
    let f = files("vfork");
    let prog = c_program("vfork", &[]);
    let out = Run::new(&f.d, Some(policy("enforce", &["deny"], rules(&f))))
        .cmd(&[prog.display().to_string(), f.denied.clone()]);
    // 42: the child's exec of /usr/bin/id failed with EACCES.
    assert_eq!(out.stdout.trim(), "ok 42", "stderr {}", out.stderr);
    let execs: Vec<_> = out
        .decisions()
        .into_iter()
        .filter(|e| e.call == "execv")
        .collect();
    assert_eq!(execs.len(), 1, "{:#?}", out.events);
    assert_eq!(
        out.decisions()
            .iter()
            .filter(|e| e.rule.as_deref() == Some("denied-file"))
            .count(),
        50
    );
}

#[test]
fn signal_handler_calls_open_while_main_thread_is_in_a_hook() {
    let f = files("signals");
    let prog = c_program("signals", &[]);
    let out = Run::new(&f.d, Some(policy("enforce", &["deny"], rules(&f)))).cmd(&[
        prog.display().to_string(),
        "4".into(),
        f.denied.clone(),
        f.allowed.clone(),
    ]);
    assert!(
        out.stdout.starts_with("ok "),
        "stdout {:?} stderr {:?}",
        out.stdout,
        out.stderr
    );
}

/// The kernel refuses some calls to a multi-threaded process: making a
/// user namespace (`unshare(CLONE_NEWUSER)`, as `unshare -r`, podman and
/// bwrap do) and joining a mount namespace (`setns(CLONE_NEWNS)`, as
/// `nsenter -m`). The library's own thread (the event writer, started by
/// the first event) must not make them fail, and its events must not be lost.
#[test]
fn calls_that_need_a_single_thread_work_after_an_event() {
    let f = files("single-thread");
    // After a denied open (an event), waits until the process has THREADS
    // threads (making hooked calls meanwhile), then makes the two calls.
    let script = "import ctypes, os, sys, time\nlibc = ctypes.CDLL(None, use_errno=True)\ntry:\n    open(sys.argv[1]).read()\nexcept OSError:\n    pass\ndeadline = time.time() + 10\nwhile len(os.listdir('/proc/self/task')) < int(sys.argv[2]) and time.time() < deadline:\n    for _ in range(100):\n        os.close(os.open('/dev/null', os.O_RDONLY))\n    time.sleep(0.05)\nthreads = len(os.listdir('/proc/self/task'))\nfd = os.open('/proc/self/ns/mnt', os.O_RDONLY)\nr1 = libc.setns(fd, 0x20000)\ne1 = ctypes.get_errno()\nr2 = libc.unshare(0x10000000)\ne2 = ctypes.get_errno()\nprint(threads, r1, os.strerror(e1) if r1 else 'ok', r2, os.strerror(e2) if r2 else 'ok')\n";
    // The refresher of a policy file starts at a hooked call once
    // refreshSeconds have passed: one second here.
    let config = f.d.join("refresh-1s.json");
    std::fs::write(&config, r#"{"refreshSeconds": 1}"#).unwrap();
    for mode in ["permissive", "enforce"] {
        // The event file needs no thread of the library's: one thread (the
        // program's). With the refresher running, two: it is stopped for
        // the calls and both still succeed.
        for (threads, refresher) in [(1, false), (2, true)] {
            let mut run = Run::new(&f.d, Some(policy(mode, &["deny"], rules(&f))));
            if refresher {
                run = run.env("LDGUARD_CONFIG", config.to_str().unwrap());
            }
            let out = run.cmd(&["python3", "-c", script, &f.denied, &threads.to_string()]);
            assert_eq!(
                out.stdout.trim(),
                format!("{threads} 0 ok 0 ok"),
                "{mode}: stderr {}",
                out.stderr
            );
            let denied = out
                .decisions()
                .iter()
                .filter(|e| e.rule.as_deref() == Some("denied-file"))
                .count();
            assert_eq!(denied, 1, "{mode}: events {:#?}", out.events);
        }
    }
}

/// Objects with no name a path rule can use (a pipe behind `/dev/stdin`
/// or bash's `<(…)`, a namespace behind `/proc/self/ns/mnt`) open under an
/// enforce policy as without the library.
#[test]
fn nameless_objects_open_through_their_proc_links() {
    let f = files("nameless");
    let script = "echo piped | cat /dev/stdin; cat <(echo substituted); python3 -c \"import os; os.open('/proc/self/ns/mnt', os.O_RDONLY); print('namespace')\"";
    let out =
        Run::new(&f.d, Some(policy("enforce", &["deny"], rules(&f)))).cmd(&["bash", "-c", script]);
    assert_eq!(
        out.stdout, "piped\nsubstituted\nnamespace\n",
        "stderr {}",
        out.stderr
    );
    assert!(out.decisions().is_empty(), "{:#?}", out.events);
}

#[test]
fn constructors_that_run_before_ours() {
    let f = files("ctor");
    let early = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("libearly.so");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/early.c");
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-o"])
        .arg(&early)
        .arg(&src)
        .status()
        .unwrap();
    assert!(status.success());
    let prog = c_program("ctor_main", &[]);
    // Later preloads are initialised before earlier ones: libearly's
    // constructor calls open before libldguard's constructor has run.
    let preload = format!("{}:{}", library().display(), early.display());
    let out = Run::new(&f.d, Some(policy("enforce", &["deny"], rules(&f))))
        .env("LD_PRELOAD", &preload)
        .env("EARLY_DENIED", &f.denied)
        .env("EARLY_ALLOWED", &f.allowed)
        .cmd(&[prog.display().to_string()]);
    assert_eq!(
        out.stdout,
        "early allowed=ok denied=Permission denied\nctor=Permission denied main=Permission denied\n",
        "stderr {}",
        out.stderr
    );
    assert_eq!(out.decisions().len(), 3, "{:#?}", out.events);
}

/// A setuid program run by an unprivileged user: the loader drops
/// LD_PRELOAD (secure mode) but honours /etc/ld.so.preload, and the library
/// reads /etc/ldguard/config.json. Both files are bind-mounted in a private
/// mount namespace so the machine's own are untouched.
#[test]
fn setuid_program_through_etc_ld_so_preload() {
    assert!(
        // SAFETY: getuid has no preconditions.
        unsafe { libc::getuid() } == 0,
        "this test needs root (unshare -m, bind mounts, a setuid binary); CI runs as root"
    );
    let f = files("ldsopreload");
    // Everything the unprivileged user needs must be reachable by it.
    let world = scratch("ldsopreload-world");
    for p in [&world, &f.d] {
        std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    let lib = world.join("libldguard.so");
    std::fs::copy(library(), &lib).unwrap();
    let cat = world.join("suid-cat");
    std::fs::copy("/usr/bin/cat", &cat).unwrap();
    std::fs::set_permissions(&cat, std::os::unix::fs::PermissionsExt::from_mode(0o4755)).unwrap();
    std::fs::write(world.join("ld.so.preload"), format!("{}\n", lib.display())).unwrap();
    let etc = world.join("etc-ldguard");
    std::fs::create_dir_all(&etc).unwrap();
    let events = world.join("events.jsonl");
    std::fs::write(
        etc.join("policy.json"),
        serde_json::to_vec(&policy("enforce", &["deny"], rules(&f))).unwrap(),
    )
    .unwrap();
    std::fs::write(
        etc.join("config.json"),
        serde_json::to_vec(&json!({"bakedPolicy": "/etc/ldguard/policy.json", "events": format!("file:{}", events.display())}))
            .unwrap(),
    )
    .unwrap();
    // The parent directories of the scratch dirs must be traversable too.
    let mut p = world.parent();
    while let Some(dir) = p {
        if dir == Path::new("/") {
            break;
        }
        let mode = std::fs::metadata(dir).unwrap().permissions();
        use std::os::unix::fs::PermissionsExt;
        if mode.mode() & 0o001 == 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode.mode() | 0o011))
                .unwrap();
        }
        p = dir.parent();
    }
    std::fs::write(&events, "").unwrap();
    std::fs::set_permissions(&events, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
    std::fs::set_permissions(
        &f.denied,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();

    // An overlay over /etc, private to the mount namespace: the machine's
    // /etc (which may have no ld.so.preload at all) is never written.
    let (upper, work) = (world.join("etc-upper"), world.join("etc-work"));
    std::fs::create_dir_all(&upper).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    let script = format!(
        "set -e; mount -t overlay overlay -o lowerdir=/etc,upperdir={upper},workdir={work} /etc; \
         cp {preload} /etc/ld.so.preload; mkdir -p /etc/ldguard; cp {etc}/config.json {etc}/policy.json /etc/ldguard/; \
         setpriv --reuid=65534 --regid=65534 --clear-groups env -i {cat} {allowed} {denied}",
        upper = upper.display(),
        work = work.display(),
        preload = world.join("ld.so.preload").display(),
        etc = etc.display(),
        cat = cat.display(),
        allowed = f.allowed,
        denied = f.denied,
    );
    let out = common::run_with_timeout(
        {
            let mut c = Command::new("unshare");
            c.args(["-m", "--propagation", "private", "sh", "-c", &script])
                .env_remove("LD_PRELOAD");
            c
        },
        None,
        std::time::Duration::from_secs(60),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stdout, "yes", "stderr: {stderr}");
    assert!(
        stderr.contains(&format!("{}: Permission denied", f.denied)),
        "stderr: {stderr}"
    );
    let events = common::read_events(&events);
    let denials: Vec<_> = events.iter().filter(|e| e.kind == "file").collect();
    assert_eq!(denials.len(), 1, "{events:#?}");
    assert_eq!(
        (denials[0].program.as_str(), denials[0].uid),
        (cat.display().to_string().as_str(), 65534)
    );
    let host = std::fs::read_to_string("/etc/ld.so.preload").unwrap_or_default();
    assert!(
        !host.contains("libldguard"),
        "the machine's /etc/ld.so.preload must be untouched"
    );
}

/// The event file's rotation lock held elsewhere (a rotating process that
/// died holding it while a forked child kept its descriptor, or a signal
/// handler interrupting this very thread's rotation) never blocks a
/// program: rotation waits for a later line instead.
#[test]
fn an_event_file_whose_rotation_lock_is_held_never_blocks_the_program() {
    let dir = scratch("rotation-lock");
    let secret = dir.join("secret");
    std::fs::write(&secret, "secret\n").unwrap();
    let events = dir.join("events.jsonl");
    // As full as the rotation size: the program's first line rotates it.
    let held = std::fs::File::create(&events).unwrap();
    held.set_len(64 << 20).unwrap();
    held.lock().unwrap();
    let rules = json!([{"name": "secret", "kind": "file",
        "path": [secret.to_str().unwrap()], "action": "deny"}]);
    let started = std::time::Instant::now();
    let out = Run::new(&dir, Some(policy("enforce", &["deny"], rules)))
        .env("LDGUARD_EVENTS", &format!("file:{}", events.display()))
        .cmd(&["/bin/cat", secret.to_str().unwrap()]);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "the program waited {:?} for the rotation lock",
        started.elapsed()
    );
    assert_ne!(out.code(), 0, "{}", out.stderr);
    let text = std::fs::read(&events).unwrap();
    let tail = String::from_utf8_lossy(&text[64 << 20..]);
    assert!(
        tail.contains("\"rule\":\"secret\"") && tail.ends_with('\n'),
        "the deny line was appended: {tail:?}"
    );
    drop(held);
}

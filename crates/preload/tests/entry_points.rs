//! Every interposed libc entry point is really interposed: a C program
//! calls each one with a target the policy denies, and the call fails with
//! the policy's errno and leaves exactly one event naming that entry point.

mod common;

use common::{policy, probe, scratch, Run};
use serde_json::json;
use std::path::Path;

struct Case {
    call: &'static str,
    args: Vec<String>,
    /// The call name the event carries (the `__xmknod` compat names report
    /// the call they implement).
    event_call: &'static str,
    errno: i32,
}

fn file_cases(d: &Path) -> Vec<Case> {
    let p = |s: &str| d.join(s).display().to_string();
    let mut cases = Vec::new();
    let mut add = |call: &'static str, event_call: &'static str, args: Vec<String>| {
        cases.push(Case {
            call,
            args,
            event_call,
            errno: 13,
        })
    };
    for c in [
        "open",
        "open64",
        "__open_2",
        "__open64_2",
        "fopen",
        "fopen64",
        "freopen",
        "freopen64",
    ] {
        add(c, c, vec![p("deny/f")]);
    }
    // The directory itself is opened outside the denied tree.
    for c in [
        "openat",
        "openat64",
        "__openat_2",
        "__openat64_2",
        "unlinkat",
    ] {
        add(c, c, vec![d.display().to_string(), "deny/f".into()]);
    }
    for c in ["creat", "creat64", "mkdir", "mkdirat", "mknod", "mknodat"] {
        add(c, c, vec![p("deny/new")]);
    }
    add("__xmknod", "mknod", vec![p("deny/new")]);
    add("__xmknodat", "mknodat", vec![p("deny/new")]);
    add("opendir", "opendir", vec![p("deny/empty")]);
    add("rmdir", "rmdir", vec![p("deny/empty")]);
    for c in [
        "truncate",
        "truncate64",
        "unlink",
        "chmod",
        "fchmodat",
        "chown",
        "lchown",
        "fchownat",
    ] {
        add(c, c, vec![p("deny/f")]);
    }
    for c in ["rename", "renameat", "renameat2", "link", "linkat"] {
        add(c, c, vec![p("deny/f"), p("allow/g")]);
    }
    for c in ["symlink", "symlinkat"] {
        add(c, c, vec![p("allow/f"), p("deny/l")]);
    }
    cases
}

fn setup_files(d: &Path) {
    let _ = std::fs::remove_dir_all(d.join("deny"));
    let _ = std::fs::remove_dir_all(d.join("allow"));
    std::fs::create_dir_all(d.join("deny/empty")).unwrap();
    std::fs::create_dir_all(d.join("allow")).unwrap();
    std::fs::write(d.join("deny/f"), "secret").unwrap();
    std::fs::write(d.join("allow/f"), "fine").unwrap();
}

fn check(d: &Path, rules: serde_json::Value, cases: &[Case], setup: &dyn Fn()) {
    let mut failures = Vec::new();
    for case in cases {
        setup();
        let mut argv = vec![probe().display().to_string(), case.call.to_string()];
        argv.extend(case.args.iter().cloned());
        let out = Run::new(d, Some(policy("enforce", &["deny"], rules.clone())))
            .env("PATH", "/usr/bin")
            .cmd(&argv);
        let want = format!("err {}", case.errno);
        let events = out.decisions();
        let ok = out.stdout.trim() == want
            && events.len() == 1
            && events[0].call == case.event_call
            && events[0].action == "deny"
            && events[0].enforced
            && events[0].program == probe().display().to_string();
        if !ok {
            failures.push(format!(
                "{}: stdout {:?} (want {want:?}), events {:?}, stderr {:?}",
                case.call,
                out.stdout.trim(),
                events
                    .iter()
                    .map(|e| (&e.call, &e.target, &e.rule))
                    .collect::<Vec<_>>(),
                out.stderr
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} entry points not enforced:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn file_entry_points() {
    let d = scratch("entry-file");
    let rules = json!([{"name": "deny-dir", "kind": "file",
        "path": [d.join("deny/**").display().to_string()], "action": "deny"}]);
    check(&d, rules, &file_cases(&d), &|| setup_files(&d));
}

#[test]
fn exec_entry_points() {
    let d = scratch("entry-exec");
    let rules = json!([
        {"name": "no-true", "kind": "exec", "path": ["/usr/bin/true"], "action": "deny"},
        {"name": "no-shell", "kind": "exec", "path": ["/bin/sh", "/usr/bin/dash"], "action": "deny"},
    ]);
    let mut cases = Vec::new();
    for c in [
        "execve",
        "execv",
        "execl",
        "execle",
        "fexecve",
        "execveat",
        "posix_spawn",
    ] {
        cases.push(Case {
            call: c,
            args: vec!["/usr/bin/true".into()],
            event_call: c,
            errno: 13,
        });
    }
    for c in ["execvp", "execvpe", "execlp", "posix_spawnp"] {
        cases.push(Case {
            call: c,
            args: vec!["true".into()],
            event_call: c,
            errno: 13,
        });
    }
    for c in ["system", "popen"] {
        cases.push(Case {
            call: c,
            args: vec!["exit 0".into()],
            event_call: c,
            errno: 13,
        });
    }
    check(&d, rules, &cases, &|| {});
}

fn net_case(call: &'static str, args: &[&str]) -> Vec<Case> {
    vec![Case {
        call,
        args: args.iter().map(|s| s.to_string()).collect(),
        event_call: call,
        errno: 1,
    }]
}

#[test]
fn network_outbound_entry_points() {
    let d = scratch("entry-net-out");
    let rules = json!([{"name": "no-port-9", "kind": "network", "direction": "outbound",
        "address": ["127.0.0.1/32"], "port": ["9"], "action": "deny"}]);
    let mut cases = Vec::new();
    for c in ["connect", "sendto", "sendmsg"] {
        cases.extend(net_case(c, &["127.0.0.1", "9"]));
    }
    check(&d, rules, &cases, &|| {});
}

#[test]
fn network_listen_entry_points() {
    let d = scratch("entry-net-listen");
    // Port 0 (ephemeral) passes bind; listen then sees the real port.
    let rules = json!([{"name": "no-high-listen", "kind": "network", "direction": "listen",
        "port": ["1024-65535"], "action": "deny"}]);
    let mut cases = net_case("bind", &["127.0.0.1", "47123"]);
    cases.extend(net_case("listen", &["127.0.0.1", "0"]));
    check(&d, rules, &cases, &|| {});
}

#[test]
fn network_inbound_and_name_entry_points() {
    let d = scratch("entry-net-in");
    let rules = json!([
        {"name": "no-inbound-loopback", "kind": "network", "direction": "inbound", "address": ["127.0.0.0/8"], "action": "deny"},
        {"name": "no-blocked-host", "kind": "network", "host": ["blocked.example"], "action": "deny"},
    ]);
    let mut cases = net_case("accept", &[]);
    cases.extend(net_case("accept4", &[]));
    cases.extend(net_case("getaddrinfo", &["blocked.example"]));
    check(&d, rules, &cases, &|| {});
}

pub const SYSCALLS: &[&str] = &[
    "ptrace",
    "mount",
    "umount2",
    "chroot",
    "pivot_root",
    "unshare",
    "setns",
    "setuid",
    "setgid",
    "seteuid",
    "setegid",
    "setreuid",
    "setregid",
    "setresuid",
    "setresgid",
    "setfsuid",
    "setfsgid",
    "setgroups",
    "capset",
    "memfd_create",
    "init_module",
    "finit_module",
    "bpf",
    "keyctl",
    "personality",
];

#[test]
fn syscall_entry_points() {
    let d = scratch("entry-sys");
    let rules =
        json!([{"name": "no-sensitive", "kind": "syscall", "call": SYSCALLS, "action": "deny"}]);
    let mut cases: Vec<Case> = SYSCALLS
        .iter()
        .map(|&c| Case {
            call: c,
            args: vec![],
            event_call: c,
            errno: 1,
        })
        .collect();
    // syscall(SYS_unshare, 0) is reported as the call it makes.
    cases.push(Case {
        call: "syscall",
        args: vec![],
        event_call: "unshare",
        errno: 1,
    });
    check(&d, rules, &cases, &|| {});
}

/// The library's exported symbols (the shim's `ldguard_*` forwarding
/// targets aside: internal, and hidden in the zig builds).
fn exported() -> std::collections::BTreeSet<String> {
    dynamic_symbols(&common::library())
        .into_iter()
        .filter(|s| !s.starts_with("ldguard_"))
        .collect()
}

/// `nm -D --defined-only`, without symbol versions.
fn dynamic_symbols(lib: &Path) -> std::collections::BTreeSet<String> {
    let out = std::process::Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(lib)
        .output()
        .unwrap();
    assert!(out.status.success(), "nm {}", lib.display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .map(|s| s.split('@').next().unwrap_or(s).to_string())
        .collect()
}

/// The backticked names in the first cell of each table row of the
/// docs/preload.md section headed `heading`.
fn documented(heading: &str) -> Vec<String> {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/preload.md"),
    )
    .unwrap();
    let start = doc
        .find(&format!("\n## {heading}\n"))
        .unwrap_or_else(|| panic!("docs/preload.md has no section {heading:?}"));
    let section = &doc[start + 1..];
    let end = section[3..].find("\n## ").map_or(section.len(), |e| e + 3);
    section[..end]
        .lines()
        .filter(|l| l.starts_with("| `"))
        .filter_map(|l| l.split(" | ").next())
        .flat_map(|cell| cell.split('`').skip(1).step_by(2).map(str::to_string))
        .collect()
}

/// The exported symbols are exactly the documented list.
#[test]
fn exports_match_the_documented_list() {
    let exported = exported();
    let documented: std::collections::BTreeSet<String> =
        documented("Interposed entry points").into_iter().collect();
    let missing: Vec<_> = documented.difference(&exported).collect();
    let undocumented: Vec<_> = exported.difference(&documented).collect();
    assert!(
        missing.is_empty() && undocumented.is_empty(),
        "documented but not exported: {missing:?}; exported but not documented: {undocumented:?}"
    );
}

/// Name prefixes of libc functions that open, create, change, execute or
/// connect: everything a policy could govern.
const RELEVANT: &[&str] = &[
    "open",
    "__open",
    "_IO_fopen",
    "_IO_file_fopen",
    "_IO_file_open",
    "_IO_popen",
    "_IO_proc_open",
    "_IO_fdopen",
    "fopen",
    "freopen",
    "fdopen",
    "opendir",
    "creat",
    "exec",
    "fexecve",
    "posix_spawn",
    "system",
    "__libc_system",
    "popen",
    "connect",
    "__connect",
    "bind",
    "send",
    "__send",
    "listen",
    "accept",
    "getaddrinfo",
    "gethostby",
    "gethostent",
    "rcmd",
    "rexec",
    "rresvport",
    "ruserok",
    "iruserok",
    "unlink",
    "link",
    "symlink",
    "rename",
    "mkdir",
    "rmdir",
    "remove",
    "mkfifo",
    "mknod",
    "__xmknod",
    "mkstemp",
    "mkostemp",
    "mkdtemp",
    "mktemp",
    "__mktemp",
    "tmpfile",
    "tempnam",
    "tmpnam",
    "truncate",
    "ftruncate",
    "chmod",
    "fchmod",
    "lchmod",
    "chown",
    "fchown",
    "lchown",
    "utime",
    "futime",
    "lutime",
    "setxattr",
    "lsetxattr",
    "fsetxattr",
    "removexattr",
    "lremovexattr",
    "fremovexattr",
    "getsp",
    "fgetsp",
    "getsg",
    "fgetsg",
    "getpw",
    "fgetpw",
    "getgr",
    "fgetgr",
    "initgroups",
    "putpwent",
    "putspent",
    "putgrent",
    "putsgent",
    "lckpwdf",
    "setmntent",
    "__setmntent",
    "addmntent",
    "scandir",
    "glob",
    "nftw",
    "ftw",
    "fts_",
    "fts64_",
    "wordexp",
    "catopen",
    "__open_catalog",
    "dlopen",
    "dlmopen",
    "name_to_handle_at",
    "open_by_handle_at",
    "fanotify_mark",
    "inotify_add_watch",
    "shm_open",
    "sem_open",
    "mq_open",
    "__mq_open_2",
    "posix_openpt",
    "getpt",
    "openpty",
    "forkpty",
    "ptrace",
    "mount",
    "umount",
    "chroot",
    "pivot_root",
    "unshare",
    "setns",
    "clone",
    "__clone",
    "setuid",
    "setgid",
    "seteuid",
    "setegid",
    "setreuid",
    "setregid",
    "setresuid",
    "setresgid",
    "setfsuid",
    "setfsgid",
    "setgroups",
    "capset",
    "memfd_create",
    "init_module",
    "finit_module",
    "delete_module",
    "create_module",
    "bpf",
    "personality",
    "keyctl",
    "syscall",
    "process_vm",
    "pidfd_getfd",
    "open_tree",
    "move_mount",
    "fsopen",
    "fsmount",
    "fsconfig",
    "fspick",
    "acct",
    "swapon",
    "swapoff",
    "reboot",
    "quotactl",
    "sethostname",
    "setdomainname",
    "settimeofday",
    "clock_settime",
    "stime",
    "uselib",
    "utmpname",
    "utmpxname",
    "updwtmp",
    "logwtmp",
    "login",
    "logout",
    "pututline",
    "pututxline",
];

/// Every exported glibc function that opens, creates, changes, executes or
/// connects is interposed or listed in docs/preload.md ("Not
/// interposed") with the reason it needs no hook; and that list names
/// only real glibc symbols.
#[test]
fn libc_exports_are_interposed_or_listed() {
    let out = std::process::Command::new("cc")
        .arg("-print-file-name=libc.so.6")
        .output()
        .unwrap();
    let libc_path = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let libc = dynamic_symbols(Path::new(&libc_path));
    assert!(libc.contains("open"), "{libc_path} is not glibc");
    let exported = exported();
    let listed = documented("Not interposed");
    let is_listed = |name: &str| {
        listed.iter().any(|l| match l.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => l == name,
        })
    };
    let unaccounted: Vec<&String> = libc
        .iter()
        .filter(|n| RELEVANT.iter().any(|p| n.starts_with(p)))
        .filter(|n| !exported.contains(*n) && !is_listed(n))
        .collect();
    let stale: Vec<&String> = listed
        .iter()
        .filter(|l| match l.strip_suffix('*') {
            Some(prefix) => !libc.iter().any(|n| n.starts_with(prefix)),
            None => !libc.contains(*l),
        })
        .collect();
    assert!(
        unaccounted.is_empty() && stale.is_empty(),
        "glibc functions neither interposed nor listed in docs/preload.md: {unaccounted:?}; \
         listed but not in {libc_path}: {stale:?}"
    );
}

//! `ldguard run`'s own behaviour (exit codes, the warning for a policy that
//! names other programs) and how the CLI treats closed pipes and input it
//! cannot learn from. The library's decisions are tested in crates/preload;
//! here a file that is not a library is mostly enough (the loader ignores
//! it); a YAML policy is run under the real library.

use std::os::unix::fs::{symlink, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SIGPIPE: i32 = 13;

fn ldguard() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ldguard"))
}

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let f = Fixture {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::write(f.path("libfake.so"), "not a library").unwrap();
        std::fs::create_dir(f.path("bin")).unwrap();
        std::fs::create_dir(f.path("real")).unwrap();
        f
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A policy with one exec rule scoped to `program`.
    fn policy(&self, program: &str) -> PathBuf {
        let p = self.path("p.json");
        std::fs::write(
            &p,
            format!(
                r#"{{"apiVersion": "ldguard.policy/v1", "name": "scoped", "mode": "enforce",
  "rules": [{{"name": "no-shell", "kind": "exec", "program": ["{program}"],
              "path": ["/bin/sh"], "action": "deny"}}]}}"#
            ),
        )
        .unwrap();
        p
    }

    /// `ldguard run` with PATH = our bin/ then the system's.
    fn run(&self, policy: &Path, command: &[&str]) -> Output {
        let path = format!("{}:/usr/bin:/bin", self.path("bin").display());
        ldguard()
            .arg("run")
            .arg("--library")
            .arg(self.path("libfake.so"))
            .arg("--policy")
            .arg(policy)
            .arg("--")
            .args(command)
            .env("PATH", path)
            .env_remove("LD_PRELOAD")
            .output()
            .unwrap()
    }

    /// An executable `bin/NAME` that is a symlink to a copy of /bin/true in
    /// `real/`, as /usr/bin/python3 links to python3.11.
    fn linked_program(&self, name: &str) -> PathBuf {
        let real = self.path("real/true-copy");
        std::fs::copy("/bin/true", &real).unwrap();
        symlink(&real, self.path("bin").join(name)).unwrap();
        real
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn warns_when_no_rule_names_the_program_as_the_library_sees_it() {
    let f = Fixture::new();
    let real = f.linked_program("mytool");
    // The rule names the symlink, but /proc/self/exe is its target.
    let policy = f.policy(&f.path("bin/mytool").display().to_string());
    let out = f.run(&policy, &["mytool"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "warning: no rule of policy \"scoped\" names {}",
            std::fs::canonicalize(&real).unwrap().display()
        )),
        "{err}"
    );
    assert!(
        err.contains("(mytool resolved through PATH and symlinks"),
        "{err}"
    );
    assert!(
        err.contains("bin/mytool"),
        "the rule's globs are listed: {err}"
    );
}

#[test]
fn no_warning_when_a_rule_names_the_resolved_program() {
    let f = Fixture::new();
    let real = f.linked_program("mytool");
    let canonical = std::fs::canonicalize(&real).unwrap();
    let glob = format!("{}/true-*", canonical.parent().unwrap().display());
    let out = f.run(&f.policy(&glob), &["mytool"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("warning: no rule"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn exit_codes_keep_ldguard_failures_apart_from_the_command() {
    let f = Fixture::new();
    let policy = f.policy("/usr/bin/*");
    // The command's own status passes through.
    let out = f.run(&policy, &["sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    // Not found: 127, as env and podman.
    let out = f.run(&policy, &["no-such-program-anywhere"]);
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot run"), "{}", stderr(&out));
    // Found but not executable: 126.
    let script = f.path("bin/not-executable");
    std::fs::write(&script, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = f.run(&policy, &[script.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(126), "{}", stderr(&out));
    // ldguard's own failure (an invalid policy): 125, the command not started.
    std::fs::write(f.path("bad.json"), "{\"apiVersion\": 1}").unwrap();
    let out = f.run(&f.path("bad.json"), &["sh", "-c", "echo started"]);
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    // A missing library is ldguard's failure too.
    std::fs::remove_file(f.path("libfake.so")).unwrap();
    let out = f.run(&policy, &["true"]);
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
}

#[test]
fn a_closed_stdout_or_stderr_ends_the_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    std::fs::write(&good, r#"{"apiVersion": "ldguard.policy/v1", "name": "g"}"#).unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"apiVersion": "ldguard.policy/v1", "nme": "g"}"#).unwrap();
    // `validate` prints its verdict on stdout, its diagnostics on stderr.
    for policy in [&good, &bad] {
        // Pipes whose read ends are closed before the command starts: its
        // first write fails with EPIPE, whatever the scheduling.
        let (out_read, out_write) = std::io::pipe().unwrap();
        let (err_read, err_write) = std::io::pipe().unwrap();
        drop((out_read, err_read));
        let mut child = ldguard()
            .args(["policy", "validate"])
            .arg(policy)
            .stdout(out_write)
            .stderr(err_write)
            .spawn()
            .unwrap();
        let status = child.wait().unwrap();
        assert_eq!(
            status.signal(),
            Some(SIGPIPE),
            "{}: ended as coreutils do, not with a panic (101): {status:?}",
            policy.display()
        );
    }
}

#[test]
fn learn_refuses_input_without_behavior_records_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("denials.jsonl");
    std::fs::write(
        &events,
        r#"{"time":"2026-11-23T06:30:00.000000Z","pid":1,"ppid":0,"uid":0,"program":"/usr/bin/python3.11","call":"execve","kind":"exec","target":"/bin/sh","action":"deny","enforced":true,"rule":"no-shell","severity":"high","mode":"enforce","message":"m"}
"#,
    )
    .unwrap();
    let out = ldguard().arg("learn").arg(&events).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "no policy is printed");
    let err = stderr(&out);
    assert!(
        err.contains("holds no behavior records (1 events read)"),
        "{err}"
    );
    assert!(err.contains("\"log\" includes \"behavior\""), "{err}");
}

#[test]
fn events_with_fields_added_by_shippers_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("shipped.jsonl");
    std::fs::write(
        &events,
        r#"{"kubernetes":{"pod_name":"web-1","namespace_name":"shop"},"time":"2026-11-23T06:30:00.000000Z","pid":1,"ppid":0,"uid":0,"program":"/usr/bin/app","call":"openat","kind":"file","target":"/etc/hosts","access":"read","action":"allow","enforced":false,"severity":"info","mode":"permissive","behavior":true,"message":"m"}
"#,
    )
    .unwrap();
    let out = ldguard()
        .args(["events", "summary"])
        .arg(&events)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("1 events"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = ldguard().arg("learn").arg(&events).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("/etc/hosts"));
}

#[test]
fn completions_and_man_pages_come_from_the_cli_definitions() {
    let out = ldguard().args(["completions", "bash"]).output().unwrap();
    assert!(out.status.success());
    let script = String::from_utf8_lossy(&out.stdout);
    assert!(script.contains("complete -F _ldguard"), "{script}");
    for word in ["validate", "explain", "learn"] {
        assert!(script.contains(word), "{word} missing");
    }
    let dir = tempfile::tempdir().unwrap();
    let out = ldguard().arg("man").arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let top = std::fs::read_to_string(dir.path().join("ldguard.1")).unwrap();
    assert!(
        top.starts_with(".ie") || top.contains(".TH ldguard"),
        "{top}"
    );
    let run = std::fs::read_to_string(dir.path().join("ldguard-run.1")).unwrap();
    assert!(run.contains("\\-\\-policy"), "{run}");
}

/// The real library (`scripts/build-lib --debug`, or `LDGUARD_TEST_LIB`).
fn real_library() -> &'static Path {
    static LIB: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
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

#[test]
fn a_yaml_policy_is_enforced_by_the_library() {
    let f = Fixture::new();
    let secret = f.path("secret");
    std::fs::write(&secret, "s3cret").unwrap();
    let policy = f.path("p.yaml");
    std::fs::write(
        &policy,
        format!(
            "apiVersion: ldguard.policy/v1\nname: yaml-run\nmode: enforce\nrules:\n  - name: no-secret\n    kind: file\n    path: [{}]\n    action: deny\n",
            secret.display()
        ),
    )
    .unwrap();
    let cache = f.path("cache");
    let events = f.path("events.jsonl");
    let out = ldguard()
        .args(["run", "--library"])
        .arg(real_library())
        .arg("--policy")
        .arg(&policy)
        .arg("--events")
        .arg(format!("file:{}", events.display()))
        .arg("--")
        .arg("/bin/cat")
        .arg(&secret)
        .env("XDG_CACHE_HOME", &cache)
        .env_remove("LD_PRELOAD")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("s3cret"));
    assert!(
        stderr(&out).contains("Permission denied"),
        "{}",
        stderr(&out)
    );
    let log = std::fs::read_to_string(&events).unwrap();
    assert!(log.contains("\"no-secret\""), "{log}");
    // The library was handed the policy's JSON translation.
    let handed: Vec<_> = std::fs::read_dir(cache.join("ldguard/run"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(handed.len(), 1, "{handed:?}");
    let json = std::fs::read_to_string(&handed[0]).unwrap();
    assert!(
        json.starts_with("{\n  \"apiVersion\": \"ldguard.policy/v1\""),
        "{json}"
    );
}

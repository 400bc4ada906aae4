//! Real programs under the library. Allowed runs must match runs without
//! the library (stdout and exit code); denied operations fail with the
//! usual errno text and leave exactly one event naming the rule, program
//! and target; in permissive mode the same operations succeed as without
//! the library and leave one `"enforced": false` event.

mod common;

use common::{assert_same_as_baseline, policy, scratch, Outcome, Run};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// The fixture every program test uses: `pub/` is free, `secret/` is
/// denied (read and write), `/usr/bin/id` may not run.
struct Fx {
    d: PathBuf,
}

impl Fx {
    fn new(name: &str) -> Fx {
        let fx = Fx { d: scratch(name) };
        fx.reset();
        fx
    }

    fn reset(&self) {
        for sub in ["pub", "secret"] {
            let _ = std::fs::remove_dir_all(self.d.join(sub));
            std::fs::create_dir_all(self.d.join(sub)).unwrap();
        }
        std::fs::write(self.d.join("pub/a"), "public data\n").unwrap();
        std::fs::write(self.d.join("secret/f"), "secret data\n").unwrap();
    }

    fn p(&self, s: &str) -> String {
        self.d.join(s).display().to_string()
    }

    fn deny_rules(&self) -> Value {
        json!([
            {"name": "secret", "kind": "file", "path": [self.p("secret/**")], "action": "deny", "severity": "high"},
            {"name": "no-id", "kind": "exec", "path": ["/usr/bin/id"], "action": "deny"},
        ])
    }

    /// A policy that denies nothing these commands do (but is loaded and
    /// checks every call).
    fn allow_policy(&self) -> Value {
        policy(
            "enforce",
            &["deny", "audit"],
            json!([
                {"name": "elsewhere", "kind": "file", "path": ["/nonexistent-ldguard/**"], "action": "deny"}
            ]),
        )
    }

    fn run(&self, mode: Option<&str>, argv: &[&str], env: &[(&str, &str)]) -> Outcome {
        self.reset();
        let mut r = Run::new(
            &self.d,
            mode.map(|m| policy(m, &["deny"], self.deny_rules())),
        )
        .cwd(&self.d)
        .env("LC_ALL", "C")
        .env("PATH", "/usr/bin:/bin");
        for (k, v) in env {
            r = r.env(k, v);
        }
        r.cmd(argv)
    }

    /// Denied in enforce mode with `text` on stderr and one event; in
    /// permissive mode the same as without the library, with one event.
    fn scenario(&self, argv: &[&str], text: &str, rule: &str, program: &str, target: &str) {
        self.scenario_env(argv, &[], text, rule, program, target)
    }

    fn scenario_env(
        &self,
        argv: &[&str],
        env: &[(&str, &str)],
        text: &str,
        rule: &str,
        program: &str,
        target: &str,
    ) {
        let base = self.run(None, argv, env);
        let enforce = self.run(Some("enforce"), argv, env);
        assert!(
            enforce.stderr.contains(text) || enforce.stdout.contains(text),
            "{argv:?}: expected {text:?} in\nstderr: {}\nstdout: {}",
            enforce.stderr,
            enforce.stdout
        );
        assert_ne!(enforce.code(), 0, "{argv:?} should fail when denied");
        let e = enforce.one_event();
        assert_eq!(
            (
                e.rule.as_deref(),
                e.program.as_str(),
                e.target.as_deref(),
                e.action.as_str(),
                e.enforced
            ),
            (Some(rule), program, Some(target), "deny", true),
            "{argv:?}: {e:#?}"
        );
        assert!(e.message.contains("was blocked from"), "{}", e.message);

        let permissive = self.run(Some("permissive"), argv, env);
        assert_eq!(
            (permissive.code(), &permissive.stdout),
            (base.code(), &base.stdout),
            "{argv:?} in permissive mode differs from the run without the library; stderr: {}",
            permissive.stderr
        );
        let e = permissive.one_event();
        assert_eq!(
            (e.rule.as_deref(), e.enforced, e.mode.as_str()),
            (Some(rule), false, "permissive")
        );
    }

    fn same(&self, argv: &[&str]) {
        assert_same_as_baseline(&self.d, self.allow_policy(), argv, &|| self.reset());
    }
}

#[test]
fn cat() {
    let fx = Fx::new("prog-cat");
    fx.same(&["cat", &fx.p("pub/a")]);
    let s = fx.p("secret/f");
    fx.scenario(
        &["cat", &s],
        &format!("cat: {s}: Permission denied"),
        "secret",
        "/usr/bin/cat",
        &s,
    );
}

#[test]
fn cp() {
    let fx = Fx::new("prog-cp");
    fx.same(&[
        "sh",
        "-c",
        &format!(
            "cp {} {} && cat {}",
            fx.p("pub/a"),
            fx.p("pub/b"),
            fx.p("pub/b")
        ),
    ]);
    let dst = fx.p("secret/new");
    fx.scenario(
        &["cp", &fx.p("pub/a"), &dst],
        &format!("cp: cannot create regular file '{dst}': Permission denied"),
        "secret",
        "/usr/bin/cp",
        &dst,
    );
}

#[test]
fn mv() {
    let fx = Fx::new("prog-mv");
    fx.same(&[
        "sh",
        "-c",
        &format!(
            "mv {} {} && ls {}",
            fx.p("pub/a"),
            fx.p("pub/b"),
            fx.p("pub")
        ),
    ]);
    let src = fx.p("secret/f");
    fx.scenario(
        &["mv", &src, &fx.p("pub/moved")],
        &format!(
            "mv: cannot move '{src}' to '{}': Permission denied",
            fx.p("pub/moved")
        ),
        "secret",
        "/usr/bin/mv",
        &src,
    );
}

#[test]
fn rm() {
    let fx = Fx::new("prog-rm");
    fx.same(&[
        "sh",
        "-c",
        &format!("rm {} && ls {}", fx.p("pub/a"), fx.p("pub")),
    ]);
    let f = fx.p("secret/f");
    fx.scenario(
        &["rm", &f],
        &format!("rm: cannot remove '{f}': Permission denied"),
        "secret",
        "/usr/bin/rm",
        &f,
    );
}

#[test]
fn ln() {
    let fx = Fx::new("prog-ln");
    fx.same(&[
        "sh",
        "-c",
        &format!(
            "ln -s {} {} && cat {}",
            fx.p("pub/a"),
            fx.p("pub/l"),
            fx.p("pub/l")
        ),
    ]);
    let l = fx.p("secret/l");
    fx.scenario(
        &["ln", "-s", &fx.p("pub/a"), &l],
        &format!("ln: failed to create symbolic link '{l}': Permission denied"),
        "secret",
        "/usr/bin/ln",
        &l,
    );
}

#[test]
fn mkdir() {
    let fx = Fx::new("prog-mkdir");
    fx.same(&[
        "sh",
        "-c",
        &format!("mkdir -p {}/x/y && ls {}/x", fx.p("pub"), fx.p("pub")),
    ]);
    let n = fx.p("secret/newdir");
    fx.scenario(
        &["mkdir", &n],
        &format!("mkdir: cannot create directory '{n}': Permission denied"),
        "secret",
        "/usr/bin/mkdir",
        &n,
    );
}

#[test]
fn touch() {
    let fx = Fx::new("prog-touch");
    fx.same(&[
        "sh",
        "-c",
        &format!("touch {} && ls {}", fx.p("pub/t"), fx.p("pub")),
    ]);
    let n = fx.p("secret/newfile");
    fx.scenario(
        &["touch", &n],
        &format!("touch: cannot touch '{n}': Permission denied"),
        "secret",
        "/usr/bin/touch",
        &n,
    );
}

#[test]
fn sh() {
    let fx = Fx::new("prog-sh");
    fx.same(&["sh", "-c", "echo start; /usr/bin/uname -s; whoami; exit 3"]);
    fx.scenario(
        &["sh", "-c", "/usr/bin/id -u"],
        "sh: 1: /usr/bin/id: Permission denied",
        "no-id",
        "/usr/bin/dash",
        "/usr/bin/id",
    );
}

#[test]
fn bash() {
    let fx = Fx::new("prog-bash");
    fx.same(&[
        "bash",
        "-c",
        "for i in 1 2 3; do echo $i; done; /usr/bin/uname -s | tr a-z A-Z",
    ]);
    fx.scenario(
        &["bash", "-c", "/usr/bin/id -u"],
        "bash: line 1: /usr/bin/id: Permission denied",
        "no-id",
        "/usr/bin/bash",
        "/usr/bin/id",
    );
}

#[test]
fn find() {
    let fx = Fx::new("prog-find");
    fx.same(&["find", &fx.p("pub"), "-type", "f"]);
    let s = fx.p("secret");
    fx.scenario(
        &["find", &s, "-name", "f"],
        &format!("find: '{s}': Permission denied"),
        "secret",
        "/usr/bin/find",
        &s,
    );
}

#[test]
fn tar() {
    let fx = Fx::new("prog-tar");
    fx.same(&[
        "sh",
        "-c",
        &format!(
            "tar -cf {0}/x.tar -C {0} a && tar -tf {0}/x.tar",
            fx.p("pub")
        ),
    ]);
    fx.scenario(
        &[
            "tar",
            "-cf",
            &fx.p("pub/s.tar"),
            "-C",
            &fx.d.display().to_string(),
            "secret/f",
        ],
        "tar: secret/f: Cannot open: Permission denied",
        "secret",
        "/usr/bin/tar",
        &fx.p("secret/f"),
    );
}

#[test]
fn perl() {
    let fx = Fx::new("prog-perl");
    fx.same(&[
        "perl",
        "-e",
        &format!(
            "open(my $f, '<', '{}') or die; print <$f>; print 6*7, qq(\\n)",
            fx.p("pub/a")
        ),
    ]);
    let s = fx.p("secret/f");
    fx.scenario(
        &[
            "perl",
            "-e",
            &format!("open(my $f, '<', '{s}') or die \"open: $!\\n\"; print <$f>"),
        ],
        "open: Permission denied",
        "secret",
        "/usr/bin/perl",
        &s,
    );
}

fn git_env(home: &Path) -> Vec<(String, String)> {
    [
        ("HOME", home.display().to_string()),
        ("GIT_AUTHOR_NAME", "t".into()),
        ("GIT_AUTHOR_EMAIL", "t@example.com".into()),
        ("GIT_COMMITTER_NAME", "t".into()),
        ("GIT_COMMITTER_EMAIL", "t@example.com".into()),
        ("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z".into()),
        ("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z".into()),
        ("GIT_CONFIG_NOSYSTEM", "1".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

#[test]
fn git_init_add_commit() {
    let fx = Fx::new("prog-git");
    let script = format!(
        "set -e; cd {0}; git init -q -b main repo; cd repo; echo hello > f; git add f; \
         git commit -q -m first; git log --format='%H %s'; git status --short",
        fx.p("pub")
    );
    let env = git_env(&fx.d);
    let argv = ["sh", "-c", script.as_str()];
    fx.reset();
    let mut base = Run::new(&fx.d, None).cwd(&fx.d);
    let mut with = Run::new(&fx.d, Some(fx.allow_policy())).cwd(&fx.d);
    for (k, v) in &env {
        base = base.env(k, v);
        with = with.env(k, v);
    }
    let b = base.cmd(&argv);
    fx.reset();
    let w = with.cmd(&argv);
    assert_eq!(b.code(), 0, "{}", b.stderr);
    assert_eq!(
        (w.code(), &w.stdout),
        (b.code(), &b.stdout),
        "stderr: {}",
        w.stderr
    );
    assert!(b.stdout.contains(" first"), "{}", b.stdout);

    // Denied: the index lock of a repository under secret/ cannot be made.
    let lock = fx.p("secret/repo/.git/index.lock");
    let setup = format!(
        "cd {} && git init -q -b main repo && echo x > repo/f",
        fx.p("secret")
    );
    let denied = format!("{setup} >/dev/null; cd repo && LD_PRELOAD=$PRELOAD git add f");
    // The repository is made without the library, then `git add` runs with
    // it: PRELOAD carries the library into the inner command only.
    let rules = json!([{"name": "secret", "kind": "file", "access": ["write"],
        "path": [fx.p("secret/repo/.git/index.lock")], "action": "deny"}]);
    let mut r = Run::new(&fx.d, Some(policy("enforce", &["deny"], rules)))
        .cwd(&fx.d)
        .env("PRELOAD", &common::library().display().to_string());
    for (k, v) in &env {
        r = r.env(k, v);
    }
    fx.reset();
    let out = r.env("LD_PRELOAD", "").cmd(&["sh", "-c", &denied]);
    assert!(
        out.stderr.contains(&format!(
            "fatal: Unable to create '{lock}': Permission denied"
        )),
        "stderr: {}",
        out.stderr
    );
    let e = out.one_event();
    assert_eq!(
        (e.rule.as_deref(), e.target.as_deref()),
        (Some("secret"), Some(lock.as_str()))
    );
    assert!(e.program.ends_with("/git"), "{}", e.program);
}

const PY: &str = "/usr/bin/python3";

fn python_program() -> String {
    std::fs::canonicalize(PY).unwrap().display().to_string()
}

#[test]
fn python_open() {
    let fx = Fx::new("prog-py-open");
    fx.same(&[
        PY,
        "-c",
        &format!("print(open('{}').read().upper())", fx.p("pub/a")),
    ]);
    let s = fx.p("secret/f");
    fx.scenario(
        &[PY, "-c", &format!("print(open('{s}').read())")],
        &format!("PermissionError: [Errno 13] Permission denied: '{s}'"),
        "secret",
        &python_program(),
        &s,
    );
}

#[test]
fn python_os_system() {
    let fx = Fx::new("prog-py-system");
    fx.same(&[
        PY,
        "-c",
        "import os; print(os.system('echo from-shell; exit 2') >> 8)",
    ]);
    // os.system runs /bin/sh (allowed), whose exec of id is denied.
    fx.scenario(
        &[
            PY,
            "-c",
            "import os, sys; sys.exit(os.system('/usr/bin/id -u') >> 8)",
        ],
        "/usr/bin/id: Permission denied",
        "no-id",
        "/usr/bin/dash",
        "/usr/bin/id",
    );
}

#[test]
fn python_subprocess() {
    let fx = Fx::new("prog-py-subprocess");
    fx.same(&[PY, "-c", "import subprocess; print(subprocess.run(['/usr/bin/uname','-s'], capture_output=True, text=True).stdout)"]);
    fx.scenario(
        &[
            PY,
            "-c",
            "import subprocess; subprocess.run(['/usr/bin/id', '-u'], check=True)",
        ],
        "PermissionError: [Errno 13] Permission denied: '/usr/bin/id'",
        "no-id",
        &python_program(),
        "/usr/bin/id",
    );
}

/// A loopback HTTP server (python3 -m http.server) for the duration of a test.
struct Server {
    child: std::process::Child,
    port: u16,
}

impl Server {
    fn start(root: &Path) -> Server {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let child = std::process::Command::new(PY)
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
            ])
            .current_dir(root)
            .env_remove("LD_PRELOAD")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "http.server did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Server { child, port }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn port_rules(port: u16) -> Value {
    json!([{"name": "no-local-web", "kind": "network", "direction": "outbound",
        "address": ["127.0.0.1/32"], "port": [port.to_string()], "action": "deny"}])
}

#[test]
fn python_socket() {
    let root = scratch("prog-py-socket-www");
    std::fs::write(root.join("index.txt"), "served\n").unwrap();
    let server = Server::start(&root);
    let d = scratch("prog-py-socket");
    let code = format!(
        "import socket; s = socket.create_connection(('127.0.0.1', {})); \
         s.sendall(b'GET /index.txt HTTP/1.0\\r\\n\\r\\n'); \
         print(s.makefile('rb').read().split(b'\\r\\n\\r\\n')[1].decode())",
        server.port
    );
    let base = Run::new(&d, None).cmd(&[PY, "-c", &code]);
    assert_eq!(base.stdout, "served\n\n", "{}", base.stderr);
    let allowed = Run::new(
        &d,
        Some(policy("enforce", &["deny"], port_rules(server.port + 1))),
    )
    .cmd(&[PY, "-c", &code]);
    assert_eq!(
        (allowed.code(), &allowed.stdout),
        (base.code(), &base.stdout),
        "{}",
        allowed.stderr
    );
    let denied = Run::new(
        &d,
        Some(policy("enforce", &["deny"], port_rules(server.port))),
    )
    .cmd(&[PY, "-c", &code]);
    assert!(
        denied
            .stderr
            .contains("PermissionError: [Errno 1] Operation not permitted"),
        "{}",
        denied.stderr
    );
    let e = denied.one_event();
    assert_eq!(
        e.target.as_deref(),
        Some(format!("127.0.0.1:{}", server.port).as_str())
    );
    assert_eq!(
        (e.rule.as_deref(), e.program.clone()),
        (Some("no-local-web"), python_program())
    );
    let permissive = Run::new(
        &d,
        Some(policy("permissive", &["deny"], port_rules(server.port))),
    )
    .cmd(&[PY, "-c", &code]);
    assert_eq!(
        (permissive.code(), &permissive.stdout),
        (base.code(), &base.stdout)
    );
    assert!(!permissive.one_event().enforced);
}

#[test]
fn curl_against_a_loopback_server() {
    let root = scratch("prog-curl-www");
    std::fs::write(root.join("page.html"), "<p>hello over http</p>\n").unwrap();
    let server = Server::start(&root);
    let d = scratch("prog-curl");
    let url = format!("http://127.0.0.1:{}/page.html", server.port);
    let argv = ["curl", "-sS", "--noproxy", "*", &url];
    let base = Run::new(&d, None).cmd(&argv);
    assert_eq!(base.stdout, "<p>hello over http</p>\n", "{}", base.stderr);
    let allowed = Run::new(
        &d,
        Some(policy("enforce", &["deny"], port_rules(server.port + 1))),
    )
    .cmd(&argv);
    assert_eq!(
        (allowed.code(), &allowed.stdout),
        (base.code(), &base.stdout),
        "{}",
        allowed.stderr
    );
    let denied = Run::new(
        &d,
        Some(policy("enforce", &["deny"], port_rules(server.port))),
    )
    .cmd(&argv);
    assert_eq!(
        denied.code(),
        7,
        "curl's 'could not connect' code; stderr {}",
        denied.stderr
    );
    assert!(
        denied
            .stderr
            .contains("Failed to connect to 127.0.0.1 port"),
        "{}",
        denied.stderr
    );
    let e = denied.one_event();
    assert_eq!(
        (e.rule.as_deref(), e.program.as_str()),
        (Some("no-local-web"), "/usr/bin/curl")
    );
    assert_eq!(
        e.target.as_deref(),
        Some(format!("127.0.0.1:{}", server.port).as_str())
    );
    let permissive = Run::new(
        &d,
        Some(policy("permissive", &["deny"], port_rules(server.port))),
    )
    .cmd(&argv);
    assert_eq!(
        (permissive.code(), &permissive.stdout),
        (base.code(), &base.stdout)
    );
    assert!(!permissive.one_event().enforced);
}

//! The learning round trip on real workloads under the real library
//! (`scripts/build-lib --debug`, or `LDGUARD_TEST_LIB`): record with
//! `log: ["behavior"]`, `ldguard learn`, validate, switch to `enforce`,
//! replay the same workload with zero denials, then show that a new
//! behaviour is denied by a named rule.
//!
//! Workloads (tests/workloads/): a python3 web app on loopback driven by
//! curl, a bash script using coreutils and tar, and nginx (run as root on a
//! loopback port with its own prefix).

use ldguard_events::{Event, EventReader};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn library() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        if let Ok(lib) = std::env::var("LDGUARD_TEST_LIB") {
            return PathBuf::from(lib);
        }
        let status = Command::new(root().join("scripts/build-lib"))
            .arg("--debug")
            .status()
            .expect("run scripts/build-lib");
        assert!(status.success(), "scripts/build-lib --debug failed");
        root().join("target/dist/x86_64-linux-gnu/libldguard.so")
    })
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn workload(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/workloads")
        .join(name)
}

fn ldguard() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ldguard"))
}

/// A scratch directory everyone can read (nginx workers run as nobody).
/// Its name is the same in the recording and the replay, and not random
/// (a random name would be generalised as a per-run temporary name, which
/// is tested on its own by the script's `mktemp`).
fn scratch(name: &str) -> Scratch {
    let dir = std::env::temp_dir()
        .join("ldguard-learn-tests")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for d in [dir.parent().unwrap(), &dir] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    Scratch(dir)
}

struct Scratch(PathBuf);

impl Scratch {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A free loopback port outside the ephemeral range, so that the learned
/// listen rule names it exactly.
fn free_port() -> u16 {
    let seed = std::process::id() as u64 * 7919
        + Instant::now().elapsed().subsec_nanos() as u64
        + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos() as u64;
    for i in 0..500u64 {
        let port = 20000 + ((seed + i * 104_729) % 10_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 20000-29999");
}

/// Where one run writes its events, world-writable (nginx workers write
/// after dropping privileges).
fn events_file(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, "").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    path
}

fn under_library(cmd: &mut Command, policy: &Path, events: &Path) {
    cmd.env("LD_PRELOAD", library())
        .env("LDGUARD_POLICY", policy)
        .env("LDGUARD_EVENTS", format!("file:{}", events.display()))
        .env_remove("LDGUARD_MODE")
        .env_remove("LDGUARD_CONFIG");
}

fn read_events(path: &Path) -> Vec<Event> {
    let file = std::fs::File::open(path).unwrap();
    EventReader::new(BufReader::new(file))
        .map(|e| e.unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .collect()
}

fn denials(path: &Path) -> Vec<Event> {
    read_events(path)
        .into_iter()
        .filter(|e| matches!(e.action.as_str(), "deny" | "kill"))
        .collect()
}

/// The policy that records behaviour.
fn recording_policy(dir: &Path) -> PathBuf {
    let path = dir.join("record.json");
    std::fs::write(
        &path,
        r#"{"apiVersion":"ldguard.policy/v1","name":"record","mode":"permissive","log":["behavior"]}"#,
    )
    .unwrap();
    path
}

/// `ldguard learn`, `ldguard policy validate`, the rule-count bound, and
/// the same policy switched to `enforce`.
fn learn(dir: &Path, events: &Path, name: &str, max_rules: usize) -> PathBuf {
    let learned = dir.join(format!("{name}.json"));
    let out = ldguard()
        .arg("learn")
        .arg(events)
        .args(["--name", name, "-o"])
        .arg(&learned)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "learn failed: {stderr}");
    assert!(!stderr.contains("dropped"), "events were lost: {stderr}");
    let out = ldguard()
        .args(["policy", "validate"])
        .arg(&learned)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "learned policy invalid: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&learned).unwrap()).unwrap();
    assert_eq!(doc["mode"], "permissive");
    let rules = doc["rules"].as_array().unwrap();
    let names: Vec<&str> = rules.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert!(
        rules.len() <= max_rules,
        "{name}: {} rules (bound {max_rules}): {names:?}",
        rules.len()
    );
    for r in rules {
        assert!(r["description"].is_string(), "{r}");
    }
    doc["mode"] = "enforce".into();
    let enforced = dir.join(format!("{name}-enforce.json"));
    std::fs::write(&enforced, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    enforced
}

fn assert_denied(events: &[Event], call: &str, target_part: &str, rule: &str) {
    assert!(
        events.iter().any(|e| e.action == "deny"
            && e.enforced
            && e.call == call
            && e.target.as_deref().is_some_and(|t| t.contains(target_part))
            && e.rule.as_deref() == Some(rule)),
        "no enforced deny of {call} {target_part} by rule {rule} in {:#?}",
        events
    );
}

fn curl(port: u16, path: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-m", "10", "-w", "\n%{http_code}"])
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok() {
        if Instant::now() > deadline {
            // Logs named in `what` help more than the bare timeout.
            let logs: String = what
                .split(['(', ')'])
                .filter(|p| p.starts_with('/'))
                .map(|p| std::fs::read_to_string(p).unwrap_or_default())
                .collect();
            panic!("timed out waiting for {what}\n{logs}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------- python

struct App {
    child: std::process::Child,
    port: u16,
}

impl App {
    fn start(dir: &Path, port: u16, policy: &Path, events: &Path) -> App {
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.arg(workload("app.py"))
            .arg(port.to_string())
            .arg(dir.join("www"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        under_library(&mut cmd, policy, events);
        let mut child = cmd.spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the app did not start");
        App { child, port }
    }

    /// The recorded workload: pages, a listing, a missing page.
    fn serve_pages(&self) {
        for (path, code) in [
            ("/", 200),
            ("/index.html", 200),
            ("/data.json", 200),
            ("/missing", 404),
        ] {
            assert_eq!(curl(self.port, path).0, code, "{path}");
        }
    }

    fn attempt(&self, path: &str) -> Value {
        let (code, body) = curl(self.port, path);
        assert_eq!(code, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    fn quit(mut self) {
        assert_eq!(curl(self.port, "/quit").0, 200);
        let status = wait_child(&mut self.child);
        assert!(status.success(), "app exit: {status}");
    }
}

fn wait_child(child: &mut std::process::Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("process {} did not exit", child.id());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn python_web_app_round_trip() {
    let dir = scratch("python");
    let d = dir.path();
    std::fs::create_dir(d.join("www")).unwrap();
    std::fs::write(d.join("www/index.html"), "<h1>hello</h1>").unwrap();
    std::fs::write(d.join("www/data.json"), "{\"a\":1}").unwrap();
    let port = free_port();

    let recorded = events_file(d, "record.jsonl");
    let app = App::start(d, port, &recording_policy(d), &recorded);
    app.serve_pages();
    app.quit();
    let policy = learn(d, &recorded, "python-app", 14);

    let replay = events_file(d, "replay.jsonl");
    let app = App::start(d, port, &policy, &replay);
    app.serve_pages();
    assert_eq!(
        denials(&replay),
        [],
        "the recorded workload was denied something"
    );

    let never_used = free_port();
    let etc_file = format!("/etc/ldguard-learn-{}", std::process::id());
    let shell = app.attempt("/shell");
    let connect = app.attempt(&format!("/connect?port={never_used}"));
    let write = app.attempt(&format!("/write?path={etc_file}"));
    app.quit();
    let _ = std::fs::remove_file(&etc_file);
    assert_eq!(
        (shell["ok"].clone(), shell["errno"].clone()),
        (false.into(), 13.into()),
        "{shell}"
    );
    assert_eq!(connect["errno"], 1, "EPERM, not ECONNREFUSED: {connect}");
    assert_eq!(write["errno"], 13, "{write}");
    let denied = denials(&replay);
    assert_denied(&denied, "execv", "/bin/sh", "unlearned-exec");
    assert_denied(
        &denied,
        "connect",
        &format!(":{never_used}"),
        "unlearned-outbound",
    );
    assert_denied(&denied, "open64", &etc_file, "unlearned-file");
}

// ---------------------------------------------------------------- script

fn run_script(policy: &Path, events: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new("/bin/bash");
    cmd.arg(workload("script.sh")).args(args);
    under_library(&mut cmd, policy, events);
    cmd.output().unwrap()
}

#[test]
fn shell_script_with_coreutils_and_tar_round_trip() {
    let dir = scratch("script");
    let d = dir.path();
    let recorded = events_file(d, "record.jsonl");
    let out = run_script(&recording_policy(d), &recorded, &["normal"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let policy = learn(d, &recorded, "script", 16);

    // The replay makes a new temporary directory: the learned globs must
    // cover it.
    let replay = events_file(d, "replay.jsonl");
    let out = run_script(&policy, &replay, &["normal"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), " 5 total\nline 3\n");
    assert_eq!(denials(&replay), []);

    let out = run_script(&policy, &replay, &["shell"]);
    assert!(!out.status.success());
    let port = free_port().to_string();
    let out = run_script(&policy, &replay, &["connect", &port]);
    assert!(!out.status.success());
    let out = run_script(&policy, &replay, &["etc"]);
    assert!(!out.status.success());
    assert!(!Path::new("/etc/ldguard-learn-test").exists());
    let denied = denials(&replay);
    assert_denied(&denied, "execve", "/bin/sh", "unlearned-exec");
    // bash resolves the /dev/tcp host first: the attempt is stopped there.
    assert_denied(&denied, "getaddrinfo", "127.0.0.1", "unlearned-network");
    assert_denied(&denied, "open", "/etc/ldguard-learn-test", "unlearned-file");
}

// ----------------------------------------------------------------- nginx

struct Nginx {
    prefix: PathBuf,
    port: u16,
}

impl Nginx {
    fn new(dir: &Path) -> Nginx {
        let prefix = dir.join("nginx");
        for sub in ["logs", "tmp", "html"] {
            std::fs::create_dir_all(prefix.join(sub)).unwrap();
        }
        std::fs::write(prefix.join("html/index.html"), "<h1>nginx</h1>").unwrap();
        std::fs::write(prefix.join("html/a.json"), "{}").unwrap();
        Nginx {
            prefix,
            port: free_port(),
        }
    }

    fn configure(&self, upstream: u16, access_log: &str) -> PathBuf {
        let text = std::fs::read_to_string(workload("nginx.conf.in"))
            .unwrap()
            .replace("@PORT@", &self.port.to_string())
            .replace("@PREFIX@", &self.prefix.display().to_string())
            .replace("@UPSTREAM@", &upstream.to_string())
            .replace("@ACCESS_LOG@", access_log);
        let conf = self.prefix.join("nginx.conf");
        std::fs::write(&conf, text).unwrap();
        conf
    }

    fn pid_file(&self) -> PathBuf {
        self.prefix.join("nginx.pid")
    }

    /// Starts the daemon; returns the launcher's output (nginx forks and
    /// the launcher exits).
    fn start(&self, conf: &Path, policy: &Path, events: &Path) -> Output {
        let mut cmd = Command::new("/usr/sbin/nginx");
        cmd.arg("-p").arg(&self.prefix).arg("-c").arg(conf);
        under_library(&mut cmd, policy, events);
        let out = cmd.output().unwrap();
        if out.status.success() {
            wait_for("nginx to listen", || {
                std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            });
        }
        out
    }

    fn signal(&self, sig: &str) {
        let pid = std::fs::read_to_string(self.pid_file()).unwrap();
        let status = Command::new("kill")
            .args([sig, pid.trim()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn stop(&self) {
        let pid = std::fs::read_to_string(self.pid_file()).unwrap();
        self.signal("-QUIT");
        // The daemon may stay a zombie of whoever adopted it.
        let stat = PathBuf::from(format!("/proc/{}/stat", pid.trim()));
        wait_for("nginx to exit", || {
            std::fs::read_to_string(&stat).map_or(true, |s| {
                s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
        });
        // Workers exit after the master has gone; give them a moment.
        wait_for("nginx workers to exit", || {
            std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err()
        });
    }

    fn serve_pages(&self) {
        for (path, code) in [
            ("/", 200),
            ("/index.html", 200),
            ("/a.json", 200),
            ("/missing", 404),
        ] {
            assert_eq!(curl(self.port, path).0, code, "{path}");
        }
    }
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

#[test]
fn nginx_round_trip() {
    assert!(
        is_root(),
        "this test runs nginx as root (its workers switch to nobody)"
    );
    let dir = scratch("nginx");
    let d = dir.path();
    let nginx = Nginx::new(d);
    let upstream = free_port();
    let access_log = nginx.prefix.join("logs/access.log").display().to_string();
    let conf = nginx.configure(upstream, &access_log);

    let recorded = events_file(d, "record.jsonl");
    let out = nginx.start(&conf, &recording_policy(d), &recorded);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    nginx.serve_pages();
    nginx.stop();
    let policy = learn(d, &recorded, "nginx", 15);

    let replay = events_file(d, "replay.jsonl");
    let out = nginx.start(&conf, &policy, &replay);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    nginx.serve_pages();
    assert_eq!(denials(&replay), []);

    // A port it never connected to: the proxy location.
    assert_eq!(curl(nginx.port, "/upstream").0, 502);
    // A binary upgrade (USR2: rename the pid file, exec a new nginx) was
    // never seen: stopped at its first new step.
    nginx.signal("-USR2");
    let error_log = nginx.prefix.join("logs/error.log");
    wait_for(
        &format!("the upgrade attempt ({})", error_log.display()),
        || denials(&replay).len() >= 2,
    );
    nginx.stop();
    let denied = denials(&replay);
    assert_denied(
        &denied,
        "connect",
        &format!("127.0.0.1:{upstream}"),
        "unlearned-outbound",
    );
    assert_denied(&denied, "rename", "nginx.pid.oldbin", "unlearned-file");

    // Writing under /etc: an access log moved there.
    let etc_log = format!("/etc/ldguard-learn-nginx-{}.log", std::process::id());
    let conf = nginx.configure(upstream, &etc_log);
    let out = nginx.start(&conf, &policy, &replay);
    let _ = std::fs::remove_file(&etc_log);
    assert!(
        !out.status.success(),
        "nginx started with its log under /etc"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_denied(&denials(&replay), "open64", &etc_log, "unlearned-file");
}

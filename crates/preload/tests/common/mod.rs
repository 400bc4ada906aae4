//! Shared helpers for the preload integration tests: the library under
//! test, scratch directories, C test programs, and running a command with
//! and without the library.
#![allow(dead_code)]

use ldguard_events::Event;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The cdylib next to this test binary (target/<profile>/libldguard.so),
/// or `LDGUARD_TEST_LIB` (scripts/test points it at the shipped build,
/// target/dist/x86_64-linux-gnu/libldguard.so, as for the other crates'
/// end-to-end tests).
///
/// Cargo builds only the rlib for integration tests, so the cdylib is
/// (re)built here once per test binary (a no-op when it is up to date).
pub fn library() -> PathBuf {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        if let Some(p) = std::env::var_os("LDGUARD_TEST_LIB") {
            return PathBuf::from(p);
        }
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe.parent().unwrap().parent().unwrap();
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .args(["build", "-q", "-p", "ldguard-preload", "--lib"])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if release {
            build.arg("--release");
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "building libldguard.so failed");
        // Its HTTPS client, loaded from next to it. A separate build: built
        // together, cargo would compile the client into libldguard.so too.
        let mut net = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        net.args(["build", "-q", "-p", "ldguard-net", "--lib"])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if release {
            net.arg("--release");
        }
        let status = net.status().expect("cargo runs");
        assert!(status.success(), "building libldguard_net.so failed");
        let lib = profile_dir.join("libldguard.so");
        assert!(
            lib.is_file(),
            "{} is missing after cargo build",
            lib.display()
        );
        lib
    })
    .clone()
}

/// A fresh scratch directory, canonical (no symlinks in its path).
pub fn scratch(name: &str) -> PathBuf {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("preload-tests");
    let dir = base.join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::canonicalize(dir).unwrap()
}

/// Compiles `tests/c/<name>.c` once into the target directory and returns
/// the executable. Test processes run side by side (nextest starts one per
/// test): a file lock makes the others wait for the first compiler and
/// then find the program fresh, instead of each replacing it while another
/// runs it (its `/proc/self/exe` then says `(deleted)`, and the events
/// name another program).
pub fn c_program(name: &str, extra: &[&str]) -> PathBuf {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _g = LOCK.lock().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/c")
        .join(format!("{name}.c"));
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("c-{name}"));
    let lock = std::fs::File::create(out.with_extension("lock")).unwrap();
    lock.lock().unwrap();
    // The program is as new as its source and the headers beside it.
    let newest = std::fs::read_dir(src.parent().unwrap())
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "h"))
        .filter_map(|e| e.metadata().and_then(|m| m.modified()).ok())
        .chain(src.metadata().and_then(|m| m.modified()).ok())
        .max();
    let fresh = out
        .metadata()
        .and_then(|o| o.modified())
        .is_ok_and(|built| newest.is_some_and(|n| built >= n));
    if !fresh {
        let tmp = out.with_extension(format!("tmp{}", std::process::id()));
        let status = Command::new("cc")
            .args(["-Wall", "-Wextra", "-Werror", "-O1", "-g", "-o"])
            .arg(&tmp)
            .arg(&src)
            .args(extra)
            .status()
            .expect("cc runs");
        assert!(status.success(), "compiling {} failed", src.display());
        std::fs::rename(&tmp, &out).unwrap();
    }
    out
}

pub fn probe() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| c_program("probe", &["-ldl"])).clone()
}

/// A policy document with `rules`, all defaults allow, the given mode and
/// `log`.
pub fn policy(mode: &str, log: &[&str], rules: Value) -> Value {
    serde_json::json!({
        "apiVersion": "ldguard.policy/v1",
        "name": "test",
        "mode": mode,
        "log": log,
        "rules": rules,
    })
}

/// One way of running a command: with the library and a policy, or
/// without the library at all (the baseline).
pub struct Run {
    pub dir: PathBuf,
    pub policy: Option<Value>,
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
    pub stdin: Option<Vec<u8>>,
}

pub struct Outcome {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub events: Vec<Event>,
}

impl Outcome {
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }

    /// Decision events (not the library's status notes).
    pub fn decisions(&self) -> Vec<&Event> {
        self.events.iter().filter(|e| e.kind != "status").collect()
    }

    /// Decision events the library wrote to stderr (its fallback when the
    /// event file cannot be opened).
    pub fn stderr_decisions(&self) -> Vec<Event> {
        self.stderr
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).unwrap())
            .filter(|e: &Event| e.kind != "status")
            .collect()
    }

    /// Asserts exactly one decision event, and returns it.
    pub fn one_event(&self) -> &Event {
        let d = self.decisions();
        assert_eq!(
            d.len(),
            1,
            "expected exactly one event, got {d:#?}\nstderr: {}",
            self.stderr
        );
        d[0]
    }
}

impl Run {
    pub fn new(dir: &Path, policy: Option<Value>) -> Run {
        Run {
            dir: dir.to_owned(),
            policy,
            env: Vec::new(),
            cwd: None,
            stdin: None,
        }
    }

    pub fn env(mut self, k: &str, v: &str) -> Run {
        self.env.push((k.into(), v.into()));
        self
    }

    pub fn cwd(mut self, d: &Path) -> Run {
        self.cwd = Some(d.to_owned());
        self
    }

    pub fn cmd<S: AsRef<std::ffi::OsStr>>(&self, argv: &[S]) -> Outcome {
        let events = self.dir.join(format!("events-{}.jsonl", unique()));
        let mut c = Command::new(&argv[0]);
        c.args(&argv[1..])
            .env_remove("LD_PRELOAD")
            .env_remove("LDGUARD_MODE");
        for var in ["LDGUARD_POLICY", "LDGUARD_EVENTS", "LDGUARD_CONFIG"] {
            c.env_remove(var);
        }
        if let Some(p) = &self.policy {
            let path = self.dir.join(format!("policy-{}.json", unique()));
            std::fs::write(&path, serde_json::to_vec_pretty(p).unwrap()).unwrap();
            c.env("LD_PRELOAD", library())
                .env("LDGUARD_POLICY", &path)
                .env("LDGUARD_EVENTS", format!("file:{}", events.display()));
        }
        for (k, v) in &self.env {
            c.env(k, v);
        }
        if let Some(d) = &self.cwd {
            c.current_dir(d);
        }
        c.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let out = run_with_timeout(c, self.stdin.clone(), std::time::Duration::from_secs(120));
        Outcome {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            events: read_rotated_events(&events),
        }
    }
}

/// The run's events, the rotated files' (`.3` oldest, then `.2`, `.1`)
/// before the current one's: a flood of events rotates the file.
fn read_rotated_events(path: &Path) -> Vec<Event> {
    let mut all = Vec::new();
    for n in (1..=3).rev() {
        all.extend(read_events(Path::new(&format!("{}.{n}", path.display()))));
    }
    all.extend(read_events(path));
    all
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

pub fn run_with_timeout(
    mut c: Command,
    stdin: Option<Vec<u8>>,
    limit: std::time::Duration,
) -> Output {
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {c:?}: {e}"));
    if let Some(data) = stdin {
        use std::io::Write;
        let mut s = child.stdin.take().unwrap();
        std::thread::spawn(move || {
            let _ = s.write_all(&data);
        });
    }
    let pid = child.id();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let d2 = done.clone();
    std::thread::spawn(move || {
        let start = std::time::Instant::now();
        while start.elapsed() < limit {
            std::thread::sleep(std::time::Duration::from_millis(100));
            if d2.load(std::sync::atomic::Ordering::Relaxed) {
                return;
            }
        }
        // Hung under the library: kill it so the test fails instead of hanging.
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    });
    let out = child.wait_with_output().unwrap();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    out
}

pub fn read_events(path: &Path) -> Vec<Event> {
    match std::fs::read_to_string(path) {
        Ok(text) => text
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("bad event line {l:?}: {e}"))
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Runs `program EMPTY-DIR` without the library and then with `policy`,
/// each with a fresh directory under `dir`; both runs must exit 0 with no
/// decision. Returns the two outputs (without, with) for the caller to
/// compare.
pub fn stdout_without_and_with(dir: &Path, program: &Path, policy: Value) -> (String, String) {
    let program = program.display().to_string();
    let mut outs = Vec::new();
    for (name, p) in [("base", None), ("with", Some(policy))] {
        let empty = dir.join(name);
        std::fs::create_dir_all(&empty).unwrap();
        let out = Run::new(dir, p).cmd(&[program.as_str(), empty.to_str().unwrap()]);
        assert_eq!(out.code(), 0, "{name}: {}", out.stderr);
        assert!(out.decisions().is_empty(), "{:#?}", out.events);
        outs.push(out.stdout);
    }
    let with = outs.pop().unwrap();
    (outs.pop().unwrap(), with)
}

/// Runs `argv` without the library and with `policy` (expected to allow
/// everything it does), and asserts identical stdout and exit code.
pub fn assert_same_as_baseline<S: AsRef<std::ffi::OsStr>>(
    dir: &Path,
    policy: Value,
    argv: &[S],
    setup: &dyn Fn(),
) {
    setup();
    let base = Run::new(dir, None).cwd(dir).cmd(argv);
    setup();
    let with = Run::new(dir, Some(policy)).cwd(dir).cmd(argv);
    assert_eq!(
        (with.code(), &with.stdout),
        (base.code(), &base.stdout),
        "with the library (stderr: {}) vs without (stderr: {})",
        with.stderr,
        base.stderr
    );
    assert!(
        with.decisions()
            .iter()
            .all(|e| e.action == "allow" || !e.enforced),
        "{:#?}",
        with.events
    );
}

/// The numbers of a race program's `name N name N …` line, asserting
/// there are `n` of them (`what` names the race in messages).
pub fn race_counts(out: &Outcome, what: &str, n: usize) -> Vec<u64> {
    let words: Vec<&str> = out.stdout.split_whitespace().collect();
    assert_eq!(words.len(), 2 * n, "{what}: {} {}", out.stdout, out.stderr);
    words
        .iter()
        .skip(1)
        .step_by(2)
        .map(|w| w.parse().unwrap())
        .collect()
}

/// Asserts at least one event, and that every one is an enforced deny by
/// `rule` (none: no rule could be named) of `program`, with a target or
/// resolved path that `names` accepts.
pub fn assert_all_denied(
    events: &[&Event],
    what: &str,
    rule: Option<&str>,
    program: &str,
    names: impl Fn(&str) -> bool,
) {
    assert!(!events.is_empty(), "{what}: no deny reported");
    for e in events {
        assert_eq!(e.action, "deny", "{e:#?}");
        assert!(e.enforced, "{e:#?}");
        assert_eq!(e.rule.as_deref(), rule, "{what}: {e:#?}");
        assert_eq!(e.program, program, "{e:#?}");
        let named = [e.target.as_deref(), e.resolved.as_deref()];
        assert!(
            named.iter().flatten().any(|t| names(t)),
            "{what}: the denied object is not named in {e:#?}"
        );
    }
}

//! Shared helpers for the server's end-to-end tests: a real `ldguard-server`
//! process on loopback, tokens made with its own command, the real `ldguard`
//! CLI and the real libldguard.so.
#![allow(dead_code)]

pub mod filters;
pub mod free_text;
pub mod postgres;
pub mod scenario;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub fn server_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ldguard-server"))
}

/// A workspace binary next to ours, built here when missing (or always,
/// without `reuse`). `scripts/test` builds the workspace first.
fn built(package: &str, file: &str, extra: &[&str], reuse: bool) -> PathBuf {
    let dir = server_exe().parent().unwrap().to_path_buf();
    let path = dir.join(file);
    if reuse && path.is_file() {
        return path;
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-q", "-p", package])
        .args(extra)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building {package} failed");
    assert!(path.is_file(), "{} missing", path.display());
    path
}

/// The `ldguard` CLI.
pub fn cli_exe() -> PathBuf {
    static CLI: OnceLock<PathBuf> = OnceLock::new();
    CLI.get_or_init(|| built("ldguard-cli", "ldguard", &[], true))
        .clone()
}

/// The library under test: `LDGUARD_TEST_LIB` (scripts/test points it at
/// the shipped build in target/dist), else the workspace's debug build.
pub fn library() -> PathBuf {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| match std::env::var_os("LDGUARD_TEST_LIB") {
        Some(lib) => PathBuf::from(lib),
        None => {
            // The library sends events and fetches policies through
            // libldguard_net.so, which it loads from its own directory.
            built("ldguard-net", "libldguard_net.so", &["--lib"], false);
            built("ldguard-preload", "libldguard.so", &["--lib"], false)
        }
    })
    .clone()
}

/// A running `ldguard-server serve`, stopped (SIGTERM, then waited for) on drop.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub database: String,
    pub dir: PathBuf,
}

impl Server {
    pub fn start(dir: &Path, database: &str) -> Server {
        Server::start_with(dir, database, &[])
    }

    pub fn start_with(dir: &Path, database: &str, extra: &[&str]) -> Server {
        let mut child = Command::new(server_exe())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .env("LDGUARD_DATABASE", database)
            .env("LDGUARD_LOG", "info")
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join("server.log"))
                    .unwrap(),
            ))
            .spawn()
            .expect("ldguard-server starts");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| {
                panic!(
                    "server did not start: {line:?}\n{}",
                    std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
                )
            })
            .to_string();
        Server {
            child,
            url,
            database: database.to_string(),
            dir: dir.to_path_buf(),
        }
    }

    /// SIGTERM, then waits for the exit; returns whether it exited cleanly.
    pub fn stop(&mut self) -> bool {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().map(|s| s.success()).unwrap_or(false)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.stop();
        }
    }
}

/// `ldguard-server token create`; writes the secret to `dir/NAME.token`.
pub fn token(dir: &Path, database: &str, role: &str, images: &[&str], name: &str) -> PathBuf {
    let mut cmd = Command::new(server_exe());
    cmd.args(["token", "create", "--role", role, "--name", name])
        .env("LDGUARD_DATABASE", database)
        .current_dir(dir);
    if !images.is_empty() {
        cmd.arg("--images").args(images);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let secret = String::from_utf8(out.stdout).unwrap();
    assert!(secret.trim().starts_with("ldg_"), "{secret:?}");
    let path = dir.join(format!("{name}.token"));
    std::fs::write(&path, secret).unwrap();
    path
}

/// Runs `ldguard --server URL --token-file F ARGS…`.
pub fn cli(server: &Server, token: &Path, args: &[&str]) -> Output {
    Command::new(cli_exe())
        .arg("--server")
        .arg(&server.url)
        .arg("--token-file")
        .arg(token)
        .args(args)
        .output()
        .unwrap()
}

/// Like [`cli`], asserting success; returns stdout.
pub fn cli_ok(server: &Server, token: &Path, args: &[&str]) -> String {
    let out = cli(server, token, args);
    assert!(
        out.status.success(),
        "ldguard {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `ldguard events search … --format json`, as JSON values.
pub fn search(server: &Server, token: &Path, filters: &[&str]) -> Vec<Value> {
    let mut args = vec!["events", "search", "--format", "json"];
    args.extend_from_slice(filters);
    cli_ok(server, token, &args)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON event per line"))
        .collect()
}

pub fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A fresh scratch directory under the target directory.
pub fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("server-tests")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::canonicalize(dir).unwrap()
}

/// A plain API call with a bearer token: (status, JSON body or Null).
pub fn api(method: &str, url: &str, token: &Path, body: Option<&str>) -> (u16, Value) {
    api_with(method, url, token, body, &[])
}

pub fn api_with(
    method: &str,
    url: &str,
    token: &Path,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let secret = std::fs::read_to_string(token).unwrap();
    let mut req = ureq::request(method, url)
        .set("Authorization", &format!("Bearer {}", secret.trim()))
        .timeout(Duration::from_secs(60));
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let result = match body {
        Some(b) => req.set("Content-Type", "application/json").send_string(b),
        None => req.call(),
    };
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    let status = response.status();
    let text = response.into_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// One event as the library writes it, for image `image`, marked by `n`.
pub fn event(image: &str, n: u64) -> Value {
    serde_json::json!({
        "time": "2026-11-23T06:30:00.123456Z", "container": "c1", "image": image,
        "pid": 31, "ppid": 1, "uid": 33, "program": "/usr/sbin/nginx", "call": "openat",
        "kind": "file", "target": format!("/srv/file-{n}"), "access": "read",
        "action": "deny", "enforced": true, "rule": "r", "severity": "high",
        "policy": "web", "mode": "enforce", "message": format!("marker-{n}")
    })
}

/// Total events the server holds for `filters` (a query string), through
/// the aggregate endpoint.
pub fn count(server: &Server, token: &Path, filters: &str) -> i64 {
    let (status, body) = api(
        "GET",
        &format!(
            "{}/api/v1/events/aggregate?by=action&bucket=100000000&{filters}",
            server.url
        ),
        token,
        None,
    );
    assert_eq!(status, 200, "{body}");
    body["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["count"].as_i64().unwrap())
        .sum()
}

//! ldguard-server for the `serve` tests: the workspace's binary on
//! loopback, its tokens, and its API.
#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn ok(mut c: Command) -> std::process::Output {
    let out = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
    assert!(
        out.status.success(),
        "{c:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// ldguard-server from this workspace, built when missing.
pub fn server_exe() -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_ldguard-layer"))
        .parent()
        .unwrap()
        .join("ldguard-server");
    if !path.is_file() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-q", "-p", "ldguard-server"])
            .current_dir(repo())
            .status()
            .unwrap();
        assert!(status.success(), "building ldguard-server failed");
    }
    path
}

/// A child process killed on drop, whatever happens.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `cmd` and returns it with the URL from its "listening on" line.
pub fn start_listening(mut cmd: Command, log: &Path) -> (Running, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(log).unwrap()))
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| {
            panic!(
                "{cmd:?} did not start: {line:?}\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            )
        })
        .to_string();
    (Running(child), url)
}

pub fn create_token(dir: &Path, database: &str, role: &str, images: &[&str]) -> PathBuf {
    let mut c = Command::new(server_exe());
    c.args(["token", "create", "--role", role, "--name", role])
        .env("LDGUARD_DATABASE", database)
        .current_dir(dir);
    if !images.is_empty() {
        c.arg("--images").args(images);
    }
    let out = ok(c);
    let path = dir.join(format!("{role}.token"));
    std::fs::write(&path, &out.stdout).unwrap();
    path
}

pub fn api(method: &str, url: &str, token: &Path, body: Option<Value>) -> (u16, Value) {
    let secret = std::fs::read_to_string(token).unwrap();
    let req = ureq::request(method, url)
        .set("Authorization", &format!("Bearer {}", secret.trim()))
        .timeout(Duration::from_secs(30));
    let result = match body {
        Some(b) => req
            .set("Content-Type", "application/json")
            .send_string(&b.to_string()),
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

/// `ldguard-server serve` on a free loopback port: the process and its URL.
pub fn start_server(dir: &Path, database: &str) -> (Running, String) {
    let mut c = Command::new(server_exe());
    c.args(["serve", "--listen", "127.0.0.1:0"])
        .env("LDGUARD_DATABASE", database)
        .current_dir(dir);
    start_listening(c, &dir.join("server.log"))
}

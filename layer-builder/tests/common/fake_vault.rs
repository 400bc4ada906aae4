//! A fake HashiCorp Vault. No Vault server is packaged for Debian, so the
//! tests run against this stand-in, which answers as Vault's documented
//! HTTP API does for what the instrumenter uses:
//! - KV v1 read: `GET /v1/<mount>/<path>` → `{"data": {…}, "lease_duration": …}`;
//! - KV v2 read: `GET /v1/<mount>/data/<path>` → `{"data": {"data": {…}, "metadata": {…}}}`;
//!   a v2 mount read without `data/` → 404 with Vault's "Invalid path for a
//!   versioned K/V secrets engine" warning;
//! - `GET /v1/sys/internal/ui/mounts/<mount>` → `{"data": {"type": "kv", "options": {"version": "2"}}}`;
//! - errors as `{"errors": [...]}`: 403 "permission denied" for a missing,
//!   unknown or unauthorised `X-Vault-Token`, 503 "Vault is sealed", 404 with
//!   an empty list for a missing secret.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct VaultState {
    /// mount → KV version.
    pub mounts: BTreeMap<String, u8>,
    /// (mount, path) → key/value map.
    pub secrets: BTreeMap<(String, String), Value>,
    /// token → path prefixes (`mount/…` as in an ACL policy) it may read.
    pub tokens: BTreeMap<String, Vec<String>>,
    pub sealed: bool,
    /// Every request: (method, path, whether a token header came).
    pub requests: Vec<(String, String, bool)>,
}

pub struct FakeVault {
    pub addr: String,
    pub state: Arc<Mutex<VaultState>>,
}

impl FakeVault {
    pub fn start() -> FakeVault {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(VaultState::default()));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = shared.clone();
                std::thread::spawn(move || serve(stream, &state));
            }
        });
        FakeVault { addr, state }
    }

    pub fn mount(&self, mount: &str, version: u8) {
        self.state
            .lock()
            .unwrap()
            .mounts
            .insert(mount.into(), version);
    }

    pub fn put(&self, mount: &str, path: &str, data: Value) {
        self.state
            .lock()
            .unwrap()
            .secrets
            .insert((mount.into(), path.into()), data);
    }

    pub fn token(&self, token: &str, may_read: &[&str]) {
        self.state.lock().unwrap().tokens.insert(
            token.into(),
            may_read.iter().map(|s| s.to_string()).collect(),
        );
    }

    pub fn seal(&self, sealed: bool) {
        self.state.lock().unwrap().sealed = sealed;
    }
}

fn serve(stream: TcpStream, state: &Mutex<VaultState>) {
    let mut reader = BufReader::new(&stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut token = None;
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("x-vault-token") {
                token = Some(v.trim().to_string());
            }
        }
        line.clear();
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let (status, body) = answer(state, &method, &path, token.as_deref());
    let body = body.to_string();
    let reason = match status {
        200 => "OK",
        403 => "Forbidden",
        404 => "Not Found",
        503 => "Service Unavailable",
        _ => "Error",
    };
    let mut out = &stream;
    let _ = write!(
        out,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn answer(
    state: &Mutex<VaultState>,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> (u16, Value) {
    let mut s = state.lock().unwrap();
    s.requests
        .push((method.to_string(), path.to_string(), token.is_some()));
    if s.sealed {
        return (503, json!({"errors": ["Vault is sealed"]}));
    }
    let denied = (403, json!({"errors": ["permission denied"]}));
    let Some(allowed) = token.and_then(|t| s.tokens.get(t)).cloned() else {
        return denied;
    };
    if method != "GET" {
        return (405, json!({"errors": ["unsupported operation"]}));
    }
    let Some(rest) = path.strip_prefix("/v1/") else {
        return (404, json!({"errors": []}));
    };
    if let Some(mount) = rest.strip_prefix("sys/internal/ui/mounts/") {
        let mount = mount.trim_end_matches('/');
        return match s.mounts.get(mount) {
            Some(v) => (
                200,
                json!({"data": {"type": "kv", "path": format!("{mount}/"),
                                "options": {"version": v.to_string()}}}),
            ),
            None => denied,
        };
    }
    if !allowed.iter().any(|p| rest.starts_with(p.as_str())) {
        return denied;
    }
    let (mount, sub) = rest.split_once('/').unwrap_or((rest, ""));
    let Some(&version) = s.mounts.get(mount) else {
        return (
            404,
            json!({"errors": [format!("no handler for route \"{rest}\". route entry not found.")]}),
        );
    };
    match version {
        1 => match s.secrets.get(&(mount.to_string(), sub.to_string())) {
            Some(d) => (
                200,
                json!({"request_id": "00000000-0000-0000-0000-000000000001", "lease_id": "",
                       "renewable": false, "lease_duration": 2764800, "data": d,
                       "wrap_info": null, "warnings": null, "auth": null}),
            ),
            None => (404, json!({"errors": []})),
        },
        _ => {
            let Some(secret) = sub.strip_prefix("data/") else {
                return (
                    404,
                    json!({"errors": [], "warnings": ["Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints to use. If using the Vault CLI, use 'vault kv get' for this operation."]}),
                );
            };
            match s.secrets.get(&(mount.to_string(), secret.to_string())) {
                Some(d) => (
                    200,
                    json!({"request_id": "00000000-0000-0000-0000-000000000002", "lease_id": "",
                           "renewable": false, "lease_duration": 0,
                           "data": {"data": d, "metadata": {"created_time": "2026-12-01T00:00:00.000000Z",
                                    "custom_metadata": null, "deletion_time": "", "destroyed": false,
                                    "version": 1}},
                           "wrap_info": null, "warnings": null, "auth": null}),
                ),
                None => (404, json!({"errors": []})),
            }
        }
    }
}

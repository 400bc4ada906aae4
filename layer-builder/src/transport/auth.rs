//! Registry credentials and the v2 auth handshake: anonymous, HTTP Basic,
//! and bearer tokens from the realm a `WWW-Authenticate: Bearer` challenge
//! names. Credentials come from the files docker and podman write:
//! REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json,
//! ~/.config/containers/auth.json, $DOCKER_CONFIG/config.json or
//! ~/.docker/config.json (first file with an entry for the host wins).

use base64::Engine as _;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    /// The file they came from, for error messages.
    pub from: PathBuf,
}

#[derive(Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

pub fn auth_files() -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(f) = std::env::var_os("REGISTRY_AUTH_FILE") {
        v.push(PathBuf::from(f));
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR") {
        v.push(PathBuf::from(d).join("containers/auth.json"));
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    if let Some(h) = &home {
        v.push(h.join(".config/containers/auth.json"));
    }
    match std::env::var_os("DOCKER_CONFIG") {
        Some(d) => v.push(PathBuf::from(d).join("config.json")),
        None => {
            if let Some(h) = &home {
                v.push(h.join(".docker/config.json"));
            }
        }
    }
    v
}

/// `https://index.docker.io/v1/` and `host:5000` both name a host.
fn key_host(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}

pub fn lookup(host: &str) -> Option<Credentials> {
    lookup_in(&auth_files(), host)
}

pub fn lookup_in(files: &[PathBuf], host: &str) -> Option<Credentials> {
    let wanted: Vec<&str> = if host == "docker.io" {
        vec!["docker.io", "index.docker.io", "registry-1.docker.io"]
    } else {
        vec![host]
    };
    for f in files {
        let Ok(bytes) = std::fs::read(f) else {
            continue;
        };
        let Ok(file) = serde_json::from_slice::<AuthFile>(&bytes) else {
            continue;
        };
        for (key, entry) in &file.auths {
            if !wanted.contains(&key_host(key)) {
                continue;
            }
            if let (Some(u), Some(p)) = (&entry.username, &entry.password) {
                return Some(Credentials {
                    username: u.clone(),
                    password: p.clone(),
                    from: f.clone(),
                });
            }
            if let Some(a) = &entry.auth {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(a.trim())
                    .ok()?;
                let s = String::from_utf8(decoded).ok()?;
                let (u, p) = s.split_once(':')?;
                return Some(Credentials {
                    username: u.to_string(),
                    password: p.to_string(),
                    from: f.clone(),
                });
            }
        }
    }
    None
}

impl Credentials {
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// Parses `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    let params = parse_params(rest);
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => Some(Challenge::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
        }),
        _ => None,
    }
}

fn parse_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, remaining) = if let Some(q) = after.strip_prefix('"') {
            match q.find('"') {
                Some(end) => (q[..end].to_string(), &q[end + 1..]),
                None => (q.to_string(), ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (after[..end].trim().to_string(), &after[end..]),
                None => (after.trim().to_string(), ""),
            }
        };
        out.insert(key, value);
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

#[derive(Deserialize)]
pub struct TokenReply {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub access_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        assert_eq!(
            parse_challenge("Basic realm=\"Registry Realm\""),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge("Bearer realm=\"https://auth.example/token\",service=\"registry.example\",scope=\"repository:a/b:pull,push\""),
            Some(Challenge::Bearer { realm: "https://auth.example/token".into(), service: Some("registry.example".into()) })
        );
        assert_eq!(parse_challenge("Negotiate"), None);
    }

    #[test]
    fn finds_credentials_by_host_in_either_spelling() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("auth.json");
        std::fs::write(&a, br#"{"auths":{"127.0.0.1:5000":{"auth":"dXNlcjpwYTpzcw=="},"https://index.docker.io/v1/":{"username":"d","password":"p"}}}"#).unwrap();
        let c = lookup_in(
            &[d.path().join("missing.json"), a.clone()],
            "127.0.0.1:5000",
        )
        .unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("user", "pa:ss")
        );
        assert_eq!(c.from, a);
        assert_eq!(
            lookup_in(std::slice::from_ref(&a), "docker.io")
                .unwrap()
                .username,
            "d"
        );
        assert!(lookup_in(&[a], "other:5000").is_none());
    }
}

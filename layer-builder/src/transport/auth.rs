//! Registry credentials and the v2 auth handshake: anonymous, HTTP Basic,
//! and bearer tokens from the realm a `WWW-Authenticate: Bearer` challenge
//! names. Credentials come from the files docker and podman write:
//! REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json,
//! ~/.config/containers/auth.json, $DOCKER_CONFIG/config.json or
//! ~/.docker/config.json (first file with an entry for the host wins).
//! In each file, `credHelpers[host]`, then `auths[host]`, then `credsStore`:
//! a helper is docker's protocol (`docker-credential-NAME get`, the host on
//! stdin, `{"Username","Secret"}` on stdout), so `pass`, `secretservice`,
//! `ecr-login`, `gcloud` and friends work unchanged. Written by hand rather
//! than with the `docker_credential` crate: that crate reads only docker's
//! config.json, and podman's auth.json files come first here.
//! `--creds-file FILE` or `LDGUARD_LAYER_CREDS` (USER:PASSWORD) win over all.

use crate::error::{Error, Result};
use base64::Engine as _;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    /// The file they came from, for error messages.
    pub from: PathBuf,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default)]
    creds_store: Option<String>,
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

pub fn lookup(host: &str) -> Result<Option<Credentials>> {
    lookup_in(&auth_files(), host)
}

/// `USER:PASSWORD` from `--creds-file` or `LDGUARD_LAYER_CREDS` (never on
/// the command line, where `ps` shows it).
pub fn parse_creds(text: &str, from: &str) -> Result<Credentials> {
    let text = text.trim_end_matches(['\n', '\r']);
    match text.split_once(':') {
        Some((u, p)) if !u.is_empty() => Ok(Credentials {
            username: u.to_string(),
            password: p.to_string(),
            from: PathBuf::from(from),
        }),
        _ => Err(Error::invalid(
            from,
            "expected USER:PASSWORD (one line)".to_string(),
        )),
    }
}

pub fn lookup_in(files: &[PathBuf], host: &str) -> Result<Option<Credentials>> {
    let wanted: Vec<&str> = if host == "docker.io" {
        vec!["docker.io", "index.docker.io", "registry-1.docker.io"]
    } else {
        vec![host]
    };
    for f in files {
        let Ok(bytes) = std::fs::read(f) else {
            continue;
        };
        let file = serde_json::from_slice::<AuthFile>(&bytes).map_err(|e| {
            Error::invalid(
                f.display().to_string(),
                format!("not a valid auth file ({e}); fix it or log in again (podman login)"),
            )
        })?;
        if let Some(helper) = wanted.iter().find_map(|h| file.cred_helpers.get(*h)) {
            return run_helper(helper, host, f);
        }
        for (key, entry) in &file.auths {
            if !wanted.contains(&key_host(key)) {
                continue;
            }
            if let (Some(u), Some(p)) = (&entry.username, &entry.password) {
                return Ok(Some(Credentials {
                    username: u.clone(),
                    password: p.clone(),
                    from: f.clone(),
                }));
            }
            if let Some(a) = &entry.auth {
                let corrupt = |why: &str| {
                    Error::invalid(
                        f.display().to_string(),
                        format!(
                            "the \"auth\" entry for {key} is corrupt ({why}); it must be base64 of \
                             USER:PASSWORD: log in again with `podman login {host}`"
                        ),
                    )
                };
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(a.trim())
                    .map_err(|_| corrupt("not base64"))?;
                let s = String::from_utf8(decoded).map_err(|_| corrupt("not UTF-8"))?;
                let (u, p) = s.split_once(':').ok_or_else(|| corrupt("no ':'"))?;
                return Ok(Some(Credentials {
                    username: u.to_string(),
                    password: p.to_string(),
                    from: f.clone(),
                }));
            }
        }
        if let Some(store) = &file.creds_store {
            if let Some(c) = run_helper(store, host, f)? {
                return Ok(Some(c));
            }
        }
    }
    Ok(None)
}

/// Asks `docker-credential-NAME get` for `host`. "Not found" is no
/// credentials; any other failure is an error naming the helper.
fn run_helper(name: &str, host: &str, config: &Path) -> Result<Option<Credentials>> {
    use std::io::Write as _;
    let program = format!("docker-credential-{name}");
    let place = format!("{program} (from {})", config.display());
    let server = if host == "docker.io" {
        "https://index.docker.io/v1/"
    } else {
        host
    };
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::invalid(&place, format!("cannot run it: {e}; is it on PATH?")))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(server.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::invalid(&place, e.to_string()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let said = format!(
            "{}{}",
            stdout.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        if said.to_ascii_lowercase().contains("not found") {
            return Ok(None);
        }
        return Err(Error::invalid(
            &place,
            format!("`get` for {server} failed: {said}"),
        ));
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct HelperReply {
        username: String,
        secret: String,
    }
    let reply: HelperReply = serde_json::from_str(&stdout)
        .map_err(|e| Error::invalid(&place, format!("unexpected answer to `get`: {e}")))?;
    Ok(Some(Credentials {
        username: reply.username,
        password: reply.secret,
        from: PathBuf::from(program),
    }))
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
        .unwrap()
        .unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("user", "pa:ss")
        );
        assert_eq!(c.from, a);
        assert_eq!(
            lookup_in(std::slice::from_ref(&a), "docker.io")
                .unwrap()
                .unwrap()
                .username,
            "d"
        );
        assert!(lookup_in(&[a], "other:5000").unwrap().is_none());
    }

    #[test]
    fn a_corrupt_auth_entry_is_reported_as_corrupt() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("auth.json");
        std::fs::write(&a, br#"{"auths":{"r.example":{"auth":"%%%not-base64"}}}"#).unwrap();
        let e = lookup_in(std::slice::from_ref(&a), "r.example")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("\"auth\" entry for r.example is corrupt (not base64)"),
            "{e}"
        );
        assert!(e.contains(&a.display().to_string()), "{e}");
        // Base64 of a string without ':'.
        std::fs::write(&a, br#"{"auths":{"r.example":{"auth":"dXNlcg=="}}}"#).unwrap();
        let e = lookup_in(&[a], "r.example").unwrap_err().to_string();
        assert!(e.contains("corrupt (no ':')"), "{e}");
    }

    #[test]
    fn creds_are_user_colon_password() {
        let c = parse_creds("u:p:w\n", "LDGUARD_LAYER_CREDS").unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p:w"));
        assert!(parse_creds("nopassword", "f").is_err());
        assert!(parse_creds(":p", "f").is_err());
    }
}

//! Registry credentials from HashiCorp Vault's KV secrets engine, version 1
//! (`GET /v1/<mount>/<path>`, the secret in `data`) or version 2
//! (`GET /v1/<mount>/data/<path>`, the secret in `data.data`), with token
//! auth (`X-Vault-Token`). Errors say which of the usual causes it is: a
//! sealed Vault, a token without read access, a missing secret or key, or a
//! mount of the other KV version.
//!
//! The token and the secret values never appear in messages or logs.

use crate::error::{Error, Result};
use crate::transport::auth::Credentials;
use base64::Engine as _;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvVersion {
    V1,
    V2,
}

impl KvVersion {
    pub fn parse(text: &str) -> Result<KvVersion> {
        match text {
            "1" => Ok(KvVersion::V1),
            "2" => Ok(KvVersion::V2),
            _ => Err(Error::invalid(
                "--vault-kv",
                format!("'{text}' is not a KV version: give 1 or 2"),
            )),
        }
    }

    fn number(self) -> u8 {
        match self {
            KvVersion::V1 => 1,
            KvVersion::V2 => 2,
        }
    }
}

/// Where the registry credentials are kept.
#[derive(Debug, Clone)]
pub struct VaultConfig {
    /// e.g. `https://vault.example.com:8200`.
    pub addr: String,
    pub token: String,
    pub mount: String,
    pub kv: KvVersion,
    /// The secret's path under the mount; `{registry}` is replaced by the
    /// registry's HOST[:PORT].
    pub path: String,
    pub username_key: String,
    pub password_key: String,
    /// The values are base64-encoded.
    pub base64: bool,
}

impl VaultConfig {
    /// The token from `token_file`, else `VAULT_TOKEN`.
    pub fn token_from(token_file: Option<&std::path::Path>) -> Result<String> {
        let token = match token_file {
            Some(f) => std::fs::read_to_string(f)
                .map_err(|e| Error::io(f, "reading the Vault token", e))?
                .trim()
                .to_string(),
            None => std::env::var("VAULT_TOKEN").unwrap_or_default(),
        };
        if token.is_empty() {
            return Err(Error::invalid(
                "Vault token",
                "none given: pass --vault-token-file FILE or set VAULT_TOKEN",
            ));
        }
        Ok(token)
    }

    fn secret_path(&self, registry: &str) -> String {
        self.path.replace("{registry}", registry)
    }

    /// The HTTP path of a read, as Vault's API documents it per KV version.
    fn api_path(&self, secret: &str, kv: KvVersion) -> String {
        let mount = self.mount.trim_matches('/');
        let secret = secret.trim_matches('/');
        match kv {
            KvVersion::V1 => format!("/v1/{mount}/{secret}"),
            KvVersion::V2 => format!("/v1/{mount}/data/{secret}"),
        }
    }

    /// USER and PASSWORD for `registry` (HOST[:PORT]).
    pub fn registry_credentials(&self, registry: &str) -> Result<Credentials> {
        let secret = self.secret_path(registry);
        let data = self.read(&secret)?;
        let place = self.place(&secret);
        Ok(Credentials {
            username: self.value(&data, &place, &self.username_key, "--vault-username-key")?,
            password: self.value(&data, &place, &self.password_key, "--vault-password-key")?,
            from: PathBuf::from(place.clone()),
        })
    }

    /// The value of `key` in the secret at `secret` (e.g. an ldguard-server
    /// token under key `token`).
    pub fn read_value(&self, secret: &str, key: &str) -> Result<String> {
        let data = self.read(secret)?;
        self.value(&data, &self.place(secret), key, "the secret")
    }

    fn place(&self, secret: &str) -> String {
        format!("Vault secret {}/{secret}", self.mount.trim_matches('/'))
    }

    /// A string value of the secret, base64-decoded with `base64`; `fix`
    /// says where a missing key is named.
    fn value(&self, data: &Value, place: &str, key: &str, fix: &str) -> Result<String> {
        let value = match data.get(key) {
            Some(Value::String(s)) => s.clone(),
            Some(_) => {
                return Err(Error::invalid(
                    place,
                    format!("key '{key}' is not a string"),
                ))
            }
            None => {
                let keys: Vec<&str> = data
                    .as_object()
                    .map(|o| o.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                let keys = if keys.is_empty() {
                    "none".to_string()
                } else {
                    keys.join(", ")
                };
                return Err(Error::invalid(
                    place,
                    format!("has no key '{key}' (its keys: {keys}); store it there or name the key with {fix}"),
                ));
            }
        };
        if !self.base64 {
            return Ok(value);
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(value.trim())
            .map_err(|e| {
                Error::invalid(
                    place,
                    format!("key '{key}' is not base64 ({e}); drop --vault-base64 if it is plain"),
                )
            })?;
        String::from_utf8(bytes).map_err(|_| {
            Error::invalid(
                place,
                format!("key '{key}' decodes to bytes that are not UTF-8"),
            )
        })
    }

    fn agent() -> ureq::Agent {
        ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .build()
    }

    fn get(&self, api_path: &str) -> Result<(u16, Value)> {
        let url = format!("{}{api_path}", self.addr.trim_end_matches('/'));
        let r = Self::agent()
            .get(&url)
            .set("X-Vault-Token", &self.token)
            .call();
        let response = match r {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => {
                return Err(Error::invalid(
                    format!("Vault at {}", self.addr),
                    format!("cannot connect: {e}; check --vault-addr (VAULT_ADDR)"),
                ))
            }
        };
        let status = response.status();
        let body: Value = response
            .into_string()
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null);
        Ok((status, body))
    }

    /// The secret's key/value map.
    fn read(&self, secret: &str) -> Result<Value> {
        let api = self.api_path(secret, self.kv);
        let place = format!("Vault {}{api}", self.addr.trim_end_matches('/'));
        let (status, body) = self.get(&api)?;
        let errors = body["errors"]
            .as_array()
            .map(|e| {
                e.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default();
        match status {
            200 => {}
            503 if errors.contains("sealed") => {
                return Err(Error::invalid(
                    place,
                    "Vault is sealed: unseal it (vault operator unseal) and retry",
                ))
            }
            403 => {
                return Err(Error::invalid(
                    place,
                    format!(
                        "permission denied ({errors}): the token is invalid or expired, or its policy does not grant \"read\" on {}",
                        api.trim_start_matches("/v1/")
                    ),
                ))
            }
            404 => {
                // A 404 is also what a read with the other KV version's path
                // gets: the mount's own description tells the two apart.
                if let Some(actual) = self.mount_version()? {
                    if actual != self.kv {
                        return Err(Error::invalid(
                            place,
                            format!(
                                "mount '{}' is a KV version {} engine, not {}: pass --vault-kv {}",
                                self.mount,
                                actual.number(),
                                self.kv.number(),
                                actual.number()
                            ),
                        ));
                    }
                }
                let deleted = body["data"]["metadata"]["deletion_time"]
                    .as_str()
                    .is_some_and(|t| !t.is_empty());
                return Err(Error::invalid(
                    place,
                    if deleted {
                        "the secret's latest version is deleted: restore it (vault kv undelete) or write a new one".to_string()
                    } else {
                        format!(
                            "no secret at '{secret}' in mount '{}': write one with the keys {} and {}",
                            self.mount, self.username_key, self.password_key
                        )
                    },
                ));
            }
            s => {
                return Err(Error::invalid(
                    place,
                    format!("Vault answered {s}: {errors}"),
                ))
            }
        }
        let data = match self.kv {
            KvVersion::V1 => &body["data"],
            KvVersion::V2 => &body["data"]["data"],
        };
        if !data.is_object() {
            // A KV v1 secret read through a v2 path, or the reverse.
            return Err(Error::invalid(
                place,
                format!(
                    "the answer has no {} object: is mount '{}' KV version {}?",
                    if self.kv == KvVersion::V1 {
                        "data"
                    } else {
                        "data.data"
                    },
                    self.mount,
                    self.kv.number()
                ),
            ));
        }
        Ok(data.clone())
    }

    /// The mount's KV version from `GET /v1/sys/internal/ui/mounts/<mount>`
    /// (what the vault CLI asks); `None` when Vault will not say.
    fn mount_version(&self) -> Result<Option<KvVersion>> {
        let (status, body) = self.get(&format!(
            "/v1/sys/internal/ui/mounts/{}",
            self.mount.trim_matches('/')
        ))?;
        if status != 200 {
            return Ok(None);
        }
        let data = &body["data"];
        if data["type"].as_str() != Some("kv") {
            return Ok(None);
        }
        Ok(Some(match data["options"]["version"].as_str() {
            Some("2") => KvVersion::V2,
            _ => KvVersion::V1,
        }))
    }
}

//! `/etc/ldguard/config.json`, the library's runtime configuration in an
//! instrumented image (docs/distribution.md), and the policy baked next to it.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const CONFIG_PATH: &str = "etc/ldguard/config.json";
pub const POLICY_PATH: &str = "etc/ldguard/policy.json";
pub const LIBRARY_PATH: &str = "usr/lib/ldguard/libldguard.so";
/// The library's HTTPS client, loaded from next to it by a process that
/// fetches a policy or ships events over HTTP.
pub const NET_LIBRARY_PATH: &str = "usr/lib/ldguard/libldguard_net.so";
pub const DEFAULT_EVENTS: &str = "file:/var/log/ldguard/events.jsonl";
/// Where the agent token is mounted, with `--server` and no `--agent-token-file`.
pub const DEFAULT_AGENT_TOKEN_FILE: &str = "/var/run/secrets/ldguard/token";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuntimeConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baked_policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_no_policy: Option<String>,
    pub allow_env_override: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageIdentity>,
    /// ldguard-server: with `image.name`, the library derives its policy
    /// and events locations from it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_file: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageIdentity {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_digest: Option<String>,
}

/// What the user asked for, before the image is known.
#[derive(Debug, Clone, Default)]
pub struct PolicyOptions {
    /// `--policy FILE|URL`.
    pub policy: Option<String>,
    /// `--baked-policy FILE`: a fallback baked in beside a URL policy.
    pub baked_policy: Option<String>,
    pub events: Option<String>,
    pub refresh_seconds: Option<u64>,
    pub on_no_policy: Option<String>,
    pub allow_env_override: bool,
    /// `--server URL`: ldguard-server.
    pub server: Option<String>,
    /// `--agent-token-file PATH`: the agent token's path inside the container.
    pub agent_token_file: Option<String>,
}

pub fn is_url(s: &str) -> bool {
    s.starts_with("https://") || s.starts_with("http://")
}

/// A policy file validated by the policy engine itself, so an image never
/// ships a policy the library would reject.
#[derive(Debug, Clone)]
pub struct BakedPolicy {
    pub bytes: Vec<u8>,
    pub name: Option<String>,
}

pub fn load_policy_file(path: &Path) -> Result<BakedPolicy> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, "reading the policy", e))?;
    let place = path.display().to_string();
    let text = std::str::from_utf8(&bytes)
        .map_err(|e| Error::invalid(&place, format!("a policy is UTF-8 JSON or YAML: {e}")))?;
    let format = ldguard_policy::PolicyFormat::of_name(&place);
    let (policy, diags) = ldguard_policy::check_source(text, &place, format);
    match policy {
        // The library reads JSON only: a YAML policy is baked as its JSON
        // translation (same members, same order, so the same policy).
        Some(p) if format == ldguard_policy::PolicyFormat::Yaml => {
            let json = format
                .parse(text)
                .map(|root| ldguard_policy::json::to_string_pretty(&root))
                .map_err(|e| Error::invalid(&place, e.message))?;
            Ok(BakedPolicy {
                name: Some(p.name),
                bytes: json.into_bytes(),
            })
        }
        Some(p) => Ok(BakedPolicy {
            name: Some(p.name),
            bytes,
        }),
        None => Err(Error::invalid(
            "--policy",
            format!(
                "{place} is not a valid ldguard policy:\n{}",
                diags.render(text)
            ),
        )),
    }
}

impl PolicyOptions {
    pub fn validate(&self) -> Result<()> {
        if let Some(v) = &self.on_no_policy {
            if !matches!(
                v.as_str(),
                "allow" | "deny" | "enforce" | "permissive" | "disabled"
            ) {
                return Err(Error::invalid(
                    "--on-no-policy",
                    format!("'{v}' is not one of allow, deny"),
                ));
            }
        }
        if let Some(e) = &self.events {
            let ok = e == "stderr" || e == "none" || e.starts_with("file:/") || is_url(e);
            if !ok {
                return Err(Error::invalid("--events", format!("'{e}' is not a sink: use file:/ABSOLUTE/PATH, stderr, none or an http(s):// URL")));
            }
        }
        if self.server.as_deref().is_some_and(|s| !is_url(s)) {
            return Err(Error::invalid("--server", "expected an http(s):// URL"));
        }
        if let Some(f) = &self.agent_token_file {
            if self.server.is_none() || !f.starts_with('/') {
                return Err(Error::invalid(
                    "--agent-token-file",
                    "goes with --server and is an absolute path inside the container",
                ));
            }
        }
        if self.baked_policy.is_some() && !self.policy.as_deref().is_some_and(is_url) {
            return Err(Error::invalid(
                "--baked-policy",
                "only goes with --policy URL (a file given to --policy is baked already)",
            ));
        }
        Ok(())
    }

    /// The baked policy file, if any (`--policy FILE` or `--baked-policy`).
    pub fn load_baked(&self) -> Result<Option<BakedPolicy>> {
        let file = match (&self.policy, &self.baked_policy) {
            (_, Some(f)) => f,
            (Some(p), None) if !is_url(p) => p,
            _ => return Ok(None),
        };
        load_policy_file(Path::new(file)).map(Some)
    }

    pub fn runtime_config(&self, baked: bool, image: Option<ImageIdentity>) -> RuntimeConfig {
        let baked_path = baked.then(|| format!("/{POLICY_PATH}"));
        let server = self.server.is_some();
        RuntimeConfig {
            policy: match &self.policy {
                Some(p) if is_url(p) => Some(p.clone()),
                // The library fetches from the server; a baked file is the fallback.
                _ if server => None,
                _ => baked_path.clone(),
            },
            baked_policy: baked_path,
            events: match &self.events {
                Some(e) => Some(e.clone()),
                None if server => None,
                None => Some(DEFAULT_EVENTS.to_string()),
            },
            refresh_seconds: Some(self.refresh_seconds.unwrap_or(30)),
            on_no_policy: Some(
                self.on_no_policy
                    .clone()
                    .unwrap_or_else(|| "allow".to_string()),
            ),
            allow_env_override: self.allow_env_override,
            image,
            server: self.server.clone(),
            token_file: self.server.as_ref().map(|_| {
                self.agent_token_file
                    .clone()
                    .unwrap_or_else(|| DEFAULT_AGENT_TOKEN_FILE.to_string())
            }),
        }
    }
}

impl RuntimeConfig {
    /// The directory a `file:` events sink writes into, which the layer
    /// creates world-writable (sticky) so every uid can log.
    pub fn events_dir(&self) -> Option<String> {
        let path = self.events.as_deref()?.strip_prefix("file:")?;
        let dir = crate::inspect::rootfs::normalize(path.rsplit_once('/')?.0);
        (!dir.is_empty()).then_some(dir)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("config serializes");
        v.push(b'\n');
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_file_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("p.json");
        let doc = serde_json::json!({"apiVersion": "ldguard.policy/v1", "name": "w", "mode": "enforce",
            "rules": [{"name": "r", "kind": "exec", "path": ["/bin/sh"], "action": "deny"}]});
        std::fs::write(&good, serde_json::to_vec(&doc).unwrap()).unwrap();
        assert_eq!(load_policy_file(&good).unwrap().name.as_deref(), Some("w"));
        let bad = dir.path().join("b.json");
        std::fs::write(&bad, b"{\"apiVersion\": \"v2\", \"name\": \"x\"}").unwrap();
        let e = load_policy_file(&bad).unwrap_err().to_string();
        assert!(e.contains("b.json:1:") && e.contains("v2"), "{e}");
        std::fs::write(&bad, b"{\n  \"apiVersion\": ").unwrap();
        let e = load_policy_file(&bad).unwrap_err().to_string();
        assert!(e.contains("b.json:2:"), "{e}");
    }

    #[test]
    fn a_yaml_policy_is_checked_and_baked_as_json() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = dir.path().join("p.yaml");
        let text = "apiVersion: ldguard.policy/v1\nname: w\nmode: enforce\nrules:\n  - name: r\n    kind: network\n    port: [80, \"443\"]\n    action: deny\n    description: \"a \\\"quoted\\\" note\"\n";
        std::fs::write(&yaml, text).unwrap();
        let baked = load_policy_file(&yaml).unwrap();
        assert_eq!(baked.name.as_deref(), Some("w"));
        // What the library reads: JSON, through its own (JSON-only) reader.
        let json = std::str::from_utf8(&baked.bytes).unwrap();
        let (from_json, d) = ldguard_policy::check_str(json, "policy.json");
        let from_json = from_json.unwrap_or_else(|| panic!("{}\n{json}", d.render(json)));
        let (from_yaml, _) =
            ldguard_policy::check_source(text, "p.yaml", ldguard_policy::PolicyFormat::Yaml);
        assert_eq!(
            format!("{from_json:?}"),
            format!("{:?}", from_yaml.unwrap())
        );
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(v["rules"][0]["port"], serde_json::json!([80, "443"]));
        assert_eq!(v["rules"][0]["description"], "a \"quoted\" note");
        // A bad YAML policy is refused with its place in the YAML text.
        std::fs::write(&yaml, "apiVersion: ldguard.policy/v1\nname: w\nrules:\n  - name: r\n    kind: exec\n    actoin: deny\n").unwrap();
        let e = load_policy_file(&yaml).unwrap_err().to_string();
        assert!(e.contains("p.yaml:6:5: unknown field `actoin`"), "{e}");
    }

    #[test]
    fn runtime_config_fields() {
        let o = PolicyOptions {
            policy: Some("https://p.example/v1/web".into()),
            ..Default::default()
        };
        let c = o.runtime_config(
            false,
            Some(ImageIdentity {
                name: "web:1".into(),
                base_digest: Some("sha256:00".into()),
            }),
        );
        let v: serde_json::Value = serde_json::from_slice(&c.to_bytes()).unwrap();
        assert_eq!(v["policy"], "https://p.example/v1/web");
        assert_eq!(v["allowEnvOverride"], false);
        assert_eq!(v["onNoPolicy"], "allow");
        assert_eq!(v["refreshSeconds"], 30);
        assert_eq!(v["image"]["baseDigest"], "sha256:00");
        assert!(v.get("bakedPolicy").is_none());
        assert_eq!(c.events_dir().as_deref(), Some("var/log/ldguard"));
        let o = PolicyOptions {
            policy: Some("/x/p.json".into()),
            ..Default::default()
        };
        let c = o.runtime_config(true, None);
        assert_eq!(c.policy.as_deref(), Some("/etc/ldguard/policy.json"));
        assert_eq!(c.baked_policy.as_deref(), Some("/etc/ldguard/policy.json"));
        // --server: the library derives policy and events from it.
        let o = PolicyOptions {
            server: Some("https://ctl.example".into()),
            ..Default::default()
        };
        o.validate().unwrap();
        let c = o.runtime_config(false, None);
        let v: serde_json::Value = serde_json::from_slice(&c.to_bytes()).unwrap();
        assert_eq!(v["server"], "https://ctl.example");
        assert_eq!(v["tokenFile"], DEFAULT_AGENT_TOKEN_FILE);
        assert!(
            v.get("policy").is_none() && v.get("events").is_none(),
            "{v}"
        );
        let o = PolicyOptions {
            agent_token_file: Some("/t".into()),
            ..Default::default()
        };
        assert!(o.validate().is_err());
    }
}

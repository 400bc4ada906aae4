//! The `ldguard.policy/v1` document as data: what `learn` writes, and how
//! it reads a `--base` policy back to merge into. Serialised with serde;
//! field order follows docs/policy.md.
//!
//! Reading a base here does not validate it: the caller validates the text
//! with `ldguard_policy::check_str` first (for positioned diagnostics), so
//! these types only need to carry every field faithfully.

use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PolicyDoc {
    pub api_version: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "some_list"
    )]
    pub log: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defaults: Option<BTreeMap<String, String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "some_list"
    )]
    pub ignore: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub rules: Vec<RuleDoc>,
}

/// A `port` entry: a number or a range string.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PortDoc {
    Number(u16),
    Text(String),
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDoc {
    pub name: String,
    pub kind: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "some_list"
    )]
    pub program: Option<Vec<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "some_list"
    )]
    pub path: Option<Vec<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "some_list"
    )]
    pub access: Option<Vec<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "some_list"
    )]
    pub direction: Option<Vec<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "some_list"
    )]
    pub address: Option<Vec<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "some_list"
    )]
    pub port: Option<Vec<PortDoc>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "some_list"
    )]
    pub protocol: Option<Vec<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "some_list"
    )]
    pub unix: Option<Vec<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "some_list"
    )]
    pub host: Option<Vec<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "some_list"
    )]
    pub call: Option<Vec<String>>,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl RuleDoc {
    /// A rule of `kind` doing `action`, with no matchers yet.
    pub fn new(name: impl Into<String>, kind: &str, action: &str) -> RuleDoc {
        RuleDoc {
            name: name.into(),
            kind: kind.into(),
            action: action.into(),
            ..RuleDoc::default()
        }
    }
}

/// Policy lists may be written as a single value (`"path": "/etc/**"`).
fn some_list<'de, D, T>(d: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany<T> {
        Many(Vec<T>),
        One(T),
    }
    Ok(Some(match OneOrMany::deserialize(d)? {
        OneOrMany::Many(v) => v,
        OneOrMany::One(x) => vec![x],
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_single_values_and_both_port_forms() {
        let doc: PolicyDoc = serde_json::from_str(
            r#"{"apiVersion":"ldguard.policy/v1","name":"x","log":"deny",
                "rules":[{"name":"r","kind":"network","port":[80,"8000-8999"],"address":"10.0.0.0/8","action":"deny"}]}"#,
        )
        .unwrap();
        assert_eq!(doc.log, Some(vec!["deny".to_string()]));
        let r = &doc.rules[0];
        assert_eq!(r.address.as_deref(), Some(&["10.0.0.0/8".to_string()][..]));
        assert_eq!(
            r.port.as_deref(),
            Some(&[PortDoc::Number(80), PortDoc::Text("8000-8999".into())][..])
        );
        // Absent matchers stay absent when written back.
        let text = serde_json::to_string(r).unwrap();
        assert!(!text.contains("path") && !text.contains("null"), "{text}");
    }
}

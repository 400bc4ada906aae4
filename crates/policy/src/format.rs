//! The syntax a policy document is written in: JSON, or YAML (with the
//! `yaml` feature). Both are read into the same spanned tree, so validation,
//! diagnostics and lints are the same for either.

use crate::json::{self, SyntaxError, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyFormat {
    Json,
    Yaml,
}

impl PolicyFormat {
    /// By the name's extension: `.yaml` and `.yml` are YAML, anything else
    /// (`.json`, a URL, standard input) is JSON.
    pub fn of_name(name: &str) -> PolicyFormat {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".yaml") || lower.ends_with(".yml") {
            PolicyFormat::Yaml
        } else {
            PolicyFormat::Json
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PolicyFormat::Json => "json",
            PolicyFormat::Yaml => "yaml",
        }
    }

    /// Reads `text` into a spanned tree.
    pub fn parse(self, text: &str) -> Result<Value, SyntaxError> {
        match self {
            PolicyFormat::Json => json::parse(text).map_err(|mut e| {
                if e.hint.is_none() && e.span.start == first_content(text) && looks_like_yaml(text)
                {
                    e.hint = Some(
                        "this looks like YAML: name the file `.yaml` or `.yml` to read it as YAML"
                            .into(),
                    );
                }
                e
            }),
            PolicyFormat::Yaml => parse_yaml(text),
        }
    }
}

#[cfg(feature = "yaml")]
fn parse_yaml(text: &str) -> Result<Value, SyntaxError> {
    crate::yaml::parse(text)
}

#[cfg(not(feature = "yaml"))]
fn parse_yaml(_text: &str) -> Result<Value, SyntaxError> {
    Err(SyntaxError {
        span: json::Span { start: 0, end: 0 },
        message: "this program reads JSON policies only".into(),
        expected: Some("a JSON policy".into()),
        hint: Some(
            "`ldguard-layer --policy FILE.yaml` bakes a YAML policy as JSON; \
             `ldguard policy validate` and `explain` read YAML"
                .into(),
        ),
    })
}

fn first_content(text: &str) -> usize {
    let body = text.strip_prefix('\u{feff}').unwrap_or(text);
    let skipped = body.len() - body.trim_start().len();
    text.len() - body.len() + skipped
}

/// `key:` or `---` or a `#` comment at the start: what YAML policies begin with.
fn looks_like_yaml(text: &str) -> bool {
    let start = text[first_content(text)..].lines().next().unwrap_or("");
    start.starts_with("---")
        || start.starts_with('#')
        || start.split_once(':').is_some_and(|(key, _)| {
            !key.is_empty()
                && key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_follows_the_extension() {
        assert_eq!(PolicyFormat::of_name("p.yaml"), PolicyFormat::Yaml);
        assert_eq!(PolicyFormat::of_name("/x/P.YML"), PolicyFormat::Yaml);
        assert_eq!(PolicyFormat::of_name("p.json"), PolicyFormat::Json);
        assert_eq!(PolicyFormat::of_name("https://h/p"), PolicyFormat::Json);
    }

    #[test]
    fn yaml_read_as_json_gets_a_hint() {
        let e = PolicyFormat::Json
            .parse("apiVersion: ldguard.policy/v1\n")
            .unwrap_err();
        assert!(e.hint.unwrap().contains("`.yaml`"));
        let e = PolicyFormat::Json.parse("{\"a\": x}").unwrap_err();
        assert!(e.hint.is_none_or(|h| !h.contains("YAML")));
    }
}

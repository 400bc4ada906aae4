//! Where a policy comes from and how the request is authenticated.

use crate::error::SourceError;
use std::path::PathBuf;

/// A policy source as written in `policy` / `LDGUARD_POLICY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    File(PathBuf),
    Http(String),
}

impl Location {
    /// `http://` and `https://` are URLs, absolute paths and `file:` are files.
    /// Anything else is refused rather than guessed at.
    pub fn parse(text: &str) -> Result<Location, SourceError> {
        let text = text.trim();
        let lower = text.to_ascii_lowercase();
        if lower.starts_with("https://") || lower.starts_with("http://") {
            return Ok(Location::Http(text.to_string()));
        }
        let path = text.strip_prefix("file:").unwrap_or(text);
        if path.starts_with('/') {
            return Ok(Location::File(PathBuf::from(path)));
        }
        Err(SourceError::Config {
            what: format!("policy source {text:?} is neither an absolute path nor an http(s) URL"),
            fix: "write /path/to/policy.json or https://host/path".to_string(),
        })
    }

    pub fn describe(&self) -> String {
        match self {
            Location::File(p) => p.display().to_string(),
            Location::Http(u) => u.clone(),
        }
    }
}

/// The bearer token sent to the policy server.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Token {
    #[default]
    None,
    Value(String),
    /// Re-read at every fetch: mounted secrets rotate under a running container.
    File(PathBuf),
}

impl std::fmt::Debug for Token {
    // Never print the secret itself.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Token::None => f.write_str("Token::None"),
            Token::Value(_) => f.write_str("Token::Value(<redacted>)"),
            Token::File(p) => write!(f, "Token::File({})", p.display()),
        }
    }
}

impl Token {
    /// The token to send now, if any. An empty file means no token.
    pub fn current(&self) -> Result<Option<String>, SourceError> {
        match self {
            Token::None => Ok(None),
            Token::Value(v) => Ok(Some(v.trim().to_string()).filter(|v| !v.is_empty())),
            Token::File(path) => match std::fs::read_to_string(path) {
                Ok(text) => Ok(Some(text.trim().to_string()).filter(|v| !v.is_empty())),
                Err(err) => Err(SourceError::Token {
                    path: path.clone(),
                    err,
                }),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls_and_paths() {
        assert_eq!(
            Location::parse("https://p.example/v1/web").unwrap(),
            Location::Http("https://p.example/v1/web".into())
        );
        assert_eq!(
            Location::parse("file:/etc/ldguard/policy.json").unwrap(),
            Location::File("/etc/ldguard/policy.json".into())
        );
        assert_eq!(
            Location::parse("/etc/p.json").unwrap(),
            Location::File("/etc/p.json".into())
        );
        let err = Location::parse("policy.json").unwrap_err().to_string();
        assert!(err.contains("neither an absolute path"), "{err}");
    }

    #[test]
    fn token_debug_hides_the_secret() {
        let dbg = format!("{:?}", Token::Value("s3cret".into()));
        assert!(!dbg.contains("s3cret"));
    }

    #[test]
    fn token_file_is_reread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "one\n").unwrap();
        let token = Token::File(path.clone());
        assert_eq!(token.current().unwrap().as_deref(), Some("one"));
        std::fs::write(&path, "two").unwrap();
        assert_eq!(token.current().unwrap().as_deref(), Some("two"));
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(token.current(), Err(SourceError::Token { .. })));
    }
}

//! The textual sink names of docs/distribution.md (`LDGUARD_EVENTS`, config `events`).

use std::fmt;
use std::path::PathBuf;

/// Where events go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SinkSpec {
    /// `none`: events are discarded.
    None,
    /// `stderr`: one JSON line per event on the process's standard error.
    Stderr,
    /// `file:/path`: one JSON line per event appended to the file.
    File(PathBuf),
    /// `http://…` or `https://…`: batches posted to a server.
    Http(String),
}

/// Why a sink name was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    pub text: String,
    pub reason: &'static str,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "event sink {:?}: {} (expected `file:/absolute/path`, `stderr`, `http(s)://…` or `none`)",
            self.text, self.reason
        )
    }
}

impl std::error::Error for SpecError {}

impl SinkSpec {
    pub fn parse(text: &str) -> Result<SinkSpec, SpecError> {
        let err = |reason| SpecError {
            text: text.to_owned(),
            reason,
        };
        match text {
            "none" | "" => Ok(SinkSpec::None),
            "stderr" => Ok(SinkSpec::Stderr),
            _ if text.starts_with("http://") || text.starts_with("https://") => {
                Ok(SinkSpec::Http(text.to_owned()))
            }
            _ => match text.strip_prefix("file:") {
                Some(path) if path.starts_with('/') => Ok(SinkSpec::File(PathBuf::from(path))),
                Some(_) => Err(err("a file sink needs an absolute path")),
                None => Err(err("unknown sink")),
            },
        }
    }
}

impl fmt::Display for SinkSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SinkSpec::None => f.write_str("none"),
            SinkSpec::Stderr => f.write_str("stderr"),
            SinkSpec::File(p) => write!(f, "file:{}", p.display()),
            SinkSpec::Http(u) => f.write_str(u),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!(SinkSpec::parse("none"), Ok(SinkSpec::None));
        assert_eq!(SinkSpec::parse("stderr"), Ok(SinkSpec::Stderr));
        assert_eq!(
            SinkSpec::parse("file:/var/log/e.jsonl"),
            Ok(SinkSpec::File("/var/log/e.jsonl".into()))
        );
        assert_eq!(
            SinkSpec::parse("https://h/x"),
            Ok(SinkSpec::Http("https://h/x".into()))
        );
        assert_eq!(
            SinkSpec::parse("file:rel").unwrap_err().reason,
            "a file sink needs an absolute path"
        );
        let e = SinkSpec::parse("syslog").unwrap_err();
        assert!(e.to_string().contains("unknown sink"), "{e}");
    }

    #[test]
    fn display_round_trips() {
        for t in ["none", "stderr", "file:/a/b", "http://x/y"] {
            assert_eq!(SinkSpec::parse(t).unwrap().to_string(), t);
        }
    }
}

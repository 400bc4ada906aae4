//! The textual sink names of docs/distribution.md (`LDGUARD_EVENTS`, config `events`).

use std::borrow::Cow;
use std::fmt;
use std::path::Path;

/// Where events go. The path or URL is borrowed when the text it was
/// parsed from lives for the whole process ([`SinkSpec::parse_static`]:
/// the library's start-up makes no heap allocation for it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SinkSpec {
    /// `none`: events are discarded.
    None,
    /// `stderr`: one JSON line per event on the process's standard error.
    Stderr,
    /// `file:/path`: one JSON line per event appended to the file.
    File(Cow<'static, Path>),
    /// `http://…` or `https://…`: batches posted to a server.
    Http(Cow<'static, str>),
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
        Ok(match SinkSpec::parse_as(text)? {
            Parsed::None => SinkSpec::None,
            Parsed::Stderr => SinkSpec::Stderr,
            Parsed::File(path) => SinkSpec::File(Cow::Owned(Path::new(path).to_path_buf())),
            Parsed::Http(url) => SinkSpec::Http(Cow::Owned(url.to_owned())),
        })
    }

    /// [`SinkSpec::parse`] of a text that lives for the process: the path
    /// or URL is borrowed from it, not copied.
    pub fn parse_static(text: &'static str) -> Result<SinkSpec, SpecError> {
        Ok(match SinkSpec::parse_as(text)? {
            Parsed::None => SinkSpec::None,
            Parsed::Stderr => SinkSpec::Stderr,
            Parsed::File(path) => SinkSpec::File(Cow::Borrowed(Path::new(path))),
            Parsed::Http(url) => SinkSpec::Http(Cow::Borrowed(url)),
        })
    }

    fn parse_as(text: &str) -> Result<Parsed<'_>, SpecError> {
        let err = |reason| SpecError {
            text: text.to_owned(),
            reason,
        };
        match text {
            "none" | "" => Ok(Parsed::None),
            "stderr" => Ok(Parsed::Stderr),
            _ if text.starts_with("http://") || text.starts_with("https://") => {
                Ok(Parsed::Http(text))
            }
            _ => match text.strip_prefix("file:") {
                Some(path) if path.starts_with('/') => Ok(Parsed::File(path)),
                Some(_) => Err(err("a file sink needs an absolute path")),
                None => Err(err("unknown sink")),
            },
        }
    }
}

/// A sink name's parts, borrowed from its text.
enum Parsed<'a> {
    None,
    Stderr,
    File(&'a str),
    Http(&'a str),
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
            Ok(SinkSpec::File(Path::new("/var/log/e.jsonl").into()))
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

    /// The same answers from a text that lives for the process, which is
    /// borrowed rather than copied.
    #[test]
    fn parse_static_borrows_and_agrees() {
        for t in [
            "none",
            "",
            "stderr",
            "file:/a/b",
            "http://x/y",
            "https://h",
            "file:rel",
            "x",
        ] {
            assert_eq!(SinkSpec::parse_static(t), SinkSpec::parse(t), "{t}");
        }
        let text: &'static str = "file:/var/log/e.jsonl";
        match SinkSpec::parse_static(text).unwrap() {
            SinkSpec::File(Cow::Borrowed(p)) => {
                assert_eq!(
                    p.as_os_str().as_encoded_bytes().as_ptr(),
                    text[5..].as_ptr()
                )
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            SinkSpec::parse_static("https://h/x").unwrap(),
            SinkSpec::Http(Cow::Borrowed("https://h/x"))
        ));
    }

    #[test]
    fn display_round_trips() {
        for t in ["none", "stderr", "file:/a/b", "http://x/y"] {
            assert_eq!(SinkSpec::parse(t).unwrap().to_string(), t);
        }
    }
}

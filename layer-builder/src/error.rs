//! One error type whose messages name the place and the fix.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A SRC or DST string that is not a valid image reference.
    #[error("bad image reference '{reference}': {reason}")]
    Reference { reference: String, reason: String },

    #[error("{path}: {action} failed: {source}")]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },

    /// Content whose digest does not match the descriptor that names it.
    #[error("{place}: blob {expected} is corrupt: {detail}; fetch or save the image again")]
    Corrupt {
        place: String,
        expected: String,
        detail: String,
    },

    #[error("registry {place}: {message}")]
    Registry { place: String, message: String },

    /// The image cannot be instrumented safely (libc, architecture, library).
    #[error("cannot instrument {image}: {reason}")]
    Refused { image: String, reason: String },

    /// Anything else malformed in an image, a policy or the options.
    #[error("{place}: {message}")]
    Invalid { place: String, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(path: impl AsRef<Path>, action: &'static str, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            action,
            source,
        }
    }

    pub fn invalid(place: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid {
            place: place.into(),
            message: message.into(),
        }
    }

    pub fn refused(image: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Refused {
            image: image.into(),
            reason: reason.into(),
        }
    }

    pub fn registry(place: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Registry {
            place: place.into(),
            message: message.into(),
        }
    }

    /// The process exit code: 2 for unusable input, 3 for a refused image.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Reference { .. } | Error::Invalid { .. } => 2,
            Error::Refused { .. } => 3,
            _ => 1,
        }
    }
}

//! One conditional GET against the policy server.

use crate::error::{status_hint, SourceError};
use crate::location::Token;
use crate::transport::{self, Exchange, TransportError};
use std::path::PathBuf;
use std::time::Duration;

pub(crate) enum Fetched {
    NotModified,
    Body { text: Vec<u8>, etag: Option<String> },
}

pub(crate) struct HttpClient {
    pub(crate) ca_file: Option<PathBuf>,
    pub(crate) connect_timeout: Duration,
    pub(crate) total_timeout: Duration,
}

impl HttpClient {
    pub(crate) fn get(
        &self,
        url: &str,
        etag: Option<&str>,
        token: &Token,
        limit: usize,
    ) -> Result<Fetched, SourceError> {
        let mut request = Exchange::new("GET", url);
        request.accept = Some("application/json".to_string());
        request.if_none_match = etag.map(str::to_string);
        request.bearer = token.current()?;
        request.ca_file = self.ca_file.clone();
        request.connect_timeout = self.connect_timeout;
        request.total_timeout = self.total_timeout;
        request.body_limit = limit as u64;
        let answer = transport::exchange(&request).map_err(|e| match e {
            TransportError::Config { what, fix } => SourceError::Config { what, fix },
            TransportError::Transport(reason) | TransportError::Unavailable(reason) => {
                SourceError::Transport {
                    url: url.to_string(),
                    reason,
                }
            }
        })?;
        match answer.status {
            304 => return Ok(Fetched::NotModified),
            200 => {}
            code => {
                return Err(SourceError::Status {
                    url: url.to_string(),
                    code,
                    hint: status_hint(code),
                })
            }
        }
        if answer.body.len() > limit {
            return Err(SourceError::TooLarge {
                url: url.to_string(),
                limit,
            });
        }
        Ok(Fetched::Body {
            text: answer.body,
            etag: answer.etag,
        })
    }
}

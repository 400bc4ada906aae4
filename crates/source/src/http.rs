//! One conditional GET against the policy server.

use crate::error::{status_hint, SourceError};
use crate::location::Token;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

pub(crate) enum Fetched {
    NotModified,
    Body { text: Vec<u8>, etag: Option<String> },
}

/// An HTTP agent with ldguard's TLS rules (see the `tls` module), shared by
/// the policy fetch and the HTTP event sink.
pub fn agent(
    ca_file: Option<&Path>,
    connect_timeout: Duration,
    total_timeout: Duration,
) -> Result<ureq::Agent, SourceError> {
    Ok(ureq::AgentBuilder::new()
        .tls_config(crate::tls::client_config(ca_file)?)
        .timeout_connect(connect_timeout)
        .timeout(total_timeout)
        .user_agent(concat!("ldguard/", env!("CARGO_PKG_VERSION")))
        // An environment proxy would put a hop chosen by the process itself
        // between the library and its policy server; servers are reached directly.
        .try_proxy_from_env(false)
        .build())
}

pub(crate) struct HttpClient {
    agent: ureq::Agent,
}

impl HttpClient {
    pub(crate) fn new(
        ca_file: Option<&Path>,
        connect_timeout: Duration,
        total_timeout: Duration,
    ) -> Result<HttpClient, SourceError> {
        Ok(HttpClient {
            agent: agent(ca_file, connect_timeout, total_timeout)?,
        })
    }

    pub(crate) fn get(
        &self,
        url: &str,
        etag: Option<&str>,
        token: &Token,
        limit: usize,
    ) -> Result<Fetched, SourceError> {
        let mut request = self.agent.get(url).set("Accept", "application/json");
        if let Some(tag) = etag {
            request = request.set("If-None-Match", tag);
        }
        if let Some(token) = token.current()? {
            request = request.set("Authorization", &format!("Bearer {token}"));
        }
        let response = match request.call() {
            Ok(r) => r,
            Err(ureq::Error::Status(code, _)) => {
                return Err(SourceError::Status {
                    url: url.to_string(),
                    code,
                    hint: status_hint(code),
                })
            }
            Err(ureq::Error::Transport(t)) => {
                return Err(SourceError::Transport {
                    url: url.to_string(),
                    reason: t.to_string(),
                })
            }
        };
        match response.status() {
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
        let etag = response.header("ETag").map(str::to_string);
        let mut text = Vec::new();
        response
            .into_reader()
            .take(limit as u64 + 1)
            .read_to_end(&mut text)
            .map_err(|e| SourceError::Transport {
                url: url.to_string(),
                reason: format!("reading the body: {e}"),
            })?;
        if text.len() > limit {
            return Err(SourceError::TooLarge {
                url: url.to_string(),
                limit,
            });
        }
        Ok(Fetched::Body { text, etag })
    }
}

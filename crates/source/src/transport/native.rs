//! The HTTPS client in this process: ureq on rustls (see [`super::tls`] for
//! the trust rules).

use super::{Answer, Exchange, TransportError};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// An HTTP agent with ldguard's TLS rules, for callers that build their
/// own requests (the CLI's API client).
pub fn agent(
    ca_file: Option<&Path>,
    connect_timeout: Duration,
    total_timeout: Duration,
) -> Result<ureq::Agent, TransportError> {
    Ok(ureq::AgentBuilder::new()
        .tls_config(super::tls::client_config(ca_file)?)
        .timeout_connect(connect_timeout)
        .timeout(total_timeout)
        .user_agent(concat!("ldguard/", env!("CARGO_PKG_VERSION")))
        // An environment proxy would put a hop chosen by the process itself
        // between the library and its servers; they are reached directly.
        .try_proxy_from_env(false)
        .build())
}

/// Agents already built, so that loading the system roots (milliseconds)
/// and the connection pool are paid once per process and configuration.
/// Keyed by pid as well: after `fork` an agent's pool may be locked by a
/// thread that did not survive, so a child builds its own.
struct Built {
    pid: u32,
    ca_file: Option<PathBuf>,
    connect_timeout: Duration,
    total_timeout: Duration,
    agent: ureq::Agent,
}

static AGENTS: Mutex<Vec<Built>> = Mutex::new(Vec::new());
/// Distinct configurations kept; a process has one or two.
const MAX_AGENTS: usize = 8;

fn agent_for(request: &Exchange) -> Result<ureq::Agent, TransportError> {
    let pid = std::process::id();
    let matches = |b: &Built| {
        b.pid == pid
            && b.ca_file == request.ca_file
            && b.connect_timeout == request.connect_timeout
            && b.total_timeout == request.total_timeout
    };
    // `try_lock`: in a forked child the lock may be held by a thread that
    // no longer exists; an uncached agent is then the price, not a hang.
    if let Ok(mut built) = AGENTS.try_lock() {
        built.retain(|b| b.pid == pid);
        if let Some(b) = built.iter().find(|b| matches(b)) {
            return Ok(b.agent.clone());
        }
    }
    let agent = agent(
        request.ca_file.as_deref(),
        request.connect_timeout,
        request.total_timeout,
    )?;
    if let Ok(mut built) = AGENTS.try_lock() {
        if built.len() < MAX_AGENTS {
            built.push(Built {
                pid,
                ca_file: request.ca_file.clone(),
                connect_timeout: request.connect_timeout,
                total_timeout: request.total_timeout,
                agent: agent.clone(),
            });
        }
    }
    Ok(agent)
}

/// Sends `request` from this process.
pub fn exchange(request: &Exchange) -> Result<Answer, TransportError> {
    let agent = agent_for(request)?;
    let mut call = agent.request(&request.method, &request.url);
    if let Some(accept) = &request.accept {
        call = call.set("Accept", accept);
    }
    if let Some(content_type) = &request.content_type {
        call = call.set("Content-Type", content_type);
    }
    if let Some(tag) = &request.if_none_match {
        call = call.set("If-None-Match", tag);
    }
    if let Some(token) = &request.bearer {
        call = call.set("Authorization", &format!("Bearer {token}"));
    }
    let sent = if request.method == "GET" || request.method == "HEAD" {
        call.call()
    } else {
        call.send_bytes(&request.body)
    };
    let response = match sent {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(ureq::Error::Transport(t)) => return Err(TransportError::Transport(t.to_string())),
    };
    let status = response.status();
    let etag = response.header("ETag").map(str::to_string);
    let mut body = Vec::new();
    // Only a success's body is used; an error's is not worth waiting for.
    if (200..300).contains(&status) {
        response
            .into_reader()
            .take(request.body_limit.saturating_add(1))
            .read_to_end(&mut body)
            .map_err(|e| TransportError::Transport(format!("reading the body: {e}")))?;
    }
    Ok(Answer { status, etag, body })
}

//! The commands that talk to `ldguard-server`: `policy push|pull|versions`,
//! `assign`, `mode`, `events search`. Each is one API call; the server
//! validates, and its errors (policy diagnostics included) are printed as
//! they come.

mod assign;
mod events;
mod policy;

pub use assign::{assign, mode, AssignArgs, ModeArgs};
pub use events::{search, SearchArgs};
pub use policy::{policy, PolicyServerCommand};

use clap::Args;
use serde_json::Value;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Where the server is and how to authenticate (global options).
#[derive(Args, Debug, Clone)]
pub struct ServerArgs {
    /// The ldguard-server URL, e.g. http://127.0.0.1:8080.
    #[arg(long, global = true, env = "LDGUARD_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// A file holding an admin or viewer token (never the token on the
    /// command line).
    #[arg(
        long,
        global = true,
        env = "LDGUARD_SERVER_TOKEN_FILE",
        value_name = "FILE"
    )]
    pub token_file: Option<PathBuf>,
    /// Extra CA certificates (PEM) for an https server.
    #[arg(long, global = true, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
}

/// An API client: base URL, token, agent.
pub struct Client {
    base: String,
    token: String,
    agent: ldguard_source::ureq::Agent,
}

/// A failed call: the message to print and the exit code.
pub struct Failure {
    pub message: String,
    /// Policy diagnostics, already rendered.
    pub rendered: Option<String>,
    pub code: u8,
}

impl Failure {
    fn usage(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            rendered: None,
            code: 2,
        }
    }
}

impl ServerArgs {
    pub fn client(&self) -> Result<Client, Failure> {
        let base = self.server.clone().ok_or_else(|| {
            Failure::usage("no server: give --server URL (or set LDGUARD_SERVER)")
        })?;
        let file = self.token_file.as_ref().ok_or_else(|| {
            Failure::usage("no token: give --token-file FILE (or set LDGUARD_SERVER_TOKEN_FILE)")
        })?;
        let token = std::fs::read_to_string(file)
            .map_err(|e| Failure::usage(format!("--token-file {}: {e}", file.display())))?
            .trim()
            .to_string();
        let agent = ldguard_source::agent(
            self.ca_file.as_deref(),
            Duration::from_secs(5),
            Duration::from_secs(60),
        )
        .map_err(|e| Failure::usage(e.to_string()))?;
        Ok(Client {
            base: base.trim_end_matches('/').to_string(),
            token,
            agent,
        })
    }
}

impl Client {
    /// Sends a request; 2xx bodies come back as JSON, the rest as a [`Failure`].
    pub fn call(&self, method: &str, path: &str, body: Option<Body>) -> Result<Value, Failure> {
        let url = format!("{}{path}", self.base);
        let request = self
            .agent
            .request(method, &url)
            .set("Authorization", &format!("Bearer {}", self.token));
        let result = match body {
            None => request.call(),
            Some(body) => {
                let text = match body {
                    Body::Json(v) => v.to_string(),
                    Body::Text(t) => t,
                };
                request
                    .set("Content-Type", "application/json")
                    .send_string(&text)
            }
        };
        let json = |r: ldguard_source::ureq::Response| -> Result<Value, String> {
            let text = r.into_string().map_err(|e| e.to_string())?;
            serde_json::from_str(&text).map_err(|e| e.to_string())
        };
        match result {
            Ok(response) => json(response)
                .map_err(|e| Failure::usage(format!("{url}: the answer is not JSON: {e}"))),
            Err(ldguard_source::ureq::Error::Status(status, response)) => {
                let body: Value = json(response).unwrap_or(Value::Null);
                let error = &body["error"];
                let rendered = error["diagnostics"].as_array().map(|list| {
                    list.iter()
                        .filter_map(|d| d["rendered"].as_str())
                        .collect::<Vec<_>>()
                        .join("")
                });
                Err(Failure {
                    message: format!(
                        "{} ({status})",
                        error["message"]
                            .as_str()
                            .unwrap_or("the server refused the request")
                    ),
                    rendered,
                    code: 1,
                })
            }
            Err(e) => Err(Failure::usage(format!("{url}: {e}"))),
        }
    }
}

pub enum Body {
    Json(Value),
    Text(String),
}

/// Prints the outcome of a command run by `f`.
pub fn finish(tool: &str, result: Result<(), Failure>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if let Some(r) = f.rendered.filter(|r| !r.is_empty()) {
                eprint!("{r}");
            }
            eprintln!("{tool}: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

/// Percent-encodes a query or path value.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

//! The instrumenter's side of ldguard-server's job API.

use crate::error::{Error, Result};
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;

/// A claimed job, as the server describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct Job {
    pub id: i64,
    /// HOST[:PORT]/REPO:TAG.
    pub image: String,
    pub policy: String,
    #[serde(default)]
    pub destination: Option<String>,
    #[serde(default)]
    pub attempts: i64,
}

/// What a progress or result report learnt.
#[derive(Debug, PartialEq, Eq)]
pub enum Report {
    Accepted,
    /// The lease ran out and another worker holds the job now.
    Lost(String),
}

pub struct ServerClient {
    base: String,
    token: String,
    agent: ureq::Agent,
    pub worker: String,
    pub lease_seconds: u64,
}

impl ServerClient {
    pub fn new(base: &str, token: String, worker: String, lease_seconds: u64) -> ServerClient {
        ServerClient {
            base: base.trim_end_matches('/').to_string(),
            token,
            agent: ureq::AgentBuilder::new()
                .timeout_connect(Duration::from_secs(10))
                .timeout(Duration::from_secs(30))
                .build(),
            worker,
            lease_seconds,
        }
    }

    fn place(&self, path: &str) -> String {
        format!("ldguard-server {}{path}", self.base)
    }

    /// Sends a request; returns the status and the JSON body (Null when none).
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<(u16, Value)> {
        let req = self
            .agent
            .request(method, &format!("{}{path}", self.base))
            .set("Authorization", &format!("Bearer {}", self.token));
        let r = match body {
            Some(b) => req
                .set("Content-Type", "application/json")
                .send_string(&b.to_string()),
            None => req.call(),
        };
        let response = match r {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => {
                return Err(Error::invalid(
                    self.place(path),
                    format!("cannot reach it: {e}; check --server"),
                ))
            }
        };
        let status = response.status();
        let text = response.into_string().unwrap_or_default();
        let value = serde_json::from_str(&text).unwrap_or(Value::Null);
        match status {
            401 | 403 => Err(Error::invalid(
                self.place(path),
                format!(
                    "{}: the instrumenter needs an instrumenter token (ldguard-server token create --role instrumenter) in --token-file",
                    error_message(&value, status)
                ),
            )),
            _ => Ok((status, value)),
        }
    }

    /// Whether the server answers `/readyz`.
    pub fn ready(&self) -> bool {
        self.agent
            .get(&format!("{}/readyz", self.base))
            .call()
            .is_ok()
    }

    pub fn claim(&self) -> Result<Option<Job>> {
        let path = "/api/v1/instrument/jobs/claim";
        let (status, body) = self.call(
            "POST",
            path,
            Some(json!({"worker": self.worker, "leaseSeconds": self.lease_seconds})),
        )?;
        match status {
            204 => Ok(None),
            200 => serde_json::from_value(body).map(Some).map_err(|e| {
                Error::invalid(self.place(path), format!("unexpected job description: {e}"))
            }),
            s => Err(Error::invalid(self.place(path), error_message(&body, s))),
        }
    }

    /// A progress message, which also renews the lease.
    pub fn progress(&self, job: i64, message: &str) -> Result<Report> {
        let path = format!("/api/v1/instrument/jobs/{job}/progress");
        let (status, body) = self.call(
            "POST",
            &path,
            Some(json!({"worker": self.worker, "message": message,
                        "leaseSeconds": self.lease_seconds})),
        )?;
        self.report(&path, status, &body)
    }

    pub fn succeeded(&self, job: i64, digest: &str, destination: &str) -> Result<Report> {
        let path = format!("/api/v1/instrument/jobs/{job}/result");
        let (status, body) = self.call(
            "POST",
            &path,
            Some(json!({"worker": self.worker, "digest": digest, "destination": destination})),
        )?;
        self.report(&path, status, &body)
    }

    pub fn failed(&self, job: i64, error: &str) -> Result<Report> {
        let path = format!("/api/v1/instrument/jobs/{job}/result");
        let (status, body) = self.call(
            "POST",
            &path,
            Some(json!({"worker": self.worker, "error": error})),
        )?;
        self.report(&path, status, &body)
    }

    fn report(&self, path: &str, status: u16, body: &Value) -> Result<Report> {
        match status {
            200 => Ok(Report::Accepted),
            409 => Ok(Report::Lost(error_message(body, status))),
            s => Err(Error::invalid(self.place(path), error_message(body, s))),
        }
    }

    /// The latest published version of a policy, as a document.
    pub fn policy(&self, name: &str) -> Result<(i64, Value)> {
        let path = format!("/api/v1/policies/{name}");
        let (status, body) = self.call("GET", &path, None)?;
        if status != 200 {
            return Err(Error::invalid(
                self.place(&path),
                format!("policy '{name}': {}", error_message(&body, status)),
            ));
        }
        match (body["version"].as_i64(), body.get("policy")) {
            (Some(v), Some(p)) if p.is_object() => Ok((v, p.clone())),
            _ => Err(Error::invalid(
                self.place(&path),
                "the answer has no version and policy",
            )),
        }
    }
}

fn error_message(body: &Value, status: u16) -> String {
    match body["error"]["message"].as_str() {
        Some(m) => format!("{status}: {m}"),
        None => format!("answered {status}"),
    }
}

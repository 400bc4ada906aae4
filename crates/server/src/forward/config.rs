//! `serve`'s forwarding options, and the sinks they describe.
//!
//! Credentials come from a file or the environment, never from the command
//! line (other users of the machine can read a process's arguments).

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The receivers `serve` can forward to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SinkKind {
    /// An OTLP/HTTP logs endpoint, protobuf encoding.
    Otlp,
    /// Loki's push API, JSON encoding.
    Loki,
    /// Any HTTPS endpoint that takes a JSON array of events.
    Webhook,
}

impl SinkKind {
    /// The sink's name: its cursor's key and its metrics label.
    pub fn name(self) -> &'static str {
        match self {
            SinkKind::Otlp => "otlp",
            SinkKind::Loki => "loki",
            SinkKind::Webhook => "webhook",
        }
    }
}

/// One receiver and how to deliver to it.
#[derive(Clone, Debug)]
pub struct SinkConfig {
    pub kind: SinkKind,
    pub url: String,
    /// The `Authorization` header's value, if the receiver wants one.
    pub authorization: Option<String>,
    /// Loki's tenant (`X-Scope-OrgID`).
    pub tenant: Option<String>,
    /// The webhook's HMAC-SHA256 key.
    pub secret: Option<Vec<u8>>,
    /// CA certificates for an https receiver (default: the system's roots).
    pub ca_file: Option<PathBuf>,
    /// Events per request at most.
    pub batch: usize,
    /// Longest wait between two attempts while the receiver fails.
    pub max_backoff: Duration,
    /// How long a hole in the event ids is waited for before it is taken
    /// for ids that will never be stored (see `deliverable`).
    pub gap_grace: Duration,
    /// How long a process's claim on a sink lasts without renewal.
    pub lease: Duration,
    /// How often an idle forwarder looks for new events.
    pub poll: Duration,
}

impl SinkConfig {
    pub fn new(kind: SinkKind, url: &str) -> SinkConfig {
        SinkConfig {
            kind,
            url: url.to_string(),
            authorization: None,
            tenant: None,
            secret: None,
            ca_file: None,
            batch: 500,
            max_backoff: Duration::from_secs(60),
            gap_grace: Duration::from_secs(30),
            lease: Duration::from_secs(15),
            poll: Duration::from_millis(500),
        }
    }
}

/// The forwarding flags of `ldguard-server serve`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ForwardArgs {
    /// Forward every stored event to this OTLP/HTTP logs endpoint
    /// (protobuf), e.g. http://collector:4318/v1/logs.
    #[arg(long, value_name = "URL")]
    pub forward_otlp: Option<String>,
    /// A file holding the OTLP endpoint's credential: a token (sent as
    /// `Bearer TOKEN`) or a whole Authorization value (`Basic …`).
    /// Default: $LDGUARD_FORWARD_OTLP_TOKEN.
    #[arg(long, value_name = "FILE")]
    pub forward_otlp_token_file: Option<PathBuf>,
    /// Forward every stored event to Loki's push API, e.g.
    /// http://loki:3100/loki/api/v1/push.
    #[arg(long, value_name = "URL")]
    pub forward_loki: Option<String>,
    /// Like --forward-otlp-token-file, for Loki.
    /// Default: $LDGUARD_FORWARD_LOKI_TOKEN.
    #[arg(long, value_name = "FILE")]
    pub forward_loki_token_file: Option<PathBuf>,
    /// Loki tenant (sent as X-Scope-OrgID).
    #[arg(long, value_name = "TENANT")]
    pub forward_loki_tenant: Option<String>,
    /// Forward every stored event to this URL as JSON (POST).
    #[arg(long, value_name = "URL")]
    pub forward_webhook: Option<String>,
    /// A file holding the key the webhook's body is signed with
    /// (HMAC-SHA256). Default: $LDGUARD_FORWARD_WEBHOOK_SECRET.
    #[arg(long, value_name = "FILE")]
    pub forward_webhook_secret_file: Option<PathBuf>,
    /// CA certificates (PEM) for https receivers; default: the system's.
    #[arg(long, value_name = "FILE")]
    pub forward_ca_file: Option<PathBuf>,
    /// Events per forwarded request at most.
    #[arg(long, value_name = "N", default_value_t = 500)]
    pub forward_batch: usize,
    /// Longest wait between two delivery attempts while a receiver fails.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub forward_max_backoff_seconds: u64,
}

impl ForwardArgs {
    /// The sinks these flags name, with their secrets read.
    pub fn sinks(&self) -> Result<Vec<SinkConfig>, String> {
        if !(1..=10_000).contains(&self.forward_batch) {
            return Err(format!(
                "--forward-batch {}: give 1 to 10000 events per request",
                self.forward_batch
            ));
        }
        let mut sinks = Vec::new();
        let wanted = [
            (SinkKind::Otlp, "--forward-otlp", &self.forward_otlp),
            (SinkKind::Loki, "--forward-loki", &self.forward_loki),
            (
                SinkKind::Webhook,
                "--forward-webhook",
                &self.forward_webhook,
            ),
        ];
        for (kind, flag, url) in wanted {
            let Some(url) = url else { continue };
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!("{flag} {url:?}: give an http:// or https:// URL"));
            }
            let mut sink = SinkConfig::new(kind, url);
            sink.ca_file = self.forward_ca_file.clone();
            sink.batch = self.forward_batch;
            sink.max_backoff = Duration::from_secs(self.forward_max_backoff_seconds.max(1));
            match kind {
                SinkKind::Otlp => {
                    sink.authorization = secret(
                        "--forward-otlp-token-file",
                        self.forward_otlp_token_file.as_deref(),
                        "LDGUARD_FORWARD_OTLP_TOKEN",
                    )?
                    .map(authorization);
                }
                SinkKind::Loki => {
                    sink.authorization = secret(
                        "--forward-loki-token-file",
                        self.forward_loki_token_file.as_deref(),
                        "LDGUARD_FORWARD_LOKI_TOKEN",
                    )?
                    .map(authorization);
                    sink.tenant = self.forward_loki_tenant.clone();
                }
                SinkKind::Webhook => {
                    sink.secret = secret(
                        "--forward-webhook-secret-file",
                        self.forward_webhook_secret_file.as_deref(),
                        "LDGUARD_FORWARD_WEBHOOK_SECRET",
                    )?
                    .map(String::into_bytes);
                }
            }
            sinks.push(sink);
        }
        Ok(sinks)
    }
}

/// A secret from `file` (trimmed), else from the variable `env`.
fn secret(flag: &str, file: Option<&Path>, env: &str) -> Result<Option<String>, String> {
    let text = match file {
        Some(f) => {
            std::fs::read_to_string(f).map_err(|e| format!("{flag} {}: {e}", f.display()))?
        }
        None => match std::env::var(env) {
            Ok(v) => v,
            Err(_) => return Ok(None),
        },
    };
    let text = text.trim().to_string();
    if text.is_empty() {
        let place = file.map_or_else(|| format!("${env}"), |f| format!("{flag} {}", f.display()));
        return Err(format!(
            "{place} is empty: put the secret in it, or leave it out"
        ));
    }
    Ok(Some(text))
}

/// A bare token becomes `Bearer TOKEN`; a value with a scheme is kept.
fn authorization(credential: String) -> String {
    if credential.contains(' ') {
        credential
    } else {
        format!("Bearer {credential}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_name_sinks_and_secrets_come_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "abc\n").unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, " \n").unwrap();
        let args = ForwardArgs {
            forward_otlp: Some("http://127.0.0.1:4318/v1/logs".into()),
            forward_otlp_token_file: Some(token.clone()),
            forward_webhook: Some("https://hooks.example/x".into()),
            forward_batch: 100,
            forward_max_backoff_seconds: 5,
            ..ForwardArgs::default()
        };
        let sinks = args.sinks().unwrap();
        assert_eq!(sinks.len(), 2);
        assert_eq!(sinks[0].kind, SinkKind::Otlp);
        assert_eq!(sinks[0].authorization.as_deref(), Some("Bearer abc"));
        assert_eq!(sinks[1].kind, SinkKind::Webhook);
        assert_eq!(sinks[1].batch, 100);

        let bad = ForwardArgs {
            forward_loki: Some("loki:3100".into()),
            forward_batch: 10,
            ..ForwardArgs::default()
        };
        assert!(bad
            .sinks()
            .unwrap_err()
            .contains("--forward-loki \"loki:3100\""));
        let empty_secret = ForwardArgs {
            forward_webhook: Some("http://127.0.0.1:9/".into()),
            forward_webhook_secret_file: Some(empty),
            forward_batch: 10,
            ..ForwardArgs::default()
        };
        assert!(empty_secret.sinks().unwrap_err().contains("is empty"));
        assert_eq!(authorization("Basic dTpw".into()), "Basic dTpw");
    }
}

//! How registry connections are made: TLS roots, proxies and retries, the
//! way skopeo, podman and curl users already configure them.
//!
//! - Roots: the system trust store (`rustls-native-certs`, which honours
//!   `SSL_CERT_FILE` and `SSL_CERT_DIR`), the compiled-in Mozilla roots only
//!   when the system has none, plus every `*.crt` in `--cert-dir DIR`, else
//!   in `/etc/containers/certs.d/HOST[:PORT]/` and
//!   `/etc/docker/certs.d/HOST[:PORT]/` (skopeo's and docker's convention).
//! - Proxies: `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` (either case),
//!   skipped for hosts that `NO_PROXY` names; HTTP CONNECT tunnels (ureq).
//! - Retries: transport failures (refused, reset, timeouts) and 429/5xx
//!   answers are retried with exponential backoff, `--retry-times` times.

use crate::error::{Error, Result};
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Connection settings from the command line.
#[derive(Clone, Debug, Default)]
pub struct NetOptions {
    /// Plain HTTP (any host; the CLI warns).
    pub insecure: bool,
    /// Replaces the certs.d lookup, as skopeo's `--cert-dir`.
    pub cert_dir: Option<PathBuf>,
    /// Extra attempts after a transient failure.
    pub retry_times: u32,
    /// `--creds-file` / `LDGUARD_LAYER_CREDS`: used before any auth file.
    pub creds: Option<super::auth::Credentials>,
}

/// The per-host CA directories skopeo and docker read.
pub const CERTS_D: [&str; 2] = ["/etc/containers/certs.d", "/etc/docker/certs.d"];

/// The directories whose `*.crt` files are trusted for `host`.
pub fn cert_dirs(host: &str, cert_dir: Option<&Path>) -> Vec<PathBuf> {
    match cert_dir {
        Some(d) => vec![d.to_path_buf()],
        None => CERTS_D
            .iter()
            .map(|root| Path::new(root).join(host))
            .collect(),
    }
}

pub fn tls_config(host: &str, cert_dir: Option<&Path>) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // One unparsable certificate in the system bundle must not disable the rest.
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    if let Some(d) = cert_dir.filter(|d| !d.is_dir()) {
        return Err(Error::invalid(
            "--cert-dir",
            format!("{} is not a directory", d.display()),
        ));
    }
    for dir in cert_dirs(host, cert_dir) {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "crt"))
            .collect();
        files.sort();
        for file in files {
            add_pem(&mut roots, &file)?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::invalid("TLS", e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn add_pem(roots: &mut RootCertStore, file: &Path) -> Result<()> {
    let bad = |why: String| {
        Error::invalid(
            file.display().to_string(),
            format!("{why}; a *.crt file there must hold PEM CA certificates"),
        )
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(file)
        .map_err(|e| bad(e.to_string()))?
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no CERTIFICATE block".into()));
    }
    for cert in certs {
        roots.add(cert).map_err(|e| bad(e.to_string()))?;
    }
    Ok(())
}

/// The proxy for `scheme://host` from the environment, as curl reads it.
pub fn proxy_for(scheme: &str, host: &str) -> Option<String> {
    let var = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
    };
    let proxy = match scheme {
        "https" => var(&["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]),
        _ => var(&["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]),
    }?;
    let no_proxy = var(&["NO_PROXY", "no_proxy"]).unwrap_or_default();
    (!no_proxy_matches(&no_proxy, host)).then_some(proxy)
}

/// `NO_PROXY`: `*`, or comma-separated names matching the host itself or,
/// as a domain suffix, its subdomains (`.example.com` or `example.com`);
/// an entry with a port matches that port only.
fn no_proxy_matches(list: &str, host_port: &str) -> bool {
    let (host, port) = match host_port.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => (h, Some(p)),
        _ => (host_port, None),
    };
    list.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|entry| {
            if entry == "*" {
                return true;
            }
            let (name, entry_port) = match entry.rsplit_once(':') {
                Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => (h, Some(p)),
                _ => (entry, None),
            };
            if entry_port.is_some() && entry_port != port {
                return false;
            }
            let name = name.trim_start_matches('.');
            host.eq_ignore_ascii_case(name)
                || host
                    .to_ascii_lowercase()
                    .ends_with(&format!(".{}", name.to_ascii_lowercase()))
        })
}

/// Delay before retry `attempt` (1-based): 0.5 s doubling, at most 8 s.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(500u64.saturating_mul(1 << attempt.saturating_sub(1).min(4)))
}

/// Whether an answer with this status is worth asking again.
pub fn is_transient(status: u16) -> bool {
    status == 429 || (500..600).contains(&status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_proxy_matches_like_curl() {
        assert!(no_proxy_matches("*", "registry.example:5000"));
        assert!(no_proxy_matches("example.com", "r.example.com"));
        assert!(no_proxy_matches(".example.com", "r.example.com:443"));
        assert!(no_proxy_matches(" localhost , 127.0.0.1", "127.0.0.1:5000"));
        assert!(no_proxy_matches("127.0.0.1:5000", "127.0.0.1:5000"));
        assert!(!no_proxy_matches("127.0.0.1:5001", "127.0.0.1:5000"));
        assert!(!no_proxy_matches("example.com", "notexample.com"));
        assert!(!no_proxy_matches("", "example.com"));
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let d: Vec<u64> = (1..=7).map(|a| backoff(a).as_millis() as u64).collect();
        assert_eq!(d, [500, 1000, 2000, 4000, 8000, 8000, 8000]);
    }

    #[test]
    fn cert_dir_replaces_certs_d() {
        assert_eq!(
            cert_dirs("r.example:5000", None),
            [
                PathBuf::from("/etc/containers/certs.d/r.example:5000"),
                PathBuf::from("/etc/docker/certs.d/r.example:5000")
            ]
        );
        assert_eq!(
            cert_dirs("r.example", Some(Path::new("/c"))),
            [PathBuf::from("/c")]
        );
    }
}

//! TLS client configuration: always verified.
//!
//! Roots: the system trust store (`rustls-native-certs`: `SSL_CERT_FILE`,
//! `SSL_CERT_DIR`, `/etc/ssl/certs`, ...), because that is what an image's
//! operator controls; when an image has no CA bundle at all (distroless,
//! scratch), the Mozilla roots compiled in through `webpki-roots` instead, so
//! public HTTPS still works. The optional `caFile` is added on top, for private
//! policy servers. There is no switch to turn verification off.

use super::TransportError;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use std::path::Path;
use std::sync::Arc;

pub(crate) fn client_config(
    ca_file: Option<&Path>,
) -> Result<Arc<rustls::ClientConfig>, TransportError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        // One unparsable certificate in the system bundle must not disable the rest.
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    if let Some(path) = ca_file {
        add_ca_file(&mut roots, path)?;
    }
    // Explicit provider: `builder()` panics when the dependency graph enables
    // two crypto back-ends, and this code runs inside arbitrary programs.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TransportError::Config {
            what: format!("TLS set-up failed: {e}"),
            fix: "this is a build problem of libldguard; report it".to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn add_ca_file(roots: &mut RootCertStore, path: &Path) -> Result<(), TransportError> {
    let bad = |why: String| TransportError::Config {
        what: format!("caFile {}: {why}", path.display()),
        fix: "point caFile at a PEM file holding the CA certificate(s) of the policy server"
            .to_string(),
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no CERTIFICATE block found".to_string()));
    }
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| bad(format!("unusable certificate: {e}")))?;
    }
    Ok(())
}

//! Registries over the distribution v2 API (`docker://HOST/REPO:TAG`).
//! Blobs are content-addressed like crane does it: HEAD before upload,
//! cross-repository mount when the source is the same registry, a
//! monolithic upload otherwise; manifests last, the tag after its content.

use super::auth::{self, Challenge, Credentials, TokenReply};
use super::net::{self, NetOptions};
use crate::error::{Error, Result};
use crate::image::digest::{parse_digest, unwrap_io, VerifyingReader};
use crate::image::reference::RegistryRef;
use crate::image::{
    Destination, Output, RawManifest, Source, DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST,
};
use crate::progress::Progress;
use oci_spec::image::Descriptor;
use std::collections::HashMap;
use std::io::Read;
use std::net::ToSocketAddrs;
use std::time::Duration;

const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

pub struct Client {
    agent: ureq::Agent,
    base: String,
    host: String,
    creds: Option<Credentials>,
    challenge: Option<Option<Challenge>>,
    tokens: HashMap<String, String>,
    retry_times: u32,
}

pub enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    Stream(Box<dyn Read + 'a>, u64),
}

/// Connection failures and timeouts may pass; TLS and protocol errors do not.
fn is_transient_transport(t: &ureq::Transport) -> bool {
    matches!(
        t.kind(),
        ureq::ErrorKind::ConnectionFailed | ureq::ErrorKind::Io | ureq::ErrorKind::ProxyConnect
    ) && !t.to_string().contains("certificate")
}

fn is_loopback(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    if name == "localhost" {
        return true;
    }
    if let Ok(ip) = name.parse::<std::net::IpAddr>() {
        return ip.is_loopback();
    }
    match (name, 80).to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<_> = addrs.collect();
            !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback())
        }
        Err(_) => false,
    }
}

/// The registry's error reply (`{"errors":[{"code","message"}]}`) or the
/// start of whatever body it sent.
fn error_text(resp: ureq::Response) -> String {
    let status = resp.status();
    let body = resp.into_string().unwrap_or_default();
    #[derive(serde::Deserialize)]
    struct Errs {
        errors: Vec<Err1>,
    }
    #[derive(serde::Deserialize)]
    struct Err1 {
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_str::<Errs>(&body) {
        Ok(e) if !e.errors.is_empty() => {
            let parts: Vec<String> = e
                .errors
                .iter()
                .map(|x| format!("{}: {}", x.code, x.message))
                .collect();
            format!("HTTP {status}, {}", parts.join("; "))
        }
        _ => format!(
            "HTTP {status} {}",
            body.chars().take(200).collect::<String>().trim()
        ),
    }
}

impl Client {
    pub fn new(host: &str, net: &NetOptions) -> Result<Client> {
        let scheme = if net.insecure { "http" } else { "https" };
        if net.insecure && !is_loopback(host) {
            eprintln!(
                "ldguard-layer: warning: --insecure: plain HTTP to {host}: credentials and \
                 image contents cross the network unprotected and unverified"
            );
        }
        let api_host = if host == "docker.io" {
            "registry-1.docker.io"
        } else {
            host
        };
        let mut agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(15))
            .timeout_read(Duration::from_secs(300))
            .timeout_write(Duration::from_secs(300))
            .redirects(5)
            .user_agent(concat!("ldguard-layer/", env!("CARGO_PKG_VERSION")))
            .tls_config(net::tls_config(host, net.cert_dir.as_deref())?)
            .try_proxy_from_env(false);
        if let Some(proxy) = net::proxy_for(scheme, api_host) {
            let parsed = ureq::Proxy::new(&proxy).map_err(|e| {
                Error::invalid(
                    "proxy",
                    format!("{proxy} (from HTTPS_PROXY/HTTP_PROXY/ALL_PROXY): {e}"),
                )
            })?;
            agent = agent.proxy(parsed);
        }
        let creds = match &net.creds {
            Some(c) => Some(c.clone()),
            None => auth::lookup(host)?,
        };
        Ok(Client {
            agent: agent.build(),
            base: format!("{scheme}://{api_host}"),
            host: host.to_string(),
            creds,
            challenge: None,
            tokens: HashMap::new(),
            retry_times: net.retry_times,
        })
    }

    fn place(&self, path: &str) -> String {
        format!("{}{path}", self.host)
    }

    fn transport_error(&self, path: &str, e: ureq::Transport) -> Error {
        let text = e.to_string();
        let hint = if text.contains("certificate") || text.contains("UnknownIssuer") {
            format!(
                "the registry's certificate is not trusted: put its CA certificate (PEM, *.crt) in \
                 /etc/containers/certs.d/{}/ or a directory given with --cert-dir, or add it to \
                 the system store (SSL_CERT_FILE)",
                self.host
            )
        } else if self.base.starts_with("https") {
            "is the registry running? (a plain-HTTP registry needs --insecure)".to_string()
        } else {
            "is the registry running and listening on that address?".to_string()
        };
        Error::registry(self.place(path), format!("{e}; {hint}"))
    }

    /// Waits before retry `attempt` after a transient failure, saying so.
    fn pause(&self, attempt: u32, path: &str, why: &str) {
        let delay = net::backoff(attempt);
        eprintln!(
            "ldguard-layer: {}: {why}; retrying in {:.1} s ({attempt}/{})",
            self.place(path),
            delay.as_secs_f32(),
            self.retry_times
        );
        std::thread::sleep(delay);
    }

    /// Learns how the registry wants to be authenticated (`GET /v2/`).
    fn challenge(&mut self) -> Result<Option<Challenge>> {
        if let Some(c) = &self.challenge {
            return Ok(c.clone());
        }
        let url = format!("{}/v2/", self.base);
        let mut retries = 0;
        let answer = loop {
            let answer = self.agent.get(&url).call();
            let why = match &answer {
                Err(ureq::Error::Status(code, _)) if net::is_transient(*code) => {
                    format!("HTTP {code}")
                }
                Err(ureq::Error::Transport(t)) if is_transient_transport(t) => t.to_string(),
                _ => break answer,
            };
            if retries == self.retry_times {
                break answer;
            }
            retries += 1;
            self.pause(retries, "/v2/", &why);
        };
        let c = match answer {
            Ok(_) => None,
            Err(ureq::Error::Status(401, resp)) => resp
                .header("www-authenticate")
                .and_then(auth::parse_challenge),
            Err(ureq::Error::Status(_, resp)) => {
                return Err(Error::registry(
                    self.place("/v2/"),
                    format!("{}; is this a v2 registry?", error_text(resp)),
                ))
            }
            Err(ureq::Error::Transport(t)) => return Err(self.transport_error("/v2/", t)),
        };
        self.challenge = Some(c.clone());
        Ok(c)
    }

    fn authorization(&mut self, scope: &str) -> Result<Option<String>> {
        match self.challenge()? {
            None => Ok(None),
            Some(Challenge::Basic) => match &self.creds {
                Some(c) => Ok(Some(c.basic_header())),
                None => Err(Error::registry(
                    self.host.clone(),
                    format!(
                        "asks for a user name and password and none is stored for {}; log in with `podman login {}` or add it to ~/.docker/config.json or REGISTRY_AUTH_FILE",
                        self.host, self.host
                    ),
                )),
            },
            Some(Challenge::Bearer { realm, service }) => {
                if let Some(t) = self.tokens.get(scope) {
                    return Ok(Some(format!("Bearer {t}")));
                }
                let mut req = self.agent.get(&realm).query("scope", scope);
                if let Some(s) = &service {
                    req = req.query("service", s);
                }
                if let Some(c) = &self.creds {
                    req = req.set("Authorization", &c.basic_header());
                }
                let reply: TokenReply = match req.call() {
                    Ok(r) => {
                        let body = r.into_string().map_err(|e| Error::registry(realm.clone(), e.to_string()))?;
                        serde_json::from_str(&body).map_err(|e| Error::registry(realm.clone(), format!("bad token reply: {e}")))?
                    }
                    Err(ureq::Error::Status(code, resp)) => {
                        let hint = if code == 401 || code == 403 { "; check the stored credentials (podman login)" } else { "" };
                        return Err(Error::registry(realm.clone(), format!("token request for {scope} refused: {}{hint}", error_text(resp))));
                    }
                    Err(ureq::Error::Transport(t)) => return Err(Error::registry(realm.clone(), t.to_string())),
                };
                let token = reply.token.or(reply.access_token).ok_or_else(|| Error::registry(realm.clone(), "token reply without a token"))?;
                self.tokens.insert(scope.to_string(), token.clone());
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    /// One request; a 401 on a replayable body re-authenticates once.
    pub fn request(
        &mut self,
        method: &str,
        path_or_url: &str,
        scope: &str,
        headers: &[(&str, &str)],
        body: Body<'_>,
    ) -> Result<std::result::Result<ureq::Response, ureq::Response>> {
        let url = if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
            path_or_url.to_string()
        } else {
            format!("{}{path_or_url}", self.base)
        };
        let mut body = Some(body);
        let mut reauthenticated = false;
        let mut retries = 0;
        loop {
            let mut req = self.agent.request(method, &url);
            if let Some(a) = self.authorization(scope)? {
                req = req.set("Authorization", &a);
            }
            for (k, v) in headers {
                req = req.set(k, v);
            }
            let b = body.take().unwrap_or(Body::Empty);
            // A streamed body is read once: it can be neither re-authenticated
            // nor retried.
            let replay = match &b {
                Body::Empty => Some(Body::Empty),
                Body::Bytes(x) => Some(Body::Bytes(x)),
                Body::Stream(..) => None,
            };
            let res = match b {
                Body::Empty => req.call(),
                Body::Bytes(x) => req.send_bytes(x),
                Body::Stream(r, len) => req.set("Content-Length", &len.to_string()).send(r),
            };
            let can_retry = replay.is_some() && retries < self.retry_times;
            match res {
                Ok(r) => return Ok(Ok(r)),
                Err(ureq::Error::Status(401, r)) if !reauthenticated && replay.is_some() => {
                    reauthenticated = true;
                    self.tokens.remove(scope);
                    self.challenge =
                        Some(r.header("www-authenticate").and_then(auth::parse_challenge));
                    body = replay;
                }
                Err(ureq::Error::Status(code, _)) if can_retry && net::is_transient(code) => {
                    retries += 1;
                    self.pause(retries, path_or_url, &format!("HTTP {code}"));
                    body = replay;
                }
                Err(ureq::Error::Status(_, r)) => return Ok(Err(r)),
                Err(ureq::Error::Transport(t)) => {
                    if let Some(inner) = std::error::Error::source(&t) {
                        if let Some(io) = inner.downcast_ref::<std::io::Error>() {
                            if let Some(e) = io.get_ref().and_then(|e| e.downcast_ref::<Error>()) {
                                return Err(Error::invalid(self.place(path_or_url), e.to_string()));
                            }
                        }
                    }
                    if can_retry && is_transient_transport(&t) {
                        retries += 1;
                        self.pause(retries, path_or_url, &t.to_string());
                        body = replay;
                        continue;
                    }
                    return Err(self.transport_error(path_or_url, t));
                }
            }
        }
    }

    fn fail(&self, what: &str, path: &str, resp: ureq::Response) -> Error {
        let status = resp.status();
        let hint = match status {
            401 | 403 => "; check the credentials stored for this registry (podman login, ~/.docker/config.json, REGISTRY_AUTH_FILE)",
            404 if what.contains("manifest") => "; check the repository and tag",
            _ => "",
        };
        Error::registry(
            self.place(path),
            format!("{what}: {}{hint}", error_text(resp)),
        )
    }

    pub fn get_manifest(&mut self, repo: &str, reference: &str) -> Result<RawManifest> {
        let path = format!("/v2/{repo}/manifests/{reference}");
        let scope = format!("repository:{repo}:pull");
        let resp = self
            .request("GET", &path, &scope, &[("Accept", ACCEPT)], Body::Empty)?
            .map_err(|r| self.fail("fetching the manifest", &path, r))?;
        let ct = resp
            .header("content-type")
            .map(|s| s.split(';').next().unwrap_or(s).trim().to_string());
        let mut bytes = Vec::new();
        resp.into_reader()
            .take(16 << 20)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::registry(self.place(&path), e.to_string()))?;
        let m = RawManifest::new(
            bytes,
            ct.filter(|c| {
                [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST].contains(&c.as_str())
            }),
        );
        if reference.starts_with("sha256:") && m.digest.to_string() != reference {
            return Err(Error::Corrupt {
                place: self.place(&path),
                expected: reference.to_string(),
                detail: format!("the registry sent content hashing to {}", m.digest),
            });
        }
        Ok(m)
    }

    pub fn blob_exists(&mut self, repo: &str, desc: &Descriptor) -> Result<bool> {
        let path = format!("/v2/{repo}/blobs/{}", desc.digest());
        let scope = format!("repository:{repo}:pull,push");
        match self.request("HEAD", &path, &scope, &[], Body::Empty)? {
            Ok(_) => Ok(true),
            Err(r) if r.status() == 404 => Ok(false),
            Err(r) => Err(self.fail("checking for a blob", &path, r)),
        }
    }

    pub fn get_blob(&mut self, repo: &str, desc: &Descriptor) -> Result<ureq::Response> {
        let path = format!("/v2/{repo}/blobs/{}", desc.digest());
        let scope = format!("repository:{repo}:pull");
        self.request("GET", &path, &scope, &[], Body::Empty)?
            .map_err(|r| self.fail("fetching a blob", &path, r))
    }

    /// Cross-repository mount; false when the registry started an upload
    /// instead (it cannot or will not mount).
    pub fn mount(&mut self, repo: &str, from: &str, desc: &Descriptor) -> Result<bool> {
        let path = format!(
            "/v2/{repo}/blobs/uploads/?mount={}&from={from}",
            desc.digest()
        );
        let scope = format!("repository:{repo}:pull,push repository:{from}:pull");
        match self.request(
            "POST",
            &path,
            &scope,
            &[("Content-Length", "0")],
            Body::Empty,
        )? {
            Ok(r) if r.status() == 201 => Ok(true),
            Ok(r) => {
                // An upload session was opened; cancel it so nothing dangles.
                if let Some(loc) = r.header("location").map(str::to_string) {
                    let url = self.absolute(&loc);
                    let _ = self.request(
                        "DELETE",
                        &url,
                        &format!("repository:{repo}:pull,push"),
                        &[],
                        Body::Empty,
                    );
                }
                Ok(false)
            }
            Err(r) if matches!(r.status(), 401 | 403 | 404) => Ok(false),
            Err(r) => Err(self.fail("mounting a blob", &path, r)),
        }
    }

    fn absolute(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else {
            format!("{}{location}", self.base)
        }
    }

    pub fn upload(
        &mut self,
        repo: &str,
        desc: &Descriptor,
        data: Box<dyn Read + '_>,
    ) -> Result<()> {
        let path = format!("/v2/{repo}/blobs/uploads/");
        let scope = format!("repository:{repo}:pull,push");
        let resp = self
            .request(
                "POST",
                &path,
                &scope,
                &[("Content-Length", "0")],
                Body::Empty,
            )?
            .map_err(|r| self.fail("starting an upload", &path, r))?;
        let loc = resp
            .header("location")
            .ok_or_else(|| {
                Error::registry(
                    self.place(&path),
                    "upload started without a Location header",
                )
            })?
            .to_string();
        let mut url = url::Url::parse(&self.absolute(&loc)).map_err(|e| {
            Error::registry(self.place(&path), format!("bad upload location {loc}: {e}"))
        })?;
        url.query_pairs_mut()
            .append_pair("digest", desc.digest().as_ref());
        let headers = [("Content-Type", "application/octet-stream")];
        let resp = self.request(
            "PUT",
            url.as_str(),
            &scope,
            &headers,
            Body::Stream(data, desc.size()),
        )?;
        resp.map(|_| ())
            .map_err(|r| self.fail(&format!("uploading blob {}", desc.digest()), &path, r))
    }

    pub fn put_manifest(&mut self, repo: &str, reference: &str, m: &RawManifest) -> Result<()> {
        let path = format!("/v2/{repo}/manifests/{reference}");
        let scope = format!("repository:{repo}:pull,push");
        self.request(
            "PUT",
            &path,
            &scope,
            &[("Content-Type", &m.media_type)],
            Body::Bytes(&m.bytes),
        )?
        .map(|_| ())
        .map_err(|r| self.fail("writing the manifest", &path, r))
    }
}

/// Blobs are downloaded once into a spool directory (verified on the way),
/// then read from there: the builder reads base layers twice (scan, copy).
pub struct RegistrySource {
    r: RegistryRef,
    client: Client,
    spool: tempfile::TempDir,
    progress: Progress,
}

impl RegistrySource {
    pub fn open(r: &RegistryRef, net: &NetOptions, progress: Progress) -> Result<RegistrySource> {
        Ok(RegistrySource {
            r: r.clone(),
            client: Client::new(&r.host, net)?,
            spool: tempfile::tempdir()
                .map_err(|e| Error::io(std::env::temp_dir(), "creating a spool directory", e))?,
            progress,
        })
    }
}

impl Source for RegistrySource {
    fn describe(&self) -> String {
        format!("docker://{}", self.r)
    }

    fn image_name(&self) -> String {
        self.r.to_string()
    }

    fn root(&mut self) -> Result<RawManifest> {
        let reference = self.r.reference().to_string();
        self.client.get_manifest(&self.r.repo, &reference)
    }

    fn manifest(&mut self, desc: &Descriptor) -> Result<RawManifest> {
        self.client
            .get_manifest(&self.r.repo, desc.digest().as_ref())
    }

    fn blob(&mut self, desc: &Descriptor) -> Result<Box<dyn Read + '_>> {
        parse_digest(&self.describe(), desc.digest().as_ref())?;
        let spooled = self.spool.path().join(desc.digest().digest());
        if !spooled.exists() {
            let place = format!("{} blob {}", self.describe(), desc.digest());
            let resp = self.client.get_blob(&self.r.repo, desc)?;
            let r = self.progress.wrap(
                format!("pulling {}", super::oci::short(desc.digest().as_ref())),
                desc.size(),
                resp.into_reader(),
            );
            let mut v = VerifyingReader::new(r, desc.digest().clone(), desc.size(), place.clone());
            let mut tmp = tempfile::NamedTempFile::new_in(self.spool.path())
                .map_err(|e| Error::io(self.spool.path(), "spooling", e))?;
            std::io::copy(&mut v, tmp.as_file_mut())
                .map_err(|e| unwrap_io(&place, "downloading", e))?;
            tmp.persist(&spooled)
                .map_err(|e| Error::io(&spooled, "spooling", e.error))?;
        }
        let f = std::fs::File::open(&spooled)
            .map_err(|e| Error::io(&spooled, "reading the spool", e))?;
        Ok(Box::new(f))
    }

    fn registry(&self) -> Option<&RegistryRef> {
        Some(&self.r)
    }
}

pub struct RegistryDestination {
    r: RegistryRef,
    client: Client,
}

impl RegistryDestination {
    pub fn open(r: &RegistryRef, net: &NetOptions) -> Result<RegistryDestination> {
        Ok(RegistryDestination {
            r: r.clone(),
            client: Client::new(&r.host, net)?,
        })
    }

    fn push_bytes(&mut self, desc: &Descriptor, bytes: &[u8]) -> Result<()> {
        if self.client.blob_exists(&self.r.repo, desc)? {
            return Ok(());
        }
        let repo = self.r.repo.clone();
        self.client.upload(&repo, desc, Box::new(bytes))
    }
}

impl Destination for RegistryDestination {
    fn describe(&self) -> String {
        format!("docker://{}", self.r)
    }

    fn write(&mut self, out: &Output, src: &mut dyn Source, progress: &Progress) -> Result<()> {
        let repo = self.r.repo.clone();
        let same_registry_repo = src
            .registry()
            .filter(|s| s.host == self.r.host)
            .map(|s| s.repo.clone());
        for img in out.images() {
            for l in &img.layers {
                match &l.data {
                    Some(d) => self.push_bytes(&l.desc, d)?,
                    None => {
                        if self.client.blob_exists(&repo, &l.desc)? {
                            progress.note(&format!(
                                "{} already in {}",
                                l.desc.digest(),
                                self.r.repo
                            ));
                            continue;
                        }
                        if let Some(from) = same_registry_repo.as_deref().filter(|f| *f != repo) {
                            if self.client.mount(&repo, from, &l.desc)? {
                                progress.note(&format!("{} mounted from {from}", l.desc.digest()));
                                continue;
                            }
                        }
                        let label =
                            format!("pushing {}", super::oci::short(l.desc.digest().as_ref()));
                        let place = src.describe();
                        let r = progress.wrap(label, l.desc.size(), src.blob(&l.desc)?);
                        let verified =
                            VerifyingReader::new(r, l.desc.digest().clone(), l.desc.size(), place);
                        self.client.upload(&repo, &l.desc, Box::new(verified))?;
                    }
                }
            }
            self.push_bytes(&img.config_desc, &img.config)?;
            if matches!(out, Output::Index { .. }) {
                self.client
                    .put_manifest(&repo, img.manifest.digest.as_ref(), &img.manifest)?;
            }
        }
        let tag = self.r.tag.clone().expect("destinations have a tag");
        self.client.put_manifest(&repo, &tag, out.root())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_recognised() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("localhost:5000"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("10.1.2.3:5000"));
    }

    #[test]
    fn insecure_works_for_any_host() {
        let net = NetOptions {
            insecure: true,
            ..NetOptions::default()
        };
        let c = Client::new("10.1.2.3:5000", &net).unwrap();
        assert_eq!(c.base, "http://10.1.2.3:5000");
    }
}

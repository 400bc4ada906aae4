//! Loopback HTTP(S) servers for tests: a throw-away CA, a counting policy
//! server that honours ETag/304 and bearer tokens, and a generic server for
//! event collectors. Only built with the `test-server` feature.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
/// The server-side TLS configuration type, for callers of [`Server::start`].
pub use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A CA made for one test and a server certificate for `localhost`/`127.0.0.1`.
pub struct TestCa {
    pub ca_pem: String,
    pub server_config: Arc<rustls::ServerConfig>,
}

impl TestCa {
    pub fn new() -> TestCa {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "ldguard test CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA cert");

        let leaf_key = KeyPair::generate().expect("leaf key");
        let leaf_params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .expect("leaf params");
        let leaf = leaf_params
            .signed_by(&leaf_key, &ca_cert, &ca_key)
            .expect("leaf cert");

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain = vec![CertificateDer::from(leaf.der().to_vec())];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let server_config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server cert");
        TestCa {
            ca_pem: ca_cert.pem(),
            server_config: Arc::new(server_config),
        }
    }

    pub fn write_ca(&self, path: &Path) {
        std::fs::write(path, &self.ca_pem).expect("write CA file");
    }
}

impl Default for TestCa {
    fn default() -> Self {
        TestCa::new()
    }
}

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

pub type Handler = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

/// One listener on 127.0.0.1, one thread per connection, one request per
/// connection (`Connection: close`), stopped on drop.
pub struct Server {
    addr: SocketAddr,
    tls: bool,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start(tls: Option<Arc<rustls::ServerConfig>>, handler: Handler) -> Server {
        Server::start_on(0, tls, handler)
    }

    /// `port` 0 picks a free one; a fixed port restarts a stopped server in place.
    pub fn start_on(port: u16, tls: Option<Arc<rustls::ServerConfig>>, handler: Handler) -> Server {
        let listener = bind_retrying(port);
        let addr = listener.local_addr().expect("local addr");
        let stop = Arc::new(AtomicBool::new(false));
        let is_tls = tls.is_some();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let handler = handler.clone();
                let tls = tls.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, tls, &handler);
                });
            }
        });
        Server {
            addr,
            tls: is_tls,
            stop,
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}{path}", self.addr.port())
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn bind_retrying(port: u16) -> TcpListener {
    let mut last = None;
    for _ in 0..50 {
        match TcpListener::bind(("127.0.0.1", port)) {
            Ok(l) => return l,
            Err(e) => last = Some(e),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("cannot bind 127.0.0.1:{port}: {last:?}");
}

fn serve(
    stream: TcpStream,
    tls: Option<Arc<rustls::ServerConfig>>,
    handler: &Handler,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    match tls {
        Some(config) => {
            let conn = rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
            let mut tls = rustls::StreamOwned::new(conn, stream);
            exchange(&mut tls, handler)?;
            tls.conn.send_close_notify();
            tls.flush()
        }
        None => {
            let mut plain = stream;
            exchange(&mut plain, handler)
        }
    }
}

fn exchange<S: Read + Write>(stream: &mut S, handler: &Handler) -> std::io::Result<()> {
    let request = {
        let mut reader = BufReader::new(&mut *stream);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let path = parts.next().unwrap_or_default().to_string();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        let len = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        Request {
            method,
            path,
            headers,
            body,
        }
    };
    let response = handler(&request);
    let mut head = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", response.status);
    for (k, v) in &response.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if response.status != 304 {
        head.push_str(&format!("Content-Length: {}\r\n", response.body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    if response.status != 304 {
        stream.write_all(&response.body)?;
    }
    stream.flush()
}

/// What the policy server has seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub requests: u64,
    /// 200 answers, i.e. bodies the clients had to parse.
    pub full: u64,
    pub not_modified: u64,
    pub unauthorized: u64,
}

struct PolicyState {
    body: Vec<u8>,
    token: Option<String>,
    counts: Counts,
}

/// A policy server: serves one body with a content ETag, answers 304 to a
/// matching `If-None-Match`, 401 without the right bearer token.
pub struct PolicyServer {
    state: Arc<Mutex<PolicyState>>,
    tls: Arc<rustls::ServerConfig>,
    server: Option<Server>,
    port: u16,
}

impl PolicyServer {
    pub fn start(ca: &TestCa, body: &str, token: Option<&str>) -> PolicyServer {
        let state = Arc::new(Mutex::new(PolicyState {
            body: body.as_bytes().to_vec(),
            token: token.map(str::to_string),
            counts: Counts::default(),
        }));
        let mut server = PolicyServer {
            state,
            tls: ca.server_config.clone(),
            server: None,
            port: 0,
        };
        server.restart();
        server
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}/v1/policies/test", self.port)
    }

    pub fn set_body(&self, body: &[u8]) {
        self.state.lock().unwrap().body = body.to_vec();
    }

    pub fn set_token(&self, token: Option<&str>) {
        self.state.lock().unwrap().token = token.map(str::to_string);
    }

    pub fn counts(&self) -> Counts {
        self.state.lock().unwrap().counts
    }

    /// Closes the listener: clients get "connection refused".
    pub fn stop(&mut self) {
        if let Some(mut s) = self.server.take() {
            s.stop();
        }
    }

    /// Listens again, on the same port after the first start.
    pub fn restart(&mut self) {
        self.stop();
        let state = self.state.clone();
        let handler: Handler = Arc::new(move |req: &Request| policy_answer(&state, req));
        let server = Server::start_on(self.port, Some(self.tls.clone()), handler);
        self.port = server.port();
        self.server = Some(server);
    }
}

fn etag_of(body: &[u8]) -> String {
    format!("\"{}\"", &crate::cache::sha256_hex(body)[..16])
}

fn policy_answer(state: &Mutex<PolicyState>, req: &Request) -> Response {
    let mut state = state.lock().unwrap();
    state.counts.requests += 1;
    if let Some(token) = &state.token {
        if req.header("Authorization") != Some(&format!("Bearer {token}")) {
            state.counts.unauthorized += 1;
            return Response::new(401, "unauthorized");
        }
    }
    let etag = etag_of(&state.body);
    let matches = req
        .header("If-None-Match")
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if matches {
        state.counts.not_modified += 1;
        return Response::new(304, "").with_header("ETag", &etag);
    }
    state.counts.full += 1;
    Response::new(200, state.body.clone())
        .with_header("ETag", &etag)
        .with_header("Content-Type", "application/json")
}

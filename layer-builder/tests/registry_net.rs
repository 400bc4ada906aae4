//! Registries the way users reach them: a private CA (Debian's
//! docker-registry serving TLS on loopback with a certificate made here with
//! openssl) trusted through --cert-dir, /etc/containers/certs.d/HOST/ or
//! SSL_CERT_FILE; an HTTP CONNECT proxy (a small one in this file, which
//! records what it tunnelled); a docker credential helper on PATH; retries.

mod common;
use common::containers::{free_port, Registry};
use common::*;
use serde_json::json;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is needed (scripts/setup installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a server certificate for 127.0.0.1 signed by it.
struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn make_pki(dir: &Path) -> Pki {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    openssl(
        dir,
        &[
            &["req", "-x509", "-nodes", "-days", "2"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-subj",
                "/CN=ldguard test CA",
            ],
        ]
        .concat(),
    );
    openssl(
        dir,
        &[
            &["req", "-nodes"][..],
            &ec,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            "server.crt",
            "-extfile",
            "ext.cnf",
        ],
    );
    Pki {
        ca: dir.join("ca.crt"),
        cert: dir.join("server.crt"),
        key: dir.join("server.key"),
    }
}

/// A synthetic glibc image in an OCI layout, and a fake library for it.
struct Work {
    tmp: tempfile::TempDir,
    lib_dir: PathBuf,
    src: String,
}

fn work() -> Work {
    let tmp = tempfile::tempdir().unwrap();
    let lib_dir = tmp.path().join("dist");
    fake_lib(&lib_dir.join("x86_64-linux-gnu/libldguard.so"), "gcc", &[]);
    let layout = Layout::new(&tmp.path().join("oci"));
    let base = glibc_root(tmp.path(), "gcc", "x86_64-linux-gnu", &["2.2.5", "2.36"]);
    let m = layout.image("amd64", &[base], json!({}));
    layout.tag("v1", m);
    let src = format!("oci:{}:v1", layout.dir.display());
    Work { tmp, lib_dir, src }
}

impl Work {
    /// ldguard-layer ARGS with a clean environment for registry settings.
    fn layer(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = Command::new(bin());
        c.args(args)
            .args(["--lib-dir", self.lib_dir.to_str().unwrap(), "--quiet"])
            .env("HOME", self.tmp.path())
            .env("REGISTRY_AUTH_FILE", self.tmp.path().join("no-auth.json"));
        for v in [
            "HTTPS_PROXY",
            "https_proxy",
            "HTTP_PROXY",
            "http_proxy",
            "ALL_PROXY",
            "all_proxy",
            "NO_PROXY",
            "no_proxy",
            "SSL_CERT_FILE",
            "SSL_CERT_DIR",
            "LDGUARD_LAYER_CREDS",
            "DOCKER_CONFIG",
            "XDG_RUNTIME_DIR",
        ] {
            c.env_remove(v);
        }
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Removes a certs.d directory made for one test registry.
struct CertsD(PathBuf);

impl Drop for CertsD {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn private_ca_registry_with_cert_dir_certs_d_and_ssl_cert_file() {
    let w = work();
    let pki_dir = w.tmp.path().join("pki");
    std::fs::create_dir(&pki_dir).unwrap();
    let pki = make_pki(&pki_dir);
    let reg_dir = w.tmp.path().join("registry");
    std::fs::create_dir(&reg_dir).unwrap();
    let reg = Registry::start_with(&reg_dir, "alice", "s3cret", Some((&pki.cert, &pki.key)));
    let auth = reg.auth_file.to_str().unwrap().to_string();
    let auth_env = [("REGISTRY_AUTH_FILE", auth.as_str())];
    let dst = |tag: &str| format!("docker://{}/shop/web:{tag}", reg.host);

    // Untrusted: refused, with the ways to trust it.
    let out = w.layer(&[&w.src, &dst("1")], &auth_env);
    assert_ne!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(err.contains("not trusted"), "{err}");
    assert!(
        err.contains(&format!("/etc/containers/certs.d/{}/", reg.host)),
        "{err}"
    );

    // --cert-dir: a directory of *.crt files, as skopeo's.
    let cert_dir = w.tmp.path().join("certs");
    std::fs::create_dir(&cert_dir).unwrap();
    std::fs::copy(&pki.ca, cert_dir.join("ca.crt")).unwrap();
    let out = w.layer(
        &[&w.src, &dst("1"), "--cert-dir", cert_dir.to_str().unwrap()],
        &auth_env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(reg.log_text().contains("PUT /v2/shop/web/manifests/1"));

    // /etc/containers/certs.d/HOST:PORT/: registry to registry, default -layered.
    let certs_d = CertsD(Path::new("/etc/containers/certs.d").join(&reg.host));
    std::fs::create_dir_all(&certs_d.0).unwrap();
    std::fs::copy(&pki.ca, certs_d.0.join("ca.crt")).unwrap();
    let out = w.layer(&[&dst("1")], &auth_env);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(reg
        .log_text()
        .contains("PUT /v2/shop/web/manifests/1-layered"));
    drop(certs_d);

    // SSL_CERT_FILE, as curl and the system store read it.
    let ca = pki.ca.to_str().unwrap();
    let out = w.layer(&[&w.src, &dst("2")], &[auth_env[0], ("SSL_CERT_FILE", ca)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(reg.log_text().contains("PUT /v2/shop/web/manifests/2"));
}

/// An HTTP CONNECT proxy on loopback that records the targets it tunnelled.
struct Proxy {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let record = record.clone();
                std::thread::spawn(move || tunnel(client, &record));
            }
        });
        Proxy { port, seen }
    }
}

fn tunnel(client: TcpStream, seen: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
            break;
        }
    }
    let mut parts = request.split_whitespace();
    let (Some("CONNECT"), Some(target)) = (parts.next(), parts.next()) else {
        let _ = (&client).write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n");
        return;
    };
    seen.lock().unwrap().push(target.to_string());
    let Ok(upstream) = TcpStream::connect(target) else {
        let _ = (&client).write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
        return;
    };
    (&client)
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .unwrap();
    // The client sends nothing before our 200, so the buffer is empty.
    let (mut c_in, mut u_out) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c_in, &mut u_out);
        let _ = u_out.shutdown(std::net::Shutdown::Write);
    });
    let (mut u_in, mut c_out) = (upstream, client);
    let _ = std::io::copy(&mut u_in, &mut c_out);
    let _ = c_out.shutdown(std::net::Shutdown::Write);
    let _ = up.join();
}

#[test]
fn push_through_a_connect_proxy_and_credentials_from_a_helper() {
    let w = work();
    let pki_dir = w.tmp.path().join("pki");
    std::fs::create_dir(&pki_dir).unwrap();
    let pki = make_pki(&pki_dir);
    let reg_dir = w.tmp.path().join("registry");
    std::fs::create_dir(&reg_dir).unwrap();
    let reg = Registry::start_with(&reg_dir, "bob", "hunter2", Some((&pki.cert, &pki.key)));
    let cert_dir = w.tmp.path().join("certs");
    std::fs::create_dir(&cert_dir).unwrap();
    std::fs::copy(&pki.ca, cert_dir.join("ca.crt")).unwrap();

    // A credential helper on PATH, named by credHelpers in docker's config.
    let helpers = w.tmp.path().join("helpers");
    std::fs::create_dir(&helpers).unwrap();
    let asked = w.tmp.path().join("helper-asked");
    let helper = helpers.join("docker-credential-ldgtest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread -r host\necho \"$host\" >> {}\n\
             printf '{{\"ServerURL\":\"%s\",\"Username\":\"bob\",\"Secret\":\"hunter2\"}}' \"$host\"\n",
            asked.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let docker_config = w.tmp.path().join("docker");
    std::fs::create_dir(&docker_config).unwrap();
    std::fs::write(
        docker_config.join("config.json"),
        serde_json::to_vec(&json!({"auths": {}, "credHelpers": {&reg.host: "ldgtest"}})).unwrap(),
    )
    .unwrap();

    let proxy = Proxy::start();
    let proxy_url = format!("http://127.0.0.1:{}", proxy.port);
    let path = format!(
        "{}:{}",
        helpers.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let dst = format!("docker://{}/shop/proxied:1", reg.host);
    let args = [
        w.src.as_str(),
        dst.as_str(),
        "--cert-dir",
        cert_dir.to_str().unwrap(),
    ];
    let env = [
        ("PATH", path.as_str()),
        ("DOCKER_CONFIG", docker_config.to_str().unwrap()),
        ("HTTPS_PROXY", proxy_url.as_str()),
    ];
    let out = w.layer(&args, &env);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let tunnelled = proxy.seen.lock().unwrap().clone();
    assert!(
        !tunnelled.is_empty() && tunnelled.iter().all(|t| *t == reg.host),
        "the proxy saw {tunnelled:?}"
    );
    // Through a proxy the request line carries the absolute URL.
    let log = reg.log_text();
    assert!(
        log.contains("/v2/shop/proxied/manifests/1 HTTP/1.1\" 201"),
        "{log}"
    );
    assert!(
        log.contains("auth.user.name=bob"),
        "pushed as the helper's user: {log}"
    );
    let asked_for = std::fs::read_to_string(&asked).unwrap();
    assert_eq!(asked_for.trim(), reg.host);

    // NO_PROXY names the registry: straight there, the proxy sees nothing new.
    let before = tunnelled.len();
    let out = w.layer(&args, &[env[0], env[1], env[2], ("NO_PROXY", "127.0.0.1")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(proxy.seen.lock().unwrap().len(), before);

    // --creds-file wins over the helper; wrong credentials are refused.
    let creds = w.tmp.path().join("creds");
    std::fs::write(&creds, "bob:wrong\n").unwrap();
    let out = w.layer(
        &[&args[..], &["--creds-file", creds.to_str().unwrap()]].concat(),
        &env[..2],
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("401"), "{}", stderr(&out));
}

#[test]
fn connection_failures_are_retried_with_backoff() {
    let w = work();
    let port = free_port();
    let dst = format!("docker://127.0.0.1:{port}/shop/web:1");
    let started = std::time::Instant::now();
    let out = w.layer(&[&w.src, &dst, "--retry-times", "2"], &[]);
    assert_ne!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(err.contains("retrying in 0.5 s (1/2)"), "{err}");
    assert!(err.contains("retrying in 1.0 s (2/2)"), "{err}");
    assert!(err.contains("is the registry running?"), "{err}");
    assert!(started.elapsed() >= std::time::Duration::from_millis(1500));
}

#[test]
fn insecure_talks_plain_http_to_any_host_with_a_warning() {
    let w = work();
    // This machine's own non-loopback address (the route to TEST-NET-1), on
    // a closed port: refused at once, after the warning.
    let udp = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    udp.connect("192.0.2.1:9").unwrap();
    let ip = udp.local_addr().unwrap().ip();
    assert!(!ip.is_loopback());
    let host = format!("{ip}:{}", free_port());
    let out = w.layer(
        &[
            &w.src,
            &format!("docker://{host}/shop/web:1"),
            "--insecure",
            "--retry-times",
            "0",
        ],
        &[],
    );
    let err = stderr(&out);
    assert!(
        err.contains(&format!("warning: --insecure: plain HTTP to {host}")),
        "{err}"
    );
    assert!(err.contains(&format!("http://{host}/v2/")), "{err}");
}

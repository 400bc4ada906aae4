//! Podman, skopeo, umoci and Debian's docker-registry, for the end-to-end
//! tests. Everything runs root-ful with the repository's containers.conf.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn containers_conf() -> PathBuf {
    repo().join("test-images/containers.conf")
}

pub fn cmd(program: &str) -> Command {
    let mut c = Command::new(program);
    c.env("CONTAINERS_CONF", containers_conf());
    c
}

pub fn ok(mut c: Command) -> Output {
    let out = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
    assert!(
        out.status.success(),
        "{c:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Builds (or reuses) the Debian base images; returns the podman name.
pub fn base_image(suite: &str) -> String {
    let mut c = Command::new(repo().join("test-images/build.sh"));
    c.arg(suite).env("CONTAINERS_CONF", containers_conf());
    ok(c);
    format!("localhost/ldguard-test/{suite}:latest")
}

/// The real library, built by scripts/build-lib (debug profile: the
/// release build takes much longer and behaves the same for these tests),
/// or a directory of prebuilt ones named by LDGUARD_E2E_LIB_DIR.
pub fn lib_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(d) = std::env::var_os("LDGUARD_E2E_LIB_DIR") {
            return PathBuf::from(d);
        }
        let script = repo().join("scripts/build-lib");
        assert!(
            script.exists(),
            "scripts/build-lib is needed to build the library these tests put into images"
        );
        // Test processes run in parallel: one build at a time.
        let mut c = Command::new("flock");
        c.arg("/var/tmp/ldguard-build-lib.lock")
            .arg(&script)
            .arg("--debug")
            .current_dir(repo());
        ok(c);
        repo().join("target/dist")
    })
    .clone()
}

/// Copies an image between transports with skopeo.
pub fn skopeo_copy(from: &str, to: &str, extra: &[&str]) {
    let mut c = cmd("skopeo");
    c.args(["copy", "-q"]).args(extra).args([from, to]);
    ok(c);
}

/// Runs a command in a container (no network but loopback), returning
/// (exit code, stdout, stderr).
pub fn podman_run(image: &str, args: &[&str]) -> (i32, String, String) {
    let mut c = cmd("podman");
    c.args([
        "run",
        "--rm",
        "--runtime",
        "runc",
        "--network",
        "none",
        image,
    ])
    .args(args);
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Removes the podman images a test created, whatever happens.
pub struct Images(pub Vec<String>);

impl Drop for Images {
    fn drop(&mut self) {
        for i in &self.0 {
            let _ = cmd("podman")
                .args(["rmi", "-f", i])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Debian's docker-registry on loopback with htpasswd auth.
pub struct Registry {
    pub host: String,
    pub log: PathBuf,
    pub auth_file: PathBuf,
    child: Child,
}

impl Registry {
    pub fn start(dir: &Path, user: &str, password: &str) -> Registry {
        Registry::start_with(dir, user, password, None)
    }

    /// Serves HTTPS with `tls` = (certificate, key) PEM files.
    pub fn start_with(
        dir: &Path,
        user: &str,
        password: &str,
        tls: Option<(&Path, &Path)>,
    ) -> Registry {
        let htpasswd = dir.join("htpasswd");
        let out = ok({
            let mut c = Command::new("htpasswd");
            c.args(["-Bbn", user, password]);
            c
        });
        std::fs::write(&htpasswd, &out.stdout).unwrap();
        let port = free_port();
        let host = format!("127.0.0.1:{port}");
        let config = serde_json::json!({
            "version": 0.1,
            "log": {"level": "info", "accesslog": {"disabled": false}},
            "storage": {"filesystem": {"rootdirectory": dir.join("storage")}, "delete": {"enabled": true}},
            "http": match tls {
                None => serde_json::json!({"addr": host, "secret": "ldguard-test"}),
                Some((cert, key)) => serde_json::json!({"addr": host, "secret": "ldguard-test",
                    "tls": {"certificate": cert, "key": key}}),
            },
            "auth": {"htpasswd": {"realm": "ldguard-test", "path": htpasswd}},
        });
        // YAML is a superset of JSON.
        let cfg = dir.join("config.yml");
        std::fs::write(&cfg, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        let log = dir.join("registry.log");
        let logf = std::fs::File::create(&log).unwrap();
        let child = Command::new("docker-registry")
            .args(["serve", cfg.to_str().unwrap()])
            .stdout(logf.try_clone().unwrap())
            .stderr(logf)
            .spawn()
            .expect("docker-registry is needed (scripts/setup installs it)");
        let auth_file = dir.join("auth.json");
        let b64 = {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        };
        std::fs::write(
            &auth_file,
            serde_json::to_vec(&serde_json::json!({"auths": {&host: {"auth": b64}}})).unwrap(),
        )
        .unwrap();
        let reg = Registry {
            host,
            log,
            auth_file,
            child,
        };
        let start = Instant::now();
        loop {
            let ready = if tls.is_some() {
                std::net::TcpStream::connect(&reg.host).is_ok()
            } else {
                let r = ureq::get(&format!("http://{}/v2/", reg.host)).call();
                matches!(r, Err(ureq::Error::Status(401, _)))
            };
            if ready {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "registry did not start: {}",
                std::fs::read_to_string(&reg.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        reg
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! The deployment: the Kubernetes manifests of deploy/kubernetes validate
//! offline against the Kubernetes schemas, are yamllint-clean and keep the
//! hardening rules (deploy/validate); the image of deploy/Containerfile,
//! built with podman from a debootstrap'd base, runs ldguard-server as a
//! non-root user on a read-only root filesystem and passes /readyz.
//!
//! Needs deploy/validate --setup (scripts/setup runs it); the image test
//! needs root, podman + runc and debootstrap.

mod common;
use common::containers::*;
use std::process::Command;
use std::time::{Duration, Instant};

fn validate(dir: Option<&std::path::Path>) -> std::process::Output {
    let mut c = Command::new(repo().join("deploy/validate"));
    if let Some(d) = dir {
        c.env("LDGUARD_DEPLOY_DIR", d);
    }
    c.output().unwrap()
}

#[test]
fn manifests_validate_offline_and_keep_the_hardening() {
    let out = validate(None);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("2 deployments hardened") && text.contains("yamllint-clean"),
        "{text}"
    );

    // The checks do fail: a schema error, a lint error, a lost hardening field.
    let src = repo().join("deploy/kubernetes/server.yaml");
    let original = std::fs::read_to_string(&src).unwrap();
    let cases = [
        (
            original.replace("containerPort: 8080", "containerPort: \"eighty\""),
            "containerPort",
        ),
        (
            original.replace("  replicas: 1", "  replicas: 1   "),
            "trailing-spaces",
        ),
        (
            original.replace(
                "readOnlyRootFilesystem: true",
                "readOnlyRootFilesystem: false",
            ),
            "readOnlyRootFilesystem must be true",
        ),
        (
            original.replace("path: /readyz", "path: /healthz"),
            "readinessProbe must GET /readyz",
        ),
    ];
    for (broken, expected) in cases {
        assert_ne!(
            broken, original,
            "{expected}: the test's edit did not apply"
        );
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("server.yaml"), broken).unwrap();
        let out = validate(Some(tmp.path()));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{expected}: accepted\n{text}");
        assert!(text.contains(expected), "{expected}:\n{text}");
    }
}

#[test]
#[ignore = "slow (minutes: podman build of the image): scripts/test --full"]
fn server_image_runs_non_root_on_a_read_only_root_and_passes_readyz() {
    let base = base_image("bookworm");
    let tag = format!(
        "localhost/ldguard-test/ldguard-image:{}",
        std::process::id()
    );
    let _cleanup = Images(vec![tag.clone()]);
    let mut c = Command::new(repo().join("deploy/build-image"));
    c.args(["--tag", &tag, "--base", &base, "--profile", "debug"])
        .env("CONTAINERS_CONF", containers_conf());
    ok(c);
    let port = free_port();
    let name = format!("ldguard-image-test-{}", std::process::id());
    let mut c = cmd("podman");
    c.args([
        "run",
        "-d",
        "--rm",
        "--name",
        &name,
        "--runtime",
        "runc",
        "--read-only",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--network",
        "host",
        &tag,
        "ldguard-server",
        "serve",
        "--listen",
        &format!("127.0.0.1:{port}"),
    ]);
    ok(c);
    struct Stop(String);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = cmd("podman")
                .args(["rm", "-f", "-t", "2", &self.0])
                .output();
        }
    }
    let _stop = Stop(name.clone());

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match ureq::get(&format!("http://127.0.0.1:{port}/readyz")).call() {
            Ok(r) if r.status() == 200 => break,
            _ => {}
        }
        if Instant::now() > deadline {
            let mut c = cmd("podman");
            c.args(["logs", &name]);
            panic!(
                "no /readyz 200 within 60 s:\n{}",
                String::from_utf8_lossy(&c.output().unwrap().stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    // The server process's user, and a root filesystem it cannot write.
    let mut c = cmd("podman");
    c.args([
        "exec",
        &name,
        "sh",
        "-c",
        "id -u; id -g; touch /usr/ldguard-probe 2>&1; echo rc=$?",
    ]);
    let out = stdout(&ok(c));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..2], ["10001", "10001"], "{out}");
    assert!(
        out.contains("Read-only file system") && out.contains("rc=1"),
        "{out}"
    );
    let mut c = cmd("podman");
    c.args(["top", &name, "user", "comm"]);
    let top = stdout(&ok(c));
    assert!(
        top.lines()
            .any(|l| l.contains("ldguard-server") && !l.trim_start().starts_with("root")),
        "ldguard-server runs as root?\n{top}"
    );
    // Its database lives on the volume, the only writable place.
    let mut c = cmd("podman");
    c.args(["exec", &name, "ls", "/var/lib/ldguard"]);
    assert!(stdout(&ok(c)).contains("ldguard.db"));
}

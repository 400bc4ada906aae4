//! End to end with real images, podman and a registry. The default run
//! covers bookworm through an OCI layout and through a registry; the other
//! suites, docker archives, policy enforcement and the Dockerfile `install`
//! pattern are `#[ignore]`d and run by `scripts/test --full`
//! (`cargo nextest run -p ldguard-layer --run-ignored all`).
//!
//! Needs root, podman + runc, skopeo, umoci, debootstrap, docker-registry,
//! apache2-utils (scripts/setup); base images come from test-images/build.sh
//! (cached after the first build), the library from scripts/build-lib.

mod common;
use common::containers::*;
use common::{bin, run};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

fn unique(name: &str) -> String {
    format!("localhost/ldguard-e2e/{name}-{}", std::process::id())
}

/// The same programs in the base and the instrumented image print the same.
fn assert_same_behaviour(base: &str, layered: &str, has_python_nginx: bool) {
    let mut probes: Vec<Vec<&str>> = vec![vec![
        "sh",
        "-c",
        "echo hello; id -u; ls / | head -5; cat /etc/debian_version",
    ]];
    if has_python_nginx {
        probes.push(vec![
            "python3",
            "-c",
            "import os, sys, json; print(sys.version_info[:2], os.getcwd(), json.dumps({'a': 1}))",
        ]);
        probes.push(vec!["sh", "-c", "nginx && for i in 1 2 3 4 5 6 7 8 9 10; do curl -sf http://127.0.0.1/ && break; sleep 0.3; done | head -5; nginx -s quit"]);
    }
    // nginx logs times and pids on stderr: digits are masked.
    let mask = |r: (i32, String, String)| {
        (
            r.0,
            r.1,
            r.2.chars()
                .map(|c| if c.is_ascii_digit() { '#' } else { c })
                .collect::<String>(),
        )
    };
    for p in probes {
        let b = mask(podman_run(base, &p));
        let l = mask(podman_run(layered, &p));
        assert_eq!(b.0, 0, "base {p:?}: {}", b.2);
        assert_eq!(l, b, "{p:?}: instrumented differs from base");
        assert!(!b.1.trim().is_empty(), "{p:?} printed nothing");
    }
    let (code, out, _) = podman_run(
        layered,
        &["cat", "/etc/ld.so.preload", "/etc/ldguard/config.json"],
    );
    assert_eq!(code, 0);
    assert!(out.starts_with("/usr/lib/ldguard/libldguard.so\n"), "{out}");
}

/// Instruments `suite` from `transport` ("oci" or "docker-archive"),
/// loads the result into podman and compares it with the base.
fn instrument_suite(suite: &str, transport: &str) {
    let base = base_image(suite);
    let lib = lib_dir();
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst, load) = match transport {
        "oci" => {
            let dir = tmp.path().join("layout");
            skopeo_copy(
                &format!("containers-storage:{base}"),
                &format!("oci:{}:{suite}", dir.display()),
                &[],
            );
            let out = format!("oci:{}:{suite}-layered", dir.display());
            (format!("oci:{}:{suite}", dir.display()), None, out)
        }
        _ => {
            let file = tmp.path().join(format!("{suite}.tar"));
            skopeo_copy(
                &format!("containers-storage:{base}"),
                &format!("docker-archive:{}:ldguard/{suite}:base", file.display()),
                &[],
            );
            let out = tmp.path().join(format!("{suite}-layered.tar"));
            (
                format!("docker-archive:{}", file.display()),
                None::<String>,
                format!("docker-archive:{}", out.display()),
            )
        }
    };
    let mut args = vec![
        src.clone(),
        "--lib-dir".into(),
        lib.display().to_string(),
        "--format".into(),
        "json".into(),
    ];
    args.extend(dst);
    let r = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(r.code, 0, "{}", r.stderr);
    let summary: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        summary["destination"].as_str().unwrap().split(':').next(),
        Some(transport)
    );
    // A second run (and, for layouts, re-instrumenting the result) gives
    // the same ldguard layer.
    let again_dst = match transport {
        "oci" => load.replace("-layered", "-again"),
        _ => format!("{}:ldguard/again:1", load.replace("-layered", "-again")),
    };
    let mut again_args = vec![load.as_str(), again_dst.as_str()];
    if transport == "oci" {
        again_args[0] = src.as_str();
    }
    again_args.extend(["--lib-dir", lib.to_str().unwrap(), "--format", "json"]);
    let r2 = run(&again_args);
    assert_eq!(r2.code, 0, "{}", r2.stderr);
    let summary2: Value = serde_json::from_str(&r2.stdout).unwrap();
    let layer = |s: &Value| s["platforms"][0]["layer"]["digest"].clone();
    assert_eq!(
        layer(&summary2),
        layer(&summary),
        "same inputs, same layer digest"
    );

    // skopeo and (for layouts) umoci accept what was written.
    let mut c = cmd("skopeo");
    c.args(["inspect", &load]);
    let inspect: Value = serde_json::from_str(&stdout(&ok(c))).unwrap();
    assert_eq!(inspect["Labels"]["io.ldguard.instrumented"], "true");
    if transport == "oci" {
        let bundle = tmp.path().join("bundle");
        let mut c = Command::new("umoci");
        c.args([
            "unpack",
            "--image",
            load.trim_start_matches("oci:"),
            bundle.to_str().unwrap(),
        ]);
        ok(c);
        assert!(bundle.join("rootfs/usr/lib/ldguard/libldguard.so").exists());
        assert!(
            bundle.join("rootfs/usr/bin/env").exists() || bundle.join("rootfs/bin/sh").exists()
        );
    }

    let name = unique(&format!("{suite}-{transport}"));
    let _cleanup = Images(vec![format!("{name}:layered")]);
    skopeo_copy(&load, &format!("containers-storage:{name}:layered"), &[]);
    assert_same_behaviour(&base, &format!("{name}:layered"), suite == "bookworm");
}

#[test]
fn bookworm_from_oci_layout_runs_like_the_base() {
    instrument_suite("bookworm", "oci");
}

#[test]
#[ignore = "slow: scripts/test --full"]
fn bookworm_from_docker_archive_runs_like_the_base() {
    instrument_suite("bookworm", "docker-archive");
}

#[test]
#[ignore = "slow: scripts/test --full"]
fn bullseye_from_oci_layout() {
    instrument_suite("bullseye", "oci");
}

#[test]
#[ignore = "slow: scripts/test --full"]
fn bullseye_from_docker_archive() {
    instrument_suite("bullseye", "docker-archive");
}

#[test]
#[ignore = "slow: scripts/test --full"]
fn trixie_from_oci_layout() {
    instrument_suite("trixie", "oci");
}

#[test]
#[ignore = "slow: scripts/test --full"]
fn trixie_from_docker_archive() {
    instrument_suite("trixie", "docker-archive");
}

#[test]
fn registry_in_and_out_without_reuploading_base_layers() {
    let base = base_image("bookworm");
    let lib = lib_dir();
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(tmp.path(), "ldguard", "s3cret-pass");
    let auth = reg.auth_file.to_str().unwrap().to_string();
    let src = format!("docker://{}/shop/web:1.4", reg.host);
    skopeo_copy(
        &format!("containers-storage:{base}"),
        &src,
        &["--dest-tls-verify=false", "--authfile", &auth],
    );
    let mut c = cmd("skopeo");
    c.args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--authfile",
        &auth,
        &src,
    ]);
    let base_manifest: Value = serde_json::from_slice(&ok(c).stdout).unwrap();
    let base_layers: Vec<String> = base_manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect();
    let log_mark = reg.log_text().len();

    // Without credentials the registry's refusal is explained.
    let r = Command::new(bin())
        .args([&src, "--insecure", "--lib-dir", lib.to_str().unwrap()])
        .env("REGISTRY_AUTH_FILE", tmp.path().join("none.json"))
        .env("HOME", tmp.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success() && err.contains("podman login"), "{err}");

    // Same repository, then another repository (cross-repository mount).
    for dst in [
        None,
        Some(format!("docker://{}/shop/other:instrumented", reg.host)),
    ] {
        let mut c = Command::new(bin());
        c.args([
            &src,
            "--insecure",
            "--lib-dir",
            lib.to_str().unwrap(),
            "--format",
            "json",
        ])
        .args(dst.iter())
        .env("REGISTRY_AUTH_FILE", &auth);
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let s: Value = serde_json::from_slice(&out.stdout).unwrap();
        // skopeo writes OCI manifests without the optional mediaType field.
        let base_type = base_manifest["mediaType"]
            .as_str()
            .unwrap_or("application/vnd.oci.image.manifest.v1+json");
        assert_eq!(s["mediaType"], base_type, "the media-type family is kept");
    }
    let log = &reg.log_text()[log_mark..];
    // The access log has one line per request; upload digests are URL-encoded.
    let uploads: Vec<&str> = log
        .lines()
        .filter(|l| {
            l.starts_with("127.0.0.1 - -")
                && l.contains("blobs/uploads/")
                && (l.contains("\"PUT ") || l.contains("\"PATCH "))
        })
        .collect();
    assert!(
        !uploads.is_empty(),
        "the new layer and config are uploaded:\n{log}"
    );
    for d in &base_layers {
        let hex = &d[7..];
        for u in &uploads {
            assert!(!u.contains(hex), "base layer {d} was uploaded again: {u}");
        }
    }
    // New layer and config, in each of the two repositories.
    assert_eq!(uploads.len(), 4, "{uploads:#?}");
    assert!(
        log.contains("mount="),
        "cross-repository mount was tried:\n{log}"
    );

    for tag in ["shop/web:1.4-layered", "shop/other:instrumented"] {
        let img = format!("docker://{}/{tag}", reg.host);
        let mut c = cmd("skopeo");
        c.args(["inspect", "--tls-verify=false", "--authfile", &auth, &img]);
        let inspect: Value = serde_json::from_str(&stdout(&ok(c))).unwrap();
        assert_eq!(inspect["Labels"]["io.ldguard.instrumented"], "true");
        assert_eq!(
            inspect["Layers"].as_array().unwrap().len(),
            base_layers.len() + 1
        );
    }

    // A Docker schema 2 base stays Docker schema 2.
    let docker_src = format!("docker://{}/shop/web:v2s2", reg.host);
    skopeo_copy(
        &format!("containers-storage:{base}"),
        &docker_src,
        &[
            "--dest-tls-verify=false",
            "--authfile",
            &auth,
            "--format",
            "v2s2",
        ],
    );
    let out = Command::new(bin())
        .args([
            &docker_src,
            "--insecure",
            "--lib-dir",
            lib.to_str().unwrap(),
            "--format",
            "json",
        ])
        .env("REGISTRY_AUTH_FILE", &auth)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        s["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let mut c = cmd("skopeo");
    c.args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--authfile",
        &auth,
        &format!("{docker_src}-layered"),
    ]);
    let raw: Value = serde_json::from_slice(&ok(c).stdout).unwrap();
    assert_eq!(
        raw["config"]["mediaType"],
        "application/vnd.docker.container.image.v1+json"
    );
    assert!(raw["layers"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["mediaType"]
            .as_str()
            .unwrap()
            .starts_with("application/vnd.docker.image.rootfs.diff.tar")));

    // podman pulls and runs the -layered tag.
    let img = format!("{}/shop/web:1.4-layered", reg.host);
    let _cleanup = Images(vec![img.clone()]);
    let mut c = cmd("podman");
    c.args([
        "pull",
        "-q",
        "--tls-verify=false",
        "--authfile",
        &auth,
        &img,
    ]);
    ok(c);
    let (code, out, err) = podman_run(
        &img,
        &[
            "sh",
            "-c",
            "cat /etc/ld.so.preload; python3 -c 'print(6*7)'",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "/usr/lib/ldguard/libldguard.so\n42\n");

    // Pulled back out of the registry into a layout, the image is the same.
    let back = tmp.path().join("back");
    let mut c = Command::new(bin());
    c.args([
        &format!("docker://{img}"),
        &format!("oci:{}:again", back.display()),
        "--insecure",
        "--lib-dir",
        lib.to_str().unwrap(),
    ])
    .env("REGISTRY_AUTH_FILE", &auth);
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let idx: Value =
        serde_json::from_slice(&std::fs::read(back.join("index.json")).unwrap()).unwrap();
    let m: Value = serde_json::from_slice(
        &std::fs::read(
            back.join("blobs/sha256")
                .join(&idx["manifests"][0]["digest"].as_str().unwrap()[7..]),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        m["layers"].as_array().unwrap().len(),
        base_layers.len() + 1,
        "re-instrumenting keeps one ldguard layer"
    );
    // umoci reads OCI layouts: the one written from the registry image.
    let mut c = Command::new("umoci");
    c.args([
        "unpack",
        "--image",
        &format!("{}:again", back.display()),
        tmp.path().join("bundle").to_str().unwrap(),
    ]);
    ok(c);
    assert!(tmp
        .path()
        .join("bundle/rootfs/usr/lib/ldguard/libldguard.so")
        .exists());
}

const SHELL_POLICY: &str = "no-shell-from-python";

fn shell_policy(dir: &Path, mode: &str) -> std::path::PathBuf {
    let p = dir.join(format!("policy-{mode}.json"));
    let doc = json!({
        "apiVersion": "ldguard.policy/v1",
        "name": SHELL_POLICY,
        "mode": mode,
        "log": ["deny", "audit"],
        "rules": [{
            "name": "python-no-shell", "kind": "exec",
            "program": ["/usr/bin/python3*"],
            "path": ["/bin/sh", "/bin/*sh", "/usr/bin/*sh"],
            "action": "deny", "severity": "high"
        }]
    });
    std::fs::write(&p, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    p
}

const SPAWN: &str = "import subprocess\ntry:\n    subprocess.run(['/bin/sh', '-c', 'echo spawned'], check=True)\nexcept PermissionError as e:\n    print('denied', e.errno)\n";

fn events(out: &str) -> Vec<Value> {
    out.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

fn with_policy(mode: &str) -> (String, Images) {
    let base = base_image("bookworm");
    let lib = lib_dir();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("layout");
    skopeo_copy(
        &format!("containers-storage:{base}"),
        &format!("oci:{}:b", dir.display()),
        &[],
    );
    let policy = shell_policy(tmp.path(), mode);
    let r = run(&[
        &format!("oci:{}:b", dir.display()),
        "--lib-dir",
        lib.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let name = format!("{}:{mode}", unique("policy"));
    skopeo_copy(
        &format!("oci:{}:b-layered", dir.display()),
        &format!("containers-storage:{name}"),
        &[],
    );
    (name.clone(), Images(vec![name]))
}

#[test]
#[ignore = "slow: scripts/test --full"]
fn enforce_policy_denies_python_spawning_a_shell() {
    let (img, _cleanup) = with_policy("enforce");
    let (code, out, err) = podman_run(
        &img,
        &[
            "sh",
            "-c",
            &format!("python3 -c \"{SPAWN}\"; echo ---; cat /var/log/ldguard/events.jsonl"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (program_out, log) = out.split_once("---\n").unwrap();
    assert_eq!(program_out.trim(), "denied 13", "stderr: {err}");
    let ev = events(log);
    let deny = ev
        .iter()
        .find(|e| e["kind"] == "exec" && e["action"] == "deny")
        .unwrap_or_else(|| panic!("no deny event in {log}"));
    assert_eq!(deny["enforced"], true);
    assert_eq!(deny["rule"], "python-no-shell");
    assert!(deny["target"].as_str().unwrap().ends_with("sh"));
    // Other programs are untouched.
    let (code, out, _) = podman_run(&img, &["sh", "-c", "sh -c 'echo inner'"]);
    assert_eq!((code, out.as_str()), (0, "inner\n"));
}

#[test]
#[ignore = "slow: scripts/test --full"]
fn permissive_policy_allows_and_reports() {
    let (img, _cleanup) = with_policy("permissive");
    let (code, out, err) = podman_run(
        &img,
        &[
            "sh",
            "-c",
            &format!("python3 -c \"{SPAWN}\"; echo ---; cat /var/log/ldguard/events.jsonl"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (program_out, log) = out.split_once("---\n").unwrap();
    assert_eq!(program_out.trim(), "spawned");
    let ev = events(log);
    let e = ev
        .iter()
        .find(|e| e["kind"] == "exec" && e["action"] == "deny")
        .unwrap_or_else(|| panic!("no event in {log}"));
    assert_eq!(e["enforced"], false);
}

#[test]
#[ignore = "slow: scripts/test --full"]
fn dockerfile_install_pattern_builds_and_enforces() {
    let base = base_image("bookworm");
    let lib = lib_dir();
    let ctx = tempfile::tempdir().unwrap();
    let c = ctx.path();
    std::fs::create_dir_all(c.join("ldguard/bin")).unwrap();
    std::fs::create_dir_all(c.join("ldguard/lib/ldguard/x86_64-linux-gnu")).unwrap();
    std::fs::copy(bin(), c.join("ldguard/bin/ldguard-layer")).unwrap();
    std::fs::copy(
        lib.join("x86_64-linux-gnu/libldguard.so"),
        c.join("ldguard/lib/ldguard/x86_64-linux-gnu/libldguard.so"),
    )
    .unwrap();
    std::fs::copy(shell_policy(c, "enforce"), c.join("policy.json")).unwrap();
    let name = format!("{}:install", unique("dockerfile"));
    let _cleanup = Images(vec![name.clone()]);
    let mut b = cmd("podman");
    // --layers=false: no cached intermediate images are left behind.
    b.args([
        "build",
        "--layers=false",
        "--runtime",
        "runc",
        "--network",
        "none",
        "-f",
        repo()
            .join("test-images/Dockerfile.install")
            .to_str()
            .unwrap(),
        "--build-arg",
        &format!("BASE={base}"),
        "-t",
        &name,
        c.to_str().unwrap(),
    ]);
    ok(b);
    let (code, out, err) = podman_run(
        &name,
        &[
            "sh",
            "-c",
            &format!("python3 -c \"{SPAWN}\"; ls /opt/ldguard 2>&1 | head -1"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("denied 13\n"), "{out}\n{err}");
    assert!(
        out.contains("No such file"),
        "the tool stage was only mounted, not copied: {out}"
    );
}

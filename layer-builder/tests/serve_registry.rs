//! `ldguard-layer serve` end to end: a live ldguard-server queues the job,
//! Debian's docker-registry (htpasswd auth) holds the image, the registry
//! credentials come from Vault's KV v2 engine, podman pulls and runs the
//! `-layered` result, and the library in it enforces the policy it fetches
//! from the server.
//!
//! No Vault server is packaged for Debian: the credentials are served by
//! `common/fake_vault.rs`, an in-repo fake that follows Vault's documented
//! KV v1/v2 HTTP API.
//!
//! Needs root, podman + runc, skopeo, debootstrap, docker-registry,
//! apache2-utils (scripts/setup); the library from scripts/build-lib
//! (or LDGUARD_E2E_LIB_DIR), ldguard-server from this workspace.

mod common;
#[path = "common/fake_vault.rs"]
mod fake_vault;
mod serve_common;

use common::bin;
use common::containers::*;
use fake_vault::FakeVault;
use serde_json::{json, Value};
use serve_common::*;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const USER: &str = "pusher";
const PASSWORD: &str = "vault-held-pass-7f3a";

fn wait_for_job(server: &str, admin: &Path, id: i64, limit: Duration) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let (status, job) = api(
            "GET",
            &format!("{server}/api/v1/instrument/jobs/{id}"),
            admin,
            None,
        );
        assert_eq!(status, 200, "{job}");
        if job["state"] == "succeeded" || job["state"] == "failed" {
            return job;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} still {} after {limit:?}: {job}",
            job["state"]
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// python3 replacing itself with a shell. Not through `subprocess`: its
/// vfork child has no event pipeline of its own and writes its denial to
/// stderr, not to the server.
const SPAWN: &str = "import os\ntry:\n    os.execv('/bin/sh', ['/bin/sh', '-c', 'echo spawned'])\nexcept PermissionError as e:\n    print('denied', e.errno)\n";

#[test]
fn queued_job_is_instrumented_pushed_and_enforces_the_servers_policy() {
    let base = base_image("bookworm");
    let lib = lib_dir();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();

    // The registry, with the base image in it.
    std::fs::create_dir_all(dir.join("registry")).unwrap();
    let reg = Registry::start(&dir.join("registry"), USER, PASSWORD);
    let auth = reg.auth_file.to_str().unwrap().to_string();
    let image = format!("{}/shop/web:1.4", reg.host);
    skopeo_copy(
        &format!("containers-storage:{base}"),
        &format!("docker://{image}"),
        &["--dest-tls-verify=false", "--authfile", &auth],
    );
    let mut c = cmd("skopeo");
    c.args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--authfile",
        &auth,
    ])
    .arg(format!("docker://{image}"));
    let base_manifest: Value = serde_json::from_slice(&ok(c).stdout).unwrap();
    let base_layers: Vec<String> = base_manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect();

    // Vault (KV v2) holds the registry's credentials; the instrumenter's
    // token may read only that mount.
    let vault = FakeVault::start();
    vault.mount("secret", 2);
    vault.put(
        "secret",
        &format!("ci/registries/{}", reg.host),
        json!({"username": USER, "password": PASSWORD}),
    );
    vault.token("instrumenter-vault-token", &["secret/data/ci/"]);
    std::fs::write(dir.join("vault.token"), "instrumenter-vault-token\n").unwrap();

    // ldguard-server, with the policy: the shell rule, permissive as
    // written; the assignment switches it to enforce.
    let database = format!("sqlite:{}/db/ldguard.db", dir.display());
    let admin = create_token(dir, &database, "admin", &[]);
    // The service works with the least token it needs.
    let instrumenter = create_token(dir, &database, "instrumenter", &[]);
    let agent = create_token(dir, &database, "agent", &["*/shop/*"]);
    let mut c = Command::new(server_exe());
    c.args(["serve", "--listen", "127.0.0.1:0"])
        .env("LDGUARD_DATABASE", &database)
        .current_dir(dir);
    let (_server, server) = start_listening(c, &dir.join("server.log"));
    let policy = json!({
        "apiVersion": "ldguard.policy/v1", "name": "web-shell", "mode": "permissive",
        "log": ["deny", "audit"],
        "rules": [{"name": "python-no-shell", "kind": "exec",
                   "program": ["/usr/bin/python3*"],
                   "path": ["/bin/sh", "/bin/*sh", "/usr/bin/*sh"],
                   "action": "deny", "severity": "high"}]
    });
    let (status, body) = api(
        "POST",
        &format!("{server}/api/v1/policies"),
        &admin,
        Some(policy),
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = api(
        "PUT",
        &format!("{server}/api/v1/assignments/shop"),
        &admin,
        Some(json!({"policy": "web-shell", "images": ["*/shop/*"], "mode": "enforce"})),
    );
    assert_eq!(status, 200, "{body}");

    // Queueing checks what it can at once.
    let jobs = format!("{server}/api/v1/instrument/jobs");
    let (status, body) = api(
        "POST",
        &jobs,
        &admin,
        Some(json!({"image": image, "policy": "no-such-policy"})),
    );
    assert_eq!(status, 404, "{body}");
    let (status, body) = api(
        "POST",
        &jobs,
        &admin,
        Some(json!({"image": "shop/web:1.4", "policy": "web-shell"})),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("HOST[:PORT]/REPO:TAG"));
    let (status, body) = api(
        "POST",
        &jobs,
        &agent,
        Some(json!({"image": image, "policy": "web-shell"})),
    );
    assert_eq!(status, 403, "an agent token cannot queue: {body}");

    // Two jobs: the image, and a tag that does not exist.
    let (status, job) = api(
        "POST",
        &jobs,
        &admin,
        Some(json!({"image": image, "policy": "web-shell"})),
    );
    assert_eq!(status, 201, "{job}");
    assert_eq!(job["state"], "queued");
    let id = job["id"].as_i64().unwrap();
    let (status, missing) = api(
        "POST",
        &jobs,
        &admin,
        Some(json!({"image": format!("{}/shop/missing:1", reg.host), "policy": "web-shell"})),
    );
    assert_eq!(status, 201, "{missing}");
    let missing_id = missing["id"].as_i64().unwrap();
    // The same registry by another name, whose Vault secret holds a wrong
    // password; and a host with no secret in Vault at all.
    let port = reg.host.rsplit_once(':').unwrap().1;
    vault.put(
        "secret",
        &format!("ci/registries/localhost:{port}"),
        json!({"username": USER, "password": "not-the-password"}),
    );
    let mut failing = Vec::new();
    for image in [
        format!("localhost:{port}/shop/web:1.4"),
        format!("127.0.0.2:{port}/shop/web:1.4"),
    ] {
        let (status, job) = api(
            "POST",
            &jobs,
            &admin,
            Some(json!({"image": image, "policy": "web-shell"})),
        );
        assert_eq!(status, 201, "{job}");
        failing.push(job["id"].as_i64().unwrap());
    }

    // A worker claims the first job and dies (it never reports again).
    let (status, claimed) = api(
        "POST",
        &format!("{jobs}/claim"),
        &instrumenter,
        Some(json!({"worker": "doomed-worker", "leaseSeconds": 5})),
    );
    assert_eq!(status, 200, "{claimed}");
    assert_eq!(claimed["id"].as_i64(), Some(id));
    let log_mark = reg.log_text().len();

    // The service: credentials only from Vault (no auth file, nothing in argv).
    let mut c = Command::new(bin());
    c.args(["serve", "--server", &server, "--token-file"])
        .arg(&instrumenter)
        .args([
            "--insecure",
            "--poll-seconds",
            "0.5",
            "--lease-seconds",
            "30",
            "--workers",
            "2",
            "--worker-name",
            "test-instrumenter",
            "--listen",
            "127.0.0.1:0",
            "--vault-addr",
            &vault.addr,
            "--vault-path",
            "ci/registries/{registry}",
            "--lib-dir",
        ])
        .arg(&lib)
        .arg("--vault-token-file")
        .arg(dir.join("vault.token"))
        .env_remove("VAULT_TOKEN")
        .env_remove("LDGUARD_LAYER_CREDS")
        .env("REGISTRY_AUTH_FILE", dir.join("no-auth.json"))
        .env("HOME", dir)
        .env("XDG_RUNTIME_DIR", dir)
        .env("DOCKER_CONFIG", dir);
    let serve_log = dir.join("serve.log");
    let (_serve, health) = start_listening(c, &serve_log);
    let probe = |path: &str| {
        ureq::get(&format!("{health}{path}"))
            .call()
            .map(|r| r.status())
            .unwrap_or_else(|e| match e {
                ureq::Error::Status(s, _) => s,
                e => panic!("{path}: {e}"),
            })
    };
    assert_eq!(probe("/healthz"), 200);

    let missing_job = wait_for_job(&server, &admin, missing_id, Duration::from_secs(60));
    assert_eq!(missing_job["state"], "failed", "{missing_job}");
    let error = missing_job["error"].as_str().unwrap();
    assert!(
        error.contains("shop/missing") && error.contains("registry"),
        "the builder's own error: {error}"
    );
    let refused = wait_for_job(&server, &admin, failing[0], Duration::from_secs(60));
    assert_eq!(refused["state"], "failed", "{refused}");
    let error = refused["error"].as_str().unwrap();
    assert!(
        error.contains("401") && error.contains("credentials"),
        "the registry's refusal, as the builder words it: {error}"
    );
    let no_secret = wait_for_job(&server, &admin, failing[1], Duration::from_secs(60));
    assert_eq!(no_secret["state"], "failed", "{no_secret}");
    let error = no_secret["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("no secret at 'ci/registries/127.0.0.2:{port}'")),
        "{error}"
    );
    // The dead worker's job goes to the service once its lease ran out.
    let done = wait_for_job(&server, &admin, id, Duration::from_secs(240));
    let log = std::fs::read_to_string(&serve_log).unwrap();
    assert_eq!(done["state"], "succeeded", "{done}\n{log}");
    assert_eq!(done["attempts"], 2, "{done}");
    assert_eq!(done["worker"], "test-instrumenter");
    assert_eq!(probe("/readyz"), 200);
    assert!(
        log.contains("reading the credentials for") && log.contains("pushing"),
        "{log}"
    );
    assert!(!log.contains(PASSWORD), "a secret reached the log: {log}");
    let destination = done["destination"].as_str().unwrap();
    assert!(destination.contains("shop/web:1.4-layered"), "{done}");

    // The registry received the new layer, the config and one manifest;
    // the base layers were not uploaded again.
    let registry_log = &reg.log_text()[log_mark..];
    let requests: Vec<&str> = registry_log
        .lines()
        .filter(|l| l.starts_with("127.0.0.1 - -"))
        .collect();
    let blob_uploads: Vec<&&str> = requests
        .iter()
        .filter(|l| {
            l.contains("blobs/uploads/") && (l.contains("\"PUT ") || l.contains("\"PATCH "))
        })
        .collect();
    let manifest_puts: Vec<&&str> = requests
        .iter()
        .filter(|l| l.contains("\"PUT ") && l.contains("/manifests/"))
        .collect();
    for d in &base_layers {
        for u in &blob_uploads {
            assert!(!u.contains(&d[7..]), "base layer {d} uploaded again: {u}");
        }
    }
    let finished_uploads = blob_uploads.iter().filter(|l| l.contains("\"PUT ")).count();
    assert_eq!(
        finished_uploads, 2,
        "the layer and the config: {blob_uploads:#?}"
    );
    assert_eq!(manifest_puts.len(), 1, "{manifest_puts:#?}");
    assert!(
        manifest_puts[0].contains("1.4-layered"),
        "{manifest_puts:#?}"
    );

    // podman pulls the result; its digest is the one the job reported.
    let layered = format!("{}/shop/web:1.4-layered", reg.host);
    let _cleanup = Images(vec![layered.clone()]);
    let mut c = cmd("podman");
    c.args(["pull", "-q", "--tls-verify=false", "--authfile", &auth])
        .arg(format!("docker://{layered}"));
    ok(c);
    let mut c = cmd("skopeo");
    c.args(["inspect", "--tls-verify=false", "--authfile", &auth])
        .arg(format!("docker://{layered}"));
    let inspect: Value = serde_json::from_slice(&ok(c).stdout).unwrap();
    assert_eq!(inspect["Digest"], done["digest"], "{inspect}");
    assert_eq!(inspect["Labels"]["io.ldguard.instrumented"], "true");

    // In the container, the library fetches the assigned policy (enforce)
    // from the server; the baked copy alone would only report.
    let script = format!(
        "cat /etc/ldguard/config.json; echo ---; \
         for i in $(seq 1 100); do out=$(python3 -c \"{SPAWN}\"); echo \"$out\"; \
         [ \"$out\" = 'denied 13' ] && break; sleep 0.2; done"
    );
    let mut c = cmd("podman");
    c.args([
        "run",
        "--rm",
        "--runtime",
        "runc",
        "--network",
        "host",
        "-v",
    ])
    .arg(format!(
        "{}:/var/run/secrets/ldguard/token:ro",
        agent.display()
    ))
    .args([&layered, "sh", "-c", &script]);
    let out = ok(c);
    let text = stdout(&out);
    let container_stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let (config, attempts) = text.split_once("---\n").unwrap();
    let config: Value = serde_json::from_str(config).unwrap();
    assert_eq!(config["server"], server.as_str(), "{config}");
    assert_eq!(config["image"]["name"], image.as_str(), "{config}");
    assert_eq!(
        attempts.lines().last(),
        Some("denied 13"),
        "the server's enforce mode never applied:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The denial reached the server, for this image, by the policy's rule.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, found) = api(
            "GET",
            &format!("{server}/api/v1/events?action=deny&limit=50"),
            &admin,
            None,
        );
        let hit = found["events"].as_array().and_then(|events| {
            events
                .iter()
                .find(|e| e["enforced"] == true && e["rule"] == "python-no-shell")
                .cloned()
        });
        if let Some(e) = hit {
            assert_eq!(e["image"], image.as_str(), "{e}");
            assert_eq!(e["mode"], "enforce", "{e}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no enforced denial on the server: {found}\ncontainer stderr:\n{container_stderr}\nserver log:\n{}",
            std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

//! Registry transfers with bearer-token auth, against an in-process mock
//! registry (Debian's docker-registry only does htpasswd; tests/podman.rs
//! covers that against the real thing).

mod common;
use common::mock_registry::MockRegistry;
use common::*;
use serde_json::json;
use std::process::Command;

#[test]
fn pushes_and_pulls_with_bearer_tokens() {
    let tmp = tempfile::tempdir().unwrap();
    let lib_dir = tmp.path().join("dist");
    fake_lib(&lib_dir.join("x86_64-linux-gnu/libldguard.so"), "gcc", &[]);
    let layout = Layout::new(&tmp.path().join("oci"));
    let base = glibc_root(tmp.path(), "gcc", "x86_64-linux-gnu", &["2.2.5", "2.36"]);
    let m = layout.image("amd64", &[base], json!({}));
    let base_layer = m["digest"].clone();
    layout.tag("v1", m);
    let base_layer_digest: String = {
        let man: serde_json::Value =
            serde_json::from_slice(&layout.blob(base_layer.as_str().unwrap())).unwrap();
        man["layers"][0]["digest"].as_str().unwrap().to_string()
    };

    let reg = MockRegistry::start();
    let auth = tmp.path().join("auth.json");
    std::fs::write(&auth, serde_json::to_vec(&reg.auth_json()).unwrap()).unwrap();
    let cli = |args: &[&str], auth_file: &std::path::Path| {
        let out = Command::new(bin())
            .args(args)
            .args(["--insecure", "--lib-dir", lib_dir.to_str().unwrap()])
            .env("REGISTRY_AUTH_FILE", auth_file)
            .env("HOME", tmp.path())
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    // OCI layout → registry.
    let web = format!("docker://{}/shop/web:1", reg.host);
    let (code, err) = cli(&[&format!("oci:{}:v1", layout.dir.display()), &web], &auth);
    assert_eq!(code, 0, "{err}");
    {
        let st = reg.state.lock().unwrap();
        assert!(
            st.token_scopes
                .iter()
                .any(|s| s == "repository:shop/web:pull,push"),
            "{:?}",
            st.token_scopes
        );
        assert!(st.uploaded.contains(&base_layer_digest));
        assert!(st
            .manifests
            .contains_key(&("shop/web".to_string(), "1".to_string())));
    }
    let uploads_before = reg.state.lock().unwrap().uploaded.len();

    // Registry → registry, another repository: base layers are mounted, not uploaded.
    let (code, err) = cli(
        &[&web, &format!("docker://{}/shop/copy:2", reg.host)],
        &auth,
    );
    assert_eq!(code, 0, "{err}");
    {
        let st = reg.state.lock().unwrap();
        assert!(
            st.mounted.contains(&base_layer_digest),
            "mounted: {:?}",
            st.mounted
        );
        assert!(!st.uploaded[uploads_before..].contains(&base_layer_digest));
        let (mt, bytes) = &st.manifests[&("shop/copy".to_string(), "2".to_string())];
        assert_eq!(mt, "application/vnd.oci.image.manifest.v1+json");
        let man: serde_json::Value = serde_json::from_slice(bytes).unwrap();
        assert_eq!(
            man["layers"].as_array().unwrap().len(),
            2,
            "one ldguard layer after re-instrumenting"
        );
    }

    // Registry → layout.
    let back = tmp.path().join("back");
    let (code, err) = cli(
        &[
            &format!("docker://{}/shop/copy:2", reg.host),
            &format!("oci:{}:x", back.display()),
        ],
        &auth,
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        Layout { dir: back }.resolve("x")["layers"]
            .as_array()
            .unwrap()
            .len()
            == 2
    );

    // Wrong password: the token endpoint's refusal is explained.
    let bad = tmp.path().join("bad.json");
    let mut j = reg.auth_json();
    j["auths"][&reg.host]["auth"] = json!("YWxpY2U6bm9wZQ==");
    std::fs::write(&bad, serde_json::to_vec(&j).unwrap()).unwrap();
    let (code, err) = cli(&[&web], &bad);
    assert_eq!(code, 1);
    assert!(
        err.contains("token request")
            && err.contains("UNAUTHORIZED")
            && err.contains("podman login"),
        "{err}"
    );
    // A missing tag is a registry error reply, quoted.
    let (code, err) = cli(&[&format!("docker://{}/shop/web:nope", reg.host)], &auth);
    assert_eq!(code, 1);
    assert!(
        err.contains("MANIFEST_UNKNOWN")
            && err.contains("shop/web/manifests/nope")
            && err.contains("check the repository and tag"),
        "{err}"
    );
}

#[test]
fn anonymous_registry_needs_no_credentials() {
    let tmp = tempfile::tempdir().unwrap();
    let lib_dir = tmp.path().join("dist");
    fake_lib(&lib_dir.join("x86_64-linux-gnu/libldguard.so"), "gcc", &[]);
    let layout = Layout::new(&tmp.path().join("oci"));
    let base = glibc_root(tmp.path(), "gcc", "x86_64-linux-gnu", &["2.2.5", "2.36"]);
    let m = layout.image("amd64", &[base], json!({}));
    layout.tag("v1", m);
    let reg = MockRegistry::start_anonymous();
    for (src, dst) in [
        (
            format!("oci:{}:v1", layout.dir.display()),
            format!("docker://{}/pub/app:1", reg.host),
        ),
        (
            format!("docker://{}/pub/app:1", reg.host),
            format!("oci:{}:pulled", layout.dir.display()),
        ),
    ] {
        let out = Command::new(bin())
            .args([
                &src,
                &dst,
                "--insecure",
                "--lib-dir",
                lib_dir.to_str().unwrap(),
            ])
            .env("REGISTRY_AUTH_FILE", tmp.path().join("none.json"))
            .env("HOME", tmp.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{src} -> {dst}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let st = reg.state.lock().unwrap();
    assert!(st.token_scopes.is_empty());
    assert_eq!(st.unauthorized, 0);
    drop(st);
    assert_eq!(
        layout.resolve("pulled")["layers"].as_array().unwrap().len(),
        2
    );
}

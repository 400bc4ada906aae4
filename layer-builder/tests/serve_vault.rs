//! Registry credentials from Vault's KV engine, v1 and v2, and the errors
//! for each usual mistake. No Vault server is packaged for Debian: these run
//! against `common::fake_vault`, an in-repo fake that answers as Vault's
//! documented KV v1/v2 HTTP API does (including its error responses).

mod common;
#[path = "common/fake_vault.rs"]
mod fake_vault;
use fake_vault::FakeVault;
use ldguard_layer::transport::vault::{KvVersion, VaultConfig};
use serde_json::json;

const REGISTRY: &str = "127.0.0.1:5000";

fn config(vault: &FakeVault, token: &str, mount: &str, kv: KvVersion) -> VaultConfig {
    VaultConfig {
        addr: vault.addr.clone(),
        token: token.into(),
        mount: mount.into(),
        kv,
        path: "registries/{registry}".into(),
        username_key: "username".into(),
        password_key: "password".into(),
        base64: false,
    }
}

fn vault() -> FakeVault {
    let v = FakeVault::start();
    v.mount("secret", 2);
    v.mount("kv", 1);
    v.put(
        "secret",
        &format!("registries/{REGISTRY}"),
        json!({"username": "pusher", "password": "v2-pass"}),
    );
    v.put(
        "kv",
        &format!("registries/{REGISTRY}"),
        json!({"username": "pusher", "password": "v1-pass"}),
    );
    v.put(
        "secret",
        "registries/b64",
        json!({"username": "cHVzaGVy", "password": "YjY0LXBhc3M="}),
    );
    v.put("secret", "registries/nokey", json!({"user": "pusher"}));
    v.token("root-token", &["secret/", "kv/"]);
    v.token("kv1-only", &["kv/"]);
    v
}

#[test]
fn kv_v2_and_v1_reads_give_the_registry_credentials() {
    let v = vault();
    let c = config(&v, "root-token", "secret", KvVersion::V2)
        .registry_credentials(REGISTRY)
        .unwrap();
    assert_eq!(
        (c.username.as_str(), c.password.as_str()),
        ("pusher", "v2-pass")
    );
    let c = config(&v, "root-token", "kv", KvVersion::V1)
        .registry_credentials(REGISTRY)
        .unwrap();
    assert_eq!(
        (c.username.as_str(), c.password.as_str()),
        ("pusher", "v1-pass")
    );
    // The documented paths, with the token in its header.
    let requests = v.state.lock().unwrap().requests.clone();
    assert!(requests.contains(&(
        "GET".into(),
        format!("/v1/secret/data/registries/{REGISTRY}"),
        true
    )));
    assert!(requests.contains(&("GET".into(), format!("/v1/kv/registries/{REGISTRY}"), true)));
}

#[test]
fn base64_values_are_decoded_when_asked() {
    let v = vault();
    let mut cfg = config(&v, "root-token", "secret", KvVersion::V2);
    cfg.base64 = true;
    let c = cfg.registry_credentials("b64").unwrap();
    assert_eq!(
        (c.username.as_str(), c.password.as_str()),
        ("pusher", "b64-pass")
    );
    let e = cfg.registry_credentials(REGISTRY).unwrap_err().to_string();
    assert!(
        e.contains("not base64") && e.contains("--vault-base64"),
        "{e}"
    );
}

#[test]
fn each_failure_says_what_is_wrong_and_never_shows_the_secret() {
    let v = vault();
    let v2 = config(&v, "root-token", "secret", KvVersion::V2);
    // A missing secret.
    let e = v2
        .registry_credentials("other:5000")
        .unwrap_err()
        .to_string();
    assert!(e.contains("no secret at 'registries/other:5000'"), "{e}");
    // A secret without the key.
    let e = v2.registry_credentials("nokey").unwrap_err().to_string();
    assert!(
        e.contains("has no key 'username' (its keys: user)") && e.contains("--vault-username-key"),
        "{e}"
    );
    // A token without read access, and an unknown token.
    for token in ["kv1-only", "no-such-token"] {
        let e = config(&v, token, "secret", KvVersion::V2)
            .registry_credentials(REGISTRY)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("permission denied") && e.contains("secret/data/registries/"),
            "{e}"
        );
        assert!(!e.contains(token), "the token is not shown: {e}");
    }
    // The wrong KV version, both ways.
    let e = config(&v, "root-token", "secret", KvVersion::V1)
        .registry_credentials(REGISTRY)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("mount 'secret' is a KV version 2 engine, not 1: pass --vault-kv 2"),
        "{e}"
    );
    let e = config(&v, "root-token", "kv", KvVersion::V2)
        .registry_credentials(REGISTRY)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("mount 'kv' is a KV version 1 engine, not 2: pass --vault-kv 1"),
        "{e}"
    );
    // Sealed.
    v.seal(true);
    let e = v2.registry_credentials(REGISTRY).unwrap_err().to_string();
    assert!(e.contains("Vault is sealed") && e.contains("unseal"), "{e}");
    assert!(!e.contains("v2-pass"));
    // Nobody listening.
    let mut gone = v2.clone();
    gone.addr = format!("http://127.0.0.1:{}", common::containers::free_port());
    let e = gone.registry_credentials(REGISTRY).unwrap_err().to_string();
    assert!(
        e.contains("cannot connect") && e.contains("VAULT_ADDR"),
        "{e}"
    );
}

#[test]
fn the_servers_token_can_come_from_vault_too() {
    let v = vault();
    v.put(
        "kv",
        "ldguard/instrumenter",
        json!({"token": "ldg_from_vault"}),
    );
    let cfg = config(&v, "root-token", "kv", KvVersion::V1);
    assert_eq!(
        cfg.read_value("ldguard/instrumenter", "token").unwrap(),
        "ldg_from_vault"
    );
    let e = cfg
        .read_value("ldguard/instrumenter", "secret")
        .unwrap_err()
        .to_string();
    assert!(e.contains("has no key 'secret' (its keys: token)"), "{e}");
}

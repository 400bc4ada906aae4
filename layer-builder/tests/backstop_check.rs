//! `ldguard-layer --check` and the kernel backstop: when the baked policy
//! asks for one, its `no_new_privs` makes setuid, setgid and
//! file-capability programs run without their privileges, and `--check`
//! lists them. Synthetic images (fast: no container engine); the
//! bookworm image's real list is checked in tests/drift_podman.rs.

mod common;
use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

const GLIBC_236: &[&str] = &["2.2.5", "2.17", "2.34", "2.36"];

/// One member of the privileged layer: path, mode, uid, gid, file caps.
struct Member(&'static str, u32, u64, u64, bool);

fn privileged_layer(members: &[Member]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for dir in ["usr/", "usr/bin/", "usr/sbin/"] {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, dir, &[][..]).unwrap();
    }
    for Member(path, mode, uid, gid, caps) in members {
        if *caps {
            // What `setcap cap_net_raw+ep` leaves, as podman exports it.
            let value: &[u8] =
                b"\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00";
            b.append_pax_extensions([("SCHILY.xattr.security.capability", value)])
                .unwrap();
        }
        let data = format!("#!/bin/sh\necho {path}\n");
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(*mode);
        h.set_uid(*uid);
        h.set_gid(*gid);
        h.set_mtime(1_700_000_000);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, path, data.as_bytes()).unwrap();
    }
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Link);
    h.set_mode(0o4755);
    h.set_size(0);
    h.set_mtime(1_700_000_000);
    b.append_link(&mut h, "usr/bin/passwd-again", "usr/bin/passwd")
        .unwrap();
    b.into_inner().unwrap()
}

struct Scene {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    lib_dir: PathBuf,
    image: String,
}

fn scene() -> Scene {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let lib_dir = root.join("dist");
    fake_lib(&lib_dir.join("x86_64-linux-gnu/libldguard.so"), "gcc", &[]);
    let layout = Layout::new(&root.join("oci"));
    let base = glibc_root(&root, "gcc", "x86_64-linux-gnu", GLIBC_236);
    let tools = privileged_layer(&[
        Member("usr/bin/passwd", 0o4755, 0, 0, false),
        Member("usr/bin/chage", 0o2755, 0, 42, false),
        Member("usr/bin/ping", 0o755, 0, 0, true),
        Member("usr/sbin/unix_chkpwd", 0o6755, 0, 42, false),
        Member("usr/bin/plain", 0o755, 0, 0, false),
        // Setgid without group execute is mandatory locking, no privilege.
        Member("usr/bin/locked", 0o2644, 0, 0, false),
    ]);
    let m = layout.image("amd64", &[base, tools], json!({}));
    layout.tag("tools", m);
    Scene {
        image: format!("oci:{}:tools", layout.dir.display()),
        _tmp: tmp,
        root,
        lib_dir,
    }
}

fn policy(dir: &Path, name: &str, mode: &str, backstop: Option<Value>) -> PathBuf {
    let mut doc = json!({
        "apiVersion": "ldguard.policy/v1", "name": name, "mode": mode,
        "rules": [{"name": "no-unshare", "kind": "syscall", "call": ["unshare"], "action": "deny"}]
    });
    if let Some(b) = backstop {
        doc["backstop"] = b;
    }
    let p = dir.join(format!("{name}.json"));
    std::fs::write(&p, serde_json::to_vec(&doc).unwrap()).unwrap();
    p
}

fn check(s: &Scene, image: &str, extra: &[&str]) -> (Value, String) {
    let lib = s.lib_dir.display().to_string();
    let mut args = vec!["--check", image, "--lib-dir", &lib];
    args.extend_from_slice(extra);
    let t = run(&args);
    assert_eq!(t.code, 0, "{}", t.stderr);
    args.extend(["--format", "json"]);
    let r = run(&args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let json: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(t.code, 0, "{}", t.stderr);
    (json["platforms"][0].clone(), t.stdout)
}

const EXPECTED: &[(&str, &str)] = &[
    ("/usr/bin/chage", "setgid gid 42"),
    ("/usr/bin/passwd", "setuid uid 0"),
    ("/usr/bin/passwd-again", "setuid uid 0"),
    ("/usr/bin/ping", "file capabilities"),
    ("/usr/sbin/unix_chkpwd", "setuid uid 0, setgid gid 42"),
];

fn listed(p: &Value) -> Vec<(String, String)> {
    p["backstop"]["privilegedFiles"]
        .as_array()
        .unwrap_or_else(|| panic!("no privileged files in {p:#}"))
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["gains"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn expected() -> Vec<(String, String)> {
    EXPECTED
        .iter()
        .map(|(p, g)| (p.to_string(), g.to_string()))
        .collect()
}

#[test]
fn setuid_setgid_and_capability_files_are_listed_when_the_policy_asks_for_a_backstop() {
    let s = scene();
    let on = policy(
        &s.root,
        "with-backstop",
        "enforce",
        Some(json!({"seccomp": true, "landlock": "off"})),
    );
    let (p, text) = check(&s, &s.image, &["--policy", on.to_str().unwrap()]);
    assert_eq!(listed(&p), expected());
    assert_eq!(p["backstop"]["policy"], "with-backstop");
    assert_eq!(p["backstop"]["installed"], true);
    assert!(
        p["backstop"]["source"]
            .as_str()
            .unwrap()
            .ends_with("with-backstop.json"),
        "{p:#}"
    );
    assert!(text.contains("sets no_new_privs\n"), "{text}");
    assert!(
        text.contains("(they run without these privileges under no_new_privs): 5\n"),
        "{text}"
    );
    for (path, gains) in EXPECTED {
        assert!(text.contains(&format!("    {path} ({gains})\n")), "{text}");
    }
    assert!(!text.contains("/usr/bin/plain") && !text.contains("/usr/bin/locked"));
}

#[test]
fn nothing_is_listed_without_a_backstop() {
    let s = scene();
    let (p, text) = check(&s, &s.image, &[]);
    assert!(p.get("backstop").is_none(), "no policy: {p:#}");
    assert!(!text.contains("setuid"), "{text}");
    let off = policy(&s.root, "no-backstop", "enforce", None);
    let (p, text) = check(&s, &s.image, &["--policy", off.to_str().unwrap()]);
    assert!(p.get("backstop").is_none(), "no backstop field: {p:#}");
    assert!(!text.contains("setuid"), "{text}");
}

#[test]
fn a_permissive_policy_with_a_backstop_says_it_is_not_installed_yet() {
    let s = scene();
    let later = policy(
        &s.root,
        "later",
        "permissive",
        Some(json!({"seccomp": true})),
    );
    let (p, text) = check(&s, &s.image, &["--policy", later.to_str().unwrap()]);
    assert_eq!(p["backstop"]["installed"], false);
    assert_eq!(p["backstop"]["mode"], "permissive");
    assert_eq!(listed(&p), expected());
    assert!(
        text.contains("once the policy enforces (its mode is `permissive`: not installed yet)"),
        "{text}"
    );
}

#[test]
fn the_policy_an_instrumented_image_bakes_is_the_one_checked() {
    let s = scene();
    let on = policy(
        &s.root,
        "baked",
        "enforce",
        Some(json!({"landlock": "best-effort"})),
    );
    let lib = s.lib_dir.display().to_string();
    let r = run(&[
        &s.image,
        "--lib-dir",
        &lib,
        "--policy",
        on.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let layered = format!("{}-layered", s.image);
    let (p, text) = check(&s, &layered, &[]);
    assert_eq!(p["alreadyInstrumented"], true);
    assert_eq!(p["backstop"]["policy"], "baked");
    assert_eq!(
        p["backstop"]["source"],
        "/etc/ldguard/policy.json of the image"
    );
    assert_eq!(listed(&p), expected());
    assert!(text.contains("/usr/bin/passwd (setuid uid 0)"), "{text}");
    // A --policy given to --check is the one that would be baked: it wins.
    let off = policy(&s.root, "replacement", "enforce", None);
    let (p, _) = check(&s, &layered, &["--policy", off.to_str().unwrap()]);
    assert!(p.get("backstop").is_none(), "{p:#}");
}

//! Builder behaviour on small synthetic images made of real ELF files
//! (fast: no container engine). What podman does with real images is in
//! tests/podman.rs.

mod common;
use common::*;
use serde_json::{json, Value};
use std::path::Path;

const GLIBC_236: &[&str] = &["2.2.5", "2.17", "2.34", "2.36"];

struct Fixture {
    _tmp: tempfile::TempDir,
    root: std::path::PathBuf,
    lib_dir: std::path::PathBuf,
    layout: Layout,
}

/// A layout with `bookworm`: a glibc 2.36 x86_64 image with a base
/// /etc/ld.so.preload line, and a library directory with an x86_64 glibc
/// build of the library and of its HTTPS client.
fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let lib_dir = root.join("dist");
    fake_lib(&lib_dir.join("x86_64-linux-gnu/libldguard.so"), "gcc", &[]);
    fake_lib(
        &lib_dir.join("x86_64-linux-gnu/libldguard_net.so"),
        "gcc",
        &[],
    );
    let layout = Layout::new(&root.join("oci"));
    let base = glibc_root(&root, "gcc", "x86_64-linux-gnu", GLIBC_236);
    let app = tar(&[
        Entry::Dir("etc/"),
        Entry::File(
            "etc/ld.so.preload".into(),
            b"/opt/other.so\n".to_vec(),
            0o644,
        ),
    ]);
    let m = layout.image("amd64", &[base, app], json!({"app": "web"}));
    layout.tag("bookworm", m);
    Fixture {
        _tmp: tmp,
        root,
        lib_dir,
        layout,
    }
}

fn oci(f: &Fixture, tag: &str) -> String {
    format!("oci:{}:{tag}", f.layout.dir.display())
}

fn lib_arg(f: &Fixture) -> String {
    f.lib_dir.display().to_string()
}

fn snapshot(dir: &Path) -> Vec<(String, u64)> {
    let mut v = Vec::new();
    for e in walk(dir) {
        v.push((
            e.display().to_string(),
            std::fs::metadata(&e).unwrap().len(),
        ));
    }
    v.sort();
    v
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn instruments_and_keeps_everything_else() {
    let f = fixture();
    let policy = f.root.join("policy.json");
    std::fs::write(&policy, serde_json::to_vec(&json!({"apiVersion": "ldguard.policy/v1", "name": "t", "mode": "enforce", "rules": [{"name": "r", "kind": "exec", "path": ["/bin/sh"], "action": "deny"}]})).unwrap()).unwrap();
    let r = run(&[
        &oci(&f, "bookworm"),
        "--lib-dir",
        &lib_arg(&f),
        "--policy",
        policy.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let summary: Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(summary["destination"]
        .as_str()
        .unwrap()
        .ends_with(":bookworm-layered"));

    let base = f.layout.resolve("bookworm");
    let m = f.layout.resolve("bookworm-layered");
    assert_eq!(
        summary["digest"].as_str().unwrap(),
        base_desc_digest(&f, "bookworm-layered")
    );
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3);
    // Base layers are the same blobs, byte for byte.
    assert_eq!(layers[0], base["layers"][0]);
    assert_eq!(layers[1], base["layers"][1]);
    let base_digest = sha(&f.layout.blob(base_desc_digest(&f, "bookworm").as_str()));
    assert_eq!(
        m["annotations"]["org.opencontainers.image.base.digest"],
        base_digest.as_str()
    );

    let c = f.layout.config_of(&m);
    let bc = f.layout.config_of(&base);
    let labels = &c["config"]["Labels"];
    assert_eq!(labels["io.ldguard.instrumented"], "true");
    assert_eq!(labels["app"], "web");
    assert_eq!(
        labels["org.opencontainers.image.base.digest"],
        base_digest.as_str()
    );
    for k in ["Env", "Cmd", "User", "WorkingDir"] {
        assert_eq!(c["config"][k], bc["config"][k], "{k}");
    }
    assert_eq!(c["x-unknown-field"], bc["x-unknown-field"]);
    assert_eq!(c["created"], bc["created"]);
    assert_eq!(
        c["history"].as_array().unwrap().len(),
        bc["history"].as_array().unwrap().len() + 1
    );
    assert_eq!(c["rootfs"]["diff_ids"].as_array().unwrap().len(), 3);

    let files = f.layout.layer_files(layers[2]["digest"].as_str().unwrap());
    assert_eq!(
        files["etc/ld.so.preload"],
        b"/usr/lib/ldguard/libldguard.so\n/opt/other.so\n"
    );
    assert_eq!(
        files["usr/lib/ldguard/libldguard.so"],
        std::fs::read(f.lib_dir.join("x86_64-linux-gnu/libldguard.so")).unwrap()
    );
    assert_eq!(
        files["usr/lib/ldguard/libldguard_net.so"],
        std::fs::read(f.lib_dir.join("x86_64-linux-gnu/libldguard_net.so")).unwrap()
    );
    assert_eq!(
        files["etc/ldguard/policy.json"],
        std::fs::read(&policy).unwrap()
    );
    let rc: Value = serde_json::from_slice(&files["etc/ldguard/config.json"]).unwrap();
    assert_eq!(rc["allowEnvOverride"], false);
    assert_eq!(rc["bakedPolicy"], "/etc/ldguard/policy.json");
    assert_eq!(rc["image"]["baseDigest"], base_digest.as_str());
    assert!(files.contains_key("var/log/ldguard/"));
}

fn base_desc_digest(f: &Fixture, tag: &str) -> String {
    let idx = f.layout.index_json();
    idx["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn reproducible_and_reinstrumenting_replaces_the_layer() {
    let f = fixture();
    let run1 = run(&[
        &oci(&f, "bookworm"),
        &oci(&f, "a"),
        "--lib-dir",
        &lib_arg(&f),
    ]);
    assert_eq!(run1.code, 0, "{}", run1.stderr);
    let run2 = run(&[
        &oci(&f, "bookworm"),
        &oci(&f, "b"),
        "--lib-dir",
        &lib_arg(&f),
    ]);
    assert_eq!(run2.code, 0, "{}", run2.stderr);
    let (a, b) = (f.layout.resolve("a"), f.layout.resolve("b"));
    assert_eq!(
        a["layers"][2]["digest"], b["layers"][2]["digest"],
        "same inputs, same layer"
    );
    assert_eq!(a, b, "same inputs, same manifest");

    // Instrument the instrumented image (with another policy source).
    let r = run(&[
        &oci(&f, "a"),
        &oci(&f, "again"),
        "--lib-dir",
        &lib_arg(&f),
        "--policy",
        "https://policies.example/v1/web",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let again = f.layout.resolve("again");
    let layers = again["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3, "exactly one ldguard layer");
    assert_eq!(layers[..2], a["layers"].as_array().unwrap()[..2]);
    let files = f.layout.layer_files(layers[2]["digest"].as_str().unwrap());
    assert_eq!(
        files["etc/ld.so.preload"],
        b"/usr/lib/ldguard/libldguard.so\n/opt/other.so\n"
    );
    let rc: Value = serde_json::from_slice(&files["etc/ldguard/config.json"]).unwrap();
    assert_eq!(rc["policy"], "https://policies.example/v1/web");
    let c = f.layout.config_of(&again);
    let ca = f.layout.config_of(&a);
    assert_eq!(
        c["config"]["Labels"]["org.opencontainers.image.base.digest"],
        ca["config"]["Labels"]["org.opencontainers.image.base.digest"],
        "still the original base"
    );
    let ldguard_history = c["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| {
            h["created_by"]
                .as_str()
                .unwrap_or("")
                .starts_with("ldguard-layer")
        })
        .count();
    assert_eq!(ldguard_history, 1);
}

fn refused_without_writing(f: &Fixture, args: &[&str], expect: &[&str]) {
    let before = snapshot(&f.layout.dir);
    let r = run(args);
    assert_eq!(r.code, 3, "stdout {} stderr {}", r.stdout, r.stderr);
    for e in expect {
        assert!(r.stderr.contains(e), "expected '{e}' in: {}", r.stderr);
    }
    assert_eq!(snapshot(&f.layout.dir), before, "nothing written");
}

#[test]
fn musl_image_without_a_musl_library_is_refused() {
    let f = fixture();
    let musl = f.root.join("musl");
    fake_lib(&musl.join("ld-musl-x86_64.so.1"), "musl-gcc", &[]);
    let root = tar(&[
        Entry::Dir("lib/"),
        Entry::File(
            "lib/ld-musl-x86_64.so.1".into(),
            std::fs::read(musl.join("ld-musl-x86_64.so.1")).unwrap(),
            0o755,
        ),
        Entry::Dir("bin/"),
        Entry::File("bin/sh".into(), b"#!".to_vec(), 0o755),
    ]);
    let m = f.layout.image("amd64", &[root], json!({}));
    f.layout.tag("alpine", m);
    refused_without_writing(
        &f,
        &[&oci(&f, "alpine"), "--lib-dir", &lib_arg(&f)],
        &["x86_64-linux-musl", "scripts/build-lib"],
    );

    // With a musl build: LD_PRELOAD in the config, no /etc/ld.so.preload.
    fake_lib(
        &f.lib_dir.join("x86_64-linux-musl/libldguard.so"),
        "musl-gcc",
        &[],
    );
    let r = run(&[&oci(&f, "alpine"), "--lib-dir", &lib_arg(&f)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = f.layout.resolve("alpine-layered");
    let env = f.layout.config_of(&m)["config"]["Env"].clone();
    assert!(
        env.as_array()
            .unwrap()
            .contains(&json!("LD_PRELOAD=/usr/lib/ldguard/libldguard.so")),
        "{env}"
    );
    let files = f
        .layout
        .layer_files(m["layers"][1]["digest"].as_str().unwrap());
    assert!(!files.contains_key("etc/ld.so.preload"));

    // A glibc build in the musl directory is caught.
    std::fs::copy(
        f.lib_dir.join("x86_64-linux-gnu/libldguard.so"),
        f.lib_dir.join("x86_64-linux-musl/libldguard.so"),
    )
    .unwrap();
    refused_without_writing(
        &f,
        &[&oci(&f, "alpine"), &oci(&f, "x"), "--lib-dir", &lib_arg(&f)],
        &["glibc build", "musl"],
    );
}

#[test]
fn unknown_architecture_and_libc_problems_are_refused() {
    let f = fixture();
    let root = glibc_root(&f.root, "gcc", "x86_64-linux-gnu", GLIBC_236);
    let m = f.layout.image("mips64", &[root], json!({}));
    f.layout.tag("mips", m);
    refused_without_writing(
        &f,
        &[&oci(&f, "mips"), "--lib-dir", &lib_arg(&f)],
        &["architecture 'mips64' is not supported"],
    );

    // An image without any libc (static/distroless).
    let m = f.layout.image(
        "amd64",
        &[tar(&[
            Entry::Dir("bin/"),
            Entry::File("bin/app".into(), b"x".to_vec(), 0o755),
        ])],
        json!({}),
    );
    f.layout.tag("scratch", m);
    refused_without_writing(
        &f,
        &[&oci(&f, "scratch"), "--lib-dir", &lib_arg(&f)],
        &["no C library"],
    );

    // A library needing a newer glibc than the image has.
    let old = glibc_root(
        &f.root,
        "gcc",
        "x86_64-linux-gnu",
        &["2.2.5", "2.17", "2.28"],
    );
    let m = f.layout.image("amd64", &[old], json!({}));
    f.layout.tag("buster", m);
    let stub = fake_glibc(&f.root.join("new-libc"), "gcc", &["2.2.5", "2.34", "2.40"]);
    let needy = f.root.join("needy");
    let src = f.root.join("needy.c");
    std::fs::write(&src, "int stub_2(void); int f(void) { return stub_2(); }\n").unwrap();
    std::fs::create_dir_all(needy.join("x86_64-linux-gnu")).unwrap();
    let out = needy.join("x86_64-linux-gnu/libldguard.so");
    cc(
        "gcc",
        &[
            "-shared",
            "-fPIC",
            "-nostdlib",
            "-o",
            out.to_str().unwrap(),
            src.to_str().unwrap(),
            stub.to_str().unwrap(),
        ],
    );
    refused_without_writing(
        &f,
        &[&oci(&f, "buster"), "--lib-dir", needy.to_str().unwrap()],
        &["needs GLIBC_2.40", "glibc 2.28"],
    );

    // A library with a dependency the image lacks.
    let deps = f.root.join("deps");
    fake_lib(
        &deps.join("x86_64-linux-gnu/libldguard.so"),
        "gcc",
        &["-Wl,--no-as-needed", "-lgcc_s"],
    );
    refused_without_writing(
        &f,
        &[&oci(&f, "bookworm"), "--lib-dir", deps.to_str().unwrap()],
        &["needs libgcc_s.so.1"],
    );

    // An HTTPS client library with a dependency the image lacks: refused
    // too, since the library would load and then fail to fetch.
    let net_deps = f.root.join("net-deps");
    fake_lib(&net_deps.join("x86_64-linux-gnu/libldguard.so"), "gcc", &[]);
    fake_lib(
        &net_deps.join("x86_64-linux-gnu/libldguard_net.so"),
        "gcc",
        &["-Wl,--no-as-needed", "-lgcc_s"],
    );
    refused_without_writing(
        &f,
        &[
            &oci(&f, "bookworm"),
            "--lib-dir",
            net_deps.to_str().unwrap(),
        ],
        &["libldguard_net.so needs libgcc_s.so.1"],
    );
}

#[test]
fn multi_platform_index() {
    let f = fixture();
    let amd = glibc_root(&f.root, "gcc", "x86_64-linux-gnu", GLIBC_236);
    let arm = glibc_root(
        &f.root,
        "aarch64-linux-gnu-gcc",
        "aarch64-linux-gnu",
        GLIBC_236,
    );
    let ma = f.layout.image("amd64", &[amd], json!({}));
    let mb = f.layout.image("arm64", &[arm], json!({}));
    let idx = f.layout.index_of(vec![ma, mb]);
    f.layout.tag("multi", idx);

    // No arm64 build: the error names the platform, and nothing is written.
    refused_without_writing(
        &f,
        &[&oci(&f, "multi"), "--lib-dir", &lib_arg(&f)],
        &["linux/arm64", "aarch64-linux-gnu"],
    );
    // One platform can be chosen.
    let r = run(&[
        &oci(&f, "multi"),
        &oci(&f, "amd"),
        "--platform",
        "linux/amd64",
        "--lib-dir",
        &lib_arg(&f),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        f.layout.resolve("amd")["layers"].as_array().unwrap().len(),
        2
    );
    let r = run(&[
        &oci(&f, "multi"),
        "--platform",
        "linux/s390x",
        "--lib-dir",
        &lib_arg(&f),
    ]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("no platform linux/s390x") && r.stderr.contains("linux/arm64"),
        "{}",
        r.stderr
    );

    // With both builds every platform is instrumented, and an index written.
    fake_lib(
        &f.lib_dir.join("aarch64-linux-gnu/libldguard.so"),
        "aarch64-linux-gnu-gcc",
        &[],
    );
    let r = run(&[&oci(&f, "multi"), "--lib-dir", &lib_arg(&f)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let idx = f.layout.resolve("multi-layered");
    assert_eq!(idx["mediaType"], "application/vnd.oci.image.index.v1+json");
    let ms = idx["manifests"].as_array().unwrap();
    assert_eq!(ms.len(), 2);
    for (d, arch) in ms.iter().zip(["amd64", "arm64"]) {
        assert_eq!(d["platform"]["architecture"], arch);
        let m: Value =
            serde_json::from_slice(&f.layout.blob(d["digest"].as_str().unwrap())).unwrap();
        let files = f
            .layout
            .layer_files(m["layers"][1]["digest"].as_str().unwrap());
        let lib = &files["usr/lib/ldguard/libldguard.so"];
        let machine = u16::from_le_bytes([lib[18], lib[19]]);
        assert_eq!(
            machine,
            if arch == "amd64" { 62 } else { 183 },
            "{arch} gets its own build"
        );
    }
}

#[test]
fn corrupt_blob_is_reported_and_nothing_written() {
    let f = fixture();
    let m = f.layout.resolve("bookworm");
    let d = m["layers"][1]["digest"].as_str().unwrap();
    let p = f.layout.dir.join("blobs/sha256").join(&d[7..]);
    let mut data = std::fs::read(&p).unwrap();
    let n = data.len();
    data[n / 2] ^= 0xff;
    std::fs::write(&p, data).unwrap();
    let before = snapshot(&f.layout.dir);
    let r = run(&[&oci(&f, "bookworm"), "--lib-dir", &lib_arg(&f)]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("corrupt") && r.stderr.contains(d),
        "{}",
        r.stderr
    );
    assert_eq!(snapshot(&f.layout.dir), before);
}

#[test]
fn check_lists_static_executables() {
    let f = fixture();
    let src = f.root.join("hello.c");
    std::fs::write(&src, "int main(void) { return 0; }\n").unwrap();
    let stat = f.root.join("hello-static");
    let dynamic = f.root.join("hello-dynamic");
    cc(
        "musl-gcc",
        &[
            "-static",
            "-o",
            stat.to_str().unwrap(),
            src.to_str().unwrap(),
        ],
    );
    cc(
        "gcc",
        &["-o", dynamic.to_str().unwrap(), src.to_str().unwrap()],
    );
    let base = glibc_root(&f.root, "gcc", "x86_64-linux-gnu", GLIBC_236);
    let bins = tar(&[
        Entry::Dir("usr/"),
        Entry::Dir("usr/local/"),
        Entry::Dir("usr/local/bin/"),
        Entry::File(
            "usr/local/bin/static-tool".into(),
            std::fs::read(&stat).unwrap(),
            0o755,
        ),
        Entry::File(
            "usr/local/bin/dynamic-tool".into(),
            std::fs::read(&dynamic).unwrap(),
            0o755,
        ),
    ]);
    let m = f.layout.image("amd64", &[base, bins], json!({}));
    f.layout.tag("tools", m);
    let before = snapshot(&f.layout.dir);
    let r = run(&[
        "--check",
        &oci(&f, "tools"),
        "--lib-dir",
        &lib_arg(&f),
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rep: Value = serde_json::from_str(&r.stdout).unwrap();
    let p = &rep["platforms"][0];
    assert_eq!(p["libc"]["kind"], "glibc");
    assert_eq!(p["libc"]["version"], "2.36");
    assert_eq!(p["platform"], "linux/amd64");
    assert_eq!(p["instrumentable"], true);
    assert_eq!(
        p["staticExecutables"],
        json!(["/usr/local/bin/static-tool"])
    );
    assert_eq!(snapshot(&f.layout.dir), before, "--check writes nothing");
    let t = run(&["--check", &oci(&f, "tools"), "--lib-dir", &lib_arg(&f)]);
    assert!(
        t.stdout.contains("/usr/local/bin/static-tool") && t.stdout.contains("glibc")
            || t.stdout.contains("Glibc"),
        "{}",
        t.stdout
    );
    let none = run(&[
        "--check",
        &oci(&f, "tools"),
        "--lib-dir",
        f.root.join("nothing").to_str().unwrap(),
    ]);
    assert_eq!(
        none.code, 3,
        "not instrumentable without a library: {}",
        none.stdout
    );
}

#[test]
fn docker_archive_round_trip() {
    let f = fixture();
    let archive = f.root.join("web.tar");
    let dst = format!("docker-archive:{}:shop/web:1.4", archive.display());
    let r = run(&[&oci(&f, "bookworm"), &dst, "--lib-dir", &lib_arg(&f)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Reinstrument from the archive: default DST is web-layered.tar with the tag suffixed.
    let r = run(&[
        &format!("docker-archive:{}", archive.display()),
        "--lib-dir",
        &lib_arg(&f),
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let s: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        s["destination"],
        format!(
            "docker-archive:{}:shop/web:1.4-layered",
            f.root.join("web-layered.tar").display()
        )
    );
    let mut ar = tar::Archive::new(std::fs::File::open(f.root.join("web-layered.tar")).unwrap());
    let mut manifest = None;
    let mut names = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().to_string_lossy().into_owned();
        if p == "manifest.json" {
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut v).unwrap();
            manifest = Some(serde_json::from_slice::<Value>(&v).unwrap());
        }
        names.push(p);
    }
    let manifest = manifest.unwrap();
    assert_eq!(manifest[0]["RepoTags"], json!(["shop/web:1.4-layered"]));
    assert_eq!(
        manifest[0]["Layers"].as_array().unwrap().len(),
        3,
        "one ldguard layer: {names:?}"
    );
    // And back to a layout, as OCI manifests.
    let r = run(&[
        &format!(
            "docker-archive:{}",
            f.root.join("web-layered.tar").display()
        ),
        &oci(&f, "from-archive"),
        "--lib-dir",
        &lib_arg(&f),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = f.layout.resolve("from-archive");
    assert_eq!(m["layers"].as_array().unwrap().len(), 3);
    assert_eq!(
        m["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar"
    );
}

#[test]
fn bad_input_is_named_with_the_fix() {
    let f = fixture();
    let r = run(&["docker://127.0.0.1:1/shop/web", "--lib-dir", &lib_arg(&f)]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("no tag") && r.stderr.contains(":TAG"),
        "{}",
        r.stderr
    );
    let r = run(&[&oci(&f, "nope"), "--lib-dir", &lib_arg(&f)]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("no image tagged 'nope'") && r.stderr.contains("bookworm"),
        "{}",
        r.stderr
    );
    let r = run(&["oci:/nonexistent/dir:x", "--lib-dir", &lib_arg(&f)]);
    assert!(r.stderr.contains("not an OCI image layout"), "{}", r.stderr);
    let bad = f.root.join("bad.json");
    std::fs::write(
        &bad,
        b"{\"apiVersion\": \"ldguard.policy/v1\",\n \"rules\": [}",
    )
    .unwrap();
    let r = run(&[
        &oci(&f, "bookworm"),
        "--lib-dir",
        &lib_arg(&f),
        "--policy",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("bad.json:2:"), "{}", r.stderr);
    let r = run(&[
        "docker://127.0.0.1:1/shop/web:1",
        "--insecure",
        "--lib-dir",
        &lib_arg(&f),
    ]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("127.0.0.1:1") && r.stderr.contains("is the registry running"),
        "{}",
        r.stderr
    );
}

#[test]
fn install_into_a_root_directory() {
    let f = fixture();
    let root = f.root.join("rootfs");
    let base = glibc_root(&f.root, "gcc", "x86_64-linux-gnu", GLIBC_236);
    tar::Archive::new(&base[..]).unpack(&root).unwrap();
    std::fs::write(root.join("etc/ld.so.preload"), "/opt/mine.so\n").unwrap();
    let out = std::process::Command::new(bin())
        .args([
            "install",
            "--root",
            root.to_str().unwrap(),
            "--lib-dir",
            &lib_arg(&f),
            "--format",
            "json",
            "--policy",
            "https://p.example/x",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(root.join("etc/ld.so.preload")).unwrap(),
        "/usr/lib/ldguard/libldguard.so\n/opt/mine.so\n"
    );
    assert_eq!(
        std::fs::read(root.join("usr/lib/ldguard/libldguard.so")).unwrap(),
        std::fs::read(f.lib_dir.join("x86_64-linux-gnu/libldguard.so")).unwrap()
    );
    let rc: Value =
        serde_json::from_slice(&std::fs::read(root.join("etc/ldguard/config.json")).unwrap())
            .unwrap();
    assert_eq!(rc["policy"], "https://p.example/x");
}

#[test]
fn a_newer_glibc_build_is_taken_where_the_image_has_that_glibc() {
    let f = fixture();
    let newer = f.lib_dir.join("x86_64-linux-gnu/glibc-2.34/libldguard.so");
    // Different bytes from the baseline build, like the real one.
    fake_lib(&newer, "gcc", &["-Wl,-soname,libldguard-glibc-2.34.so"]);
    let old = glibc_root(
        &f.root,
        "gcc",
        "x86_64-linux-gnu",
        &["2.2.5", "2.17", "2.28"],
    );
    let m = f.layout.image("amd64", &[old], json!({}));
    f.layout.tag("buster", m);
    for (tag, want) in [
        ("bookworm", newer.clone()),
        ("buster", f.lib_dir.join("x86_64-linux-gnu/libldguard.so")),
    ] {
        let r = run(&[&oci(&f, tag), "--lib-dir", &lib_arg(&f), "-q"]);
        assert_eq!(r.code, 0, "{tag}: {}", r.stderr);
        let m = f.layout.resolve(&format!("{tag}-layered"));
        let layers = m["layers"].as_array().unwrap();
        let files = f
            .layout
            .layer_files(layers.last().unwrap()["digest"].as_str().unwrap());
        assert_eq!(
            files["usr/lib/ldguard/libldguard.so"],
            std::fs::read(&want).unwrap(),
            "{tag} gets {}",
            want.display()
        );
        // One HTTPS client for both.
        assert_eq!(
            files["usr/lib/ldguard/libldguard_net.so"],
            std::fs::read(f.lib_dir.join("x86_64-linux-gnu/libldguard_net.so")).unwrap()
        );
    }
}

//! Helpers for the builder's tests: small real ELF files compiled with the
//! system's compilers, and OCI layouts assembled from them.
#![allow(dead_code)]

use flate2::write::GzEncoder;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_ldguard-layer")
}

pub fn sha(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Runs a compiler; a missing toolchain fails the test with the package to install.
pub fn cc(compiler: &str, args: &[&str]) {
    let out = Command::new(compiler)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{compiler} is needed (scripts/setup installs it): {e}"));
    assert!(
        out.status.success(),
        "{compiler} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A stand-in libc.so.6 defining GLIBC_2.2.5 … GLIBC_`max` versions.
pub fn fake_glibc(dir: &Path, compiler: &str, versions: &[&str]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let mut script = String::new();
    let mut c = String::new();
    let mut prev: Option<&str> = None;
    for (i, v) in versions.iter().enumerate() {
        c.push_str(&format!("int stub_{i}(void) {{ return {i}; }}\n"));
        script.push_str(&format!(
            "GLIBC_{v} {{ global: stub_{i}; {} }}{};\n",
            if i == 0 { "local: *;" } else { "" },
            prev.map(|p| format!(" GLIBC_{p}")).unwrap_or_default()
        ));
        prev = Some(v);
    }
    std::fs::write(dir.join("libc.c"), c).unwrap();
    std::fs::write(dir.join("libc.map"), script).unwrap();
    let out = dir.join("libc.so.6");
    cc(
        compiler,
        &[
            "-shared",
            "-fPIC",
            "-nostdlib",
            "-Wl,-soname,libc.so.6",
            &format!("-Wl,--version-script={}", dir.join("libc.map").display()),
            "-o",
            out.to_str().unwrap(),
            dir.join("libc.c").to_str().unwrap(),
        ],
    );
    out
}

/// A small shared object standing in for libldguard.so.
pub fn fake_lib(out: &Path, compiler: &str, extra: &[&str]) {
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let src = out.with_extension("c");
    // It calls into libc so that, like the real library, it needs one.
    std::fs::write(
        &src,
        "#include <unistd.h>\nint ldguard_stand_in(void) { return (int)getpid(); }\n",
    )
    .unwrap();
    let mut args = vec![
        "-shared",
        "-fPIC",
        "-o",
        out.to_str().unwrap(),
        src.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    cc(compiler, &args);
}

pub enum Entry {
    Dir(&'static str),
    File(String, Vec<u8>, u32),
    Link(&'static str, &'static str),
}

pub fn tar(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_ustar();
        h.set_mtime(1_700_000_000);
        match e {
            Entry::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, p, &[][..]).unwrap();
            }
            Entry::File(p, data, mode) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, p, &data[..]).unwrap();
            }
            Entry::Link(p, t) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, p, t).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A Debian-like root for `arch` ("x86_64", "aarch64") with a glibc of the
/// given versions, merged /usr.
pub fn glibc_root(work: &Path, compiler: &str, triplet: &str, versions: &[&str]) -> Vec<u8> {
    let libc = fake_glibc(
        &work.join(format!("libc-{triplet}-{}", versions.last().unwrap())),
        compiler,
        versions,
    );
    tar(&[
        Entry::Dir("etc/"),
        Entry::File("etc/os-release".into(), b"ID=fake\n".to_vec(), 0o644),
        Entry::Dir("usr/"),
        Entry::Dir("usr/lib/"),
        Entry::Dir(Box::leak(format!("usr/lib/{triplet}/").into_boxed_str())),
        Entry::File(
            format!("usr/lib/{triplet}/libc.so.6"),
            std::fs::read(libc).unwrap(),
            0o755,
        ),
        Entry::Link("lib", "usr/lib"),
        Entry::Dir("bin/"),
        Entry::File("bin/sh".into(), b"#!fake\n".to_vec(), 0o755),
    ])
}

pub struct Layout {
    pub dir: PathBuf,
}

impl Layout {
    pub fn new(dir: &Path) -> Layout {
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(
            dir.join("oci-layout"),
            serde_json::to_vec(&json!({"imageLayoutVersion": "1.0.0"})).unwrap(),
        )
        .unwrap();
        if !dir.join("index.json").exists() {
            std::fs::write(
                dir.join("index.json"),
                serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": []})).unwrap(),
            )
            .unwrap();
        }
        Layout {
            dir: dir.to_path_buf(),
        }
    }

    pub fn put(&self, data: &[u8]) -> (String, u64) {
        let d = sha(data);
        std::fs::write(self.dir.join("blobs/sha256").join(&d[7..]), data).unwrap();
        (d, data.len() as u64)
    }

    pub fn blob(&self, digest: &str) -> Vec<u8> {
        std::fs::read(self.dir.join("blobs/sha256").join(&digest[7..])).unwrap()
    }

    /// Adds an image from uncompressed layer tars (stored gzipped); returns
    /// the manifest descriptor.
    pub fn image(&self, arch: &str, layers: &[Vec<u8>], labels: Value) -> Value {
        let mut descs = Vec::new();
        let mut diff_ids = Vec::new();
        let mut history = Vec::new();
        for l in layers {
            let gz = gzip(l);
            let (d, s) = self.put(&gz);
            descs.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": s}));
            diff_ids.push(sha(l));
            history.push(json!({"created_by": "test layer"}));
        }
        history.push(json!({"created_by": "ENV X=1", "empty_layer": true}));
        let config = json!({
            "architecture": arch, "os": "linux",
            "created": "2026-01-01T00:00:00Z",
            "config": {"Env": ["PATH=/usr/bin:/bin"], "Cmd": ["/bin/sh"], "User": "33", "WorkingDir": "/srv", "Labels": labels},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history,
            "x-unknown-field": {"kept": true},
        });
        let cb = serde_json::to_vec(&config).unwrap();
        let (cd, cs) = self.put(&cb);
        let m = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
            "layers": descs});
        let mb = serde_json::to_vec(&m).unwrap();
        let (md, ms) = self.put(&mb);
        let oci_arch = match arch {
            "x86_64" => "amd64",
            a => a,
        };
        json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
               "platform": {"architecture": oci_arch, "os": "linux"}})
    }

    pub fn index_of(&self, manifests: Vec<Value>) -> Value {
        let idx = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests});
        let b = serde_json::to_vec(&idx).unwrap();
        let (d, s) = self.put(&b);
        json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": d, "size": s})
    }

    pub fn tag(&self, tag: &str, mut desc: Value) {
        desc["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
        let p = self.dir.join("index.json");
        let mut idx: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        let list = idx["manifests"].as_array_mut().unwrap();
        list.retain(|d| d["annotations"]["org.opencontainers.image.ref.name"] != tag);
        list.push(desc);
        std::fs::write(p, serde_json::to_vec(&idx).unwrap()).unwrap();
    }

    pub fn index_json(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.dir.join("index.json")).unwrap()).unwrap()
    }

    pub fn resolve(&self, tag: &str) -> Value {
        let idx = self.index_json();
        let d = idx["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .unwrap_or_else(|| panic!("no tag {tag}"))
            .clone();
        serde_json::from_slice(&self.blob(d["digest"].as_str().unwrap())).unwrap()
    }

    pub fn config_of(&self, manifest: &Value) -> Value {
        serde_json::from_slice(&self.blob(manifest["config"]["digest"].as_str().unwrap())).unwrap()
    }

    /// The files of a gzipped layer: path → content.
    pub fn layer_files(&self, digest: &str) -> std::collections::BTreeMap<String, Vec<u8>> {
        let gz = self.blob(digest);
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(&gz[..]));
        let mut m = std::collections::BTreeMap::new();
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let p = e.path().unwrap().to_string_lossy().into_owned();
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut v).unwrap();
            m.insert(p, v);
        }
        m
    }

    pub fn blob_count(&self) -> usize {
        std::fs::read_dir(self.dir.join("blobs/sha256"))
            .unwrap()
            .count()
    }
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub mod containers;
pub mod mock_registry;

pub fn run(args: &[&str]) -> Run {
    let out = Command::new(bin())
        .args(args)
        .env_remove("LDGUARD_LIB_DIR")
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

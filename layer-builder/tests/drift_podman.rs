//! Drift end to end: the test bookworm image (python3, curl, nginx-light),
//! instrumented by `ldguard-layer` with a policy that sets `"drift": "deny"`
//! in enforce mode, run by podman. Executables the image did not ship —
//! copied, run from memory, modified — are refused with a `drift` event;
//! the image's own programs run as they do in the base image. Also: the
//! real image's setuid files as `--check` lists them for a backstop policy.
//!
//! Needs what tests/podman.rs needs (root, podman + runc, skopeo,
//! debootstrap; scripts/setup). About a minute once the base image is
//! cached (test-images/build.sh): not `#[ignore]`d, so `scripts/test` runs
//! it; alone: `cargo nextest run -p ldguard-layer --test drift_podman`.
//! The library comes from LDGUARD_E2E_LIB_DIR, else `scripts/build-lib --debug`.

mod common;
use common::containers::*;
use common::run;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

fn unique(name: &str) -> String {
    format!("localhost/ldguard-e2e/{name}-{}", std::process::id())
}

/// The bookworm base instrumented with `policy`, loaded into podman.
fn instrumented(tmp: &Path, tag: &str, policy: &Value) -> (String, Images) {
    let base = base_image("bookworm");
    let lib = lib_dir();
    let layout = tmp.join("layout");
    skopeo_copy(
        &format!("containers-storage:{base}"),
        &format!("oci:{}:b", layout.display()),
        &[],
    );
    let file = tmp.join(format!("{tag}.json"));
    std::fs::write(&file, serde_json::to_vec_pretty(policy).unwrap()).unwrap();
    let r = run(&[
        &format!("oci:{}:b", layout.display()),
        &format!("oci:{}:{tag}", layout.display()),
        "--lib-dir",
        lib.to_str().unwrap(),
        "--policy",
        file.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let name = format!("{}:{tag}", unique("drift"));
    skopeo_copy(
        &format!("oci:{}:{tag}", layout.display()),
        &format!("containers-storage:{name}"),
        &[],
    );
    (name.clone(), Images(vec![name]))
}

fn drift_policy(drift: Option<&str>) -> Value {
    let mut p = json!({
        "apiVersion": "ldguard.policy/v1",
        "name": "drift-e2e",
        "mode": "enforce",
        "log": ["deny", "audit"],
    });
    if let Some(d) = drift {
        p["drift"] = json!(d);
    }
    p
}

/// Python probes, mounted read-only at /probe (python reads them: no exec).
const MEMFD_EXEC: &str = r#"
import os, sys
fd = os.memfd_create("ldguard-probe", 0)  # no CLOEXEC: /proc/self/fd/N stays valid
os.write(fd, open("/usr/bin/id", "rb").read())
try:
    if sys.argv[1] == "fexecve":
        os.execve(fd, ["id", "-u"], {})
    else:
        os.execve(f"/proc/self/fd/{fd}", ["id", "-u"], {})
except OSError as e:
    print("denied", e.errno)
"#;

const DLOPEN: &str = r#"
import ctypes, sys
try:
    ctypes.CDLL(sys.argv[1])
    print("loaded")
except OSError as e:
    print("denied", e)
"#;

/// Flips the last byte of a file and gives it back its mtime: same size,
/// same mtime, different content.
const FLIP_LAST_BYTE: &str = r#"
import os, sys
path = sys.argv[1]
st = os.stat(path)
with open(path, "r+b") as f:
    f.seek(-1, 2)
    b = f.read(1)
    f.seek(-1, 2)
    f.write(bytes([b[0] ^ 0xff]))
os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
"#;

fn probes() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    for (name, code) in [
        ("memfd_exec.py", MEMFD_EXEC),
        ("dlopen.py", DLOPEN),
        ("flip_last_byte.py", FLIP_LAST_BYTE),
    ] {
        std::fs::write(dir.path().join(name), code).unwrap();
    }
    let p = dir.path().to_path_buf();
    (dir, p)
}

struct Outcome {
    code: i32,
    /// What the script printed before the event log.
    out: String,
    err: String,
    events: Vec<Value>,
}

/// Runs `script` with sh in a fresh container, then prints the event log.
fn in_container(image: &str, probes: &Path, script: &str) -> Outcome {
    let mut c = cmd("podman");
    c.args([
        "run",
        "--rm",
        "--runtime",
        "runc",
        "--network",
        "none",
        "-v",
        &format!("{}:/probe:ro", probes.display()),
        image,
        "sh",
        "-c",
        &format!(
            "{script}\necho \"exit=$?\"\necho ---events---\ncat /var/log/ldguard/events.jsonl 2>/dev/null || true"
        ),
    ]);
    let o = c.output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    let (out, log) = stdout.split_once("---events---\n").unwrap_or((&stdout, ""));
    Outcome {
        code: o.status.code().unwrap_or(-1),
        out: out.to_string(),
        err: String::from_utf8_lossy(&o.stderr).into_owned(),
        events: log
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect(),
    }
}

impl Outcome {
    fn drift_events(&self) -> Vec<&Value> {
        self.events
            .iter()
            .filter(|e| e["kind"] == "drift")
            .collect()
    }

    /// The one enforced drift deny whose event mentions `needle`.
    fn assert_denied_as_drift(&self, case: &str, needle: &str) {
        let hit = self.drift_events().into_iter().find(|e| {
            e["action"] == "deny" && e["enforced"] == true && e.to_string().contains(needle)
        });
        assert!(
            hit.is_some(),
            "{case}: no enforced drift deny event mentioning {needle:?}\nout: {}\nerr: {}\nevents: {:#?}",
            self.out,
            self.err,
            self.events
        );
    }

    fn assert_no_drift(&self, case: &str) {
        assert!(
            self.drift_events().is_empty(),
            "{case}: unexpected drift events: {:#?}\nout: {}",
            self.drift_events(),
            self.out
        );
    }
}

#[test]
fn copied_memfd_and_modified_executables_are_denied_as_drift_and_the_image_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let (img, _cleanup) = instrumented(tmp.path(), "deny", &drift_policy(Some("deny")));
    let (_probes_dir, probes) = probes();

    // A copy of an image program under a new name.
    let o = in_container(&img, &probes, "cp /usr/bin/id /tmp/x && /tmp/x");
    assert!(
        o.out.contains("exit=126") && !o.out.contains("uid="),
        "copied: {}\n{}",
        o.out,
        o.err
    );
    assert!(o.err.contains("Permission denied"), "{}", o.err);
    o.assert_denied_as_drift("copied", "/tmp/x");

    // The same bytes run from memory, by /proc/self/fd path and by fexecve.
    for how in ["proc-path", "fexecve"] {
        let o = in_container(
            &img,
            &probes,
            &format!("python3 /probe/memfd_exec.py {how}"),
        );
        assert!(
            o.out.starts_with("denied "),
            "memfd {how}: {}\n{}",
            o.out,
            o.err
        );
        o.assert_denied_as_drift(&format!("memfd {how}"), "memfd");
    }

    // A modified binary installed over an image path (one byte appended).
    let o = in_container(
        &img,
        &probes,
        "cp /usr/bin/id /tmp/id && printf 'x' >> /tmp/id && cp /tmp/id /usr/bin/id && /usr/bin/id",
    );
    assert!(
        o.out.contains("exit=126") && !o.out.contains("uid="),
        "modified: {}\n{}",
        o.out,
        o.err
    );
    o.assert_denied_as_drift("modified", "/usr/bin/id");

    // Modified in place with its size and mtime kept: the digest decides.
    let o = in_container(
        &img,
        &probes,
        "python3 /probe/flip_last_byte.py /usr/bin/whoami && whoami",
    );
    assert!(
        o.out.contains("exit=126") && !o.out.contains("root"),
        "flipped: {}\n{}",
        o.out,
        o.err
    );
    o.assert_denied_as_drift("flipped in place", "/usr/bin/whoami");

    // An identical copy reinstalled over the image path is still the
    // image's program (new mtime and ctime, same digest).
    let o = in_container(
        &img,
        &probes,
        "cp /usr/bin/id /tmp/id && cp /tmp/id /usr/bin/id && /usr/bin/id -u",
    );
    assert!(
        o.out.starts_with("0\nexit=0"),
        "reinstalled: {}\n{}",
        o.out,
        o.err
    );
    o.assert_no_drift("reinstalled identical copy");

    // dlopen: the image's libz loads; a copy of it elsewhere is drift.
    let o = in_container(
        &img,
        &probes,
        "python3 /probe/dlopen.py libz.so.1; cp /usr/lib/x86_64-linux-gnu/libz.so.1 /tmp/libz.so.1 && python3 /probe/dlopen.py /tmp/libz.so.1",
    );
    let lines: Vec<&str> = o.out.lines().collect();
    assert_eq!(lines.first(), Some(&"loaded"), "{}\n{}", o.out, o.err);
    assert!(
        lines.get(1).is_some_and(|l| l.starts_with("denied")),
        "dlopen of a copied library: {}\n{}",
        o.out,
        o.err
    );
    o.assert_denied_as_drift("dlopen copy", "/tmp/libz.so.1");

    // The image's own programs run as in the base image, with no drift.
    let base = base_image("bookworm");
    for script in [
        "echo hello; id -u; ls / | head -5; cat /etc/debian_version; sh -c 'echo inner'",
        "python3 -c \"import os, sys, json, ssl, sqlite3; print(sys.version_info[:2], json.dumps({'a': 1}))\"",
        "nginx && for i in 1 2 3 4 5 6 7 8 9 10; do curl -sf http://127.0.0.1/ && break; sleep 0.3; done | head -3; nginx -s quit",
    ] {
        let b = in_container(&base, &probes, script);
        let l = in_container(&img, &probes, script);
        assert_eq!(b.code, 0, "base {script}: {}", b.err);
        assert!(b.out.contains("exit=0"), "base {script}: {}", b.out);
        assert_eq!(l.out, b.out, "{script}: instrumented differs from base\n{}", l.err);
        l.assert_no_drift(script);
    }
}

#[test]
fn without_drift_in_the_policy_the_same_programs_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (img, _cleanup) = instrumented(tmp.path(), "nodrift", &drift_policy(None));
    let (_probes_dir, probes) = probes();
    let o = in_container(&img, &probes, "cp /usr/bin/id /tmp/x && /tmp/x -u");
    assert!(
        o.out.starts_with("0\nexit=0"),
        "copied: {}\n{}",
        o.out,
        o.err
    );
    let o = in_container(&img, &probes, "python3 /probe/memfd_exec.py fexecve");
    assert_eq!(
        o.out.lines().next(),
        Some("0"),
        "memfd: {}\n{}",
        o.out,
        o.err
    );
    let o = in_container(
        &img,
        &probes,
        "cp /usr/lib/x86_64-linux-gnu/libz.so.1 /tmp/libz.so.1 && python3 /probe/dlopen.py /tmp/libz.so.1",
    );
    assert!(
        o.out.starts_with("loaded\n"),
        "dlopen: {}\n{}",
        o.out,
        o.err
    );
    o.assert_no_drift("no drift field");
}

#[test]
fn audit_drift_reports_and_lets_the_copy_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (img, _cleanup) = instrumented(tmp.path(), "audit", &drift_policy(Some("audit")));
    let (_probes_dir, probes) = probes();
    let o = in_container(&img, &probes, "cp /usr/bin/id /tmp/x && /tmp/x -u");
    assert!(
        o.out.starts_with("0\nexit=0"),
        "audit: {}\n{}",
        o.out,
        o.err
    );
    let e = o
        .drift_events()
        .into_iter()
        .find(|e| e.to_string().contains("/tmp/x"))
        .unwrap_or_else(|| panic!("no drift event for /tmp/x: {:#?}", o.events))
        .clone();
    assert_eq!(e["action"], "audit", "{e:#}");
}

/// `--check` of the real image with a backstop policy lists exactly the
/// files `find -perm /6000` finds in a container of it.
#[test]
fn check_lists_the_bookworm_setuid_files_find_sees() {
    let base = base_image("bookworm");
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    skopeo_copy(
        &format!("containers-storage:{base}"),
        &format!("oci:{}:b", layout.display()),
        &[],
    );
    let r = run(&[
        "--check",
        &format!("oci:{}:b", layout.display()),
        "--lib-dir",
        lib_dir().to_str().unwrap(),
        "--policy",
        repo()
            .join("policies/kernel-backstop.json")
            .to_str()
            .unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let report: Value = serde_json::from_str(&r.stdout).unwrap();
    let mut listed: Vec<String> = report["platforms"][0]["backstop"]["privilegedFiles"]
        .as_array()
        .unwrap_or_else(|| panic!("{report:#}"))
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect();
    listed.sort();
    let (code, out, err) = podman_run(
        &base,
        &[
            "find", "/", "-xdev", "-type", "f", "(", "-perm", "-4000", "-perm", "/111", ")", "-o",
            "-type", "f", "-perm", "-2010",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let mut found: Vec<String> = out.lines().map(str::to_string).collect();
    found.sort();
    assert!(found.contains(&"/usr/bin/passwd".to_string()), "{found:?}");
    assert_eq!(listed, found);
}

//! Drift: with the policy's `drift` action set, an exec of a file the
//! image's manifest does not list, or that changed since, is denied (or
//! reported) with one event of kind `drift`; listed files run unchanged.
//!
//! The manifest is the one the layer builder writes (`ldguard_layer::payload::drift`)
//! for a scratch tree, re-rooted at the tree's real location so that the
//! host's paths match it, and handed to the library with
//! `LDGUARD_DRIFT_MANIFEST` (honoured where environment overrides are, as
//! on this test machine with no `/etc/ldguard/config.json`).

mod common;

use common::{c_program, policy, race_counts, scratch, Outcome, Run};
use ldguard_layer::inspect::rootfs::{RootFs, ScanDepth};
use serde_json::json;
use std::path::{Path, PathBuf};

struct Tree {
    d: PathBuf,
    manifest: PathBuf,
}

impl Tree {
    /// `usr/bin/{id,true,idmod}` and `usr/lib/libz.so.1` copied from the
    /// host, then the manifest.
    fn new(name: &str) -> Tree {
        Tree::with(name, &[])
    }

    /// [`Tree::new`] with `extra` files (from, to) copied in before the
    /// manifest is made.
    fn with(name: &str, extra: &[(&str, &str)]) -> Tree {
        let d = scratch(name);
        std::fs::create_dir_all(d.join("usr/bin")).unwrap();
        std::fs::create_dir_all(d.join("usr/lib")).unwrap();
        for (from, to) in [
            ("/usr/bin/id", "usr/bin/id"),
            ("/usr/bin/true", "usr/bin/true"),
            ("/usr/bin/id", "usr/bin/idmod"),
            ("/usr/lib/x86_64-linux-gnu/libz.so.1", "usr/lib/libz.so.1"),
        ]
        .iter()
        .chain(extra)
        {
            std::fs::copy(from, d.join(to)).unwrap();
        }
        let fs = RootFs::from_dir(&d, ScanDepth::Loader).unwrap();
        let built = ldguard_layer::payload::drift::manifest(&fs);
        let m = ldguard_drift::Manifest::new(&built).unwrap();
        let rows: Vec<(Vec<u8>, ldguard_drift::Entry)> = m
            .iter()
            .map(|(p, e)| {
                let mut full = d.as_os_str().as_encoded_bytes().to_vec();
                full.extend_from_slice(p);
                (full, e)
            })
            .collect();
        assert_eq!(
            rows.len(),
            4 + extra.len(),
            "the builder lists the programs and the library"
        );
        let manifest = d.with_extension("manifest");
        std::fs::write(
            &manifest,
            ldguard_drift::encode(rows.iter().map(|(p, e)| (p.as_slice(), *e))),
        )
        .unwrap();
        Tree { d, manifest }
    }

    fn p(&self, s: &str) -> String {
        self.d.join(s).display().to_string()
    }

    fn run(&self, mode: &str, drift: &str, manifest: &Path, argv: &[&str]) -> Outcome {
        // A rule that matches nothing here: `drift` alone decides.
        let rules = json!([{"name": "elsewhere", "kind": "file", "path": ["/nonexistent-ldguard/**"], "action": "deny"}]);
        self.run_rules(mode, drift, manifest, rules, argv)
    }

    fn run_rules(
        &self,
        mode: &str,
        drift: &str,
        manifest: &Path,
        rules: serde_json::Value,
        argv: &[&str],
    ) -> Outcome {
        let mut p = policy(mode, &["deny", "audit"], rules);
        p["drift"] = json!(drift);
        let run_dir = self.d.with_extension("run");
        std::fs::create_dir_all(&run_dir).unwrap();
        Run::new(&run_dir, Some(p))
            .cwd(&self.d)
            .env("LC_ALL", "C")
            .env("LDGUARD_DRIFT_MANIFEST", &manifest.display().to_string())
            .cmd(argv)
    }

    fn enforce(&self, argv: &[&str]) -> Outcome {
        self.run("enforce", "deny", &self.manifest, argv)
    }
}

fn drift_events(out: &Outcome) -> Vec<&ldguard_events::Event> {
    out.events.iter().filter(|e| e.kind == "drift").collect()
}

/// Exactly one drift event, denied and enforced as `enforced` says, for
/// `call` on `target`; returns its message.
fn one_drift(out: &Outcome, call: &str, target: &str, enforced: bool) -> String {
    let d = drift_events(out);
    assert_eq!(
        d.len(),
        1,
        "expected one drift event: {:#?}\nstdout {}\nstderr {}",
        out.events,
        out.stdout,
        out.stderr
    );
    let e = d[0];
    assert_eq!(
        (e.call.as_str(), e.action.as_str(), e.enforced),
        (call, "deny", enforced),
        "{e:#?}"
    );
    assert_eq!(e.target.as_deref(), Some(target), "{e:#?}");
    assert_eq!(e.errno, enforced.then_some(libc::EACCES), "{e:#?}");
    e.message.clone()
}

#[test]
fn listed_programs_run_unchanged() {
    let t = Tree::new("drift-listed");
    let cmd = format!(
        "{} -u && {} && echo ran",
        t.p("usr/bin/id"),
        t.p("usr/bin/true")
    );
    let argv = ["/bin/sh", "-c", cmd.as_str()];
    let base = Run::new(&t.d, None).cmd(&argv);
    let out = t.enforce(&argv);
    assert_eq!((out.code(), &out.stdout), (base.code(), &base.stdout));
    assert!(out.stdout.ends_with("ran\n"), "{}", out.stdout);
    assert!(drift_events(&out).is_empty(), "{:#?}", out.events);
}

#[test]
fn a_copied_binary_is_denied_as_drift() {
    let t = Tree::new("drift-copy");
    std::fs::copy("/usr/bin/id", t.d.join("x")).unwrap();
    let x = t.p("x");
    let out = t.enforce(&["/bin/sh", "-c", &x]);
    assert_eq!(out.code(), 126, "{}", out.stderr);
    assert!(out.stderr.contains("Permission denied"), "{}", out.stderr);
    let msg = one_drift(&out, "execve", &x, true);
    assert!(msg.contains("is not part of the image"), "{msg}");

    // Permissive: it runs, and the same event says it was not enforced.
    let out = t.run("permissive", "deny", &t.manifest, &["/bin/sh", "-c", &x]);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    one_drift(&out, "execve", &x, false);

    // `audit`: it runs and is reported.
    let out = t.run("enforce", "audit", &t.manifest, &["/bin/sh", "-c", &x]);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(drift_events(&out).len(), 1, "{:#?}", out.events);
    assert_eq!(drift_events(&out)[0].action, "audit");
}

#[test]
fn a_modified_binary_is_denied_as_drift() {
    let t = Tree::new("drift-modified");
    let path = t.d.join("usr/bin/idmod");
    let before = std::fs::metadata(&path).unwrap();
    let mut data = std::fs::read(&path).unwrap();
    // A byte of the section header table: the program still runs, it is
    // just not the file the image shipped.
    let last = data.len() - 1;
    data[last] ^= 0x01;
    std::fs::write(&path, &data).unwrap();
    let f = std::fs::File::options().write(true).open(&path).unwrap();
    f.set_modified(before.modified().unwrap()).unwrap();
    drop(f);
    let target = t.p("usr/bin/idmod");
    let out = t.enforce(&["/bin/sh", "-c", &target]);
    assert_eq!(out.code(), 126, "{}", out.stderr);
    let msg = one_drift(&out, "execve", &target, true);
    assert!(
        msg.contains("differs from the file the image shipped"),
        "{msg}"
    );
}

/// By its `/proc/self/fd/N` path, with an exec rule that looks at paths
/// (so the exec holds what it decides: the memfd's kernel path names
/// nothing in a directory, and the memfd itself is run and judged).
#[test]
fn a_memfd_exec_by_path_is_denied_as_drift() {
    let t = Tree::new("drift-memfd-path");
    let script = format!(
        "import os\n\
         fd = os.memfd_create('x')\n\
         os.write(fd, open('{}', 'rb').read())\n\
         try:\n    os.execv(f'/proc/self/fd/{{fd}}', ['x'])\n\
         except OSError as e:\n    print('error:', e.strerror)\n",
        t.p("usr/bin/true")
    );
    let rules =
        json!([{"name": "no-false", "kind": "exec", "path": ["/usr/bin/false"], "action": "deny"}]);
    let argv = ["/usr/bin/python3", "-I", "-S", "-c", &script];
    let out = t.run_rules("enforce", "deny", &t.manifest, rules, &argv);
    refused_as_memfd_drift(&out, "execv");
}

#[test]
fn a_memfd_fexecve_is_denied_as_drift() {
    let t = Tree::new("drift-memfd");
    let script = format!(
        "import os\n\
         fd = os.memfd_create('x')\n\
         os.write(fd, open('{}', 'rb').read())\n\
         try:\n    os.execve(fd, ['x'], {{}})\n\
         except OSError as e:\n    print('error:', e.strerror)\n",
        t.p("usr/bin/true")
    );
    let out = t.enforce(&["/usr/bin/python3", "-I", "-S", "-c", &script]);
    refused_as_memfd_drift(&out, "fexecve");
}

/// The python script's exec was refused (`EACCES`), with one enforced
/// drift event for `call` that names the memfd.
fn refused_as_memfd_drift(out: &Outcome, call: &str) {
    assert!(
        out.stdout.contains("error: Permission denied"),
        "{} {}",
        out.stdout,
        out.stderr
    );
    let d = drift_events(out);
    assert_eq!(d.len(), 1, "{:#?}", out.events);
    assert_eq!((d[0].call.as_str(), d[0].enforced), (call, true));
    assert!(d[0].message.contains("memfd"), "{}", d[0].message);
}

#[test]
fn without_a_manifest_drift_says_once_why_it_is_inert() {
    let t = Tree::new("drift-none");
    std::fs::copy("/usr/bin/id", t.d.join("x")).unwrap();
    let missing = t.d.join("no-such.manifest");
    // One process, two execs: sh runs the first in a child, then execs the last itself.
    let cmd = format!("{}; exec {} -u", t.p("x"), t.p("x"));
    let out = t.run("enforce", "deny", &missing, &["/bin/sh", "-c", &cmd]);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(drift_events(&out).is_empty(), "{:#?}", out.events);
    let said: Vec<_> = out
        .events
        .iter()
        .filter(|e| e.kind == "status" && e.message.contains("drift"))
        .collect();
    // The child that ran `x` and the shell itself: once each.
    assert_eq!(said.len(), 2, "{:#?}", out.events);
    assert!(
        said[0].message.contains("has no drift manifest"),
        "{}",
        said[0].message
    );
    assert_ne!(said[0].pid, said[1].pid);
}

#[test]
fn dlopen_of_a_library_the_image_did_not_ship_is_denied() {
    let t = Tree::new("drift-dlopen");
    let load = common::c_program("load", &["-ldl"]);
    let load = load.to_str().unwrap();
    std::fs::create_dir_all(t.d.join("drop")).unwrap();
    std::fs::copy(
        "/usr/lib/x86_64-linux-gnu/libz.so.1",
        t.d.join("drop/libz.so.1"),
    )
    .unwrap();

    let listed = t.enforce(&[load, &t.p("usr/lib/libz.so.1")]);
    assert_eq!(
        (listed.code(), listed.stdout.as_str()),
        (0, "loaded\n"),
        "{}",
        listed.stderr
    );
    assert!(drift_events(&listed).is_empty(), "{:#?}", listed.events);

    let dropped = t.p("drop/libz.so.1");
    let out = t.enforce(&[load, &dropped]);
    assert_eq!(out.code(), 1, "{} {}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("denied by the ldguard policy"),
        "{}",
        out.stdout
    );
    one_drift(&out, "dlopen", &dropped, true);

    // A bare name found along LD_LIBRARY_PATH is the dropped file too.
    let run_dir = t.d.with_extension("run");
    let mut p = policy(
        "enforce",
        &["deny"],
        json!([{"name": "elsewhere", "kind": "file", "path": ["/nonexistent-ldguard/**"], "action": "deny"}]),
    );
    p["drift"] = json!("deny");
    let out = Run::new(&run_dir, Some(p))
        .env("LDGUARD_DRIFT_MANIFEST", &t.manifest.display().to_string())
        .env("LD_LIBRARY_PATH", &t.p("drop"))
        .cmd(&[load, "libz.so.1"]);
    assert_eq!(out.code(), 1, "{} {}", out.stdout, out.stderr);
    one_drift(&out, "dlopen", &dropped, true);
}

/// `usr/bin/sw`, listed in the manifest as a copy of `true`, is renamed
/// over again and again, flipping between that copy (`ok`) and a copy of
/// `false` (`bad`: the same name, other contents: drift), while `lnk`, a
/// link to it, is run 3,000 times. Drift must be decided on the file that
/// runs: the library holds the file itself where it could be renamed over.
#[test]
fn a_binary_renamed_over_a_listed_one_during_the_exec_is_drift() {
    let t = Tree::with(
        "drift-renamed",
        &[
            ("/usr/bin/true", "usr/bin/sw"),
            ("/usr/bin/true", "usr/bin/ok"),
        ],
    );
    std::fs::copy("/usr/bin/false", t.d.join("usr/bin/bad")).unwrap();
    let escape = c_program("escape", &["-ldl", "-lpthread"])
        .display()
        .to_string();
    let out = t.enforce(&[
        &escape,
        "race-exec",
        "execv-renamed",
        &t.p("usr/bin"),
        &t.p("usr/bin/ok"),
        &t.p("usr/bin/bad"),
        "3000",
    ]);
    let [ok, bad_ran, refused, other] = race_counts(&out, "drift race", 4)[..] else {
        unreachable!()
    };
    assert_eq!(bad_ran, 0, "the drifted program ran: {}", out.stdout);
    assert!(ok > 0 && refused > 0, "{}", out.stdout);
    assert_eq!(other, 0, "{}", out.stdout);
    let drifts = drift_events(&out);
    assert!(drifts.len() as u64 <= refused, "{}", out.stdout);
    assert!(!drifts.is_empty(), "{}", out.stdout);
    for e in drifts {
        assert_eq!(
            (e.call.as_str(), e.action.as_str()),
            ("execv", "deny"),
            "{e:#?}"
        );
    }
}

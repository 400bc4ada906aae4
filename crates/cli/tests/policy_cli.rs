//! `ldguard policy validate|explain|test`, run as the real binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn ldguard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ldguard"))
        .args(args)
        .output()
        .expect("run ldguard")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Writes `content` to a fresh file under the test's temp directory.
fn write(name: &str, content: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("policy_cli");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

const WEB: &str = r#"{
  "apiVersion": "ldguard.policy/v1",
  "name": "web",
  "description": "test policy",
  "ignore": ["opendir"],
  "rules": [
    {"name": "no-shell-from-nginx", "kind": "exec", "program": ["/usr/sbin/nginx"],
     "path": ["/bin/sh", "/usr/bin/*sh"], "action": "deny", "severity": "high",
     "description": "nginx never needs a shell"},
    {"name": "etc-read-only", "kind": "file", "access": ["write"], "path": ["/etc/**"], "action": "deny"},
    {"name": "cloud-metadata", "kind": "network", "direction": "outbound",
     "address": ["169.254.169.254/32"], "port": ["80"], "action": "deny", "errno": "ECONNREFUSED"},
    {"name": "no-debuggers", "kind": "syscall", "call": ["ptrace"], "action": "kill"}
  ]
}"#;

#[test]
fn validate_accepts_a_good_policy() {
    let p = write("good.json", WEB);
    let out = ldguard(&["policy", "validate", p.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("ok (policy `web`, 4 rules)"));
}

#[test]
fn validate_reports_each_problem_with_position_and_hint() {
    let bad = WEB
        .replace("\"access\"", "\"acess\"")
        .replace("\"80\"", "\"80-9x\"");
    let p = write("bad.json", &bad);
    let good = write("good2.json", WEB);
    let out = ldguard(&[
        "policy",
        "validate",
        good.to_str().unwrap(),
        p.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    let path = p.display().to_string();
    assert!(
        err.contains(&format!("{path}:10:47: unknown field `acess` in rule")),
        "{err}"
    );
    assert!(err.contains("= hint: did you mean `access`?"), "{err}");
    assert!(
        err.contains(&format!(
            "{path}:12:54: bad port range `80-9x`: `9x` is not a port number"
        )),
        "{err}"
    );
    assert!(err.contains("^^^^^^^"), "{err}");
    assert!(err.contains(&format!("{path}: 2 errors")), "{err}");
    // The good file is still reported as good.
    assert!(text(&out.stdout).contains("good2.json: ok"));
}

#[test]
fn validate_reports_unreadable_files() {
    let out = ldguard(&["policy", "validate", "/nonexistent/policy.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("/nonexistent/policy.json: cannot read policy"));
}

#[test]
fn explain_names_the_deciding_rule() {
    let p = write("explain.json", WEB);
    let p = p.to_str().unwrap();
    let out = ldguard(&[
        "policy",
        "explain",
        p,
        "--kind",
        "exec",
        "--program",
        "/usr/sbin/nginx",
        "--path",
        "/bin/sh",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(
        s.contains("decision: deny (enforced: the call fails)"),
        "{s}"
    );
    assert!(
        s.contains("rule:     `no-shell-from-nginx` (rule #1 of policy `web`)"),
        "{s}"
    );
    assert!(s.contains("nginx never needs a shell"), "{s}");
    assert!(
        s.contains("severity: high")
            && s.contains("errno:    EACCES (13)")
            && s.contains("logged:   yes"),
        "{s}"
    );

    // Relative path, resolved against --cwd, through a symlink target.
    let out = ldguard(&[
        "policy",
        "explain",
        p,
        "--kind",
        "exec",
        "--program",
        "/usr/sbin/nginx",
        "--cwd",
        "/tmp",
        "--path",
        "x",
        "--resolved-path",
        "/usr/bin/dash",
    ]);
    assert!(text(&out.stdout).contains("`no-shell-from-nginx`"));

    let out = ldguard(&[
        "policy",
        "explain",
        p,
        "--kind",
        "exec",
        "--program",
        "/usr/bin/python3",
        "--path",
        "/bin/sh",
    ]);
    let s = text(&out.stdout);
    assert!(
        s.contains("decision: allow")
            && s.contains("none matched; `defaults.exec` of policy `web` decides"),
        "{s}"
    );
    assert!(s.contains("logged:   no (`allow` is not in `log`)"), "{s}");
}

#[test]
fn explain_file_network_and_syscall_requests() {
    let p = write("explain2.json", WEB);
    let p = p.to_str().unwrap();
    let out = ldguard(&[
        "policy",
        "explain",
        p,
        "--kind",
        "file",
        "--program",
        "/bin/sh",
        "--cwd",
        "/etc/ssl",
        "--path",
        "../passwd",
        "--access",
        "write",
    ]);
    let s = text(&out.stdout);
    assert!(
        s.contains("`etc-read-only`") && s.contains("path=/etc/passwd"),
        "{s}"
    );
    let out = ldguard(&[
        "policy",
        "explain",
        p,
        "--kind",
        "file",
        "--call",
        "opendir",
        "--program",
        "/bin/sh",
        "--path",
        "/etc",
        "--access",
        "write",
    ]);
    assert!(text(&out.stdout).contains("logged:   no (`opendir` is in `ignore`)"));
    let out = ldguard(&[
        "policy",
        "explain",
        p,
        "--kind",
        "network",
        "--program",
        "/usr/bin/curl",
        "--direction",
        "outbound",
        "--address",
        "::ffff:169.254.169.254",
        "--port",
        "80",
        "--protocol",
        "tcp",
    ]);
    let s = text(&out.stdout);
    assert!(
        s.contains("`cloud-metadata`") && s.contains("errno:    ECONNREFUSED (111)"),
        "{s}"
    );
    let out = ldguard(&[
        "policy",
        "explain",
        p,
        "--kind",
        "syscall",
        "--call",
        "ptrace",
        "--program",
        "/usr/bin/gdb",
    ]);
    let s = text(&out.stdout);
    assert!(
        s.contains("decision: kill") && s.contains("`no-debuggers`"),
        "{s}"
    );
}

#[test]
fn explain_rejects_bad_requests() {
    let p = write("explain3.json", WEB);
    let out = ldguard(&[
        "policy",
        "explain",
        p.to_str().unwrap(),
        "--kind",
        "exe",
        "--program",
        "/bin/sh",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr)
        .contains("unknown kind `exe` (expected one of file, exec, network, syscall)"));
    let out = ldguard(&[
        "policy",
        "explain",
        p.to_str().unwrap(),
        "--kind",
        "syscall",
        "--program",
        "/bin/sh",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let out = ldguard(&[
        "policy",
        "explain",
        p.to_str().unwrap(),
        "--kind",
        "file",
        "--call",
        "ptrace",
        "--program",
        "/bin/sh",
    ]);
    assert!(text(&out.stderr).contains("call `ptrace` is a syscall call, not file"));
    // An invalid policy is reported, not explained.
    let bad = write(
        "explain-bad.json",
        "{\"apiVersion\": \"v2\", \"name\": \"x\"}",
    );
    let out = ldguard(&[
        "policy",
        "explain",
        bad.to_str().unwrap(),
        "--kind",
        "exec",
        "--program",
        "/bin/sh",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains(":1:16: unsupported apiVersion `v2`"));
}

#[test]
fn test_passes_matching_cases() {
    let p = write("cases-policy.json", WEB);
    let cases = write(
        "ok.jsonl",
        concat!(
            "# comments and blank lines are skipped\n\n",
            "{\"kind\": \"exec\", \"program\": \"/usr/sbin/nginx\", \"path\": \"/bin/sh\", \"expect\": \"deny\", \"rule\": \"no-shell-from-nginx\", \"log\": true}\n",
            "{\"kind\": \"exec\", \"program\": \"/usr/bin/python3\", \"path\": \"/bin/sh\", \"expect\": \"allow\", \"rule\": null}\n",
            "{\"kind\": \"syscall\", \"call\": \"ptrace\", \"program\": \"/usr/bin/gdb\", \"expect\": \"kill\"}\n",
        ),
    );
    let out = ldguard(&[
        "policy",
        "test",
        p.to_str().unwrap(),
        cases.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("all 3 cases pass"));
}

#[test]
fn test_shows_a_readable_diff_on_mismatch() {
    let p = write("cases-policy2.json", WEB);
    let cases = write(
        "bad.jsonl",
        concat!(
            "{\"kind\": \"exec\", \"program\": \"/usr/sbin/nginx\", \"path\": \"/bin/sh\", \"expect\": \"deny\"}\n",
            "{\"kind\": \"exec\", \"program\": \"/usr/sbin/nginx\", \"path\": \"/bin/ls\", \"expect\": \"deny\", \"rule\": \"no-shell-from-nginx\"}\n",
            "{\"kind\": \"exec\", \"program\": \"/usr/sbin/nginx\", \"pth\": \"/bin/ls\", \"expect\": \"deny\"}\n",
            "not json\n",
            "{\"kind\": \"file\", \"program\": \"/bin/sh\", \"path\": \"/etc/x\", \"access\": \"write\", \"expect\": \"deny\", \"log\": false}\n",
        ),
    );
    let out = ldguard(&[
        "policy",
        "test",
        p.to_str().unwrap(),
        cases.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let s = text(&out.stdout);
    let c = cases.display().to_string();
    assert!(
        s.contains(&format!(
            "FAIL {c}:2: exec program=/usr/sbin/nginx path=/bin/ls"
        )),
        "{s}"
    );
    assert!(
        s.contains("action: expected deny, got allow (by defaults.exec)"),
        "{s}"
    );
    assert!(
        s.contains("rule: expected rule `no-shell-from-nginx`, got defaults.exec"),
        "{s}"
    );
    assert!(
        s.contains(&format!("ERROR {c}:3: bad request: unknown field `pth`")),
        "{s}"
    );
    assert!(
        s.contains(&format!("ERROR {c}:4: not a JSON object")),
        "{s}"
    );
    assert!(
        s.contains(&format!("FAIL {c}:5:")) && s.contains("log: expected false, got true"),
        "{s}"
    );
    assert!(!s.contains(&format!("{c}:1:")), "line 1 passes: {s}");
    assert!(s.contains("2 of 5 cases fail, 2 cannot run"), "{s}");
}

#[test]
fn every_example_policy_validates_and_passes_its_cases() {
    let dir = repo().join("policies");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let out = ldguard(&["policy", "validate", path.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            text(&out.stderr)
        );
        let cases = path.with_extension("cases.jsonl");
        assert!(cases.exists(), "{} has no cases file", path.display());
        let out = ldguard(&[
            "policy",
            "test",
            path.to_str().unwrap(),
            cases.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", text(&out.stdout));
        checked += 1;
    }
    assert!(
        checked >= 6,
        "only {checked} policies found in {}",
        dir.display()
    );
}

#[test]
fn validate_warns_about_shadowed_rules_and_speaks_json() {
    let shadowed = write(
        "shadowed.json",
        r#"{"apiVersion": "ldguard.policy/v1", "name": "s", "rules": [
  {"name": "etc", "kind": "file", "access": ["write"], "path": ["/etc/**"], "action": "deny"},
  {"name": "hosts", "kind": "file", "access": ["write"], "path": ["/etc/hosts"], "action": "allow"}
]}"#,
    );
    let p = shadowed.to_str().unwrap();
    let out = ldguard(&["policy", "validate", p]);
    assert!(out.status.success(), "a warning is not an error");
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "{p}:3:3: warning: rule `hosts` is never reached: rule `etc` (line 2)"
        )),
        "{err}"
    );
    assert!(err.contains("move it above `etc`"), "{err}");
    assert!(text(&out.stdout).contains("1 warning"));

    let bad = write(
        "bad-for-json.json",
        r#"{"apiVersion": "ldguard.policy/v1", "nme": "x"}"#,
    );
    let out = ldguard(&[
        "policy",
        "validate",
        p,
        bad.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["valid"], true);
    assert_eq!(v[0]["rules"], 2);
    assert_eq!(v[0]["diagnostics"][0]["level"], "warning");
    assert_eq!(v[0]["diagnostics"][0]["line"], 3);
    assert_eq!(v[1]["valid"], false);
    assert_eq!(v[1]["diagnostics"][0]["level"], "error");
    let unknown = &v[1]["diagnostics"][1];
    assert_eq!(unknown["message"], "unknown field `nme` in the policy");
    assert_eq!((&unknown["line"], &unknown["col"]), (&1.into(), &37.into()));
    assert_eq!(unknown["hint"], "did you mean `name`?");
}

#[test]
fn explain_and_test_speak_json() {
    let policy = write("web-json.json", WEB);
    let p = policy.to_str().unwrap();
    let out = ldguard(&[
        "policy",
        "explain",
        p,
        "--kind",
        "exec",
        "--program",
        "/usr/sbin/nginx",
        "--path",
        "/bin/sh",
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["action"], "deny");
    assert_eq!(v["enforced"], true);
    assert_eq!(v["rule"], "no-shell-from-nginx");
    assert_eq!(v["errno"], "EACCES");
    let out = ldguard(&[
        "policy",
        "explain",
        p,
        "--kind",
        "exec",
        "--program",
        "/usr/bin/env",
        "--path",
        "/bin/sh",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["rule"], serde_json::Value::Null, "a default decided");

    let cases = write(
        "web-json.cases.jsonl",
        "{\"kind\":\"exec\",\"program\":\"/usr/sbin/nginx\",\"path\":\"/bin/sh\",\"expect\":\"deny\"}\n\
         {\"kind\":\"exec\",\"program\":\"/usr/sbin/nginx\",\"path\":\"/bin/sh\",\"expect\":\"allow\"}\n\
         {\"knd\":\"exec\",\"expect\":\"allow\"}\n",
    );
    let out = ldguard(&[
        "policy",
        "test",
        p,
        cases.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((&v["total"], &v["passed"]), (&3.into(), &1.into()));
    assert_eq!(v["failed"][0]["line"], 2);
    assert_eq!(v["broken"][0]["line"], 3);
}

const WEB_YAML: &str = "\
# the WEB policy above, in YAML
apiVersion: ldguard.policy/v1
name: web
description: test policy
ignore: [opendir]
rules:
  - name: no-shell-from-nginx
    kind: exec
    program: [/usr/sbin/nginx]
    path: [/bin/sh, /usr/bin/*sh]
    action: deny
    severity: high
    description: nginx never needs a shell
  - name: etc-read-only
    kind: file
    access: [write]
    path: [/etc/**]
    action: deny
  - name: cloud-metadata
    kind: network
    direction: outbound
    address: [169.254.169.254/32]
    port: [80]
    action: deny
    errno: ECONNREFUSED
  - name: no-debuggers
    kind: syscall
    call: [ptrace]
    action: kill
";

#[test]
fn yaml_policies_validate_explain_and_test_like_json() {
    for name in ["web.yaml", "web.yml"] {
        let p = write(name, WEB_YAML);
        let out = ldguard(&["policy", "validate", p.to_str().unwrap()]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(text(&out.stdout).contains("ok (policy `web`, 4 rules)"));
    }
    let p = write("web2.yaml", WEB_YAML);
    let p = p.to_str().unwrap();
    let out = ldguard(&[
        "policy",
        "explain",
        p,
        "--kind",
        "exec",
        "--program",
        "/usr/sbin/nginx",
        "--path",
        "/bin/sh",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(
        s.contains("rule:     `no-shell-from-nginx` (rule #1 of policy `web`)"),
        "{s}"
    );
    let cases = write(
        "yaml-cases.jsonl",
        "{\"kind\": \"network\", \"program\": \"/bin/curl\", \"address\": \"169.254.169.254\", \"port\": 80, \"expect\": \"deny\", \"rule\": \"cloud-metadata\"}\n",
    );
    let out = ldguard(&["policy", "test", p, cases.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    // The four mistakes a YAML hand makes, each at its place with a hint.
    let bad = WEB_YAML
        .replace("    severity: high\n", "    severity: [high]\n")
        .replace("    access: [write]\n", "    acess: [write]\n")
        .replace("name: web\n", "name: web\nname: web2\n");
    let b = write("bad.yaml", &bad);
    let out = ldguard(&["policy", "validate", b.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let e = text(&out.stderr);
    for want in [
        "bad.yaml:4:1: duplicate field `name` in the policy",
        "bad.yaml:13:15: `severity` must be a string, found an array",
        "bad.yaml:17:5: unknown field `acess` in rule",
        "= hint: did you mean `access`?",
        "13 |     severity: [high]",
    ] {
        assert!(e.contains(want), "missing {want:?} in:\n{e}");
    }
    let tab = write(
        "tab.yaml",
        &WEB_YAML.replace("    kind: file\n", "\tkind: file\n"),
    );
    let out = ldguard(&[
        "policy",
        "validate",
        "--format",
        "json",
        tab.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let d = &v[0]["diagnostics"][0];
    assert_eq!(
        (d["line"].as_u64(), d["col"].as_u64()),
        (Some(15), Some(1)),
        "{v}"
    );
    assert!(d["hint"].as_str().unwrap().contains("spaces"), "{v}");
    // A YAML text in a `.json` file says what it is.
    let j = write("yaml-in.json", WEB_YAML);
    let out = ldguard(&["policy", "validate", j.to_str().unwrap()]);
    assert!(
        text(&out.stderr).contains("this looks like YAML"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn lint_fails_on_rules_that_never_decide_anything() {
    let bad = write(
        "lint.yaml",
        "\
apiVersion: ldguard.policy/v1
name: lint
rules:
  - {name: bins, kind: exec, path: [/usr/bin/*], action: deny}
  - {name: python, kind: exec, path: [/usr/bin/python3], action: allow}
  - {name: dns-in, kind: network, direction: inbound, protocol: [udp], action: deny}
  - {name: shell, kind: exec, program: [/bin/bash], path: [/tmp/x], action: deny}
",
    );
    let out = ldguard(&["policy", "lint", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let e = text(&out.stderr);
    for want in [
        "lint.yaml:5:5: warning: rule `python` is never reached: rule `bins` (line 4)",
        "lint.yaml:6:65: warning: rule `dns-in` never matches",
        "lint.yaml:7:41: warning: rule `shell`: program `/bin/bash` never matches on merged-/usr systems",
        "= hint: the program is matched as its resolved executable: list `/usr/bin/bash` too",
    ] {
        assert!(e.contains(want), "missing {want:?} in:\n{e}");
    }
    // validate accepts the same file (warnings are not errors there).
    let out = ldguard(&["policy", "validate", bad.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = ldguard(&["policy", "lint", "--format", "json", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["diagnostics"].as_array().unwrap().len(), 3, "{v}");
    assert_eq!(v[0]["diagnostics"][0]["level"], "warning");
    // Every shipped policy lints clean.
    let shipped: Vec<String> = std::fs::read_dir(repo().join("policies"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| p.display().to_string())
        .collect();
    let mut args = vec!["policy", "lint"];
    args.extend(shipped.iter().map(String::as_str));
    let out = ldguard(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

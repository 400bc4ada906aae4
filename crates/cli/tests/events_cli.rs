//! `ldguard learn` and `ldguard events` on hand-written event files:
//! malformed and truncated lines are reported with their line and the rest
//! is used; filters and formats.

use ldguard_events::Event;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn ldguard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ldguard"))
        .args(args)
        .output()
        .unwrap()
}

fn event(
    time: &str,
    program: &str,
    kind: &str,
    call: &str,
    target: &str,
    access: Option<&str>,
) -> Event {
    Event {
        time: time.into(),
        pid: 42,
        program: program.into(),
        kind: kind.into(),
        call: call.into(),
        target: Some(target.into()),
        access: access.map(Into::into),
        action: "allow".into(),
        severity: "info".into(),
        mode: "permissive".into(),
        behavior: true,
        ..Event::default()
    }
}

fn line(e: &Event) -> String {
    String::from_utf8(e.to_line()).unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const T1: &str = "2026-11-23T06:30:00.000000Z";
const T2: &str = "2026-11-23T07:30:00.000000Z";

#[test]
fn learn_reports_bad_lines_with_file_and_line_and_uses_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let good = line(&event(
        T1,
        "/usr/bin/app",
        "exec",
        "execve",
        "/usr/bin/true",
        None,
    ));
    let after = line(&event(
        T1,
        "/usr/bin/app",
        "file",
        "openat",
        "/srv/data/a.txt",
        Some("read"),
    ));
    let cut = line(&event(
        T1,
        "/usr/bin/app",
        "exec",
        "execve",
        "/usr/bin/false",
        None,
    ));
    let text = format!(
        "{good}{{\"time\": 3}}\nnot json at all\n{after}{}",
        &cut[..cut.len() / 2]
    );
    let events = write(dir.path(), "events.jsonl", &text);
    let other = write(
        dir.path(),
        "more.jsonl",
        &line(&event(
            T2,
            "/usr/bin/app",
            "network",
            "connect",
            "10.0.0.7:5432",
            Some("outbound"),
        )),
    );
    let out = ldguard(&[
        "learn",
        events.to_str().unwrap(),
        other.to_str().unwrap(),
        "--name",
        "app",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let shown = events.display();
    assert!(
        stderr.contains(&format!("{shown}:2: not an ldguard event")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{shown}:3: not an ldguard event")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{shown}:5: truncated event")),
        "{stderr}"
    );
    assert!(
        stderr.contains("3 unreadable lines were skipped"),
        "{stderr}"
    );
    let policy: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(policy["name"], "app");
    let rules = policy["rules"].as_array().unwrap();
    let paths: Vec<String> = rules
        .iter()
        .flat_map(|r| r["path"].as_array().cloned().unwrap_or_default())
        .map(|p| p.as_str().unwrap().to_owned())
        .collect();
    // Lines before and after the bad ones, and the second file, count.
    assert!(paths.contains(&"/usr/bin/true".to_owned()), "{paths:?}");
    assert!(paths.contains(&"/srv/data/a.txt".to_owned()), "{paths:?}");
    assert!(!paths.contains(&"/usr/bin/false".to_owned()), "{paths:?}");
    assert!(
        rules
            .iter()
            .any(|r| r["port"] == serde_json::json!(["5432"])),
        "{rules:?}"
    );

    // The printed policy validates.
    let learned = write(
        dir.path(),
        "learned.json",
        &String::from_utf8_lossy(&out.stdout),
    );
    let out = ldguard(&["policy", "validate", learned.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn learn_refuses_a_missing_file_and_an_invalid_base() {
    let dir = tempfile::tempdir().unwrap();
    let out = ldguard(&["learn", dir.path().join("nope.jsonl").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.jsonl: cannot open"));
    let events = write(dir.path(), "e.jsonl", "");
    let base = write(
        dir.path(),
        "base.json",
        "{\"apiVersion\":\"ldguard.policy/v1\",\n\"name\":\"b\",\"mode\":\"enforse\"}",
    );
    let out = ldguard(&[
        "learn",
        events.to_str().unwrap(),
        "--base",
        base.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{}:2:", base.display())),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn learn_merges_into_a_base() {
    let dir = tempfile::tempdir().unwrap();
    let events = write(
        dir.path(),
        "e.jsonl",
        &[
            line(&event(
                T1,
                "/usr/sbin/nginx",
                "exec",
                "execve",
                "/bin/sh",
                None,
            )),
            line(&event(
                T1,
                "/usr/sbin/nginx",
                "exec",
                "execve",
                "/usr/bin/id",
                None,
            )),
        ]
        .concat(),
    );
    let base = write(
        dir.path(),
        "base.json",
        r#"{"apiVersion":"ldguard.policy/v1","name":"web","mode":"enforce","rules":[
           {"name":"no-shell-from-nginx","kind":"exec","program":["/usr/sbin/nginx"],
            "path":["/bin/sh"],"action":"deny","severity":"high"}]}"#,
    );
    let out = ldguard(&[
        "learn",
        events.to_str().unwrap(),
        "--base",
        base.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("stay denied by the base policy's rule `no-shell-from-nginx`"),
        "{stderr}"
    );
    let policy: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(policy["name"], "web");
    assert_eq!(policy["mode"], "permissive");
    let rules = policy["rules"].as_array().unwrap();
    assert_eq!(rules[0]["name"], "no-shell-from-nginx");
    assert_eq!(rules[1]["path"], serde_json::json!(["/usr/bin/id"]));
}

fn sample(dir: &Path) -> PathBuf {
    let mut denied = event(T2, "/usr/sbin/nginx", "exec", "execve", "/bin/sh", None);
    denied.action = "deny".into();
    denied.enforced = true;
    denied.rule = Some("unlearned-exec".into());
    denied.behavior = false;
    let text = [
        line(&event(
            T1,
            "/usr/bin/python3.11",
            "file",
            "openat",
            "/etc/hosts",
            Some("read"),
        )),
        line(&event(
            T1,
            "/usr/bin/python3.11",
            "file",
            "openat",
            "/etc/hosts",
            Some("read"),
        )),
        "garbage\n".to_owned(),
        line(&denied),
    ]
    .concat();
    write(dir, "events.jsonl", &text)
}

#[test]
fn events_summary_counts_and_speaks_json() {
    let dir = tempfile::tempdir().unwrap();
    let f = sample(dir.path());
    let out = ldguard(&["events", "summary", f.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        text.starts_with(&format!("3 events from {T1} to {T2}")),
        "{text}"
    );
    assert!(
        text.contains("by rule:\n  2  (default)\n  1  unlearned-exec\n"),
        "{text}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains(":3: not an ldguard event"));

    let out = ldguard(&[
        "events",
        "summary",
        f.to_str().unwrap(),
        "--format",
        "json",
        "--action",
        "deny",
    ]);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["events"], 1);
    assert_eq!(json["outcome"]["BLOCKED"], 1);
    assert_eq!(json["program"]["/usr/sbin/nginx"], 1);
    assert_eq!(json["bad_lines"], 1);
}

#[test]
fn events_tail_and_grep_filter() {
    let dir = tempfile::tempdir().unwrap();
    let f = sample(dir.path());
    let f = f.to_str().unwrap();
    let out = ldguard(&["events", "tail", "-n", "1", f]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.contains("BLOCKED") && text.contains("[rule unlearned-exec]"),
        "{text}"
    );

    let out = ldguard(&[
        "events",
        "grep",
        "/etc/hosts",
        f,
        "--program",
        "python3*",
        "--format",
        "json",
    ]);
    let lines: Vec<Event> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    let out = ldguard(&[
        "events",
        "grep",
        "/etc/hosts",
        f,
        "--since",
        "2026-11-23T07:00:00Z",
    ]);
    assert!(out.stdout.is_empty());
    let out = ldguard(&["events", "tail", f, "--since", "yesterday"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--since yesterday"));
}

#[test]
fn events_tail_follows_appended_lines() {
    use std::io::{BufRead, Write};
    let dir = tempfile::tempdir().unwrap();
    let f = sample(dir.path());
    let mut child = Command::new(env!("CARGO_BIN_EXE_ldguard"))
        .args([
            "events", "tail", "-f", "-n", "0", "--format", "json", "--action", "deny",
        ])
        .arg(&f)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut denied = event(T2, "/usr/bin/app", "exec", "execve", "/bin/sh", None);
    denied.action = "deny".into();
    let allowed = line(&event(
        T2,
        "/usr/bin/app",
        "exec",
        "execve",
        "/bin/true",
        None,
    ));
    let denied = line(&denied);
    // Give the follower time to reach the end, then append an allowed
    // event (filtered out) and a denied one written in two halves.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let mut out = std::fs::OpenOptions::new().append(true).open(&f).unwrap();
    out.write_all(allowed.as_bytes()).unwrap();
    out.write_all(&denied.as_bytes()[..20]).unwrap();
    out.flush().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(400));
    out.write_all(&denied.as_bytes()[20..]).unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut got = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut got);
        let _ = tx.send(got);
    });
    let got = rx.recv_timeout(std::time::Duration::from_secs(10));
    child.kill().unwrap();
    let _ = child.wait();
    let got = got.expect("the followed event within 10 s");
    let e: Event = serde_json::from_str(&got).unwrap();
    assert_eq!(
        (e.action.as_str(), e.target.as_deref()),
        ("deny", Some("/bin/sh"))
    );
}

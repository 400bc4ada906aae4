//! The product's main story, end to end, shared by the SQLite and
//! PostgreSQL suites: a real process under the real library in permissive
//! mode reports a would-be denial to the server, `ldguard events search`
//! finds it, and one `ldguard mode … enforce` later the same running
//! process is denied within its refresh interval.

use super::{cli_ok, library, search, token, wait_until, Server};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

const IMAGE: &str = "shop/web:1.4";
/// The library's refresh interval in this test.
const REFRESH: Duration = Duration::from_secs(1);
/// Scheduling slack on top of it (a 2-core machine shared by several builds).
const SLACK: Duration = Duration::from_secs(4);

pub fn permissive_then_enforce(dir: &Path, database: &str) {
    let admin = token(dir, database, "admin", &[], "admin");
    let agent = token(dir, database, "agent", &["shop/*"], "agent");
    let server = Server::start(dir, database);
    std::fs::write(dir.join("secret"), "s3cret\n").unwrap();
    let policy = json!({
        "apiVersion": "ldguard.policy/v1", "name": "web", "mode": "enforce",
        "log": ["deny", "audit"],
        "rules": [{"name": "no-secrets", "kind": "file", "access": ["read"],
                   "path": [format!("{}/secret*", dir.display())], "action": "deny",
                   "severity": "high"}]
    });
    std::fs::write(
        dir.join("web.json"),
        serde_json::to_string_pretty(&policy).unwrap(),
    )
    .unwrap();
    let pushed = cli_ok(
        &server,
        &admin,
        &["policy", "push", dir.join("web.json").to_str().unwrap()],
    );
    assert!(pushed.contains("web stored as version 1"), "{pushed}");
    let assigned = cli_ok(
        &server,
        &admin,
        &[
            "assign",
            "shop",
            "--policy",
            "web",
            "--image",
            "shop/*",
            "--mode",
            "permissive",
        ],
    );
    assert!(assigned.contains("mode permissive"), "{assigned}");

    // The library's config as `ldguard-layer --server` writes it (here
    // through LDGUARD_CONFIG, since this machine has no system config):
    // the server, the token and the image name are all it takes.
    let config = json!({
        "server": server.url,
        "tokenFile": agent,
        "cacheDir": dir.join("cache"),
        "refreshSeconds": REFRESH.as_secs(),
        "image": {"name": IMAGE},
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let mut cmd = Command::new("/bin/bash");
    cmd.arg("-c").arg(
        r#"for ((i = 0; i < 1200; i++)); do
             if read -r x < "$SECRET" 2>/dev/null; then echo ok; else echo denied; fi
             sleep 0.05
           done"#,
    );
    for (k, _) in std::env::vars() {
        if k.starts_with("LDGUARD_") {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd
        .env("LD_PRELOAD", library())
        .env("LDGUARD_CONFIG", dir.join("config.json"))
        .env("SECRET", dir.join("secret"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, lines) = channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });

    // Permissive: the reads succeed, and the server gets would-be denials.
    let mut found = Vec::new();
    wait_until(
        Duration::from_secs(30),
        "a would-be denial on the server",
        || {
            found = search(
                &server,
                &admin,
                &["--image", IMAGE, "--action", "deny", "--rule", "no-secrets"],
            );
            !found.is_empty()
        },
    );
    let e = &found[0];
    assert_eq!(e["enforced"], false, "{e}");
    assert_eq!(e["mode"], "permissive", "{e}");
    assert_eq!(e["pid"].as_u64(), Some(u64::from(pid)), "{e}");
    assert_eq!(e["target"], dir.join("secret").display().to_string(), "{e}");
    assert_eq!(e["severity"], "high");
    // The text form names the outcome for people.
    let text = cli_ok(
        &server,
        &admin,
        &[
            "events",
            "search",
            "--image",
            IMAGE,
            "-q",
            "NO-SECRETS",
            "--limit",
            "1",
        ],
    );
    assert!(text.contains("would-deny"), "{text}");
    while lines.try_recv().is_ok() {}
    let answer = lines
        .recv_timeout(Duration::from_secs(5))
        .expect("the prober answers")
        .1;
    assert_eq!(answer, "ok", "permissive must not block");

    // One command flips the assignment; the same process is denied within
    // its refresh interval.
    let switched = cli_ok(&server, &admin, &["mode", "shop", "enforce"]);
    assert!(switched.contains("mode enforce"), "{switched}");
    let flipped = Instant::now();
    let denied_at = loop {
        let (at, line) = lines
            .recv_timeout(REFRESH + SLACK)
            .expect("the prober keeps answering");
        if line == "denied" {
            break at;
        }
        assert!(
            at.duration_since(flipped) < REFRESH + SLACK,
            "still allowed {:?} after the switch",
            at.duration_since(flipped)
        );
    };
    let took = denied_at.duration_since(flipped);
    assert!(took < REFRESH + SLACK, "enforced after {took:?}");
    assert_eq!(
        child.try_wait().unwrap(),
        None,
        "the same process is still running"
    );
    // And the enforced denials reach the server too.
    wait_until(
        Duration::from_secs(30),
        "an enforced denial on the server",
        || {
            search(&server, &admin, &["--image", IMAGE, "--action", "deny"])
                .iter()
                .any(|e| e["enforced"] == true && e["pid"].as_u64() == Some(u64::from(pid)))
        },
    );
    let _ = child.kill();
    let _ = child.wait();
    eprintln!("enforced {took:?} after `ldguard mode shop enforce`");
}

//! The console in a real browser: Debian's headless Chromium driven through
//! chromedriver against a live server, with a real process under the real
//! library. Log in with a token, see the process's would-be denial on the
//! dashboard and open it, explain it, fix a policy whose error is shown at
//! its line, switch the assignment from permissive to enforce, and see the
//! next attempt denied. Screenshots of each page go to
//! `target/console-screenshots/` (not committed).

mod common;

use common::{api, library, token, wait_until, Server};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

const IMAGE: &str = "shop/web:1.4";
/// The library's refresh interval here, and scheduling slack on a shared machine.
const REFRESH: Duration = Duration::from_secs(1);
const SLACK: Duration = Duration::from_secs(6);

/// A child process killed and reaped on drop.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn find(exe: &str) -> PathBuf {
    let path = Path::new("/usr/bin").join(exe);
    assert!(
        path.is_file(),
        "{} is missing: install Debian's chromium and chromium-driver (scripts/setup does)",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

async fn source(client: &Client) -> String {
    client.source().await.expect("page source")
}

/// `bash` reading the secret every 50 ms under the library, printing
/// `ok` or `denied` per attempt.
fn prober(dir: &Path, config: &Path) -> (Reaped, u32, Receiver<(Instant, String)>) {
    let mut cmd = Command::new("/bin/bash");
    cmd.arg("-c").arg(
        r#"for ((i = 0; i < 2400; i++)); do
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
        .env("LDGUARD_CONFIG", config)
        .env("SECRET", dir.join("secret"))
        // bash's own "Permission denied" once the reads are denied.
        .stderr(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    (Reaped(child), pid, rx)
}

/// Sets a textarea's text as typing would (the browser then submits it).
async fn set_text(client: &Client, id: &str, text: &str) {
    client
        .execute(
            "document.getElementById(arguments[0]).value = arguments[1];",
            vec![json!(id), json!(text)],
        )
        .await
        .expect("set the editor's text");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_in_chromium_from_denial_to_enforcement() {
    let chromium = find("chromium");
    let chromedriver = find("chromedriver");
    let dir = common::scratch("console-browser");
    let database = format!("sqlite:{}/data/ldguard.db", dir.display());
    let admin = token(&dir, &database, "admin", &[], "admin");
    let agent = token(&dir, &database, "agent", &["shop/*"], "agent");
    let server = Server::start(&dir, &database);
    let url = server.url.clone();
    std::fs::write(dir.join("secret"), "s3cret\n").unwrap();
    let secret_glob = format!("{}/secret*", dir.display());
    let policy = json!({
        "apiVersion": "ldguard.policy/v1", "name": "web", "mode": "enforce",
        "log": ["deny", "audit"],
        "rules": [{"name": "no-secrets", "kind": "file", "access": ["read"],
                   "path": [secret_glob], "action": "deny", "severity": "high"}]
    });
    let policy_text = serde_json::to_string_pretty(&policy).unwrap();
    let (status, body) = api(
        "POST",
        &format!("{url}/api/v1/policies"),
        &admin,
        Some(&policy_text),
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = api(
        "PUT",
        &format!("{url}/api/v1/assignments/shop"),
        &admin,
        Some(r#"{"policy": "web", "images": ["shop/*"], "mode": "permissive"}"#),
    );
    assert_eq!(status, 200, "{body}");

    // The library's config as `ldguard-layer --server` writes it.
    let config = dir.join("config.json");
    std::fs::write(
        &config,
        json!({"server": url, "tokenFile": agent, "cacheDir": dir.join("cache"),
               "refreshSeconds": REFRESH.as_secs(), "image": {"name": IMAGE}})
        .to_string(),
    )
    .unwrap();
    let (_prober, pid, lines) = prober(&dir, &config);
    wait_until(
        Duration::from_secs(60),
        "the would-be denial on the server",
        || {
            let (_, found) = api(
                "GET",
                &format!("{url}/api/v1/events?rule=no-secrets&limit=1"),
                &admin,
                None,
            );
            found["events"].as_array().is_some_and(|e| !e.is_empty())
        },
    );

    let port = free_port();
    let _driver = Reaped(
        Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts"),
    );
    let profile = tempfile::tempdir().unwrap();
    let caps = json!({
        "goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                     "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync",
                     "--window-size=1280,1000",
                     format!("--user-data-dir={}", profile.path().display())]
        }
    });
    let mut client = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    while client.is_none() {
        match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps.as_object().unwrap().clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => client = Some(c),
            Err(e) => {
                assert!(Instant::now() < deadline, "chromedriver: {e}");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
    let c = client.unwrap();

    // Log in with the admin token.
    c.goto(&format!("{url}/")).await.unwrap();
    assert!(c.current_url().await.unwrap().path().starts_with("/login"));
    let secret = std::fs::read_to_string(&admin).unwrap();
    c.find(Locator::Css("#token"))
        .await
        .unwrap()
        .send_keys(secret.trim())
        .await
        .unwrap();
    shot(&c, "01-login").await;
    c.find(Locator::Css("form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    // The dashboard lists the rule that denied, the program and the image.
    c.wait()
        .for_element(Locator::Css("#images"))
        .await
        .expect("the dashboard");
    let page = source(&c).await;
    assert!(page.contains(">no-secrets</a>"), "{page}");
    assert!(
        page.contains(">/usr/bin/bash</a>") || page.contains(">/bin/bash</a>"),
        "{page}"
    );
    assert!(page.contains("polyline"), "the chart has a line");
    let images = &page[page.find(r#"id="images""#).unwrap()..];
    assert!(
        images.contains(IMAGE) && images.contains("permissive"),
        "{images}"
    );
    shot(&c, "02-dashboard").await;

    // From the top rule to its events, then to one event.
    c.find(Locator::LinkText("no-secrets"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Css("table.events"))
        .await
        .unwrap();
    assert!(c
        .current_url()
        .await
        .unwrap()
        .query()
        .unwrap()
        .contains("rule=no-secrets"));
    shot(&c, "03-events").await;
    c.find(Locator::Css("table.events tbody a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let headline = c
        .wait()
        .for_element(Locator::Css("#summary"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let target = dir.join("secret").display().to_string();
    assert!(
        headline.contains(&format!("would have been blocked from reading {target}"))
            && headline.ends_with("Severity: high"),
        "{headline}"
    );
    let fields = source(&c).await;
    assert!(fields.contains(&format!("<code>{pid}</code>")), "{fields}");
    shot(&c, "04-event").await;
    c.find(Locator::Css("#explain"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let explained = c
        .wait()
        .for_element(Locator::Css("#explanation"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        explained.contains("decision: deny (not enforced (mode permissive)"),
        "{explained}"
    );
    assert!(
        explained.contains("`no-secrets` (rule #1 of policy `web`)"),
        "{explained}"
    );
    shot(&c, "05-explain").await;

    // A policy edit with a deliberate error: shown at its line, not stored.
    c.goto(&format!("{url}/policies/web/edit")).await.unwrap();
    let broken = policy_text.replace("\"high\"", "\"severe\"");
    set_text(&c, "policy-text", &broken).await;
    c.find(Locator::Css("form[action='/policies/save'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let bad_line = broken.lines().position(|l| l.contains("severe")).unwrap() + 1;
    let marked = c
        .wait()
        .for_element(Locator::Css(&format!("li#line-{bad_line}.bad .diag")))
        .await
        .expect("the error at its line")
        .text()
        .await
        .unwrap();
    assert!(marked.contains("severe"), "{marked}");
    // With JavaScript, a problem's link selects its line in the editor.
    c.find(Locator::Css("#problems a[data-line]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let selected = c
        .execute(
            "const t = document.getElementById('policy-text'); \
             return t.value.substring(t.selectionStart, t.selectionEnd);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        selected.as_str(),
        broken.lines().nth(bad_line - 1),
        "the offending line is selected"
    );
    c.execute(
        "document.getElementById(arguments[0]).scrollIntoView({block: 'center'});",
        vec![json!(format!("line-{bad_line}"))],
    )
    .await
    .unwrap();
    shot(&c, "06-policy-error").await;
    // Fixed (and with one more protected path), it is stored as version 2.
    let fixed = policy_text.replace(
        &format!("\"{}\"", dir.join("secret*").display()),
        &format!("\"{}\", \"/etc/shadow\"", dir.join("secret*").display()),
    );
    assert_ne!(fixed, policy_text);
    set_text(&c, "policy-text", &fixed).await;
    c.find(Locator::Css("form[action='/policies/save'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // A failed save shows an error page, never the notice: say which.
    let notice = match c.wait().for_element(Locator::Css("p.notice")).await {
        Ok(notice) => notice.text().await.unwrap(),
        Err(e) => panic!(
            "no notice after saving the fixed policy ({e}); the page:\n{}",
            source(&c).await
        ),
    };
    assert_eq!(notice, "Stored as version 2.");
    shot(&c, "07-policy-saved").await;

    // Permissive → enforce through the confirmation page.
    c.goto(&format!("{url}/assignments/shop")).await.unwrap();
    c.find(Locator::Css("#mode-enforce"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    shot(&c, "08-assignment").await;
    c.find(Locator::Css(
        "form[action='/assignments/shop/review'] button",
    ))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    let change = c
        .wait()
        .for_element(Locator::Css("#change-mode"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        change.starts_with("Mode: permissive → enforce."),
        "{change}"
    );
    shot(&c, "09-confirm").await;
    // Still permissive until applied.
    while lines.try_recv().is_ok() {}
    assert_eq!(
        lines.recv_timeout(Duration::from_secs(5)).unwrap().1,
        "ok",
        "permissive must not block"
    );
    c.find(Locator::Css("#apply"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Css("#saved")).await.unwrap();
    let flipped = Instant::now();
    assert_eq!(
        c.find(Locator::Css("#mode-in-force"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "enforce"
    );
    shot(&c, "10-assignment-saved").await;
    let denied_after = loop {
        let (at, line) = lines
            .recv_timeout(REFRESH + SLACK)
            .expect("the prober keeps answering");
        if line == "denied" {
            break at.saturating_duration_since(flipped);
        }
        assert!(
            at.duration_since(flipped) < REFRESH + SLACK,
            "still allowed {:?} after the switch",
            at.duration_since(flipped)
        );
    };

    // The enforced denial shows up in the console.
    let enforced = "/events?rule=no-secrets&action=deny";
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        c.goto(&format!("{url}{enforced}")).await.unwrap();
        let page = source(&c).await;
        if page.contains(r#"<span class="action-deny">deny</span>"#) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no enforced denial listed: {page}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    shot(&c, "11-enforced").await;
    c.close().await.unwrap();
    eprintln!(
        "denied {denied_after:?} after the switch; screenshots in {}",
        screenshots().display()
    );
}

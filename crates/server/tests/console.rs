//! The console over HTTP against a live server: logging in with tokens,
//! escaping of everything an event carries, the event pages and explain,
//! the editor's inline errors, the assignment confirmation, and the
//! refusals (no session, viewer writes, agent tokens, cross-site forms).

mod common;

use common::{api, token, Server};
use serde_json::json;
use std::path::Path;
use std::time::Duration;

/// A client that keeps the session cookie and does not follow redirects
/// (so the tests see where they point).
struct Browser {
    base: String,
    agent: ureq::Agent,
    cookie: Option<String>,
}

struct Page {
    status: u16,
    location: Option<String>,
    csp: Option<String>,
    body: String,
}

impl Browser {
    fn new(server: &Server) -> Browser {
        Browser {
            base: server.url.clone(),
            agent: ureq::AgentBuilder::new()
                .redirects(0)
                .timeout(Duration::from_secs(60))
                .build(),
            cookie: None,
        }
    }

    fn answer(&mut self, result: Result<ureq::Response, ureq::Error>) -> Page {
        let response = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{e}"),
        };
        if let Some(c) = response.header("set-cookie") {
            let pair = c.split(';').next().unwrap().to_string();
            self.cookie = (!pair.ends_with('=')).then_some(pair);
        }
        Page {
            status: response.status(),
            location: response.header("location").map(str::to_string),
            csp: response
                .header("content-security-policy")
                .map(str::to_string),
            body: response.into_string().unwrap_or_default(),
        }
    }

    fn get(&mut self, path: &str) -> Page {
        let mut req = self.agent.get(&format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            req = req.set("Cookie", c);
        }
        let result = req.call();
        self.answer(result)
    }

    fn post_from(&mut self, path: &str, form: &[(&str, &str)], origin: &str) -> Page {
        let mut req = self
            .agent
            .post(&format!("{}{path}", self.base))
            .set("Origin", origin);
        if let Some(c) = &self.cookie {
            req = req.set("Cookie", c);
        }
        let result = req.send_form(form);
        self.answer(result)
    }

    fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let origin = self.base.clone();
        self.post_from(path, form, &origin)
    }

    fn login(&mut self, token: &Path) -> Page {
        let secret = std::fs::read_to_string(token).unwrap();
        self.post("/login", &[("token", secret.trim()), ("next", "/")])
    }
}

const POLICY: &str = r#"{
  "apiVersion": "ldguard.policy/v1",
  "name": "web",
  "mode": "enforce",
  "rules": [
    {"name": "no-shell-from-nginx", "kind": "exec", "program": ["/usr/sbin/nginx"],
     "path": ["/bin/sh"], "action": "deny", "severity": "high"}
  ]
}
"#;

#[test]
fn console_pages_escape_explain_validate_and_confirm() {
    let dir = common::scratch("console-http");
    let database = format!("sqlite:{}/data/ldguard.db", dir.display());
    let admin = token(&dir, &database, "admin", &[], "admin");
    let viewer = token(&dir, &database, "viewer", &[], "viewer");
    let agent = token(&dir, &database, "agent", &["shop/*"], "agent");
    let instrumenter = token(&dir, &database, "instrumenter", &[], "instrumenter");
    let server = Server::start(&dir, &database);
    let url = &server.url;

    let (status, body) = api(
        "POST",
        &format!("{url}/api/v1/policies"),
        &admin,
        Some(POLICY),
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = api(
        "PUT",
        &format!("{url}/api/v1/assignments/shop"),
        &admin,
        Some(r#"{"policy": "web", "images": ["shop/*"], "mode": "permissive"}"#),
    );
    assert_eq!(status, 200, "{body}");
    // The library's policy fetch, as the dashboard will show it.
    let (status, _) = api(
        "GET",
        &format!("{url}/api/v1/agent/policy?image=shop%2Fweb%3A1.4"),
        &agent,
        None,
    );
    assert_eq!(status, 200);
    let events = json!([
        {"time": "2026-11-23T06:30:00.000001Z", "container": "c1", "image": "shop/web:1.4",
         "pid": 31, "ppid": 1, "uid": 33, "program": "/usr/sbin/nginx", "call": "execve",
         "kind": "exec", "target": "/bin/sh", "args": ["sh", "-c", "id"], "action": "deny",
         "enforced": true, "rule": "no-shell-from-nginx", "severity": "high", "policy": "web",
         "mode": "enforce", "errno": 13,
         "message": "/usr/sbin/nginx was blocked from executing /bin/sh"},
        {"time": "2026-11-23T06:30:01Z", "container": "c1", "image": "shop/web:1.4",
         "pid": 31, "ppid": 1, "uid": 33, "program": "/usr/sbin/nginx", "call": "openat",
         "kind": "file", "target": "/srv/<script>alert(1)</script>", "access": "read",
         "action": "audit", "enforced": false, "severity": "low", "policy": "web",
         "mode": "enforce", "message": "<script>alert(2)</script>"}
    ]);
    let (status, body) = api(
        "POST",
        &format!("{url}/api/v1/agent/events"),
        &agent,
        Some(&events.to_string()),
    );
    assert_eq!(status, 201, "{body}");

    let mut b = Browser::new(&server);
    // No session: every page sends to the login page, remembering where.
    let page = b.get("/events?image=shop%2Fweb%3A1.4");
    assert_eq!(page.status, 303);
    assert_eq!(
        page.location.as_deref(),
        Some("/login?next=%2Fevents%3Fimage%3Dshop%252Fweb%253A1.4")
    );
    // Agent and instrumenter tokens and wrong tokens do not log in.
    let page = b.login(&agent);
    assert_eq!(page.status, 403);
    assert!(page.body.contains("An agent token cannot use the console"));
    let page = b.login(&instrumenter);
    assert_eq!(page.status, 403);
    assert!(page
        .body
        .contains("An instrumenter token cannot use the console"));
    let page = b.post("/login", &[("token", "ldg_nope")]);
    assert_eq!(page.status, 401);
    assert!(b.cookie.is_none());

    let page = b.login(&admin);
    assert_eq!(page.status, 303, "{}", page.body);
    assert!(b.cookie.is_some());

    // Dashboard: the chart, the top rule, the image with its assignment,
    // mode and policy fetch. The events are old: ask for a range that
    // holds them through the events list instead of the dashboard's.
    let page = b.get("/");
    assert_eq!(page.status, 200);
    assert!(
        !page.body.contains("style="),
        "the CSP allows no inline style"
    );
    let csp = page.csp.unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(page.body.contains("<svg"), "{}", page.body);
    assert!(page.body.contains("shop/web:1.4"), "{}", page.body);
    let images = &page.body[page.body.find(r#"id="images""#).unwrap()..];
    assert!(images.contains(">shop</a>"), "{images}");
    assert!(images.contains("permissive"), "{images}");
    assert!(images.contains("(new document)"), "{images}");

    // The events list escapes what events carry.
    let page = b.get("/events?image=shop%2Fweb%3A1.4");
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("/srv/&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<script>alert"), "{}", page.body);
    // Filters are in the URL.
    let page = b.get("/events?action=deny&rule=no-shell-from-nginx");
    assert!(page.body.contains("/bin/sh"));
    assert!(!page.body.contains("/srv/&lt;script"));
    let id = {
        let at = page.body.find("href=\"/events/").unwrap() + "href=\"/events/".len();
        let end = page.body[at..].find('"').unwrap();
        page.body[at..at + end].to_string()
    };
    // Pages of 50, newest first, "Older events" for the rest.
    // (Another container: not the process whose neighbours are checked below.)
    let many: Vec<_> = (0..55)
        .map(|n| {
            let mut e = common::event("shop/many:1", n);
            e["container"] = json!("c9");
            e
        })
        .collect();
    let (status, body) = api(
        "POST",
        &format!("{url}/api/v1/agent/events"),
        &agent,
        Some(&serde_json::to_string(&many).unwrap()),
    );
    assert_eq!(status, 201, "{body}");
    let page = b.get("/events?image=shop%2Fmany%3A1");
    assert_eq!(page.body.matches("/srv/file-").count(), 50);
    let at = page
        .body
        .find(r#"href="/events?image=shop%2Fmany%3A1&amp;before="#)
        .expect("an older page");
    let end = page.body[at + 6..].find('"').unwrap();
    let older = page.body[at + 6..at + 6 + end].replace("&amp;", "&");
    let page = b.get(&older);
    assert_eq!(page.body.matches("/srv/file-").count(), 5, "{}", page.body);
    assert!(!page.body.contains("rel=\"next\""));
    let page = b.get("/events?q=ALERT(2)");
    assert!(page.body.contains("/srv/&lt;script"), "{}", page.body);

    let page = b.get(&format!("/events/{id}"));
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("Process /usr/sbin/nginx was blocked from executing /bin/sh. Severity: high"),
        "{}",
        page.body
    );
    assert!(page.body.contains("sh -c id"), "arguments shown");
    assert!(
        page.body.contains(">web v1</a> (assignment shop)"),
        "{}",
        page.body
    );
    // The other event of the same process is listed, escaped.
    assert!(page.body.contains("/srv/&lt;script&gt;"));
    let other = b.get(&format!("/events/{}", id.parse::<i64>().unwrap() + 1));
    assert!(!other.body.contains("<script>alert"), "{}", other.body);

    let page = b.get(&format!("/events/{id}/explain"));
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains(
            "decision: deny (not enforced (mode permissive): the call proceeds and is reported)"
        ),
        "{}",
        page.body
    );
    assert!(page
        .body
        .contains("rule:     `no-shell-from-nginx` (rule #1 of policy `web`)"));

    // The very text `ldguard policy explain` prints for the same request
    // under the same (effective) policy.
    let effective = POLICY.replace("\"enforce\"", "\"permissive\"");
    std::fs::write(dir.join("effective.json"), &effective).unwrap();
    let cli = std::process::Command::new(common::cli_exe())
        .args(["policy", "explain"])
        .arg(dir.join("effective.json"))
        .args([
            "--kind",
            "exec",
            "--call",
            "execve",
            "--program",
            "/usr/sbin/nginx",
        ])
        .args(["--path", "/bin/sh"])
        .output()
        .unwrap();
    assert!(cli.status.success(), "{cli:?}");
    let shown = {
        let at = page.body.find("<pre id=\"explanation\"").unwrap();
        let start = at + page.body[at..].find('>').unwrap() + 1;
        let end = start + page.body[start..].find("</pre>").unwrap();
        page.body[start..end]
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
    };
    assert_eq!(shown, String::from_utf8(cli.stdout).unwrap());

    // The editor: an error is shown at its line and nothing is stored.
    let bad = POLICY.replace("\"deny\"", "\"refuse\"");
    let page = b.post("/policies/save", &[("text", &bad)]);
    assert_eq!(page.status, 422);
    let line = bad.lines().position(|l| l.contains("refuse")).unwrap() + 1;
    let marked = format!(r#"<li id="line-{line}" class="bad">"#);
    let at = page
        .body
        .find(&marked)
        .unwrap_or_else(|| panic!("{marked} in {}", page.body));
    let next = page.body[at..].find("</li>").unwrap();
    assert!(page.body[at..at + next].contains("refuse"));
    assert!(page.body[at..at + next].contains("class=\"diag\""));
    let (_, versions) = api(
        "GET",
        &format!("{url}/api/v1/policies/web/versions"),
        &admin,
        None,
    );
    assert_eq!(versions["versions"].as_array().unwrap().len(), 1);
    // Fixed, it is stored as version 2, and the diff shows the change.
    let fixed = POLICY.replace("\"/bin/sh\"]", "\"/bin/sh\", \"/usr/bin/dash\"]");
    let page = b.post("/policies/save", &[("text", &fixed)]);
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(
        page.location.as_deref(),
        Some("/policies/web/versions/2?saved=created")
    );
    let page = b.get("/policies/web/diff?from=1&to=2");
    assert!(
        page.body.contains(r#"<span class="add">+"#),
        "{}",
        page.body
    );
    assert!(page.body.contains("/usr/bin/dash"));

    // A form posted from another site is refused.
    let page = b.post_from(
        "/assignments/shop/apply",
        &[("mode", "disabled")],
        "http://evil.example",
    );
    assert_eq!(page.status, 403);

    // The mode switch: a confirmation that says what changes, then the change.
    let page = b.post(
        "/assignments/shop/review",
        &[("mode", "enforce"), ("log_policy", "on")],
    );
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("Mode: <strong>permissive</strong> → <strong>enforce</strong>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("will fail"));
    let (_, a) = api(
        "GET",
        &format!("{url}/api/v1/assignments/shop"),
        &admin,
        None,
    );
    assert_eq!(a["mode"], "permissive", "reviewing changes nothing");
    let page = b.post(
        "/assignments/shop/apply",
        &[("mode", "enforce"), ("log_policy", "on")],
    );
    assert_eq!(page.status, 303);
    let (_, a) = api(
        "GET",
        &format!("{url}/api/v1/assignments/shop"),
        &admin,
        None,
    );
    assert_eq!(a["mode"], "enforce");
    assert_eq!(a["log"], serde_json::Value::Null);
    // Log settings too.
    let page = b.post(
        "/assignments/shop/review",
        &[
            ("mode", "enforce"),
            ("log_deny", "on"),
            ("log_behavior", "on"),
        ],
    );
    assert!(
        page.body
            .contains("deny, audit</strong> → <strong>deny, behavior"),
        "{}",
        page.body
    );

    // Learning from an image's behavior stores a draft, never served.
    let behavior = json!([
        {"time": "2026-11-23T07:00:00Z", "container": "c2", "image": "shop/api:2",
         "pid": 40, "ppid": 1, "uid": 33, "program": "/usr/bin/api", "call": "openat",
         "kind": "file", "target": "/etc/api.conf", "access": "read", "action": "allow",
         "enforced": false, "severity": "info", "policy": "web", "mode": "permissive",
         "behavior": true, "message": "/usr/bin/api was allowed reading /etc/api.conf"}
    ]);
    let (status, body) = api(
        "POST",
        &format!("{url}/api/v1/agent/events"),
        &agent,
        Some(&behavior.to_string()),
    );
    assert_eq!(status, 201, "{body}");
    let page = b.post(
        "/policies/learn",
        &[("image", "shop/api:2"), ("policy", "api"), ("from", "")],
    );
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(
        page.location.as_deref(),
        Some("/policies/api/versions/1?saved=draft")
    );
    let page = b.get("/policies/api/versions/1?saved=draft");
    assert!(
        page.body.contains("stored as draft version 1"),
        "{}",
        page.body
    );
    assert!(page.body.contains("/etc/api.conf"), "{}", page.body);
    let (status, _) = api("GET", &format!("{url}/api/v1/policies/api"), &admin, None);
    assert_eq!(status, 404, "a draft is not the latest published version");
    let page = b.post("/policies/learn", &[("image", "shop/none:1")]);
    assert_eq!(page.status, 404);
    assert!(
        page.body.contains("no events stored for image"),
        "{}",
        page.body
    );

    // A viewer reads but cannot change anything.
    let mut v = Browser::new(&server);
    assert_eq!(v.login(&viewer).status, 303);
    assert_eq!(v.get("/policies").status, 200);
    let page = v.post("/policies/save", &[("text", POLICY)]);
    assert_eq!(page.status, 403, "{}", page.body);
    let page = v.post("/assignments/shop/apply", &[("mode", "disabled")]);
    assert_eq!(page.status, 403);
    // Logging out ends the session.
    let page = v.post("/logout", &[]);
    assert_eq!(page.status, 303);
    assert!(v.cookie.is_none());
    assert_eq!(v.get("/policies").status, 303);

    // A revoked token's session ends as the token does in the API.
    let mut w = Browser::new(&server);
    assert_eq!(w.login(&viewer).status, 303);
    assert_eq!(w.get("/events").status, 200);
    let revoked = std::process::Command::new(common::server_exe())
        .args(["token", "revoke", "2"])
        .env("LDGUARD_DATABASE", &database)
        .output()
        .unwrap();
    assert!(revoked.status.success(), "{revoked:?}");
    common::wait_until(
        Duration::from_secs(10),
        "the revoked session to end",
        || w.get("/events").status == 303,
    );
}

/// The Instrumentation page queues a job through the API's checks and lists
/// it; a viewer sees the jobs but gets no form and cannot queue.
#[test]
fn instrumentation_page_queues_and_lists_jobs() {
    let dir = common::scratch("console-instrument");
    let database = format!("sqlite:{}/data/ldguard.db", dir.display());
    let admin = token(&dir, &database, "admin", &[], "admin");
    let viewer = token(&dir, &database, "viewer", &[], "viewer");
    let server = Server::start(&dir, &database);
    let url = &server.url;
    let (status, body) = api(
        "POST",
        &format!("{url}/api/v1/policies"),
        &admin,
        Some(POLICY),
    );
    assert_eq!(status, 201, "{body}");

    let mut browser = Browser::new(&server);
    assert_eq!(browser.login(&admin).status, 303);
    let page = browser.get("/instrument");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("No job yet."), "{}", page.body);
    assert!(page.body.contains(r#"form id="queue""#), "{}", page.body);

    // The API's checks hold: no registry host, and an unknown policy.
    let bad = browser.post("/instrument", &[("image", "web:1.4"), ("policy", "web")]);
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains("no registry host"), "{}", bad.body);
    let unknown = browser.post(
        "/instrument",
        &[("image", "localhost:5000/shop/web:1.4"), ("policy", "nope")],
    );
    assert_eq!(unknown.status, 404, "{}", unknown.body);

    let queued = browser.post(
        "/instrument",
        &[
            ("image", "localhost:5000/shop/web:1.4"),
            ("policy", "web"),
            ("destination", ""),
        ],
    );
    assert_eq!(queued.status, 303, "{}", queued.body);
    assert_eq!(queued.location.as_deref(), Some("/instrument?queued=1"));
    let page = browser.get("/instrument?queued=1");
    assert!(page.body.contains("Queued as job 1."), "{}", page.body);
    assert!(
        page.body.contains("localhost:5000/shop/web:1.4"),
        "{}",
        page.body
    );
    assert!(page.body.contains("<td>queued</td>"), "{}", page.body);
    let (status, body) = api(
        "GET",
        &format!("{url}/api/v1/instrument/jobs/1"),
        &admin,
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["policy"], "web", "{body}");
    assert_eq!(body["state"], "queued", "{body}");

    let mut watcher = Browser::new(&server);
    assert_eq!(watcher.login(&viewer).status, 303);
    let page = watcher.get("/instrument");
    assert!(
        page.body.contains("localhost:5000/shop/web:1.4"),
        "{}",
        page.body
    );
    assert!(!page.body.contains(r#"form id="queue""#), "{}", page.body);
    let refused = watcher.post(
        "/instrument",
        &[("image", "localhost:5000/shop/web:1.5"), ("policy", "web")],
    );
    assert_eq!(refused.status, 403, "{}", refused.body);
}

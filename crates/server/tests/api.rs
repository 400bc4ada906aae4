//! The API against a real server process on SQLite: policy validation and
//! versions, assignments and the effective-policy endpoint, and the ways
//! a batch of events can be bad without anything being lost.

mod common;

use common::{api, api_with, count, event, token, Server};
use serde_json::{json, Value};

struct Fixture {
    server: Server,
    admin: std::path::PathBuf,
    viewer: std::path::PathBuf,
    agent: std::path::PathBuf,
}

fn fixture(name: &str, extra: &[&str]) -> Fixture {
    let dir = common::scratch(name);
    let db = format!("sqlite:{}/db/ldguard.db", dir.display());
    let admin = token(&dir, &db, "admin", &[], "admin");
    let viewer = token(&dir, &db, "viewer", &[], "viewer");
    let agent = token(&dir, &db, "agent", &["shop/*"], "agent");
    let server = Server::start_with(&dir, &db, extra);
    Fixture {
        server,
        admin,
        viewer,
        agent,
    }
}

impl Fixture {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url)
    }
}

const POLICY: &str = r#"{"apiVersion": "ldguard.policy/v1", "name": "web", "mode": "enforce",
 "rules": [{"name": "no-shell", "kind": "exec", "path": ["/bin/sh"], "action": "deny"}]}"#;

#[test]
fn policies_are_validated_versioned_diffed_and_deleted_only_when_unassigned() {
    let fx = fixture("policies", &[]);
    let bad = "{\"apiVersion\": \"ldguard.policy/v1\",\n \"name\": \"web\", \"mode\": \"enforcee\", \"rules\": []}";
    let (status, body) = api(
        "POST",
        &fx.url("/api/v1/policies?file=web.json"),
        &fx.admin,
        Some(bad),
    );
    assert_eq!(status, 422, "{body}");
    let d = &body["error"]["diagnostics"][0];
    assert_eq!(
        (d["file"].as_str(), d["line"].as_u64(), d["col"].as_u64()),
        (Some("web.json"), Some(2), Some(25)),
        "{d}"
    );
    assert!(d["hint"].as_str().unwrap().contains("enforce"), "{d}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("web.json:2:25: "),
        "{body}"
    );
    // A viewer cannot write.
    let (status, _) = api(
        "POST",
        &fx.url("/api/v1/policies"),
        &fx.viewer,
        Some(POLICY),
    );
    assert_eq!(status, 403);

    let (status, body) = api("POST", &fx.url("/api/v1/policies"), &fx.admin, Some(POLICY));
    assert_eq!((status, body["version"].as_i64()), (201, Some(1)), "{body}");
    // The same text again is no new version.
    let (status, body) = api("POST", &fx.url("/api/v1/policies"), &fx.admin, Some(POLICY));
    assert_eq!(
        (status, body["version"].as_i64(), body["created"].as_bool()),
        (200, Some(1), Some(false))
    );
    let v2 = POLICY.replace("/bin/sh", "/bin/bash");
    let (_, body) = api("POST", &fx.url("/api/v1/policies"), &fx.admin, Some(&v2));
    assert_eq!(body["version"].as_i64(), Some(2));
    let (_, body) = api(
        "GET",
        &fx.url("/api/v1/policies/web/diff?from=1&to=2"),
        &fx.viewer,
        None,
    );
    let diff = body["unified"].as_str().unwrap();
    assert!(
        diff.contains("-")
            && diff.contains("/bin/sh")
            && diff.contains("+")
            && diff.contains("/bin/bash"),
        "{diff}"
    );
    let (_, body) = api(
        "GET",
        &fx.url("/api/v1/policies/web/versions/1"),
        &fx.viewer,
        None,
    );
    assert_eq!(body["policy"]["rules"][0]["path"][0], "/bin/sh");

    let (status, _) = api(
        "PUT",
        &fx.url("/api/v1/assignments/a"),
        &fx.admin,
        Some(&json!({"policy": "web", "version": 1, "images": ["shop/*"]}).to_string()),
    );
    assert_eq!(status, 200);
    let (status, body) = api("DELETE", &fx.url("/api/v1/policies/web"), &fx.admin, None);
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["assignments"], json!(["a"]));
    assert_eq!(
        api("DELETE", &fx.url("/api/v1/assignments/a"), &fx.admin, None).0,
        200
    );
    let (status, body) = api("DELETE", &fx.url("/api/v1/policies/web"), &fx.admin, None);
    assert_eq!((status, body["deleted_versions"].as_i64()), (200, Some(2)));
}

#[test]
fn effective_policy_follows_the_assignment_with_etags_and_agent_scopes() {
    let fx = fixture("effective", &[]);
    api("POST", &fx.url("/api/v1/policies"), &fx.admin, Some(POLICY));
    let assign = |name: &str, body: Value| {
        api(
            "PUT",
            &fx.url(&format!("/api/v1/assignments/{name}")),
            &fx.admin,
            Some(&body.to_string()),
        )
    };
    assert_eq!(
        assign(
            "all-shop",
            json!({"policy": "web", "images": ["shop/*"], "mode": "permissive"})
        )
        .0,
        200
    );
    assert_eq!(
        assign(
            "shop-web",
            json!({"policy": "web", "images": ["shop/web:*"], "log": ["deny"]})
        )
        .0,
        200
    );
    // Overrides are validated as part of the policy.
    let (status, body) = assign(
        "bad",
        json!({"policy": "web", "images": ["x"], "log": ["everything"]}),
    );
    assert_eq!(status, 422, "{body}");
    let (status, body) = assign(
        "bad",
        json!({"policy": "web", "images": ["x"], "mode": "on"}),
    );
    assert_eq!(status, 400, "{body}");

    let fetch = |image: &str, etag: Option<&str>| {
        let secret = std::fs::read_to_string(&fx.agent).unwrap();
        let mut req = ureq::get(&fx.url(&format!("/api/v1/agent/policy?image={image}")))
            .set("Authorization", &format!("Bearer {}", secret.trim()));
        if let Some(t) = etag {
            req = req.set("If-None-Match", t);
        }
        match req.call() {
            Ok(r) => (
                r.status(),
                r.header("etag").map(str::to_string),
                r.into_string().unwrap(),
            ),
            Err(ureq::Error::Status(code, r)) => (code, None, r.into_string().unwrap()),
            Err(e) => panic!("{e}"),
        }
    };
    // The more specific glob wins; its log override applies, the mode is the policy's.
    let (status, etag, body) = fetch("shop%2Fweb%3A1.4", None);
    assert_eq!(status, 200, "{body}");
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (doc["mode"].as_str(), doc["log"].clone()),
        (Some("enforce"), json!(["deny"]))
    );
    let etag = etag.unwrap();
    assert_eq!(fetch("shop%2Fweb%3A1.4", Some(&etag)).0, 304);
    let (_, _, body) = fetch("shop%2Fdb%3A2", None);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["mode"],
        "permissive"
    );
    // A mode switch changes the document and so the ETag.
    let (status, _) = api(
        "PATCH",
        &fx.url("/api/v1/assignments/shop-web"),
        &fx.admin,
        Some(r#"{"mode": "disabled"}"#),
    );
    assert_eq!(status, 200);
    let (status, new_etag, body) = fetch("shop%2Fweb%3A1.4", Some(&etag));
    assert_eq!(status, 200);
    assert_ne!(new_etag.unwrap(), etag);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["mode"],
        "disabled"
    );
    // Outside the agent's scope, and no assignment at all.
    assert_eq!(fetch("bank%2Fcore%3A1", None).0, 403);
    let (status, _) = api(
        "PUT",
        &fx.url("/api/v1/assignments/shop-web"),
        &fx.admin,
        Some(&json!({"policy": "web", "images": ["nothing/*"]}).to_string()),
    );
    assert_eq!(status, 200);
    api(
        "DELETE",
        &fx.url("/api/v1/assignments/all-shop"),
        &fx.admin,
        None,
    );
    let (status, _, body) = fetch("shop%2Fweb%3A1.4", None);
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("no assignment applies"), "{body}");
    // Viewer tokens cannot fetch as agents; agents cannot read the API.
    assert_eq!(
        api(
            "GET",
            &fx.url("/api/v1/agent/policy?image=shop/x"),
            &fx.viewer,
            None
        )
        .0,
        403
    );
    assert_eq!(
        api("GET", &fx.url("/api/v1/events"), &fx.agent, None).0,
        403
    );
}

#[test]
fn bad_batches_are_refused_whole_and_good_ones_stored_exactly_once() {
    let fx = fixture("ingest", &["--max-batch-bytes", "20000"]);
    let post = |body: &str, headers: &[(&str, &str)]| {
        api_with(
            "POST",
            &fx.url("/api/v1/agent/events"),
            &fx.agent,
            Some(body),
            headers,
        )
    };
    let good: Vec<Value> = (0..10).map(|n| event("shop/web:1", n)).collect();
    let good = Value::Array(good).to_string();
    let (status, body) = post(&good, &[]);
    assert_eq!((status, body["stored"].as_i64()), (201, Some(10)), "{body}");
    // The same batch again (a retry whose answer was lost) stores nothing.
    let (status, body) = post(&good, &[]);
    assert_eq!(
        (status, body["duplicate"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
    assert_eq!(count(&fx.server, &fx.viewer, ""), 10);

    // Event 2 of 3 is wrong: nothing of the batch is stored.
    let mut bad: Vec<Value> = (100..103).map(|n| event("shop/web:1", n)).collect();
    bad[1]["pid"] = json!("thirty-one");
    let (status, body) = post(&Value::Array(bad.clone()).to_string(), &[]);
    assert_eq!(status, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("event 1: invalid type: string \"thirty-one\""),
        "{message}"
    );
    assert!(message.ends_with("nothing was stored"), "{message}");
    bad[1]["pid"] = json!(31);
    bad[2]["enforced"] = json!("yes");
    let (status, body) = post(&Value::Array(bad.clone()).to_string(), &[]);
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("event 2: invalid type: string \"yes\""),
        "{body}"
    );
    bad[2]["enforced"] = json!(true);
    bad[0]["time"] = json!("yesterday");
    let (status, body) = post(&Value::Array(bad.clone()).to_string(), &[]);
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("event 0: time \"yesterday\""),
        "{body}"
    );
    let (status, body) = post("[{\"time\": ", &[]);
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not a JSON array of events"),
        "{body}"
    );
    // An image outside the agent's scope refuses the whole batch.
    let mut foreign = good.clone();
    foreign = foreign.replacen("shop/web:1", "bank/core:1", 1);
    let (status, body) = post(&foreign, &[]);
    assert_eq!(status, 403, "{body}");
    // Oversize: refused with the limit named.
    let big: Vec<Value> = (0..200).map(|n| event("shop/web:1", 1000 + n)).collect();
    let (status, body) = post(&Value::Array(big).to_string(), &[]);
    assert_eq!(status, 413, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 20000"),
        "{body}"
    );
    assert_eq!(
        count(&fx.server, &fx.viewer, ""),
        10,
        "nothing of a refused batch is stored"
    );
    // Fixed, the batch goes through; an Idempotency-Key makes a
    // different body the same batch.
    bad[0]["time"] = json!("2026-11-23T06:30:01Z");
    let fixed = Value::Array(bad).to_string();
    assert_eq!(post(&fixed, &[("Idempotency-Key", "k1")]).0, 201);
    assert_eq!(post(&good, &[("Idempotency-Key", "k1")]).0, 200);
    assert_eq!(count(&fx.server, &fx.viewer, ""), 13);
    // Search filters and free text; detail with neighbours from the same process.
    let (_, body) = api(
        "GET",
        &fx.url("/api/v1/events?q=MARKER-101&image=shop/web:1"),
        &fx.viewer,
        None,
    );
    let found = body["events"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{body}");
    let id = found[0]["id"].as_i64().unwrap();
    let (_, body) = api(
        "GET",
        &fx.url(&format!("/api/v1/events/{id}?around=2")),
        &fx.viewer,
        None,
    );
    assert_eq!(body["event"]["message"], "marker-101");
    assert_eq!(body["before"].as_array().unwrap().len(), 2, "{body}");
    // marker-100 was re-sent with a later time: it now follows.
    let after: Vec<&str> = body["after"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(after, ["marker-102", "marker-100"], "{body}");
    let (status, body) = api(
        "GET",
        &fx.url("/api/v1/events?from=last+week"),
        &fx.viewer,
        None,
    );
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("from=\"last week\""),
        "{body}"
    );
    // Metrics count what happened.
    let metrics = ureq::get(&fx.url("/metrics"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(
        metrics.contains("ldguard_event_batches_total{outcome=\"stored\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ldguard_event_batches_total{outcome=\"duplicate\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ldguard_event_batches_total{outcome=\"refused\"} 6"),
        "{metrics}"
    );
}

#[test]
fn a_foreign_or_newer_database_is_refused() {
    let dir = common::scratch("foreign");
    let path = dir.join("other.db");
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(format!("import sqlite3; c = sqlite3.connect({:?}); c.execute('create table customers (id int)'); c.commit()", path.display().to_string()))
        .status()
        .unwrap();
    assert!(out.success());
    let run = |db: &str| {
        std::process::Command::new(common::server_exe())
            .args(["token", "list", "--database", db])
            .output()
            .unwrap()
    };
    let out = run(&format!("sqlite:{}", path.display()));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not an ldguard-server database") && err.contains("customers"),
        "{err}"
    );
    // A schema newer than this server: refused, untouched.
    let ours = dir.join("ours.db");
    assert!(run(&format!("sqlite:{}", ours.display())).status.success());
    let bump = std::process::Command::new("python3")
        .arg("-c")
        .arg(format!("import sqlite3; c = sqlite3.connect({:?}); c.execute(\"insert into ldguard_schema values ('ldguard-server', 99, 0)\"); c.commit()", ours.display().to_string()))
        .status()
        .unwrap();
    assert!(bump.success());
    let out = run(&format!("sqlite:{}", ours.display()));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("version 99, newer than this server's"),
        "{err}"
    );
}

/// Aggregates with only a time range read the per-minute roll-ups kept at
/// ingest (and count the partial minutes at the ends from the events);
/// with any other filter they count the events. Both must agree.
#[test]
fn aggregates_from_minute_counts_equal_counts_of_the_events() {
    let fx = fixture("aggregate-counts", &[]);
    let mut events = Vec::new();
    for n in 0..300u64 {
        let mut e = event(&format!("shop/app{}:1", n % 3), n);
        // 300 events over ~25 minutes, seconds not on minute boundaries.
        e["time"] = json!(format!(
            "2026-11-23T06:{:02}:{:02}.{:06}Z",
            10 + n / 12,
            (n * 5) % 60,
            n
        ));
        e["action"] = json!(["allow", "audit", "deny"][(n % 3) as usize]);
        if n % 7 == 0 {
            e.as_object_mut().unwrap().remove("rule");
        }
        events.push(e);
    }
    for chunk in events.chunks(70) {
        let (status, body) = api(
            "POST",
            &fx.url("/api/v1/agent/events"),
            &fx.agent,
            Some(&Value::Array(chunk.to_vec()).to_string()),
        );
        assert_eq!(status, 201, "{body}");
    }
    let range = "from=2026-11-23T06:12:31Z&to=2026-11-23T06:31:07Z";
    for (by, bucket) in [("action", 60), ("rule", 300), ("image", 3600)] {
        let get = |extra: &str| {
            let (status, body) = api(
                "GET",
                &fx.url(&format!(
                    "/api/v1/events/aggregate?by={by}&bucket={bucket}&{range}{extra}"
                )),
                &fx.viewer,
                None,
            );
            assert_eq!(status, 200, "{body}");
            body["counts"].clone()
        };
        // `kind=file` holds for every event but forces counting the events.
        let from_counts = get("");
        let from_events = get("&kind=file");
        assert_eq!(from_counts, from_events, "by={by}");
        let total: i64 = from_counts
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["count"].as_i64().unwrap())
            .sum();
        // 06:12:31 .. 06:31:07 holds the events with 10 + n/12 in 12..=31,
        // minus those before :31 in minute 12 and from :07 in minute 31.
        let expected = events
            .iter()
            .filter(|e| {
                let t = e["time"].as_str().unwrap();
                ("2026-11-23T06:12:31Z"..="2026-11-23T06:31:06.999999Z").contains(&t)
            })
            .count() as i64;
        assert_eq!(total, expected, "by={by}");
        assert!(total > 100, "the range holds most events");
    }
}

/// Over days, aggregates read the day, hour and minute roll-ups kept at
/// ingest (also with an action filter, which the roll-ups are split by),
/// and the events only for the partial hours and minutes at the ends: for
/// every bucket width the dashboard and the bench use, the answer must be
/// the events' own count.
#[test]
fn aggregates_from_day_and_hour_rollups_equal_counts_of_the_events() {
    let fx = fixture("aggregate-rollups", &[]);
    let mut events = Vec::new();
    // 600 events, one every 7 min 13 s from 2026-11-21 05:00:00: ~3 days.
    let start = 1_795_237_200u64;
    for n in 0..600u64 {
        let mut e = event(&format!("shop/app{}:1", n % 4), n);
        let t = start + n * 433;
        e["time"] = json!(format!(
            "2026-11-{:02}T{:02}:{:02}:{:02}.{:06}Z",
            21 + (t - 1_795_219_200) / 86_400,
            (t / 3600) % 24,
            (t / 60) % 60,
            t % 60,
            n
        ));
        e["action"] = json!(["allow", "audit", "deny"][(n % 3) as usize]);
        e["rule"] = json!(format!("r{}", n % 5));
        if n % 11 == 0 {
            e.as_object_mut().unwrap().remove("rule");
        }
        events.push(e);
    }
    for chunk in events.chunks(90) {
        let (status, body) = api(
            "POST",
            &fx.url("/api/v1/agent/events"),
            &fx.agent,
            Some(&Value::Array(chunk.to_vec()).to_string()),
        );
        assert_eq!(status, 201, "{body}");
    }
    let range = "from=2026-11-21T06:12:31Z&to=2026-11-23T17:31:07Z";
    for (by, bucket) in [
        ("action", 60),
        ("action", 1800),
        ("action", 14400),
        ("rule", 3600),
        ("rule", 86400),
        ("rule", 100_000_000),
        ("program", 100_000_000),
        ("image", 100_000_000),
    ] {
        for action in ["", "&action=deny"] {
            let get = |extra: &str| {
                let (status, body) = api(
                    "GET",
                    &fx.url(&format!(
                        "/api/v1/events/aggregate?by={by}&bucket={bucket}&{range}{action}{extra}"
                    )),
                    &fx.viewer,
                    None,
                );
                assert_eq!(status, 200, "{body}");
                body["counts"].clone()
            };
            // `kind=file` holds for every event but forces counting the events.
            let from_rollups = get("");
            let from_events = get("&kind=file");
            assert_eq!(from_rollups, from_events, "by={by} bucket={bucket}{action}");
            let total: i64 = from_rollups
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["count"].as_i64().unwrap())
                .sum();
            let expected = events
                .iter()
                .filter(|e| {
                    let t = e["time"].as_str().unwrap();
                    ("2026-11-21T06:12:31Z"..="2026-11-23T17:31:06.999999Z").contains(&t)
                        && (action.is_empty() || e["action"] == "deny")
                })
                .count() as i64;
            assert_eq!(total, expected, "by={by} bucket={bucket}{action}");
            assert!(total > 150, "the range holds most events");
        }
    }
}

/// Free text beyond the newest rows goes through the full-text index,
/// which knows which rows hold each trigram but not where: it finds
/// exactly what a substring test of every event finds (see
/// `common::free_text`).
#[test]
fn free_text_beyond_the_newest_rows_is_found_through_the_index() {
    let dir = common::scratch("fts");
    let db = format!("sqlite:{}/db/ldguard.db", dir.display());
    common::free_text::found_exactly_through_the_index(&dir, &db);
}

/// Searches (every page), filtered aggregates and neighbours: exactly what
/// a test of every event gives (see `common::filters`).
#[test]
fn filtered_reads_equal_a_test_of_every_event() {
    let dir = common::scratch("filters");
    let db = format!("sqlite:{}/db/ldguard.db", dir.display());
    common::filters::reads_equal_a_test_of_every_event(&dir, &db, 1);
}

//! On a real PostgreSQL (Debian's, a private cluster on loopback): the main
//! story with the real library, two server processes sharing one database,
//! and the database going away mid-ingest.

mod common;

use common::postgres::Postgres;
use common::{api, count, event, token, Server};
use serde_json::Value;
use std::time::{Duration, Instant};

#[test]
fn permissive_report_then_mode_switch_enforces_running_process_on_postgres() {
    let pg = Postgres::start("e2e");
    let dir = common::scratch("e2e-postgres");
    common::scenario::permissive_then_enforce(&dir, &pg.url());
}

/// Free text beyond the newest rows goes through the trigram index over
/// blocks of events: it finds exactly what a substring test of every event
/// finds (see `common::free_text`).
#[test]
fn free_text_beyond_the_newest_rows_is_found_through_the_index_on_postgres() {
    let pg = Postgres::start("fts");
    let dir = common::scratch("fts-postgres");
    common::free_text::found_exactly_through_the_index(&dir, &pg.url());
}

/// Posts `batches` distinct batches like the library's sink does: a batch
/// is retried (the same body) until the server answers 2xx.
fn post_all(url: &str, token: &std::path::Path, first: u64, batches: u64, per: u64) -> (u64, u64) {
    let secret = std::fs::read_to_string(token).unwrap();
    let mut refused = 0;
    let mut retried = 0;
    for b in first..first + batches {
        let body: Vec<Value> = (0..per).map(|i| event("shop/web:1", b * per + i)).collect();
        let body = Value::Array(body).to_string();
        loop {
            let result = ureq::post(url)
                .set("Authorization", &format!("Bearer {}", secret.trim()))
                .set("Content-Type", "application/json")
                .timeout(Duration::from_secs(30))
                .send_string(&body);
            match result {
                Ok(r) if r.status() == 201 || r.status() == 200 => break,
                Err(ureq::Error::Status(503, r)) => {
                    // Refused while the database is away: a precise error, then a retry.
                    let text = r.into_string().unwrap_or_default();
                    assert!(text.contains("database_unavailable"), "{text}");
                    refused += 1;
                }
                Err(ureq::Error::Status(code, r)) => {
                    panic!("batch {b}: {code} {}", r.into_string().unwrap_or_default())
                }
                Ok(r) => panic!("batch {b}: unexpected {}", r.status()),
                Err(_) => retried += 1,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    (refused, retried)
}

#[test]
fn database_going_away_mid_ingest_loses_and_duplicates_nothing() {
    let pg = Postgres::start("outage");
    let dir = common::scratch("outage");
    let db = pg.url();
    let viewer = token(&dir, &db, "viewer", &[], "viewer");
    let agent = token(&dir, &db, "agent", &["shop/*"], "agent");
    // Two stateless servers on the one database, one sender each.
    let one = Server::start(&dir, &db);
    let two = Server::start(&dir, &db);
    const BATCHES: u64 = 60;
    const PER: u64 = 50;
    let senders: Vec<_> = [(&one, 0), (&two, BATCHES)]
        .into_iter()
        .map(|(server, first)| {
            let url = format!("{}/api/v1/agent/events", server.url);
            let agent = agent.clone();
            std::thread::spawn(move || post_all(&url, &agent, first, BATCHES, PER))
        })
        .collect();
    // Let some batches in, then take the database away for a while.
    common::wait_until(Duration::from_secs(60), "the first batches", || {
        count(&one, &viewer, "") > 0
    });
    pg.stop();
    let down = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    // Meanwhile the servers say they are not ready, and keep running.
    let ready = ureq::get(&format!("{}/readyz", one.url)).call();
    assert!(
        matches!(ready, Err(ureq::Error::Status(503, _))),
        "{ready:?}"
    );
    pg.restart();
    eprintln!("database away for {:?}", down.elapsed());
    let mut refused = 0;
    for s in senders {
        let (r, _) = s.join().unwrap();
        refused += r;
    }
    assert!(
        refused > 0,
        "the outage refused no batch: the test did not test it"
    );
    // Every batch stored exactly once: each marker once, the total exact.
    let total = count(&two, &viewer, "");
    assert_eq!(total, (2 * BATCHES * PER) as i64);
    let mut seen = std::collections::HashSet::new();
    let mut page = format!("{}/api/v1/events?limit=1000", one.url);
    loop {
        let (_, body) = api("GET", &page, &viewer, None);
        for e in body["events"].as_array().unwrap() {
            let marker = e["message"].as_str().unwrap().to_string();
            assert!(seen.insert(marker.clone()), "{marker} stored twice");
        }
        match body["next"].as_str() {
            Some(next) => page = format!("{}/api/v1/events?limit=1000&before={next}", one.url),
            None => break,
        }
    }
    for n in 0..2 * BATCHES * PER {
        assert!(seen.contains(&format!("marker-{n}")), "marker-{n} lost");
    }
    let (_, body) = api(
        "GET",
        &format!(
            "{}/api/v1/events/aggregate?by=image&bucket=100000000",
            one.url
        ),
        &viewer,
        None,
    );
    assert_eq!(body["counts"][0]["count"].as_i64(), Some(total), "{body}");
    assert!(ureq::get(&format!("{}/readyz", two.url)).call().is_ok());
}

/// Events are written to PostgreSQL with `COPY` (binary format since
/// migration 8's change; text before): every byte the text format
/// escapes (backslash, tab, newline, carriage return), its
/// NULL marker spelled as text, absent fields and non-ASCII text come back
/// exactly, in the searched columns and in the stored JSON.
#[test]
fn awkward_text_survives_the_copy_into_postgres() {
    let pg = Postgres::start("copy");
    let dir = common::scratch("copy-postgres");
    let db = pg.url();
    let viewer = token(&dir, &db, "viewer", &[], "viewer");
    let agent = token(&dir, &db, "agent", &["shop/*"], "agent");
    let server = Server::start(&dir, &db);
    let awkward = [
        "back\\slash \\N and \\t literally",
        "tab\there\tand\nnewline\r\nend",
        "\\N",
        "quotes \" ' and ünïcödé ✓ 数据",
        "",
    ];
    let mut batch = Vec::new();
    for (n, text) in awkward.iter().enumerate() {
        let mut e = event("shop/web:1", n as u64);
        e["message"] = Value::from(format!("copy-{n} {text}"));
        e["target"] = Value::from(*text);
        e["program"] = Value::from(format!("/bin/{text}"));
        if n == 2 {
            // Absent optional fields are stored as NULL, not as text.
            let object = e.as_object_mut().unwrap();
            object.remove("container");
            object.remove("rule");
            object.remove("target");
        }
        batch.push(e);
    }
    let (status, body) = common::api(
        "POST",
        &format!("{}/api/v1/agent/events", server.url),
        &agent,
        Some(&Value::Array(batch.clone()).to_string()),
    );
    assert!(status == 200 || status == 201, "{status} {body}");
    let (_, body) = api(
        "GET",
        &format!("{}/api/v1/events?limit=100", server.url),
        &viewer,
        None,
    );
    let stored = body["events"].as_array().unwrap();
    assert_eq!(stored.len(), awkward.len(), "{body}");
    for (n, sent) in batch.iter().enumerate() {
        let marker = format!("copy-{n} ");
        let back = stored
            .iter()
            .find(|e| e["message"].as_str().unwrap().starts_with(&marker))
            .unwrap_or_else(|| panic!("{marker} not stored: {body}"));
        for field in ["message", "target", "program", "container", "rule"] {
            assert_eq!(back.get(field), sent.get(field), "event {n}, {field}");
        }
    }
    // The searched columns hold the same text: a filter on the program
    // finds exactly its event.
    let program = format!("/bin/{}", awkward[1]);
    let encoded: String = program.bytes().map(|b| format!("%{b:02X}")).collect();
    let (_, body) = api(
        "GET",
        &format!("{}/api/v1/events?program={encoded}", server.url),
        &viewer,
        None,
    );
    let found = body["events"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{body}");
    assert_eq!(found[0]["program"].as_str(), Some(program.as_str()));
}

/// Searches (every page), filtered aggregates and neighbours on
/// PostgreSQL, which answers them from blocks of events: exactly what a
/// test of every event gives, with two servers writing at once (see
/// `common::filters`).
#[test]
fn filtered_reads_equal_a_test_of_every_event_on_postgres() {
    let pg = Postgres::start("filters");
    let dir = common::scratch("filters-postgres");
    common::filters::reads_equal_a_test_of_every_event(&dir, &pg.url(), 2);
}

/// Blocks written before migration 8 have no Bloom filters but their keys
/// and texts (as migration 7 filled them): reads over a mix of both kinds
/// still equal a test of every event.
#[test]
fn filtered_reads_over_blocks_from_before_migration_8_equal_a_test_of_every_event() {
    let pg = Postgres::start("oldblocks");
    let dir = common::scratch("oldblocks-postgres");
    let url = pg.url();
    let to_old_blocks = || {
        use ldguard_server::store::{BLOCK_KEYS, SEARCH_TEXT};
        let sql = format!(
            "UPDATE event_text SET key_bloom = NULL, text_bloom = NULL, \
             text = COALESCE((SELECT string_agg({SEARCH_TEXT}, E'\\n' ORDER BY id) FROM events \
             WHERE events.id BETWEEN event_text.first_id AND event_text.last_id), ''), \
             keys = (SELECT COALESCE(ARRAY_AGG(DISTINCT k) FILTER (WHERE k IS NOT NULL), '{{}}') \
             FROM events CROSS JOIN LATERAL UNNEST({BLOCK_KEYS}) AS k \
             WHERE events.id BETWEEN event_text.first_id AND event_text.last_id) \
             WHERE first_id IN (SELECT first_id FROM (SELECT first_id, \
             row_number() OVER (ORDER BY first_id) AS n FROM event_text) AS b WHERE n % 2 = 0)"
        );
        let changed = tokio::runtime::Runtime::new().unwrap().block_on(async {
            let pool = sqlx::PgPool::connect(&url).await.unwrap();
            let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM event_text")
                .fetch_one(&pool)
                .await
                .unwrap();
            let changed = sqlx::query(&sql)
                .execute(&pool)
                .await
                .unwrap()
                .rows_affected();
            (changed, total)
        });
        assert!(
            changed.0 > 0 && (changed.0 as i64) < changed.1,
            "{changed:?}: some blocks old, some new"
        );
    };
    common::filters::reads_equal_a_test_of_every_event_after(&dir, &url, 2, &to_old_blocks);
}

/// PostgreSQL stores of each event only what its columns do not hold and
/// rebuilds the event on read: search, detail and learning's reads give
/// back every field as sent (unknown fields dropped), with every optional
/// field, none of them, and times the stored microseconds would spell
/// otherwise; a row stored whole (before that change) reads the same.
#[test]
fn events_come_back_whole_from_their_columns_on_postgres() {
    let pg = Postgres::start("whole");
    let dir = common::scratch("whole-postgres");
    let db = pg.url();
    let viewer = token(&dir, &db, "viewer", &[], "viewer");
    let agent = token(&dir, &db, "agent", &["shop/*"], "agent");
    let server = Server::start(&dir, &db);
    let full = serde_json::json!({
        "time": "2026-11-23T06:30:00.123456Z", "container": "c\"1\\", "image": "shop/web:1",
        "pid": 4294967295u64, "ppid": 7, "uid": 0, "program": "/usr/bin/ünï", "call": "execve",
        "kind": "exec", "target": "/bin/sh\t-c", "resolved": "/usr/bin/dash",
        "host": "example.org:443", "access": "exec", "args": ["sh", "-c", "echo \"hi\"\n"],
        "action": "deny", "enforced": true, "rule": "r9", "severity": "critical",
        "policy": "web", "mode": "enforce", "errno": -13, "dropped": 18446744073709551615u64,
        "behavior": true, "message": "whole-0 denied ✓", "unknown": "dropped"
    });
    let bare = serde_json::json!({
        "time": "2026-11-23T06:31:00Z", "pid": 1, "ppid": 0, "uid": 0, "program": "p",
        "call": "open", "kind": "file", "action": "allow", "enforced": false,
        "severity": "low", "mode": "permissive", "message": "whole-1"
    });
    let mut nanos = full.clone();
    nanos["time"] = Value::from("2026-11-23T06:32:00.999999999Z");
    nanos["message"] = Value::from("whole-2");
    let sent = vec![full, bare, nanos];
    let (status, body) = api(
        "POST",
        &format!("{}/api/v1/agent/events", server.url),
        &agent,
        Some(&Value::Array(sent.clone()).to_string()),
    );
    assert_eq!(status, 201, "{body}");
    let expected = |n: usize| {
        let mut e = sent[n].clone();
        e.as_object_mut().unwrap().remove("unknown");
        e
    };
    let without_id = |e: &Value| {
        let mut e = e.clone();
        e.as_object_mut().unwrap().remove("id");
        e
    };
    let check = |label: &str| {
        let (_, body) = api(
            "GET",
            &format!("{}/api/v1/events?limit=100", server.url),
            &viewer,
            None,
        );
        let events = body["events"].as_array().unwrap();
        assert_eq!(events.len(), 3, "{label}: {body}");
        for n in 0..3 {
            let marker = format!("whole-{n}");
            let back = events
                .iter()
                .find(|e| e["message"].as_str().unwrap().starts_with(&marker))
                .unwrap_or_else(|| panic!("{label}: {marker} missing: {body}"));
            assert_eq!(without_id(back), expected(n), "{label}: search, event {n}");
            let (_, detail) = api(
                "GET",
                &format!("{}/api/v1/events/{}", server.url, back["id"]),
                &viewer,
                None,
            );
            assert_eq!(
                without_id(&detail["event"]),
                expected(n),
                "{label}: detail, {n}"
            );
        }
    };
    check("rebuilt");
    // A row stored whole, as before: read as it is.
    let rewritten = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let pool = sqlx::PgPool::connect(&db).await.unwrap();
        let short: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM events WHERE body LIKE '[%' AND body NOT LIKE '%execve%'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(short, 3, "bodies hold only what the columns do not");
        let mut whole = expected(0);
        whole["message"] = Value::from("whole-0 stored whole");
        sqlx::query("UPDATE events SET body = $1 WHERE message LIKE 'whole-0%'")
            .bind(whole.to_string())
            .execute(&pool)
            .await
            .unwrap()
            .rows_affected()
    });
    assert_eq!(rewritten, 1);
    let (_, body) = api(
        "GET",
        &format!("{}/api/v1/events?limit=100", server.url),
        &viewer,
        None,
    );
    let messages: Vec<&str> = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert!(messages.contains(&"whole-0 stored whole"), "{body}");
}

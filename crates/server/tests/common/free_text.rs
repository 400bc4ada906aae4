//! Free text beyond the newest rows, shared by the SQLite and PostgreSQL
//! suites: the search answers from its index (SQLite: a trigram full-text
//! index over the events; PostgreSQL: a trigram index over blocks of
//! events), and what it finds is exactly what a substring test of every
//! stored event finds, whatever the field or the letter case.

use super::{api, token, Server};
use std::path::Path;

/// Events `bench-load` stores: more than the 20,000 newest rows the search
/// reads before it asks the index.
const EVENTS: u64 = 25_000;

/// The text search matches in `bench-load`'s event `n` (its program,
/// target, rule and message, as `ldguard-server`'s synthetic events have
/// them), lower-cased.
fn search_text(n: u64) -> String {
    let rare = if n % 100_000 == 7 { " needle" } else { "" };
    format!(
        "/usr/bin/prog{} /srv/data/d{}/f{n} r{} bench event {n} of thread {}{rare}",
        n % 50,
        n % 97,
        n % 200,
        n % 8
    )
}

/// The (at most 100) events a free-text search for `q` returns.
fn events_found(url: &str, viewer: &Path, q: &str) -> Vec<serde_json::Value> {
    let encoded: String = q.bytes().map(|b| format!("%{b:02X}")).collect();
    let (status, body) = api(
        "GET",
        &format!("{url}/api/v1/events?limit=100&q={encoded}"),
        viewer,
        None,
    );
    assert_eq!(status, 200, "{body}");
    body["events"].as_array().unwrap().clone()
}

pub fn found_exactly_through_the_index(dir: &Path, database: &str) {
    let loaded = std::process::Command::new(super::server_exe())
        .args(["bench-load", "--events", &EVENTS.to_string()])
        .env("LDGUARD_DATABASE", database)
        .output()
        .unwrap();
    assert!(loaded.status.success(), "{loaded:?}");
    let viewer = token(dir, database, "viewer", &[], "viewer");
    let server = Server::start(dir, database);
    let search = |q: &str| {
        events_found(&server.url, &viewer, q)
            .iter()
            .map(|e| e["message"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    // Events are stored oldest first (n = 0 is the oldest): the newest 100
    // that hold the text, newest first, by a substring test of each.
    let expected = |q: &str| {
        let q = q.to_lowercase();
        (0..EVENTS)
            .rev()
            .filter(|n| search_text(*n).contains(&q))
            .take(100)
            .map(|n| {
                let message = search_text(n);
                message[message.find("bench").unwrap()..].to_string()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(search("needle"), ["bench event 7 of thread 7 needle"]);
    for q in [
        "NeEdLe",
        "7 needle",
        // The message: one old event, ten among the newest rows.
        "event 2070 ",
        "event 2070",
        // Across fields: target and rule; rule and message; program and target.
        "f207 r7 ",
        "r7 bench event 207 ",
        "prog7 /srv/data/d13/f207",
        // Every trigram is in some events (rule r7, then a message of
        // thread 7), the text in none.
        "thread 7 bench",
        "not there at all",
    ] {
        let want = expected(q);
        assert!(want.len() < 100, "{q:?} must go past the newest rows");
        assert_eq!(search(q), want, "q={q:?}");
    }
    assert_eq!(search("r7 bench event 207 ").len(), 1);
    assert_eq!(search("event 2070").len(), 11);
    assert!(search("thread 7 bench").is_empty());
    drop(server);

    // Retention (15 days: the older half of the 30) deletes the blocks
    // none of whose events is left, and the events left are still found
    // through theirs.
    let server = Server::start_with(dir, database, &["--retention-days", "15"]);
    super::wait_until(std::time::Duration::from_secs(60), "retention", || {
        let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
        log.contains("retention: DELETE FROM event_text")
            || log.contains("retention: DELETE FROM events_fts")
    });
    let search = |q: &str| events_found(&server.url, &viewer, q).len();
    assert_eq!(search("needle"), 0, "event 7 expired");
    assert_eq!(search("event 2070"), 10, "events 20700 to 20709 are left");
}

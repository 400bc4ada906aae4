//! Filtered reads, shared by the SQLite and PostgreSQL suites: every
//! search (all of its pages), every filtered aggregate and one event's
//! neighbours answer exactly what a test of every stored event answers.
//! PostgreSQL answers them from blocks of events (their time range and the
//! values they hold) and tests the events of the blocks; events from
//! several servers and connections at once, out of time order, make blocks
//! whose id and time ranges overlap.

use super::{api, event, token, Server};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;

const EVENTS: u64 = 1_500;

/// Which events a read must return.
type Keep<'a> = Box<dyn Fn(&Value) -> bool + 'a>;
const PER_BATCH: usize = 60;

/// Event `n`: fields cycling at different periods, a few absent values,
/// and a time out of order (every time distinct).
fn nth(n: u64) -> Value {
    let mut e = event(&format!("shop/app{}:1", n % 3), n);
    let second = (n * 7919) % 3600;
    e["time"] = json!(format!(
        "2026-11-23T06:{:02}:{:02}.{:06}Z",
        second / 60,
        second % 60,
        n
    ));
    e["container"] = json!(format!("c{}", n % 5));
    e["pid"] = json!(100 + n % 4);
    e["program"] = json!(format!("/usr/bin/p{}", n % 4));
    e["action"] = json!(["allow", "audit", "deny"][(n % 7 % 3) as usize]);
    e["rule"] = json!(format!("r{}", n % 11));
    let o = e.as_object_mut().unwrap();
    if n.is_multiple_of(13) {
        o.remove("rule");
    }
    if n.is_multiple_of(17) {
        o.remove("container");
    }
    e
}

fn field<'a>(e: &'a Value, name: &str) -> Option<&'a str> {
    e.get(name).and_then(Value::as_str)
}

/// Every event of `filters` (query-string pairs), newest first, through
/// pages of 37.
fn search_all(server: &Server, viewer: &Path, filters: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut before = String::new();
    loop {
        let (status, body) = api(
            "GET",
            &format!("{}/api/v1/events?limit=37&{filters}{before}", server.url),
            viewer,
            None,
        );
        assert_eq!(status, 200, "{filters}: {body}");
        for e in body["events"].as_array().unwrap() {
            out.push(e["message"].as_str().unwrap().to_string());
        }
        match body["next"].as_str() {
            Some(next) => before = format!("&before={next}"),
            None => return out,
        }
    }
}

pub fn reads_equal_a_test_of_every_event(dir: &Path, database: &str, servers: usize) {
    reads_equal_a_test_of_every_event_after(dir, database, servers, &|| {});
}

/// The same, with `after_ingest` run once every event is stored and
/// before the reads (e.g. to turn stored blocks into an older schema's).
pub fn reads_equal_a_test_of_every_event_after(
    dir: &Path,
    database: &str,
    servers: usize,
    after_ingest: &dyn Fn(),
) {
    let viewer = token(dir, database, "viewer", &[], "viewer");
    let agent = token(dir, database, "agent", &["shop/*"], "agent");
    let servers: Vec<Server> = (0..servers).map(|_| Server::start(dir, database)).collect();
    let events: Vec<Value> = (0..EVENTS).map(nth).collect();
    // Four senders at once, spread over the servers.
    std::thread::scope(|s| {
        for sender in 0..4 {
            let (events, agent, server) = (&events, &agent, &servers[sender % servers.len()]);
            s.spawn(move || {
                for (i, chunk) in events.chunks(PER_BATCH).enumerate() {
                    if i % 4 == sender {
                        let (status, body) = api(
                            "POST",
                            &format!("{}/api/v1/agent/events", server.url),
                            agent,
                            Some(&Value::Array(chunk.to_vec()).to_string()),
                        );
                        assert_eq!(status, 201, "{body}");
                    }
                }
            });
        }
    });
    after_ingest();
    let server = &servers[0];
    let newest_first = |keep: &dyn Fn(&Value) -> bool| {
        let mut kept: Vec<&Value> = events.iter().filter(|e| keep(e)).collect();
        kept.sort_by(|a, b| field(b, "time").cmp(&field(a, "time")));
        kept.iter()
            .map(|e| field(e, "message").unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let from = "2026-11-23T06:10:00Z";
    let to = "2026-11-23T06:40:00Z";
    let in_range = |e: &Value| (from..to).contains(&field(e, "time").unwrap());
    let cases: Vec<(&str, Keep)> = vec![
        ("", Box::new(|_| true)),
        (
            "action=deny",
            Box::new(|e| field(e, "action") == Some("deny")),
        ),
        (
            "image=shop%2Fapp1%3A1&action=deny",
            Box::new(|e| {
                field(e, "image") == Some("shop/app1:1") && field(e, "action") == Some("deny")
            }),
        ),
        ("rule=r3", Box::new(|e| field(e, "rule") == Some("r3"))),
        (
            "program=%2Fusr%2Fbin%2Fp2&container=c4",
            Box::new(|e| {
                field(e, "program") == Some("/usr/bin/p2") && field(e, "container") == Some("c4")
            }),
        ),
        ("container=c9", Box::new(|_| false)),
        (
            "rule=r5&from=2026-11-23T06:10:00Z&to=2026-11-23T06:40:00Z",
            Box::new(move |e| field(e, "rule") == Some("r5") && in_range(e)),
        ),
        (
            "q=marker-11",
            Box::new(|e| field(e, "message").unwrap().contains("marker-11")),
        ),
        (
            "q=MARKER-1&action=audit",
            Box::new(|e| {
                field(e, "message").unwrap().contains("marker-1")
                    && field(e, "action") == Some("audit")
            }),
        ),
    ];
    for (filters, keep) in &cases {
        let want = newest_first(keep.as_ref());
        assert_eq!(search_all(server, &viewer, filters), want, "{filters}");
    }

    // Aggregates with a filter count the events (the roll-ups cannot).
    let (status, body) = api(
        "GET",
        &format!(
            "{}/api/v1/events/aggregate?by=rule&bucket=600&image=shop%2Fapp2%3A1&from={from}&to={to}",
            server.url
        ),
        &viewer,
        None,
    );
    assert_eq!(status, 200, "{body}");
    let mut got = BTreeMap::new();
    for c in body["counts"].as_array().unwrap() {
        got.insert(
            (
                c["bucket"].as_str().unwrap().to_string(),
                c["value"].to_string(),
            ),
            c["count"].as_i64().unwrap(),
        );
    }
    let mut want = BTreeMap::new();
    for e in events
        .iter()
        .filter(|e| field(e, "image") == Some("shop/app2:1") && in_range(e))
    {
        let t = field(e, "time").unwrap();
        let bucket = format!("{}{}0:00.000000Z", &t[..14], &t[14..15]);
        let rule = e.get("rule").cloned().unwrap_or(Value::Null).to_string();
        *want.entry((bucket, rule)).or_insert(0) += 1;
    }
    assert!(want.len() > 20);
    assert_eq!(got, want);

    // One event's neighbours: the same process (container, or none, and
    // pid), nearest in time on each side.
    for n in [34u64, 52] {
        let message = format!("marker-{n}");
        let (_, body) = api(
            "GET",
            &format!("{}/api/v1/events?limit=100&q={message}", server.url),
            &viewer,
            None,
        );
        let found = body["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["message"] == message.as_str())
            .cloned();
        let id = found.unwrap_or_else(|| panic!("{message} not found"))["id"]
            .as_i64()
            .unwrap();
        let (status, body) = api(
            "GET",
            &format!("{}/api/v1/events/{id}?around=4", server.url),
            &viewer,
            None,
        );
        assert_eq!(status, 200, "{body}");
        let me = &events[n as usize];
        let same = |e: &Value| {
            field(e, "container") == field(me, "container") && e["pid"] == me["pid"] && e != me
        };
        let time = field(me, "time").unwrap();
        let mut before = newest_first(&|e| same(e) && field(e, "time").unwrap() < time);
        before.truncate(4);
        before.reverse();
        let mut after = newest_first(&|e| same(e) && field(e, "time").unwrap() > time);
        after.reverse();
        after.truncate(4);
        let messages = |side: &str| {
            body[side]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["message"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(messages("before"), before, "{message}");
        assert_eq!(messages("after"), after, "{message}");
        assert_eq!(before.len(), 4);
    }
}

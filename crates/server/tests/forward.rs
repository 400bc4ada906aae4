//! Forwarding of stored events to an OTLP/HTTP logs endpoint, Loki and a
//! webhook, end to end: a real `ldguard-server` process stores batches
//! posted by an agent and forwards them.
//!
//! None of these receivers is packaged for Debian, so each receiver here is
//! a FAKE that follows the documented protocol (OTLP/HTTP with protobuf
//! bodies; Loki's JSON push API; a JSON webhook) on loopback. What arrives
//! is decoded with the official schema: OTLP bodies with the
//! `opentelemetry-proto` crate's generated types (prost), Loki bodies as its
//! documented push JSON, and every mapped field is checked.

mod common;

use common::{api, api_with, scratch, token, wait_until, Server};
use hmac::{Hmac, Mac};
use ldguard_source::testing::{Handler, Request, Response, Server as Receiver};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Otel;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use prost::Message;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Every request a fake receiver got.
#[derive(Clone, Default)]
struct Inbox(Arc<Mutex<Vec<Request>>>);

impl Inbox {
    fn handler(&self) -> Handler {
        let inbox = self.clone();
        Arc::new(move |r: &Request| {
            inbox.0.lock().unwrap().push(r.clone());
            Response::new(200, "{}")
        })
    }

    fn requests(&self) -> Vec<Request> {
        self.0.lock().unwrap().clone()
    }
}

struct Fixture {
    dir: PathBuf,
    db: String,
    agent: PathBuf,
    viewer: PathBuf,
}

fn fixture(name: &str) -> Fixture {
    let dir = scratch(name);
    let db = format!("sqlite:{}/db/ldguard.db", dir.display());
    let agent = token(&dir, &db, "agent", &[], "agent");
    let viewer = token(&dir, &db, "viewer", &[], "viewer");
    Fixture {
        dir,
        db,
        agent,
        viewer,
    }
}

fn post(server: &Server, agent: &Path, events: &[Value]) {
    let (status, body) = api_with(
        "POST",
        &format!("{}/api/v1/agent/events", server.url),
        agent,
        Some(&Value::Array(events.to_vec()).to_string()),
        &[],
    );
    assert_eq!(status, 201, "{body}");
}

/// An event with every field the library can write.
fn full_event(n: u64) -> Value {
    json!({
        "time": "2026-11-23T06:30:00.123456Z", "container": "3f2a", "image": "reg:5000/shop/web:1.4",
        "pid": 31, "ppid": 1, "uid": 33, "program": "/usr/sbin/nginx", "call": "connect",
        "kind": "network", "target": "10.0.0.7:5432", "host": "db.internal", "access": "connect",
        "args": ["nginx", "-g"], "action": "deny", "enforced": true, "rule": "no-db",
        "severity": "high", "policy": "web", "mode": "enforce", "errno": 13, "behavior": true,
        "message": format!("marker-{n}")
    })
}

fn small_event(n: u64) -> Value {
    json!({
        "time": format!("2026-11-23T06:30:{:02}.000001Z", n % 60), "container": "c9",
        "image": "shop/api:2", "pid": 7, "ppid": 1, "uid": 0, "program": "/bin/cat",
        "call": "openat", "kind": "file", "target": format!("/srv/f{n}"), "action": "allow",
        "enforced": false, "severity": "info", "mode": "permissive",
        "message": format!("marker-{n}")
    })
}

/// A Prometheus sample of the server's `/metrics`, 0 when absent.
fn metric(server: &Server, series: &str) -> f64 {
    let text = ureq::get(&format!("{}/metrics", server.url))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

fn attrs(list: &[KeyValue]) -> BTreeMap<String, Otel> {
    list.iter()
        .map(|kv| {
            let v = kv.value.as_ref().and_then(|v| v.value.clone()).unwrap();
            (kv.key.clone(), v)
        })
        .collect()
}

fn s(v: &str) -> Otel {
    Otel::StringValue(v.into())
}

/// The OTLP log records of every request, by `log.record.uid`, with the
/// resource attributes of their `ResourceLogs`.
fn otlp_records(
    inbox: &Inbox,
) -> Vec<(
    BTreeMap<String, Otel>,
    opentelemetry_proto::tonic::logs::v1::LogRecord,
)> {
    let mut out = Vec::new();
    for r in inbox.requests() {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/v1/logs");
        assert_eq!(r.header("content-type"), Some("application/x-protobuf"));
        let request = ExportLogsServiceRequest::decode(r.body.as_slice())
            .expect("the body decodes as an OTLP ExportLogsServiceRequest");
        for rl in request.resource_logs {
            let resource = attrs(&rl.resource.unwrap().attributes);
            for sl in rl.scope_logs {
                assert_eq!(sl.scope.as_ref().unwrap().name, "ldguard");
                for lr in sl.log_records {
                    out.push((resource.clone(), lr));
                }
            }
        }
    }
    out
}

#[test]
fn otlp_receiver_decodes_every_mapped_field_and_gets_every_event_after_an_outage() {
    let fx = fixture("forward-otlp");
    let inbox = Inbox::default();
    let mut receiver = Receiver::start(None, inbox.handler());
    let port = receiver.port();
    let token_file = fx.dir.join("otlp.token");
    std::fs::write(&token_file, "otlp-secret\n").unwrap();
    let server = Server::start_with(
        &fx.dir,
        &fx.db,
        &[
            "--forward-otlp",
            &receiver.url("/v1/logs"),
            "--forward-otlp-token-file",
            token_file.to_str().unwrap(),
            "--forward-max-backoff-seconds",
            "1",
        ],
    );
    let file_event = json!({
        "time": "2026-11-23T06:30:01Z", "image": "shop/api@sha256:ab", "pid": 8, "ppid": 1,
        "uid": 0, "program": "/bin/cat", "call": "openat", "kind": "file", "target": "/srv/link",
        "resolved": "/srv/real", "action": "allow", "enforced": false, "severity": "info",
        "mode": "permissive", "dropped": 3, "message": "file-event"
    });
    post(&server, &fx.agent, &[full_event(0), file_event]);
    wait_until(Duration::from_secs(20), "the first records", || {
        otlp_records(&inbox).len() >= 2
    });
    let (resource, record) = otlp_records(&inbox).remove(1);
    assert!(!resource.contains_key("container.id"));
    assert_eq!(resource["container.image.name"], s("shop/api"));
    let Otel::ArrayValue(digests) = &resource["container.image.repo_digests"] else {
        panic!("digests: {resource:?}");
    };
    assert_eq!(digests.values[0].value, Some(s("shop/api@sha256:ab")));
    assert_eq!(record.severity_number, 9, "info is INFO");
    let a = attrs(&record.attributes);
    assert_eq!(a["file.path"], s("/srv/real"));
    assert_eq!(a["ldguard.target"], s("/srv/link"));
    assert_eq!(a["ldguard.resolved"], s("/srv/real"));
    assert_eq!(a["ldguard.dropped"], Otel::IntValue(3));
    assert_eq!(a["ldguard.enforced"], Otel::BoolValue(false));
    assert!(!a.contains_key("rule.name") && !a.contains_key("ldguard.behavior"));
    let first = &inbox.requests()[0];
    assert_eq!(first.header("authorization"), Some("Bearer otlp-secret"));
    let (resource, record) = otlp_records(&inbox).remove(0);
    assert_eq!(resource["container.id"], s("3f2a"));
    assert_eq!(resource["container.image.name"], s("reg:5000/shop/web"));
    assert_eq!(resource["service.name"], s("reg:5000/shop/web"));
    let Otel::ArrayValue(tags) = &resource["container.image.tags"] else {
        panic!("tags: {:?}", resource["container.image.tags"]);
    };
    assert_eq!(tags.values[0].value, Some(s("1.4")));
    // 2026-11-23T06:30:00.123456Z
    assert_eq!(record.time_unix_nano, 1_795_415_400_123_456_000);
    assert!(record.observed_time_unix_nano >= record.time_unix_nano);
    assert_eq!(record.severity_text, "high");
    assert_eq!(
        record.severity_number,
        opentelemetry_proto::tonic::logs::v1::SeverityNumber::Error2 as i32
    );
    assert_eq!(record.body.as_ref().unwrap().value, Some(s("marker-0")));
    let a = attrs(&record.attributes);
    let uid = match &a["log.record.uid"] {
        Otel::StringValue(u) => u.clone(),
        other => panic!("uid {other:?}"),
    };
    assert!(uid.parse::<i64>().unwrap() > 0);
    let expected = [
        ("process.pid", Otel::IntValue(31)),
        ("process.parent_pid", Otel::IntValue(1)),
        ("process.user.id", Otel::IntValue(33)),
        ("process.executable.path", s("/usr/sbin/nginx")),
        ("event.action", s("deny")),
        ("rule.name", s("no-db")),
        ("ldguard.call", s("connect")),
        ("ldguard.kind", s("network")),
        ("ldguard.enforced", Otel::BoolValue(true)),
        ("ldguard.mode", s("enforce")),
        ("ldguard.policy", s("web")),
        ("ldguard.target", s("10.0.0.7:5432")),
        ("destination.address", s("10.0.0.7")),
        ("destination.port", Otel::IntValue(5432)),
        ("destination.domain", s("db.internal")),
        ("ldguard.access", s("connect")),
        ("ldguard.errno", Otel::IntValue(13)),
        ("ldguard.behavior", Otel::BoolValue(true)),
    ];
    for (key, value) in expected {
        assert_eq!(a.get(key), Some(&value), "attribute {key}");
    }
    let Otel::ArrayValue(args) = &a["process.command_args"] else {
        panic!("args {:?}", a["process.command_args"]);
    };
    let args: Vec<_> = args
        .values
        .iter()
        .map(|v| v.value.clone().unwrap())
        .collect();
    assert_eq!(args, [s("nginx"), s("-g")]);

    // The receiver goes down; events keep being stored meanwhile.
    receiver.stop();
    let failures_before = metric(&server, "ldguard_forward_failures_total{sink=\"otlp\"}");
    for batch in 0..5 {
        let events: Vec<Value> = (0..40).map(|i| small_event(1 + batch * 40 + i)).collect();
        post(&server, &fx.agent, &events);
    }
    wait_until(
        Duration::from_secs(20),
        "failed attempts while down",
        || {
            metric(&server, "ldguard_forward_failures_total{sink=\"otlp\"}")
                >= failures_before + 2.0
        },
    );
    assert!(metric(&server, "ldguard_forward_lag_events{sink=\"otlp\"}") >= 200.0);
    // The oldest waiting event was stored over half a second ago (two
    // attempts with backoff have failed since).
    assert!(metric(&server, "ldguard_forward_lag_seconds{sink=\"otlp\"}") >= 0.5);
    // Back up on the same port: every event arrives.
    let _receiver = Receiver::start_on(port, None, inbox.handler());
    wait_until(Duration::from_secs(30), "all 202 records", || {
        otlp_records(&inbox).len() >= 202
    });
    let records = otlp_records(&inbox);
    let mut messages: Vec<String> = records
        .iter()
        .map(|(_, r)| match &r.body.as_ref().unwrap().value {
            Some(Otel::StringValue(m)) => m.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    messages.sort();
    messages.dedup();
    assert_eq!(messages.len(), 202, "every event arrived");
    let uids: std::collections::BTreeSet<String> = records
        .iter()
        .map(|(_, r)| match &attrs(&r.attributes)["log.record.uid"] {
            Otel::StringValue(u) => u.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        uids.len(),
        202,
        "one uid per event, the key to drop redeliveries"
    );
    wait_until(Duration::from_secs(10), "lag back to 0", || {
        metric(&server, "ldguard_forward_lag_events{sink=\"otlp\"}") == 0.0
    });
    assert_eq!(
        metric(
            &server,
            "ldguard_forward_events_total{sink=\"otlp\",outcome=\"delivered\"}"
        ),
        202.0
    );
    let _ = fx.viewer;
}

#[test]
fn loki_gets_its_push_json_with_low_cardinality_labels_over_https() {
    let fx = fixture("forward-loki");
    let inbox = Inbox::default();
    // Over https, trusting a CA made for this test.
    let ca = ldguard_source::testing::TestCa::new();
    let ca_file = fx.dir.join("ca.pem");
    ca.write_ca(&ca_file);
    let receiver = Receiver::start(Some(ca.server_config.clone()), inbox.handler());
    assert!(receiver.url("/").starts_with("https://"));
    let server = Server::start_with(
        &fx.dir,
        &fx.db,
        &[
            "--forward-loki",
            &receiver.url("/loki/api/v1/push"),
            "--forward-loki-tenant",
            "team-a",
            "--forward-ca-file",
            ca_file.to_str().unwrap(),
        ],
    );
    let events: Vec<Value> = (0..30).map(small_event).chain([full_event(99)]).collect();
    post(&server, &fx.agent, &events);
    let lines = |inbox: &Inbox| -> Vec<(BTreeMap<String, String>, String, Value)> {
        let mut out = Vec::new();
        for r in inbox.requests() {
            assert_eq!(r.path, "/loki/api/v1/push");
            assert_eq!(r.header("content-type"), Some("application/json"));
            assert_eq!(r.header("x-scope-orgid"), Some("team-a"));
            let push: Value = serde_json::from_slice(&r.body).unwrap();
            for stream in push["streams"].as_array().unwrap() {
                let labels: BTreeMap<String, String> =
                    serde_json::from_value(stream["stream"].clone()).unwrap();
                let mut last = 0u128;
                for v in stream["values"].as_array().unwrap() {
                    let pair = v.as_array().unwrap();
                    assert_eq!(pair.len(), 2, "[timestamp, line]");
                    let ns: u128 = pair[0].as_str().unwrap().parse().unwrap();
                    assert!(ns >= last, "entries of a stream in time order");
                    last = ns;
                    let line: Value = serde_json::from_str(pair[1].as_str().unwrap()).unwrap();
                    out.push((labels.clone(), pair[0].as_str().unwrap().to_string(), line));
                }
            }
        }
        out
    };
    wait_until(Duration::from_secs(20), "31 lines", || {
        lines(&inbox).len() >= 31
    });
    let got = lines(&inbox);
    assert_eq!(got.len(), 31);
    let (labels, ns, line) = got
        .iter()
        .find(|(_, _, l)| l["message"] == "marker-99")
        .unwrap();
    let expected: BTreeMap<String, String> = [
        ("service_name", "ldguard"),
        ("image", "reg:5000/shop/web"),
        ("kind", "network"),
        ("action", "deny"),
        ("severity", "high"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(labels, &expected);
    assert_eq!(ns, "1795415400123456000");
    // The line is the whole event plus its id.
    assert!(line["id"].as_i64().unwrap() > 0);
    let mut sent = full_event(99);
    sent["id"] = line["id"].clone();
    assert_eq!(line, &sent);
    // Paths and container ids stay in the line, never in labels.
    let distinct: std::collections::BTreeSet<_> = got.iter().map(|g| g.0.clone()).collect();
    assert_eq!(distinct.len(), 2, "one stream per label set: {distinct:?}");
    assert!(got
        .iter()
        .all(|g| !g.0.contains_key("container") && !g.0.contains_key("target")));
}

type HmacSha256 = Hmac<sha2::Sha256>;

fn webhook_events(inbox: &Inbox, key: &[u8]) -> Vec<Value> {
    let mut out = Vec::new();
    for r in inbox.requests() {
        let mut mac = HmacSha256::new_from_slice(key).unwrap();
        mac.update(&r.body);
        let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(r.header("x-ldguard-signature-256"), Some(expected.as_str()));
        assert!(r.header("x-ldguard-delivery").is_some());
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        out.extend(body["events"].as_array().unwrap().iter().cloned());
    }
    out
}

#[test]
fn webhook_is_signed_and_a_restart_resumes_at_the_cursor() {
    let fx = fixture("forward-webhook");
    let inbox = Inbox::default();
    let mut receiver = Receiver::start(None, inbox.handler());
    let port = receiver.port();
    let secret = fx.dir.join("hook.secret");
    std::fs::write(&secret, "hook-key").unwrap();
    let args = [
        "--forward-webhook".to_string(),
        receiver.url("/hook"),
        "--forward-webhook-secret-file".into(),
        secret.display().to_string(),
        "--forward-batch".into(),
        "7".into(),
        "--forward-max-backoff-seconds".into(),
        "1".into(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut server = Server::start_with(&fx.dir, &fx.db, &args);
    post(
        &server,
        &fx.agent,
        &(0..20).map(small_event).collect::<Vec<_>>(),
    );
    wait_until(Duration::from_secs(20), "20 events", || {
        webhook_events(&inbox, b"hook-key").len() >= 20
    });
    assert!(inbox.requests().iter().all(|r| {
        let n = serde_json::from_slice::<Value>(&r.body).unwrap()["events"]
            .as_array()
            .unwrap()
            .len();
        (1..=7).contains(&n)
    }));
    // Down receiver, more events, then the server stops (SIGTERM) with
    // them undelivered; it starts again, the receiver comes back.
    receiver.stop();
    post(
        &server,
        &fx.agent,
        &(20..50).map(small_event).collect::<Vec<_>>(),
    );
    assert!(server.stop(), "a clean exit while the receiver is down");
    let _receiver = Receiver::start_on(port, None, inbox.handler());
    let server = Server::start_with(&fx.dir, &fx.db, &args);
    wait_until(Duration::from_secs(30), "50 events", || {
        webhook_events(&inbox, b"hook-key").len() >= 50
    });
    let got = webhook_events(&inbox, b"hook-key");
    let ids: std::collections::BTreeSet<i64> =
        got.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    let markers: std::collections::BTreeSet<&str> =
        got.iter().map(|e| e["message"].as_str().unwrap()).collect();
    assert_eq!((ids.len(), markers.len()), (50, 50));
    // Nothing delivered before the restart was sent again: the cursor held.
    assert_eq!(got.len(), 50, "no redelivery after a clean restart");
    let _ = server;
}

#[test]
fn two_servers_on_one_database_forward_through_one_lease() {
    let fx = fixture("forward-lease");
    let inbox = Inbox::default();
    let receiver = Receiver::start(None, inbox.handler());
    let secret = fx.dir.join("hook.secret");
    std::fs::write(&secret, "hook-key-2").unwrap();
    let args = [
        "--forward-webhook".to_string(),
        receiver.url("/hook"),
        "--forward-webhook-secret-file".into(),
        secret.display().to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let a = Server::start_with(&fx.dir, &fx.db, &args);
    let b = Server::start_with(&fx.dir, &fx.db, &args);
    let active = |s: &Server| metric(s, "ldguard_forward_active{sink=\"webhook\"}");
    wait_until(Duration::from_secs(10), "one active forwarder", || {
        active(&a) + active(&b) == 1.0
    });
    post(&a, &fx.agent, &(0..10).map(small_event).collect::<Vec<_>>());
    post(
        &b,
        &fx.agent,
        &(10..20).map(small_event).collect::<Vec<_>>(),
    );
    wait_until(Duration::from_secs(20), "20 events", || {
        webhook_events(&inbox, b"hook-key-2").len() >= 20
    });
    assert_eq!(webhook_events(&inbox, b"hook-key-2").len(), 20, "each once");
    assert_eq!(active(&a) + active(&b), 1.0);
    // The holder stops (SIGTERM gives the lease up): the other takes over
    // at its next look, well before the lease would run out.
    let (mut first, mut second) = if active(&a) == 1.0 { (a, b) } else { (b, a) };
    assert!(first.stop());
    wait_until(Duration::from_secs(8), "the other takes the lease", || {
        active(&second) == 1.0
    });
    post(
        &second,
        &fx.agent,
        &(20..30).map(small_event).collect::<Vec<_>>(),
    );
    wait_until(Duration::from_secs(20), "30 events", || {
        webhook_events(&inbox, b"hook-key-2").len() >= 30
    });
    // The holder dies (SIGKILL): a third process takes over once the
    // 15 s lease runs out.
    let third = Server::start_with(&fx.dir, &fx.db, &args);
    assert_eq!(active(&third), 0.0);
    second.child.kill().unwrap();
    second.child.wait().unwrap();
    post(
        &third,
        &fx.agent,
        &(30..40).map(small_event).collect::<Vec<_>>(),
    );
    wait_until(Duration::from_secs(30), "the third takes the lease", || {
        active(&third) == 1.0
    });
    wait_until(Duration::from_secs(20), "40 events", || {
        webhook_events(&inbox, b"hook-key-2").len() >= 40
    });
    let ids: std::collections::BTreeSet<i64> = webhook_events(&inbox, b"hook-key-2")
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 40);
    let _ = api;
}

/// On a real PostgreSQL (Debian's, a private cluster on loopback): two
/// server processes take batches concurrently (so event ids commit out of
/// order), one of them forwards to the fake OTLP receiver, which goes down
/// for a while; every event still arrives, each with its own uid.
#[test]
fn two_servers_on_postgres_forward_every_event_to_otlp_across_an_outage() {
    let pg = common::postgres::Postgres::start("forward");
    let dir = scratch("forward-postgres");
    let db = pg.url();
    let agent = token(&dir, &db, "agent", &[], "agent");
    let inbox = Inbox::default();
    let mut receiver = Receiver::start(None, inbox.handler());
    let port = receiver.port();
    let args = [
        "--forward-otlp".to_string(),
        receiver.url("/v1/logs"),
        "--forward-max-backoff-seconds".into(),
        "1".into(),
        "--forward-batch".into(),
        "50".into(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let a = Server::start_with(&dir, &db, &args);
    let b = Server::start_with(&dir, &db, &args);
    let active = |s: &Server| metric(s, "ldguard_forward_active{sink=\"otlp\"}");
    wait_until(Duration::from_secs(10), "one active forwarder", || {
        active(&a) + active(&b) == 1.0
    });
    let post_from = |server: &Server, first: u64| {
        let url = server.url.clone();
        let agent = agent.clone();
        std::thread::spawn(move || {
            for batch in 0..20 {
                let events: Vec<Value> = (0..10)
                    .map(|i| small_event(first + batch * 10 + i))
                    .collect();
                let (status, body) = api_with(
                    "POST",
                    &format!("{url}/api/v1/agent/events"),
                    &agent,
                    Some(&Value::Array(events).to_string()),
                    &[],
                );
                assert_eq!(status, 201, "{body}");
            }
        })
    };
    let (ta, tb) = (post_from(&a, 0), post_from(&b, 1000));
    // Down while the batches arrive, back a little later.
    std::thread::sleep(Duration::from_millis(300));
    receiver.stop();
    ta.join().unwrap();
    tb.join().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let _receiver = Receiver::start_on(port, None, inbox.handler());
    wait_until(Duration::from_secs(60), "all 400 records", || {
        let uids: std::collections::BTreeSet<String> = otlp_records(&inbox)
            .iter()
            .map(|(_, r)| match &attrs(&r.attributes)["log.record.uid"] {
                Otel::StringValue(u) => u.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        uids.len() >= 400
    });
    let mut messages: Vec<String> = otlp_records(&inbox)
        .iter()
        .map(|(_, r)| match &r.body.as_ref().unwrap().value {
            Some(Otel::StringValue(m)) => m.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    messages.sort();
    messages.dedup();
    assert_eq!(messages.len(), 400, "every event of both servers arrived");
    assert_eq!(active(&a) + active(&b), 1.0, "one forwarder at a time");
}

/// A receiver that answers 503 is retried; one that refuses one event
/// (400) gets the batch in halves until that event is alone, which is
/// skipped and counted; every other event is delivered once.
#[test]
fn error_answers_are_retried_and_a_refused_event_is_skipped_alone() {
    let fx = fixture("forward-errors");
    let inbox = Inbox::default();
    let answered = Arc::new(Mutex::new(0u32));
    let handler: Handler = {
        let inbox = inbox.clone();
        let answered = answered.clone();
        Arc::new(move |r: &Request| {
            let mut n = answered.lock().unwrap();
            *n += 1;
            if *n <= 3 {
                return Response::new(503, "busy");
            }
            if String::from_utf8_lossy(&r.body).contains("poison") {
                return Response::new(400, "bad event");
            }
            inbox.0.lock().unwrap().push(r.clone());
            Response::new(200, "{}")
        })
    };
    let receiver = Receiver::start(None, handler);
    let args = [
        "--forward-webhook".to_string(),
        receiver.url("/hook"),
        "--forward-max-backoff-seconds".into(),
        "1".into(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start_with(&fx.dir, &fx.db, &args);
    let mut events: Vec<Value> = (0..10).map(small_event).collect();
    events[5]["message"] = json!("poison");
    post(&server, &fx.agent, &events);
    let delivered = "ldguard_forward_events_total{sink=\"webhook\",outcome=\"delivered\"}";
    let rejected = "ldguard_forward_events_total{sink=\"webhook\",outcome=\"rejected\"}";
    wait_until(Duration::from_secs(30), "9 delivered, 1 rejected", || {
        metric(&server, delivered) == 9.0 && metric(&server, rejected) == 1.0
    });
    assert!(metric(&server, "ldguard_forward_failures_total{sink=\"webhook\"}") >= 3.0);
    let got: Vec<Value> = inbox
        .requests()
        .iter()
        .flat_map(|r| {
            serde_json::from_slice::<Value>(&r.body).unwrap()["events"]
                .as_array()
                .unwrap()
                .clone()
        })
        .collect();
    let mut markers: Vec<&str> = got.iter().map(|e| e["message"].as_str().unwrap()).collect();
    markers.sort();
    let expected: Vec<String> = (0..10)
        .filter(|n| *n != 5)
        .map(|n| format!("marker-{n}"))
        .collect();
    assert_eq!(markers, expected, "each other event once");
    // No signature header without a secret.
    assert!(inbox.requests()[0]
        .header("x-ldguard-signature-256")
        .is_none());
}

/// An OTLP collector's partial success (a 2xx whose
/// `ExportLogsServiceResponse` says some records were rejected, encoded
/// here with the official types) is counted as rejected, the rest as
/// delivered, and the batch is not sent again.
#[test]
fn an_otlp_partial_success_counts_the_rejected_records() {
    use opentelemetry_proto::tonic::collector::logs::v1::{
        ExportLogsPartialSuccess, ExportLogsServiceResponse,
    };
    let fx = fixture("forward-partial");
    let inbox = Inbox::default();
    let handler: Handler = {
        let inbox = inbox.clone();
        Arc::new(move |r: &Request| {
            let mut requests = inbox.0.lock().unwrap();
            requests.push(r.clone());
            let rejected = if requests.len() == 1 { 2 } else { 0 };
            let answer = ExportLogsServiceResponse {
                partial_success: Some(ExportLogsPartialSuccess {
                    rejected_log_records: rejected,
                    error_message: "too old".into(),
                }),
            };
            Response::new(200, answer.encode_to_vec())
                .with_header("Content-Type", "application/x-protobuf")
        })
    };
    let receiver = Receiver::start(None, handler);
    let server = Server::start_with(
        &fx.dir,
        &fx.db,
        &["--forward-otlp", &receiver.url("/v1/logs")],
    );
    post(
        &server,
        &fx.agent,
        &(0..5).map(small_event).collect::<Vec<_>>(),
    );
    let delivered = "ldguard_forward_events_total{sink=\"otlp\",outcome=\"delivered\"}";
    let rejected = "ldguard_forward_events_total{sink=\"otlp\",outcome=\"rejected\"}";
    wait_until(Duration::from_secs(20), "3 delivered, 2 rejected", || {
        metric(&server, delivered) == 3.0 && metric(&server, rejected) == 2.0
    });
    post(
        &server,
        &fx.agent,
        &(5..7).map(small_event).collect::<Vec<_>>(),
    );
    wait_until(Duration::from_secs(20), "2 more delivered", || {
        metric(&server, delivered) == 5.0
    });
    assert_eq!(
        inbox.requests().len(),
        2,
        "the first batch was not sent again"
    );
    assert_eq!(otlp_records(&inbox).len(), 7);
}

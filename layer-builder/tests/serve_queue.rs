//! The instrumentation job queue of ldguard-server, as `ldguard-layer
//! serve` workers use it, on SQLite and on PostgreSQL (Debian's
//! `postgresql`, a private cluster): one claim wins, a worker that stops
//! renewing its lease loses the job to the next claim, a job whose workers
//! keep dying is failed after three tries, and only the holder may report.

#[path = "../../crates/server/tests/common/postgres.rs"]
#[allow(dead_code)]
mod postgres;
mod serve_common;

use serde_json::{json, Value};
use serve_common::*;
use std::path::Path;
use std::time::{Duration, Instant};

fn claim(server: &str, token: &Path, worker: &str, lease: i64) -> (u16, Value) {
    api(
        "POST",
        &format!("{server}/api/v1/instrument/jobs/claim"),
        token,
        Some(json!({"worker": worker, "leaseSeconds": lease})),
    )
}

fn queue_semantics(dir: &Path, database: &str) {
    let admin = create_token(dir, database, "admin", &[]);
    let viewer = create_token(dir, database, "viewer", &[]);
    // Workers run with an instrumenter token: the queue's worker side and
    // the policies' documents, nothing else.
    let instrumenter = create_token(dir, database, "instrumenter", &[]);
    let (_server, server) = start_server(dir, database);
    let policy = json!({"apiVersion": "ldguard.policy/v1", "name": "web", "mode": "enforce",
        "rules": [{"name": "r", "kind": "exec", "path": ["/bin/sh"], "action": "deny"}]});
    let (status, body) = api(
        "POST",
        &format!("{server}/api/v1/policies"),
        &admin,
        Some(policy),
    );
    assert_eq!(status, 201, "{body}");
    let jobs = format!("{server}/api/v1/instrument/jobs");

    // What a stolen worker token cannot do: change a policy, queue a job,
    // switch a mode, read events, read the job list, use the console.
    let (status, body) = api(
        "GET",
        &format!("{server}/api/v1/policies/web"),
        &instrumenter,
        None,
    );
    assert_eq!(status, 200, "the worker reads the job's policy: {body}");
    let policy =
        json!({"apiVersion": "ldguard.policy/v1", "name": "web", "mode": "disabled", "rules": []});
    for (method, url, body) in [
        ("POST", format!("{server}/api/v1/policies"), Some(policy)),
        ("DELETE", format!("{server}/api/v1/policies/web"), None),
        (
            "POST",
            jobs.clone(),
            Some(json!({"image": "r.example/a:1", "policy": "web"})),
        ),
        ("GET", jobs.clone(), None),
        ("GET", format!("{server}/api/v1/events"), None),
        ("GET", format!("{server}/api/v1/assignments"), None),
        (
            "PUT",
            format!("{server}/api/v1/assignments/all"),
            Some(json!({"policy": "web", "images": ["**"], "mode": "disabled"})),
        ),
        (
            "PATCH",
            format!("{server}/api/v1/assignments/all"),
            Some(json!({"mode": "disabled"})),
        ),
        (
            "POST",
            format!("{server}/api/v1/agent/events"),
            Some(json!([])),
        ),
    ] {
        let (status, answer) = api(method, &url, &instrumenter, body);
        assert_eq!(
            status, 403,
            "{method} {url} with an instrumenter token: {answer}"
        );
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("instrumenter token cannot"),
            "{answer}"
        );
    }

    // Nothing queued: 204.
    assert_eq!(claim(&server, &instrumenter, "w1", 5).0, 204);
    let (status, job) = api(
        "POST",
        &jobs,
        &admin,
        Some(json!({"image": "registry.example.com/shop/web:1.4", "policy": "web"})),
    );
    assert_eq!(status, 201, "{job}");
    let id = job["id"].as_i64().unwrap();
    // A viewer sees jobs but cannot claim them.
    assert_eq!(claim(&server, &viewer, "w1", 5).0, 403);
    let (status, listed) = api("GET", &jobs, &viewer, None);
    assert_eq!(status, 200);
    assert_eq!(listed["jobs"][0]["id"].as_i64(), Some(id));
    assert_eq!(
        claim(&server, &instrumenter, "w1", 1).0,
        400,
        "a lease under 5 s"
    );

    // Eight workers race for one job: exactly one gets it.
    let winners: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|n| {
                let (server, instrumenter) = (&server, &instrumenter);
                s.spawn(move || claim(server, instrumenter, &format!("racer-{n}"), 5).0)
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        winners.iter().filter(|s| **s == 200).count(),
        1,
        "{winners:?}"
    );
    assert_eq!(
        winners.iter().filter(|s| **s == 204).count(),
        7,
        "{winners:?}"
    );
    let (_, held) = api("GET", &format!("{jobs}/{id}"), &admin, None);
    let holder = held["worker"].as_str().unwrap().to_string();
    assert_eq!(held["state"], "running");

    // Only the holder reports.
    let (status, body) = api(
        "POST",
        &format!("{jobs}/{id}/progress"),
        &instrumenter,
        Some(json!({"worker": "someone-else", "message": "x", "leaseSeconds": 5})),
    );
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains(&holder),
        "{body}"
    );
    let (status, body) = api(
        "POST",
        &format!("{jobs}/{id}/progress"),
        &instrumenter,
        Some(json!({"worker": holder, "message": "pulling", "leaseSeconds": 5})),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["progress"], "pulling");
    let (status, body) = api(
        "POST",
        &format!("{jobs}/{id}/result"),
        &instrumenter,
        Some(json!({"worker": holder, "digest": "sha256:abc"})),
    );
    assert_eq!(status, 400, "a malformed digest: {body}");

    // The holder dies: after its lease, the job goes to the next claim, and
    // the dead worker's late result is refused.
    let started = Instant::now();
    let (status, again) = loop {
        let (status, body) = claim(&server, &instrumenter, "w2", 5);
        if status == 200 {
            break (status, body);
        }
        assert_eq!(status, 204);
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "never reclaimed"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(status, 200);
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "reclaimed before the lease ran out"
    );
    assert_eq!(again["id"].as_i64(), Some(id));
    assert_eq!(again["attempts"], 2);
    assert!(again["progress"]
        .as_str()
        .unwrap()
        .contains("stopped renewing"));
    let (status, _) = api(
        "POST",
        &format!("{jobs}/{id}/result"),
        &instrumenter,
        Some(json!({"worker": holder, "error": "late"})),
    );
    assert_eq!(status, 409);

    // w2 dies too, then w3: after the third try the job fails, saying why.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut third = false;
    loop {
        let (status, body) = claim(&server, &instrumenter, "w3", 5);
        if status == 200 && !third {
            assert_eq!(body["attempts"], 3);
            third = true;
        }
        let (_, job) = api("GET", &format!("{jobs}/{id}"), &admin, None);
        if job["state"] == "failed" {
            assert!(third);
            assert_eq!(job["attempts"], 3);
            let error = job["error"].as_str().unwrap();
            assert!(
                error.contains("stopped renewing its lease") && error.contains("3"),
                "{error}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "never failed: {job}");
        std::thread::sleep(Duration::from_millis(300));
    }

    // A success records the digest and where it went.
    let (_, job2) = api(
        "POST",
        &jobs,
        &admin,
        Some(json!({"image": "docker://registry.example.com/shop/api:2", "policy": "web"})),
    );
    let id2 = job2["id"].as_i64().unwrap();
    let (status, _) = claim(&server, &instrumenter, "w4", 60);
    assert_eq!(status, 200);
    let digest = format!("sha256:{}", "ab".repeat(32));
    let (status, done) = api(
        "POST",
        &format!("{jobs}/{id2}/result"),
        &instrumenter,
        Some(json!({"worker": "w4", "digest": digest,
                    "destination": "docker://registry.example.com/shop/api:2-layered"})),
    );
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["state"], "succeeded");
    assert_eq!(done["digest"], digest.as_str());
    assert_eq!(done["image"], "registry.example.com/shop/api:2");
    assert_eq!(
        done["destination"],
        "docker://registry.example.com/shop/api:2-layered"
    );
}

#[test]
fn job_queue_on_sqlite() {
    let tmp = tempfile::tempdir().unwrap();
    let database = format!("sqlite:{}/db/ldguard.db", tmp.path().display());
    queue_semantics(tmp.path(), &database);
}

#[test]
fn job_queue_on_postgres() {
    let pg = postgres::Postgres::start("serve-queue");
    let tmp = tempfile::tempdir().unwrap();
    queue_semantics(tmp.path(), &pg.url());
}

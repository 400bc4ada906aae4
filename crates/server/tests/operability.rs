//! Operability: Debian's Prometheus scrapes `/metrics`; a SIGTERM in the
//! middle of ingestion loses no accepted batch.

mod common;

use common::{count, event, token, Server};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn prometheus_scrapes_metrics() {
    let dir = common::scratch("prometheus");
    let db = format!("sqlite:{}/db/ldguard.db", dir.display());
    let agent = token(&dir, &db, "agent", &[], "agent");
    let server = Server::start(&dir, &db);
    let batch = Value::Array((0..7).map(|n| event("shop/web:1", n)).collect()).to_string();
    let (status, _) = common::api(
        "POST",
        &format!("{}/api/v1/agent/events", server.url),
        &agent,
        Some(&batch),
    );
    assert_eq!(status, 201);

    let target = server.url.trim_start_matches("http://");
    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: ldguard\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut prometheus = Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("prometheus.log")).unwrap(),
        ))
        .spawn()
        .expect("Debian's prometheus (scripts/setup installs it)");
    let query = format!("http://127.0.0.1:{port}/api/v1/query?query=ldguard_events_stored_total");
    let mut last = String::new();
    let found = (0..120).any(|_| {
        std::thread::sleep(Duration::from_millis(500));
        last = ureq::get(&query)
            .call()
            .ok()
            .and_then(|r| r.into_string().ok())
            .unwrap_or_default();
        let v: Value = serde_json::from_str(&last).unwrap_or(Value::Null);
        v["data"]["result"][0]["value"][1] == "7"
    });
    let targets = ureq::get(&format!("http://127.0.0.1:{port}/api/v1/targets"))
        .call()
        .ok()
        .and_then(|r| r.into_string().ok())
        .unwrap_or_default();
    let _ = prometheus.kill();
    let _ = prometheus.wait();
    assert!(
        found,
        "prometheus never saw ldguard_events_stored_total 7: {last}\n{targets}"
    );
    let targets: Value = serde_json::from_str(&targets).unwrap();
    assert_eq!(
        targets["data"]["activeTargets"][0]["health"], "up",
        "{targets}"
    );
}

#[test]
fn sigterm_mid_ingest_loses_no_accepted_batch() {
    let dir = common::scratch("shutdown");
    let db = format!("sqlite:{}/db/ldguard.db", dir.display());
    let agent = token(&dir, &db, "agent", &[], "agent");
    let viewer = token(&dir, &db, "viewer", &[], "viewer");
    let mut server = Server::start(&dir, &db);
    const PER: u64 = 100;
    let accepted = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..4u64)
        .map(|t| {
            let (url, agent, accepted, stop) = (
                format!("{}/api/v1/agent/events", server.url),
                agent.clone(),
                accepted.clone(),
                stop.clone(),
            );
            std::thread::spawn(move || {
                let secret = std::fs::read_to_string(&agent).unwrap();
                for b in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let first = (t * 1_000_000 + b) * PER;
                    let body: Vec<Value> = (first..first + PER)
                        .map(|n| event("shop/web:1", n))
                        .collect();
                    match ureq::post(&url)
                        .set("Authorization", &format!("Bearer {}", secret.trim()))
                        .send_string(&Value::Array(body).to_string())
                    {
                        Ok(r) if r.status() == 201 => {
                            accepted.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(r) => panic!("unexpected {}", r.status()),
                        // Refused connections once the server stopped listening.
                        Err(_) => break,
                    }
                }
            })
        })
        .collect();
    common::wait_until(Duration::from_secs(60), "some accepted batches", || {
        accepted.load(Ordering::Relaxed) >= 5
    });
    assert!(server.stop(), "the server exits cleanly on SIGTERM");
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.join().unwrap();
    }
    let accepted = accepted.load(Ordering::Relaxed);
    let server = Server::start(&dir, &db);
    assert_eq!(
        count(&server, &viewer, ""),
        (accepted * PER) as i64,
        "{accepted} batches were acknowledged"
    );
}

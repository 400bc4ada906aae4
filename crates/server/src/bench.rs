//! Synthetic events for `bench/server/run`: stored through the same
//! `Store::insert_events` the ingest endpoint uses, without HTTP, so that
//! millions of events load in minutes.

use crate::store::{now_us, EventRow, Store};
use ldguard_events::Event;

/// Events per stored batch.
const BATCH: u64 = 5_000;

/// The `n`th synthetic event at `time_us`: 3 actions, 20 images, 200 rules,
/// 50 programs, 1,000 containers; one message in 100,000 holds a rare word.
pub fn event(n: u64, time_us: i64) -> Event {
    let action = ["allow", "audit", "deny"][(n % 3) as usize];
    let secs = time_us.div_euclid(1_000_000);
    let nanos = (time_us.rem_euclid(1_000_000) * 1000) as u32;
    let rare = if n % 100_000 == 7 { " needle" } else { "" };
    Event {
        time: ldguard_events::format_time(secs, nanos),
        container: Some(format!("c{}", n % 1000)),
        image: Some(format!("shop/app{}:1", n % 20)),
        pid: 1000 + (n % 500) as u32,
        ppid: 1,
        uid: 33,
        program: format!("/usr/bin/prog{}", n % 50),
        call: "openat".into(),
        kind: "file".into(),
        target: Some(format!("/srv/data/d{}/f{}", n % 97, n)),
        resolved: None,
        host: None,
        access: Some("read".into()),
        args: Vec::new(),
        action: action.into(),
        enforced: action == "deny",
        rule: Some(format!("r{}", n % 200)),
        severity: "high".into(),
        policy: Some("web".into()),
        mode: "enforce".into(),
        errno: None,
        dropped: None,
        behavior: false,
        message: format!("bench event {n} of thread {}{rare}", n % 8),
    }
}

/// Batches in flight at once, so the writer groups them as it groups
/// concurrent requests.
const IN_FLIGHT: u64 = 4;

/// Stores `count` events spread evenly over the `days` before now.
pub async fn load(store: &Store, count: u64, days: u64) -> Result<(), sqlx::Error> {
    let now = now_us();
    let span = (days.max(1) * 86_400_000_000) as i64;
    let step = (span / count.max(1) as i64).max(1);
    let mut pending = tokio::task::JoinSet::new();
    let mut n = 0;
    while n < count {
        if pending.len() as u64 >= IN_FLIGHT {
            if let Some(done) = pending.join_next().await {
                done.map_err(|e| sqlx::Error::Protocol(e.to_string()))??;
            }
        }
        let rows: Vec<EventRow> = (n..(n + BATCH).min(count))
            .filter_map(|i| EventRow::from_event(event(i, now - span + i as i64 * step)))
            .collect();
        let store = store.clone();
        let key = format!("bench:{now}:{n}");
        pending.spawn(async move { store.insert_events(&key, 0, now, rows).await });
        n += BATCH;
    }
    while let Some(done) = pending.join_next().await {
        done.map_err(|e| sqlx::Error::Protocol(e.to_string()))??;
    }
    Ok(())
}

//! Loki's push API, JSON encoding (`POST /loki/api/v1/push`):
//! `{"streams":[{"stream":{labels},"values":[["<unix ns>","<line>"],…]}]}`.
//!
//! Labels are the few values with a small, bounded set (service, image
//! name, kind, action, severity): Loki indexes every distinct label set as
//! a stream, and container ids or paths as labels would make millions. The
//! line is the event's JSON with its `id` added, so LogQL's `| json` reads
//! every field.

use super::{image_parts, Forwardable};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// The label set of one event.
pub fn labels(f: &Forwardable) -> BTreeMap<&'static str, String> {
    let e = &f.event;
    let mut l = BTreeMap::from([
        ("service_name", "ldguard".to_string()),
        ("kind", e.kind.clone()),
        ("action", e.action.clone()),
        ("severity", e.severity.clone()),
    ]);
    if let Some(image) = &e.image {
        l.insert("image", image_parts(image).0.to_string());
    }
    l
}

pub fn encode(events: &[Forwardable]) -> Vec<u8> {
    let mut streams: BTreeMap<BTreeMap<&'static str, String>, Vec<(u64, String)>> = BTreeMap::new();
    for f in events {
        streams
            .entry(labels(f))
            .or_default()
            .push((f.time_ns, f.line().to_string()));
    }
    let streams: Vec<Value> = streams
        .into_iter()
        .map(|(labels, mut values)| {
            // Loki wants each stream's entries in time order.
            values.sort_by_key(|v| v.0);
            let stream: Map<String, Value> = labels
                .into_iter()
                .map(|(k, v)| (k.to_string(), Value::String(v)))
                .collect();
            json!({
                "stream": stream,
                "values": values
                    .into_iter()
                    .map(|(ns, line)| json!([ns.to_string(), line]))
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::to_vec(&json!({ "streams": streams })).unwrap_or_default()
}

//! Prometheus metrics in the text exposition format.
//!
//! A handful of counters and one latency histogram: plain atomics and a
//! formatter are less code than adapting a metrics registry crate.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Upper bounds of the latency buckets, in seconds.
const BOUNDS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

#[derive(Default)]
pub struct Histogram {
    buckets: [AtomicU64; BOUNDS.len()],
    count: AtomicU64,
    /// Sum in microseconds.
    sum_us: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, seconds: f64) {
        for (bound, bucket) in BOUNDS.iter().zip(&self.buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }
}

#[derive(Default)]
pub struct Metrics {
    pub requests_2xx: Counter,
    pub requests_3xx: Counter,
    pub requests_4xx: Counter,
    pub requests_5xx: Counter,
    pub batches_stored: Counter,
    pub batches_duplicate: Counter,
    pub batches_refused: Counter,
    pub events_stored: Counter,
    pub policy_requests: Counter,
    pub policy_not_modified: Counter,
    pub db_seconds: Histogram,
    pub forward: crate::forward::ForwardMetrics,
}

impl Metrics {
    pub fn count_status(&self, status: u16) {
        match status {
            200..=299 => self.requests_2xx.inc(),
            300..=399 => self.requests_3xx.inc(),
            400..=499 => self.requests_4xx.inc(),
            _ => self.requests_5xx.inc(),
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, values: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (labels, v) in values {
                let _ = writeln!(out, "{name}{labels} {v}");
            }
        };
        counter(
            "ldguard_http_requests_total",
            "HTTP requests answered, by status class.",
            &[
                ("{code=\"2xx\"}", self.requests_2xx.get()),
                ("{code=\"3xx\"}", self.requests_3xx.get()),
                ("{code=\"4xx\"}", self.requests_4xx.get()),
                ("{code=\"5xx\"}", self.requests_5xx.get()),
            ],
        );
        counter(
            "ldguard_event_batches_total",
            "Event batches received, by outcome.",
            &[
                ("{outcome=\"stored\"}", self.batches_stored.get()),
                ("{outcome=\"duplicate\"}", self.batches_duplicate.get()),
                ("{outcome=\"refused\"}", self.batches_refused.get()),
            ],
        );
        counter(
            "ldguard_events_stored_total",
            "Events stored.",
            &[("", self.events_stored.get())],
        );
        counter(
            "ldguard_policy_requests_total",
            "Effective-policy requests from the library, and those answered 304.",
            &[
                ("{result=\"all\"}", self.policy_requests.get()),
                ("{result=\"not_modified\"}", self.policy_not_modified.get()),
            ],
        );
        let h = &self.db_seconds;
        let name = "ldguard_database_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Latency of event writes and searches.\n# TYPE {name} histogram"
        );
        for (bound, bucket) in BOUNDS.iter().zip(&h.buckets) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = h.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            h.sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {count}");
        self.forward.render(&mut out);
        out
    }
}

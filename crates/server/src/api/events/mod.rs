//! Events: ingestion of the library's batches, search, one event with its
//! neighbours, aggregates, and learning a draft policy from stored events.

mod ingest;
mod learn;
mod query;

pub use ingest::ingest;
pub use learn::learn;
pub use query::{aggregate, detail, search, Filter};

/// Microseconds since the epoch for an event's `time`, or a parameter:
/// RFC 3339 UTC (`2026-11-23T06:30:00Z`), Unix seconds, or an age such as
/// `15m`, `2h`, `7d` (that long before now).
pub fn parse_instant(text: &str, now_us: i64) -> Option<i64> {
    if let Some((secs, nanos)) = ldguard_events::parse_time(text) {
        return Some(secs * 1_000_000 + i64::from(nanos / 1000));
    }
    if let Ok(secs) = text.parse::<i64>() {
        return Some(secs * 1_000_000);
    }
    let unit = match text.chars().last()? {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return None,
    };
    let n: i64 = text[..text.len() - 1].parse().ok()?;
    Some(now_us - n * unit * 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::parse_instant;

    #[test]
    fn instants() {
        assert_eq!(parse_instant("1970-01-01T00:00:01.5Z", 0), Some(1_500_000));
        assert_eq!(parse_instant("10", 0), Some(10_000_000));
        assert_eq!(parse_instant("2m", 1_000_000_000), Some(880_000_000));
        assert_eq!(parse_instant("yesterday", 0), None);
    }
}

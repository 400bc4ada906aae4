//! One event, as docs/distribution.md shows it.

use crate::line::{FixedText, Fmt, Text};
use serde::{Deserialize, Serialize};
use std::fmt::Write;

/// One decision (or a status note from the library) worth reporting.
///
/// Field order is the order of docs/distribution.md's example; optional fields are left
/// out of the JSON when empty so lines stay short.
///
/// Unknown fields are ignored when reading: shippers (Fluent Bit, Vector,
/// falcosidekick) add their own (`kubernetes`, `host`, ...), and a reader
/// that dropped those events would report "0 events" for a real file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// UTC, RFC 3339 with microseconds (see [`format_time`]).
    pub time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    pub pid: u32,
    pub ppid: u32,
    pub uid: u32,
    /// Resolved `/proc/self/exe` of the process that made the call.
    pub program: String,
    /// The interposed libc entry point, or `ldguard` for the library's own
    /// status events (policy problems, dropped events).
    pub call: String,
    /// `file`, `exec`, `network`, `syscall`, `drift` (a program or library
    /// the image did not ship), or `status`.
    pub kind: String,
    /// What the call was aimed at: a path, `address:port`, a socket path, a
    /// host name or a call name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The target with symlinks resolved, when that differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved: Option<String>,
    /// DNS name the process resolved to the network target, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// File access (`read`/`write`) or network direction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<String>,
    /// Argument vector of exec calls (possibly truncated).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    pub action: String,
    /// Whether the action took effect (false in permissive mode).
    pub enforced: bool,
    /// Name of the deciding rule; absent when a default decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    pub severity: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    pub mode: String,
    /// errno the call failed with, when it was blocked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<i32>,
    /// Events lost because the queue was full, reported by a status event
    /// (an HTTP sink only: the library writes file and stderr events on the
    /// thread that makes them, and drops none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped: Option<u64>,
    /// Set on `behavior` records (policy `log: ["behavior"]`): the first
    /// time this process made this operation, whatever the decision. Left
    /// out of the JSON when false, so other events keep their shape.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub behavior: bool,
    pub message: String,
}

impl Event {
    /// The JSON line for file and stderr sinks (with the trailing newline).
    pub fn to_line(&self) -> Vec<u8> {
        // Serialising a plain struct of strings and numbers cannot fail.
        let mut line = serde_json::to_vec(self).unwrap_or_default();
        line.push(b'\n');
        line
    }
}

/// Formats a Unix time as `2026-11-23T06:30:00.123456Z`.
pub fn format_time(secs: i64, nanos: u32) -> String {
    time_text(secs, nanos).as_str().to_owned()
}

/// [`format_time`] without allocation (for lines built on a hook path).
pub fn time_text(secs: i64, nanos: u32) -> FixedText<40> {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let mut text = FixedText::<40>::new();
    let (h, min, sec, micros) = (rem / 3600, rem % 3600 / 60, rem % 60, nanos / 1000);
    if (0..=9999).contains(&y) && micros < 1_000_000 {
        // Every event's clock: digits by hand (core::fmt's padding costs
        // hundreds of instructions per field).
        let mut b = *b"0000-00-00T00:00:00.000000Z";
        let mut put = |at: usize, width: usize, mut v: u64| {
            for i in (at..at + width).rev() {
                b[i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(0, 4, y as u64);
        put(5, 2, u64::from(m));
        put(8, 2, u64::from(d));
        put(11, 2, h as u64);
        put(14, 2, min as u64);
        put(17, 2, sec as u64);
        put(20, 6, u64::from(micros));
        text.text(std::str::from_utf8(&b).unwrap_or_default());
        return text;
    }
    // Into a fixed buffer: cannot fail (a cut would only shorten it, and
    // 40 bytes hold every year an i64 of seconds can name).
    let _ = write!(
        Fmt(&mut text),
        "{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{sec:02}.{micros:06}Z"
    );
    text
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// algorithm; exact for every i64 day count we can meet).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_format_matches_spec_example() {
        // 2026-11-23T06:30:00Z
        assert_eq!(
            format_time(1_795_415_400, 123_456_789),
            "2026-11-23T06:30:00.123456Z"
        );
        assert_eq!(format_time(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(format_time(951_782_400, 0), "2000-02-29T00:00:00.000000Z");
        // Years outside 0..=9999 take core::fmt's way: the same form.
        for secs in [-62_167_219_200i64 - 1, 253_402_300_800, -1, 1_795_415_400] {
            let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
            let (y, m, d) = civil_from_days(days);
            let by_fmt = format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z",
                rem / 3600,
                rem % 3600 / 60,
                rem % 60,
                7
            );
            assert_eq!(format_time(secs, 7_999), by_fmt);
        }
        // The fixed buffer holds the longest (not cut: the `Z` is there).
        assert!(format_time(i64::MAX, 999_999_999).ends_with(".999999Z"));
        assert!(format_time(i64::MIN, 0).ends_with(".000000Z"));
    }

    #[test]
    fn spec_example_round_trips() {
        let text = r#"{"time":"2026-11-23T06:30:00.123456Z","container":"3f2a","image":"shop/web:1.4",
 "pid":31,"ppid":1,"uid":33,"program":"/usr/sbin/nginx","call":"execve","kind":"exec",
 "target":"/bin/sh","args":["/bin/sh","-c","id"],"action":"deny","enforced":true,
 "rule":"no-shell-from-nginx","severity":"high","policy":"web","mode":"enforce",
 "message":"/usr/sbin/nginx was blocked from executing /bin/sh"}"#;
        let event: Event = serde_json::from_str(text).unwrap();
        assert_eq!(event.rule.as_deref(), Some("no-shell-from-nginx"));
        let line = event.to_line();
        assert_eq!(line.last(), Some(&b'\n'));
        let again: Event = serde_json::from_slice(&line).unwrap();
        assert_eq!(again, event);
        // Absent optional fields stay absent.
        assert!(!String::from_utf8(line).unwrap().contains("dropped"));
    }
}

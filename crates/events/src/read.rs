//! Reading event files back (`ldguard events`, `ldguard learn`): one JSON
//! object per line, as the `file:` sink writes them.
//!
//! A bad line does not end the read: the reader yields an error naming the
//! line and carries on with the next one, so one torn write (a process
//! killed mid-line, a disk that filled up) costs one event, not the file.

use std::fmt;
use std::io::{self, BufRead};

use crate::Event;

/// Why one line of an event file could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line number.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Iterates over the events of a JSON-lines stream. Blank lines are
/// skipped; every other line yields an event or a [`LineError`]. An I/O
/// error is reported once, at the line where it happened, and ends the
/// iteration.
pub struct EventReader<R> {
    input: R,
    line: usize,
    buf: Vec<u8>,
    done: bool,
}

impl<R: BufRead> EventReader<R> {
    pub fn new(input: R) -> Self {
        EventReader {
            input,
            line: 0,
            buf: Vec::new(),
            done: false,
        }
    }

    /// The number of the last line read (1-based; 0 before the first).
    pub fn line(&self) -> usize {
        self.line
    }
}

impl<R: BufRead> Iterator for EventReader<R> {
    type Item = Result<Event, LineError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            self.buf.clear();
            let n = match self.input.read_until(b'\n', &mut self.buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.done = true;
                    return Some(Err(LineError {
                        line: self.line + 1,
                        message: format!("cannot read: {e}"),
                    }));
                }
            };
            if n == 0 {
                self.done = true;
                break;
            }
            self.line += 1;
            let complete = self.buf.last() == Some(&b'\n');
            let text = self.buf.trim_ascii();
            if text.is_empty() {
                continue;
            }
            return Some(serde_json::from_slice::<Event>(text).map_err(|e| {
                let message = if !complete && e.is_eof() {
                    "truncated event (the file ends in the middle of this line)".to_string()
                } else if e.is_eof() {
                    format!("incomplete event: {e}")
                } else {
                    format!("not an ldguard event: {e}")
                };
                LineError {
                    line: self.line,
                    message,
                }
            }));
        }
        None
    }
}

/// Parses the `time` field of an event (`2026-11-23T06:30:00.123456Z`,
/// fraction optional) into Unix seconds and nanoseconds.
pub fn parse_time(text: &str) -> Option<(i64, u32)> {
    let b = text.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let s = text.get(from..from + len)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (h, mi, s) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let rest = &text[19..];
    let (frac, zone) = match rest.strip_prefix('.') {
        Some(r) => {
            let digits = r.bytes().take_while(u8::is_ascii_digit).count();
            (&r[..digits], &r[digits..])
        }
        None => ("", rest),
    };
    if zone != "Z" || frac.len() > 9 {
        return None;
    }
    let nanos = if frac.is_empty() {
        0
    } else {
        frac.parse::<u32>().ok()? * 10u32.pow(9 - frac.len() as u32)
    };
    let days = days_from_civil(y, mo as u32, d as u32);
    Some((days * 86_400 + h * 3600 + mi * 60 + s, nanos))
}

/// Proleptic Gregorian date to days since 1970-01-01 (Howard Hinnant's
/// algorithm, the inverse of the one behind [`crate::format_time`]).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format_time;

    fn event_line(pid: u32) -> String {
        let e = Event {
            time: format_time(1_795_415_400, 0),
            pid,
            program: "/bin/true".into(),
            call: "openat".into(),
            kind: "file".into(),
            action: "allow".into(),
            severity: "info".into(),
            mode: "permissive".into(),
            ..Event::default()
        };
        String::from_utf8(e.to_line()).unwrap()
    }

    #[test]
    fn bad_lines_are_reported_with_their_number_and_reading_goes_on() {
        let good = event_line(1);
        let text = format!(
            "{good}\n{{\"time\":\"x\"}}\nnot json\n{}{}",
            event_line(2),
            &event_line(3)[..40]
        );
        let items: Vec<_> = EventReader::new(text.as_bytes()).collect();
        assert_eq!(items.len(), 5, "{items:?}");
        assert_eq!(items[0].as_ref().unwrap().pid, 1);
        let e = items[1].as_ref().unwrap_err();
        assert_eq!(e.line, 3, "the blank line 2 is skipped but counted");
        assert!(e.message.contains("not an ldguard event"), "{e}");
        assert_eq!(items[2].as_ref().unwrap_err().line, 4);
        assert_eq!(items[3].as_ref().unwrap().pid, 2);
        let last = items[4].as_ref().unwrap_err();
        assert_eq!(last.line, 6);
        assert!(last.message.contains("truncated"), "{last}");
    }

    #[test]
    fn fields_added_by_shippers_are_ignored() {
        let line = event_line(7);
        let shipped = format!(
            r#"{{"kubernetes":{{"pod":"web-1","labels":{{"app":"web"}}}},"stream":"stdout",{}"#,
            &line.trim()[1..]
        );
        let items: Vec<_> = EventReader::new(shipped.as_bytes()).collect();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].as_ref().unwrap().pid, 7, "{items:?}");
        assert_eq!(
            items[0].as_ref().unwrap(),
            &serde_json::from_str::<Event>(line.trim()).unwrap()
        );
    }

    #[test]
    fn behavior_flag_round_trips_and_stays_out_of_other_events() {
        let mut e: Event = serde_json::from_str(event_line(1).trim()).unwrap();
        assert!(!e.behavior);
        assert!(!event_line(1).contains("behavior"));
        e.behavior = true;
        let line = e.to_line();
        assert!(String::from_utf8_lossy(&line).contains("\"behavior\":true"));
        let again: Event = serde_json::from_slice(&line).unwrap();
        assert!(again.behavior);
    }

    #[test]
    fn time_parses_back() {
        for (secs, nanos) in [(1_795_415_400, 123_456_000), (0, 0), (951_782_400, 999_000)] {
            assert_eq!(parse_time(&format_time(secs, nanos)), Some((secs, nanos)));
        }
        assert_eq!(parse_time("2026-11-23T06:30:00Z"), Some((1_795_415_400, 0)));
        for bad in [
            "",
            "2026-11-23 06:30:00Z",
            "2026-13-01T00:00:00Z",
            "2026-11-23T06:30:00+01:00",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }
}

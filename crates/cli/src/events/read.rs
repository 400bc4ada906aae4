//! Reading event files for `events` and `learn`: every event in order,
//! with unreadable lines reported as `FILE:LINE: message` on stderr and
//! skipped.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

use ldguard_events::{Event, EventReader};

/// What reading the files ran into.
#[derive(Debug, Default)]
pub struct ReadReport {
    /// Lines that were not events (already reported on stderr).
    pub bad_lines: usize,
    /// Files that could not be opened (already reported on stderr).
    pub bad_files: usize,
}

/// Calls `each` for every event of `files` (`-` is standard input), in
/// file order; `tool` prefixes the messages.
pub fn for_each_event(tool: &str, files: &[PathBuf], mut each: impl FnMut(Event)) -> ReadReport {
    let mut report = ReadReport::default();
    for path in files {
        let shown = path.display();
        let input: Box<dyn std::io::BufRead> = if path.as_os_str() == "-" {
            Box::new(std::io::stdin().lock())
        } else {
            match File::open(path) {
                Ok(f) => Box::new(BufReader::new(f)),
                Err(e) => {
                    eprintln!("{tool}: {shown}: cannot open: {e}");
                    report.bad_files += 1;
                    continue;
                }
            }
        };
        for item in EventReader::new(input) {
            match item {
                Ok(event) => each(event),
                Err(e) => {
                    eprintln!("{tool}: {shown}:{}: {} (skipped)", e.line, e.message);
                    report.bad_lines += 1;
                }
            }
        }
    }
    report
}

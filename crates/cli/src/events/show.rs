//! `events tail` and `events grep`: matching events, one per line.

use std::collections::VecDeque;
use std::io::{IsTerminal, Write};

use ldguard_events::Event;

use super::filter::Filter;
use super::read::{for_each_event, ReadReport};
use super::{Common, Format};

pub fn tail(common: &Common, count: usize, follow: bool) -> Result<ReadReport, String> {
    let filter = Filter::new(&common.filter, super::summary::now())?;
    let mut last = VecDeque::new();
    let report = for_each_event("ldguard events", &common.files, |e| {
        if filter.accepts(&e) {
            if count > 0 && last.len() == count {
                last.pop_front();
            }
            last.push_back(e);
        }
    });
    print(common.format, last.iter())?;
    match common.files.last() {
        Some(path) if follow && path.as_os_str() != "-" => follow_file(path, common, &filter),
        _ => Ok(report),
    }
}

/// Prints matching events appended to `path` from now on. A line is taken
/// once its newline has been written (the library writes whole lines, but
/// a reader can catch one half-way).
fn follow_file(
    path: &std::path::Path,
    common: &Common,
    filter: &Filter,
) -> Result<ReadReport, String> {
    use std::io::{Read, Seek, SeekFrom};
    let shown = path.display();
    let mut file = std::fs::File::open(path).map_err(|e| format!("{shown}: cannot open: {e}"))?;
    let mut at = file
        .seek(SeekFrom::End(0))
        .map_err(|e| format!("{shown}: {e}"))?;
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    loop {
        let n = file.read(&mut chunk).map_err(|e| format!("{shown}: {e}"))?;
        if n == 0 {
            // Truncated or replaced (log rotation): start over at its end.
            let len = std::fs::metadata(path).map_or(at, |m| m.len());
            if len < at {
                file = std::fs::File::open(path).map_err(|e| format!("{shown}: {e}"))?;
                at = 0;
                pending.clear();
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
            continue;
        }
        at += n as u64;
        pending.extend_from_slice(&chunk[..n]);
        let Some(end) = pending.iter().rposition(|&b| b == b'\n') else {
            continue;
        };
        let complete: Vec<u8> = pending.drain(..=end).collect();
        let events: Vec<Event> = ldguard_events::EventReader::new(&complete[..])
            .filter_map(|item| match item {
                Ok(e) => filter.accepts(&e).then_some(e),
                Err(e) => {
                    eprintln!("ldguard events: {shown}: {} (skipped)", e.message);
                    None
                }
            })
            .collect();
        print(common.format, events.iter())?;
        match std::io::stdout().flush() {
            Ok(()) => {}
            // The reader went away (`| head`): done.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                return Ok(ReadReport::default())
            }
            Err(e) => return Err(format!("cannot write: {e}")),
        }
    }
}

pub fn grep(common: &Common, pattern: &str) -> Result<ReadReport, String> {
    let filter = Filter::new(&common.filter, super::summary::now())?;
    let mut found = Vec::new();
    let report = for_each_event("ldguard events", &common.files, |e| {
        if filter.accepts(&e) && contains(&e, pattern) {
            found.push(e);
        }
    });
    print(common.format, found.iter())?;
    Ok(report)
}

/// Whether a field people search for contains `pattern`.
pub fn contains(e: &Event, pattern: &str) -> bool {
    [
        Some(&e.program),
        e.target.as_ref(),
        e.resolved.as_ref(),
        e.host.as_ref(),
        e.rule.as_ref(),
        Some(&e.message),
        Some(&e.call),
    ]
    .into_iter()
    .flatten()
    .chain(e.args.iter())
    .any(|f| f.contains(pattern))
}

fn print<'a>(format: Format, events: impl Iterator<Item = &'a Event>) -> Result<(), String> {
    let out = std::io::stdout();
    let colour = out.is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let mut out = out.lock();
    for e in events {
        let written = match format {
            Format::Json => out.write_all(&e.to_line()),
            Format::Text => writeln!(out, "{}", line(e, colour)),
        };
        match written {
            Ok(()) => {}
            // `| head` closed the pipe: not an error.
            Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            Err(err) => return Err(format!("cannot write: {err}")),
        }
    }
    Ok(())
}

/// One event for people: time, outcome, program, call, target, rule.
pub fn line(e: &Event, colour: bool) -> String {
    let outcome = outcome(e);
    let painted = match (colour, outcome) {
        (true, "BLOCKED" | "KILLED") => format!("\x1b[1;31m{outcome:<9}\x1b[0m"),
        (true, "would-deny" | "audit") => format!("\x1b[33m{outcome:<9}\x1b[0m"),
        _ => format!("{outcome:<9}"),
    };
    let mut s = format!("{}  {painted} {}  {} ", e.time, e.program, e.call);
    match (&e.target, &e.access) {
        (Some(t), Some(a)) => s.push_str(&format!("{a} {t}")),
        (Some(t), None) => s.push_str(t),
        (None, _) => s.push_str(&e.message),
    }
    if let Some(r) = &e.rule {
        s.push_str(&format!("  [rule {r}]"));
    }
    if e.behavior {
        s.push_str("  (behavior)");
    }
    s
}

/// The outcome as a short word: what happened, not only what was decided.
pub fn outcome(e: &Event) -> &'static str {
    match (e.action.as_str(), e.enforced) {
        ("deny", true) => "BLOCKED",
        ("kill", true) => "KILLED",
        ("deny" | "kill", false) => "would-deny",
        ("audit", _) => "audit",
        _ if e.kind == "status" => "status",
        _ => "allow",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_line_names_outcome_target_and_rule() {
        let e = Event {
            time: "2026-11-23T06:30:00.000000Z".into(),
            program: "/usr/sbin/nginx".into(),
            call: "execve".into(),
            kind: "exec".into(),
            target: Some("/bin/sh".into()),
            action: "deny".into(),
            enforced: true,
            rule: Some("unlearned-exec".into()),
            ..Event::default()
        };
        let l = line(&e, false);
        assert_eq!(
            l,
            "2026-11-23T06:30:00.000000Z  BLOCKED   /usr/sbin/nginx  execve /bin/sh  [rule unlearned-exec]"
        );
        assert!(contains(&e, "bin/s"));
        assert!(contains(&e, "unlearned"));
        assert!(!contains(&e, "python"));
    }
}

//! `events summary`: counts by action, kind, rule, program and target.

use std::collections::BTreeMap;
use std::io::IsTerminal;

use ldguard_events::Event;
use serde::Serialize;

use super::filter::Filter;
use super::read::{for_each_event, ReadReport};
use super::show::outcome;
use super::{Common, Format};

/// Counts over the matching events. Serialised as is for `--format json`.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub events: u64,
    pub first: Option<String>,
    pub last: Option<String>,
    /// First-time `behavior` records among them.
    pub behavior: u64,
    /// Events the library reported as lost.
    pub dropped: u64,
    /// Unreadable lines skipped.
    pub bad_lines: usize,
    /// By outcome: allow, audit, would-deny (permissive), BLOCKED, KILLED, status.
    pub outcome: BTreeMap<String, u64>,
    pub kind: BTreeMap<String, u64>,
    /// By deciding rule; `(default)` when a policy default decided.
    pub rule: BTreeMap<String, u64>,
    pub program: BTreeMap<String, u64>,
    /// By `kind target` (status events left out).
    pub target: BTreeMap<String, u64>,
}

impl Summary {
    pub fn add(&mut self, e: &Event) {
        self.events += 1;
        if self.first.as_ref().is_none_or(|f| e.time < *f) {
            self.first = Some(e.time.clone());
        }
        if self.last.as_ref().is_none_or(|l| e.time > *l) {
            self.last = Some(e.time.clone());
        }
        self.behavior += u64::from(e.behavior);
        self.dropped += e.dropped.unwrap_or(0);
        *self.outcome.entry(outcome(e).into()).or_default() += 1;
        *self.kind.entry(e.kind.clone()).or_default() += 1;
        if e.kind != "status" {
            let rule = e.rule.clone().unwrap_or_else(|| "(default)".into());
            *self.rule.entry(rule).or_default() += 1;
            if let Some(t) = &e.target {
                *self.target.entry(format!("{} {t}", e.kind)).or_default() += 1;
            }
        }
        *self.program.entry(e.program.clone()).or_default() += 1;
    }

    /// The report for people, `top` entries per table.
    pub fn render(&self, top: usize) -> String {
        let mut s = format!("{} events", self.events);
        if let (Some(f), Some(l)) = (&self.first, &self.last) {
            s.push_str(&format!(" from {f} to {l}"));
        }
        s.push('\n');
        if self.behavior > 0 {
            s.push_str(&format!(
                "{} behavior records (first sightings)\n",
                self.behavior
            ));
        }
        if self.dropped > 0 {
            s.push_str(&format!(
                "{} events were dropped by the library\n",
                self.dropped
            ));
        }
        if self.bad_lines > 0 {
            s.push_str(&format!("{} unreadable lines skipped\n", self.bad_lines));
        }
        for (title, map) in [
            ("outcome", &self.outcome),
            ("kind", &self.kind),
            ("rule", &self.rule),
            ("program", &self.program),
            ("target", &self.target),
        ] {
            s.push_str(&table(title, map, top));
        }
        s
    }
}

fn table(title: &str, map: &BTreeMap<String, u64>, top: usize) -> String {
    if map.is_empty() {
        return String::new();
    }
    let mut rows: Vec<(&String, &u64)> = map.iter().collect();
    rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let width = rows.first().map_or(1, |r| r.1.to_string().len());
    let mut s = format!("\nby {title}:\n");
    for (k, n) in rows.iter().take(top) {
        s.push_str(&format!("  {n:>width$}  {k}\n"));
    }
    if rows.len() > top {
        s.push_str(&format!("  … {} more\n", rows.len() - top));
    }
    s
}

pub fn run(common: &Common, top: usize) -> Result<ReadReport, String> {
    let filter = Filter::new(&common.filter, now())?;
    let mut summary = Summary::default();
    let report = for_each_event("ldguard events", &common.files, |e| {
        if filter.accepts(&e) {
            summary.add(&e);
        }
    });
    summary.bad_lines = report.bad_lines;
    let text = match common.format {
        Format::Json => serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())? + "\n",
        Format::Text => summary.render(top),
    };
    print!("{text}");
    if common.format == Format::Text && std::io::stdout().is_terminal() && summary.events == 0 {
        eprintln!("ldguard events: no event matched");
    }
    Ok(report)
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_tables() {
        let mut s = Summary::default();
        for (action, enforced, rule) in [
            ("deny", true, Some("unlearned-exec")),
            ("deny", true, Some("unlearned-exec")),
            ("allow", false, None),
        ] {
            s.add(&Event {
                time: "2026-11-23T06:30:00.000000Z".into(),
                program: "/usr/bin/python3".into(),
                kind: "exec".into(),
                target: Some("/bin/sh".into()),
                action: action.into(),
                enforced,
                rule: rule.map(Into::into),
                ..Event::default()
            });
        }
        assert_eq!(s.outcome["BLOCKED"], 2);
        assert_eq!(s.rule["unlearned-exec"], 2);
        assert_eq!(s.rule["(default)"], 1);
        assert_eq!(s.target["exec /bin/sh"], 3);
        let text = s.render(1);
        assert!(text.starts_with("3 events from"), "{text}");
        assert!(
            text.contains("by rule:\n  2  unlearned-exec\n  … 1 more\n"),
            "{text}"
        );
        let json: serde_json::Value = serde_json::to_value(&s).unwrap();
        assert_eq!(json["outcome"]["BLOCKED"], 2);
    }
}

//! Turning samples into the figures: medians, ratios to no library, added
//! nanoseconds per hooked call, the goal verdicts, the table and the JSON.

use crate::callgrind::Count;
use crate::configs::Config;
use crate::stats::{median, rel_iqr};
use crate::workloads::{Unit, Workload};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

/// One configuration's figures for one workload.
#[derive(Clone, Debug, Serialize)]
pub struct Cell {
    pub samples: Vec<f64>,
    pub median: f64,
    /// `median / median(none)`: above 1 is slower for times, below 1 is
    /// fewer requests for req/s.
    pub ratio: f64,
    /// Micro only: `(median - median(none)) / hooked calls per iteration`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub added_ns: Option<f64>,
    /// Interquartile range over the median: this configuration's noise.
    pub rel_iqr: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub id: &'static str,
    pub title: &'static str,
    pub unit: Unit,
    pub configs: BTreeMap<&'static str, Cell>,
}

impl Row {
    pub fn new(w: &Workload, samples: &BTreeMap<Config, Vec<f64>>) -> Row {
        let base = samples.get(&Config::None).map_or(f64::NAN, |s| median(s));
        let configs = samples
            .iter()
            .map(|(c, s)| {
                let m = median(s);
                let cell = Cell {
                    samples: s.clone(),
                    median: m,
                    ratio: m / base,
                    added_ns: w
                        .hooked_per_op
                        .filter(|_| *c != Config::None)
                        .map(|h| (m - base) / h as f64),
                    rel_iqr: rel_iqr(s),
                };
                (c.name(), cell)
            })
            .collect();
        Row {
            id: w.id,
            title: w.title,
            unit: w.unit,
            configs,
        }
    }

    pub fn cell(&self, c: Config) -> Option<&Cell> {
        self.configs.get(c.name())
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Goal {
    pub goal: String,
    pub measured: String,
    pub met: bool,
}

/// Added nanoseconds per hooked call allowed in enforce with 100 rules.
pub const ADDED_NS_LIMIT: f64 = 25.0;

/// The goals of issue 6, judged on the enforce figures (and disabled
/// against none).
pub fn goals(rows: &[Row]) -> Vec<Goal> {
    let mut out = Vec::new();
    let find = |id: &str| rows.iter().find(|r| r.id == id);
    for id in ["open", "stat", "fopen", "udp"] {
        if let Some(c) = find(id).and_then(|r| r.cell(Config::Enforce)) {
            let added = c.added_ns.unwrap_or(f64::NAN);
            out.push(Goal {
                goal: format!("{id}: added ≤ {ADDED_NS_LIMIT} ns per hooked call (enforce)"),
                measured: format!("{added:+.0} ns"),
                met: added <= ADDED_NS_LIMIT,
            });
        }
    }
    let ratio_goals: [(&str, &str, f64, bool); 6] = [
        ("open", "open+close ≤ 1.03x", 1.03, false),
        ("stat", "stat ≤ 1.05x", 1.05, false),
        ("exec", "exec of /bin/true ≤ 1.10x", 1.10, false),
        ("nginx", "nginx ≥ 0.98x requests/s", 0.98, true),
        ("tar", "tar x ≤ 1.03x", 1.03, false),
        ("python", "python imports ≤ 1.03x", 1.03, false),
    ];
    let ratio_goals = ratio_goals
        .into_iter()
        .chain([("git", "git status ≤ 1.03x", 1.03, false)]);
    for (id, goal, limit, at_least) in ratio_goals {
        if let Some(c) = find(id).and_then(|r| r.cell(Config::Enforce)) {
            let met = if at_least {
                c.ratio >= limit
            } else {
                c.ratio <= limit
            };
            out.push(Goal {
                goal: format!("{goal} (enforce)"),
                measured: format!("{:.3}x", c.ratio),
                met,
            });
        }
    }
    for r in rows {
        let (Some(none), Some(dis)) = (r.cell(Config::None), r.cell(Config::Disabled)) else {
            continue;
        };
        let noise = none.rel_iqr.max(dis.rel_iqr).max(0.01);
        let off = (dis.ratio - 1.0).abs();
        out.push(Goal {
            goal: format!("{}: disabled indistinguishable from none", r.id),
            measured: format!("{:.3}x (noise ±{:.1}%)", dis.ratio, noise * 100.0),
            met: off <= noise,
        });
    }
    out
}

fn fmt_value(unit: Unit, v: f64) -> String {
    match unit {
        Unit::NsPerOp if v >= 100_000.0 => format!("{:.0} µs", v / 1e3),
        Unit::NsPerOp => format!("{v:.0} ns"),
        Unit::Ms => format!("{v:.1} ms"),
        Unit::Rps => format!("{v:.0} req/s"),
    }
}

fn fmt_cell(c: &Cell) -> String {
    match c.added_ns {
        Some(a) if a.abs() >= 100_000.0 => format!("{:.2}x {:+.0}µs", c.ratio, a / 1e3),
        Some(a) => format!("{:.2}x {a:+.0}ns", c.ratio),
        None => format!("{:.3}x", c.ratio),
    }
}

/// The human table: the baseline median, then each configuration as a
/// ratio to it (and added time per hooked call for micro workloads).
pub fn table(rows: &[Row], counts: &[Count], goals: &[Goal]) -> String {
    let mut s = String::new();
    let configs = &Config::ALL[1..];
    let _ = write!(s, "| {:<28} | {:>12} |", "workload", "none (median)");
    for c in configs {
        let _ = write!(s, " {:>16} |", c.name());
    }
    s.push('\n');
    let _ = write!(s, "|{:-<30}|{:->15}|", "", "");
    for _ in configs {
        let _ = write!(s, "{:->18}|", "");
    }
    s.push('\n');
    for r in rows {
        let base = r
            .cell(Config::None)
            .map_or("-".into(), |c| fmt_value(r.unit, c.median));
        let _ = write!(s, "| {:<28} | {:>13} |", r.title, base);
        for c in configs {
            let v = r.cell(*c).map_or("-".into(), fmt_cell);
            let _ = write!(s, " {v:>16} |");
        }
        s.push('\n');
    }
    if !counts.is_empty() {
        s.push_str("\nUser-space instructions per iteration (callgrind; added over none):\n\n");
        let _ = writeln!(
            s,
            "| {:<10} | {:>10} | {:>10} | {:>10} | {:>10} |",
            "workload", "none", "disabled", "permissive", "enforce"
        );
        let _ = writeln!(
            s,
            "|{:-<12}|{:->12}|{:->12}|{:->12}|{:->12}|",
            "", "", "", "", ""
        );
        let mut ids: Vec<&str> = counts.iter().map(|c| c.workload).collect();
        ids.dedup();
        for id in ids {
            let _ = write!(s, "| {id:<10} |");
            for c in counts.iter().filter(|c| c.workload == id) {
                if c.config == Config::None {
                    let _ = write!(s, " {:>10.0} |", c.per_op);
                } else {
                    let _ = write!(s, " {:>+10.0} |", c.added);
                }
            }
            s.push('\n');
        }
    }
    if !goals.is_empty() {
        s.push_str("\nGoals:\n\n");
        for g in goals {
            let _ = writeln!(
                s,
                "- [{}] {} — {}",
                if g.met { "x" } else { " " },
                g.goal,
                g.measured
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workloads::ALL;

    fn row(id: &str, none: &[f64], enforce: &[f64]) -> Row {
        let w = ALL.iter().find(|w| w.id == id).unwrap();
        let mut m = BTreeMap::new();
        m.insert(Config::None, none.to_vec());
        m.insert(Config::Disabled, none.to_vec());
        m.insert(Config::Enforce, enforce.to_vec());
        Row::new(w, &m)
    }

    #[test]
    fn ratio_and_added_ns_come_from_medians() {
        let r = row("open", &[800.0, 810.0, 5000.0], &[830.0, 840.0, 820.0]);
        let e = r.cell(Config::Enforce).unwrap();
        assert_eq!(e.median, 830.0);
        assert!((e.ratio - 830.0 / 810.0).abs() < 1e-12);
        assert_eq!(e.added_ns, Some(20.0));
        assert_eq!(r.cell(Config::None).unwrap().added_ns, None);
    }

    #[test]
    fn goals_judge_limits_in_the_right_direction() {
        let rows = [
            row("open", &[800.0], &[830.0]),
            row("nginx", &[10_000.0], &[9_900.0]),
            row("tar", &[100.0], &[104.0]),
        ];
        let g = goals(&rows);
        let get = |p: &str| g.iter().find(|g| g.goal.starts_with(p)).unwrap().met;
        assert!(!get("open: added"));
        assert!(!get("open+close"));
        assert!(get("nginx ≥"));
        assert!(!get("tar x"));
        assert!(get("open: disabled"));
        let t = table(&rows, &[], &g);
        assert!(t.contains("open+close"));
        assert!(t.contains("1.04x +30ns"));
    }
}

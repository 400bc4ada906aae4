//! Turning samples into the figures: medians, ratios to no library, added
//! nanoseconds per hooked call, the goal verdicts, the table and the JSON.

use crate::callgrind::Count;
use crate::configs::Config;
use crate::stats::{median, quantile, rel_iqr};
use crate::workloads::{Unit, Workload};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

/// One configuration's figures for one workload.
#[derive(Clone, Debug, Serialize)]
pub struct Cell {
    pub samples: Vec<f64>,
    pub median: f64,
    /// The median over repetitions of `sample / sample(none)` of the same
    /// repetition (the configurations of one repetition run back to back):
    /// a drift of the machine between repetitions cancels out. Above 1 is
    /// slower for times, below 1 is fewer requests for req/s.
    pub ratio: f64,
    /// Interquartile range of those per-repetition ratios: how far apart
    /// the repetitions agree on `ratio`.
    pub ratio_iqr: f64,
    /// Micro only: the median over repetitions of `sample - sample(none)`,
    /// per hooked call.
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
        let base: &[f64] = samples.get(&Config::None).map_or(&[], |s| s);
        let configs = samples
            .iter()
            .map(|(c, s)| {
                let ratios = paired(s, base, |x, b| x / b);
                let cell = Cell {
                    samples: s.clone(),
                    median: median(s),
                    ratio: median(&ratios),
                    ratio_iqr: quantile(&ratios, 0.75) - quantile(&ratios, 0.25),
                    added_ns: w
                        .hooked_per_op
                        .filter(|_| *c != Config::None)
                        .map(|h| median(&paired(s, base, |x, b| x - b)) / h as f64),
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

/// `f(sample, baseline sample)` of each repetition.
fn paired(samples: &[f64], base: &[f64], f: impl Fn(f64, f64) -> f64) -> Vec<f64> {
    samples.iter().zip(base).map(|(&x, &b)| f(x, b)).collect()
}

#[derive(Clone, Debug, Serialize)]
pub struct Goal {
    pub goal: String,
    pub measured: String,
    pub met: bool,
}

/// A ratio goal: workload, configuration, limit, and whether the ratio must
/// be at least (requests/s) rather than at most (times) the limit.
struct RatioGoal {
    id: &'static str,
    what: &'static str,
    config: Config,
    limit: f64,
    at_least: bool,
    issue: u32,
}

const RATIO_GOALS: [RatioGoal; 9] = [
    RatioGoal {
        id: "open",
        what: "open+close",
        config: Config::Enforce,
        limit: 1.05,
        at_least: false,
        issue: 10,
    },
    RatioGoal {
        id: "fopen",
        what: "fopen+fclose",
        config: Config::Enforce,
        limit: 1.05,
        at_least: false,
        issue: 10,
    },
    RatioGoal {
        id: "tar",
        what: "tar x",
        config: Config::Enforce,
        limit: 1.05,
        at_least: false,
        issue: 10,
    },
    RatioGoal {
        id: "nginx",
        what: "nginx requests/s",
        config: Config::Enforce,
        limit: 0.97,
        at_least: true,
        issue: 10,
    },
    RatioGoal {
        id: "python",
        what: "python imports",
        config: Config::Enforce,
        limit: 1.03,
        at_least: false,
        issue: 10,
    },
    RatioGoal {
        id: "git",
        what: "git status",
        config: Config::Enforce,
        limit: 1.03,
        at_least: false,
        issue: 10,
    },
    RatioGoal {
        id: "exec",
        what: "fork+exec of /bin/true",
        config: Config::Enforce,
        limit: 1.10,
        at_least: false,
        issue: 12,
    },
    RatioGoal {
        id: "spawn",
        what: "posix_spawn of /bin/true",
        config: Config::Enforce,
        limit: 1.10,
        at_least: false,
        issue: 12,
    },
    RatioGoal {
        id: "exec",
        what: "fork+exec of /bin/true",
        config: Config::Disabled,
        limit: 1.03,
        at_least: false,
        issue: 12,
    },
];

/// The open issues' goals, judged on this run's ratios, each shown with
/// the `empty` configuration's ratio: what preloading any library costs
/// here, which no change to ldguard can go below. Then, per workload,
/// whether `disabled` is distinguishable from none.
pub fn goals(rows: &[Row]) -> Vec<Goal> {
    let mut out = Vec::new();
    let find = |id: &str| rows.iter().find(|r| r.id == id);
    for g in &RATIO_GOALS {
        let Some(row) = find(g.id) else { continue };
        let Some(c) = row.cell(g.config) else {
            continue;
        };
        let met = if g.at_least {
            c.ratio >= g.limit
        } else {
            c.ratio <= g.limit
        };
        let floor = row.cell(Config::Empty).map_or(String::new(), |e| {
            format!(", empty library {:.3}x", e.ratio)
        });
        out.push(Goal {
            goal: format!(
                "{} {} {:.2}x ({}; issue {})",
                g.what,
                if g.at_least { "≥" } else { "≤" },
                g.limit,
                g.config.name(),
                g.issue
            ),
            measured: format!("{:.3}x ±{:.3}{floor}", c.ratio, c.ratio_iqr / 2.0),
            met,
        });
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
        None => format!("{:.3}x ±{:.3}", c.ratio, c.ratio_iqr / 2.0),
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
    fn ratio_and_added_ns_pair_each_repetition_with_its_baseline() {
        // The third repetition's baseline was slowed by something else: a
        // ratio of medians would say 840/810, the paired ratios agree on
        // about 1.037 in the two sound repetitions and the median keeps it.
        let r = row("open", &[800.0, 810.0, 5000.0], &[830.0, 840.0, 820.0]);
        let e = r.cell(Config::Enforce).unwrap();
        assert_eq!(e.median, 830.0);
        assert!((e.ratio - 840.0 / 810.0).abs() < 1e-12, "{}", e.ratio);
        assert_eq!(e.added_ns, Some(30.0));
        assert_eq!(r.cell(Config::None).unwrap().added_ns, None);
        assert_eq!(r.cell(Config::None).unwrap().ratio, 1.0);
        assert!(e.ratio_iqr > 0.4, "the outlier shows in the spread");
    }

    #[test]
    fn goals_judge_limits_in_the_right_direction_and_show_the_floor() {
        let mut m = BTreeMap::new();
        m.insert(Config::None, vec![1000.0]);
        m.insert(Config::Empty, vec![1070.0]);
        m.insert(Config::Disabled, vec![1400.0]);
        m.insert(Config::Enforce, vec![1800.0]);
        let exec = Row::new(ALL.iter().find(|w| w.id == "exec").unwrap(), &m);
        let rows = [
            row("open", &[800.0], &[830.0]),
            row("nginx", &[10_000.0], &[9_900.0]),
            row("tar", &[100.0], &[104.0]),
            exec,
        ];
        let g = goals(&rows);
        let get = |p: &str| g.iter().find(|g| g.goal.starts_with(p)).unwrap();
        assert!(get("open+close ≤ 1.05x").met);
        assert!(get("nginx requests/s ≥ 0.97x").met);
        assert!(get("tar x ≤ 1.05x").met);
        let exec_enforce = get("fork+exec of /bin/true ≤ 1.10x (enforce");
        assert!(!exec_enforce.met);
        assert!(exec_enforce.measured.contains("empty library 1.070x"));
        assert!(!get("fork+exec of /bin/true ≤ 1.03x (disabled").met);
        assert!(get("open: disabled").met);
        let t = table(&rows, &[], &g);
        assert!(t.contains("open+close"));
        assert!(t.contains("1.04x +30ns"));
        assert!(t.contains("0.990x ±0.000"));
    }
}

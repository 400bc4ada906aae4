//! Which events a command looks at: `--action`, `--kind`, `--program`,
//! `--rule`, `--since`.

use clap::Args;
use ldguard_events::{parse_time, Event};
use ldguard_policy::glob::{Glob, GlobStyle};

#[derive(Args, Debug, Default)]
pub struct FilterArgs {
    /// Only these actions (allow, audit, deny, kill); repeat or separate
    /// with commas. `blocked` means deny or kill that took effect.
    #[arg(long, value_delimiter = ',', value_name = "ACTION")]
    pub action: Vec<String>,
    /// Only these kinds (file, exec, network, syscall, status).
    #[arg(long, value_delimiter = ',', value_name = "KIND")]
    pub kind: Vec<String>,
    /// Only programs matching this glob: a path glob (`/usr/sbin/*`) or a
    /// file name glob (`nginx`, `python3*`).
    #[arg(long, value_name = "GLOB")]
    pub program: Option<String>,
    /// Only events decided by this rule.
    #[arg(long, value_name = "NAME")]
    pub rule: Option<String>,
    /// Only events at or after this time: RFC 3339 UTC
    /// (`2026-11-23T06:30:00Z`) or an age such as `90s`, `15m`, `2h`, `1d`.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
}

/// The compiled filter.
pub struct Filter {
    actions: Vec<String>,
    kinds: Vec<String>,
    program: Option<Glob>,
    rule: Option<String>,
    since: Option<(i64, u32)>,
}

impl Filter {
    /// `now` is Unix seconds, for relative `--since`.
    pub fn new(args: &FilterArgs, now: i64) -> Result<Filter, String> {
        for a in &args.action {
            if !["allow", "audit", "deny", "kill", "blocked"].contains(&a.as_str()) {
                return Err(format!(
                    "--action {a}: expected allow, audit, deny, kill or blocked"
                ));
            }
        }
        for k in &args.kind {
            if !["file", "exec", "network", "syscall", "drift", "status"].contains(&k.as_str()) {
                return Err(format!(
                    "--kind {k}: expected file, exec, network, syscall, drift or status"
                ));
            }
        }
        let program = match &args.program {
            None => None,
            Some(p) => {
                // A bare name matches the last path segment.
                let pattern = if p.contains('/') {
                    p.clone()
                } else {
                    format!("**/{p}")
                };
                Some(
                    Glob::new(&pattern, GlobStyle::Path)
                        .map_err(|e| format!("--program {p}: {}", e.message))?,
                )
            }
        };
        let since = match &args.since {
            None => None,
            Some(s) => Some(parse_since(s, now).ok_or_else(|| {
                format!("--since {s}: expected a UTC time like 2026-11-23T06:30:00Z or an age like 15m, 2h, 1d")
            })?),
        };
        Ok(Filter {
            actions: args.action.clone(),
            kinds: args.kind.clone(),
            program,
            rule: args.rule.clone(),
            since,
        })
    }

    pub fn accepts(&self, e: &Event) -> bool {
        let action_ok = self.actions.is_empty()
            || self.actions.iter().any(|a| match a.as_str() {
                "blocked" => e.enforced && matches!(e.action.as_str(), "deny" | "kill"),
                a => e.action == a,
            });
        let since_ok = self
            .since
            .is_none_or(|since| parse_time(&e.time).is_some_and(|t| t >= since));
        action_ok
            && since_ok
            && (self.kinds.is_empty() || self.kinds.contains(&e.kind))
            && self
                .program
                .as_ref()
                .is_none_or(|g| g.is_match(e.program.as_bytes()))
            && self
                .rule
                .as_ref()
                .is_none_or(|r| e.rule.as_deref() == Some(r.as_str()))
    }
}

fn parse_since(text: &str, now: i64) -> Option<(i64, u32)> {
    if let Some(t) = parse_time(text) {
        return Some(t);
    }
    let unit = text.chars().last()?;
    let n: i64 = text[..text.len() - unit.len_utf8()].parse().ok()?;
    let secs = match unit {
        's' => n,
        'm' => n * 60,
        'h' => n * 3600,
        'd' => n * 86_400,
        _ => return None,
    };
    Some((now - secs, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(time: &str, program: &str, action: &str, enforced: bool) -> Event {
        Event {
            time: time.into(),
            program: program.into(),
            action: action.into(),
            enforced,
            kind: "exec".into(),
            ..Event::default()
        }
    }

    #[test]
    fn filters_combine() {
        let args = FilterArgs {
            action: vec!["blocked".into()],
            program: Some("nginx".into()),
            since: Some("2026-11-23T06:30:00Z".into()),
            ..FilterArgs::default()
        };
        let f = Filter::new(&args, 0).unwrap();
        let t = "2026-11-23T06:30:01.000000Z";
        assert!(f.accepts(&event(t, "/usr/sbin/nginx", "deny", true)));
        assert!(!f.accepts(&event(t, "/usr/sbin/nginx", "deny", false)));
        assert!(!f.accepts(&event(t, "/usr/bin/python3", "deny", true)));
        assert!(!f.accepts(&event(
            "2026-11-23T06:29:59.000000Z",
            "/usr/sbin/nginx",
            "deny",
            true
        )));
    }

    #[test]
    fn relative_since_and_bad_values() {
        assert_eq!(parse_since("15m", 1000), Some((100, 0)));
        assert_eq!(parse_since("2h", 10_000), Some((2800, 0)));
        assert_eq!(parse_since("yesterday", 0), None);
        let bad = FilterArgs {
            action: vec!["block".into()],
            ..FilterArgs::default()
        };
        assert!(Filter::new(&bad, 0)
            .err()
            .unwrap()
            .contains("--action block"));
    }
}

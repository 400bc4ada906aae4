//! Lints on a valid policy: rules that can never decide anything because an
//! earlier enabled rule matches every operation they match (rules are tried
//! in document order and the first match decides).
//!
//! The check is sound, not complete: it reports a rule only when coverage
//! follows from the matchers themselves (an absent matcher, the same values,
//! a `PREFIX/**` glob over globs starting with PREFIX/, a wider CIDR or port
//! range). It never reports a rule that can still decide something.

use crate::diag::{Diagnostic, Level};
use crate::format::PolicyFormat;
use crate::glob::Glob;
use crate::json::{self, Json};
use crate::model::{Policy, Rule};
use crate::net::{Cidr, PortRange};

/// Warnings for every unreachable rule of `policy`, which was read from
/// `text` (JSON: the warnings point at the rule objects).
pub fn unreachable_rules(text: &str, origin: &str, policy: &Policy) -> Vec<Diagnostic> {
    let spans = rule_spans(text, PolicyFormat::of_name(origin));
    let mut out = Vec::new();
    for (b_index, b) in policy.rules.iter().enumerate() {
        if !b.enabled {
            continue;
        }
        let Some((a_index, a)) = policy.rules[..b_index]
            .iter()
            .enumerate()
            .find(|(_, a)| a.enabled && covers(a, b))
        else {
            continue;
        };
        let Some(&span) = spans.get(b_index) else {
            continue;
        };
        let (line, col) = json::line_col(text, span.start);
        let a_line = spans
            .get(a_index)
            .map(|s| json::line_col(text, s.start).0)
            .unwrap_or(0);
        let same_action = a.action == b.action;
        out.push(Diagnostic {
            level: Level::Warning,
            origin: origin.to_string(),
            line,
            col,
            span: (span.start, span.start + 1),
            message: format!(
                "rule `{}` is never reached: rule `{}` (line {a_line}) comes first and matches every operation it matches",
                b.name, a.name
            ),
            expected: None,
            hint: Some(if same_action {
                format!("`{}` already decides `{}` for these operations: delete `{}`", a.name, a.action.as_str(), b.name)
            } else {
                format!(
                    "to make `{}` ({}) win over `{}` ({}), move it above `{}`",
                    b.name,
                    b.action.as_str(),
                    a.name,
                    a.action.as_str(),
                    a.name
                )
            }),
        });
    }
    out
}

/// The span of each element of the top-level `rules` array.
fn rule_spans(text: &str, format: PolicyFormat) -> Vec<json::Span> {
    let Ok(root) = format.parse(text) else {
        return Vec::new();
    };
    let Json::Object(members) = root.json else {
        return Vec::new();
    };
    members
        .into_iter()
        .find(|m| m.key == "rules")
        .and_then(|m| match m.value.json {
            Json::Array(items) => Some(items.into_iter().map(|v| v.span).collect()),
            _ => None,
        })
        .unwrap_or_default()
}

/// Whether every operation `b` matches is matched by `a`.
fn covers(a: &Rule, b: &Rule) -> bool {
    a.kind == b.kind
        && field(&a.program, &b.program, glob_covers)
        && field(&a.path, &b.path, glob_covers)
        && field(&a.unix, &b.unix, glob_covers)
        && field(&a.host, &b.host, glob_covers)
        && field(&a.access, &b.access, |x, y| x == y)
        && field(&a.direction, &b.direction, |x, y| x == y)
        && field(&a.protocol, &b.protocol, |x, y| x == y)
        && field(&a.call, &b.call, |x, y| x == y)
        && field(&a.address, &b.address, cidr_covers)
        && field(&a.port, &b.port, port_covers)
}

/// An absent matcher matches anything; a present one must cover each of
/// `b`'s values with one of its own.
fn field<T>(a: &Option<Vec<T>>, b: &Option<Vec<T>>, covers: impl Fn(&T, &T) -> bool) -> bool {
    match (a, b) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(a), Some(b)) => b.iter().all(|y| a.iter().any(|x| covers(x, y))),
    }
}

fn glob_covers(a: &Glob, b: &Glob) -> bool {
    if a.as_str() == b.as_str() || a.as_str() == "**" {
        return true;
    }
    // `PREFIX/**` with a literal PREFIX covers every glob under PREFIX/.
    match a.as_str().strip_suffix("**") {
        Some(prefix) if prefix.ends_with('/') && !prefix.contains(['*', '?', '[', '{', '\\']) => {
            b.as_str().starts_with(prefix)
        }
        _ => false,
    }
}

fn cidr_covers(a: &Cidr, b: &Cidr) -> bool {
    let mask4 = |p: u8| if p == 0 { 0 } else { u32::MAX << (32 - p) };
    let mask6 = |p: u8| if p == 0 { 0 } else { u128::MAX << (128 - p) };
    match (*a, *b) {
        (
            Cidr::V4 {
                net: an,
                prefix: ap,
            },
            Cidr::V4 {
                net: bn,
                prefix: bp,
            },
        ) => ap <= bp && bn & mask4(ap) == an & mask4(ap),
        (
            Cidr::V6 {
                net: an,
                prefix: ap,
            },
            Cidr::V6 {
                net: bn,
                prefix: bp,
            },
        ) => ap <= bp && bn & mask6(ap) == an & mask6(ap),
        _ => false,
    }
}

fn port_covers(a: &PortRange, b: &PortRange) -> bool {
    a.lo <= b.lo && b.hi <= a.hi
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lint(rules: &str) -> Vec<Diagnostic> {
        let text = format!(
            "{{\"apiVersion\": \"ldguard.policy/v1\", \"name\": \"t\",\n \"rules\": [\n{rules}\n]}}"
        );
        let (policy, diags) = crate::check_str(&text, "t.json");
        let policy = policy.unwrap_or_else(|| panic!("{}", diags.render(&text)));
        unreachable_rules(&text, "t.json", &policy)
    }

    #[test]
    fn a_rule_under_a_wider_earlier_rule_is_reported_at_its_line() {
        let d = lint(
            r#"{"name": "etc", "kind": "file", "access": ["write"], "path": ["/etc/**"], "action": "deny"},
{"name": "passwd", "kind": "file", "access": ["write"], "path": ["/etc/passwd"], "action": "allow"}"#,
        );
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!((d[0].line, d[0].col), (4, 1));
        assert_eq!(d[0].level, Level::Warning);
        assert!(
            d[0].message
                .contains("rule `passwd` is never reached: rule `etc` (line 3)"),
            "{}",
            d[0].message
        );
        assert!(d[0].hint.as_ref().unwrap().contains("move it above `etc`"));
    }

    #[test]
    fn catch_alls_cidrs_and_ports_shadow() {
        let d = lint(
            r#"{"name": "all-out", "kind": "network", "direction": ["outbound"], "action": "audit"},
{"name": "meta", "kind": "network", "direction": ["outbound"], "address": ["169.254.169.254/32"], "port": ["80"], "action": "deny"}"#,
        );
        assert_eq!(d.len(), 1);
        let d = lint(
            r#"{"name": "link-local", "kind": "network", "address": ["169.254.0.0/16"], "port": ["1-1024"], "action": "deny"},
{"name": "meta", "kind": "network", "address": ["169.254.169.254/32"], "port": ["80", "443"], "action": "deny"}"#,
        );
        assert_eq!(d.len(), 1);
        assert!(d[0].hint.as_ref().unwrap().contains("delete `meta`"));
    }

    #[test]
    fn rules_that_can_still_decide_are_not_reported() {
        for rules in [
            // Narrower first, wider second: both reachable.
            r#"{"name": "passwd", "kind": "file", "path": ["/etc/passwd"], "action": "allow"},
{"name": "etc", "kind": "file", "path": ["/etc/**"], "action": "deny"}"#,
            // The earlier rule is scoped to one program; the later is not.
            r#"{"name": "a", "kind": "exec", "program": ["/usr/sbin/nginx"], "path": ["/bin/sh"], "action": "deny"},
{"name": "b", "kind": "exec", "path": ["/bin/sh"], "action": "deny"}"#,
            // A wildcard prefix is not a literal prefix.
            r#"{"name": "a", "kind": "file", "path": ["/e*/**"], "action": "deny"},
{"name": "b", "kind": "file", "path": ["/etc/x"], "action": "allow"}"#,
            // A disabled earlier rule shadows nothing.
            r#"{"name": "a", "kind": "file", "path": ["/**"], "action": "deny", "enabled": false},
{"name": "b", "kind": "file", "path": ["/etc/x"], "action": "allow"}"#,
            // Other kinds, other ports.
            r#"{"name": "a", "kind": "network", "port": ["80"], "action": "deny"},
{"name": "b", "kind": "network", "port": ["80-81"], "action": "deny"}"#,
        ] {
            assert!(lint(rules).is_empty(), "{rules}");
        }
    }
}

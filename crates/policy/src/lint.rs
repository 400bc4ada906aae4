//! Lints on a valid policy: rules that can never decide anything.
//!
//! - **shadowed**: an earlier enabled rule matches every operation the rule
//!   matches (rules are tried in document order and the first match decides),
//!   e.g. an `allow` after a broader `deny` of the same kind;
//! - **never matches**: a matcher no operation can satisfy (`inbound` UDP,
//!   as UDP sockets accept no connections; a `program` under `/bin`, `/sbin`
//!   or `/lib*` without its `/usr` twin, as programs are matched by their
//!   resolved path and those directories are symlinks into `/usr` on
//!   merged-/usr systems). Globs that no normalised path can match, and
//!   `unix` with address matchers, are validation errors already;
//! - **same as the default**: an `allow` rule where its kind's default is
//!   `allow` anyway, and no later rule of that kind could decide otherwise.
//!
//! The checks are sound, not complete: coverage is reported only when it
//! follows from the matchers themselves (an absent matcher, the same values,
//! a glob matching a literal, a `PREFIX/**` glob over globs starting with
//! PREFIX/, a wider CIDR or port range). A rule that can still change a
//! decision is never reported.

use crate::diag::{Diagnostic, Level};
use crate::format::PolicyFormat;
use crate::glob::Glob;
use crate::json::{self, Json, Value};
use crate::model::{Action, Policy, Rule};
use crate::net::{Cidr, PortRange};
use crate::{Direction, Protocol};

/// Every lint warning for `policy`, which was read from `text` in `format`,
/// in source order.
pub fn lint(text: &str, origin: &str, format: PolicyFormat, policy: &Policy) -> Vec<Diagnostic> {
    let rules = rule_values(text, format);
    let mut out = shadowed(text, origin, policy, &rules);
    out.extend(never_matching(text, origin, policy, &rules));
    // A shadowed rule changes no decision either: one warning is enough.
    let reported: Vec<usize> = out.iter().map(|d| d.span.0).collect();
    out.extend(
        same_as_default(text, origin, policy, &rules)
            .into_iter()
            .filter(|(start, _)| !reported.contains(start))
            .map(|(_, d)| d),
    );
    out.sort_by_key(|d| d.span.0);
    out
}

/// Shadowed rules only, for JSON text (kept for callers of the first API).
pub fn unreachable_rules(text: &str, origin: &str, policy: &Policy) -> Vec<Diagnostic> {
    shadowed(
        text,
        origin,
        policy,
        &rule_values(text, PolicyFormat::of_name(origin)),
    )
}

fn warning(
    text: &str,
    origin: &str,
    span: json::Span,
    message: String,
    hint: String,
) -> Diagnostic {
    let (line, col) = json::line_col(text, span.start);
    Diagnostic {
        level: Level::Warning,
        origin: origin.to_string(),
        line,
        col,
        span: (span.start, span.end.max(span.start)),
        message,
        expected: None,
        hint: Some(hint),
    }
}

/// The first character of a rule: where rule-level warnings point.
fn rule_start(text: &str, v: &Value) -> json::Span {
    let len = text[v.span.start..]
        .chars()
        .next()
        .map_or(0, char::len_utf8);
    json::Span {
        start: v.span.start,
        end: v.span.start + len,
    }
}

fn member<'v>(rule: &'v Value, key: &str) -> Option<&'v json::Member> {
    match &rule.json {
        Json::Object(members) => members.iter().find(|m| m.key == key),
        _ => None,
    }
}

fn shadowed(text: &str, origin: &str, policy: &Policy, rules: &[Value]) -> Vec<Diagnostic> {
    let spans: Vec<json::Span> = rules.iter().map(|v| v.span).collect();
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
        // Same action but another severity or errno: events would differ,
        // so the fix is to reorder, not to delete.
        let same_action =
            a.action == b.action && a.severity == b.severity && a.deny_errno() == b.deny_errno();
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

/// Each element of the top-level `rules` array, with its spans.
fn rule_values(text: &str, format: PolicyFormat) -> Vec<Value> {
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
            Json::Array(items) => Some(items),
            _ => None,
        })
        .unwrap_or_default()
}

/// Directories that are symlinks into `/usr` on merged-/usr systems.
const MERGED_USR: &[&str] = &["/bin/", "/sbin/", "/lib/", "/lib32/", "/lib64/", "/libx32/"];

/// Rules with a matcher no operation can satisfy. (Globs no normalised path
/// can match, and `unix` with address matchers, are validation errors.)
fn never_matching(text: &str, origin: &str, policy: &Policy, rules: &[Value]) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (rule, value) in policy.rules.iter().zip(rules) {
        if !rule.enabled {
            continue;
        }
        // `inbound` is an accepted connection: accept() exists only for
        // connection-oriented sockets, never UDP.
        let inbound_only = rule
            .direction
            .as_ref()
            .is_some_and(|d| d.iter().all(|x| *x == Direction::Inbound));
        let udp_only = rule
            .protocol
            .as_ref()
            .is_some_and(|p| p.iter().all(|x| *x == Protocol::Udp));
        if inbound_only && udp_only {
            let span = member(value, "protocol")
                .map(|m| m.value.span)
                .unwrap_or_else(|| rule_start(text, value));
            out.push(warning(
                text,
                origin,
                span,
                format!(
                    "rule `{}` never matches: `inbound` is an accepted connection, and UDP sockets accept none",
                    rule.name
                ),
                "for UDP traffic to this process use `listen` (its bound port); for TCP, `protocol: [\"tcp\"]`".into(),
            ));
        }
        // The program is matched as its resolved executable, and on
        // merged-/usr systems /bin, /sbin and /lib* are symlinks into /usr.
        let Some(programs) = &rule.program else {
            continue;
        };
        for (i, glob) in programs.iter().enumerate() {
            let g = glob.as_str();
            let Some(dir) = MERGED_USR.iter().find(|d| g.starts_with(**d)) else {
                continue;
            };
            let twin = format!("/usr{g}");
            if programs
                .iter()
                .any(|p| p.is_match(twin.as_bytes()) || p.as_str() == twin)
            {
                continue;
            }
            let span = member(value, "program")
                .map(|m| match &m.value.json {
                    Json::Array(items) => items.get(i).map_or(m.value.span, |v| v.span),
                    _ => m.value.span,
                })
                .unwrap_or_else(|| rule_start(text, value));
            out.push(warning(
                text,
                origin,
                span,
                format!(
                    "rule `{}`: program `{g}` never matches on merged-/usr systems (Debian 12, Ubuntu, Fedora and their images), where `{}` is a symlink to `/usr{}`",
                    rule.name,
                    dir.trim_end_matches('/'),
                    dir.trim_end_matches('/'),
                ),
                format!("the program is matched as its resolved executable: list `{twin}` too"),
            ));
        }
    }
    out
}

/// Rules that decide what the default of their kind decides, with no later
/// rule of that kind that could decide otherwise: deleting them changes no
/// decision.
/// Each warning comes with the start of its rule.
fn same_as_default(
    text: &str,
    origin: &str,
    policy: &Policy,
    rules: &[Value],
) -> Vec<(usize, Diagnostic)> {
    let mut out = Vec::new();
    for (index, (rule, value)) in policy.rules.iter().zip(rules).enumerate() {
        let default = policy.defaults[rule.kind.index()];
        // Only `allow`: a `deny` or `kill` rule names itself and its
        // severity in the event even where the default would also block
        // (as `ldguard learn`'s `unlearned-*` rules do on purpose), and an
        // `audit` rule is never a default.
        if !rule.enabled || rule.action != default || rule.action != Action::Allow {
            continue;
        }
        let later = policy.rules[index + 1..]
            .iter()
            .any(|r| r.enabled && r.kind == rule.kind);
        if later {
            continue;
        }
        let span = member(value, "action")
            .map(|m| m.value.span)
            .unwrap_or_else(|| rule_start(text, value));
        out.push((value.span.start, warning(
            text,
            origin,
            span,
            format!(
                "rule `{}` changes no decision: `{}` is already the default for `{}` operations, and no later `{}` rule could decide otherwise",
                rule.name,
                rule.action.as_str(),
                rule.kind.as_str(),
                rule.kind.as_str()
            ),
            format!(
                "delete `{}`, or change `defaults.{}` if most `{}` operations should be decided otherwise",
                rule.name,
                rule.kind.as_str(),
                rule.kind.as_str()
            ),
        )));
    }
    out
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
    // A literal `b` matches exactly one string: covered when `a` matches it.
    if b.is_literal() && a.is_match(b.as_str().as_bytes()) {
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

    /// Every lint, on a policy with `defaults` and `rules`.
    fn lint_all(defaults: &str, rules: &str) -> (String, Vec<Diagnostic>) {
        let text = format!(
            "{{\"apiVersion\": \"ldguard.policy/v1\", \"name\": \"t\", \"defaults\": {defaults},\n \"rules\": [\n{rules}\n]}}"
        );
        let (policy, diags) = crate::check_str(&text, "t.json");
        let policy = policy.unwrap_or_else(|| panic!("{}", diags.render(&text)));
        let d = super::lint(&text, "t.json", PolicyFormat::Json, &policy);
        (text, d)
    }

    const ALLOW_ALL: &str =
        r#"{"file": "allow", "exec": "allow", "network": "allow", "syscall": "allow"}"#;

    #[test]
    fn programs_under_merged_usr_directories_and_inbound_udp_never_match() {
        let (text, d) = lint_all(
            ALLOW_ALL,
            r#"{"name": "a", "kind": "exec", "program": ["/usr/sbin/nginx", "/bin/bash"], "path": ["/bin/sh"], "action": "deny"},
{"name": "b", "kind": "file", "program": ["/sbin/*", "/usr/sbin/*"], "path": ["/etc/**"], "action": "deny"},
{"name": "c", "kind": "network", "direction": "inbound", "protocol": ["udp"], "port": ["53"], "action": "deny"}"#,
        );
        assert_eq!(d.len(), 2, "{d:#?}");
        assert_eq!(&text[d[0].span.0..d[0].span.1], "\"/bin/bash\"");
        assert_eq!((d[0].line, d[0].col), (3, 62));
        assert!(
            d[0].message
                .contains("program `/bin/bash` never matches on merged-/usr systems"),
            "{}",
            d[0].message
        );
        assert_eq!(
            d[0].hint.as_deref(),
            Some("the program is matched as its resolved executable: list `/usr/bin/bash` too")
        );
        assert!(
            d[1].message.contains("rule `c` never matches: `inbound`"),
            "{}",
            d[1].message
        );
        assert_eq!(&text[d[1].span.0..d[1].span.1], "[\"udp\"]");
        // Inbound TCP, or inbound with UDP among others, can match.
        let (_, d) = lint_all(
            ALLOW_ALL,
            r#"{"name": "c", "kind": "network", "direction": "inbound", "protocol": ["udp", "tcp"], "action": "deny"},
{"name": "d", "kind": "network", "direction": ["inbound", "listen"], "protocol": ["udp"], "action": "deny"}"#,
        );
        assert!(d.is_empty(), "{d:#?}");
    }

    #[test]
    fn an_allow_after_a_broader_deny_is_shadowed() {
        let (_, d) = lint_all(
            ALLOW_ALL,
            r#"{"name": "bins", "kind": "exec", "path": ["/usr/bin/*"], "action": "deny"},
{"name": "python", "kind": "exec", "path": ["/usr/bin/python3"], "action": "allow"},
{"name": "deep", "kind": "exec", "path": ["/usr/bin/x/y"], "action": "allow"}"#,
        );
        // `*` stays inside one segment: `/usr/bin/x/y` is not under it
        // (only reported as repeating the default, being the last exec rule).
        let d: Vec<_> = d
            .iter()
            .filter(|d| d.message.contains("never reached"))
            .collect();
        assert_eq!(d.len(), 1, "{d:#?}");
        assert!(
            d[0].message
                .contains("rule `python` is never reached: rule `bins`"),
            "{}",
            d[0].message
        );
        assert!(d[0]
            .hint
            .as_deref()
            .unwrap()
            .contains("move it above `bins`"));
    }

    #[test]
    fn a_rule_that_repeats_the_default_changes_nothing() {
        let deny_exec =
            r#"{"file": "allow", "exec": "deny", "network": "allow", "syscall": "allow"}"#;
        let (text, d) = lint_all(
            deny_exec,
            r#"{"name": "tmp-allow", "kind": "file", "path": ["/tmp/**"], "action": "allow"},
{"name": "no-sh", "kind": "exec", "path": ["/bin/sh"], "action": "deny"},
{"name": "no-nc", "kind": "exec", "path": ["/bin/nc"], "action": "deny", "errno": "EPERM"}"#,
        );
        // (`no-nc`, the last exec rule, repeats the default `deny` but names
        // itself and its severity in events: not reported.)
        assert_eq!(d.len(), 1, "{d:#?}");
        assert!(
            d[0].message.contains(
                "rule `tmp-allow` changes no decision: `allow` is already the default for `file`"
            ),
            "{}",
            d[0].message
        );
        assert_eq!(&text[d[0].span.0..d[0].span.1], "\"allow\"");
        // An allow that carves an exception out of a later deny is needed.
        let (_, d) = lint_all(
            ALLOW_ALL,
            r#"{"name": "uploads", "kind": "file", "path": ["/srv/up/**"], "action": "allow"},
{"name": "srv", "kind": "file", "path": ["/srv/**"], "action": "deny"}"#,
        );
        assert!(d.is_empty(), "{d:#?}");
    }

    #[test]
    fn yaml_policies_are_linted_at_their_yaml_lines() {
        #[cfg(feature = "yaml")]
        {
            let text = "apiVersion: ldguard.policy/v1\nname: t\nrules:\n  - {name: etc, kind: file, path: [/etc/**], action: deny}\n  - name: passwd\n    kind: file\n    path: [/etc/passwd]\n    action: allow\n";
            let (policy, diags) = crate::check_source(text, "t.yaml", PolicyFormat::Yaml);
            let policy = policy.unwrap_or_else(|| panic!("{}", diags.render(text)));
            let d = super::lint(text, "t.yaml", PolicyFormat::Yaml, &policy);
            assert_eq!(d.len(), 1, "{d:#?}");
            assert_eq!((d[0].line, d[0].col), (5, 5));
            assert!(
                d[0].message.contains("rule `etc` (line 4)"),
                "{}",
                d[0].message
            );
        }
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
{"name": "b", "kind": "file", "path": ["/etc/x*"], "action": "allow"}"#,
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

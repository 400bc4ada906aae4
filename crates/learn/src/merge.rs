//! `--base`: learning into an existing policy.
//!
//! Operations the base already allows (by any rule or its default) teach
//! nothing. Operations a specific base rule denies stay denied (an explicit
//! deny wins over observation) and are listed in the notes. The rest are
//! learned; their rules go right before the base's first catch-all deny of
//! the same kind (a rule that only names its kind, access or direction),
//! so that they take effect, and after every specific base rule.

use crate::build::{self, Names, Rules};
use crate::doc::{PolicyDoc, RuleDoc};
use crate::observe::{NetTarget, Op};
use crate::{Options, Seen};
use ldguard_policy::net::Cidr;
use ldguard_policy::{Action, Call, Diagnostics, Kind, Request, Rule, RuleTable};
use std::collections::BTreeMap;

/// A base policy: its document (to write back) and its compiled table (to
/// ask what it already decides).
pub struct Base {
    pub doc: PolicyDoc,
    table: RuleTable,
}

#[derive(Debug)]
pub enum BaseError {
    /// The text is not a valid policy.
    Invalid(Diagnostics),
    /// Valid, but not readable as a document (cannot happen for text that
    /// validates; reported rather than unwrapped).
    Unreadable(String),
}

impl Base {
    pub fn parse(text: &str, origin: &str) -> Result<Base, BaseError> {
        let table = ldguard_policy::compile_str(text, origin).map_err(BaseError::Invalid)?;
        let doc = serde_json::from_str(text).map_err(|e| BaseError::Unreadable(e.to_string()))?;
        Ok(Base { doc, table })
    }

    /// The observed operations the base leaves to learning.
    pub(crate) fn unlearned<'a>(
        &self,
        ops: &'a BTreeMap<(String, Op), Seen>,
        notes: &mut Vec<String>,
    ) -> Vec<(&'a str, &'a Op, &'a Seen)> {
        let rules = &self.table.policy().rules;
        let mut denied: BTreeMap<&str, u64> = BTreeMap::new();
        let mut covered = 0u64;
        let mut out = Vec::new();
        for ((program, op), seen) in ops {
            let d = decide(&self.table, program, op);
            let rule = d.rule.map(|i| &rules[i as usize]);
            // Learned policies deny exec and network by default, so what
            // the base only allowed by default for those must be learned.
            let default_stays = !matches!(op.kind(), Kind::Exec | Kind::Network);
            match (d.action, rule) {
                (Action::Allow | Action::Audit, Some(_)) => covered += 1,
                (Action::Allow | Action::Audit, None) if default_stays => covered += 1,
                (Action::Allow | Action::Audit, None) => out.push((program.as_str(), op, seen)),
                (_, Some(r)) if !is_catch_all(r) => *denied.entry(&r.name).or_default() += 1,
                _ => out.push((program.as_str(), op, seen)),
            }
        }
        if covered > 0 {
            notes.push(format!(
                "{covered} observed operations are already allowed by the base policy"
            ));
        }
        for (rule, n) in denied {
            notes.push(format!(
                "{n} observed operations stay denied by the base policy's rule `{rule}` \
                 (an explicit deny is not overridden; edit that rule if they are legitimate)"
            ));
        }
        out
    }

    /// The base with `learned` merged in.
    pub(crate) fn merge(&self, learned: Rules, opts: &Options, events: u64) -> PolicyDoc {
        let mut doc = self.doc.clone();
        let count = learned.count();
        let base_rules = std::mem::take(&mut doc.rules);
        let mut names = Names::taken(base_rules.iter().map(|r| r.name.clone()));
        let rename = |mut r: RuleDoc, names: &mut Names| {
            r.name = names.unique(&r.name);
            r
        };
        let policy = self.table.policy();
        let mut defaults = doc.defaults.take().unwrap_or_default();
        for kind in Kind::ALL {
            let action = match kind {
                Kind::Exec | Kind::Network => Action::Deny,
                _ => policy.default_action(*kind),
            };
            defaults.insert(kind.as_str().into(), action.as_str().into());
        }
        let mut blocks: BTreeMap<&str, Vec<RuleDoc>> = BTreeMap::new();
        blocks.insert("file", learned.file);
        blocks.insert("exec", learned.exec);
        let mut net = learned.net;
        if !learned.dns.is_empty() {
            net.push(build::address_catch_all());
            net.extend(learned.dns);
        }
        blocks.insert("network", net);
        blocks.insert("syscall", learned.syscall);

        // Each block goes before the first base catch-all deny of its kind.
        let mut rules = Vec::new();
        for (i, r) in base_rules.into_iter().enumerate() {
            let catch_all = policy
                .rules
                .get(i)
                .is_some_and(|m| m.enabled && is_catch_all(m));
            if catch_all && r.action != "allow" && r.action != "audit" {
                if let Some(block) = blocks.remove(r.kind.as_str()) {
                    rules.extend(block.into_iter().map(|b| rename(b, &mut names)));
                }
            }
            rules.push(r);
        }
        for kind in Kind::ALL {
            if let Some(block) = blocks.remove(kind.as_str()) {
                rules.extend(block.into_iter().map(|b| rename(b, &mut names)));
                // No catch-all in the base: add one where the default denies.
                if defaults.get(kind.as_str()).map(String::as_str) == Some("deny") {
                    rules.push(rename(build::catch_all(*kind), &mut names));
                }
            }
        }
        doc.rules = rules;
        doc.defaults = Some(defaults);
        doc.mode = Some("permissive".into());
        if let Some(name) = &opts.name {
            doc.name = name.clone();
        }
        let note = build::description(opts, events, count);
        doc.description = Some(match doc.description.take() {
            Some(d) if !d.is_empty() => format!("{d}\n{note}"),
            _ => note,
        });
        doc
    }
}

/// A rule that decides a whole kind (at most narrowed by access or
/// direction, or matching every path, address or call), as opposed to one
/// about specific targets. A learned policy's `unlearned-*` rules are such
/// rules, so a learned policy can be the base of the next learning.
fn is_catch_all(r: &Rule) -> bool {
    let everything = |globs: &Option<Vec<ldguard_policy::glob::Glob>>| {
        globs
            .as_ref()
            .is_none_or(|g| g.iter().any(|g| matches!(g.as_str(), "/**" | "**")))
    };
    let all_calls = r.call.as_ref().is_none_or(|calls| {
        Call::ALL
            .iter()
            .filter(|c| c.kind() == Kind::Syscall)
            .all(|c| calls.contains(c))
    });
    // `unlearned-outbound` of a learned policy: every v4 or v6 address.
    let any_address = r.address.as_ref().is_none_or(|cidrs| {
        cidrs
            .iter()
            .any(|c| matches!(c, Cidr::V4 { prefix: 0, .. } | Cidr::V6 { prefix: 0, .. }))
    });
    everything(&r.program)
        && everything(&r.path)
        && any_address
        && r.port.is_none()
        && r.protocol.is_none()
        && r.unix.is_none()
        && r.host.is_none()
        && all_calls
}

fn decide(table: &RuleTable, program: &str, op: &Op) -> ldguard_policy::Decision {
    let program = program.as_bytes();
    match op {
        Op::File { access, path } => table.decide(&Request {
            path: Some(path.as_bytes()),
            access: *access,
            ..Request::new(Kind::File, ldguard_policy::Call::Openat, program)
        }),
        Op::Exec { path } => table.decide(&Request {
            path: Some(path.as_bytes()),
            ..Request::new(Kind::Exec, ldguard_policy::Call::Execve, program)
        }),
        Op::Syscall { call } => table.decide(&Request::new(Kind::Syscall, *call, program)),
        Op::Net { direction, target } => {
            let mut req = Request {
                direction: *direction,
                ..Request::new(Kind::Network, ldguard_policy::Call::Connect, program)
            };
            match target {
                NetTarget::Ip(ip, port) => {
                    req.address = Some(*ip);
                    req.port = Some(*port);
                }
                NetTarget::Unix(path) => req.unix = Some(path.as_bytes()),
                NetTarget::Host(name) => {
                    req.call = ldguard_policy::Call::Getaddrinfo;
                    req.host = Some(name);
                }
            }
            table.decide(&req)
        }
    }
}

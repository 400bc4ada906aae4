//! Compilation of a validated [`Policy`] into the immutable [`RuleTable`]
//! that answers [`RuleTable::decide`].

use std::sync::Arc;

use crate::diag::Diagnostics;
use crate::model::{LogSet, Policy, Rule};
use crate::{Access, Action, Call, Decision, Kind, Mode, Request, Severity};

const _: () = assert!(Call::ALL.len() <= 128, "the ignore bitset is a u128");

/// Parses, validates and compiles a policy document. `origin` names the
/// source (file name or URL) in diagnostics. Warnings are dropped; use
/// [`crate::check_str`] to see them.
pub fn compile_str(text: &str, origin: &str) -> Result<RuleTable, Diagnostics> {
    match crate::check_str(text, origin) {
        (Some(policy), _) => Ok(compile_document(&policy)),
        (None, diags) => Err(diags),
    }
}

/// Compiles an already validated policy.
pub fn compile_document(policy: &Policy) -> RuleTable {
    let mut ignored = 0u128;
    for c in &policy.ignore {
        ignored |= 1 << c.index();
    }
    let shared = Arc::new(Shared {
        policy: policy.clone(),
        ignored,
    });
    let active = (0..policy.rules.len() as u32)
        .filter(|&i| policy.rules[i as usize].enabled)
        .collect();
    RuleTable {
        shared,
        program: None,
        active,
    }
}

/// What every specialisation of one compiled policy shares.
#[derive(Debug)]
struct Shared {
    policy: Policy,
    ignored: u128,
}

/// An immutable, compiled policy. Cheap to share across threads (`Send +
/// Sync`); [`RuleTable::decide`] allocates nothing and takes no lock.
#[derive(Clone, Debug)]
pub struct RuleTable {
    shared: Arc<Shared>,
    /// The executable this table was specialised for by
    /// [`RuleTable::for_program`].
    program: Option<Box<[u8]>>,
    /// Indices of the enabled rules that can still match, in document order.
    active: Box<[u32]>,
}

impl RuleTable {
    /// A table for a process whose executable is `program`: rules whose
    /// `program` globs cannot match are dropped and the others no longer
    /// test it. [`Decision::rule`] indices stay those of the document.
    /// `decide` on the result assumes every request comes from `program`.
    pub fn for_program(&self, program: &[u8]) -> RuleTable {
        let rules = &self.shared.policy.rules;
        let active = self
            .active
            .iter()
            .copied()
            .filter(|&i| program_matches(&rules[i as usize], program))
            .collect();
        RuleTable {
            shared: self.shared.clone(),
            program: Some(program.into()),
            active,
        }
    }

    /// Decides `req`: the first enabled rule (in document order) that
    /// matches, else the default for the request's kind.
    pub fn decide(&self, req: &Request<'_>) -> Decision {
        let policy = &self.shared.policy;
        for &i in self.active.iter() {
            let rule = &policy.rules[i as usize];
            let program_ok = self.program.is_some() || program_matches(rule, req.program);
            if program_ok && rule_matches(rule, req) {
                return self.rule_decision(i, req.call);
            }
        }
        self.default_decision(req.kind, req.call)
    }

    fn rule_decision(&self, idx: u32, call: Call) -> Decision {
        let rule = &self.shared.policy.rules[idx as usize];
        Decision {
            action: rule.action,
            rule: Some(idx),
            severity: rule.severity,
            errno: if rule.action.blocks() {
                rule.deny_errno()
            } else {
                0
            },
            log: self.logs(rule.action, call),
        }
    }

    fn default_decision(&self, kind: Kind, call: Call) -> Decision {
        let action = self.shared.policy.default_action(kind);
        Decision {
            action,
            rule: None,
            severity: default_severity(action),
            errno: if action.blocks() {
                kind.default_errno()
            } else {
                0
            },
            log: self.logs(action, call),
        }
    }

    #[inline]
    fn logs(&self, action: Action, call: Call) -> bool {
        self.shared.policy.log.logs(action) && !self.is_ignored(call)
    }

    pub fn mode(&self) -> Mode {
        self.shared.policy.mode
    }

    pub fn name(&self) -> &str {
        &self.shared.policy.name
    }

    /// The outcomes `log` selects, `behavior` included.
    pub fn log_classes(&self) -> LogSet {
        self.shared.policy.log
    }

    pub fn policy_description(&self) -> Option<&str> {
        self.shared.policy.description.as_deref()
    }

    /// The validated document this table was compiled from.
    pub fn policy(&self) -> &Policy {
        &self.shared.policy
    }

    /// The executable given to [`RuleTable::for_program`], if any.
    pub fn program(&self) -> Option<&[u8]> {
        self.program.as_deref()
    }

    /// Number of rules in the document (enabled or not).
    pub fn rule_count(&self) -> usize {
        self.shared.policy.rules.len()
    }

    /// Name of the rule at document index `idx` (as in [`Decision::rule`]);
    /// `""` for an index out of range.
    pub fn rule_name(&self, idx: u32) -> &str {
        self.shared
            .policy
            .rules
            .get(idx as usize)
            .map_or("", |r| r.name.as_str())
    }

    pub fn rule_description(&self, idx: u32) -> Option<&str> {
        self.shared
            .policy
            .rules
            .get(idx as usize)?
            .description
            .as_deref()
    }

    /// Whether `call` is in `ignore` (never produces events).
    #[inline]
    pub fn is_ignored(&self, call: Call) -> bool {
        self.shared.ignored & (1 << call.index()) != 0
    }

    /// Whether resolving symlinks in a request's path can change its
    /// decision (see the crate docs); when `false` the hooks may pass no
    /// `resolved_path`.
    pub fn needs_resolution(&self, kind: Kind, access: Access) -> bool {
        let _ = (kind, access);
        true
    }
}

/// Severity of a decision made by a default: `info` when it lets the call
/// through, `medium` when it blocks it.
pub(crate) fn default_severity(action: Action) -> Severity {
    if action.blocks() {
        Severity::Medium
    } else {
        Severity::Info
    }
}

pub(crate) fn program_matches(rule: &Rule, program: &[u8]) -> bool {
    rule.program
        .as_ref()
        .is_none_or(|globs| globs.iter().any(|g| g.is_match(program)))
}

/// Every matcher but `program`, evaluated directly.
pub(crate) fn rule_matches(rule: &Rule, req: &Request<'_>) -> bool {
    if rule.kind != req.kind {
        return false;
    }
    fn any<T>(m: &Option<Vec<T>>, f: impl Fn(&T) -> bool) -> bool {
        m.as_ref().is_none_or(|v| v.iter().any(f))
    }
    fn field<T: Copy, U>(m: &Option<Vec<U>>, value: Option<T>, f: impl Fn(&U, T) -> bool) -> bool {
        match (m, value) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(v), Some(x)) => v.iter().any(|u| f(u, x)),
        }
    }
    match rule.kind {
        Kind::File | Kind::Exec => {
            let path_ok = match &rule.path {
                None => true,
                Some(globs) => globs.iter().any(|g| {
                    req.path.is_some_and(|p| g.is_match(p))
                        || req.resolved_path.is_some_and(|p| g.is_match(p))
                }),
            };
            path_ok && (rule.kind == Kind::Exec || any(&rule.access, |a| *a == req.access))
        }
        Kind::Network => {
            any(&rule.direction, |d| *d == req.direction)
                && field(&rule.address, req.address, |c, a| c.contains(a))
                && field(&rule.port, req.port, |r, p| r.contains(p))
                && field(&rule.protocol, req.protocol, |p, q| *p == q)
                && field(&rule.unix, req.unix, |g, u| g.is_match(u))
                && field(&rule.host, req.host, |g, h| g.is_match(h.as_bytes()))
        }
        Kind::Syscall => any(&rule.call, |c| *c == req.call),
    }
}

// The preload library swaps whole tables between threads.
const _: fn() = || {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<RuleTable>();
};

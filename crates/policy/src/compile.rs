//! Compilation of a validated [`Policy`] into the immutable [`RuleTable`]
//! that answers [`RuleTable::decide`].

use std::sync::Arc;

use crate::diag::Diagnostics;
use crate::index::net::NetIndex;
use crate::index::path::PathIndex;
use crate::index::{Cand, NONE};
use crate::model::{LogSet, Policy, Rule};
use crate::{Access, Action, Call, Decision, Direction, Kind, Mode, Request, Severity};

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

/// [`compile_str`] then [`RuleTable::for_program`] in one step, without
/// first building the index for every program that the specialised table
/// replaces: a process only ever uses its own. At start-up of every
/// instrumented process that index is a fifth of the work (BENCHMARKS.md).
pub fn compile_str_for_program(
    text: &str,
    origin: &str,
    program: &[u8],
) -> Result<RuleTable, Diagnostics> {
    match crate::check_str(text, origin) {
        (Some(policy), _) => Ok(compile(&policy, Some(program))),
        (None, diags) => Err(diags),
    }
}

/// Compiles an already validated policy.
pub fn compile_document(policy: &Policy) -> RuleTable {
    compile(policy, None)
}

/// The table of `policy`, specialised for `program` when given (as
/// [`RuleTable::for_program`] does).
fn compile(policy: &Policy, program: Option<&[u8]>) -> RuleTable {
    let mut ignored = 0u128;
    for c in &policy.ignore {
        ignored |= 1 << c.index();
    }
    let outcomes = policy
        .rules
        .iter()
        .map(|r| Outcome {
            action: r.action,
            severity: r.severity,
            errno: if r.action.blocks() { r.deny_errno() } else { 0 },
        })
        .collect();
    let shared = Arc::new(Shared {
        policy: policy.clone(),
        ignored,
        outcomes,
    });
    let candidates = policy
        .rules
        .iter()
        .enumerate()
        .filter(|(_, r)| r.enabled && program.is_none_or(|p| program_matches(r, p)))
        .map(|(i, r)| Cand {
            rule: i as u32,
            check_program: program.is_none() && r.program.is_some(),
        });
    let index = Arc::new(Index::build(policy, candidates));
    RuleTable {
        shared,
        program: program.map(Into::into),
        index,
    }
}

/// What a rule (or default) decides, before `log` is applied.
#[derive(Clone, Copy, Debug)]
struct Outcome {
    action: Action,
    severity: Severity,
    errno: i32,
}

/// What every specialisation of one compiled policy shares.
#[derive(Debug)]
struct Shared {
    policy: Policy,
    ignored: u128,
    /// Per rule, by document index.
    outcomes: Box<[Outcome]>,
}

/// The per-kind lookup structures.
#[derive(Debug)]
struct Index {
    /// File rules for read (0) and write (1) access.
    file: [PathIndex; 2],
    exec: PathIndex,
    /// Network rules per direction (outbound, inbound, listen).
    net: [NetIndex; 3],
    /// Syscall rules per call index.
    syscall: Box<[Box<[Cand]>]>,
    /// `needs_resolution` per bucket: file read, file write, exec, network.
    resolution: [bool; 4],
    /// Literal path prefixes of blocking file and exec rules, by rule
    /// index, for [`RuleTable::blocking_rule_under`].
    guarded: Box<[(Box<[u8]>, u32)]>,
}

impl Index {
    fn build(policy: &Policy, cands: impl Iterator<Item = Cand> + Clone) -> Index {
        let rules = &policy.rules;
        let of_kind = |kind: Kind| {
            cands
                .clone()
                .filter(move |c| rules[c.rule as usize].kind == kind)
        };
        let file = |access: Access| {
            PathIndex::build(
                of_kind(Kind::File)
                    .filter(move |c| {
                        rules[c.rule as usize]
                            .access
                            .as_ref()
                            .is_none_or(|a| a.contains(&access))
                    })
                    .map(|c| (c, rules[c.rule as usize].path.as_deref())),
            )
        };
        let net = |dir: Direction| {
            NetIndex::build(
                of_kind(Kind::Network)
                    .filter(move |c| {
                        rules[c.rule as usize]
                            .direction
                            .as_ref()
                            .is_none_or(|d| d.contains(&dir))
                    })
                    .map(|c| (c, &rules[c.rule as usize])),
            )
        };
        let mut syscall: Vec<Vec<Cand>> = vec![Vec::new(); Call::ALL.len()];
        for c in of_kind(Kind::Syscall) {
            for call in rules[c.rule as usize].call.iter().flatten() {
                syscall[call.index()].push(c);
            }
        }
        let bucket = |kind: Kind, access: Option<Access>| -> Vec<Cand> {
            of_kind(kind)
                .filter(|c| {
                    access.is_none_or(|a| {
                        rules[c.rule as usize]
                            .access
                            .as_ref()
                            .is_none_or(|x| x.contains(&a))
                    })
                })
                .collect()
        };
        let resolution = [
            needs_resolution(policy, &bucket(Kind::File, Some(Access::Read)), Kind::File),
            needs_resolution(policy, &bucket(Kind::File, Some(Access::Write)), Kind::File),
            needs_resolution(policy, &bucket(Kind::Exec, None), Kind::Exec),
            needs_resolution(policy, &bucket(Kind::Network, None), Kind::Network),
        ];
        let mut guarded: Vec<(Box<[u8]>, u32)> = cands
            .clone()
            .filter(|c| !c.check_program)
            .flat_map(|c| {
                let r = &rules[c.rule as usize];
                let blocking = r.action.blocks() && matches!(r.kind, Kind::File | Kind::Exec);
                r.path
                    .iter()
                    .flatten()
                    .filter(move |_| blocking)
                    .map(|g| g.literal_prefix())
                    .filter(|p| p.first() == Some(&b'/'))
                    .map(move |p| (Box::from(p), c.rule))
            })
            .collect();
        guarded.sort_by_key(|g| g.1);
        Index {
            guarded: guarded.into(),
            file: [file(Access::Read), file(Access::Write)],
            exec: PathIndex::build(
                of_kind(Kind::Exec).map(|c| (c, rules[c.rule as usize].path.as_deref())),
            ),
            net: [
                net(Direction::Outbound),
                net(Direction::Inbound),
                net(Direction::Listen),
            ],
            syscall: syscall.into_iter().map(Into::into).collect(),
            resolution,
        }
    }
}

/// Whether resolving a request's path (or socket path, for network) can
/// change what the rules of `bucket` decide, or what gets logged.
///
/// Only rules with a path matcher look at the path. Any such rule before
/// the first rule that matches every request of the bucket (a catch-all:
/// no path and no unresolved program) can change the deciding rule, unless
/// every rule up to that point and the fallback (the catch-all, else the
/// default) all allow and allowed outcomes are not logged: then the action
/// and the (absent) event are the same whichever of them decides.
fn needs_resolution(policy: &Policy, bucket: &[Cand], kind: Kind) -> bool {
    let rules = &policy.rules;
    let looks_at_path = |r: &Rule| match kind {
        Kind::Network => r.unix.is_some(),
        _ => r.path.is_some(),
    };
    let catch_all = |c: &Cand| {
        let r = &rules[c.rule as usize];
        !c.check_program
            && match kind {
                Kind::Network => false,
                _ => r.path.is_none(),
            }
    };
    let end = bucket.iter().position(catch_all).unwrap_or(bucket.len());
    let before = &bucket[..end];
    if !before
        .iter()
        .any(|c| looks_at_path(&rules[c.rule as usize]))
    {
        return false;
    }
    let fallback = bucket.get(end).map_or(policy.default_action(kind), |c| {
        rules[c.rule as usize].action
    });
    let all_allow = fallback == Action::Allow
        && before
            .iter()
            .all(|c| rules[c.rule as usize].action == Action::Allow);
    !all_allow || policy.log.logs(Action::Allow)
}

/// An immutable, compiled policy. Cheap to clone and share across threads
/// (`Send + Sync`); [`RuleTable::decide`] allocates nothing and takes no
/// lock.
#[derive(Clone, Debug)]
pub struct RuleTable {
    shared: Arc<Shared>,
    /// The executable this table was specialised for by
    /// [`RuleTable::for_program`].
    program: Option<Arc<[u8]>>,
    index: Arc<Index>,
}

impl RuleTable {
    /// A table for a process whose executable is `program`: rules whose
    /// `program` globs cannot match are dropped and the others no longer
    /// test it. [`Decision::rule`] indices stay those of the document.
    /// `decide` on the result assumes every request comes from `program`
    /// (it ignores [`Request::program`]).
    pub fn for_program(&self, program: &[u8]) -> RuleTable {
        let policy = &self.shared.policy;
        let candidates = policy
            .rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.enabled && program_matches(r, program))
            .map(|(i, _)| Cand {
                rule: i as u32,
                check_program: false,
            });
        RuleTable {
            shared: self.shared.clone(),
            program: Some(program.into()),
            index: Arc::new(Index::build(policy, candidates)),
        }
    }

    /// Decides `req`: the first enabled rule (in document order) that
    /// matches, else the default for the request's kind.
    pub fn decide(&self, req: &Request<'_>) -> Decision {
        let rules = &self.shared.policy.rules;
        let program_ok = |i: u32| program_matches(&rules[i as usize], req.program);
        let idx = &self.index;
        let rule = match req.kind {
            Kind::File => {
                let bucket = &idx.file[(req.access == Access::Write) as usize];
                bucket.lookup(req.path, req.resolved_path, NONE, &program_ok)
            }
            Kind::Exec => idx
                .exec
                .lookup(req.path, req.resolved_path, NONE, &program_ok),
            Kind::Network => {
                let dir = match req.direction {
                    Direction::Outbound => 0,
                    Direction::Inbound => 1,
                    Direction::Listen => 2,
                };
                idx.net[dir].lookup(
                    req.address,
                    req.port,
                    req.protocol,
                    req.unix,
                    req.host,
                    &program_ok,
                )
            }
            Kind::Syscall => idx.syscall[req.call.index()]
                .iter()
                .find(|c| !c.check_program || program_ok(c.rule))
                .map_or(NONE, |c| c.rule),
        };
        if rule == NONE {
            self.default_decision(req.kind, req.call)
        } else {
            self.rule_decision(rule, req.call)
        }
    }

    #[inline]
    fn rule_decision(&self, idx: u32, call: Call) -> Decision {
        let o = self.shared.outcomes[idx as usize];
        Decision {
            action: o.action,
            rule: Some(idx),
            severity: o.severity,
            errno: o.errno,
            log: self.logs(o.action, call),
        }
    }

    #[inline]
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
    /// decision or whether it is logged. When `false`, the hooks may skip
    /// the resolution and pass no [`Request::resolved_path`]: the action and
    /// `log` come out the same (and so does the rule when it is logged).
    /// For [`Kind::Network`] it answers the same for unix socket paths;
    /// `access` only matters for [`Kind::File`]. Always `false` for
    /// [`Kind::Syscall`].
    /// The first rule (in document order) that denies or kills a file or
    /// exec path whose literal prefix lies strictly below the directory
    /// `dir` (absolute, normalised). Renaming or removing `dir` moves what
    /// such a rule protects out from under its path, so the hooks treat it
    /// as a write to what is below. Globs without a literal prefix
    /// (`**/x`) cannot be placed and are not considered. Rules with a
    /// `program` count only in a table specialised by
    /// [`RuleTable::for_program`]. Allocates nothing.
    pub fn blocking_rule_under(&self, dir: &[u8]) -> Option<u32> {
        let dir = if dir == b"/" { &b""[..] } else { dir };
        self.index
            .guarded
            .iter()
            .find(|(prefix, _)| {
                prefix.len() > dir.len() && prefix.starts_with(dir) && prefix[dir.len()] == b'/'
            })
            .map(|g| g.1)
    }

    /// The decision rule `idx` makes for `call` (as [`RuleTable::decide`]
    /// would report it had the rule matched).
    pub fn decision_of_rule(&self, idx: u32, call: Call) -> Decision {
        self.rule_decision(idx, call)
    }

    pub fn needs_resolution(&self, kind: Kind, access: Access) -> bool {
        match kind {
            Kind::File => self.index.resolution[(access == Access::Write) as usize],
            Kind::Exec => self.index.resolution[2],
            Kind::Network => self.index.resolution[3],
            Kind::Syscall => false,
        }
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

// The preload library swaps whole tables between threads.
const _: fn() = || {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<RuleTable>();
};

//! Compilation of a validated [`Policy`] into the immutable [`RuleTable`]
//! that answers [`RuleTable::decide`].

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use crate::diag::Diagnostics;
use crate::flat::{damaged, FlatError, Read, Reader, Writer};
use crate::glob::Glob;
use crate::index::net::NetIndex;
use crate::index::path::PathIndex;
use crate::index::{Cand, NONE};
use crate::model::Backstop;
use crate::model::{LogSet, Policy, Rule};
use crate::{
    Access, Action, Call, Decision, Direction, Kind, LandlockLevel, LogClass, Mode, Request,
    Severity,
};

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
    let mut names = String::new();
    let mut name_ends = Vec::with_capacity(policy.rules.len());
    for r in &policy.rules {
        names.push_str(&r.name);
        name_ends.push(names.len() as u32);
    }
    let shared = Arc::new(Shared {
        policy: OnceLock::from(policy.clone()),
        text: None,
        summary: Summary {
            name: policy.name.as_str().into(),
            mode: policy.mode,
            log: policy.log,
            defaults: policy.defaults,
            backstop: policy.backstop,
            drift: policy.drift,
        },
        ignored,
        outcomes,
        names: names.into(),
        name_ends: name_ends.into(),
        programs: policy
            .rules
            .iter()
            .map(|r| r.program.clone().map(Into::into))
            .collect(),
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
    /// The validated document. A table read from its flat form parses it
    /// from `text` only when something asks for it.
    policy: OnceLock<Policy>,
    text: Option<&'static [u8]>,
    /// What `decide` and the hooks read of the document.
    summary: Summary,
    ignored: u128,
    /// Per rule, by document index.
    outcomes: Box<[Outcome]>,
    /// Rule names, concatenated; `name_ends[i]` is where rule i's ends.
    names: Box<str>,
    name_ends: Box<[u32]>,
    /// Per rule, its `program` globs.
    programs: Box<[Option<Box<[Glob]>>]>,
}

#[derive(Debug)]
struct Summary {
    name: Box<str>,
    mode: Mode,
    log: LogSet,
    defaults: [Action; 4],
    backstop: Option<Backstop>,
    drift: Option<Action>,
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
    /// Path patterns of blocking file, exec and outbound unix socket
    /// rules, by rule index, for [`RuleTable::blocking_rule_under`].
    guarded: Box<[(Cow<'static, [u8]>, u32)]>,
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
        let mut guarded: Vec<(Cow<'static, [u8]>, u32)> = cands
            .clone()
            .filter(|c| !c.check_program)
            .flat_map(|c| {
                let r = &rules[c.rule as usize];
                // Paths a move or a new root could take out from under the
                // rule: file and exec paths, and the socket paths of
                // outbound unix rules (a socket is reached by its inode,
                // under whatever name it has now).
                let paths = match r.kind {
                    Kind::File | Kind::Exec => r.path.as_deref(),
                    Kind::Network
                        if r.direction
                            .as_ref()
                            .is_none_or(|d| d.contains(&Direction::Outbound)) =>
                    {
                        r.unix.as_deref()
                    }
                    _ => None,
                };
                paths
                    .unwrap_or_default()
                    .iter()
                    .filter(move |_| r.action.blocks())
                    .map(|g| g.as_str().as_bytes())
                    .filter(|p| p.starts_with(b"/") || p.starts_with(b"**/"))
                    .map(move |p| (Cow::Owned(p.to_vec()), c.rule))
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
        let policy = self.policy();
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
        let programs = &self.shared.programs;
        let program_ok = |i: u32| {
            programs[i as usize]
                .as_ref()
                .is_none_or(|globs| globs.iter().any(|g| g.is_match(req.program)))
        };
        let idx = &self.index;
        let rule = match req.kind {
            Kind::File => {
                let bucket = &idx.file[(req.access == Access::Write) as usize];
                bucket.lookup(
                    req.path,
                    req.resolved_path,
                    req.path_without_slash_dot,
                    NONE,
                    &program_ok,
                )
            }
            Kind::Exec => idx.exec.lookup(
                req.path,
                req.resolved_path,
                req.path_without_slash_dot,
                NONE,
                &program_ok,
            ),
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
        let action = self.shared.summary.defaults[kind.index()];
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
        self.shared.summary.log.logs(action) && !self.is_ignored(call)
    }

    pub fn mode(&self) -> Mode {
        self.shared.summary.mode
    }

    pub fn name(&self) -> &str {
        &self.shared.summary.name
    }

    /// The outcomes `log` selects, `behavior` included.
    pub fn log_classes(&self) -> LogSet {
        self.shared.summary.log
    }

    /// The policy's default action for `kind`.
    pub fn default_action(&self, kind: Kind) -> Action {
        self.shared.summary.defaults[kind.index()]
    }

    /// The policy's `backstop`, without parsing the document of a table
    /// read from its flat form.
    pub fn backstop(&self) -> Option<Backstop> {
        self.shared.summary.backstop
    }

    /// The policy's `drift` action.
    pub fn drift(&self) -> Option<Action> {
        self.shared.summary.drift
    }

    pub fn policy_description(&self) -> Option<&str> {
        self.policy().description.as_deref()
    }

    /// The validated document this table was compiled from. For a table
    /// read from its flat form ([`crate::flat::decode`]) the document is
    /// parsed from the embedded text on the first call.
    pub fn policy(&self) -> &Policy {
        self.shared.policy.get_or_init(|| {
            let text = self.shared.text.unwrap_or_default();
            let parsed = std::str::from_utf8(text)
                .ok()
                .and_then(|t| crate::check_str(t, &self.shared.summary.name).0);
            // The writer compiled this very text, and the reader compared it
            // with the policy it was given: it parses. Should it not, the
            // summary is all there is (no rules; `decide` does not need them).
            parsed.unwrap_or_else(|| Policy {
                name: self.shared.summary.name.to_string(),
                mode: self.shared.summary.mode,
                log: self.shared.summary.log,
                defaults: self.shared.summary.defaults,
                ignore: Vec::new(),
                description: None,
                rules: Vec::new(),
                backstop: self.shared.summary.backstop,
                drift: self.shared.summary.drift,
            })
        })
    }

    /// The executable given to [`RuleTable::for_program`], if any.
    pub fn program(&self) -> Option<&[u8]> {
        self.program.as_deref()
    }

    /// Number of rules in the document (enabled or not).
    pub fn rule_count(&self) -> usize {
        self.shared.outcomes.len()
    }

    /// Name of the rule at document index `idx` (as in [`Decision::rule`]);
    /// `""` for an index out of range.
    pub fn rule_name(&self, idx: u32) -> &str {
        let ends = &self.shared.name_ends;
        let Some(&end) = ends.get(idx as usize) else {
            return "";
        };
        let start = if idx == 0 { 0 } else { ends[idx as usize - 1] };
        self.shared
            .names
            .get(start as usize..end as usize)
            .unwrap_or("")
    }

    pub fn rule_description(&self, idx: u32) -> Option<&str> {
        self.policy()
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
    /// exec path, or a connection to a unix socket path, that could lie
    /// strictly below the directory `dir` (absolute, normalised) and match
    /// there through `dir`'s own name ([`crate::glob::may_match_below`]).
    /// Renaming `dir`, or making it the root, gives what such a rule
    /// protects a path the rule does not match, so the hooks treat it as a
    /// write to what is below. Rules with a `program` count only in a table
    /// specialised by [`RuleTable::for_program`]. Allocates nothing.
    pub fn blocking_rule_under(&self, dir: &[u8]) -> Option<u32> {
        // Most absolute patterns leave `dir`'s path at their first byte
        // after the root: that test first, inline, for every pattern.
        let first = dir.get(1).copied();
        self.index
            .guarded
            .iter()
            .find(|(pattern, _)| {
                let parts_at_once = first.is_some()
                    && pattern.first() == Some(&b'/')
                    && pattern
                        .get(1)
                        .is_some_and(|&c| c != b'*' && c != b'?' && Some(c) != first);
                !parts_at_once && crate::glob::may_match_below(pattern, dir)
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

/// The flat form's payload (see [`crate::flat`]).
impl RuleTable {
    pub(crate) fn encode_payload(&self, w: &mut Writer) {
        let s = &self.shared;
        let m = &s.summary;
        w.bytes(m.name.as_bytes());
        w.u8(m.mode as u8);
        w.u8(LogClass::ALL
            .iter()
            .enumerate()
            .filter(|(_, &c)| m.log.contains(c))
            .fold(0, |bits, (i, _)| bits | 1 << i));
        for a in m.defaults {
            w.u8(a as u8);
        }
        match m.backstop {
            None => w.u8(0),
            Some(b) => {
                w.u8(1);
                w.bool(b.seccomp);
                w.u8(b.landlock as u8);
            }
        }
        match m.drift {
            None => w.u8(0),
            Some(a) => w.u8(1 + a as u8),
        }
        w.u128(s.ignored);
        w.len(s.outcomes.len());
        for o in s.outcomes.iter() {
            w.u8(o.action as u8);
            w.u8(o.severity as u8);
            w.u32(o.errno as u32);
        }
        w.bytes(s.names.as_bytes());
        w.u32s(&s.name_ends);
        let with_program: Vec<(usize, &[Glob])> = s
            .programs
            .iter()
            .enumerate()
            .filter_map(|(i, p)| Some((i, p.as_deref()?)))
            .collect();
        w.len(with_program.len());
        for (i, globs) in with_program {
            w.len(i);
            w.globs(globs);
        }
        let idx = &self.index;
        for p in [&idx.file[0], &idx.file[1], &idx.exec] {
            p.encode(w);
        }
        for n in &idx.net {
            n.encode(w);
        }
        w.len(idx.syscall.len());
        for cands in idx.syscall.iter() {
            encode_cands(w, cands);
        }
        for r in idx.resolution {
            w.bool(r);
        }
        w.len(idx.guarded.len());
        for (prefix, rule) in idx.guarded.iter() {
            w.bytes(prefix);
            w.u32(*rule);
        }
    }

    pub(crate) fn decode_payload(
        r: &mut Reader<'static>,
        program: Option<&[u8]>,
        text: &'static [u8],
    ) -> Read<RuleTable> {
        let name: Box<str> = r.str()?.into();
        let mode = r.pick(Mode::ALL)?;
        let log_bits = r.u8()?;
        let log = LogClass::ALL
            .iter()
            .enumerate()
            .filter(|(i, _)| log_bits & (1 << i) != 0)
            .fold(LogSet::EMPTY, |set, (_, &c)| set.with(c));
        let mut defaults = [Action::Allow; 4];
        for d in &mut defaults {
            *d = r.pick(Action::ALL)?;
        }
        let backstop = match r.u8()? {
            0 => None,
            1 => Some(Backstop {
                seccomp: r.bool()?,
                landlock: r.pick(LandlockLevel::ALL)?,
            }),
            _ => return damaged("bad backstop"),
        };
        let drift = match r.u8()? {
            0 => None,
            n => Some(
                *Action::ALL
                    .get(n as usize - 1)
                    .ok_or(FlatError::Damaged("bad drift"))?,
            ),
        };
        let ignored = r.u128()?;
        let n = r.len(6)?;
        let mut outcomes = Vec::with_capacity(n);
        for _ in 0..n {
            outcomes.push(Outcome {
                action: r.pick(Action::ALL)?,
                severity: r.pick(Severity::ALL)?,
                errno: r.u32()? as i32,
            });
        }
        let names: Box<str> = r.str()?.into();
        let name_ends = r.u32s()?;
        if name_ends.len() != n
            || name_ends.windows(2).any(|w| w[0] > w[1])
            || name_ends.last().is_some_and(|&e| e as usize > names.len())
        {
            return damaged("bad rule names");
        }
        let mut programs: Vec<Option<Box<[Glob]>>> = vec![None; n];
        for _ in 0..r.len(5)? {
            let i = r.u32()? as usize;
            let globs = r.globs()?;
            match programs.get_mut(i) {
                Some(slot) if slot.is_none() => *slot = Some(globs.into()),
                _ => return damaged("bad program rule"),
            }
        }
        let n_rules = n as u32;
        let file = [
            PathIndex::decode(r, n_rules)?,
            PathIndex::decode(r, n_rules)?,
        ];
        let exec = PathIndex::decode(r, n_rules)?;
        let net = [
            NetIndex::decode(r, n_rules)?,
            NetIndex::decode(r, n_rules)?,
            NetIndex::decode(r, n_rules)?,
        ];
        if r.len(1)? != Call::ALL.len() {
            return damaged("bad syscall table");
        }
        let mut syscall = Vec::with_capacity(Call::ALL.len());
        for _ in 0..Call::ALL.len() {
            syscall.push(decode_cands(r, n_rules)?);
        }
        let mut resolution = [false; 4];
        for x in &mut resolution {
            *x = r.bool()?;
        }
        let g = r.len(8)?;
        let mut guarded = Vec::with_capacity(g);
        for _ in 0..g {
            let prefix = Cow::Borrowed(r.bytes()?);
            let rule = r.u32()?;
            if rule >= n_rules {
                return damaged("bad rule index");
            }
            guarded.push((prefix, rule));
        }
        Ok(RuleTable {
            shared: Arc::new(Shared {
                policy: OnceLock::new(),
                text: Some(text),
                summary: Summary {
                    name,
                    mode,
                    log,
                    defaults,
                    backstop,
                    drift,
                },
                ignored,
                outcomes: outcomes.into(),
                names,
                name_ends,
                programs: programs.into(),
            }),
            program: program.map(Into::into),
            index: Arc::new(Index {
                file,
                exec,
                net,
                syscall: syscall.into(),
                resolution,
                guarded: guarded.into(),
            }),
        })
    }
}

/// Candidates as `rule | check_program << 31`.
pub(crate) fn encode_cands(w: &mut Writer, cands: &[Cand]) {
    w.len(cands.len());
    for c in cands {
        w.u32(c.rule | (c.check_program as u32) << 31);
    }
}

pub(crate) fn decode_cands(r: &mut Reader<'_>, n_rules: u32) -> Read<Box<[Cand]>> {
    let n = r.len(4)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let x = r.u32()?;
        let rule = x & !(1 << 31);
        if rule >= n_rules {
            return damaged("bad rule index");
        }
        out.push(Cand {
            rule,
            check_program: x >> 31 != 0,
        });
    }
    Ok(out.into())
}

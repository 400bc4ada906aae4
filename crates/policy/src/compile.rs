//! Compilation of a validated [`Policy`] into the immutable [`RuleTable`]
//! that answers [`RuleTable::decide`].

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use crate::diag::Diagnostics;
use crate::flat::{damaged, FlatError, Read, Reader, Writer};
use crate::glob::{le_u32, GlobTable};
use crate::index::net::NetIndex;
use crate::index::path::PathIndex;
use crate::index::{cands_of, Cand, Cands, NONE};
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
    let mut outcomes = Vec::with_capacity(policy.rules.len() * OUTCOME_SIZE);
    for r in &policy.rules {
        let errno = if r.action.blocks() { r.deny_errno() } else { 0 };
        outcomes.extend_from_slice(&[r.action as u8, r.severity as u8]);
        outcomes.extend_from_slice(&errno.to_le_bytes());
    }
    let mut names = String::new();
    let mut name_ends = Vec::with_capacity(policy.rules.len() * 4);
    for r in &policy.rules {
        names.push_str(&r.name);
        name_ends.extend_from_slice(&(names.len() as u32).to_le_bytes());
    }
    let mut programs = Vec::with_capacity(policy.rules.len() * 8);
    let mut program_globs = Vec::new();
    for r in &policy.rules {
        let (first, count) = match &r.program {
            None => (0, NO_PROGRAM),
            Some(globs) => (program_globs.len() as u32, globs.len() as u32),
        };
        program_globs.extend(r.program.iter().flatten());
        programs.extend_from_slice(&first.to_le_bytes());
        programs.extend_from_slice(&count.to_le_bytes());
    }
    let shared = Arc::new(Shared {
        policy: OnceLock::from(policy.clone()),
        text: None,
        summary: Summary {
            name: Cow::Owned(policy.name.clone()),
            mode: policy.mode,
            log: policy.log,
            defaults: policy.defaults,
            backstop: policy.backstop,
            drift: policy.drift,
        },
        ignored,
        outcomes: outcomes.into(),
        names: names.into_bytes().into(),
        name_ends: name_ends.into(),
        programs: programs.into(),
        program_globs: GlobTable::build(program_globs.into_iter().map(|g| (g, 0))),
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

/// Bytes of a rule's [`Outcome`] in [`Shared::outcomes`]: action and
/// severity (their index in `ALL`), errno (little-endian `i32`).
const OUTCOME_SIZE: usize = 6;

/// What a rule index the table does not have decides (only a damaged
/// table names one): the call is refused.
const UNKNOWN_RULE: Outcome = Outcome {
    action: Action::Deny,
    severity: Severity::High,
    errno: crate::errno::EACCES,
};

/// Glob count of a rule without `program` in [`Shared::programs`].
const NO_PROGRAM: u32 = u32::MAX;

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
    /// Per rule, by document index, [`OUTCOME_SIZE`] bytes. Like every
    /// per-rule array here, little-endian and borrowed from the mapped
    /// table file when read from one; an index past the end is answered
    /// for ([`UNKNOWN_RULE`], `""`, no program).
    outcomes: Cow<'static, [u8]>,
    /// Rule names, concatenated; `name_ends` (`u32`) is where rule i's
    /// ends.
    names: Cow<'static, [u8]>,
    name_ends: Cow<'static, [u8]>,
    /// Per rule, its first `program` glob in `program_globs` and their
    /// count ([`NO_PROGRAM`]: no `program`), two `u32`s.
    programs: Cow<'static, [u8]>,
    program_globs: GlobTable,
}

impl Shared {
    #[inline]
    fn outcome(&self, rule: u32) -> Outcome {
        let at = rule as usize * OUTCOME_SIZE;
        let Some(raw) = self.outcomes.get(at..at + OUTCOME_SIZE) else {
            return UNKNOWN_RULE;
        };
        match (
            Action::ALL.get(raw[0] as usize),
            Severity::ALL.get(raw[1] as usize),
            le_u32(raw, 2),
        ) {
            (Some(&action), Some(&severity), Some(errno)) => Outcome {
                action,
                severity,
                errno: errno as i32,
            },
            _ => UNKNOWN_RULE,
        }
    }

    /// Whether rule `rule`'s `program` globs (if any) match `program`.
    #[inline]
    fn program_ok(&self, rule: u32, program: &[u8]) -> bool {
        let at = rule as usize * 8;
        let (Some(first), Some(count)) =
            (le_u32(&self.programs, at), le_u32(&self.programs, at + 4))
        else {
            return false;
        };
        if count == NO_PROGRAM {
            return true;
        }
        let first = first as usize;
        let end = first
            .saturating_add(count as usize)
            .min(self.program_globs.len());
        (first..end).any(|i| self.program_globs.is_match(i, program))
    }
}

#[derive(Debug)]
struct Summary {
    name: Cow<'static, str>,
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
    /// Syscall rules of every call, in call index order.
    syscall: Cands,
    /// Where each call's rules start in `syscall` (in candidates), and one
    /// past the last call's end: `Call::ALL.len() + 1` `u32`s.
    syscall_starts: Cow<'static, [u8]>,
    /// `needs_resolution` per bucket: file read, file write, exec, network.
    resolution: [bool; 4],
    /// Path patterns of blocking file, exec and outbound unix socket
    /// rules, by rule index, for [`RuleTable::blocking_rule_under`]: only
    /// their bytes and their extra byte ([`parting_byte`]) are used, and
    /// each one's rule is `guarded_rules[i]` (`u32`).
    guarded: GlobTable,
    guarded_rules: Cow<'static, [u8]>,
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
        let mut guarded: Vec<(&crate::glob::Glob, u32)> = cands
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
                    .filter(|g| {
                        let p = g.as_str().as_bytes();
                        p.starts_with(b"/") || p.starts_with(b"**/")
                    })
                    .map(move |g| (g, c.rule))
            })
            .collect();
        guarded.sort_by_key(|g| g.1);
        let mut syscall_starts = Vec::with_capacity((syscall.len() + 1) * 4);
        let mut start = 0u32;
        for cands in &syscall {
            syscall_starts.extend_from_slice(&start.to_le_bytes());
            start += cands.len() as u32;
        }
        syscall_starts.extend_from_slice(&start.to_le_bytes());
        Index {
            guarded: GlobTable::build(guarded.iter().map(|&(g, _)| (g, parting_byte(g)))),
            guarded_rules: guarded
                .iter()
                .flat_map(|&(_, rule)| rule.to_le_bytes())
                .collect::<Vec<u8>>()
                .into(),
            file: [file(Access::Read), file(Access::Write)],
            exec: PathIndex::build(
                of_kind(Kind::Exec).map(|c| (c, rules[c.rule as usize].path.as_deref())),
            ),
            net: [
                net(Direction::Outbound),
                net(Direction::Inbound),
                net(Direction::Listen),
            ],
            syscall: Cands::build(syscall.into_iter().flatten()),
            syscall_starts: syscall_starts.into(),
            resolution,
        }
    }
}

/// The byte after the root of an absolute pattern whose match must
/// continue with that byte (not a wildcard), else 0: a directory whose
/// path continues with another byte lies outside everything the pattern
/// can match, a test of one byte.
fn parting_byte(g: &crate::glob::Glob) -> u8 {
    match g.as_str().as_bytes() {
        [b'/', c, ..] if *c != b'*' && *c != b'?' => *c,
        _ => 0,
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
        let shared = &*self.shared;
        let program_ok = |i: u32| shared.program_ok(i, req.program);
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
            Kind::Syscall => cands_of(idx.syscall_of(req.call))
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
        let o = self.shared.outcome(idx);
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
        self.shared.outcomes.len() / OUTCOME_SIZE
    }

    /// Name of the rule at document index `idx` (as in [`Decision::rule`]);
    /// `""` for an index out of range.
    pub fn rule_name(&self, idx: u32) -> &str {
        let ends = &self.shared.name_ends;
        let Some(end) = le_u32(ends, idx as usize * 4) else {
            return "";
        };
        let start = match idx {
            0 => 0,
            _ => le_u32(ends, (idx as usize - 1) * 4).unwrap_or(end),
        };
        self.shared
            .names
            .get(start as usize..end as usize)
            .and_then(|name| std::str::from_utf8(name).ok())
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
        let first = dir.get(1).copied().unwrap_or(0);
        let idx = &self.index;
        (0..idx.guarded.len()).find_map(|i| {
            // Most absolute patterns part from `dir` at their first byte
            // after the root: that test first, on the stored byte alone.
            let parting = idx.guarded.extra(i)?;
            if parting != 0 && first != 0 && parting != first {
                return None;
            }
            let pattern = idx.guarded.bytes_of(i)?;
            if !crate::glob::may_match_below(pattern, dir) {
                return None;
            }
            // A pattern without its rule (a damaged table) still blocks:
            // its rule index is then one the table does not have.
            Some(le_u32(&idx.guarded_rules, i * 4).unwrap_or(NONE - 1))
        })
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

impl Index {
    /// The stored candidates of `call`'s rules (empty for a damaged table
    /// whose bounds do not fit).
    #[inline]
    fn syscall_of(&self, call: Call) -> &[u8] {
        let i = call.index();
        let (Some(start), Some(end)) = (
            le_u32(&self.syscall_starts, i * 4),
            le_u32(&self.syscall_starts, (i + 1) * 4),
        ) else {
            return &[];
        };
        self.syscall
            .bytes()
            .get(start as usize * 4..end as usize * 4)
            .unwrap_or_default()
    }
}

/// The flat form's payload (see [`crate::flat`]). Every array is written
/// as the table holds it and read back in place: decoding a table reads
/// a few dozen lengths, whatever the policy's size.
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
        w.records(OUTCOME_SIZE, &s.outcomes);
        w.bytes(&s.names);
        w.records(4, &s.name_ends);
        w.records(8, &s.programs);
        w.glob_table(&s.program_globs);
        let idx = &self.index;
        for p in [&idx.file[0], &idx.file[1], &idx.exec] {
            p.encode(w);
        }
        for n in &idx.net {
            n.encode(w);
        }
        idx.syscall.encode(w);
        w.records(4, &idx.syscall_starts);
        for r in idx.resolution {
            w.bool(r);
        }
        w.glob_table(&idx.guarded);
        w.records(4, &idx.guarded_rules);
    }

    pub(crate) fn decode_payload(
        r: &mut Reader<'static>,
        program: Option<&[u8]>,
        text: &'static [u8],
    ) -> Read<RuleTable> {
        let name = Cow::Borrowed(r.str()?);
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
        let outcomes = r.records(OUTCOME_SIZE)?;
        let n = outcomes.len() / OUTCOME_SIZE;
        let names = r.bytes()?;
        let name_ends = r.records(4)?;
        let programs = r.records(8)?;
        if name_ends.len() != n * 4 || programs.len() != n * 8 {
            return damaged("bad rule table");
        }
        let program_globs = r.glob_table()?;
        let file = [PathIndex::decode(r)?, PathIndex::decode(r)?];
        let exec = PathIndex::decode(r)?;
        let net = [
            NetIndex::decode(r)?,
            NetIndex::decode(r)?,
            NetIndex::decode(r)?,
        ];
        let syscall = Cands::decode(r)?;
        let syscall_starts = r.records(4)?;
        if syscall_starts.len() != (Call::ALL.len() + 1) * 4 {
            return damaged("bad syscall table");
        }
        let mut resolution = [false; 4];
        for x in &mut resolution {
            *x = r.bool()?;
        }
        let guarded = r.glob_table()?;
        let guarded_rules = r.records(4)?;
        if guarded_rules.len() != guarded.len() * 4 {
            return damaged("bad guarded patterns");
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
                outcomes: Cow::Borrowed(outcomes),
                names: Cow::Borrowed(names),
                name_ends: Cow::Borrowed(name_ends),
                programs: Cow::Borrowed(programs),
                program_globs,
            }),
            program: program.map(Into::into),
            index: Arc::new(Index {
                file,
                exec,
                net,
                syscall,
                syscall_starts: Cow::Borrowed(syscall_starts),
                resolution,
                guarded,
                guarded_rules: Cow::Borrowed(guarded_rules),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bench_text() -> &'static str {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../policies/bench-100.json"
        ))
        .expect("bench policy");
        Box::leak(text.into_boxed_str())
    }

    /// A generic table (rules with `program` keep their globs) through
    /// its flat form.
    fn decoded() -> (RuleTable, RuleTable) {
        let text = bench_text();
        let table = crate::compile_str(text, "bench-100.json").expect("valid");
        let bytes = crate::flat::encode(&table, text, [0; 32], "t");
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        let read = crate::flat::decode(
            bytes,
            &crate::flat::Expect {
                library_version: "t",
                program: b"/x",
                policy_text: text.as_bytes(),
            },
        )
        .expect("decodes")
        .table;
        (table, read)
    }

    fn requests() -> Vec<Request<'static>> {
        let mut out = Vec::new();
        for program in [&b"/usr/bin/python3"[..], b"/usr/sbin/nginx", b"/bin/sh"] {
            for call in [Call::Ptrace, Call::Mount, Call::Setuid, Call::Open] {
                out.push(Request::new(Kind::Syscall, call, program));
            }
            for path in [&b"/etc/shadow"[..], b"/tmp/x", b"/root/.ssh/id_rsa"] {
                out.push(Request {
                    path: Some(path),
                    ..Request::new(Kind::File, Call::Open, program)
                });
            }
        }
        out
    }

    /// Every per-rule array, the syscall table and the guarded patterns
    /// are borrowed from the table bytes, and answer as the built table.
    #[test]
    fn rule_arrays_are_read_in_place() {
        let (built, read) = decoded();
        let (s, i) = (&read.shared, &read.index);
        for array in [
            &s.outcomes,
            &s.names,
            &s.name_ends,
            &s.programs,
            &i.syscall_starts,
            &i.guarded_rules,
        ] {
            assert!(matches!(array, Cow::Borrowed(_)));
        }
        assert!(s.program_globs.is_borrowed() && s.program_globs.len() > 0);
        assert!(i.guarded.is_borrowed() && i.guarded.len() > 0);
        for q in requests() {
            assert_eq!(read.decide(&q), built.decide(&q), "{q:?}");
        }
        for dir in [&b"/"[..], b"/etc", b"/home/u", b"/root", b"/tmp"] {
            assert_eq!(
                read.blocking_rule_under(dir),
                built.blocking_rule_under(dir)
            );
        }
        assert!(built.blocking_rule_under(b"/etc").is_some());
    }

    /// A rule index the table does not have (only a damaged table names
    /// one) is refused, never allowed, and has no name.
    #[test]
    fn an_unknown_rule_is_refused() {
        let (_, read) = decoded();
        let n = read.rule_count() as u32;
        for rule in [n, n + 1, NONE - 1] {
            let d = read.decision_of_rule(rule, Call::Open);
            assert_eq!(d.action, Action::Deny);
            assert_eq!(d.errno, crate::errno::EACCES);
            assert_eq!(read.rule_name(rule), "");
        }
        // A program check of such a rule fails.
        assert!(!read.shared.program_ok(n, b"/bin/sh"));
    }

    /// Any byte of the per-rule arrays, the `program` globs, the syscall
    /// table or the guarded patterns changed (damage that keeps the
    /// checksum right): every decision, rule name and rename check answers
    /// without panicking.
    #[test]
    fn damaged_rule_arrays_never_panic() {
        let (_, read) = decoded();
        type Array = fn(&mut RuleTable) -> &mut Cow<'static, [u8]>;
        let arrays: [Array; 6] = [
            |t| &mut Arc::get_mut(&mut t.shared).unwrap().outcomes,
            |t| &mut Arc::get_mut(&mut t.shared).unwrap().names,
            |t| &mut Arc::get_mut(&mut t.shared).unwrap().name_ends,
            |t| &mut Arc::get_mut(&mut t.shared).unwrap().programs,
            |t| &mut Arc::get_mut(&mut t.index).unwrap().syscall_starts,
            |t| &mut Arc::get_mut(&mut t.index).unwrap().guarded_rules,
        ];
        // A table of its own (the `Arc`s unshared) over the same bytes.
        let fresh = || {
            let t = &read;
            RuleTable {
                shared: Arc::new(Shared {
                    policy: OnceLock::new(),
                    text: None,
                    summary: clone_summary(&t.shared.summary),
                    ignored: t.shared.ignored,
                    outcomes: t.shared.outcomes.clone(),
                    names: t.shared.names.clone(),
                    name_ends: t.shared.name_ends.clone(),
                    programs: t.shared.programs.clone(),
                    program_globs: t.shared.program_globs.clone(),
                }),
                program: None,
                index: Arc::new(Index {
                    file: t.index.file.clone(),
                    exec: t.index.exec.clone(),
                    net: t.index.net.clone(),
                    syscall: t.index.syscall.clone(),
                    syscall_starts: t.index.syscall_starts.clone(),
                    resolution: t.index.resolution,
                    guarded: t.index.guarded.clone(),
                    guarded_rules: t.index.guarded_rules.clone(),
                }),
            }
        };
        let mut base = fresh();
        let lens: Vec<usize> = arrays.iter().map(|a| a(&mut base).len()).collect();
        let mut damaged = 0;
        for (array, len) in arrays.iter().zip(lens) {
            assert!(len > 0);
            for at in 0..len {
                for value in [0x00u8, 0x7f, 0xff] {
                    let mut t = fresh();
                    let bytes = array(&mut t);
                    let mut v = bytes.to_vec();
                    v[at] = value;
                    *bytes = v.into();
                    damaged += 1;
                    for q in requests() {
                        let _ = t.decide(&q);
                    }
                    for i in 0..read.rule_count() as u32 + 2 {
                        let _ = t.rule_name(i);
                    }
                    let _ = t.blocking_rule_under(b"/etc");
                }
            }
        }
        // The glob tables: `program` globs and the guarded patterns.
        for guarded in [false, true] {
            let table = match guarded {
                false => &read.shared.program_globs,
                true => &read.index.guarded,
            };
            for at in 0..table.stored_len() {
                for value in [0x00u8, 0x7f, 0xff] {
                    let mut t = fresh();
                    let damaged_table = table.with_byte(at, value);
                    match guarded {
                        false => Arc::get_mut(&mut t.shared).unwrap().program_globs = damaged_table,
                        true => Arc::get_mut(&mut t.index).unwrap().guarded = damaged_table,
                    }
                    damaged += 1;
                    for q in requests() {
                        let _ = t.decide(&q);
                    }
                    for dir in [&b"/"[..], b"/etc", b"/root/.ssh"] {
                        let _ = t.blocking_rule_under(dir);
                    }
                }
            }
        }
        assert!(damaged > 1000);
    }

    fn clone_summary(s: &Summary) -> Summary {
        Summary {
            name: s.name.clone(),
            mode: s.mode,
            log: s.log,
            defaults: s.defaults,
            backstop: s.backstop,
            drift: s.drift,
        }
    }
}

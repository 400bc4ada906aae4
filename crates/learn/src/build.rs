//! From observed operations to rules.
//!
//! - File reads fold generously (a directory with 4 or more entries seen
//!   becomes `dir/**`, never above the second level) and are grouped per
//!   top-level directory; any program may read them.
//! - File writes fold tighter (8 entries, `dir/*` unless the entries have
//!   entries of their own, never under system trees), are grouped per
//!   top-level directory too, and are scoped to the programs that wrote
//!   there.
//! - Exec paths are kept exact, scoped to the programs that ran them.
//! - Network: loopback is one class (`127.0.0.0/8` and `::1`), ports from
//!   the ephemeral range on loopback become the range, inbound peers are
//!   any address unless only loopback was seen, and looked-up names are
//!   allowed only for lookups (see [`fresh`] for the rule order).
//! - Syscall-kind calls are listed per program.

use crate::doc::{PolicyDoc, PortDoc, RuleDoc};
use crate::observe::{NetTarget, Op};
use crate::paths::{fold, generalise, Fold};
use crate::{Options, Seen};
use ldguard_policy::{Access, Call, Direction, Kind};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

const READS: Fold = Fold {
    siblings: 4,
    min_depth: 2,
    subtree: true,
    never_under: &[],
};

const WRITES: Fold = Fold {
    siblings: 8,
    min_depth: 2,
    subtree: false,
    never_under: &[
        "etc", "usr", "bin", "sbin", "lib", "lib32", "lib64", "boot", "root", "proc", "sys",
    ],
};

/// Examples of targets shown in a rule's description.
const EXAMPLES: usize = 3;

/// Learned rules per kind, in the order they go into the policy.
#[derive(Debug, Default)]
pub struct Rules {
    pub file: Vec<RuleDoc>,
    pub exec: Vec<RuleDoc>,
    /// Outbound by address, inbound, listen, unix sockets.
    pub net: Vec<RuleDoc>,
    /// Name lookups; these must come after a rule that denies every
    /// outbound request with an address, so that a looked-up name does not
    /// open every port of its addresses.
    pub dns: Vec<RuleDoc>,
    pub syscall: Vec<RuleDoc>,
}

impl Rules {
    pub fn count(&self) -> usize {
        self.file.len() + self.exec.len() + self.net.len() + self.dns.len() + self.syscall.len()
    }
}

/// Evidence behind one rule, for its description.
#[derive(Default)]
struct Evidence {
    events: u64,
    targets: BTreeSet<String>,
    programs: BTreeSet<String>,
    pids: BTreeSet<u32>,
}

impl Evidence {
    fn add(&mut self, program: &str, target: String, seen: &Seen) {
        self.events += seen.events;
        self.targets.insert(target);
        self.programs.insert(program.to_owned());
        self.pids.extend(&seen.pids);
    }

    fn absorb(&mut self, other: &Evidence) {
        self.events += other.events;
        self.targets.extend(other.targets.iter().cloned());
        self.programs.extend(other.programs.iter().cloned());
        self.pids.extend(&other.pids);
    }

    fn describe(&self, what: &str, extra: &str) -> String {
        let examples: Vec<&str> = self
            .targets
            .iter()
            .take(EXAMPLES)
            .map(String::as_str)
            .collect();
        let more = self.targets.len().saturating_sub(EXAMPLES);
        let programs: Vec<&str> = self.programs.iter().map(String::as_str).collect();
        format!(
            "learned: {what} seen {} times ({} distinct) by {} in {} process{}; e.g. {}{}{extra}",
            self.events,
            self.targets.len(),
            programs.join(", "),
            self.pids.len(),
            if self.pids.len() == 1 { "" } else { "es" },
            examples.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            },
        )
    }
}

/// Builds the allow rules for `ops`.
pub fn rules(ops: &[(&str, &Op, &Seen)], opts: &Options) -> Rules {
    let mut names = Names::default();
    let mut out = Rules::default();
    let mut reads: BTreeMap<String, Evidence> = BTreeMap::new();
    let mut writes: BTreeMap<String, Evidence> = BTreeMap::new();
    let mut execs: BTreeMap<String, Evidence> = BTreeMap::new();
    let mut syscalls: BTreeMap<String, Evidence> = BTreeMap::new();
    let mut net = Net::default();
    for &(program, op, seen) in ops {
        match op {
            Op::File { access, path } => {
                let map = match access {
                    Access::Read => &mut reads,
                    Access::Write => &mut writes,
                };
                map.entry(generalise(path))
                    .or_default()
                    .add(program, path.clone(), seen);
            }
            Op::Exec { path } => {
                execs
                    .entry(generalise(path))
                    .or_default()
                    .add(program, path.clone(), seen)
            }
            Op::Syscall { call } => syscalls.entry(call.name().to_owned()).or_default().add(
                program,
                call.name().to_owned(),
                seen,
            ),
            Op::Net { direction, target } => net.add(program, *direction, target, seen, opts),
        }
    }

    // Reads: folded, then one rule per top-level directory, any program.
    for (top, (globs, ev, folded)) in group_by_top(&reads, READS) {
        let mut r = RuleDoc::new(
            names.unique(&format!("read-{}", slug(&top))),
            "file",
            "allow",
        );
        r.access = Some(vec!["read".into()]);
        r.path = Some(globs);
        r.description = Some(ev.describe("reads", &folded_note(&folded)));
        out.file.push(r);
    }

    // Writes: folded tighter; one rule per top-level directory, scoped to
    // the programs that wrote there.
    for (top, (globs, ev, folded)) in group_by_top(&writes, WRITES) {
        let mut r = RuleDoc::new(
            names.unique(&format!("write-{}", slug(&top))),
            "file",
            "allow",
        );
        r.program = Some(ev.programs.iter().cloned().collect());
        r.access = Some(vec!["write".into()]);
        r.path = Some(globs);
        r.description = Some(ev.describe("writes", &folded_note(&folded)));
        out.file.push(r);
    }

    // Exec: exact paths, per set of programs.
    for (programs, (paths, ev)) in group_by_programs(execs) {
        let mut r = RuleDoc::new(
            names.unique(&format!("exec-from-{}", who(&programs))),
            "exec",
            "allow",
        );
        r.program = Some(programs);
        r.path = Some(paths);
        r.description = Some(ev.describe("executions", ""));
        out.exec.push(r);
    }

    net.rules(&mut names, &mut out);

    for (programs, (calls, ev)) in group_by_programs(syscalls) {
        let mut r = RuleDoc::new(
            names.unique(&format!("syscall-{}", who(&programs))),
            "syscall",
            "allow",
        );
        r.program = Some(programs);
        r.call = Some(calls);
        r.description = Some(ev.describe("calls", ""));
        out.syscall.push(r);
    }
    out
}

/// Folds `seen` paths by `rule` and groups the globs per top-level
/// directory: (globs, their merged evidence, a note per glob that stands for
/// more than one path).
fn group_by_top(
    seen: &BTreeMap<String, Evidence>,
    rule: Fold,
) -> BTreeMap<String, (Vec<String>, Evidence, Vec<String>)> {
    let mut by_top: BTreeMap<String, (Vec<String>, Evidence, Vec<String>)> = BTreeMap::new();
    for f in fold(seen.keys().map(String::as_str), rule) {
        let top = f.glob.split('/').nth(1).unwrap_or("").to_owned();
        let entry = by_top.entry(top).or_default();
        for c in &f.covers {
            entry.1.absorb(&seen[c]);
        }
        if f.covers.len() > 1 || f.glob != f.covers[0] {
            entry
                .2
                .push(format!("{} ({} paths)", f.glob, f.covers.len()));
        }
        entry.0.push(f.glob);
    }
    by_top
}

fn folded_note(folded: &[String]) -> String {
    if folded.is_empty() {
        String::new()
    } else {
        format!("; folded: {}", folded.join(", "))
    }
}

/// Groups targets by the exact set of programs that used them.
fn group_by_programs(
    targets: BTreeMap<String, Evidence>,
) -> BTreeMap<Vec<String>, (Vec<String>, Evidence)> {
    let mut out: BTreeMap<Vec<String>, (Vec<String>, Evidence)> = BTreeMap::new();
    for (target, ev) in targets {
        let entry = out
            .entry(ev.programs.iter().cloned().collect())
            .or_default();
        entry.0.push(target);
        entry.1.absorb(&ev);
    }
    out
}

/// Network observations, classified.
#[derive(Default)]
struct Net {
    /// (direction, program) -> address class -> port specs and evidence.
    ip: BTreeMap<(DirKey, String), BTreeMap<String, Endpoint>>,
    /// (direction, program) -> socket globs.
    unix: BTreeMap<(DirKey, String), BTreeMap<String, Evidence>>,
    /// program -> looked-up names.
    hosts: BTreeMap<String, Evidence>,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct DirKey(u8);

impl DirKey {
    fn of(d: Direction) -> DirKey {
        DirKey(d as u8)
    }

    fn direction(self) -> Direction {
        Direction::ALL[self.0 as usize]
    }
}

/// Ports seen for one address class, and the evidence.
type Endpoint = (BTreeSet<PortKey>, Evidence);

/// A port spec, ordered numerically.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct PortKey(u16, u16);

impl PortKey {
    fn doc(self) -> PortDoc {
        if self.0 == self.1 {
            PortDoc::Text(self.0.to_string())
        } else {
            PortDoc::Text(format!("{}-{}", self.0, self.1))
        }
    }
}

const LOOPBACK: &str = "loopback";

impl Net {
    fn add(
        &mut self,
        program: &str,
        dir: Direction,
        target: &NetTarget,
        seen: &Seen,
        opts: &Options,
    ) {
        let key = (DirKey::of(dir), program.to_owned());
        match target {
            NetTarget::Ip(ip, port) => {
                let loopback = ip.is_loopback();
                let class = if loopback {
                    LOOPBACK.to_owned()
                } else {
                    match ip {
                        IpAddr::V4(a) => format!("{a}/32"),
                        IpAddr::V6(a) => format!("{a}/128"),
                    }
                };
                let (lo, hi) = opts.ephemeral;
                let ephemeral = (lo..=hi).contains(port);
                // Inbound peers' ports are always ephemeral; listen ports
                // and loopback servers in the ephemeral range are per run.
                let port_key = match dir {
                    Direction::Inbound => None,
                    Direction::Listen if ephemeral => Some(PortKey(lo, hi)),
                    Direction::Outbound if loopback && ephemeral => Some(PortKey(lo, hi)),
                    _ => Some(PortKey(*port, *port)),
                };
                let shown = match ip {
                    IpAddr::V6(a) => format!("[{a}]:{port}"),
                    IpAddr::V4(a) => format!("{a}:{port}"),
                };
                let entry = self.ip.entry(key).or_default().entry(class).or_default();
                entry.0.extend(port_key);
                entry.1.add(program, shown, seen);
            }
            NetTarget::Unix(path) => {
                let glob = if path.starts_with('/') {
                    generalise(path)
                } else {
                    path.replace(['[', ']', '{', '}'], "?")
                };
                self.unix
                    .entry(key)
                    .or_default()
                    .entry(glob)
                    .or_default()
                    .add(program, path.clone(), seen);
            }
            NetTarget::Host(name) => {
                self.hosts
                    .entry(host_glob(name))
                    .or_default()
                    .add(program, name.clone(), seen);
            }
        }
    }

    fn rules(self, names: &mut Names, out: &mut Rules) {
        for ((dir, program), classes) in self.ip {
            let direction = dir.direction();
            // Classes with the same ports share a rule.
            let mut by_ports: BTreeMap<Vec<PortKey>, (Vec<String>, Evidence)> = BTreeMap::new();
            let any_remote =
                direction == Direction::Inbound && classes.keys().any(|c| c != LOOPBACK);
            for (class, (ports, ev)) in classes {
                let entry = by_ports.entry(ports.into_iter().collect()).or_default();
                if class == LOOPBACK {
                    entry
                        .0
                        .extend(["127.0.0.0/8".to_owned(), "::1/128".to_owned()]);
                } else {
                    entry.0.push(class);
                }
                entry.1.absorb(&ev);
            }
            let verb = match direction {
                Direction::Outbound => "connect",
                Direction::Inbound => "accept",
                Direction::Listen => "listen",
            };
            for (ports, (addresses, ev)) in by_ports {
                let mut r = RuleDoc::new(
                    names.unique(&format!("{verb}-{}", who(std::slice::from_ref(&program)))),
                    "network",
                    "allow",
                );
                r.program = Some(vec![program.clone()]);
                r.direction = Some(vec![direction.as_str().into()]);
                let extra = if any_remote {
                    "; peers from outside loopback were seen, so any peer address is allowed"
                } else {
                    ""
                };
                if !any_remote {
                    r.address = Some(addresses);
                }
                if !ports.is_empty() {
                    r.port = Some(ports.into_iter().map(PortKey::doc).collect());
                }
                let what = match direction {
                    Direction::Outbound => "connections",
                    Direction::Inbound => "accepted connections",
                    Direction::Listen => "binds and listens",
                };
                r.description = Some(ev.describe(what, extra));
                out.net.push(r);
            }
        }
        for ((dir, program), sockets) in self.unix {
            let mut ev = Evidence::default();
            for e in sockets.values() {
                ev.absorb(e);
            }
            let direction = dir.direction();
            let mut r = RuleDoc::new(
                names.unique(&format!("unix-{}", who(std::slice::from_ref(&program)))),
                "network",
                "allow",
            );
            r.program = Some(vec![program]);
            r.direction = Some(vec![direction.as_str().into()]);
            r.unix = Some(sockets.into_keys().collect());
            r.description = Some(ev.describe(&format!("unix socket use ({direction})"), ""));
            out.net.push(r);
        }
        for (programs, (hosts, ev)) in group_by_programs(self.hosts) {
            let mut r = RuleDoc::new(
                names.unique(&format!("lookup-from-{}", who(&programs))),
                "network",
                "allow",
            );
            r.program = Some(programs);
            r.direction = Some(vec!["outbound".into()]);
            r.host = Some(hosts);
            r.description = Some(ev.describe(
                "name lookups",
                "; this rule only ever sees lookups: connections carry an address and are decided above",
            ));
            out.dns.push(r);
        }
    }
}

/// A host glob for a looked-up name: characters a host glob cannot hold
/// (an IPv6 literal's `:`) become `?`.
fn host_glob(name: &str) -> String {
    let g: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '?'
            }
        })
        .collect();
    let g = g.trim_matches('.').to_owned();
    if g.is_empty() {
        "?".into()
    } else {
        g
    }
}

/// A short name for a set of programs, for rule names.
fn who(programs: &[String]) -> String {
    let base = |p: &String| slug(p.rsplit('/').next().unwrap_or(p));
    match programs {
        [] => "any".into(),
        [one] => base(one),
        [a, b] => format!("{}-{}", base(a), base(b)),
        [a, rest @ ..] => format!("{}-and-{}-more", base(a), rest.len()),
    }
}

fn slug(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_matches('-');
    if s.is_empty() {
        "root".into()
    } else {
        s.to_owned()
    }
}

/// Hands out rule names that are unique within the policy.
#[derive(Default)]
pub struct Names(BTreeSet<String>);

impl Names {
    pub fn taken(names: impl IntoIterator<Item = String>) -> Names {
        Names(names.into_iter().collect())
    }

    pub fn unique(&mut self, want: &str) -> String {
        let mut name = want.to_owned();
        let mut n = 2;
        while self.0.contains(&name) {
            name = format!("{want}-{n}");
            n += 1;
        }
        self.0.insert(name.clone());
        name
    }
}

/// The catch-all deny rule for `kind`: decided operations name it in their
/// events. `network` gets two (see [`Rules::dns`]).
pub fn catch_all(kind: Kind) -> RuleDoc {
    let (name, severity, what) = match kind {
        Kind::File => ("unlearned-file", "medium", "file access"),
        Kind::Exec => ("unlearned-exec", "high", "program execution"),
        Kind::Network => ("unlearned-network", "high", "network use"),
        Kind::Syscall => ("unlearned-syscall", "high", "sensitive call"),
    };
    let mut r = RuleDoc::new(name, kind.as_str(), "deny");
    // A rule needs a matcher; these match every operation of the kind.
    match kind {
        Kind::File => r.access = Some(vec!["read".into(), "write".into()]),
        Kind::Exec => r.path = Some(vec!["/**".into()]),
        Kind::Network => {
            r.direction = Some(Direction::ALL.iter().map(|d| d.as_str().into()).collect())
        }
        Kind::Syscall => {
            r.call = Some(
                Call::ALL
                    .iter()
                    .filter(|c| c.kind() == Kind::Syscall)
                    .map(|c| c.name().into())
                    .collect(),
            )
        }
    }
    r.severity = Some(severity.into());
    r.description = Some(format!(
        "{what} that was never seen while learning; review the event before allowing it"
    ));
    r
}

/// Denies every outbound request with an address that no learned rule
/// allowed, before the name-lookup rules (which would otherwise allow
/// connections to any port of a looked-up name).
pub fn address_catch_all() -> RuleDoc {
    let mut r = RuleDoc::new("unlearned-outbound", "network", "deny");
    r.direction = Some(vec!["outbound".into()]);
    r.address = Some(vec!["0.0.0.0/0".into(), "::/0".into()]);
    r.severity = Some("high".into());
    r.description = Some(
        "outbound connections (or datagrams) to an address and port never seen while learning"
            .into(),
    );
    r
}

/// A fresh policy: learned rules, then catch-all denies; every default
/// denies too.
pub fn fresh(rules: Rules, opts: &Options, events: u64) -> PolicyDoc {
    let learned = rules.count();
    let mut all = Vec::new();
    all.extend(rules.file);
    all.push(catch_all(Kind::File));
    all.extend(rules.exec);
    all.push(catch_all(Kind::Exec));
    all.extend(rules.net);
    all.push(address_catch_all());
    all.extend(rules.dns);
    all.push(catch_all(Kind::Network));
    all.extend(rules.syscall);
    all.push(catch_all(Kind::Syscall));
    PolicyDoc {
        api_version: ldguard_policy::API_VERSION.into(),
        name: opts.name.clone().unwrap_or_else(|| "learned".into()),
        mode: Some("permissive".into()),
        log: Some(vec!["deny".into(), "audit".into()]),
        defaults: Some(
            Kind::ALL
                .iter()
                .map(|k| (k.as_str().to_owned(), "deny".to_owned()))
                .collect(),
        ),
        ignore: None,
        description: Some(description(opts, events, learned)),
        rules: all,
    }
}

pub fn description(opts: &Options, events: u64, learned: usize) -> String {
    let from = if opts.sources.is_empty() {
        String::new()
    } else {
        format!(" in {}", opts.sources.join(", "))
    };
    format!(
        "Learned by `ldguard learn` from {events} events{from}: {learned} allow rules for what was seen, \
         everything else denied. Review, run it in permissive mode, then switch `mode` to `enforce`."
    )
}

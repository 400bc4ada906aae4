//! The Landlock half of the backstop: what Landlock can say of the file,
//! exec and TCP rules, planned without I/O, then turned into a ruleset at
//! install time.
//!
//! Landlock only grants: once an access right is handled, everything not
//! granted is denied. So an allow-list (a kind whose default blocks) becomes
//! grants on its allowed prefixes, and a deny rule on a literal prefix
//! becomes grants on everything *beside* it, found by walking the directories
//! on the way to it when the backstop is installed. Entries created later
//! directly in those directories are not granted (the ruleset is fixed).
//!
//! The backstop must never deny what the policy allows, so a form Landlock
//! cannot express is widened when it allows (an allow glob becomes its
//! literal directory) and dropped when it denies (the hooks still enforce
//! it); [`Note`]s record each such choice for `explain`.

use std::path::{Path, PathBuf};

use ldguard_policy::glob::{Glob, GlobShape};
use ldguard_policy::net::PortRange;
use ldguard_policy::{Access, Direction, Kind, Policy, Protocol};

/// The ABI the compiled rights are written against. `best-effort` drops
/// what an older kernel lacks; a newer kernel adds nothing unasked.
pub const PINNED_ABI: landlock::ABI = landlock::ABI::V4;
const PINNED_ABI_NUMBER: i32 = 4;

/// More port grants than this would make installing slow (one system call
/// each): such a deny list stays with the hooks.
pub const MAX_PORT_GRANTS: usize = 4096;

/// A family of file rights a policy rule maps onto.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    Read,
    Write,
    Exec,
}

impl Class {
    pub const ALL: [Class; 3] = [Class::Read, Class::Write, Class::Exec];

    pub fn name(self) -> &'static str {
        match self {
            Class::Read => "read",
            Class::Write => "write",
            Class::Exec => "exec",
        }
    }

    pub fn access(self) -> landlock::BitFlags<landlock::AccessFs> {
        use landlock::AccessFs;
        match self {
            Class::Read => AccessFs::ReadFile | AccessFs::ReadDir,
            Class::Write => AccessFs::from_write(PINNED_ABI),
            Class::Exec => AccessFs::Execute.into(),
        }
    }
}

/// One literal prefix of one rule, in rule order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub prefix: PathBuf,
    pub allow: bool,
    /// Index of the rule in the policy; `None` for the library's own needs.
    pub rule: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassPlan {
    pub class: Class,
    pub entries: Vec<Entry>,
    pub default_allow: bool,
}

impl ClassPlan {
    /// Whether Landlock handles this class at all: only when something is
    /// to be denied.
    pub fn handled(&self) -> bool {
        !self.default_allow || self.entries.iter().any(|e| !e.allow)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortPlan {
    /// `Listen` (bind) or `Outbound` (connect).
    pub direction: Direction,
    /// Ports TCP may use; `None` when the direction is not handled.
    pub allowed: Option<Vec<PortRange>>,
}

/// What became of one rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub rule: usize,
    /// Whether the kernel enforces (part of) this rule.
    pub enforced: bool,
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LandlockPlan {
    pub classes: Vec<ClassPlan>,
    pub ports: Vec<PortPlan>,
    pub notes: Vec<Note>,
}

/// Paths the library and the dynamic loader need whatever the policy
/// says (the hooks never see the loader's own opens).
pub struct Needs {
    pub read: Vec<PathBuf>,
    pub write: Vec<PathBuf>,
    pub exec: Vec<PathBuf>,
}

impl Needs {
    /// Library directories (read and, for the ELF interpreter, exec) and
    /// ldguard's own configuration directory.
    pub fn loader() -> Needs {
        let libs = ["/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/local/lib"];
        let mut read: Vec<PathBuf> = libs.iter().map(PathBuf::from).collect();
        read.extend(
            ["/etc/ld.so.cache", "/etc/ld.so.preload", "/etc/ldguard"]
                .iter()
                .map(PathBuf::from),
        );
        Needs {
            read,
            write: Vec::new(),
            exec: libs.iter().map(PathBuf::from).collect(),
        }
    }
}

/// The literal prefix a path glob restricts, if Landlock can hold it as
/// it stands: `/etc/**` and `/etc/shadow` can, `/usr/bin/*sh` cannot.
fn exact_prefix(g: &Glob) -> Option<PathBuf> {
    if g.as_str() == "/**" {
        return Some(PathBuf::from("/"));
    }
    match g.shape() {
        GlobShape::Literal | GlobShape::Subtree => Some(PathBuf::from(
            String::from_utf8_lossy(g.literal_prefix()).into_owned(),
        )),
        _ => None,
    }
}

/// The directory every match of `g` lies beneath.
fn widened_prefix(g: &Glob) -> PathBuf {
    let p = g.literal_prefix();
    let cut = p.iter().rposition(|&b| b == b'/').unwrap_or(0);
    let dir = String::from_utf8_lossy(&p[..cut.max(1)]).into_owned();
    PathBuf::from(dir)
}

fn classes_of(kind: Kind, access: Option<&[Access]>) -> Vec<Class> {
    match kind {
        Kind::Exec => vec![Class::Exec],
        Kind::File => match access {
            None => vec![Class::Read, Class::Write],
            Some(list) => list
                .iter()
                .map(|a| match a {
                    Access::Read => Class::Read,
                    Access::Write => Class::Write,
                })
                .collect(),
        },
        _ => Vec::new(),
    }
}

impl LandlockPlan {
    pub fn of(policy: &Policy) -> LandlockPlan {
        let mut notes = Vec::new();
        let classes = Class::ALL
            .iter()
            .map(|&class| class_plan(policy, class, &mut notes))
            .collect();
        let ports = [Direction::Listen, Direction::Outbound]
            .iter()
            .map(|&d| port_plan(policy, d, &mut notes))
            .collect();
        for (i, r) in policy.rules.iter().enumerate() {
            if !r.enabled {
                continue;
            }
            if r.kind == Kind::Network
                && r.direction
                    .as_ref()
                    .is_some_and(|d| d.contains(&Direction::Inbound))
            {
                notes.push(Note {
                    rule: i,
                    enforced: false,
                    text: "inbound: Landlock cannot restrict accepted peers".into(),
                });
            }
        }
        notes.sort_by_key(|n| n.rule);
        LandlockPlan {
            classes,
            ports,
            notes,
        }
    }

    pub fn handles_anything(&self) -> bool {
        self.classes.iter().any(ClassPlan::handled)
            || self.ports.iter().any(|p| p.allowed.is_some())
    }
}

fn class_plan(policy: &Policy, class: Class, notes: &mut Vec<Note>) -> ClassPlan {
    let kind = if class == Class::Exec {
        Kind::Exec
    } else {
        Kind::File
    };
    let default_allow = !policy.default_action(kind).blocks();
    let mut entries = Vec::new();
    let first_note = notes.len();
    let mut note = |rule: usize, enforced: bool, text: String| {
        notes.push(Note {
            rule,
            enforced,
            text: format!("{}: {text}", class.name()),
        })
    };
    for (i, rule) in policy.rules.iter().enumerate() {
        if !rule.enabled
            || rule.kind != kind
            || !classes_of(rule.kind, rule.access.as_deref()).contains(&class)
        {
            continue;
        }
        let allow = !rule.action.blocks();
        if rule.program.is_some() && !allow {
            note(
                i,
                false,
                "not in the kernel: scoped to some programs, and a Landlock domain holds for every program started under it".into(),
            );
            continue;
        }
        let globs: Vec<(Option<PathBuf>, &Glob)> = match &rule.path {
            None => {
                entries.push(Entry {
                    prefix: PathBuf::from("/"),
                    allow,
                    rule: Some(i),
                });
                note(
                    i,
                    !allow,
                    if allow {
                        "granted everywhere".into()
                    } else {
                        "denied everywhere".into()
                    },
                );
                continue;
            }
            Some(globs) => globs.iter().map(|g| (exact_prefix(g), g)).collect(),
        };
        for (exact, g) in globs {
            match (exact, allow) {
                (Some(prefix), _) => {
                    note(
                        i,
                        !allow,
                        format!(
                            "{} beneath {}{}",
                            if allow { "granted" } else { "denied" },
                            prefix.display(),
                            if rule.program.is_some() {
                                " (for every program: the rule's `program` cannot be told apart)"
                            } else {
                                ""
                            }
                        ),
                    );
                    entries.push(Entry {
                        prefix,
                        allow,
                        rule: Some(i),
                    });
                }
                (None, true) => {
                    let prefix = widened_prefix(g);
                    note(
                        i,
                        false,
                        format!(
                            "`{}` widened to everything beneath {} (Landlock needs a fixed path)",
                            g.as_str(),
                            prefix.display()
                        ),
                    );
                    entries.push(Entry {
                        prefix,
                        allow,
                        rule: Some(i),
                    });
                }
                (None, false) => note(
                    i,
                    false,
                    format!(
                        "`{}` not in the kernel: Landlock needs a fixed path, not a glob",
                        g.as_str()
                    ),
                ),
            }
        }
    }
    let plan = ClassPlan {
        class,
        entries,
        default_allow,
    };
    if !plan.handled() {
        // Nothing of this class is denied, so Landlock does not handle it:
        // an allow or audit rule has nothing to grant.
        let granted = format!("{}: granted", class.name());
        for n in notes[first_note..]
            .iter_mut()
            .filter(|n| n.text.starts_with(&granted) || n.text.contains("` widened to "))
        {
            n.text = format!(
                "{}: nothing for the kernel to do (no rule or default denies {}, so the backstop leaves it unrestricted)",
                class.name(),
                class.name()
            );
        }
        notes.dedup_by(|a, b| a.rule == b.rule && a.text == b.text);
    }
    plan
}

fn port_plan(policy: &Policy, direction: Direction, notes: &mut Vec<Note>) -> PortPlan {
    let verb = if direction == Direction::Listen {
        "bind"
    } else {
        "connect"
    };
    let mut entries: Vec<(Option<&[PortRange]>, bool)> = Vec::new();
    for (i, rule) in policy.rules.iter().enumerate() {
        if !rule.enabled
            || rule.kind != Kind::Network
            || rule
                .direction
                .as_ref()
                .is_some_and(|d| !d.contains(&direction))
        {
            continue;
        }
        let allow = !rule.action.blocks();
        let mut skip = |why: &str| {
            notes.push(Note {
                rule: i,
                enforced: false,
                text: format!("TCP {verb}: not in the kernel: {why}"),
            })
        };
        if rule.unix.is_some() {
            skip("unix sockets (Landlock restricts TCP ports only)");
            continue;
        }
        if rule
            .protocol
            .as_ref()
            .is_some_and(|p| !p.contains(&Protocol::Tcp))
        {
            skip("UDP (Landlock restricts TCP only)");
            continue;
        }
        if !allow {
            if rule.address.is_some() {
                skip("address ranges (Landlock matches ports only)");
                continue;
            }
            if rule.host.is_some() {
                skip("host names (Landlock matches ports only)");
                continue;
            }
            if rule.program.is_some() {
                skip("scoped to some programs");
                continue;
            }
        }
        entries.push((rule.port.as_deref(), allow));
        notes.push(Note {
            rule: i,
            enforced: !allow,
            text: format!(
                "TCP {verb}: {} {}{}",
                if allow { "granted" } else { "denied" },
                match rule.port.as_deref() {
                    None => "on every port".to_string(),
                    Some(p) => format!("on port {}", ports_text(p)),
                },
                if allow && (rule.address.is_some() || rule.host.is_some()) {
                    " (to any address: Landlock matches ports only)"
                } else {
                    ""
                }
            ),
        });
    }
    let default_allow = !policy.default_action(Kind::Network).blocks();
    // The decision is constant between rule boundaries: decide once per
    // segment instead of once per port.
    let mut cuts: Vec<u32> = vec![0, 1 << 16];
    for r in entries.iter().filter_map(|(p, _)| *p).flatten() {
        cuts.extend([u32::from(r.lo), u32::from(r.hi) + 1]);
    }
    cuts.sort_unstable();
    cuts.dedup();
    let mut allowed: Vec<PortRange> = Vec::new();
    let mut count = 0usize;
    for seg in cuts.windows(2) {
        let (lo, hi) = (seg[0] as u16, (seg[1] - 1) as u16);
        let allow = entries
            .iter()
            .find(|(ports, _)| ports.is_none_or(|ps| ps.iter().any(|r| r.contains(lo))))
            .map_or(default_allow, |&(_, a)| a);
        if !allow {
            continue;
        }
        count += usize::from(hi - lo) + 1;
        match allowed.last_mut() {
            Some(r) if r.hi.checked_add(1) == Some(lo) => r.hi = hi,
            _ => allowed.push(PortRange { lo, hi }),
        }
    }
    let handled = count <= u16::MAX as usize;
    if handled && count > MAX_PORT_GRANTS {
        for n in notes
            .iter_mut()
            .filter(|n| n.text.starts_with(&format!("TCP {verb}")) && n.enforced)
        {
            n.enforced = false;
            n.text = format!(
                "TCP {verb}: not in the kernel: allowing the other {count} ports would take {count} Landlock rules (more than {MAX_PORT_GRANTS})"
            );
        }
    }
    PortPlan {
        direction,
        allowed: (handled && count <= MAX_PORT_GRANTS).then_some(allowed),
    }
}

pub fn ports_text(ports: &[PortRange]) -> String {
    let parts: Vec<String> = ports
        .iter()
        .map(|r| {
            if r.lo == r.hi {
                r.lo.to_string()
            } else {
                format!("{}-{}", r.lo, r.hi)
            }
        })
        .collect();
    parts.join(", ")
}

/// What the kernel drops of `plan` at Landlock ABI `abi` (0: none).
pub fn dropped_by_abi(plan: &LandlockPlan, abi: i32) -> Vec<String> {
    let mut out = Vec::new();
    if abi <= 0 {
        if plan.handles_anything() {
            out.push("Landlock is not available: nothing of the above is enforced".into());
        }
        return out;
    }
    for c in plan.classes.iter().filter(|c| c.handled()) {
        if c.class == Class::Write && abi < 2 {
            out.push(
                "write: linking or renaming across directories (ABI 2) is refused outright".into(),
            );
        }
        if c.class == Class::Write && abi < 3 {
            out.push("write: truncation (ABI 3) is not restricted".into());
        }
    }
    if abi < 4 && plan.ports.iter().any(|p| p.allowed.is_some()) {
        out.push("TCP bind/connect (ABI 4) is not restricted".into());
    }
    out
}

/// What a kernel newer than the pinned ABI offers that the backstop does
/// not use; `None` at or below it.
pub fn unused_by_abi(abi: i32) -> Option<String> {
    (abi > PINNED_ABI_NUMBER).then(|| {
        let newer = [
            (5, "device ioctl (ABI 5)"),
            (6, "abstract unix socket and signal scoping (ABI 6)"),
            (7, "audit logging of denials (ABI 7)"),
        ];
        let names: Vec<&str> = newer
            .iter()
            .filter(|(v, _)| *v <= abi)
            .map(|(_, n)| *n)
            .collect();
        format!(
            "the backstop uses ABI {PINNED_ABI_NUMBER}'s rights, all present here; not used: {}",
            if names.is_empty() {
                format!("what ABI {abi} adds")
            } else {
                names.join(", ")
            }
        )
    })
}

/// One Landlock rule to add at install time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub path: PathBuf,
    pub class: Class,
    /// Directory listing only (READ_DIR on a directory on the way to a
    /// denied prefix: listing it must keep working).
    pub listing: bool,
}

/// `prefix` with symlinks resolved as far as it exists: Landlock acts on
/// the object, so the walk must follow the real hierarchy.
fn real(prefix: &Path) -> PathBuf {
    if let Ok(p) = std::fs::canonicalize(prefix) {
        return p;
    }
    match (prefix.parent(), prefix.file_name()) {
        (Some(parent), Some(name)) if parent != prefix => real(parent).join(name),
        _ => prefix.to_path_buf(),
    }
}

/// The grants that make Landlock allow exactly what `plan` leaves allowed
/// of `class` (over-granting where the filesystem cannot be looked into).
pub fn grants(plan: &ClassPlan, needs: &[PathBuf]) -> Vec<Grant> {
    let mut entries: Vec<Entry> = needs
        .iter()
        .map(|p| Entry {
            prefix: real(p),
            allow: true,
            rule: None,
        })
        .collect();
    entries.extend(plan.entries.iter().map(|e| Entry {
        prefix: real(&e.prefix),
        ..e.clone()
    }));
    let mut out = Vec::new();
    walk(
        &entries,
        plan.default_allow,
        plan.class,
        Path::new("/"),
        &mut out,
    );
    out
}

fn walk(entries: &[Entry], default_allow: bool, class: Class, node: &Path, out: &mut Vec<Grant>) {
    let covering = entries.iter().position(|e| node.starts_with(&e.prefix));
    let earlier = &entries[..covering.unwrap_or(entries.len())];
    let inner: Vec<&Entry> = earlier
        .iter()
        .filter(|e| e.prefix.starts_with(node) && e.prefix != node)
        .collect();
    let allow = covering.map_or(default_allow, |k| entries[k].allow);
    if inner.is_empty() {
        if allow {
            out.push(Grant {
                path: node.to_path_buf(),
                class,
                listing: false,
            });
        }
        return;
    }
    if class == Class::Read {
        out.push(Grant {
            path: node.to_path_buf(),
            class,
            listing: true,
        });
    }
    match std::fs::read_dir(node) {
        Ok(dir) => {
            for child in dir.flatten() {
                // A symlink is reached through its target's own place in
                // the hierarchy; granting it would grant the target.
                if child.file_type().is_ok_and(|t| !t.is_symlink()) {
                    walk(entries, default_allow, class, &child.path(), out);
                }
            }
        }
        Err(_) => {
            // Cannot look inside: never deny what the policy allows.
            if allow {
                out.push(Grant {
                    path: node.to_path_buf(),
                    class,
                    listing: false,
                });
            } else {
                for e in inner.iter().filter(|e| e.allow) {
                    walk(entries, default_allow, class, &e.prefix, out);
                }
            }
        }
    }
}

//! The kernel backstop: an ldguard policy restated in the kernel's
//! unprivileged mechanisms, so statically linked programs, raw `syscall`
//! instructions, io_uring and a process's own `LD_PRELOAD` meet the same
//! limits as the hooks.
//!
//! [`Plan::of`] is pure: it says, rule by rule, what seccomp and Landlock
//! can restate ([`explain`] prints it). [`install`] applies a plan to the
//! calling process: a Landlock ruleset (crate `landlock`) and seccomp
//! filters (crate `seccompiler`), both with `no_new_privs`. Installing can
//! only ever tighten what the process may do: nothing can undo it, and
//! every child inherits it.

pub mod landlock;
pub mod seccomp;

use std::collections::BTreeMap;
use std::path::PathBuf;

use ::landlock::{
    path_beneath_rules, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, NetPort, Ruleset,
    RulesetAttr, RulesetCreatedAttr, RulesetStatus,
};
use ldguard_policy::{Backstop, Direction, Kind, LandlockLevel, Policy};

pub use crate::landlock::{LandlockPlan, Needs};
pub use crate::seccomp::SeccompPlan;

/// What the kernel will be asked to enforce for one policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub backstop: Backstop,
    pub seccomp: Option<SeccompPlan>,
    pub landlock: Option<LandlockPlan>,
}

impl Plan {
    /// `None` when the policy asks for no backstop.
    pub fn of(policy: &Policy) -> Option<Plan> {
        Some(Plan::with(policy, policy.backstop.filter(Backstop::any)?))
    }

    /// The plan `backstop` would give `policy`.
    pub fn with(policy: &Policy, backstop: Backstop) -> Plan {
        Plan {
            backstop,
            seccomp: backstop.seccomp.then(|| SeccompPlan::of(policy)),
            landlock: (backstop.landlock != LandlockLevel::Off).then(|| LandlockPlan::of(policy)),
        }
    }
}

/// The Landlock ABI of the running kernel (0 when Landlock is absent or
/// disabled).
pub fn landlock_abi() -> i32 {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: with a null attribute pointer, size 0 and the VERSION flag
    // the call only returns a number; it reads and writes no memory.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    v.max(0) as i32
}

/// What [`install`] put in place.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Installed {
    /// Seccomp filters added (one per distinct errno or kill).
    pub seccomp_filters: usize,
    /// System calls those filters stop.
    pub seccomp_calls: usize,
    /// Landlock path and port rules added; `None` when Landlock was not used.
    pub landlock_rules: Option<usize>,
    /// `fully enforced`, `partially enforced` (best-effort on an older ABI)
    /// or `not enforced`.
    pub landlock_status: Option<&'static str>,
}

impl std::fmt::Display for Installed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if self.seccomp_filters > 0 {
            parts.push(format!(
                "seccomp: {} system calls stopped by {} filter(s)",
                self.seccomp_calls, self.seccomp_filters
            ));
        }
        if let (Some(n), Some(status)) = (self.landlock_rules, self.landlock_status) {
            parts.push(format!("Landlock: {n} rules, {status}"));
        }
        if parts.is_empty() {
            parts.push("nothing the kernel can restate".into());
        }
        f.write_str(&parts.join("; "))
    }
}

/// Applies `plan` to the calling process (and, through inheritance, to
/// every process it starts). Landlock restricts the calling thread only:
/// call it before the process has other threads.
pub fn install(plan: &Plan, needs: &Needs) -> Result<Installed, String> {
    let mut done = Installed::default();
    if let Some(ll) = &plan.landlock {
        if ll.handles_anything() {
            let (rules, status) = install_landlock(ll, plan.backstop.landlock, needs)?;
            done.landlock_rules = Some(rules);
            done.landlock_status = Some(status);
        }
    }
    if let Some(sc) = &plan.seccomp {
        let programs = sc.compile().map_err(|e| format!("seccomp filter: {e}"))?;
        for prog in &programs {
            seccompiler::apply_filter_all_threads(prog)
                .map_err(|e| format!("installing the seccomp filter: {e}"))?;
        }
        done.seccomp_filters = programs.len();
        done.seccomp_calls = sc.denials.len();
    }
    Ok(done)
}

fn install_landlock(
    plan: &LandlockPlan,
    level: LandlockLevel,
    needs: &Needs,
) -> Result<(usize, &'static str), String> {
    let err = |e: ::landlock::RulesetError| format!("Landlock: {e}");
    let compat = match level {
        LandlockLevel::Required => CompatLevel::HardRequirement,
        _ => CompatLevel::BestEffort,
    };
    let mut fs: BitFlags<AccessFs> = BitFlags::empty();
    let mut grants: BTreeMap<PathBuf, BitFlags<AccessFs>> = BTreeMap::new();
    for class in plan.classes.iter().filter(|c| c.handled()) {
        fs |= class.class.access();
        let need = match class.class {
            landlock::Class::Read => &needs.read,
            landlock::Class::Write => &needs.write,
            landlock::Class::Exec => &needs.exec,
        };
        for g in landlock::grants(class, need) {
            let access = if g.listing {
                AccessFs::ReadDir.into()
            } else {
                g.class.access()
            };
            *grants.entry(g.path).or_default() |= access;
        }
    }
    let mut net: BitFlags<AccessNet> = BitFlags::empty();
    let mut ports = Vec::new();
    for p in &plan.ports {
        if let Some(allowed) = &p.allowed {
            let access = match p.direction {
                Direction::Listen => AccessNet::BindTcp,
                _ => AccessNet::ConnectTcp,
            };
            net |= access;
            for r in allowed {
                ports.extend((r.lo..=r.hi).map(|port| (port, access)));
            }
        }
    }
    let mut ruleset = Ruleset::default().set_compatibility(compat);
    if !fs.is_empty() {
        ruleset = ruleset.handle_access(fs).map_err(err)?;
    }
    if !net.is_empty() {
        ruleset = ruleset.handle_access(net).map_err(err)?;
    }
    let mut created = ruleset.create().map_err(err)?;
    let rules = grants.len() + ports.len();
    for (path, access) in grants {
        created = created
            .add_rules(path_beneath_rules([path], access))
            .map_err(err)?;
    }
    for (port, access) in ports {
        created = created.add_rule(NetPort::new(port, access)).map_err(err)?;
    }
    let status = created.restrict_self().map_err(err)?;
    let word = match status.ruleset {
        RulesetStatus::FullyEnforced => "fully enforced",
        RulesetStatus::PartiallyEnforced => "partially enforced",
        RulesetStatus::NotEnforced => "not enforced",
    };
    if level == LandlockLevel::Required && status.ruleset != RulesetStatus::FullyEnforced {
        return Err(format!("Landlock is required but {word} on this kernel"));
    }
    Ok((rules, word))
}

/// `ldguard policy explain --backstop`: rule by rule, what the kernel will
/// enforce, what it cannot, and what the kernel's Landlock ABI `abi` drops.
pub fn explain(policy: &Policy, abi: i32) -> String {
    let mut out = String::new();
    let plan = Plan::of(policy).unwrap_or_else(|| {
        out.push_str(&format!(
            "policy `{}` asks for no kernel backstop; with `\"backstop\": {{\"seccomp\": true, \"landlock\": \"best-effort\"}}` it would be:\n\n",
            policy.name
        ));
        Plan::with(
            policy,
            Backstop {
                seccomp: true,
                landlock: LandlockLevel::BestEffort,
            },
        )
    });
    let b = plan.backstop;
    out.push_str(&format!(
        "backstop of policy `{}`: seccomp {}, landlock {}\n",
        policy.name,
        if b.seccomp { "on" } else { "off" },
        b.landlock
    ));
    out.push_str(&format!(
        "installed in `enforce` mode only (this policy: `{}`), once per process tree, before threads; it only ever tightens\n",
        policy.mode
    ));
    out.push_str(&format!(
        "this kernel: Landlock ABI {abi}{}\n",
        match landlock::unused_by_abi(abi) {
            _ if abi == 0 => " (absent)".to_string(),
            Some(unused) => format!(" ({unused})"),
            None => String::new(),
        }
    ));
    if let Some(drift) = policy.drift {
        out.push_str(&format!(
            "drift: `{drift}` for executing or loading a file the image's manifest does not know (checked by the hooks at exec and dlopen, not by the kernel: execs by static programs or raw system calls are not checked; inert in an image without /etc/ldguard/drift.manifest)\n"
        ));
    }
    for (i, rule) in policy.rules.iter().enumerate() {
        out.push_str(&format!(
            "\n#{} `{}` ({} {}){}\n",
            i + 1,
            rule.name,
            rule.kind,
            rule.action,
            if rule.enabled { "" } else { " disabled" }
        ));
        if !rule.enabled {
            out.push_str("  kernel: nothing (the rule is disabled)\n");
            continue;
        }
        let mut lines = Vec::new();
        match rule.kind {
            Kind::Syscall => match &plan.seccomp {
                None => lines.push("not in the kernel: `backstop.seccomp` is off".to_string()),
                Some(sc) => {
                    for d in sc
                        .denials
                        .iter()
                        .filter(|d| d.origin == seccomp::Origin::Rule(i))
                    {
                        lines.push(format!("seccomp: {}", denial_text(d)));
                    }
                    for g in sc.gaps.iter().filter(|g| g.rule == Some(i)) {
                        lines.push(format!("not in the kernel: {}", g.why));
                    }
                    if lines.is_empty() && !rule.action.blocks() {
                        lines.push("nothing to deny (the rule allows)".into());
                    } else if lines.is_empty() {
                        lines.push("not in the kernel: an earlier rule decides these calls".into());
                    }
                }
            },
            Kind::File | Kind::Exec | Kind::Network => match &plan.landlock {
                None => lines.push("not in the kernel: `backstop.landlock` is off".to_string()),
                Some(ll) => {
                    for n in ll.notes.iter().filter(|n| n.rule == i) {
                        lines.push(if n.text.contains("not in the kernel") {
                            n.text.clone()
                        } else {
                            format!("Landlock: {}", n.text)
                        });
                    }
                    if lines.is_empty() {
                        lines.push("not in the kernel: nothing Landlock can express".into());
                    }
                }
            },
        }
        for l in lines {
            out.push_str(&format!("  {l}\n"));
        }
    }
    out.push_str("\ndefaults and implied rules\n");
    if let Some(sc) = &plan.seccomp {
        for d in sc
            .denials
            .iter()
            .filter(|d| !matches!(d.origin, seccomp::Origin::Rule(_)))
        {
            let why = match d.origin {
                seccomp::Origin::IoUring => {
                    "file or network rules are in force, and io_uring's operations would bypass them"
                }
                _ => "`defaults.syscall` blocks",
            };
            out.push_str(&format!("  seccomp: {} ({why})\n", denial_text(d)));
        }
        out.push_str("  seccomp: system calls of another architecture (e.g. `int 0x80`) kill the process; x32 numbers are matched too\n");
    }
    if let Some(ll) = &plan.landlock {
        for c in &ll.classes {
            if !c.default_allow {
                out.push_str(&format!(
                    "  Landlock: {}: `defaults.{}` blocks: only the granted prefixes (and the loader's library directories) are allowed\n",
                    c.class.name(),
                    if c.class == landlock::Class::Exec { "exec" } else { "file" }
                ));
            } else if c.handled() {
                out.push_str(&format!(
                    "  Landlock: {}: everything beside the denied prefixes is granted at start-up; entries created later directly in the directories on the way to them are not\n",
                    c.class.name()
                ));
            }
        }
        for p in &ll.ports {
            if let Some(allowed) = &p.allowed {
                out.push_str(&format!(
                    "  Landlock: TCP {}: only port(s) {}\n",
                    if p.direction == Direction::Listen {
                        "bind"
                    } else {
                        "connect"
                    },
                    landlock::ports_text(allowed)
                ));
            }
        }
        let dropped = landlock::dropped_by_abi(ll, abi);
        if !dropped.is_empty() {
            out.push_str(&format!("\nthis kernel's Landlock ABI {abi} drops\n"));
            for d in dropped {
                out.push_str(&format!("  {d}\n"));
            }
        }
    }
    out
}

fn denial_text(d: &seccomp::Denial) -> String {
    let verdict = match d.verdict {
        seccomp::Verdict::Kill => "kills the process".to_string(),
        seccomp::Verdict::Errno(e) => format!(
            "fails with {}",
            ldguard_policy::errno::name(e).unwrap_or("an errno")
        ),
    };
    match d.flags {
        None => format!("{} {verdict}", d.syscall),
        Some(bits) => {
            let names: Vec<&str> = bits.iter().map(|(n, _)| *n).collect();
            format!("{} with any of {} {verdict}", d.syscall, names.join("|"))
        }
    }
}

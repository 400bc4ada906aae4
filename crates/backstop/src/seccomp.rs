//! The seccomp half of the backstop: which system calls the policy denies
//! for every program, compiled with `seccompiler` into BPF filters that
//! return the rule's errno (or kill).
//!
//! Matching is on the syscall number the kernel dispatches on: the filter
//! checks the architecture first (a foreign one, e.g. `int 0x80` from a
//! 64-bit program, kills the process), and every number is also listed with
//! the x32 bit set, so neither ABI can dodge a rule.

use std::collections::BTreeMap;

use ldguard_policy::{Action, Call, Kind, Policy};
use seccompiler::{
    BpfProgram, Error, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};

/// Where a kernel decision comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Rule index in the policy.
    Rule(usize),
    /// `defaults.syscall`.
    Default,
    /// The io_uring ban, implied by file and network rules.
    IoUring,
}

/// What the kernel does with one system call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Errno(i32),
    Kill,
}

/// One system call the filter stops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    pub syscall: &'static str,
    pub nr: i64,
    /// Only when the flags argument has one of these bits (`clone` with
    /// `CLONE_NEW*`); `None` is unconditional.
    pub flags: Option<&'static [(&'static str, u64)]>,
    pub verdict: Verdict,
    pub origin: Origin,
    /// The interposed call that asked for it.
    pub call: Option<Call>,
}

/// Why a syscall-kind call is not restated in the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gap {
    pub call: Call,
    pub rule: Option<usize>,
    pub why: String,
}

/// The seccomp plan of a policy: pure, no I/O.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeccompPlan {
    pub denials: Vec<Denial>,
    pub gaps: Vec<Gap>,
}

/// The namespace-creating `clone` flags an `unshare` rule also covers.
const CLONE_NEW: &[(&str, u64)] = &[
    ("CLONE_NEWNS", libc::CLONE_NEWNS as u64),
    ("CLONE_NEWCGROUP", libc::CLONE_NEWCGROUP as u64),
    ("CLONE_NEWUTS", libc::CLONE_NEWUTS as u64),
    ("CLONE_NEWIPC", libc::CLONE_NEWIPC as u64),
    ("CLONE_NEWUSER", libc::CLONE_NEWUSER as u64),
    ("CLONE_NEWPID", libc::CLONE_NEWPID as u64),
    ("CLONE_NEWNET", libc::CLONE_NEWNET as u64),
    ("CLONE_NEWTIME", 0x80),
];

/// The system calls behind one interposed call. `clone3` passes its flags
/// in memory a filter cannot read: it fails with `ENOSYS` instead, and
/// glibc then falls back to `clone`, whose flags the filter sees.
fn syscalls(call: Call) -> &'static [(&'static str, i64)] {
    use libc::*;
    match call {
        Call::Ptrace => &[("ptrace", SYS_ptrace)],
        Call::Mount => &[
            ("mount", SYS_mount),
            ("fsopen", SYS_fsopen),
            ("fsconfig", SYS_fsconfig),
            ("fsmount", SYS_fsmount),
            ("fspick", SYS_fspick),
            ("move_mount", SYS_move_mount),
            ("open_tree", SYS_open_tree),
            ("mount_setattr", SYS_mount_setattr),
        ],
        Call::Umount2 => &[("umount2", SYS_umount2)],
        Call::Chroot => &[("chroot", SYS_chroot)],
        Call::PivotRoot => &[("pivot_root", SYS_pivot_root)],
        Call::Unshare => &[("unshare", SYS_unshare)],
        Call::Setns => &[("setns", SYS_setns)],
        Call::Setuid => &[("setuid", SYS_setuid)],
        Call::Setgid => &[("setgid", SYS_setgid)],
        Call::Setreuid => &[("setreuid", SYS_setreuid)],
        Call::Setregid => &[("setregid", SYS_setregid)],
        Call::Setresuid => &[("setresuid", SYS_setresuid)],
        Call::Setresgid => &[("setresgid", SYS_setresgid)],
        Call::Setfsuid => &[("setfsuid", SYS_setfsuid)],
        Call::Setfsgid => &[("setfsgid", SYS_setfsgid)],
        Call::Setgroups => &[("setgroups", SYS_setgroups)],
        Call::Capset => &[("capset", SYS_capset)],
        Call::MemfdCreate => &[("memfd_create", SYS_memfd_create)],
        Call::InitModule => &[("init_module", SYS_init_module)],
        Call::FinitModule => &[("finit_module", SYS_finit_module)],
        Call::Bpf => &[("bpf", SYS_bpf)],
        Call::Keyctl => &[("keyctl", SYS_keyctl)],
        Call::Personality => &[("personality", SYS_personality)],
        // seteuid/setegid are library functions over setresuid/setresgid;
        // the kernel cannot tell them apart.
        _ => &[],
    }
}

/// The x32 ABI's own number for a call whose x86-64 number it does not
/// share (the rest use the x86-64 number with the x32 bit).
#[cfg(target_arch = "x86_64")]
fn x32_alias(nr: i64) -> i64 {
    const X32_SYSCALL_BIT: i64 = 0x4000_0000;
    match nr {
        libc::SYS_ptrace => X32_SYSCALL_BIT | 521,
        _ => X32_SYSCALL_BIT | nr,
    }
}

/// Which rule (or default) decides `call` for every program, if one does.
/// Rules are tried in order as the hooks try them: a rule scoped to some
/// programs cannot be restated for all; one that allows it for some
/// programs stops the kernel from denying it at all.
fn decide(policy: &Policy, call: Call) -> Result<Option<(Verdict, Origin)>, Gap> {
    let verdict = |action: Action, errno: i32| match action {
        Action::Kill => Some(Verdict::Kill),
        Action::Deny => Some(Verdict::Errno(errno)),
        Action::Allow | Action::Audit => None,
    };
    for (i, rule) in policy.rules.iter().enumerate() {
        if !rule.enabled
            || rule.kind != Kind::Syscall
            || rule.call.as_ref().is_some_and(|c| !c.contains(&call))
        {
            continue;
        }
        if rule.program.is_some() {
            if rule.action.blocks() {
                continue;
            }
            return Err(Gap {
                call,
                rule: Some(i),
                why: format!(
                    "rule `{}` allows `{}` for some programs; a filter applies to every program",
                    rule.name,
                    call.name()
                ),
            });
        }
        return Ok(verdict(rule.action, rule.deny_errno()).map(|v| (v, Origin::Rule(i))));
    }
    Ok(verdict(
        policy.default_action(Kind::Syscall),
        Kind::Syscall.default_errno(),
    )
    .map(|v| (v, Origin::Default)))
}

/// Whether any file or network rule (or a blocking default) is in force:
/// io_uring's operations would reach the kernel without passing them.
pub fn io_uring_bypasses(policy: &Policy) -> bool {
    policy
        .rules
        .iter()
        .any(|r| r.enabled && matches!(r.kind, Kind::File | Kind::Network))
        || policy.default_action(Kind::File).blocks()
        || policy.default_action(Kind::Network).blocks()
}

impl SeccompPlan {
    pub fn of(policy: &Policy) -> SeccompPlan {
        let mut plan = SeccompPlan::default();
        for &call in Call::ALL.iter().filter(|c| c.kind() == Kind::Syscall) {
            let (verdict, origin) = match decide(policy, call) {
                Ok(Some(d)) => d,
                Ok(None) => continue,
                Err(gap) => {
                    plan.gaps.push(gap);
                    continue;
                }
            };
            let numbers = syscalls(call);
            if numbers.is_empty() {
                plan.gaps.push(Gap {
                    call,
                    rule: match origin {
                        Origin::Rule(i) => Some(i),
                        _ => None,
                    },
                    why: format!(
                        "`{}` has no system call of its own (glibc calls setresuid/setresgid); deny those to cover it",
                        call.name()
                    ),
                });
                continue;
            }
            for &(syscall, nr) in numbers {
                plan.denials.push(Denial {
                    syscall,
                    nr,
                    flags: None,
                    verdict,
                    origin,
                    call: Some(call),
                });
            }
            if call == Call::Unshare {
                plan.denials.push(Denial {
                    syscall: "clone",
                    nr: libc::SYS_clone,
                    flags: Some(CLONE_NEW),
                    verdict,
                    origin,
                    call: Some(call),
                });
                plan.denials.push(Denial {
                    syscall: "clone3",
                    nr: libc::SYS_clone3,
                    flags: None,
                    verdict: Verdict::Errno(libc::ENOSYS),
                    origin,
                    call: Some(call),
                });
            }
        }
        if io_uring_bypasses(policy) {
            plan.denials.push(Denial {
                syscall: "io_uring_setup",
                nr: libc::SYS_io_uring_setup,
                flags: None,
                verdict: Verdict::Errno(libc::EPERM),
                origin: Origin::IoUring,
                call: None,
            });
        }
        plan
    }

    /// The BPF programs to install, one per distinct verdict (seccompiler
    /// gives a filter a single match action). Empty when nothing is denied.
    pub fn compile(&self) -> Result<Vec<BpfProgram>, Error> {
        let mut groups: BTreeMap<(u8, i32), BTreeMap<i64, Vec<SeccompRule>>> = BTreeMap::new();
        for d in &self.denials {
            let key = match d.verdict {
                Verdict::Kill => (0, 0),
                Verdict::Errno(e) => (1, e),
            };
            let rules = match d.flags {
                None => Vec::new(),
                Some(bits) => bits
                    .iter()
                    .map(|&(_, bit)| {
                        SeccompCondition::new(
                            0,
                            SeccompCmpArgLen::Qword,
                            SeccompCmpOp::MaskedEq(bit),
                            bit,
                        )
                        .and_then(|c| SeccompRule::new(vec![c]))
                    })
                    .collect::<Result<_, _>>()
                    .map_err(Error::Backend)?,
            };
            let group = groups.entry(key).or_default();
            #[cfg(target_arch = "x86_64")]
            group.insert(x32_alias(d.nr), rules.clone());
            group.insert(d.nr, rules);
        }
        let arch: TargetArch = std::env::consts::ARCH.try_into().map_err(Error::Backend)?;
        groups
            .into_iter()
            .map(|((kind, errno), rules)| {
                let action = if kind == 0 {
                    SeccompAction::KillProcess
                } else {
                    SeccompAction::Errno(errno as u32)
                };
                SeccompFilter::new(rules, SeccompAction::Allow, action, arch)
                    .and_then(TryInto::try_into)
                    .map_err(Error::Backend)
            })
            .collect()
    }
}

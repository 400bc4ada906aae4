//! The fixed-size record a hook hands to the event pipeline. Building one
//! copies bytes into inline buffers: no allocation, no formatting, so it is
//! safe on any hook path. The writer thread turns it into an [`Event`].

use crate::active::{self, Active};
use ldguard_events::{format_time, Event};
use ldguard_policy::{Action, Call, Kind, Severity};
use std::net::IpAddr;

/// Bytes copied into a fixed buffer, truncated (and marked so) when longer.
#[derive(Clone, Copy)]
pub struct Inline<const N: usize> {
    len: u16,
    truncated: bool,
    data: [u8; N],
}

impl<const N: usize> Inline<N> {
    pub const EMPTY: Self = Inline {
        len: 0,
        truncated: false,
        data: [0; N],
    };

    pub fn from_bytes(bytes: &[u8]) -> Self {
        let mut s = Self::EMPTY;
        s.push(bytes);
        s
    }

    /// Appends; returns false once the buffer is full.
    pub fn push(&mut self, bytes: &[u8]) -> bool {
        let at = self.len as usize;
        let n = bytes.len().min(N - at);
        self.data[at..at + n].copy_from_slice(&bytes[..n]);
        self.len = (at + n) as u16;
        if n < bytes.len() {
            self.truncated = true;
        }
        !self.truncated
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.data[..self.len as usize]
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn lossy(&self) -> String {
        let mut s = String::from_utf8_lossy(self.as_bytes()).into_owned();
        if self.truncated {
            s.push('…');
        }
        s
    }
}

/// What a record reports.
#[derive(Clone, Copy)]
pub enum What {
    /// A decision on an intercepted call.
    Decision {
        call: Call,
        kind: Kind,
        action: Action,
        rule: Option<u32>,
        severity: Severity,
    },
    /// An exec or `dlopen` of a file the image did not ship (or that
    /// changed since), under the policy's `drift` action. `call` is the
    /// entry point's name (`dlopen` is not a policy call), `reason` says
    /// how the file differs.
    Drift {
        call: &'static str,
        action: Action,
        reason: &'static str,
    },
    /// A note from the library itself (configuration, policy loading).
    Status,
    /// Events lost to a full queue.
    Dropped(u64),
}

/// One event, as built on a hook path.
#[derive(Clone, Copy)]
pub struct Record {
    pub what: What,
    pub time: (i64, u32),
    pub pid: i32,
    pub ppid: i32,
    pub uid: u32,
    pub enforced: bool,
    /// The first report of this operation in this process (`behavior`).
    pub behavior: bool,
    pub errno: i32,
    /// `read`/`write` or a network direction.
    pub access: Option<&'static str>,
    /// The table that decided; tables are never freed (see `active`).
    pub active: Option<&'static Active>,
    pub target: Inline<1024>,
    pub resolved: Inline<512>,
    /// Exec arguments, NUL-separated.
    pub args: Inline<512>,
    pub address: Option<(IpAddr, u16)>,
    pub host: Inline<128>,
}

impl Record {
    pub fn new(what: What) -> Record {
        // SAFETY: plain system calls without preconditions.
        let (ppid, uid) = unsafe { (libc::getppid(), libc::getuid()) };
        Record {
            what,
            time: crate::sys::now(),
            pid: crate::sys::getpid(),
            ppid,
            uid,
            enforced: false,
            behavior: false,
            errno: 0,
            access: None,
            active: None,
            target: Inline::EMPTY,
            resolved: Inline::EMPTY,
            args: Inline::EMPTY,
            address: None,
            host: Inline::EMPTY,
        }
    }

    /// Deny and kill decisions (enforced or not): the records the audit
    /// trail must never lose.
    pub fn is_important(&self) -> bool {
        matches!(self.what, What::Decision { action, .. } | What::Drift { action, .. } if action.blocks())
    }

    /// The event as shipped (on the writer thread: this allocates).
    pub fn event(&self, ctx: &Context) -> Event {
        // Status notes carry no table of their own: report the one in force.
        let active = self.active.or_else(active::published);
        let program = match (active, active::process()) {
            (Some(a), _) => String::from_utf8_lossy(a.program).into_owned(),
            (None, Some(p)) => String::from_utf8_lossy(&p.program).into_owned(),
            (None, None) => "?".into(),
        };
        let mut target = (!self.target.is_empty()).then(|| self.target.lossy());
        if let Some((ip, port)) = self.address {
            target = Some(match ip {
                IpAddr::V6(v6) => format!("[{v6}]:{port}"),
                IpAddr::V4(v4) => format!("{v4}:{port}"),
            });
        }
        let host = (!self.host.is_empty()).then(|| self.host.lossy());
        let mut event = Event {
            time: format_time(self.time.0, self.time.1),
            container: ctx.container.clone(),
            image: ctx.image.clone(),
            pid: self.pid as u32,
            ppid: self.ppid as u32,
            uid: self.uid,
            program: program.clone(),
            resolved: (!self.resolved.is_empty()).then(|| self.resolved.lossy()),
            host: host.clone(),
            access: self.access.map(str::to_owned),
            args: self
                .args
                .as_bytes()
                .split(|&b| b == 0)
                .filter(|_| !self.args.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect(),
            enforced: self.enforced,
            behavior: self.behavior,
            policy: active.map(|a| a.table.name().to_owned()),
            mode: active.map_or("disabled", |a| a.mode.as_str()).to_owned(),
            errno: (self.errno != 0).then_some(self.errno),
            ..Event::default()
        };
        if self.args.truncated {
            event.args.push("…".into());
        }
        match self.what {
            What::Decision {
                call,
                kind,
                action,
                rule,
                severity,
            } => {
                event.call = call.name().into();
                event.kind = kind.as_str().into();
                event.action = action.as_str().into();
                event.severity = severity.as_str().into();
                event.rule = rule.and_then(|i| active.map(|a| a.table.rule_name(i).to_owned()));
                let what = describe(
                    kind,
                    self.access,
                    target.as_deref().unwrap_or(call.name()),
                    host.as_deref(),
                );
                event.message = match (action, self.enforced) {
                    (Action::Kill, true) => format!("{program} was killed for {what}"),
                    (Action::Deny, true) => format!("{program} was blocked from {what}"),
                    (Action::Kill | Action::Deny, false) => {
                        format!("{program} would have been blocked from {what} (permissive mode)")
                    }
                    (Action::Audit, _) => format!("{program} was audited {what}"),
                    (Action::Allow, _) => format!("{program} was allowed {what}"),
                };
                event.target = target;
            }
            What::Drift {
                call,
                action,
                reason,
            } => {
                event.call = call.into();
                event.kind = "drift".into();
                event.action = action.as_str().into();
                event.severity = "high".into();
                let verb = if call == "dlopen" {
                    "loading"
                } else {
                    "executing"
                };
                let what = format!(
                    "{verb} {}, which {reason}",
                    target.as_deref().unwrap_or("?")
                );
                event.message = match (action, self.enforced) {
                    (Action::Kill, true) => format!("{program} was killed for {what}"),
                    (Action::Deny, true) => format!("{program} was blocked from {what}"),
                    (Action::Kill | Action::Deny, false) => {
                        format!("{program} would have been blocked from {what} (permissive mode)")
                    }
                    _ => format!("{program} was audited {what}"),
                };
                event.target = target;
            }
            What::Status => {
                event.call = "ldguard".into();
                event.kind = "status".into();
                // A note that stopped a call (a check that failed, in
                // enforce mode) says so where searches and counts look.
                event.action = if self.enforced { "deny" } else { "allow" }.into();
                event.severity = if self.enforced { "high" } else { "medium" }.into();
                event.message = self.target.lossy();
            }
            What::Dropped(n) => {
                event.call = "ldguard".into();
                event.kind = "status".into();
                event.action = "allow".into();
                event.severity = "low".into();
                event.dropped = Some(n);
                event.message = format!("{n} events were dropped because the event queue was full");
            }
        }
        event
    }
}

fn describe(kind: Kind, access: Option<&str>, target: &str, host: Option<&str>) -> String {
    let target = match host {
        Some(h) => format!("{target} ({h})"),
        None => target.to_owned(),
    };
    match (kind, access) {
        (Kind::File, Some("read")) => format!("reading {target}"),
        (Kind::File, _) => format!("writing {target}"),
        (Kind::Exec, _) => format!("executing {target}"),
        (Kind::Network, Some("inbound")) => format!("accepting a connection from {target}"),
        (Kind::Network, Some("listen")) => format!("listening on {target}"),
        (Kind::Network, _) => format!("connecting to {target}"),
        (Kind::Syscall, _) => format!("calling {target}"),
    }
}

/// Per-process facts added to every event, gathered once on the writer side.
#[derive(Clone, Debug, Default)]
pub struct Context {
    pub container: Option<String>,
    pub image: Option<String>,
}

impl Context {
    pub fn gather() -> Context {
        Context {
            container: container_id(),
            image: active::process().and_then(|p| p.settings.image.clone()),
        }
    }
}

/// The container id: the 64-hex id in `/proc/self/cgroup` (docker, podman,
/// containerd), else the host name (which runtimes set to the short id).
fn container_id() -> Option<String> {
    if let Ok(text) = std::fs::read_to_string("/proc/self/cgroup") {
        for token in text.split(|c: char| !c.is_ascii_hexdigit()) {
            if token.len() == 64 {
                return Some(token.to_owned());
            }
        }
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_truncates_and_marks() {
        let mut i = Inline::<4>::from_bytes(b"ab");
        assert!(i.push(b"c"));
        assert!(!i.push(b"de"));
        assert_eq!(i.as_bytes(), b"abcd");
        assert_eq!(i.lossy(), "abcd…");
    }

    #[test]
    fn a_status_note_that_stopped_a_call_is_a_deny() {
        let context = Context {
            container: None,
            image: None,
        };
        let mut r = Record::new(What::Status);
        r.target = Inline::from_bytes(b"a check failed inside the library (a bug)");
        let note = r.event(&context);
        assert_eq!((note.action.as_str(), note.enforced), ("allow", false));
        r.enforced = true;
        r.errno = libc::EACCES;
        let note = r.event(&context);
        assert_eq!(note.kind, "status");
        assert_eq!((note.action.as_str(), note.enforced), ("deny", true));
        assert_eq!(note.severity, "high");
    }

    #[test]
    fn decision_event_has_spec_fields() {
        let mut r = Record::new(What::Decision {
            call: Call::Execve,
            kind: Kind::Exec,
            action: Action::Deny,
            rule: None,
            severity: Severity::High,
        });
        r.enforced = true;
        r.errno = 13;
        r.target = Inline::from_bytes(b"/bin/sh");
        r.args = Inline::from_bytes(b"sh\0-c\0id");
        let e = r.event(&Context {
            container: Some("c1".into()),
            image: Some("img".into()),
        });
        assert_eq!(e.call, "execve");
        assert_eq!(e.args, ["sh", "-c", "id"]);
        assert_eq!(e.target.as_deref(), Some("/bin/sh"));
        assert_eq!(e.pid, std::process::id());
        assert!(
            e.message.ends_with("was blocked from executing /bin/sh"),
            "{}",
            e.message
        );
        assert_eq!(e.mode, "disabled");
    }
}

//! The fixed-size record a hook hands to the event pipeline. Building one
//! copies bytes into inline buffers: no allocation, no formatting, so it is
//! safe on any hook path. For a file or stderr sink the hook's own thread
//! writes it as a JSON line ([`Record::write_line`], no allocation); for an
//! HTTP sink the writer thread turns it into an [`Event`].

use crate::process::active::{self, Active};
use ldguard_events::line::{Fmt, Line, Text};
use ldguard_events::{format_time, time_text, Event};
use ldguard_policy::{Action, Call, Kind, Severity};
use std::cell::UnsafeCell;
use std::ffi::c_long;
use std::fmt::Write;
use std::mem::MaybeUninit;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU8, Ordering};

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

    /// The bytes as events show them: lossy UTF-8, and `…` when cut.
    pub fn show(&self, out: &mut (impl Text + ?Sized)) {
        out.lossy(self.as_bytes());
        if self.truncated {
            out.text("…");
        }
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
            time: crate::os::sys::now(),
            pid: crate::os::sys::getpid(),
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

    /// The event as shipped to an HTTP collector (on the writer thread:
    /// this allocates). Every text comes from the same code as
    /// [`Record::write_line`]'s, written into `String`s.
    pub fn event(&self, ctx: &Context) -> Event {
        let active = self.active.or_else(active::published);
        let program = program(active);
        let labels = self.labels(active);
        let text = |write: &dyn Fn(&mut String)| {
            let mut s = String::new();
            write(&mut s);
            s
        };
        let mut args: Vec<String> = if self.args.is_empty() {
            Vec::new()
        } else {
            self.args
                .as_bytes()
                .split(|&b| b == 0)
                .map(|a| text(&|s| s.lossy(a)))
                .collect()
        };
        if self.args.truncated {
            args.push("…".into());
        }
        Event {
            time: format_time(self.time.0, self.time.1),
            container: ctx.container().map(|c| text(&|s| s.lossy(c))),
            image: ctx.image.map(str::to_owned),
            pid: self.pid as u32,
            ppid: self.ppid as u32,
            uid: self.uid,
            program: text(&|s| s.lossy(program)),
            call: labels.call.to_owned(),
            kind: labels.kind.to_owned(),
            target: (labels.shows_target && self.has_target())
                .then(|| text(&|s| self.write_target(s))),
            resolved: (!self.resolved.is_empty()).then(|| text(&|s| self.resolved.show(s))),
            host: (!self.host.is_empty()).then(|| text(&|s| self.host.show(s))),
            access: self.access.map(str::to_owned),
            args,
            action: labels.action.to_owned(),
            enforced: self.enforced,
            rule: labels.rule.map(str::to_owned),
            severity: labels.severity.to_owned(),
            policy: active.map(|a| a.table.name().to_owned()),
            mode: mode(active).to_owned(),
            errno: (self.errno != 0).then_some(self.errno),
            dropped: labels.dropped,
            behavior: self.behavior,
            message: text(&|s| self.write_message(program, s)),
        }
    }

    /// The event as the JSON line [`Event::to_line`] makes of
    /// [`Record::event`], byte for byte, written into `line` without
    /// allocation (on the hook's own thread, for file and stderr sinks).
    pub fn write_line(&self, ctx: &Context, line: &mut Line<'_>) {
        let active = self.active.or_else(active::published);
        let program = program(active);
        let labels = self.labels(active);
        line.str("time", time_text(self.time.0, self.time.1).as_str());
        if let Some(container) = ctx.container() {
            line.string("container", |s| s.lossy(container));
        }
        if let Some(image) = ctx.image {
            line.str("image", image);
        }
        line.uint("pid", u64::from(self.pid as u32));
        line.uint("ppid", u64::from(self.ppid as u32));
        line.uint("uid", u64::from(self.uid));
        line.string("program", |s| s.lossy(program));
        line.str("call", labels.call);
        line.str("kind", labels.kind);
        if labels.shows_target && self.has_target() {
            line.string("target", |s| self.write_target(s));
        }
        if !self.resolved.is_empty() {
            line.string("resolved", |s| self.resolved.show(s));
        }
        if !self.host.is_empty() {
            line.string("host", |s| self.host.show(s));
        }
        if let Some(access) = self.access {
            line.str("access", access);
        }
        if !self.args.is_empty() || self.args.truncated {
            line.array("args", |items| {
                if !self.args.is_empty() {
                    for a in self.args.as_bytes().split(|&b| b == 0) {
                        items.item(|s| s.lossy(a));
                    }
                }
                if self.args.truncated {
                    items.item(|s| s.text("…"));
                }
            });
        }
        line.str("action", labels.action);
        line.bool("enforced", self.enforced);
        if let Some(rule) = labels.rule {
            line.str("rule", rule);
        }
        line.str("severity", labels.severity);
        if let Some(a) = active {
            line.str("policy", a.table.name());
        }
        line.str("mode", mode(active));
        if self.errno != 0 {
            line.int("errno", i64::from(self.errno));
        }
        if let Some(n) = labels.dropped {
            line.uint("dropped", n);
        }
        if self.behavior {
            line.bool("behavior", true);
        }
        line.string("message", |s| self.write_message(program, s));
    }

    /// The short fields that depend on what the record reports.
    fn labels(&self, active: Option<&'static Active>) -> Labels {
        match self.what {
            What::Decision {
                call,
                kind,
                action,
                rule,
                severity,
            } => Labels {
                call: call.name(),
                kind: kind.as_str(),
                action: action.as_str(),
                severity: severity.as_str(),
                rule: rule.and_then(|i| active.map(|a| a.table.rule_name(i))),
                dropped: None,
                shows_target: true,
            },
            What::Drift { call, action, .. } => Labels {
                call,
                kind: "drift",
                action: action.as_str(),
                severity: "high",
                rule: None,
                dropped: None,
                shows_target: true,
            },
            // A note that stopped a call (a check that failed, in enforce
            // mode) says so where searches and counts look.
            What::Status => Labels {
                call: "ldguard",
                kind: "status",
                action: if self.enforced { "deny" } else { "allow" },
                severity: if self.enforced { "high" } else { "medium" },
                rule: None,
                dropped: None,
                shows_target: false,
            },
            What::Dropped(n) => Labels {
                call: "ldguard",
                kind: "status",
                action: "allow",
                severity: "low",
                rule: None,
                dropped: Some(n),
                shows_target: false,
            },
        }
    }

    fn has_target(&self) -> bool {
        self.address.is_some() || !self.target.is_empty()
    }

    /// The target as events show it: a network address as `ip:port`
    /// (`[ip]:port` for IPv6), else the bytes.
    fn write_target(&self, out: &mut (impl Text + ?Sized)) {
        match self.address {
            // core::fmt into the text: no allocation.
            Some((IpAddr::V6(v6), port)) => {
                let _ = write!(Fmt(out), "[{v6}]:{port}");
            }
            Some((IpAddr::V4(v4), port)) => {
                let _ = write!(Fmt(out), "{v4}:{port}");
            }
            None => self.target.show(out),
        }
    }

    /// The message: the one place its wording is kept.
    fn write_message(&self, program: &[u8], out: &mut (impl Text + ?Sized)) {
        let (action, drift) = match self.what {
            What::Decision { action, .. } => (action, false),
            What::Drift { action, .. } => (action, true),
            What::Status => {
                self.target.show(out);
                return;
            }
            What::Dropped(n) => {
                let _ = write!(
                    Fmt(out),
                    "{n} events were dropped because the event queue was full"
                );
                return;
            }
        };
        out.lossy(program);
        let permissive = !self.enforced && action.blocks();
        out.text(match (action, self.enforced) {
            (Action::Kill, true) => " was killed for ",
            (Action::Deny, true) => " was blocked from ",
            (Action::Kill | Action::Deny, false) => " would have been blocked from ",
            (Action::Allow, _) if !drift => " was allowed ",
            // Audit, and a drift that does not block.
            _ => " was audited ",
        });
        self.write_what(out);
        if permissive {
            out.text(" (permissive mode)");
        }
    }

    /// What the call did, as the message says it ("reading /etc/shadow").
    fn write_what(&self, out: &mut (impl Text + ?Sized)) {
        match self.what {
            What::Decision { call, kind, .. } => {
                out.text(match (kind, self.access) {
                    (Kind::File, Some("read")) => "reading ",
                    (Kind::File, _) => "writing ",
                    (Kind::Exec, _) => "executing ",
                    (Kind::Network, Some("inbound")) => "accepting a connection from ",
                    (Kind::Network, Some("listen")) => "listening on ",
                    (Kind::Network, _) => "connecting to ",
                    (Kind::Syscall, _) => "calling ",
                });
                if self.has_target() {
                    self.write_target(out);
                } else {
                    out.text(call.name());
                }
                if !self.host.is_empty() {
                    out.text(" (");
                    self.host.show(out);
                    out.text(")");
                }
            }
            What::Drift { call, reason, .. } => {
                out.text(if call == "dlopen" {
                    "loading "
                } else {
                    "executing "
                });
                if self.has_target() {
                    self.write_target(out);
                } else {
                    out.text("?");
                }
                out.text(", which ");
                out.text(reason);
            }
            What::Status | What::Dropped(_) => {}
        }
    }
}

struct Labels {
    call: &'static str,
    kind: &'static str,
    action: &'static str,
    severity: &'static str,
    rule: Option<&'static str>,
    dropped: Option<u64>,
    /// Whether the event has a `target` field (status notes keep their
    /// text in the message).
    shows_target: bool,
}

/// The program events name: the deciding table's, else the process's.
fn program(active: Option<&'static Active>) -> &'static [u8] {
    match (active, active::process()) {
        (Some(a), _) => a.program,
        (None, Some(p)) => &p.program,
        (None, None) => b"?",
    }
}

fn mode(active: Option<&Active>) -> &'static str {
    active.map_or("disabled", |a| a.mode.as_str())
}

/// Per-process facts added to every event: gathered once per process
/// image, at its first event, without allocation (see [`Context::current`]).
#[derive(Clone, Copy)]
pub struct Context {
    /// The 64-hex container id, or the host name; empty when neither.
    container: Inline<64>,
    pub image: Option<&'static str>,
}

impl Context {
    pub fn container(&self) -> Option<&[u8]> {
        (!self.container.is_empty()).then(|| self.container.as_bytes())
    }

    /// This process's context: gathered by the first event that asks and
    /// kept (a relaxed load afterwards). Two threads that both find it
    /// missing both gather; the first to finish publishes. A forked child
    /// inherits it (same container).
    pub fn current() -> Context {
        if GATHERED.state.load(Ordering::Acquire) == READY {
            // SAFETY: READY is stored (Release) only after the value is
            // written, and it is never written again.
            return unsafe { (*GATHERED.value.get()).assume_init() };
        }
        let context = Context {
            container: container_id(),
            image: active::process().and_then(|p| p.settings.image),
        };
        if GATHERED
            .state
            .compare_exchange(EMPTY, WRITING, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            // SAFETY: the EMPTY -> WRITING exchange gave this thread the
            // only right to write the value.
            unsafe { (*GATHERED.value.get()).write(context) };
            GATHERED.state.store(READY, Ordering::Release);
        }
        context
    }

    #[cfg(test)]
    pub fn for_test(container: &[u8], image: Option<&'static str>) -> Context {
        Context {
            container: Inline::from_bytes(container),
            image,
        }
    }
}

const EMPTY: u8 = 0;
const WRITING: u8 = 1;
const READY: u8 = 2;

struct Gathered {
    state: AtomicU8,
    value: UnsafeCell<MaybeUninit<Context>>,
}

// SAFETY: `value` is written once, by the thread that moved `state` from
// EMPTY to WRITING, and read only after the Release store of READY.
unsafe impl Sync for Gathered {}

static GATHERED: Gathered = Gathered {
    state: AtomicU8::new(EMPTY),
    value: UnsafeCell::new(MaybeUninit::uninit()),
};

/// The container id: the first run of exactly 64 hex digits in
/// `/proc/self/cgroup` (docker, podman, containerd), else the host name
/// (which runtimes set to the short id). Raw system calls into stack
/// buffers: this runs on a hook path.
fn container_id() -> Inline<64> {
    const PATH: &[u8] = b"/proc/self/cgroup\0";
    let fd = crate::os::sys::syscall6(
        libc::SYS_openat,
        [
            libc::AT_FDCWD as c_long,
            PATH.as_ptr() as c_long,
            (libc::O_RDONLY | libc::O_CLOEXEC) as c_long,
            0,
            0,
            0,
        ],
    );
    if fd >= 0 {
        let mut chunk = [0u8; 512];
        // The current run of hex digits (its first 64 kept) and its length.
        let mut run = [0u8; 64];
        let mut run_len = 0usize;
        let mut found = None;
        'read: loop {
            let n = crate::os::sys::syscall6(
                libc::SYS_read,
                [
                    fd,
                    chunk.as_mut_ptr() as c_long,
                    chunk.len() as c_long,
                    0,
                    0,
                    0,
                ],
            );
            if n == -(libc::EINTR as c_long) {
                continue;
            }
            let end = n <= 0;
            let bytes = if end { &[][..] } else { &chunk[..n as usize] };
            for &b in bytes.iter().chain(end.then_some(&b'\n')) {
                if b.is_ascii_hexdigit() {
                    if run_len < 64 {
                        run[run_len] = b;
                    }
                    run_len += 1;
                } else {
                    if run_len == 64 {
                        found = Some(run);
                        break 'read;
                    }
                    run_len = 0;
                }
            }
            if end {
                break;
            }
        }
        crate::os::sys::close(fd as i32);
        if let Some(id) = found {
            return Inline::from_bytes(&id);
        }
    }
    // SAFETY: an all-zero utsname is valid; the kernel fills it.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    if crate::os::sys::syscall6(
        libc::SYS_uname,
        [(&mut uts as *mut libc::utsname) as c_long, 0, 0, 0, 0, 0],
    ) != 0
    {
        return Inline::EMPTY;
    }
    // SAFETY: c_char and u8 have the same size; the kernel NUL-terminates.
    let name: &[u8] = unsafe {
        std::slice::from_raw_parts(uts.nodename.as_ptr().cast::<u8>(), uts.nodename.len())
    };
    let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
    Inline::from_bytes(name.trim_ascii())
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
        let mut shown = String::new();
        i.show(&mut shown);
        assert_eq!(shown, "abcd…");
    }

    #[test]
    fn a_status_note_that_stopped_a_call_is_a_deny() {
        let context = Context::for_test(b"", None);
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
        let e = r.event(&Context::for_test(b"c1", Some("img")));
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

    /// The line a hook writes and the line the writer thread wrote (serde
    /// of [`Record::event`]) are the same bytes, for every kind of record.
    #[test]
    fn the_direct_line_is_the_events_line_byte_for_byte() {
        let text = serde_json::json!({
            "apiVersion": "ldguard.policy/v1",
            "name": "na\"me\\with/slash é",
            "mode": "enforce",
            "rules": [
                {"name": "plain", "kind": "file", "path": ["/x"], "action": "deny"},
                {"name": "quote\"back\\slash ü", "kind": "file", "path": ["/y"], "action": "audit"},
            ],
        })
        .to_string();
        let table = ldguard_policy::compile_str(&text, "t.json").unwrap();
        let enforce: &'static Active = Box::leak(Box::new(Active {
            table: table.clone(),
            mode: ldguard_policy::Mode::Enforce,
            program: b"/usr/bin/prog\xff\"q\\\x07",
            origin: "t".into(),
        }));
        let permissive: &'static Active = Box::leak(Box::new(Active {
            table,
            mode: ldguard_policy::Mode::Permissive,
            program: b"/usr/bin/prog",
            origin: "t".into(),
        }));
        let contexts = [
            Context::for_test(b"", None),
            Context::for_test(&[b'a'; 64], Some("shop/web:1.4")),
            Context::for_test(b"host\xc3", Some("img \"q\" \\ \n")),
        ];
        let mut odd = Vec::new();
        odd.extend(0u8..=255);
        odd.extend_from_slice("é…😀".as_bytes());
        let mut long_target = Inline::<1024>::EMPTY;
        while long_target.push(b"/very/long/\"path\"\\\n\x01\xe2\x82") {}
        let mut long_args = Inline::<512>::EMPTY;
        while long_args.push(b"arg\0\xff\x1f\0") {}
        let mut long_host = Inline::<128>::EMPTY;
        while long_host.push("hôst.".as_bytes()) {}

        let mut records = Vec::new();
        for &kind in Kind::ALL {
            for &action in Action::ALL {
                for access in [
                    None,
                    Some("read"),
                    Some("write"),
                    Some("inbound"),
                    Some("listen"),
                    Some("outbound"),
                ] {
                    for enforced in [false, true] {
                        for rule in [None, Some(0), Some(1)] {
                            let mut r = Record::new(What::Decision {
                                call: Call::ALL[records.len() % Call::ALL.len()],
                                kind,
                                action,
                                rule,
                                severity: Severity::ALL[records.len() % Severity::ALL.len()],
                            });
                            r.access = access;
                            r.enforced = enforced;
                            r.behavior = records.len() % 3 == 0;
                            r.errno = if enforced { libc::EACCES } else { 0 };
                            r.active = [Some(enforce), Some(permissive), None][records.len() % 3];
                            match records.len() % 5 {
                                0 => r.target = Inline::from_bytes(b"/etc/shadow"),
                                1 => {}
                                2 => r.target = Inline::from_bytes(&odd),
                                3 => r.target = long_target,
                                _ => r.target = Inline::from_bytes(b"\"quoted\" back\\slash"),
                            }
                            records.push(r);
                        }
                    }
                }
            }
        }
        let addresses = [
            "10.0.0.1".parse().unwrap(),
            "::1".parse().unwrap(),
            "2001:db8::8a2e:370:7334".parse().unwrap(),
            "::ffff:192.0.2.1".parse().unwrap(),
        ];
        for (i, ip) in addresses.into_iter().enumerate() {
            for host in [Inline::EMPTY, Inline::from_bytes(b"example.com"), long_host] {
                let mut r = Record::new(What::Decision {
                    call: Call::Connect,
                    kind: Kind::Network,
                    action: Action::Deny,
                    rule: Some(0),
                    severity: Severity::High,
                });
                r.address = Some((ip, [0, 443, 65535, 53][i]));
                r.host = host;
                r.access = Some("outbound");
                r.active = Some(enforce);
                records.push(r);
                // A host name without an address is the target itself.
                let mut named = r;
                named.address = None;
                named.target = Inline::from_bytes(host.as_bytes());
                records.push(named);
            }
        }
        for args in [
            Inline::EMPTY,
            Inline::from_bytes(b"sh\0-c\0id"),
            Inline::from_bytes(b"\0\0"),
            long_args,
        ] {
            let mut r = Record::new(What::Decision {
                call: Call::Execve,
                kind: Kind::Exec,
                action: Action::Kill,
                rule: None,
                severity: Severity::Critical,
            });
            r.args = args;
            r.target = Inline::from_bytes(b"/bin/sh");
            r.resolved = Inline::from_bytes(b"/usr/bin/dash\xfe");
            r.enforced = true;
            r.active = Some(enforce);
            records.push(r);
        }
        let mut long_resolved = Inline::<512>::EMPTY;
        while long_resolved.push(b"/r\"e\\s") {}
        for (call, reason) in [
            ("execve", "is not in the image"),
            ("dlopen", "changed since the build"),
        ] {
            for &action in Action::ALL {
                for enforced in [false, true] {
                    for target in [Inline::EMPTY, Inline::from_bytes(b"/tmp/x\n"), long_target] {
                        let mut r = Record::new(What::Drift {
                            call,
                            action,
                            reason,
                        });
                        r.enforced = enforced;
                        r.target = target;
                        r.resolved = long_resolved;
                        r.active = Some(permissive);
                        records.push(r);
                    }
                }
            }
        }
        for enforced in [false, true] {
            for target in [
                Inline::EMPTY,
                Inline::from_bytes(b"policy \"x\" failed:\n\tline 3"),
                long_target,
            ] {
                let mut r = Record::new(What::Status);
                r.enforced = enforced;
                r.errno = if enforced { libc::EPERM } else { 0 };
                r.target = target;
                records.push(r);
            }
        }
        for n in [0, 1, u64::MAX] {
            records.push(Record::new(What::Dropped(n)));
        }
        let mut odd_ids = Record::new(What::Status);
        odd_ids.pid = -1;
        odd_ids.ppid = i32::MIN;
        odd_ids.uid = u32::MAX;
        odd_ids.time = (-1, 999_999_999);
        records.push(odd_ids);

        let mut buf = vec![0u8; 64 * 1024];
        let mut longest = 0;
        for (i, r) in records.iter().enumerate() {
            for ctx in &contexts {
                let want = r.event(ctx).to_line();
                let mut line = Line::new(&mut buf);
                r.write_line(ctx, &mut line);
                let got = line.finish().expect("fits").to_vec();
                assert_eq!(
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(&want),
                    "record {i}"
                );
                assert_eq!(got, want, "record {i}");
                longest = longest.max(got.len());
            }
        }
        assert!(records.len() > 600, "{} records", records.len());
        // The worst record of all, escaped, needs more than a pool slot:
        // the mapped fallback is not dead code.
        assert!(longest > 4096, "longest line {longest}");
    }

    #[test]
    fn a_line_too_long_for_its_buffer_is_counted_whole() {
        let mut r = Record::new(What::Status);
        while r.target.push(b"\x01\x02") {}
        let want = r.event(&Context::for_test(b"", None)).to_line();
        let mut small = [0u8; 100];
        let mut line = Line::new(&mut small);
        r.write_line(&Context::for_test(b"", None), &mut line);
        assert!(line.finish().is_none());
        assert_eq!(line.needed(), want.len());
    }
}

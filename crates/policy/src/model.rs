//! The vocabulary of a policy: kinds, actions, modes and the other enums of
//! docs/policy.md, with their JSON spellings.

macro_rules! spelled_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The document spellings of [`Self::ALL`], for messages.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// The spelling used in policy documents and events.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the document spelling; `None` for anything else.
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

spelled_enum!(
    /// Which family of operations a rule governs.
    Kind { File = "file", Exec = "exec", Network = "network", Syscall = "syscall" }
);
spelled_enum!(
    /// What a matching rule (or a default) does.
    Action { Allow = "allow", Audit = "audit", Deny = "deny", Kill = "kill" }
);
spelled_enum!(
    /// Whether decisions take effect.
    Mode { Enforce = "enforce", Permissive = "permissive", Disabled = "disabled" }
);
spelled_enum!(
    Severity { Info = "info", Low = "low", Medium = "medium", High = "high", Critical = "critical" }
);
spelled_enum!(
    /// File access class (docs/policy.md `access`).
    Access { Read = "read", Write = "write" }
);
spelled_enum!(
    Direction { Outbound = "outbound", Inbound = "inbound", Listen = "listen" }
);
spelled_enum!(
    Protocol { Tcp = "tcp", Udp = "udp" }
);
spelled_enum!(
    /// How much of the policy Landlock must enforce (`backstop.landlock`):
    /// `best-effort` drops what the running kernel's Landlock ABI lacks,
    /// `required` refuses to run a process the kernel cannot restrict.
    LandlockLevel { Off = "off", BestEffort = "best-effort", Required = "required" }
);
spelled_enum!(
    /// Outcomes that `log` can select; `Behavior` records every distinct
    /// operation once per process.
    LogClass { Allow = "allow", Audit = "audit", Deny = "deny", Behavior = "behavior" }
);

impl Action {
    /// `deny` and `kill` stop the operation (when the mode enforces).
    pub const fn blocks(self) -> bool {
        matches!(self, Action::Deny | Action::Kill)
    }
}

impl Kind {
    /// Dense index, for per-kind arrays.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The errno a `deny` of this kind fails the call with unless the rule
    /// names its own: `EACCES` for file and exec, `EPERM` otherwise.
    pub const fn default_errno(self) -> i32 {
        match self {
            Kind::File | Kind::Exec => crate::errno::EACCES,
            Kind::Network | Kind::Syscall => crate::errno::EPERM,
        }
    }
}

impl Action {
    /// The `log` class this outcome belongs to (`kill` is logged as `deny`).
    pub const fn log_class(self) -> LogClass {
        match self {
            Action::Allow => LogClass::Allow,
            Action::Audit => LogClass::Audit,
            Action::Deny | Action::Kill => LogClass::Deny,
        }
    }
}

/// The set of outcomes a policy's `log` selects.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LogSet(u8);

impl LogSet {
    pub const EMPTY: LogSet = LogSet(0);

    pub const fn with(self, class: LogClass) -> LogSet {
        LogSet(self.0 | 1 << class as u8)
    }

    pub const fn contains(self, class: LogClass) -> bool {
        self.0 & (1 << class as u8) != 0
    }

    /// Whether an outcome with `action` is selected.
    pub const fn logs(self, action: Action) -> bool {
        self.contains(action.log_class())
    }

    /// Whether `behavior` (record each distinct operation once per process,
    /// for `ldguard learn`) is on.
    pub const fn behavior(self) -> bool {
        self.contains(LogClass::Behavior)
    }

    pub fn iter(self) -> impl Iterator<Item = LogClass> {
        LogClass::ALL
            .iter()
            .copied()
            .filter(move |&c| self.contains(c))
    }
}

impl Default for LogSet {
    /// `["deny", "audit"]`, the documented default.
    fn default() -> Self {
        LogSet::EMPTY.with(LogClass::Deny).with(LogClass::Audit)
    }
}

impl std::fmt::Debug for LogSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// A validated policy document: every default filled in, every matcher
/// parsed. [`crate::compile_document`] turns it into a [`crate::RuleTable`].
#[derive(Clone, Debug)]
pub struct Policy {
    pub name: String,
    pub mode: Mode,
    pub log: LogSet,
    /// Default action per kind, indexed by [`Kind::index`].
    pub defaults: [Action; 4],
    pub ignore: Vec<crate::Call>,
    pub description: Option<String>,
    pub rules: Vec<Rule>,
    /// The kernel backstop to install in `enforce` mode; `None` when absent.
    pub backstop: Option<Backstop>,
    /// The action for executing or loading a file that is not in the
    /// image's manifest (or changed since); `None` when absent.
    pub drift: Option<Action>,
}

/// `backstop`: which kernel mechanisms restate the policy. They are
/// installed once per process tree and can only ever tighten it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backstop {
    /// Compile syscall rules (and an io_uring ban) into a seccomp filter.
    pub seccomp: bool,
    pub landlock: LandlockLevel,
}

impl Backstop {
    /// Whether any kernel mechanism is asked for.
    pub fn any(&self) -> bool {
        self.seccomp || self.landlock != LandlockLevel::Off
    }
}

impl Policy {
    pub fn default_action(&self, kind: Kind) -> Action {
        self.defaults[kind.index()]
    }
}

/// One rule. A matcher that is `None` was absent from the document and
/// matches anything; a present one must match, and it never matches a
/// request that lacks the field it looks at (a `port` rule does not match a
/// unix socket).
#[derive(Clone, Debug)]
pub struct Rule {
    pub name: String,
    pub kind: Kind,
    pub action: Action,
    pub enabled: bool,
    pub severity: Severity,
    /// The rule's own errno for `deny`, when it names one.
    pub errno: Option<i32>,
    pub description: Option<String>,
    pub program: Option<Vec<crate::glob::Glob>>,
    pub path: Option<Vec<crate::glob::Glob>>,
    pub access: Option<Vec<Access>>,
    pub direction: Option<Vec<Direction>>,
    pub address: Option<Vec<crate::net::Cidr>>,
    pub port: Option<Vec<crate::net::PortRange>>,
    pub protocol: Option<Vec<Protocol>>,
    pub unix: Option<Vec<crate::glob::Glob>>,
    pub host: Option<Vec<crate::glob::Glob>>,
    pub call: Option<Vec<crate::Call>>,
}

impl Rule {
    /// The errno a `deny` by this rule fails the call with.
    pub fn deny_errno(&self) -> i32 {
        self.errno.unwrap_or(self.kind.default_errno())
    }
}

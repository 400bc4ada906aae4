//! The vocabulary of a policy: kinds, actions, modes and the other enums of
//! SPEC §2, with their JSON spellings.

macro_rules! spelled_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

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
    /// File access class (SPEC §2 `access`).
    Access { Read = "read", Write = "write" }
);
spelled_enum!(
    Direction { Outbound = "outbound", Inbound = "inbound", Listen = "listen" }
);
spelled_enum!(
    Protocol { Tcp = "tcp", Udp = "udp" }
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

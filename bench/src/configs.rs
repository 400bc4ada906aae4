//! The configurations every workload runs under, side by side.

use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Config {
    /// No library at all: the baseline.
    None,
    /// A preloaded shared object with no code at all: what preloading
    /// anything costs (the loader's work), the floor under every ratio.
    Empty,
    /// Library loaded, `LDGUARD_MODE=disabled`.
    Disabled,
    /// Library loaded with the 100-rule policy, nothing blocked.
    Permissive,
    /// Library loaded with the 100-rule policy, enforcing.
    Enforce,
    /// No library, under `strace -f -o /dev/null`: the ptrace anchor.
    Strace,
}

impl Config {
    pub const ALL: [Config; 6] = [
        Config::None,
        Config::Empty,
        Config::Disabled,
        Config::Permissive,
        Config::Enforce,
        Config::Strace,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Config::None => "none",
            Config::Empty => "empty",
            Config::Disabled => "disabled",
            Config::Permissive => "permissive",
            Config::Enforce => "enforce",
            Config::Strace => "strace",
        }
    }

    pub fn uses_library(self) -> bool {
        matches!(
            self,
            Config::Disabled | Config::Permissive | Config::Enforce
        )
    }
}

/// What a configuration needs to build its command lines.
pub struct Env {
    pub library: PathBuf,
    /// The code-less library of [`Config::Empty`].
    pub empty_library: PathBuf,
    pub policy: PathBuf,
    /// Directory for the per-configuration event files.
    pub events_dir: PathBuf,
    /// `HOME` of every workload: the policy denies reads under `/root`, and
    /// git reads `$HOME/.gitconfig`.
    pub home: PathBuf,
}

impl Env {
    /// Where the library of `config` writes its events (denials and audits
    /// only, as the policy's `log` says): counted after the run to prove
    /// the workloads were not denied anything.
    pub fn events_file(&self, config: Config) -> PathBuf {
        self.events_dir
            .join(format!("events-{}.jsonl", config.name()))
    }

    /// `program args…` under `config`. The `LDGUARD_*` variables of the
    /// caller's environment are always cleared so they cannot leak into
    /// the baseline.
    pub fn command(&self, config: Config, program: &Path, args: &[&str]) -> Command {
        let mut cmd = if config == Config::Strace {
            let mut c = Command::new("strace");
            c.args(["-f", "-o", "/dev/null", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        cmd.args(args).env("HOME", &self.home);
        for var in [
            "LD_PRELOAD",
            "LDGUARD_POLICY",
            "LDGUARD_MODE",
            "LDGUARD_EVENTS",
            "LDGUARD_CONFIG",
        ] {
            cmd.env_remove(var);
        }
        if config == Config::Empty {
            cmd.env("LD_PRELOAD", &self.empty_library);
        }
        if config.uses_library() {
            let mode = match config {
                Config::Disabled => "disabled",
                Config::Permissive => "permissive",
                _ => "enforce",
            };
            cmd.env("LD_PRELOAD", &self.library)
                .env("LDGUARD_POLICY", &self.policy)
                .env("LDGUARD_MODE", mode)
                .env(
                    "LDGUARD_EVENTS",
                    format!("file:{}", self.events_file(config).display()),
                );
        }
        cmd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Env {
        Env {
            library: "/lib/x.so".into(),
            empty_library: "/lib/empty.so".into(),
            policy: "/p.json".into(),
            events_dir: "/ev".into(),
            home: "/h".into(),
        }
    }

    fn vars(cmd: &Command) -> Vec<(String, Option<String>)> {
        cmd.get_envs()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.map(|v| v.to_string_lossy().into_owned()),
                )
            })
            .collect()
    }

    #[test]
    fn baseline_and_strace_clear_the_library() {
        for c in [Config::None, Config::Strace] {
            let cmd = env().command(c, Path::new("/bin/true"), &["a"]);
            assert!(vars(&cmd).contains(&("LD_PRELOAD".into(), None)));
        }
        let s = env().command(Config::Strace, Path::new("/bin/true"), &["a"]);
        assert_eq!(s.get_program(), "strace");
        let args: Vec<_> = s.get_args().collect();
        assert_eq!(args, ["-f", "-o", "/dev/null", "--", "/bin/true", "a"]);
    }

    #[test]
    fn empty_preloads_the_codeless_library_and_nothing_else() {
        let v = vars(&env().command(Config::Empty, Path::new("/bin/true"), &[]));
        assert!(v.contains(&("LD_PRELOAD".into(), Some("/lib/empty.so".into()))));
        assert!(v.contains(&("LDGUARD_MODE".into(), None)));
        assert!(v.contains(&("LDGUARD_POLICY".into(), None)));
    }

    #[test]
    fn library_configs_set_mode_policy_and_events() {
        let cmd = env().command(Config::Permissive, Path::new("/bin/true"), &[]);
        let v = vars(&cmd);
        assert!(v.contains(&("LD_PRELOAD".into(), Some("/lib/x.so".into()))));
        assert!(v.contains(&("LDGUARD_MODE".into(), Some("permissive".into()))));
        assert!(v.contains(&(
            "LDGUARD_EVENTS".into(),
            Some("file:/ev/events-permissive.jsonl".into())
        )));
    }
}

//! The route scenarios: every way libc offers to reach a file, a program,
//! a peer or a capability that an enforce policy denies, tried as an
//! attacker inside an instrumented process would (a stock tool, one line
//! of perl or python, or `tests/c/routes.c`). The table is in `table.rs`;
//! each row becomes one test, which runs the attack
//!
//! - in `enforce` mode: the expected failure (exit status, errno text) and
//!   exactly the expected deny events (rule, call, program, target);
//! - in `permissive` mode: the same exit status and output as without the
//!   library, and the same events with `"enforced": false`;
//!
//! and the allowed twin (the same route towards something the policy
//! allows) under the policy: the same exit status and output as without
//! the library, and no deny event.
//!
//! `{d}` in commands, rules and events is the scenario's directory (with
//! `pub/a` and `secret/f`), `{routes}` the compiled probe, `{spawn}` the
//! spawn and PATH-search probe (`tests/c/spawn.c`).

#[path = "../common/mod.rs"]
mod common;
mod table;

use common::{policy, scratch, Outcome, Run};
use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// One route and how it must behave.
pub struct Scenario {
    /// The attack (argv).
    pub attack: &'static [&'static str],
    /// The same route towards an allowed target.
    pub twin: &'static [&'static str],
    /// The policy's rules (JSON array).
    pub rules: &'static str,
    /// Rules for the twin, when the route cannot have an allowed target
    /// under `rules` (a denied shell, a denied call).
    pub twin_rules: Option<&'static str>,
    /// Working directory (relative to `{d}`).
    pub cwd: &'static str,
    /// Text the enforce run prints (stdout or stderr).
    pub text: &'static str,
    /// Exit status of the enforce run; `None`: any failure.
    pub code: Option<i32>,
    /// The deny events: the rule, the calls (one event each), the target
    /// (a trailing `:` matches any port).
    pub rule: &'static str,
    pub calls: &'static [&'static str],
    pub target: &'static str,
    /// The calls of the permissive run's events, when they differ (the
    /// program takes another path once the first call succeeds).
    pub permissive_calls: Option<&'static [&'static str]>,
    /// The program the events name (`{routes}` for the probe).
    pub program: &'static str,
    /// Prepares `{d}` before each run; what it returns lives for the run.
    pub setup: fn(&Path) -> Box<dyn Any>,
}

pub fn no_setup(_: &Path) -> Box<dyn Any> {
    Box::new(())
}

pub const BASE: Scenario = Scenario {
    attack: &[],
    twin: &[],
    rules: "[]",
    twin_rules: None,
    cwd: ".",
    text: "",
    code: None,
    rule: "",
    calls: &[],
    target: "",
    permissive_calls: None,
    program: "{routes}",
    setup: no_setup,
};

fn routes() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| common::c_program("routes", &["-ldl"]))
}

fn spawn() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| common::c_program("spawn", &[]))
}

fn fill(s: &str, d: &Path) -> String {
    s.replace("{d}", &d.display().to_string())
        .replace("{routes}", &routes().display().to_string())
        .replace("{spawn}", &spawn().display().to_string())
}

fn reset(d: &Path) {
    for sub in ["pub", "secret"] {
        let _ = std::fs::remove_dir_all(d.join(sub));
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    std::fs::write(d.join("pub/a"), "public data\n").unwrap();
    std::fs::write(d.join("secret/f"), "secret data\n").unwrap();
}

impl Scenario {
    fn run(&self, d: &Path, argv: &[&str], rules: Option<&str>, mode: &str) -> Outcome {
        reset(d);
        let _keep = (self.setup)(d);
        let argv: Vec<String> = argv.iter().map(|a| fill(a, d)).collect();
        let policy = rules.map(|r| {
            let rules =
                serde_json::from_str(&fill(r, d)).unwrap_or_else(|e| panic!("bad rules {r}: {e}"));
            policy(mode, &["deny"], rules)
        });
        // Policies and events are written next to `{d}`, not in it, so
        // that walking `{d}` finds the same files with and without them.
        let run_dir = d.with_extension("run");
        std::fs::create_dir_all(&run_dir).unwrap();
        Run::new(&run_dir, policy)
            .cwd(&d.join(self.cwd))
            .env("LC_ALL", "C")
            .env("PATH", "/usr/bin:/bin")
            .cmd(&argv)
    }

    fn check_events(&self, d: &Path, out: &Outcome, enforced: bool, what: &str) {
        let events = out.decisions();
        let calls: Vec<&str> = events.iter().map(|e| e.call.as_str()).collect();
        let expected = match (enforced, self.permissive_calls) {
            (false, Some(calls)) => calls,
            _ => self.calls,
        };
        assert_eq!(
            calls, expected,
            "{what}: events {events:#?}\nstdout: {}\nstderr: {}",
            out.stdout, out.stderr
        );
        let target = fill(self.target, d);
        let program = fill(self.program, d);
        for e in events {
            let target_ok = match target.strip_suffix(':') {
                Some(prefix) if target.ends_with(':') => e
                    .target
                    .as_deref()
                    .is_some_and(|t| t.starts_with(&format!("{prefix}:"))),
                _ => e.target.as_deref() == Some(target.as_str()),
            };
            assert!(
                target_ok
                    && e.rule.as_deref() == Some(self.rule)
                    && e.program == program
                    && e.action == "deny"
                    && e.enforced == enforced,
                "{what}: expected rule {} target {target} program {program} enforced {enforced}, got {e:#?}",
                self.rule
            );
        }
    }

    /// Runs the scenario; `name` names the scratch directory.
    pub fn check(&self, name: &str) {
        let d = scratch(&format!("scenario-{name}"));
        let attack = self.attack;

        let base = self.run(&d, attack, None, "enforce");
        let enforce = self.run(&d, attack, Some(self.rules), "enforce");
        let printed = format!("{}{}", enforce.stdout, enforce.stderr);
        assert!(
            printed.contains(self.text),
            "enforce: expected {:?} in\n{printed}\n(without the library: {}{})",
            self.text,
            base.stdout,
            base.stderr
        );
        match self.code {
            Some(c) => assert_eq!(enforce.code(), c, "enforce exit status; {printed}"),
            None => assert_ne!(enforce.code(), 0, "enforce should fail; {printed}"),
        }
        assert_ne!(
            (enforce.code(), &enforce.stdout),
            (base.code(), &base.stdout),
            "the attack succeeded under enforce: {printed}"
        );
        self.check_events(&d, &enforce, true, "enforce");

        let permissive = self.run(&d, attack, Some(self.rules), "permissive");
        assert_eq!(
            (permissive.code(), &permissive.stdout),
            (base.code(), &base.stdout),
            "permissive differs from the run without the library; stderr: {} / {}",
            permissive.stderr,
            base.stderr
        );
        self.check_events(&d, &permissive, false, "permissive");

        let twin_base = self.run(&d, self.twin, None, "enforce");
        let twin = self.run(
            &d,
            self.twin,
            Some(self.twin_rules.unwrap_or(self.rules)),
            "enforce",
        );
        assert_eq!(
            (twin.code(), &twin.stdout),
            (twin_base.code(), &twin_base.stdout),
            "the allowed twin differs from the run without the library; stderr: {} / {}",
            twin.stderr,
            twin_base.stderr
        );
        assert!(
            twin.decisions().is_empty(),
            "the allowed twin was reported: {:#?}",
            twin.events
        );
    }
}

/// One `#[test]` per row of the table.
macro_rules! scenarios {
    ($($name:ident => $s:expr;)+) => {
        $(
            #[test]
            fn $name() {
                $s.check(stringify!($name));
            }
        )+
        /// Every scenario's name, for the coverage table in docs/security.md.
        pub const NAMES: &[&str] = &[$(stringify!($name)),+];
    };
}
pub(crate) use scenarios;

/// docs/security.md names only scenarios that exist, and every scenario
/// is named there.
#[test]
fn coverage_table_names_the_scenarios() {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/security.md"),
    )
    .unwrap();
    let named: std::collections::BTreeSet<&str> = doc
        .split("`scenario:")
        .skip(1)
        .filter_map(|s| s.split('`').next())
        .collect();
    let defined: std::collections::BTreeSet<&str> = table::NAMES.iter().copied().collect();
    let unknown: Vec<_> = named.difference(&defined).collect();
    let unnamed: Vec<_> = defined.difference(&named).collect();
    assert!(
        unknown.is_empty() && unnamed.is_empty(),
        "docs/security.md names unknown scenarios {unknown:?}; scenarios missing there: {unnamed:?}"
    );
}

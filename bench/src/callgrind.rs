//! The deterministic figure: user-space instructions the library adds to
//! one hooked call, counted by valgrind's callgrind (immune to machine
//! noise). Two run lengths per configuration cancel out the start-up
//! (loading, policy compilation), leaving the cost per call.

use crate::configs::{Config, Env};
use crate::fixtures::Fixtures;
use crate::run::{self, Error};
use serde::Serialize;
use std::fs;
use std::path::Path;

#[derive(Clone, Debug, Serialize)]
pub struct Count {
    pub workload: &'static str,
    pub config: Config,
    /// Instructions per iteration (hooked call plus its undo, user space).
    pub per_op: f64,
    /// `per_op` minus the no-library figure.
    pub added: f64,
}

/// `open` repeats one path (a per-thread cache of the library answers it);
/// `opencold` cycles through 64 paths (every decision made afresh);
/// `fopen` is the repeated open through `fopen` (the same cache, then a
/// stream on the descriptor).
pub const WORKLOADS: [&str; 4] = ["open", "opencold", "stat", "fopen"];

/// Where an unpacked valgrind that knows `openat2` is put by
/// scripts/lib/valgrind-openat2.sh (relative to the checkout).
pub const OPENAT2_VALGRIND: &str = "target/valgrind-openat2";

/// Whether the valgrind of `version` (`valgrind-3.24.0`) is known to
/// pass `openat2` through: 3.24 (Debian 13's, the one fetched) was checked
/// here; 3.19 (Debian 12's) answers `ENOSYS`.
pub fn knows_openat2(version: &str) -> bool {
    let mut parts = version.trim_start_matches("valgrind-").split('.');
    let major = parts.next().and_then(|p| p.parse::<u32>().ok());
    let minor = parts.next().and_then(|p| p.parse::<u32>().ok());
    matches!((major, minor), (Some(m), Some(n)) if (m, n) >= (3, 24))
}

/// The valgrind to count with: the unpacked newer one when it is there
/// (Debian 12's 3.19 answers `openat2` with `ENOSYS`, so under it every
/// checked open takes the library's fallback route and the figure is not
/// the one programs pay), else the one on `PATH`.
pub struct Valgrind {
    pub program: std::path::PathBuf,
    /// `VALGRIND_LIB` for the unpacked one.
    pub lib: Option<std::path::PathBuf>,
}

impl Valgrind {
    pub fn find() -> Result<Valgrind, Error> {
        let root = Path::new(OPENAT2_VALGRIND).join("usr");
        let program = root.join("bin/valgrind.bin");
        if program.is_file() {
            let root = std::fs::canonicalize(&root).map_err(|e| Error::io(&root, e))?;
            return Ok(Valgrind {
                program: root.join("bin/valgrind.bin"),
                lib: Some(root.join("libexec/valgrind")),
            });
        }
        Ok(Valgrind {
            program: crate::workloads::which("valgrind")?,
            lib: None,
        })
    }

    /// `valgrind args…` under `config`.
    fn command(&self, env: &Env, config: Config, args: &[&str]) -> std::process::Command {
        let mut cmd = env.command(config, &self.program, args);
        if let Some(lib) = &self.lib {
            cmd.env("VALGRIND_LIB", lib);
        }
        cmd
    }

    /// `valgrind --version`, for the results.
    pub fn version(&self) -> String {
        let mut cmd = std::process::Command::new(&self.program);
        if let Some(lib) = &self.lib {
            cmd.env("VALGRIND_LIB", lib);
        }
        cmd.arg("--version")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    }
}
const CONFIGS: [Config; 4] = [
    Config::None,
    Config::Disabled,
    Config::Permissive,
    Config::Enforce,
];

/// Instruction counts of the micro workloads under each configuration with the
/// library and without; `short` and `long` are the two run lengths.
pub fn measure(
    env: &Env,
    fx: &Fixtures,
    work: &Path,
    workloads: &[&'static str],
    short: u64,
    long: u64,
) -> Result<Vec<Count>, Error> {
    let mut out = Vec::new();
    for &w in workloads {
        let mut base = f64::NAN;
        for config in CONFIGS {
            let a = instructions(env, fx, work, w, config, short)?;
            let b = instructions(env, fx, work, w, config, long)?;
            // The micro program runs a warm-up chunk as long as the timed
            // one, so `n` iterations make 2n calls with one chunk.
            let per_op = (b - a) as f64 / (2 * (long - short)) as f64;
            if config == Config::None {
                base = per_op;
            }
            out.push(Count {
                workload: w,
                config,
                per_op,
                added: per_op - base,
            });
        }
    }
    Ok(out)
}

/// Instructions one run of `/bin/true` takes from `execve` to exit: the
/// library's start-up (loading, relocation, configuration, policy
/// compilation), which every exec of an instrumented program pays.
#[derive(Clone, Debug, Serialize)]
pub struct Startup {
    pub config: Config,
    pub instructions: u64,
    /// `instructions` minus the no-library figure.
    pub added: i64,
}

pub fn startup(env: &Env, work: &Path) -> Result<Vec<Startup>, Error> {
    let valgrind = Valgrind::find()?;
    let mut out: Vec<Startup> = Vec::new();
    // `empty` here too: the loader's share that no change to ldguard removes.
    let configs = [Config::None, Config::Empty]
        .into_iter()
        .chain(CONFIGS[1..].iter().copied());
    for config in configs {
        let out_file = work.join(format!("callgrind-true-{}.out", config.name()));
        let out_arg = format!("--callgrind-out-file={}", out_file.display());
        let mut cmd = valgrind.command(env, config, &["--tool=callgrind", &out_arg, "/bin/true"]);
        run::check(
            &mut cmd,
            &format!("callgrind of /bin/true under {}", config.name()),
        )?;
        let text = fs::read_to_string(&out_file).map_err(|e| Error::io(&out_file, e))?;
        let instructions = total(&text).ok_or_else(|| {
            Error(format!(
                "{}: no `summary:` or `totals:` line",
                out_file.display()
            ))
        })?;
        let base = out.first().map_or(instructions, |b| b.instructions);
        out.push(Startup {
            config,
            instructions,
            added: instructions as i64 - base as i64,
        });
    }
    Ok(out)
}

fn instructions(
    env: &Env,
    fx: &Fixtures,
    work: &Path,
    workload: &str,
    config: Config,
    iters: u64,
) -> Result<u64, Error> {
    let out_file = work.join(format!(
        "callgrind-{workload}-{}-{iters}.out",
        config.name()
    ));
    let out_arg = format!("--callgrind-out-file={}", out_file.display());
    let n = iters.to_string();
    let file = fx.file.to_string_lossy();
    let micro = fx.micro.to_string_lossy();
    let valgrind = Valgrind::find()?;
    let mut cmd = valgrind.command(
        env,
        config,
        &[
            "--tool=callgrind",
            // Only the main thread's own work: the library's background
            // threads (event writer, policy refresher) run at times that
            // vary from run to run, and start-up is not a per-call cost.
            "--toggle-collect=main",
            &out_arg,
            &micro,
            workload,
            &n,
            "1",
            &file,
        ],
    );
    run::check(
        &mut cmd,
        &format!("callgrind of {workload} under {}", config.name()),
    )?;
    let text = fs::read_to_string(&out_file).map_err(|e| Error::io(&out_file, e))?;
    total(&text).ok_or_else(|| {
        Error(format!(
            "{}: no `summary:` or `totals:` line (not a callgrind output?)",
            out_file.display()
        ))
    })
}

/// The total instruction count of a callgrind output file.
fn total(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
        })
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    #[test]
    fn openat2_is_known_from_3_24() {
        assert!(super::knows_openat2("valgrind-3.24.0"));
        assert!(super::knows_openat2("valgrind-4.0.1"));
        assert!(!super::knows_openat2("valgrind-3.19.0"));
        assert!(!super::knows_openat2(""));
    }

    #[test]
    fn total_reads_summary_or_totals() {
        assert_eq!(super::total("events: Ir\nsummary: 12345\n"), Some(12345));
        assert_eq!(super::total("events: Ir\ntotals: 99 1\n"), Some(99));
        assert_eq!(super::total("events: Ir\n"), None);
    }
}

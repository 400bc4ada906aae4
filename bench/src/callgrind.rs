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

pub const WORKLOADS: [&str; 2] = ["open", "stat"];
const CONFIGS: [Config; 4] = [
    Config::None,
    Config::Disabled,
    Config::Permissive,
    Config::Enforce,
];

/// Instruction counts for open and stat under each configuration with the
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
    let valgrind = crate::workloads::which("valgrind")?;
    let mut out: Vec<Startup> = Vec::new();
    for config in CONFIGS {
        let out_file = work.join(format!("callgrind-true-{}.out", config.name()));
        let out_arg = format!("--callgrind-out-file={}", out_file.display());
        let mut cmd = env.command(
            config,
            &valgrind,
            &["--tool=callgrind", &out_arg, "/bin/true"],
        );
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
    let valgrind = crate::workloads::which("valgrind")?;
    let mut cmd = env.command(
        config,
        &valgrind,
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
    fn total_reads_summary_or_totals() {
        assert_eq!(super::total("events: Ir\nsummary: 12345\n"), Some(12345));
        assert_eq!(super::total("events: Ir\ntotals: 99 1\n"), Some(99));
        assert_eq!(super::total("events: Ir\n"), None);
    }
}

//! `ldguard run --policy FILE [--events SINK] -- CMD...`: runs a command
//! with libldguard.so preloaded, to try a policy locally.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap::Args;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Policy file to enforce (validated before the command starts).
    #[arg(long, value_name = "FILE")]
    policy: PathBuf,
    /// Where events go: `stderr`, `file:/path` or `none`.
    #[arg(long, value_name = "SINK", default_value = "stderr")]
    events: String,
    /// Override the policy's mode: enforce, permissive or disabled.
    #[arg(long, value_name = "MODE")]
    mode: Option<String>,
    /// The library to preload (default: $LDGUARD_LIBRARY, then next to this
    /// binary, then the build's target/dist).
    #[arg(long, value_name = "PATH")]
    library: Option<PathBuf>,
    /// The command and its arguments.
    #[arg(required = true, last = true, value_name = "CMD")]
    command: Vec<OsString>,
}

pub fn run(args: RunArgs) -> ExitCode {
    match prepare(&args) {
        Ok(mut cmd) => {
            let err = cmd.exec();
            eprintln!("ldguard run: cannot run {:?}: {err}", args.command[0]);
            ExitCode::from(127)
        }
        Err(message) => {
            eprintln!("ldguard run: {message}");
            ExitCode::from(2)
        }
    }
}

fn prepare(args: &RunArgs) -> Result<Command, String> {
    let policy =
        std::path::absolute(&args.policy).map_err(|e| format!("{}: {e}", args.policy.display()))?;
    let text =
        std::fs::read_to_string(&policy).map_err(|e| format!("{}: {e}", policy.display()))?;
    if let Err(diags) = ldguard_policy::compile_str(&text, &policy.display().to_string()) {
        return Err(format!(
            "the policy is invalid; the command was not started\n{diags}"
        ));
    }
    if let Some(mode) = &args.mode {
        if ldguard_policy::Mode::parse(mode).is_none() {
            return Err(format!(
                "--mode {mode}: expected enforce, permissive or disabled"
            ));
        }
    }
    if let Err(e) = ldguard_events::SinkSpec::parse(&args.events) {
        return Err(format!("--events: {e}"));
    }
    let library = find_library(args.library.as_deref())?;
    warn_if_config_locks_env();

    let mut preload = OsString::from(&library);
    if let Some(existing) = std::env::var_os("LD_PRELOAD").filter(|v| !v.is_empty()) {
        preload.push(":");
        preload.push(existing);
    }
    let mut cmd = Command::new(&args.command[0]);
    cmd.args(&args.command[1..])
        .env("LD_PRELOAD", preload)
        .env("LDGUARD_POLICY", &policy)
        .env("LDGUARD_EVENTS", &args.events);
    match &args.mode {
        Some(mode) => cmd.env("LDGUARD_MODE", mode),
        None => cmd.env_remove("LDGUARD_MODE"),
    };
    Ok(cmd)
}

/// The directory name of this build's shipped library under target/dist.
fn dist_name() -> String {
    let libc = if cfg!(target_env = "musl") {
        "musl"
    } else {
        "gnu"
    };
    format!("{}-linux-{libc}", std::env::consts::ARCH)
}

fn find_library(explicit: Option<&Path>) -> Result<PathBuf, String> {
    let mut tried = Vec::new();
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = explicit {
        candidates.push(p.to_owned());
    } else if let Some(p) = std::env::var_os("LDGUARD_LIBRARY") {
        candidates.push(PathBuf::from(p));
    } else if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            candidates.push(dir.join("libldguard.so"));
            candidates.push(dir.join("../lib/ldguard/libldguard.so"));
            // target/<profile>/ldguard -> target/dist/<arch>-linux-<libc>/
            candidates.push(dir.join("../dist").join(dist_name()).join("libldguard.so"));
        }
    }
    for c in candidates {
        if c.is_file() {
            return std::path::absolute(&c).map_err(|e| format!("{}: {e}", c.display()));
        }
        tried.push(c.display().to_string());
    }
    Err(format!(
        "libldguard.so not found (tried {}); build it with scripts/build-lib, or pass --library or LDGUARD_LIBRARY",
        tried.join(", ")
    ))
}

fn warn_if_config_locks_env() {
    let Ok(text) = std::fs::read_to_string("/etc/ldguard/config.json") else {
        return;
    };
    let allows = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("allowEnvOverride").and_then(|b| b.as_bool()))
        .unwrap_or(false);
    if !allows {
        eprintln!(
            "ldguard run: warning: /etc/ldguard/config.json does not set \"allowEnvOverride\": true, \
             so the library ignores --policy, --events and --mode on this machine"
        );
    }
}

//! `ldguard run --policy FILE [--events SINK] -- CMD...`: runs a command
//! with libldguard.so preloaded, to try a policy locally. Exits with the
//! command's own status, or 125 (ldguard's error), 126 (cannot run), 127
//! (not found).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap::Args;
use ldguard_policy::Policy;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Policy file to enforce, JSON or YAML (validated before the command starts).
    #[arg(long, value_name = "FILE")]
    policy: PathBuf,
    /// Where events go: `stderr`, `file:/path` or `none`.
    #[arg(long, value_name = "SINK", default_value = "stderr")]
    events: String,
    /// Override the policy's mode: enforce, permissive or disabled.
    #[arg(long, value_name = "MODE")]
    mode: Option<String>,
    /// The library to preload [default: $LDGUARD_LIBRARY, then next to this
    /// binary, <exe dir>/../lib/ldguard/<arch>-linux-<libc>/, the build's
    /// target/dist, /usr/lib/ldguard/<arch>-linux-<libc>/].
    #[arg(long, value_name = "PATH")]
    library: Option<PathBuf>,
    /// The command and its arguments.
    #[arg(required = true, last = true, value_name = "CMD")]
    command: Vec<OsString>,
}

/// `ldguard run`'s own failures, kept apart from every code the command may
/// return itself, as `env`, `nohup` and podman do.
const EXIT_OWN_ERROR: u8 = 125;
/// The command was found but could not be run.
const EXIT_CANNOT_RUN: u8 = 126;
/// The command was not found.
const EXIT_NOT_FOUND: u8 = 127;

pub fn run(args: RunArgs) -> ExitCode {
    match prepare(&args) {
        Ok(mut cmd) => {
            let err = cmd.exec();
            eprintln!("ldguard run: cannot run {:?}: {err}", args.command[0]);
            match err.kind() {
                std::io::ErrorKind::NotFound => ExitCode::from(EXIT_NOT_FOUND),
                _ => ExitCode::from(EXIT_CANNOT_RUN),
            }
        }
        Err(message) => {
            eprintln!("ldguard run: {message}");
            ExitCode::from(EXIT_OWN_ERROR)
        }
    }
}

fn prepare(args: &RunArgs) -> Result<Command, String> {
    let policy =
        std::path::absolute(&args.policy).map_err(|e| format!("{}: {e}", args.policy.display()))?;
    let text =
        std::fs::read_to_string(&policy).map_err(|e| format!("{}: {e}", policy.display()))?;
    let origin = policy.display().to_string();
    let format = ldguard_policy::PolicyFormat::of_name(&origin);
    let table = match ldguard_policy::check_source(&text, &origin, format) {
        (Some(p), _) => ldguard_policy::compile_document(&p),
        (None, diags) => {
            return Err(format!(
                "the policy is invalid; the command was not started\n{diags}"
            ))
        }
    };
    // The library reads JSON: a YAML policy is handed over as JSON.
    let policy = crate::policy::json_for_library(&policy, &text)?;
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
    if let Some(program) = program_path(&args.command[0]) {
        warn_if_no_rule_names(table.policy(), &args.command[0], &program);
    }

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

/// The executable the library will see as `/proc/self/exe` for `command`:
/// found through PATH as execvp does, symlinks resolved. `None` when it is
/// not found (exec then reports that).
fn program_path(command: &OsStr) -> Option<PathBuf> {
    let candidates: Vec<PathBuf> = if command.as_bytes().contains(&b'/') {
        vec![PathBuf::from(command)]
    } else {
        let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
        std::env::split_paths(&path)
            .map(|dir| dir.join(command))
            .collect()
    };
    candidates.into_iter().find_map(|c| {
        let meta = std::fs::metadata(&c).ok()?;
        (meta.is_file() && meta.permissions().mode() & 0o111 != 0)
            .then(|| std::fs::canonicalize(&c).ok())
            .flatten()
    })
}

/// A policy whose rules all name other programs decides nothing for this
/// one beyond its defaults, silently: say so before the run.
fn warn_if_no_rule_names(policy: &Policy, command: &OsStr, program: &Path) {
    let scoped: Vec<_> = policy
        .rules
        .iter()
        .filter(|r| r.enabled)
        .filter_map(|r| r.program.as_ref())
        .collect();
    if scoped.is_empty() {
        return;
    }
    let exe = program.as_os_str().as_bytes();
    if scoped
        .iter()
        .any(|globs| globs.iter().any(|g| g.is_match(exe)))
    {
        return;
    }
    let mut named: Vec<&str> = scoped
        .iter()
        .flat_map(|g| g.iter().map(|g| g.as_str()))
        .collect();
    named.sort_unstable();
    named.dedup();
    let unscoped = policy
        .rules
        .iter()
        .filter(|r| r.enabled && r.program.is_none())
        .count();
    eprintln!(
        "ldguard run: warning: no rule of policy {:?} names {} ({} resolved through PATH and symlinks, \
         as the library sees it); only its {unscoped} rule(s) without \"program\" and its defaults apply. \
         Its rules name: {}",
        policy.name,
        program.display(),
        Path::new(command).display(),
        named.join(", ")
    );
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
            // Installed: the layout ldguard-layer reads too.
            candidates.push(
                dir.join("../lib/ldguard")
                    .join(dist_name())
                    .join("libldguard.so"),
            );
            // target/<profile>/ldguard -> target/dist/<arch>-linux-<libc>/
            candidates.push(dir.join("../dist").join(dist_name()).join("libldguard.so"));
        }
        candidates.push(
            Path::new("/usr/lib/ldguard")
                .join(dist_name())
                .join("libldguard.so"),
        );
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

//! Running child processes, with errors that say what was being done.

use std::fmt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Error(pub String);

impl Error {
    pub fn io(path: &Path, e: std::io::Error) -> Error {
        Error(format!("{}: {e}", path.display()))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

fn failed(cmd: &Command, what: &str, out: &Output) -> Error {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Error(format!(
        "{what}: `{}` failed ({}){}{}",
        describe(cmd),
        out.status,
        if tail.is_empty() { "" } else { ":\n  " },
        tail.join("\n  ")
    ))
}

/// Runs `cmd` to completion; an error names `what` and shows stderr.
pub fn check(cmd: &mut Command, what: &str) -> Result<Output, Error> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error(format!("{what}: cannot run `{}`: {e}", describe(cmd))))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(failed(cmd, what, &out))
    }
}

/// Wall time of `cmd` from spawn to exit, output discarded (stderr kept
/// for the error message).
pub fn timed(cmd: &mut Command, what: &str) -> Result<Duration, Error> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let child = cmd
        .spawn()
        .map_err(|e| Error(format!("{what}: cannot run `{}`: {e}", describe(cmd))))?;
    let out = child
        .wait_with_output()
        .map_err(|e| Error(format!("{what}: waiting for `{}`: {e}", describe(cmd))))?;
    let elapsed = start.elapsed();
    if out.status.success() {
        Ok(elapsed)
    } else {
        Err(failed(cmd, what, &out))
    }
}

/// The trimmed stdout of a successful `cmd`.
pub fn stdout(cmd: &mut Command, what: &str) -> Result<String, Error> {
    let out = check(cmd, what)?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

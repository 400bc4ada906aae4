//! Where and under what load the figures were taken.

use serde::Serialize;
use std::fs;
use std::path::Path;
use std::process::Command;

#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cpus: usize,
    pub kernel: String,
    pub os: String,
    pub glibc: String,
    /// 1, 5 and 15 minute load averages.
    pub load_start: String,
    pub load_end: String,
    pub started: String,
    pub finished: String,
}

impl Machine {
    pub fn probe() -> Machine {
        let now = date();
        Machine {
            cpu: fs::read_to_string("/proc/cpuinfo")
                .ok()
                .and_then(|t| {
                    t.lines()
                        .find_map(|l| l.strip_prefix("model name"))
                        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
                })
                .unwrap_or_default(),
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            kernel: out("uname", &["-r"]),
            os: fs::read_to_string("/etc/os-release")
                .ok()
                .and_then(|t| {
                    t.lines()
                        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                        .map(|v| v.trim_matches('"').to_owned())
                })
                .unwrap_or_default(),
            glibc: out("ldd", &["--version"])
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned(),
            load_start: load(),
            load_end: String::new(),
            started: now.clone(),
            finished: now,
        }
    }

    pub fn finish(&mut self) {
        self.load_end = load();
        self.finished = date();
    }
}

fn out(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

pub fn load() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|t| t.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn date() -> String {
    out("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"])
}

/// The commit the library was built from, with `-dirty` for local edits.
pub fn commit(repo: &Path) -> String {
    let head = out(
        "git",
        &[
            "-C",
            &repo.to_string_lossy(),
            "rev-parse",
            "--short=12",
            "HEAD",
        ],
    );
    let dirty = !out(
        "git",
        &[
            "-C",
            &repo.to_string_lossy(),
            "status",
            "--porcelain",
            "--",
            "crates/preload",
            "crates/policy",
        ],
    )
    .is_empty();
    if dirty {
        format!("{head}-dirty")
    } else {
        head
    }
}

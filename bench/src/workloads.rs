//! The workloads and how one run of each under one configuration is timed.

use crate::configs::{Config, Env};
use crate::fixtures::Fixtures;
use crate::run::{self, Error};
use serde::Serialize;
use std::fs;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Unit {
    /// Nanoseconds per iteration (lower is better).
    #[serde(rename = "ns/op")]
    NsPerOp,
    /// Wall-clock milliseconds per run (lower is better).
    #[serde(rename = "ms")]
    Ms,
    /// Requests per second (higher is better).
    #[serde(rename = "req/s")]
    Rps,
}

impl Unit {
    pub fn label(self) -> &'static str {
        match self {
            Unit::NsPerOp => "ns/op",
            Unit::Ms => "ms",
            Unit::Rps => "req/s",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Job {
    /// A workload of the micro program, by its name there.
    Micro(&'static str),
    Tar,
    Python,
    Git,
    Nginx,
}

#[derive(Clone, Copy, Debug)]
pub struct Workload {
    pub id: &'static str,
    pub title: &'static str,
    pub unit: Unit,
    /// Hooked calls per iteration of a micro workload (`None`: macro).
    pub hooked_per_op: Option<u32>,
    job: Job,
}

pub const ALL: [Workload; 10] = [
    micro("open", "open+close", 1),
    micro("stat", "stat", 1),
    micro("fopen", "fopen+fclose", 1),
    micro("udp", "UDP connect (loopback)", 1),
    micro("exec", "fork+exec+wait /bin/true", 1),
    micro("spawn", "posix_spawn+wait /bin/true", 1),
    Workload {
        id: "tar",
        title: "tar x (small files)",
        unit: Unit::Ms,
        hooked_per_op: None,
        job: Job::Tar,
    },
    Workload {
        id: "python",
        title: "python3 -c 'import …'",
        unit: Unit::Ms,
        hooked_per_op: None,
        job: Job::Python,
    },
    Workload {
        id: "git",
        title: "git status",
        unit: Unit::Ms,
        hooked_per_op: None,
        job: Job::Git,
    },
    Workload {
        id: "nginx",
        title: "nginx + wrk (loopback)",
        unit: Unit::Rps,
        hooked_per_op: None,
        job: Job::Nginx,
    },
];

const fn micro(id: &'static str, title: &'static str, hooked: u32) -> Workload {
    Workload {
        id,
        title,
        unit: Unit::NsPerOp,
        hooked_per_op: Some(hooked),
        job: Job::Micro(id),
    }
}

/// Modules of the python workload: a typical service's start-up imports.
pub const PY_MODULES: &str = "json, re, decimal, datetime, collections, argparse, logging, \
     pathlib, subprocess, tempfile, shutil, csv, sqlite3, zipfile, email.mime.text, \
     http.client, urllib.request, xml.etree.ElementTree, asyncio, unittest";

/// How big each run is.
#[derive(Clone, Debug, Serialize)]
pub struct Scale {
    /// Repetitions of each macro workload per configuration.
    pub reps: usize,
    /// Repetitions of each short workload per configuration (the micro
    /// loops, python and git, tens of milliseconds a run): one run of them
    /// is easily slowed by a neighbour, and more of them buy a steadier
    /// median for little time.
    pub short_reps: usize,
    /// Iterations of the cheap micro workloads (open, stat, fopen, udp).
    pub syscall_iters: u64,
    /// Iterations of exec and spawn.
    pub process_iters: u64,
    /// Timed chunks a micro run is split into (its median chunk counts).
    pub chunks: u64,
    /// ptrace makes each call ~100x dearer: strace runs this many times
    /// fewer iterations (per-iteration figures stay comparable).
    pub strace_divisor: u64,
    pub tar_files: usize,
    pub repo_files: usize,
    pub wrk_seconds: u64,
    pub wrk_connections: u32,
    pub port: u16,
    /// The CPU of nginx's worker and the CPU of wrk, on a machine with two
    /// or more.
    pub nginx_cpu: Option<usize>,
    pub wrk_cpu: Option<usize>,
}

pub struct Ctx<'a> {
    pub env: &'a Env,
    pub fx: &'a Fixtures,
    pub scale: &'a Scale,
    /// Where tar extracts: a tmpfs when there is one, so the figure is the
    /// library's cost and not the shared disk's queue (on a disk the
    /// ratio would only be smaller).
    pub scratch: &'a Path,
    pub python: PathBuf,
}

impl Workload {
    /// Runs short enough to repeat [`Scale::short_reps`] times.
    pub fn is_short(&self) -> bool {
        matches!(self.job, Job::Micro(_) | Job::Python | Job::Git)
    }

    /// One timed run under `config`, in the workload's unit.
    pub fn run(&self, ctx: &Ctx, config: Config) -> Result<f64, Error> {
        match self.job {
            Job::Micro(name) => run_micro(ctx, config, name),
            Job::Tar => {
                let dest = ctx.scratch.join(format!("untar-{}", config.name()));
                let _ = fs::remove_dir_all(&dest);
                fs::create_dir_all(&dest).map_err(|e| Error::io(&dest, e))?;
                let tar = ctx.fx.tar.to_string_lossy();
                let dest_s = dest.to_string_lossy();
                let mut cmd =
                    ctx.env
                        .command(config, Path::new("/bin/tar"), &["xf", &tar, "-C", &dest_s]);
                let t = run::timed(&mut cmd, "tar workload");
                let _ = fs::remove_dir_all(&dest);
                Ok(ms(t?))
            }
            Job::Python => {
                let code = format!("import {PY_MODULES}");
                let mut cmd = ctx.env.command(config, &ctx.python, &["-c", &code]);
                Ok(ms(run::timed(&mut cmd, "python workload")?))
            }
            Job::Git => {
                let repo = ctx.fx.repo.to_string_lossy();
                let git = which("git")?;
                let mut cmd =
                    ctx.env
                        .command(config, &git, &["-C", &repo, "status", "--porcelain"]);
                Ok(ms(run::timed(&mut cmd, "git workload")?))
            }
            Job::Nginx => run_nginx(ctx, config),
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The iterations a micro workload runs under `config`.
pub fn micro_iters(scale: &Scale, name: &str, config: Config) -> u64 {
    let base = match name {
        "exec" | "spawn" => scale.process_iters,
        _ => scale.syscall_iters,
    };
    let n = if config == Config::Strace {
        base / scale.strace_divisor
    } else {
        base
    };
    n.max(scale.chunks)
}

fn run_micro(ctx: &Ctx, config: Config, name: &str) -> Result<f64, Error> {
    let iters = micro_iters(ctx.scale, name, config).to_string();
    let chunks = ctx.scale.chunks.to_string();
    let file = ctx.fx.file.to_string_lossy();
    let mut cmd = ctx
        .env
        .command(config, &ctx.fx.micro, &[name, &iters, &chunks, &file]);
    let what = format!("micro workload {name} under {}", config.name());
    let out = run::stdout(&mut cmd, &what)?;
    out.parse::<f64>()
        .map_err(|_| Error(format!("{what}: expected ns per iteration, got {out:?}")))
}

pub fn which(name: &str) -> Result<PathBuf, Error> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| Error(format!("{name} is not installed (run scripts/setup)")))
}

/// The interpreter the python workload runs: the system one, not a shim
/// (a pyenv shim is a shell script that execs several programs first).
pub fn python() -> Result<PathBuf, Error> {
    let system = Path::new("/usr/bin/python3");
    if system.is_file() {
        Ok(system.to_path_buf())
    } else {
        which("python3")
    }
}

fn run_nginx(ctx: &Ctx, config: Config) -> Result<f64, Error> {
    let prefix = &ctx.fx.nginx_prefix;
    let pid_file = prefix.join("nginx.pid");
    let _ = fs::remove_file(&pid_file);
    let nginx = Path::new("/usr/sbin/nginx");
    let p = prefix.to_string_lossy();
    let c = ctx.fx.nginx_conf.to_string_lossy();
    let err = format!("{p}/error.log");
    let mut cmd = ctx
        .env
        .command(config, nginx, &["-p", &p, "-c", &c, "-e", &err]);
    let log = prefix.join(format!("stderr-{}.log", config.name()));
    let log_file = fs::File::create(&log).map_err(|e| Error::io(&log, e))?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file);
    let child = cmd
        .spawn()
        .map_err(|e| Error(format!("nginx under {}: cannot start: {e}", config.name())))?;
    let mut server = Server {
        child,
        pid_file,
        log,
    };
    server.wait_ready(ctx.scale.port, config)?;
    let url = format!("http://127.0.0.1:{}/index.html", ctx.scale.port);
    let mut wrk = match ctx.scale.wrk_cpu {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.args(["-c", &cpu.to_string(), "wrk"]);
            c
        }
        None => Command::new("wrk"),
    };
    let out = run::stdout(
        wrk.arg("-t1")
            .arg(format!("-c{}", ctx.scale.wrk_connections))
            .arg(format!("-d{}s", ctx.scale.wrk_seconds))
            .arg(&url),
        "wrk against nginx",
    )?;
    server.stop()?;
    parse_wrk(&out, config)
}

fn parse_wrk(out: &str, config: Config) -> Result<f64, Error> {
    let errors = out
        .lines()
        .any(|l| l.contains("Non-2xx") || l.contains("Socket errors"));
    if errors {
        return Err(Error(format!(
            "wrk saw failed requests under {}:\n{out}",
            config.name()
        )));
    }
    out.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| Error(format!("no Requests/sec in wrk output:\n{out}")))
}

/// A running nginx; stopped (and reaped) when dropped.
struct Server {
    child: Child,
    pid_file: PathBuf,
    log: PathBuf,
}

impl Server {
    fn wait_ready(&mut self, port: u16, config: Config) -> Result<(), Error> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if self.pid_file.exists() && TcpStream::connect(addr).is_ok() {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let mut log = String::new();
                let _ = fs::File::open(&self.log).and_then(|mut f| f.read_to_string(&mut log));
                return Err(Error(format!(
                    "nginx under {} exited ({status}) before serving on port {port}:\n{log}",
                    config.name()
                )));
            }
            if Instant::now() > deadline {
                return Err(Error(format!(
                    "nginx under {} did not serve on port {port} within 20 s",
                    config.name()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn master_pid(&self) -> Option<String> {
        let pid = fs::read_to_string(&self.pid_file).ok()?;
        let pid = pid.trim();
        (!pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit())).then(|| pid.to_owned())
    }

    fn stop(&mut self) -> Result<(), Error> {
        // Signal nginx's master itself: under strace the child we hold is
        // the tracer, which would detach and leave nginx running.
        if let Some(pid) = self.master_pid() {
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(Error("nginx did not stop within 15 s of SIGTERM".into()))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            if let Some(pid) = self.master_pid() {
                let _ = Command::new("kill").args(["-KILL", &pid]).status();
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_output_is_parsed_and_errors_refused() {
        let ok = "Running 3s test\n  1 threads and 16 connections\n\
                  Requests/sec:  23456.78\nTransfer/sec:      5.00MB\n";
        assert_eq!(parse_wrk(ok, Config::None).unwrap(), 23456.78);
        let bad = "  Non-2xx or 3xx responses: 12\nRequests/sec:  100.0\n";
        assert!(parse_wrk(bad, Config::None).is_err());
        assert!(parse_wrk("nothing", Config::None).is_err());
    }

    #[test]
    fn strace_runs_fewer_micro_iterations() {
        let scale = Scale {
            reps: 1,
            short_reps: 1,
            syscall_iters: 20_000,
            process_iters: 200,
            chunks: 10,
            strace_divisor: 20,
            tar_files: 1,
            repo_files: 1,
            wrk_seconds: 1,
            wrk_connections: 1,
            port: 1,
            nginx_cpu: None,
            wrk_cpu: None,
        };
        assert_eq!(micro_iters(&scale, "open", Config::Enforce), 20_000);
        assert_eq!(micro_iters(&scale, "open", Config::Strace), 1_000);
        assert_eq!(micro_iters(&scale, "exec", Config::Strace), 10);
    }
}

//! ldguard-bench: the overhead of libldguard.so, measured side by side.
//!
//! Every workload runs under each configuration (no library, disabled,
//! permissive, enforce, strace) in round-robin order, repetition after
//! repetition, so a burst of load from another tenant hits all of them
//! alike; figures are medians. See BENCHMARKS.md for what each one means.

mod callgrind;
mod configs;
mod fixtures;
mod machine;
mod report;
mod run;
mod stats;
mod workloads;

use configs::{Config, Env};
use run::Error;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;
use workloads::{Ctx, Scale, Workload};

const USAGE: &str = "usage: ldguard-bench --lib LIB [--policy FILE] [--work DIR] [--json FILE]
                     [--smoke] [--reps N] [--only ID,ID…] [--no-callgrind] [--callgrind-only]

  --lib FILE       the libldguard.so to measure (scripts/bench builds it)
  --policy FILE    policy for permissive/enforce (default policies/bench-100.json)
  --work DIR       fixtures and scratch (default target/bench)
  --json FILE      where the results go (default WORK/results.json)
  --smoke          tiny sizes: checks the harness works, figures meaningless
  --reps N         repetitions per configuration (default 5; micro, python and git
                   3x that; smoke 1)
  --only IDS       workloads to run: open,stat,fopen,udp,exec,spawn,tar,python,git,nginx
  --no-callgrind   skip the instruction counts
  --callgrind-only only the instruction counts (deterministic: fine on a busy machine)";

struct Args {
    lib: PathBuf,
    policy: PathBuf,
    work: PathBuf,
    json: Option<PathBuf>,
    smoke: bool,
    reps: Option<usize>,
    only: Option<Vec<String>>,
    callgrind: bool,
}

fn parse_args() -> Result<Args, Error> {
    let mut a = Args {
        lib: PathBuf::new(),
        policy: PathBuf::from("policies/bench-100.json"),
        work: PathBuf::from("target/bench"),
        json: None,
        smoke: false,
        reps: None,
        only: None,
        callgrind: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .ok_or_else(|| Error(format!("{name} needs a value\n{USAGE}")))
        };
        match arg.as_str() {
            "--lib" => a.lib = value("--lib")?.into(),
            "--policy" => a.policy = value("--policy")?.into(),
            "--work" => a.work = value("--work")?.into(),
            "--json" => a.json = Some(value("--json")?.into()),
            "--smoke" => a.smoke = true,
            "--reps" => {
                let v = value("--reps")?;
                a.reps = Some(
                    v.parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| Error(format!("--reps {v}: expected a positive number")))?,
                );
            }
            "--only" => {
                let v = value("--only")?;
                let ids: Vec<String> = v.split(',').map(str::to_owned).collect();
                if let Some(bad) = ids
                    .iter()
                    .find(|id| !workloads::ALL.iter().any(|w| w.id == id.as_str()))
                {
                    return Err(Error(format!("--only: unknown workload {bad:?}\n{USAGE}")));
                }
                a.only = Some(ids);
            }
            "--no-callgrind" => a.callgrind = false,
            "--callgrind-only" => {
                a.callgrind = true;
                a.only = Some(Vec::new());
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(Error(format!("unknown argument {other:?}\n{USAGE}"))),
        }
    }
    if a.lib.as_os_str().is_empty() {
        return Err(Error(format!("--lib is required\n{USAGE}")));
    }
    Ok(a)
}

fn absolute(p: &Path) -> Result<PathBuf, Error> {
    std::fs::canonicalize(p).map_err(|e| Error::io(p, e))
}

#[derive(Serialize)]
struct Results<'a> {
    command: String,
    machine: &'a machine::Machine,
    library: String,
    library_bytes: u64,
    commit: String,
    policy: String,
    scale: &'a Scale,
    python_modules: &'static str,
    workloads: &'a [report::Row],
    callgrind: &'a [callgrind::Count],
    /// The valgrind that counted (`--version`); before 3.2x it answers
    /// `openat2` with `ENOSYS` and the open figures are the fallback's.
    valgrind: String,
    /// Instructions of one `/bin/true` run per configuration (start-up).
    startup_instructions: &'a [callgrind::Startup],
    goals: &'a [report::Goal],
    /// Events the library wrote per configuration: (all, denials).
    events: BTreeMap<&'static str, (usize, usize)>,
}

fn main() {
    match real_main() {
        Ok(()) => {}
        Err(e) => {
            eprintln!("ldguard-bench: {e}");
            std::process::exit(1);
        }
    }
}

fn real_main() -> Result<(), Error> {
    let args = parse_args()?;
    let (nginx_cpu, wrk_cpu) = match std::thread::available_parallelism() {
        // One CPU for the server and its load (fixtures.rs says why), the
        // other left to the harness and the library's own threads.
        Ok(n) if n.get() >= 2 => (Some(1), Some(1)),
        _ => (None, None),
    };
    let scale = if args.smoke {
        Scale {
            reps: args.reps.unwrap_or(1),
            short_reps: args.reps.unwrap_or(1),
            syscall_iters: 200,
            process_iters: 4,
            chunks: 2,
            strace_divisor: 10,
            tar_files: 200,
            repo_files: 100,
            wrk_seconds: 1,
            wrk_connections: 4,
            port: 8080,
            nginx_cpu,
            wrk_cpu,
        }
    } else {
        Scale {
            reps: args.reps.unwrap_or(5),
            short_reps: args.reps.map_or(15, |r| r * 3),
            syscall_iters: 20_000,
            process_iters: 200,
            chunks: 10,
            strace_divisor: 20,
            tar_files: 10_000,
            repo_files: 5_000,
            wrk_seconds: 3,
            wrk_connections: 16,
            port: 8080,
            nginx_cpu,
            wrk_cpu,
        }
    };
    let lib = absolute(&args.lib)?;
    let policy = absolute(&args.policy).map_err(|e| {
        Error(format!(
            "{e} (the 100-rule policy of the enforce and permissive runs; pass --policy)"
        ))
    })?;
    std::fs::create_dir_all(&args.work).map_err(|e| Error::io(&args.work, e))?;
    let work = absolute(&args.work)?;
    let selected: Vec<Workload> = workloads::ALL
        .iter()
        .filter(|w| {
            args.only
                .as_ref()
                .is_none_or(|ids| ids.iter().any(|id| id == w.id))
        })
        .copied()
        .collect();
    if selected.iter().any(|w| w.id == "nginx") {
        let addr = SocketAddr::from(([127, 0, 0, 1], scale.port));
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Err(Error(format!(
                "port {} is in use: the benchmark policy lets nginx listen only there; \
                 stop whatever serves it or run with --only to skip nginx",
                scale.port
            )));
        }
        for tool in ["wrk", "nginx"] {
            if workloads::which(tool).is_err() && !Path::new("/usr/sbin/nginx").exists() {
                return Err(Error(format!(
                    "{tool} is not installed (run scripts/setup)"
                )));
            }
        }
    }
    workloads::which("strace")?;

    let mut machine = machine::Machine::probe();
    eprintln!(
        "ldguard-bench: {} reps, load {}; preparing fixtures in {}",
        scale.reps,
        machine.load_start,
        work.display()
    );
    let fx = fixtures::prepare(
        &work,
        scale.tar_files,
        scale.repo_files,
        scale.port,
        scale.nginx_cpu,
    )?;
    let env = Env {
        library: lib.clone(),
        empty_library: fx.empty_library.clone(),
        policy: policy.clone(),
        events_dir: work.clone(),
        home: work.join("home"),
    };
    std::fs::create_dir_all(&env.home).map_err(|e| Error::io(&env.home, e))?;
    for c in Config::ALL {
        let _ = std::fs::remove_file(env.events_file(c));
    }
    let scratch = Scratch(scratch_dir(&work)?);
    let ctx = Ctx {
        env: &env,
        fx: &fx,
        scale: &scale,
        scratch: &scratch.0,
        python: workloads::python()?,
    };

    let mut rows = Vec::new();
    for w in &selected {
        // One untimed run per configuration first: page cache, lazily
        // compiled bytecode, the git index.
        for c in Config::ALL {
            w.run(&ctx, c)?;
        }
        let mut samples: BTreeMap<Config, Vec<f64>> = BTreeMap::new();
        let reps = if w.is_short() {
            scale.short_reps
        } else {
            scale.reps
        };
        for rep in 0..reps {
            // Rotate the order so no configuration always runs first.
            for i in 0..Config::ALL.len() {
                let c = Config::ALL[(i + rep) % Config::ALL.len()];
                samples.entry(c).or_default().push(w.run(&ctx, c)?);
            }
        }
        let row = report::Row::new(w, &samples);
        eprintln!(
            "ldguard-bench: {:<28} none {:.1} {}, enforce {:.3}x",
            w.title,
            row.cell(Config::None).map_or(f64::NAN, |c| c.median),
            w.unit.label(),
            row.cell(Config::Enforce).map_or(f64::NAN, |c| c.ratio),
        );
        rows.push(row);
    }

    let valgrind = if args.callgrind {
        callgrind::Valgrind::find()?.version()
    } else {
        String::new()
    };
    if args.callgrind && !callgrind::knows_openat2(&valgrind) {
        eprintln!(
            "ldguard-bench: warning: {valgrind} may answer openat2 with ENOSYS (Debian 12's 3.19 \
             does): the per-call counts are then of the library's fallback route, not the one \
             programs take; scripts/bench without --no-setup fetches valgrind 3.24 into {}",
            callgrind::OPENAT2_VALGRIND
        );
    }
    let (counts, startup) = if args.callgrind {
        eprintln!("ldguard-bench: counting instructions with callgrind ({valgrind})");
        let (short, long) = if args.smoke { (20, 40) } else { (1_000, 3_000) };
        let which: &[&str] = if args.smoke {
            &callgrind::WORKLOADS[..1]
        } else {
            &callgrind::WORKLOADS
        };
        (
            callgrind::measure(&env, &fx, &work, which, short, long)?,
            callgrind::startup(&env, &work)?,
        )
    } else {
        (Vec::new(), Vec::new())
    };
    machine.finish();
    let goals = report::goals(&rows);
    let events = Config::ALL
        .iter()
        .filter(|c| c.uses_library())
        .map(|c| (c.name(), count_events(&env.events_file(*c))))
        .collect();
    let json_path = args.json.unwrap_or_else(|| work.join("results.json"));
    let results = Results {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        machine: &machine,
        library_bytes: std::fs::metadata(&lib).map_or(0, |m| m.len()),
        library: lib.display().to_string(),
        commit: machine::commit(Path::new(".")),
        policy: policy.display().to_string(),
        scale: &scale,
        python_modules: workloads::PY_MODULES,
        workloads: &rows,
        callgrind: &counts,
        valgrind: valgrind.clone(),
        startup_instructions: &startup,
        goals: &goals,
        events,
    };
    let json = serde_json::to_string_pretty(&results)
        .map_err(|e| Error(format!("serialising results: {e}")))?;
    std::fs::write(&json_path, json + "\n").map_err(|e| Error::io(&json_path, e))?;
    println!("{}", report::table(&rows, &counts, &goals));
    if !startup.is_empty() {
        let parts: Vec<String> = startup
            .iter()
            .map(|s| {
                if s.config == Config::None {
                    format!("none {}", s.instructions)
                } else {
                    format!("{} {:+}", s.config.name(), s.added)
                }
            })
            .collect();
        println!(
            "start-up (callgrind instructions of one /bin/true): {}",
            parts.join(", ")
        );
    }
    println!(
        "machine: {} ({} CPUs), {}, kernel {}; load {} → {}",
        machine.cpu, machine.cpus, machine.os, machine.kernel, machine.load_start, machine.load_end
    );
    for (c, (all, denied)) in &results.events {
        if *denied > 0 {
            println!(
                "note: {c} wrote {all} events, {denied} denials: a workload was refused something"
            );
        }
    }
    println!("results: {}", json_path.display());
    Ok(())
}

/// Removes the scratch directory however the run ends.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A private directory on tmpfs (`/dev/shm`) when there is one, else in
/// the work directory.
fn scratch_dir(work: &Path) -> Result<PathBuf, Error> {
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        shm.join(format!("ldguard-bench-{}", std::process::id()))
    } else {
        work.join("scratch")
    };
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    Ok(dir)
}

/// Lines and denials in an event file (absent: none written).
fn count_events(path: &Path) -> (usize, usize) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return (0, 0);
    };
    let mut all = 0;
    let mut denied = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        all += 1;
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
        if matches!(v["action"].as_str(), Some("deny" | "kill")) && v["enforced"] == true {
            denied += 1;
        }
    }
    (all, denied)
}

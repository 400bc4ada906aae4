//! Everything the workloads read, made once per run in the work directory:
//! the compiled micro program, a file to open, a tar of many small files, a
//! git repository, and an nginx document root and configuration.

use crate::run::{check, Error};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const MICRO_C: &str = include_str!("../c/micro.c");

pub struct Fixtures {
    pub micro: PathBuf,
    /// A shared object with no code: the `empty` configuration preloads it.
    pub empty_library: PathBuf,
    /// An existing regular file, absolute.
    pub file: PathBuf,
    pub tar: PathBuf,
    pub repo: PathBuf,
    pub nginx_conf: PathBuf,
    pub nginx_prefix: PathBuf,
}

/// Builds the fixtures under `work` for `files` tar members and
/// `repo_files` tracked files, serving on `port` (nginx's worker on
/// `nginx_cpu` when given).
pub fn prepare(
    work: &Path,
    files: usize,
    repo_files: usize,
    port: u16,
    nginx_cpu: Option<usize>,
) -> Result<Fixtures, Error> {
    fs::create_dir_all(work).map_err(|e| Error::io(work, e))?;
    let micro = work.join("micro");
    let src = work.join("micro.c");
    write(&src, MICRO_C.as_bytes())?;
    check(
        Command::new("cc")
            .args(["-O2", "-Wall", "-o"])
            .arg(&micro)
            .arg(&src),
        "compiling the micro workloads (is build-essential installed? scripts/setup)",
    )?;
    let empty_library = work.join("empty.so");
    let empty_src = work.join("empty.c");
    write(
        &empty_src,
        b"/* preloaded to measure the loader's work alone */\n",
    )?;
    check(
        Command::new("cc")
            .args(["-shared", "-fPIC", "-O2", "-o"])
            .arg(&empty_library)
            .arg(&empty_src),
        "compiling the empty library (is build-essential installed? scripts/setup)",
    )?;
    let file = work.join("data.txt");
    write(&file, &text(1, 512))?;
    // For the micro program's `opencold`.
    for i in 0..64 {
        write(&work.join(format!("data.txt.{i}")), &text(2 + i, 64))?;
    }
    let tar = make_tar(work, files)?;
    let repo = make_repo(work, repo_files)?;
    let (nginx_conf, nginx_prefix) = make_nginx(work, port, nginx_cpu)?;
    Ok(Fixtures {
        micro,
        empty_library,
        file,
        tar,
        repo,
        nginx_conf,
        nginx_prefix,
    })
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    fs::write(path, bytes).map_err(|e| Error::io(path, e))
}

/// Deterministic printable filler of `len` bytes, different per `seed`, so
/// files are not all identical (git would store them once).
fn text(seed: usize, len: usize) -> Vec<u8> {
    let mut x = (seed as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if i % 64 == 63 {
                b'\n'
            } else {
                b'a' + (x % 26) as u8
            }
        })
        .collect()
}

/// `count` files of 100–1,100 bytes in directories of 100.
fn populate(root: &Path, count: usize) -> Result<(), Error> {
    for i in 0..count {
        let dir = root.join(format!("d{:03}", i / 100));
        if i % 100 == 0 {
            fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        write(
            &dir.join(format!("f{i:05}.txt")),
            &text(i, 100 + (i * 37) % 1000),
        )?;
    }
    Ok(())
}

fn make_tar(work: &Path, files: usize) -> Result<PathBuf, Error> {
    let tar = work.join(format!("files-{files}.tar"));
    if tar.exists() {
        return Ok(tar);
    }
    let src = work.join("tar-src");
    let _ = fs::remove_dir_all(&src);
    populate(&src, files)?;
    let tmp = tar.with_extension("tmp");
    check(
        Command::new("tar")
            .arg("cf")
            .arg(&tmp)
            .arg("-C")
            .arg(&src)
            .arg("."),
        "creating the tar fixture",
    )?;
    fs::rename(&tmp, &tar).map_err(|e| Error::io(&tar, e))?;
    fs::remove_dir_all(&src).map_err(|e| Error::io(&src, e))?;
    Ok(tar)
}

fn make_repo(work: &Path, files: usize) -> Result<PathBuf, Error> {
    let repo = work.join(format!("repo-{files}"));
    if repo.join(".git/bench-ready").exists() {
        return Ok(repo);
    }
    let _ = fs::remove_dir_all(&repo);
    populate(&repo, files)?;
    let git = |args: &[&str]| {
        let mut c = Command::new("git");
        c.arg("-C")
            .arg(&repo)
            .args(["-c", "user.name=bench", "-c", "user.email=bench@localhost"])
            .args(args);
        c
    };
    check(
        &mut git(&["init", "-q"]),
        "git init of the fixture repository",
    )?;
    check(
        &mut git(&["add", "-A"]),
        "git add in the fixture repository",
    )?;
    check(
        &mut git(&["commit", "-q", "-m", "fixture"]),
        "git commit in the fixture repository",
    )?;
    // Something for `git status` to report: modified and untracked files.
    for i in 0..10.min(files) {
        let f = repo.join(format!("d{:03}/f{i:05}.txt", i / 100));
        write(&f, b"changed\n")?;
    }
    for i in 0..5 {
        write(&repo.join(format!("untracked-{i}.txt")), b"new\n")?;
    }
    write(&repo.join(".git/bench-ready"), b"")?;
    Ok(repo)
}

fn make_nginx(work: &Path, port: u16, cpu: Option<usize>) -> Result<(PathBuf, PathBuf), Error> {
    let prefix = work.join("nginx");
    let www = prefix.join("www");
    let tmp = prefix.join("tmp");
    fs::create_dir_all(&www).map_err(|e| Error::io(&www, e))?;
    fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    write(&www.join("index.html"), &text(7, 612))?;
    let p = prefix.display();
    // nginx's worker and wrk on one CPU: left to the scheduler, the two
    // shared a CPU in some runs and not in others, which moved the
    // baseline between 71,600 and 96,200 requests/s from run to run; on
    // two CPUs (pinned apart) each request waits for a cross-CPU wake-up,
    // which on this VM is dearer than the request (about 40,000/s).
    let affinity = match cpu {
        Some(cpu) => format!("worker_cpu_affinity {};\n", cpu_mask(cpu)),
        None => String::new(),
    };
    // Every path nginx writes is in the prefix: the default temp paths are
    // under /var/lib, where the benchmark policy denies writes. The listen
    // port is the one the policy allows.
    let conf = format!(
        "worker_processes 1;
{affinity}daemon off;
master_process on;
user root;
pid {p}/nginx.pid;
error_log {p}/error.log;
events {{ worker_connections 512; }}
http {{
    access_log {p}/access.log combined buffer=64k;
    client_body_temp_path {p}/tmp/body;
    proxy_temp_path {p}/tmp/proxy;
    fastcgi_temp_path {p}/tmp/fastcgi;
    uwsgi_temp_path {p}/tmp/uwsgi;
    scgi_temp_path {p}/tmp/scgi;
    keepalive_requests 100000;
    server {{
        listen 127.0.0.1:{port};
        root {p}/www;
    }}
}}
"
    );
    let conf_path = prefix.join("nginx.conf");
    write(&conf_path, conf.as_bytes())?;
    Ok((conf_path, prefix))
}

/// nginx's `worker_cpu_affinity` mask for one CPU: binary, CPU 0 rightmost.
fn cpu_mask(cpu: usize) -> String {
    format!("1{}", "0".repeat(cpu))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filler_is_deterministic_and_varies_by_seed() {
        assert_eq!(text(3, 200), text(3, 200));
        assert_ne!(text(3, 200), text(4, 200));
        assert!(text(3, 200)
            .iter()
            .all(|b| b.is_ascii_lowercase() || *b == b'\n'));
    }

    #[test]
    fn cpu_mask_is_binary_with_cpu_0_rightmost() {
        assert_eq!(cpu_mask(0), "1");
        assert_eq!(cpu_mask(1), "10");
        assert_eq!(cpu_mask(3), "1000");
    }
}

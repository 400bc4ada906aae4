//! A symlink swapped on the way while a path call that is not an open runs:
//! a thread flips `sw` between a free directory and a denied one (or
//! between two programs) as fast as it can while the main thread makes the
//! call through `sw` thousands of times. When the library checks a path and
//! then lets libc resolve it again, some calls reach the denied object (on
//! this VM: hundreds per 20,000 for `truncate`). Each call must act on the
//! object it decided on: no call may reach the denied side, the free side
//! stays usable, and every denied attempt is reported with the rule, the
//! program and the denied target. (`kernel_object::symlink_swapped_while_opening`
//! is the open's version.)

mod common;

use common::{assert_all_denied, c_program, policy, race_counts, scratch, Outcome, Run};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn escape() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| c_program("escape", &["-ldl", "-lpthread"]))
        .clone()
}

/// Attempts per race: enough that the unfixed library loses every race
/// class many times (see the module comment), few enough for a few seconds.
const TRIES: &str = "20000";

/// `pub/` is free, `ro/` may not be written, `secret/` may not be touched;
/// each holds a file `f` ("original") and a directory `d`.
struct Fx {
    d: PathBuf,
}

impl Fx {
    fn new(name: &str) -> Fx {
        let d = scratch(name);
        for side in ["pub", "ro", "secret"] {
            std::fs::create_dir_all(d.join(side).join("d")).unwrap();
            std::fs::write(d.join(side).join("f"), "original\n").unwrap();
        }
        Fx { d }
    }

    fn p(&self, s: &str) -> String {
        self.d.join(s).display().to_string()
    }

    fn run(&self, argv: &[&str]) -> Outcome {
        let rules = json!([
            {"name": "secret", "kind": "file", "path": [self.p("secret/**")], "action": "deny"},
            {"name": "ro", "kind": "file", "access": ["write"], "path": [self.p("ro/**")], "action": "deny"},
            {"name": "no-id", "kind": "exec", "path": ["/usr/bin/id"], "action": "deny"},
        ]);
        Run::new(&self.d, Some(policy("enforce", &["deny"], rules)))
            .cwd(&self.d)
            .env("LC_ALL", "C")
            .cmd(argv)
    }

    /// `call` through `sw/…` while `sw` flips between `pub` and `denied`;
    /// asserts no win, some successes on the free side, and that every
    /// event is a deny by `rule` of `escape` on `denied/target`.
    fn race(&self, call: &str, denied: &str, rule: &str, target: &str) {
        let exe = escape().display().to_string();
        let out = self.run(&[
            &exe,
            "race-call",
            call,
            &self.p(""),
            &self.p("pub"),
            &self.p(denied),
            TRIES,
        ]);
        let [wins, ok] = race_counts(&out, call, 2)[..] else {
            unreachable!()
        };
        assert_eq!(wins, 0, "{call} reached {denied}: {}", out.stdout);
        assert!(ok > 0, "{call}: the free side must stay usable");
        let want = format!("/{denied}/{target}");
        assert_all_denied(&out.decisions(), call, Some(rule), &exe, |t| {
            t.ends_with(&want)
        });
        assert_eq!(
            std::fs::read_to_string(self.d.join(denied).join("f")).unwrap(),
            "original\n"
        );
    }
}

#[test]
fn truncate_through_a_swapped_directory() {
    Fx::new("race-truncate").race("truncate", "ro", "ro", "f");
}

/// `freopen` for writing truncates the file it reopens the stream on.
#[test]
fn freopen_through_a_swapped_directory() {
    Fx::new("race-freopen").race("freopen", "ro", "ro", "f");
}

#[test]
fn unlink_through_a_swapped_directory() {
    Fx::new("race-unlink").race("unlink", "ro", "ro", "f");
}

#[test]
fn rename_through_a_swapped_directory() {
    Fx::new("race-rename").race("rename", "ro", "ro", "f");
}

#[test]
fn rmdir_through_a_swapped_directory() {
    let f = Fx::new("race-rmdir");
    f.race("rmdir", "ro", "ro", "d");
    assert!(Path::new(&f.p("ro/d")).is_dir());
}

#[test]
fn link_of_a_read_denied_file_through_a_swapped_directory() {
    Fx::new("race-link").race("link", "secret", "secret", "f");
}

#[test]
fn chmod_through_a_swapped_directory() {
    Fx::new("race-chmod").race("chmod", "ro", "ro", "f");
}

#[test]
fn chown_through_a_swapped_directory() {
    Fx::new("race-chown").race("chown", "ro", "ro", "f");
}

#[test]
fn utimensat_through_a_swapped_directory() {
    Fx::new("race-utimensat").race("utimensat", "ro", "ro", "f");
}

#[test]
fn setxattr_through_a_swapped_directory() {
    Fx::new("race-setxattr").race("setxattr", "ro", "ro", "f");
}

/// The same calls made through libc's `syscall()`, which the library
/// routes to the same decisions.
#[test]
fn syscall_truncate_unlink_rename_chmod_through_a_swapped_directory() {
    for call in ["sys-truncate", "sys-unlink", "sys-rename", "sys-chmod"] {
        Fx::new(&format!("race-{call}")).race(call, "ro", "ro", "f");
    }
}

#[test]
fn syscall_link_of_a_read_denied_file_through_a_swapped_directory() {
    Fx::new("race-sys-link").race("sys-link", "secret", "secret", "f");
}

/// The system calls the library makes on the object decided only when
/// they come through `syscall()` (their libc functions were already):
/// `mknod`, `mknodat` (a new name), `fchmodat2`, `utimes`, `futimesat`.
#[test]
fn syscall_mknod_fchmodat2_and_old_time_calls_through_a_swapped_directory() {
    for (call, target) in [
        ("sys-mknod", "n"),
        ("sys-mknodat", "n"),
        ("sys-fchmodat2", "f"),
        ("sys-utimes", "f"),
        ("sys-futimesat", "f"),
    ] {
        Fx::new(&format!("race-{call}")).race(call, "ro", "ro", target);
    }
}

/// Execs per race: main's library ran the denied program about 80 times
/// per 2,000 (BENCHMARKS.md section 20).
const EXEC_TRIES: &str = "3000";

/// `mode` (see escape.c's `race-exec`) of `sw` while a thread flips it
/// between `allowed` and `/usr/bin/false`, which a rule denies: the denied
/// program must never run, the allowed one must, and every event is that
/// rule's deny of `/usr/bin/false` by `escape`. An ELF runs nothing else;
/// a script's interpreter opens the script by name, so the swap can hand
/// it the denied file to read as a script (as `sh sw` would): it fails
/// there (`other`) without running it.
fn exec_race(name: &str, mode: &str, allowed: Option<&str>) {
    let d = scratch(name);
    let rules = no_false();
    let allowed_is_elf = allowed.is_none();
    let allowed = match allowed {
        Some(script) => {
            let p = d.join("ok.sh");
            std::fs::write(&p, script).unwrap();
            executable(&p);
            p.display().to_string()
        }
        None => "/usr/bin/true".to_string(),
    };
    race_outcome(
        &d,
        mode,
        &allowed,
        "/usr/bin/false",
        rules,
        "no-false",
        "/usr/bin/false",
        allowed_is_elf,
    );
}

/// The rule every exec race runs against.
fn no_false() -> serde_json::Value {
    json!([
        {"name": "no-false", "kind": "exec", "path": ["/usr/bin/false"], "action": "deny"},
    ])
}

/// Mode 0755.
fn executable(p: &Path) {
    std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

/// Runs escape's `race-exec` and checks its counts and events (see
/// [`exec_race`]); `target`: the denied program's name in the events.
#[allow(clippy::too_many_arguments)]
fn race_outcome(
    d: &Path,
    mode: &str,
    allowed: &str,
    denied: &str,
    rules: serde_json::Value,
    rule: &str,
    target: &str,
    allowed_is_elf: bool,
) {
    let exe = escape().display().to_string();
    let out = Run::new(d, Some(policy("enforce", &["deny"], rules)))
        .cwd(d)
        .env("LC_ALL", "C")
        .cmd(&[
            exe.as_str(),
            "race-exec",
            mode,
            &d.display().to_string(),
            allowed,
            denied,
            EXEC_TRIES,
        ]);
    let [ok, denied_ran, refused, other] = race_counts(&out, mode, 4)[..] else {
        unreachable!()
    };
    assert_eq!(
        denied_ran, 0,
        "{mode}: the denied program ran: {}",
        out.stdout
    );
    if allowed_is_elf {
        assert!(
            ok > 0,
            "{mode}: the allowed program must run: {}",
            out.stdout
        );
        assert_eq!(other, 0, "{mode}: {}", out.stdout);
    } else {
        // A script's interpreter ran either way: on the allowed script, or
        // on the denied program read as its script after a swap (on a
        // loaded machine the swapping thread may sit on one side for
        // most of the run).
        assert!(
            ok + other > 0,
            "{mode}: the allowed script's interpreter must run: {}",
            out.stdout
        );
    }
    let denies = out.decisions();
    assert_eq!(
        denies.len() as u64,
        refused,
        "{mode}: every refused exec is a deny: {}",
        out.stdout
    );
    // (At least one: the swaps reached the denied program.)
    assert_all_denied(&denies, mode, Some(rule), &exe, |t| t == target);
}

#[test]
fn execv_of_a_swapped_symlink() {
    exec_race("race-execv", "execv", None);
}

/// An exec made through libc's `syscall()` runs as the `execve` hook
/// runs it.
#[test]
fn syscall_execve_of_a_swapped_symlink() {
    exec_race("race-sys-execve", "sys-execve", None);
}

/// `execveat` with a path from the current directory, from libc and
/// through `syscall()`: run as `execve` runs it.
#[test]
fn execveat_of_a_swapped_symlink() {
    exec_race("race-execveat", "execveat", None);
    exec_race("race-sys-execveat", "sys-execveat", None);
}

/// `execveat` relative to a directory's descriptor, from libc and through
/// `syscall()`, of a swapped symlink and through a swapped directory (and
/// with `AT_SYMLINK_NOFOLLOW`, which still follows links on the way).
#[test]
fn execveat_relative_to_a_descriptor_and_with_nofollow() {
    exec_race("race-execveat-atfd", "execveat-atfd", None);
    exec_race("race-sys-execveat-atfd", "sys-execveat-atfd", None);
    for mode in [
        "execveat-atfd-dir",
        "execveat-nofollow-dir",
        "sys-execveat-atfd-nofollow-dir",
    ] {
        dir_race(mode);
    }
}

/// A spawn whose file actions close every descriptor the library could
/// hold the program by (`posix_spawn_file_actions_addclosefrom_np(3)`).
#[test]
fn posix_spawn_with_file_actions_that_close_every_descriptor() {
    exec_race("race-spawn-closefrom", "spawn-closefrom", None);
    dir_race("spawn-closefrom-dir");
}

#[test]
fn execvp_of_a_swapped_symlink_found_along_path() {
    exec_race("race-execvp", "execvp", None);
}

/// A bare name (no `/`), from the current directory.
#[test]
fn posix_spawn_and_execv_of_a_swapped_symlink_by_its_bare_name() {
    exec_race("race-spawn-here", "spawn-here", None);
    exec_race("race-execv-here", "execv-here", None);
}

#[test]
fn posix_spawn_of_a_swapped_symlink() {
    exec_race("race-spawn", "spawn", None);
}

#[test]
fn posix_spawnp_of_a_swapped_symlink_found_along_path() {
    exec_race("race-spawnp", "spawnp", None);
}

#[test]
fn execv_of_a_symlink_swapped_between_a_script_and_a_denied_program() {
    exec_race("race-execv-script", "execv", Some("#!/bin/sh\nexit 0\n"));
}

/// `sw` flips between `ok`, a name beside it (a copy of `true`), and
/// `/usr/bin/false`, which a rule denies. A link to a name in its own
/// directory is the case the library once ran by the link's name (to keep
/// the process named after it): the exec then followed whatever `sw` had
/// become. Run by `execv` and `posix_spawn`.
#[test]
fn exec_of_a_symlink_swapped_between_a_name_beside_it_and_a_denied_program() {
    for mode in ["execv", "spawn"] {
        let d = scratch(&format!("race-beside-{mode}"));
        std::fs::copy("/usr/bin/true", d.join("ok")).unwrap();
        let rules = no_false();
        race_outcome(
            &d,
            mode,
            "ok",
            "/usr/bin/false",
            rules,
            "no-false",
            "/usr/bin/false",
            true,
        );
    }
}

/// `sw` is a regular file renamed over, flipping between a copy of `true`
/// and a script whose `#!` line names `/usr/bin/false`, which a rule
/// denies; run as `lnk`, a link to `sw` beside it (so the exec is decided
/// on the kernel's path, `sw`), or as the interpreter of `via.sh`. What the
/// check read must be what runs: a script found in place of the program
/// (or interpreter) it decided on must not reach its own interpreter by a
/// route that hands the kernel the file's name again.
#[test]
fn exec_of_a_program_renamed_into_a_script_during_the_exec() {
    for mode in [
        "execv-renamed",
        "spawn-renamed",
        "spawn-via-renamed",
        "execv-via-renamed",
    ] {
        let d = scratch(&format!("race-{mode}"));
        std::fs::copy("/usr/bin/true", d.join("ok")).unwrap();
        let script = d.join("bad.sh");
        std::fs::write(&script, "#!/usr/bin/false\n").unwrap();
        let via = d.join("via.sh");
        std::fs::write(&via, format!("#!{}\nexit 0\n", d.join("sw").display())).unwrap();
        for p in [&script, &via] {
            executable(p);
        }
        let rules = no_false();
        let (ok, bad) = (
            d.join("ok").display().to_string(),
            script.display().to_string(),
        );
        if !mode.contains("-via") {
            race_outcome(
                &d,
                mode,
                &ok,
                &bad,
                rules,
                "no-false",
                "/usr/bin/false",
                false,
            );
            continue;
        }
        // The interpreter, renamed into a script between its check and
        // its exec (the kernel refuses it there) or found changed before a
        // spawn: decided again, up to three times; an exec or a spawn
        // whose interpreter keeps changing then fails with `ENOENT`,
        // unreported.
        let exe = escape().display().to_string();
        let dir = d.display().to_string();
        let out = Run::new(&d, Some(policy("enforce", &["deny"], rules)))
            .cwd(&d)
            .cmd(&[&exe, "race-exec", mode, &dir, &ok, &bad, EXEC_TRIES]);
        let [allowed, denied_ran, refused, _] = race_counts(&out, mode, 4)[..] else {
            unreachable!()
        };
        assert_eq!(
            denied_ran, 0,
            "{mode}: the denied program ran: {}",
            out.stdout
        );
        assert!(allowed > 0, "{mode}: {}", out.stdout);
        let denies = out.decisions();
        assert!(denies.len() as u64 <= refused, "{mode}: {}", out.stdout);
        assert_all_denied(&denies, mode, Some("no-false"), &exe, |t| {
            t == "/usr/bin/false"
        });
    }
}

/// A script's interpreter that is itself a script: `via.sh` starts
/// `#!DIR/sw`, and `sw` flips between `mid.sh` (`#!/bin/sh`, exit 0) and
/// `/usr/bin/false`, which a rule denies. The kernel would run whatever
/// `sw` names at its exec; the library runs the last interpreter it
/// decided (`/bin/sh`), which reads `sw` as its script: a swap makes it
/// read `false` as one (`other`), never run it.
#[test]
fn exec_of_a_script_whose_interpreter_is_a_swapped_script() {
    for mode in ["execv-via", "spawn-via"] {
        let d = scratch(&format!("race-{mode}"));
        let mid = d.join("mid.sh");
        std::fs::write(&mid, "#!/bin/sh\nexit 0\n").unwrap();
        let via = d.join("via.sh");
        std::fs::write(&via, format!("#!{}\nexit 0\n", d.join("sw").display())).unwrap();
        for p in [&mid, &via] {
            executable(p);
        }
        let rules = no_false();
        race_outcome(
            &d,
            mode,
            &mid.display().to_string(),
            "/usr/bin/false",
            rules,
            "no-false",
            "/usr/bin/false",
            false,
        );
    }
}

/// The directory swapped instead of the program: `sw/true` runs
/// `/usr/bin/true` or `secret/true` (a copy of `false`), which a rule
/// denies. The exec holds the directory it reached through `sw`.
#[test]
fn execv_and_posix_spawn_through_a_swapped_directory() {
    for mode in ["execv-dir", "spawn-dir"] {
        dir_race(mode);
    }
}

/// `mode` (ending in `-dir`) of `sw/true` while `sw` flips between
/// `/usr/bin` and `secret/`, whose `true` (a copy of `false`) a rule
/// denies.
fn dir_race(mode: &str) {
    let d = scratch(&format!("race-{mode}"));
    std::fs::create_dir_all(d.join("secret")).unwrap();
    std::fs::copy("/usr/bin/false", d.join("secret/true")).unwrap();
    let secret = d.join("secret").display().to_string();
    let rules = json!([
        {"name": "no-secret", "kind": "exec", "path": [format!("{secret}/**")], "action": "deny"},
    ]);
    let target = format!("{secret}/true");
    race_outcome(
        &d,
        mode,
        "/usr/bin",
        &secret,
        rules,
        "no-secret",
        &target,
        true,
    );
}

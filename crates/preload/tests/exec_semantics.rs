//! What a program sees of how it was started is the same with and without
//! the library, now that an exec runs the object its check held
//! (docs/preload.md, *Exec runs the object decided*): its arguments,
//! `$0`, `/proc/self/exe`, `comm`, its descriptors and its environment,
//! for an ELF program and for `#!` scripts (whose interpreter the library
//! starts with the arguments the kernel builds), by absolute, relative and
//! linked paths, along `PATH` and through `posix_spawn`; and a failed exec
//! fails with the errno the kernel gives without the library.

mod common;

use common::{c_program, policy, scratch, Outcome, Run};
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn launch() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| c_program("launch", &[])).clone()
}

fn show() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| c_program("show", &[])).clone()
}

/// A directory with `bin/show` (the program), `bin/show.sh` and friends
/// (scripts), `real/` reached through the link `linked`, and a policy
/// whose exec rule looks at paths (so every exec is decided and held).
struct Fx {
    d: PathBuf,
}

fn write_exec(p: &Path, text: &str, mode: u32) {
    std::fs::write(p, text).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

impl Fx {
    fn new(name: &str) -> Fx {
        let d = scratch(name);
        let bin = d.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(d.join("real")).unwrap();
        std::fs::copy(show(), bin.join("show")).unwrap();
        std::fs::copy(show(), d.join("real/show")).unwrap();
        std::os::unix::fs::symlink(d.join("real"), d.join("linked")).unwrap();
        std::os::unix::fs::symlink("show", d.join("real/showlink")).unwrap();
        let sh_body = "echo \"0=$0 args=$*\"\n\
             printf 'cmdline='; tr '\\0' ' ' < /proc/$$/cmdline; echo\n\
             echo \"exe=$(readlink /proc/$$/exe)\"\n\
             echo \"comm=$(cat /proc/$$/comm)\"\n\
             fds=; for f in /proc/$$/fd/*; do fds=\"$fds ${f##*/}\"; done; echo \"fds=$fds\"\n\
             echo \"MARK=$MARK\"\n\
             echo \"script-vars=$(env | grep -c '^LDGUARD_SCRIPT')\"\n";
        write_exec(
            &bin.join("show.sh"),
            &format!("#!/bin/sh\n{sh_body}"),
            0o755,
        );
        write_exec(
            &bin.join("show-e.sh"),
            &format!("#!/bin/sh -e\n{sh_body}"),
            0o755,
        );
        write_exec(
            &bin.join("show.py"),
            "#!/usr/bin/env python3\n\
             import os, sys\n\
             print('argv', sys.argv)\n\
             print('comm', open('/proc/self/comm').read().strip())\n\
             print('fds', sorted(int(f) for f in os.listdir('/proc/self/fd'))[:4])\n\
             print('MARK', os.environ.get('MARK'))\n",
            0o755,
        );
        Fx { d }
    }

    fn p(&self, s: &str) -> String {
        self.d.join(s).display().to_string()
    }

    fn run(&self, with_library: bool, argv: &[&str]) -> Outcome {
        let rules = json!([
            {"name": "no-false", "kind": "exec", "path": ["/usr/bin/false"], "action": "deny"},
        ]);
        let policy = with_library.then(|| policy("enforce", &["deny"], rules));
        let path = format!("{}:/usr/bin:/bin", self.p("bin"));
        Run::new(&self.d, policy)
            .cwd(&self.d)
            .env("MARK", "m")
            .env("PATH", &path)
            .env("LC_ALL", "C")
            .cmd(argv)
    }

    /// `launch MODE PATH ARGV...` with and without the library: the same
    /// output, status and (no) events.
    fn same(&self, mode: &str, path: &str, args: &[&str]) -> String {
        let exe = launch().display().to_string();
        let mut argv = vec![exe.as_str(), mode, path];
        argv.extend_from_slice(args);
        let plain = self.run(false, &argv);
        let checked = self.run(true, &argv);
        assert_eq!(
            checked.stdout, plain.stdout,
            "{mode} {path}: with the library (left) and without\nstderr: {}",
            checked.stderr
        );
        assert_eq!(checked.code(), plain.code(), "{mode} {path}");
        assert!(checked.decisions().is_empty(), "{:#?}", checked.decisions());
        plain.stdout
    }
}

const MODES: [&str; 3] = ["execv", "execve", "spawn"];

#[test]
fn an_elf_program_by_absolute_relative_and_linked_paths() {
    let f = Fx::new("sem-elf");
    for mode in MODES {
        let out = f.same(mode, &f.p("bin/show"), &["show", "a b", "c"]);
        assert!(out.contains("argv[1]=a b\nargv[2]=c\n"), "{out}");
        assert!(
            out.contains("comm=show\n") && out.contains("fds=5 "),
            "{out}"
        );
        assert!(out.contains("MARK=m"), "{out}");
        f.same(mode, "bin/show", &["./x"]);
        f.same(mode, "./bin/../bin/show", &["y"]);
        let out = f.same(mode, &f.p("linked/showlink"), &["showlink"]);
        assert!(
            out.contains(&format!("exe={}\n", f.p("real/show"))),
            "{out}"
        );
        assert!(out.contains("comm=showlink\n"), "{out}");
    }
}

#[test]
fn an_elf_program_along_path() {
    let f = Fx::new("sem-path");
    for mode in ["execvp", "spawnp"] {
        let out = f.same(mode, "show", &["show", "z"]);
        assert!(out.contains(&format!("exe={}\n", f.p("bin/show"))), "{out}");
    }
}

#[test]
fn scripts_get_the_arguments_the_kernel_builds() {
    let f = Fx::new("sem-script");
    for mode in MODES {
        let out = f.same(mode, &f.p("bin/show.sh"), &["ignored", "a", "b c"]);
        let want = format!("0={} args=a b c\n", f.p("bin/show.sh"));
        assert!(out.contains(&want), "{out}");
        let cmdline = format!("cmdline=/bin/sh {} a b c \n", f.p("bin/show.sh"));
        assert!(out.contains(&cmdline), "{out}");
        // Named after the script, as the kernel names it; the variable
        // that carried the name is gone from the script's environment.
        assert!(out.contains("comm=show.sh\n"), "{out}");
        assert!(out.contains("script-vars=0\n"), "{out}");
        let out = f.same(mode, "bin/show-e.sh", &["ignored", "x"]);
        assert!(
            out.contains("cmdline=/bin/sh -e bin/show-e.sh x \n"),
            "{out}"
        );
        let out = f.same(mode, &f.p("bin/show.py"), &["ignored", "q"]);
        assert!(
            out.contains(&format!("argv ['{}', 'q']", f.p("bin/show.py"))),
            "{out}"
        );
    }
    for mode in ["execvp", "spawnp"] {
        let out = f.same(mode, "show.sh", &["show.sh", "p"]);
        assert!(
            out.contains(&format!("0={} args=p\n", f.p("bin/show.sh"))),
            "{out}"
        );
    }
}

/// A script whose interpreter is a script (and one more level, with an
/// argument on each line): the arguments, name and descriptors the
/// kernel's nested handling gives.
#[test]
fn scripts_whose_interpreter_is_a_script() {
    let f = Fx::new("sem-nested");
    let bin = f.d.join("bin");
    write_exec(
        &bin.join("nest.sh"),
        &format!("#!{}\n", f.p("bin/show.sh")),
        0o755,
    );
    write_exec(
        &bin.join("nest2.sh"),
        &format!("#!{} lvl1\n", f.p("bin/nest-e.sh")),
        0o755,
    );
    write_exec(
        &bin.join("nest-e.sh"),
        &format!("#!{} lvl2\n", f.p("bin/show-e.sh")),
        0o755,
    );
    // An intermediate script the kernel may not run: EACCES.
    write_exec(
        &bin.join("nest-noexec.sh"),
        &format!("#!{}\n", f.p("bin/plain.sh")),
        0o755,
    );
    write_exec(&bin.join("plain.sh"), "#!/bin/sh\necho ran\n", 0o644);
    for mode in MODES {
        let out = f.same(mode, &f.p("bin/nest.sh"), &["x", "a"]);
        let want = format!("0={} args={} a\n", f.p("bin/show.sh"), f.p("bin/nest.sh"));
        assert!(out.contains(&want), "{mode}: {out}");
        assert!(out.contains("comm=nest.sh\n"), "{mode}: {out}");
        let out = f.same(mode, "bin/nest2.sh", &["x", "b"]);
        assert!(
            out.contains(&format!(
                "cmdline=/bin/sh -e {} lvl2 {} lvl1 bin/nest2.sh b \n",
                f.p("bin/show-e.sh"),
                f.p("bin/nest-e.sh")
            )),
            "{mode}: {out}"
        );
        let out = f.same(mode, &f.p("bin/nest-noexec.sh"), &["x"]);
        assert!(out.starts_with("err "), "{mode}: {out}");
    }
}

/// `execveat` from a descriptor of the program's directory and with
/// `AT_SYMLINK_NOFOLLOW`, and a spawn whose file actions close every
/// descriptor the library could hold the program by: ELF programs,
/// scripts, links and failures as without the library.
#[test]
fn execveat_forms_and_a_spawn_that_closes_every_descriptor() {
    let f = Fx::new("sem-execveat");
    let paths = [
        f.p("bin/show"),
        "bin/show".into(),
        "./bin/../bin/show".into(),
        f.p("linked/showlink"),
        f.p("bin/show.sh"),
        "bin/show-e.sh".into(),
        f.p("missing"),
    ];
    for mode in ["execveat-at", "execveat-nofollow", "spawn-closefrom"] {
        for path in &paths {
            f.same(mode, path, &["x", "a"]);
        }
    }
    // A script from a descriptor gets the kernel's /dev/fd/N/name.
    let out = f.same("execveat-at", &f.p("bin/show.sh"), &["x", "a"]);
    assert!(
        out.contains("args=a\n") && out.contains("0=/dev/fd/"),
        "{out}"
    );
    assert!(out.contains("comm=show.sh\n"), "{out}");
    // A last name that is a link is refused (ELOOP); links on the way are not.
    let out = f.same("execveat-nofollow", &f.p("linked/showlink"), &["x"]);
    assert_eq!(out, format!("err {}\n", libc::ELOOP));
    let out = f.same("execveat-nofollow", &f.p("linked/show"), &["x"]);
    assert!(out.contains("comm=show\n"), "{out}");
    let out = f.same("spawn-closefrom", &f.p("bin/show.sh"), &["x", "a"]);
    assert!(out.contains("comm=show.sh\n"), "{out}");
}

/// Each failure of an exec, made with and without the library: the same
/// errno (launch prints "err N").
#[test]
fn failed_execs_fail_with_the_kernels_errno() {
    let f = Fx::new("sem-errno");
    let d = &f.d;
    write_exec(&d.join("noexec"), "#!/bin/sh\necho ran\n", 0o644);
    write_exec(&d.join("garbage"), "not a program\n", 0o755);
    write_exec(
        &d.join("nointerp.sh"),
        "#!/nonexistent/sh\necho ran\n",
        0o755,
    );
    write_exec(&d.join("crlf.sh"), "#!/bin/sh\r\necho ran\n", 0o755);
    write_exec(&d.join("empty.sh"), "#!   \necho ran\n", 0o755);
    std::os::unix::fs::symlink("loop", d.join("loop")).unwrap();
    std::os::unix::fs::symlink("nowhere", d.join("dangling")).unwrap();
    let noloader = c_program("noloader", &["-Wl,--dynamic-linker=/nonexistent/ld.so"]);
    std::fs::copy(noloader, d.join("noloader")).unwrap();
    let cases = [
        ("missing", "ENOENT"),
        ("bin/show/x", "ENOTDIR"),
        ("noexec", "EACCES"),
        ("bin", "EACCES"),
        ("garbage", "ENOEXEC"),
        ("loop", "ELOOP"),
        ("dangling", "ENOENT"),
        ("nointerp.sh", "ENOENT"),
        ("crlf.sh", "ENOENT"),
        ("empty.sh", "ENOEXEC"),
        // No script, refused with ENOENT: run again through a descriptor
        // that stays open (as a `binfmt_misc` interpreter needs), ENOENT.
        ("noloader", "ENOENT"),
    ];
    for mode in MODES {
        for (path, what) in cases {
            let out = f.same(mode, &f.p(path), &["x"]);
            assert!(out.starts_with("err "), "{mode} {path} ({what}): {out}");
        }
    }
}

/// A memfd and a deleted file run through `/proc/self/fd/N`: their kernel
/// path names nothing in a directory, so the library runs the object
/// itself; the program runs as without the library.
#[test]
fn a_memfd_and_a_deleted_file_run_through_their_descriptor() {
    let f = Fx::new("sem-memfd");
    let script = "import os, sys\n\
         if sys.argv[1] == 'memfd':\n    fd = os.memfd_create('x', 0)\n    os.write(fd, open('/usr/bin/echo', 'rb').read())\n\
         else:\n    open('gone', 'wb').write(open('/usr/bin/echo', 'rb').read())\n    os.chmod('gone', 0o755)\n    fd = os.open('gone', os.O_RDONLY)\n    os.unlink('gone')\n\
         try:\n    os.execv(f'/proc/self/fd/{fd}', ['echo', sys.argv[1], 'ran'])\n\
         except OSError as e:\n    print('error:', e.strerror)\n";
    for what in ["memfd", "deleted"] {
        let argv = ["/usr/bin/python3", "-I", "-S", "-c", script, what];
        let plain = f.run(false, &argv);
        let checked = f.run(true, &argv);
        assert_eq!(plain.stdout, format!("{what} ran\n"), "{}", plain.stderr);
        assert_eq!(checked.stdout, plain.stdout, "{}", checked.stderr);
    }
}

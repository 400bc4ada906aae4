//! A deny on a path holds whatever way the program names the file:
//! symlinks, `..` (also through symlinked directories), relative paths,
//! `*at` calls with a dirfd, `/proc/self/fd/N` and `/proc/self/cwd`,
//! dangling symlinks followed by O_CREAT, hard links, and exec through a
//! link or a relative name.

mod common;

use common::{policy, probe, scratch, Outcome, Run};
use serde_json::json;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

struct Fixture {
    d: PathBuf,
}

impl Fixture {
    fn new(name: &str) -> Fixture {
        let d = scratch(name);
        std::fs::create_dir_all(d.join("secret/sub")).unwrap();
        std::fs::create_dir_all(d.join("pub/a/b")).unwrap();
        std::fs::write(d.join("secret/f"), "secret").unwrap();
        std::fs::write(d.join("pub/ok"), "ok").unwrap();
        symlink(d.join("secret/f"), d.join("pub/link")).unwrap();
        symlink(d.join("secret"), d.join("pub/sdir")).unwrap();
        symlink(d.join("secret/sub"), d.join("pub/up")).unwrap();
        symlink(d.join("secret/created"), d.join("pub/dangling")).unwrap();
        symlink("/usr/bin/id", d.join("pub/myid")).unwrap();
        Fixture { d }
    }

    fn p(&self, s: &str) -> String {
        self.d.join(s).display().to_string()
    }

    fn run(&self, cwd: &Path, args: &[&str]) -> Outcome {
        let rules = json!([
            {"name": "secret", "kind": "file", "path": [self.p("secret/**")], "action": "deny"},
            {"name": "no-id", "kind": "exec", "path": ["/usr/bin/id"], "action": "deny"},
        ]);
        let mut argv = vec![probe().display().to_string()];
        argv.extend(args.iter().map(|s| s.to_string()));
        Run::new(&self.d, Some(policy("enforce", &["deny"], rules)))
            .cwd(cwd)
            .cmd(&argv)
    }

    /// Asserts the call was denied with `errno` and one event from `rule`.
    fn denied(&self, cwd: &Path, args: &[&str], rule: &str) -> Outcome {
        let out = self.run(cwd, args);
        assert_eq!(
            out.stdout.trim(),
            "err 13",
            "{args:?}: stderr {}",
            out.stderr
        );
        let e = out.one_event();
        assert_eq!(e.rule.as_deref(), Some(rule), "{args:?}");
        assert!(e.enforced);
        out
    }
}

#[test]
fn the_fixture_allows_the_public_side() {
    let f = Fixture::new("tricks-allowed");
    let out = f.run(&f.d, &["open", &f.p("pub/ok")]);
    assert_eq!(out.stdout.trim(), "ok");
    assert!(out.decisions().is_empty());
}

#[test]
fn symlink_to_a_denied_file() {
    let f = Fixture::new("tricks-symlink");
    let out = f.denied(&f.d, &["open", &f.p("pub/link")], "secret");
    let e = out.one_event();
    assert_eq!(e.target.as_deref(), Some(f.p("pub/link").as_str()));
    assert_eq!(e.resolved.as_deref(), Some(f.p("secret/f").as_str()));
}

#[test]
fn symlinked_directory() {
    let f = Fixture::new("tricks-sdir");
    f.denied(&f.d, &["open", &f.p("pub/sdir/f")], "secret");
}

#[test]
fn dotdot_lexically() {
    let f = Fixture::new("tricks-dotdot");
    let out = f.denied(&f.d, &["open", &f.p("pub/a/../../secret/f")], "secret");
    assert_eq!(
        out.one_event().target.as_deref(),
        Some(f.p("secret/f").as_str())
    );
}

#[test]
fn dotdot_through_a_symlinked_directory() {
    // Lexically pub/up/../f is pub/f (allowed); the kernel goes
    // secret/sub/.. = secret, so it is secret/f.
    let f = Fixture::new("tricks-dotdot-link");
    let out = f.denied(&f.d, &["open", &f.p("pub/up/../f")], "secret");
    assert_eq!(
        out.one_event().resolved.as_deref(),
        Some(f.p("secret/f").as_str())
    );
}

#[test]
fn relative_path_from_the_cwd() {
    let f = Fixture::new("tricks-relative");
    let out = f.denied(&f.d.join("pub"), &["open", "../secret/f"], "secret");
    assert_eq!(
        out.one_event().target.as_deref(),
        Some(f.p("secret/f").as_str())
    );
}

#[test]
fn at_call_with_a_dirfd() {
    let f = Fixture::new("tricks-at");
    f.denied(
        &f.d,
        &["openat-rel", &f.p("pub/a"), "../../secret/f"],
        "secret",
    );
}

#[test]
fn proc_self_fd_of_a_directory() {
    let f = Fixture::new("tricks-procfd");
    f.denied(&f.d, &["procfd", &f.p("pub/sdir/.."), "secret/f"], "secret");
}

#[test]
fn proc_self_cwd() {
    let f = Fixture::new("tricks-proccwd");
    f.denied(
        &f.d.join("pub"),
        &["open", "/proc/self/cwd/../secret/f"],
        "secret",
    );
}

#[test]
fn dangling_symlink_followed_by_o_creat() {
    let f = Fixture::new("tricks-dangling");
    let out = f.denied(&f.d, &["create", &f.p("pub/dangling")], "secret");
    assert_eq!(
        out.one_event().resolved.as_deref(),
        Some(f.p("secret/created").as_str())
    );
    assert!(
        !f.d.join("secret/created").exists(),
        "the file must not have been created"
    );
}

#[test]
fn hard_link_out_of_the_denied_tree() {
    let f = Fixture::new("tricks-hardlink");
    f.denied(
        &f.d,
        &["link", &f.p("secret/f"), &f.p("pub/hard")],
        "secret",
    );
    assert!(!f.d.join("pub/hard").exists());
}

#[test]
fn exec_through_a_symlink() {
    let f = Fixture::new("tricks-exec-link");
    let out = f.denied(&f.d, &["execve", &f.p("pub/myid")], "no-id");
    let e = out.one_event();
    assert_eq!(e.target.as_deref(), Some(f.p("pub/myid").as_str()));
    assert_eq!(e.resolved.as_deref(), Some("/usr/bin/id"));
}

#[test]
fn exec_by_relative_name_and_path_search() {
    let f = Fixture::new("tricks-exec-rel");
    f.denied(Path::new("/usr/bin"), &["execve", "./id"], "no-id");
    f.denied(&f.d, &["execvp", "id"], "no-id");
    // /bin is a symlink to /usr/bin on merged-/usr systems.
    f.denied(&f.d, &["execve", "/bin/id"], "no-id");
}

//! How the library is linked and loaded (crates/preload/build.rs,
//! shim/lazy_libc.c): libc functions it calls rarely, and its own hooks as
//! std calls them, are bound on first use instead of looked up at load.
//! That may not change what a program sees: the program's own definitions
//! still come first, nothing is printed, the library still works when
//! loaded into a new link namespace, and every lazily bound function exists.

mod common;

use common::*;
use serde_json::json;

fn deny_secret(dir: &std::path::Path) -> serde_json::Value {
    policy(
        "enforce",
        &["deny"],
        json!([{"name": "no-secret", "kind": "file", "access": ["read"],
                "path": [dir.join("secret").to_str().unwrap()], "action": "deny"}]),
    )
}

#[test]
fn the_library_works_in_a_new_link_namespace() {
    let dir = scratch("loader-namespace");
    std::fs::write(dir.join("secret"), "s").unwrap();
    std::fs::write(dir.join("public"), "p").unwrap();
    let policy_file = dir.join("policy.json");
    std::fs::write(&policy_file, deny_secret(&dir).to_string()).unwrap();
    let program = c_program("namespaced", &["-ldl"]);
    let run = |path: &str| {
        let out = std::process::Command::new(&program)
            .arg(library())
            .arg(dir.join(path))
            .env_remove("LD_PRELOAD")
            .env("LDGUARD_POLICY", &policy_file)
            .env("LDGUARD_EVENTS", "none")
            .env("LDGUARD_CACHE_DIR", dir.join("cache"))
            // The library's thread-locals are initial-exec (static TLS):
            // loaded after start-up it needs more than glibc's default
            // surplus of static TLS (as on main before these link changes).
            .env("GLIBC_TUNABLES", "glibc.rtld.optional_static_tls=16384")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(run("public"), "ok\n");
    assert_eq!(run("secret"), "denied EACCES\n");
}

#[test]
fn a_program_s_own_definition_of_a_hooked_function_still_wins() {
    let dir = scratch("loader-own");
    let program = c_program("own_unlink", &["-rdynamic"]);
    let victim = dir.join("victim");
    std::fs::write(&victim, "v").unwrap();
    let out = Run::new(&dir, Some(policy("enforce", &["deny"], json!([]))))
        .cmd(&[program.as_os_str(), victim.as_os_str()]);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(out.stdout, format!("own {}\n", victim.display()));
    assert!(victim.exists(), "libc's unlink never ran");
}

#[test]
fn every_lazily_bound_function_exists_in_libc() {
    // Bound on first use, a function missing from libc would fail only
    // when first called, in whatever program calls it; LD_BIND_NOW binds
    // them all at load, where a missing one fails every program at once.
    let out = std::process::Command::new("/bin/true")
        .env("LD_PRELOAD", library())
        .env("LD_BIND_NOW", "1")
        .env("LDGUARD_MODE", "disabled")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_non_pie_program_taking_a_hook_s_address_runs_silently_and_checked() {
    // With the hooks `protected` (one way to bind the library's own calls
    // at link time) glibc printed "direct reference to protected function
    // `open' ... may break pointer equality" on this program's stderr.
    let dir = scratch("loader-nopie");
    std::fs::write(dir.join("secret"), "s").unwrap();
    std::fs::write(dir.join("public"), "p").unwrap();
    let program = c_program("hook_address", &["-no-pie", "-fno-pie"]);
    let run = Run::new(&dir, Some(deny_secret(&dir)));
    let public = run.cmd(&[program.as_os_str(), dir.join("public").as_os_str()]);
    assert_eq!(
        (public.stdout.as_str(), public.stderr.as_str()),
        ("ok\n", "")
    );
    let secret = run.cmd(&[program.as_os_str(), dir.join("secret").as_os_str()]);
    assert_eq!(
        (secret.stdout.as_str(), secret.stderr.as_str()),
        ("denied EACCES\n", "")
    );
    assert_eq!(secret.one_event().action, "deny");
}

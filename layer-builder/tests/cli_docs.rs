//! `ldguard-layer completions SHELL` and `ldguard-layer man DIR`, run as the
//! real binary: generated from the clap definitions, so they list every
//! option and the `install` subcommand.

use std::process::{Command, Output};

fn layer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ldguard-layer"))
        .args(args)
        .output()
        .expect("run ldguard-layer")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn completion_scripts_cover_options_and_subcommands() {
    let out = layer(&["completions", "bash"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let script = text(&out.stdout);
    for want in [
        "ldguard-layer",
        "--policy",
        "--cert-dir",
        "--retry-times",
        "install",
        "--root",
        "completions",
        "man",
    ] {
        assert!(script.contains(want), "bash completions lack {want}");
    }
    // The script is valid bash.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ldguard-layer.bash");
    std::fs::write(&file, &script).unwrap();
    let check = Command::new("bash").arg("-n").arg(&file).status().unwrap();
    assert!(check.success());

    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let out = layer(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains("baked-policy"), "{shell}");
    }
    let out = layer(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("possible values: bash"),
        "{}",
        text(&out.stderr)
    );
    let out = layer(&["help", "completions"]);
    assert!(out.status.success());
    assert!(
        text(&out.stdout).contains("<SHELL>"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn man_pages_for_the_command_and_each_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let out = layer(&["man", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let page = |name: &str| {
        std::fs::read_to_string(dir.path().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let main = page("ldguard-layer.1");
    assert!(
        main.starts_with(".ie") || main.contains(".TH ldguard-layer 1"),
        "{main}"
    );
    assert!(
        main.contains("\\-\\-policy") && main.contains("\\-\\-insecure"),
        "{main}"
    );
    assert!(main.contains("ldguard\\-layer\\-install(1)"), "{main}");
    let install = page("ldguard-layer-install.1");
    assert!(install.contains("\\-\\-root"), "{install}");
    page("ldguard-layer-completions.1");
    // A directory that cannot be written is an error naming it.
    let out = layer(&["man", "/proc/no-such-dir"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("ldguard-layer man: /proc/no-such-dir"),
        "{}",
        text(&out.stderr)
    );
}

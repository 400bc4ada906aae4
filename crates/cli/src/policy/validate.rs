//! `ldguard policy validate FILE...`

use std::path::PathBuf;
use std::process::ExitCode;

use super::{load, LoadError};

pub fn run(files: &[PathBuf]) -> ExitCode {
    let mut failed = 0usize;
    for path in files {
        match load(path) {
            Ok((policy, _, warnings)) => {
                if !warnings.is_empty() {
                    let text = std::fs::read_to_string(path).unwrap_or_default();
                    eprint!("{}", warnings.render(&text));
                }
                println!(
                    "{}: ok (policy `{}`, {} rules)",
                    path.display(),
                    policy.name,
                    policy.rules.len()
                );
            }
            Err(LoadError::Io(msg)) => {
                eprintln!("{msg}");
                failed += 1;
            }
            Err(LoadError::Invalid { source, diags }) => {
                eprintln!("{}", diags.render(&source));
                let errors = diags.iter().filter(|d| d.is_error()).count();
                eprintln!(
                    "{}: {errors} error{}",
                    path.display(),
                    if errors == 1 { "" } else { "s" }
                );
                failed += 1;
            }
        }
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

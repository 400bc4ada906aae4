//! `ldguard policy explain --backstop FILE`: what the kernel backstop will
//! enforce of a policy, rule by rule, on the running kernel.

use std::path::Path;
use std::process::ExitCode;

pub fn run(path: &Path) -> ExitCode {
    match super::load(path) {
        Ok((policy, _, _)) => {
            let abi = match std::env::var("LDGUARD_LANDLOCK_ABI") {
                // For tests and for planning on another kernel.
                Ok(v) => match v.parse() {
                    Ok(n) => n,
                    Err(_) => {
                        eprintln!("error: LDGUARD_LANDLOCK_ABI must be a number, got `{v}`");
                        return ExitCode::from(2);
                    }
                },
                Err(_) => ldguard_backstop::landlock_abi(),
            };
            print!("{}", ldguard_backstop::explain(&policy, abi));
            ExitCode::SUCCESS
        }
        Err(_) => match super::load_or_report(path) {
            Err(code) => code,
            Ok(_) => unreachable!("load failed just before"),
        },
    }
}

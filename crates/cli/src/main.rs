//! The `ldguard` command. `main` only parses arguments and dispatches: each
//! subcommand group lives in its own module and returns its exit code.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod policy;
mod run;

#[derive(Parser)]
#[command(
    name = "ldguard",
    version,
    about = "In-container runtime security through LD_PRELOAD"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate, explain and test policies.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Run a command with libldguard.so preloaded, to try a policy locally.
    Run(run::RunArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Policy(cmd) => policy::run(cmd),
        Command::Run(args) => run::run(args),
    }
}

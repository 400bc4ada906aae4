//! The `ldguard` command. `main` only parses arguments and dispatches: each
//! subcommand group lives in its own module and returns its exit code.

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

mod events;
mod learn;
mod policy;
mod run;
mod server;

#[derive(Parser)]
#[command(
    name = "ldguard",
    version,
    about = "In-container runtime security through LD_PRELOAD"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    server: server::ServerArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Validate, explain and test policies.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Run a command with libldguard.so preloaded, to try a policy locally.
    Run(run::RunArgs),
    /// Summarise, tail and search event files.
    #[command(subcommand)]
    Events(events::EventsCommand),
    /// Write a policy that allows what recorded events show (see
    /// docs/learning.md).
    Learn(learn::LearnArgs),
    /// Apply a policy on the server to images (see docs/server.md).
    Assign(server::AssignArgs),
    /// Switch an assignment on the server to enforce, permissive or disabled.
    Mode(server::ModeArgs),
    /// Print a shell completion script, e.g.
    /// `ldguard completions bash > /etc/bash_completion.d/ldguard`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write man pages (ldguard.1 and one per subcommand) into DIR.
    Man {
        #[arg(value_name = "DIR", default_value = ".")]
        dir: std::path::PathBuf,
    },
}

fn main() -> ExitCode {
    restore_default_sigpipe();
    let cli = Cli::parse();
    match cli.command {
        Command::Policy(cmd) => policy::run(cmd, &cli.server),
        Command::Run(args) => run::run(args),
        Command::Events(cmd) => events::run(cmd, &cli.server),
        Command::Learn(args) => learn::run(args),
        Command::Assign(args) => server::assign(args, &cli.server),
        Command::Mode(args) => server::mode(args, &cli.server),
        // Both come from the clap definitions above, so they cannot drift.
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "ldguard",
                &mut std::io::stdout(),
            );
            ExitCode::SUCCESS
        }
        Command::Man { dir } => match clap_mangen::generate_to(Cli::command(), &dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ldguard man: {}: {e}", dir.display());
                ExitCode::from(1)
            }
        },
    }
}

/// Rust ignores SIGPIPE, so printing into a closed pipe (`ldguard events
/// tail F | head`) would panic with exit 101. Like coreutils, end quietly
/// instead: the default action terminates the process on the first write
/// to a pipe nobody reads. (Commands started by `ldguard run` get the
/// default disposition from std either way.)
fn restore_default_sigpipe() {
    // SAFETY: called first in main, before any thread exists; SIG_DFL is a
    // valid disposition and no handler code runs.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

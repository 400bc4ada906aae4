//! `ldguard events summary|tail|grep FILE...`: look into event files.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};

mod filter;
pub mod read;
mod show;
mod summary;

pub use filter::FilterArgs;
pub use show::line;

#[derive(Subcommand, Debug)]
pub enum EventsCommand {
    /// Count events by action, kind, rule, program and target.
    Summary {
        #[command(flatten)]
        common: Common,
        /// How many entries to show per table.
        #[arg(long, default_value_t = 10, value_name = "N")]
        top: usize,
    },
    /// Print the last events (all of them with `-n 0`; `-f` to follow).
    Tail {
        #[command(flatten)]
        common: Common,
        #[arg(short = 'n', long = "lines", default_value_t = 20, value_name = "N")]
        count: usize,
        /// Keep watching the last file and print matching events as they
        /// are appended (until interrupted).
        #[arg(short = 'f', long)]
        follow: bool,
    },
    /// Print the events whose program, target, rule, arguments or message
    /// contain PATTERN.
    Grep {
        /// Text to look for (plain, case-sensitive).
        #[arg(value_name = "PATTERN")]
        pattern: String,
        #[command(flatten)]
        common: Common,
    },
    /// Search the events stored on an ldguard-server (`--server`).
    Search(crate::server::SearchArgs),
}

/// Files, filters and output format, shared by every `events` command.
#[derive(Args, Debug)]
pub struct Common {
    /// Event files (JSON lines); `-` reads standard input.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Output: `text` for people, `json` for programs.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

pub fn run(cmd: EventsCommand, server: &crate::server::ServerArgs) -> ExitCode {
    let result = match cmd {
        EventsCommand::Search(args) => return crate::server::search(args, server),
        EventsCommand::Summary { common, top } => summary::run(&common, top),
        EventsCommand::Tail {
            common,
            count,
            follow,
        } => show::tail(&common, count, follow),
        EventsCommand::Grep { pattern, common } => show::grep(&common, &pattern),
    };
    match result {
        Ok(read) if read.bad_files > 0 => ExitCode::from(2),
        Ok(_) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("ldguard events: {message}");
            ExitCode::from(2)
        }
    }
}

//! `ldguard-layer completions SHELL` and `ldguard-layer man [DIR]`: shell
//! completion scripts and man pages generated from the same clap
//! definitions that parse the command line, so they cannot drift from it.
//!
//! The builder's command line is a positional image (`ldguard-layer SRC
//! [DST]`) beside the `install` subcommand, which [`crate::cli::main`]
//! dispatches by hand; [`command`] puts both (and these two) into one clap
//! tree for the generators.

use crate::cli::{BuildArgs, InstallArgs};
use clap::{value_parser, Arg, Command, CommandFactory};
use std::ffi::OsString;
use std::path::PathBuf;

/// The whole `ldguard-layer` command line, as the generators see it.
pub fn command() -> Command {
    BuildArgs::command()
        .name("ldguard-layer")
        .bin_name("ldguard-layer")
        .args_conflicts_with_subcommands(true)
        .subcommand_negates_reqs(true)
        .subcommand(
            InstallArgs::command()
                .name("install")
                .bin_name("ldguard-layer install"),
        )
        .subcommand(
            crate::serve::ServeArgs::command()
                .name("serve")
                .bin_name("ldguard-layer serve"),
        )
        .subcommand(completions_command())
        .subcommand(man_command())
}

fn completions_command() -> Command {
    Command::new("completions")
        .about("Print a shell completion script, e.g. `ldguard-layer completions bash > /etc/bash_completion.d/ldguard-layer`")
        .arg(
            Arg::new("shell")
                .required(true)
                .value_name("SHELL")
                .value_parser(value_parser!(clap_complete::Shell)),
        )
}

fn man_command() -> Command {
    Command::new("man")
        .about("Write man pages (ldguard-layer.1 and one per subcommand) into DIR")
        .arg(
            Arg::new("dir")
                .value_name("DIR")
                .default_value(".")
                .value_parser(value_parser!(PathBuf)),
        )
}

/// Runs `completions` or `man` when `args[1]` names one; `None` otherwise.
pub fn dispatch(args: &[OsString]) -> Option<i32> {
    let sub = args.get(1)?.to_str()?;
    let (parser, name) = match sub {
        "completions" => (completions_command(), "ldguard-layer completions"),
        "man" => (man_command(), "ldguard-layer man"),
        _ => return None,
    };
    let matches = match parser
        .bin_name(name)
        .try_get_matches_from(args.iter().skip(1))
    {
        Ok(m) => m,
        Err(e) => e.exit(),
    };
    Some(if sub == "completions" {
        let shell = *matches
            .get_one::<clap_complete::Shell>("shell")
            .expect("required argument");
        clap_complete::generate(
            shell,
            &mut command(),
            "ldguard-layer",
            &mut std::io::stdout(),
        );
        0
    } else {
        let dir = matches.get_one::<PathBuf>("dir").expect("has a default");
        match clap_mangen::generate_to(command(), dir) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("ldguard-layer man: {}: {e}", dir.display());
                1
            }
        }
    })
}

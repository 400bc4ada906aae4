//! `ldguard learn EVENTS... [--base POLICY] [--name NAME]`: prints a policy
//! that allows what the events show and denies the rest (see
//! docs/learning.md). The learning itself is `ldguard-learn`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use ldguard_learn::{Base, BaseError, Learner, Options};

use crate::events::read::for_each_event;

#[derive(Args, Debug)]
pub struct LearnArgs {
    /// Event files (JSON lines, e.g. written with `log: ["behavior"]`);
    /// `-` reads standard input.
    #[arg(required = true, value_name = "EVENTS")]
    events: Vec<PathBuf>,
    /// Merge into this policy instead of starting fresh: its rules stay
    /// first and its explicit denies are kept.
    #[arg(long, value_name = "POLICY")]
    base: Option<PathBuf>,
    /// Name of the learned policy (default: the base's, else `learned`).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Write the policy to this file instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
}

pub fn run(args: LearnArgs) -> ExitCode {
    let base = match &args.base {
        None => None,
        Some(path) => match load_base(path) {
            Ok(b) => Some(b),
            Err(code) => return code,
        },
    };
    let mut learner = Learner::default();
    let report = for_each_event("ldguard learn", &args.events, |e| learner.observe(&e));
    if report.bad_files > 0 {
        eprintln!("ldguard learn: no policy written: some event files could not be read");
        return ExitCode::from(2);
    }
    if learner.behavior_records() == 0 {
        eprintln!(
            "ldguard learn: no policy written: {} holds no behavior records ({} events read), \
             so there is nothing to learn from\n  \
             hint: record the workload under a policy whose \"log\" includes \"behavior\", e.g.\n    \
             ldguard run --policy record.json --mode permissive --events file:events.jsonl -- CMD\n  \
             with {{\"apiVersion\": \"ldguard.policy/v1\", \"name\": \"record\", \"log\": [\"behavior\"]}} \
             in record.json (see docs/learning.md)",
            args.events
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            learner.events()
        );
        return ExitCode::from(1);
    }
    let opts = Options {
        name: args
            .name
            .clone()
            .or_else(|| base.is_none().then(|| "learned".to_owned())),
        sources: args
            .events
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        ephemeral: ephemeral_ports(),
    };
    let learned = match learner.learn(&opts, base.as_ref()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("ldguard learn: {e}");
            return ExitCode::from(1);
        }
    };
    for note in &learned.notes {
        eprintln!("ldguard learn: note: {note}");
    }
    if report.bad_lines > 0 {
        eprintln!(
            "ldguard learn: note: {} unreadable lines were skipped (see above)",
            report.bad_lines
        );
    }
    let mut text = match serde_json::to_string_pretty(&learned.policy) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("ldguard learn: cannot serialise the policy: {e}");
            return ExitCode::from(1);
        }
    };
    text.push('\n');
    let written = match &args.output {
        Some(path) => std::fs::write(path, &text)
            .map_err(|e| format!("{}: cannot write: {e}", path.display())),
        None => std::io::stdout()
            .write_all(text.as_bytes())
            .map_err(|e| format!("cannot write to standard output: {e}")),
    };
    if let Err(e) = written {
        eprintln!("ldguard learn: {e}");
        return ExitCode::from(2);
    }
    eprintln!(
        "ldguard learn: {} events, {} distinct operations, {} rules",
        learner.events(),
        learner.operations(),
        learned.policy.rules.len()
    );
    ExitCode::SUCCESS
}

fn load_base(path: &PathBuf) -> Result<Base, ExitCode> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        eprintln!("ldguard learn: {origin}: cannot read the base policy: {e}");
        ExitCode::from(2)
    })?;
    Base::parse(&text, &origin).map_err(|e| {
        match e {
            BaseError::Invalid(diags) => {
                eprint!("{}", diags.render(&text));
                eprintln!("ldguard learn: {origin} is not a valid policy; fix it or drop --base");
            }
            BaseError::Unreadable(why) => eprintln!("ldguard learn: {origin}: {why}"),
        }
        ExitCode::from(1)
    })
}

/// This machine's ephemeral port range; Linux's default when unreadable.
fn ephemeral_ports() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| {
            let mut it = t.split_whitespace().map(|n| n.parse::<u16>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32768, 60999))
}

//! `ldguard policy push|pull|versions` against a server.

use super::{encode, finish, Body, Failure, ServerArgs};
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub enum PolicyServerCommand {
    /// Store FILE on the server as the next version of the policy it names
    /// (validated there; nothing is stored when it is invalid).
    Push {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Print a version of a policy (the latest published one by default).
    Pull {
        name: String,
        #[arg(long)]
        version: Option<i64>,
    },
    /// List the versions of a policy.
    Versions { name: String },
}

pub fn policy(cmd: PolicyServerCommand, server: &ServerArgs) -> ExitCode {
    finish("ldguard policy", run(cmd, server))
}

fn run(cmd: PolicyServerCommand, server: &ServerArgs) -> Result<(), Failure> {
    let client = server.client()?;
    match cmd {
        PolicyServerCommand::Push { file } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| Failure::usage(format!("{}: cannot read: {e}", file.display())))?;
            // The server stores JSON: a YAML policy is checked here, with
            // diagnostics in its own lines, and sent as its JSON translation.
            let text =
                crate::policy::json_text_to_push(&file, text).map_err(|(rendered, message)| {
                    Failure {
                        message,
                        rendered,
                        code: 1,
                    }
                })?;
            let path = format!(
                "/api/v1/policies?file={}",
                encode(&file.display().to_string())
            );
            let answer = client.call("POST", &path, Some(Body::Text(text)))?;
            let what = if answer["created"] == true {
                "stored as"
            } else {
                "unchanged, still"
            };
            println!(
                "{} {what} version {}",
                answer["name"].as_str().unwrap_or_default(),
                answer["version"]
            );
        }
        PolicyServerCommand::Pull { name, version } => {
            let path = match version {
                Some(v) => format!("/api/v1/policies/{}/versions/{v}", encode(&name)),
                None => format!("/api/v1/policies/{}", encode(&name)),
            };
            let answer = client.call("GET", &path, None)?;
            let text = serde_json::to_string_pretty(&answer["policy"]).unwrap_or_default();
            println!("{text}");
        }
        PolicyServerCommand::Versions { name } => {
            let answer = client.call(
                "GET",
                &format!("/api/v1/policies/{}/versions", encode(&name)),
                None,
            )?;
            for v in answer["versions"].as_array().into_iter().flatten() {
                let secs = v["created_us"].as_i64().unwrap_or(0) / 1_000_000;
                println!(
                    "{}\t{}\t{}{}",
                    v["version"],
                    ldguard_events::format_time(secs, 0),
                    &v["sha256"].as_str().unwrap_or_default()
                        [..12.min(v["sha256"].as_str().unwrap_or_default().len())],
                    if v["draft"] == true {
                        format!("\tdraft: {}", v["note"].as_str().unwrap_or_default())
                    } else {
                        String::new()
                    }
                );
            }
        }
    }
    Ok(())
}

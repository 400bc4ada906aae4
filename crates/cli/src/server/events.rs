//! `ldguard events search`: stored events on the server, newest first.

use super::{encode, finish, Failure, ServerArgs};
use crate::events::Format;
use clap::Args;
use ldguard_events::Event;
use serde_json::Value;
use std::io::IsTerminal;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct SearchArgs {
    /// From this time: RFC 3339, Unix seconds, or an age like 15m, 2h, 7d.
    #[arg(long)]
    from: Option<String>,
    /// Until this time (exclusive).
    #[arg(long)]
    to: Option<String>,
    #[arg(long)]
    image: Option<String>,
    #[arg(long)]
    container: Option<String>,
    #[arg(long)]
    program: Option<String>,
    #[arg(long)]
    call: Option<String>,
    #[arg(long)]
    kind: Option<String>,
    /// allow, audit, deny or kill.
    #[arg(long)]
    action: Option<String>,
    #[arg(long)]
    rule: Option<String>,
    #[arg(long)]
    severity: Option<String>,
    /// Free text in the program, target, rule or message (case-insensitive).
    #[arg(long, short = 'q')]
    text: Option<String>,
    /// At most this many events.
    #[arg(long, default_value_t = 100)]
    limit: u32,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

pub fn search(args: SearchArgs, server: &ServerArgs) -> ExitCode {
    finish("ldguard events search", run(args, server))
}

fn run(a: SearchArgs, server: &ServerArgs) -> Result<(), Failure> {
    let client = server.client()?;
    let mut query = vec![format!("limit={}", a.limit)];
    for (key, value) in [
        ("from", &a.from),
        ("to", &a.to),
        ("image", &a.image),
        ("container", &a.container),
        ("program", &a.program),
        ("call", &a.call),
        ("kind", &a.kind),
        ("action", &a.action),
        ("rule", &a.rule),
        ("severity", &a.severity),
        ("q", &a.text),
    ] {
        if let Some(v) = value {
            query.push(format!("{key}={}", encode(v)));
        }
    }
    let answer = client.call("GET", &format!("/api/v1/events?{}", query.join("&")), None)?;
    let events = answer["events"].as_array().cloned().unwrap_or_default();
    let colour = std::io::stdout().is_terminal();
    for mut e in events {
        match a.format {
            Format::Json => println!("{e}"),
            Format::Text => {
                let id = e.as_object_mut().and_then(|o| o.remove("id"));
                match serde_json::from_value::<Event>(e) {
                    Ok(event) => println!(
                        "#{}  {}",
                        id.unwrap_or(Value::Null),
                        crate::events::line(&event, colour)
                    ),
                    Err(err) => {
                        println!("#{}  (unreadable event: {err})", id.unwrap_or(Value::Null))
                    }
                }
            }
        }
    }
    Ok(())
}

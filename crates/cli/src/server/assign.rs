//! `ldguard assign` and `ldguard mode`: which policy applies to which
//! images, and in which mode.

use super::{encode, finish, Body, Failure, ServerArgs};
use clap::{Args, ValueEnum};
use serde_json::{json, Map, Value};
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct AssignArgs {
    /// The assignment's name (created or replaced).
    name: String,
    /// The policy to apply.
    #[arg(long)]
    policy: String,
    /// A fixed version (default: always the latest published version).
    #[arg(long)]
    version: Option<i64>,
    /// Image name globs, e.g. `shop/*` or `shop/web:1.4`.
    #[arg(long = "image", value_name = "GLOB")]
    images: Vec<String>,
    /// Image digests (`sha256:…`).
    #[arg(long = "digest", value_name = "DIGEST")]
    digests: Vec<String>,
    /// Image labels that must match, `KEY=VALUE`.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    labels: Vec<String>,
    /// Overrides the policy's mode for these images.
    #[arg(long, value_enum)]
    mode: Option<Mode>,
    /// Overrides the policy's log (allow, audit, deny, behavior).
    #[arg(long, value_delimiter = ',')]
    log: Option<Vec<String>>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Mode {
    Enforce,
    Permissive,
    Disabled,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Permissive => "permissive",
            Mode::Disabled => "disabled",
        }
    }
}

#[derive(Args, Debug)]
pub struct ModeArgs {
    /// The assignment to switch.
    name: String,
    #[arg(value_enum)]
    mode: Mode,
}

pub fn assign(args: AssignArgs, server: &ServerArgs) -> ExitCode {
    finish("ldguard assign", run_assign(args, server))
}

fn run_assign(a: AssignArgs, server: &ServerArgs) -> Result<(), Failure> {
    let client = server.client()?;
    let mut labels = Map::new();
    for l in &a.labels {
        let (k, v) = l
            .split_once('=')
            .ok_or_else(|| Failure::usage(format!("--label {l:?}: expected KEY=VALUE")))?;
        labels.insert(k.to_string(), json!(v));
    }
    let body = json!({
        "policy": a.policy, "version": a.version, "images": a.images, "digests": a.digests,
        "labels": labels, "mode": a.mode.map(Mode::as_str), "log": a.log,
    });
    let answer = client.call(
        "PUT",
        &format!("/api/v1/assignments/{}", encode(&a.name)),
        Some(Body::Json(body)),
    )?;
    println!("{}", describe(&answer));
    Ok(())
}

pub fn mode(args: ModeArgs, server: &ServerArgs) -> ExitCode {
    finish("ldguard mode", run_mode(args, server))
}

fn run_mode(a: ModeArgs, server: &ServerArgs) -> Result<(), Failure> {
    let client = server.client()?;
    let answer = client.call(
        "PATCH",
        &format!("/api/v1/assignments/{}", encode(&a.name)),
        Some(Body::Json(json!({ "mode": a.mode.as_str() }))),
    )?;
    println!("{}", describe(&answer));
    Ok(())
}

fn describe(a: &Value) -> String {
    let version = match a["version"].as_i64() {
        Some(v) => format!("version {v}"),
        None => "latest version".to_string(),
    };
    let list = |k: &str| {
        a[k].as_array()
            .map(|l| {
                l.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    format!(
        "{}: policy {} ({version}) for images [{}]{}, mode {}",
        a["name"].as_str().unwrap_or_default(),
        a["policy"].as_str().unwrap_or_default(),
        list("images"),
        if list("digests").is_empty() {
            String::new()
        } else {
            format!(" digests [{}]", list("digests"))
        },
        a["mode"].as_str().unwrap_or("as the policy says"),
    )
}

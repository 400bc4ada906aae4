//! `ldguard policy explain FILE --kind K --program P ...`

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use ldguard_policy::{errno, Mode};

use super::request::RequestSpec;
use super::Format;

#[derive(Args)]
pub struct ExplainArgs {
    #[arg(value_name = "FILE")]
    policy: PathBuf,
    /// Instead of one decision: what the kernel backstop will enforce of
    /// the policy, rule by rule, on this kernel.
    #[arg(long, conflicts_with_all = ["kind", "program"])]
    backstop: bool,
    /// file, exec, network or syscall.
    #[arg(long, required_unless_present = "backstop")]
    kind: Option<String>,
    /// The calling program's executable.
    #[arg(long, required_unless_present = "backstop")]
    program: Option<String>,
    /// The interposed call (default by kind: openat, execve, connect/accept/bind).
    #[arg(long)]
    call: Option<String>,
    /// File or exec target.
    #[arg(long)]
    path: Option<String>,
    /// The target with symlinks resolved, when it differs.
    #[arg(long)]
    resolved_path: Option<String>,
    /// Directory relative paths are resolved against.
    #[arg(long, default_value = "/")]
    cwd: String,
    /// read or write (file).
    #[arg(long)]
    access: Option<String>,
    /// outbound, inbound or listen (network).
    #[arg(long)]
    direction: Option<String>,
    #[arg(long)]
    address: Option<String>,
    #[arg(long)]
    port: Option<u16>,
    /// tcp or udp.
    #[arg(long)]
    protocol: Option<String>,
    /// Unix socket path.
    #[arg(long)]
    unix: Option<String>,
    /// Host name the address was resolved from.
    #[arg(long)]
    host: Option<String>,
    /// Output: `text` for people, `json` for programs.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

/// `policy explain --format json`.
#[derive(serde::Serialize)]
struct Explained<'a> {
    policy: &'a str,
    mode: &'static str,
    action: &'static str,
    /// Whether the call fails (a blocking action in enforce mode).
    enforced: bool,
    /// The deciding rule; `null` when a default decided.
    rule: Option<&'a str>,
    severity: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    errno: Option<&'static str>,
    logged: bool,
}

impl ExplainArgs {
    fn spec(&self) -> RequestSpec {
        RequestSpec {
            kind: self.kind.clone().unwrap_or_default(),
            call: self.call.clone(),
            program: self.program.clone().unwrap_or_default(),
            path: self.path.clone(),
            resolved_path: self.resolved_path.clone(),
            cwd: Some(self.cwd.clone()),
            access: self.access.clone(),
            direction: self.direction.clone(),
            address: self.address.clone(),
            port: self.port,
            protocol: self.protocol.clone(),
            unix: self.unix.clone(),
            host: self.host.clone(),
        }
    }
}

pub fn run(args: &ExplainArgs) -> ExitCode {
    if args.backstop {
        return super::backstop::run(&args.policy);
    }
    let table = match super::load_or_report(&args.policy) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let owned = match args.spec().build() {
        Ok(r) => r,
        Err(msg) => {
            eprintln!("error: {msg}");
            return ExitCode::from(2);
        }
    };
    let req = owned.request();
    let decision = table.for_program(req.program).decide(&req);
    match args.format {
        Format::Text => print!(
            "{}",
            ldguard_policy::explain::explain(&table, &req, &decision)
        ),
        Format::Json => super::print_json(&Explained {
            policy: table.name(),
            mode: table.mode().as_str(),
            action: decision.action.as_str(),
            enforced: table.mode() == Mode::Enforce && decision.action.blocks(),
            rule: decision.rule.map(|i| table.rule_name(i)),
            severity: decision.severity.as_str(),
            errno: (decision.action == ldguard_policy::Action::Deny)
                .then(|| errno::name(decision.errno))
                .flatten(),
            logged: decision.log,
        }),
    }
    ExitCode::SUCCESS
}

//! `ldguard policy explain FILE --kind K --program P ...`

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use ldguard_policy::{errno, Decision, Mode, RuleTable};

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
        Format::Text => print!("{}", explain(&table, &req, &decision)),
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

/// The human-readable explanation of one decision.
pub fn explain(table: &RuleTable, req: &ldguard_policy::Request<'_>, d: &Decision) -> String {
    let mut out = String::new();
    let effect = match (table.mode(), d.action.blocks()) {
        (Mode::Enforce, true) => "enforced: the call fails".to_string(),
        (Mode::Enforce, false) => "the call proceeds".to_string(),
        (Mode::Permissive, true) => {
            "not enforced (mode permissive): the call proceeds and is reported".to_string()
        }
        (Mode::Permissive, false) => "the call proceeds".to_string(),
        (Mode::Disabled, _) => "not checked at all (mode disabled)".to_string(),
    };
    out.push_str(&format!("decision: {} ({effect})\n", d.action));
    match d.rule {
        Some(i) => {
            out.push_str(&format!(
                "rule:     `{}` (rule #{} of policy `{}`)\n",
                table.rule_name(i),
                i + 1,
                table.name()
            ));
            if let Some(desc) = table.rule_description(i) {
                out.push_str(&format!("          {desc}\n"));
            }
        }
        None => out.push_str(&format!(
            "rule:     none matched; `defaults.{}` of policy `{}` decides\n",
            req.kind,
            table.name()
        )),
    }
    out.push_str(&format!("severity: {}\n", d.severity));
    if d.action == ldguard_policy::Action::Deny {
        let name = errno::name(d.errno).unwrap_or("?");
        out.push_str(&format!("errno:    {name} ({})\n", d.errno));
    }
    let logged = if d.log {
        "yes".to_string()
    } else if table.is_ignored(req.call) {
        format!("no (`{}` is in `ignore`)", req.call.name())
    } else {
        format!("no (`{}` is not in `log`)", d.action.log_class())
    };
    out.push_str(&format!("logged:   {logged}\n"));
    out.push_str(&format!("request:  {}\n", describe(req)));
    if let Some(desc) = table.policy_description() {
        out.push_str(&format!("policy:   {desc}\n"));
    }
    out
}

/// The request as the engine saw it (paths made absolute and normalised).
fn describe(req: &ldguard_policy::Request<'_>) -> String {
    use ldguard_policy::Kind;
    let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let mut parts = vec![format!(
        "{} {} from {}",
        req.kind,
        req.call.name(),
        lossy(req.program)
    )];
    if let Some(p) = req.path {
        parts.push(format!("path={}", lossy(p)));
    }
    if let Some(p) = req.resolved_path {
        parts.push(format!("resolved={}", lossy(p)));
    }
    match req.kind {
        Kind::File => parts.push(format!("access={}", req.access)),
        Kind::Network => {
            parts.push(format!("direction={}", req.direction));
            if let Some(a) = req.address {
                parts.push(format!("address={a}"));
            }
            if let Some(p) = req.port {
                parts.push(format!("port={p}"));
            }
            if let Some(p) = req.protocol {
                parts.push(format!("protocol={p}"));
            }
            if let Some(u) = req.unix {
                parts.push(format!("unix={}", lossy(u)));
            }
            if let Some(h) = req.host {
                parts.push(format!("host={h}"));
            }
        }
        Kind::Exec | Kind::Syscall => {}
    }
    parts.join(" ")
}

//! The human-readable explanation of one decision: which rule decided (or
//! which default), what the mode makes of it, the errno, whether it is
//! logged, and the request as the engine saw it. The CLI's `policy explain`
//! and the server's console print exactly this text.

use crate::{errno, Action, Decision, Mode, Request, RuleTable};

/// The human-readable explanation of one decision.
pub fn explain(table: &RuleTable, req: &Request<'_>, d: &Decision) -> String {
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
    if d.action == Action::Deny {
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
fn describe(req: &Request<'_>) -> String {
    use crate::Kind;
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

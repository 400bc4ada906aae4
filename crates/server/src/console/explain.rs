//! "Explain this decision": the event's request run through the policy in
//! force for its image, printed exactly as `ldguard policy explain` prints
//! it (the policy crate's explanation, not a copy of it).

use super::page::{layout, Nav};
use super::{params, segment, Console, ConsoleState, PageError, PageResult, Session};
use crate::api::{assignments, events, policies, ApiError};
use axum::extract::{Path, Query, State};
use ldguard_policy::path::normalize;
use ldguard_policy::{Access, Call, Direction, Kind, Request};
use maud::{html, Markup};
use serde_json::{json, Value};
use std::net::SocketAddr;

/// The policy document an event is explained against.
pub struct InForce {
    /// The assignment that applies to the event's image, if one does.
    pub assignment: String,
    pub policy: String,
    pub version: i64,
    pub text: String,
}

/// The effective document for the event's image now (with the
/// assignment's mode and log overrides), when an assignment applies.
pub async fn policy_in_force(console: &Console, e: &Value) -> PageResult<Option<InForce>> {
    let Some(image) = e["image"].as_str() else {
        return Ok(None);
    };
    let store = &console.app.store;
    let Some(a) = assignments::resolve(store, &params(json!({ "image": image }))?).await? else {
        return Ok(None);
    };
    let (version, text) = assignments::effective_document(store, &a).await?;
    Ok(Some(InForce {
        assignment: a.name,
        policy: a.policy,
        version,
        text,
    }))
}

/// The owned parts of the request an event describes.
struct EventRequest {
    kind: Kind,
    call: Call,
    program: Vec<u8>,
    path: Option<Vec<u8>>,
    resolved: Option<Vec<u8>>,
    access: Access,
    direction: Direction,
    address: Option<SocketAddr>,
    unix: Option<Vec<u8>>,
    host: Option<String>,
}

impl EventRequest {
    fn from_event(e: &Value) -> Result<EventRequest, String> {
        let field = |k: &str| e[k].as_str();
        let kind_name = field("kind").unwrap_or_default();
        let kind = Kind::parse(kind_name)
            .ok_or_else(|| format!("a {kind_name:?} event records no policy decision"))?;
        let call_name = field("call").unwrap_or_default();
        let call =
            Call::from_name(call_name).ok_or_else(|| format!("unknown call {call_name:?}"))?;
        let abs = |p: &str| normalize(b"/", p.as_bytes());
        let target = field("target");
        let mut r = EventRequest {
            kind,
            call,
            program: abs(field("program").unwrap_or("/")),
            path: None,
            resolved: field("resolved").map(abs),
            access: Access::Read,
            direction: Direction::Outbound,
            address: None,
            unix: None,
            host: field("host").map(str::to_string),
        };
        match kind {
            Kind::File | Kind::Exec => {
                r.path = target.map(abs);
                if let Some(a) = field("access").and_then(Access::parse) {
                    r.access = a;
                }
            }
            Kind::Network => {
                if let Some(d) = field("access").and_then(Direction::parse) {
                    r.direction = d;
                }
                match target {
                    Some(t) if t.starts_with('@') => r.unix = Some(t.as_bytes().to_vec()),
                    Some(t) if t.starts_with('/') => r.unix = Some(abs(t)),
                    Some(t) => r.address = t.parse().ok(),
                    None => {}
                }
            }
            Kind::Syscall => {}
        }
        Ok(r)
    }

    fn request(&self) -> Request<'_> {
        Request {
            path: self.path.as_deref(),
            resolved_path: self.resolved.as_deref(),
            access: self.access,
            direction: self.direction,
            address: self.address.map(|a| a.ip()),
            port: self.address.map(|a| a.port()),
            unix: self.unix.as_deref(),
            host: self.host.as_deref(),
            ..Request::new(self.kind, self.call, &self.program)
        }
    }
}

/// `ldguard policy explain`'s text for the event under `text`.
pub fn explain_text(policy_text: &str, origin: &str, e: &Value) -> Result<String, String> {
    let table = ldguard_policy::compile_str(policy_text, origin)
        .map_err(|d| format!("the policy does not compile:\n{}", d.render(policy_text)))?;
    let owned = EventRequest::from_event(e)?;
    let req = owned.request();
    let decision = table.for_program(req.program).decide(&req);
    Ok(ldguard_policy::explain::explain(&table, &req, &decision))
}

pub async fn page(
    State(console): ConsoleState,
    session: Session,
    Path(id): Path<i64>,
) -> PageResult<Markup> {
    let answer = events::detail(
        State(console.app.clone()),
        session.caller.clone(),
        Path(id),
        Query(params(json!({"around": 0}))?),
    )
    .await?
    .0;
    let e = &answer["event"];
    // The document in force for the image; else the latest published
    // version of the policy the event names.
    let (source, text) = match policy_in_force(&console, e).await? {
        Some(p) => (
            format!(
                "{} v{} as assignment {} serves it now",
                p.policy, p.version, p.assignment
            ),
            p.text,
        ),
        None => {
            let name = e["policy"].as_str().ok_or_else(|| {
                PageError(ApiError::not_found(
                    "this event names no policy and no assignment applies to its image: nothing to explain against",
                ))
            })?;
            let (version, text) = policies::body(&console.app.store, name, None).await?;
            (format!("{name} v{version} (latest published)"), text)
        }
    };
    let explained = explain_text(&text, &source, e);
    let content = html! {
        p .hint { a href="/events" { "Events" } " › " a href=(format!("/events/{id}")) { "event " (id) } " › explain" }
        h1 { "Why event " (id) " was decided this way" }
        p { "Policy: " (source) }
        @match &explained {
            Ok(out) => pre #explanation aria-label="Explanation" { (out) },
            Err(why) => p role="alert" .error { (why) },
        }
        @if let Some(name) = e["policy"].as_str() {
            p { a href=(format!("/policies/{}", segment(name))) { "Versions of policy " (name) } }
        }
    };
    Ok(layout(
        &format!("Explain event {id}"),
        &session,
        Nav::Events,
        content,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"{"apiVersion": "ldguard.policy/v1", "name": "web", "mode": "enforce",
      "rules": [{"name": "no-shell-from-nginx", "kind": "exec", "program": ["/usr/sbin/nginx"],
                 "path": ["/bin/sh"], "action": "deny", "severity": "high"},
                {"name": "metadata", "kind": "network", "direction": "outbound",
                 "address": ["169.254.169.254/32"], "port": ["80"], "action": "deny"}]}"#;

    #[test]
    fn an_exec_event_is_explained_by_its_rule() {
        let e = json!({"program": "/usr/sbin/nginx", "kind": "exec", "call": "execve",
                       "target": "/bin/sh", "action": "deny"});
        let out = explain_text(POLICY, "web", &e).unwrap();
        assert!(
            out.starts_with("decision: deny (enforced: the call fails)"),
            "{out}"
        );
        assert!(
            out.contains("`no-shell-from-nginx` (rule #1 of policy `web`)"),
            "{out}"
        );
        assert!(out.contains("severity: high"), "{out}");
    }

    #[test]
    fn a_connect_event_keeps_its_address_and_port() {
        let e = json!({"program": "/usr/bin/curl", "kind": "network", "call": "connect",
                       "target": "169.254.169.254:80", "access": "outbound", "action": "deny"});
        let out = explain_text(POLICY, "web", &e).unwrap();
        assert!(out.contains("`metadata`"), "{out}");
        assert!(out.contains("address=169.254.169.254 port=80"), "{out}");
        let other_port = json!({"program": "/usr/bin/curl", "kind": "network", "call": "connect",
                       "target": "169.254.169.254:443", "access": "outbound"});
        let out = explain_text(POLICY, "web", &other_port).unwrap();
        assert!(out.contains("none matched"), "{out}");
    }

    #[test]
    fn a_status_event_has_nothing_to_explain() {
        let e = json!({"program": "/bin/true", "kind": "status", "call": "ldguard"});
        assert!(explain_text(POLICY, "web", &e)
            .unwrap_err()
            .contains("records no policy decision"));
    }
}

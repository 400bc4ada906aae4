//! Events: a filterable list whose filters live in the URL, and one event's
//! page: what happened in a sentence, every field, the same process's
//! events around it, and a link to explain the decision.

use super::page::{layout, Nav};
use super::{params, query_string, segment, ConsoleState, PageResult, Session};
use crate::api::events;
use axum::extract::{Path, Query, State};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// Events per page.
const PAGE: i64 = 50;

/// The list's filters, exactly the API's (empty fields mean "any").
#[derive(Debug, Default, Deserialize)]
pub struct Filters {
    from: Option<String>,
    to: Option<String>,
    image: Option<String>,
    container: Option<String>,
    program: Option<String>,
    call: Option<String>,
    kind: Option<String>,
    action: Option<String>,
    rule: Option<String>,
    severity: Option<String>,
    q: Option<String>,
    before: Option<String>,
}

impl Filters {
    fn pairs(&self) -> Vec<(&'static str, &str)> {
        [
            ("from", &self.from),
            ("to", &self.to),
            ("image", &self.image),
            ("container", &self.container),
            ("program", &self.program),
            ("call", &self.call),
            ("kind", &self.kind),
            ("action", &self.action),
            ("rule", &self.rule),
            ("severity", &self.severity),
            ("q", &self.q),
        ]
        .into_iter()
        .filter_map(|(k, v)| Some((k, v.as_deref()?.trim())).filter(|(_, v)| !v.is_empty()))
        .collect()
    }
}

fn text<'a>(e: &'a Value, key: &str) -> &'a str {
    e[key].as_str().unwrap_or("")
}

fn action_cell(e: &Value) -> Markup {
    let action = text(e, "action");
    let enforced = e["enforced"].as_bool().unwrap_or(false);
    let blocks = matches!(action, "deny" | "kill");
    html! {
        span class=(format!("action-{action}")) {
            @if blocks && !enforced { "would-" (action) } @else { (action) }
        }
    }
}

/// A table of events, newest first or in the order given.
pub fn table(events: &[Value], caption: &str, highlight: Option<i64>) -> Markup {
    html! {
        table .events {
            caption .hint { (caption) }
            thead { tr {
                th scope="col" { "Time (UTC)" } th scope="col" { "Image" }
                th scope="col" { "Container" } th scope="col" { "Program" }
                th scope="col" { "Call" } th scope="col" { "Target" }
                th scope="col" { "Action" } th scope="col" { "Rule" }
                th scope="col" { "Severity" }
            } }
            tbody {
                @for e in events {
                    @let id = e["id"].as_i64().unwrap_or(0);
                    tr aria-current=[(highlight == Some(id)).then_some("true")] {
                        td { a href=(format!("/events/{id}")) { (text(e, "time").replace('T', " ").trim_end_matches('Z')) } }
                        td { (text(e, "image")) }
                        td { (text(e, "container")) }
                        td { (text(e, "program")) " (" (e["pid"]) ")" }
                        td { (text(e, "call")) }
                        td { code { (text(e, "target")) } }
                        td { (action_cell(e)) }
                        td { (text(e, "rule")) }
                        td { (text(e, "severity")) }
                    }
                }
            }
        }
    }
}

fn select(id: &str, label: &str, current: Option<&str>, options: &[&str]) -> Markup {
    html! {
        div {
            label for=(id) { (label) }
            select id=(id) name=(id) {
                option value="" selected[current.is_none_or(str::is_empty)] { "any" }
                @for o in options {
                    option value=(o) selected[current == Some(*o)] { (o) }
                }
            }
        }
    }
}

fn field(id: &str, label: &str, current: Option<&str>, placeholder: &str) -> Markup {
    html! {
        div {
            label for=(id) { (label) }
            input type="text" id=(id) name=(id) value=(current.unwrap_or("")) placeholder=(placeholder);
        }
    }
}

pub async fn list(
    State(console): ConsoleState,
    session: Session,
    Query(f): Query<Filters>,
) -> PageResult<Markup> {
    let mut q: Map<String, Value> = f
        .pairs()
        .into_iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    q.insert("limit".into(), json!(PAGE));
    if let Some(before) = f.before.as_deref().filter(|b| !b.is_empty()) {
        q.insert("before".into(), json!(before));
    }
    let answer = events::search(
        State(console.app.clone()),
        session.caller.clone(),
        Query(params(Value::Object(q))?),
    )
    .await?
    .0;
    let found: Vec<Value> = answer["events"].as_array().cloned().unwrap_or_default();
    let pairs = f.pairs();
    let older = answer["next"].as_str().map(|next| {
        let mut p = pairs.clone();
        p.push(("before", next));
        format!("/events?{}", query_string(&p))
    });
    fn v(s: &Option<String>) -> Option<&str> {
        s.as_deref()
    }
    let content = html! {
        h1 { "Events" }
        form method="get" action="/events" .filters aria-label="Filters" {
            (field("from", "From", v(&f.from), "1h, 2026-11-23T06:00:00Z"))
            (field("to", "To", v(&f.to), "now"))
            (field("image", "Image", v(&f.image), "shop/web:1.4"))
            (field("container", "Container", v(&f.container), ""))
            (field("program", "Program", v(&f.program), "/usr/sbin/nginx"))
            (select("action", "Action", v(&f.action), &["deny", "kill", "audit", "allow"]))
            (field("rule", "Rule", v(&f.rule), ""))
            (select("severity", "Severity", v(&f.severity), &["critical", "high", "medium", "low", "info"]))
            (select("kind", "Kind", v(&f.kind), &["file", "exec", "network", "syscall", "status"]))
            (field("q", "Text", v(&f.q), "words in program, target, rule, message"))
            div { button type="submit" { "Filter" } " " a href="/events" { "Clear" } }
        }
        @if found.is_empty() {
            p #no-events { "No events match these filters." }
        } @else {
            (table(&found, &format!("{} events, newest first", found.len()), None))
        }
        @if let Some(href) = older { p { a href=(href) rel="next" { "Older events" } } }
    };
    Ok(layout("Events", &session, Nav::Events, content))
}

/// "Process /usr/sbin/nginx was blocked from executing /bin/sh": the
/// outcome in words, from the event's fields.
pub fn sentence(e: &Value) -> String {
    let program = text(e, "program");
    if text(e, "kind") == "status" {
        return format!("Library note from {program}: {}", text(e, "message"));
    }
    let target = match (e["target"].as_str(), e["host"].as_str()) {
        (Some(t), Some(h)) => format!("{t} ({h})"),
        (Some(t), None) => t.to_string(),
        (None, _) => text(e, "call").to_string(),
    };
    let access = e["access"].as_str();
    let what = match (text(e, "kind"), access) {
        ("file", Some("read")) => format!("reading {target}"),
        ("file", _) => format!("writing {target}"),
        ("exec", _) => format!("executing {target}"),
        ("network", Some("inbound")) => format!("accepting a connection from {target}"),
        ("network", Some("listen")) => format!("listening on {target}"),
        ("network", _) => format!("connecting to {target}"),
        _ => format!("calling {target}"),
    };
    let enforced = e["enforced"].as_bool().unwrap_or(false);
    match (text(e, "action"), enforced) {
        ("kill", true) => format!("Process {program} was killed for {what}."),
        ("deny", true) => format!("Process {program} was blocked from {what}."),
        ("kill" | "deny", false) => format!(
            "Process {program} would have been blocked from {what} (mode {}: the call went ahead).",
            text(e, "mode")
        ),
        ("audit", _) => format!("Process {program} was audited {what}."),
        _ => format!("Process {program} was allowed {what}."),
    }
}

/// The fields in the order people read them; the rest follow.
const FIELDS: [(&str, &str); 22] = [
    ("program", "Process"),
    ("pid", "PID"),
    ("ppid", "Parent PID"),
    ("uid", "UID"),
    ("call", "Call"),
    ("kind", "Kind"),
    ("target", "Target"),
    ("resolved", "Resolved target"),
    ("host", "Host"),
    ("access", "Access / direction"),
    ("args", "Arguments"),
    ("action", "Action"),
    ("enforced", "Enforced"),
    ("errno", "errno"),
    ("time", "Time"),
    ("rule", "Rule"),
    ("severity", "Severity"),
    ("policy", "Policy"),
    ("mode", "Mode"),
    ("image", "Image"),
    ("container", "Container"),
    ("message", "Message"),
];

fn show_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| i.to_string())
            })
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

pub async fn detail(
    State(console): ConsoleState,
    session: Session,
    Path(id): Path<i64>,
) -> PageResult<Markup> {
    let answer = events::detail(
        State(console.app.clone()),
        session.caller.clone(),
        Path(id),
        Query(params(json!({"around": 10}))?),
    )
    .await?
    .0;
    let e = &answer["event"];
    let mut around: Vec<Value> = answer["before"].as_array().cloned().unwrap_or_default();
    around.push(e.clone());
    around.extend(answer["after"].as_array().cloned().unwrap_or_default());
    let known: Vec<&str> = FIELDS.iter().map(|(k, _)| *k).collect();
    let extra: Vec<(&String, &Value)> = e
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| !known.contains(&k.as_str()) && k.as_str() != "id")
        .collect();
    let version = super::explain::policy_in_force(&console, e)
        .await
        .ok()
        .flatten();
    let process = query_string(&[
        ("container", text(e, "container")),
        ("program", text(e, "program")),
    ]);
    let content = html! {
        p .hint { a href="/events" { "Events" } " › event " (id) }
        h1 .headline #summary { (sentence(e)) " Severity: " (text(e, "severity")) }
        p {
            a href=(format!("/events/{id}/explain")) .button #explain { "Explain this decision" }
            " · "
            a href=(format!("/events?{process}")) { "All events of this program in this container" }
        }
        h2 { "Fields" }
        table #fields {
            tbody {
                @for (key, label) in FIELDS {
                    @if let Some(v) = e.get(key).filter(|v| !v.is_null()) {
                        tr { th scope="row" { (label) } td { code { (show_value(v)) } } }
                    }
                }
                tr {
                    th scope="row" { "Policy version now in force for this image" }
                    td { @match &version {
                        Some(v) => { a href=(format!("/policies/{}/versions/{}", segment(&v.policy), v.version)) { (v.policy) " v" (v.version) } " (assignment " (v.assignment) ")" }
                        None => "none: no assignment applies to this image now",
                    } }
                }
                @for (key, v) in &extra {
                    tr { th scope="row" { (key) } td { code { (show_value(v)) } } }
                }
            }
        }
        h2 { "Other events of the same process" }
        @if around.len() <= 1 {
            p { "None stored." }
        } @else {
            (table(&around, &format!("Up to 10 events before and after this one from pid {} in container {}", e["pid"], text(e, "container")), Some(id)))
        }
    };
    Ok(layout(
        &format!("Event {id}"),
        &session,
        Nav::Events,
        content,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sentence_says_what_happened() {
        let e = json!({"program": "/usr/sbin/nginx", "kind": "exec", "call": "execve",
                       "target": "/bin/sh", "action": "deny", "enforced": true, "mode": "enforce"});
        assert_eq!(
            sentence(&e),
            "Process /usr/sbin/nginx was blocked from executing /bin/sh."
        );
        let e = json!({"program": "/bin/bash", "kind": "file", "access": "read", "call": "openat",
                       "target": "/etc/shadow", "action": "deny", "enforced": false, "mode": "permissive"});
        assert_eq!(
            sentence(&e),
            "Process /bin/bash would have been blocked from reading /etc/shadow (mode permissive: the call went ahead)."
        );
    }

    #[test]
    fn empty_filters_are_left_out() {
        let f = Filters {
            image: Some("shop/web:1.4".into()),
            rule: Some("  ".into()),
            ..Filters::default()
        };
        assert_eq!(f.pairs(), vec![("image", "shop/web:1.4")]);
    }
}

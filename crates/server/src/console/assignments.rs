//! Assignments: which policy applies to which images, the mode switch and
//! the log settings, changed only after a confirmation page that says what
//! will change.

use super::page::{layout, Nav};
use super::{params, segment, show_time, ConsoleState, PageResult, SameOrigin, Session};
use crate::api::assignments::{self, Assignment};
use crate::tokens::Role;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{json, Value};

const MODES: [(&str, &str); 3] = [
    (
        "enforce",
        "deny and kill rules take effect: matching calls fail",
    ),
    (
        "permissive",
        "every decision is computed and reported; nothing is blocked",
    ),
    ("disabled", "no checks at all"),
];
const LOG_CLASSES: [&str; 4] = ["deny", "audit", "allow", "behavior"];

/// The mode and log the library gets: the assignment's overrides, else the
/// policy's own settings.
async fn in_force(console: &super::Console, a: &Assignment) -> PageResult<(String, Vec<String>)> {
    let (_, text) = assignments::effective_document(&console.app.store, a).await?;
    let doc: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let mode = doc["mode"].as_str().unwrap_or("enforce").to_string();
    let log = match doc["log"].as_array() {
        Some(l) => l
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        None => vec!["deny".into(), "audit".into()],
    };
    Ok((mode, log))
}

fn describe_mode(a: &Assignment) -> String {
    a.mode.clone().unwrap_or_else(|| "the policy's own".into())
}

fn describe_log(log: &Option<Vec<String>>) -> String {
    match log {
        Some(l) if l.is_empty() => "nothing".into(),
        Some(l) => l.join(", "),
        None => "the policy's own".into(),
    }
}

pub async fn list(State(console): ConsoleState, session: Session) -> PageResult<Markup> {
    let answer = assignments::list(State(console.app.clone()), session.caller.clone())
        .await?
        .0;
    let list: Vec<Assignment> = params(answer["assignments"].clone())?;
    let content = html! {
        h1 { "Assignments" }
        p .hint { "An assignment says which policy version applies to which images, and may override its mode and log settings. Create them with "
            code { "ldguard assign NAME --policy P --image GLOB" } "." }
        @if list.is_empty() {
            p { "No assignment yet." }
        } @else {
            table #assignments {
                thead { tr {
                    th scope="col" { "Assignment" } th scope="col" { "Policy" } th scope="col" { "Images" }
                    th scope="col" { "Mode override" } th scope="col" { "Log override" } th scope="col" { "Changed (UTC)" }
                } }
                tbody {
                    @for a in &list {
                        tr {
                            td { a href=(format!("/assignments/{}", segment(&a.name))) { (a.name) } }
                            td { a href=(format!("/policies/{}", segment(&a.policy))) { (a.policy) }
                                 @match a.version { Some(v) => { " v" (v) }, None => " (latest)" } }
                            td { (targets(a)) }
                            td { (describe_mode(a)) }
                            td { (describe_log(&a.log)) }
                            td { (show_time(a.updated_us)) }
                        }
                    }
                }
            }
        }
    };
    Ok(layout("Assignments", &session, Nav::Assignments, content))
}

fn targets(a: &Assignment) -> String {
    let mut parts: Vec<String> = a.images.clone();
    parts.extend(a.digests.iter().cloned());
    parts.extend(a.labels.iter().map(|(k, v)| format!("label {k}={v}")));
    parts.join(", ")
}

#[derive(Deserialize)]
pub struct Saved {
    saved: Option<String>,
}

pub async fn show(
    State(console): ConsoleState,
    session: Session,
    Path(name): Path<String>,
    Query(saved): Query<Saved>,
) -> PageResult<Markup> {
    let Json(a) = assignments::get_one(
        State(console.app.clone()),
        session.caller.clone(),
        Path(name),
    )
    .await?;
    let (mode, log) = in_force(&console, &a).await?;
    let current_mode = a.mode.as_deref().unwrap_or("policy");
    let content = html! {
        p .hint { a href="/assignments" { "Assignments" } " › " (a.name) }
        @if saved.saved.is_some() { p .notice role="status" #saved { "Saved. Running processes pick up the change at their next policy refresh." } }
        h1 { "Assignment " (a.name) }
        table #assignment {
            tbody {
                tr { th scope="row" { "Policy" } td { a href=(format!("/policies/{}", segment(&a.policy))) { (a.policy) }
                    @match a.version { Some(v) => { " v" (v) }, None => " (latest published version)" } } }
                tr { th scope="row" { "Applies to" } td { (targets(&a)) } }
                tr { th scope="row" { "Mode in force" } td #mode-in-force { (mode) } }
                tr { th scope="row" { "Log in force" } td { (log.join(", ")) } }
                tr { th scope="row" { "Changed" } td { (show_time(a.updated_us)) } }
            }
        }
        @if session.is_admin() {
            form method="post" action=(format!("/assignments/{}/review", segment(&a.name))) {
                fieldset {
                    legend { "Mode" }
                    @for (m, what) in MODES {
                        div {
                            input type="radio" name="mode" id=(format!("mode-{m}")) value=(m) checked[current_mode == m];
                            label for=(format!("mode-{m}")) { strong { (m) } ": " (what) }
                        }
                    }
                    div {
                        input type="radio" name="mode" id="mode-policy" value="policy" checked[current_mode == "policy"];
                        label for="mode-policy" { "the policy's own mode" }
                    }
                }
                fieldset {
                    legend { "Log settings" }
                    div {
                        input type="checkbox" name="log_policy" id="log-policy" value="on" checked[a.log.is_none()];
                        label for="log-policy" { "use the policy's own log settings (the boxes below are then ignored)" }
                    }
                    @for c in LOG_CLASSES {
                        @let on = a.log.as_ref().is_some_and(|l| l.iter().any(|x| x == c));
                        div {
                            input type="checkbox" name=(format!("log_{c}")) id=(format!("log-{c}")) value="on" checked[on];
                            label for=(format!("log-{c}")) { "report " (c) }
                        }
                    }
                }
                button type="submit" { "Review the change" }
            }
        }
    };
    Ok(layout(
        &format!("Assignment {}", a.name),
        &session,
        Nav::Assignments,
        content,
    ))
}

/// The form of the assignment page (and, hidden, of the confirmation).
#[derive(Debug, Deserialize)]
pub struct ChangeForm {
    mode: String,
    log_policy: Option<String>,
    log_deny: Option<String>,
    log_audit: Option<String>,
    log_allow: Option<String>,
    log_behavior: Option<String>,
}

impl ChangeForm {
    fn mode(&self) -> Option<String> {
        (self.mode != "policy").then(|| self.mode.clone())
    }

    fn log(&self) -> Option<Vec<String>> {
        if self.log_policy.is_some() {
            return None;
        }
        let on = [
            ("deny", &self.log_deny),
            ("audit", &self.log_audit),
            ("allow", &self.log_allow),
            ("behavior", &self.log_behavior),
        ];
        Some(
            on.iter()
                .filter(|(_, v)| v.is_some())
                .map(|(c, _)| c.to_string())
                .collect(),
        )
    }

    fn hidden(&self) -> Markup {
        let fields = [
            ("log_policy", &self.log_policy),
            ("log_deny", &self.log_deny),
            ("log_audit", &self.log_audit),
            ("log_allow", &self.log_allow),
            ("log_behavior", &self.log_behavior),
        ];
        html! {
            input type="hidden" name="mode" value=(self.mode);
            @for (k, v) in fields { @if let Some(v) = v { input type="hidden" name=(k) value=(v); } }
        }
    }
}

/// What a mode switch means for running processes.
fn consequence(from: &str, to: &str) -> &'static str {
    match (from, to) {
        (_, "enforce") => "Calls that match deny or kill rules will fail (or the process is killed) instead of only being reported.",
        ("enforce", "permissive") => "Nothing will be blocked any more; would-be denials are only reported.",
        (_, "permissive") => "Decisions will be computed and reported; nothing is blocked.",
        (_, "disabled") => "No call will be checked or reported at all.",
        _ => "",
    }
}

pub async fn review(
    State(console): ConsoleState,
    session: Session,
    _: SameOrigin,
    Path(name): Path<String>,
    Form(form): Form<ChangeForm>,
) -> PageResult<Markup> {
    session.caller.require(Role::Admin)?;
    let Json(a) = assignments::get_one(
        State(console.app.clone()),
        session.caller.clone(),
        Path(name),
    )
    .await?;
    let (mode_now, log_now) = in_force(&console, &a).await?;
    let mut changed = a.clone();
    changed.mode = form.mode();
    changed.log = form.log();
    if let Some(m) = &changed.mode {
        if ldguard_policy::Mode::parse(m).is_none() {
            return Err(crate::api::ApiError::bad_request(format!(
                "mode {m:?}: expected enforce, permissive, disabled or policy"
            ))
            .into());
        }
    }
    let (mode_next, log_next) = in_force(&console, &changed).await?;
    let mut changes = Vec::new();
    if changed.mode != a.mode || mode_now != mode_next {
        changes.push(html! {
            li #change-mode { "Mode: " strong { (mode_now) } " → " strong { (mode_next) }
                @if changed.mode.is_none() { " (the policy's own mode)" }
                ". " (consequence(&mode_now, &mode_next)) }
        });
    }
    if changed.log != a.log || log_now != log_next {
        changes.push(html! {
            li #change-log { "Reported outcomes: " strong { (describe_log(&Some(log_now.clone()))) } " → "
                strong { (describe_log(&Some(log_next.clone()))) }
                @if changed.log.is_none() { " (the policy's own log settings)" } "." }
        });
    }
    let content = html! {
        p .hint { a href="/assignments" { "Assignments" } " › " a href=(format!("/assignments/{}", segment(&a.name))) { (a.name) } " › confirm" }
        h1 { "Confirm the change to assignment " (a.name) }
        @if changes.is_empty() {
            p #no-change { "Nothing would change." }
            p { a href=(format!("/assignments/{}", segment(&a.name))) { "Back" } }
        } @else {
            p { "Images " (targets(&a)) " (policy " (a.policy) "):" }
            ul .changes { @for c in &changes { (c) } }
            p .hint { "Running processes follow at their next policy refresh (their " code { "refreshSeconds" } ")." }
            form method="post" action=(format!("/assignments/{}/apply", segment(&a.name))) {
                (form.hidden())
                button type="submit" #apply { "Apply the change" }
                " "
                a href=(format!("/assignments/{}", segment(&a.name))) { "Cancel" }
            }
        }
    };
    Ok(layout(
        "Confirm the change",
        &session,
        Nav::Assignments,
        content,
    ))
}

pub async fn apply(
    State(console): ConsoleState,
    session: Session,
    _: SameOrigin,
    Path(name): Path<String>,
    Form(form): Form<ChangeForm>,
) -> PageResult<Response> {
    let patch = params(json!({"mode": form.mode(), "log": form.log()}))?;
    let Json(a) = assignments::patch(
        State(console.app.clone()),
        session.caller.clone(),
        Path(name),
        Json(patch),
    )
    .await?;
    Ok(Redirect::to(&format!("/assignments/{}?saved=1", segment(&a.name))).into_response())
}

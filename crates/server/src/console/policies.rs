//! Policies: the list, each policy's versions and diffs between them, an
//! editor whose validation errors appear at the offending line, and
//! "learn from this image's behavior", which stores a draft version.

use super::page::{layout, Nav};
use super::{params, segment, show_time, ConsoleState, PageError, PageResult, SameOrigin, Session};
use crate::api::{events, policies, ApiError};
use crate::tokens::Role;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use ldguard_policy::diag::Level;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{json, Value};

/// A new policy's starting text.
const TEMPLATE: &str = r#"{
  "apiVersion": "ldguard.policy/v1",
  "name": "example",
  "mode": "permissive",
  "log": ["deny", "audit"],
  "rules": [
    {"name": "no-shell", "kind": "exec", "path": ["/bin/sh", "/usr/bin/*sh"],
     "action": "deny", "severity": "high"}
  ]
}
"#;

fn version_link(name: &str, version: i64) -> String {
    format!("/policies/{}/versions/{version}", segment(name))
}

pub async fn list(State(console): ConsoleState, session: Session) -> PageResult<Markup> {
    let answer = policies::list(State(console.app.clone()), session.caller.clone())
        .await?
        .0;
    let list = answer["policies"].as_array().cloned().unwrap_or_default();
    let content = html! {
        h1 { "Policies" }
        @if session.is_admin() { p { a href="/policies/new" { "New policy" } } }
        @if list.is_empty() {
            p { "No policy stored yet." }
        } @else {
            table #policies {
                thead { tr {
                    th scope="col" { "Policy" } th scope="col" .num { "Latest version" }
                    th scope="col" { "Kind" } th scope="col" { "Stored (UTC)" } th scope="col" { "Note" }
                } }
                tbody {
                    @for p in &list {
                        @let name = p["name"].as_str().unwrap_or("");
                        tr {
                            td { a href=(format!("/policies/{}", segment(name))) { (name) } }
                            td .num { a href=(version_link(name, p["version"].as_i64().unwrap_or(0))) { (p["version"]) } }
                            td { @if p["draft"] == true { "draft" } @else { "published" } }
                            td { (show_time(p["created_us"].as_i64().unwrap_or(0))) }
                            td { (p["note"].as_str().unwrap_or("")) }
                        }
                    }
                }
            }
        }
        @if session.is_admin() {
            section .card aria-labelledby="learn-heading" {
                h2 #learn-heading { "Learn from an image's behavior" }
                p .hint { "Builds a policy from the events the image reported (run it with "
                    code { "\"log\": [\"behavior\"]" } " first) and stores it as a draft version: drafts are never served until you publish them." }
                form method="post" action="/policies/learn" {
                    label for="learn-image" { "Image" }
                    input #learn-image type="text" name="image" required placeholder="shop/web:1.4";
                    label for="learn-policy" { "Policy to add the draft to" }
                    input #learn-policy type="text" name="policy" placeholder="default: the image name without its tag";
                    label for="learn-from" { "Events since" }
                    input #learn-from type="text" name="from" value="7d";
                    button type="submit" { "Learn a draft" }
                }
            }
        }
    };
    Ok(layout("Policies", &session, Nav::Policies, content))
}

pub async fn versions(
    State(console): ConsoleState,
    session: Session,
    Path(name): Path<String>,
) -> PageResult<Markup> {
    let answer = policies::versions(
        State(console.app.clone()),
        session.caller.clone(),
        Path(name.clone()),
    )
    .await?
    .0;
    let list = answer["versions"].as_array().cloned().unwrap_or_default();
    let content = html! {
        p .hint { a href="/policies" { "Policies" } " › " (name) }
        h1 { "Policy " (name) }
        @if session.is_admin() { p { a href=(format!("/policies/{}/edit", segment(&name))) { "Edit (stores a new version)" } } }
        table #versions {
            caption .hint { "Versions are immutable; assignments without a fixed version follow the latest published one." }
            thead { tr {
                th scope="col" .num { "Version" } th scope="col" { "Kind" } th scope="col" { "Stored (UTC)" }
                th scope="col" { "Note" } th scope="col" { "Changes" }
            } }
            tbody {
                @for v in list.iter().rev() {
                    @let n = v["version"].as_i64().unwrap_or(0);
                    tr {
                        td .num { a href=(version_link(&name, n)) { "v" (n) } }
                        td { @if v["draft"] == true { "draft" } @else { "published" } }
                        td { (show_time(v["created_us"].as_i64().unwrap_or(0))) }
                        td { (v["note"].as_str().unwrap_or("")) }
                        td { @if n > 1 {
                            a href=(format!("/policies/{}/diff?from={}&to={n}", segment(&name), n - 1)) { "diff with v" (n - 1) }
                        } }
                    }
                }
            }
        }
    };
    Ok(layout(
        &format!("Policy {name}"),
        &session,
        Nav::Policies,
        content,
    ))
}

#[derive(Deserialize)]
pub struct Notice {
    saved: Option<String>,
}

pub async fn version(
    State(console): ConsoleState,
    session: Session,
    Path((name, version)): Path<(String, i64)>,
    Query(notice): Query<Notice>,
) -> PageResult<Markup> {
    let (version, text) = policies::body(&console.app.store, &name, Some(version)).await?;
    let content = html! {
        p .hint { a href="/policies" { "Policies" } " › " a href=(format!("/policies/{}", segment(&name))) { (name) } " › v" (version) }
        @match notice.saved.as_deref() {
            Some("created") => p .notice role="status" { "Stored as version " (version) "." },
            Some("unchanged") => p .notice role="status" { "The text is the same as version " (version) "; nothing new was stored." },
            Some("draft") => p .notice role="status" { "Learned and stored as draft version " (version) ". Review it, then edit and save to publish it." },
            _ => {},
        }
        h1 { "Policy " (name) " version " (version) }
        @if session.is_admin() {
            p { a href=(format!("/policies/{}/edit?version={version}", segment(&name))) { "Edit from this version" } }
        }
        pre #policy-source aria-label="Policy document" { (text) }
    };
    Ok(layout(
        &format!("{name} v{version}"),
        &session,
        Nav::Policies,
        content,
    ))
}

#[derive(Deserialize)]
pub struct DiffQuery {
    from: i64,
    to: Option<i64>,
}

pub async fn diff(
    State(console): ConsoleState,
    session: Session,
    Path(name): Path<String>,
    Query(q): Query<DiffQuery>,
) -> PageResult<Markup> {
    let answer = policies::diff(
        State(console.app.clone()),
        session.caller.clone(),
        Path(name.clone()),
        Query(params(json!({"from": q.from, "to": q.to}))?),
    )
    .await?
    .0;
    let unified = answer["unified"].as_str().unwrap_or("");
    let content = html! {
        p .hint { a href="/policies" { "Policies" } " › " a href=(format!("/policies/{}", segment(&name))) { (name) } " › diff" }
        h1 { "Policy " (name) ": v" (answer["from"]) " → v" (answer["to"]) }
        @if unified.is_empty() {
            p { "The two versions have the same text." }
        } @else {
            pre .diff aria-label="Unified diff" {
                @for line in unified.lines() {
                    @let class = if line.starts_with("+++") || line.starts_with("---") { "file" }
                        else if line.starts_with('+') { "add" }
                        else if line.starts_with('-') { "del" }
                        else if line.starts_with("@@") { "hunk" } else { "same" };
                    span class=(class) { (line) } "\n"
                }
            }
        }
    };
    Ok(layout(
        &format!("{name} diff"),
        &session,
        Nav::Policies,
        content,
    ))
}

/// One diagnostic as the editor shows it.
struct Problem {
    line: usize,
    col: usize,
    error: bool,
    headline: String,
    message: String,
    expected: Option<String>,
    hint: Option<String>,
}

fn problems(text: &str, origin: &str) -> Vec<Problem> {
    let (policy, diags) = ldguard_policy::check_str(text, origin);
    let mut out: Vec<Problem> = diags
        .iter()
        .map(|d| Problem {
            line: d.line,
            col: d.col,
            error: d.level == Level::Error,
            headline: d.headline(),
            message: d.message.clone(),
            expected: d.expected.clone(),
            hint: d.hint.clone(),
        })
        .collect();
    if policy.is_none() && out.is_empty() {
        out.push(Problem {
            line: 1,
            col: 1,
            error: true,
            headline: format!("{origin}:1:1: not a valid policy"),
            message: "not a valid policy".into(),
            expected: None,
            hint: None,
        });
    }
    out
}

fn editor(title: &str, text: &str, problems: &[Problem]) -> Markup {
    let lines: Vec<&str> = text.split('\n').collect();
    let last = lines.len().max(1);
    let at = |p: &Problem| p.line.clamp(1, last);
    let errors = problems.iter().filter(|p| p.error).count();
    html! {
        p .hint { a href="/policies" { "Policies" } }
        h1 { (title) }
        @if !problems.is_empty() {
            div role="alert" #problems .card {
                h2 { @if errors > 0 { (errors) " error" @if errors != 1 { "s" } ": nothing was stored" } @else { "Warnings" } }
                ul {
                    @for p in problems {
                        li { a href=(format!("#line-{}", at(p))) data-line=(at(p)) { "line " (p.line) ", column " (p.col) } ": " (p.message) }
                    }
                }
            }
        }
        form method="post" action="/policies/save" {
            label for="policy-text" { "Policy document (JSON)" }
            textarea #policy-text name="text" spellcheck="false" aria-describedby=[(!problems.is_empty()).then_some("problems")] { (text) }
            button type="submit" { "Validate and save" }
        }
        @if !problems.is_empty() {
            h2 { "The document with its problems at their lines" }
            ol .source aria-label="Policy document with problems" {
                @for (i, line) in lines.iter().enumerate() {
                    @let n = i + 1;
                    @let here: Vec<&Problem> = problems.iter().filter(|p| at(p) == n).collect();
                    li id=(format!("line-{n}")) class=[(!here.is_empty()).then_some("bad")] {
                        (line)
                        @for p in here {
                            p .diag role="note" {
                                strong { @if p.error { "error" } @else { "warning" } } " at column " (p.col) ": " (p.headline)
                                @if let Some(e) = &p.expected { br; "expected: " (e) }
                                @if let Some(h) = &p.hint { br; "hint: " (h) }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[derive(Deserialize)]
pub struct EditQuery {
    version: Option<i64>,
}

pub async fn edit(
    State(console): ConsoleState,
    session: Session,
    Path(name): Path<String>,
    Query(q): Query<EditQuery>,
) -> PageResult<Markup> {
    session.caller.require(Role::Admin)?;
    let (version, text) = policies::body(&console.app.store, &name, q.version).await?;
    let content = editor(&format!("Edit policy {name} (from v{version})"), &text, &[]);
    Ok(layout(
        &format!("Edit {name}"),
        &session,
        Nav::Policies,
        content,
    ))
}

pub async fn new_policy(session: Session) -> PageResult<Markup> {
    session.caller.require(Role::Admin)?;
    let content = editor("New policy", TEMPLATE, &[]);
    Ok(layout("New policy", &session, Nav::Policies, content))
}

#[derive(Deserialize)]
pub struct SaveForm {
    text: String,
}

/// Validates; with errors the editor comes back with them at their lines
/// (422), else the text is stored as a new version through the API.
pub async fn save(
    State(console): ConsoleState,
    session: Session,
    _: SameOrigin,
    Form(form): Form<SaveForm>,
) -> PageResult<Response> {
    session.caller.require(Role::Admin)?;
    // Browsers send textarea line ends as CRLF; store what was typed.
    let text = form.text.replace("\r\n", "\n");
    let found = problems(&text, "policy");
    if found.iter().any(|p| p.error) {
        let page = layout(
            "Policy has errors",
            &session,
            Nav::Policies,
            editor("Policy has errors", &text, &found),
        );
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    let (status, Json(answer)) = policies::push(
        State(console.app.clone()),
        session.caller.clone(),
        Query(params(json!({"file": "policy"}))?),
        Bytes::from(text),
    )
    .await?;
    let name = answer["name"].as_str().unwrap_or_default();
    let version = answer["version"].as_i64().unwrap_or(0);
    let saved = if status == StatusCode::CREATED {
        "created"
    } else {
        "unchanged"
    };
    Ok(Redirect::to(&format!("{}?saved={saved}", version_link(name, version))).into_response())
}

#[derive(Deserialize)]
pub struct LearnForm {
    image: String,
    policy: Option<String>,
    from: Option<String>,
}

pub async fn learn(
    State(console): ConsoleState,
    session: Session,
    _: SameOrigin,
    Form(form): Form<LearnForm>,
) -> PageResult<Response> {
    let nonempty = |s: Option<String>| s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let image = form.image.trim().to_string();
    if image.is_empty() {
        return Err(PageError(ApiError::bad_request(
            "give the image to learn from",
        )));
    }
    let mut req = json!({ "image": image });
    if let Some(p) = nonempty(form.policy) {
        req["policy"] = Value::String(p);
    }
    if let Some(f) = nonempty(form.from) {
        req["from"] = Value::String(f);
    }
    let answer = events::learn(
        State(console.app.clone()),
        session.caller.clone(),
        Json(params(req)?),
    )
    .await?
    .0;
    let name = answer["name"].as_str().unwrap_or_default();
    let version = answer["version"].as_i64().unwrap_or(0);
    Ok(Redirect::to(&format!("{}?saved=draft", version_link(name, version))).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_is_shown_at_its_line() {
        let text = "{\n  \"apiVersion\": \"ldguard.policy/v1\",\n  \"name\": \"x\",\n  \"mode\": \"enforcing\"\n}\n";
        let found = problems(text, "policy");
        assert!(
            found.iter().any(|p| p.error && p.line == 4),
            "{:?}",
            found.iter().map(|p| &p.headline).collect::<Vec<_>>()
        );
        let html = editor("t", text, &found).into_string();
        let bad = html
            .find(r#"<li id="line-4" class="bad">"#)
            .expect("line 4 marked");
        let next = html.find(r#"<li id="line-5""#).unwrap();
        assert!(html[bad..next].contains("enforcing"), "{html}");
        assert!(html[bad..next].contains("class=\"diag\""), "{html}");
    }
}

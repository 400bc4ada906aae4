//! Instrumentation: queue "instrument HOST/REPO:TAG with policy P" and follow
//! the jobs that `ldguard-layer serve` workers claim, through the same
//! handlers (and the same checks of the reference and the policy) as
//! `/api/v1/instrument/jobs`.

use super::page::{layout, Nav};
use super::{params, segment, show_time, ConsoleState, PageResult, SameOrigin, Session};
use crate::api::instrument;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::json;

/// One job as the API lists it.
#[derive(Deserialize)]
struct JobView {
    id: i64,
    image: String,
    policy: String,
    destination: Option<String>,
    state: String,
    attempts: i64,
    progress: String,
    digest: Option<String>,
    error: Option<String>,
    updated_us: i64,
}

#[derive(Deserialize)]
pub struct Queued {
    queued: Option<i64>,
}

pub async fn list(
    State(console): ConsoleState,
    session: Session,
    Query(shown): Query<Queued>,
) -> PageResult<Markup> {
    let answer = instrument::list(State(console.app.clone()), session.caller.clone())
        .await?
        .0;
    let jobs: Vec<JobView> = params(answer["jobs"].clone())?;
    let content = html! {
        h1 { "Instrumentation" }
        p .hint { "Each job pulls an image, adds the ldguard layer with a stored policy and pushes "
            code { "TAG-layered" } " (or the destination given); "
            code { "ldguard-layer serve" } " workers run them." }
        @if let Some(id) = shown.queued {
            p .notice role="status" { "Queued as job " (id) "." }
        }
        @if session.is_admin() {
            form #queue method="post" action="/instrument" {
                label for="image" { "Image (HOST/REPO:TAG)" }
                input #image name="image" required placeholder="registry.example.com/shop/web:1.4";
                label for="policy" { "Policy" }
                input #policy name="policy" required;
                label for="destination" { "Destination (optional)" }
                input #destination name="destination";
                button type="submit" { "Queue" }
            }
        }
        @if jobs.is_empty() {
            p { "No job yet." }
        } @else {
            table #jobs {
                thead { tr {
                    th scope="col" { "Job" } th scope="col" { "Image" } th scope="col" { "Policy" }
                    th scope="col" { "State" } th scope="col" { "Progress" } th scope="col" { "Attempts" }
                    th scope="col" { "Result" } th scope="col" { "Changed (UTC)" }
                } }
                tbody {
                    @for j in &jobs {
                        tr {
                            td { (j.id) }
                            td { (j.image) @if let Some(d) = &j.destination { " → " (d) } }
                            td { a href=(format!("/policies/{}", segment(&j.policy))) { (j.policy) } }
                            td { (j.state) }
                            td { (j.progress) }
                            td { (j.attempts) }
                            td {
                                @if let Some(e) = &j.error { span .bad { (e) } }
                                @else if let Some(d) = &j.digest { code { (d) } }
                            }
                            td { (show_time(j.updated_us)) }
                        }
                    }
                }
            }
        }
    };
    Ok(layout(
        "Instrumentation",
        &session,
        Nav::Instrument,
        content,
    ))
}

#[derive(Deserialize)]
pub struct QueueForm {
    image: String,
    policy: String,
    #[serde(default)]
    destination: String,
}

pub async fn queue(
    State(console): ConsoleState,
    session: Session,
    _: SameOrigin,
    Form(form): Form<QueueForm>,
) -> PageResult<Response> {
    let destination = Some(form.destination.trim()).filter(|d| !d.is_empty());
    let new = params(json!({
        "image": form.image.trim(),
        "policy": form.policy.trim(),
        "destination": destination,
    }))?;
    let (_, Json(job)) = instrument::queue(
        State(console.app.clone()),
        session.caller.clone(),
        Json(new),
    )
    .await?;
    Ok(Redirect::to(&format!("/instrument?queued={}", job.id)).into_response())
}

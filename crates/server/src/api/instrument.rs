//! Instrumentation jobs: an admin queues "instrument HOST/REPO:TAG with
//! policy P"; `ldguard-layer serve` workers claim jobs, report progress and
//! the result. A claim is a lease: a worker that stops renewing it (it died)
//! loses the job to the next worker that asks, up to [`MAX_ATTEMPTS`] tries.

use super::{policies, ApiError, ApiResult, AppStateRef, Shared};
use crate::store::{col, now_us, Store};
use crate::tokens::{Caller, Role};
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// A job whose worker died this many times is failed, not retried again.
pub const MAX_ATTEMPTS: i64 = 3;

/// Lease bounds: long enough for a slow registry between two renewals,
/// short enough that a dead worker's job is picked up again soon.
const LEASE_SECONDS: std::ops::RangeInclusive<i64> = 5..=600;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/v1/instrument/jobs", get(list).post(queue))
        .route("/api/v1/instrument/jobs/claim", post(claim))
        .route("/api/v1/instrument/jobs/{id}", get(one))
        .route("/api/v1/instrument/jobs/{id}/progress", post(progress))
        .route("/api/v1/instrument/jobs/{id}/result", post(result))
}

/// One job as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Job {
    pub id: i64,
    pub image: String,
    pub policy: String,
    /// Where the result goes; `null`: the image's tag suffixed `-layered`.
    pub destination: Option<String>,
    /// queued, running, succeeded or failed.
    pub state: String,
    pub worker: Option<String>,
    pub attempts: i64,
    /// The worker's last progress message.
    pub progress: String,
    /// The pushed manifest's digest, once succeeded.
    pub digest: Option<String>,
    /// The builder's error, once failed.
    pub error: Option<String>,
    pub created_us: i64,
    pub updated_us: i64,
}

fn from_row(r: &sqlx::any::AnyRow) -> Result<Job, sqlx::Error> {
    Ok(Job {
        id: col(r, "id")?,
        image: col(r, "image")?,
        policy: col(r, "policy")?,
        destination: col(r, "destination")?,
        state: col(r, "state")?,
        worker: col(r, "worker")?,
        attempts: col(r, "attempts")?,
        progress: col(r, "progress")?,
        digest: col(r, "digest")?,
        error: col(r, "error")?,
        created_us: col(r, "created_us")?,
        updated_us: col(r, "updated_us")?,
    })
}

async fn load(store: &Store, id: i64) -> ApiResult<Job> {
    let row = sqlx::query("SELECT * FROM instrument_jobs WHERE id = $1")
        .bind(id)
        .fetch_optional(&store.pool)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no instrumentation job {id}")))?;
    Ok(from_row(&row)?)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewJob {
    /// HOST/REPO:TAG (a `docker://` prefix is accepted).
    image: String,
    policy: String,
    #[serde(default)]
    destination: Option<String>,
}

/// HOST[:PORT]/REPO[:TAG]: the registry must be named (nothing is pulled
/// from an implied default registry) and a tag or digest given.
fn check_reference(field: &str, text: &str) -> ApiResult<String> {
    let r = text.strip_prefix("docker://").unwrap_or(text);
    let bad = |why: &str| {
        ApiError::bad_request(format!(
            "{field} {text:?}: {why}; write HOST[:PORT]/REPO:TAG, e.g. registry.example.com/shop/web:1.4"
        ))
    };
    let (host, path) = r.split_once('/').ok_or_else(|| bad("no registry host"))?;
    if !(host.contains('.') || host.contains(':') || host == "localhost") {
        return Err(bad("the first part is not a registry host"));
    }
    let last = path.rsplit('/').next().unwrap_or("");
    if path.is_empty() || !(last.contains(':') || last.contains('@')) {
        return Err(bad("no tag"));
    }
    if r.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("it contains white space"));
    }
    Ok(r.to_string())
}

/// `POST /api/v1/instrument/jobs` `{"image", "policy", "destination"?}`.
#[utoipa::path(
    operation_id = "jobs_queue",
    post,
    path = "/api/v1/instrument/jobs",
    tag = "instrument",
    summary = "Queue an instrumentation job",
    request_body = NewJob,
    responses((status = 201, description = "Queued", body = Job), (status = 400, description = "Invalid input, with the reason", body = crate::api::openapi::ErrorBody), (status = 401, description = "No or unknown token", body = crate::api::openapi::ErrorBody), (status = 403, description = "The token's role may not do this", body = crate::api::openapi::ErrorBody))
)]
pub async fn queue(
    state: AppStateRef,
    caller: Caller,
    Json(new): Json<NewJob>,
) -> ApiResult<(StatusCode, Json<Job>)> {
    caller.require(Role::Admin)?;
    let image = check_reference("image", &new.image)?;
    let destination = match &new.destination {
        Some(d) => Some(check_reference("destination", d)?),
        None => None,
    };
    // The policy must exist now: a typo is caught when queueing, not by a worker.
    policies::body(&state.store, &new.policy, None).await?;
    let now = now_us();
    let row = sqlx::query(
        "INSERT INTO instrument_jobs (image, policy, destination, state, lease_until_us, \
         attempts, progress, created_us, updated_us) \
         VALUES ($1, $2, $3, 'queued', 0, 0, 'queued', $4, $4) RETURNING id",
    )
    .bind(&image)
    .bind(&new.policy)
    .bind(destination)
    .bind(now)
    .fetch_one(&state.store.pool)
    .await?;
    let id: i64 = col(&row, "id")?;
    tracing::info!(job = id, image = %image, policy = %new.policy, "instrumentation queued");
    Ok((StatusCode::CREATED, Json(load(&state.store, id).await?)))
}

#[utoipa::path(
    operation_id = "jobs_list",
    get,
    path = "/api/v1/instrument/jobs",
    tag = "instrument",
    summary = "The latest 500 jobs",
    responses((status = 200, description = "`{\"jobs\": [Job…]}`", body = crate::api::openapi::Any), (status = 401, description = "No or unknown token", body = crate::api::openapi::ErrorBody), (status = 403, description = "The token's role may not do this", body = crate::api::openapi::ErrorBody))
)]
pub async fn list(state: AppStateRef, caller: Caller) -> ApiResult<Json<Value>> {
    caller.require(Role::Viewer)?;
    let rows = sqlx::query("SELECT * FROM instrument_jobs ORDER BY id DESC LIMIT 500")
        .fetch_all(&state.store.pool)
        .await?;
    let jobs = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
    Ok(Json(json!({ "jobs": jobs })))
}

#[utoipa::path(
    operation_id = "jobs_one",
    get,
    path = "/api/v1/instrument/jobs/{id}",
    tag = "instrument",
    summary = "One job",
    params(("id" = i64, Path, description = "The job id")),
    responses((status = 200, description = "The job", body = Job), (status = 404, description = "Not found", body = crate::api::openapi::ErrorBody), (status = 401, description = "No or unknown token", body = crate::api::openapi::ErrorBody), (status = 403, description = "The token's role may not do this", body = crate::api::openapi::ErrorBody))
)]
pub async fn one(state: AppStateRef, caller: Caller, Path(id): Path<i64>) -> ApiResult<Json<Job>> {
    caller.require(Role::Viewer)?;
    Ok(Json(load(&state.store, id).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClaimRequest {
    worker: String,
    lease_seconds: i64,
}

fn check_worker(worker: &str) -> ApiResult<()> {
    if worker.is_empty() || worker.len() > 200 {
        return Err(ApiError::bad_request(
            "worker: give a non-empty name of at most 200 bytes (e.g. the host name)",
        ));
    }
    Ok(())
}

/// `POST /api/v1/instrument/jobs/claim`: the oldest queued job, or one whose
/// worker's lease ran out; 204 when there is none.
#[utoipa::path(
    operation_id = "jobs_claim",
    post,
    path = "/api/v1/instrument/jobs/claim",
    tag = "instrument",
    summary = "A worker claims the oldest queued job (a lease)",
    request_body = ClaimRequest,
    responses((status = 200, description = "The claimed job", body = Job), (status = 204, description = "No job to do"), (status = 400, description = "Invalid input, with the reason", body = crate::api::openapi::ErrorBody), (status = 401, description = "No or unknown token", body = crate::api::openapi::ErrorBody), (status = 403, description = "The token's role may not do this", body = crate::api::openapi::ErrorBody))
)]
pub async fn claim(
    state: AppStateRef,
    caller: Caller,
    Json(req): Json<ClaimRequest>,
) -> ApiResult<Response> {
    caller.require(Role::Instrumenter)?;
    check_worker(&req.worker)?;
    if !LEASE_SECONDS.contains(&req.lease_seconds) {
        return Err(ApiError::bad_request(format!(
            "leaseSeconds {}: give {} to {}",
            req.lease_seconds,
            LEASE_SECONDS.start(),
            LEASE_SECONDS.end()
        )));
    }
    let store = &state.store;
    // Jobs whose worker died too often end here, with a reason.
    let now = now_us();
    sqlx::query(
        "UPDATE instrument_jobs SET state = 'failed', updated_us = $1, \
         error = 'the worker stopped renewing its lease (it died?) on every one of ' || \
         CAST(attempts AS TEXT) || ' attempts; see the instrumenter logs' \
         WHERE state = 'running' AND lease_until_us < $1 AND attempts >= $2",
    )
    .bind(now)
    .bind(MAX_ATTEMPTS)
    .execute(&store.pool)
    .await?;
    // Two workers may pick the same candidate: the conditional UPDATE lets
    // exactly one of them have it; the other tries the next candidate.
    for _ in 0..16 {
        let now = now_us();
        let candidate = sqlx::query(
            "SELECT id, state FROM instrument_jobs WHERE state = 'queued' \
             OR (state = 'running' AND lease_until_us < $1) ORDER BY id LIMIT 1",
        )
        .bind(now)
        .fetch_optional(&store.pool)
        .await?;
        let Some(row) = candidate else {
            return Ok(StatusCode::NO_CONTENT.into_response());
        };
        let id: i64 = col(&row, "id")?;
        let previous: String = col(&row, "state")?;
        let note = if previous == "running" {
            "claimed again: the previous worker stopped renewing its lease"
        } else {
            "claimed"
        };
        let done = sqlx::query(
            "UPDATE instrument_jobs SET state = 'running', worker = $1, lease_until_us = $2, \
             attempts = attempts + 1, progress = $3, updated_us = $4 \
             WHERE id = $5 AND (state = 'queued' OR (state = 'running' AND lease_until_us < $4))",
        )
        .bind(&req.worker)
        .bind(now + req.lease_seconds * 1_000_000)
        .bind(note)
        .bind(now)
        .bind(id)
        .execute(&store.pool)
        .await?;
        if done.rows_affected() == 1 {
            tracing::info!(job = id, worker = %req.worker, "{note}");
            let job = load(store, id).await?;
            return Ok(Json(job).into_response());
        }
    }
    Err(ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "busy",
        "other workers kept claiming the same jobs; retry",
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProgressRequest {
    worker: String,
    message: String,
    lease_seconds: i64,
}

/// Updates a running job held by this worker; 409 when it is not (any more).
async fn update_held(
    store: &Store,
    id: i64,
    worker: &str,
    set: &str,
    binds: Vec<Option<String>>,
    lease_until: Option<i64>,
) -> ApiResult<Job> {
    let now = now_us();
    let sql = format!(
        "UPDATE instrument_jobs SET {set}, updated_us = $1, lease_until_us = $2 \
         WHERE id = $3 AND worker = $4 AND state = 'running'"
    );
    let mut q = sqlx::query(&sql)
        .bind(now)
        .bind(lease_until.unwrap_or(0))
        .bind(id)
        .bind(worker.to_string());
    for b in binds {
        q = q.bind(b);
    }
    let done = q.execute(&store.pool).await?;
    if done.rows_affected() == 0 {
        let job = load(store, id).await?;
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_held",
            format!(
                "job {id} is {} and held by {}, not by {worker}: its lease ran out and another worker took it, or it ended",
                job.state,
                job.worker.as_deref().unwrap_or("nobody")
            ),
        ));
    }
    load(store, id).await
}

/// `POST /api/v1/instrument/jobs/{id}/progress`: a message, and the lease renewed.
#[utoipa::path(
    operation_id = "jobs_progress",
    post,
    path = "/api/v1/instrument/jobs/{id}/progress",
    tag = "instrument",
    summary = "A worker reports progress and renews its lease",
    params(("id" = i64, Path, description = "The job id")),
    request_body = ProgressRequest,
    responses((status = 200, description = "The job", body = Job), (status = 409, description = "This worker does not hold the job", body = crate::api::openapi::ErrorBody), (status = 404, description = "Not found", body = crate::api::openapi::ErrorBody), (status = 401, description = "No or unknown token", body = crate::api::openapi::ErrorBody), (status = 403, description = "The token's role may not do this", body = crate::api::openapi::ErrorBody))
)]
pub async fn progress(
    state: AppStateRef,
    caller: Caller,
    Path(id): Path<i64>,
    Json(req): Json<ProgressRequest>,
) -> ApiResult<Json<Job>> {
    caller.require(Role::Instrumenter)?;
    check_worker(&req.worker)?;
    let lease = req
        .lease_seconds
        .clamp(*LEASE_SECONDS.start(), *LEASE_SECONDS.end());
    let message: String = req.message.chars().take(2000).collect();
    Ok(Json(
        update_held(
            &state.store,
            id,
            &req.worker,
            "progress = $5",
            vec![Some(message)],
            Some(now_us() + lease * 1_000_000),
        )
        .await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResultRequest {
    worker: String,
    /// The pushed manifest's digest: the job succeeded.
    #[serde(default)]
    digest: Option<String>,
    /// Where it was pushed.
    #[serde(default)]
    destination: Option<String>,
    /// The builder's error: the job failed.
    #[serde(default)]
    error: Option<String>,
}

/// `POST /api/v1/instrument/jobs/{id}/result`: `{"worker", "digest",
/// "destination"}` or `{"worker", "error"}`.
#[utoipa::path(
    operation_id = "jobs_result",
    post,
    path = "/api/v1/instrument/jobs/{id}/result",
    tag = "instrument",
    summary = "A worker reports the job's result",
    params(("id" = i64, Path, description = "The job id")),
    request_body = ResultRequest,
    responses((status = 200, description = "The finished job", body = Job), (status = 409, description = "This worker does not hold the job", body = crate::api::openapi::ErrorBody), (status = 404, description = "Not found", body = crate::api::openapi::ErrorBody), (status = 401, description = "No or unknown token", body = crate::api::openapi::ErrorBody), (status = 403, description = "The token's role may not do this", body = crate::api::openapi::ErrorBody))
)]
pub async fn result(
    state: AppStateRef,
    caller: Caller,
    Path(id): Path<i64>,
    Json(req): Json<ResultRequest>,
) -> ApiResult<Json<Job>> {
    caller.require(Role::Instrumenter)?;
    check_worker(&req.worker)?;
    let job =
        match (&req.digest, &req.error) {
            (Some(d), None) => {
                if !d.starts_with("sha256:") || d.len() != 71 {
                    return Err(ApiError::bad_request(format!(
                        "digest {d:?}: expected sha256: and 64 hex digits"
                    )));
                }
                update_held(
                    &state.store,
                    id,
                    &req.worker,
                    "state = 'succeeded', progress = 'done', digest = $5, \
                 destination = COALESCE($6, destination), error = NULL",
                    vec![Some(d.clone()), req.destination.clone()],
                    None,
                )
                .await?
            }
            (None, Some(e)) => {
                let e: String = e.chars().take(8000).collect();
                update_held(
                    &state.store,
                    id,
                    &req.worker,
                    "state = 'failed', progress = 'failed', error = $5",
                    vec![Some(e)],
                    None,
                )
                .await?
            }
            _ => return Err(ApiError::bad_request(
                "give either digest (the job succeeded) or error (it failed), not both or neither",
            )),
        };
    tracing::info!(job = id, state = %job.state, "instrumentation ended");
    Ok(Json(job))
}

#[cfg(test)]
mod tests {
    use super::check_reference;

    #[test]
    fn references_name_a_registry_and_a_tag() {
        assert_eq!(
            check_reference("image", "docker://127.0.0.1:5000/shop/web:1.4").unwrap(),
            "127.0.0.1:5000/shop/web:1.4"
        );
        assert!(check_reference("image", "registry.example.com/a/b@sha256:00").is_ok());
        for bad in ["shop/web:1.4", "localhost/web", "web:1.4", "r.io/a b:1"] {
            let e = check_reference("image", bad).unwrap_err();
            assert!(
                e.message.contains("HOST[:PORT]/REPO:TAG"),
                "{bad}: {}",
                e.message
            );
        }
    }
}

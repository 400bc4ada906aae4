//! Policies: immutable numbered versions, validated on the way in.

use super::{ApiError, ApiResult, AppStateRef};
use crate::store::{col, now_us, Store};
use crate::tokens::{Caller, Role};
use axum::body::Bytes;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::Json;
use ldguard_policy::diag::Level;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Largest policy document accepted.
const MAX_POLICY_BYTES: usize = 4 << 20;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VersionInfo {
    pub name: String,
    pub version: i64,
    pub sha256: String,
    pub draft: bool,
    pub note: String,
    pub created_us: i64,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PushQuery {
    /// The file name the diagnostics should name (the CLI sends its argument).
    file: Option<String>,
}

/// `POST /api/v1/policies`: the body is a policy document; a new version of
/// the policy it names, unless it is the same text as the latest version.
#[utoipa::path(
    operation_id = "policies_push",
    post,
    path = "/api/v1/policies",
    tag = "policies",
    summary = "Push a policy document: a new version unless it is the latest text",
    params(PushQuery),
    request_body(content = String, description = "The policy document (JSON)", content_type = "application/json"),
    responses((status = 201, description = "Stored as a new version", body = crate::api::openapi::Any), (status = 200, description = "Same text as the latest version", body = crate::api::openapi::Any), (status = 422, description = "The policy is invalid: file:line:col diagnostics", body = crate::api::openapi::ErrorBody), (status = 413, description = "Too large", body = crate::api::openapi::ErrorBody), (status = 401, description = "No or unknown token", body = crate::api::openapi::ErrorBody), (status = 403, description = "The token's role may not do this", body = crate::api::openapi::ErrorBody))
)]
pub async fn push(
    state: AppStateRef,
    caller: Caller,
    Query(q): Query<PushQuery>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require(Role::Admin)?;
    if body.len() > MAX_POLICY_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "the policy is {} bytes; at most {MAX_POLICY_BYTES} are accepted",
                body.len()
            ),
        ));
    }
    let text = std::str::from_utf8(&body)
        .map_err(|e| ApiError::bad_request(format!("the policy is not UTF-8: {e}")))?;
    let origin = q.file.as_deref().unwrap_or("policy");
    let name = validate(text, origin)?;
    let (version, created) = store_version(&state.store, &name, text, false, "").await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(json!({"name": name, "version": version, "created": created})),
    ))
}

/// Validates with the policy crate; a refusal carries every diagnostic
/// (`file:line:col`, message, expected, hint and the rendered excerpt).
pub fn validate(text: &str, origin: &str) -> ApiResult<String> {
    let (policy, diags) = ldguard_policy::check_str(text, origin);
    match policy {
        Some(policy) if !diags.has_errors() => Ok(policy.name),
        _ => {
            let list: Vec<Value> = diags
                .iter()
                .map(|d| {
                    json!({
                        "level": if d.level == Level::Error { "error" } else { "warning" },
                        "file": d.origin, "line": d.line, "col": d.col,
                        "message": d.message, "expected": d.expected, "hint": d.hint,
                        "headline": d.headline(), "rendered": d.render(text),
                    })
                })
                .collect();
            let first = diags
                .iter()
                .find(|d| d.is_error())
                .map(|d| d.headline())
                .unwrap_or_else(|| format!("{origin}: not a valid policy"));
            Err(
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_policy", first)
                    .with(json!({ "diagnostics": list })),
            )
        }
    }
}

/// Stores `text` as the next version of `name`; returns the version and
/// whether it is new (an unchanged non-draft push returns the latest).
pub async fn store_version(
    store: &Store,
    name: &str,
    text: &str,
    draft: bool,
    note: &str,
) -> ApiResult<(i64, bool)> {
    let sha = hex::encode(Sha256::digest(text.as_bytes()));
    let mut tx = store.begin_write().await?;
    let latest = sqlx::query(
        "SELECT version, sha256, draft FROM policy_versions WHERE name = $1 \
         ORDER BY version DESC LIMIT 1",
    )
    .bind(name)
    .fetch_optional(&mut *tx)
    .await?;
    let mut next = 1;
    if let Some(row) = latest {
        let version: i64 = col(&row, "version")?;
        if !draft && col::<i64>(&row, "draft")? == 0 && col::<String>(&row, "sha256")? == sha {
            return Ok((version, false));
        }
        next = version + 1;
    }
    let inserted = sqlx::query(
        "INSERT INTO policy_versions (name, version, body, sha256, draft, note, created_us) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(name)
    .bind(next)
    .bind(text)
    .bind(&sha)
    .bind(i64::from(draft))
    .bind(note)
    .bind(now_us())
    .execute(&mut *tx)
    .await;
    if let Err(e) = inserted {
        if e.as_database_error()
            .is_some_and(|d| d.is_unique_violation())
        {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("another version of {name:?} was stored at the same time; push again"),
            ));
        }
        return Err(e.into());
    }
    tx.commit().await?;
    Ok((next, true))
}

fn info(row: &sqlx::any::AnyRow) -> Result<VersionInfo, sqlx::Error> {
    Ok(VersionInfo {
        name: col(row, "name")?,
        version: col(row, "version")?,
        sha256: col(row, "sha256")?,
        draft: col::<i64>(row, "draft")? != 0,
        note: col(row, "note")?,
        created_us: col(row, "created_us")?,
    })
}

/// `GET /api/v1/policies`: every policy with its latest version.
#[utoipa::path(
    operation_id = "policies_list",
    get,
    path = "/api/v1/policies",
    tag = "policies",
    summary = "Every policy with its latest version",
    responses((status = 200, description = "`{\"policies\": [VersionInfo…]}`", body = crate::api::openapi::Any), (status = 401, description = "No or unknown token", body = crate::api::openapi::ErrorBody), (status = 403, description = "The token's role may not do this", body = crate::api::openapi::ErrorBody))
)]
pub async fn list(state: AppStateRef, caller: Caller) -> ApiResult<Json<Value>> {
    caller.require(Role::Viewer)?;
    let rows = sqlx::query(
        "SELECT p.name, p.version, p.sha256, p.draft, p.note, p.created_us FROM policy_versions p \
         WHERE p.version = (SELECT MAX(version) FROM policy_versions q WHERE q.name = p.name) \
         ORDER BY p.name",
    )
    .fetch_all(&state.store.pool)
    .await?;
    let list = rows.iter().map(info).collect::<Result<Vec<_>, _>>()?;
    Ok(Json(json!({ "policies": list })))
}

/// `GET /api/v1/policies/{name}/versions`.
#[utoipa::path(
    operation_id = "policies_versions",
    get,
    path = "/api/v1/policies/{name}/versions",
    tag = "policies",
    summary = "A policy's versions",
    params(("name" = String, Path, description = "The name")),
    responses((status = 200, description = "`{\"versions\": [VersionInfo…]}`", body = crate::api::openapi::Any), (status = 404, description = "Not found", body = crate::api::openapi::ErrorBody), (status = 401, description = "No or unknown token", body = crate::api::openapi::ErrorBody), (status = 403, description = "The token's role may not do this", body = crate::api::openapi::ErrorBody))
)]
pub async fn versions(
    state: AppStateRef,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Viewer)?;
    let rows = sqlx::query(
        "SELECT name, version, sha256, draft, note, created_us FROM policy_versions \
         WHERE name = $1 ORDER BY version",
    )
    .bind(&name)
    .fetch_all(&state.store.pool)
    .await?;
    if rows.is_empty() {
        return Err(no_policy(&name));
    }
    let list = rows.iter().map(info).collect::<Result<Vec<_>, _>>()?;
    Ok(Json(json!({ "name": name, "versions": list })))
}

fn no_policy(name: &str) -> ApiError {
    ApiError::not_found(format!(
        "no policy named {name:?}; `ldguard policy push FILE` creates it"
    ))
}

/// The text of a version; `None` for the latest published (non-draft) one.
pub async fn body(store: &Store, name: &str, version: Option<i64>) -> ApiResult<(i64, String)> {
    let row = match version {
        Some(v) => {
            sqlx::query(
                "SELECT version, body FROM policy_versions WHERE name = $1 AND version = $2",
            )
            .bind(name)
            .bind(v)
            .fetch_optional(&store.pool)
            .await?
        }
        None => {
            sqlx::query(
                "SELECT version, body FROM policy_versions WHERE name = $1 AND draft = 0 \
                 ORDER BY version DESC LIMIT 1",
            )
            .bind(name)
            .fetch_optional(&store.pool)
            .await?
        }
    };
    let row = row.ok_or_else(|| match version {
        Some(v) => ApiError::not_found(format!("policy {name:?} has no version {v}")),
        None => no_policy(name),
    })?;
    Ok((col(&row, "version")?, col(&row, "body")?))
}

async fn document(store: &Store, name: &str, version: Option<i64>) -> ApiResult<Json<Value>> {
    let (version, text) = body(store, name, version).await?;
    let policy: Value = serde_json::from_str(&text)
        .map_err(|e| ApiError::bad_request(format!("stored policy does not parse: {e}")))?;
    Ok(Json(
        json!({"name": name, "version": version, "policy": policy}),
    ))
}

/// `GET /api/v1/policies/{name}`: the latest published version.
#[utoipa::path(
    operation_id = "policies_latest",
    get,
    path = "/api/v1/policies/{name}",
    tag = "policies",
    summary = "The latest published version of a policy",
    params(("name" = String, Path, description = "The name")),
    responses((status = 200, description = "The version and its document", body = crate::api::openapi::Any), (status = 404, description = "Not found", body = crate::api::openapi::ErrorBody), (status = 401, description = "No or unknown token", body = crate::api::openapi::ErrorBody), (status = 403, description = "The token's role may not do this", body = crate::api::openapi::ErrorBody))
)]
pub async fn latest(
    state: AppStateRef,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require_any(&[Role::Viewer, Role::Instrumenter])?;
    document(&state.store, &name, None).await
}

/// `GET /api/v1/policies/{name}/versions/{version}`.
#[utoipa::path(
    operation_id = "policies_version",
    get,
    path = "/api/v1/policies/{name}/versions/{version}",
    tag = "policies",
    summary = "One version of a policy",
    params(("name" = String, Path, description = "The name"), ("version" = i64, Path, description = "The version number")),
    responses((status = 200, description = "The version and its document", body = crate::api::openapi::Any), (status = 404, description = "Not found", body = crate::api::openapi::ErrorBody), (status = 401, description = "No or unknown token", body = crate::api::openapi::ErrorBody), (status = 403, description = "The token's role may not do this", body = crate::api::openapi::ErrorBody))
)]
pub async fn version(
    state: AppStateRef,
    caller: Caller,
    Path((name, version)): Path<(String, i64)>,
) -> ApiResult<Json<Value>> {
    caller.require_any(&[Role::Viewer, Role::Instrumenter])?;
    document(&state.store, &name, Some(version)).await
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DiffQuery {
    from: i64,
    to: Option<i64>,
}

/// `GET /api/v1/policies/{name}/diff?from=A&to=B`: a unified diff of the
/// two versions' text (`to` defaults to the latest).
#[utoipa::path(
    operation_id = "policies_diff",
    get,
    path = "/api/v1/policies/{name}/diff",
    tag = "policies",
    summary = "A unified diff between two versions",
    params(("name" = String, Path, description = "The name"), DiffQuery),
    responses((status = 200, description = "`{name, from, to, unified}`", body = crate::api::openapi::Any), (status = 404, description = "Not found", body = crate::api::openapi::ErrorBody), (status = 401, description = "No or unknown token", body = crate::api::openapi::ErrorBody), (status = 403, description = "The token's role may not do this", body = crate::api::openapi::ErrorBody))
)]
pub async fn diff(
    state: AppStateRef,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<DiffQuery>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Viewer)?;
    let (from, old) = body(&state.store, &name, Some(q.from)).await?;
    let (to, new) = body(&state.store, &name, q.to).await?;
    let unified = similar::TextDiff::from_lines(&old, &new)
        .unified_diff()
        .header(&format!("{name} v{from}"), &format!("{name} v{to}"))
        .to_string();
    Ok(Json(
        json!({"name": name, "from": from, "to": to, "unified": unified}),
    ))
}

/// `DELETE /api/v1/policies/{name}`: every version, only when no
/// assignment uses the policy.
#[utoipa::path(
    operation_id = "policies_delete",
    delete,
    path = "/api/v1/policies/{name}",
    tag = "policies",
    summary = "Delete every version of an unassigned policy",
    params(("name" = String, Path, description = "The name")),
    responses((status = 200, description = "Deleted", body = crate::api::openapi::Any), (status = 409, description = "Still assigned", body = crate::api::openapi::ErrorBody), (status = 404, description = "Not found", body = crate::api::openapi::ErrorBody), (status = 401, description = "No or unknown token", body = crate::api::openapi::ErrorBody), (status = 403, description = "The token's role may not do this", body = crate::api::openapi::ErrorBody))
)]
pub async fn delete(
    state: AppStateRef,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Admin)?;
    let mut tx = state.store.begin_write().await?;
    let users: Vec<String> =
        sqlx::query("SELECT name FROM assignments WHERE policy = $1 ORDER BY name")
            .bind(&name)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| col(r, "name"))
            .collect::<Result<_, _>>()?;
    if !users.is_empty() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "policy_assigned",
            format!(
                "policy {name:?} is assigned by {}; delete or reassign those first",
                users.join(", ")
            ),
        )
        .with(json!({ "assignments": users })));
    }
    let done = sqlx::query("DELETE FROM policy_versions WHERE name = $1")
        .bind(&name)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(no_policy(&name));
    }
    tx.commit().await?;
    Ok(Json(
        json!({"name": name, "deleted_versions": done.rows_affected()}),
    ))
}

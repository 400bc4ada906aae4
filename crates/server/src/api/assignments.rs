//! Assignments (which policy version applies to which images, with mode and
//! log overrides) and the library's effective-policy endpoint.

use super::policies;
use super::{ApiError, ApiResult, AppStateRef};
use crate::images::ImageGlobs;
use crate::store::{col, now_us, Store};
use crate::tokens::{Caller, Role};
use axum::extract::{Path, Query};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// One assignment as the API shows and takes it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Assignment {
    #[serde(default, skip_deserializing)]
    pub name: String,
    pub policy: String,
    /// A fixed version; absent or null means the latest published version.
    #[serde(default)]
    pub version: Option<i64>,
    /// Image name globs (`shop/*`, `shop/web:1.4`, `**`).
    #[serde(default)]
    pub images: Vec<String>,
    /// Image digests (`sha256:…`), the builder's `baseDigest`.
    #[serde(default)]
    pub digests: Vec<String>,
    /// Image labels that must all be present with these values.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Overrides the policy's `mode`.
    #[serde(default)]
    pub mode: Option<String>,
    /// Overrides the policy's `log`.
    #[serde(default)]
    pub log: Option<Vec<String>>,
    #[serde(default, skip_deserializing)]
    pub updated_us: i64,
}

/// A partial update: only the fields given change (`"version": null`
/// switches to "latest").
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Patch {
    #[serde(default)]
    policy: Option<String>,
    #[serde(default, with = "double_option")]
    version: Option<Option<i64>>,
    #[serde(default)]
    images: Option<Vec<String>>,
    #[serde(default)]
    digests: Option<Vec<String>>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default, with = "double_option")]
    mode: Option<Option<String>>,
    #[serde(default, with = "double_option")]
    log: Option<Option<Vec<String>>>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
    where
        T: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Option::<T>::deserialize(d).map(Some)
    }
}

fn from_row(r: &sqlx::any::AnyRow) -> Result<Assignment, sqlx::Error> {
    let json_col = |name: &str| -> Result<String, sqlx::Error> { col(r, name) };
    Ok(Assignment {
        name: col(r, "name")?,
        policy: col(r, "policy")?,
        version: col(r, "version")?,
        images: serde_json::from_str(&json_col("images")?).unwrap_or_default(),
        digests: serde_json::from_str(&json_col("digests")?).unwrap_or_default(),
        labels: serde_json::from_str(&json_col("labels")?).unwrap_or_default(),
        mode: col(r, "mode")?,
        log: col::<Option<String>>(r, "log")?.and_then(|l| serde_json::from_str(&l).ok()),
        updated_us: col(r, "updated_us")?,
    })
}

const SELECT: &str =
    "SELECT name, policy, version, images, digests, labels, mode, log, updated_us FROM assignments";

async fn load_all(store: &Store) -> Result<Vec<Assignment>, sqlx::Error> {
    let rows = sqlx::query(&format!("{SELECT} ORDER BY name"))
        .fetch_all(&store.pool)
        .await?;
    rows.iter().map(from_row).collect()
}

async fn load(store: &Store, name: &str) -> ApiResult<Assignment> {
    let row = sqlx::query(&format!("{SELECT} WHERE name = $1"))
        .bind(name)
        .fetch_optional(&store.pool)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no assignment named {name:?}; `ldguard assign {name} --policy P --image GLOB` creates it"
            ))
        })?;
    Ok(from_row(&row)?)
}

/// The document the library gets: the policy version with the
/// assignment's overrides applied, validated again as a whole.
pub(crate) async fn effective_document(store: &Store, a: &Assignment) -> ApiResult<(i64, String)> {
    let (version, text) = policies::body(store, &a.policy, a.version).await?;
    let mut doc: Value = serde_json::from_str(&text)
        .map_err(|e| ApiError::bad_request(format!("stored policy does not parse: {e}")))?;
    if let Some(mode) = &a.mode {
        doc["mode"] = json!(mode);
    }
    if let Some(log) = &a.log {
        doc["log"] = json!(log);
    }
    let out = serde_json::to_string(&doc).unwrap_or_default();
    Ok((version, out))
}

/// Refuses an assignment that names no image, a bad glob, a missing policy
/// version, or overrides that make the policy invalid.
async fn check(store: &Store, a: &Assignment) -> ApiResult<()> {
    if a.images.is_empty() && a.digests.is_empty() && a.labels.is_empty() {
        return Err(ApiError::bad_request(
            "an assignment needs at least one of images, digests or labels",
        ));
    }
    ImageGlobs::parse(&a.images).map_err(ApiError::bad_request)?;
    if let Some(mode) = &a.mode {
        if ldguard_policy::Mode::parse(mode).is_none() {
            return Err(ApiError::bad_request(format!(
                "mode {mode:?}: expected enforce, permissive or disabled"
            )));
        }
    }
    let (_, text) = effective_document(store, a).await?;
    policies::validate(
        &text,
        &format!("assignment {} (with its overrides)", a.name),
    )?;
    Ok(())
}

async fn save(store: &Store, a: &Assignment) -> ApiResult<()> {
    let mut tx = store.begin_write().await?;
    sqlx::query("DELETE FROM assignments WHERE name = $1")
        .bind(&a.name)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO assignments (name, policy, version, images, digests, labels, mode, log, updated_us) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&a.name)
    .bind(&a.policy)
    .bind(a.version)
    .bind(encode(&a.images))
    .bind(encode(&a.digests))
    .bind(encode(&a.labels))
    .bind(a.mode.clone())
    .bind(a.log.as_ref().map(encode))
    .bind(now_us())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

fn encode<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// `PUT /api/v1/assignments/{name}`: create or replace.
#[utoipa::path(
    operation_id = "assignments_put",
    put,
    path = "/api/v1/assignments/{name}",
    tag = "assignments",
    summary = "Create or replace an assignment",
    params(("name" = String, Path, description = "The name")),
    request_body = Assignment,
    responses((status = 200, description = "The stored assignment", body = Assignment), (status = 400, description = "Invalid input, with the reason", body = crate::api::openapi::ErrorBody), (status = 401, description = "No or unknown token", body = crate::api::openapi::ErrorBody), (status = 403, description = "The token's role may not do this", body = crate::api::openapi::ErrorBody))
)]
pub async fn put(
    state: AppStateRef,
    caller: Caller,
    Path(name): Path<String>,
    Json(mut a): Json<Assignment>,
) -> ApiResult<Json<Assignment>> {
    caller.require(Role::Admin)?;
    a.name = name;
    check(&state.store, &a).await?;
    save(&state.store, &a).await?;
    Ok(Json(load(&state.store, &a.name).await?))
}

/// `PATCH /api/v1/assignments/{name}`: change some fields, e.g.
/// `{"mode": "enforce"}` — the mode switch.
#[utoipa::path(
    operation_id = "assignments_patch",
    patch,
    path = "/api/v1/assignments/{name}",
    tag = "assignments",
    summary = "Change some fields of an assignment (e.g. its mode)",
    params(("name" = String, Path, description = "The name")),
    request_body = Patch,
    responses((status = 200, description = "The stored assignment", body = Assignment), (status = 400, description = "Invalid input, with the reason", body = crate::api::openapi::ErrorBody), (status = 404, description = "Not found", body = crate::api::openapi::ErrorBody), (status = 401, description = "No or unknown token", body = crate::api::openapi::ErrorBody), (status = 403, description = "The token's role may not do this", body = crate::api::openapi::ErrorBody))
)]
pub async fn patch(
    state: AppStateRef,
    caller: Caller,
    Path(name): Path<String>,
    Json(p): Json<Patch>,
) -> ApiResult<Json<Assignment>> {
    caller.require(Role::Admin)?;
    let mut a = load(&state.store, &name).await?;
    if let Some(v) = p.policy {
        a.policy = v;
    }
    if let Some(v) = p.version {
        a.version = v;
    }
    if let Some(v) = p.images {
        a.images = v;
    }
    if let Some(v) = p.digests {
        a.digests = v;
    }
    if let Some(v) = p.labels {
        a.labels = v;
    }
    if let Some(v) = p.mode {
        a.mode = v;
    }
    if let Some(v) = p.log {
        a.log = v;
    }
    check(&state.store, &a).await?;
    save(&state.store, &a).await?;
    tracing::info!(assignment = %name, mode = ?a.mode, "assignment changed");
    Ok(Json(load(&state.store, &name).await?))
}

#[utoipa::path(
    operation_id = "assignments_get_one",
    get,
    path = "/api/v1/assignments/{name}",
    tag = "assignments",
    summary = "One assignment",
    params(("name" = String, Path, description = "The name")),
    responses((status = 200, description = "The assignment", body = Assignment), (status = 404, description = "Not found", body = crate::api::openapi::ErrorBody), (status = 401, description = "No or unknown token", body = crate::api::openapi::ErrorBody), (status = 403, description = "The token's role may not do this", body = crate::api::openapi::ErrorBody))
)]
pub async fn get_one(
    state: AppStateRef,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Assignment>> {
    caller.require(Role::Viewer)?;
    Ok(Json(load(&state.store, &name).await?))
}

#[utoipa::path(
    operation_id = "assignments_list",
    get,
    path = "/api/v1/assignments",
    tag = "assignments",
    summary = "Every assignment",
    responses((status = 200, description = "`{\"assignments\": [Assignment…]}`", body = crate::api::openapi::Any), (status = 401, description = "No or unknown token", body = crate::api::openapi::ErrorBody), (status = 403, description = "The token's role may not do this", body = crate::api::openapi::ErrorBody))
)]
pub async fn list(state: AppStateRef, caller: Caller) -> ApiResult<Json<Value>> {
    caller.require(Role::Viewer)?;
    Ok(Json(
        json!({ "assignments": load_all(&state.store).await? }),
    ))
}

#[utoipa::path(
    operation_id = "assignments_delete",
    delete,
    path = "/api/v1/assignments/{name}",
    tag = "assignments",
    summary = "Delete an assignment",
    params(("name" = String, Path, description = "The name")),
    responses((status = 200, description = "Deleted", body = crate::api::openapi::Any), (status = 404, description = "Not found", body = crate::api::openapi::ErrorBody), (status = 401, description = "No or unknown token", body = crate::api::openapi::ErrorBody), (status = 403, description = "The token's role may not do this", body = crate::api::openapi::ErrorBody))
)]
pub async fn delete(
    state: AppStateRef,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Admin)?;
    let done = sqlx::query("DELETE FROM assignments WHERE name = $1")
        .bind(&name)
        .execute(&state.store.pool)
        .await?;
    if done.rows_affected() == 0 {
        return Err(ApiError::not_found(format!("no assignment named {name:?}")));
    }
    Ok(Json(json!({ "deleted": name })))
}

/// An image as the library identifies itself.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Identity {
    image: Option<String>,
    digest: Option<String>,
    /// `key=value`; repeat the parameter for several labels.
    #[serde(default)]
    label: Vec<String>,
}

/// How well an assignment fits an image: a digest beats labels beats a
/// name glob; among globs the longer (more specific) one wins.
fn score(a: &Assignment, id: &Identity, labels: &BTreeMap<&str, &str>) -> Option<(u8, usize)> {
    if let Some(d) = &id.digest {
        if a.digests.iter().any(|x| x == d) {
            return Some((3, 0));
        }
    }
    if !a.labels.is_empty()
        && a.labels
            .iter()
            .all(|(k, v)| labels.get(k.as_str()) == Some(&v.as_str()))
    {
        return Some((2, a.labels.len()));
    }
    let image = id.image.as_deref()?;
    let globs = ImageGlobs::parse(&a.images).ok()?;
    globs.best_match(image).map(|len| (1, len))
}

/// The assignment that applies to an image, if any.
pub async fn resolve(store: &Store, id: &Identity) -> ApiResult<Option<Assignment>> {
    let labels: BTreeMap<&str, &str> = id.label.iter().filter_map(|l| l.split_once('=')).collect();
    let mut best: Option<((u8, usize), Assignment)> = None;
    for a in load_all(store).await? {
        if let Some(s) = score(&a, id, &labels) {
            // Ties go to the first name in order, so the choice is stable.
            if best.as_ref().is_none_or(|(b, _)| s > *b) {
                best = Some((s, a));
            }
        }
    }
    Ok(best.map(|(_, a)| a))
}

/// `GET /api/v1/agent/policy?image=NAME[&digest=D][&label=K=V…]`: the
/// library's policy location. Agent tokens only fetch for their images;
/// `If-None-Match` with the current ETag answers 304.
#[utoipa::path(
    operation_id = "agent_policy",
    get,
    path = "/api/v1/agent/policy",
    tag = "agent",
    summary = "The effective policy for an image (the library's fetch; ETag / If-None-Match)",
    params(Identity),
    responses((status = 200, description = "The policy document, with an ETag", body = crate::api::openapi::Any), (status = 304, description = "Not modified since the given ETag"), (status = 404, description = "Not found", body = crate::api::openapi::ErrorBody), (status = 401, description = "No or unknown token", body = crate::api::openapi::ErrorBody), (status = 403, description = "The token's role may not do this", body = crate::api::openapi::ErrorBody))
)]
pub async fn effective(
    state: AppStateRef,
    caller: Caller,
    Query(id): Query<Identity>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    caller.require(Role::Agent)?;
    let Some(image) = id.image.as_deref() else {
        return Err(ApiError::bad_request(
            "no image: the library's policy URL must end in ?image=NAME (ldguard-layer --server writes it)",
        ));
    };
    if !caller.images.allows(image) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this agent token is not scoped to image {image:?}"),
        ));
    }
    state.metrics.policy_requests.inc();
    let a = resolve(&state.store, &id).await?.ok_or_else(|| {
        ApiError::not_found(format!(
            "no assignment applies to image {image:?}; `ldguard assign NAME --policy P --image GLOB` makes one"
        ))
    })?;
    let (version, text) = effective_document(&state.store, &a).await?;
    let etag = format!("\"{}\"", hex::encode(Sha256::digest(text.as_bytes())));
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut response = if fresh {
        state.metrics.policy_not_modified.inc();
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, "application/json")], text).into_response()
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("{} {}@{version}", a.name, a.policy)) {
        h.insert("x-ldguard-assignment", v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

//! `POST /api/v1/learn`: a draft policy version from an image's stored events.

use super::query::{Filter, Param};
use crate::api::policies::store_version;
use crate::api::{ApiError, ApiResult, AppStateRef};
use crate::store::{col, stored_body, STORED_COLUMNS};
use crate::tokens::{Caller, Role};
use axum::Json;
use ldguard_events::Event;
use serde::Deserialize;
use serde_json::{json, Value};

/// Events read per query while learning.
const PAGE: i64 = 5_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LearnRequest {
    /// The image whose events to learn from.
    image: String,
    from: Option<String>,
    to: Option<String>,
    /// The policy to add the draft version to (default: the image name's
    /// last path part, without the tag).
    policy: Option<String>,
}

/// Learns with `ldguard-learn` and stores the result as a new draft
/// version: drafts are never served as "latest" and never assigned by this.
pub async fn learn(
    state: AppStateRef,
    caller: Caller,
    Json(req): Json<LearnRequest>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Admin)?;
    let name = req.policy.clone().unwrap_or_else(|| {
        let last = req.image.rsplit('/').next().unwrap_or(&req.image);
        last.split([':', '@']).next().unwrap_or(last).to_string()
    });
    let filter = Filter {
        from: req.from.clone(),
        to: req.to.clone(),
        image: Some(req.image.clone()),
        ..Filter::default()
    };
    let mut learner = ldguard_learn::Learner::default();
    let mut after = 0i64;
    loop {
        let mut w = filter.to_where()?;
        w.push("id > ?", Param::Int(after));
        let sql = format!(
            "SELECT id, {STORED_COLUMNS} FROM events{} ORDER BY id LIMIT {PAGE}",
            w.sql
        );
        let rows = w
            .bind(sqlx::query(&sql))
            .fetch_all(&state.store.pool)
            .await?;
        for r in &rows {
            after = col(r, "id")?;
            if let Ok(e) = serde_json::from_str::<Event>(&stored_body(r)?) {
                learner.observe(&e);
            }
        }
        if (rows.len() as i64) < PAGE {
            break;
        }
    }
    if learner.events() == 0 {
        return Err(ApiError::not_found(format!(
            "no events stored for image {:?} in that time range; run it with `\"log\": [\"behavior\"]` first",
            req.image
        )));
    }
    let mut opts = ldguard_learn::Options::new(&name);
    opts.sources = vec![format!(
        "ldguard-server events of {} from {} to {}",
        req.image,
        req.from.as_deref().unwrap_or("the start"),
        req.to.as_deref().unwrap_or("now")
    )];
    let learned = learner.learn(&opts, None).map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "learn_failed",
            e,
        )
    })?;
    let text = serde_json::to_string_pretty(&learned.policy).unwrap_or_default();
    let note = format!("learned from {} events of {}", learner.events(), req.image);
    let (version, _) = store_version(&state.store, &name, &text, true, &note).await?;
    Ok(Json(json!({
        "name": name, "version": version, "draft": true,
        "events": learner.events(), "notes": learned.notes,
    })))
}

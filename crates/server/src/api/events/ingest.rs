//! `POST /api/v1/agent/events`: a batch from the library's HTTP sink.
//!
//! A batch is stored whole or not at all, in one transaction, and only then
//! acknowledged: a 2xx means stored. Batches are idempotent: the key is the
//! `Idempotency-Key` header or the SHA-256 of the body, so the sink's retry
//! of a batch whose answer was lost stores nothing twice.

use crate::api::{ApiError, ApiResult, AppStateRef};
use crate::store::{now_us, EventRow};
use crate::tokens::{Caller, Role};
use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use ldguard_events::Event;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub async fn ingest(
    state: AppStateRef,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require(Role::Agent)?;
    let limit = state.max_batch_bytes;
    let too_large = |size: String| {
        state.metrics.batches_refused.inc();
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "the batch is {size} bytes; at most {limit} are accepted (send smaller batches)"
            ),
        )
    };
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
    {
        if len > limit {
            // Read it away so the client sees the answer, not a reset
            // connection it would take for a network error and retry.
            discard(body).await;
            return Err(too_large(len.to_string()));
        }
    }
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large(format!("more than {limit}")))?;
    let events = parse(&bytes).inspect_err(|_| state.metrics.batches_refused.inc())?;
    for (i, e) in events.iter().enumerate() {
        if let Some(image) = &e.image {
            if !caller.images.allows(image) {
                state.metrics.batches_refused.inc();
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    format!("event {i}: this agent token is not scoped to image {image:?}; nothing was stored"),
                ));
            }
        }
    }
    let key = match headers.get("idempotency-key").and_then(|v| v.to_str().ok()) {
        Some(k) if !k.is_empty() && k.len() <= 200 => format!("key:{k}"),
        _ => format!("sha256:{}", hex::encode(Sha256::digest(&bytes))),
    };
    let count = events.len();
    let rows: Vec<EventRow> = events
        .into_iter()
        .filter_map(EventRow::from_event)
        .collect();
    let started = std::time::Instant::now();
    let stored = state
        .store
        .insert_events(&key, caller.token_id, now_us(), rows)
        .await;
    state
        .metrics
        .db_seconds
        .observe(started.elapsed().as_secs_f64());
    let created = stored?;
    if created {
        state.metrics.batches_stored.inc();
        state.metrics.events_stored.add(count as u64);
        Ok((
            StatusCode::CREATED,
            Json(json!({"stored": count, "batch": key})),
        ))
    } else {
        state.metrics.batches_duplicate.inc();
        Ok((
            StatusCode::OK,
            Json(json!({"stored": 0, "duplicate": true, "batch": key})),
        ))
    }
}

/// Reads a refused body to its end without keeping it (up to 64 MiB; past
/// that the connection is dropped).
async fn discard(body: Body) {
    use futures_util::StreamExt;
    let mut stream = body.into_data_stream();
    let mut left = 64usize << 20;
    while let Some(Ok(chunk)) = stream.next().await {
        left = left.saturating_sub(chunk.len());
        if left == 0 {
            break;
        }
    }
}

/// The batch as events, or a precise reason it is refused whole.
fn parse(bytes: &[u8]) -> ApiResult<Vec<Event>> {
    let refuse =
        |message: String| ApiError::new(StatusCode::BAD_REQUEST, "malformed_batch", message);
    let events: Vec<Event> = match serde_json::from_slice(bytes) {
        Ok(events) => events,
        Err(whole) => {
            // Say which event is wrong, not only where in the body.
            let values: Vec<Value> = serde_json::from_slice(bytes).map_err(|e| {
                refuse(format!(
                    "the body is not a JSON array of events: {e}; nothing was stored"
                ))
            })?;
            for (i, v) in values.into_iter().enumerate() {
                if let Err(e) = serde_json::from_value::<Event>(v) {
                    return Err(refuse(format!("event {i}: {e}; nothing was stored")));
                }
            }
            return Err(refuse(format!("{whole}; nothing was stored")));
        }
    };
    for (i, e) in events.iter().enumerate() {
        if ldguard_events::parse_time(&e.time).is_none() {
            return Err(refuse(format!(
                "event {i}: time {:?} is not RFC 3339 UTC like 2026-11-23T06:30:00.123456Z; nothing was stored",
                e.time
            )));
        }
    }
    Ok(events)
}

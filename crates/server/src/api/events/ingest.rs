//! `POST /api/v1/agent/events`: a batch from the library's HTTP sink.
//!
//! A batch is stored whole or not at all, in one transaction, and only then
//! acknowledged: a 2xx means stored. Batches are idempotent: the key is the
//! `Idempotency-Key` header or the SHA-256 of the body, so the sink's retry
//! of a batch whose answer was lost stores nothing twice.

use crate::api::{ApiError, ApiResult, AppStateRef};
use crate::store::{now_us, Store};
use crate::tokens::{Caller, Role};
use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use ldguard_events::Event;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Rows per INSERT statement (19 parameters each, under every database's limit).
const ROWS_PER_INSERT: usize = 400;

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
    let started = std::time::Instant::now();
    let stored = store(&state.store, &key, caller.token_id, &events).await;
    state
        .metrics
        .db_seconds
        .observe(started.elapsed().as_secs_f64());
    let created = stored?;
    if created {
        state.metrics.batches_stored.inc();
        state.metrics.events_stored.add(events.len() as u64);
        Ok((
            StatusCode::CREATED,
            Json(json!({"stored": events.len(), "batch": key})),
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

/// Stores the batch in one transaction; `false` when the key was seen before.
async fn store(store: &Store, key: &str, token_id: i64, events: &[Event]) -> ApiResult<bool> {
    let received = now_us();
    let mut tx = store.pool.begin().await?;
    let fresh = sqlx::query(
        "INSERT INTO batches (batch_key, received_us, events, token_id) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (batch_key) DO NOTHING",
    )
    .bind(key)
    .bind(received)
    .bind(events.len() as i64)
    .bind(token_id)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !fresh {
        tx.rollback().await?;
        return Ok(false);
    }
    for chunk in events.chunks(ROWS_PER_INSERT) {
        let mut sql = String::from(
            "INSERT INTO events (batch_key, time_us, received_us, container, image, pid, program, \
             call, kind, target, action, enforced, rule, severity, policy, mode, message, body) VALUES ",
        );
        const COLUMNS: usize = 18;
        for row in 0..chunk.len() {
            sql.push_str(if row == 0 { "(" } else { ", (" });
            for c in 0..COLUMNS {
                if c > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("${}", row * COLUMNS + c + 1));
            }
            sql.push(')');
        }
        let mut q = sqlx::query(&sql);
        for e in chunk {
            let (secs, nanos) = ldguard_events::parse_time(&e.time).unwrap_or_default();
            q = q
                .bind(key)
                .bind(secs * 1_000_000 + i64::from(nanos / 1000))
                .bind(received)
                .bind(e.container.clone())
                .bind(e.image.clone())
                .bind(i64::from(e.pid))
                .bind(e.program.clone())
                .bind(e.call.clone())
                .bind(e.kind.clone())
                .bind(e.target.clone())
                .bind(e.action.clone())
                .bind(i64::from(e.enforced))
                .bind(e.rule.clone())
                .bind(e.severity.clone())
                .bind(e.policy.clone())
                .bind(e.mode.clone())
                .bind(e.message.clone())
                .bind(
                    String::from_utf8(e.to_line())
                        .unwrap_or_default()
                        .trim_end()
                        .to_string(),
                );
        }
        q.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(true)
}

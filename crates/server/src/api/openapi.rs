//! The OpenAPI document of `/api`, generated (utoipa) from the handlers'
//! `#[utoipa::path]` attributes and their request and response types, and
//! served at `/api/openapi.json`.
//!
//! The event routes (`/api/v1/agent/events`, `/api/v1/events…`,
//! `/api/v1/learn`) are described here, on stand-in functions, rather than
//! on their handlers: those handlers are being reworked for ingest
//! throughput. `tests/openapi.rs` checks that every route the router serves
//! under `/api`, with each of its methods, is in the document, so the two
//! cannot drift apart unnoticed.

use super::{assignments, instrument, policies};
use axum::http::header;
use axum::response::IntoResponse;
use std::sync::OnceLock;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// Every error answer: `{"error": {"code", "message", …details}}`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorDetail {
    /// A stable machine-readable code (`bad_request`, `not_found`, `malformed_batch`…).
    code: String,
    /// What went wrong and how to fix it.
    message: String,
}

/// Any JSON value (the shape is given in the operation's description).
pub type Any = serde_json::Value;

/// `POST /api/v1/learn`'s body.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct LearnRequest {
    /// The image whose behavior events to learn from.
    image: String,
    from: Option<String>,
    to: Option<String>,
    /// The policy to add the draft version to (default: from the image name).
    policy: Option<String>,
}

const UNAUTHORIZED: &str = "No or unknown token";

#[utoipa::path(
    operation_id = "agent_events",
    post,
    path = "/api/v1/agent/events",
    tag = "agent",
    summary = "Store a batch of events from the library's HTTP sink, whole or not at all",
    params(("Idempotency-Key" = Option<String>, Header, description = "The batch's key (default: the body's SHA-256): a batch sent again is stored once")),
    request_body(content = Vec<Any>, description = "A JSON array of events (see the event field table in docs/server.md)"),
    responses(
        (status = 201, description = "Stored: `{\"stored\": N}`", body = Any),
        (status = 200, description = "Stored before (a retry): `{\"duplicate\": true}`", body = Any),
        (status = 400, description = "Malformed: which event and why; nothing stored", body = ErrorBody),
        (status = 413, description = "Larger than --max-batch-bytes", body = ErrorBody),
        (status = 401, description = UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = "Not an agent token, or an image outside its scope", body = ErrorBody),
    )
)]
#[allow(dead_code)]
fn ingest() {}

#[utoipa::path(
    operation_id = "events_search",
    get,
    path = "/api/v1/events",
    tag = "events",
    summary = "Search events, newest first",
    params(
        super::events::Filter,
        ("limit" = Option<i64>, Query, description = "At most this many (default 100, at most 1000)"),
        ("before" = Option<String>, Query, description = "The previous page's `next`"),
    ),
    responses(
        (status = 200, description = "`{\"events\": [event + id…], \"next\": cursor or null}`", body = Any),
        (status = 400, description = "A bad filter, named", body = ErrorBody),
        (status = 401, description = UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = "Not a viewer or admin token", body = ErrorBody),
    )
)]
#[allow(dead_code)]
fn search() {}

#[utoipa::path(
    operation_id = "events_aggregate",
    get,
    path = "/api/v1/events/aggregate",
    tag = "events",
    summary = "Counts per value of a field per time bucket, for dashboards",
    params(
        super::events::Filter,
        ("by" = String, Query, description = "action, rule, image, program, kind, severity, call or container"),
        ("bucket" = Option<i64>, Query, description = "Bucket width in seconds (default 3600)"),
    ),
    responses(
        (status = 200, description = "`{\"counts\": [{\"bucket\", \"value\", \"count\"}…]}`", body = Any),
        (status = 400, description = "A bad parameter, named", body = ErrorBody),
        (status = 401, description = UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = "Not a viewer or admin token", body = ErrorBody),
    )
)]
#[allow(dead_code)]
fn aggregate() {}

#[utoipa::path(
    operation_id = "events_detail",
    get,
    path = "/api/v1/events/{id}",
    tag = "events",
    summary = "One event with its neighbours from the same process",
    params(
        ("id" = i64, Path, description = "The event's id"),
        ("around" = Option<i64>, Query, description = "Neighbours on each side (default 5, at most 100)"),
    ),
    responses(
        (status = 200, description = "`{\"event\", \"before\": […], \"after\": […]}`", body = Any),
        (status = 404, description = "No such event", body = ErrorBody),
        (status = 401, description = UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = "Not a viewer or admin token", body = ErrorBody),
    )
)]
#[allow(dead_code)]
fn detail() {}

#[utoipa::path(
    operation_id = "learn",
    post,
    path = "/api/v1/learn",
    tag = "events",
    summary = "Learn a draft policy version from an image's behavior events (never assigned)",
    request_body = LearnRequest,
    responses(
        (status = 200, description = "The new draft version", body = Any),
        (status = 400, description = "Bad input, or no events to learn from", body = ErrorBody),
        (status = 401, description = UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = "Not an admin token", body = ErrorBody),
    )
)]
#[allow(dead_code)]
fn learn() {}

#[utoipa::path(
    operation_id = "openapi_document",
    get,
    path = "/api/openapi.json",
    tag = "meta",
    summary = "This document (no token needed)",
    security(()),
    responses((status = 200, description = "OpenAPI 3.1", body = Any))
)]
pub async fn document() -> impl IntoResponse {
    static TEXT: OnceLock<String> = OnceLock::new();
    let text = TEXT.get_or_init(|| ApiDoc::openapi().to_json().unwrap_or_default());
    ([(header::CONTENT_TYPE, "application/json")], text.as_str())
}

/// Bearer tokens (admin, viewer, agent, instrumenter) on every operation unless it says otherwise.
struct BearerTokens;

impl Modify for BearerTokens {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An admin, viewer, agent or instrumenter token made with `ldguard-server token create`",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ldguard-server",
        description = "Policies with versions, assignments, the library's policy endpoint, event ingestion and search."
    ),
    paths(
        assignments::effective,
        ingest,
        policies::list,
        policies::push,
        policies::latest,
        policies::delete,
        policies::versions,
        policies::version,
        policies::diff,
        assignments::list,
        assignments::put,
        assignments::patch,
        assignments::get_one,
        assignments::delete,
        search,
        aggregate,
        detail,
        learn,
        instrument::list,
        instrument::queue,
        instrument::claim,
        instrument::one,
        instrument::progress,
        instrument::result,
        document,
    ),
    components(schemas(policies::VersionInfo)),
    modifiers(&BearerTokens),
    security(("bearer" = []))
)]
pub struct ApiDoc;

//! The HTTP API: routes, shared state, authentication and errors.

// The console renders these handlers' answers as pages.
pub(crate) mod assignments;
pub(crate) mod events;
pub(crate) mod instrument;
pub mod openapi;
mod ops;
pub(crate) mod policies;

use crate::metrics::Metrics;
use crate::store::Store;
use crate::tokens::{Authenticator, Caller, Role};
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::Arc;

/// What every handler shares.
pub struct AppState {
    pub store: Store,
    pub auth: Authenticator,
    pub metrics: Metrics,
    /// Largest accepted event batch body, in bytes.
    pub max_batch_bytes: usize,
}

pub type Shared = Arc<AppState>;

pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        // The library's two endpoints (agent tokens).
        .route("/api/v1/agent/policy", get(assignments::effective))
        .route("/api/v1/agent/events", post(events::ingest))
        .route("/api/v1/policies", get(policies::list).post(policies::push))
        .route(
            "/api/v1/policies/{name}",
            get(policies::latest).delete(policies::delete),
        )
        .route("/api/v1/policies/{name}/versions", get(policies::versions))
        .route(
            "/api/v1/policies/{name}/versions/{version}",
            get(policies::version),
        )
        .route("/api/v1/policies/{name}/diff", get(policies::diff))
        .route("/api/v1/assignments", get(assignments::list))
        .route(
            "/api/v1/assignments/{name}",
            put(assignments::put)
                .patch(assignments::patch)
                .get(assignments::get_one)
                .delete(assignments::delete),
        )
        .route("/api/v1/events", get(events::search))
        .route("/api/v1/events/aggregate", get(events::aggregate))
        .route("/api/v1/events/{id}", get(events::detail))
        .route("/api/v1/learn", post(events::learn))
        .merge(instrument::routes())
        .route("/api/openapi.json", get(openapi::document))
        // Bodies are read by the handlers with their own limits.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}

/// An error as the API returns it: a status and
/// `{"error": {"code", "message", …details}}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn with(mut self, details: Value) -> ApiError {
        self.details = Some(details);
        self
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> ApiError {
        tracing::error!(error = %e, "database error");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            format!("the database failed: {e}; retry later"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(Value::Object(details)) = self.details {
            for (k, v) in details {
                error[k] = v;
            }
        }
        (self.status, Json(json!({ "error": error }))).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

impl FromRequestParts<Shared> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Caller, ApiError> {
        let unauthorized = |message: &str| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                message.to_string(),
            )
        };
        let header = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
            unauthorized("no Authorization header: send `Authorization: Bearer TOKEN`")
        })?;
        let secret = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .ok_or_else(|| unauthorized("the Authorization header is not `Bearer TOKEN`"))?;
        state
            .auth
            .caller(&state.store, secret)
            .await?
            .ok_or_else(|| unauthorized("unknown or revoked token"))
    }
}

impl Caller {
    /// Admins may do everything; viewers may read; agents only their two
    /// endpoints; instrumenters only the job queue's worker side and the
    /// policies' documents.
    pub fn require(&self, role: Role) -> ApiResult<()> {
        self.require_any(&[role])
    }

    /// Passes when any of `roles` would.
    pub fn require_any(&self, roles: &[Role]) -> ApiResult<()> {
        let grants = |needed: &Role| match needed {
            Role::Admin => self.role == Role::Admin,
            Role::Viewer => matches!(self.role, Role::Admin | Role::Viewer),
            Role::Agent => matches!(self.role, Role::Admin | Role::Agent),
            Role::Instrumenter => matches!(self.role, Role::Admin | Role::Instrumenter),
        };
        if roles.iter().any(grants) {
            return Ok(());
        }
        let needed: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "a {} token cannot do this; it needs a {} token",
                self.role.as_str(),
                needed.join(" or ")
            ),
        ))
    }
}

/// `State` re-exported for the handler modules.
pub type AppStateRef = State<Shared>;

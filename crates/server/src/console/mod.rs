//! The web console: server-rendered pages at `/` over the same handlers,
//! queries and tokens as the API. A page calls the API handler with the
//! caller its session cookie names and renders the answer, so the console
//! can show nothing and change nothing the API would refuse that token.
//!
//! Sessions: logging in with a token sets an `HttpOnly`, `SameSite=Strict`
//! cookie holding that token, checked on every request like a bearer token
//! (a revoked token stops working in the console as in the API, and any
//! number of server processes share sessions without shared memory). Forms
//! that change something also refuse requests whose `Origin` is another site.
//!
//! Every value on a page goes through maud's escaping; nothing
//! user-supplied is written raw.

mod assignments;
mod chart;
mod dashboard;
mod events;
mod explain;
mod fetches;
mod instrument;
mod page;
mod policies;

use crate::api::{ApiError, Shared};
use crate::tokens::{Caller, Role};
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::html;
use serde::Deserialize;
use std::sync::Arc;

pub use fetches::PolicyFetches;

/// What the console's handlers share: the API's state and what the console
/// observes of the library's policy fetches.
pub struct Console {
    pub app: Shared,
    pub fetches: Arc<PolicyFetches>,
}

pub type ConsoleState = State<Arc<Console>>;

/// The session cookie's name.
const COOKIE: &str = "ldguard_console";

/// Adds the console's pages to the API's router, and the observer that
/// notes the library's policy fetches for the dashboard.
pub fn attach(api: Router, app: Shared) -> Router {
    let fetches = Arc::new(PolicyFetches::default());
    let console = Arc::new(Console {
        app,
        fetches: fetches.clone(),
    });
    let pages = Router::new()
        .route("/", get(dashboard::page))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/console/static/console.css", get(stylesheet))
        .route("/console/static/console.js", get(script))
        .route("/events", get(events::list))
        .route("/events/{id}", get(events::detail))
        .route("/events/{id}/explain", get(explain::page))
        .route("/policies", get(policies::list))
        .route("/policies/new", get(policies::new_policy))
        .route("/policies/save", post(policies::save))
        .route("/policies/learn", post(policies::learn))
        .route("/policies/{name}", get(policies::versions))
        .route("/policies/{name}/edit", get(policies::edit))
        .route("/policies/{name}/diff", get(policies::diff))
        .route(
            "/policies/{name}/versions/{version}",
            get(policies::version),
        )
        .route("/assignments", get(assignments::list))
        .route("/assignments/{name}", get(assignments::show))
        .route("/assignments/{name}/review", post(assignments::review))
        .route("/assignments/{name}/apply", post(assignments::apply))
        .route("/instrument", get(instrument::list).post(instrument::queue))
        .with_state(console)
        .layer(axum::middleware::map_response(protect));
    api.merge(pages)
        .layer(axum::middleware::from_fn(move |req, next| {
            fetches::observe(fetches.clone(), req, next)
        }))
}

/// Headers on every console answer: no script, style or frame from
/// anywhere else even if some value escaped its escaping, no framing by
/// other sites, and pages (which show events and policies) not cached.
async fn protect(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// A logged-in console user: the token's caller and the token itself (the
/// API handlers are called with the caller).
#[derive(Clone)]
pub struct Session {
    pub caller: Caller,
}

impl Session {
    pub fn is_admin(&self) -> bool {
        self.caller.role == Role::Admin
    }
}

fn cookie_value(parts: &Parts, name: &str) -> Option<String> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

impl FromRequestParts<Arc<Console>> for Session {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        console: &Arc<Console>,
    ) -> Result<Session, Response> {
        let to_login = || {
            let next = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            let query = serde_urlencoded::to_string([("next", next)]).unwrap_or_default();
            Redirect::to(&format!("/login?{query}")).into_response()
        };
        let Some(secret) = cookie_value(parts, COOKIE) else {
            return Err(to_login());
        };
        let app = &console.app;
        match app.auth.caller(&app.store, &secret).await {
            Ok(Some(caller)) if caller.role.may_use_console() => Ok(Session { caller }),
            Ok(_) => Err(to_login()),
            Err(e) => Err(PageError::from(ApiError::from(e)).into_response()),
        }
    }
}

/// Refuses a state-changing form posted from another site. The session
/// cookie is `SameSite=Strict` already; this also covers browsers that
/// ignore that attribute.
pub struct SameOrigin;

impl<S: Send + Sync> FromRequestParts<S> for SameOrigin {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<SameOrigin, PageError> {
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        let site = parts
            .headers
            .get("sec-fetch-site")
            .and_then(|h| h.to_str().ok());
        let origin_ok = match parts
            .headers
            .get(header::ORIGIN)
            .and_then(|h| h.to_str().ok())
        {
            None | Some("null") => site.is_none_or(|s| s == "same-origin" || s == "none"),
            Some(origin) => origin
                .split_once("://")
                .is_some_and(|(_, authority)| authority == host),
        };
        if origin_ok {
            Ok(SameOrigin)
        } else {
            Err(PageError(ApiError::new(
                StatusCode::FORBIDDEN,
                "cross_site",
                "this form was posted from another site; open the console and submit it there",
            )))
        }
    }
}

/// An API error shown as a page.
#[derive(Debug)]
pub struct PageError(pub ApiError);

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> PageError {
        PageError(e)
    }
}

impl From<sqlx::Error> for PageError {
    fn from(e: sqlx::Error) -> PageError {
        PageError(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let e = self.0;
        let body = page::bare(
            "Error",
            html! {
                h1 { "Error " (e.status.as_u16()) }
                p role="alert" .error { (e.message) }
                p { a href="/" { "Back to the dashboard" } }
            },
        );
        (e.status, body).into_response()
    }
}

pub type PageResult<T> = Result<T, PageError>;

#[derive(Deserialize)]
struct LoginQuery {
    next: Option<String>,
}

async fn login_page(axum::extract::Query(q): axum::extract::Query<LoginQuery>) -> Response {
    login_form(q.next.as_deref(), None, StatusCode::OK)
}

fn login_form(next: Option<&str>, error: Option<&str>, status: StatusCode) -> Response {
    let body = page::bare(
        "Log in",
        html! {
            h1 { "ldguard console" }
            form method="post" action="/login" .card {
                @if let Some(error) = error {
                    p role="alert" .error #login-error { (error) }
                }
                label for="token" { "Token" }
                p .hint #token-hint { "An admin or viewer token from "
                    code { "ldguard-server token create" } "." }
                input #token name="token" type="password" autocomplete="off" required
                    aria-describedby="token-hint";
                input type="hidden" name="next" value=(next.unwrap_or("/"));
                button type="submit" { "Log in" }
            }
        },
    );
    (status, body).into_response()
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
    next: Option<String>,
}

/// Only paths on this site are followed after logging in.
fn local_path(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/",
    }
}

async fn login(
    State(console): ConsoleState,
    _: SameOrigin,
    Form(form): Form<LoginForm>,
) -> Response {
    let secret = form.token.trim();
    let next = local_path(form.next.as_deref());
    let app = &console.app;
    match app.auth.caller(&app.store, secret).await {
        Ok(Some(caller)) if !caller.role.may_use_console() => login_form(
            Some(next),
            Some(&format!(
                "An {} token cannot use the console; log in with an admin or viewer token.",
                caller.role.as_str()
            )),
            StatusCode::FORBIDDEN,
        ),
        Ok(Some(_))
            if secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
        {
            let cookie = format!("{COOKIE}={secret}; Path=/; HttpOnly; SameSite=Strict");
            let mut response = Redirect::to(next).into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, v);
            }
            response
        }
        Ok(_) => login_form(
            Some(next),
            Some("Unknown or revoked token."),
            StatusCode::UNAUTHORIZED,
        ),
        Err(e) => PageError::from(ApiError::from(e)).into_response(),
    }
}

async fn logout(_: SameOrigin) -> Response {
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("ldguard_console=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    response
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("static/console.css"),
    )
        .into_response()
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("static/console.js"),
    )
        .into_response()
}

/// API handler parameters from JSON (the handlers' query and body types
/// are theirs; this builds them the way a client's request would).
pub fn params<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> PageResult<T> {
    serde_json::from_value(value).map_err(|e| PageError(ApiError::bad_request(e.to_string())))
}

/// `key=value&…` for links, leaving out empty values.
pub fn query_string(pairs: &[(&str, &str)]) -> String {
    let kept: Vec<(&str, &str)> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .copied()
        .collect();
    serde_urlencoded::to_string(kept).unwrap_or_default()
}

/// One path segment, percent-encoded.
pub fn segment(segment: &str) -> String {
    let mut out = String::new();
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A time in microseconds as `2026-11-23 06:30:00 UTC`.
pub fn show_time(us: i64) -> String {
    let text = ldguard_events::format_time(us.div_euclid(1_000_000), 0);
    format!("{} {} UTC", &text[..10], &text[11..19])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_login() {
        assert_eq!(local_path(Some("/events?x=1")), "/events?x=1");
        assert_eq!(local_path(Some("//evil.example/")), "/");
        assert_eq!(local_path(Some("https://evil.example/")), "/");
        assert_eq!(local_path(Some("/\\evil.example")), "/");
        assert_eq!(local_path(None), "/");
    }

    #[test]
    fn times_are_shown_to_the_second_in_utc() {
        assert_eq!(show_time(1_795_415_400_123_456), "2026-11-23 06:30:00 UTC");
    }
}

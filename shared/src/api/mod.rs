//! The HTTP surface: `POST /webhook` and the read API under `/api`, as one
//! axum [`Router`] — served by `axum::serve` locally and by `lambda_http` on AWS.
//!
//! - [`webhook`] — `POST /webhook`;
//! - [`read`] — the lists and records under `/api`;
//! - [`metrics`] — the figures under `/api/metrics/`;
//! - [`search`] — `GET /api/search`;
//! - [`notify`] — notification rules and their log under `/api/rules` and `/api/notifications`;
//! - [`query`] — the strict query string parser and each endpoint's parameters;
//! - [`openapi`] — the OpenAPI 3.1 document, generated from the handlers and views.

mod metrics;
pub mod notify;
pub mod openapi;
mod query;
mod read;
mod search;
mod webhook;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;

use crate::config::ApiTokens;
use crate::ports::{SearchError, SearchIndex, Store, StoreError};
use crate::services::ingest::BadRequest;
use crate::services::{IngestError, IngestService};

pub use notify::{NotifyApi, RuleView, RuleWithSecret};
pub use openapi::{ApiDoc, openapi_json};

use metrics::{metrics_ci, metrics_dora, metrics_health, metrics_pulls};
use notify::{
    create_rule, delete_rule, get_rule, list_rules, notification, notifications, put_rule, rotate_secret, test_rule,
};
use openapi::openapi;
use read::{commits, deliveries, health, integrity, pull, pulls, repos, teams, workflow_runs};
use search::search;
use webhook::webhook;

/// What every handler of `octoscope serve` shares: both halves below.
#[derive(Clone)]
pub struct AppState {
    pub ingest: Arc<IngestService>,
    pub store: Arc<dyn Store>,
    /// None: `/api/search` answers 501.
    pub search: Option<Arc<dyn SearchIndex>>,
    pub tokens: ApiTokens,
    pub max_body_bytes: usize,
    /// None: the notification routes answer 501.
    pub notify: Option<NotifyApi>,
}

/// What `POST /webhook` needs (the webhook Lambda has only this).
#[derive(Clone)]
pub struct WebhookState {
    pub ingest: Arc<IngestService>,
    pub max_body_bytes: usize,
}

/// What the read API under `/api` needs (the api Lambda has only this: no
/// archive, no webhook secret).
#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<dyn Store>,
    /// None where the deployment has no search index: `/api/search` answers 501.
    pub search: Option<Arc<dyn SearchIndex>>,
    pub tokens: ApiTokens,
    /// None where the deployment has no notifications: their routes answer 501.
    pub notify: Option<NotifyApi>,
}

/// `POST /webhook` and `/api/*`: the whole surface, as `octoscope serve` serves it.
pub fn router(state: AppState) -> Router {
    let AppState { ingest, store, search, tokens, max_body_bytes, notify } = state;
    webhook_routes(WebhookState { ingest, max_body_bytes })
        .merge(api_routes(ApiState { store, search, tokens, notify }))
        .fallback(not_found)
}

/// `POST /webhook` alone (every other path is a JSON 404).
pub fn webhook_router(state: WebhookState) -> Router {
    webhook_routes(state).fallback(not_found)
}

/// `/api/*` alone (every other path, `/webhook` included, is a JSON 404).
pub fn api_router(state: ApiState) -> Router {
    api_routes(state).fallback(not_found)
}

fn webhook_routes(state: WebhookState) -> Router {
    Router::new().route("/webhook", post(webhook).layer(DefaultBodyLimit::max(state.max_body_bytes))).with_state(state)
}

fn api_routes(state: ApiState) -> Router {
    let api = Router::new()
        .route("/health", get(health))
        .route("/repos", get(repos))
        .route("/pulls", get(pulls))
        .route("/pulls/{owner}/{name}/{number}", get(pull))
        .route("/teams", get(teams))
        .route("/commits", get(commits))
        .route("/workflow-runs", get(workflow_runs))
        .route("/deliveries", get(deliveries))
        .route("/integrity", get(integrity))
        .route("/search", get(search))
        .route("/metrics/pulls", get(metrics_pulls))
        .route("/metrics/ci", get(metrics_ci))
        .route("/metrics/dora", get(metrics_dora))
        .route("/metrics/health", get(metrics_health))
        .route("/rules", get(list_rules).post(create_rule))
        .route("/rules/{id}", get(get_rule).put(put_rule).delete(delete_rule))
        .route("/rules/{id}/test", post(test_rule))
        .route("/rules/{id}/rotate-secret", post(rotate_secret))
        .route("/notifications", get(notifications))
        .route("/notifications/{id}", get(notification))
        .route("/openapi.json", get(openapi))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), guard_writes))
        .layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new().nest("/api", api).with_state(state)
}

/// Every error's body: `{"error": "…"}`, a message for people, never internals.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    pub error: String,
}

/// An API error: a status and a plain message, never internals.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("not found")]
    NotFound,
    #[error("missing or invalid bearer token")]
    Unauthorized,
    /// A write from another origin, on a server without tokens.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error("body is larger than the limit of {0} bytes")]
    TooLarge(usize),
    #[error("{0}")]
    NotImplemented(&'static str),
    #[error(transparent)]
    Search(#[from] SearchError),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match &self {
            Self::BadRequest(m) => (StatusCode::BAD_REQUEST, m.clone()),
            Self::NotFound => (StatusCode::NOT_FOUND, self.to_string()),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, self.to_string()),
            Self::Forbidden(m) => (StatusCode::FORBIDDEN, m.clone()),
            Self::UnsupportedMediaType(m) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, m.clone()),
            Self::Conflict(m) => (StatusCode::CONFLICT, m.clone()),
            Self::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, self.to_string()),
            Self::NotImplemented(_) => (StatusCode::NOT_IMPLEMENTED, self.to_string()),
            Self::Search(SearchError::BadCursor) => (StatusCode::BAD_REQUEST, self.to_string()),
            Self::Search(e) => server_error(e, e.is_retryable()),
            Self::Store(StoreError::BadCursor) => (StatusCode::BAD_REQUEST, self.to_string()),
            Self::Store(e) => server_error(e, e.is_retryable()),
            Self::Ingest(IngestError::Signature(e)) => (StatusCode::UNAUTHORIZED, e.to_string()),
            Self::Ingest(IngestError::BadRequest(e)) => (StatusCode::BAD_REQUEST, bad_request_message(e)),
            Self::Ingest(e) => server_error(e, e.is_retryable()),
        };
        let mut resp = (status, Json(ErrorBody { error: message })).into_response();
        if status == StatusCode::UNAUTHORIZED && matches!(self, Self::Unauthorized) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

fn bad_request_message(e: &BadRequest) -> String {
    match e {
        // serde's message says where the JSON broke, not what it contained.
        BadRequest::Body(inner) => inner.to_string(),
        other => other.to_string(),
    }
}

/// Log the whole error chain; answer with a short message only.
fn server_error(e: &dyn std::error::Error, retryable: bool) -> (StatusCode, String) {
    tracing::error!(error = %crate::error::error_chain(e), retryable, "request failed");
    if retryable {
        (StatusCode::SERVICE_UNAVAILABLE, "temporarily unavailable, try again".to_owned())
    } else {
        (StatusCode::INTERNAL_SERVER_ERROR, "internal error".to_owned())
    }
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

async fn require_token(State(state): State<ApiState>, req: Request, next: Next) -> Response {
    if state.tokens.is_empty() {
        return next.run(req).await;
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    match presented {
        Some(token) if state.tokens.accepts(token) => next.run(req).await,
        _ => ApiError::Unauthorized.into_response(),
    }
}

/// Writes on a server without tokens (a loopback server: anything on the
/// machine may call it, and so may any page a browser on it opens). A browser
/// sends `Origin` with every cross-origin write, so a write whose `Origin` is
/// not this server's (its `Host`) is refused (403); a write that carries a
/// body, or names its type, must be `application/json` (415), which no HTML
/// form can send. With tokens, `require_token` guards every call instead.
async fn guard_writes(State(state): State<ApiState>, req: Request, next: Next) -> Response {
    if !state.tokens.is_empty() || matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let headers = req.headers();
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        if !same_origin(origin.to_str().unwrap_or(""), host) {
            return ApiError::Forbidden(
                "a write from another origin is refused (this server has no API tokens: only its own pages may write)"
                    .into(),
            )
            .into_response();
        }
    }
    let content_type = headers.get(header::CONTENT_TYPE);
    let has_body = headers.get(header::TRANSFER_ENCODING).is_some()
        || headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim() != "0");
    let json = content_type
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json")));
    if (has_body || content_type.is_some()) && !json {
        return ApiError::UnsupportedMediaType("a write's body must be Content-Type: application/json".into())
            .into_response();
    }
    next.run(req).await
}

/// Whether `origin` (`scheme://host[:port]`) names the server at `host`
/// (the `Host` header), default ports included.
fn same_origin(origin: &str, host: Option<&str>) -> bool {
    let Some(host) = host else { return false };
    let Some((scheme, authority)) = origin.split_once("://") else { return false };
    let default = match scheme.to_ascii_lowercase().as_str() {
        "http" => "80",
        "https" => "443",
        _ => return false,
    };
    let with_port = |a: &str| {
        let a = a.to_ascii_lowercase();
        // `[::1]:8080`, `[::1]`, `host:8080`, `host`
        let has_port = match a.rfind(']') {
            Some(i) => a[i..].contains(':'),
            None => a.contains(':'),
        };
        if has_port { a } else { format!("{a}:{default}") }
    };
    !authority.is_empty() && !authority.contains('/') && with_port(authority) == with_port(host)
}

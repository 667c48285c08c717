//! The HTTP surface: `POST /webhook` and the read API under `/api`, as one
//! axum [`Router`] — served by `axum::serve` locally and by `lambda_http` on AWS.
//!
//! - [`webhook`] — `POST /webhook`;
//! - [`read`] — the lists and records under `/api`;
//! - [`metrics`] — the figures under `/api/metrics/`;
//! - [`search`] — `GET /api/search`;
//! - [`query`] — the strict query string parser and each endpoint's parameters;
//! - [`openapi`] — the OpenAPI 3.1 document, generated from the handlers and views.

mod metrics;
pub mod openapi;
mod query;
mod read;
mod search;
mod webhook;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;

use crate::config::ApiTokens;
use crate::ports::{SearchError, SearchIndex, Store, StoreError};
use crate::services::ingest::BadRequest;
use crate::services::{IngestError, IngestService};

pub use openapi::{ApiDoc, openapi_json};

use metrics::{metrics_ci, metrics_dora, metrics_health, metrics_pulls};
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
}

/// `POST /webhook` and `/api/*`: the whole surface, as `octoscope serve` serves it.
pub fn router(state: AppState) -> Router {
    let AppState { ingest, store, search, tokens, max_body_bytes } = state;
    webhook_routes(WebhookState { ingest, max_body_bytes })
        .merge(api_routes(ApiState { store, search, tokens }))
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
        .route("/openapi.json", get(openapi))
        .fallback(not_found)
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

//! The HTTP surface: `POST /webhook` and the read API under `/api`, as one
//! axum [`Router`] — served by `axum::serve` locally and by `lambda_http` on AWS.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::config::ApiTokens;
use crate::domain::*;
use crate::ports::{DeliveryFilter, PageRequest, PullFilter, Store, StoreError};
use crate::services::ingest::BadRequest;
use crate::services::{IngestError, IngestService, Ingested, WebhookRequest};

/// What every handler of `octoscope serve` shares: both halves below.
#[derive(Clone)]
pub struct AppState {
    pub ingest: Arc<IngestService>,
    pub store: Arc<dyn Store>,
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
    pub tokens: ApiTokens,
}

/// `POST /webhook` and `/api/*`: the whole surface, as `octoscope serve` serves it.
pub fn router(state: AppState) -> Router {
    let AppState { ingest, store, tokens, max_body_bytes } = state;
    webhook_routes(WebhookState { ingest, max_body_bytes })
        .merge(api_routes(ApiState { store, tokens }))
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
        .route("/metrics/pulls", get(metrics_pulls))
        .route("/metrics/ci", get(metrics_ci))
        .route("/metrics/dora", get(metrics_dora))
        .route("/metrics/health", get(metrics_health))
        .route("/openapi.json", get(openapi))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new().nest("/api", api).with_state(state)
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
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match &self {
            Self::BadRequest(m) => (StatusCode::BAD_REQUEST, m.clone()),
            Self::NotFound => (StatusCode::NOT_FOUND, self.to_string()),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, self.to_string()),
            Self::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, self.to_string()),
            Self::Store(StoreError::BadCursor) => (StatusCode::BAD_REQUEST, self.to_string()),
            Self::Store(e) => server_error(e, e.is_retryable()),
            Self::Ingest(IngestError::Signature(e)) => (StatusCode::UNAUTHORIZED, e.to_string()),
            Self::Ingest(IngestError::BadRequest(e)) => (StatusCode::BAD_REQUEST, bad_request_message(e)),
            Self::Ingest(e) => server_error(e, e.is_retryable()),
        };
        let mut resp = (status, Json(json!({ "error": message }))).into_response();
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

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn webhook(
    State(state): State<WebhookState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(state.max_body_bytes)
        } else {
            ApiError::BadRequest(rejection.body_text())
        }
    })?;
    let req = WebhookRequest {
        event: header_str(&headers, "x-github-event"),
        delivery: header_str(&headers, "x-github-delivery"),
        hook_id: header_str(&headers, "x-github-hook-id"),
        signature: headers.get("x-hub-signature-256").map(HeaderValue::as_bytes),
        content_type: header_str(&headers, "content-type"),
        body: &body,
    };
    let outcome = state.ingest.ingest(req).await?;
    Ok(match outcome {
        Ingested::Stored { applied, skipped } => {
            (StatusCode::OK, Json(json!({ "status": "stored", "applied": applied, "skipped": skipped })))
                .into_response()
        }
        Ingested::Duplicate(first) => {
            (StatusCode::OK, Json(json!({ "status": "duplicate", "first_outcome": first }))).into_response()
        }
        Ingested::Ignored { reason } => {
            (StatusCode::ACCEPTED, Json(json!({ "status": "ignored", "reason": reason }))).into_response()
        }
        Ingested::Failed { reason } => {
            (StatusCode::ACCEPTED, Json(json!({ "status": "failed", "reason": reason }))).into_response()
        }
    })
}

/// Query parameters, strictly: an unknown or repeated name is a 400, so a
/// typo never silently widens a query.
struct Query(HashMap<String, String>);

impl Query {
    fn parse(raw: Option<String>, allowed: &[&str]) -> Result<Self, ApiError> {
        let mut map = HashMap::new();
        for (k, v) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            if !allowed.contains(&k.as_ref()) {
                return Err(ApiError::BadRequest(format!(
                    "unknown query parameter {k:?}; this endpoint takes: {}",
                    allowed.join(", ")
                )));
            }
            if map.insert(k.to_string(), v.into_owned()).is_some() {
                return Err(ApiError::BadRequest(format!("query parameter {k:?} is given twice")));
            }
        }
        Ok(Self(map))
    }

    fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str).filter(|v| !v.is_empty())
    }

    fn repo(&self) -> Result<Option<RepoName>, ApiError> {
        self.get("repo").map(|r| RepoName::parse(r).map_err(|e| ApiError::BadRequest(e.to_string()))).transpose()
    }

    fn page(&self) -> Result<PageRequest, ApiError> {
        let limit = match self.get("limit") {
            None => PageRequest::DEFAULT_LIMIT,
            Some(l) => {
                l.parse::<usize>().ok().filter(|n| (1..=PageRequest::MAX_LIMIT).contains(n)).ok_or_else(|| {
                    ApiError::BadRequest(format!("limit must be a whole number from 1 to {}", PageRequest::MAX_LIMIT))
                })?
            }
        };
        Ok(PageRequest { limit, cursor: self.get("cursor").map(str::to_owned) })
    }
}

const PAGE: [&str; 2] = ["limit", "cursor"];

fn allowed<'a>(own: &[&'a str]) -> Vec<&'a str> {
    own.iter().copied().chain(PAGE).collect()
}

async fn health(State(state): State<ApiState>) -> Response {
    match state.store.stats().await {
        Ok(stats) => {
            Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION"), "stats": stats })).into_response()
        }
        Err(e) => {
            tracing::error!(error = %crate::error::error_chain(&e), "health check: store unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "unavailable" }))).into_response()
        }
    }
}

async fn repos(State(state): State<ApiState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let q = Query::parse(q, &PAGE)?;
    Ok(Json(state.store.list_repos(&q.page()?).await?).into_response())
}

async fn pulls(State(state): State<ApiState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let q = Query::parse(q, &allowed(&["repo", "state", "author"]))?;
    let state_filter = match q.get("state").unwrap_or("all") {
        "all" => None,
        s => Some(PrState::parse(s).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "state must be open, closed, merged or all, not {:?}",
                s.chars().take(40).collect::<String>()
            ))
        })?),
    };
    let filter = PullFilter { repo: q.repo()?, state: state_filter, author: q.get("author").map(str::to_owned) };
    Ok(Json(state.store.list_pulls(&filter, &q.page()?).await?).into_response())
}

async fn pull(
    State(state): State<ApiState>,
    Path((owner, name, number)): Path<(String, String, String)>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    Query::parse(q, &[])?;
    let repo = RepoName::parse(&format!("{owner}/{name}")).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let number: u64 = number
        .parse()
        .map_err(|_| ApiError::BadRequest("pull request number must be a positive whole number".into()))?;
    match state.store.get_pull(&repo, number).await? {
        Some(p) => Ok(Json(p).into_response()),
        None => Err(ApiError::NotFound),
    }
}

async fn teams(State(state): State<ApiState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let q = Query::parse(q, &allowed(&["org"]))?;
    Ok(Json(state.store.list_teams(q.get("org"), &q.page()?).await?).into_response())
}

async fn commits(State(state): State<ApiState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let q = Query::parse(q, &allowed(&["repo", "branch"]))?;
    let repo = q.repo()?.ok_or_else(|| ApiError::BadRequest("repo=OWNER/NAME is required".into()))?;
    Ok(Json(state.store.list_commits(&repo, q.get("branch"), &q.page()?).await?).into_response())
}

async fn workflow_runs(State(state): State<ApiState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let q = Query::parse(q, &allowed(&["repo"]))?;
    Ok(Json(state.store.list_workflow_runs(q.repo()?.as_ref(), &q.page()?).await?).into_response())
}

async fn deliveries(State(state): State<ApiState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let q = Query::parse(q, &allowed(&["status", "event", "repo"]))?;
    let status = q
        .get("status")
        .map(|s| {
            DeliveryStatus::parse(s)
                .ok_or_else(|| ApiError::BadRequest("status must be pending, stored, ignored or failed".into()))
        })
        .transpose()?;
    let event =
        q.get("event").map(|e| EventName::parse(e).map_err(|e| ApiError::BadRequest(e.to_string()))).transpose()?;
    let filter = DeliveryFilter { status, event, repo: q.repo()? };
    Ok(Json(state.store.list_deliveries(&filter, &q.page()?).await?).into_response())
}

/// The completeness loop's state: recent integrity checks (paginated) with the
/// gaps they found, and the most recent resync jobs with their state.
async fn integrity(State(state): State<ApiState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let q = Query::parse(q, &PAGE)?;
    let checks = state.store.list_checks(&q.page()?).await?;
    let jobs = state.store.list_jobs(&PageRequest::first(PageRequest::DEFAULT_LIMIT)).await?;
    let open_gaps = checks.items.first().map(|c| c.gaps.len()).unwrap_or(0);
    Ok(Json(json!({
        "last_check_at": checks.items.first().map(|c| c.finished_at),
        "open_gaps": open_gaps,
        "items": checks.items,
        "next_cursor": checks.next_cursor,
        "jobs": jobs.items,
    }))
    .into_response())
}

// Metrics (definitions in shared/docs/metrics.md) and the API's description.

/// The OpenAPI 3.1 description of this Router, kept by hand beside the docs.
pub const OPENAPI_JSON: &str = include_str!("../../docs/openapi.json");

async fn openapi(RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    Query::parse(q, &[])?;
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], OPENAPI_JSON).into_response())
}

/// The default window: the 90 days before `until`; the longest: about ten years.
const DEFAULT_WINDOW_DAYS: i64 = 90;
const MAX_WINDOW_DAYS: i64 = 3660;

/// An ISO-8601 time (`2026-03-02T09:00:00Z`, any offset) or a date (`2026-03-02`, midnight UTC).
fn parse_time(name: &str, v: &str) -> Result<Timestamp, ApiError> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc());
    }
    Err(ApiError::BadRequest(format!(
        "{name} must be an ISO-8601 time (2026-03-02T09:00:00Z) or date (2026-03-02), not {:?}",
        v.chars().take(40).collect::<String>()
    )))
}

impl Query {
    /// `since` (inclusive) and `until` (exclusive) with the shared filters.
    fn metrics_filter(&self) -> Result<crate::ports::MetricsFilter, ApiError> {
        let until = self.get("until").map(|v| parse_time("until", v)).transpose()?.unwrap_or_else(chrono::Utc::now);
        let since = match self.get("since") {
            Some(v) => parse_time("since", v)?,
            None => until - chrono::TimeDelta::days(DEFAULT_WINDOW_DAYS),
        };
        if since >= until {
            return Err(ApiError::BadRequest("since must be before until".into()));
        }
        if until - since > chrono::TimeDelta::days(MAX_WINDOW_DAYS) {
            return Err(ApiError::BadRequest(format!("the window can be at most {MAX_WINDOW_DAYS} days long")));
        }
        let team = self
            .get("team")
            .map(|t| match t.split_once('/') {
                Some((org, slug)) if !org.is_empty() && !slug.is_empty() && !slug.contains('/') => {
                    Ok(crate::ports::TeamRef { org: Some(org.to_owned()), slug: slug.to_owned() })
                }
                None => Ok(crate::ports::TeamRef { org: None, slug: t.to_owned() }),
                _ => Err(ApiError::BadRequest("team must be ORG/SLUG or SLUG".into())),
            })
            .transpose()?;
        let mut f = crate::ports::MetricsFilter::window(since, until);
        f.repo = self.repo()?;
        f.author = self.get("author").map(str::to_owned);
        f.team = team;
        f.workflow = self.get("workflow").map(str::to_owned);
        f.branch = self.get("branch").map(str::to_owned);
        f.environment = self.get("environment").map(str::to_owned);
        Ok(f)
    }

    fn group_by(
        &self,
        allowed: &[crate::services::metrics::GroupBy],
    ) -> Result<Option<crate::services::metrics::GroupBy>, ApiError> {
        let Some(v) = self.get("group_by") else { return Ok(None) };
        crate::services::metrics::GroupBy::parse(v).filter(|g| allowed.contains(g)).map(Some).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "group_by must be one of {}",
                allowed.iter().map(|g| g.as_str()).collect::<Vec<_>>().join(", ")
            ))
        })
    }
}

const METRIC_PARAMS: [&str; 6] = ["since", "until", "repo", "team", "author", "group_by"];

fn metrics_service(state: &ApiState) -> crate::services::metrics::MetricsService {
    crate::services::metrics::MetricsService::new(state.store.clone())
}

/// Pull request flow: throughput, cycle time, time to first review, review
/// rounds, size, open pull requests by age.
async fn metrics_pulls(State(state): State<ApiState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let q = Query::parse(q, &METRIC_PARAMS)?;
    let (filter, group_by) = (q.metrics_filter()?, q.group_by(crate::services::metrics::PULL_GROUPS)?);
    Ok(Json(metrics_service(&state).pulls(&filter, group_by, chrono::Utc::now()).await?).into_response())
}

/// CI: run duration, job queue time, failure rates.
async fn metrics_ci(State(state): State<ApiState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let params: Vec<&str> = METRIC_PARAMS.iter().copied().chain(["workflow", "branch"]).collect();
    let q = Query::parse(q, &params)?;
    let (filter, group_by) = (q.metrics_filter()?, q.group_by(crate::services::metrics::CI_GROUPS)?);
    Ok(Json(metrics_service(&state).ci(&filter, group_by).await?).into_response())
}

/// DORA: deployment frequency, lead time for changes, change failure rate.
async fn metrics_dora(State(state): State<ApiState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let params: Vec<&str> = METRIC_PARAMS.iter().copied().chain(["environment"]).collect();
    let q = Query::parse(q, &params)?;
    let (filter, group_by) = (q.metrics_filter()?, q.group_by(crate::services::metrics::DORA_GROUPS)?);
    Ok(Json(metrics_service(&state).dora(&filter, group_by).await?).into_response())
}

/// Data health per repository: last webhook, last check, its gaps, resync jobs.
async fn metrics_health(State(state): State<ApiState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let q = Query::parse(q, &["repo"])?;
    Ok(Json(metrics_service(&state).health(q.repo()?.as_ref()).await?).into_response())
}

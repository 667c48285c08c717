//! The read API: what Octoscope holds, as lists (cursor-paginated) and records.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::query::{CommitParams, DeliveryParams, PageParams, PullParams, PullPath, Query, RepoParams, TeamParams, of};
use super::{ApiError, ApiState};
use crate::domain::*;
use crate::ports::{DeliveryFilter, Page, PageRequest, PullFilter, StoreError};
use crate::read::*;

/// A page read after the request's cursor. A cursor the store cannot place (one
/// this server did not issue) names no position in the list: its page is the
/// end, no items and no `next_cursor`, so a client paging through stops
/// instead of starting over.
fn or_end<T>(page: Result<Page<T>, StoreError>) -> Result<Page<T>, ApiError> {
    match page {
        Err(StoreError::BadCursor) => Ok(Page { items: Vec::new(), next_cursor: None }),
        page => Ok(page?),
    }
}

/// `/api/health`: fields in the order the endpoint has always sent them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct Health {
    stats: StoreStats,
    /// `ok`.
    status: &'static str,
    /// The running build's version.
    version: &'static str,
}

/// `/api/health` when the store cannot be read.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct Unavailable {
    /// `unavailable`.
    status: &'static str,
}

/// Service status and counts
#[utoipa::path(get, path = "/api/health", responses(
    (status = 200, description = "OK", body = Health),
    (status = 503, description = "the store is unavailable", body = Unavailable),
))]
pub(super) async fn health(State(state): State<ApiState>) -> Response {
    match state.store.stats().await {
        Ok(stats) => Json(Health { stats, status: "ok", version: env!("CARGO_PKG_VERSION") }).into_response(),
        Err(e) => {
            tracing::error!(error = %crate::error::error_chain(&e), "health check: store unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, Json(Unavailable { status: "unavailable" })).into_response()
        }
    }
}

/// Repositories, newest activity first
#[utoipa::path(get, path = "/api/repos", params(PageParams), responses((status = 200, description = "OK", body = Page<RepoView>)))]
pub(super) async fn repos(State(state): State<ApiState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let q = Query::parse(q, [of::<PageParams>()])?;
    Ok(Json(or_end(state.store.list_repos(&q.page()?).await)?).into_response())
}

/// Pull requests, newest first (by creation, as GitHub lists them)
#[utoipa::path(get, path = "/api/pulls", params(PullParams, PageParams), responses((status = 200, description = "OK", body = Page<PullRequest>)))]
pub(super) async fn pulls(State(state): State<ApiState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let q = Query::parse(q, [of::<PullParams>(), of::<PageParams>()])?;
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
    Ok(Json(or_end(state.store.list_pulls(&filter, &q.page()?).await)?).into_response())
}

/// One pull request with its reviews
#[utoipa::path(get, path = "/api/pulls/{owner}/{name}/{number}", params(PullPath), responses(
    (status = 200, description = "OK", body = PullDetail),
    (status = 404, description = "no such pull request", body = super::ErrorBody),
))]
pub(super) async fn pull(
    State(state): State<ApiState>,
    path: Result<Path<(String, String, String)>, PathRejection>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    // A segment that is not UTF-8 once percent-decoded is the client's error,
    // answered in JSON like every other (axum's own rejection is plain text).
    let Path((owner, name, number)) = path.map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
    Query::parse(q, [])?;
    let repo = RepoName::parse(&format!("{owner}/{name}")).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let number: u64 = number
        .parse()
        .map_err(|_| ApiError::BadRequest("pull request number must be a positive whole number".into()))?;
    // GitHub numbers fit in an i64; the stores key on one.
    if number > i64::MAX as u64 {
        return Err(ApiError::NotFound);
    }
    match state.store.get_pull(&repo, number).await? {
        Some(p) => Ok(Json(p).into_response()),
        None => Err(ApiError::NotFound),
    }
}

/// Teams with their present members
#[utoipa::path(get, path = "/api/teams", params(TeamParams, PageParams), responses((status = 200, description = "OK", body = Page<TeamView>)))]
pub(super) async fn teams(State(state): State<ApiState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let q = Query::parse(q, [of::<TeamParams>(), of::<PageParams>()])?;
    Ok(Json(or_end(state.store.list_teams(q.get("org"), &q.page()?).await)?).into_response())
}

/// Commits of a repository, newest first
#[utoipa::path(get, path = "/api/commits", params(CommitParams, PageParams), responses((status = 200, description = "OK", body = Page<Commit>)))]
pub(super) async fn commits(State(state): State<ApiState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let q = Query::parse(q, [of::<CommitParams>(), of::<PageParams>()])?;
    let repo = q.repo()?.ok_or_else(|| ApiError::BadRequest("repo=OWNER/NAME is required".into()))?;
    Ok(Json(or_end(state.store.list_commits(&repo, q.get("branch"), &q.page()?).await)?).into_response())
}

/// Workflow runs, newest first
#[utoipa::path(get, path = "/api/workflow-runs", params(RepoParams, PageParams), responses((status = 200, description = "OK", body = Page<WorkflowRunView>)))]
pub(super) async fn workflow_runs(State(state): State<ApiState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let q = Query::parse(q, [of::<RepoParams>(), of::<PageParams>()])?;
    Ok(Json(or_end(state.store.list_workflow_runs(q.repo()?.as_ref(), &q.page()?).await)?).into_response())
}

/// The delivery ledger, newest first
#[utoipa::path(get, path = "/api/deliveries", params(DeliveryParams, PageParams), responses((status = 200, description = "OK", body = Page<DeliveryView>)))]
pub(super) async fn deliveries(State(state): State<ApiState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let q = Query::parse(q, [of::<DeliveryParams>(), of::<PageParams>()])?;
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
    Ok(Json(or_end(state.store.list_deliveries(&filter, &q.page()?).await)?).into_response())
}

/// `/api/integrity`: a page of checks and the latest jobs. Fields in the order
/// the endpoint has always sent them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct Integrity {
    /// Integrity checks, newest first.
    items: Vec<CheckRun>,
    /// The most recent resync jobs.
    jobs: Vec<JobRecord>,
    /// When the newest check on this page finished.
    last_check_at: Option<Timestamp>,
    next_cursor: Option<String>,
    /// Gaps the newest check on this page found.
    open_gaps: usize,
    /// The newest comparison of the search index with the store among this
    /// page's checks (absent without a search index, or when none on the
    /// page compared).
    search: Option<SearchComparison>,
}

/// Integrity checks, their gaps, and resync jobs
///
/// The completeness loop's state: recent integrity checks (paginated) with the
/// gaps they found, and the most recent resync jobs with their state.
#[utoipa::path(get, path = "/api/integrity", params(PageParams), responses((status = 200, description = "OK", body = Integrity)))]
pub(super) async fn integrity(State(state): State<ApiState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let q = Query::parse(q, [of::<PageParams>()])?;
    let checks = or_end(state.store.list_checks(&q.page()?).await)?;
    let jobs = state.store.list_jobs(&PageRequest::first(PageRequest::DEFAULT_LIMIT)).await?;
    Ok(Json(Integrity {
        last_check_at: checks.items.first().map(|c| c.finished_at),
        open_gaps: checks.items.first().map(|c| c.gaps.len()).unwrap_or(0),
        search: checks.items.iter().find_map(|c| c.search.clone()),
        items: checks.items,
        next_cursor: checks.next_cursor,
        jobs: jobs.items,
    })
    .into_response())
}

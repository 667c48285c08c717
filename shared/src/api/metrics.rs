//! `/api/metrics/*`: the figures, each defined in `shared/docs/metrics.md`.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};

use super::query::{CiParams, DoraParams, GroupParams, Query, RepoParams, WindowParams, of};
use super::{ApiError, ApiState};
use crate::read::{CiMetrics, DataHealth, DoraMetrics, PullFlowMetrics};
use crate::services::metrics::{CI_GROUPS, DORA_GROUPS, MetricsService, PULL_GROUPS};

fn metrics_service(state: &ApiState) -> MetricsService {
    MetricsService::new(state.store.clone())
}

/// Pull request flow
///
/// Throughput per ISO week, cycle time, time to first review, review rounds, size, open pull requests by age. Definitions: shared/docs/metrics.md.
#[utoipa::path(get, path = "/api/metrics/pulls", params(WindowParams, GroupParams), responses((status = 200, description = "OK", body = PullFlowMetrics)))]
pub(super) async fn metrics_pulls(State(state): State<ApiState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let q = Query::parse(q, [of::<WindowParams>(), of::<GroupParams>()])?;
    let (filter, group_by) = (q.metrics_filter()?, q.group_by(PULL_GROUPS)?);
    Ok(Json(metrics_service(&state).pulls(&filter, group_by, chrono::Utc::now()).await?).into_response())
}

/// CI: run duration, job queue time, failure rates
///
/// Runs and jobs created in the window. Grouped by runner (each label) or os, runs is null. Definitions: shared/docs/metrics.md.
#[utoipa::path(get, path = "/api/metrics/ci", params(WindowParams, GroupParams, CiParams), responses((status = 200, description = "OK", body = CiMetrics)))]
pub(super) async fn metrics_ci(State(state): State<ApiState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let q = Query::parse(q, [of::<WindowParams>(), of::<GroupParams>(), of::<CiParams>()])?;
    let (filter, group_by) = (q.metrics_filter()?, q.group_by(CI_GROUPS)?);
    Ok(Json(metrics_service(&state).ci(&filter, group_by).await?).into_response())
}

/// DORA: deployment frequency, lead time for changes, change failure rate
///
/// Per environment (and repository with group_by=repo). team and author filter the pull requests of lead time only. Definitions: shared/docs/metrics.md.
#[utoipa::path(get, path = "/api/metrics/dora", params(WindowParams, GroupParams, DoraParams), responses((status = 200, description = "OK", body = DoraMetrics)))]
pub(super) async fn metrics_dora(State(state): State<ApiState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let q = Query::parse(q, [of::<WindowParams>(), of::<GroupParams>(), of::<DoraParams>()])?;
    let (filter, group_by) = (q.metrics_filter()?, q.group_by(DORA_GROUPS)?);
    Ok(Json(metrics_service(&state).dora(&filter, group_by).await?).into_response())
}

/// Data health per repository
///
/// Last webhook received, last integrity check, the gaps it found for the repository, resync jobs.
#[utoipa::path(get, path = "/api/metrics/health", params(RepoParams), responses((status = 200, description = "OK", body = DataHealth)))]
pub(super) async fn metrics_health(State(state): State<ApiState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let q = Query::parse(q, [of::<RepoParams>()])?;
    Ok(Json(metrics_service(&state).health(q.repo()?.as_ref()).await?).into_response())
}

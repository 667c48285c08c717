//! `/api/metrics/*`: the figures, each defined in `shared/docs/metrics.md`.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};

use super::query::{
    CiParams, DoraParams, GroupParams, PullListParams, Query, RepoParams, SeriesParams, WindowParams, of,
};
use super::{ApiError, ApiState};
use crate::read::{CiMetrics, DataHealth, DoraMetrics, PullFlowMetrics};
use crate::services::metrics::{CI_GROUPS, DORA_GROUPS, MetricsService, PULL_GROUPS};

fn metrics_service(state: &ApiState) -> MetricsService {
    MetricsService::new(state.store.clone())
}

/// Pull request flow
///
/// Throughput per ISO week, cycle time, time to first review, review rounds, size, open pull requests by age; with interval, the figures per week or day; with compare=previous, the previous period's; with top, the slowest first reviews and the stale pull requests. Definitions: shared/docs/metrics.md.
#[utoipa::path(get, path = "/api/metrics/pulls", params(WindowParams, GroupParams, SeriesParams, PullListParams), responses((status = 200, description = "OK", body = PullFlowMetrics)))]
pub(super) async fn metrics_pulls(State(state): State<ApiState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let q = Query::parse(q, [of::<WindowParams>(), of::<GroupParams>(), of::<SeriesParams>(), of::<PullListParams>()])?;
    let (filter, group_by, extras, top) = (q.metrics_filter()?, q.group_by(PULL_GROUPS)?, q.extras()?, q.top()?);
    let m = metrics_service(&state).pulls_with(&filter, group_by, chrono::Utc::now(), extras, top).await?;
    Ok(Json(m).into_response())
}

/// CI: run duration, job queue time, failure rates
///
/// Runs and jobs created in the window. Grouped by runner (each label) or os, runs is null. With interval, the figures per week or day; with compare=previous, the previous period's. Definitions: shared/docs/metrics.md.
#[utoipa::path(get, path = "/api/metrics/ci", params(WindowParams, GroupParams, CiParams, SeriesParams), responses((status = 200, description = "OK", body = CiMetrics)))]
pub(super) async fn metrics_ci(State(state): State<ApiState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let q = Query::parse(q, [of::<WindowParams>(), of::<GroupParams>(), of::<CiParams>(), of::<SeriesParams>()])?;
    let (filter, group_by, extras) = (q.metrics_filter()?, q.group_by(CI_GROUPS)?, q.extras()?);
    Ok(Json(metrics_service(&state).ci_with(&filter, group_by, extras).await?).into_response())
}

/// DORA: deployment frequency, lead time for changes, change failure rate
///
/// Per environment (and repository with group_by=repo). team and author filter the pull requests of lead time only. With interval, the figures per week or day; with compare=previous, the previous period's. Definitions: shared/docs/metrics.md.
#[utoipa::path(get, path = "/api/metrics/dora", params(WindowParams, GroupParams, DoraParams, SeriesParams), responses((status = 200, description = "OK", body = DoraMetrics)))]
pub(super) async fn metrics_dora(State(state): State<ApiState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let q = Query::parse(q, [of::<WindowParams>(), of::<GroupParams>(), of::<DoraParams>(), of::<SeriesParams>()])?;
    let (filter, group_by, extras) = (q.metrics_filter()?, q.group_by(DORA_GROUPS)?, q.extras()?);
    Ok(Json(metrics_service(&state).dora_with(&filter, group_by, extras).await?).into_response())
}

/// Data health per repository
///
/// Last webhook received, last integrity check, the gaps it found for the repository, resync jobs.
#[utoipa::path(get, path = "/api/metrics/health", params(RepoParams), responses((status = 200, description = "OK", body = DataHealth)))]
pub(super) async fn metrics_health(State(state): State<ApiState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let q = Query::parse(q, [of::<RepoParams>()])?;
    Ok(Json(metrics_service(&state).health(q.repo()?.as_ref()).await?).into_response())
}

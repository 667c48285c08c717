//! `GET /api/search`: full-text search over what the store holds
//! (shared/docs/search.md). The query language is parsed into a typed query
//! here; no user text reaches the index's own query parser.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use utoipa::IntoParams;

use super::query::{PageParams, Query, of};
use super::{ApiError, ApiState};
use crate::domain::{SearchQuery, SearchResults};
use crate::ports::{PageRequest, SearchError};

/// `q` of `/api/search`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(super) struct SearchParams {
    /// Words, "quoted phrases", -excluded words, and the qualifiers
    /// repo:OWNER/NAME, author:LOGIN, is:open|closed|merged,
    /// type:pr|review|commit|repo|team|person, created:>DATE, <DATE, >=DATE,
    /// <=DATE, DATE, DATE..DATE (YYYY-MM-DD). At most 512 characters. A
    /// quote left open runs to the end; a control character separates words.
    /// Empty: everything, newest indexed first.
    #[param(max_length = 512)]
    q: Option<String>,
}

/// Search pull requests, reviews, commits, repositories, teams and people
#[utoipa::path(get, path = "/api/search", params(SearchParams, PageParams), responses(
    (status = 200, description = "The best matches first (bm25; an exact title first), with facets of the match; beyond 1,000 matches total_is_exact is false and total a lower bound", body = SearchResults),
    (status = 400, description = "the query is not one this search understands; the message says why", body = super::ErrorBody),
    (status = 501, description = "this deployment has no search index (the AWS api function, for now)", body = super::ErrorBody),
))]
pub(super) async fn search(State(state): State<ApiState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let q = Query::parse(q, [of::<SearchParams>(), of::<PageParams>()])?;
    let query = SearchQuery::parse(q.get("q").unwrap_or("")).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let page = q.page()?;
    let index = state.search.as_ref().ok_or(ApiError::NotImplemented("this deployment has no search index"))?;
    let results = match index.search(&query, &page).await {
        // A cursor this server did not issue reads as the end: no items, the
        // whole match's facets.
        Err(SearchError::BadCursor) => {
            let mut r = index.search(&query, &PageRequest { limit: 0, cursor: None }).await?;
            r.items.clear();
            r.next_cursor = None;
            r
        }
        r => r?,
    };
    Ok(Json::<SearchResults>(results).into_response())
}

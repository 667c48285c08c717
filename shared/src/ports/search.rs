//! The search index: a derived, rebuildable index of pull requests, reviews,
//! commits, repositories, teams and people (shared/docs/search.md). The store
//! stays the source of truth; an index can always be rebuilt from it.

use async_trait::async_trait;

use super::PageRequest;
use crate::domain::{SearchDoc, SearchQuery, SearchResults};

/// A search failure. `is_retryable` says whether the same call can succeed later.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("cursor is not one this API returned for this query")]
    BadCursor,
    #[error("the search index is unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("the search index failed")]
    Internal(#[source] anyhow::Error),
}

impl SearchError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// Index, delete and search documents. Writes are idempotent and ordered by
/// each document's `version`: a write older than what the index holds for
/// its key changes nothing, so replays and late arrivals never regress it.
#[async_trait]
pub trait SearchIndex: Send + Sync {
    /// Add or replace documents (each only if not older than the indexed one).
    async fn index(&self, docs: &[SearchDoc]) -> Result<(), SearchError>;
    /// Remove documents by key; unknown keys are not an error.
    async fn delete(&self, keys: &[String]) -> Result<(), SearchError>;
    /// The best matches first, a page at a time, with the whole match's facets.
    async fn search(&self, query: &SearchQuery, page: &PageRequest) -> Result<SearchResults, SearchError>;
}

/// What the index holds, scope by scope, for the integrity check's
/// comparison with the store (`services::search_check`).
#[async_trait]
pub trait IndexCensus: Send + Sync {
    /// Per document type and repository, the documents held and the newest
    /// version among them (scopes without documents are absent).
    async fn census(&self) -> Result<Vec<crate::domain::ScopeCount>, SearchError>;
    /// The keys of every document held in `scope`.
    async fn scope_keys(&self, scope: &crate::domain::IndexScope) -> Result<Vec<String>, SearchError>;
}

//! What an indexer fed from outside the store (on AWS: the table's stream)
//! reads back from the store to build a document: two of them need more than
//! their own row (`services::search_docs::lookup`).

use async_trait::async_trait;

use crate::domain::{RepoName, Timestamp};
use crate::error::StoreError;

#[async_trait]
pub trait SearchLookups: Send + Sync {
    /// The title of a pull request the store holds (a review is titled by it).
    async fn pull_title(&self, repo: &RepoName, number: u64) -> Result<Option<String>, StoreError>;
    /// The body of a pull request the store holds, where the stored change
    /// that a document is made from does not carry it.
    async fn pull_body(&self, repo: &RepoName, number: u64) -> Result<Option<String>, StoreError>;
    /// The newest version among `login`'s present memberships of
    /// organisations other than `org` (a person is indexed while a present
    /// member of any).
    async fn other_membership(&self, login: &str, org: &str) -> Result<Option<Timestamp>, StoreError>;
}

/// Every entity that has a search document, as the change that wrote it, a
/// page at a time in a stable order (a reindex walks them; `after` is the
/// cursor the previous page returned, so a reindex stopped part way resumes;
/// `limit` bounds the items a page reads, matched or not).
#[async_trait]
pub trait SearchableEntities: Send + Sync {
    async fn searchable_page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<crate::domain::Change>, Option<String>), StoreError>;
}

/// What the index should hold, scope by scope: the store's entities counted
/// by the mapping of `services::search_docs` (deleted repositories and
/// teams, and people in no organisation, have no document).
#[async_trait]
pub trait StoreCensus: Send + Sync {
    /// Per document type and repository, the documents the store's entities
    /// make and the newest version among them (scopes without any are absent).
    async fn census(&self) -> Result<Vec<crate::domain::ScopeCount>, StoreError>;
}

//! The search index against the store on one machine: both censuses from
//! the same database — the index's from `search_docs` (the FTS5 index's
//! content), the store's from the entity tables by the rules of the
//! triggers that write the documents (`schema_v8.sql`, the mapping of
//! `services::search_docs`) — and the repair of a scope in one transaction:
//! its documents dropped and its rows touched, so the same triggers write
//! them again (shared/docs/search.md, "The index against the store").

use std::collections::HashSet;

use async_trait::async_trait;
use rusqlite::Connection;

use super::search::rewrite_documents;
use super::store::SqliteStore;
use super::store_error;
use crate::domain::{DocKind, IndexScope, ScopeCount};
use crate::error::StoreError;
use crate::ports::{IndexCensus, SearchError, StoreCensus};
use crate::services::indexer::IndexingError;
use crate::services::search_check::{Repaired, ScopeRepair};

/// What the triggers index, per scope: (type, repository or '', documents, newest version).
const STORE_CENSUS: &str = "
    SELECT 'pr', repo, count(*), max(updated_at) FROM pull_requests GROUP BY repo
    UNION ALL SELECT 'review', repo, count(*), max(coalesce(submitted_at, '')) FROM reviews GROUP BY repo
    UNION ALL SELECT 'commit', repo, count(*), max(coalesce(committed_at, '')) FROM commits GROUP BY repo
    UNION ALL SELECT 'repo', full_name, 1, coalesce(version, '') FROM repos WHERE NOT deleted
    UNION ALL SELECT * FROM (SELECT 'team', '', count(*) AS n, max(version) FROM teams WHERE NOT deleted) WHERE n > 0
    UNION ALL SELECT * FROM (SELECT 'person', '', count(DISTINCT login) AS n, max(version) FROM org_members
                             WHERE present) WHERE n > 0";

const INDEX_CENSUS: &str =
    "SELECT kind, coalesce(repo, ''), count(*), max(version) FROM search_docs GROUP BY kind, coalesce(repo, '')";

fn census(conn: &Connection, sql: &str) -> Result<Vec<ScopeCount>, StoreError> {
    let mut stmt = conn.prepare(sql).map_err(store_error)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get::<_, String>(3)?))
        })
        .map_err(store_error)?;
    let mut out = Vec::new();
    for row in rows {
        let (kind, repo, count, newest) = row.map_err(store_error)?;
        // A kind this build does not know is not one it indexes.
        if let Some(kind) = DocKind::parse(&kind) {
            out.push(ScopeCount { scope: IndexScope::new(kind, repo), count: count as u64, newest });
        }
    }
    Ok(out)
}

fn keys(conn: &Connection, scope: &IndexScope) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare_cached("SELECT key FROM search_docs WHERE kind = ?1 AND coalesce(repo, '') = ?2")?;
    let keys = stmt.query_map([scope.kind.as_str(), scope.repo.as_str()], |r| r.get(0))?;
    keys.collect()
}

/// The update that, in `rewrite_documents`, makes the triggers write a scope's documents again
/// (as `rebuild_search` does for all of them).
fn touch(scope: &IndexScope) -> &'static str {
    match scope.kind {
        DocKind::Pr => "UPDATE pull_requests SET title = title WHERE repo = ?1",
        DocKind::Review => "UPDATE reviews SET state = state WHERE repo = ?1",
        DocKind::Commit => "UPDATE commits SET message = message WHERE repo = ?1",
        DocKind::Repo => "UPDATE repos SET deleted = deleted WHERE full_name = ?1",
        DocKind::Team => "UPDATE teams SET deleted = deleted WHERE ?1 = ''",
        DocKind::Person => "UPDATE org_members SET present = present WHERE ?1 = ''",
    }
}

fn search_error(e: StoreError) -> SearchError {
    match e {
        StoreError::BadCursor => SearchError::BadCursor,
        StoreError::Unavailable(e) => SearchError::Unavailable(e),
        StoreError::Internal(e) => SearchError::Internal(e),
    }
}

#[async_trait]
impl StoreCensus for SqliteStore {
    async fn census(&self) -> Result<Vec<ScopeCount>, StoreError> {
        self.read(|conn| census(conn, STORE_CENSUS)).await
    }
}

#[async_trait]
impl IndexCensus for SqliteStore {
    async fn census(&self) -> Result<Vec<ScopeCount>, SearchError> {
        self.read(|conn| census(conn, INDEX_CENSUS)).await.map_err(search_error)
    }

    async fn scope_keys(&self, scope: &IndexScope) -> Result<Vec<String>, SearchError> {
        let scope = scope.clone();
        self.read(move |conn| keys(conn, &scope).map_err(store_error)).await.map_err(search_error)
    }
}

#[async_trait]
impl ScopeRepair for SqliteStore {
    /// Each scope's documents dropped and written again by the triggers, all
    /// in one transaction: a search sees the scope before or after.
    async fn repair(&self, scopes: &[IndexScope]) -> Result<Repaired, IndexingError> {
        let scopes = scopes.to_vec();
        self.write(move |tx| {
            let mut done = Repaired::default();
            for scope in &scopes {
                let before: HashSet<String> = keys(tx, scope)?.into_iter().collect();
                tx.prepare_cached("DELETE FROM search_docs WHERE kind = ?1 AND coalesce(repo, '') = ?2")?
                    .execute([scope.kind.as_str(), scope.repo.as_str()])?;
                rewrite_documents(tx, |tx| tx.prepare_cached(touch(scope))?.execute([scope.repo.as_str()]).map(drop))?;
                let after: HashSet<String> = keys(tx, scope)?.into_iter().collect();
                done.removed += before.iter().filter(|k| !after.contains(*k)).count() as u64;
                done.rewritten += after.len() as u64;
            }
            Ok(done)
        })
        .await
        .map_err(IndexingError::Store)
    }
}

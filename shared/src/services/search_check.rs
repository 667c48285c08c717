//! The search index against the store, inside the integrity check: both
//! sides counted per document type and repository (with the newest version
//! in each), every scope that differs listed, and each such scope reindexed
//! from the store (shared/docs/search.md, "The index against the store").
//!
//! The comparison never fails the check it runs in: an index or a store
//! that cannot be read is reported in the comparison (`error`), and the
//! rest of the check goes on.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::{Change, DocKind, IndexScope, ScopeCount, SearchComparison, Timestamp, drift};
use crate::error::{StoreError, error_chain};
use crate::ports::{IndexCensus, SearchIndex, SearchLookups, SearchableEntities, StoreCensus};
use crate::services::indexer::{IndexerService, IndexingError, REINDEX_PAGE, RowChange};
use crate::services::search_docs::{self, Known};

/// Drifting scopes listed in a comparison at most (all are repaired).
pub const MAX_DRIFT_LISTED: usize = 1_000;

/// What a repair did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Repaired {
    /// Documents written again from the store.
    pub rewritten: u64,
    /// Documents removed: the store holds no such entity.
    pub removed: u64,
}

/// Reindex whole scopes from the store: every document of each scope written
/// again (writes are ordered by version, so nothing newer is regressed), and
/// every document of the scope the store no longer has removed.
#[async_trait]
pub trait ScopeRepair: Send + Sync {
    async fn repair(&self, scopes: &[IndexScope]) -> Result<Repaired, IndexingError>;
}

/// The search part of the integrity check.
pub struct SearchCheck {
    store: Arc<dyn StoreCensus>,
    index: Arc<dyn IndexCensus>,
    repair: Arc<dyn ScopeRepair>,
    /// Compare at most this often (None: in every check).
    interval: Option<chrono::TimeDelta>,
}

impl SearchCheck {
    pub fn new(store: Arc<dyn StoreCensus>, index: Arc<dyn IndexCensus>, repair: Arc<dyn ScopeRepair>) -> Self {
        Self { store, index, repair, interval: None }
    }

    /// Compare only in checks at least `interval` after the last comparison
    /// (a store census that costs a read of every searchable entity).
    #[must_use]
    pub fn with_interval(self, interval: chrono::TimeDelta) -> Self {
        Self { interval: Some(interval), ..self }
    }

    /// Whether a check at `now` compares, the last comparison having run at `last`.
    pub fn due(&self, last: Option<Timestamp>, now: Timestamp) -> bool {
        match (self.interval, last) {
            (Some(interval), Some(last)) => now - last >= interval,
            _ => true,
        }
    }

    /// Whether [`due`](Self::due) needs the last comparison's time.
    pub fn has_interval(&self) -> bool {
        self.interval.is_some()
    }

    /// Compare, and unless `dry_run` repair every scope that differs.
    pub async fn compare(&self, now: Timestamp, dry_run: bool) -> SearchComparison {
        let mut out = SearchComparison {
            compared_at: now,
            scopes: 0,
            store_documents: 0,
            index_documents: 0,
            drift: Vec::new(),
            repaired: false,
            rewritten: 0,
            removed: 0,
            error: None,
        };
        let failed = |e: IndexingError, out: &mut SearchComparison| {
            tracing::warn!(error = %error_chain(&e), retryable = e.is_retryable(), "search index check incomplete");
            out.error = Some(error_chain(&e));
        };
        let store = match self.store.census().await {
            Ok(s) => s,
            Err(e) => {
                failed(IndexingError::Store(e), &mut out);
                return out;
            }
        };
        let index = match self.index.census().await {
            Ok(i) => i,
            Err(e) => {
                failed(IndexingError::Index(e), &mut out);
                return out;
            }
        };
        let scopes: HashSet<&IndexScope> = store.iter().chain(&index).map(|c| &c.scope).collect();
        out.scopes = scopes.len() as u64;
        out.store_documents = store.iter().map(|c| c.count).sum();
        out.index_documents = index.iter().map(|c| c.count).sum();
        let mut drifted = drift(&store, &index);
        if !drifted.is_empty() {
            tracing::warn!(scopes = drifted.len(), "the search index differs from the store");
        }
        if !dry_run && !drifted.is_empty() {
            let scopes: Vec<IndexScope> = drifted.iter().map(|d| d.scope()).collect();
            match self.repair.repair(&scopes).await {
                Ok(r) => {
                    out.repaired = true;
                    out.rewritten = r.rewritten;
                    out.removed = r.removed;
                }
                Err(e) => failed(e, &mut out),
            }
        }
        drifted.truncate(MAX_DRIFT_LISTED);
        out.drift = drifted;
        out
    }
}

/// Where a change's document belongs, with its key and version (None: the
/// entity has no document now — deleted, or not searched). Organisation
/// memberships are counted per person by the caller.
fn placed(change: &Change) -> Option<(IndexScope, String, String)> {
    let writes = search_docs::doc_writes(change, Known::default());
    let doc = writes.upsert.into_iter().next()?;
    let repo = doc.repo.as_ref().map(|r| r.as_str().to_owned()).unwrap_or_default();
    Some((IndexScope::new(doc.kind, repo), doc.key, doc.version))
}

/// A store read through [`SearchableEntities`] (DynamoDB: a Scan of the
/// table's searchable items): its census and the repair of scopes, both
/// from a walk of every searchable entity, mapped by `search_docs`.
pub struct ScannedStore {
    entities: Arc<dyn SearchableEntities>,
    indexer: IndexerService,
    index: Arc<dyn SearchIndex>,
    census: Arc<dyn IndexCensus>,
}

impl ScannedStore {
    pub fn new(
        entities: Arc<dyn SearchableEntities>,
        lookups: Arc<dyn SearchLookups>,
        index: Arc<dyn SearchIndex>,
        census: Arc<dyn IndexCensus>,
    ) -> Self {
        Self { indexer: IndexerService::new(lookups, index.clone()), entities, index, census }
    }

    /// Every searchable entity, a page at a time.
    async fn walk(&self, mut each: impl FnMut(Vec<Change>) -> Vec<Change>) -> Result<u64, IndexingError> {
        let mut cursor: Option<String> = None;
        let mut rewritten = 0;
        loop {
            let (changes, next) =
                self.entities.searchable_page(cursor.as_deref(), REINDEX_PAGE).await.map_err(IndexingError::Store)?;
            let rows: Vec<RowChange> =
                each(changes).into_iter().map(|c| RowChange { old: None, new: Some(c) }).collect();
            if !rows.is_empty() {
                rewritten += self.indexer.apply(&rows).await?.upserted as u64;
            }
            match next {
                Some(n) => cursor = Some(n),
                None => return Ok(rewritten),
            }
        }
    }
}

#[async_trait]
impl StoreCensus for ScannedStore {
    async fn census(&self) -> Result<Vec<ScopeCount>, StoreError> {
        let mut scopes: BTreeMap<IndexScope, (u64, String)> = BTreeMap::new();
        // A person's document: while a present member of any organisation, at the newest membership.
        let mut people: BTreeMap<String, Timestamp> = BTreeMap::new();
        let mut cursor: Option<String> = None;
        loop {
            let (changes, next) = self.entities.searchable_page(cursor.as_deref(), REINDEX_PAGE).await?;
            for change in &changes {
                if let Change::OrgMember { member, .. } = change {
                    if member.present {
                        let v = people.entry(member.login.clone()).or_insert(member.version);
                        *v = (*v).max(member.version);
                    }
                } else if let Some((scope, _, version)) = placed(change) {
                    let s = scopes.entry(scope).or_default();
                    s.0 += 1;
                    s.1 = s.1.clone().max(version);
                }
            }
            match next {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }
        if let Some(newest) = people.values().max() {
            scopes.insert(IndexScope::new(DocKind::Person, ""), (people.len() as u64, search_docs::version_of(newest)));
        }
        Ok(scopes.into_iter().map(|(scope, (count, newest))| ScopeCount { scope, count, newest }).collect())
    }
}

#[async_trait]
impl ScopeRepair for ScannedStore {
    /// The index's keys of each scope are read first, then the store is
    /// walked: a document the index gains meanwhile (the stream indexing a
    /// new entity) is not among them, so it is never taken for stale.
    async fn repair(&self, scopes: &[IndexScope]) -> Result<Repaired, IndexingError> {
        let wanted: BTreeSet<&IndexScope> = scopes.iter().collect();
        let mut indexed: Vec<(&IndexScope, Vec<String>)> = Vec::new();
        for scope in &wanted {
            indexed.push((scope, self.census.scope_keys(scope).await.map_err(IndexingError::Index)?));
        }
        let people = wanted.contains(&IndexScope::new(DocKind::Person, ""));
        let mut held: HashSet<String> = HashSet::new();
        let rewritten = self
            .walk(|changes| {
                changes
                    .into_iter()
                    .filter(|change| match change {
                        Change::OrgMember { member, .. } => {
                            if people && member.present {
                                held.insert(search_docs::person_key(&member.login));
                            }
                            people
                        }
                        _ => match placed(change) {
                            Some((scope, key, _)) if wanted.contains(&scope) => {
                                held.insert(key);
                                true
                            }
                            _ => false,
                        },
                    })
                    .collect()
            })
            .await?;
        let mut removed = 0;
        for (_, keys) in indexed {
            let stale: Vec<String> = keys.into_iter().filter(|k| !held.contains(k)).collect();
            if !stale.is_empty() {
                self.index.delete(&stale).await.map_err(IndexingError::Index)?;
                removed += stale.len() as u64;
            }
        }
        Ok(Repaired { rewritten, removed })
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeDelta, TimeZone, Utc};

    use super::*;

    struct Nothing;

    #[async_trait]
    impl StoreCensus for Nothing {
        async fn census(&self) -> Result<Vec<ScopeCount>, StoreError> {
            Ok(Vec::new())
        }
    }

    #[async_trait]
    impl IndexCensus for Nothing {
        async fn census(&self) -> Result<Vec<ScopeCount>, crate::ports::SearchError> {
            Ok(Vec::new())
        }
        async fn scope_keys(&self, _: &IndexScope) -> Result<Vec<String>, crate::ports::SearchError> {
            Ok(Vec::new())
        }
    }

    #[async_trait]
    impl ScopeRepair for Nothing {
        async fn repair(&self, _: &[IndexScope]) -> Result<Repaired, IndexingError> {
            Ok(Repaired::default())
        }
    }

    #[test]
    fn a_comparison_is_due_in_every_check_or_once_its_interval_passed() {
        let at = |h| Utc.with_ymd_and_hms(2030, 1, 1, h, 0, 0).unwrap();
        let every = SearchCheck::new(Arc::new(Nothing), Arc::new(Nothing), Arc::new(Nothing));
        assert!(every.due(Some(at(1)), at(1)) && !every.has_interval());
        let hourly = SearchCheck::new(Arc::new(Nothing), Arc::new(Nothing), Arc::new(Nothing))
            .with_interval(TimeDelta::hours(6));
        assert!(hourly.due(None, at(1)), "never compared");
        assert!(!hourly.due(Some(at(1)), at(6)));
        assert!(hourly.due(Some(at(1)), at(7)));
    }
}

//! The search index against the store: what each side holds per document
//! type and repository, where they differ, and what the repair did
//! (shared/docs/search.md, "The index against the store").

use serde::{Deserialize, Serialize};

use super::ids::Timestamp;
use super::search::DocKind;

/// One part of the index: the documents of one type in one repository.
/// Teams and people belong to no repository: their `repo` is empty. A
/// repository's own document is in its own scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IndexScope {
    pub kind: DocKind,
    pub repo: String,
}

impl IndexScope {
    pub fn new(kind: DocKind, repo: impl Into<String>) -> Self {
        Self { kind, repo: repo.into() }
    }
}

/// What one side holds (or should hold) in one scope: its documents and
/// the newest `version` among them (as the store writes versions; empty when
/// none has one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeCount {
    pub scope: IndexScope,
    pub count: u64,
    pub newest: String,
}

/// A scope where the index and the store differ: a count, or the newest version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub struct SearchDrift {
    /// The document type.
    #[serde(rename = "type")]
    pub kind: DocKind,
    /// The repository (`OWNER/NAME`); empty for teams and people.
    pub repo: String,
    /// Documents the store's entities make.
    pub store_count: u64,
    /// Documents the index holds.
    pub index_count: u64,
    /// The newest version among the store's (empty: none).
    pub store_newest: String,
    /// The newest version among the index's (empty: none).
    pub index_newest: String,
}

impl SearchDrift {
    pub fn scope(&self) -> IndexScope {
        IndexScope::new(self.kind, self.repo.clone())
    }
}

/// The search index compared with the store, in one integrity check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub struct SearchComparison {
    /// When the comparison started.
    pub compared_at: Timestamp,
    /// Scopes (document type × repository) compared.
    pub scopes: u64,
    /// Documents the store's entities make, in all.
    pub store_documents: u64,
    /// Documents the index holds, in all.
    pub index_documents: u64,
    /// Scopes where the two differ (at most 1,000 listed).
    pub drift: Vec<SearchDrift>,
    /// The drifting scopes were reindexed from the store (false in a dry run,
    /// when nothing drifted, or when the repair failed).
    pub repaired: bool,
    /// Documents written again from the store by the repair.
    pub rewritten: u64,
    /// Documents the repair removed from the index (the store holds no such entity).
    pub removed: u64,
    /// Why the comparison or the repair did not complete (the index or the
    /// store unreachable); the rest of the check is not affected.
    pub error: Option<String>,
}

/// Where a census of the store and one of the index differ, scope by scope
/// (sorted by type, then repository).
pub fn drift(store: &[ScopeCount], index: &[ScopeCount]) -> Vec<SearchDrift> {
    use std::collections::BTreeMap;
    let mut both: BTreeMap<&IndexScope, (Option<&ScopeCount>, Option<&ScopeCount>)> = BTreeMap::new();
    for s in store {
        both.entry(&s.scope).or_default().0 = Some(s);
    }
    for i in index {
        both.entry(&i.scope).or_default().1 = Some(i);
    }
    let side = |c: Option<&ScopeCount>| c.map_or((0, String::new()), |c| (c.count, c.newest.clone()));
    both.into_iter()
        .filter_map(|(scope, (s, i))| {
            let ((store_count, store_newest), (index_count, index_newest)) = (side(s), side(i));
            let differs = store_count != index_count || (store_count > 0 && store_newest != index_newest);
            differs.then(|| SearchDrift {
                kind: scope.kind,
                repo: scope.repo.clone(),
                store_count,
                index_count,
                store_newest,
                index_newest,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(kind: DocKind, repo: &str, count: u64, newest: &str) -> ScopeCount {
        ScopeCount { scope: IndexScope::new(kind, repo), count, newest: newest.into() }
    }

    #[test]
    fn equal_censuses_do_not_drift_and_any_difference_does() {
        let store = [c(DocKind::Pr, "a/b", 2, "v2"), c(DocKind::Team, "", 1, "v1"), c(DocKind::Commit, "a/b", 0, "")];
        let same = [c(DocKind::Team, "", 1, "v1"), c(DocKind::Pr, "a/b", 2, "v2")];
        assert_eq!(drift(&store, &same), []);
        let index = [c(DocKind::Pr, "a/b", 2, "v1"), c(DocKind::Review, "a/b", 3, "v3")];
        let d = drift(&store, &index);
        let scopes: Vec<_> = d.iter().map(|d| (d.kind, d.repo.as_str(), d.store_count, d.index_count)).collect();
        assert_eq!(
            scopes,
            [(DocKind::Pr, "a/b", 2, 2), (DocKind::Review, "a/b", 0, 3), (DocKind::Team, "", 1, 0)],
            "a newer version, a scope only the index has, one only the store has"
        );
        assert_eq!((d[0].store_newest.as_str(), d[0].index_newest.as_str()), ("v2", "v1"));
    }
}

//! The indexer: changes of the store's entity rows (before and after each
//! write, as a stream reports them) into the search index, for an index the
//! store does not write itself (OpenSearch on AWS; shared/docs/search.md).
//!
//! A batch is applied by its net effect per document: the last write of a
//! key in the batch wins, upserts in one request, removals in another. Every
//! write is idempotent and ordered by the document's version, so a batch
//! applied twice, or records arriving again after a retry, change nothing
//! more, and an older version arriving late never replaces a newer one.

use std::collections::HashMap;
use std::sync::Arc;

use crate::domain::{Change, SearchDoc};
use crate::error::StoreError;
use crate::ports::{SearchError, SearchIndex, SearchLookups};
use crate::services::search_docs::{self, DocWrites, Known, Lookup};

/// One entity row's change: the row before and after the write, each as the
/// change that would write it (None: absent, or a row with no document).
#[derive(Debug, Clone, Default)]
pub struct RowChange {
    pub old: Option<Change>,
    pub new: Option<Change>,
}

/// Why a batch was not indexed. Retrying helps unless the store or the
/// index refused for good.
#[derive(Debug, thiserror::Error)]
pub enum IndexingError {
    #[error("reading what a document needs from the store")]
    Lookup(#[source] StoreError),
    #[error("writing the search index")]
    Index(#[source] SearchError),
}

impl IndexingError {
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Lookup(e) => e.is_retryable(),
            Self::Index(e) => e.is_retryable(),
        }
    }
}

/// What one batch did to the index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Indexed {
    pub upserted: usize,
    pub deleted: usize,
}

pub struct IndexerService {
    lookups: Arc<dyn SearchLookups>,
    index: Arc<dyn SearchIndex>,
}

impl IndexerService {
    pub fn new(lookups: Arc<dyn SearchLookups>, index: Arc<dyn SearchIndex>) -> Self {
        Self { lookups, index }
    }

    /// The documents one row change writes and removes.
    async fn writes(&self, row: &RowChange) -> Result<DocWrites, IndexingError> {
        let mut writes = DocWrites::default();
        if let Some(new) = &row.new {
            let (mut title, mut other) = (None, None);
            match search_docs::lookup(new) {
                Lookup::Nothing => {}
                Lookup::PullTitle { repo, number } => {
                    title = self.lookups.pull_title(repo, number).await.map_err(IndexingError::Lookup)?;
                }
                Lookup::OtherMemberships { login, org } => {
                    other = self.lookups.other_membership(login, org).await.map_err(IndexingError::Lookup)?;
                }
            }
            writes = search_docs::doc_writes(new, Known { pull_title: title.as_deref(), other_membership: other });
        }
        // A row removed, or moved to another key: its old document goes.
        if let Some(old_key) = row.old.as_ref().and_then(search_docs::doc_key)
            && row.new.as_ref().and_then(search_docs::doc_key).as_ref() != Some(&old_key)
        {
            if let Some(Change::OrgMember { org, member }) = &row.old {
                // A membership row removed: the person stays while a member elsewhere.
                let other = self.lookups.other_membership(&member.login, org).await.map_err(IndexingError::Lookup)?;
                let mut gone = member.clone();
                gone.present = false;
                let removal = Change::OrgMember { org: org.clone(), member: gone };
                writes.extend(search_docs::doc_writes(&removal, Known { pull_title: None, other_membership: other }));
            } else {
                writes.delete.push(old_key);
            }
        }
        Ok(writes)
    }

    /// Apply a batch of row changes, in order, by their net effect per document.
    pub async fn apply(&self, rows: &[RowChange]) -> Result<Indexed, IndexingError> {
        let mut order: Vec<String> = Vec::new();
        let mut last: HashMap<String, Option<SearchDoc>> = HashMap::new();
        for row in rows {
            let writes = self.writes(row).await?;
            let effects = writes.delete.into_iter().map(|k| (k, None));
            let effects = effects.chain(writes.upsert.into_iter().map(|d| (d.key.clone(), Some(d))));
            for (key, doc) in effects {
                if last.insert(key.clone(), doc).is_none() {
                    order.push(key);
                }
            }
        }
        let (mut upserts, mut deletes) = (Vec::new(), Vec::new());
        for key in order {
            match last.remove(&key).flatten() {
                Some(doc) => upserts.push(doc),
                None => deletes.push(key),
            }
        }
        if !upserts.is_empty() {
            self.index.index(&upserts).await.map_err(IndexingError::Index)?;
        }
        if !deletes.is_empty() {
            self.index.delete(&deletes).await.map_err(IndexingError::Index)?;
        }
        Ok(Indexed { upserted: upserts.len(), deleted: deletes.len() })
    }
}

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

use crate::domain::{Change, PullRequest, RepoName, SearchDoc};
use crate::error::StoreError;
use crate::ports::{Clock, JobStore, SearchError, SearchIndex, SearchLookups, SearchableEntities};
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
    #[error("reading the store")]
    Store(#[source] StoreError),
    #[error("writing the search index")]
    Index(#[source] SearchError),
}

impl IndexingError {
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Store(e) => e.is_retryable(),
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

    /// The documents one row change writes and removes (`titles`, `bodies`:
    /// the pull request titles and bodies looked up so far in this batch).
    async fn writes(
        &self,
        row: &RowChange,
        titles: &mut HashMap<(RepoName, u64), Option<String>>,
        bodies: &mut HashMap<(RepoName, u64), Option<String>>,
    ) -> Result<DocWrites, IndexingError> {
        let mut writes = DocWrites::default();
        if let Some(new) = &row.new {
            let (mut title, mut other) = (None, None);
            match search_docs::lookup(new) {
                Lookup::Nothing => {}
                Lookup::PullTitle { repo, number } => {
                    let key = (repo.clone(), number);
                    title = match titles.get(&key) {
                        Some(t) => t.clone(),
                        None => {
                            let t = self.lookups.pull_title(repo, number).await.map_err(IndexingError::Store)?;
                            titles.insert(key, t.clone());
                            t
                        }
                    };
                }
                Lookup::OtherMemberships { login, org } => {
                    other = self.lookups.other_membership(login, org).await.map_err(IndexingError::Store)?;
                }
            }
            writes = match new {
                // A stored pull request's body may be kept apart from it (DynamoDB): read it back.
                Change::PullRequest { pull, known } if pull.body.is_none() => {
                    let key = (pull.repo.clone(), pull.number);
                    let body = match bodies.get(&key) {
                        Some(b) => b.clone(),
                        None => {
                            let b =
                                self.lookups.pull_body(&pull.repo, pull.number).await.map_err(IndexingError::Store)?;
                            bodies.insert(key, b.clone());
                            b
                        }
                    };
                    let with_body =
                        Change::PullRequest { pull: Box::new(PullRequest { body, ..(**pull).clone() }), known: *known };
                    search_docs::doc_writes(&with_body, Known { pull_title: title.as_deref(), other_membership: other })
                }
                _ => search_docs::doc_writes(new, Known { pull_title: title.as_deref(), other_membership: other }),
            };
        }
        // A row removed, or moved to another key: its old document goes.
        if let Some(old_key) = row.old.as_ref().and_then(search_docs::doc_key)
            && row.new.as_ref().and_then(search_docs::doc_key).as_ref() != Some(&old_key)
        {
            if let Some(Change::OrgMember { org, member }) = &row.old {
                // A membership row removed: the person stays while a member elsewhere.
                let other = self.lookups.other_membership(&member.login, org).await.map_err(IndexingError::Store)?;
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
        let (mut titles, mut bodies) = (HashMap::new(), HashMap::new());
        for row in rows {
            if let Some(Change::PullRequest { pull, .. }) = &row.new {
                // A pull request in the batch titles its reviews after it.
                titles.insert((pull.repo.clone(), pull.number), Some(pull.title.clone()));
            }
            let writes = self.writes(row, &mut titles, &mut bodies).await?;
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

/// The job id of a reindex: its checkpoint's name, and the batch job's mode.
pub const REINDEX_JOB: &str = "reindex";

/// Items a reindex reads a page (one request of the store, one bulk request of the index).
pub const REINDEX_PAGE: usize = 500;

/// What a reindex did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reindexed {
    /// It went on from a checkpoint an earlier run left.
    pub resumed: bool,
    pub pages: u64,
    pub entities: u64,
    pub upserted: u64,
    pub deleted: u64,
}

impl IndexerService {
    /// Index every searchable entity the store holds, a page at a time, and
    /// save where it got to after each page (`REINDEX_JOB`'s checkpoint): a
    /// reindex stopped part way resumes there; the checkpoint is cleared at
    /// the end. Documents are written under their versions, so a reindex
    /// running beside the indexer never regresses what the stream wrote.
    /// It adds and replaces documents; removing a document whose entity is
    /// gone is the stream's (the index is not emptied first).
    pub async fn reindex(
        &self,
        source: &dyn SearchableEntities,
        jobs: &dyn JobStore,
        clock: &dyn Clock,
    ) -> Result<Reindexed, IndexingError> {
        let mut cursor = jobs.checkpoint(REINDEX_JOB).await.map_err(IndexingError::Store)?;
        let mut done = Reindexed { resumed: cursor.is_some(), ..Reindexed::default() };
        loop {
            let (changes, next) = match source.searchable_page(cursor.as_deref(), REINDEX_PAGE).await {
                Err(StoreError::BadCursor) if cursor.is_some() => {
                    tracing::warn!("the reindex checkpoint is not a cursor of this store; starting from the beginning");
                    cursor = None;
                    continue;
                }
                page => page.map_err(IndexingError::Store)?,
            };
            let rows: Vec<RowChange> = changes.into_iter().map(|c| RowChange { old: None, new: Some(c) }).collect();
            let indexed = self.apply(&rows).await?;
            done.pages += 1;
            done.entities += rows.len() as u64;
            done.upserted += indexed.upserted as u64;
            done.deleted += indexed.deleted as u64;
            jobs.save_checkpoint(REINDEX_JOB, next.as_deref(), clock.now()).await.map_err(IndexingError::Store)?;
            match next {
                Some(n) => cursor = Some(n),
                None => return Ok(done),
            }
        }
    }
}

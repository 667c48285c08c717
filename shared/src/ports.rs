//! Ports: the small traits services depend on. Each has a real adapter per
//! mode (SQLite and files on one machine; DynamoDB, S3, SQS, ECS on AWS), and
//! services only ever see `Arc<dyn Port>`.

use async_trait::async_trait;
use base64::Engine as _;
use serde::{Serialize, de::DeserializeOwned};

use crate::domain::*;
use crate::views::*;

/// A store failure. `is_retryable` says whether trying again can help (a busy
/// or unreachable database) or not (a bad cursor, a corrupt file).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store is unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("cursor is not one this API returned")]
    BadCursor,
    #[error("the store failed")]
    Internal(#[source] anyhow::Error),
}

impl StoreError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// An archive failure. Always retryable from the caller's side: the delivery
/// is released so that GitHub's redelivery can try again.
#[derive(Debug, thiserror::Error)]
#[error("the raw archive is unavailable")]
pub struct ArchiveError(#[source] pub anyhow::Error);

/// What the ledger says about a delivery being claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// First sight (or a retry of one that never finished): go ahead.
    Claimed,
    /// Already processed (or being processed): no second effect.
    Duplicate(DeliveryStatus),
}

/// A page request: at most `limit` items after the opaque `cursor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: usize,
    pub cursor: Option<String>,
}

impl PageRequest {
    pub const DEFAULT_LIMIT: usize = 50;
    pub const MAX_LIMIT: usize = 500;
    pub fn first(limit: usize) -> Self {
        Self { limit, cursor: None }
    }
}

/// A page of results: `{"items": [...], "next_cursor": "..." | null}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Cursors are the last item's sort key, opaque to clients (base64url JSON).
pub fn encode_cursor<K: Serialize>(key: &K) -> String {
    let json = serde_json::to_vec(key).expect("cursor keys serialise");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

pub fn decode_cursor<K: DeserializeOwned>(cursor: &str) -> Result<K, StoreError> {
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).map_err(|_| StoreError::BadCursor)?;
    serde_json::from_slice(&json).map_err(|_| StoreError::BadCursor)
}

/// Build a page from up to `limit + 1` rows: the extra row only says there is more.
pub fn page_from<T, K: Serialize>(mut rows: Vec<T>, limit: usize, key: impl Fn(&T) -> K) -> Page<T> {
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|last| encode_cursor(&key(last)))
    } else {
        None
    };
    Page { items: rows, next_cursor }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullFilter {
    pub repo: Option<RepoName>,
    /// None: every state.
    pub state: Option<PrState>,
    pub author: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryFilter {
    pub status: Option<DeliveryStatus>,
    pub event: Option<EventName>,
    pub repo: Option<RepoName>,
}

/// The normalised store plus the delivery ledger.
#[async_trait]
pub trait Store: Send + Sync {
    /// Claim a delivery before any effect. A delivery already stored, ignored
    /// or failed for good is a [`Claim::Duplicate`]; one left pending by a
    /// crash (older than the store's lease) may be claimed again.
    async fn claim_delivery(&self, claim: &DeliveryClaim) -> Result<Claim, StoreError>;
    /// Forget a claimed delivery that could not be made durable, so that a
    /// redelivery can try again.
    async fn release_delivery(&self, key: &DeliveryKey) -> Result<(), StoreError>;
    /// Apply a claimed delivery's changes and record its outcome, atomically.
    async fn complete_delivery(
        &self,
        key: &DeliveryKey,
        changes: &[Change],
        outcome: &DeliveryOutcome,
    ) -> Result<ApplyReport, StoreError>;
    /// Apply changes outside any delivery (resync, replay), same LWW rules.
    async fn apply_changes(&self, changes: &[Change]) -> Result<ApplyReport, StoreError>;
    /// Drop every normalised entity (not the ledger), before a replay.
    async fn reset_entities(&self) -> Result<(), StoreError>;

    async fn list_repos(&self, page: &PageRequest) -> Result<Page<RepoView>, StoreError>;
    async fn list_pulls(&self, filter: &PullFilter, page: &PageRequest) -> Result<Page<PullView>, StoreError>;
    async fn get_pull(&self, repo: &RepoName, number: u64) -> Result<Option<PullDetail>, StoreError>;
    async fn list_teams(&self, org: Option<&str>, page: &PageRequest) -> Result<Page<TeamView>, StoreError>;
    async fn list_commits(
        &self,
        repo: &RepoName,
        branch: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<CommitView>, StoreError>;
    async fn list_workflow_runs(
        &self,
        repo: Option<&RepoName>,
        page: &PageRequest,
    ) -> Result<Page<WorkflowRunView>, StoreError>;
    async fn list_deliveries(
        &self,
        filter: &DeliveryFilter,
        page: &PageRequest,
    ) -> Result<Page<DeliveryView>, StoreError>;
    async fn stats(&self) -> Result<StoreStats, StoreError>;
}

/// The raw body of every accepted delivery, kept before normalisation so that
/// `replay` can rebuild the store.
#[async_trait]
pub trait RawArchive: Send + Sync {
    /// Durably keep `delivery` (idempotent per delivery key).
    async fn put(&self, delivery: &RawDelivery) -> Result<(), ArchiveError>;
    /// Deliveries in the order they were archived, `limit` at a time after `after`.
    async fn scan(&self, after: Option<u64>, limit: usize) -> Result<Vec<(u64, RawDelivery)>, ArchiveError>;
}

/// The time, as a port, so tests can hold it still.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

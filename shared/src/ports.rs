//! Ports: the small traits services depend on. Each has a real adapter per
//! mode (SQLite and files on one machine; DynamoDB, S3, SQS, ECS on AWS), and
//! services only ever see `Arc<dyn Port>`.

use async_trait::async_trait;
use base64::Engine as _;
use serde::{Serialize, de::DeserializeOwned};

use crate::domain::*;
use crate::github::{OrgSnapshot, RepoSnapshot};
use crate::integrity::{CheckRun, Gap, GapKind, JobRecord, ResyncJob, Target};
use crate::metrics_views::*;
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

/// An archive failure. `is_retryable` says whether the same call can succeed
/// later unchanged: the archive is down, slow, or misconfigured (a missing
/// bucket, a permission) — for `put`, the delivery is released so that
/// GitHub's redelivery tries again — or not (a corrupt object, a cursor this
/// archive never returned).
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("the raw archive is unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("the raw archive failed")]
    Failed(#[source] anyhow::Error),
}

impl ArchiveError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// A position in a [`RawArchive`], opaque to its callers: each archive makes
/// its own (a sequence number on one machine, an object key on S3) and only
/// ever reads back the ones it made.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArchiveCursor(String);

impl ArchiveCursor {
    pub fn new(position: impl Into<String>) -> Self {
        Self(position.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

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

    // Completeness.

    /// Repositories and organisations Octoscope has heard of (entities and ledger).
    async fn tracked(&self) -> Result<Tracked, StoreError>;
    /// The store's side of the integrity comparison, in GitHub's terms.
    async fn repo_summaries(&self, repos: &[RepoName]) -> Result<Vec<RepoSnapshot>, StoreError>;
    async fn org_summaries(&self, orgs: &[String]) -> Result<Vec<OrgSnapshot>, StoreError>;
    /// Current members of each team of `org`: (slug, logins).
    async fn team_rosters(&self, org: &str) -> Result<Vec<(String, Vec<String>)>, StoreError>;
    /// Which of these deliveries the ledger already holds (in the same order).
    async fn known_deliveries(&self, keys: &[DeliveryKey]) -> Result<Vec<bool>, StoreError>;
    /// The hooks deliveries came from, with where they came from.
    async fn delivery_hooks(&self) -> Result<Vec<HookSeen>, StoreError>;
    async fn record_check(&self, run: &CheckRun) -> Result<(), StoreError>;
    /// When `target` last matched GitHub in a check (not a dry run).
    async fn verified_at(&self, target: &Target) -> Result<Option<Timestamp>, StoreError>;
    async fn list_checks(&self, page: &PageRequest) -> Result<Page<CheckRun>, StoreError>;
    async fn save_job(&self, job: &JobRecord) -> Result<(), StoreError>;
    async fn list_jobs(&self, page: &PageRequest) -> Result<Page<JobRecord>, StoreError>;
    /// One job by id (the batch job is handed only its id).
    async fn get_job(&self, id: &str) -> Result<Option<JobRecord>, StoreError>;
    /// Take (or renew, for the same owner) the lock `key` until `now + ttl`;
    /// false if someone else holds it unexpired.
    async fn try_lock(
        &self,
        key: &str,
        owner: &str,
        now: Timestamp,
        ttl: chrono::TimeDelta,
    ) -> Result<bool, StoreError>;
    async fn release_lock(&self, key: &str, owner: &str) -> Result<(), StoreError>;
    async fn checkpoint(&self, job_id: &str) -> Result<Option<String>, StoreError>;
    /// Save where `job_id` got to; None clears it (the job finished).
    async fn save_checkpoint(&self, job_id: &str, cursor: Option<&str>, at: Timestamp) -> Result<(), StoreError>;

    // Metrics (definitions in shared/docs/metrics.md). Plain rows; the
    // metrics service computes. `repo`, `author` and `team` filters apply to
    // the pull request's author or the run's actor.

    /// Pull requests merged in the window, created in the window, or open now
    /// and created before `until`; with their first non-author review and
    /// changes-requested count.
    async fn metric_pulls(&self, filter: &MetricsFilter) -> Result<Vec<PullMetricRow>, StoreError>;
    /// Workflow runs created in the window (`repo`, `workflow`, `branch`, actor filters).
    async fn metric_runs(&self, filter: &MetricsFilter) -> Result<Vec<RunMetricRow>, StoreError>;
    /// Workflow jobs created in the window (a job without `created_at`: its
    /// `started_at`); filters as for runs, the actor being its run's.
    async fn metric_jobs(&self, filter: &MetricsFilter) -> Result<Vec<JobMetricRow>, StoreError>;
    /// Deployments created at or after `since` (no upper bound: lead time looks
    /// past `until`), with their outcome; `repo` and `environment` filters.
    async fn metric_deployments(&self, filter: &MetricsFilter) -> Result<Vec<DeploymentMetricRow>, StoreError>;
    /// Present members of every team (of `org` if given).
    async fn team_memberships(&self, org: Option<&str>) -> Result<Vec<TeamMembershipRow>, StoreError>;
    /// The newest delivery received for each repository.
    async fn last_deliveries(&self) -> Result<Vec<RepoDeliveryRow>, StoreError>;
}

/// A team, as `ORG/SLUG` or a bare `SLUG` (that slug in any organisation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamRef {
    pub org: Option<String>,
    pub slug: String,
}

/// What a metric covers: `since` inclusive, `until` exclusive, and filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsFilter {
    pub since: Timestamp,
    pub until: Timestamp,
    pub repo: Option<RepoName>,
    /// Pull request author / run actor.
    pub author: Option<String>,
    /// Authors (actors) who are present members of the team.
    pub team: Option<TeamRef>,
    /// Workflow name (runs and jobs).
    pub workflow: Option<String>,
    /// Head branch (runs and jobs).
    pub branch: Option<String>,
    /// Deployment environment.
    pub environment: Option<String>,
}

impl MetricsFilter {
    pub fn window(since: Timestamp, until: Timestamp) -> Self {
        Self { since, until, repo: None, author: None, team: None, workflow: None, branch: None, environment: None }
    }
}

/// What Octoscope tracks, as the store knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tracked {
    pub repos: Vec<RepoName>,
    pub orgs: Vec<String>,
}

/// A webhook configuration deliveries came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookSeen {
    pub hook_id: HookId,
    /// Organisation of its deliveries.
    pub org: Option<String>,
    /// A repository it delivered for.
    pub repo: Option<RepoName>,
    /// It delivered organisation-only events (teams, members): an organisation hook.
    pub org_events: bool,
}

/// The raw body of every accepted delivery, kept before normalisation so that
/// `replay` can rebuild the store.
#[async_trait]
pub trait RawArchive: Send + Sync {
    /// Durably keep `delivery` (idempotent per delivery key).
    async fn put(&self, delivery: &RawDelivery) -> Result<(), ArchiveError>;
    /// Deliveries in archive order, at most `limit`, after the position
    /// `after` (None: from the start); each with its own position, to pass
    /// back as `after`. An empty answer: nothing more.
    async fn scan(
        &self,
        after: Option<&ArchiveCursor>,
        limit: usize,
    ) -> Result<Vec<(ArchiveCursor, RawDelivery)>, ArchiveError>;
}

/// A gap queue failure. `Partial`: some gaps were queued and the others were
/// not (they are not left pending, so the next check queues them again).
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("the gap queue is unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("the gap queue refused the gaps")]
    Rejected(#[source] anyhow::Error),
    #[error("{} gap(s) could not be queued ({new} new gap(s) were)", failed.len())]
    Partial { new: usize, failed: Vec<GapFailure> },
}

impl QueueError {
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Unavailable(_) => true,
            Self::Rejected(_) => false,
            Self::Partial { failed, .. } => failed.iter().any(|f| f.retryable),
        }
    }
}

/// One gap a queue did not take, and why (the queue's own code and message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GapFailure {
    pub target: Target,
    pub kind: GapKind,
    pub code: String,
    pub message: String,
    pub retryable: bool,
}

/// Where the integrity check sends gaps. At most one pending message per
/// (target, kind): a gap already waiting is not queued again.
#[async_trait]
pub trait GapQueue: Send + Sync {
    /// Queue `gaps`; returns how many were new.
    async fn send(&self, gaps: &[Gap]) -> Result<usize, QueueError>;
}

/// A launch failure: `Unavailable` may go away (throttling, no capacity
/// right now, an outage), `Failed` will not (a missing task definition, a
/// refused configuration).
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("the job launcher is unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("the resync job could not be started")]
    Failed(#[source] anyhow::Error),
}

impl LaunchError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// Starts a resync job: in-process on one machine, an ECS task on AWS.
#[async_trait]
pub trait JobLauncher: Send + Sync {
    async fn launch(&self, job: &ResyncJob) -> Result<(), LaunchError>;
}

/// The time, as a port, so tests can hold it still.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

//! The store: the normalised entities plus the delivery ledger, the
//! completeness records (checks, jobs, locks, checkpoints) and the metric rows.

use async_trait::async_trait;

use super::github::{OrgSnapshot, RepoSnapshot, SnapshotRequest, StoredRuns};
use super::paging::{Page, PageRequest};
use crate::domain::*;
use crate::error::StoreError;
use crate::read::rollup::{CellKey, CiCell, MergeCell, PullCell};
use crate::read::*;

/// What the ledger says about a delivery being claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// First sight (or a retry of one that never finished): go ahead.
    Claimed,
    /// Already processed (or being processed): no second effect.
    Duplicate(DeliveryStatus),
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

/// The delivery ledger: exactly one effect per (hook, delivery). What ingest needs.
#[async_trait]
pub trait DeliveryLedger: Send + Sync {
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

    /// Ingest's first step: is this delivery a duplicate? A store that
    /// records a delivery in one write ([`record_delivery`](Self::record_delivery))
    /// only looks; by default the delivery is claimed ([`claim_delivery`](Self::claim_delivery)).
    async fn check_delivery(&self, claim: &DeliveryClaim) -> Result<Claim, StoreError> {
        self.claim_delivery(claim).await
    }

    /// Ingest's last step, after [`check_delivery`](Self::check_delivery) and
    /// the archive: apply the changes and record the outcome. By default the
    /// claim is completed ([`complete_delivery`](Self::complete_delivery)). A
    /// store that writes its ledger once applies the changes (idempotent under
    /// last-writer-wins) and then records the delivery conditionally: if
    /// another copy of it was recorded meanwhile, this one is a duplicate.
    async fn record_delivery(
        &self,
        claim: &DeliveryClaim,
        changes: &[Change],
        outcome: &DeliveryOutcome,
    ) -> Result<Recorded, StoreError> {
        self.complete_delivery(&claim.key, changes, outcome).await.map(Recorded::Done)
    }
}

/// What [`DeliveryLedger::record_delivery`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// Applied and recorded.
    Done(ApplyReport),
    /// Another copy of the delivery was recorded first: no second effect counted.
    Duplicate(DeliveryStatus),
}

/// Writes outside any delivery (resync, replay), under the same last-writer-wins rules.
#[async_trait]
pub trait ChangeSink: Send + Sync {
    /// Apply changes outside any delivery (resync, replay), same LWW rules.
    async fn apply_changes(&self, changes: &[Change]) -> Result<ApplyReport, StoreError>;
    /// Drop every normalised entity (not the ledger), before a replay.
    async fn reset_entities(&self) -> Result<(), StoreError>;
}

/// What the read API lists and shows.
#[async_trait]
pub trait ReadModel: Send + Sync {
    async fn list_repos(&self, page: &PageRequest) -> Result<Page<RepoView>, StoreError>;
    async fn list_pulls(&self, filter: &PullFilter, page: &PageRequest) -> Result<Page<PullRequest>, StoreError>;
    async fn get_pull(&self, repo: &RepoName, number: u64) -> Result<Option<PullDetail>, StoreError>;
    async fn list_teams(&self, org: Option<&str>, page: &PageRequest) -> Result<Page<TeamView>, StoreError>;
    async fn list_commits(
        &self,
        repo: &RepoName,
        branch: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<Commit>, StoreError>;
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

/// The store's side of the integrity check, and the record of its runs.
#[async_trait]
pub trait CompletenessStore: Send + Sync {
    /// Repositories and organisations Octoscope has heard of (entities and ledger).
    async fn tracked(&self) -> Result<Tracked, StoreError>;
    /// The store's side of the integrity comparison, in GitHub's terms: one
    /// snapshot per repository asked for, in the same order (an unknown
    /// repository gives an empty one).
    async fn repo_summaries(&self, repos: &[SnapshotRequest]) -> Result<Vec<RepoSnapshot>, StoreError>;
    /// `repo`'s workflow runs created at or after `since` (all when None): how
    /// many, and, of the runs `ids`, those the store has, with their job
    /// counts; and, when `unfinished_from` is given, the oldest run created at
    /// or after it that is not completed or has a job that is not.
    async fn stored_runs(
        &self,
        repo: &RepoName,
        since: Option<Timestamp>,
        ids: &[i64],
        unfinished_from: Option<Timestamp>,
    ) -> Result<StoredRuns, StoreError>;
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
}

/// Resync jobs: their records and checkpoints.
#[async_trait]
pub trait JobStore: Send + Sync {
    async fn save_job(&self, job: &JobRecord) -> Result<(), StoreError>;
    async fn list_jobs(&self, page: &PageRequest) -> Result<Page<JobRecord>, StoreError>;
    /// One job by id (the batch job is handed only its id).
    async fn get_job(&self, id: &str) -> Result<Option<JobRecord>, StoreError>;
    async fn checkpoint(&self, job_id: &str) -> Result<Option<String>, StoreError>;
    /// Save where `job_id` got to; None clears it (the job finished).
    async fn save_checkpoint(&self, job_id: &str, cursor: Option<&str>, at: Timestamp) -> Result<(), StoreError>;
}

/// Expiring locks (one resync per target at a time).
#[async_trait]
pub trait Locks: Send + Sync {
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
}

/// Plain rows for the metrics service, which computes (definitions in
/// shared/docs/metrics.md). `repo`, `author` and `team` filters apply to the
/// pull request's author or the run's actor.
#[async_trait]
pub trait MetricRows: Send + Sync {
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
    /// `(repository, merged_at)` of the pull requests merged in the window
    /// (`repo`, `author`, `team` filters): what lead time for changes needs.
    /// By default taken from [`metric_pulls`](Self::metric_pulls).
    async fn metric_merges(&self, filter: &MetricsFilter) -> Result<Vec<(RepoName, Timestamp)>, StoreError> {
        let rows = self.metric_pulls(filter).await?;
        Ok(rows
            .into_iter()
            .filter_map(|p| p.merged_at.filter(|m| *m >= filter.since && *m < filter.until).map(|m| (p.repo, m)))
            .collect())
    }
    /// Present members of every team (of `org` if given).
    async fn team_memberships(&self, org: Option<&str>) -> Result<Vec<TeamMembershipRow>, StoreError>;
    /// The newest delivery received for each repository.
    async fn last_deliveries(&self) -> Result<Vec<RepoDeliveryRow>, StoreError>;
}

/// Which rollup cells a metric read wants (besides their weeks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CellScopes {
    /// The cells of everything ([`Scope::All`]).
    All,
    /// One repository's (an old name answers for its current one).
    Repo(RepoName),
    /// These people's (a team's members, or one author).
    Authors(Vec<Option<String>>),
    /// Every repository's cell.
    EveryRepo,
    /// Every person's cell.
    EveryAuthor,
}

/// Metric rollups: per ISO week (and per UTC day) and [`Scope`](crate::read::rollup::Scope), the [`PullCell`] and
/// [`CiCell`] of the rows, kept by the store equal to a recomputation from
/// its rows ([`pull_cells`](crate::read::rollup::pull_cells) /
/// [`ci_cells`](crate::read::rollup::ci_cells)) through every write, late event,
/// resync and replay. Design and error bound: shared/docs/metrics.md.
#[async_trait]
pub trait MetricRollups: Send + Sync {
    /// The non-empty pull request cells of `scopes` for the weeks (Mondays) in `weeks`.
    async fn pull_cells(
        &self,
        scopes: &CellScopes,
        weeks: std::ops::Range<chrono::NaiveDate>,
    ) -> Result<Vec<(CellKey, PullCell)>, StoreError>;
    /// The non-empty CI cells of `scopes` for the weeks in `weeks`.
    async fn ci_cells(
        &self,
        scopes: &CellScopes,
        weeks: std::ops::Range<chrono::NaiveDate>,
    ) -> Result<Vec<(CellKey, CiCell)>, StoreError>;
    /// The non-empty pull request day cells (UTC days) of `scopes` for the days in `days`.
    async fn pull_day_cells(
        &self,
        scopes: &CellScopes,
        days: std::ops::Range<chrono::NaiveDate>,
    ) -> Result<Vec<(CellKey, PullCell)>, StoreError>;
    /// The non-empty CI day cells of `scopes` for the days in `days`.
    async fn ci_day_cells(
        &self,
        scopes: &CellScopes,
        days: std::ops::Range<chrono::NaiveDate>,
    ) -> Result<Vec<(CellKey, CiCell)>, StoreError>;
    /// The non-empty merge cells of `scopes` for the weeks in `weeks`: each
    /// pull request merged in a week, as its repository and exact
    /// `merged_at` ([`merge_cells`](crate::read::rollup::merge_cells)), which
    /// DORA's lead time pairs with deployments at any window edge.
    async fn merge_cells(
        &self,
        scopes: &CellScopes,
        weeks: std::ops::Range<chrono::NaiveDate>,
    ) -> Result<Vec<(CellKey, MergeCell)>, StoreError>;
    /// Recompute every cell from the rows (a store keeps them current on its
    /// own; tests compare the two, and a bulk load may skip the upkeep).
    async fn rebuild_rollups(&self) -> Result<(), StoreError>;
}

/// Every store port at once: what an adapter implements and what wiring
/// hands around. A service takes only the narrow ports it uses
/// (`Arc<dyn Store>` coerces to any of them).
pub trait Store:
    DeliveryLedger + ChangeSink + ReadModel + CompletenessStore + JobStore + Locks + MetricRows + MetricRollups
{
}

impl<
    T: DeliveryLedger
        + ChangeSink
        + ReadModel
        + CompletenessStore
        + JobStore
        + Locks
        + MetricRows
        + MetricRollups
        + ?Sized,
> Store for T
{
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

//! The `GitHubSource` port: what Octoscope reads from GitHub's API to find and
//! repair what webhooks missed. Its adapter (on octocrab) lives in
//! `adapters::github`; services only see this trait.
//!
//! Everything returned is already in domain terms ([`PullRequest`], [`Review`],
//! [`Team`], ...), so the resync writes it through the same last-writer-wins
//! store rules as webhooks.

use async_trait::async_trait;

use crate::domain::*;
use crate::error::GitHubError;

/// What the integrity check asks about one repository: everything since
/// `since` (the repository's watermark, the start of its last verified check),
/// or everything when it was never verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRequest {
    pub repo: RepoName,
    pub since: Option<Timestamp>,
}

impl SnapshotRequest {
    pub fn new(repo: RepoName, since: Option<Timestamp>) -> Self {
        Self { repo, since }
    }
}

/// A pull request as the integrity check compares it: when it last changed
/// and how many reviews it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullMark {
    pub number: u64,
    pub updated_at: Timestamp,
    pub reviews: u64,
}

/// A deployment as the integrity check compares it: its latest status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentMark {
    pub id: i64,
    /// The state of its newest status (`success`, `failure`, ...); None without one.
    pub latest_state: Option<String>,
}

/// How many recent deployments a snapshot lists (newest first).
pub const RECENT_DEPLOYMENTS: usize = 20;
/// How many recently updated pull requests a snapshot lists (newest first).
pub const RECENT_PULLS: usize = 100;

/// What GitHub (or the store) says about one repository, for the integrity check.
#[derive(Debug, Clone, PartialEq)]
pub struct RepoSnapshot {
    pub repo: RepoName,
    /// GitHub's `databaseId` of the repository (GitHub's side only).
    pub id: Option<i64>,
    /// The repository's name now, when GitHub answered `repo` with another
    /// (renamed or transferred: GitHub follows the old name). GitHub's side only.
    pub moved_to: Option<RepoName>,
    /// Pull request `totalCount` per state (closed = closed without merge).
    pub open: u64,
    pub closed: u64,
    pub merged: u64,
    /// The newest pull request `updatedAt` in the repository.
    pub newest_pr_updated_at: Option<Timestamp>,
    /// Pull requests updated at or after the request's `since` (every one when
    /// it has none), newest-updated first, at most [`RECENT_PULLS`], with
    /// their review counts.
    pub recent_pulls: Vec<PullMark>,
    /// More pull requests were updated since `since` than `recent_pulls` holds.
    pub recent_pulls_truncated: bool,
    /// Branch heads: (name, head sha), at most 100.
    pub branches: Vec<(String, String)>,
    /// More branches exist than were returned: compare only what was.
    pub branches_truncated: bool,
    pub default_branch: Option<String>,
    /// Commits on the default branch committed at or after `since` (all when
    /// it has none); None when the repository has no default branch.
    pub default_branch_commits: Option<u64>,
    /// Deployments in all.
    pub deployments: u64,
    /// GitHub withheld the deployments from these credentials (an app not
    /// granted Deployments): `deployments` and `recent_deployments` say
    /// nothing, and are not compared.
    pub deployments_withheld: bool,
    /// The newest deployments (by creation), at most [`RECENT_DEPLOYMENTS`],
    /// each with the state of its latest status.
    pub recent_deployments: Vec<DeploymentMark>,
}

impl RepoSnapshot {
    /// A repository with nothing in it: no pull requests, branches, commits or deployments.
    pub fn empty(repo: RepoName) -> Self {
        Self {
            repo,
            id: None,
            moved_to: None,
            open: 0,
            closed: 0,
            merged: 0,
            newest_pr_updated_at: None,
            recent_pulls: Vec::new(),
            recent_pulls_truncated: false,
            branches: Vec::new(),
            branches_truncated: false,
            default_branch: None,
            default_branch_commits: None,
            deployments: 0,
            deployments_withheld: false,
            recent_deployments: Vec::new(),
        }
    }
}

/// A workflow run as GitHub lists it, with the GraphQL node id that
/// [`GitHubChecks::job_counts`] takes.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedRun {
    pub run: WorkflowRun,
    pub node_id: Option<String>,
}

/// The workflow runs of one repository created at or after a time: how many
/// GitHub has, and the newest of them (one page).
#[derive(Debug, Clone, PartialEq)]
pub struct RunWindow {
    pub total: u64,
    /// Newest first, at most one page (100).
    pub runs: Vec<ListedRun>,
}

/// How many jobs one workflow run has (every attempt), and how many of them completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobCount {
    pub run_id: i64,
    pub jobs: u64,
    pub completed: u64,
}

/// What the store holds of one repository's workflow runs since a time.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StoredRuns {
    /// Runs created at or after the time.
    pub total: u64,
    /// The runs asked for by id that the store has, with their job counts.
    pub runs: Vec<StoredRun>,
    /// The creation time of the oldest run created at or after the time asked
    /// for (`unfinished_from`; None when not asked) that is not completed or
    /// has a job that is not: the check widens its window back to it, so a
    /// completion that webhooks lost is found. Runs older than that time do
    /// not count: a run stuck for weeks does not hide a newer one.
    pub oldest_unfinished: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StoredRun {
    pub id: i64,
    pub status: RunStatus,
    pub conclusion: Option<String>,
    pub updated_at: Timestamp,
    /// Jobs the store holds of this run (every attempt), and how many of them completed.
    pub jobs: u64,
    pub jobs_completed: u64,
}

/// A deployment with every status it has had.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentWithStatuses {
    pub deployment: Deployment,
    pub statuses: Vec<DeploymentStatus>,
}

/// An item a read had to leave out (a `null` node, a partial GraphQL error),
/// and why. The rest of the read is kept; the item's gap stays open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub what: String,
    pub why: String,
}

/// What GitHub says about an organisation's teams, for the integrity check.
#[derive(Debug, Clone, PartialEq)]
pub struct OrgSnapshot {
    pub org: String,
    /// (team slug, member count), every team of the org.
    pub teams: Vec<(String, u64)>,
    /// GitHub withholds the teams from these credentials (an app not
    /// granted Members): `teams` says nothing, and is not compared.
    pub teams_withheld: bool,
    /// Repositories of the organisation in all (GitHub's side only; None from the store).
    pub repos_total: Option<u64>,
    /// The organisation's newest repositories (by creation, at most 100; every
    /// one when the total is no more). From the store: none.
    pub recent_repos: Vec<RepoName>,
}

/// One page of pull requests, newest-updated first, reviews included.
#[derive(Debug, Clone, PartialEq)]
pub struct PullPage {
    pub pulls: Vec<(PullRequest, Vec<Review>)>,
    /// Opaque: pass back to get the next page; None on the last page.
    pub next_cursor: Option<String>,
    /// How many pull requests the repository has in all, when GitHub said.
    pub total: Option<u64>,
    /// Items of this page that could not be read (null nodes, partial errors).
    pub skipped: Vec<Skipped>,
}

/// A team and its full member list, read at `version` time.
#[derive(Debug, Clone, PartialEq)]
pub struct TeamRoster {
    pub team: Team,
    pub members: Vec<String>,
}

/// A webhook configuration on GitHub.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HookRef {
    Repo { repo: RepoName, id: u64 },
    Org { org: String, id: u64 },
}

/// One recorded attempt to deliver a webhook (GitHub keeps them for 3 days).
#[derive(Debug, Clone, PartialEq)]
pub struct HookDelivery {
    /// GitHub's numeric id of this attempt (what redelivery takes).
    pub id: u64,
    /// The `X-GitHub-Delivery` GUID (shared by redeliveries of the same event).
    pub guid: String,
    pub delivered_at: Timestamp,
    pub status_code: u16,
    pub event: String,
    pub redelivery: bool,
}

/// The remaining API budget, as the last response's headers said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateBudget {
    pub remaining: Option<u64>,
    pub limit: Option<u64>,
    pub reset_at: Option<Timestamp>,
    /// Requests this source has sent so far (every attempt, retries included).
    pub requests: u64,
}

tokio::task_local! {
    static TALLY: std::sync::Mutex<InstallationRequests>;
}

/// Run `work`, counting the GitHub requests it makes per installation: only
/// its own (a check and resync jobs running at once on one client each count
/// theirs). A GitHub adapter reports every request it sends (each attempt)
/// with [`tally_request`], naming the installation whose budget it spent.
pub async fn counting_requests<F: std::future::Future>(work: F) -> (F::Output, InstallationRequests) {
    TALLY
        .scope(std::sync::Mutex::new(InstallationRequests::default()), async {
            let out = work.await;
            let counted = TALLY.with(|t| t.lock().map(|t| t.clone()).unwrap_or_default());
            (out, counted)
        })
        .await
}

/// One request sent through `installation`, for the [`counting_requests`]
/// around it (if any).
pub fn tally_request(installation: &str) {
    let _ = TALLY.try_with(|t| {
        if let Ok(mut t) = t.lock() {
            *t.0.entry(installation.to_owned()).or_default() += 1;
        }
    });
}

/// The API budget a GitHub port has left and what it has spent.
pub trait Budgeted: Send + Sync {
    /// Every installation's together: requests summed, `remaining` the
    /// lowest any installation has left.
    fn budget(&self) -> RateBudget;
    /// Requests sent so far per installation (see [`InstallationRequests`]).
    /// A port without installations names none.
    fn requests_by_installation(&self) -> InstallationRequests {
        InstallationRequests::default()
    }
}

/// The integrity check's reads: counts and marks, batched, cheap.
#[async_trait]
pub trait GitHubChecks: Budgeted {
    /// Snapshots of many repositories; the adapter batches them (GraphQL aliases)
    /// so that 100 repositories cost at most 2 requests.
    async fn repo_snapshots(&self, repos: &[SnapshotRequest]) -> Result<Vec<RepoSnapshot>, GitHubError>;
    /// Team member counts and recent repositories of many organisations.
    async fn org_snapshots(&self, orgs: &[String]) -> Result<Vec<OrgSnapshot>, GitHubError>;
    /// How many workflow runs `repo` has created at or after `since` (all
    /// when None), and the newest page of them: one REST request.
    async fn run_window(&self, repo: &RepoName, since: Option<Timestamp>) -> Result<RunWindow, GitHubError>;
    /// Jobs per workflow run (every attempt), for runs of repositories of
    /// `owner` given by their node ids, batched (GraphQL `nodes`, 100 per
    /// request; the owner says whose installation reads them). A run GitHub
    /// no longer has (a `null` node) is left out.
    async fn job_counts(&self, owner: &str, node_ids: &[String]) -> Result<Vec<JobCount>, GitHubError>;
}

/// The resync's reads: whole entities, paged. It also counts, as the check does.
#[async_trait]
pub trait GitHubSource: GitHubChecks {
    /// A page of up to 100 pull requests ordered by `updatedAt` descending,
    /// each with its reviews, starting after `cursor`.
    async fn pull_requests(&self, repo: &RepoName, cursor: Option<&str>) -> Result<PullPage, GitHubError>;
    /// Every team of `org` with its full member list.
    async fn teams(&self, org: &str) -> Result<Vec<TeamRoster>, GitHubError>;
    /// Every repository of `org` (for `backfill --org`).
    async fn org_repos(&self, org: &str) -> Result<Vec<RepoName>, GitHubError>;
    /// Every branch of `repo` with its head.
    async fn branches(&self, repo: &RepoName) -> Result<Vec<Branch>, GitHubError>;
    /// Workflow runs of `repo` created at or after `since` (all when None),
    /// newest first, with their node ids (REST; `created` windows split in
    /// halves where GitHub's 1,000-result cap would cut the list).
    async fn workflow_runs(&self, repo: &RepoName, since: Option<Timestamp>) -> Result<Vec<ListedRun>, GitHubError>;
    /// Every job of one run, every attempt (REST).
    async fn workflow_jobs(&self, repo: &RepoName, run_id: i64) -> Result<Vec<WorkflowJob>, GitHubError>;
    /// Deployments of `repo` created at or after `since` (all when None),
    /// newest first, each with its statuses (REST).
    async fn deployments(
        &self,
        repo: &RepoName,
        since: Option<Timestamp>,
    ) -> Result<Vec<DeploymentWithStatuses>, GitHubError>;
    /// Commits reachable from `branch` committed at or after `since` (all when
    /// None), newest first (GraphQL history, 100 per page).
    async fn branch_commits(
        &self,
        repo: &RepoName,
        branch: &str,
        since: Option<Timestamp>,
    ) -> Result<Vec<Commit>, GitHubError>;
}

/// Webhook configurations and their delivery logs: what the check redelivers from.
#[async_trait]
pub trait GitHubHooks: Send + Sync {
    /// Webhook configurations on a repository or organisation (REST).
    async fn hooks(&self, target: &HookTarget) -> Result<Vec<HookRef>, GitHubError>;
    /// Recent delivery attempts of a hook that failed (non-2xx), at or after `since` (REST).
    async fn failed_deliveries(&self, hook: &HookRef, since: Timestamp) -> Result<Vec<HookDelivery>, GitHubError>;
    /// Ask GitHub to deliver an attempt again (REST).
    async fn redeliver(&self, hook: &HookRef, delivery_id: u64) -> Result<(), GitHubError>;
}

/// Every GitHub port, as wiring holds the one adapter; it upcasts to each.
pub trait GitHub: GitHubSource + GitHubHooks {}
impl<T: GitHubSource + GitHubHooks + ?Sized> GitHub for T {}

/// Where webhooks can be configured.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HookTarget {
    Repo(RepoName),
    Org(String),
}

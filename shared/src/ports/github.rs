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

/// What GitHub says about one repository, for the integrity check.
#[derive(Debug, Clone, PartialEq)]
pub struct RepoSnapshot {
    pub repo: RepoName,
    /// Pull request `totalCount` per state (closed = closed without merge).
    pub open: u64,
    pub closed: u64,
    pub merged: u64,
    /// The newest pull request `updatedAt` in the repository.
    pub newest_pr_updated_at: Option<Timestamp>,
    /// Branch heads: (name, head sha), at most 100.
    pub branches: Vec<(String, String)>,
    /// More branches exist than were returned: compare only what was.
    pub branches_truncated: bool,
    pub default_branch: Option<String>,
}

impl RepoSnapshot {
    /// A repository with no pull requests, no branches and no default branch.
    pub fn empty(repo: RepoName) -> Self {
        Self {
            repo,
            open: 0,
            closed: 0,
            merged: 0,
            newest_pr_updated_at: None,
            branches: Vec::new(),
            branches_truncated: false,
            default_branch: None,
        }
    }
}

/// What GitHub says about an organisation's teams, for the integrity check.
#[derive(Debug, Clone, PartialEq)]
pub struct OrgSnapshot {
    pub org: String,
    /// (team slug, member count), every team of the org.
    pub teams: Vec<(String, u64)>,
}

/// One page of pull requests, newest-updated first, reviews included.
#[derive(Debug, Clone, PartialEq)]
pub struct PullPage {
    pub pulls: Vec<(PullRequest, Vec<Review>)>,
    /// Opaque: pass back to get the next page; None on the last page.
    pub next_cursor: Option<String>,
    /// How many pull requests the repository has in all, when GitHub said.
    pub total: Option<u64>,
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

#[async_trait]
pub trait GitHubSource: Send + Sync {
    /// Snapshots of many repositories; the adapter batches them (GraphQL aliases)
    /// so that 100 repositories cost at most 2 requests.
    async fn repo_snapshots(&self, repos: &[RepoName]) -> Result<Vec<RepoSnapshot>, GitHubError>;
    /// Team member counts of many organisations.
    async fn org_snapshots(&self, orgs: &[String]) -> Result<Vec<OrgSnapshot>, GitHubError>;
    /// A page of up to 100 pull requests ordered by `updatedAt` descending,
    /// each with its reviews, starting after `cursor`.
    async fn pull_requests(&self, repo: &RepoName, cursor: Option<&str>) -> Result<PullPage, GitHubError>;
    /// Every team of `org` with its full member list.
    async fn teams(&self, org: &str) -> Result<Vec<TeamRoster>, GitHubError>;
    /// Every repository of `org` (for `backfill --org`).
    async fn org_repos(&self, org: &str) -> Result<Vec<RepoName>, GitHubError>;
    /// Every branch of `repo` with its head.
    async fn branches(&self, repo: &RepoName) -> Result<Vec<Branch>, GitHubError>;
    /// Workflow runs of `repo` created at or after `since` (REST).
    async fn workflow_runs(&self, repo: &RepoName, since: Timestamp) -> Result<Vec<WorkflowRun>, GitHubError>;
    /// Webhook configurations on a repository or organisation (REST).
    async fn hooks(&self, target: &HookTarget) -> Result<Vec<HookRef>, GitHubError>;
    /// Recent delivery attempts of a hook that failed (non-2xx), at or after `since` (REST).
    async fn failed_deliveries(&self, hook: &HookRef, since: Timestamp) -> Result<Vec<HookDelivery>, GitHubError>;
    /// Ask GitHub to deliver an attempt again (REST).
    async fn redeliver(&self, hook: &HookRef, delivery_id: u64) -> Result<(), GitHubError>;
    /// The API budget left.
    fn budget(&self) -> RateBudget;
}

/// Where webhooks can be configured.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HookTarget {
    Repo(RepoName),
    Org(String),
}
